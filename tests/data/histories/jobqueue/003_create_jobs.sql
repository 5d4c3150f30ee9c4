CREATE TABLE jobs (
    id bigserial PRIMARY KEY,
    queue_id integer NOT NULL REFERENCES queues (id),
    state job_state NOT NULL DEFAULT 'queued',
    payload jsonb NOT NULL DEFAULT '{}',
    run_at timestamptz NOT NULL DEFAULT now(),
    attempts integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);
