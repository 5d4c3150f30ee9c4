ALTER TABLE runs ADD CONSTRAINT runs_dates_check
    CHECK (finished_at IS NULL OR finished_at >= started_at);
