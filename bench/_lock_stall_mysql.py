"""The MariaDB / MySQL mode of bench/lock_stall.py (``--mysql [SERVER]``).

Creates ``lp_bench_lockstall_<pid>_a`` and ``_b`` on the server, each holding
``accounts`` (``--rows`` rows: id bigint PK, email, login, owner_id, balance int, status,
note varchar(40)), the same rows in both. Then, one change at a time, while ``--threads``
clients run point selects, point updates and inserts on ``accounts`` (4 ms pause between
two) and every client statement's latency is recorded:

  index     an index on ``email``
  column    a nullable column ``score int``
  varchar   ``note`` varchar(40) -> varchar(60) (utf8mb4: 160 -> 240 bytes, the same
            1-byte length prefix: metadata only where the server can)
  bigint    ``balance`` int -> bigint (every row converted: a copy)

  A. plain DDL on copy A: the ALTER TABLE without ALGORITHM / LOCK clauses, in autocommit,
     with the session's lock_wait_timeout (the server default, a day on MariaDB);
  B. Lockplane on copy B: ``lockplane plan --from B --to desired.sql`` (made before the
     load starts, not timed), then ``lockplane apply PLAN --auto-approve --skip-shadow
     --safety permissive`` in a child process, timed. Whatever the planner emits runs
     (its statements, ALGORITHM and LOCK are printed).

Each run first measures 2 s of load with no migration. With ``--long-reader S`` a further
connection holds S-second read transactions on accounts back to back: plain DDL waits for
its metadata lock behind one, and every client statement on the table queues behind the
DDL; Lockplane's step waits lock_wait_timeout (whole seconds: 1 s) and retries.
"""

from __future__ import annotations

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
from typing import Any

import pymysql
from _load import TARGET_WAIT_MS, Load, percentile

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MYSQL_SERVER = os.environ.get("LOCKPLANE_BENCH_MYSQL", "mysql://root@127.0.0.1:3306/")
BASELINE_S = 2.0
INSERT_ID_BASE = 10**12

COLUMNS = {
    "id": "bigint NOT NULL",
    "email": "varchar(100) DEFAULT NULL",
    "login": "varchar(50) DEFAULT NULL",
    "owner_id": "bigint DEFAULT NULL",
    "balance": "int DEFAULT NULL",
    "status": "varchar(20) DEFAULT NULL",
    "note": "varchar(40) DEFAULT NULL",
}
# (name, what, the plain ALTER, the desired table's changes as {column: type} / index)
CHANGES: list[tuple[str, str, str, dict[str, Any]]] = [
    ("index", "index on email", "ALTER TABLE accounts ADD INDEX accounts_email_idx (email)",
     {"index": True}),
    ("column", "ADD COLUMN score int", "ALTER TABLE accounts ADD COLUMN score int",
     {"score": "int DEFAULT NULL"}),
    ("varchar", "note varchar(40) -> varchar(60)",
     "ALTER TABLE accounts MODIFY COLUMN note varchar(60)", {"note": "varchar(60) DEFAULT NULL"}),
    ("bigint", "balance int -> bigint",
     "ALTER TABLE accounts MODIFY COLUMN balance bigint", {"balance": "bigint DEFAULT NULL"}),
]


def _connect(dsn: str, **kw: Any) -> pymysql.connections.Connection:
    sys.path.insert(0, str(ROOT))
    from lockplane.dialects.mysql import parse_dsn

    return pymysql.connect(**parse_dsn(dsn).kwargs(), charset="utf8mb4", autocommit=True,
                           **kw)


def _with_db(server: str, name: str) -> str:
    sys.path.insert(0, str(ROOT))
    from lockplane.dialects.mysql import with_database

    return with_database(server, name)


def desired_sql(state: dict[str, Any]) -> str:
    cols = ",\n  ".join(f"`{c}` {t}" for c, t in state["columns"].items())
    index = ",\n  KEY `accounts_email_idx` (`email`)" if state.get("index") else ""
    return (f"CREATE TABLE accounts (\n  {cols},\n  PRIMARY KEY (`id`){index}\n) "
            "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;\n")


def build(server: str, names: list[str], rows: int) -> list[str]:
    dsns = []
    with _connect(server) as conn, conn.cursor() as cur:
        for n, name in enumerate(names):
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 "
                        "COLLATE utf8mb4_general_ci")
            cols = ", ".join(f"`{c}` {t}" for c, t in COLUMNS.items())
            cur.execute(f"CREATE TABLE `{name}`.accounts ({cols}, PRIMARY KEY (id)) "
                        "ENGINE=InnoDB")
            if n == 0:
                # MariaDB's sequence engine: every row in one statement.
                cur.execute(
                    f"INSERT INTO `{name}`.accounts SELECT seq, CONCAT('user', seq, "
                    "'@example.com'), CONCAT('login', seq), 1 + (seq * 7919) % 10000, "
                    "(seq * 31) % 10000, ELT(1 + seq % 3, 'active', 'closed', 'pending'), "
                    f"CONCAT('note ', seq) FROM `{name}`.seq_1_to_{int(rows)}")
            else:
                cur.execute(f"INSERT INTO `{name}`.accounts SELECT * FROM `{names[0]}`.accounts")
            cur.execute(f"ANALYZE TABLE `{name}`.accounts")
            cur.fetchall()
            dsns.append(_with_db(server, name))
    return dsns


