-- expect: loads
-- apply exits: 3
-- apply says: public.chk57 (through public.chk57_v): dynamic SQL (EXECUTE)
-- target: CREATE FUNCTION chk57(text) RETURNS boolean IMMUTABLE LANGUAGE sql AS $$ SELECT true $$;
-- target: ALTER TABLE accounts ADD COLUMN code varchar(10) DEFAULT 'a' CONSTRAINT code_ok CHECK (chk57(code));
-- Widening varchar(10) to varchar(20) rewrites nothing (a safe step), yet PostgreSQL
-- checks the CHECK constraints over the retyped column again, for every row: the new
-- body of chk57 would run on the target. (Lockplane's step drops and adds the CHECK in
-- the same statement, so its own SQL names chk57 too; either way the step is read.)
CREATE FUNCTION chk57_v(text) RETURNS boolean VOLATILE LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch @CANARY_DIR@/recheck''';
  END IF;
  RETURN true;
END $$;
CREATE FUNCTION chk57(text) RETURNS boolean IMMUTABLE LANGUAGE sql AS $$ SELECT chk57_v($1) $$;
CREATE TABLE accounts (id int PRIMARY KEY, owner text,
                       code varchar(20) DEFAULT 'a' CONSTRAINT code_ok CHECK (chk57(code)));
