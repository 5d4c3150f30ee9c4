-- expect: refused
CREATE TABLE t (a int);
DROP DATABASE @VICTIM_DB@;
