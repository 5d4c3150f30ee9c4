ALTER TABLE threads ADD COLUMN title_search tsvector
    GENERATED ALWAYS AS (to_tsvector('english', title)) STORED;
CREATE INDEX threads_title_search ON threads USING gin (title_search);
