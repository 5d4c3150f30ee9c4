-- expect: loads
-- apply exits: 3
-- apply says: public.Sleeper65 (through public.Sleeper65_v): dynamic SQL (EXECUTE)
-- A function whose quoted name keeps capitals: the check looked the plan's definitions up
-- by a lowercased name, found neither "Sleeper65" nor its helper, took them for built-ins
-- and let the default's new column run the body on the target.
CREATE FUNCTION "Sleeper65_v"() RETURNS int VOLATILE LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch @CANARY_DIR@/quoted''';
  END IF;
  RETURN 1;
END $$;
CREATE FUNCTION "Sleeper65"() RETURNS int IMMUTABLE LANGUAGE sql AS $$ SELECT "Sleeper65_v"() $$;
CREATE TABLE accounts (id int PRIMARY KEY, owner text, b int DEFAULT "Sleeper65"());
