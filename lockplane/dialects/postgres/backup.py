"""PostgreSQL backups: ``pg_dump -Fd -j N`` directories, ``pg_restore``, temporary copies.

Backups are made on a snapshot that Lockplane exports first: the manifest's per-table
row counts are counted on the same snapshot, in parallel with the dump, and its
checksums are read from the dump's own data files (lockplane/dialects/postgres/checksums.py), so
they describe exactly what was dumped.

Restores and validations go through temporary databases named ``lockplane_backup_<token>``
whose owning session carries ``application_name = 'lockplane backup <token>'``; one
left by a killed run (no such session any more) is dropped by the next run on the server.
"""

from __future__ import annotations

import contextlib
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import psycopg
from psycopg import sql as pgsql

from ...backup.core import (
    RestoredCopy,
    _describe_files,
    _now,
    fetched_backup,
)
from ...backup.engine import HISTORY_COLUMNS, BackupEngine
from ...backup.manifest import (
    DATA_DIR,
    OWN_ROWS_FROM,
    HistoryPosition,
    Manifest,
    TableStats,
    database_identity,
)
from ...backup.pitr import PointInTime
from ...backup.rows import CompareReport, ExtractResult, RowMergeBase
from ...backup.storage import Storage
from ...dsn import dialect_of, redact, redact_for
from ...errors import BadInput, ExecutionFailed, SafetyRefusal
from . import PostgresDialect, checksums, connect_failure, pgtools
from .sandbox import drop_abandoned_databases, drop_database

_PG = PostgresDialect()  # (database names within a connection string)

Reporter = Callable[[str], None]

TEMP_PREFIX = "lockplane_backup_"
OWNER_MARK = "lockplane backup "


def pg_connect(dsn: str, **kwargs: object) -> psycopg.Connection:
    try:
        return psycopg.connect(dsn, connect_timeout=10, **kwargs)  # type: ignore[arg-type]
    except psycopg.OperationalError as exc:
        reason = connect_failure(exc, dsn)
        raise BadInput(f"cannot connect to {redact(dsn)}: {reason}") from None
    except psycopg.ProgrammingError as exc:
        raise BadInput(f"bad PostgreSQL URL {redact(dsn)}: {redact_for(str(exc), dsn)}") from None



_HISTORY_PG = ("SELECT id, coalesce(hash_after, target_hash), "
               "(SELECT count(*) FROM lockplane.migrations WHERE result = 'applied') "
               "FROM lockplane.migrations WHERE result = 'applied' ORDER BY id DESC LIMIT 1")


def _pg_history(conn: psycopg.Connection) -> HistoryPosition | None:
    exists = conn.execute("SELECT pg_catalog.to_regclass('lockplane.migrations'::pg_catalog.text) "
                          "IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return None
    row = conn.execute(_HISTORY_PG).fetchone()
    return HistoryPosition(last_migration_id=row[0], target_hash=row[1],
                           migrations_applied=row[2]) if row else None


def _pg_schema_hash(dsn: str) -> str:
    from .. import connect

    with connect(dsn) as db:
        return db.introspect().hash()


def _create_pg(dsn: str, storage: Storage, backup_id: str, jobs: int,
               report: Reporter) -> Manifest:
    started = time.monotonic()
    control = pg_connect(dsn, autocommit=True, application_name="lockplane backup")
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
        conninfo, env = pgtools.conninfo_and_env(dsn, options=settings, tool=pg_dump.path)
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
                return pg_connect(dsn, autocommit=True,
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
        database=database_identity(redact(dsn)), database_name=_PG.database_name(dsn),
        server_version=server_version,
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
                        checksum=checksums.data_file_figure(files[oid]),
                        data_file=files[oid].relative_to(out).as_posix())
             for oid, (s, t) in tables.items()]
    return (checksums.COPY_CRC32, sorted(stats, key=lambda x: (x.schema_name, x.name)),
            marker.decode("ascii"))


def _pg_object_count(conn: psycopg.Connection) -> int:
    row = conn.execute(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r','p','v','m','S','f') AND n.nspname NOT IN "
        "('pg_catalog','information_schema') "
        "AND n.nspname OPERATOR(pg_catalog.!~~) 'pg\\_toast%%'::pg_catalog.text "
        "AND n.nspname OPERATOR(pg_catalog.!~~) 'pg\\_temp%%'::pg_catalog.text").fetchone()
    return int(row[0]) if row else 0


