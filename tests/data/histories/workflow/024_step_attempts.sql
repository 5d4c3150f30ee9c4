ALTER TABLE steps ADD COLUMN attempt integer NOT NULL DEFAULT 1;
ALTER TABLE steps DROP CONSTRAINT steps_run_id_position_key;
ALTER TABLE steps ADD CONSTRAINT steps_run_id_position_attempt_key
    UNIQUE (run_id, position, attempt);
