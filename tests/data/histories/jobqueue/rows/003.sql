INSERT INTO jobs (queue_id, state, payload, run_at, attempts, created_at) VALUES
    (1, 'queued', '{"to": "a@example.com"}', '2024-01-05 00:00+00', 0, '2024-01-05 00:00+00'),
    (1, 'done', '{"to": "b@example.com"}', '2024-01-05 00:00+00', 1, '2024-01-05 00:00+00'),
    (2, 'running', '{}', '2024-01-06 00:00+00', 2, '2024-01-06 00:00+00');
