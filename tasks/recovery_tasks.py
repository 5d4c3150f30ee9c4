"""Recovery tasks: thin wrappers around lockplane.backup (restore) and its pitr module."""

from __future__ import annotations

from datetime import datetime

from prefect import task
from prefect.cache_policies import NO_CACHE

from lockplane.backup import RestoreResult, Storage, restore_backup
from lockplane.backup.pitr import RecoveryPlan, plan_recovery


@task(name="plan-recovery", cache_policy=NO_CACHE)
def plan_recovery_task(storage: Storage, dsn: str, when: datetime,
                       backup_id: str | None, jobs: int) -> RecoveryPlan:
    """The nearest backup, the timeline since and what restoring it loses (read-only)."""
    return plan_recovery(storage, dsn, when, jobs=jobs, backup_id=backup_id)


@task(name="restore-backup", cache_policy=NO_CACHE)
def restore_backup_task(storage: Storage, backup_id: str, into_dsn: str, jobs: int,
                        overwrite: bool) -> RestoreResult:
    return restore_backup(storage, backup_id, into_dsn, jobs=jobs, force=overwrite)
