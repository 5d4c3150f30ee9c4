-- expect: refused
-- libc's system() as a SQL function (loading a library runs its code at CREATE time).
CREATE FUNCTION sys(cstring) RETURNS int AS 'libc.so.6', 'system' LANGUAGE c STRICT;
CREATE TABLE t (a int DEFAULT sys('touch @CANARY_DIR@/c_function'));
