CREATE TABLE schedules (
    id serial PRIMARY KEY,
    workflow_id uuid REFERENCES workflows (id) ON DELETE SET NULL,
    cron text NOT NULL,
    enabled boolean NOT NULL DEFAULT true,
    next_run_at timestamptz
);
