"""Multi-phase patterns on real databases, through the runner the CLI and the flow share:
every phase applied in order (approved where a code deploy is needed), the end state is
exactly the desired schema, planning again is empty, rows survive, and rolling every
phase back returns to the starting hash. Then the CLI's refusals and records."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import pg_exec
from phase_support import Db
from test_cli import assert_one_line_error, run

from lockplane.dialects import connect
from lockplane.errors import SafetyRefusal
from lockplane.execute import ApplyOptions
from lockplane.model import (
    HASH_FORMAT,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    IndexKey,
    Schema,
    Table,
    UniqueConstraint,
)
from lockplane.multiphase import detect, plan_multiphase, runner
from lockplane.multiphase.explicit import explicit_target
from lockplane.plan import build_plan
from lockplane.sources import canonicalize, load_schema

PG_SETUP = """
CREATE TABLE users (
    id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL UNIQUE,
    age text,
    nick text,
    score int
);
CREATE INDEX users_nick_idx ON users (nick);
CREATE INDEX users_email_lower_idx ON users (lower(email));
CREATE TABLE legacy (id int PRIMARY KEY, note text);
INSERT INTO users (email, age, nick, score)
SELECT 'u' || g || '@x', (g % 90)::text, CASE WHEN g % 3 = 0 THEN NULL ELSE 'n' || g END,
       CASE WHEN g % 4 = 0 THEN NULL ELSE g END
FROM generate_series(1, 300) g;
INSERT INTO legacy SELECT g, 'note ' || g FROM generate_series(1, 40) g;
"""

SQLITE_SETUP = """
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, age TEXT, nick TEXT,
                    score INTEGER);
CREATE INDEX users_nick_idx ON users (nick);
CREATE TABLE legacy (id INTEGER PRIMARY KEY, note TEXT);
WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < 300)
INSERT INTO users (email, age, nick, score)
SELECT 'u' || x || '@x', x % 90, CASE WHEN x % 3 = 0 THEN NULL ELSE 'n' || x END,
       CASE WHEN x % 4 = 0 THEN NULL ELSE x END FROM g;
