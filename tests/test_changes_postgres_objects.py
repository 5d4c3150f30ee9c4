"""Change kinds for PostgreSQL's non-table objects, round-tripped on a real server.

Each case builds database A and database B from SQL scripts, plans A -> B, runs the plan
on A (one transaction, except steps marked non-transactional), checks A now has B's hash
and nothing left to plan, then runs every step's rollback in reverse order and checks A
is back to its first hash. Most cases run both ways (B -> A exercises the drops).
"""

from __future__ import annotations

import difflib
import json
import secrets
from collections.abc import Callable, Iterator

import psycopg
import pytest
from conftest import PG_ADMIN_DSN, pg_exec, wait_for_dropped_databases
from psycopg import sql

from lockplane.dialects import connect
from lockplane.model import Column, Namespace, Schema, Sequence, Table, View
from lockplane.plan import Plan, build_plan

DsnFactory = Callable[[], str]


# ----------------------------------------------------------------------------- harness
@pytest.fixture(scope="module")
def role(pg_admin_dsn: str) -> Iterator[str]:
    """A login-less role with a hostile name (cluster-wide: unique, dropped at the end).

    Module scope: every database of every case sees the same name, and the per-test
    databases that hold its grants are dropped before the module ends.
    """
    name = f'lp "Grantee" {secrets.token_hex(4)}'
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(name)))
    yield name
    wait_for_dropped_databases()  # their databases grant to it
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def ident(name: str) -> str:
    return sql.Identifier(name).as_string(None)


def load(dsn: str) -> Schema:
    with connect(dsn) as db:
        return db.introspect()


def build(dsn: str, script: str) -> None:
    # A multi-statement string is one transaction; "-- split" commits (enum values).
    for chunk in script.split("\n-- split\n"):
        if chunk.strip():
            pg_exec(dsn, chunk)


def run_steps(dsn: str, steps: list[tuple[list[str], bool]]) -> None:
    """Run steps in one transaction; a non-transactional step runs alone, committed."""
    with psycopg.connect(dsn) as conn:
        for statements, transactional in steps:
            if not transactional:
                conn.commit()
                conn.autocommit = True
            for stmt in statements:
                try:
                    conn.execute(stmt)
                except psycopg.Error as exc:
                    raise AssertionError(f"{stmt}\n-> {exc}") from exc
            if not transactional:
                conn.autocommit = False
        conn.commit()


def assert_same(actual: Schema, expected: Schema, what: str) -> None:
    if actual.hash() == expected.hash():
        return
    a = json.dumps(actual.canonical(), indent=1, sort_keys=True).splitlines()
    e = json.dumps(expected.canonical(), indent=1, sort_keys=True).splitlines()
    delta = "\n".join(difflib.unified_diff(e, a, "expected", "actual", lineterm="", n=3))
    pytest.fail(f"{what}: hashes differ\n{delta}")


def apply_plan(dsn: str, plan: Plan) -> None:
    run_steps(dsn, [(s.sql, s.transactional) for s in plan.steps])


def rollback(dsn: str, plan: Plan) -> None:
    """Each step's undo in reverse order; an undo's own steps (``then``) after it, those
    with a condition only where it holds (no row counted), as the engine runs them."""
    for s in reversed(plan.steps):
        assert s.rollback is not None
        run_steps(dsn, [(s.rollback.sql, s.transactional)])
        for then in s.rollback.then:
            if then.condition is not None:
                with psycopg.connect(dsn) as conn:
                    (count,) = conn.execute(then.condition.query).fetchone()  # type: ignore[misc]
                if count:
                    continue
            run_steps(dsn, [(then.sql, then.transactional)])


def roundtrip(make: DsnFactory, a_sql: str, b_sql: str, *, rollback_ok: bool = True,
              ) -> Plan:
    a_dsn, b_dsn = make(), make()
    build(a_dsn, a_sql)
    build(b_dsn, b_sql)
    a0, b = load(a_dsn), load(b_dsn)
    plan = build_plan(a0, b)
    assert plan.steps, "the two scripts should differ"
    apply_plan(a_dsn, plan)
    a1 = load(a_dsn)
    assert_same(a1, b, "after the plan")
    again = build_plan(a1, b)
    assert not again.steps, [s.description for s in again.steps]
    if rollback_ok:
        rollback(a_dsn, plan)
        assert_same(load(a_dsn), a0, "after the rollback")
    return plan


def both_ways(make: DsnFactory, a_sql: str, b_sql: str) -> tuple[Plan, Plan]:
    return roundtrip(make, a_sql, b_sql), roundtrip(make, b_sql, a_sql)


def kinds(plan: Plan) -> list[str]:
    return [s.kind or "" for s in plan.steps]


def step(plan: Plan, kind: str) -> list:
    return [s for s in plan.steps if s.kind == kind]


def body(statements: list[str]) -> list[str]:
    """A step's SQL without the timeouts every PostgreSQL step sets around its DDL."""
    return [s for s in statements if not s.startswith((
        "SET lock_timeout", "SET statement_timeout", "RESET statement_timeout"))]


