-- expect: refused
SET ROLE postgres;
CREATE TABLE t (a int);
