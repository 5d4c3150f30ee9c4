-- expect: refused
SET SESSION AUTHORIZATION postgres;
CREATE TABLE t (a int);
