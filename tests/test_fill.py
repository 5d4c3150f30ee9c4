"""``-- lockplane:fill-with EXPR`` (``fill_with`` in JSON): existing rows are filled in
batches before a new or tightened column's constraint is enforced (issue 16.6).

End to end from the CLI on the real servers: plan, apply, re-plan empty, rollback; a
crash in the middle of the fill resumes; a hostile or misplaced annotation is bad input
(exit 2, file:line); JSON; SQLite (rebuild path); multi-phase.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from lockplane.errors import BadInput
from lockplane.fill import read_annotations
from tests.cli_inprocess import lockplane
from tests.conftest import pg_exec
from tests.roundtrip import roundtrip_to, sqlite_db


def _rows(dsn: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(sql).fetchall()


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _plan(src: str, to: Path, out: Path, *extra: str) -> dict[str, Any]:
    res = lockplane("plan", "--from", src, "--to", str(to), "--output", str(out), *extra)
    assert res.code == 0, res.output
    return json.loads(out.read_text())


def _apply(plan: Path, dsn: str) -> str:
    res = lockplane("apply", str(plan), "--target", dsn, "--auto-approve")
    assert res.code == 0, res.output
    return res.output


USERS = """
CREATE TABLE users (id bigint PRIMARY KEY, name text, email text);
INSERT INTO users SELECT g, CASE WHEN g % 10 = 0 THEN NULL ELSE 'n' || g END, 'e' || g
    FROM generate_series(1, 3000) g;
