-- expect: loads
-- apply exits: 3
-- apply with: --safety permissive --skip-shadow
-- apply says: public.flag71 (through public.same71 -> public.touch71): dynamic SQL (EXECUTE)
-- target: CREATE FUNCTION same71(int, text) RETURNS bool LANGUAGE sql IMMUTABLE AS $$ SELECT $1::text = $2 $$;
-- target: CREATE OPERATOR = (LEFTARG = int, RIGHTARG = text, FUNCTION = same71);
-- As 70, from inside a PL/pgSQL function an index calls: "id IN (owner)" runs the
-- user's "=" (integer, text). PL/pgSQL expressions were only scanned for tokens, where
-- IN, CASE or BETWEEN name no operator; they are now parsed as SQL too. On e7ce489
-- apply --skip-shadow touched the canary (exit 0).
CREATE FUNCTION touch71() RETURNS bool LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch @CANARY_DIR@/plpgsql_in_operator''';
  END IF;
  RETURN true;
END $$;
CREATE FUNCTION same71(int, text) RETURNS bool LANGUAGE sql IMMUTABLE AS $$ SELECT touch71() AND $1::text = $2 $$;
CREATE OPERATOR = (LEFTARG = int, RIGHTARG = text, FUNCTION = same71);
CREATE FUNCTION flag71(id int, owner text) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  RETURN CASE WHEN id IN (owner) THEN 1 ELSE 0 END;
END $$;
CREATE TABLE accounts (id int PRIMARY KEY, owner text);
CREATE INDEX accounts_flag ON accounts (flag71(id, owner));
