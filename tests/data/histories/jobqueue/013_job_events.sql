CREATE TABLE job_events (
    job_id bigint NOT NULL,
    at timestamptz NOT NULL,
    kind text NOT NULL,
    detail jsonb
) PARTITION BY RANGE (at);

CREATE TABLE job_events_2024_01 PARTITION OF job_events
    FOR VALUES FROM ('2024-01-01 00:00+00') TO ('2024-02-01 00:00+00');
CREATE TABLE job_events_2024_02 PARTITION OF job_events
    FOR VALUES FROM ('2024-02-01 00:00+00') TO ('2024-03-01 00:00+00');
