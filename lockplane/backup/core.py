"""Create, list, restore, query and validate backups (PostgreSQL and SQLite).

PostgreSQL backups are ``pg_dump -Fd -j N`` directories made on a snapshot that
Lockplane exports first: the manifest's per-table row counts are counted on the same
snapshot, in parallel with the dump, and its checksums are read from the dump's own data
files (checksums.py), so they describe exactly what was dumped.
SQLite backups are a copy made with SQLite's online backup API.

Restores and validations go through temporary databases named ``lockplane_backup_<token>``
whose owning session carries ``application_name = 'lockplane backup <token>'``; one
left by a killed run (no such session any more) is dropped by the next run on the server.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql as pgsql
from psycopg.conninfo import conninfo_to_dict

from ..dialects.postgres.sandbox import drop_abandoned_databases, drop_database
from ..dsn import dialect_of, redact, sqlite_path
from ..errors import BadInput, ExecutionFailed, SafetyRefusal
from . import checksums, pgtools
from .checksums import sqlite_table_stats
from .manifest import DATA_DIR, MANIFEST_FILE, HistoryPosition, Manifest, StoredFile, TableStats
from .status import BackupRef, ValidationOutcome, read_status, write_status
from .storage import Storage, StorageError

Reporter = Callable[[str], None]

TEMP_PREFIX = "lockplane_backup_"
OWNER_MARK = "lockplane backup "
SQLITE_FILE = "database.sqlite"


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


# ---------------------------------------------------------------------------- PostgreSQL
def _pg_connect(dsn: str, **kwargs: object) -> psycopg.Connection:
    try:
        return psycopg.connect(dsn, connect_timeout=10, **kwargs)  # type: ignore[arg-type]
    except psycopg.OperationalError as exc:
        reason = redact(str(exc).strip().splitlines()[-1] if str(exc).strip() else "")
        raise BadInput(f"cannot connect to {redact(dsn)}: {reason}") from None
    except psycopg.ProgrammingError as exc:
        raise BadInput(f"bad PostgreSQL URL {redact(dsn)}: {redact(str(exc))}") from None


def _dbname(dsn: str) -> str:
    try:
        return str(conninfo_to_dict(dsn).get("dbname") or "")
    except Exception:  # noqa: BLE001
        return ""


def _with_dbname(dsn: str, dbname: str) -> str:
    """The same connection, another database; a URL stays a URL (the engine's
    dialect detection needs one)."""
    from urllib.parse import quote, urlsplit, urlunsplit

    if "://" in dsn:
        parts = urlsplit(dsn)
        return urlunsplit(parts._replace(path="/" + quote(dbname, safe="")))
    from ..dialects.postgres import with_dbname

    return with_dbname(dsn, dbname)


_HISTORY_PG = ("SELECT id, coalesce(hash_after, target_hash), "
               "(SELECT count(*) FROM lockplane.migrations WHERE result = 'applied') "
               "FROM lockplane.migrations WHERE result = 'applied' ORDER BY id DESC LIMIT 1")
_HISTORY_SQLITE = ("SELECT id, coalesce(hash_after, target_hash), "
                   "(SELECT count(*) FROM _lockplane_migrations WHERE result = 'applied') "
                   "FROM _lockplane_migrations WHERE result = 'applied' ORDER BY id DESC "
                   "LIMIT 1")


def _pg_history(conn: psycopg.Connection) -> HistoryPosition | None:
    exists = conn.execute("SELECT to_regclass('lockplane.migrations') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return None
    row = conn.execute(_HISTORY_PG).fetchone()
    return HistoryPosition(last_migration_id=row[0], target_hash=row[1],
                           migrations_applied=row[2]) if row else None


def _pg_schema_hash(dsn: str) -> str:
    from ..dialects import connect

    with connect(dsn) as db:
        return db.introspect().hash()


def _create_pg(dsn: str, storage: Storage, backup_id: str, jobs: int,
               report: Reporter) -> Manifest:
    started = time.monotonic()
    control = _pg_connect(dsn, autocommit=True, application_name="lockplane backup")
    try:
        version_num = control.info.server_version
        pg_dump = pgtools.find_tool("pg_dump", version_num)
        server_version = str(control.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        settings = checksums.text_settings(control)
        control.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        snapshot = str(control.execute("SELECT pg_export_snapshot()").fetchone()[0])  # type: ignore[index]
        tables = checksums.pg_tables_by_oid(control)
        history = _pg_history(control)
        # pg_dump writes its COPY text under ``settings``: the checksums are read from it
        conninfo, env = pgtools.conninfo_and_env(dsn, options=settings)
        local = storage.local_dir(backup_id)
        tmp: tempfile.TemporaryDirectory[str] | None = None
        if local is None:
            tmp = tempfile.TemporaryDirectory(prefix="lockplane-backup-")
            out = Path(tmp.name) / DATA_DIR
        else:
            out = local / DATA_DIR
            out.parent.mkdir(parents=True, exist_ok=True)
        try:
            report(f"pg_dump {pg_dump.version} -Fd -j {jobs} of {redact(dsn)} "
                   f"(snapshot {snapshot})")

            def connect() -> psycopg.Connection:
                return _pg_connect(dsn, autocommit=True,
                                   application_name="lockplane backup checksums")

            counts: dict[tuple[str, str], int] = {}
            hashes: list[str] = []
            failure: list[BaseException] = []

            def beside_the_dump() -> None:
                # one session, no parallel workers: the counts take as little CPU from
                # pg_dump as they can (they end long before it on any sizeable table)
                try:
                    counts.update(checksums.pg_row_counts(connect, list(tables.values()),
                                                          snapshot=snapshot))
                    hashes.append(_pg_schema_hash(dsn))  # pg_dump's locks keep DDL out
                except BaseException as exc:  # noqa: BLE001 - re-raised below
                    failure.append(exc)

            worker = threading.Thread(target=beside_the_dump, daemon=True)
            worker.start()
            pgtools.run_tool([pg_dump.path, "-Fd", "-j", str(jobs), "-f", str(out),
                              f"--snapshot={snapshot}", "-d", conninfo], env, "pg_dump")
            worker.join()
            try:
                if failure:
                    raise failure[0]
                schema_hash = hashes[0]
                with ThreadPoolExecutor(1) as pool:  # next to the files' sha256
                    pending = pool.submit(_dump_stats, out, tables, counts, version_num, env)
                    files = _describe_files(out, jobs)
                    method, stats, marker = pending.result()
                if method != checksums.COPY_CRC32:  # on the same snapshot, still open
                    stats = checksums.pg_table_stats(connect, jobs=jobs, snapshot=snapshot)
            except psycopg.Error as exc:
                raise ExecutionFailed(f"checksums of {redact(dsn)} failed: "
                                      f"{redact(str(exc).splitlines()[0])}") from None
            if local is None:
                report(f"uploading {len(files)} file(s) to {storage.url}")
                storage.put_dir(f"{backup_id}/{DATA_DIR}", out, jobs=max(4, jobs))
        except BaseException:
            if local is not None:
                storage.delete_prefix(backup_id)
            raise
        finally:
            if tmp is not None:
                tmp.cleanup()
    finally:
        control.close()
    copy_crc = method == checksums.COPY_CRC32
    return Manifest(
        id=backup_id, created_at=_now().isoformat(timespec="seconds"), dialect="postgres",
        database=redact(dsn), database_name=_dbname(dsn), server_version=server_version,
        tool=f"pg_dump {pg_dump.version} -Fd -j {jobs}", format="pg_dump-directory",
        schema_hash=schema_hash, history=history, tables=stats, files=files,
        size_bytes=sum(f.size for f in files), duration_s=round(time.monotonic() - started, 3),
        jobs=jobs, checksum_method=method, copy_settings=settings if copy_crc else {},
        copy_end_marker=marker)


def _dump_stats(out: Path, tables: dict[int, tuple[str, str]],
                counts: dict[tuple[str, str], int], version_num: int,
                env: dict[str, str]) -> tuple[str, list[TableStats], str]:
    """``(method, stats, end marker)`` of a finished dump: copy-crc32 figures read from
    its data files, with ``counts``; ``row-hash-sum`` and no stats when some table has no
    data file Lockplane can read (the caller then computes them in the database)."""
    try:
        listing = pgtools.list_archive(pgtools.find_tool("pg_restore", version_num), out, env)
    except BadInput:
        return checksums.ROW_HASH_SUM, [], ""
    files = checksums.dump_data_files(out, listing)
    if any(oid not in files for oid in tables):
        return checksums.ROW_HASH_SUM, [], ""
    # What pg_dump writes after the rows: read from the smallest data file when that
    # costs next to nothing, else pg_dump's marker (a wrong one fails every validation).
    marker = checksums.PG_DUMP_END_MARKER
    oid = min(tables, key=lambda o: files[o].stat().st_size) if tables else None
    if oid is not None and files[oid].stat().st_size <= checksums.MARKER_PROBE_BYTES:
        try:
            marker = checksums.end_marker(checksums.read_data_file(files[oid]),
                                          counts[tables[oid]])
        except ValueError:  # fewer lines than count(*): not COPY text as expected
            return checksums.ROW_HASH_SUM, [], ""
        if len(marker) > 64 or not marker.isascii():
            return checksums.ROW_HASH_SUM, [], ""
    stats = [TableStats(schema=s, name=t, rows=counts[(s, t)],
                        checksum=checksums.data_file_figure(files[oid]))
             for oid, (s, t) in tables.items()]
    return (checksums.COPY_CRC32, sorted(stats, key=lambda x: (x.schema_name, x.name)),
            marker.decode("ascii"))


# ---------------------------------------------------------------------------- SQLite
def _sqlite_open_existing(dsn: str) -> tuple[str, sqlite3.Connection]:
    path = sqlite_path(dsn)
    if path == ":memory:" or not Path(path).is_file():
        raise BadInput(f"SQLite database {redact(dsn)} not found")
    try:
        return path, sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise BadInput(f"cannot open {redact(dsn)}: {exc}") from None


def _sqlite_history(conn: sqlite3.Connection) -> HistoryPosition | None:
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = '_lockplane_migrations'"
                        ).fetchone():
        return None
    row = conn.execute(_HISTORY_SQLITE).fetchone()
    return HistoryPosition(last_migration_id=row[0], target_hash=row[1],
                           migrations_applied=row[2]) if row else None


def _sqlite_schema_hash(path: Path) -> str:
    from ..dialects import connect

    with connect(f"sqlite:///{path.resolve()}") as db:
        return db.introspect().hash()


def _create_sqlite(dsn: str, storage: Storage, backup_id: str, report: Reporter) -> Manifest:
    started = time.monotonic()
    _, src = _sqlite_open_existing(dsn)
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
    dialect = dialect_of(dsn)
    storage.check()
    backup_id = new_backup_id()
    if dialect == "postgres":
        manifest = _create_pg(dsn, storage, backup_id, jobs, report)
    elif dialect == "sqlite":
        manifest = _create_sqlite(dsn, storage, backup_id, report)
    else:
        raise BadInput(f"backups of {dialect} databases are not supported yet")
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
        if database is None or m.database == redact(database):
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


def _pg_object_count(conn: psycopg.Connection) -> int:
    row = conn.execute(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r','p','v','m','S','f') AND n.nspname NOT IN "
        "('pg_catalog','information_schema') AND n.nspname NOT LIKE 'pg\\_toast%%' "
        "AND n.nspname NOT LIKE 'pg\\_temp%%'").fetchone()
    return int(row[0]) if row else 0


def _pg_target_state(dsn: str) -> tuple[bool, int, int]:
    """``(exists, objects, server_version)`` of a target database."""
    try:
        conn = psycopg.connect(dsn, autocommit=True, connect_timeout=10,
                               application_name="lockplane backup")
    except psycopg.OperationalError as exc:
        if "does not exist" in str(exc) and _dbname(dsn):
            admin = _pg_connect(_with_dbname(dsn, "postgres"), autocommit=True)
            with admin:
                return False, 0, admin.info.server_version
        reason = redact(str(exc).strip().splitlines()[-1] if str(exc).strip() else "")
        raise BadInput(f"cannot connect to {redact(dsn)}: {reason}") from None
    except psycopg.ProgrammingError as exc:
        raise BadInput(f"bad PostgreSQL URL {redact(dsn)}: {redact(str(exc))}") from None
    with conn:
        return True, _pg_object_count(conn), conn.info.server_version


def _pg_restore(local: Path, dsn: str, version_num: int, jobs: int, *, clean: bool,
                no_owner: bool) -> None:
    tool = pgtools.find_tool("pg_restore", version_num)
    conninfo, env = pgtools.conninfo_and_env(dsn, "lockplane restore")
    args = [tool.path, "-j", str(jobs), "--exit-on-error", "-d", conninfo]
    if clean:
        args += ["--clean", "--if-exists"]
    if no_owner:
        args += ["--no-owner", "--no-privileges"]
    pgtools.run_tool([*args, str(local)], env, "pg_restore")


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
    dialect = dialect_of(target_dsn)
    if dialect != manifest.dialect:
        raise BadInput(f"backup {manifest.id} is a {manifest.dialect} backup; "
                       f"{redact(target_dsn)} is {dialect}")
    started = time.monotonic()
    if dialect == "sqlite":
        created = _restore_sqlite(storage, manifest, target_dsn, force)
    else:
        exists, objects, version_num = _pg_target_state(target_dsn)
        if objects and not force:
            raise SafetyRefusal(f"not restored: {redact(target_dsn)} already has {objects} "
                                "table(s), view(s) or sequence(s); restore into a new or empty "
                                "database, or pass --force to drop and recreate the backup's "
                                "objects there")
        pgtools.find_tool("pg_restore", version_num)  # a mismatch refuses before anything
        with fetched_backup(storage, manifest, jobs) as local:
            if not exists:
                name = _dbname(target_dsn)
                with _pg_connect(_with_dbname(target_dsn, "postgres"), autocommit=True) as adm:
                    adm.execute(pgsql.SQL("CREATE DATABASE {} TEMPLATE template0").format(
                        pgsql.Identifier(name)))
                report(f"created database {name}")
            report(f"pg_restore -j {jobs} into {redact(target_dsn)}")
            _pg_restore(local, target_dsn, version_num, jobs, clean=bool(objects),
                        no_owner=no_owner)
        created = not exists
    return RestoreResult(manifest.id, redact(target_dsn), created,
                         round(time.monotonic() - started, 3))


def _restore_sqlite(storage: Storage, manifest: Manifest, target_dsn: str,
                    force: bool) -> bool:
    path = sqlite_path(target_dsn)
    if path == ":memory:":
        raise BadInput("restore a SQLite backup into a file: sqlite:///path/to.db")
    target = Path(path)
    exists = target.exists()
    if exists:
        try:
            with contextlib.closing(sqlite3.connect(f"file:{target.resolve()}?mode=ro",
                                                    uri=True)) as c:
                tables = c.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        except sqlite3.Error as exc:
            raise BadInput(f"cannot read {redact(target_dsn)}: {exc}") from None
        if tables and not force:
            raise SafetyRefusal(f"not restored: {redact(target_dsn)} already has {tables} "
                                "schema object(s); restore into a new file, or pass --force "
                                "to overwrite it")
    with fetched_backup(storage, manifest) as local:
        src = sqlite3.connect(f"file:{(local / SQLITE_FILE).resolve()}?mode=ro", uri=True)
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            src.close()
            dst.close()
    return not exists


# ---------------------------------------------------------------------------- temporary copies
def drop_leftover_copies(admin: psycopg.Connection) -> list[str]:
    """Drop temporary backup databases whose owning session is gone (a killed run)."""
    return drop_abandoned_databases(admin, TEMP_PREFIX, OWNER_MARK)


@dataclass
class RestoredCopy:
    """A backup restored into a temporary database (or SQLite file), read-only."""

    manifest: Manifest
    dsn: str  # with credentials: for this process only
    display_dsn: str  # without a password: safe to print
    restore_s: float
    dropped_leftovers: list[str] = field(default_factory=list)


def _server_for(manifest: Manifest, server_dsn: str | None) -> str:
    if server_dsn:
        return server_dsn
    if "***" in manifest.database:
        raise BadInput(f"backup {manifest.id}'s database had a password: give the server for "
                       "the temporary database (--server DSN or --target-environment)")
    return manifest.database


@contextlib.contextmanager
def restored_copy(storage: Storage, backup_id: str, server_dsn: str | None = None, *,
                  jobs: int = 1, report: Reporter | None = None) -> Iterator[RestoredCopy]:
    """Restore ``backup_id`` into a temporary database on ``server_dsn``'s server (by
    default the backup's own server, when its DSN had no password), read-only for every
    session (default_transaction_read_only), dropped on exit."""
    report = _quiet(report)
    manifest = load_manifest(storage, backup_id)
    if manifest.dialect == "sqlite":
        with tempfile.TemporaryDirectory(prefix="lockplane-backup-") as tmp:
            started = time.monotonic()
            path = Path(tmp) / "restored.sqlite"
            with fetched_backup(storage, manifest) as local:
                shutil.copyfile(local / SQLITE_FILE, path)
            path.chmod(0o400)
            dsn = f"sqlite:///{path}"
            yield RestoredCopy(manifest, dsn, dsn, round(time.monotonic() - started, 3))
        return
    server = _server_for(manifest, server_dsn)
    if dialect_of(server) != "postgres":
        raise BadInput(f"{redact(server)} is not a PostgreSQL server")
    token = secrets.token_hex(6)
    name = TEMP_PREFIX + token
    admin_dsn = _with_dbname(server, "postgres")
    admin = _pg_connect(admin_dsn, autocommit=True, application_name=OWNER_MARK + token)
    try:
        with contextlib.suppress(psycopg.Error):
            left = drop_leftover_copies(admin)
            if left:
                report(f"dropped {len(left)} temporary backup database(s) left by killed "
                       f"runs: {', '.join(left)}")
        version_num = admin.info.server_version
        pgtools.find_tool("pg_restore", version_num)
        with fetched_backup(storage, manifest, jobs) as local:
            started = time.monotonic()
            admin.execute(pgsql.SQL("CREATE DATABASE {} TEMPLATE template0").format(
                pgsql.Identifier(name)))
            try:
                dsn = _with_dbname(server, name)
                report(f"pg_restore -j {jobs} into temporary database {name}")
                _pg_restore(local, dsn, version_num, jobs, clean=False, no_owner=True)
                admin.execute(pgsql.SQL("ALTER DATABASE {} SET default_transaction_read_only "
                                        "= on").format(pgsql.Identifier(name)))
                restore_s = round(time.monotonic() - started, 3)
                yield RestoredCopy(manifest, dsn, redact(dsn), restore_s,
                                   dropped_leftovers=[])
            finally:
                drop_database(admin, name)
    finally:
        admin.close()


def query_copy(copy: RestoredCopy, sql: str) -> tuple[list[str], list[tuple[object, ...]]]:
    """Run ``sql`` read-only on a restored copy; ``(column names, rows)``."""
    if copy.manifest.dialect == "sqlite":
        path = sqlite_path(copy.dsn)
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as c:
            try:
                cur = c.execute(sql)
            except sqlite3.Error as exc:
                raise BadInput(f"query failed: {exc}") from None
            return [d[0] for d in cur.description or []], cur.fetchall()
    with _pg_connect(copy.dsn, autocommit=True, options="-c default_transaction_read_only=on",
                     application_name="lockplane backup query") as conn:
        try:
            cur = conn.execute(sql)
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BadInput(f"query failed: {redact(first)}") from None
        cols = [d.name for d in cur.description or []]
        return cols, (cur.fetchall() if cur.description else [])


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


def _copy_stats(copy: RestoredCopy, jobs: int) -> list[TableStats]:
    if copy.manifest.dialect == "sqlite":
        path = sqlite_path(copy.dsn)
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as c:
            return sqlite_table_stats(c)
    return checksums.pg_stats_like(
        copy.manifest, copy.dsn,
        lambda: _pg_connect(copy.dsn, autocommit=True,
                            application_name="lockplane backup validate"), jobs=jobs)


def _copy_schema(copy: RestoredCopy):  # -> Schema
    from ..dialects import connect

    with connect(copy.dsn) as db:
        return db.introspect()


def migrations_since(live_dsn: str, position: HistoryPosition | None) -> int:
    """How many migrations the live database has applied since ``position``."""
    after = position.last_migration_id if position else 0
    if dialect_of(live_dsn) == "sqlite":
        path, conn = _sqlite_open_existing(live_dsn)
        with contextlib.closing(conn):
            if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = "
                                "'_lockplane_migrations'").fetchone():
                return 0
            return int(conn.execute("SELECT count(*) FROM _lockplane_migrations WHERE "
                                    "result = 'applied' AND id > ?", (after,)).fetchone()[0])
    with _pg_connect(live_dsn, autocommit=True) as conn:
        if not conn.execute("SELECT to_regclass('lockplane.migrations') IS NOT NULL"
                            ).fetchone()[0]:  # type: ignore[index]
            return 0
        return int(conn.execute("SELECT count(*) FROM lockplane.migrations WHERE "
                                "result = 'applied' AND id > %s", (after,)).fetchone()[0])  # type: ignore[index]


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
        with restored_copy(storage, manifest.id, server_dsn, jobs=jobs, report=report) as copy:
            rto = round(time.monotonic() - started, 3)
            checks.append(Check("restore", True, f"restored in {copy.restore_s:.1f} s"))
            stats = {t.qualified: t for t in _copy_stats(copy, jobs)}
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
                        n = len(diff(schema, desired, get_dialect(manifest.dialect)))
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
    write_status(storage, status)
