"""Plans are tamper-evident (lockplane.integrity): a plan file carries a plan_id over
everything that runs, and apply / rollback / apply-phase (and the engine under the flows)
refuse a plan whose content no longer matches it, before anything connects; with
LOCKPLANE_PLAN_KEY set, plan files must also carry a valid HMAC signature.

Real PostgreSQL databases throughout; "nothing ran" is checked on the target itself: same
catalog, same rows, no Lockplane state schema (no history row, no phase row).
"""

from __future__ import annotations

import copy
import io
import json
import os
import shlex
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from lockplane.errors import SafetyRefusal
from lockplane.execute import ApplyOptions, apply_plan
from lockplane.integrity import PLAN_KEY_ENV, multiphase_plan_id, plan_id, seal_plan
from lockplane.plan import Plan
from tests.cli_inprocess import Result, completed, lockplane
from tests.conftest import _drop_later, _new_pg_database, _pg_dsn_for, pg_exec

KEY = "correct horse battery staple"
OTHER_KEY = "another key entirely"

CURRENT = """
CREATE TABLE users (id integer PRIMARY KEY, email text NOT NULL, nick text);
INSERT INTO users VALUES (1, 'a@x', 'a'), (2, 'b@x', NULL);
"""
# Three steps: add a column (rollback: drop it), drop a column (dangerous, with a
# finding), and a CREATE INDEX CONCURRENTLY (outside a transaction, with a clean-up).
DESIRED = """
CREATE TABLE users (id integer PRIMARY KEY, email text NOT NULL, created_at timestamptz);
CREATE INDEX users_email ON users (email);
"""
EVIL = 'DROP TABLE "public"."users"'


@pytest.fixture(autouse=True)
def _no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PLAN_KEY_ENV, raising=False)


def db_state(dsn: str) -> tuple[Any, ...]:
    """The target as a change could touch it, and whether Lockplane recorded anything."""
    with psycopg.connect(dsn) as conn:
        columns = conn.execute(
            "SELECT table_schema, table_name, column_name, data_type "
            "FROM information_schema.columns WHERE table_schema NOT IN "
            "('pg_catalog', 'information_schema') ORDER BY 1, 2, 3").fetchall()
        indexes = conn.execute("SELECT schemaname, indexname, indexdef FROM pg_indexes "
                               "WHERE schemaname NOT LIKE 'pg_%' ORDER BY 1, 2").fetchall()
        rows = conn.execute("SELECT * FROM users ORDER BY id").fetchall()
        state = conn.execute("SELECT to_regnamespace('lockplane')").fetchone()[0]
    return columns, indexes, rows, state


def history_rows(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        if conn.execute("SELECT to_regclass('lockplane.migrations')").fetchone()[0] is None:
            return 0
        return conn.execute("SELECT count(*) FROM lockplane.migrations").fetchone()[0]


def refused(result: Result, code: int, *needles: str) -> None:
    """Exit ``code``, one error line, no traceback, and each needle in that line."""
    assert result.code == code, result
    assert "Traceback" not in result.output and "internal error" not in result.output, result
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert lines and lines[-1].startswith("error:"), result
    for n in needles:
        assert n in lines[-1], (n, result)


def step_of(plan: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(s for s in plan["steps"] if s.get("kind") == kind)


def write(path: Path, data: dict[str, Any]) -> str:
    path.write_text(json.dumps(data, indent=2))
    return str(path)


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Any]]]:
    """One target at CURRENT and the plan file to DESIRED (nothing in this module that
    uses it may change it: every apply of a tampered plan must be refused)."""
    os.environ.pop(PLAN_KEY_ENV, None)
    name = _new_pg_database()  # (made ahead: conftest's pool)
    dsn = _pg_dsn_for(name)
    try:
        pg_exec(dsn, CURRENT)
        work = tmp_path_factory.mktemp("planned")
        (work / "desired.sql").write_text(DESIRED)
        r = lockplane("plan", "--from", dsn, "--to", "desired.sql", "-o", "plan.json", "-q",
                      cwd=work)
        assert r.code == 0, r
        yield dsn, json.loads((work / "plan.json").read_text())
    finally:
        _drop_later(name)


def test_plan_file_carries_its_id(planned: tuple[str, dict[str, Any]]) -> None:
    _, data = planned
    assert data["plan_id"] == plan_id(Plan.model_validate(data))
    assert len(data["plan_id"]) == 64 and "signature" not in data
    # A function of the content only: formatting, key order and spelled-out defaults
    # do not change it.
    reordered = json.loads(json.dumps(data, sort_keys=True))
    for step in reordered["steps"]:
        step.setdefault("measured", None)
        step.setdefault("cleanup_reverts_previous", False)
    assert plan_id(Plan.model_validate(reordered)) == data["plan_id"]
    # What only a reader sees (prose, lock measurements) is not part of it.
    prose = copy.deepcopy(data)
    prose["steps"][0]["description"] = "Something else"
    prose["steps"][0]["messages"] = ["reworded"]
    prose["steps"][0]["measured"] = {"duration_ms": 12}
    prose["lockplane_version"] = "9.9"
    assert plan_id(Plan.model_validate(prose)) == data["plan_id"]


def _sql(p: dict[str, Any]) -> None:
    step = step_of(p, "add_column")
    step["sql"] = [s.replace('"created_at"', '"pwned"') for s in step["sql"]]


def _cleanup(p: dict[str, Any]) -> None:
    step_of(p, "create_index")["cleanup"] = [EVIL]


def _cleanup_reverts_previous(p: dict[str, Any]) -> None:
    step_of(p, "create_index")["cleanup_reverts_previous"] = True


def _backfill(p: dict[str, Any]) -> None:
    step_of(p, "add_column")["backfill"] = {"schema": "public", "table": "users",
                                            "column": "email", "expression": "'x'"}


def _rollback(p: dict[str, Any]) -> None:
    step_of(p, "add_column")["rollback"]["sql"].append(EVIL)


def _rollback_lock(p: dict[str, Any]) -> None:
    # What the rollback's confirmation shows, and what its apply check reads to know the
    # undo rewrites a table: not covered by the id before (a signed plan stayed signed).
    step_of(p, "add_column")["rollback"]["lock"] = {
        "mode": "ACCESS SHARE", "blocks_reads": False, "blocks_writes": False,
        "rewrites_table": False}


