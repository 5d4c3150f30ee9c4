"""lockplane drift check: three real environments (two PostgreSQL, one SQLite) drifted by
hand the way people drift them, each difference reported in words, exit codes, formats,
ignore patterns, migration histories, extension-owned objects."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from lockplane.drift import (
    DriftItem,
    EnvironmentHistory,
    check_drift,
    compare_histories,
    fingerprint,
    parse_rules,
    split_ignored,
    targets_from_config,
)
from lockplane.state import MigrationRecord
from tests.cli_inprocess import lockplane
from tests.conftest import (
    PG_ADMIN_DSN,
    _create_pg_database,
    _drop_later,
    _new_pg_database,
    _pg_dsn_for,
    pg_exec,
)

READER = "lp_drift_reader"

PG_SCHEMA = f"""
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE TABLE users (
    id bigint PRIMARY KEY,
    email text NOT NULL,
    name text,
    age integer CONSTRAINT users_age_check CHECK (age > 0)
);
CREATE INDEX users_email_idx ON users (email);
CREATE TABLE orders (
    id bigint PRIMARY KEY,
    user_id bigint REFERENCES users (id),
    total numeric NOT NULL DEFAULT 0
);
CREATE FUNCTION order_total(o orders) RETURNS numeric LANGUAGE sql AS 'SELECT o.total';
GRANT SELECT ON users TO {READER};
COMMENT ON TABLE users IS 'people who sign in';
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
CREATE POLICY users_visible ON users USING (id > 0);
"""

SQLITE_SCHEMA = """
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL, name TEXT);
CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL DEFAULT '');
"""


def ensure_role(name: str) -> None:
    """A NOLOGIN role the schemas grant to (roles are server-wide: made once)."""
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone():
            try:
                conn.execute(f"CREATE ROLE {name} NOLOGIN")
            except psycopg.errors.DuplicateObject:  # another test process made it
                pass


@pytest.fixture(scope="module", autouse=True)
def reader_role() -> None:
    ensure_role(READER)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _toml(root: Path, envs: dict[str, dict[str, object]]) -> None:
    lines = []
    for name, keys in envs.items():
        lines.append(f"[environments.{name}]")
        for k, v in keys.items():
            lines.append(f"{k} = {json.dumps(v)}")
    (root / "lockplane.toml").write_text("\n".join(lines) + "\n")


def _apply(root: Path, schema: str, dsn: str) -> None:
    r = lockplane("apply", "--schema", schema, "--target", dsn, "--auto-approve",
                  "--skip-shadow", "--safety", "permissive", cwd=root)
    assert r.code == 0, r.output


def _sqlite_exec(dsn: str, script: str) -> None:
    conn = sqlite3.connect(dsn.removeprefix("sqlite:///"))
    try:
        conn.executescript(script)
    finally:
        conn.close()


def _make_project(root: Path, pg_dsn_factory: Callable[[], str]) -> dict[str, object]:
    """prod and staging (PostgreSQL) and local (SQLite), each brought to its desired
    schema by Lockplane, then drifted by hand."""
    _write(root / "schema" / "app.sql", PG_SCHEMA)
    _write(root / "schema_sqlite" / "app.sql", SQLITE_SCHEMA)
    # What staging got once, in a migration nobody ran anywhere else.
    _write(root / "schema_staging_only" / "app.sql",
           PG_SCHEMA + "CREATE INDEX users_name_idx ON users (name);\n")
    prod, staging = pg_dsn_factory(), pg_dsn_factory()
    local = f"sqlite:///{root / 'local.db'}"
    sqlite3.connect(root / "local.db").close()
    for dsn in (prod, staging):
        _apply(root, "schema/", dsn)
    r = lockplane("apply", "--schema", "schema_sqlite/", "--target", local, "--auto-approve",
                  "--skip-shadow", cwd=root)
    assert r.code == 0, r.output
    _apply(root, "schema_staging_only/", staging)

    pg_exec(prod, f"""
        ALTER TABLE users ADD COLUMN emergency_fix_2024_01 text;
        DROP INDEX users_email_idx;
        REVOKE SELECT ON users FROM {READER};
        CREATE OR REPLACE FUNCTION order_total(o orders) RETURNS numeric LANGUAGE sql
            AS 'SELECT o.total * 2';
    """)
    pg_exec(staging, """
        ALTER TABLE users ALTER COLUMN email SET DEFAULT 'x';
        CREATE TABLE audit_log (id bigint, happened_at timestamptz DEFAULT now());
        ALTER TABLE users DROP CONSTRAINT users_age_check,
            ADD CONSTRAINT users_age_check CHECK (age >= 18);
        COMMENT ON TABLE users IS 'everyone';
    """)
    _sqlite_exec(local, "ALTER TABLE users ADD COLUMN nickname TEXT;")
    _toml(root, {
        "prod": {"database_url": prod, "schema_path": "schema/"},
        "staging": {"database_url": staging, "schema_path": "schema/"},
        "local": {"database_url": local, "schema_path": "schema_sqlite/"},
    })
    return {"root": root, "prod": prod, "staging": staging, "local": local}


@pytest.fixture(scope="module")
def made_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """The project, made once (~3 s of applies and drifting) on databases no test uses."""
    made: list[str] = []

    def factory() -> str:
        made.append(_new_pg_database())
        return _pg_dsn_for(made[-1])

    try:
        yield _make_project(tmp_path_factory.mktemp("drift_project"), factory)
    finally:
        for name in made:
            _drop_later(name)


@pytest.fixture
def project(made_project: dict[str, object], tmp_path: Path) -> Iterator[dict[str, object]]:
    """A copy of the made project for one test (which may drift it further or edit its
    lockplane.toml): its databases copied (CREATE DATABASE ... TEMPLATE, history and
    all), its directory copied with the copies' URLs in lockplane.toml."""
    root = tmp_path / "project"
    shutil.copytree(made_project["root"], root)  # type: ignore[arg-type]
    copies: list[str] = []
    out: dict[str, object] = {"root": root, "local": f"sqlite:///{root / 'local.db'}"}
    toml = (root / "lockplane.toml").read_text()
    toml = toml.replace(str(made_project["local"]), str(out["local"]))
    try:
        for env in ("prod", "staging"):
            copies.append(_create_pg_database(
                template=str(made_project[env]).rsplit("/", 1)[1]))
            out[env] = _pg_dsn_for(copies[-1])
            toml = toml.replace(json.dumps(made_project[env]), json.dumps(out[env]))
        (root / "lockplane.toml").write_text(toml)
        yield out
    finally:
        for name in copies:
            _drop_later(name)


