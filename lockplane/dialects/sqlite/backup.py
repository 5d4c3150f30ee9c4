"""SQLite backups: a copy made with SQLite's online backup API, restored by copying it back.

Compare, extract and merge ATTACH a temporary read-only copy of the backup to a
connection on the live file (lockplane/dialects/sqlite/backup_rows.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from ...backup.core import RestoredCopy, _describe_files, _now, fetched_backup
from ...backup.engine import HISTORY_COLUMNS, BackupEngine
from ...backup.manifest import DATA_DIR, HistoryPosition, Manifest, TableStats
from ...backup.rows import CompareReport, ExtractResult, RowMergeBase
from ...backup.storage import Storage
from ...dsn import redact, sqlite_path
from ...errors import BadInput, SafetyRefusal

Reporter = Callable[[str], None]
SQLITE_FILE = "database.sqlite"
_HISTORY = ("SELECT id, coalesce(hash_after, target_hash), "
            "(SELECT count(*) FROM _lockplane_migrations WHERE result = 'applied') "
            "FROM _lockplane_migrations WHERE result = 'applied' ORDER BY id DESC "
            "LIMIT 1")


def _row_hash(row: tuple[object, ...]) -> int:
    return int.from_bytes(hashlib.blake2b(repr(row).encode(), digest_size=8).digest(),
                          "big", signed=True)


def sqlite_table_stats(conn: sqlite3.Connection) -> list[TableStats]:
    """Stats of every table of a SQLite database (its own ``sqlite_*`` tables left out)."""
    names = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' "
        "ESCAPE '\\' ORDER BY name")]
    stats = []
    for name in names:
        quoted = '"' + name.replace('"', '""') + '"'
        count = 0
        total = 0
        try:
            cursor = conn.execute(f"SELECT * FROM {quoted}")  # noqa: S608 - quoted identifier
        except sqlite3.OperationalError:  # a virtual table whose module is missing
            continue
        for row in cursor:
            count += 1
            total += _row_hash(row)
        stats.append(TableStats(schema="", name=name, rows=count, checksum=str(total)))
    return stats


def read_only(path: str | Path) -> sqlite3.Connection:
    """A read-only connection on a SQLite file (a URI: the path is percent-encoded)."""
    from urllib.parse import quote

    return sqlite3.connect(f"file:{quote(str(Path(path).resolve()))}?mode=ro", uri=True)


def ro_uri(path: str | Path) -> str:
    from urllib.parse import quote

    return f"file:{quote(str(Path(path).resolve()))}?mode=ro"


def open_existing(dsn: str) -> tuple[str, sqlite3.Connection]:
    path = sqlite_path(dsn)
    if path == ":memory:" or not Path(path).is_file():
        raise BadInput(f"SQLite database {redact(dsn)} not found")
    try:
        return path, read_only(path)
    except sqlite3.Error as exc:
        raise BadInput(f"cannot open {redact(dsn)}: {exc}") from None


def _sqlite_history(conn: sqlite3.Connection) -> HistoryPosition | None:
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = '_lockplane_migrations'"
                        ).fetchone():
        return None
    row = conn.execute(_HISTORY).fetchone()
    return HistoryPosition(last_migration_id=row[0], target_hash=row[1],
                           migrations_applied=row[2]) if row else None


def _sqlite_schema_hash(path: Path) -> str:
    from .. import connect

    with connect(f"sqlite:///{path.resolve()}") as db:
        return db.introspect().hash()


def _create_sqlite(dsn: str, storage: Storage, backup_id: str, report: Reporter) -> Manifest:
    started = time.monotonic()
    _, src = open_existing(dsn)
    with tempfile.TemporaryDirectory(prefix="lockplane-backup-") as tmp:
        data = Path(tmp) / DATA_DIR
        data.mkdir()
        copy = data / SQLITE_FILE
        dst = sqlite3.connect(copy)
        try:
            report(f"SQLite online backup of {redact(dsn)}")
            src.backup(dst)  # one step: a consistent copy even while others write
        finally:
            src.close()
        try:
            stats = sqlite_table_stats(dst)
            history = _sqlite_history(dst)
        finally:
            dst.close()
        schema_hash = _sqlite_schema_hash(copy)
        files = _describe_files(data, 1)
        storage.put_dir(f"{backup_id}/{DATA_DIR}", data)
    return Manifest(
        id=backup_id, created_at=_now().isoformat(timespec="seconds"), dialect="sqlite",
        database=redact(dsn), database_name=Path(sqlite_path(dsn)).name,
        server_version=sqlite3.sqlite_version, tool="sqlite3 online backup API",
        format="sqlite-file", schema_hash=schema_hash, history=history, tables=stats,
        files=files, size_bytes=sum(f.size for f in files),
        duration_s=round(time.monotonic() - started, 3), jobs=1)



def _restore(storage: Storage, manifest: Manifest, target_dsn: str, force: bool) -> bool:
    path = sqlite_path(target_dsn)
    if path == ":memory:":
        raise BadInput("restore a SQLite backup into a file: sqlite:///path/to.db")
    target = Path(path)
    exists = target.exists()
    if exists:
        try:
            with contextlib.closing(read_only(target)) as c:
                tables = c.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        except sqlite3.Error as exc:
            raise BadInput(f"cannot read {redact(target_dsn)}: {exc}") from None
        if tables and not force:
            raise SafetyRefusal(f"not restored: {redact(target_dsn)} already has {tables} "
                                "schema object(s); restore into a new file, or pass --force "
                                "to overwrite it")
    with fetched_backup(storage, manifest) as local:
        src = read_only(local / SQLITE_FILE)
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            src.close()
            dst.close()
    return not exists


@contextlib.contextmanager
def restored_copy(storage: Storage, manifest: Manifest) -> Iterator[RestoredCopy]:
    """The backup's file copied into a temporary directory, read-only (mode 0400)."""
    with tempfile.TemporaryDirectory(prefix="lockplane-backup-") as tmp:
        started = time.monotonic()
        path = Path(tmp) / "restored.sqlite"
        with fetched_backup(storage, manifest) as local:
            shutil.copyfile(local / SQLITE_FILE, path)
        path.chmod(0o400)
        dsn = f"sqlite:///{path}"
        done = time.monotonic()
        yield RestoredCopy(manifest, dsn, dsn, round(done - started, 3), restored_at=done)


