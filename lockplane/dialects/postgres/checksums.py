"""PostgreSQL's per-table row counts and checksums (a backup manifest's ``tables``).

Two methods, named in the manifest (``checksum_method``). ``copy-crc32`` (backups from
manifest format 2 on) is read from pg_dump's own data files, see below. ``row-hash-sum``
(manifests of format 1; SQLite's own is in lockplane/dialects/sqlite/backup.py),
computed in the database: ``count(*)`` and ``sum(hashtextextended(t::text, 0))`` over every ordinary
table (one sequential scan each, no sort; a 64-bit hash per row, summed as numeric so it
cannot overflow). Tables run in parallel on ``jobs`` sessions; at backup time those
sessions share pg_dump's exported snapshot, so the figures describe exactly what was
dumped. The row text depends on a few settings (time zone, date style, bytea output,
float digits), pinned here for both sides.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import subprocess
import threading
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql as pgsql

from ...backup.manifest import Manifest, TableStats
from ...dsn import redact
from ...errors import BadInput, ExecutionFailed

_SETTINGS = ("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'; "
             "SET IntervalStyle = 'postgres'; SET bytea_output = 'hex'; "
             "SET extra_float_digits = 1; SET statement_timeout = 0")

_TABLES = """
SELECT n.nspname, c.relname, c.relpages
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname OPERATOR(pg_catalog.!~~) 'pg\\_toast%%'::pg_catalog.text
  AND n.nspname OPERATOR(pg_catalog.!~~) 'pg\\_temp%%'::pg_catalog.text
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
ORDER BY c.relpages DESC, n.nspname, c.relname
"""


def pg_tables(conn: psycopg.Connection) -> list[tuple[str, str]]:
    """Ordinary tables (largest first), extension members left out."""
    return [(s, t) for s, t, _ in conn.execute(_TABLES).fetchall()]


def _one(conn: psycopg.Connection, schema: str, table: str) -> TableStats:
    q = pgsql.SQL("SELECT count(*), coalesce(sum(hashtextextended(t::text, 0)), 0)::text "
                  "FROM {} AS t").format(pgsql.Identifier(schema, table))
    rows, checksum = conn.execute(q).fetchone()  # type: ignore[misc]
    return TableStats(schema=schema, name=table, rows=rows, checksum=checksum)


def pg_table_stats(connect: Callable[[], psycopg.Connection], jobs: int = 1,
                   snapshot: str | None = None) -> list[TableStats]:
    """Stats of every table, on ``jobs`` sessions made by ``connect`` (each one in a
    read-only repeatable-read transaction, on ``snapshot`` when given)."""
    def session() -> psycopg.Connection:
        conn = connect()
        conn.execute(_SETTINGS)
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        if snapshot:
            conn.execute(pgsql.SQL("SET TRANSACTION SNAPSHOT {}").format(
                pgsql.Literal(snapshot)))
        return conn

    first = session()
    sessions = [first]
    try:
        tables = pg_tables(first)
        n = max(1, min(jobs, len(tables)))
        sessions += [session() for _ in range(n - 1)]
        free = list(sessions)
        lock = threading.Lock()

        def work(item: tuple[str, str]) -> TableStats:
            with lock:
                conn = free.pop()
            try:
                return _one(conn, *item)
            finally:
                with lock:
                    free.append(conn)

        with ThreadPoolExecutor(n) as pool:
            stats = list(pool.map(work, tables))
    finally:
        for conn in sessions:
            conn.close()
    return sorted(stats, key=lambda s: (s.schema_name, s.name))


# ---------------------------------------------------------------------------- copy-crc32
# Manifest format 2 (PostgreSQL): a table's checksum is the CRC-32 and length of its
# data file as pg_dump wrote it, i.e. its COPY text followed by pg_dump's end-of-data
# marker. pg_dump's gzip trailer already holds both, so creating a backup reads no table
# twice: only count(*) runs next to the dump. A restored (or live) table gives the same
# figure from ``COPY ... TO STDOUT`` under the same text settings.
ROW_HASH_SUM = "row-hash-sum"
COPY_CRC32 = "copy-crc32"

# Settings that shape COPY's text output. pg_dump sets the first three itself; the others
# are given to it (and to the sessions that recompute the figure) as connection options.
COPY_SETTINGS = {"DateStyle": "ISO", "IntervalStyle": "postgres", "extra_float_digits": "3",
                 "TimeZone": "UTC", "bytea_output": "hex"}

_TABLES_WITH_OIDS = """
SELECT c.oid::bigint, n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname OPERATOR(pg_catalog.!~~) 'pg\\_toast%%'::pg_catalog.text
  AND n.nspname OPERATOR(pg_catalog.!~~) 'pg\\_temp%%'::pg_catalog.text
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
ORDER BY c.relpages DESC, n.nspname, c.relname
"""

# pg_dump leaves generated columns out of COPY; so must the recomputation.
_COPY_COLUMNS = """
SELECT a.attname FROM pg_attribute a
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped{generated}
ORDER BY a.attnum
"""


def text_settings(conn: psycopg.Connection) -> dict[str, str]:
    """The settings a backup's COPY text was written under: the fixed ones, the
    database's encoding (pg_dump's default) and the server's money format."""
    enc, monetary = conn.execute(
        "SELECT pg_encoding_to_char(encoding), current_setting('lc_monetary') "
        "FROM pg_database WHERE datname = current_database()").fetchone()  # type: ignore[misc]
    return {**COPY_SETTINGS, "client_encoding": str(enc), "lc_monetary": str(monetary)}


