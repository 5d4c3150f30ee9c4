"""Bad input is exit 2 (3 for a safety refusal), one line naming what and where, never a
traceback or an "internal error", and nothing in the database changes: undecodable
bytes, nesting past what a parser follows, wrong TOML types, out-of-range numbers,
unusable paths, and fuzzed files of every input format.

The CLI runs in-process (tests.cli_inprocess: the console script's own error mapping)."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lockplane.errors import BadInput
from tests.cli_inprocess import Result, lockplane

SCHEMA = {"dialect": "sqlite", "tables": [{"name": "t", "columns": [
    {"name": "id", "type": "integer", "is_primary_key": True},
    {"name": "name", "type": "text", "nullable": True}]}]}
DESIRED = {"dialect": "sqlite", "tables": [{"name": "t", "columns": [
    {"name": "id", "type": "integer", "is_primary_key": True},
    {"name": "name", "type": "text", "nullable": True},
    {"name": "extra", "type": "text", "nullable": True}]}]}

def bad(result: Result, *needles: str, code: int = 2) -> None:
    """One clear line, the expected code, no traceback, no internal error."""
    assert result.code == code, result
    assert "Traceback" not in result.output, result
    assert "internal error" not in result.output, result
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert lines and lines[-1].startswith(("error:", "usage:")), result
    for n in needles:
        assert n in lines[-1], (n, result)


def sqlite_state(path: Path) -> str:
    """Everything in a SQLite database that a change could touch: schema and rows."""
    with sqlite3.connect(path) as conn:
        master = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master "
                              "ORDER BY type, name").fetchall()
        rows = conn.execute("SELECT * FROM t ORDER BY id").fetchall()
    return hashlib.sha256(repr((master, rows)).encode()).hexdigest()


def pg_state(dsn: str) -> str:
    with psycopg.connect(dsn) as conn:
        cat = conn.execute(
            "SELECT n.nspname, c.relname, c.relkind, a.attname, "
            "format_type(a.atttypid, a.atttypmod) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_attribute a "
            "ON a.attrelid = c.oid AND a.attnum > 0 WHERE n.nspname NOT IN "
            "('pg_catalog', 'information_schema', 'pg_toast') ORDER BY 1, 2, 4").fetchall()
    return hashlib.sha256(repr(cat).encode()).hexdigest()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A SQLite target (table t, one row), its schema, and a valid plan to DESIRED."""
    with sqlite3.connect(tmp_path / "target.db") as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY NOT NULL, name TEXT)")
        conn.execute("INSERT INTO t VALUES (1, 'a')")
    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA))
    (tmp_path / "desired.json").write_text(json.dumps(DESIRED))
    r = lockplane("plan", "--from", "sqlite:///target.db", "--to", "desired.json", "-q",
                  "-o", "plan.json", cwd=tmp_path)
    assert r.code == 0, r
    return tmp_path


TARGET = "sqlite:///target.db"


# ---------------------------------------------------------------------------- bytes
UNDECODABLE = b'{"dialect": "sqlite",\n "tables": [], "x": "\xff\xfe"}\n'


