-- expect: loads
-- apply exits: 3
-- apply says: public.key60 (through public.key60_v): dynamic SQL (EXECUTE), which the partition key of table events calls
-- target: CREATE FUNCTION key60(int) RETURNS int IMMUTABLE LANGUAGE sql AS $$ SELECT $1 $$;
-- target: CREATE TABLE events (id int, at int) PARTITION BY RANGE (key60(id));
-- target: CREATE TABLE events_1 (id int, at int); INSERT INTO events_1 VALUES (1, 1), (2, 2);
-- ATTACH PARTITION checks the new partition's rows against its bound through the parent's
-- partition key, an expression that calls key60: the plan gives key60 a new body, then
-- attaches a table with rows.
CREATE FUNCTION key60_v(int) RETURNS int VOLATILE LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch @CANARY_DIR@/attach''';
  END IF;
  RETURN $1;
END $$;
CREATE FUNCTION key60(int) RETURNS int IMMUTABLE LANGUAGE sql AS $$ SELECT key60_v($1) $$;
CREATE TABLE accounts (id int PRIMARY KEY, owner text);
CREATE TABLE events (id int, at int) PARTITION BY RANGE (key60(id));
CREATE TABLE events_1 PARTITION OF events FOR VALUES FROM (0) TO (10);
