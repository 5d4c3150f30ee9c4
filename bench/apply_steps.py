"""Benchmark: what an apply spends reading the catalog between its steps.

Creates a template database (``lp_bench_apply_<pid>_tpl``) on ``--server`` with
``--tables`` tables (a bigint key, six columns, an index each), and a desired schema in
which ``--changes`` of them get a new column, a CHECK and an index. Two plans:

  one-group   ``lock_safe=False``: every step in one transaction
  lock-safe   the default plan: the columns and NOT VALID checks in one transaction, then
              each CHECK validated and each index built CONCURRENTLY, alone (a group
              per step: the apply records its progress after each)

Each plan is applied ``--repeat`` times to a fresh copy of the template (``CREATE
DATABASE ... TEMPLATE``), with ``skip_shadow`` (the shadow is another subject). For each
run the script counts the catalog reads (``Database.introspect``) the apply made and
their time, and the longest time one of its transactions stayed open (it holds the
locks of its DDL until it commits). It prints the medians.

Usage: ``.venv/bin/python bench/apply_steps.py [--tables 300] [--changes 10] [--repeat 3]``

To compare with another version of the engine, run it from outside the checkout with
``PYTHONPATH`` pointing at that version's tree (the script imports ``lockplane`` as
installed otherwise):
``cd /tmp && PYTHONPATH=/path/to/old /work/main/.venv/bin/python /work/main/bench/apply_steps.py``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _load import DEFAULT_SERVER, create_database, drop_database, to_url  # noqa: E402


def table_sql(i: int, changed: bool) -> str:
    extra = (",\n    note text CHECK (length(note) < 200),\n    score int" if changed else "")
    index = f"CREATE INDEX t{i}_score ON t{i} (score);\n" if changed else ""
    return (f"CREATE TABLE t{i} (\n    id bigint PRIMARY KEY,\n    a int NOT NULL DEFAULT 0,\n"
            f"    b text,\n    c timestamptz DEFAULT now(),\n    d numeric(12, 2),\n"
            f"    e boolean DEFAULT false,\n    f jsonb{extra}\n);\n"
            f"CREATE INDEX t{i}_a ON t{i} (a);\n{index}")


@dataclass
class Run:
    wall: float = 0.0
    reads: int = 0
    read_s: float = 0.0
    longest_tx: float = 0.0
    steps: int = 0
    groups: int = 0
    tx_spans: list[float] = field(default_factory=list)


@contextmanager
def instrumented(run: Run) -> Iterator[None]:
    """Count catalog reads and time transactions of the apply's connection."""
    from lockplane.dialects.postgres import PostgresDatabase

    real_introspect = PostgresDatabase.introspect
    real_transaction = PostgresDatabase.transaction

    def introspect(self: Any) -> Any:
        t = time.perf_counter()
        try:
            return real_introspect(self)
        finally:
            run.reads += 1
            run.read_s += time.perf_counter() - t

    @contextmanager
    def transaction(self: Any) -> Iterator[None]:
        t = time.perf_counter()
        with real_transaction(self):
            yield
        run.tx_spans.append(time.perf_counter() - t)

    PostgresDatabase.introspect = introspect  # type: ignore[method-assign]
    PostgresDatabase.transaction = transaction  # type: ignore[assignment,method-assign]
    try:
        yield
    finally:
        PostgresDatabase.introspect = real_introspect  # type: ignore[method-assign]
        PostgresDatabase.transaction = real_transaction  # type: ignore[method-assign]


def median(runs: list[Run], of: Callable[[Run], float]) -> float:
    return statistics.median(of(r) for r in runs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", default=DEFAULT_SERVER)
    ap.add_argument("--tables", type=int, default=300)
    ap.add_argument("--changes", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    import lockplane
    from lockplane.dialects import connect
    from lockplane.execute import ApplyOptions, apply_plan, group_steps
    from lockplane.plan import build_plan

    print(f"lockplane from {Path(lockplane.__file__).parent}")
    base = f"lp_bench_apply_{os.getpid()}"
    tpl, want = f"{base}_tpl", f"{base}_want"
    made = [tpl, want]
    try:
        tpl_dsn = to_url(create_database(args.server, tpl))
        want_dsn = to_url(create_database(args.server, want))
        with psycopg.connect(tpl_dsn, autocommit=True) as conn:
            conn.execute("".join(table_sql(i, False) for i in range(args.tables)))
        with psycopg.connect(want_dsn, autocommit=True) as conn:
            conn.execute("".join(table_sql(i, i < args.changes) for i in range(args.tables)))
        with connect(tpl_dsn) as db:
            before = db.introspect()
        with connect(want_dsn) as db:
            after = db.introspect()
        plans = {"one-group": build_plan(before, after, lock_safe=False),
                 "lock-safe": build_plan(before, after)}
        print(f"{args.tables} tables, {args.changes} changed; server {args.server}")
        print(f"{'plan':<10} {'steps':>5} {'groups':>6} {'apply s':>8} {'reads':>5} "
              f"{'read s':>7} {'longest tx s':>12}")
        for name, plan in plans.items():
            runs: list[Run] = []
            for i in range(args.repeat):
                copy = f"{base}_{name.replace('-', '_')}_{i}"
                made.append(copy)
                dsn = to_url(create_database(args.server, copy, template=tpl))
                run = Run(steps=len(plan.steps), groups=len(group_steps(plan.steps)))
                with instrumented(run):
                    t = time.perf_counter()
                    result = apply_plan(plan, dsn, ApplyOptions(safety="permissive",
                                                                skip_shadow=True))
                    run.wall = time.perf_counter() - t
                assert result.hash_after == plan.target_hash, result
                run.longest_tx = max(run.tx_spans, default=0.0)
                runs.append(run)
                drop_database(args.server, copy)
            print(f"{name:<10} {runs[0].steps:>5} {runs[0].groups:>6} "
                  f"{median(runs, lambda r: r.wall):>8.2f} "
                  f"{median(runs, lambda r: r.reads):>5.0f} "
                  f"{median(runs, lambda r: r.read_s):>7.2f} "
                  f"{median(runs, lambda r: r.longest_tx):>12.3f}")
    finally:
        for name in made:
            drop_database(args.server, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
