"""Constraint changes without a window (issue 16, item 2).

A foreign key or CHECK replaced by a different one of the same name is swapped in: the
new one added NOT VALID under a temporary name, validated, then the old one dropped and
the new one renamed in one transaction. Validity is a change of its own both ways. Each
case runs through the round-trip harness on PostgreSQL with rows present (catalog after
apply equals the desired schema loaded fresh, rows kept, re-plan empty, rollback exact);
one test runs a plan step by step and tries a violating INSERT between every two steps.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from lockplane.dialects import connect
from lockplane.errors import ExecutionFailed
from lockplane.execute import ApplyOptions, apply_plan
from lockplane.model import Schema
from lockplane.plan import Plan, build_plan, rollback_plan
from tests.conftest import pg_exec
from tests.roundtrip import roundtrip, sqlite_db

TABLES = """
CREATE TABLE orgs (id int PRIMARY KEY);
CREATE TABLE users (id int PRIMARY KEY, org_id int NOT NULL REFERENCES orgs (id),
                    UNIQUE (id, org_id));
CREATE TABLE posts (id int PRIMARY KEY, user_id int, editor_id int, org_id int, n int);
"""
FK_USER = ("ALTER TABLE posts ADD CONSTRAINT posts_user_fk FOREIGN KEY (user_id) "
           "REFERENCES users (id)")
FK_OWNER = ("ALTER TABLE posts ADD CONSTRAINT posts_owner_fk FOREIGN KEY (user_id, org_id) "
            "REFERENCES users (id, org_id)")
CHECK_N = "ALTER TABLE posts ADD CONSTRAINT posts_n_check CHECK (n > 0)"
DATA = """
INSERT INTO orgs VALUES (1), (2);
INSERT INTO users VALUES (1, 1), (2, 1), (3, 2);
INSERT INTO posts VALUES (10, 1, 2, 1, 5), (11, 2, 2, 1, 7), (12, NULL, NULL, NULL, 3),
                         (13, 3, 1, 2, 1);
