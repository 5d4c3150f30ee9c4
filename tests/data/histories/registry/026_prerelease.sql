ALTER TABLE registry.versions ADD COLUMN prerelease boolean
    GENERATED ALWAYS AS (version LIKE '%-%') STORED;