"""
WANTED = """
CREATE TABLE users (
    id bigint PRIMARY KEY,
    name text NOT NULL, -- lockplane:fill-with 'anon-' || id
    email text,
    -- lockplane:fill-with lower(email) || '#' || id
    "Handle" text NOT NULL DEFAULT 'x' UNIQUE
);
"""


# ------------------------------------------------------------------- PostgreSQL
def test_plan_apply_rollback_postgres(pg_dsn: str, tmp_path: Path) -> None:
    pg_exec(pg_dsn, USERS)
    schema = _write(tmp_path, "schema.sql", WANTED)
    plan_path = tmp_path / "plan.json"
    plan = _plan(pg_dsn, schema, plan_path)
    kinds = [s["kind"] for s in plan["steps"]]
    # The new column: added bare, its default, filled, NOT NULL the lock-safe way, then
    # its UNIQUE; the existing one: filled where NULL, then NOT NULL.
    handle = [s for s in plan["steps"] if '"Handle"' in " ".join(s["sql"])
              or (s.get("backfill") or {}).get("column") == "Handle"]
    assert [s["kind"] for s in handle][:4] == ["add_column", "alter_column",
                                               "backfill_column", "add_constraint"]
    assert "NOT NULL" not in handle[0]["sql"][-2] and "DEFAULT" not in handle[0]["sql"][-2]
    fills = [s for s in plan["steps"] if s["kind"] == "backfill_column"]
    assert [f["backfill"]["column"] for f in fills] == ["Handle", "name"]
    for f in fills:
        # review, under its own rule, EXPR shown and covered by the plan's id
        assert f["safety"] == "review" and f["findings"][0]["rule"] == "fill-with"
        assert f["backfill"]["where"] == f'"{f["backfill"]["column"]}" IS NULL'
        assert f["backfill"]["expression"] in f["description"]
    assert fills[0]["backfill"]["expression"] == "lower(email) || '#' || id"
    # The facts a live source gives: the rows each fill finds now, and batches.
    assert any("fills 3,000 row(s)" in m and "at most 3 batch(es)" in m
               for m in fills[0]["messages"])
    assert any("fills 300 row(s)" in m for m in fills[1]["messages"])
    assert kinds.index("backfill_column") < kinds.index("validate_constraint")
    assert "add-not-null-column-without-default" not in json.dumps(plan)

    out = _apply(plan_path, pg_dsn)
    assert "backfilled 3000 row(s) of users.Handle" in out
    assert "backfilled 300 row(s) of users.name" in out
    assert _rows(pg_dsn, """SELECT count(*) FILTER (WHERE name = 'anon-' || id),
        count(*) FILTER (WHERE "Handle" = 'e' || id || '#' || id), count(*) FROM users""") \
        == [(300, 3000, 3000)]
    assert _rows(pg_dsn, "SELECT attname, attnotnull FROM pg_attribute WHERE attrelid = "
                 "'users'::regclass AND attname IN ('name', 'Handle') ORDER BY 1") \
        == [("Handle", True), ("name", True)]
    # New rows get the default; the helper checks are gone; nothing left to do.
    pg_exec(pg_dsn, "INSERT INTO users (id, name) VALUES (5000, 'z')")
    assert _rows(pg_dsn, "SELECT \"Handle\" FROM users WHERE id = 5000") == [("x",)]
    pg_exec(pg_dsn, "DELETE FROM users WHERE id = 5000")
    assert _rows(pg_dsn, "SELECT count(*) FROM pg_constraint WHERE conname LIKE "
                 "'%not_null_lp%'") == [(0,)]
    again = _plan(pg_dsn, schema, tmp_path / "again.json")
    assert again["steps"] == []

    # Rollback: the previous schema exactly; the filled names keep their values.
    res = lockplane("rollback", str(plan_path), "--target", pg_dsn, "--auto-approve",
                    "--safety", "permissive")
    assert res.code == 0, res.output
    assert _rows(pg_dsn, "SELECT count(*) FROM information_schema.columns WHERE "
                 "table_name = 'users' AND column_name = 'Handle'") == [(0,)]
    assert _rows(pg_dsn, "SELECT is_nullable FROM information_schema.columns WHERE "
                 "table_name = 'users' AND column_name = 'name'") == [("YES",)]
    res = lockplane("plan", "--from", pg_dsn, "--to", str(schema))
    assert res.code == 0 and '"source_hash": "' + plan["source_hash"] in res.stdout


def test_existing_column_gains_check_and_unique(pg_dsn: str, tmp_path: Path) -> None:
    pg_exec(pg_dsn, """
        CREATE TABLE items (id bigint PRIMARY KEY, price int, code text);
        INSERT INTO items SELECT g, CASE WHEN g % 7 = 0 THEN -g ELSE g END, 'c' || (g % 50)
            FROM generate_series(1, 400) g;
        UPDATE items SET price = NULL WHERE id = 1;""")
    schema = _write(tmp_path, "s.sql", """
        CREATE TABLE items (
            id bigint PRIMARY KEY,
            price int CHECK (price >= 0), -- lockplane:fill-with 0
            code text UNIQUE -- lockplane:fill-with code || '-' || id
        );""")
    plan_path = tmp_path / "p.json"
    plan = _plan(pg_dsn, schema, plan_path)
    kinds = [s["kind"] for s in plan["steps"]]
    assert kinds[:2] == ["backfill_column", "backfill_column"], kinds
    wheres = {s["backfill"]["column"]: s["backfill"]["where"] for s in plan["steps"][:2]}
    assert wheres["price"] == "NOT ((price >= 0))"
    # (the schema's CHECK is not run on the target to count them before the apply)
    assert any("counted when it runs" in m for m in plan["steps"][0]["messages"]
               + plan["steps"][1]["messages"])
    assert "HAVING count(*) > 1" in wheres["code"]
    _apply(plan_path, pg_dsn)
    # Negative prices became 0 (a NULL passes the CHECK: kept); codes made unique.
    assert _rows(pg_dsn, "SELECT count(*) FILTER (WHERE price = 0), count(*) FILTER "
                 "(WHERE price IS NULL), count(DISTINCT code) FROM items") == [(57, 1, 400)]
    assert _plan(pg_dsn, schema, tmp_path / "again.json")["steps"] == []


def test_without_fill_nothing_changes(pg_dsn: str, tmp_path: Path) -> None:
    """A NOT NULL column without default or fill on a table with rows stays refused."""
    pg_exec(pg_dsn, USERS)
    schema = _write(tmp_path, "s.sql", "CREATE TABLE users (id bigint PRIMARY KEY, "
                    "name text, email text, code text NOT NULL);")
    plan = _plan(pg_dsn, schema, tmp_path / "p.json")
    (step,) = plan["steps"]
    assert step["kind"] == "add_column" and step["safety"] == "dangerous"
    assert step["findings"][0]["rule"] == "add-not-null-column-without-default"
    res = lockplane("apply", str(tmp_path / "p.json"), "--target", pg_dsn, "--auto-approve")
    assert res.code == 3, res.output


def test_fill_giving_null_fails_before_writing(pg_dsn: str, tmp_path: Path) -> None:
    """The backfill engine's read-only check of every row refuses an EXPR that leaves a
    row NULL in a column about to be NOT NULL, naming the row, before any write."""
    pg_exec(pg_dsn, USERS)
    schema = _write(tmp_path, "s.sql", "CREATE TABLE users (id bigint PRIMARY KEY, email "
                    "text,\n  name text NOT NULL -- lockplane:fill-with upper(name)\n);")
    plan_path = tmp_path / "p.json"
    plan = _plan(pg_dsn, schema, plan_path)
    assert next(s for s in plan["steps"] if s["kind"] == "backfill_column"
                )["backfill"]["not_null"] is True
    # The shadow copy (with a sample of the rows) finds it first ...
    res = lockplane("apply", str(plan_path), "--target", pg_dsn, "--auto-approve")
    assert res.code == 1 and "shadow validation" in res.output, res.output
    # ... and without one, the fill's own read-only check of every row, before any write.
    res = lockplane("apply", str(plan_path), "--target", pg_dsn, "--auto-approve",
                    "--skip-shadow")
    assert res.code == 1, res.output
    assert ("would set NOT NULL column name to NULL for row id=10; nothing was written"
            in res.output), res.output
    assert _rows(pg_dsn, "SELECT count(*) FROM users WHERE name = upper(name)") == [(0,)]


def test_edited_fill_is_refused(pg_dsn: str, tmp_path: Path) -> None:
    """EXPR runs only as reviewed: the plan's id covers it."""
    pg_exec(pg_dsn, USERS)
    schema = _write(tmp_path, "s.sql", WANTED)
    plan_path = tmp_path / "p.json"
    plan = _plan(pg_dsn, schema, plan_path)
    step = next(s for s in plan["steps"] if s["kind"] == "backfill_column")
    step["backfill"]["expression"] = "(SELECT current_user)"
    plan_path.write_text(json.dumps(plan))
    res = lockplane("apply", str(plan_path), "--target", pg_dsn, "--auto-approve")
    assert res.code != 0 and "plan_id" in res.output, res.output
    assert _rows(pg_dsn, "SELECT count(*) FROM information_schema.columns WHERE "
                 "table_name = 'users'") == [(3,)]


