ALTER TABLE steps DROP CONSTRAINT steps_run_id_fkey;
ALTER TABLE steps ADD CONSTRAINT steps_run_id_fkey
    FOREIGN KEY (run_id) REFERENCES runs (id) ON DELETE CASCADE;
