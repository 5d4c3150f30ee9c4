"""A retyped column touches only what depends on it (issue 16, PostgreSQL).

ALTER COLUMN ... TYPE is refused while a view or an SQL-standard routine body reads the
column; the server records those readers per column (pg_depend.refobjsubid). A plan drops
and recreates exactly those, transitively (a view over such a view), and nothing else of
the table's: not the views, routines and CHECKs over its other columns. A view selecting
``*`` reads every column (the server expands it). A PL/pgSQL body records nothing and is
planned when called: it stays. A CHECK over the retyped column is dropped and added back
as declared inside the ALTER TABLE that changes the type, checked in the pass the type
change makes anyway (no NOT VALID add and VALIDATE scanning a second time).

Each pair goes through the round-trip harness (catalog equal to the desired schema loaded
fresh, rows kept, re-plan empty, rollback exact), with a shadow check.
"""

from __future__ import annotations

import psycopg

from tests.conftest import pg_exec
from tests.roundtrip import roundtrip

TABLE = """
CREATE SCHEMA "s x";
CREATE TABLE "s x"."T" (id int PRIMARY KEY, a int CONSTRAINT "a pos" CHECK (a > 0),
  b text CONSTRAINT b_set CHECK (b <> ''));
CREATE VIEW "s x".v_a AS SELECT id, a FROM "s x"."T";
CREATE VIEW "s x".v_b AS SELECT id, b FROM "s x"."T";
CREATE VIEW "s x".v_star AS SELECT * FROM "s x"."T";
CREATE VIEW "s x"."v chain" AS SELECT a FROM "s x".v_a WHERE a > 1;
CREATE VIEW "s x".v_chain_b AS SELECT b FROM "s x".v_b;
CREATE VIEW "s x".v_count AS SELECT count(*) AS n FROM "s x"."T";
CREATE FUNCTION "s x".f_a(x int) RETURNS numeric LANGUAGE sql STABLE
  RETURN (SELECT sum(a) FROM "s x"."T" WHERE id = x);
CREATE FUNCTION "s x".f_b(x int) RETURNS text LANGUAGE sql STABLE
  BEGIN ATOMIC SELECT b FROM "s x"."T" WHERE id = x; END;
CREATE FUNCTION "s x".f_pl(x int) RETURNS numeric LANGUAGE plpgsql STABLE
  AS $$ BEGIN RETURN (SELECT a FROM "s x"."T" WHERE id = x); END $$;
CREATE MATERIALIZED VIEW "s x".m_a AS SELECT id, a FROM "s x"."T";
CREATE MATERIALIZED VIEW "s x".m_b AS SELECT id, b FROM "s x"."T";
"""
ROWS = """INSERT INTO "s x"."T" VALUES (1, 5, 'x'), (2, 7, 'y');
REFRESH MATERIALIZED VIEW "s x".m_a; REFRESH MATERIALIZED VIEW "s x".m_b;"""


def _steps(plan) -> list[str]:  # type: ignore[no-untyped-def]
    return [s.description for s in plan.steps]