def pg_tables_by_oid(conn: psycopg.Connection) -> dict[int, tuple[str, str]]:
    """Ordinary tables (largest first) by oid, extension members left out."""
    return {int(oid): (s, t) for oid, s, t in conn.execute(_TABLES_WITH_OIDS).fetchall()}


def pg_row_counts(connect: Callable[[], psycopg.Connection], tables: list[tuple[str, str]],
                  jobs: int = 1, snapshot: str | None = None) -> dict[tuple[str, str], int]:
    """Each table's own rows (``count(*) FROM ONLY``: an inheritance parent's without its
    children's, as its COPY text holds them) on ``jobs`` sessions (on ``snapshot`` when
    given), without parallel workers."""
    def count(conn: psycopg.Connection, item: tuple[str, str]) -> int:
        q = pgsql.SQL("SELECT count(*) FROM ONLY {}").format(pgsql.Identifier(*item))
        return int(conn.execute(q).fetchone()[0])  # type: ignore[index]

    def session() -> psycopg.Connection:
        conn = connect()
        conn.execute("SET statement_timeout = 0; SET max_parallel_workers_per_gather = 0")
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        if snapshot:
            conn.execute(pgsql.SQL("SET TRANSACTION SNAPSHOT {}").format(
                pgsql.Literal(snapshot)))
        return conn

    return dict(zip(tables, _on_sessions(session, jobs, tables, count), strict=True))


def _on_sessions(session: Callable[[], psycopg.Connection], jobs: int, items: list,  # type: ignore[type-arg]
                 work: Callable[[psycopg.Connection, Any], Any]) -> list[Any]:
    """``work(conn, item)`` for every item, on up to ``jobs`` sessions; results in order."""
    if not items:
        return []
    n = max(1, min(jobs, len(items)))
    sessions: list[psycopg.Connection] = []
    try:
        sessions += [session() for _ in range(n)]
        free = list(sessions)
        lock = threading.Lock()

        def one(item: Any) -> Any:
            with lock:
                conn = free.pop()
            try:
                return work(conn, item)
            finally:
                with lock:
                    free.append(conn)

        with ThreadPoolExecutor(n) as pool:
            return list(pool.map(one, items))
    finally:
        for conn in sessions:
            conn.close()


def copy_figure(crc: int, size: int) -> str:
    """The manifest's text for a CRC-32 and a length (modulo 2**32, as gzip keeps it)."""
    return f"crc32:{crc & 0xFFFFFFFF:08x}:{size % (1 << 32)}"


def data_file_figure(path: Path) -> str:
    """The figure of one pg_dump data file: from a ``.gz`` file's trailer (CRC-32 and
    length of what was compressed; pg_dump writes one gzip member per file), or
    computed from an uncompressed ``.dat``."""
    if path.name.endswith(".gz"):
        with path.open("rb") as f:
            f.seek(-8, os.SEEK_END)
            tail = f.read(8)
        return copy_figure(int.from_bytes(tail[:4], "little"), int.from_bytes(tail[4:], "little"))
    crc, size = 0, 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
    return copy_figure(crc, size)


def read_data_file(path: Path) -> bytes:
    """A data file's content, decompressed (``.gz``) or as is (``.dat``)."""
    raw = path.read_bytes()
    return gzip.decompress(raw) if path.name.endswith(".gz") else raw


# pg_dump's end-of-data marker after a table's rows, in every release so far; a backup
# reads it from its smallest data file when that file is at most MARKER_PROBE_BYTES.
PG_DUMP_END_MARKER = b"\\.\n\n\n"
MARKER_PROBE_BYTES = 1 << 20

