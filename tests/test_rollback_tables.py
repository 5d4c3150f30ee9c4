"""Rollbacks that bring a dropped table's rows back (issue 16 item 6), end to end through
the CLI on PostgreSQL and SQLite: the drop copies the rows into Lockplane's archive first
(bounded: a bigger table is not copied, and the plan says so); the undo creates the table
again, puts the rows back before its indexes, constraints and triggers, moves its
sequences (SQLite: the AUTOINCREMENT counter) to where they stood and drops the archive.
``--no-archive`` (or ``archive_dropped = false`` in lockplane.toml) copies nothing: the
plan says the table comes back empty, a dropped column NULL.
"""

from __future__ import annotations

import json
import sqlite3
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


# -------------------------------------------------------------------------- SQLite
SQLITE_BEFORE = """
CREATE TABLE keep (id INTEGER PRIMARY KEY);
CREATE TABLE tags (id INTEGER PRIMARY KEY AUTOINCREMENT, label TEXT NOT NULL UNIQUE,
                   n NUMERIC, b BLOB, anything);
CREATE TABLE notes (tag_id INTEGER REFERENCES tags (id), body TEXT CHECK (body <> ''),
                    size INT GENERATED ALWAYS AS (length(body)) VIRTUAL,
                    at TEXT DEFAULT CURRENT_TIMESTAMP);
CREATE INDEX notes_body ON notes (body);
CREATE TRIGGER notes_seen AFTER INSERT ON notes BEGIN INSERT INTO keep VALUES (NULL); END;
CREATE TABLE pairs (k TEXT PRIMARY KEY, v) WITHOUT ROWID;
CREATE TABLE odd ("rowid" TEXT, "_rowid_" INT, v REAL, w ANY) STRICT;
-- Values SQLite's affinity would change if the archive converted them on the way in:
-- text in a NUMERIC column, an integer in a TEXT one, blobs (an empty one too), NULLs.
INSERT INTO tags (label, n, b, anything) VALUES ('a', 1.5, x'00ff', 7),
    ('b', NULL, NULL, 'text'), ('c', 'twelve', x'', 3.25), ('d', '12', 5, x'01');
-- The counter stands past the highest id left: rows deleted at the top.
INSERT INTO tags (id, label) VALUES (50, 'gone'); DELETE FROM tags WHERE id = 50;
INSERT INTO notes (tag_id, body, at) VALUES (1, 'x', '2024'), (2, 'yy', NULL),
    (NULL, NULL, 'z');
-- rowids with a gap and out of order
DELETE FROM notes WHERE rowid = 1; INSERT INTO notes (rowid, body) VALUES (99, 'late');
INSERT INTO pairs VALUES ('k1', 1), ('k2', x'01'), ('k3', NULL);
INSERT INTO odd (oid, "rowid", "_rowid_", v, w) VALUES (7, 'r', 1, 0.5, '12'),
    (3, NULL, NULL, -2.0, x'02');
DELETE FROM keep;
"""
SQLITE_AFTER = "CREATE TABLE keep (id INTEGER PRIMARY KEY);"


def _sqlite_state(path: Path) -> dict[str, Any]:
    """Every user table as the catalog and the rows read it: PRAGMA table_xinfo,
    index_list (with each index's columns), foreign_key_list, each row with its rowid and
    each value's storage class; and sqlite_sequence."""
    conn = sqlite3.connect(path)
    try:
        out: dict[str, Any] = {}
        for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND "
                                 "name NOT LIKE '\\_lockplane\\_%' ESCAPE '\\' AND "
                                 "name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY 1"):
            q = '"' + t.replace('"', '""') + '"'
            cols = [r[1] for r in conn.execute("SELECT * FROM pragma_table_info(?)", [t])]
            values = ", ".join(f'"{c}", typeof("{c}")' for c in cols)
            rowless = conn.execute("SELECT wr FROM pragma_table_list(?)", [t]).fetchone()[0]
            rowid = "" if rowless else "oid, "  # (odd shadows rowid and _rowid_)
            out[t] = {
                "xinfo": conn.execute("SELECT * FROM pragma_table_xinfo(?)", [t]).fetchall(),
                "indexes": [(ix, conn.execute("SELECT * FROM pragma_index_xinfo(?)",
                                              [ix[1]]).fetchall())
                            for ix in conn.execute("SELECT * FROM pragma_index_list(?) "
                                                   "ORDER BY name", [t])],
                "fks": conn.execute("SELECT * FROM pragma_foreign_key_list(?)", [t]).fetchall(),
                "rows": conn.execute(f"SELECT {rowid}{values} FROM {q} ORDER BY 1").fetchall(),
            }
        out["sqlite_sequence"] = conn.execute(
            "SELECT name, seq FROM sqlite_sequence WHERE name NOT LIKE '\\_lockplane\\_%' "
            "ESCAPE '\\' ORDER BY 1").fetchall()
        out["triggers"] = conn.execute("SELECT name FROM sqlite_master "
                                       "WHERE type = 'trigger'").fetchall()
        return out
    finally:
        conn.close()


