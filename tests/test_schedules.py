"""Schedules fire: the session's Prefect server schedules runs of served deployments and
the runner completes them.

The drift-check deployment exactly as `lockplane serve` builds it (deployments/serve.py),
with its daily cron swapped for an interval of a few seconds, is served from a subprocess
twice over, against throwaway PostgreSQL databases: once with a target block and a
desired schema (no drift: runs complete), once as `lockplane serve` next to a
lockplane.toml serves it (a drifted environment, told to a local Slack stand-in). The
test waits (bounded) for runs the scheduler made to complete, reads the server's log for
errors from its scheduler service, and checks that three scheduled runs, each its own
process, told the drift once (the memory lives in the database: test_drift_schedule).
One serve process for both deployments: one Python start-up and one wait, not two.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from conftest import PrefectServer, pg_exec
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.exceptions import ObjectNotFound
from test_drift_schedule import PG_SCHEMA, _project, _slack, _texts
from test_flows import fake_slack  # noqa: F401 - the fixture is used by name

from blocks import DatabaseTarget
from lockplane.sources import load_schema

FIRE_TIMEOUT_S = 240  # typically ~25 s: serve and each run start a Python process
INTERVAL_S = 2

# `lockplane serve`'s drift-check deployment, on an interval instead of its daily cron:
# with a target and a desired schema, and with a project directory (lockplane.toml).
SERVE_SCRIPT = """
import sys
from prefect import serve
from prefect.deployments.schedules import create_deployment_schedule_create
from prefect.schedules import Interval
from deployments.serve import build_deployments

name, target, schema, memory_name, project, slack, every = sys.argv[1:]
(drift,) = [d for d in build_deployments(target, schema) if d.name == "drift-check"]
drift.name = name
(memory,) = [d for d in build_deployments(drift_project_dir=project)
             if d.name == "drift-check"]
memory.name = memory_name
memory.parameters = {**memory.parameters, "notify": slack}
for d in (drift, memory):
    d.schedules = [create_deployment_schedule_create(Interval(float(every)))]
serve(drift, memory)
"""

# What 3.8.8's scheduler logged every minute under SQLAlchemy 2.1 (and any other failure
# of its services: docket logs `ERROR | docket... schedule_deployments()` and a traceback).
SCHEDULER_ERROR = re.compile(r"ERROR.*schedul|Can't evaluate bulk DML", re.IGNORECASE)


def _scheduler_errors(log: Path, start: int) -> list[str]:
    with log.open("rb") as f:
        f.seek(start)
        text = f.read().decode(errors="replace")
    return [line for line in text.splitlines() if SCHEDULER_ERROR.search(line)]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End serve and any flow run it started (its own process group)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # serve pauses its deployment on the way out
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _runs(deployment_id: object) -> list[FlowRun]:
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(deployment_filter=DeploymentFilter(
            id=DeploymentFilterId(any_=[deployment_id])))


def _deployment_id(name: str) -> Any:
    try:
        with get_client(sync_client=True) as client:
            return client.read_deployment_by_name(f"drift-check/{name}").id
    except ObjectNotFound:
        return None  # serve has not registered it yet


def test_interval_schedule_fires_and_run_completes(
        prefect_server: PrefectServer, prefect_api: str, pg_dsn_factory: Any,
        fake_slack: str, tmp_path: Path) -> None:  # noqa: F811
    pg_dsn = pg_dsn_factory()  # type: ignore[operator]
    pg_exec(pg_dsn, "CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL)")
    desired = tmp_path / "schema.json"  # the live schema: no drift, so runs complete
    desired.write_text(load_schema(pg_dsn).to_json())
    block = f"sched-{secrets.token_hex(4)}"
    DatabaseTarget(dialect="postgres", dsn=pg_dsn).save(block)
    name = f"drift-every-{INTERVAL_S}s-{secrets.token_hex(4)}"
    # The drift memory's deployment: a drifted database, as `lockplane serve` started
    # next to lockplane.toml serves it.
    prod = pg_dsn_factory()  # type: ignore[operator]
    pg_exec(prod, PG_SCHEMA + "ALTER TABLE users ADD COLUMN hotfix int;")
    project = tmp_path / "project"
    project.mkdir()
    _project(project, {"prod": prod})
    slack = _slack(fake_slack)
    memory_name = f"drift-memory-{secrets.token_hex(4)}"
    log_start = prefect_server.log.stat().st_size
    serve_log = tmp_path / "serve.log"

    with serve_log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVE_SCRIPT, name, block, str(desired), memory_name,
             str(project), slack, str(INTERVAL_S)],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def failure(why: str) -> str:
        return (f"{why}\n--- serve log:\n{serve_log.read_text()[-3000:]}"
                f"\n--- scheduler errors in the server log:\n"
                + "\n".join(_scheduler_errors(prefect_server.log, log_start)[:20]))

    ids: dict[str, Any] = {name: None, memory_name: None}
    completed: dict[str, list[FlowRun]] = {name: [], memory_name: []}
    try:
        deadline = time.monotonic() + FIRE_TIMEOUT_S
        # One completed run of the first; three of the memory's, each its own process.
        while not completed[name] or len(completed[memory_name]) < 3:
            assert time.monotonic() < deadline, failure(
                f"scheduled runs completed within {FIRE_TIMEOUT_S} s: "
                f"{ {k: len(v) for k, v in completed.items()} }")
            assert proc.poll() is None, failure(f"serve exited with {proc.returncode}")
            assert not _scheduler_errors(prefect_server.log, log_start), failure(
                "the scheduler service failed")
            time.sleep(0.5)
            for dep in ids:
                if ids[dep] is None:
                    ids[dep] = _deployment_id(dep)
                    if ids[dep] is None:
                        continue
                runs = _runs(ids[dep])
                broken = [r for r in runs
                          if r.state_type in (StateType.FAILED, StateType.CRASHED)]
                assert not broken, failure(f"a scheduled run failed: {broken[0].state}")
                completed[dep] = [r for r in runs if r.state_type == StateType.COMPLETED]
    finally:
        _stop(proc)
        for deployment_id in ids.values():
            if deployment_id is not None:
                with get_client(sync_client=True) as client:
                    client.delete_deployment(deployment_id)  # and its remaining runs

    # Made by the scheduler service (auto_scheduled), not by hand, and really started.
    first = completed[name][0]
    assert first.auto_scheduled, first
    assert first.parameters == {"target": block, "desired_schema": str(desired)}
    assert first.expected_start_time is not None and first.start_time is not None
    assert not _scheduler_errors(prefect_server.log, log_start)
    assert all(r.auto_scheduled for r in completed[memory_name])
    assert completed[memory_name][0].parameters == {"project_dir": str(project),
                                                    "notify": slack}
    # Three runs, each its own process: the drift was told once.
    (msg,) = _texts()
    assert msg.startswith("⚠️ Drift found on prod") and "hotfix" in msg