_DATA_FILE = re.compile(r"^(\d+)\.dat(\.gz)?$")
TOC_DATA = re.compile(r"^(\d+); 0 (\d+) TABLE DATA ")


def dump_data_files(out: Path, listing: str) -> dict[int, Path]:
    """Data file of each table (by oid) of a ``pg_dump -Fd`` directory, from the
    ``pg_restore -l`` listing (``<dump id>; 0 <table oid> TABLE DATA ...``) and the
    files named ``<dump id>.dat[.gz]``. Files in other formats (lz4, zstd) are left out."""
    files = {}
    for p in out.iterdir():
        m = _DATA_FILE.match(p.name)
        if m:
            files[int(m.group(1))] = p
    by_oid = {}
    for line in listing.splitlines():
        m = TOC_DATA.match(line)
        if m and int(m.group(1)) in files:
            by_oid[int(m.group(2))] = files[int(m.group(1))]
    return by_oid


def end_marker(content: bytes, rows: int) -> bytes:
    """What follows the ``rows`` lines of COPY text in a data file (pg_dump's ``\\.``)."""
    at = 0
    for _ in range(rows):
        at = content.index(b"\n", at) + 1
    return content[at:]


def _copy_target(conn: psycopg.Connection, oid: int, schema: str,
                 table: str, way: str = "TO STDOUT") -> pgsql.Composed:
    generated = " AND a.attgenerated = ''" if conn.info.server_version >= 120000 else ""
    cols = [r[0] for r in conn.execute(_COPY_COLUMNS.format(generated=generated), (oid,))]
    if not cols:  # a table without columns: COPY takes no empty list
        return pgsql.SQL("COPY {} " + way).format(pgsql.Identifier(schema, table))
    return pgsql.SQL("COPY {} ({}) " + way).format(
        pgsql.Identifier(schema, table), pgsql.SQL(", ").join(map(pgsql.Identifier, cols)))


