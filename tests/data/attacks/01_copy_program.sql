-- expect: refused
-- A shell command through COPY ... TO PROGRAM.
CREATE TABLE t (a int);
COPY (SELECT 1) TO PROGRAM 'touch @CANARY_DIR@/copy_program';