def _source_hash(p: dict[str, Any]) -> None:
    p["source_hash"] = "0" * 64


def _target_hash(p: dict[str, Any]) -> None:
    p["target_hash"] = "0" * 64


def _appended(p: dict[str, Any]) -> None:
    p["steps"].append({"description": "Analyze users", "sql": [EVIL], "safety": "safe"})


def _removed(p: dict[str, Any]) -> None:
    p["steps"].remove(step_of(p, "add_column"))


def _reordered(p: dict[str, Any]) -> None:
    p["steps"].reverse()


def _safety(p: dict[str, Any]) -> None:
    step = step_of(p, "drop_column")
    step["safety"] = "safe"
    for f in step["findings"]:
        f["safety"] = "safe"


def _transactional(p: dict[str, Any]) -> None:
    step_of(p, "create_index")["transactional"] = True


def _hash_format(p: dict[str, Any]) -> None:
    p["hash_format"] = 1


TAMPERINGS: dict[str, Callable[[dict[str, Any]], None]] = {
    "step sql": _sql, "cleanup": _cleanup, "cleanup_reverts_previous": _cleanup_reverts_previous,
    "backfill spec": _backfill, "rollback sql": _rollback, "rollback lock": _rollback_lock,
    "source_hash": _source_hash,
    "target_hash": _target_hash, "appended step": _appended, "removed step": _removed,
    "reordered steps": _reordered, "safety class": _safety, "transactional": _transactional,
    "hash_format": _hash_format,
}


@pytest.mark.parametrize("what", list(TAMPERINGS))
def test_tampered_plan_is_refused_before_anything_runs(
        what: str, planned: tuple[str, dict[str, Any]], tmp_path: Path) -> None:
    dsn, data = planned
    tampered = copy.deepcopy(data)
    TAMPERINGS[what](tampered)
    path = write(tmp_path / "plan.json", tampered)
    before = db_state(dsn)
    assert before[3] is None  # no Lockplane state yet
    # permissive and acknowledged: without the id check every one of these would run.
    r = lockplane("apply", path, "--target", dsn, "--auto-approve", "--safety", "permissive",
                  "--skip-shadow")
    refused(r, 3, path, data["plan_id"][:16], "does not match")
    assert db_state(dsn) == before  # nothing ran: no DDL, no history, no state schema


@pytest.mark.parametrize("what", ["rollback sql", "rollback lock", "step sql", "removed step"])
def test_rollback_refuses_a_tampered_plan(what: str, planned: tuple[str, dict[str, Any]],
                                          tmp_path: Path) -> None:
    dsn, data = planned
    tampered = copy.deepcopy(data)
    TAMPERINGS[what](tampered)
    path = write(tmp_path / "plan.json", tampered)
    before = db_state(dsn)
    r = lockplane("rollback", path, "--target", dsn, "--auto-approve", "--safety",
                  "permissive", "--skip-shadow")
    refused(r, 3, path, "does not match")
    assert db_state(dsn) == before
    # plan-rollback does not derive (nor sign) a rollback from it either.
    refused(lockplane("plan-rollback", "--plan", path), 3, path, "does not match")


def test_refused_before_connecting(planned: tuple[str, dict[str, Any]], tmp_path: Path) -> None:
    """A target that cannot be reached would be exit 2: exit 3 shows the check came first."""
    _, data = planned
    tampered = copy.deepcopy(data)
    _cleanup(tampered)
    path = write(tmp_path / "plan.json", tampered)
    unreachable = "postgresql://postgres@127.0.0.1:1/nowhere"
    refused(lockplane("apply", path, "--target", unreachable, "--auto-approve"), 3, path)
    refused(lockplane("rollback", path, "--target", unreachable, "--auto-approve"), 3, path)


def test_the_engine_refuses_a_tampered_plan_object(planned: tuple[str, dict[str, Any]]) -> None:
    """apply_plan checks too (the Prefect tasks call it): a Plan whose stored id does not
    match, handed over in-process, never reaches the database."""
    dsn, data = planned
    tampered = copy.deepcopy(data)
    _appended(tampered)
    before = db_state(dsn)
    with pytest.raises(SafetyRefusal, match="does not match"):
        apply_plan(Plan.model_validate(tampered), dsn,
                   ApplyOptions(safety="permissive", skip_shadow=True))
    assert db_state(dsn) == before


def test_what_the_operator_confirms_is_everything_that_runs(
        planned: tuple[str, dict[str, Any]], tmp_path: Path) -> None:
    dsn, data = planned
    path = write(tmp_path / "plan.json", data)
    before = db_state(dsn)
    # No --auto-approve and no terminal: the plan is shown, then the apply is refused.
    r = lockplane("apply", path, "--target", dsn, "--skip-shadow", "--safety", "permissive")
    refused(r, 2, "confirmation needed")  # no terminal to ask on: a usage error
    assert db_state(dsn) == before
    assert f"plan_id {data['plan_id']}" in r.stderr
    assert "clean-up, before each attempt and after a failure:" in r.stderr
    assert 'DROP INDEX CONCURRENTLY IF EXISTS "public"."users_email"' in r.stderr
    # The SQL script for review says the same.
    work = tmp_path / "sql"
    work.mkdir()
    (work / "desired.sql").write_text(DESIRED)
    r = lockplane("plan", "--from", dsn, "--to", "desired.sql", "--format", "sql", "-q",
                  cwd=work)
    assert r.code == 0, r
    assert f"-- plan_id {data['plan_id']}" in r.stdout
    assert '--   DROP INDEX CONCURRENTLY IF EXISTS "public"."users_email";' in r.stdout