"""


def script(fk_user: str = FK_USER, fk_owner: str = FK_OWNER, check: str = CHECK_N,
           extra: str = "") -> str:
    return TABLES + ";\n".join([fk_user, fk_owner, check]) + ";\n" + extra


BASE = script()

# (name, from, to, the kinds the lock-safe plan is made of)
SWAP = ["add_foreign_key", "validate_constraint", "swap_constraint"]
SWAP_CHECK = ["add_constraint", "validate_constraint", "swap_constraint"]
PG_CASES: list[tuple[str, str, str, list[str]]] = [
    ("fk action", BASE, script(fk_user=FK_USER + " ON DELETE CASCADE ON UPDATE SET NULL"),
     SWAP),
    ("fk columns", BASE, script(fk_user=FK_USER.replace("(user_id)", "(editor_id)")), SWAP),
    ("fk referenced table", BASE, script(
        fk_user=FK_USER.replace("(user_id) REFERENCES users", "(org_id) REFERENCES orgs")),
     SWAP),
    ("fk deferrability", BASE, script(fk_user=FK_USER + " DEFERRABLE INITIALLY DEFERRED"),
     SWAP),
    ("fk match full", BASE, script(fk_owner=FK_OWNER + " MATCH FULL"), SWAP),
    ("check expression", BASE, script(check="ALTER TABLE posts ADD CONSTRAINT posts_n_check "
                                            "CHECK (n >= 1 AND n < 100)"), SWAP_CHECK),
    ("fk and check together", BASE, script(
        fk_user=FK_USER + " ON DELETE SET NULL",
        check="ALTER TABLE posts ADD CONSTRAINT posts_n_check CHECK (n BETWEEN 1 AND 50)"),
     SWAP_CHECK + SWAP),
    ("check not valid to valid", script(check=CHECK_N + " NOT VALID"), BASE,
     ["validate_constraint"]),
    ("fk not valid to valid", script(fk_user=FK_USER + " NOT VALID"), BASE,
     ["validate_constraint"]),
    ("check valid to not valid", BASE, script(check=CHECK_N + " NOT VALID"),
     ["invalidate_constraint"]),
    ("fk valid to not valid", BASE, script(fk_owner=FK_OWNER + " NOT VALID"),
     ["invalidate_constraint"]),
    ("check changed, wanted not valid", BASE, script(
        check="ALTER TABLE posts ADD CONSTRAINT posts_n_check CHECK (n > 2) NOT VALID"),
     ["add_constraint", "swap_constraint"]),
    ("fk changed, was not valid", script(fk_user=FK_USER + " NOT VALID"),
     script(fk_user=FK_USER + " ON DELETE CASCADE"), SWAP),
    # Its column is retyped in the same plan: the old check goes and the new one comes
    # in the type change's own ALTER TABLE (one statement: no window without a rule,
    # checked in the rewrite, no swap and no VALIDATE).
    ("check changed, column retyped", BASE, script(
        check="ALTER TABLE posts ADD CONSTRAINT posts_n_check CHECK (n > -1)").replace(
            "n int)", "n bigint)"), ["alter_column"]),
]


def _made(dsn_factory, sql: str, data: str = "") -> str:
    dsn = dsn_factory()
    pg_exec(dsn, sql + data)
    return dsn


def _introspect(dsn: str) -> Schema:
    with connect(dsn) as db:
        return db.introspect()


@pytest.mark.parametrize("name, from_sql, to_sql, kinds", PG_CASES,
                         ids=[c[0] for c in PG_CASES])
def test_roundtrip_postgres(pg_dsn_factory, name: str, from_sql: str, to_sql: str,
                            kinds: list[str]) -> None:
    src = _made(pg_dsn_factory, from_sql, DATA)
    dst = _made(pg_dsn_factory, to_sql)
    plan: Plan = roundtrip(src, dst)["plan"]
    assert [s.kind for s in plan.steps] == kinds, [s.description for s in plan.steps]
    if "swap_constraint" in kinds:
        # The old rule is never dropped on its own: only in the swap, after its twin.
        assert not any(s.kind in ("drop_foreign_key", "drop_constraint") for s in plan.steps)
        swap = next(s for s in plan.steps if s.kind == "swap_constraint")
        assert swap.transactional and swap.lock is not None and not swap.lock.scans_table
        assert swap.sql[0].startswith("SET lock_timeout")


def test_not_valid_to_valid_plan_is_not_empty(pg_dsn_factory) -> None:
    # Used to be a plan with no steps whose hashes differ ("already matches").
    before = _introspect(_made(pg_dsn_factory, script(check=CHECK_N + " NOT VALID"), DATA))
    after = _introspect(_made(pg_dsn_factory, BASE))
    plan = build_plan(before, after)
    assert plan.source_hash != plan.target_hash
    assert [s.kind for s in plan.steps] == ["validate_constraint"]
    step = plan.steps[0]
    assert not step.transactional and step.lock is not None and not step.lock.blocks_writes
    assert step.rollback is not None and "NOT VALID" in step.rollback.sql[-1]
    # valid -> NOT VALID: one atomic statement, brief, for review; undone by VALIDATE.
    back = build_plan(after, before)
    [inv] = back.steps
    assert inv.kind == "invalidate_constraint" and inv.safety == "review"
    # (transactional: it commits with the progress record, so a crashed apply resumes)
    assert inv.transactional and inv.lock is not None and not inv.lock.scans_table
    assert [q for q in inv.sql if "DROP CONSTRAINT" in q] == [
        'ALTER TABLE "public"."posts" DROP CONSTRAINT "posts_n_check", ADD CONSTRAINT '
        '"posts_n_check" CHECK ((n > 0)) NOT VALID']
    assert inv.rollback is not None and "VALIDATE CONSTRAINT" in inv.rollback.sql[-1]


def test_constraint_comment_survives(pg_dsn_factory) -> None:
    comment = "COMMENT ON CONSTRAINT posts_n_check ON posts IS 'n is a count';"
    src = _made(pg_dsn_factory, BASE + comment, DATA)
    dst = _made(pg_dsn_factory, script(check=CHECK_N + " NOT VALID") + comment)
    roundtrip(src, dst)
    dst2 = _made(pg_dsn_factory, script(
        check="ALTER TABLE posts ADD CONSTRAINT posts_n_check CHECK (n > -5)") + comment)
    roundtrip(src, dst2)


# ------------------------------------------------------------- step by step, under fire
def _run_step(dsn: str, step) -> None:
    """One step as the executor runs it: transactional ones in a transaction."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        if step.transactional:
            with conn.transaction():
                for stmt in step.sql:
                    conn.execute(stmt)
        else:
            for stmt in step.sql:
                conn.execute(stmt)


def _violation_refused(dsn: str, insert: str) -> bool:
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            conn.execute(insert)
        except psycopg.errors.IntegrityError:
            return True
    # It went in: take it out again, so the next step sees the table as it was.
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM posts WHERE id = 999")
    return False


# (name, desired, an INSERT that both the old and the new rule refuse)
UNDER_FIRE = [
    ("fk action", script(fk_user=FK_USER + " ON DELETE CASCADE"),
     "INSERT INTO posts VALUES (999, 42, 42, NULL, 5)"),
    ("fk columns", script(fk_user=FK_USER.replace("(user_id)", "(editor_id)")),
     "INSERT INTO posts VALUES (999, 42, 42, NULL, 5)"),
    ("fk deferrable", script(fk_user=FK_USER + " DEFERRABLE INITIALLY DEFERRED"),
     "INSERT INTO posts VALUES (999, 42, 42, NULL, 5)"),
    ("fk match full", script(fk_owner=FK_OWNER + " MATCH FULL"),
     "INSERT INTO posts VALUES (999, 1, NULL, 7, 5)"),
    ("check expression", script(check="ALTER TABLE posts ADD CONSTRAINT posts_n_check "
                                      "CHECK (n >= 1 AND n < 100)"),
     "INSERT INTO posts VALUES (999, NULL, NULL, NULL, -3)"),
    ("check valid to not valid", script(check=CHECK_N + " NOT VALID"),
     "INSERT INTO posts VALUES (999, NULL, NULL, NULL, -3)"),
]


