ALTER TABLE jobs ADD COLUMN locked_by text, ADD COLUMN locked_at timestamptz;
CREATE INDEX jobs_running ON jobs (locked_at) WHERE state = 'running';
