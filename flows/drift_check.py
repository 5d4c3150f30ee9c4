"""Runbook: does the live database still match the desired schema?

Introspect, plan against the desired schema, publish the differences; the run fails
(DriftFound) when there are any, so a schedule's failed runs are the drift alerts.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.utilities.annotations import quote

from blocks.database_target import DatabaseTarget
from flows.targets import NoPasswordStr, no_passwords, resolve_target
from lockplane.dsn import redact
from lockplane.errors import DriftFound
from lockplane.markdown import drift_markdown
from tasks.migration_tasks import build_plan_task, load_schema_task
from tasks.notify_tasks import notify_task


@no_passwords
@flow(name="drift-check", description=__doc__)
def drift_check(
    target: NoPasswordStr | DatabaseTarget,
    desired_schema: NoPasswordStr,
    notify: str | None = None,
) -> dict[str, Any]:
    """Fail with the differences listed when ``target`` differs from ``desired_schema``."""
    logger = get_run_logger()
    db = resolve_target(target)
    live = load_schema_task(db.dsn, dialect=db.dialect)
    desired = load_schema_task(desired_schema, dialect=db.dialect, server_dsn=db.scratch_server,
                               allowed_extensions=db.allowed_extensions, version_of=db.dsn)
    # quote(): Prefect must not walk a Schema looking for futures (it is large, and its
    # Index.keys field trips Prefect's traversal of pydantic models).
    plan = build_plan_task(quote(live), quote(desired))
    create_markdown_artifact(drift_markdown(plan, db.label, desired_schema),
                             key=f"drift-{db.slug}", description=f"Drift check of {db.label}")
    if plan.steps:
        listed = "; ".join(f"{i}. {s.description}" for i, s in enumerate(plan.steps, 1))
        message = (f"drift found on {db.label}: {len(plan.steps)} difference(s) from "
                   f"{redact(desired_schema)}: {listed}")
        notify_task(notify, message)
        raise DriftFound(message)
    logger.info("no drift: %s matches %s (hash %s)", db.label, redact(desired_schema),
                plan.source_hash[:12])
    return {"drift": False, "hash": plan.source_hash}