def test_only_readers_of_the_retyped_column_are_recreated(pg_dsn_factory) -> None:
    a, b = pg_dsn_factory(), pg_dsn_factory()
    pg_exec(a, TABLE + ROWS)
    pg_exec(b, TABLE.replace("a int CONSTRAINT", "a bigint CONSTRAINT"))
    plan = roundtrip(a, b, shadow=True)["plan"]
    steps = _steps(plan)
    dropped = {d for d in steps if d.startswith("Drop ")}
    assert dropped == {
        "Drop view s x.v_a (recreated below)", "Drop view s x.v chain (recreated below)",
        "Drop view s x.v_star (recreated below)",
        "Drop materialized view s x.m_a (recreated below)",
        "Drop function s x.f_a(x integer) (created again below)"}, steps
    kinds = [s.kind for s in plan.steps]
    assert kinds.count("alter_column") == 1 and "validate_constraint" not in kinds \
        and "add_constraint" not in kinds and "drop_constraint" not in kinds, steps
    (alter,) = [s for s in plan.steps if s.kind == "alter_column"]
    # one statement: the CHECK over "a" goes and comes back as declared, checked in the
    # rewrite; the CHECK over "b" is not touched
    body = [q for q in alter.sql if q.startswith("ALTER TABLE")]
    assert body == ['ALTER TABLE "s x"."T" DROP CONSTRAINT "a pos", ALTER COLUMN "a" TYPE '
                    'bigint USING "a"::bigint, ADD CONSTRAINT "a pos" CHECK ((a > 0))'], body
    assert alter.lock.rewrites_table and alter.lock.scans_table
    assert alter.lock.mode == "ACCESS EXCLUSIVE"
    assert any("no separate scan" in m for m in alter.messages), alter.messages
    # the rollback is the same statement the other way
    assert [q for q in alter.rollback.sql if q.startswith("ALTER TABLE")] == [
        'ALTER TABLE "s x"."T" DROP CONSTRAINT "a pos", ALTER COLUMN "a" TYPE integer '
        'USING "a"::integer, ADD CONSTRAINT "a pos" CHECK ((a > 0))']
    (matview,) = [s for s in plan.steps if s.description.startswith(
        'Recreate materialized view s x.m_a')]
    assert "REFRESH" in matview.description and matview.lock.scans_table
    assert any("last refresh" in m for m in matview.messages), matview.messages
    # What is not on the list: v_b, v_chain_b, v_count, f_b, f_pl, m_b, b's CHECK.
    text = "\n".join(steps)
    for name in ("v_b", "v_chain_b", "v_count", "f_b", "f_pl", "m_b", "b_set"):
        assert name not in text, (name, steps)


def test_plpgsql_reader_is_late_bound(pg_dsn_factory) -> None:
    """A PL/pgSQL body records no dependency: it is not recreated and, planned when it
    is called, reads the new type at once (checked on the database after the plan)."""
    from lockplane.dialects import connect
    from lockplane.execute import ApplyOptions, apply_plan
    from lockplane.plan import build_plan

    a, b = pg_dsn_factory(), pg_dsn_factory()
    pg_exec(a, TABLE + ROWS)
    pg_exec(b, TABLE.replace("a int CONSTRAINT", "a numeric(20,2) CONSTRAINT"))
    with connect(a) as db:
        before = db.introspect()
    with connect(b) as db:
        desired = db.introspect()
    with psycopg.connect(a) as conn:
        assert conn.execute('SELECT "s x".f_pl(1)').fetchone() == (5,)
    plan = build_plan(before, desired)
    assert not any("f_pl" in s.description for s in plan.steps)
    apply_plan(plan, a, ApplyOptions(safety="permissive", skip_shadow=True,
                                     lock_timeout_ms=5000))
    with psycopg.connect(a) as conn:
        conn.execute('UPDATE "s x"."T" SET a = 5.25 WHERE id = 1')
        assert str(conn.execute('SELECT "s x".f_pl(1)').fetchone()[0]) == "5.25"
        # the recreated materialized view holds the rows (WITH DATA)
        assert conn.execute('SELECT count(*) FROM "s x".m_a').fetchone() == (2,)


ROW_TYPE_FN = """CREATE TABLE r (id int PRIMARY KEY, a int, b text);
CREATE FUNCTION label(x r) RETURNS text LANGUAGE sql IMMUTABLE RETURN x.b;
CREATE FUNCTION one(x r) RETURNS int LANGUAGE sql IMMUTABLE RETURN 1;
INSERT INTO r VALUES (1, 2, 'x');"""


def test_row_type_reader_depends_on_every_column(pg_dsn_factory) -> None:
    """A routine that takes the table's row type and reads a field of it is refused
    under a new type of any column ("cannot alter table ... because function ... uses
    its row type"); one that only takes the row type is not."""
    a, b = pg_dsn_factory(), pg_dsn_factory()
    pg_exec(a, ROW_TYPE_FN)
    pg_exec(b, ROW_TYPE_FN.replace("a int", "a bigint").split("INSERT")[0])
    steps = _steps(roundtrip(a, b, shadow=True)["plan"])
    assert any(s.startswith("Drop function public.label(x public.r)") for s in steps), steps
    assert not any("one(x r)" in s for s in steps), steps


IN_CHECK = """CREATE TABLE ck (id int PRIMARY KEY, s {t},
  CONSTRAINT s_in CHECK (s IN ('a', 'b')), CONSTRAINT id_pos CHECK (id > 0),
  CONSTRAINT both_ok CHECK (id > 0 AND s <> 'c'));
INSERT INTO ck VALUES (1, 'a'), (2, NULL);"""


