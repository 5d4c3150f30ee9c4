-- expect: refused
-- A DO block that runs a command.
CREATE TABLE t (a int);
DO $$ BEGIN EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch @CANARY_DIR@/do_block'''; END $$;
