"""Sources and environments: JSON, .sql files and directories, SQLAlchemy metadata,
lockplane.toml environments with .env.NAME secrets, convert/validate/plan-rollback/init."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from lockplane.config import get_environment
from lockplane.errors import BadInput
from lockplane.sources import SourceContext, load_schema
from tests.conftest import pg_exec
from tests.test_cli import assert_one_line_error, run

MODELS = textwrap.dedent('''
    from sqlalchemy import Column, ForeignKey, Integer, MetaData, String, Table, Text

    metadata = MetaData()
    users = Table("users", metadata,
                  Column("id", Integer, primary_key=True),
                  Column("email", String(200), nullable=False, unique=True),
                  Column("bio", Text))
    posts = Table("posts", metadata,
                  Column("id", Integer, primary_key=True),
                  Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"),
                         index=True))
''')


@pytest.fixture
def models_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"lp_models_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(MODELS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("LOCKPLANE_ALLOW_PYTHON_SCHEMA", "1")
    yield f"{name}:metadata"
    sys.modules.pop(name, None)


def test_sqlalchemy_source_postgres_and_sqlite(pg_dsn: str, models_module: str) -> None:
    pg = load_schema(models_module, SourceContext(dialect="postgres", server_dsn=pg_dsn))
    users = pg.table("public", "users")
    assert users is not None and users.column("email").type == "character varying(200)"
    assert pg.table("public", "posts").foreign_keys[0].on_delete == "CASCADE"
    lite = load_schema(models_module, SourceContext(dialect="sqlite"))
    assert {t.name for t in lite.tables} == {"users", "posts"}
    assert lite.table("main", "posts").indexes


def test_sqlalchemy_source_plans_to_empty_after_apply(pg_dsn: str, models_module: str,
                                                      tmp_path: Path) -> None:
    proc = run("apply", "--schema", models_module, "--target", pg_dsn, "--auto-approve",
               cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    proc = run("plan", "--from", pg_dsn, "--to", models_module, cwd=tmp_path,
               env={"PYTHONPATH": str(tmp_path)})
    assert json.loads(proc.stdout)["steps"] == [], proc.stderr


def test_python_schema_needs_the_environment_s_consent(pg_dsn: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       ) -> None:
    """A pull request can change lockplane.toml's schema_path (or an option): without
    LOCKPLANE_ALLOW_PYTHON_SCHEMA=1 in the environment, module:attribute is refused
    before anything is imported. On 0717b2c this plan imported the module (exit 0)."""
    monkeypatch.delenv("LOCKPLANE_ALLOW_PYTHON_SCHEMA", raising=False)
    canary = tmp_path / "imported"
    name = f"lp_evil_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(
        f"import pathlib\npathlib.Path({str(canary)!r}).write_text('ran')\n"
        "from sqlalchemy import MetaData\nmetadata = MetaData()\n")
    (tmp_path / "lockplane.toml").write_text(
        f'[environments.ci]\ndatabase_url = "{pg_dsn}"\nschema_path = "{name}:metadata"\n')
    for args in (("plan", "--from-environment", "ci", "-q"),
                 ("plan", "--from", pg_dsn, "--to", f"{name}:metadata", "-q")):
        proc = run(*args, cwd=tmp_path)
        assert_one_line_error(proc, 2, "LOCKPLANE_ALLOW_PYTHON_SCHEMA=1")
        assert not canary.exists()
    sys.modules.pop(name, None)


def test_json_is_canonicalized_through_the_server(pg_dsn: str, tmp_path: Path) -> None:
    path = tmp_path / "schema.json"
    path.write_text(json.dumps({"dialect": "postgres", "tables": [{
        "name": "t", "columns": [
            {"name": "id", "type": "int", "is_primary_key": True},
            {"name": "label", "type": "varchar(20)", "default": "'x'"}]}]}))
    schema = load_schema(str(path), SourceContext(dialect="postgres", server_dsn=pg_dsn))
    col = schema.table("public", "t").column("label")
    assert col.type == "character varying(20)"
    assert col.default == "'x'::character varying"
    # Applying it and re-planning is empty although the JSON said varchar/int.
    proc = run("apply", "--schema", str(path), "--target", pg_dsn, "--auto-approve")
    assert proc.returncode == 0, proc.stderr
    proc = run("plan", "--from", pg_dsn, "--to", str(path), "--exit-code")
    assert proc.returncode == 0, proc.stdout


def test_sql_directory_loads_in_name_order(pg_dsn: str, tmp_path: Path) -> None:
    d = tmp_path / "schema"
    d.mkdir()
    (d / "001_types.sql").write_text("CREATE TYPE mood AS ENUM ('sad', 'ok');")
    (d / "002_tables.lp.sql").write_text("CREATE TABLE people (id int PRIMARY KEY, m mood);")
    schema = load_schema(str(d), SourceContext(dialect="postgres", server_dsn=pg_dsn))
    assert schema.table("public", "people").column("m").type == "public.mood"


def test_pg_dump_output_loads(pg_dsn: str, tmp_path: Path) -> None:
    import subprocess

    pg_exec(pg_dsn, "CREATE TABLE t (id int PRIMARY KEY, x text); CREATE INDEX t_x ON t (x);")
    dump = tmp_path / "dump.sql"
    dump.write_text(subprocess.run(["pg_dump", "--schema-only", pg_dsn], check=True,
                                   capture_output=True, text=True).stdout)
    proc = run("plan", "--from", pg_dsn, "--to", str(dump), "--exit-code")
    assert proc.returncode == 0, proc.stderr


def test_environments_and_dotenv(tmp_path: Path, pg_dsn: str,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "lockplane.toml").write_text(
        '[environments.production]\nschema_path = "schema/"\n'
        '[environments.local]\ndatabase_url = "sqlite:///local.db"\nsafety = "permissive"\n')
    (tmp_path / ".env.production").write_text(f"DATABASE_URL={pg_dsn}\n# comment\n")
    prod = get_environment("production", tmp_path)
    # (named by a file without a password: no ambient one for it, see test_repository_servers)
    assert prod.database_url == pg_dsn + "?require_auth=!password,!md5"
    assert prod.default_safety == "strict"
    # A level looser than the default is the pipeline's to give, not lockplane.toml's.
    with pytest.raises(BadInput, match="may tighten the level, not loosen it"):
        get_environment("local", tmp_path).default_safety  # noqa: B018
    monkeypatch.setenv("LOCKPLANE_LOCAL_SAFETY", "permissive")
    assert get_environment("local", tmp_path).default_safety == "permissive"
    with pytest.raises(BadInput, match="unknown environment"):
        get_environment("staging", tmp_path)
    # The CLI resolves --from-environment, and production defaults to strict.
    pg_exec(pg_dsn, "CREATE TABLE t (id int PRIMARY KEY, old text);")
    (tmp_path / "schema").mkdir()
    (tmp_path / "schema" / "s.sql").write_text("CREATE TABLE t (id int PRIMARY KEY);")
    proc = run("plan", "--from-environment", "production", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["steps"][0]["kind"] == "drop_column"
    proc = run("apply", "--target-environment", "production", "--auto-approve", cwd=tmp_path)
    assert_one_line_error(proc, 3, "strict")


def test_bad_toml_and_unknown_keys(tmp_path: Path) -> None:
    (tmp_path / "lockplane.toml").write_text("[environments.x]\ndatabse_url = 'typo'\n")
    proc = run("plan", "--from-environment", "x", cwd=tmp_path)
    assert_one_line_error(proc, 2, "databse_url")


def test_convert_validate_init_and_plan_rollback(tmp_path: Path) -> None:
    (tmp_path / "s.sql").write_text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT);")
    proc = run("convert", "-i", "s.sql", "-o", "s.json", "--dialect", "sqlite", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "s.json").read_text())
    assert data["dialect"] == "sqlite" and data["tables"][0]["name"] == "t"
    proc = run("convert", "-i", "s.json", "--to", "sql", cwd=tmp_path)
    assert 'CREATE TABLE "t"' in proc.stdout
    assert run("validate", "s.json", cwd=tmp_path).returncode == 0
    (tmp_path / "broken.sql").write_text("CREATE TABLE t (id INTEGER PRIMARY KEY,);")
    assert_one_line_error(run("validate", "broken.sql", "--dialect", "sqlite", cwd=tmp_path),
                          2, "broken.sql:1")
    assert run("init", "proj", cwd=tmp_path).returncode == 0
    assert (tmp_path / "proj" / "lockplane.toml").is_file()
    assert_one_line_error(run("init", "proj", cwd=tmp_path), 2, "already exists")

    db = tmp_path / "app.db"
    (tmp_path / "s2.sql").write_text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, "
                                     "n INTEGER);")
    import sqlite3

    sqlite3.connect(db).executescript("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT);")
    dsn = f"sqlite:///{db}"
    assert run("plan", "--from", dsn, "--to", "s2.sql", "-o", "p.json",
               cwd=tmp_path).returncode == 0
    proc = run("plan-rollback", "--plan", "p.json", "--from", dsn, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    back = json.loads(proc.stdout)
    assert back["steps"][0]["sql"] == ['ALTER TABLE "t" DROP COLUMN "n"']
    forward = json.loads((tmp_path / "p.json").read_text())
    assert back["source_hash"] == forward["target_hash"]
    assert back["target_hash"] == forward["source_hash"]


def test_check_schema_catches_broken_references(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text(json.dumps({"dialect": "sqlite", "tables": [
        {"name": "a", "columns": [{"name": "id", "type": "INTEGER", "is_primary_key": True}]},
        {"name": "b", "columns": [{"name": "id", "type": "INTEGER", "is_primary_key": True},
                                  {"name": "a_id", "type": "INTEGER"}],
         "foreign_keys": [{"name": "b_a", "columns": ["a_id"], "referenced_table": "nope",
                           "referenced_columns": ["id"]}]}]}))
    proc = run("plan", "--from", "s.json", "--to", "s.json", "--check-schema",
               cwd=tmp_path)
    assert_one_line_error(proc, 2, "unknown table main.nope")
