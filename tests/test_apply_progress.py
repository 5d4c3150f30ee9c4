"""The progress an apply records between its groups of steps, and a run that stops after
its last commit (execute.apply_plan's ``record``).

After each group but the last, apply records the steps done and the hash of the state
they left: what a resume checks the database against (crash.resume_point). For a
transactional group it does so inside the group's transaction, so both commit with the
DDL. After the last group it records the count alone: the end-state check reads that
state right after, and a catalog read inside the last transaction would hold the locks
of its DDL for as long as the read takes. A run that stops between its last commit and
its end-state check is judged by the next run against the plan's target: already
applied; or, when the database is not there, refused (re-plan) with nothing run.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg.pq import TransactionStatus

from lockplane.dialects import connect
from lockplane.dialects.postgres import PostgresDatabase
from lockplane.errors import SafetyRefusal
from lockplane.execute import ApplyOptions, apply_plan
from lockplane.model import Schema
from lockplane.plan import Plan, build_plan
from lockplane.state import History
from tests.conftest import pg_exec

FROM = """
CREATE TABLE items (id bigint PRIMARY KEY, name text);
INSERT INTO items SELECT i, md5(i::text) FROM generate_series(1, 100) i;
"""
TO = """
CREATE TABLE items (id bigint PRIMARY KEY, name text, note text);
CREATE INDEX items_name ON items (name);
"""
OPTS = ApplyOptions(skip_shadow=True)


@pytest.fixture
def case(pg_dsn_factory: Any) -> tuple[str, Schema, Schema]:
    source, desired = pg_dsn_factory(), pg_dsn_factory()
    pg_exec(source, FROM)
    pg_exec(desired, TO)
    with connect(source) as db:
        before = db.introspect()
    with connect(desired) as db:
        after = db.introspect()
    return source, before, after


def _history(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT result, steps_done, steps_total, intermediate_hash, "
                            "hash_after, error FROM lockplane.migrations ORDER BY id").fetchall()


def test_every_group_but_the_last_records_its_state(case, monkeypatch) -> None:
    source, before, after = case
    plan = build_plan(before, after)  # lock-safe: ADD COLUMN in a transaction, then CIC
    assert [s.transactional for s in plan.steps] == [True, False], plan.steps
    progress: list[tuple[int, str | None, TransactionStatus]] = []
    reads: list[TransactionStatus] = []
    real_progress, real_read = History.progress, PostgresDatabase.introspect

    def record(self: History, mid: int, done: int, h: str | None) -> None:
        progress.append((done, h, self.db.conn.info.transaction_status))  # type: ignore[attr-defined]
        real_progress(self, mid, done, h)

    def read(self: PostgresDatabase) -> Schema:
        reads.append(self.conn.info.transaction_status)
        return real_read(self)

    monkeypatch.setattr(History, "progress", record)
    monkeypatch.setattr(PostgresDatabase, "introspect", read)
    result = apply_plan(plan, source, OPTS)
    monkeypatch.undo()

    # The state after the column, before the index: recorded with the count, in the
    # column's transaction; after the last step, the count alone.
    between = after.model_copy(deep=True)
    items = between.table("public", "items")
    assert items is not None
    items.indexes = []
    assert progress == [(1, between.hash(), TransactionStatus.INTRANS),
                        (2, None, TransactionStatus.IDLE)]
    # Catalog reads: the live schema, the state after the column (in its transaction),
    # the end state; none after the last step but the end-state check's.
    assert reads == [TransactionStatus.IDLE, TransactionStatus.INTRANS,
                     TransactionStatus.IDLE]
    assert result.status == "applied" and result.hash_after == plan.target_hash
    assert result.schema_after is not None and result.schema_after.hash() == plan.target_hash
    assert _history(source) == [("applied", 2, 2, None, plan.target_hash, None)]


def test_the_only_transaction_reads_no_catalog(case, monkeypatch) -> None:
    """A plan in one transaction: its locks are held for its DDL and the bookkeeping
    row, not for a read of the whole catalog."""
    source, before, after = case
    plan = build_plan(before, after, lock_safe=False)
    assert all(s.transactional for s in plan.steps)
    reads: list[TransactionStatus] = []
    real_read = PostgresDatabase.introspect

    def read(self: PostgresDatabase) -> Schema:
        reads.append(self.conn.info.transaction_status)
        return real_read(self)

    monkeypatch.setattr(PostgresDatabase, "introspect", read)
    assert apply_plan(plan, source, OPTS).status == "applied"
    assert reads == [TransactionStatus.IDLE, TransactionStatus.IDLE]


class Stopped(BaseException):
    """The process dies (as SIGKILL would: no handler runs in the engine)."""


def _stop_after_last_commit(plan: Plan, source: str, monkeypatch: Any) -> None:
    def finish(self: History, *args: Any) -> None:
        raise Stopped

    with monkeypatch.context() as m:
        m.setattr(History, "finish", finish)
        with pytest.raises(Stopped):
            apply_plan(plan, source, OPTS)
    assert _history(source) == [("running", len(plan.steps), len(plan.steps), None, None,
                                 None)]


def test_stopped_after_the_last_commit_is_already_applied(case, monkeypatch) -> None:
    source, before, after = case
    plan = build_plan(before, after, lock_safe=False)
    _stop_after_last_commit(plan, source, monkeypatch)
    result = apply_plan(plan, source, OPTS)
    assert result.status == "already_applied" and result.hash_after == plan.target_hash
    [(status, done, _, _, _, error), finished] = _history(source)
    assert (status, done) == ("interrupted", len(plan.steps))
    assert "during its last bookkeeping" in error
    # The re-run is that end-state check: recorded as the run that finished the plan.
    assert finished[:2] == ("applied", len(plan.steps))
    assert "every step was committed by migration" in finished[5], finished


def test_stopped_after_the_last_commit_then_changed_is_refused(case, monkeypatch) -> None:
    source, before, after = case
    plan = build_plan(before, after)
    _stop_after_last_commit(plan, source, monkeypatch)
    pg_exec(source, "ALTER TABLE items ADD COLUMN extra int")  # someone else, meanwhile
    with connect(source) as db:
        changed = db.introspect().hash()
    with pytest.raises(SafetyRefusal) as refused:
        apply_plan(plan, source, OPTS)
    assert "committed every step of this plan, then stopped before checking the end " \
           "state" in refused.value.message and "re-plan" in refused.value.message
    with connect(source) as db:
        assert db.introspect().hash() == changed  # nothing ran
    assert [r[0] for r in _history(source)] == ["interrupted"]
