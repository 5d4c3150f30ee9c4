-- expect: failed
-- A SECURITY DEFINER function with its own search_path, called by a default while the file
-- loads: it runs as its owner (the sandbox role), which can reach nothing.
CREATE SCHEMA trap;
CREATE FUNCTION trap.lower(text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch @CANARY_DIR@/secdef'''; RETURN $1; END $$;
CREATE FUNCTION f() RETURNS text IMMUTABLE SECURITY DEFINER SET search_path = trap, pg_catalog
  LANGUAGE sql AS $$ SELECT trap.lower('x') $$;
CREATE TABLE t (a int);
ALTER TABLE t ADD COLUMN b text DEFAULT f();