def _messages(env: dict[str, object]) -> set[str]:
    return {i["message"] for i in env["items"]}  # type: ignore[index, union-attr]


def test_each_hand_made_drift_reported_in_words(project) -> None:
    r = lockplane("drift", "check", "--all-environments", "--format", "json",
                  cwd=project["root"])
    assert r.code == 4, r.output
    report = json.loads(r.stdout)
    assert report["format"] == "lockplane-drift/1"
    assert report["status"] == "drift" and report["exit_code"] == 4
    envs = {e["name"]: e for e in report["environments"]}
    assert [e["name"] for e in report["environments"]] == ["prod", "staging", "local"]
    assert _messages(envs["prod"]) == {
        "prod has extra column users.emergency_fix_2024_01, not in the desired schema",
        "prod is missing index users_email_idx on users that the desired schema has",
        f"prod is missing grant SELECT on table users to {READER} that the desired schema "
        "has",
        "prod's function order_total(o orders) definition differs: ...AS $function$SELECT "
        "o.total * 2$function$ in the database, ...AS $function$SELECT o.total$function$ in "
        "the desired schema",
    }
    assert _messages(envs["staging"]) == {
        "staging's users.email default differs: 'x'::text in the database, none in the "
        "desired schema",
        "staging has extra table audit_log, not in the desired schema",
        "staging's check constraint users_age_check on users expression differs: "
        "(age >= 18) in the database, (age > 0) in the desired schema",
        "staging's comment on table users differs: 'everyone' in the database, "
        "'people who sign in' in the desired schema",
        "staging has extra index users_name_idx on users, not in the desired schema",
    }
    assert _messages(envs["local"]) == {
        "local has extra column users.nickname, not in the desired schema"}
    by_kind = {(i["object"], i["kind"], i["type"]) for i in envs["prod"]["items"]}
    assert ("public.users.emergency_fix_2024_01", "extra", "column") in by_kind
    assert ("public.users.users_email_idx", "missing", "index") in by_kind
    assert ("public.users", "missing", "grant") in by_kind
    assert ("public.order_total(o public.orders)", "different", "function") in by_kind
    for e in envs.values():
        assert e["status"] == "drift"
        assert len(e["fingerprint"]) == 64
    # Migration history: the staging-only migration, matched by plan id / target hash.
    prod_history = envs["prod"]["history"]
    assert prod_history["available"] and prod_history["applied"] == 1
    (finding,) = prod_history["findings"]
    assert finding["kind"] == "missing"
    assert finding["message"].startswith("prod is missing 1 migration that staging has: ")
    assert envs["staging"]["history"]["findings"] == []
    assert envs["staging"]["history"]["applied"] == 2
    # Histories are compared among environments of the same desired schema only.
    assert envs["local"]["history"]["applied"] == 1
    assert envs["local"]["history"]["findings"] == []
    # Environments against each other (same dialect only).
    (pair,) = report["comparisons"]
    assert pair["environments"] == ["prod", "staging"] and not pair["same"]
    pair_messages = {i["message"] for i in pair["items"]}
    assert "prod has extra column users.emergency_fix_2024_01, not in staging" in pair_messages
    assert "prod is missing table audit_log that staging has" in pair_messages
    assert ("prod's users.email default differs: none in prod, 'x'::text in staging"
            in pair_messages)


