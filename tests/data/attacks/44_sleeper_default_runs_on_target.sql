-- expect: loads
-- apply exits: 3
-- A default whose function does nothing in a scratch database and runs a program
-- everywhere else: ADD COLUMN evaluates a non-volatile default once, on the target, with
-- the applying user's privileges (an immutable function may call a volatile one).
CREATE FUNCTION sleeper_v() RETURNS int VOLATILE LANGUAGE plpgsql AS $$
BEGIN
  IF current_database() NOT LIKE 'lockplane%' THEN
    EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch @CANARY_DIR@/sleeper_default''';
  END IF;
  RETURN 1;
END $$;
CREATE FUNCTION sleeper() RETURNS int IMMUTABLE LANGUAGE sql AS $$ SELECT sleeper_v() $$;
CREATE TABLE accounts (id int PRIMARY KEY, owner text, b int DEFAULT sleeper());
