-- expect: loads
-- apply exits: 3
-- apply says: public.chk59 (through public.chk59_v): dynamic SQL (EXECUTE), which constraint owner_ok on table accounts calls
-- target: CREATE FUNCTION chk59(text) RETURNS boolean IMMUTABLE LANGUAGE sql AS $$ SELECT true $$;
-- target: ALTER TABLE accounts ADD CONSTRAINT owner_ok CHECK (chk59(owner)) NOT VALID;
-- A CHECK added NOT VALID on the target; the schema declares it valid and gives its
-- function a new body. VALIDATE CONSTRAINT names no function, and evaluates the new body
-- for every row.
CREATE FUNCTION chk59_v(text) RETURNS boolean VOLATILE LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch @CANARY_DIR@/validate''';
  END IF;
  RETURN true;
END $$;
CREATE FUNCTION chk59(text) RETURNS boolean IMMUTABLE LANGUAGE sql AS $$ SELECT chk59_v($1) $$;
CREATE TABLE accounts (id int PRIMARY KEY, owner text, CONSTRAINT owner_ok CHECK (chk59(owner)));
