"""Does ADD COLUMN ... DEFAULT rewrite the table? One question, answered by the server.

``lint`` (given a server) and ``plan`` put the same question to a scratch server; both must
agree with each other and with what the server then does on apply (the table's
relfilenode changes or not).
"""

from __future__ import annotations

import time

import pytest

from lockplane.dialects import get_dialect
from lockplane.dialects.postgres.default_rewrites import constant_default
from lockplane.lint import lint_sql
from lockplane.model import Column
from lockplane.plan import build_plan
from tests.conftest import pg_exec

SETUP = """
CREATE SEQUENCE s;
CREATE DOMAIN counted AS bigint DEFAULT nextval('s');
CREATE DOMAIN positive AS int CHECK (VALUE > 0);
CREATE FUNCTION vol() RETURNS int LANGUAGE plpgsql VOLATILE AS 'BEGIN RETURN 1; END';
CREATE FUNCTION sta() RETURNS int LANGUAGE plpgsql STABLE AS 'BEGIN RETURN 1; END';
CREATE FUNCTION imm() RETURNS int LANGUAGE plpgsql IMMUTABLE AS 'BEGIN RETURN 1; END';
CREATE FUNCTION inlined() RETURNS int LANGUAGE sql VOLATILE AS 'SELECT 1';
"""
TABLE = "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);"

# (type, default, rewrites on PostgreSQL 15)
CASES = [
    ("timestamptz", "now()", False),
    ("timestamptz", "CURRENT_TIMESTAMP", False),
    ("timestamptz", "clock_timestamp()", True),
    ("uuid", "gen_random_uuid()", True),
    ("int", "vol()", True),
    ("int", "sta()", False),
    ("int", "imm()", False),
    # a volatile SQL function whose body is a constant is inlined first: stored once
    ("int", "inlined()", False),
    ("bigint", "nextval('s')", True),
    ("text", "now()::text", False),
    ("numeric", "random()::numeric", True),
    ("int", "'7'::int", False),
    ("int", "1 + 2", False),
    ("counted", None, True),  # the domain's own default: nextval per row
    ("positive", "5", True),  # domain constraints are checked per row (before 18)
]


def _ids(cases: list[tuple[str, str | None, bool]]) -> list[str]:
    return [f"{t} {d}" for t, d, _ in cases]


def _relfilenode(db: object, table: str = "t") -> int:
    return db.query("SELECT relfilenode FROM pg_class WHERE oid = %s::regclass",  # type: ignore[attr-defined]
                    [table])[0][0]


def _lint_says(sql_type: str, default: str | None, server: str | None) -> bool | None:
    """True: rewrites; False: no finding; None: a hedged finding."""
    dflt = f" DEFAULT {default}" if default is not None else ""
    found = [f for f in lint_sql(f"{SETUP}\nALTER TABLE t ADD COLUMN c {sql_type}{dflt};",
                                 "m.sql", exclude=["require-lock-timeout"], server_dsn=server)
             if f.rule == "volatile-default"]
    if not found:
        return False
    return None if "may be" in found[0].message else True


def _check(dsn: str, server: str, sql_type: str, default: str | None,
           expected: bool) -> None:
    d = get_dialect("postgres")
    pg_exec(dsn, SETUP + TABLE)
    with d.connect(dsn) as db:
        before = db.introspect()
    after = before.model_copy(deep=True)
    table = next(t for t in after.tables if t.name == "t")
    table.columns.append(Column(name="c", type=sql_type, default=default, nullable=True))
    plan = build_plan(before, after, lock_safe=False, server_dsn=server)
    (step,) = [s for s in plan.steps if s.kind == "add_column"]
    assert step.lock is not None
    planned = step.lock.rewrites_table
    linted = _lint_says(sql_type, default, server)
    with d.connect(dsn) as db:
        node = _relfilenode(db)
        for sql in step.sql:
            db.execute(sql)
        applied = _relfilenode(db) != node
    assert (linted, planned, applied) == (expected, expected, expected)


@pytest.mark.parametrize(("sql_type", "default", "expected"), CASES, ids=_ids(CASES))
def test_lint_plan_and_server_agree(pg_dsn: str, pg_admin_dsn: str, sql_type: str,
                                   default: str | None, expected: bool) -> None:
    _check(pg_dsn, pg_admin_dsn, sql_type, default, expected)


PG18_CASES = [
    ("uuid", "uuidv7()", True),
    ("uuid", "uuidv4()", True),
    ("timestamptz", "now()", False),
    ("int", "vol()", True),
    ("counted", None, True),
]


@pytest.mark.parametrize("pg_admin_dsn", [18], indirect=True, ids=["pg18"])
@pytest.mark.parametrize(("sql_type", "default", "expected"), PG18_CASES,
                         ids=_ids(PG18_CASES))
def test_pg18_lint_plan_and_server_agree(pg_dsn: str, pg_admin_dsn: str, sql_type: str,
                                         default: str | None, expected: bool) -> None:
    _check(pg_dsn, pg_admin_dsn, sql_type, default, expected)


