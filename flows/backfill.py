"""Runbook: backfill a column of a big table in resumable batches.

1. plan: resolve the table and the key to walk, run the batch statement on a shadow
   copy with a sample of rows (a failing row is named by its key), evaluate every row
   of the target read-only, and estimate rows, duration and WAL; publish the plan;
2. wait for an operator's approval, unless auto-approved;
3. create the checkpoints (or re-arm them: running the same backfill again resumes),
   the key range split into ``chunks`` for scale-out;
4. run the chunks: one task each in this process, or (``chunk_deployment``) one flow run
   each of the ``backfill-chunk`` deployment, which any worker of its work pool picks up,
   so several machines share a huge table (``backfill_chunks_on_workers``); every batch
   is one short transaction that commits its checkpoint; a progress artifact follows
   the rows done;
5. publish the result. ``lockplane backfill cancel`` stops the run (state Cancelled).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any
from uuid import UUID

from prefect import flow, get_run_logger, unmapped
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    update_progress_artifact,
)
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.context import get_run_context
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound
from prefect.flow_runs import pause_flow_run
from prefect.states import Cancelled, Crashed, Failed, State

from blocks.database_target import DatabaseTarget
from flows.approvals import waiting_for_approval
from flows.targets import NoPasswordStr, no_passwords, resolve_target
from lockplane.backfill import (
    BackfillOptions,
    BackfillResult,
    ChunkResult,
    ChunkState,
    chunk_runs,
    combine_results,
    plan_markdown,
    result_markdown,
)
from lockplane.errors import BadInput, ExecutionFailed
from tasks.backfill_tasks import plan_backfill_task, run_chunk_task, start_backfill_task
from tasks.notify_tasks import notify_task

APPROVAL_POLL_S = 2
CHUNK_DEPLOYMENT = "backfill-chunk/backfill-chunk"  # flow name / deployment name
CHUNK_POLL_S = 1.0  # how often the parent looks at its chunk runs
CHUNK_STALE_S = 20.0  # a chunk run whose runner was seen, then gone this long, is dead
CHUNK_START_S = 180.0  # a chunk run that never showed a runner this long is dead
CHUNK_ATTEMPTS = 3  # flow runs per chunk (the first and the re-submissions)
UNCLAIMED_WARN_S = 60.0  # say so when no worker picks a chunk run up this long


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
    chunk_deployment: str | None = None,
    chunk_stale_s: float = CHUNK_STALE_S,
    chunk_start_s: float = CHUNK_START_S,
    chunk_attempts: int = CHUNK_ATTEMPTS,
) -> dict[str, Any] | State:
    """Backfill ``table`` with ``set`` ("column = expression", one or a list) where
    ``where``, in batches near ``target_batch_ms``; ``chunks`` > 1 runs that many
    workers in parallel, each with its own checkpoint.

    ``target``: a DatabaseTarget block name (or instance), or a DSN for local use.
    ``chunk_deployment`` (e.g. ``backfill-chunk/backfill-chunk``): run each chunk as a
    flow run of that deployment, picked up by any worker of its work pool, instead of
    as a task here; ``chunk_stale_s``, ``chunk_start_s`` and ``chunk_attempts`` say when
    a chunk run whose worker died is run again, and how often. A dead worker reports
    nothing and a flow's retries die with its process, so this flow is the one that
    notices: a chunk run Prefect ends Crashed, or whose runner no longer holds the
    chunk's advisory lock on the target, is marked Crashed and run again from the
    chunk's checkpoint (exactly once per row: see ``backfill_chunks_on_workers``).
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
    if chunk_deployment and not (chunk_stale_s > 0 and chunk_start_s > 0
                                 and chunk_attempts >= 1):
        raise BadInput("chunk_stale_s and chunk_start_s must be positive, chunk_attempts "
                       "at least 1")
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
    chunk_runs_md = ""
    if chunk_deployment:
        remote = backfill_chunks_on_workers(
            target, db.dsn, plan.id, chunk_ids, worker, progress, plan.existing,
            deployment=chunk_deployment, stale_s=chunk_stale_s, start_s=chunk_start_s,
            attempts=chunk_attempts)
        results, seconds, chunk_runs_md = remote
    else:
        runs = run_chunk_task.map(unmapped(db.dsn), unmapped(plan.id), chunk_ids,
                                  unmapped(worker), unmapped(progress))
        results = [ChunkResult(**o) for o in runs.result()]
        seconds = max((r.seconds for r in results), default=0.0)
    result: BackfillResult = combine_results(plan.resolved, results, seconds,
                                             total_chunks=len(chunk_ids))
    if result.status == "done":
        update_progress_artifact(progress, progress=100.0)
    create_markdown_artifact(result_markdown(result, db.label) + chunk_runs_md,
                             key=f"backfill-result-{db.slug}",
                             description=f"Backfill result for {table} on {db.label}")
    notify_task(notify, f"Backfill of {table} on {db.label}: {result.status}, "
                        f"{result.rows_updated:,} row(s) updated.")
    if result.status == "cancelled":
        return Cancelled(message=f"backfill {plan.id} cancelled by an operator after "
                                 f"{result.rows_scanned:,} row(s) in this run; its "
                                 "checkpoint is kept (run it again to resume)")
    return result.to_json()


