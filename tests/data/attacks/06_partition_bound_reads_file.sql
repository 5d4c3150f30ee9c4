-- expect: failed
-- Partition bounds are evaluated when the partition is created.
CREATE TABLE p (a int) PARTITION BY LIST (a);
CREATE TABLE p1 PARTITION OF p FOR VALUES IN ((pg_read_file('@CANARY_FILE@'))::int);
