-- expect: loads
-- apply exits: 3
-- apply says: set_config (it changes the applying session's settings
-- A CHECK added to a table with rows is validated, row by row, in the applying session:
-- set_config(..., false) there changes that session for what runs after the step. On
-- a7ce27a this made Lockplane's own "UPDATE lockplane.migrations SET finished_at = now()"
-- run evil.now(), which no step evaluates and so no check read: the program ran as the
-- superuser after every step had applied (exit 0).
CREATE SCHEMA evil;
CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
    EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch @CANARY_DIR@/search_path''';
  END IF;
  RETURN pg_catalog.now();
END $$;
CREATE TABLE accounts (id int PRIMARY KEY, owner text,
  CONSTRAINT sp CHECK (pg_catalog.set_config('search_path', 'evil, pg_catalog, public', false) IS NOT NULL));
