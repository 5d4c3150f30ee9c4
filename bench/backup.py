"""Benchmark: Lockplane's backup create / restore / validate next to plain pg_dump/pg_restore.

Creates a database ``lp_bench_backup_<pid>`` of about ``--size`` MB (three tables made
with generate_series: a wide one with text and jsonb, a narrow one, one with bytea),
then with the same ``--jobs N``, in ``--rounds`` rounds (2 by default; plain and
Lockplane swap order every round, and every timed step starts after a CHECKPOINT, so
neither side inherits the other's warm cache or pending checkpoint):

  a. plain ``pg_dump -Fd -j N`` into a temporary directory;
  b. ``lockplane backup create`` (engine call: pg_dump -Fd -j N on an exported snapshot,
     count(*) of each table on the same snapshot in parallel, checksums read from the
     dump's gzip trailers, sha256 of files);
  c. plain ``CREATE DATABASE`` + ``pg_restore -j N`` (what an operator runs);
  d. ``lockplane backup restore`` into a new database (it creates it; sha256 of every
     file first);
  e. ``lockplane backup validate`` (restore into a temporary database, rows and CRC-32 of
     every table, schema hash): the measured RTO and the full check. The data is read
     once: Lockplane streams each table's data file into COPY FROM on N sessions
     (largest first) taking its CRC-32 on the way, pg_restore does the rest, and every
     table is counted beside pg_restore's post-data section; for comparison, (e')
     restores with pg_restore first and COPYs every table out again after (a second
     pass over the data, as validate did before).

Each figure is printed with the 1-minute load average at its start (the machine may be
shared). Target: (b) within 1.1x of (a), (d) and (e) within 1.1x of (c). On a shared
machine the ratios are given as medians of the rounds' ratios (each round's plain and
Lockplane runs are neighbours in time) next to the ratios of the sums.

Then, on a database of its own, restore-rows: one table of ``--restore-rows`` rows (100,000
by default) is backed up, a bad migration deletes them all, and ``lockplane backup merge``
(engine: ``open_merge`` + ``run``, skip on conflict) brings them back: restore into a
temporary database, COPY into a staging table, the diff, the checkpointed batches.
Target: under 60 s for 100,000 rows.

Usage: ``.venv/bin/python bench/backup.py [--size 1024] [--jobs 2] [--rounds 2]
[--server DSN] [--keep] [--restore-rows N] [--only-restore-rows]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from lockplane.backup import create_backup, open_storage, restore_backup, validate_backup
from lockplane.dialects.postgres.pgtools import conninfo_and_env, find_tool

ROWS_PER_MB = 5200  # ~200 bytes per row across the three tables, indexes included


def _restore_then_read_back(storage, backup_id: str, server: str, jobs: int) -> None:  # noqa: ANN001
    """What validate did before the read-back overlapped the restore: a temporary copy
    restored completely, then every table read back on ``jobs`` sessions."""
    from lockplane.backup import load_manifest
    from lockplane.backup.engine import engine_of

    manifest = load_manifest(storage, backup_id)
    engine = engine_of(manifest)
    with engine.restored_copy(storage, manifest, server, jobs=jobs,
                              report=lambda _m: None) as copy:
        engine.copy_stats(copy, jobs)


def _url(server: str, db: str) -> str:
    return server.rsplit("/", 1)[0] + "/" + db


def _admin(server: str) -> psycopg.Connection:
    return psycopg.connect(server, autocommit=True)


def _drop(server: str, *names: str) -> None:
    with _admin(server) as c:
        for n in names:
            c.execute(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)')


def generate(dsn: str, size_mb: int) -> None:
    rows = max(1000, size_mb * ROWS_PER_MB)
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("SET synchronous_commit = off")
        c.execute("""
            CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL,
                created timestamptz NOT NULL, balance numeric(12,2), note text, prefs jsonb);
            CREATE TABLE events (id bigint PRIMARY KEY, account bigint NOT NULL,
                kind smallint, at timestamptz, amount float8);
            CREATE INDEX events_account ON events (account);
            CREATE TABLE blobs (id int PRIMARY KEY, body bytea);
        """)
        c.execute("""INSERT INTO accounts SELECT g, 'user' || g || '@example.org',
                       timestamptz '2020-01-01' + g * interval '1 minute', g %% 100000 / 3.0,
                       repeat(md5(g::text), 2), jsonb_build_object('g', g, 'tz', 'UTC')
                     FROM generate_series(1, %s) g""", (rows // 3,))
        c.execute("""INSERT INTO events SELECT g, 1 + g %% %s, (g %% 7)::smallint,
                       timestamptz '2020-01-01' + g * interval '1 second', g / 11.0
                     FROM generate_series(1, %s) g""", (rows // 3, rows))
        c.execute("""INSERT INTO blobs SELECT g, decode(repeat(md5(g::text), 16), 'hex')
                     FROM generate_series(1, %s) g""", (rows // 20,))
        c.execute("VACUUM ANALYZE")
        size = c.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    print(f"database: {size / 2**20:,.0f} MB ({rows // 3 + rows + rows // 20:,} rows)")


def timed(label: str, fn) -> float:  # noqa: ANN001
    t = time.monotonic()
    fn()
    dt = time.monotonic() - t
    print(f"  {label:<50} {dt:8.2f} s", flush=True)
    return dt


def restore_rows(server: str, rows: int, jobs: int) -> float:
    """Back up one table of ``rows`` rows, delete them, merge them back; the seconds."""
    from lockplane.backup.extract import open_merge

    name = f"lp_bench_rows_{os.getpid()}"
    _drop(server, name)
    with _admin(server) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    dsn = _url(server, name)
    work = Path(tempfile.mkdtemp(prefix="lp-bench-rows-"))
    try:
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("""CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL,
                           created timestamptz NOT NULL, balance numeric(12,2), note text,
                           prefs jsonb)""")
            c.execute("""INSERT INTO accounts SELECT g, 'user' || g || '@example.org',
                           timestamptz '2020-01-01' + g * interval '1 minute', g %% 1000 / 3.0,
                           md5(g::text), jsonb_build_object('g', g)
                         FROM generate_series(1, %s) g""", (rows,))
        storage = open_storage(str(work / "store"))
        backup_id = create_backup(dsn, storage, jobs=jobs).id
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("DELETE FROM accounts")  # the bad migration
        print(f"restore-rows: {rows:,} rows of one table, all deleted since the backup")
        t0 = time.monotonic()
        with open_merge(storage, backup_id, dsn, "accounts", jobs=jobs) as rm:
            staged = time.monotonic()
            p = rm.preview
            result = rm.run()
        total = time.monotonic() - t0
        print(f"  restore + stage + diff                             {staged - t0:8.2f} s "
              f"({p.insert:,} to insert)")
        print(f"  merge ({result.batches} checkpointed batches)"
              f"{'':<{max(0, 23 - len(str(result.batches)))}}{result.seconds:8.2f} s")
        print(f"  restore-rows in all                                {total:8.2f} s "
              f"({result.inserted / total:,.0f} rows/s; target < 60 s)")
        with psycopg.connect(dsn) as c:
            back = c.execute("SELECT count(*) FROM accounts").fetchone()[0]  # type: ignore[index]
        assert back == rows, (back, rows)
        return total
    finally:
        shutil.rmtree(work, ignore_errors=True)
        _drop(server, name)


def _checkpoint(server: str) -> None:
    """Start each timed step from the same place: dirty buffers written, WAL recycled (a
    restore that follows another would otherwise pay for its predecessor's checkpoint)."""
    with _admin(server) as c:
        c.execute("CHECKPOINT")


def _load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1024, help="approximate database size in MB")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2,
                    help="rounds of each measurement; the order of plain and Lockplane "
                         "alternates between rounds (cache and checkpoint effects even out)")
    ap.add_argument("--server", default=os.environ.get(
        "LOCKPLANE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"))
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--restore-rows", type=int, default=100_000,
                    help="rows of the restore-rows run (0: skip it)")
    ap.add_argument("--only-restore-rows", action="store_true")
    args = ap.parse_args()
    if args.only_restore_rows:
        restore_rows(args.server, args.restore_rows, args.jobs)
        return
    n = args.jobs
    base = f"lp_bench_backup_{os.getpid()}"
    src = _url(args.server, base)
    dbs = [base, base + "_plain", base + "_lp"]
    _drop(args.server, *dbs)
    with _admin(args.server) as c:
        c.execute(f'CREATE DATABASE "{base}"')
        version = c.info.server_version
    work = Path(tempfile.mkdtemp(prefix="lp-bench-backup-"))
    try:
        t = time.monotonic()
        generate(src, args.size)
        print(f"generated in {time.monotonic() - t:.0f} s; jobs = {n}; rounds = {args.rounds}")
        pg_dump, pg_restore = find_tool("pg_dump", version), find_tool("pg_restore", version)
        conninfo, env = conninfo_and_env(src)
        storage = open_storage(str(work / "store"))
        out: dict[str, list[float]] = {k: [] for k in
                                       ("dump", "create", "restore", "lp_restore", "validate",
                                        "validate_serial")}
        plain_db, lp_db = base + "_plain", base + "_lp"
        plain_target, _ = conninfo_and_env(_url(args.server, plain_db))

        def step(key: str, label: str, fn) -> None:  # noqa: ANN001
            _checkpoint(args.server)
            load = _load()
            before = os.times()
            out[key].append(timed(f"{label} ({load})", fn))
            after = os.times()
            # this process and its tools (pg_dump, pg_restore, psql); not the server's
            cpu = sum(getattr(after, f) - getattr(before, f)
                      for f in ("user", "system", "children_user", "children_system"))
            print(f"  {'':<50} client CPU {cpu:6.2f} s")

        def plain_restore() -> None:  # what an operator types: createdb, then pg_restore
            with _admin(args.server) as c:
                c.execute(f'CREATE DATABASE "{plain_db}" TEMPLATE template0')
            subprocess.run([pg_restore.path, "-j", str(n), "--exit-on-error", "-d",
                            plain_target, str(work / "plain")], env=env, check=True)

        holder: dict[str, str] = {}
        report: dict[str, object] = {}
        for r in range(args.rounds):
            print(f"round {r + 1}")
            holder.clear()
            report.clear()
            shutil.rmtree(work / "plain", ignore_errors=True)
            dumps = [("dump", f"plain pg_dump -Fd -j {n}", lambda: subprocess.run(
                        [pg_dump.path, "-Fd", "-j", str(n), "-f", str(work / "plain"), "-d",
                         conninfo], env=env, check=True)),
                     ("create", "lockplane backup create", lambda: holder.setdefault(
                        "id", create_backup(src, storage, jobs=n).id))]
            restores = [("restore", f"plain createdb + pg_restore -j {n}", plain_restore),
                        ("lp_restore", "lockplane backup restore (creates the database)",
                         lambda: restore_backup(storage, holder["id"],
                                                _url(args.server, lp_db), jobs=n))]
            if r % 2:
                dumps.reverse()
                restores.reverse()
            for key, label, fn in dumps:
                step(key, label, fn)
            _drop(args.server, plain_db, lp_db)
            for key, label, fn in restores:
                step(key, label, fn)
            _drop(args.server, plain_db, lp_db)
            step("validate", "lockplane backup validate (restore + checks)",
                 lambda: report.setdefault("r", validate_backup(
                     storage, holder["id"], server_dsn=src, jobs=n)))
            step("validate_serial", "validate's work, restore then read back (before)",
                 lambda: _restore_then_read_back(storage, holder["id"], src, n))
            v = report["r"]
            print(f"  validate: {'passed' if v.ok else 'FAILED'}, "  # type: ignore[attr-defined]
                  f"restore part {v.restore_s:.2f} s, RTO {v.rto_s:.2f} s")  # type: ignore[attr-defined]
        size = sum(p.stat().st_size for p in (work / "plain").rglob("*") if p.is_file())
        total = {k: sum(v) for k, v in out.items()}
        print(f"dump size: {size / 2**20:,.0f} MB")
        print(f"ratios over {args.rounds} round(s): create/pg_dump "
              f"{total['create'] / total['dump']:.2f}x, restore/(createdb + pg_restore) "
              f"{total['lp_restore'] / total['restore']:.2f}x, validate/(createdb + "
              f"pg_restore) {total['validate'] / total['restore']:.2f}x (restore then read "
              f"back: {total['validate_serial'] / total['restore']:.2f}x)")
        ratios: dict[str, list[float]] = {"create": [], "restore": [], "validate": []}
        for r in range(args.rounds):
            ratios["create"].append(out["create"][r] / out["dump"][r])
            ratios["restore"].append(out["lp_restore"][r] / out["restore"][r])
            ratios["validate"].append(out["validate"][r] / out["restore"][r])
            print(f"  round {r + 1}: create {ratios['create'][-1]:.2f}x, "
                  f"restore {ratios['restore'][-1]:.2f}x, "
                  f"validate {ratios['validate'][-1]:.2f}x")
        med = {k: statistics.median(v) for k, v in out.items()}
        print(f"medians over {args.rounds} round(s): create {med['create']:.2f} s vs pg_dump "
              f"{med['dump']:.2f} s ({statistics.median(ratios['create']):.2f}x), restore "
              f"{med['lp_restore']:.2f} s vs createdb + pg_restore {med['restore']:.2f} s "
              f"({statistics.median(ratios['restore']):.2f}x), validate {med['validate']:.2f} s "
              f"vs restore {med['restore']:.2f} s "
              f"({statistics.median(ratios['validate']):.2f}x); target 1.1x")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not args.keep:
            _drop(args.server, *dbs)
    if args.restore_rows:
        restore_rows(args.server, args.restore_rows, args.jobs)


if __name__ == "__main__":
    main()
