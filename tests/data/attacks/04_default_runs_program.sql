-- expect: failed
-- ADD COLUMN with a non-volatile default evaluates it while the file loads: an IMMUTABLE
-- function that calls a volatile one runs a shell command (as a superuser, it does).
CREATE FUNCTION evil_v() RETURNS int VOLATILE LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch @CANARY_DIR@/default_program''';
  RETURN 1;
END $$;
CREATE FUNCTION evil() RETURNS int IMMUTABLE LANGUAGE plpgsql AS $$ BEGIN RETURN evil_v(); END $$;
CREATE TABLE t (a int);
ALTER TABLE t ADD COLUMN b int DEFAULT evil();
