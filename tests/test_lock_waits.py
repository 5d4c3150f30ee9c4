"""Short lock waits, retried (lockplane.lockwait): a step that needs a strong lock behind a
long reader waits briefly, lets the queued statements through, and tries again within its
budget; when the budget runs out it fails naming the blocker; --cancel-blockers-after
cancels the blocker's statement instead. Real sessions on a real server throughout."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from lockplane.dialects import connect
from lockplane.errors import ExecutionFailed
from lockplane.execute import ApplyOptions, apply_plan
from lockplane.integrity import seal_plan
from lockplane.lockwait import Backoff
from lockplane.plan import DEFAULT_LOCK_TIMEOUT_MS, Plan, build_plan
from tests.cli_inprocess import completed
from tests.conftest import pg_exec

SETUP = ("CREATE TABLE t (id int PRIMARY KEY, v text); "
         "INSERT INTO t SELECT i, 'v' || i FROM generate_series(1, 1000) i;")
WANTED = "CREATE TABLE t (id int PRIMARY KEY, v text, note text);"
APP = "report-job"


def _plan(pg_dsn_factory) -> tuple[str, Plan]:
    a, b = pg_dsn_factory(), pg_dsn_factory()
    pg_exec(a, SETUP)
    pg_exec(b, WANTED)
    with connect(a) as db:
        before = db.introspect()
    with connect(b) as db:
        after = db.introspect()
    plan = build_plan(before, after)
    # The default plan waits briefly for each lock, reviewably, in its own SQL.
    assert plan.steps[0].sql[0] == f"SET lock_timeout = '{DEFAULT_LOCK_TIMEOUT_MS}ms'"
    assert plan.steps[0].lock is not None and plan.steps[0].lock.mode == "ACCESS EXCLUSIVE"
    return a, plan


def _hash(dsn: str) -> str:
    with connect(dsn) as db:
        return db.introspect().hash()


def _holds_lock(dsn: str, pid: int) -> bool:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return bool(conn.execute(
            "SELECT 1 FROM pg_locks WHERE pid = %s AND relation = 't'::regclass AND granted",
            (pid,)).fetchall())


@contextmanager
def idle_reader(dsn: str, app: str = APP) -> Iterator[psycopg.Connection]:
    """A report that read t and sits idle in its transaction (ACCESS SHARE held)."""
    conn = psycopg.connect(dsn, autocommit=False, application_name=app)
    conn.execute("SELECT count(*) FROM t")
    try:
        yield conn
    finally:
        conn.rollback()
        conn.close()


class ActiveReader(threading.Thread):
    """A report query running ``seconds`` on t, inside a transaction."""

    def __init__(self, dsn: str, seconds: float, app: str = APP) -> None:
        super().__init__(daemon=True)
        self.conn = psycopg.connect(dsn, autocommit=False, application_name=app)
        self.pid = self.conn.info.backend_pid
        self.seconds, self.error = seconds, None
        self.dsn = dsn

    def run(self) -> None:
        try:
            self.conn.execute("SELECT count(*) FROM t, pg_sleep(%s)", (self.seconds,))
            self.conn.commit()
        except psycopg.Error as exc:
            self.error = exc
            self.conn.rollback()

    def __enter__(self) -> ActiveReader:
        self.start()
        deadline = time.monotonic() + 10
        while not _holds_lock(self.dsn, self.pid):
            assert time.monotonic() < deadline, "the reader never got its lock"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute("SELECT pg_cancel_backend(%s)", (self.pid,))
        self.join(timeout=10)
        self.conn.close()


class Client(threading.Thread):
    """Point reads and writes on t from another connection, every statement timed."""

    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self.conn = psycopg.connect(dsn, autocommit=True, application_name="app-client")
        self.samples: list[tuple[float, float]] = []  # (started, seconds)
        self.stop = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            stmt = ("SELECT v FROM t WHERE id = %s" if n % 2
                    else "UPDATE t SET v = v WHERE id = %s")
            t0 = time.monotonic()
            self.conn.execute(stmt, (n % 1000 + 1,))
            self.samples.append((t0, time.monotonic() - t0))
            time.sleep(0.005)
        self.conn.close()


def _opts(**kw: object) -> ApplyOptions:
    return ApplyOptions(skip_shadow=True, **kw)  # type: ignore[arg-type]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The console script, in a process of its own."""
    return subprocess.run([sys.executable, "-m", "lockplane", *args], capture_output=True,
                          text=True, timeout=180)


def _cli_here(*args: str) -> subprocess.CompletedProcess[str]:
    """The same command line in this process (the console script's entry point and error
    mapping; ~1 s cheaper where a process of its own is not the point)."""
    return completed(*args)


# ---------------------------------------------------------------------------- the policy
def test_backoff_grows_with_jitter_up_to_its_cap() -> None:
    import random

    b = Backoff(0.1, 1.0, random.Random(7))
    pauses = [[b.pause(n) for _ in range(200)] for n in range(1, 8)]
    for n, ps in enumerate(pauses, 1):
        ceiling = min(1.0, 0.1 * 2 ** (n - 1))
        assert all(0.02 <= p <= max(0.02, ceiling) for p in ps)
        assert len({round(p, 4) for p in ps}) > 100  # jittered, not one value
    assert max(pauses[-1]) > 0.8  # grew to the cap