def test_backfill_steps_show_the_batched_update() -> None:
    from rich.console import Console

    from lockplane import report
    from lockplane.plan import Step
    from lockplane.sqlscript import plan_sql

    step = Step(description="Backfill public.users.mail = email (in batches)",
                sql=['UPDATE "public"."users" SET "mail" = "email"'], transactional=False,
                backfill={"schema": "public", "table": "users", "column": "mail",
                          "expression": '"email"', "where": '"mail" IS NULL'})
    plan = Plan(source_hash="a" * 64, target_hash="a" * 64, dialect="postgres", steps=[step])
    batched = ('UPDATE "public"."users" SET "mail" = ("email") WHERE '
               '<the batch\'s key range> AND ("mail" IS NULL)')
    assert f"-- Each batch runs: {batched};" in plan_sql(plan)
    buf = io.StringIO()
    saved, report._console = report._console, Console(file=buf, width=10_000,
                                                       color_system=None)
    try:
        report.print_plan(plan)
    finally:
        report._console = saved
    assert batched in buf.getvalue() and f"plan_id {plan_id(plan)}" in buf.getvalue()


# ------------------------------------------------------------------------ conditions
# A step's condition (StepCondition: "the step runs only where this counts 0") runs on the
# target, in the apply's own writable transaction, before the step. The id covers it, but
# without a key an id proves only that the file is consistent: on 87d8a5e a condition
# edited into a plan and resealed ran (a WITH ... DELETE emptied a table), and the
# confirmation did not show it. Now it must be one query that only reads (exit 3 before
# anything runs, whatever is acknowledged), and it is shown with its step.
CONDITIONS = {
    "data-modifying WITH": ("WITH d AS (DELETE FROM users RETURNING 1) "
                            "SELECT count(*) - count(*) FROM d", "DELETE in a WITH"),
    "two statements": ("SELECT 0; DELETE FROM users", "2 statements"),
    "SELECT INTO": ("SELECT 0 INTO pwned", "SELECT INTO"),
    "FOR UPDATE": ("SELECT count(*) FROM (SELECT id FROM users FOR UPDATE) AS u",
                   "locks the rows"),
    "not a query": ("DELETE FROM users RETURNING 0", "DELETE, not a SELECT"),
}


def _resealed(data: dict[str, Any], query: str) -> dict[str, Any]:
    tampered = copy.deepcopy(data)
    step_of(tampered, "add_column")["condition"] = {"query": query}
    return seal_plan(Plan.model_validate(tampered)).model_dump(mode="json", by_alias=True,
                                                               exclude_none=True)


@pytest.mark.parametrize("what", list(CONDITIONS))
def test_a_step_s_condition_only_reads(what: str, planned: tuple[str, dict[str, Any]],
                                       tmp_path: Path) -> None:
    dsn, data = planned
    query, why = CONDITIONS[what]
    path = write(tmp_path / "plan.json", _resealed(data, query))
    before = db_state(dsn)
    r = lockplane("apply", path, "--target", dsn, "--auto-approve", "--safety", "permissive",
                  "--acknowledge", "privileged-function", "--skip-shadow")
    refused(r, 3, "step 1", "its condition must be one query that only reads", why)
    assert db_state(dsn) == before


