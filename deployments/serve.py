"""Serve every Lockplane deployment from one process: the zero-infrastructure default.

`prefect.serve` registers the deployments with the Prefect API and runs their flow runs
as subprocesses of this process: no work pool, no worker, no Docker. The same
deployments are declared in prefect.yaml for `prefect deploy` onto a work pool; a test
keeps the two in step (names, entrypoints, parameters, schedules).

Backfills scale out: the `backfill` flow runs each chunk of a table as a run of the
`backfill-chunk` deployment. Served here, those runs are subprocesses of this process;
with ``work_pool`` (`lockplane serve --work-pool lockplane`) the chunk deployment is put
on that `process` work pool instead (created if missing), so every machine running
`prefect worker start --pool lockplane --type process` takes chunks.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from prefect import serve
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.deployments.runner import EntrypointType, RunnerDeployment
from prefect.exceptions import ObjectAlreadyExists
from prefect.schedules import Cron

from deployments.backup import backup_deployments
from deployments.drift_fix import drift_fix_deployment
from flows.apply_migration import apply_migration
from flows.backfill import CHUNK_DEPLOYMENT, backfill, backfill_chunk
from flows.drift_check import drift_check
from flows.multiphase_migration import ONE_WEEK_S, multiphase_migration

DEFAULT_TARGET = "production"  # a DatabaseTarget block name
DEFAULT_SCHEMA = "schema/"
DEFAULT_DRIFT_CRON = "0 6 * * *"  # daily, 06:00 UTC: before the working day
TAGS = ["lockplane"]
WORK_POOL = "lockplane"  # prefect worker start --pool lockplane --type process
CHUNK_NAME = CHUNK_DEPLOYMENT.split("/")[1]


def build_deployments(target: str = DEFAULT_TARGET, desired_schema: str = DEFAULT_SCHEMA,
                      drift_cron: str = DEFAULT_DRIFT_CRON,
                      drift_project_dir: str | None = None) -> list[RunnerDeployment]:
    """Every deployment, with ``target`` and ``desired_schema`` as default parameters.
    With ``drift_project_dir``, drift-check checks every environment of the lockplane.toml
    there instead of ``target``."""
    drift_parameters: dict[str, Any] = (
        {"project_dir": drift_project_dir} if drift_project_dir
        else {"target": target, "desired_schema": desired_schema})
    common: dict[str, Any] = {
        "tags": TAGS,
        # Import paths, not file paths: flows are an installed package, so runs work
        # whatever directory `lockplane serve` was started from.
        "entrypoint_type": EntrypointType.MODULE_PATH,
        # One run at a time per deployment; the engine's advisory lock backs this up.
        "concurrency_limit": 1,
    }
    return [
        apply_migration.to_deployment(
            name="apply-migration",
            description="Plan, review, shadow-validate and apply the desired schema; "
                        "pauses for an operator's approval unless auto_approve.",
            parameters={"target": target, "desired_schema": desired_schema,
                        "safety": "moderate", "auto_approve": False},
            **common,
        ),
        multiphase_migration.to_deployment(
            name="multiphase-migration",
            description="Run a multi-phase plan (lockplane plan --multi-phase) phase by "
                        "phase; suspends for an operator's approval between code deploys.",
            # `plan` (a path or the plan JSON) is given per run.
            parameters={"target": target, "approval_timeout_s": ONE_WEEK_S,
                        "rollback_on_reject": False},
            **common,
        ),
        drift_check.to_deployment(
            name="drift-check",
            description="Check every environment (or the target) for drift; post to Slack "
                        "only when drift appears, changes or is resolved.",
            parameters=drift_parameters,
            schedules=[Cron(drift_cron, timezone="UTC")],
            **common,
        ),
        drift_fix_deployment(common),
        *backup_deployments(target, common),
        backfill.to_deployment(
            name="backfill",
            description="Backfill a column in resumable batches: shadow trial, read-only "
                        "check of every row, estimate, approval, then short batches that "
                        "commit their checkpoints (run it again to resume).",
            # table and set are given per run; approval is on by default.
            parameters={"target": target, "auto_approve": False,
                        "chunk_deployment": CHUNK_DEPLOYMENT},
            **common,
        ),
        chunk_deployment(),
    ]


def chunk_deployment(name: str = CHUNK_NAME) -> RunnerDeployment:
    """`backfill-chunk`: one chunk of a started backfill, from its checkpoint to its end.
    No concurrency limit: the chunks of one backfill run side by side (one runner per
    chunk is the engine's advisory lock)."""
    return backfill_chunk.to_deployment(
        name=name,
        description="One chunk of a backfill, run by the backfill flow: resumes from its "
                    "checkpoint; any worker of the pool may take it.",
        tags=TAGS, entrypoint_type=EntrypointType.MODULE_PATH)


def ensure_work_pool(name: str = WORK_POOL) -> None:
    """Create the `process` work pool ``name`` unless it exists (workers: `prefect worker
    start --pool NAME --type process`, on as many machines as should share backfills)."""
    with get_client(sync_client=True) as client:
        try:
            client.create_work_pool(WorkPoolCreate(name=name, type="process"))
        except ObjectAlreadyExists:
            pass


def deploy_chunks_to_pool(pool: str = WORK_POOL, name: str = CHUNK_NAME) -> UUID:
    """Put the chunk deployment on the `process` work pool ``pool`` (made if missing):
    its runs are then taken by that pool's workers, wherever they run."""
    ensure_work_pool(pool)
    return chunk_deployment(name).apply(work_pool_name=pool)


def serve_all(target: str = DEFAULT_TARGET, desired_schema: str = DEFAULT_SCHEMA,
              drift_cron: str = DEFAULT_DRIFT_CRON, limit: int | None = None,
              work_pool: str | None = None, drift_project_dir: str | None = None) -> None:
    """Register every deployment and run their flow runs here until interrupted; with
    ``work_pool``, backfill chunks go to that pool's workers instead."""
    deployments = build_deployments(target, desired_schema, drift_cron, drift_project_dir)
    if work_pool:
        deploy_chunks_to_pool(work_pool)
        deployments = [d for d in deployments if d.name != CHUNK_NAME]
    serve(*deployments, limit=limit)


if __name__ == "__main__":
    serve_all()
