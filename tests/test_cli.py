"""The CLI end to end on real databases: plan, apply, rollback, history, and bad input.

Every bad input must exit 2 (or 3 for safety refusals) with one line on stderr, no
traceback, no password, and no change in the database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.cli_inprocess import completed
from tests.conftest import pg_exec

LOCKPLANE = [sys.executable, "-m", "lockplane"]


def run(*args: str, cwd: Path | None = None, input: str | None = None,
        env: dict[str, str] | None = None,
        process: bool = False) -> subprocess.CompletedProcess[str]:
    """``lockplane ARGS``: in this process through the console script's entry point and
    its mapping of errors to exit codes and lines (tests/cli_inprocess.py, ~1 s of
    start-up spared each), or with ``process`` (or an ``env`` to add to the
    environment) the console script in a process of its own (the end-to-end test's
    plan and apply)."""
    if not process and env is None:
        return completed(*args, cwd=cwd, stdin=input or "")
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    full_env.pop("LOCKPLANE_DEBUG", None)
    return subprocess.run([*LOCKPLANE, *args], capture_output=True, text=True, cwd=cwd,
                          input=input, env=full_env, timeout=180)


def assert_one_line_error(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert lines, "expected an error line"
    # one error, possibly wrapped by the terminal width; it starts with error:/usage:
    assert lines[-1] or lines[0]
    text = " ".join(ln.strip() for ln in proc.stderr.splitlines())
    for n in needles:
        assert n in text, (n, proc.stderr)


def pg_catalog_snapshot(dsn: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT c.relname, c.relkind, a.attname, format_type(a.atttypid, a.atttypmod) "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 "
            "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', 'lockplane') "
            "ORDER BY 1, 3").fetchall()


CURRENT = """
CREATE TABLE users (id integer PRIMARY KEY, email text NOT NULL, nick varchar(20));
INSERT INTO users VALUES (1, 'a@x', 'a'), (2, 'b@x', NULL);
"""

DESIRED = """
CREATE TABLE users (
  id integer PRIMARY KEY,
  email text NOT NULL UNIQUE,
  nick varchar(50),
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE "Order Items" (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id integer REFERENCES users (id) ON DELETE CASCADE,
  "select" text CHECK ("select" <> '')
);
CREATE INDEX order_items_user ON "Order Items" (user_id);
COMMENT ON TABLE users IS 'people who sign in';
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "schema").mkdir()
    (tmp_path / "schema" / "schema.sql").write_text(DESIRED)
    return tmp_path


def test_plan_apply_replan_rollback_postgres(pg_dsn: str, project: Path) -> None:
    pg_exec(pg_dsn, CURRENT)
    plan_path = project / "plan.json"
    proc = run("plan", "--from", pg_dsn, "--to", "schema", "-o", str(plan_path), cwd=project,
               process=True)
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(plan_path.read_text())
    assert plan["dialect"] == "postgres" and plan["steps"]
    for step in plan["steps"]:
        assert {"description", "sql", "safety", "lock", "rollback", "transactional"} <= set(step)
    # --exit-code: 4 while the database differs from the desired schema
    assert run("plan", "--from", pg_dsn, "--to", "schema", "--exit-code", "-q",
               cwd=project).returncode == 4

    proc = run("apply", str(plan_path), "--target", pg_dsn, "--auto-approve", cwd=project,
               process=True)
    assert proc.returncode == 0, proc.stderr
    assert "Applied" in proc.stderr

    # Rows survive, and planning again is empty.
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT id, email, nick FROM users ORDER BY id").fetchall() == [
            (1, "a@x", "a"), (2, "b@x", None)]
    proc = run("plan", "--from", pg_dsn, "--to", "schema", "--exit-code", cwd=project)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert json.loads(proc.stdout)["steps"] == []

    # Applying the same plan again: already at its target.
    proc = run("apply", str(plan_path), "--target", pg_dsn, "--auto-approve", cwd=project)
    assert proc.returncode == 0 and "Already applied" in proc.stderr, proc.stderr

    # History records it.
    proc = run("history", "--target", pg_dsn, "--json")
    rows = json.loads(proc.stdout)
    assert rows[0]["result"] == "applied" and rows[0]["steps_done"] == len(plan["steps"])

    # Roll back: the catalog returns to the original state (data in dropped objects aside).
    before_hash = plan["source_hash"]
    proc = run("rollback", str(plan_path), "--target", pg_dsn, "--auto-approve",
               "--safety", "permissive")
    assert proc.returncode == 0, proc.stderr
    proc = run("introspect", "--target", pg_dsn)
    from lockplane.model import Schema

    assert Schema.model_validate_json(proc.stdout).hash() == before_hash
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone()[0] == 2


