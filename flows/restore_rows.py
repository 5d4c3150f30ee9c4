"""Runbook: bring lost rows back from a backup, after an operator saw what will change.

1. Restore the backup (the target's newest by default) into a temporary database, map
   the table's rows onto today's schema (dropped columns left out, added ones defaulted,
   recorded multi-phase renames followed, types converted) and stage them next to the
   live rows; compare by primary key: how many would be inserted, updated, skipped.
2. Publish that diff (counts, mapping, a sample) as an artifact and wait for an
   operator's ``PhaseApproval`` (the UI's resume form, or ``lockplane approve RUN
   --approver NAME``). From a deployment the run suspends: no process waits.
3. Stage the rows again and, only if they are exactly the rows that were approved (the
   merge id covers backup, mapping and rows), upsert them in short batches whose
   checkpoints commit with them (``lockplane.backfills``): a crash resumes, a re-run
   never applies twice.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext
from prefect.flow_runs import pause_flow_run, suspend_flow_run
from prefect.input.actions import read_flow_run_input
from prefect.input.run_input import keyset_from_base_key
from prefect.settings import PREFECT_API_URL
from prefect.states import Cancelled, State

from blocks.backup_storage import BackupStorage
from blocks.database_target import DatabaseTarget
from flows.approvals import waiting_for_approval
from flows.multiphase_migration import ONE_WEEK_S, PhaseApproval
from flows.targets import NoPasswordStr, no_passwords, resolve_target
from lockplane.backup.extract import preview_markdown, result_markdown
from lockplane.dsn import redact
from lockplane.errors import LockplaneError, SafetyRefusal
from tasks.backup_tasks import latest_backup_task, resolve_storage
from tasks.notify_tasks import notify_task
from tasks.restore_rows_tasks import merge_rows_task, preview_merge_task

APPROVAL_POLL_S = 1.0  # outside a deployment: how often a paused run checks for approval


@no_passwords
@flow(name="restore-rows", description=__doc__)
def restore_rows(
    target: NoPasswordStr | DatabaseTarget,
    storage: str | BackupStorage,
    table: str,
    backup_id: str | None = None,
    where: str | None = None,
    on_conflict: str = "skip",
    batch_size: int = 1000,
    auto_approve: bool = False,
    approval_timeout_s: int = ONE_WEEK_S,
    notify: str | None = None,
) -> dict[str, Any] | State:
    """Merge ``table``'s rows from ``backup_id`` (default: the newest backup of ``target``)
    back into ``target``, after approval. ``where``: a condition on the backup's rows;
    ``on_conflict``: skip (rows changed since stay as they are), update, or fail."""
    logger = get_run_logger()
    db = resolve_target(target)
    store = resolve_storage(storage)
    chosen = backup_id or latest_backup_task(store, redact(db.dsn))
    if not chosen:
        raise LockplaneError(f"no backup of {db.label} in {store.url}")
    server = db.shadow_dsn or db.dsn
    try:
        preview = preview_merge_task(store, chosen, db.dsn, table, where, on_conflict, server)
        create_markdown_artifact(preview_markdown(preview, db.label),
                                 key=f"restore-rows-{preview.merge_id}",
                                 description=f"Rows of {preview.table} to restore")
        logger.info("%s", preview.summary())
        if preview.status == "done":
            return {"merge_id": preview.merge_id, "status": "already_done"}
        if on_conflict == "fail" and preview.conflicts:
            raise SafetyRefusal(f"not merged: {preview.conflicts:,} row(s) of the backup "
                                f"already exist in {preview.table} (on_conflict fail)")
        ctx = FlowRunContext.get()
        run = ctx.flow_run if ctx else None
        who = f"prefect:{run.name}" if run else "prefect"
        if not auto_approve:
            decision = _wait_for_approval(preview, db.label, approval_timeout_s, notify)
            if not decision.granted:
                why = f" ({decision.comment})" if decision.comment else ""
                message = (f"restoring rows of {preview.table} rejected by "
                           f"{decision.approver}{why}; nothing was merged")
                logger.warning(message)
                notify_task(notify, f"🛑 {message}")
                return Cancelled(message=message)
            who = decision.approver
        result = merge_rows_task(store, chosen, db.dsn, table, where, on_conflict, server,
                                 preview.merge_id, batch_size, who)
    except Exception as exc:
        notify_task(notify, f"❌ restoring rows of {table} into {db.label} failed: {exc}")
        raise
    create_markdown_artifact(result_markdown(result, db.label),
                             key=f"restore-rows-{preview.merge_id}-result",
                             description=f"Rows restored into {result.table}")
    logger.info("merged into %s: inserted %d, updated %d, skipped %d in %d batch(es)",
                result.table, result.inserted, result.updated, result.skipped, result.batches)
    notify_task(notify, f"✅ rows of {result.table} restored from backup {chosen} into "
                        f"{db.label}: inserted {result.inserted:,}, updated {result.updated:,}")
    return result.to_json()


def _wait_for_approval(preview: Any, label: str, timeout_s: int,
                       notify: str | None) -> PhaseApproval:
    ctx = FlowRunContext.get()
    flow_run = ctx.flow_run if ctx else None
    assert flow_run is not None
    run_id = UUID(str(flow_run.id))
    in_deployment = bool(flow_run.deployment_id)
    prefix = "suspended" if in_deployment else "paused"
    base = f"approve-restore-{preview.merge_id}"
    with get_client(sync_client=True) as client:
        fired = client.read_flow_run(run_id).empirical_policy.pause_keys or set()
    key, already = base, False
    for attempt in range(1, 100):
        key = base if attempt == 1 else f"{base}-{attempt}"
        if key in fired:
            already = True
            break
        if read_flow_run_input(keyset_from_base_key(f"{prefix}-{key}")["schema"],
                               flow_run_id=run_id) is None:
            break
    md = preview_markdown(preview, label) + (
        f"\n\nApprove with the Resume form, or `lockplane approve {run_id} --approver NAME`"
        f" (Prefect API {PREFECT_API_URL.value() or 'local'}).\n")
    if already:
        given = read_flow_run_input(keyset_from_base_key(f"{prefix}-{key}")["response"],
                                    flow_run_id=run_id)
        if given:
            return PhaseApproval(**given)
    else:
        notify_task(notify, f"⏸ rows of {preview.table} from backup {preview.backup_id} are "
                            f"ready to merge into {label}: {preview.summary()}; approve run "
                            f"{run_id}")
        get_run_logger().info("%s: approve with the run's Resume form or 'lockplane approve "
                              "%s --approver NAME'; %s", preview.summary(), run_id,
                              waiting_for_approval(timeout_s))
    form = PhaseApproval.with_initial_data(description=md)
    if in_deployment:
        return suspend_flow_run(wait_for_input=form, timeout=timeout_s, key=key)
    return pause_flow_run(wait_for_input=form, timeout=timeout_s,
                          poll_interval=APPROVAL_POLL_S, key=key)