INSERT INTO legacy SELECT id, 'note ' || id FROM users WHERE id <= 40;
"""

ROWS = 300


@pytest.fixture(params=["postgres", "sqlite"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Db:
    if request.param == "postgres":
        dsn = request.getfixturevalue("pg_dsn")
        pg_exec(dsn, PG_SETUP)
        return Db("postgres", dsn)
    dsn = f"sqlite:///{tmp_path / 'app.db'}"
    d = Db("sqlite", dsn)
    d.execute(SQLITE_SETUP)
    return d


def _target(db: Db, before: Schema, pattern: str, table: str, **kw: Any) -> Schema:
    after = explicit_target(before, pattern, table, kw.get("column"), kw.get("to_name"),
                            kw.get("to_type"))
    if kw.get("default") is not None:
        t = after.table("public" if db.dialect == "postgres" else "main", table)
        assert t is not None
        col = t.column(kw["column"])
        assert col is not None
        col.default = kw["default"]
    return canonicalize(after, db.ctx, where="test")


def _run_all_phases(db: Db, mp: Any, between: Callable[[int], None] | None = None) -> None:
    for phase in mp.phases:
        n = phase.phase_number
        if n > 1:
            if between:
                between(n - 1)
            if mp.phase(n - 1).requires_code_deploy:
                runner.approve(mp, db.dsn, n - 1, "tester", "deployed")
        result = runner.apply_phase(mp, db.dsn, n, actor="tester", options=NO_SHADOW)
        assert result.hash_after == phase.plan.target_hash


# Each phase and its rollback already ran, and were checked, on a scratch copy when the
# plan was built: no second shadow run here (the flow tests apply with shadow runs).
PERMISSIVE = ApplyOptions(safety="permissive", skip_shadow=True)
NO_SHADOW = ApplyOptions(skip_shadow=True)

# pattern, table, explicit-target options, rows check after the last phase
CASES: list[tuple[str, str, dict[str, Any], str, Any]] = [
    ("rename_column", "users", {"column": "email", "to_name": "email_address"},
     "SELECT count(*) FROM users WHERE email_address = 'u' || id || '@x'", ROWS),
    ("rename_table", "users", {"to_name": "members"},
     "SELECT count(*) FROM members", ROWS),
    ("change_type", "users", {"column": "age", "to_type": "integer"},
     "SELECT count(*) FROM users WHERE age = id % 90", ROWS),
    ("drop_column", "users", {"column": "nick"}, "SELECT count(*) FROM users", ROWS),
    ("drop_column", "users", {"column": "nick", "archive": True},
     "SELECT count(*) FROM users", ROWS),
    ("drop_table", "legacy", {}, "SELECT count(*) FROM users", ROWS),
    ("drop_table", "legacy", {"archive": True}, "SELECT count(*) FROM users", ROWS),
    ("add_not_null", "users", {"column": "score"},
     "SELECT count(*) FROM users WHERE score IS NOT NULL", ROWS),
    ("add_not_null", "users", {"column": "score", "default": "0"},
     "SELECT count(*) FROM users WHERE score = 0", ROWS // 4),
]
PG_ONLY = {"rename_table", "change_type"}
SQLITE_ONLY = {("drop_table", True)}  # PostgreSQL archives the same way for drop_column


@pytest.mark.parametrize(("pattern", "table", "options", "check", "expected"), CASES,
                         ids=[c[0] + ("_archive" if c[2].get("archive") else "")
                              + ("_default" if c[2].get("default") else "") for c in CASES])
def test_pattern_end_to_end(db: Db, pattern: str, table: str, options: dict[str, Any],
                            check: str, expected: Any) -> None:
    if pattern in PG_ONLY and db.dialect != "postgres":
        pytest.skip(f"{pattern} is planned for PostgreSQL only")
    if (pattern, bool(options.get("archive"))) in SQLITE_ONLY and db.dialect != "sqlite":
        pytest.skip("covered on SQLite (the archive step is the same change kind)")
    before = db.schema()
    after = _target(db, before, pattern, table, **options)
    mp = plan_multiphase(before, after, server_dsn=db.ctx.server_dsn, table=table,
                         archive=bool(options.get("archive")))
    assert mp.operation == pattern and mp.total_phases == len(mp.phases) >= 2
    assert mp.source_hash == before.hash() and mp.target_hash == after.hash()
    for prev, nxt in zip(mp.phases, mp.phases[1:], strict=False):
        assert nxt.plan.source_hash == prev.plan.target_hash  # each phase's exact start
    # A refusal after an upgrade can then tell an older hash format from a changed database.
    assert all(p.plan.hash_format == HASH_FORMAT for p in mp.phases)
    if options.get("archive"):
        assert any(p.name == "archive" for p in mp.phases)

    scores = "SELECT id, score FROM users ORDER BY id"
    scores_before = db.query(scores)

    def deploy(done: int) -> None:
        if pattern == "add_not_null" and "default" not in options and done == 1:
            # Before the code deploy is done, phase 1's check finds the NULL rows ...
            assert not all(r.passed for r in runner.verify(mp, db.dsn, 1))
            # ... and the deploy (a backfill) fixes them.
            db.execute("UPDATE users SET score = -1 WHERE score IS NULL")

    _run_all_phases(db, mp, deploy)
    live = db.schema()
    assert live.hash() == after.hash()
    assert build_plan(live, after).steps == []
    assert db.query(check)[0][0] == expected
    if options.get("archive"):
        label = options.get("column") or "all"
        archive = (f"lockplane.archive_{table}_{label}" if db.dialect == "postgres"
                   else f"_lockplane_archive_{table}_{label}")
        rows, kept = (ROWS, ROWS * 2 // 3) if table == "users" else (40, 40)
        col = options.get("column") or "note"
        assert db.query(f"SELECT count(*), count({col}) FROM {archive}")[0] == (rows, kept)
    state = runner.migration_state(mp, db.dsn)
    assert state.status == "completed" and state.completed_phases == mp.total_phases

    runner.rollback(mp, db.dsn, 0, options=PERMISSIVE, actor="tester")
    assert db.schema().hash() == before.hash()
    assert db.query("SELECT count(*) FROM users")[0][0] == ROWS
    state = runner.migration_state(mp, db.dsn)
    assert state.status == "rolled_back" and state.completed_phases == 0
    if pattern == "add_not_null" and options.get("default"):
        # The rows phase 1 gave the default are NULL again (recorded by the primary key).
        assert db.query(scores) == scores_before
    if pattern == "rename_column":
        # the old column comes back with its values
        assert db.query("SELECT count(*) FROM users WHERE email = 'u' || id || '@x'"
                        )[0][0] == ROWS


def test_rename_column_keeps_declared_names(pg_dsn: str, tmp_path: Path) -> None:
    """A declared rename whose desired schema keeps the old constraint and index names
    (and an expression index): the migrate phase builds them under temporary names while
    the old code keeps its own, the contract phase renames them. (Applied end to end by
    the explicit rename above, which keeps the names too.)"""
    pg_exec(pg_dsn, PG_SETUP)
    desired = tmp_path / "schema.sql"
    desired.write_text("""
