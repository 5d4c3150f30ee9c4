-- expect: failed
CREATE FUNCTION grab() RETURNS int IMMUTABLE LANGUAGE sql AS $$ SELECT lo_import('@CANARY_FILE@')::int $$;
CREATE TABLE t (a int);
ALTER TABLE t ADD COLUMN b int DEFAULT grab();