def test_json_fill_with(pg_dsn: str, tmp_path: Path) -> None:
    pg_exec(pg_dsn, USERS)
    doc = {"dialect": "postgres", "tables": [{"name": "users", "schema": "public", "columns": [
        {"name": "id", "type": "bigint", "nullable": False, "is_primary_key": True},
        {"name": "name", "type": "text", "nullable": True},
        {"name": "email", "type": "text", "nullable": True},
        {"name": "joined", "type": "integer", "nullable": False,
         "fill_with": "length(email) + id"}]}]}
    schema = _write(tmp_path, "s.json", json.dumps(doc))
    plan_path = tmp_path / "p.json"
    plan = _plan(pg_dsn, str(schema), plan_path)  # type: ignore[arg-type]
    assert any(s["kind"] == "backfill_column" for s in plan["steps"])
    _apply(plan_path, pg_dsn)
    assert _rows(pg_dsn, "SELECT count(*) FROM users WHERE joined = length(email) + id") \
        == [(3000,)]
    assert _plan(pg_dsn, str(schema), tmp_path / "again.json")["steps"] == []  # type: ignore[arg-type]
    # A hostile fill_with in JSON: refused, naming the file and the column.
    doc["tables"][0]["columns"][3]["fill_with"] = "nextval('x')"  # type: ignore[index]
    bad = _write(tmp_path, "bad.json", json.dumps(doc))
    res = lockplane("plan", "--from", pg_dsn, "--to", str(bad))
    assert res.code == 2
    assert f"{bad}: tables[0] (users).columns[3] (joined).fill_with" in res.stderr
    assert "Traceback" not in res.output


HOSTILE = [
    ("1; DROP TABLE users", "not statements"),
    ("(WITH x AS (DELETE FROM users RETURNING 1) SELECT 1)", "DELETE statement"),
    ("pg_sleep(10)::text", "side effects"),
    ("(SELECT name FROM users FOR UPDATE)", "FOR UPDATE"),
    ("other.name", "only the row's own columns"),
    ("'unterminated", "unterminated quoted string"),
    ("", "names no expression"),
]


