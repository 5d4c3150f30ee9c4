-- expect: loads
-- apply exits: 3
-- apply with: --safety permissive
-- apply says: public.stamp68 (through public.note68): dynamic SQL (EXECUTE), which trigger accounts_stamp68 on table accounts runs for each row
-- target: CREATE FUNCTION note68() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;
-- target: CREATE FUNCTION stamp68() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM note68(); RETURN NEW; END $$;
-- target: CREATE TRIGGER accounts_stamp68 BEFORE UPDATE ON accounts FOR EACH ROW EXECUTE FUNCTION stamp68();
-- A trigger already on the target calls note68. The plan leaves the trigger and its
-- function alone, gives note68 a new body, and adds a column with a volatile default:
-- the backfill's UPDATEs fire the trigger for every row, and the trigger runs the new
-- body with the applying user's privileges. Before, a trigger the plan did not redefine
-- was not followed at all (the application's own code); what it calls that the plan
-- redefines is new code.
CREATE FUNCTION note68() RETURNS int VOLATILE LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch @CANARY_DIR@/existing_trigger''';
  END IF;
  RETURN 1;
END $$;
CREATE FUNCTION stamp68() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM note68(); RETURN NEW; END $$;
CREATE TABLE accounts (id int PRIMARY KEY, owner text, r float DEFAULT random());
CREATE TRIGGER accounts_stamp68 BEFORE UPDATE ON accounts FOR EACH ROW EXECUTE FUNCTION stamp68();