def _has_dbstat() -> bool:
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("SELECT * FROM dbstat")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


def _sqlite_archives(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE name LIKE '\\_lockplane\\_table\\_%' "
            "ESCAPE '\\' ORDER BY 1")]
    finally:
        conn.close()


def _sqlite_planned(tmp_path: Path, *extra: str) -> tuple[str, Path, Path, dict[str, Any]]:
    dsn = sqlite_db(tmp_path, "live", SQLITE_BEFORE)
    (tmp_path / "after.sql").write_text(SQLITE_AFTER)
    path = tmp_path / "plan.json"
    _ok(lockplane("plan", "--from", dsn, "--to", str(tmp_path / "after.sql"), "-o",
                  str(path), *extra))
    return dsn, tmp_path / "live.db", path, json.loads(path.read_text())


def test_sqlite_rollback_refills_dropped_tables(tmp_path: Path) -> None:
    dsn, db, path, plan = _sqlite_planned(tmp_path)
    want = _sqlite_state(db)
    assert want["tags"]["rows"] and want["sqlite_sequence"] == [("tags", 50)]
    drops = {s["table"]: s for s in plan["steps"] if s["kind"] == "drop_table"}
    assert set(drops) == {"main.tags", "main.notes", "main.pairs", "main.odd"}
    for name, step in drops.items():
        assert any("LIMIT 1000001" in q for q in step["sql"]), step["sql"]
        assert any("if it has at most 1,000,000 rows" in m for m in step["messages"])
        rows = {"main.tags": 4, "main.notes": 3, "main.pairs": 3, "main.odd": 2}[name]
        # Its bytes too (a page per table and index here), where SQLite was built with
        # the dbstat table.
        kb = {"main.tags": 8, "main.notes": 8, "main.pairs": 4, "main.odd": 4}[name]
        said = f"the archive copies {rows} row(s) of {name} " + (
            f"({kb}.0 kB with its indexes)" if _has_dbstat() else "as the")
        assert any(said in m for m in step["messages"]), step["messages"]
        assert "puts back the rows this step archives" in step["rollback"]["note"]
        assert step["rollback"]["then"][0]["kind"] == "refill_table"
    then = [t["kind"] for t in drops["main.notes"]["rollback"]["then"]]
    assert then.index("refill_table") < then.index("create_trigger")
    assert then.index("refill_table") < then.index("create_index")
    _apply(path, dsn)
    assert len(_sqlite_archives(db)) == 4

    _rollback(path, dsn)
    # Rows (rowids, storage classes), catalog and counter exactly as before; the trigger
    # did not fire for the rows put back (keep is still empty).
    assert _sqlite_state(db) == want
    assert _sqlite_archives(db) == []
    assert _hash(dsn) == plan["source_hash"]
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO tags (label) VALUES ('new')")
    conn.commit()
    assert conn.execute("SELECT max(id) FROM tags").fetchone() == (51,)
    conn.close()