@dataclass
class CopyReader:
    """How to stream COPY text out of a database: through ``psql`` when one is
    installed (its C loop is ~3x faster than reading row by row in Python), else through
    psycopg."""

    dsn: str
    settings: dict[str, str]
    psql: str | None = None

    def _options(self) -> dict[str, str]:
        return {**self.settings, "synchronize_seqscans": "off", "statement_timeout": "0",
                "default_transaction_read_only": "on"}

    def connect(self) -> psycopg.Connection:
        conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=10,
                               application_name="lockplane backup checksums")
        for name, value in self._options().items():
            conn.execute("SELECT set_config(%s, %s, false)", (name, value))
        return conn

    def figure(self, conn: psycopg.Connection, oid: int, schema: str, table: str,
               marker: bytes) -> tuple[int, str]:
        """``(rows, figure)`` of one table: its COPY text's lines, and the CRC-32 and
        length of that text followed by ``marker``."""
        copy = _copy_target(conn, oid, schema, table)
        crc, size, rows = 0, 0, 0
        if self.psql:
            from .pgtools import conninfo_and_env

            conninfo, env = conninfo_and_env(self.dsn, "lockplane backup checksums",
                                             options=self._options(), tool=self.psql)
            proc = subprocess.Popen([self.psql, "-X", "-q", "-v", "ON_ERROR_STOP=1",
                                     "-d", conninfo, "-c", copy.as_string(conn)],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
            assert proc.stdout is not None and proc.stderr is not None
            while chunk := proc.stdout.read(1 << 20):
                crc = zlib.crc32(chunk, crc)
                size += len(chunk)
                rows += chunk.count(b"\n")
            err = proc.stderr.read().decode(errors="replace").strip()
            if proc.wait() != 0:
                first = err.splitlines()[0] if err else f"psql exited with {proc.returncode}"
                raise ExecutionFailed(f"reading {schema}.{table} failed: {redact(first)}")
        else:
            with conn.cursor().copy(copy) as cp:
                pending: list[bytes] = []
                held = 0
                for data in cp:
                    pending.append(bytes(data))
                    held += len(data)
                    if held >= 1 << 20 or not data:
                        chunk = b"".join(pending)
                        crc, size = zlib.crc32(chunk, crc), size + len(chunk)
                        rows += chunk.count(b"\n")
                        pending, held = [], 0
                chunk = b"".join(pending)
                crc, size = zlib.crc32(chunk, crc), size + len(chunk)
                rows += chunk.count(b"\n")
        return rows, copy_figure(zlib.crc32(marker, crc), size + len(marker))


@dataclass
class CopyLoader:
    """Loads pg_dump data files into a database with ``COPY ... FROM STDIN`` under the
    settings the text was written with, taking each one's copy-crc32 figure on the way:
    the data is read once, and the figure is that of exactly what the server accepted."""

    dsn: str
    settings: dict[str, str]
    marker: bytes

    def connect(self) -> psycopg.Connection:
        conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=10,
                               application_name="lockplane backup validate")
        # pg_restore's own: no row security, names resolved as pg_dump wrote them
        for name, value in {**self.settings, "statement_timeout": "0", "row_security": "off",
                            "search_path": ""}.items():
            conn.execute("SELECT set_config(%s, %s, false)", (name, value))
        return conn

    def load(self, schema: str, table: str, path: Path) -> tuple[int, str]:
        """Stream one data file (``.dat.gz`` or ``.dat``) into ``schema.table``: its rows
        are sent, what follows them (the end marker) is not. ``(rows, figure)``: the rows
        the server took (COPY's own count: in a fresh restore, with no trigger or rule
        yet, the table's own rows, and no second scan of it), and the figure of what was
        sent followed by the marker (the file's own when it ends with the marker)."""
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if path.name.endswith(".gz") \
            else None
        keep = len(self.marker)
        crc, size, tail = 0, 0, b""
        with contextlib.closing(self.connect()) as conn, open(path, "rb") as f:
            try:
                target = _copy_target(conn, _oid(conn, schema, table), schema, table,
                                      "FROM STDIN")
                cur = conn.cursor()
                with cur.copy(target) as cp:
                    while True:
                        raw = f.read(1 << 20)
                        if inflate is None:
                            data = raw
                        else:
                            data = inflate.decompress(raw) if raw else inflate.flush()
                        if len(data) >= keep:
                            # (the held-back tail goes first, then all but the last bytes
                            # of this chunk as a view: no copy of a megabyte per chunk)
                            if tail:
                                cp.write(tail)
                                crc, size = zlib.crc32(tail, crc), size + len(tail)
                            body = memoryview(data)[:len(data) - keep]
                            if body:
                                cp.write(body)
                                crc, size = zlib.crc32(body, crc), size + len(body)
                            tail = data[len(data) - keep:]
                        else:
                            held = tail + data
                            cut = max(0, len(held) - keep)
                            if cut:
                                cp.write(held[:cut])
                                crc, size = zlib.crc32(held[:cut], crc), size + cut
                            tail = held[cut:]
                        if not raw:
                            break
                count = cur.rowcount
            except psycopg.Error as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else \
                    type(exc).__name__
                raise ExecutionFailed(f"loading {schema}.{table} failed: "
                                      f"{redact(first)}") from None
        if tail != self.marker:  # not what pg_dump writes after its rows: unsent, counted
            crc, size = zlib.crc32(tail, crc), size + len(tail)
        return int(count), copy_figure(zlib.crc32(self.marker, crc),
                                       size + len(self.marker))


def _oid(conn: psycopg.Connection, schema: str, table: str) -> int:
    row = conn.execute("SELECT %s::regclass::oid::bigint",
                       (pgsql.Identifier(schema, table).as_string(conn),)).fetchone()
    return int(row[0])  # type: ignore[index]


def pg_copy_stats(reader: CopyReader, marker: bytes, jobs: int = 1) -> list[TableStats]:
    """Rows and copy-crc32 figure of every table (largest first, on ``jobs`` sessions)."""
    with contextlib.closing(reader.connect()) as first:
        tables = [(oid, s, t) for oid, (s, t) in pg_tables_by_oid(first).items()]

    def work(conn: psycopg.Connection, item: tuple[int, str, str]) -> TableStats:
        rows, figure = reader.figure(conn, *item, marker)
        return TableStats(schema=item[1], name=item[2], rows=rows, checksum=figure)

    stats = _on_sessions(reader.connect, jobs, tables, work)
    return sorted(stats, key=lambda s: (s.schema_name, s.name))


def pg_stats_like(manifest: Manifest, dsn: str, connect: Callable[[], psycopg.Connection],
                  jobs: int = 1) -> list[TableStats]:
    """Stats of the tables at ``dsn`` by ``manifest``'s method, comparable with its own."""
    if manifest.checksum_method != COPY_CRC32:
        return pg_table_stats(connect, jobs=jobs)
    from .pgtools import find_tool

    with contextlib.closing(connect()) as conn:
        version = conn.info.server_version
    try:
        psql: str | None = find_tool("psql", version).path
    except BadInput:
        psql = None
    reader = CopyReader(dsn, manifest.copy_settings, psql)
    return pg_copy_stats(reader, manifest.copy_end_marker.encode(), jobs)
