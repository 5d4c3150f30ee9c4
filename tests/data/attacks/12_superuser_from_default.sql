-- expect: failed
-- A role made by code that runs while the file loads (a superuser's load makes it).
CREATE FUNCTION mkrole_v() RETURNS int VOLATILE LANGUAGE plpgsql AS $$
BEGIN EXECUTE 'CREATE ROLE lockplane_attack_fromdefault SUPERUSER LOGIN'; RETURN 1; END $$;
CREATE FUNCTION mkrole() RETURNS int IMMUTABLE LANGUAGE sql AS $$ SELECT mkrole_v() $$;
CREATE TABLE t (a int);
ALTER TABLE t ADD COLUMN b int DEFAULT mkrole();
