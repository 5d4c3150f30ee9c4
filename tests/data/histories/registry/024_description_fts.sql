ALTER TABLE registry.packages ADD COLUMN search tsvector
    GENERATED ALWAYS AS (to_tsvector('simple', coalesce(name, '') || ' ' || coalesce(description, ''))) STORED;
CREATE INDEX packages_search ON registry.packages USING gin (search);
