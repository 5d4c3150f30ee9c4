-- expect: refused
CREATE TABLE t (a int);
WITH gone AS (DELETE FROM t RETURNING *) SELECT count(*) FROM gone;