def test_text_and_markdown(project) -> None:
    r = lockplane("drift", "check", "--environment", "staging", cwd=project["root"])
    assert r.code == 4
    assert r.stdout.splitlines()[0].startswith("staging: drift (5 differences from ")
    assert ("  - staging's users.email default differs: 'x'::text in the database, none in "
            "the desired schema") in r.stdout.splitlines()
    assert "1 environment checked in" in r.stdout and "1 drifted" in r.stdout
    r = lockplane("drift", "check", "-e", "prod", "-e", "local", "--format", "markdown",
                  cwd=project["root"])
    assert r.code == 4
    assert r.stdout.startswith("## Lockplane drift check\n")
    assert "| prod | ⚠️ drift | 4 |" in r.stdout
    assert ("- **extra** local has extra column users.nickname, not in the desired schema"
            in r.stdout)


def test_clean_environment_exits_0_and_history_can_be_skipped(tmp_path, pg_dsn_factory):
    _write(tmp_path / "schema" / "app.sql", PG_SCHEMA)
    a, b = pg_dsn_factory(), pg_dsn_factory()
    _apply(tmp_path, "schema/", a)
    pg_exec(b, PG_SCHEMA)  # made by hand, at the desired state: no history, no drift
    _toml(tmp_path, {"a": {"database_url": a, "schema_path": "schema/"},
                     "b": {"database_url": b, "schema_path": "schema/"}})
    # Plans made by an older Lockplane recorded hashes of another format: schemas are
    # compared, not stored hashes, so that is no drift.
    pg_exec(a, "UPDATE lockplane.migrations SET target_hash = 'v1-' || target_hash, "
               "hash_after = 'v1-' || hash_after, plan = plan || '{\"hash_format\": 1}'")
    r = lockplane("drift", "check", "--all-environments", cwd=tmp_path)
    assert r.code == 0, r.output
    assert r.stdout.startswith("a: no drift (")
    assert "note: no Lockplane migration history in this database" in r.stdout
    assert "a and b: same schema" in r.stdout
    r = lockplane("drift", "check", "--all-environments", "--format", "json", "--no-history",
                  cwd=tmp_path)
    report = json.loads(r.stdout)
    assert r.code == 0 and report["status"] == "clean"
    assert [e["history"] for e in report["environments"]] == [None, None]
    assert {e["fingerprint"] for e in report["environments"]} == {fingerprint([])}


def test_unreachable_environment_exits_1_others_still_checked(project) -> None:
    root = project["root"]
    text = (root / "lockplane.toml").read_text()
    text += ('[environments.qa]\nschema_path = "schema/"\n'
             'database_url = "postgresql://app:hunter2secret@127.0.0.1:1/qa"\n')
    (root / "lockplane.toml").write_text(text)
    r = lockplane("drift", "check", "--all-environments", "--format", "json", cwd=root)
    assert r.code == 1, r.output
    assert "hunter2secret" not in r.output
    envs = {e["name"]: e for e in json.loads(r.stdout)["environments"]}
    assert envs["qa"]["status"] == "unreachable"
    assert envs["qa"]["error"] and "127.0.0.1" in envs["qa"]["error"]
    assert envs["qa"]["database"].startswith("postgresql://app:")
    assert [envs[n]["status"] for n in ("prod", "staging", "local")] == ["drift"] * 3
    r = lockplane("drift", "check", "-e", "qa", "-e", "local", cwd=root)
    assert r.code == 1 and "hunter2secret" not in r.output
    assert r.stdout.startswith("qa: unreachable: ")


