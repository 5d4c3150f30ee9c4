"""Schedules fire: the session's Prefect server schedules runs of a served deployment and
the runner completes them.

The drift-check deployment exactly as `lockplane serve` builds it (deployments/serve.py),
with its daily cron swapped for an interval of a few seconds, is served from a subprocess
against a throwaway PostgreSQL database; the test waits (bounded) for a run the scheduler
made to complete, and reads the server's log for errors from its scheduler service.
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

from conftest import PrefectServer, pg_exec
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.exceptions import ObjectNotFound

from blocks import DatabaseTarget
from lockplane.sources import load_schema

FIRE_TIMEOUT_S = 90  # typically ~15 s: serve and each run start a Python process
INTERVAL_S = 2

# `lockplane serve`'s drift-check deployment, on an interval instead of its daily cron.
SERVE_SCRIPT = """
import sys
from prefect import serve
from prefect.deployments.schedules import create_deployment_schedule_create
from prefect.schedules import Interval
from deployments.serve import build_deployments

name, target, schema, every = sys.argv[1:]
(drift,) = [d for d in build_deployments(target, schema) if d.name == "drift-check"]
drift.name = name
drift.schedules = [create_deployment_schedule_create(Interval(float(every)))]
serve(drift)
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


def test_interval_schedule_fires_and_run_completes(prefect_server: PrefectServer,
                                                   prefect_api: str, pg_dsn: str,
                                                   tmp_path: Path) -> None:
    pg_exec(pg_dsn, "CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL)")
    desired = tmp_path / "schema.json"  # the live schema: no drift, so runs complete
    desired.write_text(load_schema(pg_dsn).to_json())
    block = f"sched-{secrets.token_hex(4)}"
    DatabaseTarget(dialect="postgres", dsn=pg_dsn).save(block)
    name = f"drift-every-{INTERVAL_S}s-{secrets.token_hex(4)}"
    log_start = prefect_server.log.stat().st_size
    serve_log = tmp_path / "serve.log"

    with serve_log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVE_SCRIPT, name, block, str(desired), str(INTERVAL_S)],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def failure(why: str) -> str:
        return (f"{why}\n--- serve log:\n{serve_log.read_text()[-3000:]}"
                f"\n--- scheduler errors in the server log:\n"
                + "\n".join(_scheduler_errors(prefect_server.log, log_start)[:20]))

    deployment_id = None
    completed: FlowRun | None = None
    try:
        deadline = time.monotonic() + FIRE_TIMEOUT_S
        while completed is None:
            assert time.monotonic() < deadline, failure(
                f"no scheduled run of {name} completed within {FIRE_TIMEOUT_S} s")
            assert proc.poll() is None, failure(f"serve exited with {proc.returncode}")
            assert not _scheduler_errors(prefect_server.log, log_start), failure(
                "the scheduler service failed")
            time.sleep(0.5)
            if deployment_id is None:
                try:
                    with get_client(sync_client=True) as client:
                        deployment_id = client.read_deployment_by_name(
                            f"drift-check/{name}").id
                except ObjectNotFound:
                    continue  # serve has not registered it yet
            runs = _runs(deployment_id)
            broken = [r for r in runs if r.state_type in (StateType.FAILED, StateType.CRASHED)]
            assert not broken, failure(f"a scheduled run failed: {broken[0].state}")
            completed = next((r for r in runs if r.state_type == StateType.COMPLETED), None)
    finally:
        _stop(proc)
        if deployment_id is not None:
            with get_client(sync_client=True) as client:
                client.delete_deployment(deployment_id)  # and its remaining scheduled runs

    # Made by the scheduler service (auto_scheduled), not by hand, and really started.
    assert completed.auto_scheduled, completed
    assert completed.parameters == {"target": block, "desired_schema": str(desired)}
    assert completed.expected_start_time is not None and completed.start_time is not None
    assert not _scheduler_errors(prefect_server.log, log_start)