@pytest.mark.parametrize("case", [
    "plan", "toml", "dotenv", "multiphase", "nul_plan", "nul_toml",
    "schema_json",
    "sql",
])
def test_undecodable_bytes(project: Path, case: str) -> None:
    before = sqlite_state(project / "target.db")
    if case == "plan":
        (project / "plan.json").write_bytes(UNDECODABLE)
        r = lockplane("apply", "plan.json", "--target", TARGET, "--auto-approve", cwd=project)
        bad(r, "plan.json:2", "not UTF-8")
    elif case == "toml":
        (project / "lockplane.toml").write_bytes(b'[environments.x]\ndatabase_url = "\xff"\n')
        bad(lockplane("introspect", "--target-environment", "x", cwd=project),
            "lockplane.toml:2", "not UTF-8")
    elif case == "dotenv":
        (project / ".env.x").write_bytes(b"DATABASE_URL=sqlite:///\xc3(.db\n")
        bad(lockplane("introspect", "--target-environment", "x", cwd=project),
            ".env.x:1", "not UTF-8")
    elif case == "multiphase":
        (project / "mp.json").write_bytes(b'{"multi_phase": true, "x": "\xff"}')
        bad(lockplane("apply-phase", "mp.json", "--target", TARGET, "--next",
                      "--auto-approve", cwd=project), "mp.json", "not UTF-8")
    elif case == "nul_plan":
        (project / "plan.json").write_bytes(b'{"steps": [],\n"source_hash": "\0"}')
        bad(lockplane("apply", "plan.json", "--target", TARGET, "--auto-approve",
                      cwd=project), "plan.json:2", "NUL byte")
    elif case == "nul_toml":
        (project / "lockplane.toml").write_bytes(b"[environments.x]\0\n")
        bad(lockplane("introspect", "--target-environment", "x", cwd=project),
            "lockplane.toml:1", "NUL byte")
    elif case == "schema_json":
        (project / "desired.json").write_bytes(UNDECODABLE)
        bad(lockplane("plan", "--from", TARGET, "--to", "desired.json", cwd=project),
            "desired.json", "UTF-8")
    else:
        (project / "s.sql").write_bytes(b"CREATE TABLE t (id integer);\n-- \xff\n")
        bad(lockplane("plan", "--from", TARGET, "--to", "s.sql", cwd=project), "s.sql")
    assert sqlite_state(project / "target.db") == before


BOM = "\ufeff".encode()


def test_byte_order_mark_is_not_text(project: Path) -> None:
    """A UTF-8 byte order mark at the start of a file (editors on Windows write one) is
    dropped, as pg_dump and psql users expect: the SQL, JSON and TOML behind it load."""
    (project / "s.sql").write_bytes(BOM + b"CREATE TABLE t (id INTEGER PRIMARY KEY NOT NULL, "
                                          b"name TEXT, extra TEXT);\n")
    r = lockplane("plan", "--from", TARGET, "--to", "s.sql", "-q", cwd=project)
    assert r.code == 0 and "extra" in r.stdout, r
    r = lockplane("lint", "s.sql", cwd=project)
    assert r.code == 0, r
    # PostgreSQL: the screen (pglast) reads the statement behind it.
    (project / "pg.sql").write_bytes(BOM + b"CREATE TABLE t (id int PRIMARY KEY);\n")
    r = lockplane("validate", "pg.sql", cwd=project)
    assert r.code == 0, r
    (project / "desired.json").write_bytes(BOM + json.dumps(DESIRED).encode())
    r = lockplane("validate", "desired.json", cwd=project)
    assert r.code == 0, r
    (project / "lockplane.toml").write_bytes(
        BOM + b'[environments.x]\ndatabase_url = "sqlite:///target.db"\n')
    r = lockplane("introspect", "--target-environment", "x", cwd=project)
    assert r.code == 0, r
    (project / "plan.json").write_bytes(BOM + (project / "plan.json").read_bytes())
    r = lockplane("apply", "plan.json", "--target", TARGET, "--auto-approve", cwd=project)
    assert r.code == 0, r
    with sqlite3.connect(project / "target.db") as conn:
        assert [c[1] for c in conn.execute("PRAGMA table_info(t)")] == ["id", "name", "extra"]


# ---------------------------------------------------------------------------- nesting
DEEP = 100_000


