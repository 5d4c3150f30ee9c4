CREATE FUNCTION archive_jobs(older_than interval) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    WITH moved AS (
        DELETE FROM jobs
         WHERE state IN ('succeeded', 'failed', 'cancelled')
           AND created_at < now() - older_than
        RETURNING id, queue_id, state, args)
    INSERT INTO job_archive (id, queue_id, state, args) SELECT * FROM moved;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
