"""The main-job demo (``bash scripts/demo.sh``): a column rename as a Prefect flow run
that stops at its first approval.

scripts/demo.sh starts a local Prefect server (SQLite, under .lockplane-demo/) and
``lockplane serve`` in the background, then runs this module, which:

1. creates a demo SQLite database with rows (``users.email``);
2. writes the desired schema, where ``email`` becomes ``email_address``
   (``-- lockplane:renamed-from email``), and builds the multi-phase plan;
3. saves a DatabaseTarget block for the database (flows get the block's name);
4. starts a run of the multiphase-migration deployment, waits until phase 1 is applied
   and the run is suspended for its first approval, and prints where to approve it.

It exits then: the run waits on the server, holding no process and no connection.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from pathlib import Path
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL
from prefect.states import Cancelled

from blocks.database_target import DatabaseTarget
from lockplane.multiphase.markdown import approve_command

DEPLOYMENT = "multiphase-migration/multiphase-migration"
BLOCK = "lockplane-demo"
ROWS = 1000

CURRENT = """
CREATE TABLE users (
  id INTEGER PRIMARY KEY,
  email TEXT NOT NULL UNIQUE,
  name TEXT
);
"""

DESIRED = """-- The desired schema: users.email is renamed to email_address. A declarative diff
-- cannot tell a rename from a drop and an add, so the rename is declared.
CREATE TABLE users (
  id INTEGER PRIMARY KEY,
  email_address TEXT NOT NULL UNIQUE, -- lockplane:renamed-from email
  name TEXT
);
"""


def say(text: str = "") -> None:
    print(text, flush=True)


def make_database(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    with sqlite3.connect(path) as conn:
        conn.executescript(CURRENT)
        conn.executemany("INSERT INTO users (email, name) VALUES (?, ?)",
                         [(f"user{i}@example.com", f"User {i}") for i in range(1, ROWS + 1)])
    return f"sqlite:///{path.resolve()}"


def build_plan(dsn: str, workdir: Path) -> tuple[Path, str]:
    """Write the desired schema and the multi-phase plan; return the plan path and id."""
    from lockplane.integrity import plan_key, seal_multiphase
    from lockplane.multiphase import plan_multiphase
    from lockplane.sources import SourceContext, load_schema

    workdir.mkdir(parents=True, exist_ok=True)
    desired = workdir / "schema.sql"
    desired.write_text(DESIRED)
    ctx = SourceContext(dialect="sqlite")
    mp = plan_multiphase(load_schema(dsn, ctx), load_schema(str(desired), ctx))
    plan = workdir / "plan.json"
    plan.write_text(seal_multiphase(mp, plan_key()).to_json() + "\n")
    say(f"\n{mp.description}: {mp.total_phases} phases ({mp.pattern})")
    for p in mp.phases:
        deploy = "  -> code deploy, then approval" if p.requires_code_deploy else ""
        say(f"  {p.phase_number}. {p.name}: {p.description} "
            f"({len(p.plan.steps)} step(s)){deploy}")
    say(f"  (every step's SQL, locks and rollback: .venv/bin/lockplane plan --from {dsn} "
        f"--to {desired} --multi-phase)")
    return plan.resolve(), mp.id


def cancel_earlier_runs() -> None:
    """A previous demo's run may still wait for approval on the old database: cancel it."""
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(
                any_=[DEPLOYMENT.split("/")[1]])),
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(
                type=FlowRunFilterStateType(any_=[StateType.PAUSED, StateType.SCHEDULED,
                                                  StateType.PENDING, StateType.RUNNING]))))
        for run in runs:
            client.set_flow_run_state(run.id, Cancelled(message="a new demo run started"),
                                      force=True)
            say(f"Cancelled the earlier demo run {run.name} ({run.id}).")


def wait_for_deployment(timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with get_client(sync_client=True) as client:
                client.read_deployment_by_name(DEPLOYMENT)
            return
        except ObjectNotFound:
            if time.monotonic() > deadline:
                sys.exit(f"the {DEPLOYMENT} deployment did not appear within {timeout_s:.0f}s: "
                         "is 'lockplane serve' running? (see .lockplane-demo/serve.log)")
            time.sleep(0.5)


def wait_for_first_approval(run_id: UUID, timeout_s: float) -> FlowRun:
    deadline = time.monotonic() + timeout_s
    last = ""
    while True:
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(run_id)
        state = run.state
        if state is not None:
            if state.name != last:
                say(f"  flow run {run.name}: {state.name}")
                last = state.name
            if state.is_paused():
                return run
            if state.is_final():
                sys.exit(f"the flow run ended {state.name}: {state.message}")
        if time.monotonic() > deadline:
            sys.exit(f"the flow run did not reach its first approval within {timeout_s:.0f}s "
                     "(see .lockplane-demo/serve.log)")
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=".lockplane-demo", help="demo directory")
    parser.add_argument("--timeout", type=float, default=180)
    args = parser.parse_args()
    root = Path(args.dir)
    workdir = root / "rename"

    db_path = root / "multiphase.db"
    dsn = make_database(db_path)
    say(f"Demo database: {db_path} ({ROWS} users with an email column)")
    plan, migration_id = build_plan(dsn, workdir)
    say(f"\nDesired schema: {workdir / 'schema.sql'}\nMulti-phase plan: {plan} "
        f"(migration {migration_id})\n")

    DatabaseTarget(dialect="sqlite", dsn=dsn).save(BLOCK, overwrite=True)
    wait_for_deployment(args.timeout)
    cancel_earlier_runs()
    run = run_deployment(DEPLOYMENT, parameters={"plan": str(plan), "target": BLOCK},
                         timeout=0)
    say(f"Started flow run {run.name} from the {DEPLOYMENT} deployment; phase 1 runs now.")
    run = wait_for_first_approval(run.id, args.timeout)

    with sqlite3.connect(db_path) as conn:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(users)")]
        synced = conn.execute("SELECT count(*) FROM users WHERE email_address = email"
                              ).fetchone()[0]
    api = PREFECT_API_URL.value() or ""
    ui = (PREFECT_UI_URL.value() or api.removesuffix("/api")).rstrip("/")
    approve = approve_command(str(run.id), api).replace(" lockplane ", " .venv/bin/lockplane ")
    say(f"""
Phase 1 (expand) is applied: users has columns {', '.join(columns)}, {synced}/{ROWS}
rows have email_address = email, and a trigger keeps the two in sync on every write,
so old code (email) and new code (email_address) can run side by side.

The flow run is suspended until an operator approves the code deploy (no process and no
database connection wait meanwhile). Approve it in the Prefect UI (Resume, fill in the
form):

    {ui}/runs/flow-run/{run.id}

or from the command line:

    {approve}

(the run's artifact prints the same command with --reject, to stop instead). Phase 2
(migrate) then runs and the flow stops at its second approval; approve again (same
command) and phase 3 (contract) drops the old column. Follow along with:

    .venv/bin/lockplane phase-status --target {dsn}
""")


if __name__ == "__main__":
    main()
