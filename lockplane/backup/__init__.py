"""Backups with manifests: create, list, restore, query and validate.

The public API (typed, no Prefect, no CLI)::

    from lockplane.backup import open_storage, create_backup, list_backups, \\
        load_manifest, restore_backup, restored_copy, validate_backup

    storage = open_storage("s3://bucket/prefix")        # or a directory; Storage subclasses
    m = create_backup(dsn, storage, jobs=4)              # -> Manifest (stored last)
    list_backups(storage)                                # -> [Manifest], newest first
    restore_backup(storage, m.id, "postgresql://.../new_db", jobs=4)
    with restored_copy(storage, m.id, server_dsn) as copy:   # temporary, read-only database
        query_copy(copy, "SELECT count(*) FROM users")
    report = validate_backup(storage, m.id, server_dsn=..., live_dsn=dsn)

Building blocks for later recovery tools (compare, extract/merge, point in time):
``Storage`` (put/get files and bytes, list, ``fetched`` to get a verified local copy),
``Manifest`` (tables with counts and checksums, files with sha256, schema hash, history
position), ``fetched_backup``, ``verify_files``, ``restored_copy`` and the status file
(``read_status``/``write_status``: last backup, last good backup, last validation).
"""

from .core import (
    BackupCorrupt,
    Check,
    RestoredCopy,
    RestoreResult,
    ValidationReport,
    create_backup,
    fetched_backup,
    list_backups,
    load_manifest,
    migrations_since,
    new_backup_id,
    query_copy,
    restore_backup,
    restored_copy,
    validate_backup,
    verify_files,
)
from .manifest import HistoryPosition, Manifest, StoredFile, TableStats
from .status import BackupStatus, all_statuses, read_status, write_status
from .storage import LocalStorage, S3Storage, Storage, StorageError, open_storage

__all__ = [
    "BackupCorrupt", "BackupStatus", "Check", "HistoryPosition", "LocalStorage", "Manifest",
    "RestoreResult", "RestoredCopy", "S3Storage", "Storage", "StorageError", "StoredFile",
    "TableStats", "ValidationReport", "all_statuses", "create_backup",
    "fetched_backup", "list_backups", "load_manifest", "migrations_since", "new_backup_id",
    "open_storage", "query_copy", "read_status", "restore_backup", "restored_copy",
    "validate_backup", "verify_files", "write_status",
]