def _pg_target_state(dsn: str) -> tuple[bool, int, int]:
    """``(exists, objects, server_version)`` of a target database."""
    try:
        conn = psycopg.connect(dsn, autocommit=True, connect_timeout=10,
                               application_name="lockplane backup")
    except psycopg.OperationalError as exc:
        if "does not exist" in str(exc) and _PG.database_name(dsn):
            admin = pg_connect(_PG.with_database(dsn, "postgres"), autocommit=True)
            with admin:
                return False, 0, admin.info.server_version
        reason = connect_failure(exc, dsn)
        raise BadInput(f"cannot connect to {redact(dsn)}: {reason}") from None
    except psycopg.ProgrammingError as exc:
        raise BadInput(f"bad PostgreSQL URL {redact(dsn)}: {redact_for(str(exc), dsn)}") from None
    with conn:
        return True, _pg_object_count(conn), conn.info.server_version


def _pg_restore(local: Path, dsn: str, version_num: int, jobs: int, *, clean: bool,
                no_owner: bool) -> None:
    tool = pgtools.find_tool("pg_restore", version_num)
    conninfo, env = pgtools.conninfo_and_env(dsn, "lockplane restore", tool=tool.path)
    args = [tool.path, "-j", str(jobs), "--exit-on-error", "-d", conninfo]
    if clean:
        args += ["--clean", "--if-exists"]
    if no_owner:
        args += ["--no-owner", "--no-privileges"]
    pgtools.run_tool([*args, str(local)], env, "pg_restore")


def drop_leftover_copies(admin: psycopg.Connection) -> list[str]:
    """Drop temporary backup databases whose owning session is gone (a killed run)."""
    return drop_abandoned_databases(admin, TEMP_PREFIX, OWNER_MARK)




# A database a restore creates carries this comment until its last object is in: a run
# killed (or failed) half way leaves no database that looks restored. The comment names
# the restoring session (application_name RESTORE_OWNER<token>), so the next restore on
# the server tells a leftover from a restore still running.
RESTORE_MARK = "lockplane: restore not finished: backup "
RESTORE_OWNER = "lockplane restore "

_UNFINISHED = (
    "SELECT d.datname, pg_catalog.shobj_description(d.oid, 'pg_database'), "
    "  EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a "
    "    WHERE a.application_name OPERATOR(pg_catalog.=) (%s::pg_catalog.text "
    "      OPERATOR(pg_catalog.||) pg_catalog.split_part(pg_catalog.shobj_description("
    "        d.oid, 'pg_database'), ' ', -1))) "
    "FROM pg_catalog.pg_database d "
    "WHERE pg_catalog.starts_with(pg_catalog.shobj_description(d.oid, 'pg_database'), "
    "  %s::pg_catalog.text)")


def _unfinished_restores(admin: psycopg.Connection) -> dict[str, tuple[str, bool]]:
    """Databases a restore created and did not finish: name -> (backup id, still running)."""
    out = {}
    for name, comment, running in admin.execute(_UNFINISHED, (RESTORE_OWNER, RESTORE_MARK)):
        out[name] = (comment[len(RESTORE_MARK):].split(" ", 1)[0], bool(running))
    return out


