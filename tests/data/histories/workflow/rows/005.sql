INSERT INTO runs (workflow_id, status, input, started_at, finished_at) VALUES
    ('00000000-0000-4000-8000-000000000001', 'succeeded', '{"day": "2024-01-01"}',
     '2024-01-02 03:00+00', '2024-01-02 03:10+00'),
    ('00000000-0000-4000-8000-000000000001', 'running', '{}', '2024-01-03 03:00+00', NULL),
    ('00000000-0000-4000-8000-000000000002', 'pending', '{}', NULL, NULL);
INSERT INTO steps (run_id, name, position, status, output) VALUES
    (1, 'extract', 1, 'succeeded', '{"rows": 10}'), (1, 'load', 2, 'succeeded', NULL),
    (2, 'extract', 1, 'pending', NULL);
