"""Queries a MySQL plan file carries (a step's condition, a phase's verification) run
with the applying credentials, in a read-only transaction that on MySQL does not stop a
SELECT from writing a server file (INTO OUTFILE), reading one (LOAD_FILE) or holding the
server (SLEEP, GET_LOCK): they are judged before anything runs, as on PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from lockplane.dialects import connect, get_dialect
from lockplane.integrity import seal_plan
from lockplane.plan import Plan, StepCondition

ROOT = Path(__file__).resolve().parent.parent


def _no_key() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "LOCKPLANE_PLAN_KEY"}


@pytest.mark.parametrize("query, why", [
    ("SELECT 'x' INTO OUTFILE '/tmp/lockplane_never'", "not one MySQL expression"),
    ("SELECT EXTRACTVALUE(1, CONCAT(0x5c, LOAD_FILE('/etc/hostname')))", "LOAD_FILE"),
    ("SELECT SLEEP(5)", "SLEEP"),
    ("SELECT GET_LOCK('lockplane apply', 5)", "GET_LOCK"),
    ("SELECT count(*) FROM mysql.user", "mysql.user"),
    ("SELECT 1; DROP TABLE t", "';'"),
    ("DO SLEEP(5)", "not one MySQL expression"),
])
def test_queries_that_do_more_than_read_are_named(mysql_dsn: str, query: str,
                                                   why: str) -> None:
    with connect(mysql_dsn) as db:
        said = db.not_one_query(query)
    assert said is not None and why in said, said


def test_lockplane_s_own_queries_pass(mysql_dsn: str) -> None:
    d = get_dialect("mysql")
    with connect(mysql_dsn) as db:
        for q in (d.archive_missing_sql("_lockplane_drop_t_a_0123"),
                  "SELECT COUNT(*) = 0 FROM information_schema.STATISTICS WHERE "
                  "TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 't' AND INDEX_NAME = 'i'",
                  f"SELECT 1 FROM `t` WHERE {d.distinct_sql('`a`', '`b`')} LIMIT 1",
                  "SELECT count(*) FROM `t` WHERE `b` IS NULL"):
            assert db.not_one_query(q) is None, q


def test_an_edited_condition_does_not_write_a_server_file(mysql_dsn: str,
                                                         tmp_path: Path) -> None:
    """A plan file whose step condition became SELECT ... INTO OUTFILE (plan_id written
    again: without a signing key an id proves only consistency) wrote the file as the
    server's OS user on the shadow and the target before the step; apply now refuses it
    before anything runs (exit 3)."""
    with connect(mysql_dsn) as db:
        db.execute("CREATE TABLE t (id int PRIMARY KEY, a int)")
    schema = tmp_path / "s.sql"
    schema.write_text("CREATE TABLE t (id int PRIMARY KEY, a int, b int);\n")
    env = _no_key()
    plan_file = tmp_path / "plan.json"
    made = subprocess.run([sys.executable, "-m", "lockplane", "plan", "--from", mysql_dsn,
                           "--to", str(schema), "-o", str(plan_file)], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=300)
    assert made.returncode == 0, made.stderr
    out = f"/tmp/lockplane_condition_{uuid.uuid4().hex}"
    plan = Plan.model_validate(json.loads(plan_file.read_text()))
    plan.steps[0].condition = StepCondition(query=f"SELECT 'x' INTO OUTFILE '{out}'")
    edited = tmp_path / "edited.json"
    edited.write_text(seal_plan(plan, None).to_json())
    r = subprocess.run([sys.executable, "-m", "lockplane", "apply", str(edited), "--target",
                        mysql_dsn, "--auto-approve"], capture_output=True, text=True,
                       cwd=ROOT, env=env, timeout=300)
    assert r.returncode == 3, r.stderr
    assert "its condition must be one query that only reads" in r.stderr, r.stderr
    assert not os.path.exists(out)
    with connect(mysql_dsn) as db:
        assert [c.name for c in db.introspect().tables[0].columns] == ["id", "a"]


def test_a_trigger_reading_server_files_is_refused(mysql_dsn: str, tmp_path: Path) -> None:
    """A trigger runs as its definer, the applying account (root here): one that sets a
    column from LOAD_FILE(...) would let the application's own writes read the server's
    files. apply refuses such a step (exit 3) unless it is acknowledged, as PostgreSQL's
    privileged built-ins are."""
    with connect(mysql_dsn) as db:
        db.execute("CREATE TABLE notes (id int PRIMARY KEY, path varchar(200), body text)")
    schema = tmp_path / "s.sql"
    schema.write_text(
        "CREATE TABLE notes (id int PRIMARY KEY, path varchar(200), body text);\n"
        "CREATE TRIGGER notes_body BEFORE INSERT ON notes FOR EACH ROW "
        "SET NEW.body = LOAD_FILE(NEW.path);\n")
    args = [sys.executable, "-m", "lockplane", "apply", "--schema", str(schema), "--target",
            mysql_dsn, "--auto-approve"]
    r = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, env=_no_key(),
                       timeout=300)
    assert r.returncode == 3, r.stderr
    assert "LOAD_FILE()" in r.stderr and "privileged-function" in r.stderr, r.stderr
    with connect(mysql_dsn) as db:
        assert not db.query("SELECT TRIGGER_NAME FROM information_schema.TRIGGERS "
                            "WHERE TRIGGER_SCHEMA = DATABASE()")
    ok = subprocess.run([*args, "--acknowledge", "privileged-function"], capture_output=True,
                        text=True, cwd=ROOT, env=_no_key(), timeout=300)
    assert ok.returncode == 0, ok.stderr
