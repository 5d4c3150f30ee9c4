ALTER TABLE jobs RENAME COLUMN locked_by TO worker;
CREATE OR REPLACE FUNCTION fetch_job(q integer, worker text) RETURNS SETOF jobs LANGUAGE sql AS $$
    UPDATE jobs SET state = 'running', worker = fetch_job.worker, locked_at = now()
     WHERE id = (SELECT id FROM jobs
                  WHERE queue_id = q AND state = 'queued' AND run_at <= now()
                  ORDER BY priority DESC, run_at
                  LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING *
$$;
