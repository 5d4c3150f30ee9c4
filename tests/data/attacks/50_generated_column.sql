-- expect: failed
-- A stored generated column added to a table is computed for every row (none here), and
-- its expression is constant-folded when it calls only immutable functions.
CREATE FUNCTION gen() RETURNS int IMMUTABLE LANGUAGE sql AS $$ SELECT pg_read_file('@CANARY_FILE@')::int $$;
CREATE TABLE t (a int);
ALTER TABLE t ADD COLUMN b int GENERATED ALWAYS AS (gen() + a) STORED;
ALTER TABLE t ADD COLUMN c int DEFAULT gen() + 1;
