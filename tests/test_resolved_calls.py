"""What an expression calls is asked of the server, not read from names: a database's own
operator ``=`` counts only where the expression resolves to it (lockplane/dialects/
postgres/resolved.py). Each hostile object below records its call in a table and is never
called here: every refusal comes before anything runs."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg

from lockplane.dialects import connect
from lockplane.dialects.postgres.resolved import resolved_calls, usable
from tests.cli_inprocess import lockplane
from tests.conftest import pg_exec

SCHEMA = """
    CREATE TABLE calls (what text);
    CREATE TYPE mood AS ENUM ('a', 'b');
    CREATE TABLE k (id int PRIMARY KEY, n int, label varchar(30), m mood);
    INSERT INTO k SELECT g, g, 'x' || g, 'a' FROM generate_series(1, 20) g;
    -- A closer overload of = for (varchar, text): 'label = ''x''::text' resolves to it,
    -- 'n = 3' (integers) never does.
    CREATE FUNCTION public.eq_vt(varchar, text) RETURNS boolean LANGUAGE plpgsql AS
        $$BEGIN INSERT INTO public.calls VALUES ('=(varchar, text)'); RETURN true; END$$;
    CREATE OPERATOR public.= (LEFTARG = varchar, RIGHTARG = text, FUNCTION = public.eq_vt);
    -- A closer overload of lower(text) for varchar.
    CREATE FUNCTION public.lower(varchar) RETURNS text LANGUAGE plpgsql AS
        $$BEGIN INSERT INTO public.calls VALUES ('lower(varchar)'); RETURN $1; END$$;
    -- An assignment cast no expression names: SET n = m runs it.
    CREATE FUNCTION public.mood_int(mood) RETURNS integer LANGUAGE plpgsql AS
        $$BEGIN INSERT INTO public.calls VALUES ('mood_int'); RETURN 1; END$$;
    CREATE CAST (mood AS integer) WITH FUNCTION public.mood_int(mood) AS ASSIGNMENT;
