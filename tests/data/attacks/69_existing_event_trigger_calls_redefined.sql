-- expect: loads
-- apply exits: 3
-- apply with: --safety permissive
-- apply says: public.audit69 (through public.note69): dynamic SQL (EXECUTE), which event trigger audit69 runs on the step's DDL
-- target: CREATE FUNCTION note69() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;
-- target: CREATE FUNCTION audit69() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM note69(); END $$;
-- target: CREATE EVENT TRIGGER audit69 ON ddl_command_end EXECUTE FUNCTION audit69();
-- An event trigger already on the target calls note69. The plan leaves the event trigger
-- and its function alone, gives note69 a new body and creates a table: every DDL
-- statement of the plan (the CREATE OR REPLACE itself first) fires the event trigger,
-- which runs the new body with the applying user's privileges. Before, event triggers
-- were not looked at: on b866a2b..e7ce489 apply touched the canary (exit 0).
CREATE FUNCTION note69() RETURNS int VOLATILE LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch @CANARY_DIR@/event_trigger_existing''';
  END IF;
  RETURN 1;
END $$;
CREATE FUNCTION audit69() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM note69(); END $$;
CREATE EVENT TRIGGER audit69 ON ddl_command_end EXECUTE FUNCTION audit69();
CREATE TABLE accounts (id int PRIMARY KEY, owner text);
CREATE TABLE more69 (a int);
