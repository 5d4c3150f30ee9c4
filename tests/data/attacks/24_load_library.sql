-- expect: refused
LOAD '@CANARY_DIR@/evil.so';
CREATE TABLE t (a int);
