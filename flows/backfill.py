"""Runbook: backfill a column of a big table in resumable batches.

1. plan: resolve the table and the key to walk, run the batch statement on a shadow
   copy with a sample of rows (a failing row is named by its key), evaluate every row
   of the target read-only, and estimate rows, duration and WAL; publish the plan;
2. wait for an operator's approval, unless auto-approved;
3. create the checkpoints (or re-arm them: running the same backfill again resumes),
   the key range split into ``chunks`` for scale-out;
4. run the chunks, one task each, mapped so several workers share a huge table; every
   batch is one short transaction that commits its checkpoint; a progress artifact
   follows the rows done;
5. publish the result. ``lockplane backfill cancel`` stops the run (state Cancelled).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import flow, get_run_logger, unmapped
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    update_progress_artifact,
)
from prefect.flow_runs import pause_flow_run
from prefect.states import Cancelled, State

from blocks.database_target import DatabaseTarget
from flows.approvals import waiting_for_approval
from flows.targets import NoPasswordStr, no_passwords, resolve_target
from lockplane.backfill import (
    BackfillOptions,
    BackfillResult,
    ChunkResult,
    combine_results,
    plan_markdown,
    result_markdown,
)
from tasks.backfill_tasks import plan_backfill_task, run_chunk_task, start_backfill_task
from tasks.notify_tasks import notify_task

APPROVAL_POLL_S = 2


@no_passwords
@flow(name="backfill", description=__doc__)
def backfill(
    target: NoPasswordStr | DatabaseTarget,
    table: str,
    set: list[str] | str,  # noqa: A002 - the CLI's --set
    where: str | None = None,
    batch_size: int = 1000,
    sleep_ms: int = 0,
    max_rows_per_second: float | None = None,
    target_batch_ms: int = 100,
    lock_timeout_ms: int = 200,
    max_replication_lag_ms: int | None = None,
    chunks: int = 1,
    restart: bool = False,
    auto_approve: bool = True,
    approval_timeout_s: int = 3600,
    notify: str | None = None,
) -> dict[str, Any] | State:
    """Backfill ``table`` with ``set`` ("column = expression", one or a list) where
    ``where``, in batches near ``target_batch_ms``; ``chunks`` > 1 runs that many
    workers in parallel, each with its own checkpoint.

    ``target``: a DatabaseTarget block name (or instance), or a DSN for local use.
    """
    logger = get_run_logger()
    db = resolve_target(target)
    sets = [set] if isinstance(set, str) else list(set)
    opts = BackfillOptions(
        batch_size=batch_size, sleep_ms=sleep_ms, max_rows_per_second=max_rows_per_second,
        target_batch_ms=target_batch_ms, lock_timeout_ms=lock_timeout_ms,
        max_replication_lag_ms=max_replication_lag_ms, chunks=chunks,
        shadow_dsn=db.shadow_dsn, restart=restart, started_by=f"prefect:{db.label}")
    opts.validate()
    options = asdict(opts)
    logger.info("backfill of %s on %s (%s)", table, db.label, db.dialect)

    plan = plan_backfill_task(db.dsn, table, sets, where, options)
    create_markdown_artifact(plan_markdown(plan, db.label), key=f"backfill-plan-{db.slug}",
                             description=f"Backfill plan for {table} on {db.label}")
    if plan.status == "done" and not restart:
        logger.info("backfill %s already done (%s rows); restart=True runs it again",
                    plan.id, f"{plan.rows_done:,}")
        return {"id": plan.id, "table": plan.resolved.display, "status": "already_done"}

    if not auto_approve:
        notify_task(notify, f"Backfill of {table} on {db.label} ({plan.estimate.summary()}) "
                            "is waiting for approval.")
        logger.info("%s: resume this flow run to go on, or cancel it",
                    waiting_for_approval(approval_timeout_s))
        pause_flow_run(timeout=approval_timeout_s, poll_interval=APPROVAL_POLL_S,
                       key="approve-backfill")

    chunk_ids = start_backfill_task(db.dsn, plan, options)
    done_before = 100.0 * plan.rows_done / max(plan.estimate.rows_in_table, 1)
    progress = create_progress_artifact(
        progress=round(min(done_before, 99.9), 1), key=f"backfill-progress-{db.slug}",
        description=f"Backfill {plan.id}: {table} ({plan.estimate.summary()})")
    # A rows-per-second ceiling is for the whole backfill: share it among the workers.
    worker = dict(options)
    if max_rows_per_second and len(chunk_ids) > 1:
        worker["max_rows_per_second"] = max_rows_per_second / len(chunk_ids)
    runs = run_chunk_task.map(unmapped(db.dsn), unmapped(plan.id), chunk_ids,
                              unmapped(worker), unmapped(progress))
    outcomes = runs.result()
    results = [ChunkResult(**o) for o in outcomes]
    result: BackfillResult = combine_results(plan.resolved, results,
                                             max((r.seconds for r in results), default=0.0),
                                             total_chunks=len(chunk_ids))
    if result.status == "done":
        update_progress_artifact(progress, progress=100.0)
    create_markdown_artifact(result_markdown(result, db.label),
                             key=f"backfill-result-{db.slug}",
                             description=f"Backfill result for {table} on {db.label}")
    notify_task(notify, f"Backfill of {table} on {db.label}: {result.status}, "
                        f"{result.rows_updated:,} row(s) updated.")
    if result.status == "cancelled":
        return Cancelled(message=f"backfill {plan.id} cancelled by an operator after "
                                 f"{result.rows_scanned:,} row(s) in this run; its "
                                 "checkpoint is kept (run it again to resume)")
    return result.to_json()
