"""lockplane drift fix: real PostgreSQL and SQLite environments drifted by hand (extra
column, missing index, changed default, extra table, revoked grant, changed function
body), each difference adopted into the schema files or reverted by the plan; bad input;
the drift-fix flow end to end on the session Prefect server."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest

from lockplane.drift import targets_from_config
from lockplane.drift.fix import ADOPT, REVERT, propose_fix
from tests.cli_inprocess import lockplane
from tests.conftest import pg_exec
from tests.test_drift import _sqlite_exec, _toml, _write, ensure_role

READER = "lp_fix_reader"
TODAY = dt.date.today().isoformat()

PG_SCHEMA = f"""
CREATE TABLE users (
    id bigint PRIMARY KEY,
    email text NOT NULL,
    name text
);
CREATE INDEX users_email_idx ON users (email);
CREATE TABLE orders (
    id bigint PRIMARY KEY,
    user_id bigint REFERENCES users (id),
    total numeric NOT NULL DEFAULT 0
);
CREATE FUNCTION order_total(o orders) RETURNS numeric LANGUAGE sql AS 'SELECT o.total';
GRANT SELECT ON users TO {READER};
"""

PG_DRIFT = f"""
ALTER TABLE users ADD COLUMN emergency_fix text;
DROP INDEX users_email_idx;
ALTER TABLE orders ALTER COLUMN total SET DEFAULT 1;
CREATE TABLE audit_log (id bigint, user_id bigint REFERENCES users (id),
                        happened_at timestamptz DEFAULT now());
REVOKE SELECT ON users FROM {READER};
CREATE OR REPLACE FUNCTION order_total(o orders) RETURNS numeric LANGUAGE sql
    AS 'SELECT o.total * 2';
INSERT INTO users VALUES (1, 'a@example.com', 'a', 'kept');
"""

PG_OBJECTS = {
    ("public.users.emergency_fix", "column", "extra"),
    ("public.users.users_email_idx", "index", "missing"),
    ("public.orders.total", "column", "different"),
    ("public.audit_log", "table", "extra"),
    ("public.users", "grant", "missing"),
    ("public.order_total(o public.orders)", "function", "different"),
}

SQLITE_SCHEMA = """
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL, name TEXT);
CREATE INDEX users_email_idx ON users (email);
-- what people write
CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL DEFAULT '');
"""

SQLITE_DRIFT = """
ALTER TABLE users ADD COLUMN nickname TEXT;
DROP INDEX users_email_idx;
CREATE TABLE notes_new (id INTEGER PRIMARY KEY, body TEXT NOT NULL DEFAULT 'x');
INSERT INTO notes_new SELECT * FROM notes;
DROP TABLE notes;
ALTER TABLE notes_new RENAME TO notes;
CREATE TABLE audit (id INTEGER PRIMARY KEY, note TEXT);
INSERT INTO users VALUES (1, 'a@example.com', 'a', 'nick');
"""

SQLITE_OBJECTS = {
    ("main.users.nickname", "column", "extra"),
    ("main.users.users_email_idx", "index", "missing"),
    ("main.notes.body", "column", "different"),
    ("main.audit", "table", "extra"),
}


@pytest.fixture(scope="module", autouse=True)
def reader_role() -> None:
    ensure_role(READER)


@pytest.fixture
def pg_project(tmp_path: Path, pg_dsn: str) -> dict[str, Any]:
    """staging (PostgreSQL): made from schema/ by Lockplane, then drifted by hand."""
    _write(tmp_path / "schema" / "app.sql", PG_SCHEMA)
    r = lockplane("apply", "--schema", "schema/", "--target", pg_dsn, "--auto-approve",
                  "--skip-shadow", cwd=tmp_path)
    assert r.code == 0, r.output
    pg_exec(pg_dsn, PG_DRIFT)
    _toml(tmp_path, {"staging": {"database_url": pg_dsn, "schema_path": "schema/"}})
    return {"root": tmp_path, "dsn": pg_dsn, "env": "staging"}


@pytest.fixture
def sqlite_project(tmp_path: Path) -> dict[str, Any]:
    """local (SQLite): made from schema/ by Lockplane, then drifted by hand."""
    _write(tmp_path / "schema" / "app.sql", SQLITE_SCHEMA)
    dsn = f"sqlite:///{tmp_path / 'local.db'}"
    sqlite3.connect(tmp_path / "local.db").close()
    r = lockplane("apply", "--schema", "schema/", "--target", dsn, "--auto-approve",
                  "--skip-shadow", cwd=tmp_path)
    assert r.code == 0, r.output
    _sqlite_exec(dsn, SQLITE_DRIFT)
    _toml(tmp_path, {"local": {"database_url": dsn, "schema_path": "schema/"}})
    return {"root": tmp_path, "dsn": dsn, "env": "local"}


def _drift(project: dict[str, Any]) -> set[tuple[str, str, str]]:
    r = lockplane("drift", "check", "-e", project["env"], "--format", "json", "--no-history",
                  cwd=project["root"])
    assert r.code in (0, 4), r.output
    (env,) = json.loads(r.stdout)["environments"]
    return {(i["object"], i["type"], i["kind"]) for i in env["items"]}


def _schema_files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted((root / "schema").rglob("*"))}


def _replan_steps(project: dict[str, Any]) -> list[dict[str, Any]]:
    """lockplane plan from the database to the schema files."""
    r = lockplane("plan", "--from", project["dsn"], "--to", "schema/", "-q",
                  cwd=project["root"])
    assert r.code == 0, r.output
    return json.loads(r.stdout)["steps"]


def _apply(project: dict[str, Any], plan: str, *extra: str) -> Any:
    return lockplane("apply", plan, "--target-environment", project["env"], "--auto-approve",
                     "--skip-shadow", *extra, cwd=project["root"])


def _acknowledgements(plan_path: Path) -> list[str]:
    """What an operator acknowledges for the plan's dangerous steps: rule@table."""
    plan = json.loads(plan_path.read_text())
    out = []
    for step in plan["steps"]:
        for f in step.get("findings", []):
            if f["safety"] == "dangerous":
                out += ["--acknowledge", f"{f['rule']}@{step['table']}" if step.get("table")
                        else f["rule"]]
    return out


