-- expect: refused
CREATE TABLE t (a int);
EXPLAIN ANALYZE SELECT pg_read_file('@CANARY_FILE@');
