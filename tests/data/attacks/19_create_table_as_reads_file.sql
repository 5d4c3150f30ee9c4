-- expect: refused
CREATE TABLE leak AS SELECT pg_read_file('@CANARY_FILE@') AS contents;