def test_ignore_patterns_and_accepted_drift_in_lockplane_toml(project) -> None:
    root = project["root"]
    r = lockplane("drift", "check", "-e", "prod", "-e", "staging", "--format", "json",
                  "--ignore", "public.users.emergency_*", "--ignore", "table:audit_*",
                  "--ignore", "grant:users", "--ignore", "comment:*", cwd=root)
    envs = {e["name"]: e for e in json.loads(r.stdout)["environments"]}
    objects = {i["object"] for e in envs.values() for i in e["items"]}
    assert "public.users.emergency_fix_2024_01" not in objects
    assert "public.audit_log" not in objects
    assert {i["type"] for e in envs.values() for i in e["items"]}.isdisjoint(
        {"grant", "comment"})
    assert {i["object"] for i in envs["prod"]["ignored"]} == {
        "public.users.emergency_fix_2024_01", "public.users"}
    assert len(envs["prod"]["items"]) == 2 and len(envs["staging"]["items"]) == 3
    # Everything accepted in lockplane.toml: clean (history ignored by plan id too).
    text = (root / "lockplane.toml").read_text().replace(
        '[environments.local]', '[environments.local]\nignore = ["users.nickname"]')
    (root / "lockplane.toml").write_text(text)
    r = lockplane("drift", "check", "-e", "local", cwd=root)
    assert r.code == 0, r.output
    assert "(1 difference ignored)" in r.stdout
    r = lockplane("drift", "check", "-e", "local", "--ignore", "", cwd=root)
    assert r.code == 2 and "ignore pattern is empty" in r.stderr


def test_fingerprint_is_stable_and_follows_the_drift(project) -> None:
    first = check_drift(targets_from_config(["prod"], project["root"]))
    again = check_drift(targets_from_config(["prod"], project["root"]))
    assert first.environment("prod").fingerprint == again.environment("prod").fingerprint
    pg_exec(project["prod"], "ALTER TABLE users DROP COLUMN emergency_fix_2024_01")
    fixed = check_drift(targets_from_config(["prod"], project["root"]))
    assert fixed.environment("prod").fingerprint != first.environment("prod").fingerprint
    assert len(fixed.environment("prod").items) == 3
    assert first.exit_code == 4 and first.status == "drift"


def test_extension_owned_objects_are_not_drift(tmp_path, pg_dsn) -> None:
    _write(tmp_path / "schema" / "app.sql",
           "CREATE EXTENSION IF NOT EXISTS pg_trgm;\nCREATE EXTENSION IF NOT EXISTS citext;\n"
           "CREATE TABLE t (id int PRIMARY KEY, name citext);\n")
    pg_exec(pg_dsn, "CREATE EXTENSION pg_trgm; CREATE EXTENSION citext; "
                    "CREATE TABLE t (id int PRIMARY KEY, name citext); "
                    "CREATE INDEX t_trgm ON t USING gin ((name::text) gin_trgm_ops);"
                    "DROP INDEX t_trgm;")
    # pg_trgm and citext bring dozens of functions, operators and types: none is drift.
    with psycopg.connect(pg_dsn) as conn:
        owned = conn.execute("SELECT count(*) FROM pg_depend WHERE deptype = 'e'").fetchone()
    assert owned[0] > 50
    _toml(tmp_path, {"dev": {"database_url": pg_dsn, "schema_path": "schema/"}})
    r = lockplane("drift", "check", "-e", "dev", cwd=tmp_path)
    assert r.code == 0, r.output
    # A function someone adds by hand is drift, next to the extension's.
    pg_exec(pg_dsn, "CREATE FUNCTION similar_enough(a text, b text) RETURNS boolean "
                    "LANGUAGE sql AS 'SELECT similarity(a, b) > 0.5'")
    r = lockplane("drift", "check", "-e", "dev", "--format", "json", cwd=tmp_path)
    assert r.code == 4
    (item,) = json.loads(r.stdout)["environments"][0]["items"]
    assert item["message"] == ("dev has extra function similar_enough(a text, b text), "
                               "not in the desired schema")


