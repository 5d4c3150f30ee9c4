"""What apply's check of a plan's functions costs (execute.check_privileged_calls).

```
.venv/bin/python bench/privileged_check.py [--tables 16]
```

Builds a target of ``--tables`` tables in a scratch database on ``--server`` (default
``postgresql://postgres@127.0.0.1:5432/postgres`` or ``$LOCKPLANE_BENCH_SERVER``), each
with an index over a SQL function, a CHECK and a PL/pgSQL trigger; the desired schema adds
a column with a default that calls a PL/pgSQL function to each table and gives the index
function a new body, so that every step has functions to read. Plans it with Lockplane
and prints the time of the check (once, as apply runs it in a new process: what it
parses is remembered for the rest of the process), and the plan's size.

Figures (2 cores, PostgreSQL 15, 2026-12-07): 16 tables, 18 steps: 208 ms -> 117 ms;
64 tables, 66 steps: 1,122 ms -> 243 ms (the plan's SQL parsed once, not once a step).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402

from lockplane.dialects import connect  # noqa: E402
from lockplane.execute import ApplyOptions, check_privileged_calls  # noqa: E402
from lockplane.plan import load_plan  # noqa: E402

COMMON = """
CREATE FUNCTION twice(int) RETURNS int IMMUTABLE LANGUAGE sql AS $$ SELECT $1 * 2 $$;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql
    AS $$ BEGIN NEW.seen := coalesce(NEW.seen, false); RETURN NEW; END $$;
"""
TABLE = """
CREATE TABLE t{i} (id int PRIMARY KEY, a int CHECK (a > 0), seen boolean{extra});
CREATE INDEX t{i}_twice ON t{i} (twice(id));
CREATE TRIGGER t{i}_touch BEFORE UPDATE ON t{i} FOR EACH ROW EXECUTE FUNCTION touch();
"""
DESIRED = """
CREATE FUNCTION start_value() RETURNS int IMMUTABLE LANGUAGE plpgsql
    AS $$ DECLARE x int; BEGIN x := greatest(twice(1), 0) + 1; RETURN x; END $$;
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tables", type=int, default=16)
    ap.add_argument("--server", default=os.environ.get(
        "LOCKPLANE_BENCH_SERVER", "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = ap.parse_args()
    name = f"lp_bench_{os.getpid()}"
    dsn = args.server.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(args.server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(COMMON + "".join(TABLE.format(i=i, extra="")
                                          for i in range(args.tables)))
        with tempfile.TemporaryDirectory() as tmp:
            schema = Path(tmp) / "schema.sql"
            schema.write_text(COMMON.replace("$1 * 2", "$1 + $1") + DESIRED + "".join(
                TABLE.format(i=i, extra=", b int DEFAULT start_value()")
                for i in range(args.tables)))
            plan_file = Path(tmp) / "plan.json"
            subprocess.run([sys.executable, "-m", "lockplane", "plan", "--from", dsn,
                            "--to", str(schema), "-o", str(plan_file), "-q"], check=True)
            plan = load_plan(str(plan_file))
        db = connect(dsn)
        start = time.perf_counter()
        check_privileged_calls(db, plan, ApplyOptions(safety="permissive"))
        took = time.perf_counter() - start
        db.close()
        statements = sum(len(s.sql) for s in plan.steps)
        print(f"{len(plan.steps)} steps, {statements} statements: check {took * 1000:.0f} ms")
    finally:
        with psycopg.connect(args.server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
