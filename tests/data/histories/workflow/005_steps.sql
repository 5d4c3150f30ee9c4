CREATE TABLE steps (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id bigint NOT NULL REFERENCES runs (id),
    name slug NOT NULL,
    position integer NOT NULL,
    status text NOT NULL DEFAULT 'pending',
    output jsonb,
    UNIQUE (run_id, position)
);