# ---------------------------------------------------------------------------- PostgreSQL
def test_postgres_adopt_each_drift_into_the_schema_files(pg_project) -> None:
    root = pg_project["root"]
    assert _drift(pg_project) == PG_OBJECTS
    before = _schema_files(root)
    r = lockplane("drift", "fix", "-e", "staging", "--adopt", "public.users.emergency_fix",
                  "--adopt", "table:audit_log", "--adopt", "index:public.users.*",
                  "--adopt", "public.orders.total", "--adopt", "grant:public.users",
                  "--adopt", "function:order_total*", "-o", "fix.json", cwd=root)
    assert r.code == 0, r.output
    # The original file is untouched; one new file, run last, holds what was adopted,
    # as the planner's own DDL.
    after = _schema_files(root)
    assert after["schema/app.sql"] == before["schema/app.sql"]
    added = after[f"schema/zz_adopted_{TODAY}.sql"]
    assert added.startswith(f"-- Adopted from environment staging by `lockplane drift fix` "
                            f"on {TODAY}:\n")
    for stmt in ('DROP INDEX "public"."users_email_idx";',
                 'ALTER TABLE "public"."users" ADD COLUMN "emergency_fix" text;',
                 'ALTER COLUMN "total" SET DEFAULT 1;',
                 'REFERENCES "public"."users"',
                 'CREATE TABLE "public"."audit_log" (',
                 f'REVOKE SELECT ON TABLE "public"."users" FROM "{READER}";',
                 "AS $function$SELECT o.total * 2$function$;"):
        assert stmt in added, added
    # Nothing to run on the database, and nothing left to drift.
    assert json.loads((root / "fix.json").read_text())["steps"] == []
    assert _drift(pg_project) == set()
    assert _replan_steps(pg_project) == []
    r = _apply(pg_project, "fix.json")
    assert r.code == 0, r.output