CREATE TABLE users (
    id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email_address text NOT NULL, -- lockplane:renamed-from email
    age text,
    nick text,
    score int,
    CONSTRAINT users_email_key UNIQUE (email_address)
);
CREATE INDEX users_nick_idx ON users (nick);
CREATE INDEX users_email_lower_idx ON users (lower(email_address));
CREATE TABLE legacy (id int PRIMARY KEY, note text);
""")
    db = Db("postgres", pg_dsn)
    before, after = db.schema(), load_schema(str(desired), db.ctx)
    mp = plan_multiphase(before, after, server_dsn=pg_dsn)
    assert [p.name for p in mp.phases] == ["expand", "migrate", "contract"]
    migrate = [s for st in mp.phase(2).plan.steps for s in st.sql]
    migrate_sql = " ".join(migrate)
    # lock-safe: the unique index is built concurrently, then becomes the constraint
    assert ('CREATE UNIQUE INDEX CONCURRENTLY "users_email_key__lp_new" ON "public"."users" '
            '("email_address")') in migrate_sql
    assert ('ADD CONSTRAINT "users_email_key__lp_new" UNIQUE USING INDEX '
            '"users_email_key__lp_new"') in migrate_sql
    assert '"users_email_lower_idx__lp_new"' in migrate_sql
    # the old code keeps what it uses until contract (only the temporary NOT NULL check
    # of the lock-safe SET NOT NULL is dropped here)
    assert [s for s in migrate if "DROP" in s and "_not_null_lp" not in s] == []
    contract_sql = [s for st in mp.phase(3).plan.steps for s in st.sql]
    assert ('ALTER TABLE "public"."users" RENAME CONSTRAINT "users_email_key__lp_new" TO '
            '"users_email_key"') in contract_sql
    assert ('ALTER INDEX "public"."users_email_lower_idx__lp_new" RENAME TO '
            '"users_email_lower_idx"') in contract_sql
    assert contract_sql.index('ALTER TABLE "public"."users" DROP COLUMN "email"') \
        < contract_sql.index('ALTER TABLE "public"."users" RENAME CONSTRAINT '
                             '"users_email_key__lp_new" TO "users_email_key"')


# ------------------------------------------- new constraints on existing data (PostgreSQL)
def _add_check(t: Any) -> None:
    t.check_constraints.append(CheckConstraint(name="users_score_nonneg",
                                               expression="score >= 0"))


def _add_fk(t: Any) -> None:
    t.foreign_keys.append(ForeignKey(name="legacy_owner_fkey", columns=["owner"],
                                     referenced_schema="public", referenced_table="users",
                                     referenced_columns=["id"]))


def _add_unique(t: Any) -> None:
    t.unique_constraints.append(UniqueConstraint(name="users_nick_key", columns=["nick"]))


def _add_unique_index(t: Any) -> None:
    t.indexes.append(Index(name="users_lower_nick_uidx", unique=True,
                           keys=[IndexKey(expression="lower(nick)")]))


# operation, table, how the desired schema differs, SQL that makes a violating row, the
# fix (the "deploy"), what the enforce phase's SQL must contain (its lock-safe form)
CONSTRAINT_CASES: list[tuple[str, str, Callable[[Any], None], str, str, list[str]]] = [
    ("add_check", "users", _add_check, "UPDATE users SET score = -5 WHERE id = 7",
     "UPDATE users SET score = 0 WHERE score < 0", ["NOT VALID", "VALIDATE CONSTRAINT"]),
    ("add_foreign_key", "legacy", _add_fk, "UPDATE legacy SET owner = 9999 WHERE id = 5",
     "UPDATE legacy SET owner = NULL WHERE owner = 9999",
     ["NOT VALID", "VALIDATE CONSTRAINT"]),
    ("add_unique", "users", _add_unique, "UPDATE users SET nick = 'n1' WHERE id = 2",
     "UPDATE users SET nick = 'n' || id WHERE id = 2",
     ["CREATE UNIQUE INDEX CONCURRENTLY", "USING INDEX"]),
    ("add_unique", "users", _add_unique_index, "UPDATE users SET nick = 'N1' WHERE id = 2",
     "UPDATE users SET nick = 'n' || id WHERE id = 2", ["CREATE UNIQUE INDEX CONCURRENTLY"]),
]


@pytest.mark.parametrize(("operation", "table", "change", "violate", "fix", "enforce_sql"),
                         CONSTRAINT_CASES,
                         ids=["check", "foreign_key", "unique", "unique_index"])
def test_new_constraint_end_to_end(pg_dsn: str, operation: str, table: str,
                                   change: Callable[[Any], None], violate: str, fix: str,
                                   enforce_sql: list[str]) -> None:
    """A new CHECK / FK / UNIQUE on a table with data: phase 1 (a code deploy) finds the
    violating rows, phase 2 enforces without blocking writes; rolled back to the start."""
    pg_exec(pg_dsn, PG_SETUP + """
