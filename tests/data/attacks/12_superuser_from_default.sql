-- expect: failed
-- A role made by code that runs while the file loads.
CREATE FUNCTION mkrole() RETURNS int IMMUTABLE LANGUAGE plpgsql AS $$
BEGIN EXECUTE 'CREATE ROLE lockplane_attack_fromdefault SUPERUSER LOGIN'; RETURN 1; END $$;
CREATE TABLE t (a int);
ALTER TABLE t ADD COLUMN b int DEFAULT mkrole();
