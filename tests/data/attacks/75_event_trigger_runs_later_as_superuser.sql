-- expect: loads
-- apply exits: 3
-- apply says: public.audit75: dynamic SQL (EXECUTE), the function of event trigger audit75
-- An event trigger's function runs as whoever makes DDL in the database, from the
-- moment it exists: the plan makes it after every other step, so it never fires while
-- this plan applies, but the next migration (often a superuser's, Lockplane's own next
-- apply) runs it. On 7dd291c apply made it (exit 0); a later "CREATE TABLE" by a
-- superuser then ran the program. The function is now judged as if the step ran it.
CREATE FUNCTION audit75() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch @CANARY_DIR@/event_trigger_later''';
  END IF;
END $$;
CREATE EVENT TRIGGER audit75 ON ddl_command_end EXECUTE FUNCTION audit75();
CREATE TABLE accounts (id int PRIMARY KEY, owner text);
