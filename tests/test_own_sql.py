"""Lockplane's own SQL means the server's functions and operators, whatever the database
holds: every command run against a database that holds, in ``public`` (on the search
path, after pg_catalog), a closer overload of every pg_catalog function and operator
Lockplane's code names (tests/canaries.py), calls none of them. Each overload raises and
counts its call in a sequence (outside any transaction: an error Lockplane caught still
counts)."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from tests.canaries import canary_hits, canary_sql
from tests.cli_inprocess import Result, lockplane
from tests.conftest import PG_ADMIN_DSN, pg_exec

TARGET = """
    CREATE TYPE mood AS ENUM ('a', 'b', 'c');
    CREATE DOMAIN dom AS integer CHECK (VALUE > 0);
    CREATE TABLE k (code varchar(20) PRIMARY KEY, m mood NOT NULL, d dom, n int,
                    label varchar(30), at timestamptz, doc jsonb);
    CREATE INDEX k_label ON k (label);
    CREATE TABLE e (m mood PRIMARY KEY, n smallint);
    CREATE TABLE dk (d dom PRIMARY KEY, n int, c char(3));
    CREATE TABLE two (a varchar(10), b smallint, n int, PRIMARY KEY (a, b));
    INSERT INTO k SELECT 'c' || g, 'a', g, g, 'x' || g, '2024-01-01', '{"a": 1}'
        FROM generate_series(1, 40) g;
    INSERT INTO e VALUES ('a', 1), ('b', 2);
    INSERT INTO dk SELECT g, g, 'abc' FROM generate_series(1, 30) g;
    INSERT INTO two SELECT 'x' || (g % 5), g, g FROM generate_series(1, 30) g;