@pytest.mark.parametrize("case", [
    "plan", "multiphase", "toml", "validate_plan",
    "schema_json",
])
def test_nested_too_deeply(project: Path, case: str) -> None:
    before = sqlite_state(project / "target.db")
    if case in ("plan", "validate_plan"):
        (project / "plan.json").write_text('{"steps": ' + "[" * DEEP + "]" * DEEP + "}")
        args = (("apply", "plan.json", "--target", TARGET, "--auto-approve")
                if case == "plan" else ("validate", "plan.json"))
        bad(lockplane(*args, cwd=project), "plan.json", "nested too deeply")
    elif case == "multiphase":
        (project / "mp.json").write_text('{"multi_phase": true, "phases": ' + "[" * DEEP)
        bad(lockplane("apply-phase", "mp.json", "--target", TARGET, "--next", cwd=project),
            "mp.json", "nested too deeply")
    elif case == "toml":
        (project / "lockplane.toml").write_text("x = " + "[" * DEEP + "]" * DEEP + "\n")
        bad(lockplane("introspect", "--target-environment", "x", cwd=project),
            "lockplane.toml", "nested too deeply")
    else:
        (project / "desired.json").write_text('{"tables": ' + "[" * DEEP + "]" * DEEP + "}")
        bad(lockplane("plan", "--from", TARGET, "--to", "desired.json", cwd=project),
            "desired.json")
    assert sqlite_state(project / "target.db") == before


def test_an_expression_deeper_than_python_walks(pg_dsn: str, tmp_path: Path) -> None:
    """A DEFAULT of 900 '1+1+...' terms: the server's parser takes it (no parentheses to
    exhaust its stack), and the tree it gives is 900 levels deep; pglast's serializer and
    Lockplane's walkers recursed past Python's limit ('internal error: RecursionError' on
    dee3fd9, in lint, validate and plan)."""
    (tmp_path / "deep.sql").write_text("CREATE TABLE d (id int DEFAULT "
                                       + "+".join(["1"] * 900) + ");\n")
    before = pg_state(pg_dsn)
    for args in (("lint", "deep.sql"), ("validate", "deep.sql"),
                 ("plan", "--from", pg_dsn, "--to", "deep.sql")):
        bad(lockplane(*args, cwd=tmp_path), "nested too deeply")
    assert pg_state(pg_dsn) == before


# ---------------------------------------------------------------------------- TOML types
@pytest.mark.parametrize(("toml", "needle"), [
    ("[environments.x]\ndatabase_url = 5\n", "database_url must be a string, not an integer"),
    ('environments = "x"\n', "environments must be a table"),
    ("environments = [1, 2]\n", "environments must be a table"),
    ("[environments]\nx = 3\n", "[environments.x] must be a table"),
    ("[environments.x]\nschema_path = [\"a\"]\n", "schema_path must be a string"),
    ("[environments.x]\nshadow_database_url = 1979-05-27\n", "must be a string"),
    ("[environments.x]\nsafety = true\n", "safety must be a string"),
    ("[environments.x]\nsafety = \"reckless\"\n", "safety must be one of"),
    ("[environments.x]\ndatabase_url = \"sqlite:///target.db\"\nhost = 1\n", "unknown key"),
    ("[environments.x\n", "lockplane.toml"),
])
def test_lockplane_toml_value_types(project: Path, toml: str, needle: str) -> None:
    (project / "lockplane.toml").write_text(toml)
    for args in (("introspect", "--target-environment", "x"),
                 ("plan", "--from-environment", "x", "--to", "desired.json"),
                 ("apply", "plan.json", "--target-environment", "x", "--auto-approve")):
        bad(lockplane(*args, cwd=project), needle)


