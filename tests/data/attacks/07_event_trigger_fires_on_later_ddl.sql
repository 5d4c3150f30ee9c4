-- expect: loads
-- apply exits: 3
-- apply says: public.on_ddl: dynamic SQL (EXECUTE), the function of event trigger grab
-- An event trigger that would run a command on every later statement of the file.
-- Applied, it would run it on every later DDL on the target, as whoever makes it (before
-- 7dd291c apply made it: exit 0, and the next DDL ran the program as a superuser).
-- (The target's table is declared, so that apply --schema has nothing to drop.)
CREATE TABLE accounts (id int PRIMARY KEY, owner text);
CREATE FUNCTION on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch @CANARY_DIR@/event_trigger''';
END $$;
CREATE EVENT TRIGGER grab ON ddl_command_start EXECUTE FUNCTION on_ddl();
ALTER EVENT TRIGGER grab ENABLE ALWAYS;
CREATE TABLE after_trigger (a int);
CREATE INDEX after_trigger_a ON after_trigger (a);
