INSERT INTO job_archive (id, queue_id, state, args, finished_at)
    VALUES (100, 1, 'succeeded', '{}', '2024-01-01 00:00+00');
