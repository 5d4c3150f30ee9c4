INSERT INTO steps (run_id, name, position, status, attempt, started_at)
    VALUES (2, 'extract', 1, 'running', 2, '2024-01-03 03:01+00');