@pytest.mark.parametrize(("expr", "why"), HOSTILE)
def test_hostile_fill_is_bad_input(pg_dsn: str, tmp_path: Path, expr: str, why: str) -> None:
    pg_exec(pg_dsn, USERS)
    schema = _write(tmp_path, "s.sql", "CREATE TABLE users (\n  id bigint PRIMARY KEY,\n"
                    f"  name text NOT NULL, -- lockplane:fill-with {expr}\n"
                    "  email text\n);\n")
    res = lockplane("plan", "--from", pg_dsn, "--to", str(schema))
    assert res.code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {schema}:3: lockplane:fill-with"), lines
    assert why in lines[0], lines[0]
    assert _rows(pg_dsn, "SELECT count(*) FROM users WHERE name IS NULL") == [(300,)]


def test_fill_names_columns_of_its_row(pg_dsn: str, tmp_path: Path) -> None:
    """A fill may read a column the same plan drops (it runs while both are there); a
    name the table has neither before nor after is bad input when the fill would act."""
    pg_exec(pg_dsn, "CREATE TABLE s (id int PRIMARY KEY, enabled boolean NOT NULL);"
            "INSERT INTO s VALUES (1, true), (2, false);")
    schema = _write(tmp_path, "s.sql", "CREATE TABLE s (id int PRIMARY KEY,\n  paused_until "
                    "timestamptz -- lockplane:fill-with CASE WHEN enabled THEN NULL ELSE "
                    "'infinity'::timestamptz END\n);")
    plan_path = tmp_path / "p.json"
    plan = _plan(pg_dsn, schema, plan_path)
    kinds = [s["kind"] for s in plan["steps"]]
    assert kinds.index("backfill_column") < kinds.index("drop_column"), kinds
    res = lockplane("apply", str(plan_path), "--target", pg_dsn, "--auto-approve",
                    "--acknowledge", "drop-column")
    assert res.code == 0, res.output
    assert _rows(pg_dsn, "SELECT id, paused_until IS NULL FROM s ORDER BY id") == [
        (1, True), (2, False)]
    typo = _write(tmp_path, "t.sql", "CREATE TABLE s (id int PRIMARY KEY,\n  paused_until "
                  "timestamptz,\n  n int NOT NULL -- lockplane:fill-with nosuch + 1\n);")
    res = lockplane("plan", "--from", pg_dsn, "--to", str(typo))
    assert res.code == 2, res.output
    assert res.stderr.strip() == ("error: public.s.n: lockplane:fill-with nosuch + 1: names "
                                  "nosuch, which s has neither before nor after this plan")


def test_search_path_of_the_file(pg_dsn: str, tmp_path: Path) -> None:
    """An unqualified table under the file's own search_path is found in its schema."""
    pg_exec(pg_dsn, "CREATE SCHEMA app; CREATE TABLE app.t (id int PRIMARY KEY);"
            "INSERT INTO app.t VALUES (1), (2);")
    schema = _write(tmp_path, "s.sql", "CREATE SCHEMA app;\nSET search_path = app;\n"
                    "CREATE TABLE t (id int PRIMARY KEY,\n  n int NOT NULL -- "
                    "lockplane:fill-with id * 10\n);")
    plan_path = tmp_path / "p.json"
    plan = _plan(pg_dsn, schema, plan_path)
    assert any(s["kind"] == "backfill_column" for s in plan["steps"])
    _apply(plan_path, pg_dsn)
    assert _rows(pg_dsn, "SELECT id, n FROM app.t ORDER BY id") == [(1, 10), (2, 20)]


def test_misplaced_annotation_is_bad_input(pg_dsn: str, tmp_path: Path) -> None:
    schema = _write(tmp_path, "s.sql", "CREATE TABLE t (\n  id int,\n"
                    "  CONSTRAINT t_pk PRIMARY KEY (id) -- lockplane:fill-with 1\n);\n")
    res = lockplane("plan", "--from", pg_dsn, "--to", str(schema))
    assert res.code == 2 and res.stderr.startswith(f"error: {schema}:3: lockplane:fill-with must "
                                                   "be attached to a column"), res.output
    gen = _write(tmp_path, "g.sql", "CREATE TABLE t (id int, d int GENERATED ALWAYS AS "
                 "(id * 2) STORED -- lockplane:fill-with 1\n);\n")
    res = lockplane("plan", "--from", pg_dsn, "--to", str(gen))
    assert res.code == 2 and "generated column" in res.stderr, res.output


