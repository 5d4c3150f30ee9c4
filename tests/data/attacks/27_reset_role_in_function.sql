-- expect: failed
-- A function that goes back to the session's own user before running a command: had the
-- loader only SET ROLE to an unprivileged role, RESET ROLE would undo it.
CREATE FUNCTION escalate_v() RETURNS int VOLATILE LANGUAGE plpgsql AS $$
BEGIN
  RESET ROLE;
  EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch @CANARY_DIR@/reset_role''';
  RETURN 1;
END $$;
CREATE FUNCTION escalate() RETURNS int IMMUTABLE LANGUAGE sql AS $$ SELECT escalate_v() $$;
CREATE TABLE t (a int);
ALTER TABLE t ADD COLUMN b int DEFAULT escalate();
