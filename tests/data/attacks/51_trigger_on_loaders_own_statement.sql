-- expect: failed
-- A trigger fires on an UPDATE the file cannot write but a later ALTER makes (a rewrite
-- fires no triggers; a domain default does not either): the default runs, and fails.
CREATE FUNCTION trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch @CANARY_DIR@/trigger'''; RETURN NEW; END $$;
CREATE TABLE t (a int);
CREATE TRIGGER t_trg BEFORE INSERT OR UPDATE ON t FOR EACH ROW EXECUTE FUNCTION trg();
CREATE FUNCTION ins() RETURNS int IMMUTABLE LANGUAGE plpgsql AS $$
BEGIN INSERT INTO t VALUES (1); RETURN 1; END $$;
CREATE TABLE u (a int);
ALTER TABLE u ADD COLUMN b int DEFAULT ins();
