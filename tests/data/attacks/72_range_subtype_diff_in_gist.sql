-- expect: loads
-- apply exits: 3
-- apply with: --safety permissive
-- apply says: public.diff72 (through public.touch72): dynamic SQL (EXECUTE), the subtype_diff function of range type span72
-- target: INSERT INTO accounts SELECT g, 'filler' FROM generate_series(3, 3000) g;
-- A range type's subtype_diff runs when its values go into a GiST index (range_ops'
-- penalty and split functions call it); no expression of the plan names it. The plan
-- adds a range column, fills it, and builds a GiST index on it: on e7ce489 apply
-- passed the check and the shadow validation's index build (as the applying superuser,
-- on the target's server) touched the canary.
CREATE FUNCTION touch72() RETURNS float8 LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch @CANARY_DIR@/subtype_diff''';
  END IF;
  RETURN 0;
END $$;
CREATE FUNCTION diff72(a int, b int) RETURNS float8 LANGUAGE sql IMMUTABLE AS $$ SELECT touch72() + (a - b) $$;
CREATE TYPE span72 AS RANGE (subtype = int, subtype_diff = diff72);
CREATE TABLE accounts (id int PRIMARY KEY, owner text,
                       span span72 DEFAULT span72(1, (random() * 1000)::int + 2));
CREATE INDEX accounts_span ON accounts USING gist (span);
