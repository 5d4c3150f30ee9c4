"""Crash, then run again: the cases test_crash_resume.py leaves out (issue 12, item 1).

- A ``DROP INDEX CONCURRENTLY`` goes on running after the process that sent it is
  SIGKILLed (here: waiting for a long reader) and may finish before or while the re-run
  looks, or be cancelled by it. The live schema alone cannot say what the database was
  before the step (the dropped index left no trace): the re-run rebuilds that state on a
  scratch copy by undoing the step there, and carries on.
- A rollback killed in its undo of a VALIDATE (the constraint dropped and added back NOT
  VALID in one statement) that completes on the server after the kill.
- A backfill runner killed mid-batch: its UPDATE waits on a row lock and would hold its
  rows, its checkpoint and its chunk for as long as its lock_timeout; the next run finds
  the orphaned session by its tag and cancels it at once (its batch cannot commit without
  its client), then finishes, every row updated exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from lockplane.crash import hash_before_on_scratch, resume_point
from lockplane.dialects import connect
from lockplane.plan import Plan, build_plan, rollback_plan
from lockplane.state import MigrationRecord
from tests.cli_inprocess import completed
from tests.conftest import pg_exec

LOCKPLANE = [sys.executable, "-m", "lockplane"]
ENV = {**os.environ, "COLUMNS": "300"}

ITEMS = """
CREATE TABLE items (id bigint PRIMARY KEY, name text, qty int);
"""
DATA = "INSERT INTO items SELECT i, md5(i::text), i % 100 FROM generate_series(1, 20000) i;"


def _rows(dsn: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def _plan(pg_dsn_factory: Any, before_sql: str, after_sql: str) -> tuple[str, Plan]:
    source, desired = pg_dsn_factory(), pg_dsn_factory()
    pg_exec(source, before_sql)
    pg_exec(desired, after_sql)
    with connect(source) as db:
        before = db.introspect()
    with connect(desired) as db:
        after = db.introspect()
    return source, build_plan(before, after)


def _history(dsn: str) -> list[tuple[str, int, str | None]]:
    return [(r, n, e) for r, n, e in _rows(
        dsn, "SELECT result, steps_done, error FROM lockplane.migrations ORDER BY id")]


def _session(dsn: str, text: str, *, waiting: bool = True, deadline_s: float = 60,
             proc: subprocess.Popen[str] | None = None, other_than: int = 0) -> int:
    """The pid of a Lockplane session running ``text`` (waiting on a lock or a sleep)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc is not None:
            assert proc.poll() is None, proc.communicate()[1]
        rows = _rows(dsn, "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                          "AND application_name LIKE 'lockplane %%' AND state = 'active' "
                          "AND position(%s in query) > 0 "
                          "AND (NOT %s OR wait_event_type IN ('Lock', 'Timeout')) "
                          "AND pid <> %s", (text, waiting, other_than))
        if rows:
            return int(rows[0][0])
        time.sleep(0.01)
    raise AssertionError(f"no session ran {text!r}")