def test_a_step_s_condition_only_reads_sqlite(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (id integer PRIMARY KEY, v text)")
        conn.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b')")
    conn.close()
    (tmp_path / "s.sql").write_text("CREATE TABLE t (id integer PRIMARY KEY, v text, w text);")
    dsn = f"sqlite:///{db}"
    r = lockplane("plan", "--from", dsn, "--to", "s.sql", "-o", "p.json", "-q", cwd=tmp_path)
    assert r.code == 0, r
    data = json.loads((tmp_path / "p.json").read_text())
    for query, why in (("DELETE FROM t RETURNING 0", "changes rows"),
                       ("SELECT 0; DELETE FROM t", "one statement"),
                       ("SELECT count(*) FROM pragma_table_info('t') WHERE name = 'zz'",
                        None)):
        path = write(tmp_path / "plan.json", _resealed(data, query))
        r = lockplane("apply", path, "--target", dsn, "--auto-approve", "--safety",
                      "permissive", "--skip-shadow", cwd=tmp_path)
        if why is None:  # a query that only reads: it counts 0, and the step runs
            assert r.code == 0, r
            continue
        refused(r, 3, "its condition must be one query that only reads", why)
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 2
        conn.close()


def test_a_step_s_condition_is_shown_with_its_step(planned: tuple[str, dict[str, Any]],
                                                   tmp_path: Path) -> None:
    from lockplane.markdown import plan_markdown
    from lockplane.sqlscript import plan_sql

    dsn, data = planned
    query = 'SELECT count(*) FROM "public"."users" WHERE "id" < 0'
    sealed = _resealed(data, query)
    path = write(tmp_path / "plan.json", sealed)
    before = db_state(dsn)
    r = lockplane("apply", path, "--target", dsn, "--skip-shadow", "--safety", "permissive")
    refused(r, 2, "confirmation needed")
    assert db_state(dsn) == before
    assert "runs only where this counts 0" in r.stderr and query in r.stderr
    plan = Plan.model_validate(sealed)
    assert query in plan_sql(plan) and query in plan_markdown(plan, "db")
    # The pull request's comment (what a reviewer approves, and CI then signs) too, with
    # the clean-up of the index step.
    from lockplane.ci_report import build_report

    comment, _ = build_report(plan=plan, level="permissive")
    assert query in comment and "clean-up, before each attempt and after a failure" in comment


def test_names_cannot_end_a_comment_in_the_sql_script(tmp_path: Path) -> None:
    """plan --format sql writes each step's description as a comment: with a table named
    't\rDROP TABLE ...' (a carriage return ends a -- comment for PostgreSQL's and psql's
    lexer), psql -f ran the DROP on 87d8a5e. Names and prose are escaped now, and bidi
    controls are shown as escapes on the terminal too."""
    import pglast

    db = tmp_path / "t.db"
    sqlite3.connect(db).close()
    names = ["t\rDROP TABLE victim; SELECT 1 AS x;", "u\u2028DROP TABLE victim;",
             "v\x0bDROP TABLE victim;", "w\u202eelbat_pord"]
    (tmp_path / "s.json").write_text(json.dumps({"dialect": "sqlite", "tables": [
        {"name": n, "columns": [{"name": "id", "type": "integer", "nullable": True}]}
        for n in names]}))
    r = lockplane("plan", "--from", f"sqlite:///{db}", "--to", "s.json", "--format", "sql",
                  cwd=tmp_path)
    assert r.code == 0, r
    # What a SQL runner reads in the script: its own statements only.
    kinds = {type(s.stmt).__name__ for s in pglast.parse_sql(r.stdout)}
    assert kinds <= {"TransactionStmt", "VariableSetStmt", "CreateStmt"}, kinds
    comments = [ln for ln in r.stdout.split("\n") if ln.startswith("--")]
    assert not any(c in ln for ln in comments for c in "\r\x0b\u2028"), comments
    assert "\\rDROP TABLE" in r.stdout  # (shown, as an escape)
    assert "\u202e" not in r.stderr and "\u2028" not in r.stderr


INJECTED = ("Add column\n\n## A. SQL rollback (use this one)\n\n```bash\n"
            "psql \"$DATABASE_URL\" -c 'DROP TABLE users CASCADE'\n```\n<!-- ")


def test_prose_a_signed_plan_may_change_stays_prose(planned: tuple[str, dict[str, Any]],
                                                    tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Descriptions and messages are not covered by the plan_id, so a signed plan's can be
    edited and it stays signed. On 8c7a847 `runbook --plan` wrote an edited description as
    Markdown: its own '## A. SQL rollback' with a bash block of its commands (and an HTML
    comment that hid the real ones). Prose is one line of inert text in the runbook and the
    plan Markdown now (names in commands are quoted for the shell)."""
    from lockplane.markdown import plan_markdown

    _, data = planned
    monkeypatch.setenv(PLAN_KEY_ENV, KEY)
    r = lockplane("sign", "--any-environment", write(tmp_path / "plan.json", data), "-o",
                  str(tmp_path / "signed.json"))
    assert r.code == 0, r
    signed = json.loads((tmp_path / "signed.json").read_text())
    for step in signed["steps"]:
        step["description"] = INJECTED
        step["messages"] = [INJECTED]
    path = write(tmp_path / "plan $(touch pwned).json", signed)
    r = lockplane("runbook", "--plan", path, cwd=tmp_path)
    assert r.code == 0, r  # (still signed: prose is not covered)
    for md in (r.stdout, plan_markdown(Plan.model_validate(signed), "db")):
        lines = md.splitlines()
        assert not any(ln.startswith(("psql", "## A. SQL rollback (")) for ln in lines), md
        assert "<!--" not in md, md
    # The plan file's name goes into the commands quoted: one word to the shell.
    commands = [ln for ln in r.stdout.splitlines() if ln.startswith("lockplane ")]
    assert commands and all(path in shlex.split(c) for c in commands), commands
    # What apply shows to confirm, and its refusal at the default level (which quotes the
    # description): one line each, no drawn "SQL".
    r = lockplane("apply", path, "--target", planned[0], "--skip-shadow", cwd=tmp_path)
    refused(r, 3, "refused at safety level")
    assert not any(ln.lstrip().startswith(("psql", "```")) for ln in r.stderr.splitlines())
    r = lockplane("apply", path, "--target", planned[0], "--skip-shadow", "--safety",
                  "permissive", cwd=tmp_path)
    refused(r, 2, "confirmation needed")
    assert not any(ln.lstrip().startswith(("psql", "```")) for ln in r.stderr.splitlines())


# ------------------------------------------------------------------------ old format
def test_original_format_plan_still_applies(pg_dsn: str, tmp_path: Path,
                                           planned: tuple[str, dict[str, Any]],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    pg_exec(pg_dsn, CURRENT)
    _, data = planned
    old = {"source_hash": data["source_hash"],
           "steps": [{"description": s["description"], "sql": s["sql"]}
                     for s in data["steps"] if s["transactional"]]}
    path = write(tmp_path / "old.json", old)
    # With a key set an original-format plan is unsigned: refused until signed.
    monkeypatch.setenv(PLAN_KEY_ENV, KEY)
    before = db_state(pg_dsn)
    refused(lockplane("apply", path, "--target", pg_dsn, "--auto-approve", "--safety",
                      "permissive"), 3, "not signed")
    assert db_state(pg_dsn) == before
    monkeypatch.delenv(PLAN_KEY_ENV)
    r = lockplane("apply", path, "--target", pg_dsn, "--auto-approve", "--safety",
                  "permissive")
    assert r.code == 0, r
    assert history_rows(pg_dsn) == 1
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT to_regclass('users_email')").fetchone()[0] is None
        assert conn.execute("SELECT count(*) FROM information_schema.columns WHERE "
                            "column_name = 'created_at'").fetchone()[0] == 1


# ------------------------------------------------------------------------ signing
def run(*args: str, cwd: Path, key: str | None) -> subprocess.CompletedProcess[str]:
    """The real console script, in its own process (what a CI job runs)."""
    env = {k: v for k, v in os.environ.items() if k not in (PLAN_KEY_ENV, "LOCKPLANE_DEBUG")}
    env["COLUMNS"] = "300"
    if key is not None:
        env[PLAN_KEY_ENV] = key
    return subprocess.run([sys.executable, "-m", "lockplane", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=180)


def in_process(*args: str, cwd: Path, key: str | None) -> subprocess.CompletedProcess[str]:
    """The same command line in this process (tests/cli_inprocess.py: the console
    script's entry point, the key read from the environment as it is at each run)."""
    saved = {k: os.environ.pop(k) for k in (PLAN_KEY_ENV,) if k in os.environ}
    if key is not None:
        os.environ[PLAN_KEY_ENV] = key
    try:
        return completed(*args, cwd=cwd)
    finally:
        os.environ.pop(PLAN_KEY_ENV, None)
        os.environ.update(saved)


def one_line(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines[-1].startswith("error:"), proc.stderr
    for n in needles:
        assert n in lines[-1], (n, proc.stderr)


def test_signed_plan_workflow(pg_dsn: str, tmp_path: Path) -> None:
    pg_exec(pg_dsn, CURRENT)
    (tmp_path / "desired.sql").write_text(DESIRED)
    outputs: list[str] = []

    def cli(*args: str, key: str | None = KEY,
            process: bool = False) -> subprocess.CompletedProcess[str]:
        # The console script in its own process (what a CI job runs) where marked;
        # the other steps in this process (~1.5 s of start-up each spared).
        proc = (run if process else in_process)(*args, cwd=tmp_path, key=key)
        outputs.extend([proc.stdout, proc.stderr])
        return proc

    # Planned without the key: reviewed, then refused while the key is set.
    assert cli("plan", "--from", pg_dsn, "--to", "desired.sql", "-o", "plan.json",
               key=None).returncode == 0
    unsigned = json.loads((tmp_path / "plan.json").read_text())
    assert "signature" not in unsigned
    before = db_state(pg_dsn)
    one_line(cli("apply", "plan.json", "--target", pg_dsn, "--auto-approve", process=True),
             3, "plan.json", "not signed", unsigned["plan_id"][:16])
    # lockplane sign, after review: needs the key; signs exactly that content.
    one_line(cli("sign", "plan.json", key=None), 2, PLAN_KEY_ENV)
    proc = cli("sign", "plan.json", "--any-environment", "--output", "signed.json")
    assert proc.returncode == 0, proc.stderr
    signed = json.loads((tmp_path / "signed.json").read_text())
    assert signed["plan_id"] == unsigned["plan_id"]
    assert signed["signature"].startswith("hmac-sha256:")
    # Another key: refused, saying so.
    one_line(cli("apply", "signed.json", "--target", pg_dsn, "--auto-approve",
                 key=OTHER_KEY), 3, "signed.json", "another key")
    # Edited after signing, plan_id recomputed to match: the signature gives it away.
    forged = copy.deepcopy(signed)
    _cleanup(forged)
    forged["plan_id"] = plan_id(Plan.model_validate(forged))
    write(tmp_path / "forged.json", forged)
    one_line(cli("apply", "forged.json", "--target", pg_dsn, "--auto-approve"), 3,
             "forged.json", "signature does not match")
    # sign will not bless an edit made after the plan was written.
    edited = copy.deepcopy(unsigned)
    _sql(edited)
    write(tmp_path / "edited.json", edited)
    one_line(cli("sign", "edited.json", "--any-environment"), 3, "edited.json", "does not match")
    # A malformed signature field is bad input.
    broken = {**signed, "signature": "sha1:abc"}
    write(tmp_path / "broken.json", broken)
    one_line(cli("apply", "broken.json", "--target", pg_dsn, "--auto-approve"), 2,
             "broken.json", "signature")
    # An empty key (an unresolved CI secret) does not switch the checks off.
    one_line(cli("apply", "plan.json", "--target", pg_dsn, "--auto-approve", key=""), 2,
             PLAN_KEY_ENV, "empty")
    assert db_state(pg_dsn) == before and history_rows(pg_dsn) == 0
    # The signed plan, with the key: applied.
    proc = cli("apply", "signed.json", "--target", pg_dsn, "--auto-approve", "--safety",
               "permissive", process=True)
    assert proc.returncode == 0, proc.stderr
    assert f"plan_id {signed['plan_id']}" in proc.stderr
    assert history_rows(pg_dsn) == 1
    # ... and rolled back with it (the signed forward plan's rollback).
    # (shadow validation, which the apply above ran, is not what signing changes)
    proc = cli("rollback", "signed.json", "--target", pg_dsn, "--auto-approve", "--safety",
               "permissive", "--skip-shadow")
    assert proc.returncode == 0, proc.stderr
    def public(state: tuple[Any, ...]) -> list[Any]:
        return [c for c in state[0] if c[0] == "public"]

    assert public(db_state(pg_dsn)) == public(before)  # (nick is back; its values are not)
    # A plan written with the key set is signed at once, and applies with it.
    assert cli("plan", "--from", pg_dsn, "--to", "desired.sql", "-o", "direct.json",
               "-q").returncode == 0
    direct = json.loads((tmp_path / "direct.json").read_text())
    assert direct["signature"].split(":")[1] == signed["signature"].split(":")[1]  # key id
    proc = cli("apply", "direct.json", "--target", pg_dsn, "--auto-approve", "--safety",
               "permissive", "--skip-shadow")
    assert proc.returncode == 0, proc.stderr
    # The key itself never appears anywhere.
    texts = outputs + [p.read_text() for p in tmp_path.glob("*.json")]
    assert not any(KEY in t or OTHER_KEY in t for t in texts)


# ------------------------------------------------------------------------ multi-phase
def _plan_multiphase(dsn: str, work: Path) -> tuple[str, dict[str, Any]]:
    pg_exec(dsn, CURRENT)
    r = lockplane("plan-multiphase", "--pattern", "rename_column", "--table", "users",
                  "--column", "email", "--to-name", "mail", "--from", dsn,
                  "-o", "mp.json", cwd=work)
    assert r.code == 0, r
    return dsn, json.loads((work / "mp.json").read_text())


@pytest.fixture
def multiphase(pg_dsn: str, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    """A target of its own and its multi-phase plan (mp.json in tmp_path): for a test
    that applies a phase."""
    return _plan_multiphase(pg_dsn, tmp_path)


@pytest.fixture(scope="module")
def multiphase_refused(tmp_path_factory: pytest.TempPathFactory
                       ) -> Iterator[tuple[str, dict[str, Any]]]:
    """One target and its multi-phase plan for the tests below that only read it or
    check that a tampered plan changes nothing on it (each asserts it is untouched)."""
    os.environ.pop(PLAN_KEY_ENV, None)
    name = _new_pg_database()  # (made ahead: conftest's pool)
    try:
        yield _plan_multiphase(_pg_dsn_for(name), tmp_path_factory.mktemp("multiphase"))
    finally:
        _drop_later(name)


def _backfill_step(mp: dict[str, Any]) -> dict[str, Any]:
    return next(s for p in mp["phases"] for s in p["plan"]["steps"] if s.get("backfill"))


def test_multiphase_plans_carry_ids(multiphase_refused: tuple[str, dict[str, Any]]) -> None:
    from lockplane.multiphase.model import MultiPhasePlan

    _, data = multiphase_refused
    mp = MultiPhasePlan.model_validate(data)
    assert data["plan_id"] == multiphase_plan_id(mp)
    for p in mp.phases:
        assert p.plan.plan_id == plan_id(p.plan)
        assert p.rollback.plan is None or p.rollback.plan.plan_id == plan_id(p.rollback.plan)


@pytest.mark.parametrize("what", ["backfill expression", "verification", "deploy gate",
                                  "phase sql with its own id recomputed"])
def test_apply_phase_refuses_a_tampered_multiphase_plan(
        what: str, multiphase_refused: tuple[str, dict[str, Any]], tmp_path: Path) -> None:
    dsn, data = multiphase_refused
    tampered = copy.deepcopy(data)
    if what == "backfill expression":
        _backfill_step(tampered)["backfill"]["expression"] = "'overwritten'"
    elif what == "verification":
        tampered["phases"][0]["verification"] = [{"description": "ok", "sql": "SELECT 1 "
                                                  "WHERE false"}]
    elif what == "deploy gate":
        tampered["phases"][0]["requires_code_deploy"] = False
    else:
        phase = tampered["phases"][0]["plan"]
        phase["steps"][0]["sql"].append(EVIL)
        phase["plan_id"] = plan_id(Plan.model_validate(phase))
    path = write(tmp_path / "tampered.json", tampered)
    before = db_state(dsn)
    r = lockplane("apply-phase", path, "--next", "--target", dsn, "--auto-approve",
                  "--safety", "permissive", "--skip-shadow")
    refused(r, 3, path, "does not match")
    assert db_state(dsn) == before  # no phase ran, no migration was even registered
    refused(lockplane("rollback-phase", path, "--target", dsn, "--auto-approve"), 3, path)
    refused(lockplane("verify-phase", path, "--target", dsn), 3, path)


def test_multiphase_signing(multiphase: tuple[str, dict[str, Any]], tmp_path: Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    dsn, data = multiphase
    before = db_state(dsn)
    monkeypatch.setenv(PLAN_KEY_ENV, KEY)
    refused(lockplane("apply-phase", "mp.json", "--next", "--target", dsn, "--auto-approve",
                      cwd=tmp_path), 3, "not signed")
    assert db_state(dsn) == before
    r = lockplane("sign", "mp.json", "--any-environment", "-o", "mp.signed.json", cwd=tmp_path)
    assert r.code == 0, r
    signed = json.loads((tmp_path / "mp.signed.json").read_text())
    assert signed["plan_id"] == data["plan_id"] and signed["signature"]
    # The phases are covered by the one signature: change one, recompute every id below
    # and at the top, and the signature no longer matches.
    from lockplane.multiphase.model import MultiPhasePlan

    forged = copy.deepcopy(signed)
    _backfill_step(forged)["backfill"]["expression"] = "'overwritten'"
    for p in forged["phases"]:
        p["plan"]["plan_id"] = plan_id(Plan.model_validate(p["plan"]))
    forged["plan_id"] = multiphase_plan_id(MultiPhasePlan.model_validate(forged))
    write(tmp_path / "forged.json", forged)
    refused(lockplane("apply-phase", "forged.json", "--next", "--target", dsn,
                      "--auto-approve", cwd=tmp_path), 3, "signature does not match")
    assert db_state(dsn) == before
    r = lockplane("apply-phase", "mp.signed.json", "--next", "--target", dsn,
                  "--auto-approve", "--skip-shadow", cwd=tmp_path)
    assert r.code == 0, r


def test_multiphase_flow_refuses_a_tampered_plan(
        prefect_api: str, multiphase_refused: tuple[str, dict[str, Any]]) -> None:
    from flows.multiphase_migration import multiphase_migration

    dsn, data = multiphase_refused
    tampered = copy.deepcopy(data)
    _backfill_step(tampered)["backfill"]["expression"] = "'overwritten'"
    before = db_state(dsn)
    state = multiphase_migration(plan=json.dumps(tampered), target=dsn,
                                 approval_timeout_s=5, return_state=True)
    assert state.is_failed()
    with pytest.raises(SafetyRefusal, match="does not match"):
        state.result()
    assert db_state(dsn) == before


def test_multiphase_flow_refuses_a_plan_signed_for_another_environment(
        prefect_api: str, multiphase_refused: tuple[str, dict[str, Any]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The flow's target names its environment by its DatabaseTarget block's name; a raw
    DSN names none: a plan signed for staging only is refused there, before it connects."""
    from flows.multiphase_migration import multiphase_migration
    from lockplane.integrity import seal_multiphase
    from lockplane.multiphase.model import MultiPhasePlan

    dsn, data = multiphase_refused
    signed = seal_multiphase(MultiPhasePlan.model_validate(data), KEY.encode(), ["staging"])
    monkeypatch.setenv(PLAN_KEY_ENV, KEY)
    before = db_state(dsn)
    state = multiphase_migration(plan=signed.to_json(), target=dsn, approval_timeout_s=5,
                                 return_state=True)
    assert state.is_failed()
    with pytest.raises(SafetyRefusal, match="signed for environment staging only"):
        state.result()
    assert db_state(dsn) == before


def test_seal_plan_round_trips() -> None:
    plan = Plan(source_hash="a" * 64, target_hash="b" * 64, dialect="sqlite")
    sealed = seal_plan(plan, KEY.encode())
    again = Plan.model_validate_json(sealed.to_json())
    assert again.plan_id == plan_id(plan) and again.signature == sealed.signature
    assert KEY not in sealed.to_json()


def test_a_key_written_twice_is_refused(planned: tuple[str, dict[str, Any]],
                                        tmp_path: Path) -> None:
    """A reviewer reading the file sees the first "sql"; JSON parsers keep the last. With
    the id recomputed over what is parsed, only refusing the file keeps both the same."""
    dsn, data = planned
    text = json.dumps(data, indent=2)
    assert text.count('"sql": [') > 1
    path = tmp_path / "plan.json"
    path.write_text(text.replace('"sql": [', '"sql": ["SELECT 1"], "sql": [', 1))
    before = db_state(dsn)
    r = lockplane("apply", str(path), "--target", dsn, "--auto-approve", "--skip-shadow")
    refused(r, 2, str(path), "'sql' appears twice")
    assert db_state(dsn) == before


def _outside_fences(md: str) -> list[str]:
    """The lines of ``md`` that are Markdown (not inside a fenced block, which CommonMark
    closes only with a fence of the same character at least as long)."""
    out: list[str] = []
    fence = ""
    for ln in md.splitlines():
        run = ln[:len(ln) - len(ln.lstrip("`"))]
        if fence:
            if len(run) >= len(fence) and not ln.strip("`").strip():
                fence = ""
        elif len(run) >= 3:
            fence = run
        else:
            out.append(ln)
    return out


def test_multiphase_prose_stays_prose(multiphase_refused: tuple[str, dict[str, Any]]) -> None:
    """A multi-phase plan's names, descriptions, code changes and notes are not covered by
    its plan_id, and the approver's name and comment come from a form. On f1e267a the
    approval page an operator follows wrote them as Markdown (a code change could add its
    own '## 3. Approve' with commands); now each is one line of inert text, SQL in a fence
    no line closes, the plan's path quoted in the commands."""
    from lockplane.multiphase.markdown import (
        approval_markdown,
        phase_applied_markdown,
        rejected_markdown,
        verification_markdown,
    )
    from lockplane.multiphase.model import MultiPhasePlan
    from lockplane.multiphase.runner import VerificationResult

    _, data = multiphase_refused
    edited = copy.deepcopy(data)
    edited["description"] = INJECTED
    for p in edited["phases"]:
        p["name"] = p["description"] = INJECTED
        p["code_changes_required"] = [INJECTED]
        p["rollback"]["description"] = p["rollback"]["note"] = INJECTED
        for v in p["verification"]:
            v["description"] = INJECTED
            v["sql"] += "\n```\n## Approved\n"
    mp = MultiPhasePlan.model_validate(edited)
    phase = mp.phases[0]
    # Read as one line each (what the terminal shows of them too).
    assert "\n" not in phase.code_changes_required[0] + phase.name + mp.description
    ref = "plan $(touch pwned).json"
    pages = [
        approval_markdown(mp, phase, "db", ref),
        phase_applied_markdown(mp, phase, {"status": "applied", "warnings": [INJECTED]}, "db"),
        verification_markdown(mp, phase, [VerificationResult(
            description=INJECTED, sql=phase.verification[0].sql, passed=False,
            error=INJECTED)] if phase.verification else []),
        rejected_markdown(mp, phase, INJECTED, INJECTED, "db", ref, False),
    ]
    for md in pages:
        lines = _outside_fences(md)
        assert not any(ln.startswith(("psql", "## A. SQL rollback (", "## Approved"))
                       for ln in lines), md
        assert "<!--" not in md, md
        for c in (ln for ln in lines if ln.startswith("lockplane rollback-phase")):
            assert ref in shlex.split(c), c


def test_row_values_stay_text_in_the_merge_preview() -> None:
    """Rows come from the application's users. The preview an operator approves before
    rows merge back into production wrote their values as Markdown with only '|' and
    newlines escaped: a value holding '<!--' hid the rest (what would be updated) once the
    artifact was rendered, on c001465."""
    from lockplane.backup.rows import MergePreview, preview_markdown

    evil = "x <!-- [click](https://evil.example) <img src=x>\n## Approved"
    p = MergePreview(merge_id="m1", backup_id="b1", table="public.t", on_conflict="update",
                     where="note <> ''", rows=2, done_before=0, status="new", insert=1,
                     update=1, sample_insert=[{"row": {"id": 1, "note": evil}}],
                     sample_changed=[{"key": {"id": 2}, "changed": {
                         "note": {"backup": evil, "live": "y"}}}])
    md = preview_markdown(p, "db")
    lines = _outside_fences(md)
    assert "<!--" not in md and "<img" not in md and "](" not in md, md
    assert not any(ln.startswith("## Approved") for ln in lines), md


@pytest.mark.parametrize(("change", "says"), [
    ({"where": '"email" IS NOT NULL) OR (true'}, "unbalanced ')'"),
    ({"expression": "'x'), \"email\" = ('y'"}, "backfill spec"),
    ({"column": None}, "has no 'column'"),
])
def test_a_backfill_spec_is_checked_before_anything_runs(
        change: dict[str, Any], says: str, planned: tuple[str, dict[str, Any]],
        tmp_path: Path) -> None:
    """A backfill spec edited into a plan and resealed was checked only when its step came
    to run: on 484bfee steps 1 and 2 applied, then step 3 failed (one without its
    'column': 'internal error: KeyError'). Now with the plan's other checks, before
    anything runs."""
    dsn, data = planned
    tampered = copy.deepcopy(data)
    spec = {"schema": "public", "table": "users", "column": "nick", "expression": "'x'",
            **change}
    # (on the step outside a transaction, which the executor runs as a backfill: last)
    step_of(tampered, "create_index")["backfill"] = {k: v for k, v in spec.items()
                                                    if v is not None}
    sealed = seal_plan(Plan.model_validate(tampered))
    path = write(tmp_path / "plan.json", sealed.model_dump(mode="json", by_alias=True,
                                                           exclude_none=True))
    before = db_state(dsn)
    r = lockplane("apply", path, "--target", dsn, "--auto-approve", "--safety", "permissive",
                  "--skip-shadow")
    refused(r, 2, "step 3", says)
    assert db_state(dsn) == before


def test_a_backfill_spec_on_a_step_inside_a_transaction_is_refused(
        planned: tuple[str, dict[str, Any]], tmp_path: Path) -> None:
    """apply runs a spec in batches only for a step outside a transaction; on one inside
    it ran the step's SQL while the confirmation said 'apply runs, in committed batches
    instead of the above' (on 43947ed). Lockplane writes no such step: refused."""
    dsn, data = planned
    tampered = copy.deepcopy(data)
    step_of(tampered, "drop_column")["backfill"] = {
        "schema": "public", "table": "users", "column": "nick", "expression": "'x'"}
    sealed = seal_plan(Plan.model_validate(tampered))
    path = write(tmp_path / "plan.json", sealed.model_dump(mode="json", by_alias=True,
                                                           exclude_none=True))
    before = db_state(dsn)
    r = lockplane("apply", path, "--target", dsn, "--auto-approve", "--safety", "permissive",
                  "--skip-shadow")
    refused(r, 2, "step 2", "runs outside a transaction")
    assert db_state(dsn) == before


# ------------------------------------------------------------------ where a plan may run
def test_a_signature_names_the_environments_a_plan_may_run_in(
        pg_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plan signed after review for staging ran on production as soon as the two
    schemas were equal: the signature covered the plan_id only. It now also covers
    signed_for (the environments it was signed for); apply refuses any other target, and
    a plan meant for several environments is signed for each, or for any."""
    from lockplane.integrity import signature_for

    pg_exec(pg_dsn, CURRENT)
    (tmp_path / "desired.sql").write_text(DESIRED)
    (tmp_path / "lockplane.toml").write_text("[environments.staging]\n[environments.prod]\n")
    monkeypatch.setenv("LOCKPLANE_STAGING_DATABASE_URL", pg_dsn)
    monkeypatch.setenv("LOCKPLANE_PROD_DATABASE_URL", pg_dsn)  # (equal schemas: the case)
    r = lockplane("plan", "--from", pg_dsn, "--to", "desired.sql", "-o", "plan.json", "-q",
                  cwd=tmp_path)
    assert r.code == 0, r
    monkeypatch.setenv(PLAN_KEY_ENV, KEY)
    # sign must be told where the plan may run.
    refused(lockplane("sign", "plan.json", cwd=tmp_path), 2, "--environment")
    refused(lockplane("sign", "plan.json", "-e", "prod east", cwd=tmp_path), 2, "environment")
    r = lockplane("sign", "plan.json", "-e", "staging", "-o", "staging.json", cwd=tmp_path)
    assert r.code == 0 and "for environment staging" in r.stderr, r
    signed = json.loads((tmp_path / "staging.json").read_text())
    assert signed["signed_for"] == ["staging"]
    r = lockplane("validate", "staging.json", cwd=tmp_path)
    assert r.code == 0 and "(signed for staging)" in r.stderr, r
    before = db_state(pg_dsn)
    apply = ("--auto-approve", "--safety", "permissive", "--skip-shadow")
    # Signed for staging: not for prod, nor for a URL, which names no environment.
    refused(lockplane("apply", "staging.json", "--target-environment", "prod", *apply,
                      cwd=tmp_path), 3, "signed for environment staging, not prod")
    refused(lockplane("apply", "staging.json", "--target", pg_dsn, *apply, cwd=tmp_path), 3,
            "staging only", "names no environment")
    refused(lockplane("rollback", "staging.json", "--target-environment", "prod", *apply,
                      cwd=tmp_path), 3, "not prod")
    refused(lockplane("export", "staging.json", "--to", "gh-ost", "--execute",
                      "--target-environment", "prod", cwd=tmp_path), 3, "not prod")
    # The list is under the signature: widened by hand, the signature gives it away.
    widened = {**signed, "signed_for": ["prod", "staging"]}
    refused(lockplane("apply", write(tmp_path / "widened.json", widened),
                      "--target-environment", "prod", *apply, cwd=tmp_path), 3,
            "signature does not match")
    refused(lockplane("apply", write(tmp_path / "bad.json", {**signed, "signed_for": "*"}),
                      "--target-environment", "prod", *apply, cwd=tmp_path), 2, "signed_for")
    # A signature made before signatures named environments verifies, and runs nowhere
    # until signed again.
    legacy = {k: v for k, v in signed.items() if k != "signed_for"}
    legacy["signature"] = signature_for(signed["plan_id"], KEY.encode())
    r = lockplane("validate", write(tmp_path / "legacy.json", legacy), cwd=tmp_path)
    assert r.code == 0 and "signed" in r.stderr, r
    refused(lockplane("apply", "legacy.json", "--target-environment", "staging", *apply,
                      cwd=tmp_path), 3, "names no environment", "lockplane sign")
    assert db_state(pg_dsn) == before and history_rows(pg_dsn) == 0
    # The level is the target environment's: prod is strict unless the pipeline says
    # otherwise, whatever the plan was made or signed under.
    r = lockplane("sign", "legacy.json", "-e", "staging", "-e", "prod", "-o", "both.json",
                  cwd=tmp_path)
    assert r.code == 0, r
    refused(lockplane("apply", "both.json", "--target-environment", "prod", "--auto-approve",
                      "--skip-shadow", cwd=tmp_path), 3, "refused at safety level strict")
    assert db_state(pg_dsn) == before
    r = lockplane("apply", "both.json", "--target-environment", "prod", *apply, cwd=tmp_path)
    assert r.code == 0, r
    assert history_rows(pg_dsn) == 1
    # plan --from-environment with the key set signs for that environment.
    r = lockplane("plan", "--from-environment", "staging", "--to", "desired.sql", "-o",
                  "again.json", "-q", cwd=tmp_path)
    assert r.code == 0, r
    assert json.loads((tmp_path / "again.json").read_text())["signed_for"] == ["staging"]


def test_a_multiphase_plan_runs_where_it_was_signed_for(
        multiphase: tuple[str, dict[str, Any]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    dsn, _ = multiphase
    (tmp_path / "lockplane.toml").write_text("[environments.staging]\n[environments.prod]\n")
    monkeypatch.setenv("LOCKPLANE_PROD_DATABASE_URL", dsn)
    monkeypatch.setenv(PLAN_KEY_ENV, KEY)
    before = db_state(dsn)
    r = lockplane("sign", "mp.json", "-e", "staging", "-o", "mp.signed.json", cwd=tmp_path)
    assert r.code == 0, r
    for where in (("--target-environment", "prod"), ("--target", dsn)):
        refused(lockplane("apply-phase", "mp.signed.json", "--next", *where,
                          "--auto-approve", "--skip-shadow", cwd=tmp_path), 3, "staging")
        refused(lockplane("rollback-phase", "mp.signed.json", *where, "--auto-approve",
                          cwd=tmp_path), 3, "staging")
    assert db_state(dsn) == before
    r = lockplane("sign", "mp.json", "-e", "prod", "-o", "mp.prod.json", cwd=tmp_path)
    assert r.code == 0, r
    r = lockplane("apply-phase", "mp.prod.json", "--next", "--target-environment", "prod",
                  "--auto-approve", "--skip-shadow", cwd=tmp_path)
    assert r.code == 0, r
