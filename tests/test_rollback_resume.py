"""Rollback steps run as their undo needs, not as the step they undo (issue 12).

- The undo of a DROP INDEX CONCURRENTLY is a CREATE INDEX CONCURRENTLY: killed or
  cancelled mid-build it leaves an INVALID index, which its clean-up drops before the
  re-run builds it again (as a forward build's does).
- The undo of an added enum value recreates the type (rename aside, create, convert the
  columns, drop the old one): one transaction, although ADD VALUE itself runs outside
  one, so a failure midway leaves the type as it was.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from lockplane.dialects import connect
from lockplane.plan import Plan, build_plan, rollback_plan
from tests.conftest import pg_exec
from tests.test_crash_resume_gaps import (
    ENV,
    LOCKPLANE,
    _apply,
    _history,
    _kill,
    _plan,
    _rows,
    _run,
    _session,
)

ITEMS = "CREATE TABLE items (id bigint PRIMARY KEY, name text, qty int);"
INDEXED = ITEMS + "CREATE INDEX items_name ON items (name);"
DATA = "INSERT INTO items SELECT i, md5(i::text), i % 100 FROM generate_series(1, 20000) i;"

MOODS = "CREATE TYPE mood AS ENUM ('sad', 'happy'); " \
        "CREATE TABLE people (id int PRIMARY KEY, feeling mood DEFAULT 'sad');"
MORE_MOODS = "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy'); " \
             "CREATE TABLE people (id int PRIMARY KEY, feeling mood DEFAULT 'sad');"


def _applied(dsn: str, forward: Plan, tmp_path: Path) -> Path:
    path = tmp_path / "plan.json"
    path.write_text(forward.to_json())
    done = _run(_apply(path, dsn))
    assert done.returncode == 0, done.stderr
    return path


def _rollback(path: Path, dsn: str, *extra: str) -> list[str]:
    return [*LOCKPLANE, "rollback", str(path), "--target", dsn, "--auto-approve",
            "--skip-shadow", *extra]


def _hash(dsn: str) -> str:
    with connect(dsn) as db:
        return db.introspect().hash()


# --------------------------------------------------------------- the undo of a DROP INDEX
def test_undo_of_a_concurrent_drop_cleans_up_and_waits_unbounded(pg_dsn_factory) -> None:
    """The plan says how the undo runs: outside a transaction, dropping a failed build
    first, and (blocking nobody) without a short lock_timeout that would fail it behind
    any long transaction."""
    _, forward = _plan(pg_dsn_factory, INDEXED, ITEMS)
    assert forward.steps[0].sql[-1] == \
        'DROP INDEX CONCURRENTLY IF EXISTS "public"."items_name"', forward.steps[0].sql
    undo = rollback_plan(forward).steps[0]
    assert undo.transactional is False
    assert undo.cleanup == ['DROP INDEX CONCURRENTLY IF EXISTS "public"."items_name"']
    assert undo.sql[0] == "SET lock_timeout = 0", undo.sql
    assert undo.sql[1].startswith("CREATE INDEX CONCURRENTLY"), undo.sql
    # Undoing the undo is the forward step again, as it runs.
    assert undo.rollback is not None and undo.rollback.sql == forward.steps[0].sql
    assert undo.rollback.transactional is False
    assert undo.rollback.cleanup == forward.steps[0].cleanup


def test_rollback_killed_in_its_index_build_runs_again(pg_dsn_factory, tmp_path: Path) -> None:
    """A real kill: `lockplane rollback` is SIGKILLed while its CREATE INDEX CONCURRENTLY
    waits for a writer's transaction (the index already in the catalog, INVALID); the
    orphaned build is cancelled (as a re-run does after --orphan-wait, or a DBA). The same
    rollback run again drops the INVALID index, builds it and finishes."""
    dsn, forward = _plan(pg_dsn_factory, INDEXED, ITEMS)
    pg_exec(dsn, DATA)
    path = _applied(dsn, forward, tmp_path)
    assert _rows(dsn, "SELECT to_regclass('items_name')") == [(None,)]
    writer = psycopg.connect(dsn)  # an open write transaction: the build waits for it
    writer.execute("UPDATE items SET qty = qty WHERE id = 1")
    back = _rollback(path, dsn)
    proc = subprocess.Popen(back, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=ENV)
    orphan = _session(dsn, "CREATE INDEX CONCURRENTLY", proc=proc)
    deadline = time.monotonic() + 60
    while (seen := _rows(dsn, "SELECT a.wait_event, i.indisvalid FROM pg_stat_activity a, "
                              "pg_index i WHERE a.pid = %s AND "
                              "i.indexrelid = to_regclass('items_name')",
                         (orphan,))) != [("virtualxid", False)]:
        assert time.monotonic() < deadline, f"the build never waited for the writer: {seen}"
        time.sleep(0.01)
    _kill(proc)
    pg_exec(dsn, f"SELECT pg_cancel_backend({orphan})")
    deadline = time.monotonic() + 60
    while _rows(dsn, "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND state = 'active'",
                (orphan,)):
        assert time.monotonic() < deadline, "the cancelled build never stopped"
        time.sleep(0.01)
    assert _rows(dsn, "SELECT indisvalid FROM pg_index "
                      "WHERE indexrelid = to_regclass('items_name')") == [(False,)]
    writer.close()
    rerun = _run(back)
    assert rerun.returncode == 0, rerun.stderr
    text = " ".join(rerun.stderr.split())
    assert "re-plan" not in text and "already exists" not in text, text
    assert _rows(dsn, "SELECT count(*) FROM pg_index WHERE NOT indisvalid") == [(0,)]
    assert _rows(dsn, "SELECT indisvalid FROM pg_index "
                      "WHERE indexrelid = to_regclass('items_name')") == [(True,)]
    assert _hash(dsn) == forward.source_hash
    history = _history(dsn)
    assert [r for r, _, _ in history] == ["applied", "interrupted", "applied"], history
    assert "stopped during step 1 (Undo: Drop index items_name" in history[1][2], history


def test_rollback_rerun_cancels_the_orphan_after_orphan_wait(pg_dsn_factory,
                                                              tmp_path: Path) -> None:
    """Killed the same way; the re-run itself, after --orphan-wait, cancels the build
    the dead process left waiting, then builds the index again once the writer ends."""
    dsn, forward = _plan(pg_dsn_factory, INDEXED, ITEMS)
    pg_exec(dsn, DATA)
    path = _applied(dsn, forward, tmp_path)
    writer = psycopg.connect(dsn)
    writer.execute("UPDATE items SET qty = qty WHERE id = 1")
    proc = subprocess.Popen(_rollback(path, dsn), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=ENV)
    orphan = _session(dsn, "CREATE INDEX CONCURRENTLY", proc=proc)
    _kill(proc)
    rerun = subprocess.Popen(_rollback(path, dsn, "--orphan-wait", "0.5"),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             env=ENV)
    deadline = time.monotonic() + 60
    while _rows(dsn, "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND state = 'active'",
                (orphan,)):
        assert time.monotonic() < deadline, "the re-run never cancelled the orphan"
        assert rerun.poll() is None, rerun.communicate()[1]
        time.sleep(0.05)
    writer.close()
    _, stderr = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, stderr
    assert _rows(dsn, "SELECT count(*) FROM pg_index WHERE NOT indisvalid") == [(0,)]
    assert _hash(dsn) == forward.source_hash


def test_rollback_killed_in_its_index_build_that_then_finishes(
        pg_dsn_factory, tmp_path: Path) -> None:
    """Killed the same way, but the orphaned build ends (the writer commits) before the
    re-run looks: the index is there and valid, the step completed on the server."""
    dsn, forward = _plan(pg_dsn_factory, INDEXED, ITEMS)
    pg_exec(dsn, DATA)
    path = _applied(dsn, forward, tmp_path)
    writer = psycopg.connect(dsn)
    writer.execute("UPDATE items SET qty = qty WHERE id = 1")
    back = _rollback(path, dsn)
    proc = subprocess.Popen(back, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=ENV)
    orphan = _session(dsn, "CREATE INDEX CONCURRENTLY", proc=proc)
    _kill(proc)
    writer.close()
    deadline = time.monotonic() + 60
    while _rows(dsn, "SELECT 1 FROM pg_stat_activity WHERE pid = %s", (orphan,)):
        assert time.monotonic() < deadline, "the orphaned build never ended"
        time.sleep(0.01)
    assert _rows(dsn, "SELECT indisvalid FROM pg_index "
                      "WHERE indexrelid = to_regclass('items_name')") == [(True,)]
    rerun = _run(back)
    assert rerun.returncode == 0, rerun.stderr
    text = " ".join(rerun.stderr.split())
    assert "step 1 (Undo: Drop index items_name on public.items) completed on the server" \
        in text, text
    assert _hash(dsn) == forward.source_hash
    assert [r for r, _, _ in _history(dsn)] == ["applied", "interrupted", "applied"]


# ------------------------------------------------------------ the undo of an added value
def test_undo_of_an_added_enum_value_is_one_transaction(pg_dsn_factory) -> None:
    _, forward = _plan(pg_dsn_factory, MOODS, MORE_MOODS)
    assert [s.kind for s in forward.steps] == ["add_enum_value"], forward.steps
    assert forward.steps[0].transactional is False  # ADD VALUE: outside a transaction
    undo = rollback_plan(forward).steps[0]
    assert undo.transactional is True, undo
    assert undo.cleanup == []
    assert undo.rollback is not None and undo.rollback.transactional is False


def test_rollback_of_an_added_enum_value_failing_midway_changes_nothing(
        pg_dsn_factory, tmp_path: Path) -> None:
    """A row holds the added value: the recreate fails converting the column, after it
    renamed the type aside and created the new one. In one transaction, that is all
    rolled back: the type is as it was, and once the row moves off the value the same
    rollback finishes."""
    dsn, forward = _plan(pg_dsn_factory, MOODS, MORE_MOODS)
    path = _applied(dsn, forward, tmp_path)
    pg_exec(dsn, "INSERT INTO people VALUES (1, 'ok'), (2, 'happy')")
    at = _hash(dsn)
    back = _rollback(path, dsn, "--acknowledge", "rollback-loses-data")
    failed = _run(back)
    assert failed.returncode != 0, failed.stderr
    assert "rolled back" in " ".join(failed.stderr.split()), failed.stderr
    assert _rows(dsn, "SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder) "
                      "FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid "
                      "GROUP BY t.typname") == [("mood", ["sad", "ok", "happy"])]
    assert _rows(dsn, "SELECT feeling::text FROM people ORDER BY id") == [("ok",), ("happy",)]
    assert _hash(dsn) == at == forward.target_hash
    pg_exec(dsn, "UPDATE people SET feeling = 'sad' WHERE feeling = 'ok'")
    done = _run(back)
    assert done.returncode == 0, done.stderr
    assert _rows(dsn, "SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder) "
                      "FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid "
                      "GROUP BY t.typname") == [("mood", ["sad", "happy"])]
    assert _hash(dsn) == forward.source_hash


# ----------------------------------------------- the undo of a NOT NULL column's drop
PEOPLE = "CREATE TABLE people (id int PRIMARY KEY, email text NOT NULL, nick text);"
# An event trigger that makes one statement of the undo's NOT NULL take a while (after
# it has done its work, before it commits): the process is killed in it.
SLOW = """
CREATE FUNCTION slow_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
  IF position(current_setting('lp.slow') IN current_query()) > 0 THEN
    PERFORM pg_sleep(2);
  END IF;
