"""Rollbacks that put filled rows back (issue 16 item 6): a plan's fill of an existing
column (``-- lockplane:fill-with`` before its NOT NULL, or where a new CHECK would refuse
a row) records, with every batch, the key and the old value of each row it changes; the
rollback puts those values back (in batches on PostgreSQL), so the rows are as they were
at state k-1, and drops the record. A table without a primary key records nothing, and
the plan says its filled rows keep their value.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from lockplane.dialects import connect
from tests.cli_inprocess import Result, lockplane
from tests.conftest import pg_exec
from tests.roundtrip import sqlite_db

PEOPLE = """
CREATE TABLE people (id bigint PRIMARY KEY, name text, score int, tag text);
INSERT INTO people SELECT g, CASE WHEN g % 10 = 0 THEN NULL ELSE 'n' || g END,
    CASE WHEN g % 7 = 0 THEN -g WHEN g % 11 = 0 THEN NULL ELSE g END, NULL
    FROM generate_series(1, 3000) g;
"""
FILLED = """
CREATE TABLE people (
    id bigint PRIMARY KEY,
    name text NOT NULL, -- lockplane:fill-with 'anon-' || id
    score int CHECK (score >= 0), -- lockplane:fill-with 0
    tag text
);
"""
SNAPSHOT = "SELECT id, name, score, tag FROM people ORDER BY id"


def _ok(res: Result) -> Result:
    assert res.code == 0, res.output
    assert "Traceback" not in res.output
    return res


def _rows(dsn: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(sql).fetchall()


def _hash(dsn: str) -> str:
    with connect(dsn) as db:
        return db.introspect().hash()


def _plan(src: str, to: Path, out: Path) -> dict[str, Any]:
    _ok(lockplane("plan", "--from", src, "--to", str(to), "-o", str(out)))
    return json.loads(out.read_text())


def _archives(dsn: str) -> list[tuple[Any, ...]]:
    return _rows(dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'lockplane' "
                 "AND tablename LIKE 'fill_%' ORDER BY 1")


def test_rollback_puts_filled_rows_back(pg_dsn: str, tmp_path: Path) -> None:
    pg_exec(pg_dsn, PEOPLE)
    before, start = _rows(pg_dsn, SNAPSHOT), _hash(pg_dsn)
    (tmp_path / "s.sql").write_text(FILLED)
    path = tmp_path / "plan.json"
    plan = _plan(pg_dsn, tmp_path / "s.sql", path)
    fills = [s for s in plan["steps"] if s["kind"] == "backfill_column"]
    assert {f["backfill"]["column"] for f in fills} == {"name", "score"}
    for f in fills:
        # The batches record the rows they change; the plan says where, and what the
        # rollback does with it.
        assert f["backfill"]["archive"]["key"] == ["id"]
        assert any("Records the key (id) and old value" in m for m in f["messages"])
        assert "puts back what the rows the fill changed held" in f["rollback"]["note"]
        assert [t["kind"] for t in f["rollback"]["then"]] == ["unfill_column"]
        assert f["rollback"]["then"][0]["condition"]
    _ok(lockplane("apply", str(path), "--target", pg_dsn, "--auto-approve"))
    assert _rows(pg_dsn, "SELECT count(*) FILTER (WHERE name = 'anon-' || id), "
                 "count(*) FILTER (WHERE score = 0) FROM people") == [(300, 428)]
    assert len(_archives(pg_dsn)) == 2
    # Rows written after the fill are the application's: the rollback leaves them be.
    pg_exec(pg_dsn, "INSERT INTO people VALUES (9001, 'late', 5, 'x')")

    res = _ok(lockplane("rollback", str(path), "--target", pg_dsn, "--auto-approve",
                        "--safety", "permissive"))
    assert "Traceback" not in res.output
    pg_exec(pg_dsn, "DELETE FROM people WHERE id = 9001")
    assert _rows(pg_dsn, SNAPSHOT) == before
    assert _hash(pg_dsn) == start
    assert _archives(pg_dsn) == []


def test_rollback_as_a_plan_says_it(pg_dsn: str, tmp_path: Path) -> None:
    """``plan-rollback`` shows the undo steps, in order: NOT NULL and the CHECK go first,
    then the values come back, in batches committed one by one."""
    pg_exec(pg_dsn, PEOPLE)
    (tmp_path / "s.sql").write_text(FILLED)
    path = tmp_path / "plan.json"
    _plan(pg_dsn, tmp_path / "s.sql", path)
    res = _ok(lockplane("plan-rollback", "--plan", str(path), "--from", pg_dsn))
    undo = json.loads(res.stdout)
    kinds = [s["kind"] for s in undo["steps"]]
    # Each column's constraint goes first (score's CHECK; name's NOT NULL and its helper
    # check), then its values come back.
    assert kinds == ["undo_add_constraint", "undo_unfill_column", "undo_drop_constraint",
                     "undo_alter_column", "undo_add_constraint", "undo_unfill_column"], kinds
    first = kinds.index("undo_unfill_column")
    unfill = undo["steps"][first]
    assert unfill["transactional"] is False
    assert any(q.startswith("DO $lockplane$") and "COMMIT" in q for q in unfill["sql"])


def test_without_primary_key_the_plan_says_rows_keep_the_fill(pg_dsn: str,
                                                              tmp_path: Path) -> None:
    pg_exec(pg_dsn, "CREATE TABLE log (at int UNIQUE, line text); "
                    "INSERT INTO log VALUES (1, NULL), (2, 'b');")
    (tmp_path / "s.sql").write_text(
        "CREATE TABLE log (at int UNIQUE, line text NOT NULL -- lockplane:fill-with 'x'\n);")
    path = tmp_path / "plan.json"
    plan = _plan(pg_dsn, tmp_path / "s.sql", path)
    (fill,) = [s for s in plan["steps"] if s["kind"] == "backfill_column"]
    assert "archive" not in fill["backfill"]
    assert "no primary key that stays" in fill["rollback"]["note"]
    assert "ctid" in fill["rollback"]["note"]


@pytest.mark.parametrize("late", [False, True], ids=["exact", "late-row"])
def test_sqlite_rollback_puts_filled_rows_back(tmp_path: Path, late: bool) -> None:
    dsn = sqlite_db(tmp_path, "live", "CREATE TABLE people (id INTEGER PRIMARY KEY, "
                    "name TEXT, tag TEXT);")
    path = dsn.split(":///", 1)[1]
    with sqlite3.connect(path) as conn:
        conn.executemany("INSERT INTO people VALUES (?, ?, NULL)",
                         [(i, None if i % 5 == 0 else f"n{i}") for i in range(1, 101)])
        before = conn.execute("SELECT * FROM people ORDER BY id").fetchall()
    with connect(dsn) as db:
        start = db.introspect().hash()
    (tmp_path / "s.sql").write_text(
        "CREATE TABLE people (id INTEGER PRIMARY KEY,\n"
        "  name TEXT NOT NULL, -- lockplane:fill-with 'anon-' || id\n  tag TEXT);")
    plan_path = tmp_path / "plan.json"
    plan = _plan(dsn, tmp_path / "s.sql", plan_path)
    (fill,) = [s for s in plan["steps"] if s["kind"] == "backfill_column"]
    assert any('INSERT INTO "_lockplane_fill_people_name_' in q for q in fill["sql"])
    _ok(lockplane("apply", str(plan_path), "--target", dsn, "--auto-approve"))
    if late:
        with sqlite3.connect(path) as conn:
            conn.execute("INSERT INTO people VALUES (500, 'late', NULL)")
    _ok(lockplane("rollback", str(plan_path), "--target", dsn, "--auto-approve",
                  "--safety", "permissive"))
    with sqlite3.connect(path) as conn:
        after = conn.execute("SELECT * FROM people WHERE id < 500 ORDER BY id").fetchall()
        left = conn.execute("SELECT name FROM sqlite_master WHERE name LIKE "
                            "'\\_lockplane\\_fill%' ESCAPE '\\'").fetchall()
    assert after == before
    assert left == []
    with connect(dsn) as db:
        assert db.introspect().hash() == start


def test_rollback_killed_inside_its_batches_goes_on(pg_dsn: str, tmp_path: Path) -> None:
    """``lockplane rollback`` is SIGKILLed while the undo puts the values back (a trigger
    holds one row of the second batch), and the statement it left running on the server
    is cancelled: the first batch stays done (its rows out of the record). The same
    command run again goes on with the rows still recorded and ends at state k-1."""
    hold = """
        CREATE FUNCTION hold() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF current_setting('lp.hold', true) = 'on' THEN PERFORM pg_sleep(60); END IF;
          RETURN NEW;
        END $$;
        CREATE TRIGGER hold BEFORE UPDATE ON people FOR EACH ROW
            WHEN (OLD.id = 7000) EXECUTE FUNCTION hold();"""
    pg_exec(pg_dsn, "CREATE TABLE people (id bigint PRIMARY KEY, name text); INSERT INTO "
                    "people SELECT g, NULL FROM generate_series(1, 12000) g;" + hold)
    start = _hash(pg_dsn)
    (tmp_path / "s.sql").write_text(
        "CREATE TABLE people (id bigint PRIMARY KEY,\n"
        "  name text NOT NULL -- lockplane:fill-with 'n' || id\n);" + hold)
    path = tmp_path / "plan.json"
    plan = _plan(pg_dsn, tmp_path / "s.sql", path)
    # (the trigger is the same before and after: the plan keeps it)
    assert not any(s["kind"] in ("drop_trigger", "create_trigger") for s in plan["steps"])
    _ok(lockplane("apply", str(path), "--target", pg_dsn, "--auto-approve", "--acknowledge",
                  "privileged-function"))
    assert _rows(pg_dsn, "SELECT count(*) FROM people WHERE name = 'n' || id") == [(12000,)]
    db = pg_dsn.rsplit("/", 1)[1]
    pg_exec(pg_dsn, f"ALTER DATABASE {db} SET lp.hold = 'on'")
    back = [sys.executable, "-m", "lockplane", "rollback", str(path), "--target", pg_dsn,
            "--auto-approve", "--skip-shadow", "--acknowledge", "privileged-function"]
    env = {**os.environ, "COLUMNS": "300"}
    proc = subprocess.Popen(back, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=env)
    deadline = time.monotonic() + 120
    while not (held := _rows(pg_dsn, "SELECT pid FROM pg_stat_activity WHERE "
                             "wait_event = 'PgSleep' AND query LIKE 'DO %'")):
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the undo never reached the held row"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    pg_exec(pg_dsn, f"SELECT pg_cancel_backend({held[0][0]})")
    pg_exec(pg_dsn, f"ALTER DATABASE {db} RESET lp.hold")
    # The first batch is back (and out of the record); the rest still filled.
    assert _rows(pg_dsn, "SELECT count(*) FILTER (WHERE name IS NULL) FROM people") \
        == [(5000,)]
    (archive,) = _archives(pg_dsn)
    assert _rows(pg_dsn, f'SELECT count(*) FROM lockplane."{archive[0]}"') == [(7000,)]
    rerun = subprocess.run(back, capture_output=True, text=True, env=env, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert "resuming migration" in " ".join(rerun.stderr.split())
    assert _rows(pg_dsn, "SELECT count(*) FROM people WHERE name IS NULL") == [(12000,)]
    assert _hash(pg_dsn) == start
    assert _archives(pg_dsn) == []
