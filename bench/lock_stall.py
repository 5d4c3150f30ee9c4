"""Benchmark: how long clients stall while a big table gets an index and four constraints.

Creates a template database ``lp_bench_lockstall_<pid>_tpl`` holding ``accounts``
(``--rows`` rows: id bigint PK, email, login, owner_id, balance, status) and ``owners``
(10,000 rows), and two identical copies of it, ``_a`` and ``_b``. Each copy gets the same
desired change, while ``--threads`` clients run point selects, point updates and inserts
on ``accounts`` (4 ms pause between two) and every client statement's latency is recorded:

  (a) an index on ``email``;          (b) UNIQUE (``login``);
  (c) FK ``owner_id`` -> ``owners``;    (d) CHECK (``balance >= 0``);
  (e) NOT NULL on ``status``.

  A. plain DDL: CREATE INDEX, ADD CONSTRAINT UNIQUE, ADD FOREIGN KEY, ADD CHECK,
     SET NOT NULL, one after the other, each in autocommit, no lock_timeout: what a naive
     migration does.
  B. Lockplane's default plan: ``lockplane plan --from B --to desired.sql`` (made before
     the load starts, not timed), then ``lockplane apply PLAN --auto-approve
     --skip-shadow --safety permissive`` in a child process, timed. Whatever form the
     planner emits is what runs; its statements are printed.

Each run first measures 2 s of load with no migration (the noise floor on this machine).
Per run it prints the migration's wall time and, over the client statements that ran
while it lasted: the worst, p99 and p99.9 latency, how many took over 250 ms, and how many
completed. Then it checks that both copies ended in the desired schema (same hash).

With ``--long-reader S``, a fifth connection runs a report on ``accounts`` in both runs:
read transactions of S seconds, back to back (``bench-report``). Plain DDL's ACCESS
EXCLUSIVE statements queue behind it, and every client statement queues behind them, for
up to S seconds; Lockplane's steps wait 150 ms at a time and retry with backoff.

Target: worst client latency under Lockplane's plan <= 250 ms.

Usage: ``.venv/bin/python bench/lock_stall.py [--rows 2000000] [--threads 4]
[--long-reader S] [--server DSN] [--keep]``

MariaDB / MySQL mode: ``--mysql [SERVER]`` (default ``mysql://root@127.0.0.1:3306/``): an
index, a column and two type widenings on ``accounts``, one at a time, plain ALTER TABLE
next to Lockplane's plan (see bench/_lock_stall_mysql.py).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
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
OWNERS = 10_000
BASELINE_S = 2.0
INSERT_ID_BASE = 10**12  # far above the generated ids: client inserts never collide

# Names are fixed so that plain DDL and Lockplane's plan end in the very same schema.
ACCOUNTS = pgsql.Identifier("accounts")
OWNERS_T = pgsql.Identifier("owners")
EMAIL_IDX = pgsql.Identifier("accounts_email_idx")
LOGIN_KEY = pgsql.Identifier("accounts_login_key")
OWNER_FK = pgsql.Identifier("accounts_owner_id_fkey")
BALANCE_CHECK = pgsql.Identifier("accounts_balance_check")
C = pgsql.Identifier  # columns


# ------------------------------------------------------------------ setup
def build_template(dsn: str, rows: int) -> None:
    """Fill the template in a few set-based statements (no round trip per row)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(pgsql.SQL("CREATE TABLE {} ({} bigint PRIMARY KEY, {} text NOT NULL)")
                     .format(OWNERS_T, C("id"), C("name")))
        conn.execute(pgsql.SQL("INSERT INTO {} SELECT i, 'owner ' || i "
                               "FROM generate_series(1, %s) i").format(OWNERS_T), (OWNERS,))
        conn.execute(pgsql.SQL(
            "CREATE TABLE {} ({} bigint PRIMARY KEY, {} text, {} text, {} bigint, {} int, "
            "{} text)").format(ACCOUNTS, C("id"), C("email"), C("login"), C("owner_id"),
                               C("balance"), C("status")))
        # Every row satisfies the desired constraints: unique logins, existing owners,
        # balance >= 0, no NULL status. The change must scan, never fail. (bigint: i * 7919
        # overflows int past 271,000 rows.)
        conn.execute(pgsql.SQL(
            "INSERT INTO {} SELECT i, 'user' || i || '@example.com', 'login' || i, "
            "1 + (i * 7919) %% %s, (i * 31) %% 10000, "
            "(ARRAY['active', 'closed', 'pending'])[1 + i %% 3] "
            "FROM generate_series(1, %s::bigint) i").format(ACCOUNTS), (OWNERS, rows))
        conn.execute(pgsql.SQL("VACUUM ANALYZE {}").format(ACCOUNTS))
        conn.execute(pgsql.SQL("VACUUM ANALYZE {}").format(OWNERS_T))