class MySQLLoad(Load):
    """bench/_load.Load's clients, on PyMySQL connections."""

    def _loop(self, worker: int) -> None:
        next_op = self.workload(worker)
        mine, failed = [], Counter()
        conn = _connect(self.dsn)
        with conn, conn.cursor() as cur:
            while not self.stop.is_set():
                kind, stmt, params = next_op()
                t0 = time.perf_counter()
                try:
                    cur.execute(stmt, params)
                    cur.fetchall()
                except pymysql.Error as exc:
                    failed[f"{kind}: {exc.args[-1] if exc.args else exc!r}"] += 1
                from _load import Sample

                mine.append(Sample(t0, time.perf_counter() - t0, kind))
                time.sleep(self.pause_s)
        with self.lock:
            self.samples += mine
            self.errors.update(failed)


def account_ops(rows: int, run: int) -> Callable[[int], Callable[[], tuple[str, Any, tuple]]]:
    """50% point selects, 35% point updates, 15% inserts (keys fresh in each run)."""
    read = "SELECT * FROM accounts WHERE id = %s"
    update = "UPDATE accounts SET balance = balance + 1 WHERE id = %s"
    insert = ("INSERT INTO accounts (id, email, login, owner_id, balance, status, note) "
              "VALUES (%s, %s, %s, %s, %s, %s, %s)")

    def worker(n: int) -> Callable[[], tuple[str, Any, tuple]]:
        rnd = random.Random(n)
        base = INSERT_ID_BASE + run * 10**11 + n * 10**9
        fresh = iter(range(base, base + 10**9))

        def next_op() -> tuple[str, Any, tuple]:
            r = rnd.random()
            if r < 0.50:
                return "select", read, (rnd.randint(1, rows),)
            if r < 0.85:
                return "update", update, (rnd.randint(1, rows),)
            key = next(fresh)
            return "insert", insert, (key, f"new{key}@example.com", f"login-new{key}",
                                      rnd.randint(1, 10000), rnd.randint(0, 9999), "active",
                                      "new")

        return next_op

    return worker


class LongReader(threading.Thread):
    """Read transactions of ``seconds`` on accounts, back to back: each holds the table's
    shared metadata lock until it commits."""

    def __init__(self, dsn: str, seconds: float) -> None:
        super().__init__(daemon=True)
        self.dsn, self.seconds = dsn, seconds
        self.stop = threading.Event()

    def run(self) -> None:
        with _connect(self.dsn) as conn, conn.cursor() as cur:
            while not self.stop.is_set():
                cur.execute("BEGIN")
                cur.execute("SELECT COUNT(*) FROM accounts WHERE id <= 1000")
                cur.fetchall()
                self.stop.wait(self.seconds)
                cur.execute("COMMIT")

    def __enter__(self) -> LongReader:
        self.start()
        time.sleep(0.2)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.join(timeout=self.seconds + 30)


@dataclass
class Run:
    label: str
    seconds: float
    waits: list[float]
    errors: Counter[str] = field(default_factory=Counter)
    note: str = ""


_RUNS = iter(range(1, 90))


def _measure(dsn: str, threads: int, rows: int, reader_s: float,
             migrate: Callable[[], str]) -> tuple[Run, list[float]]:
    reader = LongReader(dsn, reader_s) if reader_s > 0 else None
    with MySQLLoad(dsn, account_ops(rows, next(_RUNS)), threads) as load:  # type: ignore[arg-type]
        if reader:
            reader.__enter__()
        try:
            b0 = time.perf_counter()
            time.sleep(BASELINE_S)
            b1 = t0 = time.perf_counter()
            note = migrate()
            t1 = time.perf_counter()
        finally:
            if reader:
                reader.__exit__()
    run = Run("", t1 - t0, load.during(t0, t1), load.errors, note)
    return run, load.during(b0, b1)


def plain(dsn: str, stmt: str) -> Callable[[], str]:
    def go() -> str:
        with _connect(dsn) as conn, conn.cursor() as cur:
            cur.execute(stmt)
        return ""
    return go


def lockplane_apply(dsn: str, plan: Path, budget_s: float) -> Callable[[], str]:
    def go() -> str:
        proc = subprocess.run([sys.executable, "-m", "lockplane", "apply", str(plan),
                               "--target", dsn, "--auto-approve", "--skip-shadow",
                               "--safety", "permissive", "--lock-wait-budget", f"{budget_s:g}"],
                              capture_output=True, text=True, cwd=ROOT, check=False)
        if proc.returncode != 0:
            last = proc.stderr.strip().splitlines()[-1]
            return f"FAILED ({proc.returncode}): " + last.split("; blocked by")[0]
        retried = sum(1 for ln in proc.stderr.splitlines() if "; retry 1 in" in ln)
        return f"{retried} step(s) retried their lock" if retried else ""
    return go


