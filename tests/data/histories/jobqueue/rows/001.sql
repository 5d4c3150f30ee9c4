INSERT INTO queues (name, created_at) VALUES ('billing.email', '2024-01-02 10:00+00'),
    ('reports', '2024-01-03 11:00+00');
