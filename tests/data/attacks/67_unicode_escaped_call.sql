-- expect: loads
-- apply exits: 3
-- apply says: public.sleeper67 (through public.sleeper67_v): dynamic SQL (EXECUTE)
-- A PL/pgSQL body calls its helper through a Unicode-escaped identifier (U&"\0073..." is
-- "s..."). The server resolves it to sleeper67_v; the check read the name as written, found
-- no function by it, and took it for a harmless built-in, so the new column's default ran
-- the helper on the target. A call the check cannot resolve is refused, whatever the
-- spelling that hid it. (PL/pgSQL expressions are now also parsed as SQL, which decodes
-- the name: the helper itself is found and judged.)
CREATE FUNCTION sleeper67_v() RETURNS int VOLATILE LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch @CANARY_DIR@/uescape''';
  END IF;
  RETURN 1;
END $$;
CREATE FUNCTION sleeper67() RETURNS int VOLATILE LANGUAGE plpgsql AS $$
BEGIN
  RETURN U&"\0073leeper67_v"();
END $$;
CREATE TABLE accounts (id int PRIMARY KEY, owner text, b int DEFAULT sleeper67());
