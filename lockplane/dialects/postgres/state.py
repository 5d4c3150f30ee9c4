"""Lockplane's state tables on PostgreSQL: schema ``lockplane``, changed in the same
transaction as the DDL they record."""

HISTORY_DDL = """
CREATE SCHEMA IF NOT EXISTS lockplane;
CREATE TABLE IF NOT EXISTS lockplane.migrations (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    plan_id text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    source_hash text NOT NULL,
    target_hash text,
    hash_after text,
    intermediate_hash text,
    steps_total integer NOT NULL,
    steps_done integer NOT NULL DEFAULT 0,
    plan jsonb NOT NULL,
    result text NOT NULL DEFAULT 'running',
    error text,
    applied_by text
);
"""

BACKFILLS_DDL = """
CREATE SCHEMA IF NOT EXISTS lockplane;
CREATE TABLE IF NOT EXISTS lockplane.backfills (
    id text NOT NULL,
    chunk integer NOT NULL,
    chunks integer NOT NULL,
    table_name text NOT NULL,
    spec jsonb NOT NULL,
    lower_bound jsonb,
    upper_bound jsonb,
    cursor jsonb,
    status text NOT NULL DEFAULT 'pending',
    rows_scanned bigint NOT NULL DEFAULT 0,
    rows_updated bigint NOT NULL DEFAULT 0,
    batches bigint NOT NULL DEFAULT 0,
    batch_size integer,
    rows_estimate bigint,
    error text,
    started_by text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    PRIMARY KEY (id, chunk)
);
"""

# Multi-phase progress (one active migration per table) and drift memory.
STATE_DDL: dict[str, list[str]] = {
    "phases": ["""
CREATE SCHEMA IF NOT EXISTS lockplane;
CREATE TABLE IF NOT EXISTS lockplane.phases (
    migration_id text PRIMARY KEY,
    table_key text NOT NULL,
    operation text NOT NULL,
    description text NOT NULL,
    total_phases integer NOT NULL,
    completed_phases integer NOT NULL DEFAULT 0,
    status text NOT NULL DEFAULT 'active',
    plan jsonb NOT NULL,
    events jsonb NOT NULL DEFAULT '[]',
    started_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS phases_one_active_per_table
    ON lockplane.phases (table_key) WHERE status = 'active';
"""],
    "drift_state": ["""
CREATE SCHEMA IF NOT EXISTS lockplane;
CREATE TABLE IF NOT EXISTS lockplane.drift_state (
    kind text NOT NULL,
    name text NOT NULL,
    status text NOT NULL,
    fingerprint text NOT NULL,
    items jsonb NOT NULL DEFAULT '[]',
    environment text,
    expires_at timestamptz,
    reason text,
    who text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, name)
);
"""],
}
