UPDATE runs SET finished_at = coalesce(finished_at, started_at, now())
 WHERE is_terminal(status) AND finished_at IS NULL;
ALTER TABLE runs ADD CONSTRAINT runs_finished_check
    CHECK (NOT is_terminal(status) OR finished_at IS NOT NULL) NOT VALID;
ALTER TABLE runs VALIDATE CONSTRAINT runs_finished_check;