def test_apply_refuses_plan_for_another_state(pg_dsn: str, project: Path) -> None:
    pg_exec(pg_dsn, CURRENT)
    plan_path = project / "plan.json"
    assert run("plan", "--from", pg_dsn, "--to", "schema", "-o", str(plan_path),
               cwd=project).returncode == 0
    pg_exec(pg_dsn, "ALTER TABLE users ADD COLUMN hotfix int")
    snap = pg_catalog_snapshot(pg_dsn)
    proc = run("apply", str(plan_path), "--target", pg_dsn, "--auto-approve", cwd=project)
    plan = json.loads(plan_path.read_text())
    assert_one_line_error(proc, 3, plan["source_hash"][:12])
    assert "hash format" not in proc.stderr
    assert pg_catalog_snapshot(pg_dsn) == snap
    # A plan from a Lockplane that hashed databases differently (no hash_format: 1) says
    # why an unchanged database may not match it. (Such a plan carries no plan_id either:
    # with one, the missing hash_format would be refused as an edit.)
    del plan["hash_format"]
    del plan["plan_id"]
    plan_path.write_text(json.dumps(plan))
    proc = run("apply", str(plan_path), "--target", pg_dsn, "--auto-approve", cwd=project)
    assert_one_line_error(proc, 3, plan["source_hash"][:12], "hash format 1, now")
    assert pg_catalog_snapshot(pg_dsn) == snap


def test_strict_refuses_dropping_data(pg_dsn: str, project: Path) -> None:
    pg_exec(pg_dsn, CURRENT)
    (project / "schema" / "schema.sql").write_text(
        "CREATE TABLE users (id integer PRIMARY KEY, email text NOT NULL);")
    snap = pg_catalog_snapshot(pg_dsn)
    proc = run("apply", "--schema", "schema", "--target", pg_dsn, "--auto-approve",
               "--safety", "strict", cwd=project)
    assert_one_line_error(proc, 3, "nick", "dangerous")
    assert pg_catalog_snapshot(pg_dsn) == snap


def test_apply_without_confirmation_is_refused(pg_dsn: str, project: Path) -> None:
    pg_exec(pg_dsn, CURRENT)
    snap = pg_catalog_snapshot(pg_dsn)
    proc = run("apply", "--schema", "schema", "--target", pg_dsn, cwd=project, input="")
    assert_one_line_error(proc, 2, "--auto-approve")  # no terminal to ask on: usage
    assert pg_catalog_snapshot(pg_dsn) == snap


def test_failed_step_rolls_back_everything(pg_dsn: str, project: Path) -> None:
    # Duplicate emails make the new UNIQUE fail on the target. (The shadow, with a sample
    # of the rows, would catch it first: --skip-shadow to see what the target does.)
    # The plain DDL (--no-rewrite) runs in one transaction: nothing of it stays.
    pg_exec(pg_dsn, CURRENT + "UPDATE users SET email = 'same';")
    snap = pg_catalog_snapshot(pg_dsn)
    proc = run("apply", "--schema", "schema", "--target", pg_dsn, "--auto-approve",
               "--no-rewrite", "--skip-shadow", cwd=project)
    assert_one_line_error(proc, 1, "users_email_key", "rolled back")
    assert pg_catalog_snapshot(pg_dsn) == snap
    rows = json.loads(run("history", "--target", pg_dsn, "--json").stdout)
    assert rows[0]["result"] == "failed"


def pg_index_validity(dsn: str) -> dict[str, bool]:
    with psycopg.connect(dsn) as conn:
        return dict(conn.execute(
            "SELECT c.relname, i.indisvalid FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public'").fetchall())


