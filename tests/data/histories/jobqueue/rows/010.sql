INSERT INTO jobs (queue_id, state, payload, priority, last_error, attempts) VALUES
    (2, 'failed', '{"report": 7}', 5, 'timeout', 3),
    (1, 'cancelled', '{"to": "c@example.com"}', -1, NULL, 0);