@pytest.mark.parametrize("kw", [{"lock_wait_budget_s": -1}, {"lock_wait_budget_s": float("nan")},
                                {"cancel_blockers_after_s": float("inf")}, {"retries": -1}])
def test_bad_numbers_are_bad_input(kw: dict[str, object]) -> None:
    from lockplane.errors import BadInput

    with pytest.raises(BadInput):
        ApplyOptions(**kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- apply
def test_a_reader_longer_than_the_budget_fails_the_step_naming_it(pg_dsn_factory) -> None:
    dsn, plan = _plan(pg_dsn_factory)
    with idle_reader(dsn) as reader:
        pid = reader.info.backend_pid
        t0 = time.monotonic()
        with pytest.raises(ExecutionFailed) as info:
            apply_plan(plan, dsn, _opts(lock_wait_budget_s=1.5))
        took = time.monotonic() - t0
    message = info.value.message
    assert f"pid {pid} (application '{APP}'" in message, message
    assert "idle in transaction" in message and "SELECT count(*) FROM t" in message
    assert "lock-wait budget" in message and "rolled back" in message
    assert "--cancel-blockers-after" in message
    assert 1.0 < took < 15
    assert _hash(dsn) == plan.source_hash  # nothing of the change is left
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT result FROM lockplane.migrations").fetchall() == [
            ("failed",)]


def test_cli_exit_1_with_the_blocker_in_one_message(pg_dsn_factory, tmp_path: Path) -> None:
    dsn, plan = _plan(pg_dsn_factory)
    path = tmp_path / "plan.json"
    path.write_text(seal_plan(plan).to_json())
    with idle_reader(dsn) as reader:
        proc = _cli("apply", str(path), "--target", dsn, "--auto-approve", "--skip-shadow",
                    "--lock-wait-budget", "1.5")
        pid = reader.info.backend_pid
    assert proc.returncode == 1, proc.stderr
    assert f"pid {pid}" in proc.stderr and APP in proc.stderr
    assert "Traceback" not in proc.stderr
    assert _hash(dsn) == plan.source_hash


def test_a_reader_that_finishes_soon_only_delays_the_step(pg_dsn_factory) -> None:
    dsn, plan = _plan(pg_dsn_factory)
    messages: list[str] = []
    with idle_reader(dsn) as reader:
        release = threading.Timer(1.2, reader.rollback)
        release.start()
        t0 = time.monotonic()
        try:
            result = apply_plan(plan, dsn, _opts(), report=messages.append)
        finally:
            release.join()
    assert result.status == "applied"
    assert time.monotonic() - t0 >= 1.1
    assert any("retry" in m and "lock timeout" in m for m in messages), messages
    assert _hash(dsn) == plan.target_hash


def test_client_statements_never_stall_longer_than_a_short_wait(pg_dsn_factory) -> None:
    """Plain DDL behind this 2.5 s report stalls every client statement for up to 2.5 s;
    the default plan's steps stall them at most one short lock wait (150 ms) at a time."""
    dsn, plan = _plan(pg_dsn_factory)
    client = Client(dsn)
    with ActiveReader(dsn, 2.5):
        client.start()
        t0 = time.monotonic()
        result = apply_plan(plan, dsn, _opts())
        t1 = time.monotonic()
    client.stop.set()
    client.join(timeout=10)
    assert result.status == "applied"
    assert t1 - t0 >= 1.8  # it really waited for the reader
    during = [s for start, s in client.samples if t0 <= start <= t1]
    assert len(during) > 50, len(during)
    worst_ms = max(during) * 1000
    # 150 ms of lock wait, plus generous room for a loaded CI machine: far below 2.5 s.
    assert worst_ms < DEFAULT_LOCK_TIMEOUT_MS + 850, worst_ms


# ---------------------------------------------------------------------------- cancelling
def test_cancel_blockers_after_cancels_the_reader_and_applies(pg_dsn_factory) -> None:
    dsn, plan = _plan(pg_dsn_factory)
    messages: list[str] = []
    with ActiveReader(dsn, 60) as reader:
        t0 = time.monotonic()
        result = apply_plan(plan, dsn, _opts(cancel_blockers_after_s=0.5,
                                              lock_wait_budget_s=20),
                            report=messages.append)
        took = time.monotonic() - t0
        reader.join(timeout=10)
        assert isinstance(reader.error, psycopg.errors.QueryCanceled)
    assert result.status == "applied" and took < 10
    assert _hash(dsn) == plan.target_hash
    assert any(f"cancelled the statement of pid {reader.pid} (application '{APP}'" in m
               for m in messages), messages


