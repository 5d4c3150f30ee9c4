"""The drift-fix deployment (served by serve.py, declared in prefect.yaml): on demand, no
schedule; ``environment`` names an environment of the project's lockplane.toml (its
secrets stay in ``.env.NAME`` next to it, never in parameters), and ``adopt`` / ``drop``
are given per run."""

from __future__ import annotations

from typing import Any

from prefect.deployments.runner import RunnerDeployment

from flows.drift_fix import drift_fix

DEFAULT_ENVIRONMENT = "production"


def drift_fix_deployment(common: dict[str, Any],
                         environment: str = DEFAULT_ENVIRONMENT) -> RunnerDeployment:
    return drift_fix.to_deployment(
        name="drift-fix",
        description="Adopt or revert an environment's drift: publishes the schema file "
                    "edits and the plan, pauses for an operator's approval, then writes "
                    "the files and applies the plan.",
        parameters={"environment": environment, "safety": "moderate"},
        **common,
    )