def test_a_repository_file_cannot_send_the_target_s_rows_to_another_server(
        project: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A shadow database receives the target's rows. lockplane.toml and .env.NAME are
    files a pull request can change: a shadow_database_url there on another server than
    the target's is refused before anything connects (exit 2, one line, no password), for
    every command that reads the environment. Named in the process environment (or with
    --shadow-db), it is the pipeline's choice."""
    elsewhere = "postgresql://thief:s3cret@198.51.100.7:5432/loot"
    for where in ("toml", "dotenv"):
        if where == "toml":
            (project / "lockplane.toml").write_text(
                f'[environments.ci]\ndatabase_url = "{pg_dsn}"\n'
                f'shadow_database_url = "{elsewhere}"\n')
        else:
            (project / "lockplane.toml").write_text(
                f'[environments.ci]\ndatabase_url = "{pg_dsn}"\n')
            (project / ".env.ci").write_text(f"SHADOW_DATABASE_URL={elsewhere}\n")
        for args in (("apply", "--schema", "desired.json", "--target-environment", "ci",
                      "--auto-approve"),
                     ("backfill", "--target-environment", "ci", "--table", "t", "--set",
                      "name = 'x'", "--auto-approve"),
                     ("plan", "--from-environment", "ci", "--to", "desired.json")):
            result = lockplane(*args, cwd=project)
            bad(result, "shadow_database_url", "not on the server of its database_url",
                "LOCKPLANE_CI_SHADOW_DATABASE_URL")
            assert "s3cret" not in result.output
    from lockplane.config import get_environment

    monkeypatch.setenv("LOCKPLANE_CI_SHADOW_DATABASE_URL", elsewhere)
    assert get_environment("ci", project).shadow_database_url == elsewhere
    monkeypatch.delenv("LOCKPLANE_CI_SHADOW_DATABASE_URL")
    beside = pg_dsn.rsplit("/", 1)[0] + "/ci_shadow"
    (project / ".env.ci").write_text(f"SHADOW_DATABASE_URL={beside}\n")
    # (named by files without a password: no ambient one for it, see
    # test_repository_servers)
    assert get_environment("ci", project).shadow_database_url == (
        beside + "?require_auth=!password,!md5")


def test_a_repository_file_cannot_loosen_the_safety_level(
        project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """lockplane.toml is a file a pull request can change: its ``safety`` may make an
    environment stricter than its default (strict for a production-like name, else
    moderate), not looser. A looser level is the pipeline's to give (--safety, or
    LOCKPLANE_<ENV>_SAFETY), and is refused from the file before anything changes."""
    from lockplane.config import get_environment

    before = sqlite_state(project / "target.db")
    (project / "lockplane.toml").write_text(
        f'[environments.production]\ndatabase_url = "{TARGET}"\nsafety = "permissive"\n'
        f'[environments.ci]\ndatabase_url = "{TARGET}"\nsafety = "permissive"\n'
        f'[environments.staging]\ndatabase_url = "{TARGET}"\nsafety = "strict"\n')
    for env, floor in (("production", "strict"), ("ci", "moderate")):
        for args in (("apply", "plan.json", "--target-environment", env, "--auto-approve"),
                     ("apply", "--schema", "desired.json", "--target-environment", env,
                      "--auto-approve")):
            bad(lockplane(*args, cwd=project), f"environment '{env}'",
                f"safety = 'permissive', looser than its default '{floor}'",
                f"LOCKPLANE_{env.upper()}_SAFETY")
    assert sqlite_state(project / "target.db") == before
    # Tightening from the file is the file's to do; the pipeline may choose any level.
    assert get_environment("staging", project).default_safety == "strict"
    result = lockplane("apply", "plan.json", "--target-environment", "ci", "--safety",
                       "permissive", "--auto-approve", cwd=project)
    assert result.code == 0, result
    monkeypatch.setenv("LOCKPLANE_PRODUCTION_SAFETY", "permissive")
    assert get_environment("production", project).default_safety == "permissive"
    monkeypatch.setenv("LOCKPLANE_PRODUCTION_SAFETY", "lax")
    with pytest.raises(BadInput, match="LOCKPLANE_PRODUCTION_SAFETY must be one of"):
        get_environment("production", project)


# ---------------------------------------------------------------------------- numbers
@pytest.mark.parametrize("args", [
    ("plan", "--from", TARGET, "--to", "desired.json", "--lock-timeout-ms", "nan"),
    ("plan", "--from", TARGET, "--to", "desired.json", "--lock-timeout-ms", "-1"),
    ("plan", "--from", TARGET, "--to", "desired.json", "--lock-timeout-ms", "99999999999"),
    ("plan", "--from", TARGET, "--to", "desired.json", "--lock-timeout-ms", str(10**30)),
    ("plan", "--from", TARGET, "--to", "desired.json", "--lock-timeout-ms", "1e3"),
    ("apply", "plan.json", "--target", TARGET, "--auto-approve", "--lock-timeout-ms", "-5"),
    ("apply", "plan.json", "--target", TARGET, "--auto-approve",
     "--lock-timeout-ms", str(2**31)),
    ("apply", "plan.json", "--target", TARGET, "--auto-approve", "--retries", "-1"),
    ("apply", "plan.json", "--target", TARGET, "--auto-approve", "--retries", str(10**9)),
    ("apply", "--schema", "desired.json", "--target", TARGET, "--auto-approve",
     "--lock-timeout-ms", str(2**63)),
    ("history", "--target", TARGET, "--limit", "0"),
    ("history", "--target", TARGET, "--limit", "-1"),
    ("history", "--target", TARGET, "--limit", str(10**20)),
    ("backfill", "--target", TARGET, "--table", "t", "--set", "name = 'x'",
     "--batch-size", "0", "--auto-approve"),
    ("backfill", "--target", TARGET, "--table", "t", "--set", "name = 'x'",
     "--batch-size", str(10**20), "--auto-approve"),
    ("backfill", "--target", TARGET, "--table", "t", "--set", "name = 'x'",
     "--max-rows-per-second", "nan", "--auto-approve"),
    ("backfill", "--target", TARGET, "--table", "t", "--set", "name = 'x'",
     "--max-rows-per-second", "inf", "--auto-approve"),
    ("backfill", "--target", TARGET, "--table", "t", "--set", "name = 'x'",
     "--lock-timeout-ms", str(10**12), "--auto-approve"),
    ("backfill", "--target", TARGET, "--table", "t", "--set", "name = 'x'",
     "--sleep", "-1", "--auto-approve"),
    # Times at or past the calendar's edge ('internal error: OverflowError' on 57f6b32).
    ("recover", "--target", TARGET, "--to", "99999999999 hours ago", "--into", "x"),
    ("recover", "--target", TARGET, "--to", f"{10**22}s", "--into", "x"),
    ("recover", "--target", TARGET, "--to", "9999-12-31T23:59:59-12:00", "--into", "x"),
    ("recover", "--target", TARGET, "--to", "0001-01-01T00:00:00+14:00", "--into", "x"),
    ("drift", "ack", "--target", TARGET, "--schema", "desired.json", "--until",
     "99999999999w"),
    ("drift", "ack", "--target", TARGET, "--schema", "desired.json", "--until",
     "9999-12-31T23:59:59-12:00"),
])
def test_out_of_range_numbers(project: Path, args: tuple[str, ...]) -> None:
    before = sqlite_state(project / "target.db")
    bad(lockplane(*args, cwd=project))
    assert sqlite_state(project / "target.db") == before


def test_out_of_range_numbers_postgres(pg_dsn: str, tmp_path: Path) -> None:
    """Huge timeouts would overflow PostgreSQL's int4 in SET lock_timeout."""
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, name text)")
    (tmp_path / "d.json").write_text(json.dumps({"dialect": "postgres", "tables": [
        {"name": "t", "schema": "public", "columns": [
            {"name": "id", "type": "integer", "is_primary_key": True},
            {"name": "name", "type": "text"}, {"name": "x", "type": "text"}]}]}))
    before = pg_state(pg_dsn)
    for args in (
            ("apply", "--schema", "d.json", "--target", pg_dsn, "--auto-approve",
             "--lock-timeout-ms", "99999999999"),
            ("apply", "--schema", "d.json", "--target", pg_dsn, "--auto-approve",
             "--lock-timeout-ms", str(2**31 - 1)),
            ("plan", "--from", pg_dsn, "--to", "d.json", "--analyze-locks",
             "--sample-rows", "-1"),
            ("plan", "--from", pg_dsn, "--to", "d.json", "--analyze-locks",
             "--sample-rows", str(10**19)),
            ("backfill", "--target", pg_dsn, "--table", "t", "--set", "name = 'x'",
             "--lock-timeout-ms", str(2**31), "--auto-approve")):
        bad(lockplane(*args, cwd=tmp_path))
    assert pg_state(pg_dsn) == before


def test_read_only_sessions_are_bad_input(pg_dsn: str, tmp_path: Path) -> None:
    """A URL whose sessions are read-only (default_transaction_read_only in its options,
    or set for the role or database; a standby) is the user's to change: on 0717b2c every
    command below ended in 'internal error: ReadOnlySqlTransaction' (CREATE DATABASE of
    the scratch or shadow copy, CREATE SCHEMA of Lockplane's state)."""
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, name text); "
                     "INSERT INTO t VALUES (1, 'a')")
    (tmp_path / "d.sql").write_text("CREATE TABLE t (id int PRIMARY KEY, name text, x int);\n")
    read_only = pg_dsn + "?options=-c%20default_transaction_read_only%3Don"
    admin = pg_dsn.rsplit("/", 1)[0] + "/postgres"
    before = pg_state(pg_dsn)
    for args, says in (
            (("plan", "--from", read_only, "--to", "d.sql", "-q"), "read-only"),
            (("apply", "--schema", "d.sql", "--target", read_only, "--auto-approve"),
             "read-only"),
            (("apply", "--schema", "d.sql", "--target", read_only, "--auto-approve",
              "--shadow-db", admin), "read-only"),
            (("backfill", "--target", pg_dsn, "--table", "t", "--set", "name = 'x'",
              "--dry-run", "--shadow-db", admin + "?options=-c%20default_transaction_read_only"
              "%3Don"), "read-only"),
            (("backfill", "--target", read_only, "--table", "t", "--set", "name = 'x'",
              "--auto-approve", "--shadow-db", admin), "read-only")):
        bad(lockplane(*args, cwd=tmp_path), says)
    assert pg_state(pg_dsn) == before