def test_in_check_over_retyped_column_converges(pg_dsn_factory) -> None:
    """414cf97's class: an IN list over a column that becomes varchar reads back as
    another expression when the server rebuilds it from its text. Added back as
    declared in the type change's own statement, it converges (the harness re-plans
    empty) with one pass over the table."""
    a, b = pg_dsn_factory(), pg_dsn_factory()
    pg_exec(a, IN_CHECK.format(t="text"))
    pg_exec(b, IN_CHECK.format(t="varchar(8)").split("INSERT")[0])
    plan = roundtrip(a, b, shadow=True)["plan"]
    assert [s.kind for s in plan.steps] == ["alter_column"], _steps(plan)
    (alter,) = plan.steps
    body = [q for q in alter.sql if q.startswith("ALTER TABLE")]
    assert len(body) == 1 and body[0].count("DROP CONSTRAINT") == 2 \
        and "id_pos" not in body[0], body
    assert alter.lock.rewrites_table and alter.lock.scans_table


RENAMED = """CREATE TABLE notes (id int PRIMARY KEY, {c} {t});
CREATE VIEW note_sizes AS SELECT id, {c} AS note_size FROM notes;
CREATE VIEW note_ids AS SELECT id FROM notes;
CREATE FUNCTION big_notes() RETURNS bigint LANGUAGE sql STABLE
  BEGIN ATOMIC SELECT count(*) FROM notes WHERE {c} > 10; END;
"""


def test_renamed_then_retyped_column_keeps_its_readers(pg_dsn_factory) -> None:
    """A declared rename and a new type in one plan: the readers of the column, known
    to the server's graph under its old name, are those recreated around the type
    change (and their rollback, run while the column has its new name, reads it)."""
    from lockplane.dialects import connect
    from tests.roundtrip import roundtrip_to

    a, b = pg_dsn_factory(), pg_dsn_factory()
    pg_exec(a, RENAMED.format(c="size", t="int")
            + "INSERT INTO notes VALUES (1, 5), (2, NULL);")
    pg_exec(b, RENAMED.format(c="bytes", t="bigint"))
    with connect(b) as db:
        desired = db.introspect()
    t = desired.table("public", "notes")
    assert t is not None
    col = t.column("bytes")
    assert col is not None
    col.renamed_from = "size"
    plan, _ = roundtrip_to(a, desired)
    steps = _steps(plan)
    assert {s for s in steps if s.startswith("Drop ")} == {
        "Drop view public.note_sizes (recreated below)",
        "Drop function public.big_notes() (created again below)"}, steps


TRIGGERS = """
CREATE TABLE t (id int PRIMARY KEY, a int, b int, c int);
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER when_a BEFORE UPDATE ON t FOR EACH ROW WHEN (NEW.a > 0) EXECUTE FUNCTION touch();
CREATE TRIGGER of_b BEFORE UPDATE OF b ON t FOR EACH ROW EXECUTE FUNCTION touch();
CREATE TRIGGER whole_row BEFORE UPDATE ON t FOR EACH ROW
  WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION touch();
ALTER TABLE t ENABLE ROW LEVEL SECURITY;
CREATE POLICY on_a ON t USING (a > 0);
CREATE POLICY on_b ON t USING (b > 0) WITH CHECK (c > 0);
INSERT INTO t VALUES (1, 1, 2, 3);
"""


def test_only_triggers_and_policies_naming_the_retyped_column_are_recreated(
        pg_dsn_factory) -> None:
    """A trigger's WHEN / UPDATE OF and a policy's expressions pin the columns they name
    (read with the parser; a whole-row reference pins every column)."""
    a, b = pg_dsn_factory(), pg_dsn_factory()
    pg_exec(a, TRIGGERS)
    pg_exec(b, TRIGGERS.replace(" b int,", " b bigint,"))
    plan = roundtrip(a, b, shadow=True)["plan"]
    dropped = sorted(s.description for s in plan.steps if s.description.startswith("Drop "))
    assert [d.split(" on ")[0] for d in dropped] == [
        "Drop policy on_b", "Drop trigger of_b", "Drop trigger whole_row"], dropped
