ALTER TABLE job_events DETACH PARTITION job_events_2024_01;
ALTER TABLE job_events_2024_01 RENAME TO job_events_archive_2024_01;
