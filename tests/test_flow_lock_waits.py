"""--cancel-blockers-after from the Prefect flows (``cancel_blockers_after_s``): a report
query holds the table in a long transaction; the flow's step waits briefly, then cancels
the report's statement, applies, and says so in the run's logs. Real flows on the
session's Prefect server, real sessions on PostgreSQL."""

from __future__ import annotations

import secrets
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import psycopg
from conftest import pg_exec
from phase_support import read_run, wait_for_pause
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.states import State
from test_lock_waits import APP, SETUP, ActiveReader

from flows.apply_migration import apply_migration
from flows.approvals import approve_run
from flows.multiphase_migration import multiphase_migration
from lockplane.dialects import connect
from lockplane.multiphase import load_multiphase_plan, runner


def _logs(run_id: Any) -> str:
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()  # send queued run logs to the server now
    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(
            any_=[run_id])))
    return "\n".join(log.message for log in logs)


def _columns(dsn: str) -> list[str]:
    with connect(dsn) as db:
        table = db.introspect().table("public", "t")
        assert table is not None
        return [c.name for c in table.columns]


def test_apply_migration_cancels_the_blocking_report(prefect_api: str, pg_dsn: str,
                                                      tmp_path: Path) -> None:
    pg_exec(pg_dsn, SETUP)
    desired = tmp_path / "schema.sql"
    desired.write_text("CREATE TABLE t (id int PRIMARY KEY, v text, note text);")

    # A bad value is refused before anything is planned or waited for.
    bad = apply_migration(target=pg_dsn, desired_schema=str(desired),
                          cancel_blockers_after_s=-1, return_state=True)
    assert bad.is_failed() and "--cancel-blockers-after" in str(bad.message)
    assert "note" not in _columns(pg_dsn)

    with ActiveReader(pg_dsn, 60) as reader:
        state = apply_migration(target=pg_dsn, desired_schema=str(desired),
                                cancel_blockers_after_s=0.3, return_state=True)
        reader.join(timeout=10)
        assert isinstance(reader.error, psycopg.errors.QueryCanceled), reader.error
    assert state.is_completed(), state.message
    assert state.result()["status"] == "applied"
    assert _columns(pg_dsn) == ["id", "v", "note"]
    run_id = state.state_details.flow_run_id
    assert f"cancelled the statement of pid {reader.pid} (application '{APP}'" \
        in _logs(run_id)


class _FlowThread(threading.Thread):
    def __init__(self, name: str, **params: Any) -> None:
        super().__init__(daemon=True)
        self.name_, self.params = name, params
        self.state: State | None = None

    def run(self) -> None:
        flow = multiphase_migration.with_options(flow_run_name=self.name_)
        self.state = flow(**self.params, return_state=True)


def test_multiphase_flow_cancels_the_blocking_report(prefect_api: str, pg_dsn: str,
                                                     tmp_path: Path) -> None:
    pg_exec(pg_dsn, SETUP)
    plan = tmp_path / "mp.json"
    # Phase 1 (expand) adds the new column: ACCESS EXCLUSIVE on t, briefly.
    proc = subprocess.run([sys.executable, "-m", "lockplane", "plan-multiphase", "--pattern",
                           "rename_column", "--table", "t", "--column", "v", "--to-name",
                           "w", "--from", pg_dsn, "-o", str(plan)],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    mp = load_multiphase_plan(str(plan))
    name = f"cancel-{secrets.token_hex(4)}"
    flow = _FlowThread(name, plan=str(plan), target=pg_dsn, approval_timeout_s=120,
                       cancel_blockers_after_s=0.3)
    with ActiveReader(pg_dsn, 60) as reader:
        flow.start()
        run_id = wait_for_pause(name, "approve-phase-1", worker=flow)
        reader.join(timeout=10)
        assert isinstance(reader.error, psycopg.errors.QueryCanceled), reader.error
    assert "w" in _columns(pg_dsn)
    assert [e["phase"] for e in runner.migration_state(mp, pg_dsn).events
            if e["action"] == "applied"] == [1]
    assert f"cancelled the statement of pid {reader.pid} (application '{APP}'" \
        in _logs(run_id)

    approve_run(str(run_id), approver="alice", approved=False, comment="not today")
    flow.join(60)
    assert not flow.is_alive() and flow.state is not None and flow.state.is_cancelled()
    run = read_run(name)
    assert run is not None and run.parameters["cancel_blockers_after_s"] == 0.3