def test_sqlite_table_over_the_bound_comes_back_empty(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(refill_table, "ARCHIVE_MAX_TABLE_ROWS", 2)
    dsn, db, path, plan = _sqlite_planned(tmp_path)
    steps = {s["table"]: s for s in plan["steps"]}
    for name in ("main.tags", "main.notes", "main.pairs"):
        assert any(f"{name} has more than 2 rows" in m and "take a backup first" in m
                   for m in steps[name]["messages"]), steps[name]["messages"]
    assert any("the archive copies 2 row(s) of main.odd" in m
               for m in steps["main.odd"]["messages"])
    want = _sqlite_state(db)
    _apply(path, dsn)
    _rollback(path, dsn)
    state = _sqlite_state(db)
    assert state["tags"]["rows"] == state["notes"]["rows"] == state["pairs"]["rows"] == []
    assert state["odd"] == want["odd"]
    # (the counter was kept: ids of the rows that are gone are not handed out again)
    assert state["sqlite_sequence"] == [("tags", 50)]
    assert _sqlite_archives(db) == []


# --------------------------------------------------------------------- --no-archive
def test_no_archive_rollback_brings_tables_back_empty(pg_dsn: str, tmp_path: Path) -> None:
    pg_exec(pg_dsn, BEFORE + "ALTER TABLE keep ADD COLUMN note text NOT NULL DEFAULT 'k';"
                    "INSERT INTO keep VALUES (1, 'one'), (2, 'two');")
    (tmp_path / "after.sql").write_text(AFTER)
    path = tmp_path / "plan.json"
    _ok(lockplane("plan", "--from", pg_dsn, "--to", str(tmp_path / "after.sql"), "-o",
                  str(path), "--no-archive"))
    plan = json.loads(path.read_text())
    steps = {(s["kind"], s.get("table")): s for s in plan["steps"]}
    for name in ("public.tags", "public.notes"):
        step = steps[("drop_table", name)]
        assert not any("lockplane" in q for q in step["sql"]), step["sql"]
        assert any(f"Keeps no copy of the rows of {name}" in m and "back empty" in m
                   for m in step["messages"]), step["messages"]
        assert step["rollback"]["note"].startswith("recreates the table empty: archiving "
                                                   "was turned off")
        assert all(t["kind"] != "refill_table" for t in step["rollback"]["then"])
    column = steps[("drop_column", "public.keep")]
    assert not any("lockplane" in q for q in column["sql"]), column["sql"]
    assert any("Keeps no copy of the values of note" in m and "back NULL" in m
               for m in column["messages"]), column["messages"]
    assert "archiving was turned off" in column["rollback"]["note"]
    _apply(path, pg_dsn)
    assert _archives(pg_dsn) == []
    assert _rows(pg_dsn, "SELECT count(*) FROM pg_tables WHERE schemaname = 'lockplane' "
                         "AND tablename LIKE 'drop_%'") == [(0,)]
    _rollback(path, pg_dsn)
    assert _rows(pg_dsn, "SELECT count(*) FROM tags") == [(0,)]
    assert _rows(pg_dsn, "SELECT count(*) FROM notes") == [(0,)]
    # (NOT NULL with a default: the default, not the values)
    assert _rows(pg_dsn, "SELECT id, note FROM keep ORDER BY id") == [(1, "k"), (2, "k")]


def test_no_archive_from_lockplane_toml(tmp_path: Path) -> None:
    dsn = sqlite_db(tmp_path, "live", SQLITE_BEFORE + "ALTER TABLE keep ADD COLUMN note TEXT;"
                    "INSERT INTO keep VALUES (1, 'one');")
    (tmp_path / "after.sql").write_text(SQLITE_AFTER)
    (tmp_path / "lockplane.toml").write_text(
        f'[environments.dev]\ndatabase_url = "{dsn}"\narchive_dropped = false\n')

    def planned(*extra: str) -> dict[str, Any]:
        _ok(lockplane("plan", "--from-environment", "dev", "--to", "after.sql", "-o",
                      "plan.json", *extra, cwd=tmp_path))
        return json.loads((tmp_path / "plan.json").read_text())

    # --archive decides over the environment's setting
    again = planned("--archive")
    assert all(any("_lockplane_table_" in q or "_lockplane_drop_" in q for q in s["sql"])
               for s in again["steps"])
    plan = planned()
    for step in plan["steps"]:
        assert not any("_lockplane_table_" in q or "_lockplane_drop_" in q
                       for q in step["sql"]), step["sql"]
        assert "archiving was turned off" in step["rollback"]["note"]
    _apply(tmp_path / "plan.json", dsn)
    _rollback(tmp_path / "plan.json", dsn)
    state = _sqlite_state(tmp_path / "live.db")
    assert state["tags"]["rows"] == [] and state["notes"]["rows"] == []
    assert state["keep"]["rows"] == [(1, 1, "integer", None, "null")]


def test_archive_option_bad_input(tmp_path: Path) -> None:
    dsn = sqlite_db(tmp_path, "live", SQLITE_AFTER)
    (tmp_path / "lockplane.toml").write_text(
        f'[environments.dev]\ndatabase_url = "{dsn}"\narchive_dropped = "no"\n')
    res = lockplane("plan", "--from-environment", "dev", "--to", dsn, cwd=tmp_path)
    assert res.code == 2 and "Traceback" not in res.output
    assert "archive_dropped must be true or false, not a string" in res.output
    (tmp_path / "plan.json").write_text("{}")
    res = lockplane("apply", "plan.json", "--target", dsn, "--no-archive", cwd=tmp_path)
    assert res.code == 2 and "--archive/--no-archive go with --schema" in res.output