def test_postgres_drop_reverts_each_drift(pg_project) -> None:
    root = pg_project["root"]
    before = _schema_files(root)
    r = lockplane("drift", "fix", "-e", "staging", "--drop-all", "-o", "fix.json", cwd=root)
    assert r.code == 0, r.output
    assert _schema_files(root) == before  # nothing adopted: the files stay as they are
    plan = json.loads((root / "fix.json").read_text())
    described = [s["description"] for s in plan["steps"]]
    sql = "\n".join(q for s in plan["steps"] for q in s["sql"])
    assert any("Drop column emergency_fix from public.users" in d for d in described), described
    assert any("Drop table public.audit_log" in d for d in described), described
    assert "CREATE INDEX CONCURRENTLY" in sql and '"users_email_idx"' in sql
    assert 'ALTER COLUMN "total" SET DEFAULT 0' in sql
    assert f'GRANT SELECT ON TABLE "public"."users" TO "{READER}"' in sql
    assert "SELECT o.total$function$" in sql
    # Dropping keeps its safety class: apply refuses it without the acknowledgement.
    safeties = {s["safety"] for s in plan["steps"]}
    assert "dangerous" in safeties
    r = _apply(pg_project, "fix.json")
    assert r.code == 3, r.output
    assert len(r.stderr.strip().splitlines()) >= 1 and "acknowledge" in r.stderr
    assert _drift(pg_project) == PG_OBJECTS  # refused: nothing ran
    r = _apply(pg_project, "fix.json", *_acknowledgements(root / "fix.json"))
    assert r.code == 0, r.output
    assert _drift(pg_project) == set()
    assert _replan_steps(pg_project) == []


def test_postgres_some_adopted_some_dropped(pg_project) -> None:
    root = pg_project["root"]
    r = lockplane("drift", "fix", "-e", "staging", "--adopt", "public.users.emergency_fix",
                  "--drop", "public.audit_log", "-o", "fix.json", cwd=root)
    assert r.code == 0, r.output
    added = (root / "schema" / f"zz_adopted_{TODAY}.sql").read_text()
    assert 'ADD COLUMN "emergency_fix" text;' in added
    assert "audit_log" not in added and "users_email_idx" not in added
    # The rest is reverted by the plan: the missing index, default, grant, function body.
    r = _apply(pg_project, "fix.json", *_acknowledgements(root / "fix.json"))
    assert r.code == 0, r.output
    assert _drift(pg_project) == set()
    with psycopg.connect(pg_project["dsn"]) as conn:  # the adopted column kept its data
        assert conn.execute("SELECT emergency_fix FROM users").fetchall() == [("kept",)]


# -------------------------------------------------------------------------------- SQLite
def test_sqlite_adopt_each_drift(sqlite_project) -> None:
    root = sqlite_project["root"]
    assert _drift(sqlite_project) == SQLITE_OBJECTS
    r = lockplane("drift", "fix", "-e", "local", "--adopt-all", "-o", "fix.json", cwd=root)
    assert r.code == 0, r.output
    files = _schema_files(root)
    app = files["schema/app.sql"]
    # The table SQLite changed in place (its default) has its CREATE TABLE replaced where
    # it was written; the rest is appended in a file that runs last.
    assert "DEFAULT 'x'" in app and "DEFAULT ''" not in app
    assert "-- what people write\nCREATE TABLE \"notes\"" in app
    assert "CREATE INDEX users_email_idx ON users (email);" in app
    added = files[f"schema/zz_adopted_{TODAY}.sql"]
    assert 'DROP INDEX "users_email_idx";' in added
    assert 'ALTER TABLE "users" ADD COLUMN "nickname" TEXT;' in added
    assert 'CREATE TABLE "audit" (' in added
    assert json.loads((root / "fix.json").read_text())["steps"] == []
    assert _drift(sqlite_project) == set()
    assert _replan_steps(sqlite_project) == []


def test_sqlite_drop_reverts_each_drift(sqlite_project) -> None:
    root = sqlite_project["root"]
    before = _schema_files(root)
    r = lockplane("drift", "fix", "-e", "local", "--drop", "main.users.nickname",
                  "--drop", "audit", "-o", "fix.json", cwd=root)
    assert r.code == 0, r.output
    assert _schema_files(root) == before
    r = _apply(sqlite_project, "fix.json")
    assert r.code == 3, r.output  # dropping a column and a table is dangerous
    r = _apply(sqlite_project, "fix.json", *_acknowledgements(root / "fix.json"))
    assert r.code == 0, r.output
    assert _drift(sqlite_project) == set()
    assert _replan_steps(sqlite_project) == []