# ---------------------------------------------------------------------------- paths
def test_unusable_paths(project: Path) -> None:
    before = sqlite_state(project / "target.db")
    (project / "adir").mkdir()
    (project / "afile").write_text("x")
    (project / "dir.json").mkdir()
    cases = [
        (("apply", "dir.json", "--target", TARGET, "--auto-approve"), "dir.json"),
        (("apply", "adir", "--target", TARGET, "--auto-approve"), "adir"),
        (("validate", "dir.json"), "dir.json"),
        (("apply-phase", "adir", "--target", TARGET, "--next"), "adir"),
        (("plan", "--from", TARGET, "--to", "desired.json", "-o", "missing/dir/p.json"),
         "missing/dir/p.json"),
        (("plan", "--from", TARGET, "--to", "desired.json", "-o", "adir"), "adir"),
        (("plan", "--from", TARGET, "--to", "desired.json", "-o", "afile/p.json"),
         "afile/p.json"),
        (("init", "afile"), "afile"),
        (("init", "afile/sub"), "afile/sub"),
        (("demo", "--dir", "afile"), "afile"),
        (("plan", "--from", TARGET, "--to", "afile/x.sql"), "afile/x.sql"),
        # A storage directory nothing can be written in ('internal error: FileNotFoundError'
        # from the copy of the backup's files on 0a82ce2).
        (("backup", "create", "--target", TARGET, "--storage", "/proc/self"),
         "backup storage /proc/self"),
    ]
    for args, needle in cases:
        bad(lockplane(*args, cwd=project), needle)
    (project / "lockplane.toml").mkdir()
    bad(lockplane("introspect", "--target-environment", "x", cwd=project), "lockplane.toml")
    os.rmdir(project / "lockplane.toml")
    (project / ".env.x").mkdir()
    bad(lockplane("introspect", "--target-environment", "x", cwd=project), ".env.x")
    assert sqlite_state(project / "target.db") == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_unreadable_files(project: Path) -> None:
    (project / "plan.json").chmod(0)
    (project / "lockplane.toml").write_text("[environments.x]\n")
    (project / "lockplane.toml").chmod(0)
    bad(lockplane("apply", "plan.json", "--target", TARGET, "--auto-approve", cwd=project),
        "plan.json")
    bad(lockplane("introspect", "--target-environment", "x", cwd=project), "lockplane.toml")