# ----------------------------------------------------------------------------- schemas
HOSTILE_SCHEMAS = '''
CREATE SCHEMA "Weird ""Name""";
CREATE SCHEMA "select";
CREATE SCHEMA "with space";
CREATE SCHEMA "MixedCase";
COMMENT ON SCHEMA "Weird ""Name""" IS 'it''s; weird';
CREATE TABLE "select"."from" ("Col umn" int);
CREATE TYPE "MixedCase"."Mood" AS ENUM ('a', 'b');
CREATE SEQUENCE "with space"."seq; drop"
'''


def test_schemas_with_hostile_names(pg_dsn_factory: DsnFactory) -> None:
    forward, backward = both_ways(pg_dsn_factory, "", HOSTILE_SCHEMAS)
    assert kinds(forward).count("create_schema") == 4
    assert kinds(backward).count("drop_schema") == 4
    assert all('"public"' not in q for s in forward.steps + backward.steps for q in s.sql)


def test_schema_comment_and_grants_change(pg_dsn_factory: DsnFactory, role: str) -> None:
    r = ident(role)
    both_ways(pg_dsn_factory,
              'CREATE SCHEMA app; COMMENT ON SCHEMA app IS \'old\'; '
              f'GRANT USAGE ON SCHEMA app TO {r}',
              'CREATE SCHEMA app; COMMENT ON SCHEMA app IS \'new\'; '
              f'GRANT USAGE, CREATE ON SCHEMA app TO {r} WITH GRANT OPTION')


def test_namespaces_implied_by_objects_are_created(pg_dsn: str) -> None:
    before = load(pg_dsn)
    after = Schema(dialect="postgres", tables=[
        Table(name="t", schema="implied", columns=[Column(name="a", type="integer")])],
        sequences=[Sequence(name="s", schema="also implied")],
        views=[View(name="v", schema="public", definition="SELECT 1 AS one")])
    plan = build_plan(before, after)
    assert kinds(plan)[:2] == ["create_schema", "create_schema"]
    apply_plan(pg_dsn, plan)
    now = load(pg_dsn)
    assert {ns.name for ns in now.schemas} == {"implied", "also implied"}
    # Listed or implied, the namespace is wanted: nothing left to do; public is untouched.
    assert not build_plan(now, after).steps
    assert not build_plan(now, after.model_copy(update={"schemas": [
        Namespace(name="implied"), Namespace(name="also implied")]})).steps
    rollback(pg_dsn, plan)
    assert_same(load(pg_dsn), before, "after the rollback")


# -------------------------------------------------------------------------- extensions
def _available(dsn: str, name: str) -> bool:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = %s",
                            (name,)).fetchone() is not None


def test_extension_create_and_drop(pg_dsn_factory: DsnFactory) -> None:
    if not _available(PG_ADMIN_DSN, "citext"):
        pytest.skip("citext is not installed on this server")
    forward, backward = both_ways(pg_dsn_factory, "CREATE SCHEMA ext;", '''
CREATE SCHEMA ext;
CREATE EXTENSION citext WITH SCHEMA ext;
COMMENT ON EXTENSION citext IS 'case-insensitive; text';
CREATE TABLE users (email ext.citext NOT NULL);
''')
    assert kinds(forward).index("create_extension") < kinds(forward).index("create_table")
    assert kinds(backward).index("drop_table") < kinds(backward).index("drop_extension")


def test_extension_version_update(pg_dsn_factory: DsnFactory) -> None:
    if not _available(PG_ADMIN_DSN, "citext"):
        pytest.skip("citext is not installed on this server")
    # citext ships no script from 1.6 back to 1.5: the undo drops the extension and
    # creates it at 1.5 (where a path exists, the update script runs instead).
    plan = roundtrip(pg_dsn_factory, "CREATE EXTENSION citext VERSION '1.5'",
                     "CREATE EXTENSION citext VERSION '1.6'")
    (alter,) = step(plan, "alter_extension")
    (forward,) = body(alter.sql)
    assert "ALTER EXTENSION \"citext\" UPDATE TO '1.6'" in forward
    (back,) = body(alter.rollback.sql)
    assert "ALTER EXTENSION \"citext\" UPDATE TO '1.5'" in back
    assert "DROP EXTENSION \"citext\"; CREATE EXTENSION \"citext\" WITH SCHEMA \"public\" " \
           "VERSION '1.5'" in back
    assert "downgrade" in (alter.rollback.note or "")


# ------------------------------------------------------------------------------- enums
ENUM_A = '''
CREATE SCHEMA "select";
CREATE TYPE "select"."Mood" AS ENUM ('sad', 'happy');
COMMENT ON TYPE "select"."Mood" IS 'feelings';
CREATE TABLE people (id int, m "select"."Mood" DEFAULT 'sad', ms "select"."Mood"[]);
INSERT INTO people VALUES (1, 'happy', '{sad,happy}');
'''


def test_enum_add_values_in_the_middle(pg_dsn_factory: DsnFactory) -> None:
    b = ENUM_A.replace("('sad', 'happy')", "('awful', 'sad', 'ok', 'happy', 'ecstatic')")
    plan = roundtrip(pg_dsn_factory, ENUM_A, b)
    adds = step(plan, "add_enum_value")
    assert [body(s.sql)[0].split("ADD VALUE ")[1] for s in adds] == [
        "'awful' BEFORE 'sad'", "'ok' AFTER 'sad'", "'ecstatic' AFTER 'happy'"]
    assert all(not s.transactional and s.safety == "safe" for s in adds)
    # Undoing an added value recreates the type (PostgreSQL cannot drop a value).
    assert any("RENAME TO" in q for q in adds[0].rollback.sql)


