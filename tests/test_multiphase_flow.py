"""The multi-phase flow on a real Prefect server (session fixture ``prefect_api``) against
real PostgreSQL and SQLite: a column rename while an application keeps working, with
approvals given through the Prefect API as an operator's would (``approve_run``).

(a) old and new code run side by side, nothing is lost, the end state is the desired
schema; (b) a rejected approval stops without touching the database (or rolls back when
asked); (c) rollback at every phase; (d) a crash in the middle of a phase, then a re-run
that continues from the state in the database; (e) one active migration per table;
and from a served deployment the run suspends (no process while waiting) and resumes.
"""

from __future__ import annotations

import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import pg_exec
from phase_support import App, Db, artifacts, read_run, wait_for_pause
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import StateType
from prefect.input.actions import read_flow_run_input
from prefect.states import State
from test_flows import _FakeSlack, fake_slack  # noqa: F401 - the fixture is used by name

import flows.multiphase_migration as mpflow
from blocks import SlackNotifier
from flows.approvals import approve_run
from flows.multiphase_migration import multiphase_migration
from lockplane.ci_report import text
from lockplane.errors import BadInput, SafetyRefusal
from lockplane.execute import ApplyOptions
from lockplane.multiphase import plan_multiphase, runner
from lockplane.multiphase.model import MultiPhasePlan
from lockplane.sources import load_schema

PG_SETUP = """
CREATE TABLE users (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    email text NOT NULL UNIQUE, name text);
INSERT INTO users (email, name) SELECT 'u' || g || '@x', 'seed' FROM generate_series(1, 200) g;
"""
PG_DESIRED = """
CREATE TABLE users (
    id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email_address text NOT NULL UNIQUE, -- lockplane:renamed-from email
    name text
);
"""
SQLITE_SETUP = """
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT);
WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < 200)
INSERT INTO users (email, name) SELECT 'u' || x || '@x', 'seed' FROM g;
"""
SQLITE_DESIRED = """
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    email_address TEXT NOT NULL UNIQUE, -- lockplane:renamed-from email
    name TEXT
);
"""
SEED_ROWS = 200
APPROVAL_TIMEOUT_S = 120  # a test that forgets to approve fails instead of hanging
# Runner-level applies and rollbacks in these tests skip the shadow copy: every phase and
# its rollback already ran on a scratch copy when the plan was built, and the flow's own
# applies keep theirs.
PERMISSIVE = ApplyOptions(safety="permissive", skip_shadow=True)
NO_SHADOW = ApplyOptions(skip_shadow=True)


