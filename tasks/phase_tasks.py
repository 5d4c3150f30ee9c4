"""Thin Prefect tasks around ``lockplane.multiphase.runner``: each is one engine call.

The CLI (apply-phase, verify-phase, approve, rollback-phase) calls the same functions, so
a flow and an operator at a terminal read and write the same ``lockplane.phases`` rows.
No task caches (their arguments include DSNs) and none logs a DSN except redacted.
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from lockplane.dsn import redact
from lockplane.execute import ApplyOptions
from lockplane.multiphase import runner
from lockplane.multiphase.model import MultiPhasePlan
from lockplane.multiphase.runner import VerificationResult
from lockplane.multiphase.state import MigrationState
from lockplane.plan import DEFAULT_LOCK_TIMEOUT_MS


def _report(message: str) -> None:
    get_run_logger().info(redact(message))


@task(name="phase-state", cache_policy=NO_CACHE)
def phase_state_task(mp: MultiPhasePlan, dsn: str) -> MigrationState:
    """The migration's progress in the target (registered on first use; refused when the
    table already has another active multi-phase migration)."""
    return runner.migration_state(mp, dsn)


@task(name="verify-phase", task_run_name="verify-phase-{phase}", cache_policy=NO_CACHE)
def verify_phase_task(mp: MultiPhasePlan, dsn: str, phase: int,
                      actor: str | None = None) -> list[VerificationResult]:
    """Run the phase's verification queries (each passes when it returns no rows)."""
    return runner.verify(mp, dsn, phase, actor=actor)


@task(name="apply-phase", task_run_name="apply-phase-{phase}", cache_policy=NO_CACHE)
def apply_phase_task(mp: MultiPhasePlan, dsn: str, phase: int, safety: str = "moderate",
                     shadow_dsn: str | None = None, lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS,
                     actor: str | None = None,
                     cancel_blockers_after_s: float | None = None) -> dict[str, Any]:
    """Apply one phase (refused out of order, unverified or unapproved); a plain dict.
    ``cancel_blockers_after_s``: as apply-phase's ``--cancel-blockers-after``."""
    opts = ApplyOptions(safety=safety, shadow_dsn=shadow_dsn, lock_timeout_ms=lock_timeout_ms,
                        applied_by=actor, cancel_blockers_after_s=cancel_blockers_after_s)
    result = runner.apply_phase(mp, dsn, phase, options=opts, actor=actor, report=_report)
    return {"phase": phase, "status": result.status, "migration_id": result.migration_id,
            "steps_run": result.steps_run, "hash_after": result.hash_after,
            "warnings": list(result.warnings)}


@task(name="record-approval", task_run_name="record-approval-{phase}", cache_policy=NO_CACHE)
def record_approval_task(mp: MultiPhasePlan, dsn: str, phase: int, approver: str,
                         comment: str | None = None) -> MigrationState:
    """Record in the target who approved the code deploy after ``phase``."""
    return runner.approve(mp, dsn, phase, approver, comment or None)


@task(name="record-rejection", task_run_name="record-rejection-{phase}",
      cache_policy=NO_CACHE)
def record_rejection_task(mp: MultiPhasePlan, dsn: str, phase: int, approver: str,
                          comment: str | None = None) -> MigrationState:
    """Record in the target who rejected the code deploy after ``phase``."""
    return runner.reject(mp, dsn, phase, approver, comment or None)


@task(name="rollback-phases", cache_policy=NO_CACHE)
def rollback_phases_task(mp: MultiPhasePlan, dsn: str, to_phase: int = 0,
                         safety: str = "permissive", lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS,
                         actor: str | None = None,
                         cancel_blockers_after_s: float | None = None) -> list[dict[str, Any]]:
    """Undo applied phases, last first, until ``to_phase`` phases remain."""
    opts = ApplyOptions(safety=safety, lock_timeout_ms=lock_timeout_ms, applied_by=actor,
                        cancel_blockers_after_s=cancel_blockers_after_s)
    results = runner.rollback(mp, dsn, to_phase, options=opts, actor=actor, report=_report)
    return [{"status": r.status, "steps_run": r.steps_run, "hash_after": r.hash_after}
            for r in results]
