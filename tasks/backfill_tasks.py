"""Thin Prefect tasks around the backfill engine (``lockplane/backfill.py``).

Each task is one engine call. Options travel as a plain dict of ``BackfillOptions``
fields; DSNs are arguments (never cached, never logged except through ``redact``).
"""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

from prefect import get_run_logger, task
from prefect.artifacts import update_progress_artifact
from prefect.cache_policies import NO_CACHE

from lockplane.backfill import (
    BackfillOptions,
    BackfillPlan,
    Progress,
    make_spec,
    plan_backfill,
    run_chunk,
    start_backfill,
)
from lockplane.dsn import dialect_of, redact

PROGRESS_EVERY_S = 1.0  # progress artifact updates, at most this often per task
LOG_EVERY_S = 10.0


def _report(message: str) -> None:
    get_run_logger().info(redact(message))


@task(name="plan-backfill", cache_policy=NO_CACHE)
def plan_backfill_task(dsn: str, table: str, sets: list[str], where: str | None,
                       options: dict[str, Any]) -> BackfillPlan:
    """Resolve the key, try the batch on a shadow sample, check every row read-only,
    estimate rows, duration and WAL. Writes nothing to the target."""
    return plan_backfill(dsn, make_spec(table, sets, where, dialect_of(dsn)),
                         BackfillOptions(**options), report=_report)


@task(name="start-backfill", cache_policy=NO_CACHE)
def start_backfill_task(dsn: str, plan: BackfillPlan, options: dict[str, Any]) -> list[int]:
    """Create (or re-arm, to resume) the checkpoint rows; the chunks left to run."""
    chunks = start_backfill(dsn, plan, BackfillOptions(**options))
    get_run_logger().info("backfill %s: %d chunk(s) to run", plan.id, len(chunks))
    return chunks


class _ProgressPublisher:
    """Engine progress -> the flow's progress artifact and the run log, rate-limited."""

    def __init__(self, artifact_id: UUID | None) -> None:
        self.artifact_id = artifact_id
        self.last_artifact = 0.0
        self.last_log = 0.0
        self.last_note: str | None = None
        self.logger = get_run_logger()

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        if p.note and p.note != self.last_note:
            self.logger.warning("chunk %d: %s", p.chunk, p.note)
        self.last_note = p.note
        if self.artifact_id is not None and now - self.last_artifact >= PROGRESS_EVERY_S:
            self.last_artifact = now
            update_progress_artifact(self.artifact_id, progress=round(99.9 * p.fraction, 1))
        if now - self.last_log >= LOG_EVERY_S:
            self.last_log = now
            self.logger.info("chunk %d: %s rows scanned, %s updated, batch %s rows (%.0f ms), "
                             "%.0f rows/s", p.chunk, f"{p.rows_scanned:,}",
                             f"{p.rows_updated:,}", f"{p.batch_size:,}", p.last_batch_ms,
                             p.rows_per_second)


@task(name="backfill-chunk", cache_policy=NO_CACHE, task_run_name="backfill-chunk-{chunk}")
def run_chunk_task(dsn: str, backfill_id: str, chunk: int, options: dict[str, Any],
                   progress_artifact: UUID | None = None) -> dict[str, Any]:
    """Run one chunk to its end (or to a cancel); each batch commits with its checkpoint."""
    result = run_chunk(dsn, backfill_id, chunk, BackfillOptions(**options),
                       on_progress=_ProgressPublisher(progress_artifact))
    get_run_logger().info("chunk %d %s: %s rows scanned, %s updated in %d batch(es), %.1f s",
                          chunk, result.status, f"{result.rows_scanned:,}",
                          f"{result.rows_updated:,}", result.batches, result.seconds)
    return {"chunk": result.chunk, "status": result.status,
            "rows_scanned": result.rows_scanned, "rows_updated": result.rows_updated,
            "batches": result.batches, "seconds": result.seconds,
            "lock_retries": result.lock_retries}
