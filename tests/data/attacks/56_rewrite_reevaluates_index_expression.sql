-- expect: loads
-- apply exits: 3
-- apply with: --safety permissive
-- apply says: public.f56 (through public.f56_v): dynamic SQL (EXECUTE), which index accounts_f56 calls
-- target: CREATE FUNCTION f56(int) RETURNS int IMMUTABLE LANGUAGE sql AS $$ SELECT $1 $$;
-- target: ALTER TABLE accounts ADD COLUMN n int; CREATE INDEX accounts_f56 ON accounts (f56(id));
-- An index expression already on the target calls f56. The plan gives f56 a new body and
-- retypes a column, which rewrites the table: every index is built again, so the new
-- body runs for every row with the applying user's privileges, although no step's SQL
-- names f56 (it acts only as a superuser: in the sandbox it computes a value).
CREATE FUNCTION f56_v(int) RETURNS int VOLATILE LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch @CANARY_DIR@/rewrite''';
  END IF;
  RETURN $1;
END $$;
CREATE FUNCTION f56(int) RETURNS int IMMUTABLE LANGUAGE sql AS $$ SELECT f56_v($1) $$;
CREATE TABLE accounts (id int PRIMARY KEY, owner text, n bigint);
CREATE INDEX accounts_f56 ON accounts (f56(id));