@pytest.mark.parametrize("name, to_sql, insert", UNDER_FIRE, ids=[c[0] for c in UNDER_FIRE])
def test_violating_insert_refused_at_every_moment(pg_dsn_factory, name: str, to_sql: str,
                                                  insert: str) -> None:
    src = _made(pg_dsn_factory, BASE, DATA)
    before = _introspect(src)
    after = _introspect(_made(pg_dsn_factory, to_sql))
    plan = build_plan(before, after)
    assert _violation_refused(src, insert)
    for i, step in enumerate(plan.steps, 1):
        _run_step(src, step)
        assert _violation_refused(src, insert), f"accepted after step {i}: {step.description}"
    assert _introspect(src).hash() == after.hash()
    # The rollback, too, step by step.
    for i, step in enumerate(rollback_plan(plan).steps, 1):
        _run_step(src, step)
        assert _violation_refused(src, insert), f"accepted after undo {i}: {step.description}"
    assert _introspect(src).hash() == before.hash()


def test_the_probe_sees_a_window(pg_dsn_factory) -> None:
    # The control: the plain DDL (drop, then add) leaves a moment without the rule, and
    # the probe above finds it.
    src = _made(pg_dsn_factory, BASE, DATA)
    plan = build_plan(_introspect(src), _introspect(_made(
        pg_dsn_factory, script(fk_user=FK_USER + " ON DELETE CASCADE"))), lock_safe=False)
    insert = UNDER_FIRE[0][2]
    refused = []
    for step in plan.steps:
        _run_step(src, step)
        refused.append(_violation_refused(src, insert))
    assert False in refused


def test_failed_validation_leaves_the_old_rule(pg_dsn_factory) -> None:
    # Rows violate the new check: VALIDATE fails, its clean-up drops the new one, and the
    # old one, never touched, still holds.
    src = _made(pg_dsn_factory, BASE, DATA)
    before = _introspect(src)
    plan = build_plan(before, _introspect(_made(pg_dsn_factory, script(
        check="ALTER TABLE posts ADD CONSTRAINT posts_n_check CHECK (n > 4)"))))
    with pytest.raises(ExecutionFailed):
        apply_plan(plan, src, ApplyOptions(safety="permissive", skip_shadow=True,
                                           lock_timeout_ms=5000))
    assert _introspect(src).hash() == before.hash()
    assert _violation_refused(src, "INSERT INTO posts VALUES (999, NULL, NULL, NULL, -3)")


# ------------------------------------------------------------------------------ SQLite
SQLITE_BASE = """
CREATE TABLE users (id INTEGER PRIMARY KEY, org INTEGER NOT NULL, UNIQUE (id, org));
CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER, org INTEGER, n INTEGER,
  CONSTRAINT posts_user_fk FOREIGN KEY (user_id) REFERENCES users (id),
  CONSTRAINT posts_n_check CHECK (n > 0));
"""
SQLITE_DATA = """
INSERT INTO users VALUES (1, 1), (2, 1);
INSERT INTO posts VALUES (10, 1, 1, 5), (11, 2, 1, 7), (12, NULL, NULL, 3);
"""
# (name, desired, a statement only the new rule refuses, and what it leaves behind)
SQLITE_CASES = [
    ("fk action", SQLITE_BASE.replace("REFERENCES users (id)",
                                      "REFERENCES users (id) ON DELETE CASCADE"),
     "DELETE FROM users WHERE id = 1", "SELECT count(*) FROM posts WHERE id = 10", 0),
    ("fk columns", SQLITE_BASE.replace("FOREIGN KEY (user_id) REFERENCES users (id)",
                                       "FOREIGN KEY (user_id, org) REFERENCES users (id, org)"),
     "INSERT INTO posts VALUES (999, 1, 2, 5)", None, None),
    ("check expression", SQLITE_BASE.replace("CHECK (n > 0)", "CHECK (n >= 1 AND n < 100)"),
     "INSERT INTO posts VALUES (999, NULL, NULL, 150)", None, None),
]


@pytest.mark.parametrize("name, to_sql, probe, count_sql, count", SQLITE_CASES,
                         ids=[c[0] for c in SQLITE_CASES])
def test_roundtrip_sqlite_rebuilds(tmp_path: Path, name: str, to_sql: str, probe: str,
                                   count_sql: str | None, count: int | None) -> None:
    import sqlite3

    src = sqlite_db(tmp_path, "from", SQLITE_BASE + SQLITE_DATA)
    dst = sqlite_db(tmp_path, "to", to_sql)
    plan = roundtrip(src, dst)["plan"]
    assert [s.kind for s in plan.steps] == ["rebuild_table"]
    # Applied again (the round trip ended rolled back): the rebuilt table enforces the
    # new rule, not the old one.
    apply_plan(plan, src, ApplyOptions(safety="permissive", skip_shadow=True))
    conn = sqlite3.connect(src.split(":///", 1)[1], isolation_level=None)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        if count_sql is None:
            with pytest.raises(sqlite3.IntegrityError):
                conn.execute(probe)
        else:
            conn.execute(probe)
            assert conn.execute(count_sql).fetchone()[0] == count
    finally:
        conn.close()
