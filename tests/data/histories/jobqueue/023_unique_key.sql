ALTER TABLE jobs ADD COLUMN unique_key text;
CREATE UNIQUE INDEX jobs_unique_key ON jobs (queue_id, unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('queued', 'retrying', 'running');