ALTER TABLE legacy ADD COLUMN owner int;
UPDATE legacy SET owner = CASE WHEN id % 5 = 0 THEN NULL ELSE id END;
""")
    db = Db("postgres", pg_dsn)
    before = db.schema()
    desired = before.model_copy(deep=True)
    t = desired.table("public", table)
    assert t is not None
    change(t)
    desired._table_index = None
    after = canonicalize(desired, db.ctx, where="test")
    db.execute(violate)
    mp = plan_multiphase(before, after, server_dsn=pg_dsn)
    assert mp.operation == operation and mp.pattern == "validation"
    assert mp.table == f"public.{table}" and mp.column is None
    assert [p.name for p in mp.phases] == ["fix_data", "enforce"]
    assert mp.phases[0].requires_code_deploy and mp.phases[0].plan.steps == []
    assert mp.source_hash == before.hash() and mp.target_hash == after.hash()
    enforce = " ".join(s for st in mp.phase(2).plan.steps for s in st.sql)
    assert all(part in enforce for part in enforce_sql), enforce

    def deploy(done: int) -> None:
        # Before the deploy, phase 1's check finds the violating rows ...
        results = runner.verify(mp, db.dsn, 1)
        assert not any(r.passed for r in results) and not any(r.error for r in results)
        db.execute(fix)  # ... the deploy fixes them, and the check passes.
        assert all(r.passed for r in runner.verify(mp, db.dsn, 1))

    _run_all_phases(db, mp, deploy)
    live = db.schema()
    assert live.hash() == after.hash()
    assert build_plan(live, after).steps == []
    assert db.query("SELECT count(*) FROM users")[0][0] == ROWS

    runner.rollback(mp, db.dsn, 0, options=PERMISSIVE, actor="tester")
    assert db.schema().hash() == before.hash()
    assert runner.migration_state(mp, db.dsn).status == "rolled_back"


def test_cli_add_unique(pg_dsn: str, tmp_path: Path) -> None:
    """``--pattern add_unique --column``: UNIQUE (column), named as PostgreSQL names it."""
    pg_exec(pg_dsn, PG_SETUP)
    plan = tmp_path / "mp.json"
    proc = run("plan-multiphase", "--pattern", "add_unique", "--table", "users",
               "--column", "nick", "--from", pg_dsn, "-o", str(plan))
    assert proc.returncode == 0, proc.stderr
    mp = json.loads(plan.read_text())
    assert (mp["operation"], mp["pattern"]) == ("add_unique", "validation")
    assert mp["description"] == "Add the unique constraint users_nick_key to public.users"
    assert [p["name"] for p in mp["phases"]] == ["fix_data", "enforce"]
    proc = run("plan-multiphase", "--pattern", "add_unique", "--table", "users",
               "--from", pg_dsn)
    assert_one_line_error(proc, 2, "needs --column")


def test_new_constraints_come_after_other_breaking_changes() -> None:
    """A new NOT NULL and a new CHECK in one diff: the NOT NULL is planned first."""
    users = Table(name="users", schema="public",
                  columns=[Column(name="id", type="integer", nullable=False),
                           Column(name="score", type="integer")])
    before = Schema(tables=[users])
    after = before.model_copy(deep=True)
    t = after.tables[0]
    t.check_constraints.append(CheckConstraint(name="users_score_check",
                                               expression="(score >= 0)"))
    t.unique_constraints.append(UniqueConstraint(name="users_score_key", columns=["score"]))
    score = t.column("score")
    assert score is not None
    score.nullable = False
    found = [(b.operation, b.column) for b in detect(before, after)]
    assert found == [("add_not_null", "score"), ("add_check", "users_score_check"),
                     ("add_unique", "users_score_key")]
    # A constraint on a new column is no breaking change for existing rows.
    t.columns.append(Column(name="level", type="integer"))
    t.check_constraints.append(CheckConstraint(name="users_level_check",
                                               expression="(level > 0)"))
    assert "users_level_check" not in [b.column for b in detect(before, after)]


# ---------------------------------------------------------------------------- CLI
@pytest.fixture
def not_null_plan(tmp_path: Path) -> tuple[str, Path]:
    """A SQLite database whose score column gets NOT NULL (two phases, a deploy between)."""
    dsn = f"sqlite:///{tmp_path / 'app.db'}"
    Db("sqlite", dsn).execute(SQLITE_SETUP)
    plan = tmp_path / "mp.json"
    proc = run("plan-multiphase", "--pattern", "add_not_null", "--table", "users",
               "--column", "score", "--from", dsn, "-o", str(plan))
    assert proc.returncode == 0, proc.stderr
    return dsn, plan


def _events(dsn: str) -> list[dict[str, Any]]:
    proc = run("phase-status", "--target", dsn, "--json")
    assert proc.returncode == 0, proc.stderr
    (migration,) = json.loads(proc.stdout)
    return list(migration["events"])


def test_cli_out_of_order_force_and_verify(not_null_plan: tuple[str, Path]) -> None:
    dsn, plan = not_null_plan
    mp = json.loads(plan.read_text())
    assert mp["total_phases"] == 2 and mp["phases"][0]["requires_code_deploy"]

    # Phase 2 before phase 1: refused, nothing recorded as applied.
    proc = run("apply-phase", str(plan), "--target", dsn, "--phase", "2", "--auto-approve")
    assert_one_line_error(proc, 3, "out of order", "next is phase 1")

    assert run("apply-phase", str(plan), "--target", dsn, "--next",
               "--auto-approve").returncode == 0
    # Applying phase 1 again: refused.
    proc = run("apply-phase", str(plan), "--target", dsn, "--phase", "1", "--auto-approve")
    assert_one_line_error(proc, 3, "out of order")

    # NULLs remain: verification fails (exit 3), and so does the next phase's gate.
    proc = run("verify-phase", str(plan), "--target", dsn)
    assert_one_line_error(proc, 3, "verification failed")
    assert "FAIL" in proc.stderr
    proc = run("apply-phase", str(plan), "--target", dsn, "--next", "--approver", "ann",
               "--auto-approve")
    assert_one_line_error(proc, 3, "verification of phase 1 failed")

    # Approved through the plan file (no Prefect), rows fixed: the next phase runs.
    proc = run("approve", str(plan), "--target", dsn, "--approver", "bob",
               "--comment", "v2 deployed")
    assert proc.returncode == 0, proc.stderr
    Db("sqlite", dsn).execute("UPDATE users SET score = 0 WHERE score IS NULL")
    assert run("verify-phase", str(plan), "--target", dsn).returncode == 0
    proc = run("apply-phase", str(plan), "--target", dsn, "--next", "--auto-approve")
    assert proc.returncode == 0, proc.stderr
    events = _events(dsn)
    assert {"action": "approved", "phase": 1, "who": "bob", "comment": "v2 deployed"}.items() \
        <= next(e for e in events if e["action"] == "approved" and e["who"] == "bob").items()
    assert [e["phase"] for e in events if e["action"] == "applied"] == [1, 2]
    proc = run("apply-phase", str(plan), "--target", dsn, "--next", "--auto-approve")
    assert_one_line_error(proc, 3, "already")


def test_phase_status_lists_each_verification_once(not_null_plan: tuple[str, Path]) -> None:
    # The demo's status listed "verified phase 1" twice: once for the check an operator
    # (or the flow) ran, once for apply-phase's gate re-running it before phase 2. Both
    # checks run; the gate's passing one is told as part of the apply.
    dsn, plan = not_null_plan
    assert run("apply-phase", str(plan), "--target", dsn, "--next",
               "--auto-approve").returncode == 0
    assert run("approve", str(plan), "--target", dsn, "--approver", "bob").returncode == 0
    # NULLs remain: the gate's failing check is recorded, with the phase it held back.
    proc = run("apply-phase", str(plan), "--target", dsn, "--next", "--auto-approve")
    assert_one_line_error(proc, 3, "verification of phase 1 failed")
    Db("sqlite", dsn).execute("UPDATE users SET score = 0 WHERE score IS NULL")
    assert run("verify-phase", str(plan), "--target", dsn).returncode == 0
    assert run("apply-phase", str(plan), "--target", dsn, "--next",
               "--auto-approve").returncode == 0

    events = _events(dsn)
    verified = [e for e in events if e["action"] == "verified"]
    assert [(e["phase"], bool(e.get("failed")), e.get("before_phase")) for e in verified] \
        == [(1, True, 2), (1, False, None)]
    [applied] = [e for e in events if e["action"] == "applied" and e["phase"] == 2]
    assert applied["verified_first"] == 1
    proc = run("phase-status", "--target", dsn)
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stderr.split())
    assert "verification of phase 1 failed before phase 2 by" in text
    assert text.count("verified phase 1 by") == 1, proc.stderr
    assert re.search(r"applied phase 2 by \S+, after checking phase 1 again", text), text


def test_cli_force_records_the_reason(not_null_plan: tuple[str, Path]) -> None:
    dsn, plan = not_null_plan
    assert run("apply-phase", str(plan), "--target", dsn, "--next",
               "--auto-approve").returncode == 0
    # No approval, NULLs still there: only --force gets phase 2 through, and it would
    # fail on the NULLs, so fix them first (the override skips the gate, not the data).
    Db("sqlite", dsn).execute("UPDATE users SET score = 0 WHERE score IS NULL")
    proc = run("apply-phase", str(plan), "--target", dsn, "--phase", "2", "--auto-approve")
    assert_one_line_error(proc, 3, "approve it first")
    proc = run("apply-phase", str(plan), "--target", dsn, "--phase", "2", "--auto-approve",
               "--force", "hotfix INC-42, deploy verified by hand")
    assert proc.returncode == 0, proc.stderr
    forced = [e for e in _events(dsn) if e["action"] == "applied" and e["phase"] == 2]
    assert forced and forced[0]["forced"] == "hotfix INC-42, deploy verified by hand"
    # Rolled back from the CLI, the state agrees.
    proc = run("rollback-phase", str(plan), "--target", dsn, "--to-phase", "0",
               "--auto-approve")
    assert proc.returncode == 0, proc.stderr
    proc = run("phase-status", "--target", dsn, "--json")
    assert json.loads(proc.stdout)[0]["status"] == "rolled_back"


def test_type_change_builds_the_new_columns_indexes_before_the_swap(pg_dsn: str) -> None:
    """The new column's indexes and unique constraints are built CONCURRENTLY in the
    expand phase under temporary names; the contract phase only renames them, so the
    column is never without them."""
    pg_exec(pg_dsn, PG_SETUP + "CREATE INDEX users_age_idx ON users (age);"
                               "ALTER TABLE users ADD CONSTRAINT users_age_score_key "
                               "UNIQUE (age, score);")
    db = Db("postgres", pg_dsn)
    before = db.schema()
    after = _target(db, before, "change_type", "users", column="age", to_type="integer")
    mp = plan_multiphase(before, after, server_dsn=pg_dsn, table="users")
    expand = " ".join(s for st in mp.phase(1).plan.steps for s in st.sql)
    assert 'CREATE INDEX CONCURRENTLY "users_age_idx__lp_new"' in expand
    assert 'UNIQUE USING INDEX "users_age_score_key__lp_new"' in expand
    contract = " ".join(s for st in mp.phases[-1].plan.steps for s in st.sql)
    assert "CREATE INDEX" not in contract and "CREATE UNIQUE INDEX" not in contract
    assert 'RENAME TO "users_age_idx"' in contract
    assert 'RENAME CONSTRAINT "users_age_score_key__lp_new" TO "users_age_score_key"' \
        in contract
    _run_all_phases(db, mp)
    assert db.schema().hash() == after.hash()
    runner.rollback(mp, db.dsn, 0, options=PERMISSIVE, actor="tester")
    assert db.schema().hash() == before.hash()


@pytest.mark.parametrize(("operation", "change", "violate", "fix"), [
    ("add_check", _add_check, "UPDATE users SET score = -5 WHERE id = 7",
     "UPDATE users SET score = 0 WHERE score < 0"),
    ("add_unique", _add_unique_index, "UPDATE users SET nick = 'N1' WHERE id = 2",
     "UPDATE users SET nick = 'n' || id WHERE id = 2"),
], ids=["check", "unique_index"])
def test_new_constraint_on_sqlite(tmp_path: Path, operation: str,
                                  change: Callable[[Any], None], violate: str,
                                  fix: str) -> None:
    """SQLite: the same two phases; the enforce phase is the rebuild that adds it."""
    db = Db("sqlite", f"sqlite:///{tmp_path / 'app.db'}")
    db.execute(SQLITE_SETUP)
    before = db.schema()
    desired = before.model_copy(deep=True)
    t = desired.table("main", "users")
    assert t is not None
    change(t)
    desired._table_index = None
    after = canonicalize(desired, db.ctx, where="test")
    db.execute(violate)
    mp = plan_multiphase(before, after)
    assert mp.operation == operation and [p.name for p in mp.phases] == ["fix_data",
                                                                          "enforce"]

    def deploy(done: int) -> None:
        assert not any(r.passed for r in runner.verify(mp, db.dsn, 1))
        db.execute(fix)

    _run_all_phases(db, mp, deploy)
    assert db.schema().hash() == after.hash()
    assert db.query("SELECT count(*) FROM users")[0][0] == ROWS
    runner.rollback(mp, db.dsn, 0, options=PERMISSIVE, actor="tester")
    assert db.schema().hash() == before.hash()


def test_verification_queries_are_judged_before_they_run(pg_dsn: str) -> None:
    """A phase's verification queries run on the target as the applying role: phase 1 of
    a new CHECK (no steps) evaluates the CHECK's expression over every row. A function it
    calls that writes (its body changed since the plan was made) was run by verify-phase,
    and by apply-phase's gate before phase 2's steps were checked, unjudged; now it is
    refused before anything runs, as the step would be. A phase not applied yet is not
    verified at all; and each query runs in a read-only transaction."""
    pg_exec(pg_dsn, PG_SETUP + """
