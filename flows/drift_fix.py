"""Runbook: bring a drifted environment back to its desired schema.

1. Read the environment from the project's lockplane.toml (secrets from ``.env.NAME``),
   introspect its database and load its desired schema;
2. settle every difference: objects named in ``adopt`` (or all, ``adopt_all``) are
   written into the schema files as the database has them; the rest is reverted by the
   plan (objects only in the database need ``drop`` / ``drop_all``: an extra object
   nobody chose for fails the run, naming it, before anything changes);
3. publish the decisions, the schema file diffs and the plan for review, refuse early a
   step the safety level forbids, and validate the plan on a shadow database;
4. wait for an operator's approval (``lockplane approve RUN --approver NAME``, or Resume
   in the UI; rejecting cancels the run and changes nothing);
5. write the schema files, apply the plan (the engine re-checks the database hash, so a
   change made while waiting is refused, not overwritten), and publish the result.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.context import FlowRunContext
from prefect.flow_runs import pause_flow_run
from prefect.utilities.annotations import quote

from flows.approvals import waiting_for_approval
from flows.targets import no_passwords
from lockplane.config import SAFETY_LEVELS, get_environment
from lockplane.drift import targets_from_config
from lockplane.errors import BadInput
from lockplane.execute import ApplyOptions
from lockplane.markdown import result_markdown
from tasks.drift_fix_tasks import propose_fix_task, write_schema_task
from tasks.migration_tasks import (
    apply_plan_task,
    check_safety_task,
    load_schema_task,
    validate_on_shadow_task,
)
from tasks.notify_tasks import notify_task

APPROVAL_POLL_S = 1  # how often a paused run asks the server whether it was approved
_STRICTNESS = ["strict", "moderate", "permissive"]


@no_passwords
@flow(name="drift-fix", description=__doc__)
def drift_fix(
    environment: str,
    project_dir: str = ".",
    adopt: list[str] | None = None,
    drop: list[str] | None = None,
    adopt_all: bool = False,
    drop_all: bool = False,
    safety: str = "moderate",
    acknowledge: list[str] | None = None,
    approval_timeout_s: int = 86400,
    notify: str | None = None,
    cancel_blockers_after_s: float | None = None,
) -> dict[str, Any]:
    """Adopt or revert ``environment``'s drift, after an operator's approval.

    ``project_dir``: where lockplane.toml is (runs of a deployment start in the project
    checkout). ``adopt`` / ``drop``: ``[TYPE:]GLOB`` object keys as ``lockplane drift
    check`` shows them. ``safety``: strict | moderate | permissive, never looser than the
    environment's own. ``acknowledge``: at moderate, dangerous steps to run anyway
    (``rule@schema.table`` or a rule id). ``cancel_blockers_after_s``: once a step has
    waited this long for its lock, cancel the statements of the sessions blocking it
    (never Lockplane's own; default: never, the step fails naming them).
    """
    # A bad value is refused now, not after the approval.
    ApplyOptions(cancel_blockers_after_s=cancel_blockers_after_s)
    logger = get_run_logger()
    if safety not in SAFETY_LEVELS:
        raise BadInput(f"safety must be one of {', '.join(SAFETY_LEVELS)}, not {safety!r}")
    env = get_environment(environment, project_dir)
    # The environment's own level (lockplane.toml safety, strict for production-like
    # names) is a floor: a run may tighten it, never loosen it.
    level = min([safety, env.default_safety], key=_STRICTNESS.index)
    # Read here, not in a task: the target holds the database URL, which must not become
    # a task result.
    (target,) = targets_from_config([environment], project_dir)
    proposal = propose_fix_task(quote(target), adopt, drop, adopt_all, drop_all)
    plan = proposal.plan
    create_markdown_artifact(proposal.markdown(level), key=f"drift-fix-{_slug(environment)}",
                             description=f"Drift fix of {environment}")
    summary: dict[str, Any] = {
        "environment": environment,
        "adopted": [i.object for i in proposal.adopted],
        "reverted": [i.object for i in proposal.reverted],
        "schema_files": [e.path for e in proposal.edits],
        "plan_id": plan.plan_id, "steps": len(plan.steps),
    }
    if proposal.clean:
        logger.info("no drift: %s matches %s", environment, target.schema_path)
        return {**summary, "status": "clean", "steps_run": 0}
    if plan.steps:
        check_safety_task(plan, level, acknowledge)
        live = load_schema_task(target.database_url, dialect=target.dialect)
        validate_on_shadow_task(plan, quote(live), target.database_url,
                                shadow_dsn=env.shadow_database_url, acknowledge=acknowledge)
    notify_task(notify, f"Drift fix of {environment} ({len(proposal.adopted)} adopted, "
                        f"{len(proposal.reverted)} reverted, {len(plan.steps)} step(s)) is "
                        "waiting for approval.")
    run = FlowRunContext.get()
    run_id = str(run.flow_run.id) if run and run.flow_run else "RUN"
    logger.info("%s: approve with `lockplane approve %s --approver NAME` (or --reject)",
                waiting_for_approval(approval_timeout_s, f" of the drift fix of {environment}"),
                run_id)
    pause_flow_run(timeout=approval_timeout_s, poll_interval=APPROVAL_POLL_S,
                   key="approve-drift-fix")

    summary["schema_files"] = write_schema_task(quote(proposal))
    result = {"status": "empty", "steps_run": 0, "migration_id": None}
    if plan.steps:
        # Validated on a shadow before the wait: no second one.
        result = apply_plan_task(plan, target.database_url, safety=level, skip_shadow=True,
                                 acknowledge=acknowledge,
                                 cancel_blockers_after_s=cancel_blockers_after_s)
        create_markdown_artifact(result_markdown(result, environment),
                                 key=f"drift-fix-result-{_slug(environment)}",
                                 description=f"Drift fix result for {environment}")
    notify_task(notify, f"Drift fix of {environment}: {result['status']}, "
                        f"{result['steps_run']} step(s) run, "
                        f"{len(summary['schema_files'])} schema file(s) written.")
    return {**summary, **result}


def _slug(name: str) -> str:
    import re

    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[-48:] or "environment"
