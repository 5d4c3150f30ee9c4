"""Lockplane's state tables on SQLite: tables prefixed ``_lockplane_`` next to the
application's (one attached database, no schemas)."""

HISTORY_DDL = """
CREATE TABLE IF NOT EXISTS _lockplane_migrations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    plan_id TEXT NOT NULL,
    started_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    finished_at TEXT,
    source_hash TEXT NOT NULL,
    target_hash TEXT,
    hash_after TEXT,
    intermediate_hash TEXT,
    steps_total INTEGER NOT NULL,
    steps_done INTEGER NOT NULL DEFAULT 0,
    plan TEXT NOT NULL,
    result TEXT NOT NULL DEFAULT 'running',
    error TEXT,
    applied_by TEXT
)
"""

BACKFILLS_DDL = """
CREATE TABLE IF NOT EXISTS _lockplane_backfills (
    id TEXT NOT NULL,
    chunk INTEGER NOT NULL,
    chunks INTEGER NOT NULL,
    table_name TEXT NOT NULL,
    spec TEXT NOT NULL,
    lower_bound TEXT,
    upper_bound TEXT,
    cursor TEXT,
    status TEXT NOT NULL DEFAULT 'pending',
    rows_scanned INTEGER NOT NULL DEFAULT 0,
    rows_updated INTEGER NOT NULL DEFAULT 0,
    batches INTEGER NOT NULL DEFAULT 0,
    batch_size INTEGER,
    rows_estimate INTEGER,
    error TEXT,
    started_by TEXT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    finished_at TEXT,
    PRIMARY KEY (id, chunk)
)
"""

# Multi-phase progress (one active migration per table) and drift memory.
STATE_DDL: dict[str, list[str]] = {
    "phases": [
        """CREATE TABLE IF NOT EXISTS _lockplane_phases (
    migration_id TEXT PRIMARY KEY,
    table_key TEXT NOT NULL,
    operation TEXT NOT NULL,
    description TEXT NOT NULL,
    total_phases INTEGER NOT NULL,
    completed_phases INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'active',
    plan TEXT NOT NULL,
    events TEXT NOT NULL DEFAULT '[]',
    started_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)""",
        """CREATE UNIQUE INDEX IF NOT EXISTS _lockplane_phases_one_active_per_table
    ON _lockplane_phases (table_key) WHERE status = 'active'""",
    ],
    "drift_state": ["""
CREATE TABLE IF NOT EXISTS _lockplane_drift_state (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    items TEXT NOT NULL DEFAULT '[]',
    environment TEXT,
    expires_at TEXT,
    reason TEXT,
    who TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (kind, name)
)
"""],
}
