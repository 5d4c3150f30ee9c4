-- expect: refused
CREATE TABLE t (a int);
ALTER SYSTEM SET log_min_duration_statement = 0;