def _restore(storage: Storage, manifest: Manifest, target_dsn: str, jobs: int, force: bool,
             no_owner: bool, report: Reporter) -> bool:
    name = _PG.database_name(target_dsn)
    token = secrets.token_hex(6)
    exists, objects, version_num = _pg_target_state(target_dsn)
    try:
        admin = pg_connect(_PG.with_database(target_dsn, "postgres"), autocommit=True,
                           application_name=RESTORE_OWNER + token)
    except BadInput:
        if not exists:
            raise
        admin = None  # (restoring into an existing database needs no maintenance session)
    with admin or contextlib.nullcontext():
        unfinished = _unfinished_restores(admin) if admin is not None else {}
        backup, running = unfinished.get(name, ("", False))
        if running:
            raise SafetyRefusal(f"not restored: a restore of backup {backup} into {name} "
                                "is running now")
        if objects and not force and name not in unfinished:
            raise SafetyRefusal(f"not restored: {redact(target_dsn)} already has {objects} "
                                "table(s), view(s) or sequence(s); restore into a new or empty "
                                "database, or pass --force to drop and recreate the backup's "
                                "objects there")
        pgtools.find_tool("pg_restore", version_num)  # a mismatch refuses before anything
        mark = f"{RESTORE_MARK}{manifest.id} (started by session) {token}"
        with fetched_backup(storage, manifest, jobs) as local:
            for left, (of_backup, left_running) in unfinished.items():
                if left_running:
                    continue
                # (a database whose restore never finished: nothing in it can be trusted;
                # dropped once the backup's files are checked, so a refused restore drops none)
                try:
                    drop_database(admin, left)  # type: ignore[arg-type]
                except psycopg.Error as exc:
                    if left == name:
                        why = redact(str(exc).strip().splitlines()[0] if str(exc).strip() else "")
                        raise SafetyRefusal(f"not restored: {name} was left unfinished by a "
                                            f"killed restore of backup {of_backup}, and cannot be "
                                            f"dropped here ({why}): drop it first") from None
                    continue
                report(f"dropped database {left}, left unfinished by a killed restore of "
                       f"backup {of_backup}")
                if left == name:
                    exists, objects = False, 0
            if not exists:
                assert admin is not None
                admin.execute(pgsql.SQL("CREATE DATABASE {} TEMPLATE template0").format(
                    pgsql.Identifier(name)))
                admin.execute(pgsql.SQL("COMMENT ON DATABASE {} IS {}").format(
                    pgsql.Identifier(name), pgsql.Literal(mark)))
                report(f"created database {name}")
            report(f"pg_restore -j {jobs} into {redact(target_dsn)}")
            try:
                _pg_restore(local, target_dsn, version_num, jobs, clean=bool(objects),
                            no_owner=no_owner)
            except BaseException:
                if not exists and admin is not None:
                    with contextlib.suppress(psycopg.Error):
                        drop_database(admin, name)
                        report(f"dropped database {name}: its restore did not finish")
                raise
            if not exists and admin is not None and _database_comment(admin, name) == mark:
                # (only our mark: a comment the backup itself restored stays)
                admin.execute(pgsql.SQL("COMMENT ON DATABASE {} IS NULL").format(
                    pgsql.Identifier(name)))
    return not exists


def _database_comment(admin: psycopg.Connection, name: str) -> str | None:
    row = admin.execute(
        "SELECT pg_catalog.shobj_description(d.oid, 'pg_database') "
        "FROM pg_catalog.pg_database d WHERE d.datname OPERATOR(pg_catalog.=) "
        "%s::pg_catalog.name", (name,)).fetchone()
    return row[0] if row else None


def _server_for(manifest: Manifest, server_dsn: str | None) -> str:
    if server_dsn:
        return server_dsn
    if "***" in manifest.database:
        raise BadInput(f"backup {manifest.id}'s database had a password: give the server for "
                       "the temporary database (--server DSN or --target-environment)")
    return manifest.database


@contextlib.contextmanager
def restored_copy(storage: Storage, manifest: Manifest, server_dsn: str | None = None, *,
                  jobs: int = 1, report: Reporter | None = None,
                  loaded: Callable[[str], None] | None = None,
                  checked: list[list[TableStats]] | None = None,
                  ) -> Iterator[RestoredCopy]:
    """Restore the backup into a temporary database on ``server_dsn``'s server (by
    default the backup's own server, when its DSN had no password), read-only for every
    session (default_transaction_read_only), dropped on exit. ``loaded(dsn)`` is called
    once the tables' data is in (their indexes and constraints may still be building),
    beside the rest of the restore. With ``checked`` (a copy-crc32 manifest whose tables
    all name their data file), Lockplane loads the tables' data itself
    (``_restore_checking``) and appends the figures it took on the way to ``checked``."""
    report = report or (lambda _m: None)
    server = _server_for(manifest, server_dsn)
    if dialect_of(server) != manifest.dialect:
        raise BadInput(f"{redact(server)} is not a PostgreSQL server")
    token = secrets.token_hex(6)
    name = TEMP_PREFIX + token
    admin_dsn = _PG.with_database(server, "postgres")
    admin = pg_connect(admin_dsn, autocommit=True, application_name=OWNER_MARK + token)
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
                dsn = _PG.with_database(server, name)
                report(f"pg_restore -j {jobs} into temporary database {name}")
                if checked is not None:
                    stats, done_at = _restore_checking(local, dsn, version_num, jobs,
                                                       manifest)
                    checked.append(stats)
                elif loaded is None:
                    _pg_restore(local, dsn, version_num, jobs, clean=False, no_owner=True)
                    done_at = time.monotonic()
                else:
                    done_at = _pg_restore_sections(local, dsn, version_num, jobs,
                                                   lambda: loaded(dsn))
                admin.execute(pgsql.SQL("ALTER DATABASE {} SET default_transaction_read_only "
                                        "= on").format(pgsql.Identifier(name)))
                yield RestoredCopy(manifest, dsn, redact(dsn), round(done_at - started, 3),
                                   dropped_leftovers=[], restored_at=done_at)
            finally:
                drop_database(admin, name)
    finally:
        admin.close()


