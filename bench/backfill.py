"""Benchmark: Lockplane's batched backfill against one plain UPDATE, under client load.

Creates a database ``lp_bench_backfill_<pid>`` with two identical tables of ``--rows``
rows (``id bigint`` primary key, an index on ``account``, ~90-byte rows) and fills a new
column in each, with the same expression, while ``--clients`` threads keep doing point
reads and point updates (``hits = hits + 1``) on random rows of that table:

  a. ``UPDATE plain SET amount_cents = amount * 100 + account`` (one statement);
  b. ``lockplane backfill --table lp --set "amount_cents = amount * 100 + account"``
     (a child process: shadow trial, read-only check, then the batches).

For each it prints rows per second, the worst and the 99th-percentile client latency
during the run, and the WAL written server-wide (``pg_current_wal_insert_lsn()`` before
and after: the clients' and any other session's WAL included),
next to Lockplane's own estimate. Then it runs the backfill again on a table a tenth
the size, with no clients, and prints both child processes' peak RSS (``os.wait4``):
memory should not grow with the table.

Targets: at least half the plain UPDATE's rows/s; no client waits over 250 ms during the
backfill; peak RSS flat in table size.

Usage: ``.venv/bin/python bench/backfill.py [--rows 1000000] [--huge] [--clients 4]
[--server DSN] [--keep]``  (``--huge``: 10,000,000 rows)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from _load import (
    DEFAULT_SERVER,
    TARGET_WAIT_MS,
    Load,
    Op,
    Workload,
    checkpoint,
    create_database,
    drop_database,
    percentile,
    to_url,
)
from psycopg import sql as pgsql

ROOT = Path(__file__).resolve().parent.parent
EXPR = "amount * 100 + account"
TARGET_RATIO = 0.5


# ------------------------------------------------------------------ load
def point_ops(table: str, rows: int) -> Workload:
    """Half point reads, half point updates (``hits = hits + 1``) on random rows."""
    t = pgsql.Identifier(table)
    read = pgsql.SQL("SELECT * FROM {} WHERE id = %s").format(t)
    write = pgsql.SQL("UPDATE {} SET hits = hits + 1 WHERE id = %s").format(t)

    def worker(seed: int) -> Callable[[], Op]:
        rnd = random.Random(seed)

        def next_op() -> Op:
            key = rnd.randint(1, rows)
            return ("read", read, (key,)) if rnd.random() < 0.5 else ("update", write, (key,))

        return next_op

    return worker


def p99(values: list[float]) -> float:
    return percentile(values, 99)


# ------------------------------------------------------------------ setup
def create_tables(dsn: str, rows: int, names: list[str]) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        first = pgsql.Identifier(names[0])
        conn.execute(pgsql.SQL(
            "CREATE TABLE {} (id bigint PRIMARY KEY, account int NOT NULL, amount int NOT NULL, "
            "note text, hits int NOT NULL DEFAULT 0, amount_cents bigint)").format(first))
        conn.execute(pgsql.SQL(
            "INSERT INTO {} (id, account, amount, note) SELECT i, i %% 5000, "
            "(i::bigint * 7919) %% 100000, md5(i::text) || md5((i * 31)::text) "
            "FROM generate_series(1, %s) i").format(first),
            (rows,))
        conn.execute(pgsql.SQL("CREATE INDEX ON {} (account)").format(first))
        for name in names[1:]:
            t = pgsql.Identifier(name)
            conn.execute(pgsql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(t, first))
            conn.execute(pgsql.SQL("INSERT INTO {} SELECT * FROM {}").format(t, first))
        for name in names:
            conn.execute(pgsql.SQL("VACUUM ANALYZE {}").format(pgsql.Identifier(name)))


def wal_lsn(dsn: str) -> str:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0]


def wal_since(dsn: str, lsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return int(conn.execute("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s)",
                                (lsn,)).fetchone()[0])


def verify(dsn: str, table: str) -> int:
    with psycopg.connect(dsn) as conn:
        return int(conn.execute(pgsql.SQL(
            "SELECT count(*) FROM {} WHERE amount_cents IS DISTINCT FROM " + EXPR).format(
            pgsql.Identifier(table))).fetchone()[0])


# ------------------------------------------------------------------ runs
@dataclass
class Run:
    label: str
    rows: int
    seconds: float
    worst_ms: float
    p99_ms: float
    ops: int
    wal: int
    extra: str = ""

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def plain_update(dsn: str, rows: int, clients: int) -> Run:
    checkpoint(dsn)
    lsn = wal_lsn(dsn)
    with Load(dsn, point_ops("plain", rows), clients) as load, \
            psycopg.connect(dsn, autocommit=True) as conn:
        t0 = time.perf_counter()
        conn.execute("UPDATE plain SET amount_cents = " + EXPR)
        t1 = time.perf_counter()
    waits = load.during(t0, t1)
    return Run("plain UPDATE (one statement)", rows, t1 - t0, max(waits, default=0),
               p99(waits), len(waits), wal_since(dsn, lsn))


def lockplane_backfill(dsn: str, table: str, rows: int, clients: int,
                       ) -> tuple[Run, dict, int]:
    """The CLI in a child process; (run, its JSON result, its peak RSS in KiB)."""
    checkpoint(dsn)
    lsn = wal_lsn(dsn)
    cmd = [sys.executable, "-m", "lockplane", "backfill", "--target", to_url(dsn),
           "--table", table, "--set", f"amount_cents = {EXPR}", "--auto-approve", "--json"]
    load = Load(dsn, point_ops(table, rows), clients) if clients else None
    if load:
        load.__enter__()
    out_path = Path(f"/tmp/lp_bench_backfill_{os.getpid()}.json")
    with out_path.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE, cwd=ROOT,
                                env={**os.environ, "COLUMNS": "120"})
        assert proc.stderr is not None
        stderr = proc.stderr.read().decode()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    if load:
        load.__exit__()
    if proc.returncode != 0:
        sys.exit(f"lockplane backfill failed ({proc.returncode}):\n{stderr}")
    result = json.loads(out_path.read_text())
    out_path.unlink()
    # The batches ran in the last result['seconds'] of the child's life.
    waits: list[float] = []
    if load:
        end = load.last_end()
        waits = load.during(end - 0.3 - result["seconds"], end)
    run = Run("lockplane backfill", rows, result["seconds"], max(waits, default=0),
              p99(waits), len(waits), wal_since(dsn, lsn),
              extra=f"{result['batches']:,} batches, {result['lock_retries']} lock retries")
    return run, result, usage.ru_maxrss


# ------------------------------------------------------------------ main
def mib(kib: int) -> str:
    return f"{kib / 1024:.0f} MiB"


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--huge", action="store_true", help="10,000,000 rows")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--server", default=DEFAULT_SERVER)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    rows = 10_000_000 if args.huge else args.rows
    small = max(1000, rows // 10)
    name = f"lp_bench_backfill_{os.getpid()}"
    dsn = create_database(args.server, name)
    try:
        t = time.perf_counter()
        create_tables(dsn, rows, ["plain", "lp"])
        create_tables(dsn, small, ["lp_small"])
        print(f"setup: {rows:,} rows x 2 tables (+ {small:,}) in "
              f"{time.perf_counter() - t:.0f} s", file=sys.stderr)

        plain = plain_update(dsn, rows, args.clients)
        lp, result, rss_big = lockplane_backfill(dsn, "lp", rows, args.clients)
        _, _, rss_small = lockplane_backfill(dsn, "lp_small", small, 0)
        wrong = verify(dsn, "plain") + verify(dsn, "lp") + verify(dsn, "lp_small")
        est = result["estimate"]

        print(f"\nBackfill of {rows:,} rows ({EXPR}), {args.clients} client threads "
              f"doing point reads and updates ({plain.ops + lp.ops:,} ops measured)\n")
        head = (f"{'':32} {'rows/s':>10} {'seconds':>8} {'worst wait':>11} {'p99 wait':>9} "
                f"{'WAL*':>9}")
        print(head)
        print("-" * len(head))
        for r in (plain, lp):
            print(f"{r.label:32} {r.rate:>10,.0f} {r.seconds:>8.1f} {r.worst_ms:>8.0f} ms "
                  f"{r.p99_ms:>6.1f} ms {human_bytes(r.wal):>9}  {r.extra}")
        est_s = f"~{est['seconds']:.1f} s" if est.get("seconds") else "?"
        est_wal = human_bytes(est["wal_bytes"]) if est.get("wal_bytes") else "?"
        print(f"{'  (lockplane estimate)':32} {'':>10} {est_s:>8} {'':>11} {'':>9} "
              f"{'~' + est_wal:>9}")
        print("* WAL written server-wide during the run: clients and any other session too")
        ratio = lp.rate / plain.rate if plain.rate else 0.0
        flat = rss_big <= rss_small * 1.15 + 8 * 1024
        print()
        print(f"throughput ratio  {ratio:.2f} of the plain UPDATE (target >= {TARGET_RATIO}) "
              f"{'OK' if ratio >= TARGET_RATIO else 'MISSED'}")
        print(f"worst client wait {lp.worst_ms:.0f} ms during the backfill "
              f"(target <= {TARGET_WAIT_MS:.0f} ms) "
              f"{'OK' if lp.worst_ms <= TARGET_WAIT_MS else 'MISSED'}; "
              f"{plain.worst_ms:,.0f} ms during the plain UPDATE")
        print(f"peak RSS          {mib(rss_small)} at {small:,} rows, {mib(rss_big)} at "
              f"{rows:,} rows {'OK (flat)' if flat else 'MISSED (grows)'}")
        print(f"correctness       {'every row right' if not wrong else f'{wrong} rows WRONG'}")
    finally:
        if args.keep:
            print(f"kept database {name}", file=sys.stderr)
        else:
            drop_database(args.server, name)


if __name__ == "__main__":
    main()
