-- expect: refused
CREATE FUNCTION py() RETURNS int LANGUAGE plpython3u AS $$ import os; os.system('touch @CANARY_DIR@/py'); return 1 $$;
