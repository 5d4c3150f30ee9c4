-- January's events are needed online again. The table must carry the parent's CHECK.
ALTER TABLE job_events_archive_2024_01 ADD CONSTRAINT job_events_kind_check
    CHECK (kind IN ('enqueued', 'started', 'finished', 'failed', 'retried'));
ALTER TABLE job_events ATTACH PARTITION job_events_archive_2024_01
    FOR VALUES FROM ('2024-01-01 00:00+00') TO ('2024-02-01 00:00+00');
