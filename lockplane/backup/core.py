"""Create, list, restore, query and validate backups, whatever the server.

The per-server work (dump, restore, temporary read-only copies, counts and checksums)
is the backup engine's of the dialect (``Dialect.backup_engine()``, engine.py): a
PostgreSQL backup is a ``pg_dump -Fd -j N`` directory (lockplane/dialects/postgres/
backup.py), a SQLite one a copy made with SQLite's online backup API
(lockplane/dialects/sqlite/backup.py). This module stores, lists, verifies and
validates them, and records what happened (status.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ..dsn import redact
from ..errors import BadInput, ExecutionFailed, SafetyRefusal
from .engine import engine_for, engine_of
from .manifest import (
    DATA_DIR,
    MANIFEST_FILE,
    HistoryPosition,
    Manifest,
    StoredFile,
    database_identity,
)
from .status import BackupRef, ValidationOutcome, read_status, write_status
from .storage import Storage, StorageError

Reporter = Callable[[str], None]


class BackupCorrupt(SafetyRefusal):
    """A stored backup does not match its manifest (missing, truncated or altered file):
    refused (exit 3) before anything is restored from it."""


def _now() -> datetime:
    return datetime.now(UTC)


def new_backup_id(when: datetime | None = None) -> str:
    """Sortable by time: ``20250102T030405Z-1a2b3c``."""
    return f"{(when or _now()).strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


def _quiet(report: Reporter | None) -> Reporter:
    return report or (lambda _msg: None)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _describe_files(root: Path, jobs: int) -> list[StoredFile]:
    files = [p for p in sorted(root.rglob("*")) if p.is_file()]
    with ThreadPoolExecutor(max(1, jobs)) as pool:  # hashlib releases the GIL
        digests = list(pool.map(_sha256, files))
    return [StoredFile(path=p.relative_to(root).as_posix(), size=p.stat().st_size, sha256=d)
            for p, d in zip(files, digests, strict=True)]


# ---------------------------------------------------------------------------- public API
def create_backup(dsn: str, storage: Storage, *, jobs: int = 1, reason: str | None = None,
                  report: Reporter | None = None) -> Manifest:
    """Back up the database at ``dsn`` into ``storage``; return its manifest.

    The manifest is stored last, so a failed or killed run never leaves a backup that
    lists or restores. Records the backup as the database's last one (status.py).
    """
    report = _quiet(report)
    if not 1 <= jobs <= 64:
        raise BadInput(f"--jobs must be from 1 to 64, not {jobs}")
    engine = engine_for(dsn)
    storage.check()
    backup_id = new_backup_id()
    manifest = engine.create(dsn, storage, backup_id, jobs, report)
    manifest.reason = reason
    storage.put_bytes(f"{backup_id}/{MANIFEST_FILE}", manifest.to_json().encode())
    status = read_status(storage, manifest.database)
    status.last_backup = BackupRef(id=manifest.id, created_at=manifest.created_at)
    write_status(storage, status)
    return manifest


def list_backups(storage: Storage, database: str | None = None) -> list[Manifest]:
    """Every complete backup in ``storage`` (newest first), optionally of one database
    (a DSN, compared redacted)."""
    storage.check()
    out = []
    for name in storage.list_dirs():
        if name.startswith("_"):
            continue
        try:
            raw = storage.get_bytes(f"{name}/{MANIFEST_FILE}")
        except StorageError as exc:
            if "not found" in exc.message:
                continue  # incomplete: a run died before its manifest
            raise
        m = Manifest.from_json(raw, f"{storage.url}/{name}/{MANIFEST_FILE}")
        if database is None or database_identity(m.database) == database_identity(
                redact(database)):
            out.append(m)
    return sorted(out, key=lambda m: (m.created_at, m.id), reverse=True)


def load_manifest(storage: Storage, backup_id: str) -> Manifest:
    """The manifest of ``backup_id`` ('latest' for the newest); exit 2 if unknown."""
    if backup_id == "latest":
        found = list_backups(storage)
        if not found:
            raise BadInput(f"no backups in {storage.url}")
        return found[0]
    if not backup_id or "/" in backup_id or backup_id.startswith((".", "_")):
        raise BadInput(f"bad backup id {backup_id!r}")
    storage.check()
    try:
        raw = storage.get_bytes(f"{backup_id}/{MANIFEST_FILE}")
    except StorageError as exc:
        if "not found" in exc.message:
            raise BadInput(f"unknown backup {backup_id!r} in {storage.url} "
                           "(see lockplane backup list)") from None
        raise
    return Manifest.from_json(raw, f"{storage.url}/{backup_id}/{MANIFEST_FILE}")


def verify_files(manifest: Manifest, local: Path) -> None:
    """Every file of the manifest present in ``local`` with its size and sha256; raises
    BackupCorrupt naming the first file that is not."""
    def check(f: StoredFile) -> str | None:
        p = local / f.path
        if not p.is_file():
            return f"{f.path}: missing"
        size = p.stat().st_size
        if size != f.size:
            what = "truncated" if size < f.size else "longer than recorded"
            return f"{f.path}: size {size} bytes, manifest says {f.size} ({what})"
        if _sha256(p) != f.sha256:
            return f"{f.path}: sha256 mismatch (content differs from the manifest)"
        return None

    with ThreadPoolExecutor(max(1, min(8, manifest.jobs))) as pool:
        problems = [p for p in pool.map(check, manifest.files) if p]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise BackupCorrupt(f"backup {manifest.id} is corrupt: {problems[0]}{more}")


@contextlib.contextmanager
def fetched_backup(storage: Storage, manifest: Manifest, jobs: int = 4) -> Iterator[Path]:
    """A local directory holding the backup's verified data files."""
    prefix = f"{manifest.id}/{DATA_DIR}"
    names = [f.path for f in manifest.files]
    try:
        with storage.fetched(prefix, names, jobs=max(4, jobs)) as local:
            verify_files(manifest, local)
            yield local
    except StorageError as exc:
        if "not found" in exc.message or "404" in exc.message or "NoSuchKey" in exc.message:
            raise BackupCorrupt(f"backup {manifest.id} is corrupt: {exc.message}") from None
        raise


