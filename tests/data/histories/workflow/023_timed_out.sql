CREATE OR REPLACE FUNCTION is_terminal(s text) RETURNS boolean
    LANGUAGE sql IMMUTABLE
    RETURN s IN ('succeeded', 'failed', 'cancelled', 'timed_out');
ALTER TABLE runs DROP CONSTRAINT runs_status_check,
    ADD CONSTRAINT runs_status_check
        CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'cancelled', 'timed_out'));