# ---------------------------------------------------------------------------- empty plans
def test_empty_plan_still_checks_the_hash(project: Path) -> None:
    r = lockplane("plan", "--from", TARGET, "--to", "schema.json", "-q", "-o", "empty.json",
                  cwd=project)
    assert r.code == 0, r
    empty = json.loads((project / "empty.json").read_text())
    assert empty["steps"] == []
    r = lockplane("apply", "empty.json", "--target", TARGET, "--auto-approve", cwd=project)
    assert r.code == 0 and "No changes" in r.stderr, r
    # The same (empty) plan, for a database in another state: refused, having connected.
    # (An empty plan's content is recomputed: a stored plan_id would no longer match.)
    wrong = {k: v for k, v in empty.items() if k not in ("plan_id", "signature")}
    wrong["source_hash"] = wrong["target_hash"] = "0" * 64
    (project / "wrong.json").write_text(json.dumps(wrong))
    before = sqlite_state(project / "target.db")
    r = lockplane("apply", "wrong.json", "--target", TARGET, "--auto-approve", cwd=project)
    bad(r, "hash", code=3)
    assert sqlite_state(project / "target.db") == before


def test_empty_plan_checks_the_hash_postgres(pg_dsn: str, tmp_path: Path) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
    (tmp_path / "p.json").write_text(json.dumps(
        {"source_hash": "0" * 64, "target_hash": "0" * 64, "dialect": "postgres",
         "steps": []}))
    before = pg_state(pg_dsn)
    bad(lockplane("apply", "p.json", "--target", pg_dsn, "--auto-approve", cwd=tmp_path),
        "hash", code=3)
    assert pg_state(pg_dsn) == before


