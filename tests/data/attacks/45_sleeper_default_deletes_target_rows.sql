-- expect: loads
-- apply exits: 3
-- The same sleeper without any privileged call: it deletes the target's rows.
CREATE FUNCTION sleeper_rows_v() RETURNS int VOLATILE LANGUAGE plpgsql AS $$
BEGIN
  IF current_database() NOT LIKE 'lockplane%' THEN
    DELETE FROM public.accounts;
  END IF;
  RETURN 1;
END $$;
CREATE FUNCTION sleeper_rows() RETURNS int IMMUTABLE LANGUAGE sql AS $$ SELECT sleeper_rows_v() $$;
CREATE TABLE accounts (id int PRIMARY KEY, owner text, b int DEFAULT sleeper_rows());