def test_uuidv7_is_unknown_where_the_server_lacks_it(pg_admin_dsn: str) -> None:
    with get_dialect("postgres").connect(pg_admin_dsn) as db:
        if db.server_version >= 180000:  # type: ignore[attr-defined]
            pytest.skip("this server has uuidv7()")
    # no such function: neither plan nor lint guesses, both say "may"
    assert get_dialect("postgres").default_rewrites(
        [("uuid", "uuidv7()")], near_dsn=pg_admin_dsn) == {("uuid", "uuidv7()"): None}
    assert _lint_says("uuid", "uuidv7()", pg_admin_dsn) is None


def test_without_a_server_lint_hedges_all_but_constants() -> None:
    assert _lint_says("timestamptz", "now()", None) is None
    assert _lint_says("uuid", "uuidv7()", None) is None
    assert _lint_says("int", "42", None) is False
    assert _lint_says("int", "'7'::int", None) is False
    assert constant_default("1; DROP TABLE t") is None


def test_many_questions_are_asked_at_once_and_cached(pg_admin_dsn: str) -> None:
    d = get_dialect("postgres")
    questions: list[tuple[str, str | None]] = [
        ("int", f"{i} + length(md5('{i}'))") for i in range(40)]
    start = time.monotonic()
    first = d.default_rewrites(questions, near_dsn=pg_admin_dsn)
    asked = time.monotonic() - start
    start = time.monotonic()
    again = d.default_rewrites(questions, near_dsn=pg_admin_dsn)
    cached = time.monotonic() - start
    assert first == again == {q: False for q in questions}
    assert cached < asked
    # one sandbox for all 40 (a sandbox each would take seconds)
    assert asked < 5


def test_hostile_question_is_refused_not_run(pg_admin_dsn: str) -> None:
    d = get_dialect("postgres")
    q = ("int", "1; CREATE TABLE pwned (x int)")
    assert d.default_rewrites([q], near_dsn=pg_admin_dsn) == {q: None}


def test_setup_statements_pass_the_schema_screen(pg_admin_dsn: str) -> None:
    # A migration file's own CREATEs run before its questions, screened like a desired
    # schema: what the screen refuses is not made, although the sandbox role could make
    # it (Lockplane's own schema name), and a default naming it is unknown.
    d = get_dialect("postgres")
    setup = ["CREATE FUNCTION ok() RETURNS int LANGUAGE plpgsql VOLATILE "
             "AS 'BEGIN RETURN 1; END'",
             "CREATE SCHEMA lockplane",
             "CREATE FUNCTION lockplane.f() RETURNS int LANGUAGE plpgsql VOLATILE "
             "AS 'BEGIN RETURN 1; END'"]
    ok, refused = ("int", "ok()"), ("int", "lockplane.f()")
    assert d.default_rewrites([ok, refused], near_dsn=pg_admin_dsn, setup_sql=setup) == \
        {ok: True, refused: None}


def test_sqlite_never_rewrites() -> None:
    q = ("text", "CURRENT_TIMESTAMP")
    assert get_dialect("sqlite").default_rewrites([q]) == {q: False}


@pytest.mark.parametrize(("sql_type", "default", "expected"), [
    ("timestamptz", "now()", False), ("int", "vol()", True), ("int", "inlined()", False)])
def test_rollback_of_a_drop_asks_too(pg_dsn: str, pg_admin_dsn: str, sql_type: str,
                                     default: str, expected: bool) -> None:
    """The undo of DROP COLUMN re-adds it with its default: asked of the server as well
    (with the functions of the schema it drops from)."""
    d = get_dialect("postgres")
    pg_exec(pg_dsn, SETUP + TABLE + f"ALTER TABLE t ADD COLUMN c {sql_type} DEFAULT {default};")
    with d.connect(pg_dsn) as db:
        before = db.introspect()
    after = before.model_copy(deep=True)
    table = next(t for t in after.tables if t.name == "t")
    table.columns = [c for c in table.columns if c.name != "c"]
    plan = build_plan(before, after, server_dsn=pg_admin_dsn)
    (step,) = [s for s in plan.steps if s.kind == "drop_column"]
    assert step.rollback.lock is not None
    assert step.rollback.lock.rewrites_table is expected
    assert (step.rollback.safety == "safe") is not expected


def test_a_named_server_that_cannot_answer_is_bad_input() -> None:
    from lockplane.errors import BadInput

    with pytest.raises(BadInput) as caught:
        lint_sql("ALTER TABLE t ADD COLUMN c int DEFAULT random();", "m.sql",
                 server_dsn="postgresql://postgres:sekret@127.0.0.1:1/postgres")
    assert "sekret" not in str(caught.value)


def test_a_plan_whose_server_cannot_answer_still_plans(pg_dsn: str) -> None:
    # plan's server is the target's own when none is configured, and its user may not be
    # allowed to make a sandbox there: the plan is still made, on the conservative side.
    d = get_dialect("postgres")
    pg_exec(pg_dsn, TABLE)
    with d.connect(pg_dsn) as db:
        before = db.introspect()
    after = before.model_copy(deep=True)
    table = next(t for t in after.tables if t.name == "t")
    table.columns.append(Column(name="c", type="int", default="random()::int", nullable=True))
    plan = build_plan(before, after, lock_safe=False,
                      server_dsn="postgresql://postgres:sekret@127.0.0.1:1/postgres")
    (step,) = [s for s in plan.steps if s.kind == "add_column"]
    assert step.lock is not None and step.lock.rewrites_table
    assert any("no server was asked" in m for m in [*step.messages,
                                                      *(f.message for f in step.findings)])