def test_enum_added_value_undone_around_replaced_holders(pg_dsn_factory: DsnFactory) -> None:
    """The undo of an added value recreates the type last in the rollback, when the
    CHECKs and indexes the plan replaced (swapped under a temporary name) are back: they
    are dropped and made again around it; one the plan only drops is not there yet."""
    a = """CREATE TYPE st AS ENUM ('x', 'y');
CREATE TABLE t (id int PRIMARY KEY, s st, CONSTRAINT c CHECK (s <> 'x'),
                CONSTRAINT d CHECK (s <> 'y' OR id > 0));
CREATE INDEX i ON t (id) WHERE s = 'y';
INSERT INTO t VALUES (1, 'y');
"""
    b = """CREATE TYPE st AS ENUM ('x', 'y', 'z');
CREATE TABLE t (id int PRIMARY KEY, s st, CONSTRAINT d CHECK (s <> 'z' OR id > 0));
CREATE INDEX i ON t (id) WHERE s = 'z';
"""
    roundtrip(pg_dsn_factory, a, b)


def test_enum_value_removal_recreates_the_type(pg_dsn_factory: DsnFactory) -> None:
    a = ENUM_A.replace("('sad', 'happy')", "('sad', 'meh', 'happy')") + '''
CREATE VIEW moods AS SELECT id, m FROM people;
CREATE INDEX people_m ON people (m);
'''
    b = a.replace("('sad', 'meh', 'happy')", "('happy', 'sad')")
    plan = roundtrip(pg_dsn_factory, a, b)
    (recreate,) = step(plan, "recreate_enum")
    assert recreate.safety == "dangerous"
    assert any("USING \"ms\"::text[]::" in q for q in recreate.sql)
    # The view reading the converted column is dropped first and created again after.
    k = kinds(plan)
    assert k.index("drop_view") < k.index("recreate_enum") < k.index("create_view")


def test_enum_create_and_drop(pg_dsn_factory: DsnFactory) -> None:
    both_ways(pg_dsn_factory, "", ENUM_A)


# ----------------------------------------------------------------------------- domains
DOMAIN_A = '''
CREATE SCHEMA "Weird ""Name""";
CREATE DOMAIN "Weird ""Name"""."Pos Int" AS integer CHECK (VALUE > 0);
CREATE TABLE counts (n "Weird ""Name"""."Pos Int");
INSERT INTO counts VALUES (5);
'''
DOMAIN_B = '''
CREATE SCHEMA "Weird ""Name""";
CREATE DOMAIN "Weird ""Name"""."Pos Int" AS integer NOT NULL DEFAULT 1
    CONSTRAINT "Pos Int_check" CHECK (VALUE > 0)
    CONSTRAINT "small; enough" CHECK (VALUE < 1000);
COMMENT ON DOMAIN "Weird ""Name"""."Pos Int" IS 'a count';
COMMENT ON CONSTRAINT "small; enough" ON DOMAIN "Weird ""Name"""."Pos Int" IS 'cap';
CREATE DOMAIN code AS varchar(10) COLLATE "C" CHECK (length(VALUE) > 1);
CREATE TABLE counts (n "Weird ""Name"""."Pos Int", c code);
INSERT INTO counts VALUES (5);
'''


def test_domain_with_checks(pg_dsn_factory: DsnFactory) -> None:
    forward, backward = both_ways(pg_dsn_factory, DOMAIN_A, DOMAIN_B)
    (alter,) = step(forward, "alter_domain")
    assert alter.safety == "review"
    assert step(forward, "create_domain") and step(backward, "drop_domain")


def test_domain_check_comment_only(pg_dsn_factory: DsnFactory) -> None:
    b = DOMAIN_B.replace("IS 'cap'", "IS 'new cap'")
    roundtrip(pg_dsn_factory, DOMAIN_B, b)


# ----------------------------------------------------------------------- composite types
COMPOSITE_A = '''
CREATE TYPE addr AS (street text, zip integer);
CREATE TABLE places (a addr);
INSERT INTO places VALUES (ROW('Main', 1));
'''
COMPOSITE_B = '''
CREATE TYPE addr AS (street text, zip bigint, "City Name" text COLLATE "C");
COMMENT ON TYPE addr IS 'where';
CREATE TYPE "Pair" AS (x integer, y integer);
CREATE TABLE places (a addr);
INSERT INTO places VALUES (ROW('Main', 1, 'X'));
'''


def test_composite_type(pg_dsn_factory: DsnFactory) -> None:
    forward, backward = both_ways(pg_dsn_factory, COMPOSITE_A.replace(
        "CREATE TABLE places (a addr);\nINSERT INTO places VALUES (ROW('Main', 1));", ""),
        COMPOSITE_B.replace(
            "CREATE TABLE places (a addr);\nINSERT INTO places VALUES (ROW('Main', 1, 'X'));",
            ""))
    (alter,) = step(forward, "alter_composite_type")
    assert "ADD ATTRIBUTE" in body(alter.sql)[0] and "ALTER ATTRIBUTE" in body(alter.sql)[0]
    assert "DROP ATTRIBUTE" in body(step(backward, "alter_composite_type")[0].sql)[0]


