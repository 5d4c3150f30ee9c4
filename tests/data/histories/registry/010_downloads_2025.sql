CREATE TABLE registry.downloads_2025 PARTITION OF registry.downloads
    FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
