"""Runbook: recover a database from its backups, on demand, after an operator's approval.

1. Find the newest backup at or before the time asked for (``to``: ISO 8601 UTC, 'now',
   '2 hours ago'), or the backup named; read the timeline since it (backup → migrations
   from lockplane.migrations → now) and count what restoring it loses against the live
   database (per table, the manifest's rows and checksums against the live ones).
2. Publish that as an artifact and wait for a ``RecoveryApproval`` (the UI's resume form,
   or ``lockplane approve RUN --approver NAME [--reject]``). Nothing touches a database
   before the decision: the live database has only been read.
3. On approval restore the backup into a NEW database on the target's server
   (``into_database``, default ``<name>_recovered_<time>``), or, only with
   ``overwrite``, over the target itself; publish the result. A rejection ends the run
   Cancelled with the database untouched.

Recovery to an exact time from the WAL archive (a new instance) is the CLI's:
``lockplane recover --to TIME --into DIR``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.context import FlowRunContext
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.settings import PREFECT_API_URL
from prefect.states import Cancelled, State
from pydantic import Field

from blocks.backup_storage import BackupStorage
from blocks.database_target import DatabaseTarget
from flows.approvals import waiting_for_approval
from flows.targets import NoPasswordStr, no_passwords, resolve_target
from lockplane.backup.pitr import parse_time
from lockplane.dialects import get_dialect
from lockplane.dsn import dialect_of, redact
from lockplane.errors import BadInput
from tasks.backup_tasks import resolve_storage
from tasks.notify_tasks import notify_task
from tasks.recovery_tasks import plan_recovery_task, restore_backup_task

APPROVAL_POLL_S = 2  # how often a paused run asks the server whether it was approved
ONE_HOUR_S = 3600


class RecoveryApproval(RunInput):
    """The operator's decision on a restore (the same fields as a phase approval, so
    ``lockplane approve`` answers both). A choice with no default, not a toggle."""

    approved: Literal["yes", "no"] = Field(
        description="yes: restore the backup as described; no: reject, touch nothing")
    approver: str = Field(description="who decides")
    comment: str = ""


def _destination(live: str, into_database: str | None, overwrite: bool) -> str:
    d = get_dialect(dialect_of(live))
    name = d.database_name(live)
    if overwrite:
        if into_database and into_database != name:
            raise BadInput("overwrite restores over the target itself: leave into_database "
                           "empty (or give the target's own name)")
        return live
    chosen = into_database or f"{name or 'db'}_recovered_" \
                              f"{datetime.now(UTC).strftime('%Y%m%d%H%M%S')}"[:63]
    if chosen == name:
        raise BadInput(f"into_database {chosen!r} is the target itself: set overwrite to "
                       "restore over it")
    return d.with_database(live, chosen)


@no_passwords
@flow(name="recovery", description=__doc__)
def recovery(
    target: NoPasswordStr | DatabaseTarget,
    storage: NoPasswordStr | BackupStorage,
    to: str = "now",
    backup_id: str | None = None,
    into_database: str | None = None,
    overwrite: bool = False,
    approval_timeout_s: int = ONE_HOUR_S,
    notify: str | None = None,
    jobs: int = 2,
) -> dict[str, Any] | State:
    """Restore ``target`` (a DatabaseTarget block name, or a DSN without a password) from
    ``storage`` (a BackupStorage block name, or a path) as of ``to``, after approval."""
    logger = get_run_logger()
    db = resolve_target(target)
    if not get_dialect(db.dialect).server_side_restore:
        raise BadInput("the recovery flow restores PostgreSQL databases; use lockplane "
                       "recover for SQLite files")
    store = resolve_storage(storage)
    when = parse_time(to)
    plan = plan_recovery_task(store, db.dsn, when, backup_id, jobs)
    if plan.backup is None:
        raise BadInput(f"no backup of {db.label} at or before {when.isoformat()} in "
                       f"{store.url}")
    dest = _destination(db.dsn, into_database, overwrite)
    ctx = FlowRunContext.get()
    run_id = str(ctx.flow_run.id) if ctx and ctx.flow_run else "RUN"
    where = (f"**over the live database {db.label}** (overwrite)" if overwrite
             else f"into the new database `{redact(dest)}`")
    md = (plan.markdown() + f"\n## On approval\n\nRestore backup **{plan.backup.id}** "
          f"{where}.\n\nApprove with the run's Resume form, or:\n\n```bash\n"
          f"PREFECT_API_URL={PREFECT_API_URL.value() or '...'} lockplane approve {run_id} "
          "--approver NAME [--reject]\n```\n")
    create_markdown_artifact(md, key=f"recovery-{db.slug}",
                             description=f"Recovery of {db.label}: timeline and what is lost")
    notify_task(notify, f"⏸ Recovery of {db.label} from backup {plan.backup.id} is waiting "
                        f"for approval: it loses "
                        f"{plan.loss.summary() if plan.loss else 'an uncounted amount'}.")
    logger.info("recovery of %s to %s from backup %s: %s; %s", db.label, when.isoformat(),
                plan.backup.id, plan.loss.summary() if plan.loss else "not counted",
                waiting_for_approval(approval_timeout_s))
    decision = pause_flow_run(
        wait_for_input=RecoveryApproval.with_initial_data(description=md),
        timeout=approval_timeout_s, poll_interval=APPROVAL_POLL_S, key="approve-recovery")
    if decision.approved != "yes":
        why = f" ({decision.comment})" if decision.comment else ""
        message = f"recovery of {db.label} rejected by {decision.approver}{why}; nothing restored"
        logger.warning(message)
        notify_task(notify, f"🛑 {message}.")
        return Cancelled(message=message)
    logger.info("approved by %s: restoring backup %s %s", decision.approver, plan.backup.id,
                "over the target" if overwrite else f"into {redact(dest)}")
    result = restore_backup_task(store, plan.backup.id, dest, jobs, overwrite)
    create_markdown_artifact(
        f"# Restored backup {result.backup_id}\n\ninto `{result.target}`"
        f"{' (created)' if result.created_database else ''} in {result.seconds:.1f} s, "
        f"approved by {decision.approver}.\n", key=f"recovery-result-{db.slug}",
        description=f"Recovery of {db.label}: result")
    notify_task(notify, f"✅ Restored backup {result.backup_id} of {db.label} into "
                        f"{result.target}.")
    return {"backup_id": result.backup_id, "into": result.target,
            "created_database": result.created_database, "seconds": result.seconds,
            "approved_by": decision.approver,
            "rows_lost": plan.loss.rows_lost if plan.loss else None}
