ALTER TABLE job_events ADD CONSTRAINT job_events_kind_check
    CHECK (kind IN ('enqueued', 'started', 'finished', 'failed', 'retried'));
