INSERT INTO job_events VALUES (1, '2024-01-05 00:00:01+00', 'enqueued', NULL),
    (1, '2024-02-05 00:00:01+00', 'started', '{"worker": "w1"}'),
    (2, '2024-02-06 00:00:00+00', 'finished', NULL);
