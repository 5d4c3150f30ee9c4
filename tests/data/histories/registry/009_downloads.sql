CREATE TABLE registry.downloads (
    version_id integer NOT NULL,
    day date NOT NULL,
    count bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (version_id, day)
) PARTITION BY RANGE (day);
CREATE TABLE registry.downloads_2024 PARTITION OF registry.downloads
    FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