def test_composite_type_reorder_recreates(pg_dsn_factory: DsnFactory) -> None:
    plan = roundtrip(pg_dsn_factory, "CREATE TYPE t AS (a int, b int, c int)",
                     "CREATE TYPE t AS (a int, c int, b int)")
    (alter,) = step(plan, "alter_composite_type")
    assert alter.safety == "dangerous" and body(alter.sql)[0].startswith("DROP TYPE")


# --------------------------------------------------------------------------- sequences
def test_serial_sequence_owned_by_a_column(pg_dsn_factory: DsnFactory) -> None:
    forward, backward = both_ways(
        pg_dsn_factory,
        "CREATE TABLE t (x int); INSERT INTO t VALUES (1)",
        'CREATE TABLE t (x int, "Id" serial); COMMENT ON SEQUENCE "t_Id_seq" IS \'ids\'')
    k = kinds(forward)
    assert k.index("create_sequence") < k.index("add_column") < k.index("alter_sequence")
    own = step(forward, "alter_sequence")[0]
    assert body(own.sql) == ['ALTER SEQUENCE "public"."t_Id_seq" OWNED BY "public"."t"."Id"']
    k = kinds(backward)
    # Ownership is given up before the column goes, or the drop would take the sequence.
    assert k.index("alter_sequence") < k.index("drop_column") < k.index("drop_sequence")


def test_serial_table_created_and_dropped(pg_dsn_factory: DsnFactory) -> None:
    both_ways(pg_dsn_factory, "", '''
CREATE SCHEMA "with space";
CREATE TABLE "with space"."T" (id bigserial PRIMARY KEY, note text);
''')


def test_sequence_options(pg_dsn_factory: DsnFactory, role: str) -> None:
    both_ways(pg_dsn_factory, "CREATE SEQUENCE s", f'''
CREATE SEQUENCE s AS smallint INCREMENT BY 5 MINVALUE -10 MAXVALUE 1000 START WITH 20
    CACHE 3 CYCLE;
COMMENT ON SEQUENCE s IS 'ticks';
GRANT USAGE ON SEQUENCE s TO {ident(role)};
CREATE SEQUENCE "select";
''')


def test_sequence_changes_owner(pg_dsn_factory: DsnFactory) -> None:
    base = "CREATE TABLE a (x int); CREATE TABLE b (y int); CREATE SEQUENCE s;"
    plan = roundtrip(pg_dsn_factory, base + "ALTER SEQUENCE s OWNED BY a.x",
                     base + "ALTER SEQUENCE s OWNED BY b.y")
    assert [body(s.sql)[0].split("OWNED BY ")[1] for s in step(plan, "alter_sequence")] == [
        "NONE", '"public"."b"."y"']


def test_identity_column(pg_dsn_factory: DsnFactory) -> None:
    both_ways(pg_dsn_factory, "CREATE TABLE t (a int NOT NULL)",
              "CREATE TABLE t (a int GENERATED BY DEFAULT AS IDENTITY, "
              "id bigint GENERATED ALWAYS AS IDENTITY)")


# --------------------------------------------------------------------------- functions
FUNCS_A = '''
CREATE SCHEMA "select";
CREATE FUNCTION "select".add1(x integer) RETURNS integer LANGUAGE sql AS 'SELECT x + 1';
CREATE FUNCTION greet(name text) RETURNS text LANGUAGE plpgsql
    AS $$BEGIN RETURN 'hi ' || name; END$$;
CREATE FUNCTION sig(a integer) RETURNS integer LANGUAGE sql AS 'SELECT a';
CREATE FUNCTION ret(a integer) RETURNS integer LANGUAGE sql AS 'SELECT a';
CREATE PROCEDURE "Do It"(n integer) LANGUAGE sql AS $$ SELECT n $$;
CREATE FUNCTION renamed(a integer, "b c" text) RETURNS integer LANGUAGE sql AS 'SELECT a';
'''
FUNCS_B = '''
CREATE SCHEMA "select";
CREATE FUNCTION "select".add1(x integer) RETURNS integer LANGUAGE sql AS 'SELECT x + 1';
COMMENT ON FUNCTION "select".add1(integer) IS 'adds; one';
CREATE FUNCTION greet(name text) RETURNS text LANGUAGE plpgsql STABLE
    AS $$BEGIN RETURN 'hello ' || name; END$$;
CREATE FUNCTION sig(a integer, b integer) RETURNS integer LANGUAGE sql AS 'SELECT a + b';
CREATE FUNCTION ret(a integer) RETURNS bigint LANGUAGE sql AS 'SELECT a::bigint';
COMMENT ON FUNCTION ret(integer) IS 'wider';
CREATE PROCEDURE "Do It"(n integer) LANGUAGE plpgsql AS $$ BEGIN PERFORM n; END $$;
COMMENT ON PROCEDURE "Do It"(integer) IS 'does it';
CREATE FUNCTION renamed(x integer, y text) RETURNS integer LANGUAGE sql AS 'SELECT x';
CREATE TABLE items (n int);
CREATE FUNCTION count_items() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM items';
'''


