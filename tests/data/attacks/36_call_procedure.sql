-- expect: refused
CREATE PROCEDURE p() LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch @CANARY_DIR@/call'''; END $$;
CALL p();
