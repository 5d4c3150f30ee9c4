"""How close ``plan --analyze-locks`` estimates come to what the target then measures.

```
.venv/bin/python bench/lock_estimates.py [--rows 200000] [--sample-rows 10000]
                                         [--repeat 1] [--keep]
```

Builds ``items`` (``--rows`` rows: bigint key, integer, text, timestamptz) and a child
table ``item_events`` (two rows per item, a foreign key to ``items``) in a scratch
database on ``--server``; then, for each of two changes, plans it, runs
``lockstats.analyze_locks`` on a sample (the estimate), applies the same steps on the
target itself measuring time and WAL the same way (insert LSN before and after), and
prints estimate / actual for duration and WAL:

- ``index``: ``CREATE INDEX`` on ``items (label)`` (the plain form, one statement);
- ``index-cc``: the same, lock-safe (``CREATE INDEX CONCURRENTLY``);
- ``volatile-safe``: ``ADD COLUMN score double precision DEFAULT random()``, lock-safe
  (add, set the default, backfill in batches);
- ``volatile``: the same, plain (one statement that rewrites the table).

``--repeat N`` runs the whole comparison N times (a busy machine's noise shows in one run)
and ends with each change's median and range of the ratios.

A CHECKPOINT runs before each measurement on the target, so it pays the full-page images
of pages first touched after one, as a production table would. The target is a real
table on the same server, so "actual" is what an apply would have done. On a busy
machine one run of a step is noisy either way: lockstats scales the fastest of a sampled
transactional step's runs (two of them rolled back), and "fastest" is the same on the
target (its first ratio is against the single run an apply would see).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from statistics import median

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._load import DEFAULT_SERVER, create_database, drop_database, to_url  # noqa: E402
from lockplane.dialects import get_dialect  # noqa: E402
from lockplane.lockstats import _own_wal, _trial_runs, _writes_rows, analyze_locks  # noqa: E402
from lockplane.plan import Step, build_plan, rollback_plan  # noqa: E402

SETUP = """
CREATE TABLE items (id bigint PRIMARY KEY, qty integer NOT NULL, label text NOT NULL,
                    created timestamptz NOT NULL DEFAULT now());
CREATE TABLE item_events (id bigint PRIMARY KEY,
                          item_id bigint NOT NULL REFERENCES items (id), kind text);
INSERT INTO items SELECT g, g % 1000, md5(g::text) || repeat('x', g % 40),
                         now() - make_interval(secs => g)
  FROM generate_series(1, %(rows)s) g;
INSERT INTO item_events SELECT g, (g + 1) / 2, 'k' || (g % 7)
  FROM generate_series(1, 2 * %(rows)s) g;
