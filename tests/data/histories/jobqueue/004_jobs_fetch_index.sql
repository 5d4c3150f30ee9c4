-- The worker's poll: oldest runnable job of a queue, FOR UPDATE SKIP LOCKED.
CREATE INDEX jobs_fetch ON jobs (queue_id, run_at) WHERE state = 'queued';