def test_functions_and_procedures(pg_dsn_factory: DsnFactory) -> None:
    forward, _ = both_ways(pg_dsn_factory, FUNCS_A, FUNCS_B)
    by_desc = {s.description: s for s in forward.steps}
    assert "Replace function public.greet(name text)" in by_desc
    recreate = by_desc["Recreate function public.ret(a integer)"]
    assert body(recreate.sql)[0] == 'DROP FUNCTION "public"."ret"(a integer)'
    assert body(recreate.sql)[1] == "SET check_function_bodies = off"
    assert "Drop function public.sig(a integer)" in by_desc
    assert "Create function public.sig(a integer, b integer)" in by_desc
    # Renamed parameters: the same routine to the server, replaced in one step.
    renamed = by_desc["Recreate function public.renamed(x integer, y text)"]
    assert body(renamed.sql)[0] == 'DROP FUNCTION "public"."renamed"(a integer, "b c" text)'
    # A function that reads a table is created before the table (bodies not checked).
    k = kinds(forward)
    assert k.index("create_function") < k.index("create_table")


# ------------------------------------------------------------------------------- views
VIEWS_A = '''
CREATE TABLE t (a integer, b integer, c text);
CREATE VIEW v1 AS SELECT a FROM t;
CREATE VIEW "V two" AS SELECT a FROM v1 WHERE a > 0;
CREATE VIEW v3 AS SELECT "V two".a FROM "V two" JOIN v1 USING (a);
CREATE VIEW untouched AS SELECT c FROM t;
COMMENT ON VIEW "V two" IS 'second';
'''


def test_view_chain_with_changed_base(pg_dsn_factory: DsnFactory, role: str) -> None:
    b = VIEWS_A.replace("CREATE VIEW v1 AS SELECT a FROM t;",
                        "CREATE VIEW v1 AS SELECT a, b FROM t;") + \
        f"GRANT SELECT ON v3 TO {ident(role)};"
    forward, backward = both_ways(pg_dsn_factory, VIEWS_A, b)
    drops = [s.description for s in step(forward, "drop_view")]
    creates = [s.description for s in step(forward, "create_view")]
    assert drops == ["Drop view public.v3 (recreated below)",
                     "Drop view public.V two (recreated below)",
                     "Drop view public.v1 (recreated below)"]
    assert creates == ["Recreate view public.v1", "Recreate view public.V two",
                       "Recreate view public.v3"]
    assert not any("untouched" in d for d in drops)


def test_view_on_table_whose_column_type_changes(pg_dsn_factory: DsnFactory) -> None:
    a = '''
CREATE TABLE t (a integer, b text, gone text);
CREATE VIEW v WITH (security_barrier = true) AS SELECT a, b FROM t WHERE a > 0
    WITH LOCAL CHECK OPTION;
CREATE VIEW w AS SELECT a FROM v;
'''
    b = a.replace("CREATE TABLE t (a integer, b text, gone text)",
                  "CREATE TABLE t (a bigint, b text)")
    plan = roundtrip(pg_dsn_factory, a, b)
    k = kinds(plan)
    assert k.count("drop_view") == 2 and k.count("create_view") == 2
    assert k.index("drop_view") < k.index("alter_column") < k.index("create_view")


def test_view_options_change_in_place(pg_dsn_factory: DsnFactory) -> None:
    a = "CREATE TABLE t (a int); CREATE VIEW v AS SELECT a FROM t;"
    b = ("CREATE TABLE t (a int); CREATE VIEW v WITH (security_barrier = true) AS "
         "SELECT a FROM t WITH CASCADED CHECK OPTION;")
    forward, _ = both_ways(pg_dsn_factory, a, b)
    assert kinds(forward) == ["replace_view"]


MATVIEW_B = '''
CREATE TABLE t (a integer, b integer);
INSERT INTO t VALUES (1, 2), (1, 3), (2, 4);
CREATE MATERIALIZED VIEW "Totals" AS SELECT a, sum(b) AS total FROM t GROUP BY a;
CREATE UNIQUE INDEX "Totals a" ON "Totals" (a);
COMMENT ON INDEX "Totals a" IS 'one per a';
COMMENT ON MATERIALIZED VIEW "Totals" IS 'sums';
'''


def test_materialized_view_with_index(pg_dsn_factory: DsnFactory) -> None:
    a = "CREATE TABLE t (a integer, b integer); INSERT INTO t VALUES (1, 2);"
    forward, _ = both_ways(pg_dsn_factory, a, MATVIEW_B)
    (create,) = step(forward, "create_view")
    assert any(q.startswith('CREATE UNIQUE INDEX "Totals a"') for q in create.sql)


def test_materialized_view_index_changes(pg_dsn_factory: DsnFactory) -> None:
    b = MATVIEW_B.replace("COMMENT ON INDEX \"Totals a\" IS 'one per a';",
                          'CREATE INDEX totals_total ON "Totals" (total DESC);')
    forward, _ = both_ways(pg_dsn_factory, MATVIEW_B, b)
    assert set(kinds(forward)) == {"create_index", "set_comment"}