"""


def _ok(res: Result, dsn: str, what: str) -> None:
    assert "lockplane canary hit public" not in res.output, f"{what}: {res.output[-2000:]}"
    assert canary_hits(dsn) == 0, f"{what} called a canary: {res.output[-2000:]}"
    assert res.code == 0, f"{what}: {res.output[-2000:]}"


def _desired(dsn: str, path: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    res = lockplane("introspect", "--target", dsn)
    assert res.code == 0, res.output[-2000:]
    schema = json.loads(res.stdout)
    edit({t["name"]: t for t in schema["tables"]})
    path.write_text(json.dumps(schema))
    return path


def _hostile(dsn: str, operators: bool = True) -> str:
    pg_exec(dsn, TARGET)
    pg_exec(dsn, canary_sql(dsn, extra_types=("public.mood", "public.dom"),
                            operators=operators))
    return dsn


@pytest.fixture
def hostile(pg_dsn: str) -> str:
    return _hostile(pg_dsn)


def _column(name: str, type_: str, default: str | None = None) -> dict[str, object]:
    return {"name": name, "type": type_, "nullable": True, "default": default}


@pytest.mark.long
def test_plan_apply_rollback_and_backfill_call_no_overload_of_the_database(
        hostile: str, tmp_path: Path) -> None:
    dsn = hostile
    _ok(lockplane("introspect", "--target", dsn), dsn, "introspect")

    def add(tables: dict[str, dict]) -> None:  # type: ignore[type-arg]
        tables["k"]["columns"].append(_column("extra", "integer", "1"))
        tables["dk"]["columns"].append(_column("extra", "character varying(5)"))

    desired = _desired(dsn, tmp_path / "desired.json", add)
    plan = tmp_path / "plan.json"
    _ok(lockplane("plan", "--from", dsn, "--to", str(desired), "-o", str(plan)), dsn, "plan")
    _ok(lockplane("plan", "--from", dsn, "--to", str(desired), "--analyze-locks",
                  "--with-data", "--shadow-db", PG_ADMIN_DSN), dsn, "plan --analyze-locks")
    _ok(lockplane("apply", str(plan), "--target", dsn, "--auto-approve"), dsn, "apply")
    _ok(lockplane("rollback", str(plan), "--target", dsn, "--auto-approve",
                  "--safety", "permissive"), dsn, "rollback")
    _ok(lockplane("apply", "--schema", str(desired), "--target", dsn, "--auto-approve"),
        dsn, "apply --schema")
    # keys: a varchar, an enum, a varchar and a smallint (a domain's is its base type's)
    for table, sets in (("k", "n = 8"), ("e", "n = 3"), ("two", "n = 1")):
        _ok(lockplane("backfill", "--target", dsn, "--table", table, "--set", sets,
                      "--batch-size", "7", "--auto-approve"), dsn, f"backfill {table}")
    with psycopg.connect(dsn) as conn:
        conn.execute("SET search_path = pg_catalog")
        assert conn.execute("SELECT pg_catalog.sum(n) FROM public.k").fetchone() == (320,)


def test_multi_phase_calls_no_overload_of_the_database(pg_dsn: str, tmp_path: Path) -> None:
    """Functions only (with the operators too, see
    test_a_database_s_own_equals_does_not_block_a_phase)."""
    dsn = _hostile(pg_dsn, operators=False)

    # (an int column: for a varchar one the same condition, varchar IS DISTINCT FROM
    # varchar, is ambiguous beside the canaries =(varchar, text) and =(text, varchar):
    # apply-phase asks the server before anything runs and stops there, exit 2
    # 'operator is not unique: character varying = character varying'; Lockplane's
    # generated condition does not name the column type's own = yet)
    def retype(tables: dict[str, dict]) -> None:  # type: ignore[type-arg]
        for c in tables["k"]["columns"]:
            if c["name"] == "n":
                c["name"], c["renamed_from"] = "qty", "n"

    desired = _desired(dsn, tmp_path / "mp.json", retype)
    mp = tmp_path / "mp-plan.json"
    _ok(lockplane("plan", "--multi-phase", "--from", dsn, "--to", str(desired),
                  "-o", str(mp)), dsn, "plan --multi-phase")
    phases = json.loads(mp.read_text())["total_phases"]
    for n in range(1, phases + 1):
        _ok(lockplane("apply-phase", str(mp), "--target", dsn, "--phase", str(n),
                      "--auto-approve", "--approver", "ops"), dsn, f"apply-phase {n}")
        _ok(lockplane("verify-phase", str(mp), "--target", dsn, "--phase", str(n)),
            dsn, f"verify-phase {n}")
    _ok(lockplane("phase-status", "--target", dsn), dsn, "phase-status")
    _ok(lockplane("rollback-phase", str(mp), "--target", dsn, "--to-phase", "0",
                  "--auto-approve"), dsn, "rollback-phase")


@pytest.mark.long
def test_drift_and_backups_call_no_overload_of_the_database(
        hostile: str, tmp_path: Path) -> None:
    dsn = hostile
    desired = _desired(dsn, tmp_path / "mp.json", lambda tables: None)
    assert desired.exists()
    (tmp_path / "lockplane.toml").write_text(
        f'[environments.prod]\ndatabase_url = "{dsn}"\nschema_path = "mp.json"\n')
    res = lockplane("drift", "check", "-e", "prod", "--format", "json", cwd=tmp_path)
    assert "lockplane canary hit public" not in res.output, res.output[-2000:]
    assert canary_hits(dsn) == 0, res.output[-2000:]
    assert res.code in (0, 4), res.output[-2000:]

    store = str(tmp_path / "backups")
    res = lockplane("backup", "create", "--target", dsn, "--storage", store, "--json")
    _ok(res, dsn, "backup create")
    backup_id = json.loads(res.stdout)["id"]
    _ok(lockplane("backup", "validate", backup_id, "--storage", store, "--server", PG_ADMIN_DSN,
                  "--target", dsn), dsn, "backup validate")


def test_a_database_s_own_equals_does_not_block_a_phase(hostile: str, tmp_path: Path) -> None:
    dsn = hostile

    def rename(tables: dict[str, dict]) -> None:  # type: ignore[type-arg]
        for c in tables["k"]["columns"]:
            if c["name"] == "n":
                c["name"], c["renamed_from"] = "qty", "n"

    mp = tmp_path / "mp-plan.json"
    _ok(lockplane("plan", "--multi-phase", "--from", dsn, "--to",
                  str(_desired(dsn, tmp_path / "mp.json", rename)), "-o", str(mp)),
        dsn, "plan --multi-phase")
    _ok(lockplane("apply-phase", str(mp), "--target", dsn, "--phase", "1",
                  "--auto-approve", "--approver", "ops"), dsn, "apply-phase 1")
