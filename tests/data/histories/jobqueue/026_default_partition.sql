CREATE TABLE job_events_default PARTITION OF job_events DEFAULT;
