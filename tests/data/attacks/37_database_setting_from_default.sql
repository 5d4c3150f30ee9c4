-- expect: failed
-- Code that runs while the file loads tries to change the target database's settings.
CREATE FUNCTION poison_v() RETURNS int VOLATILE LANGUAGE plpgsql AS $$
BEGIN EXECUTE 'ALTER DATABASE @TARGET_DB@ SET search_path = attacker, pg_catalog'; RETURN 1; END $$;
CREATE FUNCTION poison() RETURNS int IMMUTABLE LANGUAGE sql AS $$ SELECT poison_v() $$;
CREATE TABLE t (a int);
ALTER TABLE t ADD COLUMN b int DEFAULT poison();
