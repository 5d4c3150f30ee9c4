CREATE INDEX job_events_job ON job_events (job_id, at);
