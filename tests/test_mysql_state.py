"""Lockplane's state on MariaDB: the history table, the GET_LOCK apply lock, multi-phase
progress and drift memory."""

from __future__ import annotations

from datetime import UTC, datetime

import pymysql
import pytest

from lockplane.dialects import connect
from lockplane.drift.memory import Acknowledgement, DriftState
from lockplane.errors import SafetyRefusal
from lockplane.multiphase.model import MultiPhasePlan, Phase, PhaseRollback
from lockplane.multiphase.state import PhaseStore
from lockplane.plan import Plan
from lockplane.state import History


def _plan() -> Plan:
    return Plan(dialect="mysql", source_hash="a" * 64, target_hash="b" * 64, steps=[])


def test_history_round_trip(mysql_dsn: str) -> None:
    with connect(mysql_dsn) as db:
        history = History(db)
        assert not history.exists() and history.list() == []
        run_id = history.start("plan-1", _plan(), "tester")
        assert history.exists()
        history.progress(run_id, 1, "c" * 64)
        (running,) = history.running()
        assert (running.id, running.steps_done, running.intermediate_hash) == (
            run_id, 1, "c" * 64)
        assert history.unfinished("plan-1") is not None
        history.interrupt(run_id, "process died 100% 'here'")
        rec = history.unfinished("plan-1")
        assert rec is not None and rec.result == "interrupted"
        assert rec.error == "process died 100% 'here'"
        again = history.start("plan-1", _plan(), "tester")
        history.finish(again, "applied", "b" * 64, None)
        assert history.unfinished("plan-1") is None
        latest = history.list()[0]
        assert (latest.id, latest.result, latest.hash_after) == (again, "applied", "b" * 64)
        assert latest.finished_at is not None and latest.started_at <= latest.finished_at
        assert history.plan_of(again).source_hash == "a" * 64
        # Lockplane's own tables are not part of the schema.
        assert db.introspect().tables == []


def test_history_notes(mysql_dsn: str) -> None:
    # Joined with MySQLDialect.concat: || would be OR here.
    with connect(mysql_dsn) as db:
        history = History(db)
        run_id = history.start("plan-1", _plan(), "tester")
        history.add_note(run_id, "first")
        history.add_note(run_id, "second")
        assert history.list()[0].error == "first; second"


def test_one_apply_at_a_time(mysql_dsn: str) -> None:
    with connect(mysql_dsn) as first, connect(mysql_dsn) as second:
        with History(first).exclusive_lock():
            with pytest.raises(SafetyRefusal, match="another Lockplane operation"):
                with History(second).exclusive_lock():
                    pass
        with History(second).exclusive_lock():
            pass


def test_the_lock_is_per_database(mysql_dsn: str) -> None:
    from tests.test_mysql_sandbox import run

    other = mysql_dsn + "_other"
    run(mysql_dsn, f"CREATE DATABASE `{other.rsplit('/', 1)[1]}`")
    try:
        with connect(mysql_dsn) as a, connect(other) as b:
            with History(a).exclusive_lock(), History(b).exclusive_lock():
                pass
    finally:
        run(mysql_dsn, f"DROP DATABASE `{other.rsplit('/', 1)[1]}`")


def test_a_dead_session_frees_the_lock(mysql_dsn: str) -> None:
    with connect(mysql_dsn) as first:
        assert first.try_advisory_lock(1, 2)
    with connect(mysql_dsn) as second:
        assert second.try_advisory_lock(1, 2)


def test_catalog_questions_and_deadlines(mysql_dsn: str) -> None:
    from lockplane.dialects.base import StatementTimedOut

    with connect(mysql_dsn) as db:
        db.execute("CREATE TABLE `t``1` (id int unsigned, v varchar(20))")
        db.execute("CREATE VIEW v AS SELECT id FROM `t``1`")
        assert db.table_exists(None, "t`1") and not db.table_exists(None, "v")
        assert db.column_type(None, "t`1", "id") == "int(10) unsigned"
        assert db.column_type(None, "t`1", "nope") is None
        assert db.query_with_deadline("SELECT count(*) FROM `t``1`", 5) == [(0,)]
        with pytest.raises(StatementTimedOut):
            db.query_with_deadline("SELECT SLEEP(3)", 0.2)
        # Read-only: a write in the deadline query is refused, and nothing stays open.
        with pytest.raises(pymysql.Error):
            db.query_with_deadline("INSERT INTO `t``1` VALUES (1, 'x')", 5)
        assert db.query("SELECT count(*) FROM `t``1`") == [(0,)]
        assert db.dialect.concat(["'a'", "'b'"]) == "CONCAT('a', 'b')"
        assert db.query(f"SELECT {db.dialect.concat(['NULL', chr(39) + 'x' + chr(39)])}") \
            == [(None,)]