"""


def _calls(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM public.calls").fetchone()
        return int(row[0]) if row else 0


def _backfill(dsn: str, sets: str, where: str | None = None):  # type: ignore[no-untyped-def]
    args = ["backfill", "--target", dsn, "--table", "k", "--set", sets, "--batch-size", "7",
            "--auto-approve"]
    return lockplane(*args, *(["--where", where] if where else []))


def test_an_own_equals_that_is_not_used_does_not_block(pg_dsn: str) -> None:
    pg_exec(pg_dsn, SCHEMA)
    res = _backfill(pg_dsn, "n = n + 1", "n = 3 OR n IS DISTINCT FROM id")
    assert res.code == 0, res.output[-2000:]
    assert _calls(pg_dsn) == 0
    # (varchar = varchar would be the database's =(varchar, text): one exact argument
    # type beats pg_catalog's text = text; text = a literal is pg_catalog's)
    res = _backfill(pg_dsn, "label = upper(label)", "label::text = 'x1'")
    assert res.code == 0, res.output[-2000:]
    assert _calls(pg_dsn) == 0


def test_an_own_equals_that_is_used_is_refused_and_named(pg_dsn: str) -> None:
    pg_exec(pg_dsn, SCHEMA)
    res = _backfill(pg_dsn, "n = 1", "label = 'x1'::text")
    assert res.code == 3, res.output[-2000:]
    assert "public.eq_vt" in res.output and "=(character varying,text)" in res.output, \
        res.output[-2000:]
    assert "INSERT" in res.output
    assert _calls(pg_dsn) == 0


def test_an_ambiguous_operator_is_bad_input_in_the_server_s_words(pg_dsn: str) -> None:
    pg_exec(pg_dsn, SCHEMA + """
        CREATE FUNCTION public.eq_tv(text, varchar) RETURNS boolean LANGUAGE sql
            AS 'SELECT true';
        CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = varchar, FUNCTION = public.eq_tv);
    """)
    res = _backfill(pg_dsn, "n = 1", "label = label")
    assert res.code == 2, res.output[-2000:]
    assert "operator is not unique" in res.output, res.output[-2000:]
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert _calls(pg_dsn) == 0


def test_a_closer_overload_of_a_function_is_refused_the_server_s_own_is_not(
        pg_dsn: str) -> None:
    pg_exec(pg_dsn, SCHEMA)
    res = _backfill(pg_dsn, "label = lower(label)")
    assert res.code == 3, res.output[-2000:]
    assert "public.lower" in res.output, res.output[-2000:]
    res = _backfill(pg_dsn, "label = lower(label::text)")
    assert res.code == 0, res.output[-2000:]
    assert _calls(pg_dsn) == 0


def test_an_assignment_cast_that_no_name_shows_is_refused(pg_dsn: str) -> None:
    pg_exec(pg_dsn, SCHEMA)
    res = _backfill(pg_dsn, "n = m")
    assert res.code == 3, res.output[-2000:]
    assert "public.mood_int" in res.output, res.output[-2000:]
    assert _calls(pg_dsn) == 0


def test_the_server_is_asked_without_running_anything(pg_dsn: str) -> None:
    """The resolution itself: exact functions with why, a column the plan adds first
    (a stand-in copy), nothing left behind, nothing called."""
    pg_exec(pg_dsn, SCHEMA)
    db = connect(pg_dsn)
    try:
        assert usable(db)
        got = resolved_calls(db, "UPDATE public.k SET n = m WHERE label = 'x'::text "
                                 "AND lower(label) = 'y' AND n IS DISTINCT FROM 3")
        assert got is not None
        assert got[("public", "mood_int")] == "the function of the cast from mood to int4"
        assert got[("public", "lower")] == ""
        assert got[("public", "eq_vt")].startswith("the function of operator =(")
        assert resolved_calls(db, "SELECT 1 FROM public.k WHERE n = 3") == {}
        # a column that a step before adds: its type from the plan
        plan = ['ALTER TABLE "public"."k" ADD COLUMN "qty" integer',
                'UPDATE "public"."k" SET "qty" = "n" WHERE "qty" IS DISTINCT FROM ("n")']
        assert resolved_calls(db, plan[1], plan) == {}
        assert resolved_calls(db, 'UPDATE "public"."k" SET "tag" = label::text '
                                  "WHERE tag = 'x'::text",
                              ['ALTER TABLE "public"."k" ADD COLUMN "tag" varchar(5)']) \
            == {("public", "eq_vt"): "the function of operator "
                                     "=(character varying,text)"}
        # a table no step makes: the server cannot say (judged by name)
        assert resolved_calls(db, "SELECT 1 FROM public.nowhere WHERE a = 1") is None
        assert db.query("SELECT count(*) FROM pg_class WHERE relname = 'lp_judge'") == [(0,)]
    finally:
        db.close()
    assert _calls(pg_dsn) == 0


def test_a_read_only_transaction_or_an_event_trigger_means_judging_by_name(
        pg_dsn: str) -> None:
    """The temporary rule is DDL: an event trigger of the database would fire on it, and
    a read-only transaction already begun cannot make it. Then the judge reads names, as
    before (the own = on varchar refuses an integer comparison). A read-only session is
    asked (its rolled-back transaction is read-write: backfill planning)."""
    pg_exec(pg_dsn, SCHEMA)
    sql = ["SELECT 1 FROM public.k WHERE n = 3"]
    db = connect(pg_dsn)
    try:
        db.read_only_session()
        assert db.function_effects(sql, []) == []
        with db.read_only():
            effects = db.function_effects(sql, [])
            assert effects and "eq_vt" in effects[0], effects
    finally:
        db.close()
    pg_exec(pg_dsn, """
        CREATE FUNCTION public.on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS
            $$BEGIN INSERT INTO public.calls VALUES ('event trigger'); END$$;
        CREATE EVENT TRIGGER on_ddl ON ddl_command_end EXECUTE FUNCTION public.on_ddl();
    """)
    db = connect(pg_dsn)
    try:
        assert not usable(db)
        effects = db.function_effects(sql, [])
        assert effects and "eq_vt" in effects[0], effects
    finally:
        db.close()
    assert _calls(pg_dsn) == 0


def test_a_rename_phase_and_its_checks_run_beside_an_own_equals(pg_dsn: str,
                                                                tmp_path: Path) -> None:
    """A multi-phase rename's backfill (qty IS DISTINCT FROM n, integers) and its
    verification queries resolve to the server's own =, not the database's (varchar, text)
    one: the phase applies and verifies."""
    pg_exec(pg_dsn, SCHEMA)
    res = lockplane("introspect", "--target", pg_dsn)
    assert res.code == 0, res.output[-2000:]
    schema = json.loads(res.stdout)
    for t in schema["tables"]:
        if t["name"] == "k":
            for c in t["columns"]:
                if c["name"] == "n":
                    c["name"], c["renamed_from"] = "qty", "n"
    desired = tmp_path / "desired.json"
    desired.write_text(json.dumps(schema))
    mp = tmp_path / "mp.json"
    res = lockplane("plan", "--multi-phase", "--from", pg_dsn, "--to", str(desired),
                    "-o", str(mp))
    assert res.code == 0, res.output[-2000:]
    res = lockplane("apply-phase", str(mp), "--target", pg_dsn, "--phase", "1",
                    "--auto-approve", "--approver", "ops")
    assert res.code == 0, res.output[-2000:]
    res = lockplane("verify-phase", str(mp), "--target", pg_dsn, "--phase", "1")
    assert res.code == 0, res.output[-2000:]
    assert _calls(pg_dsn) == 0


def test_what_the_plan_defines_or_sets_before_the_statement_still_counts(pg_dsn: str) -> None:
    """The server resolves against the database as it is; the plan's SQL may change that
    before the statement runs. A function the plan defines is matched by name (a closer
    overload it makes, public.upper(varchar), is not the server's upper(text) then), and a
    plan that sets search_path (or makes operators, casts, types) is read by name."""
    pg_exec(pg_dsn, SCHEMA)
    upper = ("CREATE FUNCTION public.upper(varchar) RETURNS text LANGUAGE plpgsql AS "
             "$$BEGIN INSERT INTO public.calls VALUES ('upper'); RETURN $1; END$$")
    update = "UPDATE public.k SET label = upper(label)"
    db = connect(pg_dsn)
    try:
        assert db.function_effects([update], []) == []
        effects = db.function_effects([update], [upper, update])
        assert effects and "upper" in effects[0] and "INSERT" in effects[0], effects
        where = "UPDATE public.k SET n = 1 WHERE n = 3"
        assert db.function_effects([where], []) == []
        effects = db.function_effects(["SET search_path = public, pg_catalog", where], [])
        assert effects and "eq_vt" in effects[0], effects
        effects = db.function_effects([where], [
            "CREATE OPERATOR public.= (LEFTARG = integer, RIGHTARG = integer, "
            "FUNCTION = public.eq_vt)", where])
        assert effects and "eq_vt" in effects[0], effects
    finally:
        db.close()
    assert _calls(pg_dsn) == 0


def test_a_built_in_behind_an_operator_of_the_database_is_refused(pg_dsn: str) -> None:
    """An operator a superuser made over pg_read_file: '### path' names no function; the
    server says the operator's function is pg_catalog.pg_read_file, which PUBLIC may not
    run (and by name, the operator's symbol leads there too)."""
    pg_exec(pg_dsn, SCHEMA + """
        CREATE OPERATOR public.### (RIGHTARG = text, FUNCTION = pg_catalog.pg_read_file);
    """)
    sql = ["UPDATE public.k SET label = ### 'postmaster.pid'"]
    db = connect(pg_dsn)
    try:
        got = resolved_calls(db, sql[0])
        assert got is not None and ("pg_catalog", "pg_read_file") in got, got
        effects = db.function_effects(sql, [])
        assert effects and effects[0].startswith("pg_catalog.pg_read_file, the function of "
                                                 "operator ###(NONE,text)"), effects
        with db.read_only():  # (by name)
            effects = db.function_effects(sql, [])
        assert effects and "pg_read_file" in effects[0], effects
    finally:
        db.close()