@dataclass
class RestoreResult:
    backup_id: str
    target: str  # redacted
    created_database: bool
    seconds: float


def restore_backup(storage: Storage, backup_id: str, target_dsn: str, *, jobs: int = 1,
                   force: bool = False, no_owner: bool = False,
                   report: Reporter | None = None) -> RestoreResult:
    """Restore a backup into ``target_dsn``.

    PostgreSQL: a database that does not exist is created (on the same server, from
    template0); one that holds tables, views or sequences is refused (exit 3) unless
    ``force``, which drops and recreates the backup's objects there (pg_restore --clean).
    SQLite: a new file is written; an existing one with tables is refused unless
    ``force`` (then it is overwritten). Files are verified before the target is touched.
    """
    report = _quiet(report)
    if not 1 <= jobs <= 64:
        raise BadInput(f"--jobs must be from 1 to 64, not {jobs}")
    manifest = load_manifest(storage, backup_id)
    engine = engine_of(manifest)
    if engine_for(target_dsn) is not engine:
        raise BadInput(f"backup {manifest.id} is a {engine.name} backup; "
                       f"{redact(target_dsn)} is not")
    started = time.monotonic()
    created = engine.restore(storage, manifest, target_dsn, jobs=jobs, force=force,
                             no_owner=no_owner, report=report)
    return RestoreResult(manifest.id, redact(target_dsn), created,
                         round(time.monotonic() - started, 3))


@dataclass
class RestoredCopy:
    """A backup restored into a temporary database (or SQLite file), read-only."""

    manifest: Manifest
    dsn: str  # with credentials: for this process only
    display_dsn: str  # without a password: safe to print
    restore_s: float
    dropped_leftovers: list[str] = field(default_factory=list)
    restored_at: float = 0.0  # time.monotonic() when the restore ended


@contextlib.contextmanager
def restored_copy(storage: Storage, backup_id: str, server_dsn: str | None = None, *,
                  jobs: int = 1, report: Reporter | None = None) -> Iterator[RestoredCopy]:
    """Restore ``backup_id`` into a temporary read-only database, dropped on exit: on
    ``server_dsn``'s server (by default the backup's own server, when its DSN had no
    password) for a server's backup, in a temporary file for a file database's."""
    manifest = load_manifest(storage, backup_id)
    with engine_of(manifest).restored_copy(storage, manifest, server_dsn, jobs=jobs,
                                           report=_quiet(report)) as copy:
        yield copy


def query_copy(copy: RestoredCopy, sql: str) -> tuple[list[str], list[tuple[object, ...]]]:
    """Run ``sql`` read-only on a restored copy; ``(column names, rows)``."""
    return engine_of(copy.manifest).query(copy, sql)


# ---------------------------------------------------------------------------- validation
@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class ValidationReport:
    backup_id: str
    ok: bool
    rto_s: float  # fetch + verify + restore: how long a real restore would take
    restore_s: float
    checks: list[Check]
    notes: list[str]

    def to_json(self) -> dict[str, object]:
        return {"backup_id": self.backup_id, "ok": self.ok, "rto_s": self.rto_s,
                "restore_s": self.restore_s,
                "checks": [c.__dict__ for c in self.checks], "notes": self.notes}

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]


def _copy_schema(copy: RestoredCopy):  # -> Schema
    from ..dialects import connect

    with connect(copy.dsn) as db:
        return db.introspect()