def test_json_desired_schema_is_rewritten(tmp_path: Path) -> None:
    """An original-format schema JSON: adopting rewrites it, and it still loads."""
    dsn = f"sqlite:///{tmp_path / 'dev.db'}"
    sqlite3.connect(tmp_path / "dev.db").close()
    _write(tmp_path / "schema.json", json.dumps({"dialect": "sqlite", "tables": [
        {"name": "users", "columns": [
            {"name": "id", "type": "INTEGER", "nullable": False, "is_primary_key": True},
            {"name": "email", "type": "TEXT", "nullable": False}]}]}))
    r = lockplane("apply", "--schema", "schema.json", "--target", dsn, "--auto-approve",
                  "--skip-shadow", cwd=tmp_path)
    assert r.code == 0, r.output
    _sqlite_exec(dsn, "ALTER TABLE users ADD COLUMN nickname TEXT; "
                      "CREATE TABLE tags (id INTEGER PRIMARY KEY, label TEXT NOT NULL);")
    _toml(tmp_path, {"dev": {"database_url": dsn, "schema_path": "schema.json"}})
    project = {"root": tmp_path, "env": "dev", "dsn": dsn}
    r = lockplane("drift", "fix", "-e", "dev", "--adopt", "users.nickname", "--drop", "tags",
                  "-o", "fix.json", cwd=tmp_path)
    assert r.code == 0, r.output
    rewritten = json.loads((tmp_path / "schema.json").read_text())
    users = next(t for t in rewritten["tables"] if t["name"] == "users")
    assert [c["name"] for c in users["columns"]] == ["id", "email", "nickname"]
    assert [t["name"] for t in rewritten["tables"]] == ["users"]
    r = _apply(project, "fix.json", *_acknowledgements(tmp_path / "fix.json"))
    assert r.code == 0, r.output
    assert _drift(project) == set()


def test_engine_asks_about_extra_objects_only(sqlite_project) -> None:
    """Interactively (the CLI in a terminal) each object only in the database is asked
    about; missing and different ones are reverted unless adopted."""
    (target,) = targets_from_config(["local"], sqlite_project["root"])
    asked = []

    def ask(item):
        asked.append(item.object)
        return ADOPT if item.type == "column" else REVERT

    proposal = propose_fix(target, ask=ask)
    assert sorted(asked) == ["main.audit", "main.users.nickname"]
    assert {(i.object, d.action) for d in proposal.decisions for i in [d.item]} == {
        ("main.users.nickname", ADOPT), ("main.audit", REVERT),
        ("main.users.users_email_idx", REVERT), ("main.notes.body", REVERT)}
    assert [Path(e.path).name for e in proposal.edits] == [f"zz_adopted_{TODAY}.sql"]
    assert not (sqlite_project["root"] / "schema" / f"zz_adopted_{TODAY}.sql").exists()


# ----------------------------------------------------------------------------- bad input
def test_bad_input_exits_2_with_one_line(sqlite_project) -> None:
    root = sqlite_project["root"]
    before = _schema_files(root)
    cases = {
        ("-e", "nowhere", "--drop-all"): "unknown environment 'nowhere'",
        ("-e", "local", "--adopt", "public.nope"): "no drift matches 'public.nope' in local",
        ("-e", "local", "--adopt-all", "--drop-all"): "give --adopt-all or --drop-all",
        ("-e", "local"): "2 object(s) of local are only in the database and need a choice: "
                         "main.audit (table), main.users.nickname (column)",
        ("-e", "local", "--adopt", "main.users", "--drop", "users.nickname"):
            "main.users.nickname (column) is named by --adopt main.users and by --drop",
    }
    for args, words in cases.items():
        r = lockplane("drift", "fix", *args, "-o", "fix.json", cwd=root)
        assert r.code == 2, (args, r.output)
        assert words in r.stderr, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "Traceback" not in r.output
    assert _schema_files(root) == before and not (root / "fix.json").exists()
    assert _drift(sqlite_project) == SQLITE_OBJECTS