def _gone(dsn: str, pid: int, deadline_s: float = 60) -> float:
    """Wait for session ``pid`` to end; how long that took."""
    start = time.monotonic()
    while _rows(dsn, "SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)):
        assert time.monotonic() - start < deadline_s, f"session {pid} never ended"
        time.sleep(0.01)
    return time.monotonic() - start


def _kill(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def _record(plan: Plan, done: int, at: str) -> MigrationRecord:
    return MigrationRecord(1, "x", "", None, plan.source_hash, plan.target_hash, None, at,
                           len(plan.steps), done, "interrupted", None, None)


# ------------------------------------------------------------- DROP INDEX CONCURRENTLY
DROP_BEFORE = ITEMS + "CREATE INDEX items_name ON items (name);"
DROP_AFTER = ITEMS + "CREATE INDEX items_qty ON items (qty);"
DROP = 'DROP INDEX CONCURRENTLY IF EXISTS "public"."items_name"'


def _killed_in_drop(dsn: str, plan: Plan, tmp_path: Path,
                    ) -> tuple[Path, psycopg.Connection[Any], int]:
    """Apply the plan under a long reader; SIGKILL the process as soon as its DROP INDEX
    CONCURRENTLY waits for the reader. Returns the plan file, the reader (still in its
    transaction) and the orphaned session the server still runs."""
    assert plan.steps[0].sql[-1] == DROP, plan.steps[0].sql
    pg_exec(dsn, "VACUUM ANALYZE items")  # (not autovacuum's, in the middle of the test)
    path = tmp_path / "plan.json"
    path.write_text(plan.to_json())
    reader = psycopg.connect(dsn)  # a report query's transaction: the drop waits for it
    reader.execute("SELECT count(*) FROM items")
    proc = subprocess.Popen(_apply(path, dsn), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=ENV)
    orphan = _session(dsn, "DROP INDEX CONCURRENTLY", proc=proc)
    # Killed once it waits for the reader, having marked the index INVALID (on a busy
    # server it may first wait on other sessions briefly).
    deadline = time.monotonic() + 60
    while (seen := _rows(dsn, "SELECT a.wait_event, i.indisvalid FROM pg_stat_activity a, "
                              "pg_index i WHERE a.pid = %s AND "
                              "i.indexrelid = 'items_name'::regclass",
                         (orphan,))) != [("virtualxid", False)]:
        assert time.monotonic() < deadline, f"the drop never waited for the reader: {seen}"
        time.sleep(0.01)
    _kill(proc)
    time.sleep(0.3)
    assert _rows(dsn, "SELECT state FROM pg_stat_activity WHERE pid = %s", (orphan,)) == [
        ("active",)], "the server should run the killed process's drop on"
    return path, reader, orphan


def _apply(path: Path, dsn: str, *extra: str) -> list[str]:
    return [*LOCKPLANE, "apply", str(path), "--target", dsn, "--auto-approve",
            "--skip-shadow", *extra]


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a ``_apply``/rollback command line to its end in this process (the console
    script's entry point; a run that is not killed need not be a process of its own)."""
    assert args[:len(LOCKPLANE)] == LOCKPLANE, args
    return completed(*args[len(LOCKPLANE):])


def _finished(dsn: str, plan: Plan) -> None:
    """The plan reached its target; nothing INVALID is left; the history shows the killed
    attempt interrupted in step 1, then the run that finished."""
    assert _rows(dsn, "SELECT count(*) FROM pg_index WHERE NOT indisvalid") == [(0,)]
    assert _rows(dsn, "SELECT to_regclass('items_name') IS NULL, "
                      "to_regclass('items_qty') IS NOT NULL") == [(True, True)]
    with connect(dsn) as db:
        assert db.introspect().hash() == plan.target_hash
    history = _history(dsn)
    assert [r for r, _, _ in history] == ["interrupted", "applied"], history
    assert "interrupted: the process applying it stopped during step 1 " in history[0][2]


def test_drop_index_concurrently_finishes_after_kill_before_rerun(
        pg_dsn_factory, tmp_path: Path) -> None:
    """The orphaned drop ends (the reader commits) before the re-run starts: the index is
    gone, which is neither the state the killed run recorded nor the target."""
    dsn, plan = _plan(pg_dsn_factory, DROP_BEFORE, DROP_AFTER)
    pg_exec(dsn, DATA)
    path, reader, orphan = _killed_in_drop(dsn, plan, tmp_path)
    reader.close()
    _gone(dsn, orphan)
    assert _rows(dsn, "SELECT to_regclass('items_name')") == [(None,)]
    rerun = _run(_apply(path, dsn))
    assert rerun.returncode == 0, rerun.stderr
    assert "re-plan" not in rerun.stderr
    assert "step 1 (Drop index items_name on public.items) completed on the server after " \
           "the process" in " ".join(rerun.stderr.split()), rerun.stderr
    _finished(dsn, plan)
    assert "step 1 completed on the server after the process died" in _history(dsn)[0][2]


def test_drop_index_concurrently_still_waiting_when_rerun_looks(
        pg_dsn_factory, tmp_path: Path) -> None:
    """The re-run finds the orphaned drop still waiting for the reader, waits for it
    (the reader ends 1.5 s later), then finds the step complete and carries on."""
    dsn, plan = _plan(pg_dsn_factory, DROP_BEFORE, DROP_AFTER)
    pg_exec(dsn, DATA)
    path, reader, orphan = _killed_in_drop(dsn, plan, tmp_path)
    rerun = subprocess.Popen(_apply(path, dsn), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, env=ENV)
    # Once the re-run is connected (its own tagged session), let the reader go.
    deadline = time.monotonic() + 60
    while not _rows(dsn, "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
                         "AND application_name LIKE 'lockplane apply %%' AND pid <> %s",
                    (orphan,)):
        assert time.monotonic() < deadline and rerun.poll() is None
        time.sleep(0.01)
    time.sleep(1.5)
    assert rerun.poll() is None, "the re-run should wait for the orphaned drop"
    reader.close()
    _, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    text = " ".join(err.split())
    assert f"still runs its session {orphan}" in text, err
    assert "completed on the server after the process" in text, err
    _finished(dsn, plan)
    assert "its statement" in _history(dsn)[0][2] and "was finished" in _history(dsn)[0][2]


def test_drop_index_concurrently_cancelled_by_rerun(pg_dsn_factory, tmp_path: Path) -> None:
    """--orphan-wait 0.5: the re-run cancels the waiting drop, which leaves the index
    INVALID; that is a leftover of step 1, which runs again (waiting for the reader in
    turn) and drops it."""
    dsn, plan = _plan(pg_dsn_factory, DROP_BEFORE, DROP_AFTER)
    pg_exec(dsn, DATA)
    path, reader, orphan = _killed_in_drop(dsn, plan, tmp_path)
    rerun = subprocess.Popen(_apply(path, dsn, "--orphan-wait", "0.5"),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             env=ENV)
    _session(dsn, "DROP INDEX CONCURRENTLY", proc=rerun, other_than=orphan)
    reader.close()
    _, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert f"cancelled session {orphan}" in " ".join(err.split()), err
    _finished(dsn, plan)
    assert "was cancelled" in _history(dsn)[0][2]


def test_rebuilt_before_state_tells_a_finished_drop_from_drift(pg_dsn_factory) -> None:
    """The judgement alone: a dropped index is recognised only with the scratch rebuild,
    and someone else's change is still neither before nor after the step."""
    dsn, plan = _plan(pg_dsn_factory, DROP_BEFORE, DROP_AFTER)
    with connect(dsn) as db:
        at = db.introspect().hash()
    pg_exec(dsn, 'DROP INDEX "items_name"')
    with connect(dsn) as db:
        live = db.introspect()

        def rebuild(step: Any) -> str | None:
            return hash_before_on_scratch(db, live, step, dsn)

        assert resume_point(live, plan, _record(plan, 0, at)) is None
        point = resume_point(live, plan, _record(plan, 0, at), rebuild)
        assert point is not None and (point.step, point.completed_after_death) == (1, True)
    pg_exec(dsn, "ALTER TABLE items ADD COLUMN note text")
    with connect(dsn) as db:
        live = db.introspect()
        assert resume_point(live, plan, _record(plan, 0, at), rebuild) is None


def test_rebuilt_before_state_of_an_enum_value_added(pg_dsn_factory) -> None:
    """ALTER TYPE ... ADD VALUE runs outside a transaction too; the live schema cannot say
    the value was not there before (nothing marks it new): the scratch rebuild can."""
    dsn, plan = _plan(
        pg_dsn_factory,
        "CREATE TYPE mood AS ENUM ('sad', 'happy'); CREATE TABLE people (id int PRIMARY "
        "KEY, mood mood DEFAULT 'sad');",
        "CREATE TYPE mood AS ENUM ('sad', 'meh', 'happy'); CREATE TABLE people (id int "
        "PRIMARY KEY, mood mood DEFAULT 'sad');")
    assert [s.kind for s in plan.steps] == ["add_enum_value"], plan.steps
    assert not plan.steps[0].transactional
    with connect(dsn) as db:
        at = db.introspect().hash()
    pg_exec(dsn, plan.steps[0].sql[-1])
    with connect(dsn) as db:
        live = db.introspect()
        assert live.hash() == plan.target_hash
        point = resume_point(live, plan, _record(plan, 0, at),
                             lambda step: hash_before_on_scratch(db, live, step, dsn))
    assert point is not None and (point.step, point.completed_after_death) == (1, True)


# ----------------------------------------------------------------- rollback of a VALIDATE
CHECKED = ITEMS + "ALTER TABLE items ADD CONSTRAINT qty_pos CHECK (qty >= 0) NOT VALID;"
VALIDATED = ITEMS + "ALTER TABLE items ADD CONSTRAINT qty_pos CHECK (qty >= 0);"
# In both databases: a DDL hook (an audit log, say) that takes 4 s over the statement that
# makes the check NOT VALID again, once the test turns it on for the target database.
SLOW_HOOK = """
CREATE FUNCTION slow_hook() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('lockplane_test.slow_hook', true) = 'on'
            AND current_query() LIKE '%NOT VALID%' THEN
        PERFORM pg_sleep(4);
    END IF;
END $$;
CREATE EVENT TRIGGER slow_hook ON ddl_command_end WHEN TAG IN ('ALTER TABLE')
    EXECUTE FUNCTION slow_hook();
"""


def _legacy(plan: Plan) -> Plan:
    """``plan`` as written before undo steps said how they run (StepRollback.transactional
    and cleanup absent): its rollback runs each undo as its step ran, so the undo of a
    VALIDATE runs outside a transaction."""
    from lockplane.integrity import plan_id

    for step in plan.steps:
        if step.rollback is not None:
            step.rollback.transactional, step.rollback.cleanup = None, []
    if plan.plan_id:
        plan.plan_id = plan_id(plan)
    return plan


def test_rollback_undoing_a_validate_resumes(pg_dsn_factory) -> None:
    """The judgement (a legacy plan's rollback): its first step made the check NOT VALID
    again; the live schema says so, and the state before it is the validated check."""
    dsn, forward = _plan(pg_dsn_factory, CHECKED, VALIDATED)
    # (A current plan's undo runs in a transaction: it commits with its progress.)
    assert rollback_plan(forward).steps[0].transactional is True
    back = rollback_plan(_legacy(forward))
    assert [s.kind for s in back.steps] == ["undo_validate_constraint"], back.steps
    pg_exec(dsn, 'ALTER TABLE items VALIDATE CONSTRAINT "qty_pos"')
    with connect(dsn) as db:
        at = db.introspect().hash()
    assert at == back.source_hash
    for stmt in back.steps[0].sql:
        pg_exec(dsn, stmt)
    with connect(dsn) as db:
        point = resume_point(db.introspect(), back, _record(back, 0, at))
    assert point is not None and (point.step, point.completed_after_death) == (1, True)


@pytest.mark.parametrize("legacy", [True, False], ids=["legacy-plan", "current-plan"])
def test_rollback_killed_in_undo_of_validate_resumes(pg_dsn_factory, tmp_path: Path,
                                                     legacy: bool) -> None:
    """A real kill: `lockplane rollback` is SIGKILLed while its DROP ... ADD ... NOT VALID
    statement runs (a DDL hook keeps it 4 s on the server). A legacy plan's undo runs
    outside a transaction: the statement completes after the kill, and the same rollback
    run again recognises that and finishes. A current plan's undo runs in a transaction
    that cannot commit without its client: the re-run finds nothing done and runs it."""
    dsn, forward = _plan(pg_dsn_factory, CHECKED + SLOW_HOOK,
                         VALIDATED + SLOW_HOOK + "CREATE INDEX items_qty ON items (qty);")
    if legacy:
        forward = _legacy(forward)
    pg_exec(dsn, DATA)
    path = tmp_path / "plan.json"
    path.write_text(forward.to_json())
    done = _run(_apply(path, dsn))
    assert done.returncode == 0, done.stderr
    name = dsn.rsplit("/", 1)[1]
    pg_exec(dsn, f'ALTER DATABASE "{name}" SET lockplane_test.slow_hook = on')
    back = [*LOCKPLANE, "rollback", str(path), "--target", dsn, "--auto-approve",
            "--skip-shadow"]
    proc = subprocess.Popen(back, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=ENV)
    orphan = _session(dsn, 'ADD CONSTRAINT "qty_pos"', proc=proc)
    _kill(proc)
    assert _rows(dsn, "SELECT convalidated FROM pg_constraint WHERE conname = 'qty_pos'") \
        == [(True,)], "killed before its statement completed"
    # The hook slows the killed process's statement only (its session read the setting):
    # a current plan's re-run, which runs the undo itself, need not wait it out again.
    pg_exec(dsn, f'ALTER DATABASE "{name}" RESET lockplane_test.slow_hook')
    rerun = _run(back)
    assert rerun.returncode == 0, rerun.stderr
    text = " ".join(rerun.stderr.split())
    assert "re-plan" not in text, text
    # (Usually the re-run finds the statement still running and waits for it; on a loaded
    # machine it may have ended first: either way the step is found complete.)
    print("the re-run waited for the orphan:", f"still runs its session {orphan}" in text)
    assert legacy == ("step 1 (Undo: Validate constraint qty_pos on public.items) "
                      "completed on the server" in text), text
    assert _rows(dsn, "SELECT convalidated FROM pg_constraint WHERE conname = 'qty_pos'") \
        == [(False,)]
    assert _rows(dsn, "SELECT to_regclass('items_qty')") == [(None,)]
    with connect(dsn) as db:
        assert db.introspect().hash() == forward.source_hash
    history = _history(dsn)
    assert [r for r, _, _ in history] == ["applied", "interrupted", "applied"], history
    assert "stopped during step 1 (Undo: Validate" in history[1][2], history[1][2]


# ---------------------------------------------------------------------- a killed backfill
def test_killed_backfill_batch_is_cancelled_by_the_next_run(pg_dsn: str) -> None:
    pg_exec(pg_dsn, """
        CREATE TABLE accounts (id bigint PRIMARY KEY, balance int NOT NULL, cents bigint,
                               updates int NOT NULL DEFAULT 0);
        CREATE FUNCTION count_update() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN NEW.updates := OLD.updates + 1; RETURN NEW; END $$;
        CREATE TRIGGER counter BEFORE UPDATE ON accounts
            FOR EACH ROW EXECUTE FUNCTION count_update();
        INSERT INTO accounts (id, balance) SELECT i, i % 1000 FROM generate_series(1, 3000) i;
        """)
    # Batches may wait a minute for a row lock: the killed one would hold on that long.
    args = [*LOCKPLANE, "backfill", "--target", pg_dsn, "--table", "accounts",
            "--set", "cents = balance * 100 + id", "--batch-size", "500", "--fixed-batch-size",
            "--lock-timeout-ms", "60000", "--auto-approve"]
    locker = psycopg.connect(pg_dsn)  # the application, holding a row of the first batch
    locker.execute("SELECT 1 FROM accounts WHERE id = 250 FOR UPDATE")
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=ENV)
    orphan = _session(pg_dsn, 'UPDATE "public"."accounts"', proc=proc)
    _kill(proc)
    time.sleep(0.3)
    name = _rows(pg_dsn, "SELECT application_name FROM pg_stat_activity WHERE pid = %s",
                 (orphan,))
    assert name and name[0][0].startswith("lockplane backfill "), name

    rerun = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True, env=ENV)
    # The orphan ends while the row it waits for is still locked: the re-run cancelled it
    # (it would otherwise wait out its 60 s lock_timeout, and the re-run 15 s before
    # refusing: 'being run by another process').
    took = _gone(pg_dsn, orphan, deadline_s=10)
    assert rerun.poll() is None
    locker.close()
    _, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    print(f"the orphaned batch ended {took:.1f}s after the re-run started")
    assert _rows(pg_dsn, "SELECT count(*), count(*) FILTER (WHERE cents = balance * 100 + id), "
                         "min(updates), max(updates) FROM accounts") == [(3000, 3000, 1, 1)]
    assert _rows(pg_dsn, "SELECT status, rows_updated FROM lockplane.backfills") == [
        ("done", 3000)]