def test_bad_input_exits_2_before_connecting(tmp_path) -> None:
    _toml(tmp_path, {"prod": {"database_url": "postgresql://x:pw@127.0.0.1:1/x"}})
    r = lockplane("drift", "check", "-e", "prod", cwd=tmp_path)
    assert r.code == 2 and "has no schema_path" in r.stderr
    r = lockplane("drift", "check", cwd=tmp_path)
    assert r.code == 2 and "--all-environments" in r.stderr
    r = lockplane("drift", "check", "--all-environments", "--format", "xml", cwd=tmp_path)
    assert r.code == 2
    (tmp_path / "lockplane.toml").write_text('[environments.a]\nignore = "x"\n')
    r = lockplane("drift", "check", "-e", "a", cwd=tmp_path)
    assert r.code == 2 and "ignore must be an array" in r.stderr


# ------------------------------------------------------------------ histories and rules
def _rec(i: int, plan: str, result: str = "applied", target: str | None = None,
         done: int = 2, error: str | None = None) -> MigrationRecord:
    return MigrationRecord(i, plan, f"2026-01-0{i} 10:00:00", f"2026-01-0{i} 10:01:00",
                           "src", target or f"t-{plan}", None, None, 2, done, result, error,
                           "ci")


def test_histories_missing_out_of_order_and_unfinished() -> None:
    prod = EnvironmentHistory("prod", True, [_rec(1, "a" * 64), _rec(2, "b" * 64),
                                             _rec(3, "c" * 64),
                                             _rec(4, "d" * 64, "failed", done=1,
                                                  error="lock timeout")])
    staging = EnvironmentHistory("staging", True, [
        _rec(1, "b" * 64), _rec(2, "a" * 64),
        _rec(3, "x" * 64, target="t-" + "c" * 64),  # planned there: same target state
        _rec(4, "e" * 64, "interrupted", done=1), _rec(5, "f" * 64, "failed", done=0)])
    dev = EnvironmentHistory("dev", False, note="no Lockplane migration history")
    found = compare_histories({"prod": prod, "staging": staging, "dev": dev})
    assert found["dev"] == []
    prod_msgs = [f.message for f in found["prod"]]
    assert prod_msgs == [
        "prod's migration dddddddddddd (2026-01-04 10:01:00) failed after 1 of 2 steps were "
        "committed, so the schema is part-way: lock timeout",
        "prod applied migration aaaaaaaaaaaa before bbbbbbbbbbbb; staging applied them the "
        "other way round",
    ]
    staging_msgs = [f.message for f in found["staging"]]
    assert staging_msgs == [
        "staging's migration eeeeeeeeeeee (2026-01-04 10:01:00) was interrupted after 1 of 2 "
        "steps",
        "staging applied migration bbbbbbbbbbbb before aaaaaaaaaaaa; prod applied them the "
        "other way round",
    ]
    staging2 = EnvironmentHistory("staging", True, [_rec(1, "a" * 64)])
    found = compare_histories({"prod": prod, "staging": staging2})
    (missing,) = [f for f in found["staging"] if f.kind == "missing"]
    assert missing.message == (
        "staging is missing 2 migrations that prod has: bbbbbbbbbbbb (2026-01-02 10:01:00), "
        "cccccccccccc (2026-01-03 10:01:00)")


def _item(obj: str, typ: str, table: str | None = None) -> DriftItem:
    return DriftItem(obj, typ, "extra", "d", "m", table)


def test_ignore_rules() -> None:
    items = [_item("public.users.emergency_fix", "column", "public.users"),
             _item("public.audit_log", "table"),
             _item("public.audit_log.id", "column", "public.audit_log"),
             _item("public.users", "grant", "public.users"),
             _item("public.f(integer)", "function"),
             _item("app.audit_x", "table")]

    def kept(*patterns: str) -> list[str]:
        return [i.object + "/" + i.type
                for i in split_ignored(items, parse_rules(patterns))[0]]

    assert "public.users.emergency_fix/column" not in kept("users.emergency_*")
    assert "public.users.emergency_fix/column" not in kept("public.users.emergency_*")
    assert kept("table:audit_*") == ["public.users.emergency_fix/column",
                                     "public.users/grant", "public.f(integer)/function"]
    assert kept("public.audit_log") == [o for o in kept() if "audit_log" not in o]
    assert "public.users/grant" not in kept("grant:*")
    assert "public.users.emergency_fix/column" in kept("grant:*")
    assert "public.f(integer)/function" not in kept("function:f(*)")
    assert "public.f(integer)/function" not in kept("public.f(integer)")
    assert kept("table:app.*") == [o for o in kept() if o != "app.audit_x/table"]
    assert "public.users/grant" in kept("column:*")
