ALTER TABLE run_steps DROP CONSTRAINT steps_status_check,
    ADD CONSTRAINT steps_status_check
        CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'skipped')
               AND (status <> 'running' OR started_at IS NOT NULL));