# -------------------------------------------------------------------------------- flow
@pytest.mark.long
def test_drift_fix_flow_pauses_for_approval_then_applies(prefect_api: str, pg_project) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    from flows.drift_fix import drift_fix
    from tests.test_flows import _wait_for_paused_run

    root = pg_project["root"]
    box: dict[str, Any] = {}

    # A bad lock-wait option is refused before anything is proposed or waited for.
    bad = drift_fix(environment="staging", project_dir=str(root), drop_all=True,
                    cancel_blockers_after_s=-1, return_state=True)
    assert bad.is_failed() and "--cancel-blockers-after" in str(bad.message)

    def run() -> None:
        box["state"] = drift_fix(environment="staging", project_dir=str(root),
                                 adopt=["public.users.emergency_fix"], drop_all=True,
                                 acknowledge=["drop-table@public.audit_log"],
                                 approval_timeout_s=120, cancel_blockers_after_s=30,
                                 return_state=True)

    worker = threading.Thread(target=run)
    worker.start()
    run_id = _wait_for_paused_run("drift-fix", timeout_s=90)
    # Nothing written, nothing applied before the approval.
    assert not (root / "schema" / f"zz_adopted_{TODAY}.sql").exists()
    assert _drift(pg_project) == PG_OBJECTS
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])))
    (review,) = [a for a in artifacts if a.key == "drift-fix-staging"]
    assert "Adopted into the schema files" in review.data
    assert "`public.users.emergency_fix`" in review.data and "Drop table" in review.data
    r = lockplane("approve", str(run_id), "--approver", "ops")
    assert r.code == 0, r.output
    worker.join(timeout=120)
    assert not worker.is_alive()
    state = box["state"]
    assert state.is_completed(), state.message
    result = state.result()
    assert result["status"] == "applied" and result["adopted"] == ["public.users.emergency_fix"]
    assert (root / "schema" / f"zz_adopted_{TODAY}.sql").exists()
    assert _drift(pg_project) == set()


def test_accepted_drift_is_left_alone(sqlite_project) -> None:
    """The environment's ignore patterns: neither written to the files nor reverted."""
    root = sqlite_project["root"]
    text = (root / "lockplane.toml").read_text() + 'ignore = ["users.nickname"]\n'
    (root / "lockplane.toml").write_text(text)
    before = _schema_files(root)
    r = lockplane("drift", "fix", "-e", "local", "--drop-all", "-o", "fix.json", cwd=root)
    assert r.code == 0, r.output
    assert "main.users.nickname (column): accepted drift (ignore)" in r.stderr
    assert _schema_files(root) == before
    plan = json.loads((root / "fix.json").read_text())
    assert not any("nickname" in q for s in plan["steps"] for q in s["sql"]
                   if "DROP" in q.upper() and "COLUMN" in q.upper())
    r = _apply(sqlite_project, "fix.json", *_acknowledgements(root / "fix.json"))
    assert r.code == 0, r.output
    assert _drift(sqlite_project) == set()
    with sqlite3.connect(root / "local.db") as conn:  # the column and its data are kept
        assert conn.execute("SELECT nickname FROM users").fetchall() == [("nick",)]


def test_postgres_different_constraint_reverted_then_adopted(tmp_path: Path, pg_dsn: str
                                                             ) -> None:
    """Issue 14's list has a changed constraint too (audit): a CHECK replaced by hand under
    its own name is reported as different, reverted by the plan, and, drifted again,
    adopted into the schema files; each time nothing is left to drift."""
    _write(tmp_path / "schema" / "app.sql",
           "CREATE TABLE items (id bigint PRIMARY KEY, qty int CONSTRAINT qty_ok CHECK "
           "(qty >= 0));\n")
    r = lockplane("apply", "--schema", "schema/", "--target", pg_dsn, "--auto-approve",
                  "--skip-shadow", cwd=tmp_path)
    assert r.code == 0, r.output
    _toml(tmp_path, {"staging": {"database_url": pg_dsn, "schema_path": "schema/"}})
    project = {"root": tmp_path, "dsn": pg_dsn, "env": "staging"}
    drift = "ALTER TABLE items DROP CONSTRAINT qty_ok, ADD CONSTRAINT qty_ok CHECK (qty > 0);"
    pg_exec(pg_dsn, drift)
    assert _drift(project) == {("public.items.qty_ok", "constraint", "different")}
    r = lockplane("drift", "fix", "-e", "staging", "--drop-all", "-o", "fix.json", cwd=tmp_path)
    assert r.code == 0, r.output
    r = _apply(project, "fix.json", *_acknowledgements(tmp_path / "fix.json"))
    assert r.code == 0, r.output
    assert _drift(project) == set()
    pg_exec(pg_dsn, drift)
    r = lockplane("drift", "fix", "-e", "staging", "--adopt-all", "-o", "fix2.json",
                  cwd=tmp_path)
    assert r.code == 0, r.output
    assert "(qty > 0)" in (tmp_path / "schema" / f"zz_adopted_{TODAY}.sql").read_text()
    assert _drift(project) == set()
    assert _replan_steps(project) == []