def desired_schema(conn: psycopg.Connection) -> str:
    """The desired schema as the .sql file `lockplane plan --to` reads."""
    parts = [
        pgsql.SQL("CREATE TABLE {} ({} bigint PRIMARY KEY, {} text NOT NULL);").format(
            OWNERS_T, C("id"), C("name")),
        pgsql.SQL(
            "CREATE TABLE {} (\n  {} bigint PRIMARY KEY,\n  {} text,\n  {} text,\n"
            "  {} bigint,\n  {} int,\n  {} text NOT NULL,\n"
            "  CONSTRAINT {} UNIQUE ({}),\n"
            "  CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({}),\n"
            "  CONSTRAINT {} CHECK ({} >= 0)\n);").format(
            ACCOUNTS, C("id"), C("email"), C("login"), C("owner_id"), C("balance"),
            C("status"), LOGIN_KEY, C("login"), OWNER_FK, C("owner_id"), OWNERS_T, C("id"),
            BALANCE_CHECK, C("balance")),
        pgsql.SQL("CREATE INDEX {} ON {} ({});").format(EMAIL_IDX, ACCOUNTS, C("email")),
    ]
    return "\n".join(p.as_string(conn) for p in parts) + "\n"


def plain_ddl() -> list[tuple[str, pgsql.Composed]]:
    """Run A: the statements a hand-written migration would run, in the brief's order."""
    alter = pgsql.SQL("ALTER TABLE {} ").format(ACCOUNTS)
    return [
        ("CREATE INDEX email", pgsql.SQL("CREATE INDEX {} ON {} ({})").format(
            EMAIL_IDX, ACCOUNTS, C("email"))),
        ("ADD UNIQUE (login)", alter + pgsql.SQL("ADD CONSTRAINT {} UNIQUE ({})").format(
            LOGIN_KEY, C("login"))),
        ("ADD FOREIGN KEY owner_id", alter + pgsql.SQL(
            "ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({})").format(
            OWNER_FK, C("owner_id"), OWNERS_T, C("id"))),
        ("ADD CHECK (balance >= 0)", alter + pgsql.SQL("ADD CONSTRAINT {} CHECK ({} >= 0)")
         .format(BALANCE_CHECK, C("balance"))),
        ("SET NOT NULL status", alter + pgsql.SQL("ALTER COLUMN {} SET NOT NULL").format(
            C("status"))),
    ]


# ------------------------------------------------------------------ load
def account_ops(rows: int) -> Workload:
    """50% point selects, 35% point updates, 15% inserts that satisfy the new
    constraints (so a client error means the migration broke something)."""
    read = pgsql.SQL("SELECT * FROM {} WHERE {} = %s").format(ACCOUNTS, C("id"))
    update = pgsql.SQL("UPDATE {} SET {} = {} + 1 WHERE {} = %s").format(
        ACCOUNTS, C("balance"), C("balance"), C("id"))
    insert = pgsql.SQL("INSERT INTO {} ({}, {}, {}, {}, {}, {}) "
                       "VALUES (%s, %s, %s, %s, %s, %s)").format(
        ACCOUNTS, C("id"), C("email"), C("login"), C("owner_id"), C("balance"), C("status"))

    def worker(n: int) -> Callable[[], Op]:
        rnd = random.Random(n)
        fresh = iter(range(INSERT_ID_BASE + n * 10**9, INSERT_ID_BASE + (n + 1) * 10**9))

        def next_op() -> Op:
            r = rnd.random()
            if r < 0.50:
                return "select", read, (rnd.randint(1, rows),)
            if r < 0.85:
                return "update", update, (rnd.randint(1, rows),)
            key = next(fresh)
            return "insert", insert, (key, f"new{key}@example.com", f"login-new{key}",
                                      rnd.randint(1, OWNERS), rnd.randint(0, 9999), "active")

        return next_op

    return worker