# ------------------------------------------------------------------ scale-out on workers
@no_passwords
@flow(name="backfill-chunk", retries=2, retry_delay_seconds=5)
def backfill_chunk(target: NoPasswordStr, backfill_id: str, chunk: int,
                   options: dict[str, Any] | None = None) -> dict[str, Any] | State:
    """Run one chunk of a started backfill from its checkpoint to its end: the flow of the
    ``backfill-chunk`` deployment, which the ``backfill`` flow runs once per chunk on a
    work pool (``chunk_deployment``).

    Each batch commits with its checkpoint, so a run killed mid-way and run again goes on
    from the last committed batch: no row is updated twice, none skipped. One runner per
    chunk at a time (a PostgreSQL advisory lock): a second run of the same chunk waits for
    the first one's session to go away, then refuses. ``retries`` cover what fails inside
    a live process (a lost connection, a dead runner's session still on the server); bad
    data or a bad expression ends the run Failed without retries.

    ``target``: a DatabaseTarget block name (a DSN without password for local use).
    """
    db = resolve_target(target)
    try:
        opts = BackfillOptions(**(options or {}))
        opts.shadow_dsn = None  # running needs no shadow (and a parameter holds no DSN)
        opts.validate()
        return run_chunk_task(db.dsn, backfill_id, chunk, asdict(opts))
    except TypeError as exc:  # an option the engine does not know
        return Failed(message=f"backfill-chunk: bad options: {exc}")
    except BadInput as exc:  # the data or the expression: retrying changes nothing
        return Failed(message=str(exc))


@dataclass
class _ChunkWatch:
    chunk: int
    runs: list[FlowRun] = field(default_factory=list)  # every attempt, the last current
    outcome: str | None = None  # done | cancelled | failed, once settled
    error: str | None = None
    submitted_at: float = 0.0
    unowned_since: float | None = None  # Running/Pending with no live runner since
    seen_runner: bool = False  # the current run was seen holding the chunk
    warned: bool = False

    @property
    def current(self) -> FlowRun:
        return self.runs[-1]


def _chunk_target(target: str | DatabaseTarget) -> str:
    if isinstance(target, DatabaseTarget):
        name = getattr(target, "_block_document_name", None)
        if not name:
            raise BadInput("chunk_deployment: chunk runs load the target by name; save the "
                           "DatabaseTarget block and pass its name")
        return name
    return target


