"""Resumable batched backfills on the real MariaDB: keyset batches over primary and
composite keys, the CLI end to end, options checked with sqlglot's MySQL grammar (exit 2,
one line, nothing written), --dry-run reading only, a SIGKILL mid-run resumed from the
checkpoint in _lockplane_backfills, and row lock waits (innodb_lock_wait_timeout)
retried."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import pymysql
import pytest

from lockplane.backfill import (
    KEY_PRIMARY,
    KEY_UNIQUE,
    BackfillOptions,
    backfill_status,
    make_spec,
    plan_backfill,
    run_backfill,
)
from lockplane.dialects.mysql import parse_dsn
from lockplane.errors import BadInput
from tests.cli_inprocess import lockplane

LOCKPLANE = [sys.executable, "-m", "lockplane"]
FAST = BackfillOptions(batch_size=100, adaptive=False, sample_rows=500)


def run_sql(dsn: str, *statements: str) -> None:
    with pymysql.connect(**parse_dsn(dsn).kwargs(), autocommit=True) as conn, \
            conn.cursor() as cur:
        for s in statements:
            cur.execute(s)


def rows(dsn: str, sql: str) -> list[tuple[Any, ...]]:
    with pymysql.connect(**parse_dsn(dsn).kwargs(), autocommit=True) as conn, \
            conn.cursor() as cur:
        cur.execute(sql)
        return list(cur.fetchall())


def has_state(dsn: str) -> bool:
    return bool(rows(dsn, "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
                          "DATABASE() AND TABLE_NAME = '_lockplane_backfills'"))


def test_cli_end_to_end_primary_key(mysql_dsn: str) -> None:
    run_sql(mysql_dsn,
            "CREATE TABLE acc (id bigint PRIMARY KEY, balance int NOT NULL, cents bigint, "
            "`we%ird col` varchar(30))",
            "INSERT INTO acc (id, balance) SELECT seq * 3, seq % 1000 FROM seq_1_to_3000")
    r = lockplane("backfill", "--target", mysql_dsn, "--table", "acc",
                  "--set", "cents = balance * 100 + id",
                  "--set", "`we%ird col` = CONCAT('n%', id)", "--where", "id % 2 = 0",
                  "--batch-size", "150", "--fixed-batch-size", "--auto-approve", "--json")
    assert r.code == 0, r.output
    assert "keyset on primary key (id)" in r.stderr
    assert "one transaction (innodb_lock_wait_timeout 1 s)" in r.stderr
    assert rows(mysql_dsn, "SELECT count(*), sum(cents = balance * 100 + id), "
                           "sum(`we%ird col` = CONCAT('n%', id)) FROM acc") == [(3000, 1500, 1500)]
    assert rows(mysql_dsn, "SELECT count(*) FROM acc WHERE id % 2 = 1 AND cents IS NOT NULL"
                ) == [(0,)]
    (status,) = backfill_status(mysql_dsn)
    assert (status.status, status.rows_scanned, status.rows_updated) == ("done", 3000, 1500)
    # Run again: already done, nothing rewritten.
    again = lockplane("backfill", "--target", mysql_dsn, "--table", "acc",
                      "--set", "cents = balance * 100 + id",
                      "--set", "`we%ird col` = CONCAT('n%', id)", "--where", "id % 2 = 0",
                      "--auto-approve")
    assert again.code == 0 and "Already done" in again.stderr, again.output


def test_composite_and_unique_keys(mysql_dsn: str) -> None:
    run_sql(mysql_dsn,
            "CREATE TABLE ev (tenant varchar(10) NOT NULL, at datetime(6) NOT NULL, "
            "n int NOT NULL, label varchar(40), PRIMARY KEY (tenant, at, n))",
            "INSERT INTO ev (tenant, at, n) SELECT CONCAT('t', seq % 7), "
            "'2024-01-01' + INTERVAL (seq % 50) SECOND, seq FROM seq_1_to_2000",
            "CREATE TABLE nopk (code char(8) NOT NULL, v int, w int, UNIQUE KEY u (code))",
            "INSERT INTO nopk (code, v) SELECT LPAD(seq, 8, '0'), seq FROM seq_1_to_700",
            "CREATE TABLE loose (v int, w int, UNIQUE KEY u (v))")
    plan = plan_backfill(mysql_dsn, make_spec("ev", ["label = CONCAT(tenant, '/', n)"],
                                              dialect="mysql"), FAST)
    assert plan.resolved.key_kind == KEY_PRIMARY
    assert plan.resolved.key_columns == ["tenant", "at", "n"]
    result = run_backfill(mysql_dsn, plan, BackfillOptions(batch_size=97, adaptive=False,
                                                           chunks=3))
    assert result.status == "done" and result.rows_scanned == 2000
    assert rows(mysql_dsn, "SELECT count(*) FROM ev WHERE label = CONCAT(tenant, '/', n)"
                ) == [(2000,)]
    plan = plan_backfill(mysql_dsn, make_spec("nopk", ["w = v * 2"], dialect="mysql"), FAST)
    assert (plan.resolved.key_kind, plan.resolved.key_name) == (KEY_UNIQUE, "u")
    assert run_backfill(mysql_dsn, plan, FAST).rows_updated == 700
    assert rows(mysql_dsn, "SELECT count(*) FROM nopk WHERE w = v * 2") == [(700,)]
    with pytest.raises(BadInput, match="no primary key and no unique key on NOT NULL"):
        plan_backfill(mysql_dsn, make_spec("loose", ["w = 1"], dialect="mysql"), FAST)
    with pytest.raises(BadInput, match="part of the key"):
        plan_backfill(mysql_dsn, make_spec("ev", ["n = 1"], dialect="mysql"), FAST)


@pytest.mark.parametrize(("option", "needle"), [
    (["--set", "v = 1 # a comment"], "comments are not allowed"),
    (["--set", "v = 1", "--where", "id > 5 /* */ OR 1 = 1"], "comments are not allowed"),
    (["--set", "v = 1", "--where", "id > 5 /*!50000 OR 1 = 1 */"], "comments are not allowed"),
    (["--set", "v = 1", "--where", "id > 5 -- widen\n"], "comments are not allowed"),
    (["--set", "v = 1; DROP TABLE t"], "not statements"),
    (["--set", "v = 1) OR (1 = 1"], "unbalanced"),
    (["--set", "v = @x"], "user variable"),
    (["--set", "v = (@x := 5)"], "user variable"),
    (["--set", "v = @@version"], "system variable"),
    (["--set", "v = SLEEP(1)"], "SLEEP()"),
    (["--set", "v = GET_LOCK('a', 1)"], "GET_LOCK()"),
    (["--set", "v = LENGTH(LOAD_FILE('/etc/passwd'))"], "LOAD_FILE()"),
    (["--set", "v = BENCHMARK(1000000, MD5('a'))"], "BENCHMARK()"),
    (["--set", "v = LAST_INSERT_ID(7)"], "LAST_INSERT_ID()"),
    (["--set", "v = (SELECT w FROM t LIMIT 1 FOR UPDATE)"], "FOR UPDATE"),
    (["--set", "v = \"text\""], "double-quoted"),
    (["--set", "v = DEFAULT"], "DEFAULT"),
    (["--set", "v = ?"], "placeholder"),
    (["--set", "v = 1, 2"], "column = expression"),
    (["--set", "nope = 1"], "unknown column 'nope'"),
    (["--set", "v = nope + 1"], "Unknown column 'nope'"),
    (["--set", "id = 1"], "part of the key"),
    (["--set", "v = w"], "for row id=77: Column 'v' cannot be null"),
])
def test_bad_options_exit_2_nothing_written(mysql_dsn: str, option: list[str],
                                            needle: str) -> None:
    run_sql(mysql_dsn, "CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL DEFAULT 0, w int)",
            "INSERT INTO t (id, w) SELECT seq, IF(seq = 77, NULL, seq) FROM seq_1_to_200")
    before = rows(mysql_dsn, "SELECT * FROM t ORDER BY id")
    r = lockplane("backfill", "--target", mysql_dsn, "--table", "t", *option, "--auto-approve")
    assert r.code == 2, r.output
    assert "Traceback" not in r.output and r.stderr.count("error:") == 1, r.stderr
    assert needle in " ".join(r.stderr.split()), r.stderr
    assert rows(mysql_dsn, "SELECT * FROM t ORDER BY id") == before
    assert not has_state(mysql_dsn)


def test_good_mysql_expressions(mysql_dsn: str) -> None:
    run_sql(mysql_dsn, "CREATE TABLE t (id int PRIMARY KEY, a varchar(20), b varchar(20), "
                       "n int, s varchar(60))",
            "INSERT INTO t (id, a, b, n) SELECT seq, CONCAT('a', seq), "
            "IF(seq % 3 = 0, NULL, 'x'), seq FROM seq_1_to_300")
    spec = make_spec("`t`", ["`S` = CONCAT_WS(' ', a, b, 'it\\'s', n DIV 7, IF(n > 5, 'big', "
                             "'small'))"], "b IS NULL OR a LIKE 'a1%'", dialect="mysql")
    result = run_backfill(mysql_dsn, plan_backfill(mysql_dsn, spec, FAST), FAST)
    assert result.status == "done"
    assert rows(mysql_dsn, "SELECT s FROM t WHERE id = 3") == [("a3 it's 0 small",)]
    assert rows(mysql_dsn, "SELECT count(*), sum(b IS NULL OR a LIKE 'a1%') FROM t "
                           "WHERE s IS NOT NULL") == [(175, 175)]


def test_dry_run_reads_only(mysql_dsn: str) -> None:
    run_sql(mysql_dsn, "CREATE TABLE t (id int PRIMARY KEY, v int)",
            "INSERT INTO t (id) SELECT seq FROM seq_1_to_500")
    r = lockplane("backfill", "--target", mysql_dsn, "--table", "t", "--set", "v = id * 2",
                  "--dry-run")
    assert r.code == 0, r.output
    assert "Dry run" in r.stderr and "500" in r.stderr
    assert rows(mysql_dsn, "SELECT count(v) FROM t") == [(0,)]
    assert not has_state(mysql_dsn)


@pytest.mark.long
def test_sigkill_resume(mysql_dsn: str) -> None:
    run_sql(mysql_dsn,
            "CREATE TABLE accounts (id bigint PRIMARY KEY, balance int NOT NULL, "
            "cents bigint, updates int NOT NULL DEFAULT 0)",
            "CREATE TRIGGER counter BEFORE UPDATE ON accounts FOR EACH ROW "
            "SET NEW.updates = OLD.updates + 1",
            "INSERT INTO accounts (id, balance) SELECT seq * 3, seq % 1000 FROM seq_1_to_3000")
    args = ["backfill", "--target", mysql_dsn, "--table", "accounts",
            "--set", "cents = balance * 100 + id", "--batch-size", "40", "--fixed-batch-size",
            "--max-rows-per-second", "1500", "--auto-approve"]

    def progress() -> int:
        try:
            return int(rows(mysql_dsn, "SELECT coalesce(sum(rows_scanned), 0) "
                                       "FROM _lockplane_backfills")[0][0])
        except pymysql.err.ProgrammingError:
            return 0

    rnd = random.Random(5)
    seen: list[int] = []
    for _ in range(4):
        before = progress()
        proc = subprocess.Popen([*LOCKPLANE, *args], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, env={**os.environ, "COLUMNS": "200"})
        deadline = time.monotonic() + 60
        while progress() <= before and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rnd.uniform(0.0, 0.3))
        assert proc.poll() is None, "finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        seen.append(progress())
    # The killed runner's session ends with it, and its GET_LOCK: status tells.
    deadline = time.monotonic() + 10
    while backfill_status(mysql_dsn)[0].status != "interrupted":
        assert time.monotonic() < deadline, backfill_status(mysql_dsn)
        time.sleep(0.05)
    final = subprocess.run([*LOCKPLANE, *args[:-6], "--auto-approve"], capture_output=True,
                           text=True, timeout=120)
    assert final.returncode == 0, final.stderr
    assert seen == sorted(seen) and 0 < seen[0] and seen[-1] < 3000, seen
    # Every row updated exactly once: no batch lost, none applied twice.
    assert rows(mysql_dsn, "SELECT count(*), sum(cents = balance * 100 + id), min(updates), "
                           "max(updates) FROM accounts") == [(3000, 3000, 1, 1)]
    (status,) = backfill_status(mysql_dsn)
    assert (status.status, status.rows_scanned, status.rows_updated) == ("done", 3000, 3000)


def test_row_lock_waits_retried(mysql_dsn: str) -> None:
    run_sql(mysql_dsn, "CREATE TABLE t (id int PRIMARY KEY, v int)",
            "INSERT INTO t (id) SELECT seq FROM seq_1_to_400")
    plan = plan_backfill(mysql_dsn, make_spec("t", ["v = id + 1"], dialect="mysql"), FAST)
    held = threading.Event()

    def hold() -> None:
        with pymysql.connect(**parse_dsn(mysql_dsn).kwargs()) as conn, conn.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("SELECT * FROM t WHERE id = 250 FOR UPDATE")
            held.set()
            time.sleep(3.5)
            conn.rollback()

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(10)
    opts = BackfillOptions(batch_size=100, adaptive=False, lock_timeout_ms=1000)
    t0 = time.monotonic()
    result = run_backfill(mysql_dsn, plan, opts)
    holder.join()
    assert result.status == "done" and result.lock_retries >= 1, result
    assert time.monotonic() - t0 >= 2.5
    assert rows(mysql_dsn, "SELECT count(*) FROM t WHERE v = id + 1") == [(400,)]


def test_status_and_cancel_cli(mysql_dsn: str) -> None:
    run_sql(mysql_dsn, "CREATE TABLE t (id int PRIMARY KEY, v int)",
            "INSERT INTO t (id) SELECT seq FROM seq_1_to_3000")
    run = ["backfill", "--target", mysql_dsn, "--table", "t", "--set", "v = id * 2",
           "--max-rows-per-second", "300", "--auto-approve"]
    proc = subprocess.Popen([*LOCKPLANE, *run], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        shown: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            r = lockplane("backfill", "status", "--target", mysql_dsn, "--json")
            shown = json.loads(r.stdout) if r.code == 0 and r.stdout.strip() else []
            if shown and shown[0]["rows_scanned"] > 0:
                break
            time.sleep(0.1)
        assert shown[0]["status"] == "running" and shown[0]["set"] == "v = id * 2", shown
        stopped = lockplane("backfill", "cancel", "--target", mysql_dsn, "--table", "t",
                            "--set", "v = id * 2")
        assert stopped.code == 0 and "Cancelled" in stopped.stderr, stopped.output
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 3, stderr  # cancelled by an operator: refused, kept
    (status,) = backfill_status(mysql_dsn)
    assert status.status == "cancelled" and 0 < status.rows_scanned < 3000
    # The same command resumes from the checkpoint and finishes.
    r = lockplane(*run[:-3], "--auto-approve")
    assert r.code == 0, r.output
    assert rows(mysql_dsn, "SELECT count(*) FROM t WHERE v = id * 2") == [(3000,)]
