"""Shared pieces of the PostgreSQL benchmarks (backfill.py, lock_stall.py).

- DSN helpers: point a server DSN at another database, turn it into the URL the CLI takes;
- scratch databases: create (optionally from a template) and drop;
- ``Load``: client threads running short statements in autocommit until stopped, recording
  every statement's start and latency, so a run can ask what the clients saw while a
  migration or a backfill lasted;
- ``percentile``.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import psycopg
from psycopg import sql as pgsql

DEFAULT_SERVER = os.environ.get("LOCKPLANE_BENCH_SERVER",
                                "postgresql://postgres@127.0.0.1:5432/postgres")
TARGET_WAIT_MS = 250.0  # the client-latency target every PostgreSQL benchmark uses

# One client operation: (kind, statement, parameters). ``kind`` labels the statement in
# the per-kind figures ("read", "update", "insert" ...).
Op = tuple[str, pgsql.Composable, tuple[object, ...]]
# worker number -> that worker's "next operation" function (it may keep its own state,
# e.g. a random generator seeded with the worker number, or a counter for fresh keys).
Workload = Callable[[int], Callable[[], Op]]


def with_db(dsn: str, name: str) -> str:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(dsn)
    params["dbname"] = name
    return make_conninfo(**params)


def to_url(dsn: str) -> str:
    """The CLI wants a URL."""
    from psycopg.conninfo import conninfo_to_dict

    p = conninfo_to_dict(dsn)
    auth = p.get("user", "postgres") + (f":{p['password']}" if p.get("password") else "")
    return (f"postgresql://{auth}@{p.get('host', '127.0.0.1')}:{p.get('port', 5432)}/"
            f"{p['dbname']}")


def create_database(server: str, name: str, template: str | None = None) -> str:
    """Create ``name`` on ``server`` (a copy of ``template`` if given); return its DSN."""
    query = pgsql.SQL("CREATE DATABASE {}").format(pgsql.Identifier(name))
    if template:
        query = pgsql.SQL("{} TEMPLATE {}").format(query, pgsql.Identifier(template))
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(query)
    return with_db(server, name)


def drop_database(server: str, name: str) -> None:
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            pgsql.Identifier(name)))


def checkpoint(dsn: str) -> None:
    """Start a run with clean buffers, so no run pays for the previous one's dirty pages."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


class Sample(NamedTuple):
    start: float  # time.perf_counter() when the statement was sent
    seconds: float
    kind: str


@dataclass
class Load:
    """``clients`` threads, each on its own autocommit connection, running the operations
    ``workload`` gives them with ``pause_s`` between two, until the ``with`` block ends."""

    dsn: str
    workload: Workload
    clients: int
    pause_s: float = 0.004
    warmup_s: float = 0.5
    samples: list[Sample] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)  # "kind: first line" -> count

    def __post_init__(self) -> None:
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._loop, args=(i,), daemon=True)
                        for i in range(self.clients)]

    def _loop(self, worker: int) -> None:
        next_op = self.workload(worker)
        mine: list[Sample] = []
        failed: Counter[str] = Counter()
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stop.is_set():
                kind, stmt, params = next_op()
                t0 = time.perf_counter()
                try:
                    conn.execute(stmt, params)
                except psycopg.Error as exc:
                    # Recorded, not raised: a client error is a result (e.g. a statement
                    # that hit a constraint mid-change), and its latency still counts.
                    failed[f"{kind}: {str(exc).splitlines()[0] if str(exc) else exc!r}"] += 1
                mine.append(Sample(t0, time.perf_counter() - t0, kind))
                time.sleep(self.pause_s)
        # Merged once at the end: no lock taken on the measured path.
        with self.lock:
            self.samples += mine
            self.errors.update(failed)

    def __enter__(self) -> Load:
        for th in self.threads:
            th.start()
        time.sleep(self.warmup_s)  # connections up, statements prepared
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.3)  # the window's last statements finish inside the load
        self.stop.set()
        for th in self.threads:
            th.join()

    def overlapping(self, t0: float, t1: float, kind: str | None = None) -> list[Sample]:
        """The statements that ran, at least partly, within [t0, t1]."""
        return [s for s in self.samples if s.start <= t1 and s.start + s.seconds >= t0
                and (kind is None or s.kind == kind)]

    def during(self, t0: float, t1: float, kind: str | None = None) -> list[float]:
        """Latencies (ms) of the statements that overlapped [t0, t1]."""
        return [s.seconds * 1000 for s in self.overlapping(t0, t1, kind)]

    def last_end(self) -> float:
        return max((s.start + s.seconds for s in self.samples), default=0.0)


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0..100); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]