"""

CHANGES = {
    "index": ("CREATE INDEX items_label ON items (label)", False),
    "index-cc": ("CREATE INDEX items_label ON items (label)", True),
    "volatile-safe": ("ALTER TABLE items ADD COLUMN score double precision DEFAULT random()", True),
    "volatile": ("ALTER TABLE items ADD COLUMN score double precision DEFAULT random()",
                 False),
}


def _desired(dsn: str, ddl: str) -> object:
    """The live schema with ``ddl`` applied (done on a copy, then introspected)."""
    d = get_dialect("postgres")
    with d.scratch(dsn) as scratch:
        from lockplane.execute import materialize

        live = d.connect(dsn)
        try:
            schema = live.introspect()
        finally:
            live.close()
        materialize(scratch, schema)
        scratch.execute(ddl)
        return schema, scratch.introspect()


def _measure_on_target(dsn: str, step: Step, trials: bool = False) -> tuple[float, float, int]:
    """The step on the target: its duration, the fastest of its runs (``trials``: also
    run rolled back first, as lockstats does on the sample) and its WAL."""
    statements, transactional = step.sql, step.transactional
    with psycopg.connect(dsn, autocommit=True) as conn:
        tried = _trial_runs(conn, step) if trials and transactional \
            and not _writes_rows(step) else []
        conn.execute("CHECKPOINT")
        lsn = conn.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0]
        t0 = time.perf_counter()
        if transactional:
            with conn.transaction():
                for s in statements:
                    conn.execute(s)
        else:
            for s in statements:
                conn.execute(s)
        ms = (time.perf_counter() - t0) * 1000
        end = conn.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0]
        # This database's records only, as lockstats counts them on the shadow: the
        # server's other databases write too.
        oid = conn.execute("SELECT oid FROM pg_database WHERE datname = current_database()"
                           ).fetchone()[0]
        wal = _own_wal(conn, lsn, end, oid)
        if wal is None:  # not readable: the server-wide difference, other databases too
            why = "not flushed in time"
            try:
                conn.execute("SELECT count(*) FROM pg_get_wal_records_info(%s, %s)", (lsn, end))
            except psycopg.Error as exc:
                why = (str(exc).strip().splitlines() or [""])[0]
            print(f"    (server-wide WAL for: {step.description[:50]}: {why})")
            wal = conn.execute("SELECT pg_wal_lsn_diff(%s, %s)", (end, lsn)).fetchone()[0]
    return ms, min([ms, *tried]), int(wal)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--sample-rows", type=int, default=10_000)
    ap.add_argument("--server", default=DEFAULT_SERVER)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    name = f"lp_bench_est_{os.getpid()}"
    dsn = to_url(create_database(args.server, name))
    print(f"rows {args.rows:,}, sample {args.sample_rows:,} per table")
    print(f"{'change':<14} {'est ms':>9} {'act ms':>9} {'ratio':>6} {'fastest':>9} "
          f"{'ratio':>6} {'est WAL':>12} {'act WAL':>12} {'ratio':>6}")
    worst = worst_fast = 0.0
    ratios: dict[str, list[tuple[float, float, float]]] = {label: [] for label in CHANGES}
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(SETUP.replace("%(rows)s", str(int(args.rows))))
            conn.execute("VACUUM ANALYZE")
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
        for label, (ddl, lock_safe) in [c for _ in range(args.repeat)
                                        for c in CHANGES.items()]:
            before, after = _desired(dsn, ddl)
            plan = build_plan(before, after, lock_safe=lock_safe, lock_timeout_ms=None)
            analysis = analyze_locks(plan, dsn, None, sample_rows=args.sample_rows)
            events = analysis.tables["public.item_events"]
            if label == "index" and not ratios[label]:
                print(f"  sample: item_events kept {events.shadow:,} of {events.target:,} "
                      "rows (children of the sampled items)")
            est_ms = sum(m.estimated_duration_ms or m.duration_ms or 0 for m in analysis.steps)
            est_wal = sum(m.estimated_wal_bytes or m.wal_bytes or 0 for m in analysis.steps)
            act_ms = act_fast = act_wal = 0.0
            for step, m in zip(plan.steps, analysis.steps, strict=True):
                ms, fast, wal = _measure_on_target(dsn, step, trials=m.fastest_ms is not None)
                if os.environ.get("VERBOSE"):
                    print("   ", step.description[:50], m.duration_ms, m.fastest_ms,
                          m.fixed_duration_ms, m.estimated_duration_ms, ms, fast, m.wal_bytes,
                          m.fixed_wal_bytes, m.page_images_missing, m.estimated_wal_bytes, wal,
                          m.scale, m.growth, m.rows_touched)
                act_ms += ms
                act_fast += fast
                act_wal += wal
            # Back to the starting point for the next change, vacuumed: autovacuum
            # working off a backfill's dead rows during the next measurement would add
            # its WAL to that step's.
            for step in rollback_plan(plan).steps:
                _measure_on_target(dsn, step)
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE")
            r_ms, r_fast = est_ms / act_ms, est_ms / act_fast
            r_wal = est_wal / max(act_wal, 1)
            worst = max(worst, r_ms, 1 / r_ms, r_wal, 1 / r_wal)
            worst_fast = max(worst_fast, r_fast, 1 / r_fast, r_wal, 1 / r_wal)
            ratios[label].append((r_ms, r_fast, r_wal))
            print(f"{label:<14} {est_ms:>9.1f} {act_ms:>9.1f} {r_ms:>6.2f} {act_fast:>9.1f} "
                  f"{r_fast:>6.2f} {est_wal:>12,.0f} {act_wal:>12,.0f} {r_wal:>6.2f}",
                  flush=True)
        if args.repeat > 1:
            print(f"over {args.repeat} runs: estimate / actual, median [min, max]")
            for label, rs in ratios.items():
                cols = []
                for i, what in enumerate(("duration", "vs fastest", "WAL")):
                    r = sorted(x[i] for x in rs)
                    cols.append(f"{what} {median(r):.2f} [{r[0]:.2f}, {r[-1]:.2f}]")
                print(f"{label:<14} " + "   ".join(cols))
        print(f"worst factor (either way): {worst:.2f}; against the fastest of the target's "
              f"runs {worst_fast:.2f} (target: within 3)")
    finally:
        if not args.keep:
            drop_database(args.server, name)


if __name__ == "__main__":
    main()
