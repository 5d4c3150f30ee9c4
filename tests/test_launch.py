"""The console entry point's catalog prefetch: which databases it reads ahead, and that
what it reads is exactly what introspection would have read."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg

from lockplane.dialects.postgres import catalog
from lockplane.dialects.postgres.introspect import introspect
from lockplane.launch import catalog_sources
from tests.conftest import pg_exec

PG = "postgresql://app@db.example:5432/app"


def test_plan_sources_in_every_spelling() -> None:
    assert catalog_sources(["plan", "--from", PG, "--to", PG + "2"]) == [PG, PG + "2"]
    assert catalog_sources(["plan", f"--from={PG}", "--to", "schema.sql"]) == [PG]
    assert catalog_sources(["plan", "--to", "postgres://x@h/y", "-q"]) == ["postgres://x@h/y"]
    # the last one wins, as in click
    assert catalog_sources(["plan", "--from", "a.json", "--from", PG]) == [PG]


def test_only_live_postgres_sources_of_plan() -> None:
    assert catalog_sources([]) == []
    assert catalog_sources(["apply", "--from", PG]) == []  # reads under its own lock
    assert catalog_sources(["introspect", PG]) == []
    assert catalog_sources(["plan", "--from", "sqlite:///x.db", "--to", "s.sql"]) == []
    assert catalog_sources(["plan", "--from", "nosuch://x", "--to", "dir/"]) == []
    assert catalog_sources(["plan", "--from"]) == []  # typer reports the missing value


def test_from_environment(tmp_path: Path, monkeypatch: object) -> None:
    (tmp_path / "lockplane.toml").write_text(
        '[environments.prod]\ndatabase_url = "postgresql://u@h/prod"\nschema_path = "s/"\n')
    (tmp_path / ".env.stage").write_text("DATABASE_URL=postgresql://u:secret@h/stage\n")
    monkeypatch.chdir(tmp_path)  # type: ignore[attr-defined]
    # (named by a file without a password: none of the process's is offered to it)
    assert catalog_sources(["plan", "--from-environment", "prod"]) == [
        "postgresql://u@h/prod?require_auth=!password,!md5"]
    assert catalog_sources(["plan", "--from-environment=stage", "--to", "x.sql"]) == [
        "postgresql://u:secret@h/stage"]
    # an explicit --from wins; --to-environment means schema files, never a database
    assert catalog_sources(["plan", "--from", PG, "--from-environment", "prod"]) == [PG]
    assert catalog_sources(["plan", "--to-environment", "prod", "--from", "a.json"]) == []
    assert catalog_sources(["plan", "--from-environment", "nosuch"]) == []


def test_prefetched_catalog_is_what_introspection_reads(pg_dsn: str) -> None:
    pg_exec(pg_dsn, """
        CREATE TYPE mood AS ENUM ('ok', 'sad');
        CREATE TABLE t (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                        m mood, note text DEFAULT 'x' CHECK (note <> ''));
        CREATE INDEX t_note ON t (lower(note));
        CREATE VIEW v AS SELECT id, m FROM t;
        COMMENT ON TABLE t IS 'prefetched';
    """)
    catalog.prefetch(pg_dsn)
    catalog.prefetch(pg_dsn)  # asked twice: read once
    rows = catalog.take_prefetched(pg_dsn)
    assert rows is not None
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        assert rows == catalog.read_catalog(conn)
        # used once: the next introspection of the same URL reads the database again
        assert catalog.take_prefetched(pg_dsn) is None
        catalog.prefetch(pg_dsn)
        catalog._prefetched[pg_dsn].result()  # read to the end before the change below
        pg_exec(pg_dsn, "COMMENT ON TABLE t IS 'changed'")
        prefetched = introspect(conn, dsn=pg_dsn)
        fresh = introspect(conn)
    assert prefetched.table("public", "t").comment == "prefetched"
    assert fresh.table("public", "t").comment == "changed"


def test_failed_prefetch_is_dropped_without_a_word() -> None:
    bad = "postgresql://nobody:hunter2@127.0.0.1:1/none"
    catalog.prefetch(bad)
    assert catalog.take_prefetched(bad) is None


def test_console_entry_plans_what_the_library_plans(pg_dsn_factory: object, tmp_path: Path) -> None:
    """`lockplane plan` between two live databases, through the console entry point (so
    both catalogs are prefetched), plans exactly what build_plan plans in-process."""
    from lockplane.plan import build_plan
    from lockplane.sources import load_schema

    a, b = pg_dsn_factory(), pg_dsn_factory()  # type: ignore[operator]
    pg_exec(a, "CREATE TABLE t (id int PRIMARY KEY, name text);")
    pg_exec(b, "CREATE TABLE t (id int PRIMARY KEY, name text NOT NULL, at timestamptz);"
               "CREATE INDEX t_at ON t (at);")
    out = tmp_path / "plan.json"
    code = ("import sys; from lockplane.launch import main; "
            "sys.argv = ['lockplane', *sys.argv[1:]]; main()")
    proc = subprocess.run([sys.executable, "-c", code, "plan", "--from", a, "--to", b, "-q",
                           "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(out.read_text())
    expected = build_plan(load_schema(a), load_schema(b))
    assert (plan["source_hash"], plan["target_hash"]) == (expected.source_hash,
                                                          expected.target_hash)
    assert [s["sql"] for s in plan["steps"]] == [s.sql for s in expected.steps]
