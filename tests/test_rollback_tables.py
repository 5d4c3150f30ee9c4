"""Rollbacks that bring a dropped table's rows back (issue 16 item 6), end to end through
the CLI on PostgreSQL: the drop copies the rows into Lockplane's archive first (bounded:
a bigger table is not copied, and the plan and the rollback say so); the undo creates the
table again, puts the rows back before its indexes, constraints and triggers, moves its
sequences past them and drops the archive. SQLite keeps no table archive: its plan says
the table comes back empty.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from lockplane.changes import refill_table
from lockplane.dialects import connect
from tests.cli_inprocess import Result, lockplane
from tests.conftest import pg_exec
from tests.roundtrip import sqlite_db

BEFORE = """
CREATE TYPE mood AS ENUM ('calm', 'cross');
CREATE TABLE keep (id int PRIMARY KEY);
CREATE TABLE audit (n serial PRIMARY KEY, what text);
CREATE FUNCTION audit_it() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO audit (what) VALUES (NEW.body); RETURN NEW; END $$;
CREATE TABLE tags (id serial PRIMARY KEY, label text NOT NULL UNIQUE, feeling mood);
CREATE TABLE notes (
  id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tag_id int REFERENCES tags,
  body text CHECK (body <> ''),
  size int GENERATED ALWAYS AS (length(body)) STORED,
  at timestamptz DEFAULT now()
);
CREATE INDEX notes_body ON notes (body);
CREATE TRIGGER audit_notes AFTER INSERT ON notes FOR EACH ROW EXECUTE FUNCTION audit_it();
INSERT INTO tags (label, feeling) SELECT 'l' || g, CASE WHEN g % 2 = 0 THEN 'calm'
    ELSE 'cross' END::mood FROM generate_series(1, 40) g;
INSERT INTO notes (tag_id, body, at) SELECT 1 + g % 40, 'b' || g,
    '2024-01-01'::timestamptz + g * interval '1 hour' FROM generate_series(1, 200) g;
"""
AFTER = """
CREATE TABLE keep (id int PRIMARY KEY);
CREATE TABLE audit (n serial PRIMARY KEY, what text);
CREATE FUNCTION audit_it() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO audit (what) VALUES (NEW.body); RETURN NEW; END $$;
"""
ROWS = {"tags": "SELECT id, label, feeling::text FROM tags ORDER BY id",
        "notes": "SELECT id, tag_id, body, size, at FROM notes ORDER BY id",
        "audit": "SELECT count(*) FROM audit"}


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


def _archives(dsn: str) -> list[tuple[Any, ...]]:
    return _rows(dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'lockplane' "
                 "AND tablename LIKE 'table_%' ORDER BY 1")


def _planned(dsn: str, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    (tmp_path / "after.sql").write_text(AFTER)
    path = tmp_path / "plan.json"
    _ok(lockplane("plan", "--from", dsn, "--to", str(tmp_path / "after.sql"), "-o",
                  str(path)))
    return path, json.loads(path.read_text())


def _apply(path: Path, dsn: str) -> Result:
    return _ok(lockplane("apply", str(path), "--target", dsn, "--auto-approve",
                         "--safety", "permissive"))


def _rollback(path: Path, dsn: str) -> Result:
    return _ok(lockplane("rollback", str(path), "--target", dsn, "--auto-approve",
                         "--safety", "permissive"))


def test_rollback_refills_dropped_tables(pg_dsn: str, tmp_path: Path) -> None:
    pg_exec(pg_dsn, BEFORE)
    want = {k: _rows(pg_dsn, q) for k, q in ROWS.items()}
    start = _hash(pg_dsn)
    path, plan = _planned(pg_dsn, tmp_path)
    drops = {s["table"]: s for s in plan["steps"] if s["kind"] == "drop_table"}
    assert set(drops) == {"public.tags", "public.notes"}
    for name, step in drops.items():
        # The copy is the drop's own step, bounded, and said in the plan with the facts
        # of the live table (rows, bytes, about how long).
        assert any(q.startswith("DO $lockplane$") and "LIMIT 1000001" in q
                   for q in step["sql"]), step["sql"]
        assert any("if it has at most 1,000,000 rows" in m for m in step["messages"])
        rows = "200" if name == "public.notes" else "40"
        assert any(f"the archive copies {rows} row(s) of {name}" in m
                   for m in step["messages"]), step["messages"]
        assert step["lock"]["scans_table"]
        assert "puts back the rows this step archives" in step["rollback"]["note"]
        then = [t["kind"] for t in step["rollback"]["then"]]
        assert then[0] == "refill_table" and step["rollback"]["then"][0]["condition"]
    # The undo puts the rows back before the trigger and the index come back.
    then = [t["kind"] for t in drops["public.notes"]["rollback"]["then"]]
    assert then.index("refill_table") < then.index("create_trigger")
    assert then.index("refill_table") < then.index("create_index")
    _apply(path, pg_dsn)
    assert len(_archives(pg_dsn)) == 2

    _rollback(path, pg_dsn)
    assert {k: _rows(pg_dsn, q) for k, q in ROWS.items()} == want  # no audit rows added
    assert _hash(pg_dsn) == start
    assert _archives(pg_dsn) == []
    # The sequences stand past the rows put back: new rows get new ids.
    pg_exec(pg_dsn, "INSERT INTO tags (label) VALUES ('new'); "
                    "INSERT INTO notes (body) VALUES ('new');")
    assert _rows(pg_dsn, "SELECT max(id) FROM tags") == [(41,)]
    assert _rows(pg_dsn, "SELECT max(id) FROM notes") == [(201,)]


def test_table_over_the_bound_comes_back_empty(pg_dsn: str, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(refill_table, "ARCHIVE_MAX_TABLE_ROWS", 100)
    pg_exec(pg_dsn, BEFORE)
    path, plan = _planned(pg_dsn, tmp_path)
    notes = next(s for s in plan["steps"] if s.get("table") == "public.notes"
                 and s["kind"] == "drop_table")
    assert any("public.notes has more than 100 rows" in m and "back it up" not in m
               and "take a backup first" in m for m in notes["messages"]), notes["messages"]
    _apply(path, pg_dsn)
    # tags (40 rows) is archived; notes (200) is not copied at all.
    assert [r[0].startswith("table_tags_") for r in _archives(pg_dsn)] == [True]
    res = _rollback(path, pg_dsn)
    assert "public.notes comes back empty: its rows were not archived" in " ".join(
        res.output.split())
    assert _rows(pg_dsn, "SELECT count(*) FROM tags") == [(40,)]
    assert _rows(pg_dsn, "SELECT count(*) FROM notes") == [(0,)]
    assert _archives(pg_dsn) == []


def test_sqlite_plan_says_the_table_comes_back_empty(tmp_path: Path) -> None:
    dsn = sqlite_db(tmp_path, "live", "CREATE TABLE keep (id INTEGER PRIMARY KEY); "
                    "CREATE TABLE tags (id INTEGER PRIMARY KEY, label TEXT);")
    (tmp_path / "after.sql").write_text("CREATE TABLE keep (id INTEGER PRIMARY KEY);")
    path = tmp_path / "plan.json"
    _ok(lockplane("plan", "--from", dsn, "--to", str(tmp_path / "after.sql"), "-o",
                  str(path)))
    (drop,) = [s for s in json.loads(path.read_text())["steps"]
               if s["kind"] == "drop_table"]
    assert "recreates the empty table" in drop["rollback"]["note"]
    assert not drop["rollback"]["then"] or all(
        t["kind"] != "refill_table" for t in drop["rollback"]["then"])
