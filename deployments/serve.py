"""Serve every Lockplane deployment from one process: the zero-infrastructure default.

`prefect.serve` registers the deployments with the Prefect API and runs their flow runs
as subprocesses of this process: no work pool, no worker, no Docker. The same
deployments are declared in prefect.yaml for `prefect deploy` onto a work pool; a test
keeps the two in step (names, entrypoints, parameters, schedules).
"""

from __future__ import annotations

from typing import Any

from prefect import serve
from prefect.deployments.runner import EntrypointType, RunnerDeployment
from prefect.schedules import Cron

from flows.apply_migration import apply_migration
from flows.backfill import backfill
from flows.drift_check import drift_check
from flows.multiphase_migration import ONE_WEEK_S, multiphase_migration

DEFAULT_TARGET = "production"  # a DatabaseTarget block name
DEFAULT_SCHEMA = "schema/"
DEFAULT_DRIFT_CRON = "0 6 * * *"  # daily, 06:00 UTC: before the working day
TAGS = ["lockplane"]


def build_deployments(target: str = DEFAULT_TARGET, desired_schema: str = DEFAULT_SCHEMA,
                      drift_cron: str = DEFAULT_DRIFT_CRON) -> list[RunnerDeployment]:
    """Every deployment, with ``target`` and ``desired_schema`` as default parameters."""
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
            description="Fail when the live database differs from the desired schema.",
            parameters={"target": target, "desired_schema": desired_schema},
            schedules=[Cron(drift_cron, timezone="UTC")],
            **common,
        ),
        backfill.to_deployment(
            name="backfill",
            description="Backfill a column in resumable batches: shadow trial, read-only "
                        "check of every row, estimate, approval, then short batches that "
                        "commit their checkpoints (run it again to resume).",
            # table and set are given per run; approval is on by default.
            parameters={"target": target, "auto_approve": False},
            **common,
        ),
    ]


def serve_all(target: str = DEFAULT_TARGET, desired_schema: str = DEFAULT_SCHEMA,
              drift_cron: str = DEFAULT_DRIFT_CRON, limit: int | None = None) -> None:
    """Register every deployment and run their flow runs here until interrupted."""
    serve(*build_deployments(target, desired_schema, drift_cron), limit=limit)


if __name__ == "__main__":
    serve_all()