def test_failed_lock_safe_step_resumes_after_the_fix(pg_dsn: str, project: Path) -> None:
    # The lock-safe default builds the UNIQUE as an index CONCURRENTLY, outside a
    # transaction: the steps before it are committed and stay; the failed build is
    # dropped (no INVALID index left); the same plan applied again resumes there.
    pg_exec(pg_dsn, CURRENT + "UPDATE users SET email = 'same';")
    plan_path = project / "plan.json"
    assert run("plan", "--from", pg_dsn, "--to", "schema", "-o", str(plan_path),
               cwd=project).returncode == 0
    plan = json.loads(plan_path.read_text())
    (build,) = [i for i, s in enumerate(plan["steps"], 1)
                if s["kind"] == "create_index" and "users_email_key" in s["description"]]
    assert not plan["steps"][build - 1]["transactional"]
    assert any("CONCURRENTLY" in q for q in plan["steps"][build - 1]["sql"])

    # --skip-shadow: the shadow's sample of rows would catch the duplicates first.
    proc = run("apply", str(plan_path), "--target", pg_dsn, "--auto-approve",
               "--skip-shadow", cwd=project)
    assert_one_line_error(proc, 1, "users_email_key", "cleaned up",
                          f"steps 1-{build - 1} stay applied",
                          f"resume at step {build}")
    validity = pg_index_validity(pg_dsn)
    assert "users_email_key" not in validity and all(validity.values()), validity
    rows = json.loads(run("history", "--target", pg_dsn, "--json").stdout)
    assert rows[0]["result"] == "failed" and rows[0]["steps_done"] == build - 1
    assert rows[0]["hash_after"] is None

    # Fix the data; the same plan file picks up at the failed step and finishes.
    pg_exec(pg_dsn, "DELETE FROM users WHERE id = 2;")
    proc = run("apply", str(plan_path), "--target", pg_dsn, "--auto-approve", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert f"after step {build - 1}" in proc.stderr
    validity = pg_index_validity(pg_dsn)
    assert validity.get("users_email_key") is True and all(validity.values()), validity
    proc = run("introspect", "--target", pg_dsn)
    from lockplane.model import Schema

    assert Schema.model_validate_json(proc.stdout).hash() == plan["target_hash"]
    rows = json.loads(run("history", "--target", pg_dsn, "--json").stdout)
    assert rows[0]["result"] == "applied"
    assert rows[0]["steps_done"] == len(plan["steps"])
    assert rows[0]["hash_after"] == plan["target_hash"]


@pytest.mark.parametrize("content, needle", [
    ("{not json", "schema.json:1:2"),
    ('{"tables": [{"name": "t", "columns": [{"name": "a", "type": "int", "colour": 1}]}]}',
     "unknown field"),
    ('{"dialect": "postgres", "tables": [{"name": "t", "columns": [{"name": "a", '
     '"type": "no_such_type"}]}]}', "no_such_type"),
])
def test_bad_schema_json(pg_dsn: str, tmp_path: Path, content: str, needle: str) -> None:
    pg_exec(pg_dsn, CURRENT)
    snap = pg_catalog_snapshot(pg_dsn)
    (tmp_path / "schema.json").write_text(content)
    proc = run("plan", "--from", pg_dsn, "--to", "schema.json", cwd=tmp_path)
    assert_one_line_error(proc, 2, needle)
    assert pg_catalog_snapshot(pg_dsn) == snap


def test_sql_syntax_error_names_file_and_line(pg_dsn: str, tmp_path: Path) -> None:
    (tmp_path / "schema").mkdir()
    (tmp_path / "schema" / "001.sql").write_text(
        "CREATE TABLE a (id int);\n\nCREATE TABLE b (id int,\n  oops oops oops);\n")
    proc = run("plan", "--from", pg_dsn, "--to", "schema", cwd=tmp_path)
    assert_one_line_error(proc, 2, "001.sql:4")


def test_unreachable_and_wrong_credentials(tmp_path: Path) -> None:
    proc = run("introspect", "--target", "postgresql://bob:hunter2@127.0.0.1:1/x")
    assert_one_line_error(proc, 2, "cannot connect")
    assert "hunter2" not in proc.stderr + proc.stdout
    # This server trusts local connections, so a wrong password cannot be shown to fail;
    # an unknown role and an unknown database fail the same way, password unshown.
    for dsn in ("postgresql://no_such_role_lp:hunter2@127.0.0.1:5432/postgres",
                "postgresql://postgres:hunter2@127.0.0.1:5432/no_such_db_lp"):
        proc = run("plan", "--from", dsn, "--to", dsn)
        assert_one_line_error(proc, 2, "cannot connect", "***")
        assert "hunter2" not in proc.stderr + proc.stdout


def test_missing_files_and_bad_plan(pg_dsn: str, tmp_path: Path) -> None:
    assert_one_line_error(run("apply", "nope.json", "--target", pg_dsn, "--auto-approve",
                              cwd=tmp_path), 2, "nope.json")
    assert_one_line_error(run("plan", "--from", pg_dsn, "--to", "missing_dir",
                              cwd=tmp_path), 2, "missing_dir")
    (tmp_path / "bad.json").write_text('{"steps": []}')
    assert_one_line_error(run("apply", "bad.json", "--target", pg_dsn, "--auto-approve",
                              cwd=tmp_path), 2, "source_hash")
    assert_one_line_error(run("plan", "--bogus"), 2)


def test_sqlite_plan_apply(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.executescript("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT);"
                           "INSERT INTO t (name) VALUES ('x'), ('y');")
    (tmp_path / "schema.sql").write_text(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, extra TEXT);\n"
        "CREATE INDEX t_name ON t (name);\n")
    dsn = f"sqlite:///{db}"
    proc = run("apply", "--schema", "schema.sql", "--target", dsn, "--auto-approve", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    proc = run("plan", "--from", dsn, "--to", "schema.sql", cwd=tmp_path)
    assert json.loads(proc.stdout)["steps"] == []
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 2
