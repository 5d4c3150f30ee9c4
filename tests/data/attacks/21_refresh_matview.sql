-- expect: refused
CREATE MATERIALIZED VIEW leak AS SELECT pg_read_file('@CANARY_FILE@')::int AS contents WITH NO DATA;
REFRESH MATERIALIZED VIEW leak;