# ---------------------------------------------------------------------------- triggers
TRIGGER_A = '''
CREATE SCHEMA "Weird ""Name""";
CREATE TABLE "Weird ""Name"""."semi;colon" (id int, note text, updated timestamptz);
'''
TRIGGER_B = TRIGGER_A + '''
CREATE FUNCTION "Weird ""Name"""."touch!"() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN NEW.updated := now(); RETURN NEW; END $$;
CREATE TRIGGER "Before; Update" BEFORE UPDATE ON "Weird ""Name"""."semi;colon"
    FOR EACH ROW WHEN (OLD.note IS DISTINCT FROM NEW.note)
    EXECUTE FUNCTION "Weird ""Name"""."touch!"();
CREATE TRIGGER quiet AFTER INSERT ON "Weird ""Name"""."semi;colon"
    FOR EACH STATEMENT EXECUTE FUNCTION "Weird ""Name"""."touch!"();
ALTER TABLE "Weird ""Name"""."semi;colon" DISABLE TRIGGER quiet;
COMMENT ON TRIGGER "Before; Update" ON "Weird ""Name"""."semi;colon" IS 'stamp';
CREATE TABLE audited (x int);
CREATE TRIGGER audit BEFORE INSERT ON audited
    FOR EACH ROW EXECUTE FUNCTION "Weird ""Name"""."touch!"();
ALTER TABLE audited ENABLE ALWAYS TRIGGER audit;
'''


def test_trigger_and_trigger_function(pg_dsn_factory: DsnFactory) -> None:
    forward, backward = both_ways(pg_dsn_factory, TRIGGER_A, TRIGGER_B)
    k = kinds(forward)
    assert k.index("create_function") < k.index("create_trigger")
    k = kinds(backward)
    assert k.index("drop_trigger") < k.index("drop_function")


def test_trigger_enabled_and_definition_changes(pg_dsn_factory: DsnFactory) -> None:
    b = TRIGGER_B.replace("DISABLE TRIGGER quiet", "ENABLE REPLICA TRIGGER quiet").replace(
        "WHEN (OLD.note IS DISTINCT FROM NEW.note)", "").replace("IS 'stamp'", "IS 'stamp2'")
    forward, _ = both_ways(pg_dsn_factory, TRIGGER_B, b)
    assert sorted(kinds(forward)) == ["alter_trigger", "create_trigger", "drop_trigger"]


# ------------------------------------------------------------------------ RLS, policies
def rls_script(role: str) -> str:
    r = ident(role)
    return f'''
CREATE TABLE docs (owner text, n int);
ALTER TABLE docs ENABLE ROW LEVEL SECURITY;
ALTER TABLE docs FORCE ROW LEVEL SECURITY;
CREATE POLICY "own rows" ON docs FOR SELECT TO {r}, CURRENT_USER USING (owner = CURRENT_USER);
CREATE POLICY "cap; it" ON docs AS RESTRICTIVE FOR INSERT WITH CHECK (n < 100);
COMMENT ON POLICY "cap; it" ON docs IS 'no big numbers';
CREATE TABLE secrets (s text);
ALTER TABLE secrets ENABLE ROW LEVEL SECURITY;
CREATE POLICY everything ON secrets USING (true) WITH CHECK (s <> '');
'''


def test_rls_and_policies(pg_dsn_factory: DsnFactory, role: str) -> None:
    forward, backward = both_ways(pg_dsn_factory, "CREATE TABLE docs (owner text, n int);",
                                  rls_script(role))
    (rls,) = [s for s in step(forward, "alter_rls") if s.table == "public.docs"]
    assert rls.safety == "review"
    assert body(rls.sql) == ['ALTER TABLE "public"."docs" ENABLE ROW LEVEL SECURITY',
                       'ALTER TABLE "public"."docs" FORCE ROW LEVEL SECURITY']


def test_policy_changes(pg_dsn_factory: DsnFactory, role: str) -> None:
    a = rls_script(role)
    b = a.replace("n < 100", "n < 50").replace("'no big numbers'", "'smaller'").replace(
        "ALTER TABLE docs FORCE ROW LEVEL SECURITY;", "")
    forward, _ = both_ways(pg_dsn_factory, a, b)
    assert sorted(kinds(forward)) == ["alter_rls", "create_policy", "drop_policy"]


# ------------------------------------------------------------------------------ grants
GRANTS_BASE = '''
CREATE SCHEMA app;
CREATE TABLE app.t (id int);
CREATE VIEW app.v AS SELECT id FROM app.t;
CREATE SEQUENCE app.s;
CREATE FUNCTION app.f(x integer) RETURNS integer LANGUAGE sql AS 'SELECT x';
CREATE PROCEDURE app.p() LANGUAGE sql AS 'SELECT 1';
'''


def test_grants(pg_dsn_factory: DsnFactory, role: str) -> None:
    r = ident(role)
    b = GRANTS_BASE + f'''
GRANT SELECT, INSERT ON app.t TO {r};
GRANT UPDATE ON app.t TO PUBLIC;
GRANT SELECT ON app.v TO {r} WITH GRANT OPTION;
GRANT USAGE ON SEQUENCE app.s TO {r};
GRANT EXECUTE ON FUNCTION app.f(integer) TO {r};
GRANT EXECUTE ON PROCEDURE app.p() TO {r};
GRANT USAGE ON SCHEMA app TO {r};
CREATE TABLE app.fresh (x int);
GRANT DELETE ON app.fresh TO {r};
'''
    forward, backward = both_ways(pg_dsn_factory, GRANTS_BASE, b)
    assert all(s.safety == "safe" for s in step(forward, "grant"))
    assert all(s.safety == "review" for s in step(backward, "revoke"))