class LongReader(threading.Thread):
    """A report: read transactions of ``seconds`` on accounts, one right after another
    (ACCESS SHARE held throughout each; a few milliseconds between two)."""

    def __init__(self, dsn: str, seconds: float) -> None:
        super().__init__(daemon=True)
        self.dsn, self.seconds = dsn, seconds
        self.stop = threading.Event()
        self.transactions = 0
        self.conn: psycopg.Connection | None = None

    def run(self) -> None:
        read = pgsql.SQL("SELECT count(*) FROM {} WHERE {} <= 1000").format(ACCOUNTS, C("id"))
        with psycopg.connect(self.dsn, application_name="bench-report") as conn:
            self.conn = conn
            while not self.stop.is_set():
                try:
                    conn.execute(read)
                    conn.execute("SELECT pg_sleep(%s)", (self.seconds,))
                    conn.commit()
                    self.transactions += 1
                except psycopg.Error:
                    conn.rollback()  # cancelled at the end of the run

    def __enter__(self) -> LongReader:
        self.start()
        time.sleep(0.2)  # its first transaction holds its lock
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.conn is not None:
            self.conn.cancel_safe()
        self.join(timeout=30)


def maybe_reader(dsn: str, seconds: float) -> LongReader | contextlib.nullcontext[None]:
    return LongReader(dsn, seconds) if seconds > 0 else contextlib.nullcontext()


# ------------------------------------------------------------------ runs
@dataclass
class Run:
    label: str
    seconds: float  # the migration's wall time (0 for the baseline)
    waits: list[float]  # ms, client statements that overlapped the migration
    by_kind: dict[str, float]  # kind -> worst ms
    errors: Counter[str] = field(default_factory=Counter)
    steps: list[tuple[str, float]] = field(default_factory=list)  # (what, seconds)
    extra: str = ""
    failed: str = ""

    @property
    def over(self) -> int:
        return sum(1 for w in self.waits if w > TARGET_WAIT_MS)


def measured(label: str, load: Load, t0: float, t1: float) -> Run:
    kinds = sorted({s.kind for s in load.samples})
    return Run(label, t1 - t0, load.during(t0, t1),
               {k: max(load.during(t0, t1, k), default=0.0) for k in kinds})


def baseline(load: Load) -> tuple[float, float]:
    """A window of load with no migration, just before the migration starts."""
    t0 = time.perf_counter()
    time.sleep(BASELINE_S)
    return t0, time.perf_counter()


def run_plain(dsn: str, threads: int, rows: int, reader_s: float = 0) -> tuple[Run, Run]:
    checkpoint(dsn)
    steps: list[tuple[str, float]] = []
    with Load(dsn, account_ops(rows), threads) as load, maybe_reader(dsn, reader_s), \
            psycopg.connect(dsn, autocommit=True) as conn:
        b0, b1 = baseline(load)
        t0 = time.perf_counter()
        for what, stmt in plain_ddl():
            s0 = time.perf_counter()
            conn.execute(stmt)
            steps.append((what, time.perf_counter() - s0))
        t1 = time.perf_counter()
    run = measured("A. plain DDL", load, t0, t1)
    run.steps, run.errors = steps, load.errors
    return run, measured("baseline before A", load, b0, b1)


def run_lockplane(dsn: str, plan: Path, threads: int, rows: int,
                  reader_s: float = 0) -> tuple[Run, Run]:
    checkpoint(dsn)
    cmd = [sys.executable, "-m", "lockplane", "apply", str(plan), "--target", to_url(dsn),
           "--auto-approve", "--skip-shadow", "--safety", "permissive"]
    with Load(dsn, account_ops(rows), threads) as load, maybe_reader(dsn, reader_s):
        b0, b1 = baseline(load)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                              env={**os.environ, "COLUMNS": "120"}, check=False)
        t1 = time.perf_counter()
    run = measured("B. Lockplane default plan", load, t0, t1)
    run.errors = load.errors
    if proc.returncode != 0:
        run.failed = (f"lockplane apply exited {proc.returncode}: "
                      + "\n".join(proc.stderr.strip().splitlines()[-5:]))
    history = engine_seconds(dsn)
    # The child's wall time includes Python start-up and introspection; the history row
    # (lockplane.migrations) says how long the DDL itself took.
    if history is not None:
        run.extra = f"engine {history:.1f} s per lockplane.migrations"
    # (the apply reports each step's first retry, then one line every 10 s it still waits)
    waited = sum(1 for ln in proc.stderr.splitlines() if "lock not available" in ln
                 and "; retry 1 in" in ln)
    if waited:
        run.extra += f"; {waited} group(s) of steps retried their lock"
    return run, measured("baseline before B", load, b0, b1)