def test_cancelling_runs_the_server_s_own_function(pg_dsn_factory) -> None:
    """Lockplane's own calls name pg_catalog: a function the database holds (a plan made
    it) that overloads pg_cancel_backend(smallint) is a closer match than the built-in's
    integer for a pid psycopg sends as smallint (below 32768, as in containers), and ran
    instead, as the applying superuser, on d434a2e (checked with EXPLAIN VERBOSE)."""
    a, b = pg_dsn_factory(), pg_dsn_factory()
    trap = ("CREATE TABLE hijacked (pid int); CREATE FUNCTION public.pg_cancel_backend("
            "smallint) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN INSERT INTO hijacked "
            "VALUES ($1); RETURN false; END $$;")
    pg_exec(a, SETUP + trap)
    pg_exec(b, WANTED + trap)
    with connect(a) as db:
        before = db.introspect()
    with connect(b) as db:
        plan = build_plan(before, db.introspect())
    with ActiveReader(a, 60) as reader:
        result = apply_plan(plan, a, _opts(cancel_blockers_after_s=0.5, lock_wait_budget_s=20))
        reader.join(timeout=10)
        assert isinstance(reader.error, psycopg.errors.QueryCanceled)
        # (before the helper's own clean-up, which calls pg_cancel_backend as written)
        with psycopg.connect(a) as conn:
            assert conn.execute("SELECT count(*) FROM hijacked").fetchone() == (0,)
    assert result.status == "applied"


def test_lockplane_sessions_are_never_cancelled(pg_dsn_factory) -> None:
    dsn, plan = _plan(pg_dsn_factory)
    with ActiveReader(dsn, 60, app="lockplane-backfill") as reader:
        with pytest.raises(ExecutionFailed, match=f"pid {reader.pid}"):
            apply_plan(plan, dsn, _opts(cancel_blockers_after_s=0, lock_wait_budget_s=1.5))
        assert reader.is_alive() and reader.error is None
    assert _hash(dsn) == plan.source_hash


def test_an_idle_blocker_cannot_be_cancelled_and_the_error_says_so(pg_dsn_factory) -> None:
    dsn, plan = _plan(pg_dsn_factory)
    messages: list[str] = []
    with idle_reader(dsn) as reader, pytest.raises(ExecutionFailed) as info:
        pid = reader.info.backend_pid
        apply_plan(plan, dsn, _opts(cancel_blockers_after_s=0, lock_wait_budget_s=1.5),
                   report=messages.append)
    assert "not cancelled, being idle in a transaction" in info.value.message
    assert str(pid) in info.value.message
    assert any(f"cannot cancel pid {pid}" in m for m in messages), messages


# ---------------------------------------------------------------------------- rollback
def test_rollback_honours_the_budget_and_the_cancel(pg_dsn_factory, tmp_path: Path) -> None:
    dsn, plan = _plan(pg_dsn_factory)
    path = tmp_path / "plan.json"
    path.write_text(seal_plan(plan).to_json())
    apply_plan(plan, dsn, _opts())
    back = ("rollback", str(path), "--target", dsn, "--auto-approve", "--skip-shadow",
            "--safety", "permissive")
    with idle_reader(dsn) as reader:
        proc = _cli_here(*back, "--lock-wait-budget", "1.5")
        pid = reader.info.backend_pid
    assert proc.returncode == 1, proc.stderr
    assert f"pid {pid}" in proc.stderr and APP in proc.stderr
    assert _hash(dsn) == plan.target_hash
    with ActiveReader(dsn, 60) as active:
        proc = _cli_here(*back, "--cancel-blockers-after", "0.3")
        active.join(timeout=10)
    assert proc.returncode == 0, proc.stderr
    assert f"cancelled the statement of pid {active.pid}" in proc.stderr
    assert _hash(dsn) == plan.source_hash


# ---------------------------------------------------------------------------- phases
def test_apply_phase_honours_the_budget_and_the_cancel(pg_dsn: str, tmp_path: Path) -> None:
    pg_exec(pg_dsn, SETUP)
    mp = tmp_path / "mp.json"
    # Phase 1 (expand) adds the new column: ACCESS EXCLUSIVE on t, briefly.
    proc = _cli_here("plan-multiphase", "--pattern", "rename_column", "--table", "t",
                "--column", "v", "--to-name", "w", "--from", pg_dsn, "-o", str(mp))
    assert proc.returncode == 0, proc.stderr
    phase = ("apply-phase", str(mp), "--target", pg_dsn, "--phase", "1", "--auto-approve",
             "--skip-shadow")
    before = _hash(pg_dsn)
    with idle_reader(pg_dsn) as reader:
        proc = _cli_here(*phase, "--lock-wait-budget", "1.5")
        pid = reader.info.backend_pid
    assert proc.returncode == 1, proc.stderr
    assert f"pid {pid}" in proc.stderr and APP in proc.stderr
    assert _hash(pg_dsn) == before
    with ActiveReader(pg_dsn, 60) as active:
        proc = _cli_here(*phase, "--cancel-blockers-after", "0.3")
        active.join(timeout=10)
    assert proc.returncode == 0, proc.stderr
    assert f"cancelled the statement of pid {active.pid}" in proc.stderr
