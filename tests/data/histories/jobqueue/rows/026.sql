INSERT INTO job_events VALUES (4, '2024-03-03 00:00+00', 'retried', NULL),
    (5, '2023-12-31 23:00+00', 'enqueued', NULL);
