-- expect: failed
-- Code run while loading reads a server file into a failing cast, from a volatile helper
-- behind an immutable default (as a superuser, the error would print the file).
CREATE FUNCTION leak_v() RETURNS int VOLATILE LANGUAGE sql AS $$ SELECT pg_read_file('@CANARY_FILE@')::int $$;
CREATE FUNCTION leak() RETURNS int IMMUTABLE LANGUAGE sql AS $$ SELECT leak_v() $$;
CREATE TABLE t (a int);
ALTER TABLE t ADD COLUMN b int DEFAULT leak();