def migrations_since(live_dsn: str, position: HistoryPosition | None) -> int:
    """How many migrations the live database has applied since ``position``."""
    after = position.last_migration_id if position else 0
    rows = engine_for(live_dsn).history(live_dsn, "id, result")
    return sum(1 for mid, result in rows if result == "applied" and int(mid) > after)


def validate_backup(storage: Storage, backup_id: str, *, server_dsn: str | None = None,
                    jobs: int = 1, desired=None, live_dsn: str | None = None,  # noqa: ANN001
                    report: Reporter | None = None, record: bool = True) -> ValidationReport:
    """Restore ``backup_id`` into a temporary database and check it.

    Checks: every file's size and sha256 (a corrupt backup raises BackupCorrupt, exit 3,
    before any restore), the restore itself, each table's row count and checksum, the
    schema hash. With ``desired`` (a Schema) the restored schema is compared with it;
    with ``live_dsn`` the live database's migrations since the backup are counted.
    The outcome is recorded in the storage's state (status.py) unless ``record`` is off.
    """
    report = _quiet(report)
    started = time.monotonic()
    manifest = load_manifest(storage, backup_id)
    checks: list[Check] = []
    notes: list[str] = []
    try:
        engine = engine_of(manifest)
        with engine.validated_copy(storage, manifest, server_dsn, jobs=jobs,
                                   report=report) as (copy, read_back):
            rto = round((copy.restored_at or time.monotonic()) - started, 3)
            checks.append(Check("restore", True, f"restored in {copy.restore_s:.1f} s"))
            stats = {t.qualified: t for t in read_back}
            expected = {t.qualified: t for t in manifest.tables}
            bad = []
            for name, want in expected.items():
                got = stats.get(name)
                if got is None:
                    bad.append(f"{name}: missing after restore")
                elif got.rows != want.rows:
                    bad.append(f"{name}: {got.rows} rows, manifest says {want.rows}")
                elif got.checksum != want.checksum:
                    bad.append(f"{name}: checksum differs from the manifest")
            extra = sorted(set(stats) - set(expected))
            bad += [f"{name}: not in the manifest" for name in extra]
            checks.append(Check("tables", not bad, "; ".join(bad) if bad else
                                f"{len(expected)} table(s), {manifest.total_rows} row(s): "
                                "counts and checksums match"))
            schema = _copy_schema(copy)
            h = schema.hash()
            checks.append(Check("schema hash", h == manifest.schema_hash,
                                f"{h[:12]}" if h == manifest.schema_hash else
                                f"restored {h[:12]}, manifest says {manifest.schema_hash[:12]}"))
            if desired is not None:
                from ..dialects import get_dialect
                from ..diff import diff

                if desired.hash() == h:
                    notes.append("schema matches the desired schema")
                else:
                    try:
                        n = len(diff(schema, desired, get_dialect(engine.name)))
                        notes.append(f"schema differs from the desired schema ({n} change(s))")
                    except Exception:  # noqa: BLE001 - a note, never a failure
                        notes.append("schema differs from the desired schema")
    except BackupCorrupt as exc:
        if record:
            _record_validation(storage, manifest, False, None, exc.message)
        raise
    except ExecutionFailed as exc:
        checks.append(Check("restore", False, exc.message))
        rto = round(time.monotonic() - started, 3)
        copy = None
    if live_dsn:
        behind = migrations_since(live_dsn, manifest.history)
        if behind:
            notes.append(f"{behind} migration(s) behind {redact(live_dsn)}; they will be "
                         "needed after a restore")
        else:
            notes.append(f"at the same migration as {redact(live_dsn)}")
    ok = all(c.ok for c in checks)
    result = ValidationReport(manifest.id, ok, rto,
                              copy.restore_s if copy is not None else 0.0, checks, notes)
    if record:
        summary = ("passed" if ok else "failed: " + "; ".join(
            f"{c.name}: {c.detail}" for c in result.failures))
        _record_validation(storage, manifest, ok, rto, summary)
    return result


def _record_validation(storage: Storage, manifest: Manifest, ok: bool, rto: float | None,
                       summary: str) -> None:
    status = read_status(storage, manifest.database)
    status.last_validation = ValidationOutcome(
        backup_id=manifest.id, at=_now().isoformat(timespec="seconds"), ok=ok, rto_s=rto,
        summary=summary[:500])
    if ok and (status.last_good_backup is None
               or status.last_good_backup.created_at <= manifest.created_at):
        status.last_good_backup = BackupRef(id=manifest.id, created_at=manifest.created_at)
    elif not ok and status.last_good_backup is not None \
            and status.last_good_backup.id == manifest.id:
        # It passed once, but its files have rotted since (or a check changed): it is not
        # good any more, and which older one is was not checked.
        status.last_good_backup = None
    write_status(storage, status)
