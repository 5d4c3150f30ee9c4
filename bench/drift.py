"""Benchmark: ``lockplane drift check --all-environments`` against checking one by one.

Creates ``--environments`` PostgreSQL databases (``lp_drift_<pid>_<n>``) of ``--tables``
tables each (plan_large's seeded generator: ~8 columns a table, an index or two, most
with an FK), the first as a template for the rest; two of them then drift by hand (an
extra column, a dropped index). A lockplane.toml in a temporary directory names them,
all with the same desired schema (the same DDL as a .sql file, loaded in the sandbox).

Then, each in its own child process (the console script, as a user runs it), times:

  a. ``lockplane drift check --environment E`` for every E, one after another;
  b. ``lockplane drift check --all-environments``.

and prints the wall time of (b), the slowest and the sum of (a), and (b) / slowest (a)
against the target: under 2.

Usage: ``.venv/bin/python bench/drift.py [--environments 10] [--tables 500] [--repeat 1]``
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _load import DEFAULT_SERVER, create_database, drop_database, to_url, with_db  # noqa: E402
from plan_large import create_db, make_schema_a, render  # noqa: E402

LOCKPLANE = str(Path(sys.executable).with_name("lockplane"))


def _run(args: list[str], cwd: Path) -> tuple[float, int, str]:
    start = time.perf_counter()
    proc = subprocess.run([LOCKPLANE, *args], cwd=cwd, capture_output=True, text=True)
    return time.perf_counter() - start, proc.returncode, proc.stdout or proc.stderr


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--environments", type=int, default=10)
    ap.add_argument("--tables", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--server", default=DEFAULT_SERVER)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)

    ddl = render(make_schema_a(random.Random(args.seed), args.tables))
    names = [f"lp_drift_{os.getpid()}_{i}" for i in range(args.environments)]
    made: list[str] = []
    try:
        t0 = time.perf_counter()
        create_db(args.server, names[0], ddl)
        made.append(names[0])
        for name in names[1:]:
            create_database(args.server, name, template=names[0])
            made.append(name)
        import psycopg

        with psycopg.connect(with_db(args.server, names[1]), autocommit=True) as conn:
            conn.execute("ALTER TABLE t0003 ADD COLUMN emergency_fix_2024_01 text")
        with psycopg.connect(with_db(args.server, names[2]), autocommit=True) as conn:
            index = conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public' "
                                 "AND indexname NOT LIKE '%pkey' LIMIT 1").fetchone()
            if index:
                conn.execute(f'DROP INDEX "{index[0]}"')
        print(f"created {args.environments} databases of {args.tables} tables in "
              f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            (root / "schema.sql").write_text(ddl)
            (root / "lockplane.toml").write_text("".join(
                f'[environments.env{i}]\ndatabase_url = "{to_url(with_db(args.server, n))}"\n'
                f'schema_path = "schema.sql"\n\n' for i, n in enumerate(names)))
            env_names = [f"env{i}" for i in range(len(names))]
            runs = []
            for _ in range(args.repeat):
                singles = []
                for env in env_names:
                    seconds, code, out = _run(["drift", "check", "--environment", env],
                                              root)
                    assert code in (0, 4), f"{env}: exit {code}: {out}"
                    singles.append(seconds)
                seconds, code, out = _run(["drift", "check", "--all-environments",
                                           "--format", "json"], root)
                assert code == 4, f"--all-environments: exit {code}"
                report = json.loads(out)
                drifted = sorted(e["name"] for e in report["environments"]
                                 if e["status"] == "drift")
                runs.append((seconds, max(singles), sum(singles), drifted,
                             statistics.median(singles)))
        for i, (together, slowest, total, drifted, median) in enumerate(runs, 1):
            print(f"run {i}: --all-environments {together:.2f} s; one by one: slowest "
                  f"{slowest:.2f} s, median {median:.2f} s, sum {total:.2f} s; "
                  f"all/slowest = {together / slowest:.2f} (target < 2), all/median = "
                  f"{together / median:.2f}; drifted: {', '.join(drifted)}")
        best = min(r[0] / r[1] for r in runs)
        print(f"{args.environments} environments x {args.tables} tables: all/slowest single "
              f"{best:.2f} ({'meets' if best < 2 else 'misses'} the target of 2)")
        return 0
    finally:
        for name in made:
            drop_database(args.server, name)


if __name__ == "__main__":
    raise SystemExit(main())
