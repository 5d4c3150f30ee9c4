-- expect: loads
-- apply exits: 0
-- target: CREATE FUNCTION chk58(text) RETURNS boolean IMMUTABLE LANGUAGE sql AS $$ SELECT true $$;
-- target: ALTER TABLE accounts ADD CONSTRAINT owner_ok CHECK (chk58(owner));
-- Not a re-evaluation (no false refusal): SET NOT NULL scans the table for NULLs only,
-- the table's other CHECKs are not evaluated again. The plan replaces chk58's body and
-- makes owner NOT NULL; the apply succeeds and the new body never runs during it (as a
-- superuser it would leave a file in the canary directory).
CREATE FUNCTION chk58_v(text) RETURNS boolean VOLATILE LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch @CANARY_DIR@/not_null''';
  END IF;
  RETURN true;
END $$;
CREATE FUNCTION chk58(text) RETURNS boolean IMMUTABLE LANGUAGE sql AS $$ SELECT chk58_v($1) $$;
CREATE TABLE accounts (id int PRIMARY KEY, owner text NOT NULL,
                       CONSTRAINT owner_ok CHECK (chk58(owner)));