def make_plan(dsn: str, desired: Path, out: Path) -> dict:
    proc = subprocess.run([sys.executable, "-m", "lockplane", "plan", "--from", dsn, "--to",
                           str(desired), "-o", str(out), "--quiet"], capture_output=True,
                          text=True, cwd=ROOT, check=False)
    if proc.returncode != 0:
        sys.exit(f"lockplane plan failed ({proc.returncode}):\n{proc.stderr}")
    return json.loads(out.read_text())


def row(label: str, r: Run | None, waits: list[float]) -> str:
    secs = f"{r.seconds:7.1f} s" if r else f"{'-':>9}"
    return (f"{label:34} {secs} {max(waits, default=0):>9,.0f} {percentile(waits, 99):>8,.1f} "
            f"{sum(1 for w in waits if w > TARGET_WAIT_MS):>7,} {len(waits):>8,}"
            + (f"  {r.note}" if r and r.note else ""))


def main(server: str, rows: int, threads: int, reader_s: float, keep: bool,
         budget_s: float = 180.0) -> None:
    prefix = f"lp_bench_lockstall_{os.getpid()}"
    names = [f"{prefix}_a", f"{prefix}_b"]
    work = Path(tempfile.mkdtemp(prefix="lp_bench_lockstall_my_"))
    try:
        t = time.perf_counter()
        dsn_a, dsn_b = build(server, names, rows)
        with _connect(server) as conn, conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            version = cur.fetchone()[0]
        print(f"setup: {rows:,} accounts in 2 copies on {version} in "
              f"{time.perf_counter() - t:.0f} s", file=sys.stderr)
        state: dict[str, Any] = {"columns": dict(COLUMNS)}
        head = (f"{'run':34} {'migration':>9} {'worst ms':>9} {'p99 ms':>8} {'>250 ms':>7} "
                f"{'stmts':>8}")
        lines = [head, "-" * len(head)]
        worst_b: dict[str, float] = {}
        worst_a: dict[str, float] = {}
        for key, what, stmt, change in CHANGES:
            # Copy B's desired schema is what B has plus this change alone: a change whose
            # apply failed (its lock-wait budget spent) is not carried into the next.
            wanted = {"columns": dict(state["columns"]), "index": state.get("index")}
            if change.get("index"):
                wanted["index"] = True
            else:
                wanted["columns"].update(change)
            desired = work / f"{key}.sql"
            desired.write_text(desired_sql(wanted))
            plan = make_plan(dsn_b, desired, work / f"{key}.json")
            for step in plan["steps"]:
                lk = step.get("lock") or {}
                alg = f"ALGORITHM={lk['algorithm']}, " if lk.get("algorithm") else ""
                print(f"plan for {what}: {step['sql'][-1]}  [{alg}LOCK {lk.get('mode')}]"
                      + (f"  server: {lk['server']}" if lk.get("server") else ""))
            a, base_a = _measure(dsn_a, threads, rows, reader_s, plain(dsn_a, stmt))
            print(f"{what}: plain {a.seconds:.1f} s", file=sys.stderr)
            b, base_b = _measure(dsn_b, threads, rows, reader_s,
                                 lockplane_apply(dsn_b, work / f"{key}.json", budget_s))
            print(f"{what}: lockplane {b.seconds:.1f} s", file=sys.stderr)
            if not b.note.startswith("FAILED"):
                state = wanted
            lines.append(row(f"{what}: no migration", None, base_a + base_b))
            lines.append(row(f"{what}: A plain DDL", a, a.waits))
            lines.append(row(f"{what}: B Lockplane", b, b.waits))
            worst_a[what], worst_b[what] = max(a.waits, default=0), max(b.waits, default=0)
            for r, label in ((a, "A"), (b, "B")):
                if r.errors:
                    top = "; ".join(f"{n} x {e}" for e, n in r.errors.most_common(2))
                    lines.append(f"    client errors during {label}: {top}")
        print(f"\nMariaDB/MySQL mode: {rows:,} rows, {threads} client threads, "
              f"lock-wait budget {budget_s:g} s"
              + (f", a report holding {reader_s:g} s read transactions back to back"
                 if reader_s else "") + f" ({version})\n")
        print("\n".join(lines))
        print(f"\nworst client statement, Lockplane vs plain DDL (target <= "
              f"{TARGET_WAIT_MS:.0f} ms):")
        for what in worst_b:
            print(f"  {what:34} {worst_b[what]:>9,.0f} ms vs {worst_a[what]:>9,.0f} ms")
    finally:
        if keep:
            print(f"kept databases {', '.join(names)}; plans in {work}", file=sys.stderr)
        else:
            with _connect(server) as conn, conn.cursor() as cur:
                for name in names:
                    cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            for f in work.iterdir():
                f.unlink()
            work.rmdir()