def _pg_restore_sections(local: Path, dsn: str, version_num: int, jobs: int,
                         loaded: Callable[[], None], data: Callable[[], None] | None = None,
                         listing: Path | None = None) -> float:
    """pg_restore in its three sections; ``loaded()`` runs beside the last one (indexes,
    constraints, triggers), once every table's data is in. ``data()``, when given, loads
    the tables' data beside pg_restore's data section, which then restores only the
    items of ``listing`` (sequences, large objects, ...) on one session. When the
    restore ended (``time.monotonic()``), however long ``loaded`` takes after it."""
    tool = pgtools.find_tool("pg_restore", version_num)
    conninfo, env = pgtools.conninfo_and_env(dsn, "lockplane restore", tool=tool.path)
    base = [tool.path, "--exit-on-error", "--no-owner", "--no-privileges", "-d", conninfo]
    pgtools.run_tool([*base, "--section=pre-data", str(local)], env, "pg_restore")
    if data is None:
        pgtools.run_tool([*base, "-j", str(jobs), "--section=data", str(local)], env,
                         "pg_restore")
    else:
        chosen = [] if listing is None else ["-L", str(listing)]
        with ThreadPoolExecutor(1) as pool:
            ours = pool.submit(data)
            try:
                pgtools.run_tool([*base, "--section=data", *chosen, str(local)], env,
                                 "pg_restore")
            finally:
                ours.result()
    failure: list[BaseException] = []

    def beside() -> None:
        try:
            loaded()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            failure.append(exc)

    worker = threading.Thread(target=beside, daemon=True)
    worker.start()
    try:
        pgtools.run_tool([*base, "-j", str(jobs), "--section=post-data", str(local)], env,
                         "pg_restore")
        done_at = time.monotonic()
    finally:
        worker.join()
    if failure:
        raise failure[0]
    return done_at


def _restore_checking(local: Path, dsn: str, version_num: int, jobs: int,
                      manifest: Manifest) -> tuple[list[TableStats], float]:
    """Restore a copy-crc32 backup reading its data once: pg_restore makes the schema
    and restores everything but the manifest's tables' data (sequences, large objects,
    extension tables); Lockplane streams each of those tables' data file into ``COPY
    ... FROM STDIN`` on ``jobs`` sessions (largest first), taking the CRC-32 and length
    of exactly what the server accepted, then counts the table's rows (``count(*)``:
    what the server holds). A restored table the manifest does not know is counted
    beside pg_restore's post-data section, without a checksum. The figures, and when
    the restore ended."""
    tool = pgtools.find_tool("pg_restore", version_num)
    _, env = pgtools.conninfo_and_env(dsn, "lockplane restore")
    ours = {int(str(t.data_file).split(".")[0]) for t in manifest.tables}
    lines = []
    for line in pgtools.list_archive(tool, local, env).splitlines():
        m = checksums.TOC_DATA.match(line)
        lines.append(f";{line}" if m and int(m.group(1)) in ours else line)
    stats: dict[tuple[str, str], TableStats] = {}
    loader = checksums.CopyLoader(dsn, manifest.copy_settings,
                                  manifest.copy_end_marker.encode())
    by_size = sorted(manifest.tables,
                     key=lambda t: -(local / str(t.data_file)).stat().st_size)

    def load() -> None:
        def one(t: TableStats) -> None:
            rows, figure = loader.load(t.schema_name, t.name, local / str(t.data_file))
            stats[(t.schema_name, t.name)] = TableStats(schema=t.schema_name, name=t.name,
                                                        rows=rows, checksum=figure)

        with ThreadPoolExecutor(max(1, min(jobs, len(by_size)))) as pool:
            list(pool.map(one, by_size))

    def others() -> None:
        with contextlib.closing(pg_connect(dsn, autocommit=True,
                                           application_name="lockplane backup validate")) as c:
            for s, n in checksums.pg_tables_by_oid(c).values():
                if (s, n) not in stats:
                    q = pgsql.SQL("SELECT count(*) FROM {}").format(pgsql.Identifier(s, n))
                    stats[(s, n)] = TableStats(schema=s, name=n, checksum="",
                                               rows=int(c.execute(q).fetchone()[0]))  # type: ignore[index]

    with tempfile.NamedTemporaryFile("w", prefix="lockplane-toc-", suffix=".list") as toc:
        toc.write("\n".join(lines) + "\n")
        toc.flush()
        done_at = _pg_restore_sections(local, dsn, version_num, jobs, others, load,
                                       Path(toc.name))
    if manifest.format_version < OWN_ROWS_FROM:
        _with_children_rows(dsn, stats, {(t.schema_name, t.name) for t in manifest.tables})
    return sorted(stats.values(), key=lambda x: (x.schema_name, x.name)), done_at


