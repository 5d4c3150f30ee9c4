"""A declared rename is a rename everywhere (issue 12 item 3).

``-- lockplane:renamed-from old`` (``renamed_from`` in JSON) is honoured by a plain
``plan``/``apply``, not only by ``--multi-phase``: the column or table is renamed in
place, its data kept, never dropped and added back empty. The step breaks running code,
so it is flagged (rule rename-column / rename-table, multi_phase): ``--safety strict``
refuses it and points to ``plan --multi-phase``; moderate applies it. Rollback renames
back. Through the console script, on PostgreSQL and SQLite.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import psycopg
import pytest

from tests.conftest import pg_exec
from tests.test_cli import run

PG_CURRENT = """
CREATE TABLE users (id integer PRIMARY KEY, email text NOT NULL, age integer);
CREATE INDEX users_email_idx ON users (email);
CREATE INDEX users_lower_email ON users (lower(email));
CREATE TABLE orders (id integer PRIMARY KEY,
                     user_id integer REFERENCES users (id), note text);
INSERT INTO users SELECT g, 'u' || g || '@x', g FROM generate_series(1, 50) g;
INSERT INTO orders SELECT g, g, 'n' || g FROM generate_series(1, 50) g;
"""

PG_COLUMN = """
CREATE TABLE users (
  id integer PRIMARY KEY,
  email_address text NOT NULL, -- lockplane:renamed-from email
  age integer
);
CREATE INDEX users_email_idx ON users (email_address);
CREATE INDEX users_lower_email ON users (lower(email_address));
CREATE TABLE orders (id integer PRIMARY KEY,
                     user_id integer REFERENCES users (id), note text);
