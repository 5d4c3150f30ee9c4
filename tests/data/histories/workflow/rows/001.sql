INSERT INTO workflows (id, name, definition) VALUES
    ('00000000-0000-4000-8000-000000000001', 'nightly-etl', '{"steps": ["extract", "load"]}'),
    ('00000000-0000-4000-8000-000000000002', 'reindex', '{"steps": ["reindex"]}');