# Each inheritance ancestor with each of its descendants, at any depth (by name).
_DESCENDANTS = """
WITH RECURSIVE d(anc, rel) AS (
    SELECT inhparent, inhrelid FROM pg_catalog.pg_inherits
    UNION ALL
    SELECT d.anc, i.inhrelid FROM d JOIN pg_catalog.pg_inherits i ON i.inhparent = d.rel)
SELECT an.nspname, a.relname, rn.nspname, r.relname FROM d
JOIN pg_catalog.pg_class a ON a.oid = d.anc
JOIN pg_catalog.pg_namespace an ON an.oid = a.relnamespace
JOIN pg_catalog.pg_class r ON r.oid = d.rel
JOIN pg_catalog.pg_namespace rn ON rn.oid = r.relnamespace"""


def _with_children_rows(dsn: str, stats: dict[tuple[str, str], TableStats],
                        loaded: set[tuple[str, str]]) -> None:
    """Manifests before format 3 counted an inheritance parent with its children
    (``count(*)``); the loads count each table's own rows: each loaded ancestor gets its
    loaded descendants' rows added, as the manifest counted them."""
    with contextlib.closing(pg_connect(dsn, autocommit=True,
                                       application_name="lockplane backup validate")) as c:
        pairs = c.execute(_DESCENDANTS).fetchall()
    own = {k: v.rows for k, v in stats.items()}
    for a_schema, a_name, d_schema, d_name in pairs:
        anc, desc = (a_schema, a_name), (d_schema, d_name)
        if anc in loaded and desc in loaded and anc in stats:
            stats[anc].rows += own.get(desc, 0)