# ------------------------------------------------------------------- round trips
PAIRS = {
    "new not null": ("CREATE TABLE t (id integer PRIMARY KEY, a text);",
                     "CREATE TABLE t (id integer PRIMARY KEY, a text, b integer NOT NULL "
                     "-- lockplane:fill-with id * 2\n);"),
    "new with default and check": (
        "CREATE TABLE t (id integer PRIMARY KEY, a text);",
        "CREATE TABLE t (id integer PRIMARY KEY, a text,\n  -- lockplane:fill-with "
        "coalesce(length(a), 0)\n  n integer NOT NULL DEFAULT 0 CHECK (n >= 0));"),
    "existing made not null": (
        "CREATE TABLE t (id integer PRIMARY KEY, a text);",
        "CREATE TABLE t (id integer PRIMARY KEY, a text NOT NULL -- lockplane:fill-with "
        "'none'\n);"),
    "new unique": ("CREATE TABLE t (id integer PRIMARY KEY, a text);",
                   "CREATE TABLE t (id integer PRIMARY KEY, a text, u text UNIQUE -- "
                   "lockplane:fill-with 'u' || id\n);"),
}
ROWS = "INSERT INTO t (id, a) VALUES (1, 'x'), (2, NULL), (3, 'zzz');"


@pytest.mark.parametrize("dialect", ["postgres", "sqlite"])
@pytest.mark.parametrize("pair", list(PAIRS))
def test_round_trips(pg_dsn: str, tmp_path: Path, dialect: str, pair: str) -> None:
    """The round-trip harness: catalog equal to the desired schema, rows kept (a filled
    column's NULLs aside), re-plan empty, rollback exact."""
    from lockplane.sources import SourceContext, load_schema

    old, new = PAIRS[pair]
    if dialect == "postgres":
        pg_exec(pg_dsn, old + ROWS)
        dsn = pg_dsn
    else:
        dsn = sqlite_db(tmp_path, "db", old + ROWS)
    desired = load_schema(str(_write(tmp_path, "to.sql", new)), SourceContext(dialect=dialect))
    plan, _ = roundtrip_to(dsn, desired)
    assert any(s.kind == "backfill_column" for s in plan.steps)


# ------------------------------------------------------------ where a comment goes
def _placed(text: str) -> list[tuple[str, str, str, str]]:
    return [(d.where.rsplit(":", 1)[1], ".".join(p.text for p in d.table), d.column.text,
             d.expression) for d in read_annotations(Path("f.sql"), text)]


def test_annotation_placement() -> None:
    text = """-- lockplane:fill-with not-this: a file comment, on no column
CREATE TABLE IF NOT EXISTS s."T" (
  a int,  -- lockplane:fill-with 1
  /* lockplane:fill-with 2 */
  "B c" text,
  -- a comment of its own
  -- lockplane:fill-with 3
  key int, c int); -- lockplane:fill-with 4
ALTER TABLE ONLY t ADD COLUMN IF NOT EXISTS x int, -- lockplane:fill-with 5
  ADD y int, ADD CONSTRAINT k UNIQUE (y);
-- lockplane:fill-with 6
ALTER TABLE t ADD COLUMN z int;
CREATE TABLE u (v int -- lockplane:fill-without this is not ours
);
"""
    with pytest.raises(BadInput, match=r"f.sql:1: .* must be attached to a column"):
        _placed(text)
    got = _placed(text.split("\n", 1)[1])
    assert got == [("2", 's.T', "a", "1"), ("3", 's.T', "B c", "2"),
                   ("6", 's.T', "key", "3"), ("7", 's.T', "c", "4"),
                   ("8", "t", "x", "5"), ("10", "t", "z", "6")]
    # MySQL's backquoted names (PostgreSQL's lexer sees an operator around them)
    assert _placed("CREATE TABLE `my db`.`T` (`a b` int NOT NULL -- lockplane:fill-with 1\n"
                   ") ENGINE=InnoDB;") == [("1", "my db.T", "a b", "1")]
    with pytest.raises(BadInput, match=r"f.sql:2: .* must be attached"):
        _placed("ALTER TABLE t ADD y int,\n ADD CONSTRAINT k UNIQUE (y); "
                "-- lockplane:fill-with 1\n")


