ALTER TABLE steps ADD COLUMN started_at timestamptz, ADD COLUMN finished_at timestamptz;