CREATE TABLE wiped (n int);
CREATE FUNCTION nonneg(v int) RETURNS boolean LANGUAGE plpgsql AS $$
    BEGIN RETURN v >= 0; END $$;
""")
    db = Db("postgres", pg_dsn)
    before = db.schema()
    desired = before.model_copy(deep=True)
    t = desired.table("public", "users")
    assert t is not None
    t.check_constraints.append(CheckConstraint(name="users_score_ok",
                                               expression="public.nonneg(score)"))
    desired._table_index = None
    after = canonicalize(desired, db.ctx, where="test")
    mp = plan_multiphase(before, after, server_dsn=pg_dsn)
    assert [p.name for p in mp.phases] == ["fix_data", "enforce"]
    assert "nonneg" in " ".join(v.sql for v in mp.phase(1).verification)
    with pytest.raises(SafetyRefusal, match="phase 2 has not been applied yet"):
        runner.verify(mp, pg_dsn, 2)
    runner.apply_phase(mp, pg_dsn, 1, actor="tester", options=NO_SHADOW)
    # The database's function changes after the plan was made and reviewed.
    pg_exec(pg_dsn, """CREATE OR REPLACE FUNCTION nonneg(v int) RETURNS boolean
        LANGUAGE plpgsql AS $$ BEGIN INSERT INTO wiped VALUES (v); RETURN v >= 0; END $$;""")
    with pytest.raises(SafetyRefusal, match=r"phase 1's verification evaluates "
                                            r"public\.nonneg: INSERT"):
        runner.verify(mp, pg_dsn, 1)
    runner.approve(mp, pg_dsn, 1, "tester", "deployed")
    with pytest.raises(SafetyRefusal, match="phase 1's verification evaluates"):
        runner.apply_phase(mp, pg_dsn, 2, actor="tester", options=NO_SHADOW)
    assert db.query("SELECT count(*) FROM wiped")[0][0] == 0
    # Not one query: refused; a query that writes through a CTE fails read-only.
    mp.phase(1).verification[0].sql = "COPY (SELECT 1) TO STDOUT"
    with connect(pg_dsn) as target:
        with pytest.raises(SafetyRefusal, match="not one query: it is COPY, not a SELECT"):
            runner._judge_checks(target, mp.phase(1))
        result = runner._run_check(target, "writes", "WITH d AS (DELETE FROM users "
                                   "RETURNING 1) SELECT * FROM d")
    assert not result.passed and "read-only" in (result.error or "")
    assert db.query("SELECT count(*) FROM users")[0][0] == ROWS


# The dual-write type change converts as the plain ALTER COLUMN ... TYPE does
# (alter_column.cast_sql): a domain read as its base type, and through text where the
# types have no direct cast. It wrote CAST(v AS new type) always: a domain over jsonb
# to integer had its rollback fail ('cannot cast type integer to dj').
def test_change_type_to_and_from_a_domain_converts_as_its_base_type(pg_dsn_factory) -> None:
    a, b = pg_dsn_factory(), pg_dsn_factory()
    domains = "CREATE DOMAIN dj AS jsonb; CREATE DOMAIN dint AS integer CHECK (VALUE > 0);"
    pg_exec(a, domains + "CREATE TABLE t (id int PRIMARY KEY, v dj, n numeric(10,2));"
               " INSERT INTO t VALUES (1, '7', 7.00), (2, NULL, NULL);")
    pg_exec(b, domains + "CREATE TABLE t (id int PRIMARY KEY, v integer, n numeric(10,2));")
    with connect(a) as db:
        before = db.introspect()
    with connect(b) as db:
        after = db.introspect()
    mp = plan_multiphase(before, after, server_dsn=a, table="t")
    assert mp.operation == "change_type"
    for phase in mp.phases:
        if phase.phase_number > 1 and mp.phase(phase.phase_number - 1).requires_code_deploy:
            runner.approve(mp, a, phase.phase_number - 1, "tester", "deployed")
        runner.apply_phase(mp, a, phase.phase_number, actor="tester", options=NO_SHADOW)
    with connect(a) as db:
        assert db.introspect().hash() == after.hash()
    with psycopg.connect(a) as conn:
        assert conn.execute("SELECT id, v FROM t ORDER BY id").fetchall() == [(1, 7), (2, None)]
    runner.rollback(mp, a, 0, options=PERMISSIVE, actor="tester")
    with connect(a) as db:
        assert db.introspect().hash() == before.hash()


# A domain over an enum has no = of its own ("operator does not exist: dm = dm"): the
# backfill's, the sync trigger's and the verifications' IS DISTINCT FROM compare such a
# column as its base type. Rows are written between phases so the sync trigger runs.
ENUM_DOMAIN = "CREATE TYPE mood AS ENUM ('sad', 'ok'); CREATE DOMAIN dm AS mood;"


@pytest.mark.parametrize(("from_col", "to_col", "key"), [
    ("v text", "v dm", "id int PRIMARY KEY"),
    ("v dm", "v text", "id int PRIMARY KEY"),
    ("v dm", "v text", "id int"),  # no key: the batches walk ctid, skipping done rows
    ("v dm[]", "v text[]", "id int PRIMARY KEY"),
    ("v dm", "w dm -- lockplane:renamed-from v\n", "id int PRIMARY KEY"),
], ids=["to a domain over an enum", "from one", "from one, no key", "from an array of one",
        "renamed"])
def test_phases_over_a_domain_over_an_enum(pg_dsn_factory, tmp_path: Path, from_col: str,
                                           to_col: str, key: str) -> None:
    a = pg_dsn_factory()
    value = "'{ok}'" if "[]" in from_col else "'ok'"
    pg_exec(a, f"{ENUM_DOMAIN} CREATE TABLE t ({key}, {from_col});"
               f" INSERT INTO t VALUES (1, {value}), (2, NULL);")
    desired = tmp_path / "schema.sql"
    desired.write_text(f"{ENUM_DOMAIN}\nCREATE TABLE t ({key},\n {to_col});\n")
    db = Db("postgres", a)
    before, after = db.schema(), load_schema(str(desired), db.ctx)
    mp = plan_multiphase(before, after, server_dsn=a, table="t")
    for phase in mp.phases:
        if phase.phase_number > 1 and mp.phase(phase.phase_number - 1).requires_code_deploy:
            runner.approve(mp, a, phase.phase_number - 1, "tester", "deployed")
        runner.apply_phase(mp, a, phase.phase_number, actor="tester", options=NO_SHADOW)
        # old and new code both write (each column the sync trigger mirrors)
        pg_exec(a, f"UPDATE t SET id = id WHERE id = 1; INSERT INTO t (id) VALUES "
                   f"({10 + phase.phase_number})")
    with connect(a) as conn:
        assert conn.introspect().hash() == after.hash()
    col = "w" if "renamed" in to_col else "v"
    with psycopg.connect(a) as c:
        assert c.execute(f"SELECT {col}::text FROM t WHERE id = 1").fetchone() == (
            value.strip("'"),)
    runner.rollback(mp, a, 0, options=PERMISSIVE, actor="tester")
    with connect(a) as conn:
        assert conn.introspect().hash() == before.hash()
