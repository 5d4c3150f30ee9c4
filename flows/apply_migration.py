"""Runbook: apply a schema change to one database.

1. introspect the live database and load the desired schema;
2. plan, and publish the plan (steps, SQL, safety, locks, rollback) for review;
3. refuse early a step the safety level forbids;
4. validate the plan on a shadow database;
5. wait for an operator's approval, unless auto-approved;
6. apply (the engine re-checks the database hash, so a change made while waiting is
   refused, not overwritten), and publish the result.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.flow_runs import pause_flow_run
from prefect.utilities.annotations import quote

from blocks.database_target import DatabaseTarget
from flows.approvals import waiting_for_approval
from flows.targets import NoPasswordStr, no_passwords, resolve_target
from lockplane.dsn import redact
from lockplane.execute import ApplyOptions
from lockplane.markdown import plan_markdown, result_markdown
from tasks.migration_tasks import (
    apply_plan_task,
    build_plan_task,
    check_safety_task,
    load_schema_task,
    validate_on_shadow_task,
)
from tasks.notify_tasks import notify_task

APPROVAL_POLL_S = 2  # how often a paused run asks the server whether it was approved


@no_passwords
@flow(name="apply-migration", description=__doc__)
def apply_migration(
    target: NoPasswordStr | DatabaseTarget,
    desired_schema: NoPasswordStr,
    safety: str = "moderate",
    auto_approve: bool = True,
    approval_timeout_s: int = 3600,
    notify: str | None = None,
    acknowledge: list[str] | None = None,
    cancel_blockers_after_s: float | None = None,
) -> dict[str, Any]:
    """Plan, review, validate and apply ``desired_schema`` on ``target``.

    ``target``: a DatabaseTarget block name (or instance), or a DSN for local use.
    ``safety``: strict | moderate | permissive; a target's own level cannot be loosened.
    ``notify``: name of a SlackNotifier block to post the plan and result to.
    ``acknowledge``: at moderate, dangerous steps to run anyway: ``rule@schema.table`` or a
    rule id (not step numbers: the plan is computed in the run).
    ``cancel_blockers_after_s``: once a step has waited this long for its lock, cancel the
    statements of the sessions blocking it (pg_cancel_backend, never Lockplane's own;
    default: never, the step fails naming them when its lock-wait budget runs out).
    """
    # A bad value is refused now, not after the approval.
    ApplyOptions(cancel_blockers_after_s=cancel_blockers_after_s)
    logger = get_run_logger()
    db = resolve_target(target)
    level = db.effective_safety(safety)
    logger.info("target %s (%s), safety %s", db.label, db.dialect, level)

    live = load_schema_task(db.dsn, dialect=db.dialect)
    desired = load_schema_task(desired_schema, dialect=db.dialect, server_dsn=db.scratch_server,
                               allowed_extensions=db.allowed_extensions, version_of=db.dsn)
    # quote(): Prefect must not walk a Schema looking for futures (it is large, and its
    # Index.keys field trips Prefect's traversal of pydantic models).
    plan = build_plan_task(quote(live), quote(desired), lock_timeout_ms=db.lock_timeout_ms,
                           archive_dropped=db.archive_dropped)
    create_markdown_artifact(plan_markdown(plan, db.label, level), key=f"plan-{db.slug}",
                             description=f"Migration plan for {db.label}")
    if plan.empty:
        logger.info("no changes: %s already matches %s", db.label, redact(desired_schema))
        return {"status": "empty", "migration_id": None, "steps_run": 0,
                "hash_after": plan.source_hash, "warnings": []}

    check_safety_task(plan, level, acknowledge)
    warnings = validate_on_shadow_task(plan, quote(live), db.dsn, shadow_dsn=db.shadow_dsn,
                                       lock_timeout_ms=db.lock_timeout_ms,
                                       acknowledge=acknowledge)

    if not auto_approve:
        notify_task(notify, f"Migration of {db.label} ({len(plan.steps)} step(s), worst "
                            f"{plan.worst_safety().value}) is waiting for approval.")
        logger.info("%s: resume this flow run to go on, or cancel it",
                    waiting_for_approval(approval_timeout_s))
        pause_flow_run(timeout=approval_timeout_s, poll_interval=APPROVAL_POLL_S,
                       key="approve-apply")

    # The plan was just validated on a shadow: don't build a second one.
    result = apply_plan_task(plan, db.dsn, safety=level, shadow_dsn=db.shadow_dsn,
                             skip_shadow=True, lock_timeout_ms=db.lock_timeout_ms,
                             acknowledge=acknowledge,
                             cancel_blockers_after_s=cancel_blockers_after_s)
    result["warnings"] = warnings + result["warnings"]
    create_markdown_artifact(result_markdown(result, db.label), key=f"result-{db.slug}",
                             description=f"Migration result for {db.label}")
    notify_task(notify, f"Migration of {db.label}: {result['status']}, "
                        f"{result['steps_run']} step(s) run.")
    return result