"""

# A renamed table, a renamed column in it, and a rewriting type change on that column.
PG_TABLE_AND_TYPE = """
CREATE TABLE users (
  id integer PRIMARY KEY,
  email text NOT NULL,
  age integer
);
CREATE INDEX users_email_idx ON users (email);
CREATE INDEX users_lower_email ON users (lower(email));
CREATE TABLE purchases ( -- lockplane:renamed-from orders
  id integer PRIMARY KEY,
  user_id integer REFERENCES users (id),
  remark varchar(200) -- lockplane:renamed-from note
);
"""


def _plan(src: str, schema: Path, out: Path) -> dict:
    proc = run("plan", "--from", src, "--to", str(schema), "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    return json.loads(out.read_text())


def _apply(plan: Path, dsn: str, safety: str) -> object:
    return run("apply", str(plan), "--target", dsn, "--auto-approve", "--safety", safety)


def _kinds(plan: dict) -> list[str]:
    return [s["kind"] for s in plan["steps"]]


def _assert_strict_refuses(plan_file: Path, dsn: str, rule: str) -> None:
    proc = _apply(plan_file, dsn, "strict")
    assert proc.returncode == 3, (proc.stdout, proc.stderr)
    text = " ".join(proc.stderr.split())
    assert rule in text and "plan --multi-phase" in text, proc.stderr


def _replan_empty(src: str, schema: Path, tmp_path: Path) -> None:
    again = _plan(src, schema, tmp_path / "again.json")
    assert again["steps"] == [], [s["description"] for s in again["steps"]]


def test_postgres_column_rename_is_a_rename(pg_dsn: str, tmp_path: Path) -> None:
    pg_exec(pg_dsn, PG_CURRENT)
    schema = tmp_path / "schema.sql"
    schema.write_text(PG_COLUMN)
    plan_file = tmp_path / "plan.json"
    plan = _plan(pg_dsn, schema, plan_file)
    # One rename: no add-and-drop, and its indexes follow it (nothing rebuilt); on 18 its
    # NOT NULL constraint, named after the old column, follows it too.
    nn = ["rename_constraint"] if (plan.get("server_major") or 0) >= 18 else []
    assert _kinds(plan) == ["rename_column"] + nn, _kinds(plan)
    step = plan["steps"][0]
    assert step["safety"] == "multi_phase"
    assert [f["rule"] for f in step["findings"]] == ["rename-column"]
    assert any('RENAME COLUMN "email" TO "email_address"' in s for s in step["sql"])
    assert any('RENAME COLUMN "email_address" TO "email"' in s
               for s in step["rollback"]["sql"])

    _assert_strict_refuses(plan_file, pg_dsn, "rename-column")
    with psycopg.connect(pg_dsn) as conn:  # strict changed nothing
        assert conn.execute("SELECT count(*) FROM users WHERE email IS NOT NULL"
                            ).fetchone() == (50,)

    proc = _apply(plan_file, pg_dsn, "moderate")
    assert proc.returncode == 0, proc.stderr
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT email_address FROM users WHERE id = 7").fetchone() == (
            "u7@x",)
        assert conn.execute("SELECT count(*) FROM users WHERE email_address IS NOT NULL"
                            ).fetchone() == (50,)
    _replan_empty(pg_dsn, schema, tmp_path)

    proc = run("rollback", str(plan_file), "--target", pg_dsn, "--auto-approve",
               "--safety", "moderate")
    assert proc.returncode == 0, proc.stderr
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT email FROM users WHERE id = 7").fetchone() == ("u7@x",)
    current = tmp_path / "current.sql"
    current.write_text(PG_CURRENT.split("INSERT")[0])
    _replan_empty(pg_dsn, current, tmp_path)


def test_postgres_table_rename_with_column_rename_and_type_change(
        pg_dsn: str, tmp_path: Path) -> None:
    pg_exec(pg_dsn, PG_CURRENT)
    schema = tmp_path / "schema.sql"
    schema.write_text(PG_TABLE_AND_TYPE)
    plan_file = tmp_path / "plan.json"
    plan = _plan(pg_dsn, schema, plan_file)
    kinds = _kinds(plan)
    # rename the table, rename the column, then the type change of the renamed column
    assert kinds[:2] == ["rename_table", "rename_column"], kinds
    assert "drop_column" not in kinds and "add_column" not in kinds, kinds
    assert "drop_table" not in kinds and "create_table" not in kinds, kinds
    assert "drop_foreign_key" not in kinds and "add_foreign_key" not in kinds, kinds
    alter = [s for s in plan["steps"][2:] if "remark" in " ".join(s["sql"])]
    assert alter and any("TYPE" in " ".join(s["sql"]) for s in alter), plan["steps"]
    assert [f["rule"] for f in plan["steps"][0]["findings"]] == ["rename-table"]

    _assert_strict_refuses(plan_file, pg_dsn, "rename-table")
    proc = _apply(plan_file, pg_dsn, "moderate")
    assert proc.returncode == 0, proc.stderr
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT remark FROM purchases WHERE id = 3").fetchone() == ("n3",)
        assert conn.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                            "WHERE attrelid = 'purchases'::regclass AND attname = 'remark'"
                            ).fetchone() == ("character varying(200)",)
    _replan_empty(pg_dsn, schema, tmp_path)

    proc = run("rollback", str(plan_file), "--target", pg_dsn, "--auto-approve",
               "--safety", "permissive")
    assert proc.returncode == 0, proc.stderr
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT note FROM orders WHERE id = 3").fetchone() == ("n3",)


def test_json_renamed_from_is_a_rename(pg_dsn: str, tmp_path: Path) -> None:
    pg_exec(pg_dsn, "CREATE TABLE t (id integer PRIMARY KEY, a text);"
                    "INSERT INTO t VALUES (1, 'kept');")
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"dialect": "postgres", "tables": [{
        "name": "t", "schema": "public",
        "columns": [{"name": "id", "type": "integer", "nullable": False,
                     "is_primary_key": True},
                    {"name": "b", "type": "text", "nullable": True, "renamed_from": "a"}]}]}))
    plan_file = tmp_path / "plan.json"
    plan = _plan(pg_dsn, schema, plan_file)
    assert _kinds(plan) == ["rename_column"], _kinds(plan)
    assert _apply(plan_file, pg_dsn, "moderate").returncode == 0
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT b FROM t").fetchone() == ("kept",)
    _replan_empty(pg_dsn, schema, tmp_path)


SQLITE_CURRENT = """
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL, age INTEGER);
CREATE INDEX users_email_idx ON users (email);
CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users (id),
                     note TEXT);
