"""What a column's new type costs with a CHECK over it: one pass over the table, or two.

```
.venv/bin/python bench/retype_checks.py [--rows 1000000] [--repeat 3] [--keep]
```

Builds ``t`` (``--rows`` rows: int key, int ``a`` with ``CHECK (a > 0)``, text ``b``) in a
scratch database on ``--server`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``
or ``$LOCKPLANE_BENCH_SERVER``), plans ``a int -> bigint`` with Lockplane, applies the
plan's steps on the table (timing each, the table reset between runs by the inverse
steps) and prints the time of the plan's statements next to the form plans had before
(issue 16): the CHECK dropped in its own step, the type change, the CHECK added NOT VALID,
then VALIDATE (a second full scan, under SHARE UPDATE EXCLUSIVE). Also prints how many
steps each plan has and which of them scan the table.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402

from lockplane.dialects import connect  # noqa: E402
from lockplane.plan import build_plan  # noqa: E402

OLD_FORM = [
    'ALTER TABLE "public"."t" DROP CONSTRAINT "a_pos"',
    'ALTER TABLE "public"."t" ALTER COLUMN "a" TYPE bigint USING "a"::bigint',
    'ALTER TABLE "public"."t" ADD CONSTRAINT "a_pos" CHECK ((a > 0)) NOT VALID',
    'ALTER TABLE "public"."t" VALIDATE CONSTRAINT "a_pos"',
]
BACK = 'ALTER TABLE "public"."t" ALTER COLUMN "a" TYPE integer USING "a"::integer'


def _run(dsn: str, statements: list[str]) -> float:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
        start = time.perf_counter()
        for q in statements:
            conn.execute(q)  # type: ignore[arg-type]
        return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--server", default=os.environ.get(
        "LOCKPLANE_BENCH_SERVER", "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = ap.parse_args()
    names = [f"lp_bench_{os.getpid()}_{x}" for x in ("a", "b")]
    with psycopg.connect(args.server, autocommit=True) as admin:
        for n in names:
            admin.execute(f'CREATE DATABASE "{n}"')  # type: ignore[arg-type]
    base = args.server.rsplit("/", 1)[0]
    a_dsn, b_dsn = (f"{base}/{n}" for n in names)
    ddl = ("CREATE TABLE t (id int PRIMARY KEY, a {t} CONSTRAINT a_pos CHECK (a > 0), b text);"
           "CREATE VIEW v_b AS SELECT id, b FROM t;")
    try:
        with psycopg.connect(a_dsn, autocommit=True) as conn:
            conn.execute(ddl.format(t="int"))  # type: ignore[arg-type]
            conn.execute("INSERT INTO t SELECT i, i, 'x' || i FROM generate_series(1, %s) i",
                         (args.rows,))
            conn.execute("VACUUM ANALYZE t")
        with psycopg.connect(b_dsn, autocommit=True) as conn:
            conn.execute(ddl.format(t="bigint"))  # type: ignore[arg-type]
        with connect(a_dsn) as db:
            before = db.introspect()
        with connect(b_dsn) as db:
            after = db.introspect()
        plan = build_plan(before, after)
        print(f"plan: {len(plan.steps)} step(s)")
        for s in plan.steps:
            scans = s.lock is not None and (s.lock.scans_table or s.lock.rewrites_table)
            print(f"  {s.description}  [{s.lock.mode if s.lock else '-'}"
                  f"{', scans' if scans else ''}]")
        new_form = [q for s in plan.steps for q in s.sql if q.startswith("ALTER TABLE")]
        print("before issue 16: 4 steps (drop CHECK, type, add CHECK NOT VALID, VALIDATE: "
              "2 scans)")
        new_t, old_t = [], []
        undo = [q for s in reversed(plan.steps) for q in (s.rollback.sql if s.rollback else [])
                if q.startswith("ALTER TABLE")]
        for _ in range(args.repeat):
            new_t.append(_run(a_dsn, new_form))
            _run(a_dsn, undo)
            old_t.append(_run(a_dsn, OLD_FORM))
            _run(a_dsn, [BACK])
        print(f"rows: {args.rows}")
        print(f"plan's statements (one ALTER):      median {median(new_t):.2f} s  "
              f"(runs: {', '.join(f'{x:.2f}' for x in new_t)})")
        print(f"before (ALTER + NOT VALID+VALIDATE): median {median(old_t):.2f} s  "
              f"(runs: {', '.join(f'{x:.2f}' for x in old_t)})")
    finally:
        if not args.keep:
            with psycopg.connect(args.server, autocommit=True) as admin:
                for n in names:
                    admin.execute(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)')  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
