-- expect: loads
-- apply exits: 0
-- target: CREATE FUNCTION f61(int) RETURNS int IMMUTABLE LANGUAGE sql AS $$ SELECT $1 $$;
-- target: CREATE INDEX accounts_f61 ON accounts (f61(id));
-- Not a re-evaluation (no false refusal): building a new index evaluates its own
-- expressions, not those of the table's other indexes. The plan replaces f61's body and
-- adds an index on owner; the apply succeeds and the new body never runs during it.
CREATE FUNCTION f61_v(int) RETURNS int VOLATILE LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch @CANARY_DIR@/other_index''';
  END IF;
  RETURN $1;
END $$;
CREATE FUNCTION f61(int) RETURNS int IMMUTABLE LANGUAGE sql AS $$ SELECT f61_v($1) $$;
CREATE TABLE accounts (id int PRIMARY KEY, owner text);
CREATE INDEX accounts_f61 ON accounts (f61(id));
CREATE INDEX accounts_owner ON accounts (owner);
