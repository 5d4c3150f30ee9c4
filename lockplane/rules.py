"""The safety catalogue: one stable rule id per risk, shared by plans and ``lockplane lint``.

A change kind reports what it finds as ``Finding(rule_id, message)``; ``lint`` reports
the same ids for hand-written SQL. The rule holds what does not depend on the case: its
default class, a title, the safer alternative, and the rules of other tools that flag
the same thing (Squawk, strong_migrations), so reviewers can map one to the other.

Ids are kebab-case and never renamed: ``-- lockplane-ignore: <id>`` comments and CI
configurations name them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .changes.base import Finding, Safety


@dataclass(frozen=True)
class Rule:
    id: str
    safety: Safety
    title: str
    safer: str = ""
    squawk: tuple[str, ...] = ()
    # lint reports it from SQL alone; False for rules only a schema diff can know
    lintable: bool = True
    # the multi-phase pattern that makes it safe (strict requires it)
    multi_phase_pattern: str | None = None
    # about locks (the lock-safe plan avoids these) rather than about data or code
    lock: bool = False


S, R, L, D, M = (Safety.SAFE, Safety.REVIEW, Safety.LOSSY, Safety.DANGEROUS,
                 Safety.MULTI_PHASE)

_CATALOGUE = [
    # --- data loss
    Rule("drop-table", D, "Dropping a table deletes its rows",
         "Multi-phase drop: stop using it in code, archive, then drop.",
         ("ban-drop-table",), multi_phase_pattern="drop_table"),
    Rule("drop-column", D, "Dropping a column deletes its values",
         "Multi-phase drop: stop reading and writing it in code, archive, then drop.",
         ("ban-drop-column",), multi_phase_pattern="drop_column"),
    Rule("frozen-time-literal", R,
         "A view, default or CHECK holds a time value the server freezes when the statement "
         "runs ('now'::timestamp, 'today'::date, 'tomorrow', 'yesterday'): it stays that "
         "moment",
         "Use now(), CURRENT_TIMESTAMP or CURRENT_DATE: they are evaluated when used."),
    Rule("drop-schema", D, "Dropping a schema deletes everything in it",
         "Drop the objects one by one, so each drop is reviewed."),
    Rule("privileged-function", D,
         "The step calls a server function no ordinary user may run (server files, "
         "programs, settings): it runs with the applying user's privileges",
         "Keep such calls out of the schema; if one is really needed, run it by hand, "
         "reviewed.", lintable=False),
    Rule("drop-database", D, "Dropping a database deletes everything in it",
         "Do not run this from a migration.", ("ban-drop-database",)),
    Rule("truncate-table", D, "TRUNCATE deletes every row under ACCESS EXCLUSIVE",
         "Delete in batches, or archive first.", ("ban-truncate-cascade",)),
    Rule("drop-sequence", L, "Dropping a sequence loses its current value",
         "Keep it until nothing uses it."),
    Rule("drop-materialized-view", R, "Dropping a materialized view drops its computed rows",
         "Make sure nothing reads it; it can be recreated and refreshed."),
    Rule("type-change-narrowing", L,
         "The new type cannot hold every value of the old one",
         "Check the data first (lockplane counts the rows at stake), or keep the wider type.",
         ("changing-column-type",), lintable=False),
    Rule("enum-value-removed", L, "Removing an enum value fails on rows that use it",
         "Update those rows first; the type is rebuilt (which rewrites columns using it).",
         ("changing-column-type",), lintable=False, lock=True),
    Rule("enum-value-reordered", R, "Reordering enum values rebuilds the type and rewrites "
         "every column using it", "Add values instead (ALTER TYPE ... ADD VALUE is instant).",
         ("changing-column-type",), lintable=False, lock=True),
    Rule("enum-value-renamed", R, "Renaming an enum value breaks code that writes or "
         "compares the old label", "Deploy code that no longer writes or compares the old "
         "label (or accepts both) first; the rename itself is instant."),
    Rule("drop-default", R, "Inserts that omit the column now get NULL or fail",
         "Deploy code that writes the column before dropping its default."),
    # --- breaks running code
    Rule("rename-column", M, "Renaming a column breaks code that uses the old name",
         "Multi-phase rename: add the new column, sync both, switch code, drop the old.",
         ("renaming-column",), multi_phase_pattern="rename_column"),
    Rule("rename-table", M, "Renaming a table breaks code that uses the old name",
         "Multi-phase rename: a view under the old name while code switches.",
         ("renaming-table",), multi_phase_pattern="rename_table"),
    Rule("type-change-rewrite", M,
         "Changing the type rewrites the table under ACCESS EXCLUSIVE",
         "Multi-phase type change: new column, dual write, backfill, switch reads, drop old.",
         ("changing-column-type",), multi_phase_pattern="change_type", lock=True),
    Rule("change-primary-key", M, "Changing the primary key breaks code, foreign keys "
         "and logical replication that rely on it",
         "Build the new unique index concurrently first; switch in a reviewed window.",
         lintable=False),
    Rule("drop-constraint", R, "Code or data quality may rely on the dropped constraint",
         "Make sure no code relies on it; dropping is cheap, re-adding is not.",
         ("ban-drop-constraint",)),
    Rule("drop-not-null", R, "Code may rely on the column never being NULL",
         "Make sure readers handle NULL before dropping NOT NULL.", ("ban-drop-not-null",)),
    Rule("drop-index", R, "Queries that use the index get slower; a unique one stops "
         "enforcing uniqueness", "Check it is unused (pg_stat_user_indexes.idx_scan)."),
    Rule("drop-object", R, "Code or other objects may still use what is dropped",
         "Make sure nothing uses it; the rollback re-creates it from its definition."),
    # --- logical replication (subscribers are other databases: nothing here shows them)
    Rule("drop-publication", D, "Dropping a publication stops logical replication to every "
         "subscriber of it (their slots keep WAL on this server until they are dropped)",
         "Drop or repoint the subscriptions first (on each subscriber: ALTER SUBSCRIPTION "
         "... DISABLE, then DROP SUBSCRIPTION), then drop the publication."),
    Rule("publication-remove-table", D, "Removing a table from a publication stops "
         "replicating its changes: subscribers' copies silently go stale",
         "Make sure no subscriber still needs the table (stop using its copy first); then "
         "run ALTER SUBSCRIPTION ... REFRESH PUBLICATION on each subscriber."),
    Rule("publication-no-replica-identity", D, "A table published with UPDATE or DELETE "
         "has no usable replica identity: PostgreSQL refuses its UPDATEs and DELETEs",
         "Add a primary key or set REPLICA IDENTITY (USING INDEX, or FULL) first; keep the "
         "identity columns in the publication's column list and its row filter to them; "
         "or publish only inserts (publish = 'insert').", lintable=False),
    Rule("publication-narrow-publish", R, "A publication stops publishing some operations "
         "(publish = ...): subscribers' copies stop following those changes",
         "Make sure no subscriber relies on the operations left out."),
    # --- event triggers (database-wide DDL hooks: guards and audit)
    Rule("drop-event-trigger", D, "Dropping an event trigger removes the DDL guard or audit "
         "it runs, for every later statement in the database",
         "If the desired schema only predates event triggers, add the trigger to it; "
         "otherwise drop it in its own reviewed change."),
    # --- locks and rewrites (the lock-safe plan avoids each of these)
    Rule("create-index-blocking", R, "CREATE INDEX blocks writes for the whole build",
         "CREATE INDEX CONCURRENTLY (outside a transaction).",
         ("require-concurrent-index-creation",), lock=True),
    Rule("drop-index-blocking", R, "DROP INDEX takes ACCESS EXCLUSIVE on the table",
         "DROP INDEX CONCURRENTLY.", ("require-concurrent-index-deletion",), lock=True),
    Rule("add-unique-constraint", R, "Adding a UNIQUE constraint builds its index under "
         "ACCESS EXCLUSIVE and fails on duplicates",
         "CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... UNIQUE USING INDEX.",
         ("disallowed-unique-constraint",), lock=True),
    Rule("add-primary-key", R, "Adding a primary key builds its index (and checks NOT "
         "NULL) under ACCESS EXCLUSIVE",
         "Validated NOT NULL checks, CREATE UNIQUE INDEX CONCURRENTLY, then "
         "ADD PRIMARY KEY USING INDEX.", ("adding-serial-primary-key-field",), lock=True),
    Rule("unique-on-existing-data", R, "A new unique index or constraint fails if existing "
         "rows have duplicates", "Check for duplicates first; a failed concurrent build is "
         "dropped again and changes nothing."),
    Rule("add-exclusion-constraint", R, "Adding an exclusion constraint builds its index "
         "under ACCESS EXCLUSIVE", "Add it while the table is small, or in a quiet window.",
         ("constraint-missing-not-valid",), lock=True),
    Rule("add-check-constraint", R, "Adding a CHECK scans every row under ACCESS EXCLUSIVE",
         "ADD CONSTRAINT ... NOT VALID, then VALIDATE CONSTRAINT (no write lock).",
         ("constraint-missing-not-valid",), lock=True),
    Rule("add-foreign-key", R, "Adding a foreign key scans every row while blocking "
         "writes on both tables",
         "ADD CONSTRAINT ... NOT VALID, then VALIDATE CONSTRAINT (no write lock).",
         ("adding-foreign-key-constraint", "constraint-missing-not-valid"), lock=True),
    Rule("set-not-null", R, "SET NOT NULL scans every row under ACCESS EXCLUSIVE",
         "A CHECK (col IS NOT NULL) NOT VALID, VALIDATE it, SET NOT NULL (no scan), drop "
         "the check.", ("adding-not-nullable-field",), lock=True),
    Rule("add-not-null-column-without-default", R, "Adding a NOT NULL column without a "
         "default fails on a table that has rows",
         "Add it nullable (or with a constant default), backfill, then SET NOT NULL.",
         ("adding-required-field",)),
    Rule("fill-with", R, "Existing rows are filled with the desired schema's fill-with "
         "expression before the column's constraint is enforced",
         "Read the expression: it runs on every existing row (in resumable batches); "
         "the constraint comes after it.", lintable=False),
    Rule("volatile-default", R, "A default computed per row rewrites the table under "
         "ACCESS EXCLUSIVE",
         "Add the column without a default, set the default, backfill in batches.",
         ("adding-field-with-default",), lock=True),
    Rule("add-generated-column", R, "A stored generated column rewrites the table",
         "Add a plain column, backfill it in batches, then keep it with a trigger.",
         ("adding-field-with-default",), lock=True),
    Rule("add-identity-column", R, "Adding an identity column rewrites the table",
         "Add a nullable column with a sequence default, backfill, then SET NOT NULL.",
         lock=True),
    Rule("table-rewrite", R, "The change rewrites the table under ACCESS EXCLUSIVE",
         "Run it in a quiet window, or as a multi-phase change.", ("changing-column-type",),
         lock=True),
    Rule("attach-partition-scan", R, "Attaching a partition scans it to check its bounds",
         "Add a matching CHECK NOT VALID and VALIDATE it first, so ATTACH skips the scan.",
         lock=True),
    Rule("mysql-copy-alter", R, "MySQL / MariaDB copies the table (ALGORITHM=COPY): "
         "writes wait for the whole copy",
         "An online schema change tool copies it without blocking writes (gh-ost, "
         "pt-online-schema-change: lockplane export --to gh-ost).", lintable=False,
         lock=True),
    Rule("mysql-blocking-alter", R, "MySQL / MariaDB changes the table in place under "
         "LOCK=SHARED or EXCLUSIVE: writes wait for the whole operation",
         "Run it in a quiet window, or with an online schema change tool (gh-ost, "
         "pt-online-schema-change).", lintable=False, lock=True),
    Rule("strong-lock", R, "The step takes a lock that blocks reads and writes",
         "Keep it short: lock_timeout with retries (lockplane does this).", lock=True),
    Rule("require-lock-timeout", R, "A statement waits for a lock with no lock_timeout, "
         "queueing every query behind it", "SET lock_timeout before it.",
         ("require-lock-timeout",), lock=True),
    Rule("concurrently-in-transaction", R, "CONCURRENTLY cannot run inside a transaction "
         "block: PostgreSQL rejects the statement",
         "Run it on its own, outside BEGIN ... COMMIT and outside a migration tool's "
         "transaction."),
    Rule("sqlite-table-rebuild", R, "SQLite cannot ALTER this: the table is copied into a "
         "new one under a database write lock", "Run it in a quiet window.",
         lintable=False),
    # SQLite table options only a rebuild changes (a schema file written before Lockplane
    # modelled them does not state them: planning from it drops them)
    Rule("sqlite-drop-autoincrement", D, "Dropping AUTOINCREMENT discards the table's "
         "sqlite_sequence counter: the ids of deleted rows are handed out again",
         "Keep AUTOINCREMENT in the desired schema (write it back into a schema file that "
         "predates it); drop it only once nothing outside the table keeps old ids.",
         lintable=False),
    Rule("sqlite-drop-without-rowid", R, "Dropping WITHOUT ROWID gives the table a hidden "
         "rowid and stores its rows by rowid, the primary key in a separate index",
         "Keep WITHOUT ROWID in the desired schema (write it back into a schema file that "
         "predates it).", lintable=False),
    Rule("sqlite-drop-strict", R, "Dropping STRICT stops SQLite refusing values that do "
         "not fit a column's type", "Keep STRICT in the desired schema (write it back into "
         "a schema file that predates it).", lintable=False),
    Rule("sqlite-generated-kind-change", R, "A generated column switches between VIRTUAL "
         "(computed on read) and STORED (computed on write, kept in every row)",
         "Say the kind in the desired schema (a schema file that predates VIRTUAL columns "
         "reads as STORED).", lintable=False),
    Rule("review-required", R, "Worth a human look", ""),
    Rule("rollback-loses-data", D, "Undoing the change deletes what was written since it "
         "was applied (the added column's values, the created table's rows)",
         "Keep the change, or copy the data out first; then acknowledge the loss "
         "(lockplane rollback --acknowledge rollback-loses-data@TABLE).", lintable=False),
]

RULES: dict[str, Rule] = {r.id: r for r in _CATALOGUE}


def rule(rule_id: str) -> Rule:
    return RULES[rule_id]


__all__ = ["RULES", "Finding", "Rule", "rule"]