# ------------------------------------------------------------------------ crash
def test_crash_mid_fill_resumes(pg_dsn: str, tmp_path: Path) -> None:
    """SIGKILL while the fill runs: the next apply carries on from the fill's checkpoint
    (rows done stay done) and ends at the plan's target. The watcher is the crash
    tests' own."""
    from tests.test_crash_resume import LOCKPLANE, Kill, Watcher
    from tests.test_crash_resume import _apply as apply_cmd

    rows = 150_000
    pg_exec(pg_dsn, f"CREATE TABLE users (id bigint PRIMARY KEY, email text); "
            f"INSERT INTO users SELECT g, 'e' || g FROM generate_series(1, {rows}) g;")
    schema = _write(tmp_path, "s.sql", "CREATE TABLE users (id bigint PRIMARY KEY, "
                    "email text,\n  code text NOT NULL -- lockplane:fill-with md5(email)\n);")
    plan_path = tmp_path / "plan.json"
    plan = _plan(pg_dsn, schema, plan_path)
    from lockplane.plan import Plan

    watcher = Watcher(pg_dsn, Plan.model_validate(plan))
    try:
        proc = subprocess.Popen(apply_cmd(plan_path, pg_dsn, None), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        watcher.wait_for(Kill('UPDATE "public"."users" SET "code"'), proc, set())
        # Wait for some committed batches, then kill.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _rows(
                pg_dsn, "SELECT rows_updated FROM lockplane.backfills WHERE rows_updated "
                "> 0 AND status = 'running'"):
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        watcher.conn.close()
    (done_at_kill,) = _rows(pg_dsn, "SELECT max(rows_updated) FROM lockplane.backfills")[0]
    assert 0 < done_at_kill < rows
    final = subprocess.run([*LOCKPLANE, "apply", str(plan_path), "--target", pg_dsn,
                            "--auto-approve"], capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    assert "marked interrupted" in final.stderr
    # Resumed, not started over: this run filled only what was left.
    (line,) = [x for x in final.stderr.splitlines() if "backfilled" in x]
    assert int(line.split()[1]) <= rows - done_at_kill, (line, done_at_kill)
    assert _rows(pg_dsn, "SELECT count(*) FILTER (WHERE code = md5(email)), count(*) "
                 "FROM users") == [(rows, rows)]
    assert _rows(pg_dsn, "SELECT result FROM lockplane.migrations ORDER BY id") \
        == [("interrupted",), ("applied",)]
    assert _plan(pg_dsn, schema, tmp_path / "again.json")["steps"] == []


# ------------------------------------------------------------------------ SQLite
def test_sqlite_rebuild_path(sqlite_dsn: str, tmp_path: Path) -> None:
    path = sqlite_dsn.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        conn.executescript("""
            CREATE TABLE users (id integer PRIMARY KEY, name text, price int);
            INSERT INTO users (name, price) VALUES ('a', 1), (NULL, -2), ('c', 3);""")
    schema = _write(tmp_path, "s.sql", """
        CREATE TABLE users (
          id integer PRIMARY KEY,
          name text NOT NULL, -- lockplane:fill-with 'anon-' || id
          price int CHECK (price >= 0), -- lockplane:fill-with 0
          slug text NOT NULL DEFAULT 'x', -- lockplane:fill-with 's' || id
          note text -- lockplane:fill-with 'n' || id
        );""")
    plan_path = tmp_path / "p.json"
    plan = _plan(sqlite_dsn, schema, plan_path)
    kinds = [s["kind"] for s in plan["steps"]]
    assert kinds == ["add_column", "add_column", "backfill_column", "backfill_column",
                     "backfill_column", "backfill_column", "rebuild_table"], kinds
    _apply(plan_path, sqlite_dsn)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT id, name, price, slug, note FROM users ORDER BY id"
                            ).fetchall() == [(1, "a", 1, "s1", "n1"), (2, "anon-2", 0, "s2", "n2"),
                                             (3, "c", 3, "s3", "n3")]
    assert _plan(sqlite_dsn, schema, tmp_path / "again.json")["steps"] == []
    res = lockplane("rollback", str(plan_path), "--target", sqlite_dsn, "--auto-approve",
                    "--safety", "permissive")
    assert res.code == 0, res.output
    with sqlite3.connect(path) as conn:
        assert [r[1] for r in conn.execute("PRAGMA table_info(users)")] == [
            "id", "name", "price"]


