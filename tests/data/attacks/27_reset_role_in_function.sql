-- expect: failed
-- A function that goes back to the session's own user before running a command.
CREATE FUNCTION escalate() RETURNS int IMMUTABLE LANGUAGE plpgsql AS $$
BEGIN
  RESET ROLE;
  EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch @CANARY_DIR@/reset_role''';
  RETURN 1;
END $$;
CREATE TABLE t (a int);
ALTER TABLE t ADD COLUMN b int DEFAULT escalate();
