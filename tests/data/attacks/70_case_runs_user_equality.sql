-- expect: loads
-- apply exits: 3
-- apply with: --safety permissive --skip-shadow
-- apply says: public.same70 (through public.touch70): dynamic SQL (EXECUTE), the function of operator =
-- target: CREATE FUNCTION same70(int, text) RETURNS bool LANGUAGE sql IMMUTABLE AS $$ SELECT $1::text = $2 $$;
-- target: CREATE OPERATOR = (LEFTARG = int, RIGHTARG = text, FUNCTION = same70);
-- The target has an "=" for (integer, text) (Lockplane does not manage operators); the
-- plan gives its function a new body and builds an index whose expression names no
-- operator and no function: CASE id WHEN owner compares with "=", which the server
-- resolves to the user's operator for every row, with the applying user's privileges.
-- The check read operators only where an expression spells them; on e7ce489 apply
-- --skip-shadow touched the canary (exit 0).
CREATE FUNCTION touch70() RETURNS bool LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch @CANARY_DIR@/case_operator''';
  END IF;
  RETURN true;
END $$;
CREATE FUNCTION same70(int, text) RETURNS bool LANGUAGE sql IMMUTABLE AS $$ SELECT touch70() AND $1::text = $2 $$;
CREATE OPERATOR = (LEFTARG = int, RIGHTARG = text, FUNCTION = same70);
CREATE TABLE accounts (id int PRIMARY KEY, owner text);
CREATE INDEX accounts_case ON accounts ((CASE id WHEN owner THEN 1 ELSE 0 END));
