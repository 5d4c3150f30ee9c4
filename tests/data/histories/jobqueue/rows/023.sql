INSERT INTO jobs (queue_id, state, args, unique_key, locked_by, locked_at) VALUES
    (3, 'retrying', '{"n": 1}', 'digest-2024-03', NULL, NULL),
    (3, 'running', '{"n": 2}', 'digest-2024-04', 'w2', '2024-04-01 00:00+00');
