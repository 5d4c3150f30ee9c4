-- expect: failed
-- A failing cast echoes a server file's contents in the error message.
CREATE FUNCTION leak() RETURNS int IMMUTABLE LANGUAGE plpgsql AS $$
BEGIN RETURN pg_read_file('@CANARY_FILE@')::int; END $$;
CREATE TABLE t (a int);
ALTER TABLE t ADD COLUMN b int DEFAULT leak();