# ---------------------------------------------------------------------------- fuzzing
FUZZ = settings(max_examples=50, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

_json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
_json = st.recursive(_json_scalars, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=12)


def _mutated(document: bytes) -> st.SearchStrategy[bytes]:
    """``document`` with a few bytes replaced, dropped or inserted (mostly still parses
    as far as a field or two: reaches the validators, not only the parser)."""
    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        data = bytearray(document)
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, max(0, len(data) - 1)))
            op = draw(st.sampled_from(["replace", "drop", "insert"]))
            b = draw(st.integers(0, 255))
            if op == "replace" and data:
                data[i] = b
            elif op == "drop" and data:
                del data[i]
            else:
                data.insert(i, b)
        return bytes(data)
    return build()


def _documents(valid: bytes, fields: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    return st.one_of(_mutated(valid), st.binary(max_size=200), fields,
                     _json.map(lambda v: json.dumps(v).encode()))


def _schema_like() -> st.SearchStrategy[bytes]:
    column = st.fixed_dictionaries({"name": _json_scalars, "type": _json_scalars},
                                   optional={"nullable": _json, "default": _json,
                                             "is_primary_key": _json})
    table = st.fixed_dictionaries({"name": _json_scalars, "columns": st.lists(column,
                                                                             max_size=2)},
                                  optional={"indexes": _json, "foreign_keys": _json,
                                            "schema": _json_scalars})
    return st.fixed_dictionaries({"dialect": st.just("sqlite"),
                                  "tables": st.lists(table, max_size=2)}).map(
        lambda v: json.dumps(v).encode())


def _plan_like() -> st.SearchStrategy[bytes]:
    step = st.fixed_dictionaries({"description": _json_scalars, "sql": _json},
                                 optional={"safety": _json_scalars, "lock": _json,
                                           "transactional": _json, "rollback": _json})
    return st.fixed_dictionaries({"source_hash": _json_scalars,
                                  "steps": st.lists(step, max_size=2)},
                                 optional={"dialect": _json_scalars, "target_hash": _json}
                                 ).map(lambda v: json.dumps(v).encode())


def _check(result: Result, target: Path, before: str, allowed: set[int]) -> None:
    assert "Traceback" not in result.output, result
    assert "internal error" not in result.output, result
    assert result.code in allowed, result
    if result.code != 0:  # refused: nothing changed (a plan that applied changed it)
        assert sqlite_state(target) == before


@pytest.mark.parametrize("fmt", [
    "schema_json", "plan_json", "toml", "dotenv",
    "sql",
])
def test_fuzz_input_files(project: Path, fmt: str) -> None:
    valid = {
        "schema_json": (project / "desired.json").read_bytes(),
        "plan_json": (project / "plan.json").read_bytes(),
        "toml": b'[environments.x]\ndatabase_url = "sqlite:///target.db"\n'
                b'schema_path = "desired.json"\nsafety = "strict"\n',
        "dotenv": b"# comment\nexport DATABASE_URL='sqlite:///target.db'\n"
                  b"SCHEMA_PATH=desired.json\n",
        "sql": b"CREATE TABLE t (id INTEGER PRIMARY KEY NOT NULL, name TEXT, extra TEXT);\n",
    }[fmt]
    fields = {"schema_json": _schema_like(), "plan_json": _plan_like()}.get(
        fmt, st.binary(max_size=100))
    before = sqlite_state(project / "target.db")
    # A plan is applied: 0 (its own database, once), 3 (refused: hash, safety).
    allowed = {0, 2, 3} if fmt == "plan_json" else {0, 2}

    @FUZZ
    @given(_documents(valid, fields))
    def run(data: bytes) -> None:
        target = project / "target.db"
        if fmt == "plan_json":  # a fresh copy: an example's plan may well apply
            target = project / "copy.db"
            target.write_bytes((project / "target.db").read_bytes())
        if fmt == "schema_json":
            (project / "f.json").write_bytes(data)
            r = lockplane("plan", "--from", TARGET, "--to", "f.json", "-q", cwd=project)
        elif fmt == "plan_json":
            (project / "f.json").write_bytes(data)
            r = lockplane("apply", "f.json", "--target", "sqlite:///copy.db", "--skip-shadow",
                          "--safety", "strict", "--auto-approve", cwd=project)
        elif fmt == "toml":
            (project / "lockplane.toml").write_bytes(data)
            r = lockplane("plan", "--from-environment", "x", "-q", cwd=project)
        elif fmt == "dotenv":
            (project / ".env.x").write_bytes(data)
            r = lockplane("plan", "--from-environment", "x", "--to", "schema.json", "-q",
                          cwd=project)
        else:
            (project / "f.sql").write_bytes(data)
            r = lockplane("plan", "--from", TARGET, "--to", "f.sql", "-q", cwd=project)
        _check(r, target, before, allowed)

    run()


_NUMBER_TEXT = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(["nan", "inf", "-inf", "1e3", "0x10", "", " ", "1_000", "٣", "-0",
                     str(2**31), str(2**31 - 1), str(2**63)]),
    st.floats(allow_nan=True).map(repr))


@FUZZ
@given(option=st.sampled_from(["--lock-timeout-ms", "--retries"]), value=_NUMBER_TEXT)
def test_fuzz_numeric_options_apply(project: Path, option: str, value: str) -> None:
    before = sqlite_state(project / "target.db")
    target = project / "copy.db"  # a fresh copy: the plan applies when the option is fine
    target.write_bytes((project / "target.db").read_bytes())
    r = lockplane("apply", "plan.json", "--target", f"sqlite:///{target}", "--auto-approve",
                  "--skip-shadow", f"{option}={value}", cwd=project)
    _check(r, target, before, {0, 2})


@FUZZ
@given(option=st.sampled_from(["--batch-size", "--sleep", "--max-rows-per-second",
                               "--target-batch-ms", "--lock-timeout-ms", "--chunks"]),
       value=_NUMBER_TEXT)
def test_fuzz_numeric_options_backfill(project: Path, option: str, value: str) -> None:
    before = sqlite_state(project / "target.db")
    r = lockplane("backfill", "--target", TARGET, "--table", "t", "--set", "name = name",
                  "--dry-run", f"{option}={value}", cwd=project)
    _check(r, project / "target.db", before, {0, 2})