# ------------------------------------------------------------------- multi-phase
@pytest.mark.parametrize("new", [True, False], ids=["new-column", "existing-column"])
def test_multiphase(pg_dsn: str, tmp_path: Path, new: bool) -> None:
    pg_exec(pg_dsn, USERS)
    if new:
        wanted = ("CREATE TABLE users (id bigint PRIMARY KEY, name text, email text,\n"
                  "  -- lockplane:fill-with upper(email)\n  code text NOT NULL);")
        column, expect = "code", "SELECT count(*) FROM users WHERE code = upper(email)"
    else:
        wanted = ("CREATE TABLE users (id bigint PRIMARY KEY,\n  name text NOT NULL, "
                  "-- lockplane:fill-with 'anon-' || id\n  email text);")
        column, expect = "name", "SELECT count(*) FROM users WHERE name IS NOT NULL"
    schema = _write(tmp_path, "s.sql", wanted)
    mp_path = tmp_path / "mp.json"
    res = lockplane("plan", "--multi-phase", "--from", pg_dsn, "--to", str(schema),
                    "--output", str(mp_path))
    assert res.code == 0, res.output
    mp = json.loads(mp_path.read_text())
    assert mp["operation"] == "add_not_null" and mp["total_phases"] == 3
    first, second, third = mp["phases"]
    assert first["requires_code_deploy"]  # no default: code must write it first
    assert [s["kind"] for s in first["plan"]["steps"]] == (
        ["add_column", "backfill_column"] if new else ["backfill_column"])
    # Phase 2 fills again what old code wrote as NULL meanwhile, before the check.
    assert [s["kind"] for s in second["plan"]["steps"]][:2] == ["backfill_column",
                                                                "add_constraint"]
    # SET NOT NULL trusts phase 2's validated check (no scan, no second check), then
    # drops it.
    assert [s["kind"] for s in third["plan"]["steps"]] == ["alter_column", "drop_constraint"]
    assert not third["plan"]["steps"][0]["lock"]["scans_table"]
    assert third["plan"]["steps"][1]["safety"] == "multi_phase"
    if not new:
        # An existing column's fill records the rows it changes (by the primary key), for
        # phase 1's rollback to put their values back.
        fill = first["plan"]["steps"][0]
        assert fill["backfill"]["archive"]["key"] == ["id"]
        assert [t["kind"] for t in fill["rollback"]["then"]] == ["unfill_column"]
        assert "Put back the values the fill replaced, by id" in str(first)
    snapshot = "SELECT id, name, email FROM users ORDER BY id"
    before = _rows(pg_dsn, snapshot)
    assert lockplane("apply-phase", str(mp_path), "--target", pg_dsn, "--phase", "1",
                     "--auto-approve").code == 0
    # Old code writes a NULL before the deploy: phase 2 fills it too.
    pg_exec(pg_dsn, "INSERT INTO users (id, email) VALUES (9001, 'late')")
    for _ in (2, 3):
        res = lockplane("apply-phase", str(mp_path), "--target", pg_dsn, "--next",
                        "--approver", "dev", "--auto-approve")
        assert res.code == 0, res.output
    assert _rows(pg_dsn, expect) == [(3001,)]
    assert _rows(pg_dsn, "SELECT is_nullable FROM information_schema.columns WHERE "
                 f"table_name = 'users' AND column_name = '{column}'") == [("NO",)]
    assert _plan(pg_dsn, schema, tmp_path / "again.json")["steps"] == []
    res = lockplane("rollback-phase", str(mp_path), "--target", pg_dsn, "--to-phase", "0",
                    "--auto-approve")
    assert res.code == 0, res.output
    assert _rows(pg_dsn, "SELECT count(*) FROM information_schema.columns WHERE "
                 "table_name = 'users'") == [(3,)]
    if not new:
        # The rows phase 1 filled hold what they held; the row old code wrote meanwhile
        # keeps the value phase 2 gave it (that refill records nothing).
        assert _rows(pg_dsn, "SELECT name FROM users WHERE id = 9001") == [("anon-9001",)]
        pg_exec(pg_dsn, "DELETE FROM users WHERE id = 9001")
        assert _rows(pg_dsn, snapshot) == before
        assert _rows(pg_dsn, "SELECT count(*) FROM pg_tables WHERE schemaname = 'lockplane' "
                     "AND tablename LIKE 'fill_%'") == [(0,)]
