"""The backup deployments: scheduled backups and validations, and on-demand recovery
(served by serve.py, declared in prefect.yaml)."""

from __future__ import annotations

from typing import Any

from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron

from flows.backup import backup_create, backup_validate
from flows.recovery import ONE_HOUR_S, recovery
from flows.restore_rows import ONE_WEEK_S, restore_rows

DEFAULT_STORAGE = "backups"  # a BackupStorage block name
BACKUP_CRON = "0 2 * * *"  # daily, 02:00 UTC: the quiet hours
VALIDATE_CRON = "0 4 * * *"  # two hours later: the night's backup is restored and checked


def backup_deployments(target: str, common: dict[str, Any]) -> list[RunnerDeployment]:
    return [
        backup_create.to_deployment(
            name="backup-create",
            description="Back up the target (pg_dump -Fd -j N, or SQLite's online backup) "
                        "with a manifest of per-table counts and checksums.",
            parameters={"target": target, "storage": DEFAULT_STORAGE, "jobs": 2},
            schedules=[Cron(BACKUP_CRON, timezone="UTC")],
            **common,
        ),
        backup_validate.to_deployment(
            name="backup-validate",
            description="Restore the newest backup into a temporary database, check its "
                        "counts, checksums and schema, and measure the restore time (RTO).",
            parameters={"target": target, "storage": DEFAULT_STORAGE, "jobs": 2},
            schedules=[Cron(VALIDATE_CRON, timezone="UTC")],
            **common,
        ),
        recovery.to_deployment(
            name="recovery",
            description="On demand: the nearest backup before a time, the timeline since and "
                        "what restoring loses; pauses for an operator's approval, then "
                        "restores into a new database (or, with overwrite, over the target).",
            # `to` (a time, 'now' by default), into_database or overwrite: per run.
            parameters={"target": target, "storage": DEFAULT_STORAGE, "overwrite": False,
                        "approval_timeout_s": ONE_HOUR_S},
            **common,
        ),
        restore_rows.to_deployment(
            name="restore-rows",
            description="On demand: a table's rows from a backup as upserts that fit "
                        "today's schema; publishes what would be inserted, updated and "
                        "skipped, pauses for an operator's approval, then merges them in "
                        "resumable batches.",
            # `table` (and backup_id, where) per run; the newest backup by default.
            parameters={"target": target, "storage": DEFAULT_STORAGE, "on_conflict": "skip",
                        "auto_approve": False, "approval_timeout_s": ONE_WEEK_S},
            **common,
        ),
    ]
