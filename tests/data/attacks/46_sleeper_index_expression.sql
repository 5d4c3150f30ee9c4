-- expect: loads
-- apply exits: 3
-- An index expression is evaluated for every existing row when the index is built (as
-- the table's owner).
CREATE FUNCTION idx_sleeper_v(int) RETURNS int VOLATILE LANGUAGE plpgsql AS $$
BEGIN
  IF current_database() NOT LIKE 'lockplane%' THEN
    EXECUTE 'CREATE ROLE lockplane_attack_index SUPERUSER';
  END IF;
  RETURN $1;
END $$;
CREATE FUNCTION idx_sleeper(int) RETURNS int IMMUTABLE LANGUAGE sql AS $$ SELECT idx_sleeper_v($1) $$;
CREATE TABLE accounts (id int PRIMARY KEY, owner text);
CREATE INDEX accounts_x ON accounts (idx_sleeper(id));