class SQLiteBackups(BackupEngine):
    """Online-backup-API copies of a SQLite file."""

    name = "sqlite"

    def create(self, dsn: str, storage: Storage, backup_id: str, jobs: int,
               report: Reporter) -> Manifest:
        return _create_sqlite(dsn, storage, backup_id, report)

    def restore(self, storage: Storage, manifest: Manifest, target_dsn: str, *, jobs: int,
                force: bool, no_owner: bool, report: Reporter) -> bool:
        return _restore(storage, manifest, target_dsn, force)

    def restored_copy(self, storage: Storage, manifest: Manifest, server_dsn: str | None, *,
                      jobs: int, report: Reporter,
                      ) -> contextlib.AbstractContextManager[RestoredCopy]:
        return restored_copy(storage, manifest)

    def query(self, copy: RestoredCopy, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        with contextlib.closing(read_only(sqlite_path(copy.dsn))) as c:
            try:
                cur = c.execute(sql)
            except sqlite3.Error as exc:
                raise BadInput(f"query failed: {exc}") from None
            return [d[0] for d in cur.description or []], cur.fetchall()

    def copy_stats(self, copy: RestoredCopy, jobs: int) -> list[TableStats]:
        with contextlib.closing(read_only(sqlite_path(copy.dsn))) as c:
            return sqlite_table_stats(c)

    def history(self, live_dsn: str, columns: str = HISTORY_COLUMNS) -> list[tuple[Any, ...]]:
        _, conn = open_existing(live_dsn)
        with contextlib.closing(conn):
            if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = "
                                "'_lockplane_migrations'").fetchone():
                return []
            return conn.execute(f"SELECT {columns} FROM _lockplane_migrations "  # noqa: S608
                                "ORDER BY id").fetchall()

    def live_stats(self, live_dsn: str, jobs: int, manifest: Manifest | None
                   ) -> list[TableStats]:
        _, conn = open_existing(live_dsn)
        with contextlib.closing(conn):
            return sqlite_table_stats(conn)

    def compare(self, storage: Storage, manifest: Manifest, live_dsn: str, *,
                server_dsn: str | None, jobs: int, tables: list[str] | None,
                report: Reporter) -> CompareReport:
        from .backup_rows import compare_backup

        return compare_backup(storage, manifest, live_dsn, tables=tables, report=report)

    def extract(self, storage: Storage, manifest: Manifest, live_dsn: str, table: str,
                out: IO[str], *, where: str | None, on_conflict: str,
                server_dsn: str | None, jobs: int, report: Reporter) -> ExtractResult:
        from .backup_rows import extract_rows

        return extract_rows(storage, manifest, live_dsn, table, out, where=where,
                            on_conflict=on_conflict, report=report)

    def open_merge(self, storage: Storage, manifest: Manifest, live_dsn: str, table: str, *,
                   where: str | None, on_conflict: str, server_dsn: str | None, jobs: int,
                   report: Reporter) -> contextlib.AbstractContextManager[RowMergeBase]:
        from .backup_rows import open_merge

        return open_merge(storage, manifest, live_dsn, table, where=where,
                          on_conflict=on_conflict, report=report)
