"""Benchmark: how fast a table drop's archive copies rows (changes/refill_table.py).

Creates a database ``lp_bench_archive_<pid>`` with one table of ``--rows`` rows (``id
bigint`` identity primary key, ``account int``, ``note text`` of ~40 bytes, ``at
timestamptz``, ``amount numeric``: ~100-byte rows, one index), then runs the archive
statements a plan's DROP TABLE step starts with (the bounded count, then every row copied
as text into ``lockplane.table_...``) inside a transaction that is rolled back, ``--repeat``
times. Prints rows per second and MB (of the table, with its indexes) per second, the
best and the median run. ``Dialect.archive_rows_per_s`` (the plan's "in about N s") is
this figure on the CI machine, rounded down (2 cores, load average 25, 300,000 rows:
58,000-66,000 rows/s, 7.7-8.8 MB/s).

``--sqlite``: the same table in a SQLite file in a temporary directory, and the statements
of a SQLite drop (each value as stored, with its rowid; the AUTOINCREMENT counter): on the
same machine at load average 11, 300,000 rows (27 MB): 376,000 rows/s median, 514,000 best.

Usage: ``.venv/bin/python bench/archive_copy.py [--rows 500000] [--repeat 3]
[--server DSN] [--keep] [--sqlite]``
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lockplane.changes.refill_table import archive_sql_postgres, archive_sql_sqlite  # noqa: E402
from lockplane.dialects import connect, get_dialect  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=500_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--server", default=os.environ.get(
        "LOCKPLANE_BENCH_SERVER", "postgresql://postgres@127.0.0.1:5432/postgres"))
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--sqlite", action="store_true")
    args = ap.parse_args()
    if args.sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            _sqlite(args, Path(tmp) / "bench.db")
        return
    name = f"lp_bench_archive_{os.getpid()}"
    base, _, _ = args.server.rpartition("/")
    dsn = f"{base}/{name}"
    with psycopg.connect(args.server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("""
                CREATE TABLE ledger (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    account int NOT NULL, note text, at timestamptz NOT NULL,
                    amount numeric(12, 2));
                CREATE INDEX ledger_account ON ledger (account);""")
            conn.execute("""
                INSERT INTO ledger (account, note, at, amount)
                SELECT g %% 5000, md5(g::text) || '-note', now() - g * interval '1 minute',
                       (g %% 100000) / 100.0
                FROM generate_series(1, %s) g""", (args.rows,))
            conn.execute("VACUUM ANALYZE ledger")
            size = conn.execute("SELECT pg_total_relation_size('ledger')").fetchone()[0]
        d = get_dialect("postgres")
        with connect(dsn) as db:
            table = db.introspect().table("public", "ledger")
        assert table is not None
        statements = archive_sql_postgres(d, table)
        times = []
        with psycopg.connect(dsn) as conn:
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                for stmt in statements:
                    conn.execute(stmt)
                times.append(time.perf_counter() - t0)
                conn.rollback()
        _report(args.rows, size, times)
    finally:
        if not args.keep:
            with psycopg.connect(args.server, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _sqlite(args: argparse.Namespace, path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE ledger (id INTEGER PRIMARY KEY AUTOINCREMENT, account INT "
                 "NOT NULL, note TEXT, at TEXT NOT NULL, amount NUMERIC)")
    conn.execute("CREATE INDEX ledger_account ON ledger (account)")
    conn.execute("WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ?) "
                 "INSERT INTO ledger (account, note, at, amount) SELECT n % 5000, "
                 "lower(hex(randomblob(16))) || '-note', datetime('now', '-' || n || "
                 "' minutes'), (n % 100000) / 100.0 FROM g", (args.rows,))
    conn.close()
    size = path.stat().st_size
    with connect(f"sqlite:///{path}") as db:
        table = db.introspect().table("main", "ledger")
    assert table is not None
    statements = archive_sql_sqlite(get_dialect("sqlite"), table)
    times = []
    conn = sqlite3.connect(path, isolation_level=None)
    for _ in range(args.repeat):
        conn.execute("BEGIN")
        t0 = time.perf_counter()
        for stmt in statements:
            conn.execute(stmt)
        times.append(time.perf_counter() - t0)
        conn.execute("ROLLBACK")
    conn.close()
    _report(args.rows, size, times)


def _report(rows: int, size: int, times: list[float]) -> None:
    best, median = min(times), statistics.median(times)
    print(f"rows: {rows:,}  table with indexes: {size / 1e6:.1f} MB")
    for label, t in (("best", best), ("median", median)):
        print(f"{label:>6}: {t:.2f} s  {rows / t:,.0f} rows/s  {size / 1e6 / t:.1f} MB/s")


if __name__ == "__main__":
    main()
