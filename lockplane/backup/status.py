"""What scheduled backup flows need to remember, kept next to the backups themselves.

``<storage>/_state/<database key>.json`` holds the last backup made, the last one that
validated, and the last validation's outcome: it survives Prefect server restarts and
any machine that reaches the storage (the CLI's ``backup status``) can read it.
"""

from __future__ import annotations

import hashlib
import json
import re

from pydantic import BaseModel

from ..errors import BadInput
from .manifest import database_identity
from .storage import Storage, StorageError

STATE_DIR = "_state"


class BackupRef(BaseModel):
    id: str
    created_at: str


class ValidationOutcome(BaseModel):
    backup_id: str
    at: str
    ok: bool
    rto_s: float | None = None
    summary: str = ""


class BackupStatus(BaseModel):
    database: str  # redacted
    last_backup: BackupRef | None = None
    last_good_backup: BackupRef | None = None  # the newest that passed validation
    last_validation: ValidationOutcome | None = None


def database_key(database: str) -> str:
    """A storage-safe key for a (redacted) database DSN: readable slug + short hash."""
    database = database_identity(database)
    slug = re.sub(r"[^a-z0-9]+", "-", database.lower().split("?", 1)[0]).strip("-")[-40:]
    return f"{slug.strip('-') or 'db'}-{hashlib.sha256(database.encode()).hexdigest()[:8]}"


def read_status(storage: Storage, database: str) -> BackupStatus:
    key = f"{STATE_DIR}/{database_key(database)}.json"
    try:
        raw = storage.get_bytes(key)
    except StorageError as exc:
        if "not found" in exc.message:
            return BackupStatus(database=database)
        raise
    try:
        return BackupStatus.model_validate(json.loads(raw))
    except ValueError:
        raise BadInput(f"{storage.url}/{key}: not a Lockplane backup state file") from None


def write_status(storage: Storage, status: BackupStatus) -> None:
    key = f"{STATE_DIR}/{database_key(status.database)}.json"
    storage.put_bytes(key, (status.model_dump_json(indent=2) + "\n").encode())


def all_statuses(storage: Storage) -> list[BackupStatus]:
    """Every database's status in this storage."""
    out = []
    for name in storage.list_files(STATE_DIR):
        if not name.endswith(".json"):
            continue
        try:
            out.append(BackupStatus.model_validate(json.loads(
                storage.get_bytes(f"{STATE_DIR}/{name}"))))
        except (ValueError, StorageError):
            continue
    return out
