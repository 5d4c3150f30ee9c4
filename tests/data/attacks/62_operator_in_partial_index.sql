-- expect: loads
-- apply exits: 3
-- apply with: --safety permissive
-- apply says: public.eq62 (through public.eq62_v): dynamic SQL (EXECUTE), which operator === in index accounts_some calls
-- target: CREATE FUNCTION eq62(int, int) RETURNS boolean IMMUTABLE LANGUAGE sql AS $$ SELECT $1 = $2 $$;
-- target: CREATE OPERATOR === (LEFTARG = int, RIGHTARG = int, FUNCTION = eq62);
-- target: ALTER TABLE accounts ADD COLUMN n int; CREATE INDEX accounts_some ON accounts (id) WHERE NOT (id === 0);
-- An operator calls its function from an expression that names no function: a partial
-- index's predicate uses ===, whose function gets a new body; the rewrite of the table
-- builds the index again and evaluates the predicate for every row.
CREATE FUNCTION eq62_v(int, int) RETURNS boolean VOLATILE LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch @CANARY_DIR@/operator''';
  END IF;
  RETURN $1 = $2;
END $$;
CREATE FUNCTION eq62(int, int) RETURNS boolean IMMUTABLE LANGUAGE sql AS $$ SELECT eq62_v($1, $2) $$;
CREATE OPERATOR === (LEFTARG = int, RIGHTARG = int, FUNCTION = eq62);
CREATE TABLE accounts (id int PRIMARY KEY, owner text, n bigint);
CREATE INDEX accounts_some ON accounts (id) WHERE NOT (id === 0);
