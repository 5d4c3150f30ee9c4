-- expect: loads
-- apply exits: 3 (it would run pg_read_file on the target: privileged-function)
-- The view is schema; its rows are data: it is created WITH NO DATA, the query never runs.
-- (The target's table is declared, so that apply --schema has nothing to drop.)
CREATE TABLE accounts (id int PRIMARY KEY, owner text);
CREATE MATERIALIZED VIEW leak AS SELECT pg_read_file('@CANARY_FILE@')::int AS contents;