"""

SQLITE_DESIRED = """
CREATE TABLE users (
  id INTEGER PRIMARY KEY,
  email_address TEXT NOT NULL, -- lockplane:renamed-from email
  age INTEGER
);
CREATE INDEX users_email_idx ON users (email_address);
CREATE TABLE purchases ( -- lockplane:renamed-from orders
  id INTEGER PRIMARY KEY,
  user_id INTEGER REFERENCES users (id),
  remark TEXT -- lockplane:renamed-from note
);
"""


@pytest.mark.parametrize("retype", [False, True], ids=["rename", "rename+retype"])
def test_sqlite_renames(sqlite_dsn: str, tmp_path: Path, retype: bool) -> None:
    path = sqlite_dsn.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        conn.executescript(SQLITE_CURRENT)
        conn.executemany("INSERT INTO users VALUES (?, ?, ?)",
                         [(i, f"u{i}@x", i) for i in range(1, 21)])
        conn.executemany("INSERT INTO orders VALUES (?, ?, ?)",
                         [(i, i, f"n{i}") for i in range(1, 21)])
    conn.close()
    desired = SQLITE_DESIRED
    if retype:  # a type change SQLite can only do by rebuilding: after the renames
        desired = desired.replace("age INTEGER", "age TEXT")
    schema = tmp_path / "schema.sql"
    schema.write_text(desired)
    plan_file = tmp_path / "plan.json"
    plan = _plan(sqlite_dsn, schema, plan_file)
    kinds = _kinds(plan)
    assert kinds[:3] == ["rename_table", "rename_column", "rename_column"], kinds
    assert not {"drop_column", "add_column", "drop_table", "create_table"} & set(kinds)
    assert kinds[3:] == (["rebuild_table"] if retype else []), kinds

    _assert_strict_refuses(plan_file, sqlite_dsn, "rename-")
    proc = _apply(plan_file, sqlite_dsn, "moderate")
    assert proc.returncode == 0, proc.stderr
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT email_address, age FROM users WHERE id = 4").fetchone() \
            == ("u4@x", "4" if retype else 4)
        assert conn.execute("SELECT remark FROM purchases WHERE id = 4").fetchone() == ("n4",)
    conn.close()
    _replan_empty(sqlite_dsn, schema, tmp_path)

    proc = run("rollback", str(plan_file), "--target", sqlite_dsn, "--auto-approve",
               "--safety", "permissive")
    assert proc.returncode == 0, proc.stderr
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT email FROM users WHERE id = 4").fetchone() == ("u4@x",)
        assert conn.execute("SELECT note FROM orders WHERE id = 4").fetchone() == ("n4",)
    conn.close()


def test_expressions_follow_a_renamed_column_by_its_tokens(pg_dsn: str, tmp_path: Path) -> None:
    """A CHECK, an index expression and a partial index's predicate that name the column
    are read again with it renamed, token by token: the name in a string, a function's
    name and a type's name stay as they are. Before (a pattern over the text), the
    string 'a size b' became 'a bytes b', and the plan replaced the unchanged CHECK."""
    pg_exec(pg_dsn, """
        CREATE DOMAIN size AS int;
        CREATE FUNCTION size(int) RETURNS int IMMUTABLE LANGUAGE sql RETURN $1;
        CREATE TABLE files (id int PRIMARY KEY, size int, label text,
          CONSTRAINT ok CHECK (size > 0 AND label <> 'a size b' AND size(size) < 10 ^ 9));
        CREATE INDEX files_size ON files (size(size)) WHERE size::size > 0;""")
    schema = tmp_path / "schema.sql"
    schema.write_text(
        "CREATE DOMAIN size AS int;\n"
        "CREATE FUNCTION size(int) RETURNS int IMMUTABLE LANGUAGE sql RETURN $1;\n"
        "CREATE TABLE files (\n  id int PRIMARY KEY,\n"
        "  bytes int, -- lockplane:renamed-from size\n  label text,\n"
        "  CONSTRAINT ok CHECK (bytes > 0 AND label <> 'a size b' AND size(bytes) < 10 ^ 9)\n"
        ");\n"
        "CREATE INDEX files_size ON files (size(bytes)) WHERE bytes::size > 0;\n")
    plan = _plan(pg_dsn, schema, tmp_path / "plan.json")
    assert _kinds(plan) == ["rename_column"], [s["description"] for s in plan["steps"]]


def test_rename_comments_are_placed_by_tokens(pg_dsn: str, tmp_path: Path) -> None:
    """Which table or column a renamed-from comment belongs to comes from PostgreSQL's
    lexer: one on ALTER TABLE ... ADD COLUMN is that table's column (the line pattern gave
    it to the last CREATE TABLE's), text in a function body is no comment, and one on a
    CREATE TABLE line that also defines columns is refused as ambiguous (it was taken for
    the table's, and the column was silently dropped and added)."""
    pg_exec(pg_dsn, "CREATE TABLE a (id int PRIMARY KEY); "
                    "CREATE TABLE b (id int PRIMARY KEY, size int);")
    schema = tmp_path / "schema.sql"
    body = ("CREATE FUNCTION f() RETURNS text LANGUAGE sql\n"
            "  AS $$ SELECT '-- lockplane:renamed-from nothing' $$;\n")
    schema.write_text("CREATE TABLE b (id int PRIMARY KEY);\n" + body +
                      "CREATE TABLE a (id int PRIMARY KEY);\n"
                      "ALTER TABLE b ADD COLUMN bytes int; -- lockplane:renamed-from size\n")
    plan = _plan(pg_dsn, schema, tmp_path / "plan.json")
    assert [s["description"] for s in plan["steps"] if s["kind"] != "create_function"] == [
        "Rename column public.b.size to bytes"]
    schema.write_text("CREATE TABLE a (id int PRIMARY KEY);\n"
                      "CREATE TABLE b (id int PRIMARY KEY, bytes int, -- lockplane:renamed-from "
                      "size\n  note text);\n")
    proc = run("plan", "--from", pg_dsn, "--to", str(schema))
    assert proc.returncode == 2, proc.stderr
    assert f"{schema}:2: renamed-from on a CREATE TABLE line that also defines columns" \
        in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