def test_grant_option_only(pg_dsn_factory: DsnFactory, role: str) -> None:
    r = ident(role)
    plan = roundtrip(pg_dsn_factory, GRANTS_BASE + f"GRANT SELECT ON app.t TO {r};",
                     GRANTS_BASE + f"GRANT SELECT ON app.t TO {r} WITH GRANT OPTION;")
    assert body(plan.steps[0].rollback.sql)[0].startswith("REVOKE GRANT OPTION FOR SELECT")


# ---------------------------------------------------------------------------- comments
COMMENTABLE = '''
CREATE SCHEMA app;
CREATE TYPE app.mood AS ENUM ('a');
CREATE DOMAIN app.pos AS int CONSTRAINT pos_check CHECK (VALUE > 0);
CREATE TYPE app.pair AS (x int, y int);
CREATE SEQUENCE app.seq;
CREATE TABLE app.t (id int, owner text);
CREATE VIEW app.v AS SELECT id FROM app.t;
CREATE MATERIALIZED VIEW app.m AS SELECT id FROM app.t;
CREATE FUNCTION app.f(a int, b text) RETURNS int LANGUAGE sql AS 'SELECT a';
CREATE PROCEDURE app.p(a int) LANGUAGE sql AS 'SELECT 1';
CREATE FUNCTION app.trg() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
CREATE TRIGGER tr BEFORE INSERT ON app.t FOR EACH ROW EXECUTE FUNCTION app.trg();
CREATE POLICY pol ON app.t USING (true);
'''
COMMENTS = '''
COMMENT ON SCHEMA app IS 'schema';
COMMENT ON TYPE app.mood IS 'enum';
COMMENT ON DOMAIN app.pos IS 'domain';
COMMENT ON CONSTRAINT pos_check ON DOMAIN app.pos IS 'domain check';
COMMENT ON TYPE app.pair IS 'composite';
COMMENT ON SEQUENCE app.seq IS 'sequence';
COMMENT ON VIEW app.v IS 'view';
COMMENT ON MATERIALIZED VIEW app.m IS 'matview';
COMMENT ON FUNCTION app.f(int, text) IS 'function';
COMMENT ON PROCEDURE app.p(int) IS 'procedure';
COMMENT ON TRIGGER tr ON app.t IS 'trigger';
COMMENT ON POLICY pol ON app.t IS 'policy';
'''


def test_comments_on_everything(pg_dsn_factory: DsnFactory) -> None:
    forward, backward = both_ways(pg_dsn_factory, COMMENTABLE, COMMENTABLE + COMMENTS)
    assert set(kinds(forward)) == {"set_comment", "alter_domain"}
    assert len(forward.steps) == 12 and len(backward.steps) == 12


def test_everything_created_with_comments_and_dropped(pg_dsn_factory: DsnFactory) -> None:
    both_ways(pg_dsn_factory, "", COMMENTABLE + COMMENTS)