def _query(copy: RestoredCopy, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    # client_connection_check_interval: if this process is killed mid-query, the server
    # ends the query within a second instead of running it to its end, so the copy has no
    # session left and the next run drops it as a leftover.
    with pg_connect(copy.dsn, autocommit=True,
                    options="-c default_transaction_read_only=on "
                            "-c client_connection_check_interval=1000",
                    application_name="lockplane backup query") as conn:
        try:
            cur = conn.execute(sql)  # type: ignore[arg-type]
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BadInput(f"query failed: {redact(first)}") from None
        cols = [d.name for d in cur.description or []]
        return cols, (cur.fetchall() if cur.description else [])


def _stats_of(manifest: Manifest, dsn: str, jobs: int, name: str) -> list[TableStats]:
    return checksums.pg_stats_like(
        manifest, dsn, lambda: pg_connect(dsn, autocommit=True, application_name=name),
        jobs=jobs)


class PostgresBackups(BackupEngine):
    """``pg_dump``/``pg_restore`` backups, temporary copies on a server, COPY checksums."""

    name = "postgres"
    copies_on_server = True

    def point_in_time(self) -> PointInTime:
        from .pitr import PostgresPointInTime

        return PostgresPointInTime()

    def create(self, dsn: str, storage: Storage, backup_id: str, jobs: int,
               report: Reporter) -> Manifest:
        return _create_pg(dsn, storage, backup_id, jobs, report)

    def restore(self, storage: Storage, manifest: Manifest, target_dsn: str, *, jobs: int,
                force: bool, no_owner: bool, report: Reporter) -> bool:
        return _restore(storage, manifest, target_dsn, jobs, force, no_owner, report)

    def restored_copy(self, storage: Storage, manifest: Manifest, server_dsn: str | None, *,
                      jobs: int, report: Reporter,
                      ) -> contextlib.AbstractContextManager[RestoredCopy]:
        return restored_copy(storage, manifest, server_dsn, jobs=jobs, report=report)

    def query(self, copy: RestoredCopy, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        return _query(copy, sql)

    def copy_stats(self, copy: RestoredCopy, jobs: int) -> list[TableStats]:
        return _stats_of(copy.manifest, copy.dsn, jobs, "lockplane backup validate")

    @contextlib.contextmanager
    def validated_copy(self, storage: Storage, manifest: Manifest, server_dsn: str | None, *,
                       jobs: int, report: Reporter,
                       ) -> Iterator[tuple[RestoredCopy, list[TableStats]]]:
        # copy-crc32 with every table's data file known: the data is read once, as it
        # is loaded (_restore_checking); else read back beside the post-data section.
        stats: list[list[TableStats]] = []
        if manifest.checksum_method == checksums.COPY_CRC32 and manifest.tables and all(
                t.data_file for t in manifest.tables):
            with restored_copy(storage, manifest, server_dsn, jobs=jobs, report=report,
                               checked=stats) as copy:
                yield copy, stats[0]
            return

        def read_back(dsn: str) -> None:
            stats.append(_stats_of(manifest, dsn, jobs, "lockplane backup validate"))

        with restored_copy(storage, manifest, server_dsn, jobs=jobs, report=report,
                           loaded=read_back) as copy:
            yield copy, stats[0]

    def history(self, live_dsn: str, columns: str = HISTORY_COLUMNS) -> list[tuple[Any, ...]]:
        with pg_connect(live_dsn, autocommit=True, application_name="lockplane backup") as c:
            if not c.execute("SELECT pg_catalog.to_regclass("
                             "'lockplane.migrations'::pg_catalog.text) IS NOT NULL"
                             ).fetchone()[0]:  # type: ignore[index]
                return []
            return c.execute(pgsql.SQL("SELECT {} FROM lockplane.migrations ORDER BY id"
                                       ).format(pgsql.SQL(columns))).fetchall()

    def live_stats(self, live_dsn: str, jobs: int, manifest: Manifest | None
                   ) -> list[TableStats]:
        if manifest is None:
            return checksums.pg_table_stats(
                lambda: pg_connect(live_dsn, autocommit=True,
                                   application_name="lockplane recover counts"), jobs=jobs)
        return _stats_of(manifest, live_dsn, jobs, "lockplane recover counts")

    def same_rows(self, storage: Storage, manifest: Manifest, live_dsn: str,
                  tables: list[str], jobs: int) -> set[str]:
        from .backup_rowsets import same_rows

        return same_rows(storage, manifest, live_dsn, tables, jobs)

    def compare(self, storage: Storage, manifest: Manifest, live_dsn: str, *,
                server_dsn: str | None, jobs: int, tables: list[str] | None,
                report: Reporter) -> CompareReport:
        from .backup_compare import compare_backup

        return compare_backup(storage, manifest, live_dsn, server_dsn=server_dsn, jobs=jobs,
                              tables=tables, report=report)

    def extract(self, storage: Storage, manifest: Manifest, live_dsn: str, table: str,
                out: IO[str], *, where: str | None, on_conflict: str,
                server_dsn: str | None, jobs: int, report: Reporter) -> ExtractResult:
        from .backup_extract import extract_rows

        return extract_rows(storage, manifest, live_dsn, table, out, where=where,
                            on_conflict=on_conflict, server_dsn=server_dsn, jobs=jobs,
                            report=report)

    def open_merge(self, storage: Storage, manifest: Manifest, live_dsn: str, table: str, *,
                   where: str | None, on_conflict: str, server_dsn: str | None, jobs: int,
                   report: Reporter) -> contextlib.AbstractContextManager[RowMergeBase]:
        from .backup_extract import open_merge

        return open_merge(storage, manifest, live_dsn, table, where=where,
                          on_conflict=on_conflict, server_dsn=server_dsn, jobs=jobs,
                          report=report)