def engine_seconds(dsn: str) -> float | None:
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute(pgsql.SQL(
                "SELECT extract(epoch FROM {} - {}) FROM {}.{} ORDER BY {} DESC LIMIT 1").format(
                C("finished_at"), C("started_at"), pgsql.Identifier("lockplane"),
                pgsql.Identifier("migrations"), C("id"))).fetchone()
    except psycopg.Error:
        return None
    return float(row[0]) if row and row[0] is not None else None


def make_plan(dsn: str, desired: Path, out: Path) -> dict:
    cmd = [sys.executable, "-m", "lockplane", "plan", "--from", to_url(dsn), "--to",
           str(desired), "-o", str(out), "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    if proc.returncode != 0:
        sys.exit(f"lockplane plan failed ({proc.returncode}):\n{proc.stderr}")
    return json.loads(out.read_text())


def schema_hash(dsn: str) -> str:
    from lockplane.sources import load_schema

    return load_schema(to_url(dsn)).hash()


# ------------------------------------------------------------------ report
def describe_plan(plan: dict) -> None:
    """The first line of each statement, session settings (SET ...) folded into a tag."""
    steps = plan.get("steps", [])
    text = " ".join(s for step in steps for s in step.get("sql", [])).upper()
    safe = "CONCURRENTLY" in text or "NOT VALID" in text
    print(f"Lockplane's plan ({len(steps)} steps; "
          f"{'lock-safe form' if safe else 'plain form: no CONCURRENTLY / NOT VALID'}):")
    for i, step in enumerate(steps, 1):
        lock = step.get("lock") or {}
        stmts = [x.strip() for x in step.get("sql", []) if x.strip()]
        sets = [x for x in stmts if x.upper().startswith("SET ")]
        tags = [lock.get("mode", "?"), "in a transaction" if step.get("transactional", True)
                else "no transaction"]
        tags += [x[4:].replace(" = ", " ").replace("'", "") for x in sets]
        body = [x for x in stmts if x not in sets] or ["(settings only)"]
        for j, stmt in enumerate(body):
            head = f"{i:>3}." if j == 0 else "    "
            tag = f"  [{', '.join(tags)}]" if j == len(body) - 1 else ""
            print(f"  {head} {stmt.splitlines()[0]}{tag}")
    tx = [bool(s.get("transactional", True)) for s in steps]
    if len(tx) > 1 and all(tx):
        print("  (every step is transactional: the engine runs consecutive transactional "
              "steps in one transaction, so each lock is held until the last one ends)")


def row(r: Run, migration: bool = True) -> str:
    w = r.waits
    secs = f"{r.seconds:7.1f} s" if migration else f"{'-':>9}"
    return (f"{r.label:28} {secs} {max(w, default=0):>9,.0f} {percentile(w, 99):>8,.1f} "
            f"{percentile(w, 99.9):>8,.0f} {r.over:>7,} {len(w):>9,} "
            f"{len(w) / r.seconds if r.seconds else 0:>7,.0f}")


def report(rows: int, threads: int, base: list[Run], a: Run, b: Run,
           reader_s: float = 0) -> None:
    print(f"\nAdding index + UNIQUE + FK + CHECK + NOT NULL to accounts ({rows:,} rows), "
          f"{threads} client threads (select / update / insert by id)"
          + (f", and a report holding {reader_s:g} s read transactions on accounts back to "
             "back" if reader_s else "") + "\n")
    head = (f"{'run':28} {'migration':>9} {'worst ms':>9} {'p99 ms':>8} {'p99.9 ms':>8} "
            f"{'>250 ms':>7} {'stmts':>9} {'stmts/s':>7}")
    print(head)
    print("-" * len(head))
    waits = [w for r in base for w in r.waits]
    floor = Run(f"no migration ({len(base)} x {BASELINE_S:.0f} s)", BASELINE_S * len(base),
                waits, {})
    print(row(floor, migration=False))
    for r in (a, b):
        print(row(r) + (f"  {r.extra}" if r.extra else ""))
    print()
    for r in (a, b):
        kinds = ", ".join(f"{k} {v:,.0f} ms" for k, v in r.by_kind.items())
        print(f"worst by kind, {r.label[:1]}: {kinds}")
    print("plain DDL steps: " + ", ".join(f"{w} {s:.1f} s" for w, s in a.steps))
    for r in (a, b):
        if r.errors:
            top = "; ".join(f"{n} x {e}" for e, n in r.errors.most_common(3))
            print(f"client errors during {r.label[:1]}: {top}")
        if r.failed:
            print(f"{r.label} FAILED: {r.failed}")
    worst = max(b.waits, default=0.0)
    ok = not b.failed and worst <= TARGET_WAIT_MS
    print(f"\ntarget: worst client latency under Lockplane's plan <= {TARGET_WAIT_MS:.0f} ms: "
          f"{worst:,.0f} ms {'OK' if ok else 'MISSED'} (plain DDL: "
          f"{max(a.waits, default=0):,.0f} ms)")


# ------------------------------------------------------------------ main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--threads", type=int, default=4, help="client threads")
    ap.add_argument("--server", default=DEFAULT_SERVER)
    ap.add_argument("--keep", action="store_true", help="keep the databases")
    ap.add_argument("--long-reader", type=float, default=0, metavar="S",
                    help="a fifth connection holding S-second read transactions on accounts, "
                         "back to back, during both runs")
    ap.add_argument("--lock-wait-budget", type=float, default=180.0, metavar="S",
                    help="MariaDB / MySQL mode: apply's --lock-wait-budget")
    ap.add_argument("--mysql", nargs="?", const="default", default=None, metavar="SERVER",
                    help="MariaDB / MySQL mode, on this server (default "
                         "mysql://root@127.0.0.1:3306/)")
    args = ap.parse_args()
    if args.mysql is not None:
        import _lock_stall_mysql as my

        server = my.DEFAULT_MYSQL_SERVER if args.mysql == "default" else args.mysql
        my.main(server, args.rows, args.threads, args.long_reader, args.keep,
                args.lock_wait_budget)
        return
    prefix = f"lp_bench_lockstall_{os.getpid()}"
    tpl, name_a, name_b = f"{prefix}_tpl", f"{prefix}_a", f"{prefix}_b"
    made: list[str] = []
    work = Path(tempfile.mkdtemp(prefix="lp_bench_lockstall_"))
    try:
        t = time.perf_counter()
        made.append(tpl)
        build_template(create_database(args.server, tpl), args.rows)
        # Two byte-identical copies: both runs start from the same state.
        made.append(name_a)
        dsn_a = create_database(args.server, name_a, template=tpl)
        made.append(name_b)
        dsn_b = create_database(args.server, name_b, template=tpl)
        print(f"setup: {args.rows:,} accounts, {OWNERS:,} owners, 2 copies in "
              f"{time.perf_counter() - t:.0f} s", file=sys.stderr)

        desired = work / "desired.sql"
        with psycopg.connect(dsn_b) as conn:
            desired.write_text(desired_schema(conn))
        t = time.perf_counter()
        plan = make_plan(dsn_b, desired, work / "plan.json")
        print(f"planned in {time.perf_counter() - t:.1f} s (not part of the migration time)",
              file=sys.stderr)
        describe_plan(plan)

        a, base_a = run_plain(dsn_a, args.threads, args.rows, args.long_reader)
        print(f"run A done: {a.seconds:.1f} s", file=sys.stderr)
        b, base_b = run_lockplane(dsn_b, work / "plan.json", args.threads, args.rows,
                                  args.long_reader)
        print(f"run B done: {b.seconds:.1f} s", file=sys.stderr)
        report(args.rows, args.threads, [base_a, base_b], a, b, args.long_reader)

        target = plan.get("target_hash")
        ha, hb = schema_hash(dsn_a), schema_hash(dsn_b)
        print(f"end state: A {'=' if ha == target else '!='} desired, "
              f"B {'=' if hb == target else '!='} desired (hash {str(target)[:12]})")
    finally:
        if args.keep:
            print(f"kept databases {', '.join(made)}; plan and schema in {work}",
                  file=sys.stderr)
        else:
            for name in reversed(made):
                drop_database(args.server, name)
            for f in work.iterdir():
                f.unlink()
            work.rmdir()


if __name__ == "__main__":
    main()