def backfill_chunks_on_workers(
    target: str | DatabaseTarget, dsn: str, backfill_id: str, chunk_ids: list[int],
    options: dict[str, Any], progress: UUID | None, before: list[ChunkState], *,
    deployment: str = CHUNK_DEPLOYMENT, stale_s: float = CHUNK_STALE_S,
    start_s: float = CHUNK_START_S, attempts: int = CHUNK_ATTEMPTS,
) -> tuple[list[ChunkResult], float, str]:
    """Run each chunk as a flow run of ``deployment`` (any worker of its pool takes it),
    wait for all of them, and re-run the chunks whose worker died.

    How a dead worker is told apart, and why this way: a worker killed with its flow run
    (machine lost, OOM, SIGKILL, pod evicted) reports nothing, so Prefect leaves the run
    Running for ever; the chunk flow's ``retries`` cannot help either, since they run in
    the process that died. The database can tell: a live runner holds its chunk's
    advisory lock on the target, and the server drops the lock with the session when the
    process dies (the runner's TCP keepalives bound how long a vanished machine's
    session lingers). So this coordinator, every ``CHUNK_POLL_S``, reads the chunk runs'
    states and the checkpoint rows with their live runners, and

    - a run that Prefect itself ends Crashed (its worker saw the process die, or an
      operator's zombie automation marked it) is submitted again;
    - a run Running whose runner was seen holding the chunk, while no session has held
      it for ``stale_s``, is marked Crashed here, then submitted again. A run that has
      not shown a runner yet may still be starting (a worker starts a Python process
      that imports Prefect and the flow: seconds to tens of seconds on a busy machine,
      and Prefect marks the run Running early in it), so for it the limit is
      ``start_s``, which is also the limit for a run Pending on a worker that died;
    - a run Failed is submitted again unless the chunk's checkpoint says why it stopped
      (bad data, lock waits given up: the same would happen again) and ends the backfill
      failed; while a chunk has a live runner (an earlier run of it thought dead was only
      slow) nothing is submitted, the chunk is watched;
    - at most ``attempts`` runs per chunk.

    Being wrong is safe: the batch and its checkpoint commit together and one runner
    per chunk holds the lock, so a second run of a chunk waits for the first or goes on
    where it stopped; every row is updated exactly once either way. What counts as done
    is the checkpoint row, not a run's state. The chunk runs are subflows of this run
    (their parent in the UI); their progress is this run's progress artifact.
    """
    logger = get_run_logger()
    parent = get_run_context().flow_run  # type: ignore[union-attr]
    parent_id = parent.id if parent else None
    params_target = _chunk_target(target)
    opts = dict(options, shadow_dsn=None, restart=False,
                # A re-run may start while a run thought dead still holds the chunk: wait.
                wait_for_runner_s=max(float(options.get("wait_for_runner_s") or 0),
                                      2 * stale_s))
    try:
        with get_client(sync_client=True) as client:
            client.read_deployment_by_name(deployment)
    except ObjectNotFound:
        raise BadInput(f"no deployment {deployment!r}: deploy it on a work pool (prefect "
                       "deploy, or lockplane serve --work-pool POOL)") from None
    start_before = {c.chunk: c for c in before}
    watches = {c: _ChunkWatch(c) for c in chunk_ids}
    t_start = time.monotonic()

    def submit(w: _ChunkWatch, why: str | None = None) -> None:
        attempt = len(w.runs) + 1
        run = run_deployment(
            deployment, timeout=0, as_subflow=True,
            parameters={"target": params_target, "backfill_id": backfill_id,
                        "chunk": w.chunk, "options": opts},
            flow_run_name=f"backfill-{backfill_id}-chunk-{w.chunk}"
                          + (f"-attempt-{attempt}" if attempt > 1 else ""),
            idempotency_key=f"{parent_id}:{backfill_id}:{w.chunk}:{attempt}",
            tags=["lockplane", f"backfill:{backfill_id}"])
        w.runs.append(run)
        w.submitted_at = time.monotonic()
        w.unowned_since = None
        w.seen_runner = False
        w.warned = False
        logger.info("chunk %d: flow run %s submitted to %s%s", w.chunk, run.name, deployment,
                    f" again ({why})" if why else "")

    def settle(w: _ChunkWatch, outcome: str, error: str | None = None) -> None:
        w.outcome, w.error = outcome, error
        log = logger.warning if outcome != "done" else logger.info
        log("chunk %d %s after %d flow run(s)%s", w.chunk, outcome, len(w.runs),
            f": {error}" if error else "")

    def again(w: _ChunkWatch, why: str) -> None:
        if len(w.runs) >= attempts:
            settle(w, "failed", f"{why}; gave up after {attempts} flow run(s)")
        else:
            submit(w, why)

    for w in watches.values():
        submit(w)
    while any(w.outcome is None for w in watches.values()):
        time.sleep(CHUNK_POLL_S)
        with get_client(sync_client=True) as client:
            current = {r.id: r for r in client.read_flow_runs(flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[w.current.id for w in watches.values()])))}
            states, live = chunk_runs(dsn, backfill_id)
            rows = {c.chunk: c for c in states}
            if progress is not None:
                scanned = sum(c.rows_scanned for c in states)
                total = max(sum(c.rows_estimate or 0 for c in states), scanned, 1)
                update_progress_artifact(progress, progress=round(99.9 * scanned / total, 1))
            now = time.monotonic()
            for w in watches.values():
                if w.outcome is not None:
                    continue
                run = current.get(w.current.id, w.current)
                w.runs[-1] = run
                row = rows.get(w.chunk)
                kind = run.state_type
                owned = live is None or w.chunk in live
                final = run.state is not None and run.state.is_final()
                if row is None:
                    settle(w, "failed", "its checkpoint row is gone (restarted elsewhere?)")
                elif row.status in ("done", "cancelled") and (final or not owned):
                    settle(w, row.status)
                elif kind == StateType.CRASHED:
                    again(w, f"run {run.name} crashed: {run.state.message if run.state else ''}")
                elif kind == StateType.FAILED:
                    if owned and live is not None:
                        continue  # an earlier run still holds the chunk: watch it
                    if row.status == "failed":
                        settle(w, "failed", row.error or (run.state.message if run.state
                                                          else None))
                    else:
                        again(w, f"run {run.name} failed: "
                                 f"{run.state.message if run.state else ''}")
                elif kind in (StateType.CANCELLED, StateType.CANCELLING):
                    if final:
                        settle(w, "cancelled", f"run {run.name} was cancelled")
                elif kind == StateType.COMPLETED:
                    if not owned or live is None:
                        again(w, f"run {run.name} completed but the chunk is {row.status}")
                elif kind in (StateType.RUNNING, StateType.PENDING):
                    if owned:
                        w.unowned_since = None
                        w.seen_runner = w.seen_runner or kind == StateType.RUNNING
                        continue
                    w.unowned_since = w.unowned_since or now
                    limit = stale_s if w.seen_runner else start_s
                    if now - w.unowned_since >= limit:
                        had = "no longer has" if w.seen_runner else "never had"
                        why = (f"run {run.name} was {kind.value.lower()} for "
                               f"{now - w.unowned_since:.0f} s and {had} a live runner of "
                               "the chunk: its worker died")
                        client.set_flow_run_state(run.id, Crashed(message=why), force=True)
                        again(w, why)
                else:
                    w.unowned_since = None  # Scheduled (waiting, or awaiting a retry)
                if (kind == StateType.SCHEDULED and not w.warned
                        and now - w.submitted_at > UNCLAIMED_WARN_S):
                    w.warned = True  # Scheduled, Late: no worker polls the pool
                    logger.warning("chunk %d: run %s not picked up after %.0f s: is a worker "
                                   "of its work pool running? (prefect worker start --pool "
                                   "POOL --type process)", w.chunk, run.name,
                                   now - w.submitted_at)
    seconds = time.monotonic() - t_start
    states, _ = chunk_runs(dsn, backfill_id)
    rows = {c.chunk: c for c in states}
    failed = [w for w in watches.values() if w.outcome == "failed"]
    if failed:
        raise ExecutionFailed("backfill " + backfill_id + ": " + "; ".join(
            f"chunk {w.chunk} failed ({w.error})" for w in failed)
            + "; the checkpoints are kept: run the backfill again to resume")
    results: list[ChunkResult] = []
    for c in chunk_ids:
        row, was = rows[c], start_before.get(c)
        results.append(ChunkResult(
            c, watches[c].outcome or "stopped",
            row.rows_scanned - (was.rows_scanned if was else 0),
            row.rows_updated - (was.rows_updated if was else 0),
            row.batches - (was.batches if was else 0), seconds, 0))
    lines = ["", "", "## Chunk runs", "", "| chunk | flow runs | outcome | rows scanned |",
             "|---|---|---|---|"]
    for c in chunk_ids:
        w = watches[c]
        names = ", ".join(f"`{r.name}` ({r.state_type.value.lower() if r.state_type else '?'})"
                          for r in w.runs)
        lines.append(f"| {c} | {names} | {w.outcome} | {rows[c].rows_scanned:,} |")
    return results, seconds, "\n".join(lines) + "\n"
