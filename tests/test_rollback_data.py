"""Rollbacks that keep data in mind (issue 16 item 6), end to end through the CLI.

A dropped column's values are archived by the drop's own step; its undo re-adds a NOT
NULL column nullable, refills it from the archive, and makes it NOT NULL again only when
every row has a value: a table with rows no longer makes the rollback fail, and rows
without a value leave it nullable with a warning naming table, column and count. And a
rollback's shadow check starts sequences where the live ones stand.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import psycopg
import pytest

from lockplane.dialects import connect, get_dialect
from lockplane.execute import build_shadow
from tests.cli_inprocess import Result, lockplane
from tests.conftest import pg_exec
from tests.roundtrip import sqlite_db

BEFORE = """
CREATE TYPE mood AS ENUM ('calm', 'cross');
CREATE TABLE people (
  id int PRIMARY KEY,
  email text NOT NULL,
  feeling mood NOT NULL,
  nick text,
  CONSTRAINT email_unique UNIQUE (email)
);
"""
AFTER = "CREATE TABLE people (id int PRIMARY KEY, nick text);"
ROWS = """INSERT INTO people SELECT g, 'p' || g || '@x', CASE WHEN g % 2 = 0 THEN 'calm'
          ELSE 'cross' END::mood, NULL FROM generate_series(1, 300) g;"""


def _ok(res: Result) -> Result:
    assert res.code == 0, res.output
    assert "Traceback" not in res.output
    return res


def _plan(src: str, to: Path, out: Path) -> dict:
    _ok(lockplane("plan", "--from", src, "--to", str(to), "-o", str(out)))
    return json.loads(out.read_text())


def _rows(dsn: str, sql: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql).fetchall()


def _hash(dsn: str) -> str:
    with connect(dsn) as db:
        return db.introspect().hash()


def _not_null(dsn: str, table: str) -> dict[str, bool]:
    return dict(_rows(dsn, "SELECT attname::text, attnotnull FROM pg_attribute WHERE "
                      f"attrelid = '{table}'::regclass AND attnum > 0 AND NOT attisdropped"))


def test_rollback_refills_dropped_not_null_columns(pg_dsn: str, tmp_path: Path) -> None:
    pg_exec(pg_dsn, BEFORE + ROWS)
    want = _rows(pg_dsn, "SELECT id, email, feeling::text FROM people ORDER BY id")
    start = _hash(pg_dsn)
    (tmp_path / "after.sql").write_text(AFTER)
    plan_path = tmp_path / "plan.json"
    plan = _plan(pg_dsn, tmp_path / "after.sql", plan_path)
    drops = [s for s in plan["steps"] if s["kind"] == "drop_column"]
    assert len(drops) == 2
    for step in drops:
        # The archive is part of the drop's own step, bounded, and said in the plan.
        assert any("INSERT INTO \"lockplane\".\"drop_people_" in q for q in step["sql"])
        assert any("up to 1,000,000 rows, keyed by id" in m for m in step["messages"])
        assert step["lock"]["scans_table"]
        assert [t["kind"] for t in step["rollback"]["then"]] == ["refill_column",
                                                                 "enforce_not_null"]
        assert all(t["condition"] for t in step["rollback"]["then"])
    # The enum goes after the columns that use it: the archive does not depend on it.
    assert "drop_enum" in [s["kind"] for s in plan["steps"]]
    _ok(lockplane("apply", str(plan_path), "--target", pg_dsn, "--auto-approve",
                  "--safety", "permissive"))
    assert _rows(pg_dsn, "SELECT count(*) FROM pg_tables WHERE schemaname = 'lockplane' "
                 "AND tablename LIKE 'drop_people_%'") == [(2,)]

    res = _ok(lockplane("rollback", str(plan_path), "--target", pg_dsn, "--auto-approve",
                        "--safety", "permissive"))
    assert "stays nullable:" not in res.output
    # Every value back, NOT NULL back, the catalog exactly as before; archives gone.
    assert _rows(pg_dsn, "SELECT id, email, feeling::text FROM people ORDER BY id") == want
    assert _not_null(pg_dsn, "people") == {"id": True, "email": True, "feeling": True,
                                           "nick": False}
    assert _hash(pg_dsn) == start
    assert _rows(pg_dsn, "SELECT count(*) FROM pg_tables WHERE schemaname = 'lockplane' "
                 "AND tablename LIKE 'drop_%'") == [(0,)]
    assert _rows(pg_dsn, "SELECT count(*) FROM pg_constraint WHERE conname LIKE "
                 "'%not_null_lp%'") == [(0,)]


def test_archive_holds_no_collation_the_plan_drops(pg_dsn: str, tmp_path: Path) -> None:
    """The archive keeps values and keys as text without their columns' collations: the
    plan drops the collation after the column, and a collated text key still matches."""
    coll = "CREATE COLLATION lp_de (provider = icu, locale = 'de-DE');\n"
    pg_exec(pg_dsn, coll + "CREATE TABLE t (k text COLLATE lp_de PRIMARY KEY, "
                    "v text COLLATE lp_de NOT NULL);"
                    "INSERT INTO t VALUES ('a', 'x'), ('B', 'y'), ('ß', 'z');")
    want = _rows(pg_dsn, "SELECT k, v FROM t ORDER BY k")
    start = _hash(pg_dsn)
    (tmp_path / "after.sql").write_text("CREATE TABLE t (k text PRIMARY KEY);")
    plan_path = tmp_path / "plan.json"
    plan = _plan(pg_dsn, tmp_path / "after.sql", plan_path)
    assert "drop_collation" in [s["kind"] for s in plan["steps"]]
    for verb in ("apply", "rollback"):
        _ok(lockplane(verb, str(plan_path), "--target", pg_dsn, "--auto-approve",
                      "--safety", "permissive"))
    assert _rows(pg_dsn, "SELECT k, v FROM t ORDER BY k") == want
    assert _hash(pg_dsn) == start


def test_rows_without_a_value_leave_the_column_nullable(pg_dsn: str, tmp_path: Path) -> None:
    pg_exec(pg_dsn, BEFORE + ROWS)
    (tmp_path / "after.sql").write_text(AFTER)
    plan_path = tmp_path / "plan.json"
    _plan(pg_dsn, tmp_path / "after.sql", plan_path)
    _ok(lockplane("apply", str(plan_path), "--target", pg_dsn, "--auto-approve",
                  "--safety", "permissive"))
    # Rows written after the drop have no archived value.
    pg_exec(pg_dsn, "INSERT INTO people (id, nick) VALUES (1001, 'n1'), (1002, 'n2')")
    res = _ok(lockplane("rollback", str(plan_path), "--target", pg_dsn, "--auto-approve",
                        "--safety", "permissive"))
    for col in ("email", "feeling"):
        assert f"public.people.{col} stays nullable: 2 row(s) have no value" in res.output
    # The archived values are back all the same; only the columns stay nullable.
    assert _rows(pg_dsn, "SELECT count(*) FILTER (WHERE email = 'p' || id || '@x'), "
                 "count(*) FILTER (WHERE email IS NULL) FROM people") == [(300, 2)]
    assert _not_null(pg_dsn, "people")["email"] is False
    assert _not_null(pg_dsn, "people")["feeling"] is False
    # The unique constraint came back (the refilled values are distinct again), and the
    # history says what was left undone.
    assert _rows(pg_dsn, "SELECT count(*) FROM pg_constraint WHERE conname = "
                 "'email_unique'") == [(1,)]
    notes = _rows(pg_dsn, "SELECT result, error FROM lockplane.migrations ORDER BY id "
                  "DESC LIMIT 1")
    assert notes[0][0] == "applied" and "stays nullable" in notes[0][1]


def test_table_without_primary_key_is_not_archived(pg_dsn: str, tmp_path: Path) -> None:
    pg_exec(pg_dsn, "CREATE TABLE log (at int, line text NOT NULL); "
                    "INSERT INTO log SELECT g, 'l' || g FROM generate_series(1, 5) g;")
    (tmp_path / "after.sql").write_text("CREATE TABLE log (at int);")
    plan_path = tmp_path / "plan.json"
    plan = _plan(pg_dsn, tmp_path / "after.sql", plan_path)
    (drop,) = [s for s in plan["steps"] if s["kind"] == "drop_column"]
    assert not any("lockplane" in q for q in drop["sql"])
    assert "not archived" in drop["rollback"]["note"]
    assert [t["kind"] for t in drop["rollback"]["then"]] == ["enforce_not_null"]
    _ok(lockplane("apply", str(plan_path), "--target", pg_dsn, "--auto-approve",
                  "--safety", "permissive"))
    res = _ok(lockplane("rollback", str(plan_path), "--target", pg_dsn, "--auto-approve",
                        "--safety", "permissive"))
    assert "public.log.line stays nullable: 5 row(s) have no value" in res.output
    assert _not_null(pg_dsn, "log") == {"at": False, "line": False}


def test_an_edited_condition_is_refused(pg_dsn: str, tmp_path: Path) -> None:
    pg_exec(pg_dsn, BEFORE + ROWS)
    (tmp_path / "after.sql").write_text(AFTER)
    plan_path = tmp_path / "plan.json"
    plan = _plan(pg_dsn, tmp_path / "after.sql", plan_path)
    _ok(lockplane("apply", str(plan_path), "--target", pg_dsn, "--auto-approve",
                  "--safety", "permissive"))
    drop = next(s for s in plan["steps"] if s["kind"] == "drop_column")
    drop["rollback"]["then"][-1]["condition"]["query"] = "SELECT 0"
    plan_path.write_text(json.dumps(plan))
    res = lockplane("rollback", str(plan_path), "--target", pg_dsn, "--auto-approve",
                    "--safety", "permissive")
    assert res.code == 3 and "plan_id" in res.output, res.output


# ------------------------------------------------------------------------- SQLite
@pytest.mark.parametrize("late_rows", [False, True], ids=["every-row", "late-rows"])
def test_sqlite_rebuild_keeps_and_refills(tmp_path: Path, late_rows: bool) -> None:
    dsn = sqlite_db(tmp_path, "live", """
        CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT NOT NULL, nick TEXT);
        CREATE INDEX people_email ON people (email);""")
    path = dsn.split(":///", 1)[1]
    with sqlite3.connect(path) as conn:
        conn.executemany("INSERT INTO people VALUES (?, ?, ?)",
                         [(i, f"p{i}@x", None) for i in range(1, 51)])
    start = _sqlite_hash(dsn)
    (tmp_path / "after.sql").write_text(
        "CREATE TABLE people (id INTEGER PRIMARY KEY, nick TEXT);")
    plan_path = tmp_path / "plan.json"
    plan = _plan(dsn, tmp_path / "after.sql", plan_path)
    (rebuild,) = [s for s in plan["steps"] if s["kind"] == "rebuild_table"]
    assert any('INSERT INTO "_lockplane_drop_people_' in q for q in rebuild["sql"])
    assert [t["kind"] for t in rebuild["rollback"]["then"]] == ["refill_column",
                                                                "enforce_not_null"]
    _ok(lockplane("apply", str(plan_path), "--target", dsn, "--auto-approve",
                  "--safety", "permissive"))
    if late_rows:
        with sqlite3.connect(path) as conn:
            conn.execute("INSERT INTO people (id, nick) VALUES (99, 'late')")
    res = _ok(lockplane("rollback", str(plan_path), "--target", dsn, "--auto-approve",
                        "--safety", "permissive"))
    with sqlite3.connect(path) as conn:
        emails = conn.execute("SELECT id, email FROM people WHERE id <= 50 ORDER BY id"
                              ).fetchall()
        info = {r[1]: r[3] for r in conn.execute("PRAGMA table_info(people)")}
        left = conn.execute("SELECT name FROM sqlite_master WHERE name LIKE "
                            "'\\_lockplane\\_drop%' ESCAPE '\\'").fetchall()
    assert emails == [(i, f"p{i}@x") for i in range(1, 51)]
    assert left == []
    if late_rows:
        assert "main.people.email stays nullable: 1 row(s) have no value" in res.output \
            or "people.email stays nullable: 1 row(s) have no value" in res.output
        assert info["email"] == 0
    else:
        assert "stays nullable:" not in res.output
        assert info["email"] == 1
        assert _sqlite_hash(dsn) == start


def _sqlite_hash(dsn: str) -> str:
    with connect(dsn) as db:
        return db.introspect().hash()


# ------------------------------------------------------------ sequences on the shadow
SEQ_BEFORE = """
CREATE SEQUENCE ticket_no;
CREATE TABLE tickets (
  id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  serial_no serial,
  code int NOT NULL DEFAULT nextval('ticket_no'),
  CONSTRAINT code_after_restart CHECK (code >= 500)
);
"""
SEQ_AFTER = """
CREATE SEQUENCE ticket_no;
CREATE TABLE tickets (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, serial_no serial);
"""


def test_shadow_sequences_stand_where_the_live_ones_stand(pg_dsn: str) -> None:
    pg_exec(pg_dsn, SEQ_BEFORE + """
        SELECT setval('ticket_no', 499);
        INSERT INTO tickets (code) SELECT nextval('ticket_no') FROM generate_series(1, 40);
        ALTER SEQUENCE ticket_no RESTART WITH 900;  -- not called since: pg_sequences says NULL
    """)
    with connect(pg_dsn) as db:
        live = db.introspect()
    d = get_dialect("postgres")
    with d.scratch(pg_dsn) as shadow:
        assert build_shadow(shadow, live, live.hash())
        d.copy_sample(shadow, pg_dsn, live)
        got = {n: shadow.query(f"SELECT last_value, is_called FROM {n}")[0]
               for n in ("ticket_no", "tickets_id_seq", "tickets_serial_no_seq")}
    assert got == {"ticket_no": (900, False), "tickets_id_seq": (40, True),
                   "tickets_serial_no_seq": (40, True)}


def test_rollback_shadow_check_draws_from_live_positions(pg_dsn: str, tmp_path: Path) -> None:
    """The undo re-adds ``code`` with its default (nextval) and its CHECK (code >= 500):
    on the target the sequence stands at 900; a shadow whose sequence started at 1 refused
    the rollback that works on the target."""
    pg_exec(pg_dsn, SEQ_BEFORE + """
        SELECT setval('ticket_no', 499);
        INSERT INTO tickets (code) SELECT nextval('ticket_no') FROM generate_series(1, 40);
    """)
    (tmp_path / "after.sql").write_text(SEQ_AFTER)
    plan_path = tmp_path / "plan.json"
    _plan(pg_dsn, tmp_path / "after.sql", plan_path)
    _ok(lockplane("apply", str(plan_path), "--target", pg_dsn, "--auto-approve",
                  "--safety", "permissive"))
    # Rows written since have no archived code; the default numbers them from 900.
    pg_exec(pg_dsn, "INSERT INTO tickets DEFAULT VALUES; "
                    "ALTER SEQUENCE ticket_no RESTART WITH 900;")
    res = _ok(lockplane("rollback", str(plan_path), "--target", pg_dsn, "--auto-approve",
                        "--safety", "permissive"))
    assert "shadow validation passed" in res.output
    assert _rows(pg_dsn, "SELECT count(*) FILTER (WHERE code BETWEEN 500 AND 539), "
                 "count(*) FILTER (WHERE code >= 900), count(*) FROM tickets") == [(40, 1, 41)]
