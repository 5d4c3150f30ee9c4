"""Thin Prefect tasks around ``lockplane.drift.fix`` (the drift-fix flow's steps)."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from lockplane.drift import Target
from lockplane.drift.fix import FixProposal, propose_fix
from lockplane.dsn import redact
from lockplane.integrity import seal_plan


def _report(message: str) -> None:
    get_run_logger().info(redact(message))


@task(name="propose-drift-fix", cache_policy=NO_CACHE)
def propose_fix_task(target: Target, adopt: list[str] | None = None,
                     drop: list[str] | None = None, adopt_all: bool = False,
                     drop_all: bool = False) -> FixProposal:
    """Decisions, schema file edits and the (sealed) plan; nothing written, nothing run."""
    proposal = propose_fix(target, adopt=adopt or [], drop=drop or [], adopt_all=adopt_all,
                           drop_all=drop_all, report=_report)
    # Sealed with its plan_id: the apply after the approval refuses a changed plan.
    proposal.plan = seal_plan(proposal.plan)
    get_run_logger().info("%s: %d adopted, %d reverted, %d schema file(s) to edit, plan "
                          "%s with %d step(s)", target.name, len(proposal.adopted),
                          len(proposal.reverted), len(proposal.edits), proposal.plan.plan_id,
                          len(proposal.plan.steps))
    return proposal


@task(name="write-schema-files", cache_policy=NO_CACHE)
def write_schema_task(proposal: FixProposal) -> list[str]:
    """Write the adopted objects into the schema files; their paths."""
    written = proposal.write_schema()
    for path in written:
        get_run_logger().info("wrote %s", path)
    return written
