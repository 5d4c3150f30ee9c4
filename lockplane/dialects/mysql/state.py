"""Lockplane's state tables on MySQL / MariaDB: tables prefixed ``_lockplane_`` in the
target database (a MySQL schema is a database: there is no namespace of our own to
create). DDL commits implicitly here, so history rows are written in their own
statements, not in the DDL's transaction. Times are UTC."""

HISTORY_DDL = """
CREATE TABLE IF NOT EXISTS `_lockplane_migrations` (
    id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
    plan_id varchar(255) NOT NULL,
    started_at datetime(6) NOT NULL DEFAULT (UTC_TIMESTAMP(6)),
    finished_at datetime(6),
    source_hash varchar(255) NOT NULL,
    target_hash varchar(255),
    hash_after varchar(255),
    intermediate_hash varchar(255),
    steps_total integer NOT NULL,
    steps_done integer NOT NULL DEFAULT 0,
    plan longtext NOT NULL,
    result varchar(32) NOT NULL DEFAULT 'running',
    error text,
    applied_by text,
    KEY plan_id (plan_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
"""

BACKFILLS_DDL = """
CREATE TABLE IF NOT EXISTS `_lockplane_backfills` (
    id varchar(255) NOT NULL,
    chunk integer NOT NULL,
    chunks integer NOT NULL,
    table_name text NOT NULL,
    spec longtext NOT NULL,
    lower_bound longtext,
    upper_bound longtext,
    `cursor` longtext,
    status varchar(32) NOT NULL DEFAULT 'pending',
    rows_scanned bigint NOT NULL DEFAULT 0,
    rows_updated bigint NOT NULL DEFAULT 0,
    batches bigint NOT NULL DEFAULT 0,
    batch_size integer,
    rows_estimate bigint,
    error text,
    started_by text,
    created_at datetime(6) NOT NULL DEFAULT (UTC_TIMESTAMP(6)),
    updated_at datetime(6) NOT NULL DEFAULT (UTC_TIMESTAMP(6)),
    finished_at datetime(6),
    PRIMARY KEY (id, chunk)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
"""

# Multi-phase progress and drift memory. There are no partial indexes: "one active
# migration per table" is a unique key on a generated column that is NULL unless the
# migration is active (NULLs never collide). Keys are varchar (a TEXT key needs a prefix
# length, which would make long names collide).
STATE_DDL: dict[str, list[str]] = {
    "phases": ["""
CREATE TABLE IF NOT EXISTS `_lockplane_phases` (
    migration_id varchar(512) NOT NULL PRIMARY KEY,
    table_key varchar(512) NOT NULL,
    operation varchar(64) NOT NULL,
    description text NOT NULL,
    total_phases integer NOT NULL,
    completed_phases integer NOT NULL DEFAULT 0,
    status varchar(32) NOT NULL DEFAULT 'active',
    plan longtext NOT NULL,
    events longtext NOT NULL DEFAULT ('[]'),
    started_at datetime(6) NOT NULL DEFAULT (UTC_TIMESTAMP(6)),
    updated_at datetime(6) NOT NULL DEFAULT (UTC_TIMESTAMP(6)),
    active_table_key varchar(512)
        AS (CASE WHEN status = 'active' THEN table_key END) STORED,
    UNIQUE KEY one_active_per_table (active_table_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
"""],
    "drift_state": ["""
CREATE TABLE IF NOT EXISTS `_lockplane_drift_state` (
    kind varchar(16) NOT NULL,
    name varchar(512) NOT NULL,
    status varchar(32) NOT NULL,
    fingerprint varchar(255) NOT NULL,
    items longtext NOT NULL DEFAULT ('[]'),
    environment text,
    expires_at datetime(6),
    reason text,
    who text,
    updated_at datetime(6) NOT NULL DEFAULT (UTC_TIMESTAMP(6)),
    PRIMARY KEY (kind, name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
"""],
}
