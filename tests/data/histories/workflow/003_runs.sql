CREATE TABLE runs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workflow_id uuid NOT NULL REFERENCES workflows (id),
    status text NOT NULL DEFAULT 'pending',
    input jsonb NOT NULL DEFAULT '{}',
    started_at timestamptz,
    finished_at timestamptz
);
CREATE INDEX runs_workflow ON runs (workflow_id);
