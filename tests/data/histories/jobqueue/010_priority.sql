ALTER TABLE jobs ADD COLUMN priority smallint NOT NULL DEFAULT 0;
DROP INDEX jobs_fetch;
CREATE INDEX jobs_fetch ON jobs (queue_id, priority DESC, run_at) WHERE state = 'queued';
