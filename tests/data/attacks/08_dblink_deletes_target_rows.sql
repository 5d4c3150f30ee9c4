-- expect: refused
-- dblink connects back to the target with the loader's own trust and deletes its rows.
CREATE EXTENSION dblink;
SELECT dblink_exec('dbname=@TARGET_DB@ user=postgres host=127.0.0.1', 'DELETE FROM accounts');
