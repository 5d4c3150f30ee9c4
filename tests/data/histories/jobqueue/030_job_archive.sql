CREATE TABLE job_archive (
    id bigint PRIMARY KEY,
    queue_id integer NOT NULL,
    state job_state NOT NULL,
    args jsonb NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT now()
);
