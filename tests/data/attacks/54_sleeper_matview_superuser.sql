-- expect: loads
-- apply exits: 3
-- A materialized view's query runs when it is created with data; its function acts only
-- where it runs as a superuser (never in the sandbox; on a shadow or the target, yes).
CREATE FUNCTION mv_sleeper_v() RETURNS int VOLATILE LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch @CANARY_DIR@/mv_sleeper''';
  END IF;
  RETURN 1;
END $$;
CREATE TABLE accounts (id int PRIMARY KEY, owner text);
CREATE MATERIALIZED VIEW mv AS SELECT mv_sleeper_v() AS x;
