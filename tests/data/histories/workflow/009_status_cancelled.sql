ALTER TABLE runs DROP CONSTRAINT runs_status_check,
    ADD CONSTRAINT runs_status_check
        CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'cancelled'));
