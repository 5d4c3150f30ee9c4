ALTER TABLE runs ADD COLUMN duration interval
    GENERATED ALWAYS AS (finished_at - started_at) STORED;