@pytest.fixture(params=["postgres", "sqlite"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Db:
    if request.param == "postgres":
        dsn = request.getfixturevalue("pg_dsn")
        pg_exec(dsn, PG_SETUP)
        return Db("postgres", dsn)
    d = Db("sqlite", f"sqlite:///{tmp_path / 'app.db'}")
    d.execute(SQLITE_SETUP)
    return d


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """A paused run checks every 0.1 s whether it was approved (0.5 s by default): each
    approval waits up to one interval before the run goes on."""
    monkeypatch.setattr(mpflow, "APPROVAL_POLL_S", 0.1)


def _plan(db: Db, tmp_path: Path, desired_sql: str | None = None) -> tuple[MultiPhasePlan, Path]:
    desired = tmp_path / "schema.sql"
    desired.write_text(desired_sql or (PG_DESIRED if db.dialect == "postgres"
                                       else SQLITE_DESIRED))
    mp = plan_multiphase(db.schema(), load_schema(str(desired), db.ctx),
                         server_dsn=db.ctx.server_dsn)
    assert mp.total_phases == len(mp.phases)
    path = tmp_path / "rename.json"
    path.write_text(mp.to_json())
    return mp, path


def _name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


class FlowThread(threading.Thread):
    """A flow run in this process (outside a deployment: it pauses in place)."""

    def __init__(self, name: str, **params: Any) -> None:
        super().__init__(daemon=True)
        self.name_, self.params = name, params
        self.state: State | None = None

    def run(self) -> None:
        flow = multiphase_migration.with_options(flow_run_name=self.name_)
        self.state = flow(**{"approval_timeout_s": APPROVAL_TIMEOUT_S, **self.params},
                          return_state=True)

    def finish(self, timeout_s: float = 120) -> State:
        self.join(timeout_s)
        assert not self.is_alive(), f"{self.name_} still running"
        assert self.state is not None
        return self.state


def _applied(mp: MultiPhasePlan, dsn: str) -> list[int]:
    state = runner.migration_state(mp, dsn)
    return [e["phase"] for e in state.events if e["action"] == "applied"]


# ---------------------------------------------------------------------------- (a)
def test_rename_while_the_application_runs(prefect_api: str, db: Db, tmp_path: Path) -> None:
    mp, plan = _plan(db, tmp_path)
    assert mp.operation == "rename_column" and [p.name for p in mp.phases] == [
        "expand", "migrate", "contract"]
    app = App(db)
    app.start()
    app.run_until("v1", 5)
    name = _name("rename")
    flow = FlowThread(name, plan=str(plan), target=db.dsn)
    flow.start()

    run_id = wait_for_pause(name, "approve-phase-1", worker=flow)
    assert {"email", "email_address"} <= set(db.columns("users"))
    # "Deploy" the new code next to the old: both run against the same rows.
    app.versions = {"v1", "v2"}
    app.run_until("v2", 10)
    # The UI's resume form shows the same what-to-deploy-and-verify text.
    form = read_flow_run_input("paused-approve-phase-1-description", flow_run_id=run_id)
    # (as inert Markdown text: the plan's prose is not covered by its plan_id)
    deploy = text("Deploy code that reads and writes email_address", None)
    assert deploy in form
    deploy_md = artifacts(run_id)[f"mp-{mp.id}-approve-phase-1"]
    assert deploy in deploy_md
    assert "lockplane approve" in deploy_md and "SELECT 1 FROM" in deploy_md
    approve_run(str(run_id), approver="alice", comment="v2 on 50%")

    wait_for_pause(name, "approve-phase-2", worker=flow)
    app.run_until("v1", 5)
    app.run_until("v2", 5)
    app.versions = {"v2"}  # every instance runs the new code now
    app.run_until("v2", 5)
    approve_run(str(run_id), approver="bob")

    state = flow.finish()
    app.run_until("v2", 5)
    app.stop.set()
    app.join(30)
    assert state.is_completed(), state.message
    assert state.result()["applied_in_this_run"] == [1, 2, 3]
    assert not app.errors, app.errors[:5]
    assert app.both["v1"] >= 10 and app.both["v2"] >= 10  # the side-by-side window

    # End state: exactly the desired schema; no write lost, each row as last written.
    assert db.schema().hash() == mp.target_hash
    assert "email" not in db.columns("users")
    rows = dict(db.query("SELECT id, email_address FROM users"))
    assert len(rows) == SEED_ROWS + sum(1 for v in app.by if v > SEED_ROWS)
    assert {i: rows[i] for i in app.written} == app.written
    assert rows[1] == app.written.get(1, "u1@x")

    # The state records who approved what; the run's artifacts say what ran.
    events = runner.migration_state(mp, db.dsn).events
    approvals = [(e["phase"], e["who"], e.get("comment")) for e in events
                 if e["action"] == "approved"]
    assert approvals == [(1, "alice", "v2 on 50%"), (2, "bob", None)]
    assert _applied(mp, db.dsn) == [1, 2, 3]
    # Verified once each: the flow's check after the approval is the "verified" event;
    # the engine's gate re-checking it before the next phase is told in that apply.
    verified = [e["phase"] for e in events if e["action"] == "verified"]
    assert sorted(verified) == sorted({p.phase_number for p in mp.phases if p.verification})
    assert [e.get("verified_first") for e in events if e["action"] == "applied"] == [
        None, *[n if mp.phase(n).verification else None for n in (1, 2)]]
    arts = artifacts(run_id)
    assert {f"mp-{mp.id}-phase-{n}" for n in (1, 2, 3)} <= arts.keys()
    contract_md = arts[f"mp-{mp.id}-phase-3"]
    assert contract_md.startswith("# Phase 3/3 (contract)")
    assert ('DROP COLUMN "email"' if db.dialect == "postgres" else "Rebuild table") \
        in contract_md

    # Running the flow again: nothing to do, nothing repeated.
    again = multiphase_migration(plan=plan.read_text(), target=db.dsn)
    assert again["applied_in_this_run"] == [] and again["status"] == "completed"


# ---------------------------------------------------------------------------- (b)
def test_rejected_approval(prefect_api: str, db: Db, tmp_path: Path, fake_slack: str  # noqa: F811
                           ) -> None:
    mp, plan = _plan(db, tmp_path)
    slack = _name("slack")
    SlackNotifier(bot_token="xoxb-test", channel="#db", base_url=fake_slack).save(slack)
    name = _name("reject")
    flow = FlowThread(name, plan=str(plan), target=db.dsn, notify=slack)
    flow.start()
    run_id = wait_for_pause(name, "approve-phase-1", worker=flow)
    approve_run(str(run_id), approver="carol", comment="v2 breaks checkout", approved=False)
    state = flow.finish()

    # Stopped, not rolled back: the database stays after phase 1, the old code works.
    assert state.type == StateType.CANCELLED
    assert "rejected by carol" in str(state.message) and "rollback-phase" in str(state.message)
    assert db.schema().hash() == mp.phase(1).plan.target_hash
    st = runner.migration_state(mp, db.dsn)
    assert st.status == "active" and st.completed_phases == 1
    assert st.rejections(1)[0]["who"] == "carol"
    md = artifacts(run_id)[f"mp-{mp.id}-rejected"]
    assert f"lockplane rollback-phase {plan} --target ... --to-phase 0" in md
    texts = [m["text"] for m in _FakeSlack.received]
    assert any("applied" in t for t in texts)
    waiting = next(t for t in texts if "approve the next phase" in t)
    assert f"/runs/flow-run/{run_id}" in waiting
    assert any("rejected by carol" in t for t in texts)

    # A second run asks again; rejected with rollback_on_reject it undoes phase 1.
    name2 = _name("reject-rollback")
    flow = FlowThread(name2, plan=str(plan), target=db.dsn, rollback_on_reject=True)
    flow.start()
    run_id = wait_for_pause(name2, "approve-phase-1", worker=flow)
    approve_run(str(run_id), approver="carol", approved=False)
    state = flow.finish()
    assert state.type == StateType.CANCELLED and "rolled back" in str(state.message)
    assert db.schema().hash() == mp.source_hash
    assert runner.migration_state(mp, db.dsn).status == "rolled_back"
    assert db.query("SELECT count(*) FROM users WHERE email = 'u' || id || '@x'")[0][0] \
        == SEED_ROWS

    # Nothing waits any more: approving it is bad input (exit 2), as is a made-up run.
    with pytest.raises(BadInput, match="not waiting"):
        approve_run(str(run_id), approver="carol")
    with pytest.raises(BadInput, match="no flow run"):
        approve_run("3fa85f64-5717-4562-b3fc-2c963f66afa6", approver="carol")


# ---------------------------------------------------------------------------- (c)
def test_rollback_at_every_phase(prefect_api: str, db: Db, tmp_path: Path) -> None:
    mp, plan = _plan(db, tmp_path)
    for n in (1, 2, 3):
        if n > 1 and mp.phase(n - 1).requires_code_deploy:
            runner.approve(mp, db.dsn, n - 1, "ops")
        runner.apply_phase(mp, db.dsn, n, options=NO_SHADOW)
        assert db.schema().hash() == mp.phase(n).plan.target_hash
        runner.rollback(mp, db.dsn, options=PERMISSIVE)  # undo phase n only
        assert db.schema().hash() == mp.phase(n).plan.source_hash
        assert runner.migration_state(mp, db.dsn).completed_phases == n - 1
        if n < 3:
            runner.apply_phase(mp, db.dsn, n, options=NO_SHADOW)  # and forward again
    # The old column is back with its values after undoing the contract phase.
    assert db.query("SELECT count(*) FROM users WHERE email = 'u' || id || '@x'")[0][0] \
        == SEED_ROWS
    # The flow continues from what the database says: phase 2 is applied and approved, so
    # it applies phase 3 at once, no approval wait, nothing repeated.
    result = multiphase_migration(plan=str(plan), target=db.dsn,
                                  approval_timeout_s=APPROVAL_TIMEOUT_S)
    assert result["applied_in_this_run"] == [3]
    assert db.schema().hash() == mp.target_hash
    runner.rollback(mp, db.dsn, 0, options=PERMISSIVE)
    assert db.schema().hash() == mp.source_hash
    assert db.query("SELECT count(*) FROM users")[0][0] == SEED_ROWS


# ---------------------------------------------------------------------------- (d)
@pytest.fixture
def blocked_table(db: Db) -> Iterator[psycopg.Connection[Any] | None]:
    """PostgreSQL: a transaction holding a lock on users, so phase DDL waits for it."""
    if db.dialect != "postgres":
        yield None
        return
    conn = psycopg.connect(db.dsn)
    try:
        yield conn
    finally:
        conn.close()


def _wait_lock_waiter(dsn: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'").fetchone()
            if waiting and waiting[0]:
                return
            time.sleep(0.1)
    raise AssertionError("the phase never waited for the lock")


def test_crash_mid_phase_then_rerun(prefect_api: str, db: Db, tmp_path: Path,
                                    blocked_table: psycopg.Connection[Any] | None) -> None:
    mp, plan = _plan(db, tmp_path)
    # Phase 1 from the CLI's side of the shared state, approved there too.
    runner.apply_phase(mp, db.dsn, 1, options=NO_SHADOW)
    runner.approve(mp, db.dsn, 1, "dave", "deployed by hand")
    name = _name("crash")
    if blocked_table is not None:
        # PostgreSQL: phase 2's ALTER waits for our lock; kill -9 the process running it.
        blocked_table.execute("LOCK TABLE users IN ACCESS SHARE MODE")
        code = ("from flows.multiphase_migration import multiphase_migration as f; "
                f"f.with_options(flow_run_name={name!r})(plan={str(plan)!r}, "
                f"target={db.dsn!r})")
        proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env={**os.environ, "PREFECT_LOGGING_LEVEL": "WARNING"})
        try:
            _wait_lock_waiter(db.dsn)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        blocked_table.rollback()
        crashed = read_run(name)
        assert crashed is not None and crashed.state is not None
        assert crashed.state.is_running()  # the process died; the server never heard
    else:
        # SQLite: phase 2 rebuilds the table; a leftover of an interrupted rebuild (a
        # table introspection does not see) makes it fail halfway, rolled back.
        db.execute("CREATE TABLE _lockplane_new_users (x int)")
        state = multiphase_migration.with_options(flow_run_name=name)(
            plan=str(plan), target=db.dsn, approval_timeout_s=APPROVAL_TIMEOUT_S,
            return_state=True)
        assert state.is_failed()
        with pytest.raises(Exception, match="_lockplane_new_users\" already exists; rolled back"):
            state.result()
        db.execute("DROP TABLE _lockplane_new_users")

    # The state is as it was before the phase: phase 1 done and approved, nothing else.
    assert db.schema().hash() == mp.phase(2).plan.source_hash
    st = runner.migration_state(mp, db.dsn)
    assert st.completed_phases == 1 and st.approvals(1)

    # A new run continues from there: phase 2, wait, phase 3. No phase runs twice.
    name2 = _name("retry")
    flow = FlowThread(name2, plan=str(plan), target=db.dsn)
    flow.start()
    run_id = wait_for_pause(name2, "approve-phase-2", worker=flow)
    approve_run(str(run_id), approver="dave")
    state = flow.finish()
    assert state.is_completed(), state.message
    assert state.result()["applied_in_this_run"] == [2, 3]
    assert _applied(mp, db.dsn) == [1, 2, 3]
    assert db.schema().hash() == mp.target_hash
    assert db.query("SELECT count(*) FROM users")[0][0] == SEED_ROWS


# ---------------------------------------------------------------------------- (e)
def test_one_active_migration_per_table(prefect_api: str, db: Db, tmp_path: Path) -> None:
    mp, plan = _plan(db, tmp_path)
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    without_name = ("CREATE TABLE users (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
                    "email text NOT NULL UNIQUE);" if db.dialect == "postgres" else
                    "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE);")
    other, other_plan = _plan(db, other_dir, without_name)
    assert other.operation == "drop_column" and other.table == mp.table

    name = _name("first")
    first = FlowThread(name, plan=str(plan), target=db.dsn)
    first.start()
    run_id = wait_for_pause(name, "approve-phase-1", worker=first)

    state = multiphase_migration(plan=str(other_plan), target=db.dsn,
                                 approval_timeout_s=APPROVAL_TIMEOUT_S, return_state=True)
    assert state.is_failed()
    with pytest.raises(SafetyRefusal, match="already has an active multi-phase migration"):
        state.result()
    assert db.schema().hash() == mp.phase(1).plan.target_hash  # the second did nothing

    approve_run(str(run_id), approver="erin", approved=False)
    assert first.finish().type == StateType.CANCELLED
    runner.rollback(mp, db.dsn, 0, options=PERMISSIVE)
    # Once the first is rolled back, the other one may start.
    assert runner.migration_state(other, db.dsn).status == "active"


# ---------------------------------------------------------------------------- deployment
def test_served_deployment_suspends_and_resumes(prefect_api: str, tmp_path: Path) -> None:
    """From a deployment the run suspends: no process waits, and on resume it starts over
    from the top, skips what the database says is done, and goes on."""
    from prefect.deployments import run_deployment

    db = Db("sqlite", f"sqlite:///{tmp_path / 'app.db'}")
    db.execute(SQLITE_SETUP)
    mp, plan = _plan(db, tmp_path)
    log = tmp_path / "serve.log"
    code = "from deployments.serve import serve_all; serve_all()"
    with log.open("wb") as out:
        server = subprocess.Popen([sys.executable, "-c", code], stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True,
                                  env={**os.environ, "PREFECT_RUNNER_POLL_FREQUENCY": "1"})
    try:
        _wait_for_deployment("multiphase-migration/multiphase-migration", server, log)
        run = run_deployment("multiphase-migration/multiphase-migration", timeout=0,
                             parameters={"plan": str(plan), "target": db.dsn})
        for n in (1, 2):
            run_id = wait_for_pause(run.name, f"approve-phase-{n}", timeout_s=120)
            paused = read_run(run.name)
            assert paused is not None and paused.state is not None
            assert paused.state.name == "Suspended"
            assert runner.migration_state(mp, db.dsn).completed_phases == n
            approve_run(str(run_id), approver="frank", comment=f"deploy {n} done")
        deadline = time.monotonic() + 120
        while True:
            with get_client(sync_client=True) as client:
                (final,) = client.read_flow_runs(flow_run_filter=FlowRunFilter(
                    id=FlowRunFilterId(any_=[run.id])))
            if final.state and final.state.is_final():
                break
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        assert final.state.is_completed(), (final.state.message, log.read_text()[-3000:])
        assert _applied(mp, db.dsn) == [1, 2, 3]  # three process starts, each phase once
        assert db.schema().hash() == mp.target_hash
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    with sqlite3.connect(db.path) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone()[0] == SEED_ROWS


def _wait_for_deployment(name: str, server: subprocess.Popen[bytes], log: Path,
                         timeout_s: float = 90) -> None:
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + timeout_s
    while True:
        assert server.poll() is None, log.read_text()[-3000:]
        try:
            with get_client(sync_client=True) as client:
                client.read_deployment_by_name(name)
            return
        except ObjectNotFound:
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
