-- expect: refused
CREATE TABLE t (a int);
GRANT pg_execute_server_program TO PUBLIC;