def test_read_only_sessions(mysql_dsn: str) -> None:
    with connect(mysql_dsn) as db:
        db.execute("CREATE TABLE t (a int)")
        with db.read_only():
            assert db.query("SELECT count(*) FROM t") == [(0,)]
            with pytest.raises(pymysql.Error) as exc:
                db.execute("INSERT INTO t VALUES (1)")
            assert db.dialect.is_read_only_violation(exc.value)
        db.execute("INSERT INTO t VALUES (1)")  # the transaction is over
        db.read_only_session()
        with pytest.raises(pymysql.Error) as exc:
            db.execute("INSERT INTO t VALUES (2)")
        assert db.dialect.is_read_only_violation(exc.value)
        assert db.query("SELECT a FROM t") == [(1,)]


def _multiphase(table: str, description: str) -> MultiPhasePlan:
    phase = Phase(phase_number=1, name="expand", description="add", plan=_plan(),
                  rollback=PhaseRollback(description="drop"))
    return MultiPhasePlan(operation="rename_column", description=description,
                          pattern="expand_contract", dialect="mysql", table=table,
                          total_phases=2, phases=[phase], source_hash="a" * 64,
                          target_hash=description * 64)


def test_multiphase_progress(mysql_dsn: str) -> None:
    # The dialect's placeholders, clock and DDL; one active migration per table without a
    # partial index.
    with connect(mysql_dsn) as db:
        store = PhaseStore(db)
        assert store.list() == [] and store.get("nope") is None
        first = store.start(_multiphase("shop.o`rders", "a"))
        assert (first.status, first.completed_phases, first.events) == ("active", 0, [])
        assert store.start(_multiphase("shop.o`rders", "a")).migration_id \
            == first.migration_id
        with pytest.raises(SafetyRefusal, match="already has an active"):
            store.start(_multiphase("shop.o`rders", "b"))
        store.record(first.migration_id, "applied", 1, "ana 100%", completed=1)
        store.record(first.migration_id, "applied", 2, "ana", completed=2, status="completed")
        done = store.get(first.migration_id)
        assert done is not None and (done.status, done.completed_phases) == ("completed", 2)
        assert [e["who"] for e in done.events] == ["ana 100%", "ana"]
        assert done.started_at <= done.updated_at
        # Completed: the table may have another.
        other = store.start(_multiphase("shop.o`rders", "b"))
        assert store.active_for_table("shop.o`rders") == other
        assert len(store.list()) == 2
        assert db.introspect().tables == []


def test_drift_memory(mysql_dsn: str) -> None:
    with connect(mysql_dsn) as db:
        state = DriftState(db)
        assert state.seen("prod") is None and state.acknowledgements() == []
        state.record_seen("prod", "drift", "f" * 64, ["table t: extra 'column' ✓"])
        state.record_seen("prod", "drift", "e" * 64, ["table u: missing"])
        seen = state.seen("prod")
        assert seen is not None and (seen.fingerprint, seen.items) == ("e" * 64,
                                                                      ["table u: missing"])
        assert abs((datetime.now(UTC) - seen.at).total_seconds()) < 60
        until = datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)
        state.add_acknowledgement(Acknowledgement("e" * 64, "prod", "ana", datetime.now(UTC),
                                                  until, "known", ["table u: missing"]))
        ack = state.acknowledgement("e" * 64)
        assert ack is not None and (ack.until, ack.by, ack.reason) == (until, "ana", "known")
        assert state.end_acknowledgement("e" * 64)
        assert state.acknowledgement("e" * 64) is None


def test_a_dead_apply_is_marked_interrupted(mysql_dsn: str) -> None:
    # Under the GET_LOCK apply lock a 'running' record is a dead process's (crash.py).
    from lockplane.crash import drop_scratch_leftovers, mark_interrupted, settle_orphans

    with connect(mysql_dsn) as db:
        history = History(db)
        run_id = history.start("plan-1", _plan(), "tester")
        with history.exclusive_lock():
            assert settle_orphans(db, 0.0) == []  # no session tags to find on MySQL
            assert mark_interrupted(history, []) == [run_id]
            assert drop_scratch_leftovers(db, None) == []
        rec = history.unfinished("plan-1")
        assert rec is not None and rec.result == "interrupted"
        assert rec.error is not None and rec.error.startswith("interrupted: the process")
