"""Backup tasks: thin wrappers around lockplane.backup."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from blocks.backup_storage import BackupStorage
from lockplane.backup import (
    Manifest,
    Storage,
    ValidationReport,
    create_backup,
    open_storage,
    read_status,
    validate_backup,
)
from lockplane.model import Schema


def resolve_storage(storage: str | BackupStorage) -> Storage:
    """A BackupStorage block (instance or saved name), or a directory / s3:// URL."""
    if isinstance(storage, BackupStorage):
        return storage.storage()
    if storage.startswith("s3://") or "/" in storage or storage.startswith("."):
        return open_storage(storage)
    return BackupStorage.load(storage).storage()


@task(name="create-backup", cache_policy=NO_CACHE)
def create_backup_task(dsn: str, storage: Storage, jobs: int) -> Manifest:
    return create_backup(dsn, storage, jobs=jobs, reason="scheduled")


@task(name="validate-backup", cache_policy=NO_CACHE)
def validate_backup_task(storage: Storage, backup_id: str, server_dsn: str, jobs: int,
                         desired: Schema | None, live_dsn: str | None) -> ValidationReport:
    return validate_backup(storage, backup_id, server_dsn=server_dsn, jobs=jobs,
                           desired=desired, live_dsn=live_dsn)


@task(name="latest-backup", cache_policy=NO_CACHE)
def latest_backup_task(storage: Storage, database: str) -> str | None:
    """The id of the database's newest backup, from the state stored next to them."""
    status = read_status(storage, database)
    return status.last_backup.id if status.last_backup else None
