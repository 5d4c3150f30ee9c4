-- expect: failed
-- ADD COLUMN with a non-volatile default evaluates it while the file loads: the function
-- runs a shell command.
CREATE FUNCTION evil() RETURNS int IMMUTABLE LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch @CANARY_DIR@/default_program''';
  RETURN 1;
END $$;
CREATE TABLE t (a int);
ALTER TABLE t ADD COLUMN b int DEFAULT evil();