END $$;
CREATE EVENT TRIGGER slow_ddl ON ddl_command_end EXECUTE FUNCTION slow_ddl();
"""


@pytest.mark.parametrize("statement", ["VALIDATE CONSTRAINT", "SET NOT NULL"])
def test_rollback_killed_inside_its_not_null_resumes(pg_dsn_factory, tmp_path: Path,
                                                     statement: str) -> None:
    """The undo of a dropped NOT NULL column: re-add it nullable, refill it from the
    archive, then NOT NULL the lock-safe way (CHECK NOT VALID, VALIDATE, SET NOT NULL, drop
    the check: four statements, each committed by itself). ``lockplane rollback`` is
    SIGKILLed in the VALIDATE, or in the SET NOT NULL; the server finishes that statement.
    The same command run again goes on from the step (its clean-up drops the check) and
    ends at the state before the plan, values and all."""
    dsn = pg_dsn_factory()
    pg_exec(dsn, PEOPLE + "INSERT INTO people SELECT g, 'p' || g || '@x', NULL "
                 "FROM generate_series(1, 500) g;" + SLOW)
    pg_exec(dsn, f"ALTER DATABASE {dsn.rsplit('/', 1)[1]} SET lp.slow = '{statement}'")
    with connect(dsn) as db:
        start = db.introspect()
    forward = build_plan(start, _without_email(start))
    want = _rows(dsn, "SELECT id, email FROM people ORDER BY id")
    path = tmp_path / "plan.json"
    path.write_text(forward.to_json())
    done = _run(_apply(path, dsn, "--safety", "permissive"))
    assert done.returncode == 0, done.stderr
    back = _rollback(path, dsn)
    proc = subprocess.Popen(back, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=ENV)
    _session(dsn, statement, proc=proc)
    _kill(proc)
    rerun = _run(back)
    assert rerun.returncode == 0, rerun.stderr
    text = " ".join(rerun.stderr.split())
    assert "resuming migration" in text and "re-plan" not in text, text
    assert _rows(dsn, "SELECT id, email FROM people ORDER BY id") == want
    assert _rows(dsn, "SELECT attnotnull FROM pg_attribute WHERE attrelid = "
                      "'people'::regclass AND attname = 'email'") == [(True,)]
    assert _rows(dsn, "SELECT count(*) FROM pg_constraint WHERE conrelid = "
                      "'people'::regclass AND contype = 'c'") == [(0,)]
    assert _hash(dsn) == forward.source_hash
    assert [r for r, _, _ in _history(dsn)][-2:] == ["interrupted", "applied"]


def _without_email(schema: Any) -> Any:
    after = schema.model_copy(deep=True)
    table = after.table("public", "people")
    table.columns = [c for c in table.columns if c.name != "email"]
    return after
