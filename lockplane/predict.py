"""Predictions a plan can only make with the live database in hand.

A plan made from a live database (``plan --from DSN``, ``apply --schema``) knows which
tables have rows: ``ADD COLUMN ... NOT NULL`` without a default on a table with rows is
not a risk but a certain failure, so its finding becomes dangerous and says so with the
row count ("public.users has 1,243 rows: ADD COLUMN email NOT NULL without a default
will fail"). Counting is read-only and bounded (lockplane.stake's counter).
"""

from __future__ import annotations

from .dialects.base import Database
from .plan import Plan, StepFinding

RULE = "add-not-null-column-without-default"


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


def note_certain_failures_at(plan: Plan, dsn: str) -> None:
    """``note_certain_failures`` on the database at ``dsn``, when a step may need it."""
    from .dialects import connect

    if not any(f.rule == RULE for s in plan.steps for f in s.findings):
        return
    db = connect(dsn)
    try:
        note_certain_failures(plan, db)
    finally:
        db.close()
