"""The executor under stress: a crash mid-apply resumes, two applies never interleave,
lock timeouts retry, and the history says what happened."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from lockplane.dialects import connect
from lockplane.errors import SafetyRefusal
from lockplane.execute import ApplyOptions, apply_plan
from lockplane.plan import build_plan, rollback_plan
from lockplane.state import LOCK_KEY
from tests.conftest import pg_exec

FROM = "CREATE TYPE mood AS ENUM ('a'); CREATE TABLE base (id int PRIMARY KEY, m mood);"
TO = FROM.replace("('a')", "('a', 'b')") + (
    " CREATE TABLE t1 (id int PRIMARY KEY); CREATE TABLE t2 (id int PRIMARY KEY);")


def _plan(pg_dsn_factory, **kw: object) -> tuple[str, object]:
    a, b = pg_dsn_factory(), pg_dsn_factory()
    pg_exec(a, FROM)
    pg_exec(b, TO)
    with connect(a) as db:
        before = db.introspect()
    with connect(b) as db:
        after = db.introspect()
    return a, build_plan(before, after, **kw)


def _history(dsn: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT result, steps_done, steps_total FROM lockplane.migrations "
                            "ORDER BY id").fetchall()


def test_crash_mid_apply_resumes_from_last_committed_step(pg_dsn_factory, tmp_path: Path) -> None:
    dsn, plan = _plan(pg_dsn_factory)
    assert not plan.steps[0].transactional  # ALTER TYPE ... ADD VALUE runs alone
    # Make the last transactional group slow so the process can be killed inside it.
    plan.steps[-1].sql.append("SELECT pg_sleep(60)")
    path = tmp_path / "plan.json"
    path.write_text(plan.to_json())
    env = {**os.environ}
    proc = subprocess.Popen([sys.executable, "-m", "lockplane", "apply", str(path), "--target",
                             dsn, "--auto-approve", "--skip-shadow"], env=env,
                            stderr=subprocess.PIPE, stdout=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            rows = _history(dsn)
        except psycopg.errors.UndefinedTable:
            rows = []
        if rows and rows[0][1] >= 1:
            break
        time.sleep(0.2)
    time.sleep(1.0)  # inside the sleeping transaction now
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _history(dsn) == [("running", 1, len(plan.steps))]
    # The killed transaction rolled back; the enum value committed on its own.
    plan.steps[-1].sql.pop()
    path.write_text(plan.to_json())
    # (--orphan-wait 0: the killed run's pg_sleep, still running on the server, is
    # cancelled at once rather than waited for.)
    proc2 = subprocess.run([sys.executable, "-m", "lockplane", "apply", str(path), "--target",
                            dsn, "--auto-approve", "--skip-shadow", "--orphan-wait", "0"],
                           capture_output=True, text=True, timeout=120)
    # Editing the plan changed its identity: the resume must not accept a different plan.
    assert proc2.returncode == 3, proc2.stderr


def test_resume_with_the_same_plan(pg_dsn_factory, tmp_path: Path) -> None:
    dsn, plan = _plan(pg_dsn_factory)
    path = tmp_path / "plan.json"
    # A blocker session makes the last group wait on a lock, then we kill the apply.
    blocker = psycopg.connect(dsn, autocommit=False)
    blocker.execute("LOCK TABLE base IN ACCESS EXCLUSIVE MODE")
    plan.steps[-1].sql.insert(0, "LOCK TABLE base IN ACCESS SHARE MODE")
    path.write_text(plan.to_json())
    proc = subprocess.Popen([sys.executable, "-m", "lockplane", "apply", str(path), "--target",
                             dsn, "--auto-approve", "--skip-shadow", "--lock-timeout-ms",
                             "30000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            rows = _history(dsn)
        except psycopg.errors.UndefinedTable:
            rows = []
        if rows and rows[0][1] >= 1:
            break
        time.sleep(0.2)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    blocker.rollback()
    blocker.close()
    proc2 = subprocess.run([sys.executable, "-m", "lockplane", "apply", str(path), "--target",
                            dsn, "--auto-approve", "--skip-shadow"], capture_output=True,
                           text=True, timeout=120)
    assert proc2.returncode == 0, proc2.stderr
    assert "resuming" in proc2.stderr
    # The killed run is marked as such; the re-run carried on under a new record.
    assert _history(dsn) == [("interrupted", 1, len(plan.steps)),
                             ("applied", len(plan.steps), len(plan.steps))]
    with connect(dsn) as db:
        assert db.introspect().hash() == plan.target_hash


def test_two_applies_never_interleave(pg_dsn_factory) -> None:
    dsn, plan = _plan(pg_dsn_factory)
    holder = psycopg.connect(dsn, autocommit=True)
    holder.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
    try:
        with pytest.raises(SafetyRefusal, match="another Lockplane operation"):
            apply_plan(plan, dsn, ApplyOptions(skip_shadow=True))
    finally:
        holder.close()
    assert apply_plan(plan, dsn, ApplyOptions(skip_shadow=True)).status == "applied"


def test_lock_timeout_retries_then_succeeds(pg_dsn_factory) -> None:
    # Every PostgreSQL step starts with the plan's own SET lock_timeout (which stays set
    # for the session): the plan and the executor both wait 300 ms here.
    dsn, plan = _plan(pg_dsn_factory, lock_timeout_ms=300)
    assert plan.steps[-1].sql[0] == "SET lock_timeout = '300ms'"
    blocker = psycopg.connect(dsn, autocommit=False)
    blocker.execute("LOCK TABLE base IN ACCESS EXCLUSIVE MODE")
    plan.steps[-1].sql.insert(0, "LOCK TABLE base IN ACCESS SHARE MODE")
    messages: list[str] = []
    release = threading.Timer(1.5, blocker.rollback)
    release.start()
    try:
        result = apply_plan(plan, dsn, ApplyOptions(skip_shadow=True, lock_timeout_ms=300,
                                                    retries=5, retry_backoff_s=0.3),
                            report=messages.append)
    finally:
        release.join()
        blocker.close()
    assert result.status == "applied"
    assert any("retry" in m for m in messages), messages


def test_history_is_json(pg_dsn_factory) -> None:
    dsn, plan = _plan(pg_dsn_factory)
    apply_plan(plan, dsn, ApplyOptions(skip_shadow=True, applied_by="alice"))
    out = subprocess.run([sys.executable, "-m", "lockplane", "history", "--target", dsn,
                          "--json"], capture_output=True, text=True, check=True).stdout
    rec = json.loads(out)[0]
    assert rec["applied_by"] == "alice" and rec["hash_after"] == plan.target_hash


def test_backfill_runs_again_after_a_rollback(pg_dsn_factory) -> None:
    """A backfill's checkpoint is keyed by its table and statement, not by the apply: the
    checkpoint an earlier apply finished (since rolled back) must not turn the same step
    into a no-op when the plan is applied again."""
    a, b = pg_dsn_factory(), pg_dsn_factory()
    pg_exec(a, "CREATE TABLE t (id int PRIMARY KEY); "
               "INSERT INTO t SELECT generate_series(1, 50);")
    pg_exec(b, "CREATE TABLE t (id int PRIMARY KEY, token uuid DEFAULT gen_random_uuid());")
    with connect(a) as db:
        before = db.introspect()
    with connect(b) as db:
        after = db.introspect()
    plan = build_plan(before, after)
    assert any(s.backfill for s in plan.steps)  # volatile default: batched backfill
    for _ in range(2):
        assert apply_plan(plan, a, ApplyOptions(skip_shadow=True)).status == "applied"
        with psycopg.connect(a) as conn:
            assert conn.execute("SELECT count(*) FROM t WHERE token IS NULL"
                                ).fetchone()[0] == 0
        apply_plan(rollback_plan(plan), a, ApplyOptions(skip_shadow=True, safety="permissive"))
        with connect(a) as db:
            assert db.introspect().hash() == plan.source_hash
