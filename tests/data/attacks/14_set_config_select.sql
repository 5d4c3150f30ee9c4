-- expect: refused
-- Not pg_dump's search_path line: another setting through set_config.
SELECT pg_catalog.set_config('log_statement', 'none', false);
CREATE TABLE t (a int);
