-- expect: failed
-- A table named like a catalog in public, with a rule that runs code on any read of it;
-- then a default that reads it. (Introspection reads with search_path ''.)
CREATE FUNCTION boom() RETURNS int VOLATILE LANGUAGE plpgsql AS $$
BEGIN EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch @CANARY_DIR@/rule'''; RETURN 1; END $$;
CREATE TABLE pg_class (oid int);
CREATE VIEW pg_namespace AS SELECT boom() AS oid, 'x'::name AS nspname;
CREATE FUNCTION reads() RETURNS int IMMUTABLE LANGUAGE sql AS $$ SELECT oid FROM public.pg_namespace $$;
CREATE TABLE t (a int);
ALTER TABLE t ADD COLUMN b int DEFAULT reads();
