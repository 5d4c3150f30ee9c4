-- expect: loads
-- apply exits: 3
-- apply says: public.key64 (through public.key64_v): dynamic SQL (EXECUTE), which the partition key of table events calls
-- target: CREATE FUNCTION key64(int) RETURNS int IMMUTABLE LANGUAGE sql AS $$ SELECT $1 $$;
-- target: CREATE TABLE events (id int) PARTITION BY RANGE (key64(id));
-- target: CREATE TABLE events_other PARTITION OF events DEFAULT; INSERT INTO events VALUES (50);
-- A new partition of a table with a default partition: CREATE TABLE ... PARTITION OF
-- scans the default partition's rows through the partition key, which calls key64, to
-- which the plan gives a new body (the new table itself has no rows).
CREATE FUNCTION key64_v(int) RETURNS int VOLATILE LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch @CANARY_DIR@/partition_of''';
  END IF;
  RETURN $1;
END $$;
CREATE FUNCTION key64(int) RETURNS int IMMUTABLE LANGUAGE sql AS $$ SELECT key64_v($1) $$;
CREATE TABLE accounts (id int PRIMARY KEY, owner text);
CREATE TABLE events (id int) PARTITION BY RANGE (key64(id));
CREATE TABLE events_other PARTITION OF events DEFAULT;
CREATE TABLE events_1 PARTITION OF events FOR VALUES FROM (0) TO (10);