# ------------------------------------------------------------- a whole database at once
def whole_database(role: str) -> str:
    """Every object kind together, with cross-kind dependencies, hostile names."""
    r = ident(role)
    return f'''
CREATE SCHEMA app;
COMMENT ON SCHEMA app IS 'application';
CREATE SCHEMA "Weird ""Name""";
CREATE SCHEMA "semi;colon";
GRANT USAGE ON SCHEMA app TO {r};
CREATE EXTENSION citext SCHEMA app;
CREATE EXTENSION btree_gist;
COMMENT ON EXTENSION btree_gist IS 'gist for scalars';

CREATE TYPE app.mood AS ENUM ('sad', 'ok', 'happy');
COMMENT ON TYPE app.mood IS 'feelings';
CREATE DOMAIN "Weird ""Name"""."Pos Int" AS integer NOT NULL DEFAULT 1
    CONSTRAINT "positive!" CHECK (VALUE > 0);
COMMENT ON CONSTRAINT "positive!" ON DOMAIN "Weird ""Name"""."Pos Int" IS 'no zero';
CREATE DOMAIN app.code AS varchar(10) COLLATE "C" CHECK (length(VALUE) > 1);
CREATE DOMAIN app.ci_code AS app.citext;
CREATE TYPE app.pair AS (x "Weird ""Name"""."Pos Int", "Label" text COLLATE "C", m app.mood);
COMMENT ON TYPE app.pair IS 'two things';

CREATE SEQUENCE app.counter AS integer INCREMENT BY 5 MINVALUE -10 MAXVALUE 1000
    START WITH 3 CACHE 4 CYCLE;
GRANT USAGE ON SEQUENCE app.counter TO {r};

CREATE TABLE app.accounts (
    id bigint GENERATED ALWAYS AS IDENTITY,
    email app.citext NOT NULL,
    "select" text DEFAULT 'x'::text,
    mood app.mood DEFAULT 'ok',
    balance numeric(12,2) NOT NULL DEFAULT 0,
    code app.code,
    p app.pair,
    tick integer DEFAULT nextval('app.counter'),
    CONSTRAINT "Accounts PK" PRIMARY KEY (id)
);
GRANT SELECT, UPDATE ON app.accounts TO {r};

CREATE TABLE "Weird ""Name"""."semi;colon" (
    "Mixed Case" serial PRIMARY KEY,
    "account id" bigint REFERENCES app.accounts (id),
    "Pos" "Weird ""Name"""."Pos Int",
    room int,
    during tstzrange,
    note text,
    CONSTRAINT no_overlap EXCLUDE USING gist (room WITH =, during WITH &&)
);
COMMENT ON SEQUENCE "Weird ""Name"""."semi;colon_Mixed Case_seq" IS 'serial';

CREATE FUNCTION app."touch!"() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN NEW.note := 'touched'; RETURN NEW; END $$;
CREATE FUNCTION app.add(a integer, b integer DEFAULT 1) RETURNS integer
    LANGUAGE sql IMMUTABLE RETURN a + b;
CREATE FUNCTION app.rich() RETURNS SETOF bigint LANGUAGE sql
    AS 'SELECT id FROM app.accounts WHERE balance > 100';
CREATE PROCEDURE "semi;colon"."do it"(IN n integer) LANGUAGE sql AS $$ SELECT n $$;
GRANT EXECUTE ON FUNCTION app.add(integer, integer) TO {r};

CREATE TRIGGER "Before; Update" BEFORE UPDATE ON "Weird ""Name"""."semi;colon"
    FOR EACH ROW WHEN (OLD.note IS DISTINCT FROM NEW.note) EXECUTE FUNCTION app."touch!"();
CREATE TRIGGER quiet BEFORE INSERT ON "Weird ""Name"""."semi;colon"
    FOR EACH ROW EXECUTE FUNCTION app."touch!"();
ALTER TABLE "Weird ""Name"""."semi;colon" DISABLE TRIGGER quiet;

ALTER TABLE app.accounts ENABLE ROW LEVEL SECURITY;
CREATE POLICY "own rows" ON app.accounts FOR SELECT TO {r} USING (email = CURRENT_USER);
CREATE POLICY ins ON app.accounts AS RESTRICTIVE FOR INSERT WITH CHECK (balance < 100);

CREATE VIEW app."rich View" WITH (security_barrier = true) AS
    SELECT id, email FROM app.accounts WHERE balance > 10 WITH LOCAL CHECK OPTION;
GRANT SELECT ON app."rich View" TO PUBLIC;
CREATE VIEW "semi;colon".joined AS
    SELECT a.id, s.note FROM app."rich View" a
    JOIN "Weird ""Name"""."semi;colon" s ON s."account id" = a.id;
CREATE MATERIALIZED VIEW app.totals AS SELECT mood, sum(balance) AS total
    FROM app.accounts GROUP BY mood;
CREATE UNIQUE INDEX totals_mood ON app.totals (mood);
'''


def test_whole_database_created_and_dropped(pg_dsn_factory: DsnFactory, role: str) -> None:
    if not (_available(PG_ADMIN_DSN, "citext") and _available(PG_ADMIN_DSN, "btree_gist")):
        pytest.skip("citext or btree_gist is not installed on this server")
    both_ways(pg_dsn_factory, "", whole_database(role))


def test_function_returning_rows_of_a_new_table(pg_dsn_factory: DsnFactory) -> None:
    b = '''
CREATE TABLE "Accounts" (id int, balance numeric);
CREATE FUNCTION rich() RETURNS SETOF "Accounts" LANGUAGE sql
    AS 'SELECT * FROM "Accounts" WHERE balance > 100';
CREATE FUNCTION next_id() RETURNS int LANGUAGE sql AS 'SELECT 1';
CREATE TABLE uses_fn (id int DEFAULT next_id());
'''
    forward, backward = both_ways(pg_dsn_factory, "", b)
    k = [s.description for s in forward.steps]
    assert k.index("Create table public.Accounts") < k.index("Create function public.rich()")
    assert k.index("Create function public.next_id()") < k.index("Create table public.uses_fn")
    k = [s.description for s in backward.steps]
    assert k.index("Drop function public.rich()") < k.index("Drop table public.Accounts")


def test_policy_and_trigger_condition_on_a_retyped_column(pg_dsn_factory: DsnFactory) -> None:
    a = '''
CREATE TABLE t (n integer, note text);
CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
CREATE TRIGGER guarded BEFORE UPDATE ON t FOR EACH ROW WHEN (OLD.n IS DISTINCT FROM NEW.n)
    EXECUTE FUNCTION f();
CREATE TRIGGER plain BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION f();
ALTER TABLE t ENABLE ROW LEVEL SECURITY;
CREATE POLICY small ON t USING (n < 10);
COMMENT ON POLICY small ON t IS 'kept';
'''
    b = a.replace("CREATE TABLE t (n integer", "CREATE TABLE t (n bigint")
    forward, _ = both_ways(pg_dsn_factory, a, b)
    assert sorted(kinds(forward)) == ["alter_column", "create_policy", "create_trigger",
                                      "drop_policy", "drop_trigger"]
