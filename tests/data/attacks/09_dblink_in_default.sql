-- expect: refused
-- The same through a default, so that no top-level statement is a query.
CREATE EXTENSION IF NOT EXISTS dblink;
CREATE FUNCTION wipe() RETURNS int IMMUTABLE LANGUAGE sql AS
  $$ SELECT dblink_exec('dbname=@VICTIM_DB@ user=postgres host=127.0.0.1', 'DELETE FROM secrets') $$;
CREATE TABLE t (a int);
ALTER TABLE t ADD COLUMN b int DEFAULT wipe();
