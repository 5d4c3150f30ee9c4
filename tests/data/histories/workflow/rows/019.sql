INSERT INTO schedules (workflow_id, cron, enabled) VALUES
    ('00000000-0000-4000-8000-000000000001', '0 3 * * * TZ=Europe/Paris', true),
    ('00000000-0000-4000-8000-000000000002', '0 4 * * 0', false);
