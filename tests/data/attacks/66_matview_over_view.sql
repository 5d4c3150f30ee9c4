-- expect: loads
-- apply exits: 3
-- apply says: public.f66 (through public.f66_v): dynamic SQL (EXECUTE), which rule _RETURN on view accounts_x calls
-- target: CREATE FUNCTION f66(int) RETURNS int IMMUTABLE LANGUAGE sql AS $$ SELECT $1 $$;
-- target: CREATE VIEW accounts_x AS SELECT f66(id) AS x FROM accounts;
-- A materialized view created with data over a view already on the target: the
-- matview's own query names no function, the view's query calls f66, to which the plan
-- gives a new body; the matview's first fill runs it for every row.
CREATE FUNCTION f66_v(int) RETURNS int VOLATILE LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch @CANARY_DIR@/view''';
  END IF;
  RETURN $1;
END $$;
CREATE FUNCTION f66(int) RETURNS int IMMUTABLE LANGUAGE sql AS $$ SELECT f66_v($1) $$;
CREATE TABLE accounts (id int PRIMARY KEY, owner text);
CREATE VIEW accounts_x AS SELECT f66(id) AS x FROM accounts;
CREATE MATERIALIZED VIEW accounts_mx AS SELECT x FROM accounts_x;
