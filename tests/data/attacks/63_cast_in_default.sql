-- expect: loads
-- apply exits: 3
-- apply says: public.to_pair63 (through public.to_pair63_v): dynamic SQL (EXECUTE), the function of the cast from int4 to pair63
-- target: CREATE TYPE pair63 AS (a int, b int);
-- target: CREATE FUNCTION to_pair63(int) RETURNS pair63 IMMUTABLE LANGUAGE sql AS $$ SELECT ROW($1, $1)::pair63 $$;
-- target: CREATE CAST (int AS pair63) WITH FUNCTION to_pair63(int);
-- A cast WITH FUNCTION calls its function from an expression that names none: the new
-- column's default casts 7 to pair63, evaluated once on the target by ADD COLUMN, through
-- the new body the plan gives to_pair63.
CREATE TYPE pair63 AS (a int, b int);
CREATE FUNCTION to_pair63_v(int) RETURNS int VOLATILE LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch @CANARY_DIR@/cast''';
  END IF;
  RETURN $1;
END $$;
CREATE FUNCTION to_pair63(int) RETURNS pair63 IMMUTABLE LANGUAGE sql AS $$ SELECT ROW(to_pair63_v($1), $1)::pair63 $$;
CREATE CAST (int AS pair63) WITH FUNCTION to_pair63(int);
CREATE TABLE accounts (id int PRIMARY KEY, owner text, b int DEFAULT ((7::pair63).a));
