"""Predictions a plan can only make with the live database in hand.

A plan made from a live database (``plan --from DSN``, ``apply --schema``) knows which
tables have rows: ``ADD COLUMN ... NOT NULL`` without a default on a table with rows is
not a risk but a certain failure, so its finding becomes dangerous and says so with the
row count ("public.users has 1,243 rows: ADD COLUMN email NOT NULL without a default
will fail"). Counting is read-only and bounded (lockplane.stake's counter).

A declared fill (``-- lockplane:fill-with``, lockplane.fill) gets its facts the same
way: how many rows it fills now and in about how many batches.
"""

from __future__ import annotations

from .dialects.base import Database
from .plan import Plan, Step, StepFinding

RULE = "add-not-null-column-without-default"
FILL_RULE = "fill-with"


def note_certain_failures(plan: Plan, db: Database, timeout_s: float = 5.0) -> None:
    """Mark the steps of ``plan`` that will fail on ``db`` as it is now (in place)."""
    from .stake import _count, _TimedOut

    d = db.dialect
    for step in plan.steps:
        found = [f for f in step.findings if f.rule == RULE]
        if not found or not step.table or step.kind != "add_column":
            continue
        schema, _, table = step.table.rpartition(".")
        try:
            if not db.table_exists(schema or None, table):
                continue
        except NotImplementedError:  # a dialect without the look-up: no prediction
            continue
        name = d.qname(schema or None, table)
        try:
            if not _count(db, f"SELECT count(*) FROM (SELECT 1 FROM {name} LIMIT 1) AS t",
                          timeout_s):
                continue  # empty now: it adds fine (rows written before apply would not)
            try:
                rows = f"{_count(db, f'SELECT count(*) FROM {name}', timeout_s):,} rows"
            except _TimedOut:
                rows = "rows"
        except Exception:  # advice only: the plan stands as made
            continue
        column = step.description.split(" ")[2] if step.description.startswith(
            "Add column ") else "the column"
        message = (f"{step.table} has {rows}: ADD COLUMN {column} NOT NULL without a "
                   "default will fail")
        step.findings = [StepFinding(rule=RULE, safety="dangerous", message=message,
                                     safer=f.safer) if f in found else f
                         for f in step.findings]
        step.messages = [message] + [m for m in step.messages
                                     if m not in {f.message for f in found}]
        step.safety = "dangerous"


def note_fill_facts(plan: Plan, db: Database, timeout_s: float = 5.0) -> None:
    """Say on each declared fill of ``plan`` how many rows of ``db`` it fills now, and
    in about how many batches (in place; prose, not covered by the plan's id)."""
    from .backfill import BackfillOptions, human_count
    from .stake import _count

    batch = BackfillOptions().batch_size
    for step in plan.steps:
        spec = step.backfill
        if not spec or not any(f.rule == FILL_RULE for f in step.findings):
            continue
        schema, table, column = spec.get("schema"), spec["table"], spec["column"]
        name = db.dialect.qname(schema, table)
        try:
            if not db.table_exists(schema, table):
                continue
            # A column the plan adds is NULL in every row it finds; an existing one is
            # filled where it is NULL. Rows a new CHECK refuses are not counted: the
            # check is the schema's SQL, which runs on the target only as the plan.
            new = db.column_type(schema, table, column) is None
            nulls = f"{db.dialect.quote(column)} IS NULL"
            if not new and spec.get("where") not in (None, nulls):
                step.messages.append(f"fills the rows of {step.table} where "
                                     f"{spec['where']} (counted when it runs)")
                continue
            where = "" if new else f" WHERE {nulls}"
            rows = _count(db, f"SELECT count(*) FROM {name}{where}", timeout_s)
        except Exception:  # advice only (a timeout, a dialect without the look-up)
            continue
        batches = -(-rows // batch)
        step.messages.append(
            f"fills {human_count(rows)} row(s) of {step.table} as the database is now, "
            f"in at most {batches:,} batch(es) ({batch:,} rows each to start with; "
            "batches grow toward 100 ms each, so usually fewer); rows written before the "
            "apply add to it")


def _archives_rows(step: Step) -> bool:
    return step.kind == "drop_table" and step.rollback is not None and any(
        t.kind == "refill_table" for t in step.rollback.then)


def note_archive_facts(plan: Plan, db: Database, timeout_s: float = 5.0) -> None:
    """Say on each table drop that archives its rows how many rows and bytes the copy
    takes on ``db`` now and about how long, or that the table is over the bound and will
    not be copied (in place; prose, not covered by the plan's id)."""
    from .backfill import human_bytes, human_count, human_duration
    from .changes.refill_table import ARCHIVE_MAX_TABLE_ROWS
    from .stake import _count, _TimedOut

    for step in plan.steps:
        if not _archives_rows(step) or not step.table:
            continue
        schema, _, table = step.table.rpartition(".")
        name = db.dialect.qname(schema or None, table)
        try:
            if not db.table_exists(schema or None, table):
                continue
            try:
                rows = _count(db, f"SELECT count(*) FROM (SELECT 1 FROM {name} LIMIT "
                                  f"{ARCHIVE_MAX_TABLE_ROWS + 1}) AS t", timeout_s)
            except _TimedOut:
                rows = ARCHIVE_MAX_TABLE_ROWS + 1  # (too big to count quickly: too big)
            size = db.table_size_bytes(schema or None, table)
        except Exception:  # advice only
            continue
        took = f" ({human_bytes(size)} with its indexes)" if size is not None else ""
        if rows > ARCHIVE_MAX_TABLE_ROWS:
            step.messages.append(
                f"{step.table} has more than {ARCHIVE_MAX_TABLE_ROWS:,} rows{took}: the "
                "drop will not copy them, and a rollback brings the table back empty; "
                "take a backup first (lockplane backup) if its rows may be needed")
            continue
        seconds = rows / db.dialect.archive_rows_per_s
        step.messages.append(
            f"the archive copies {human_count(rows)} row(s) of {step.table}{took} as the "
            f"database is now, in about {human_duration(max(seconds, 0.1))} inside the "
            "drop's transaction (an estimate), and keeps them until a rollback puts them "
            "back")


def note_certain_failures_at(plan: Plan, dsn: str) -> None:
    """``note_certain_failures`` (and ``note_fill_facts``) on the database at ``dsn``,
    when a step may need it."""
    from .dialects import connect

    rules = {f.rule for s in plan.steps for f in s.findings}
    archives = any(_archives_rows(s) for s in plan.steps)
    if RULE not in rules and FILL_RULE not in rules and not archives:
        return
    db = connect(dsn)
    try:
        note_certain_failures(plan, db)
        if FILL_RULE in rules:
            note_fill_facts(plan, db)
        if archives:
            note_archive_facts(plan, db)
    finally:
        db.close()
