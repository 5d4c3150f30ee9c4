"""Per-table row counts and order-independent checksums, computed in the database.

PostgreSQL: ``count(*)`` and ``sum(hashtextextended(t::text, 0))`` over every ordinary
table (one sequential scan each, no sort; a 64-bit hash per row, summed as numeric so it
cannot overflow). Tables run in parallel on ``jobs`` sessions; at backup time those
sessions share pg_dump's exported snapshot, so the figures describe exactly what was
dumped. The row text depends on a few settings (time zone, date style, bytea output,
float digits), pinned here for both sides.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import psycopg
from psycopg import sql as pgsql

from .manifest import TableStats

_SETTINGS = ("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'; "
             "SET IntervalStyle = 'postgres'; SET bytea_output = 'hex'; "
             "SET extra_float_digits = 1; SET statement_timeout = 0")

_TABLES = """
SELECT n.nspname, c.relname, c.relpages
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp%%'
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
        import threading

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
