CREATE FUNCTION fetch_job(q integer, worker text) RETURNS SETOF jobs LANGUAGE sql AS $$
    UPDATE jobs SET state = 'running', locked_by = worker, locked_at = now()
     WHERE id = (SELECT id FROM jobs
                  WHERE queue_id = q AND state = 'queued' AND run_at <= now()
                  ORDER BY priority DESC, run_at
                  LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING *
$$;
