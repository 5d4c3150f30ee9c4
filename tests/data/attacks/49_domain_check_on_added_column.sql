-- expect: loads
-- apply exits: 3
-- A domain's CHECK runs for every value a column of that type gets: adding one to a table
-- with rows checks its default on the target, through a function that reads a file into
-- a failing cast when it runs as a superuser (the error would print the file).
CREATE FUNCTION chk_v(int) RETURNS boolean VOLATILE LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    RETURN pg_read_file('@CANARY_FILE@')::int = $1;
  END IF;
  RETURN true;
END $$;
CREATE FUNCTION chk(int) RETURNS boolean IMMUTABLE LANGUAGE sql AS $$ SELECT chk_v($1) $$;
CREATE DOMAIN d AS int CHECK (chk(VALUE));
CREATE TABLE accounts (id int PRIMARY KEY, owner text, b d DEFAULT 1);
