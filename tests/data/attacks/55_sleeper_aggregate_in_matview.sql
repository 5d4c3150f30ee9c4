-- expect: loads
-- apply exits: 3
-- An aggregate's state function runs for every row its query reads: a materialized view
-- created with data on the target runs it there, with the applying user's privileges.
CREATE FUNCTION agg_step(int, int) RETURNS int VOLATILE LANGUAGE plpgsql AS $$
BEGIN
  IF current_database() NOT LIKE 'lockplane%' THEN
    EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch @CANARY_DIR@/aggregate''';
  END IF;
  RETURN coalesce($1, 0) + $2;
END $$;
CREATE AGGREGATE sneaky(int) (SFUNC = agg_step, STYPE = int);
CREATE TABLE accounts (id int PRIMARY KEY, owner text);
CREATE MATERIALIZED VIEW mv AS SELECT sneaky(id) AS n FROM accounts;
