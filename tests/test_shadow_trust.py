"""The shadow database runs a plan's SQL with the target's credentials, on the target's
own server unless told otherwise: nothing may reach it that the operator has not
confirmed (apply) or that apply itself would refuse (the flows' shadow before approval).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from conftest import pg_exec

from lockplane.integrity import seal_plan
from lockplane.plan import Plan

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def drop_dir() -> Iterator[Path]:
    """A directory the database server's OS user may write to: what a program the server
    runs (COPY ... TO PROGRAM) leaves there shows it ran."""
    d = Path(tempfile.mkdtemp(prefix="lockplane_shadow_", dir="/tmp"))
    d.chmod(0o777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _no_key() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "LOCKPLANE_PLAN_KEY"}


def test_nothing_of_an_unconfirmed_plan_runs_on_the_shadow(pg_dsn: str, tmp_path: Path,
                                                           drop_dir: Path) -> None:
    """A plan file edited after review (its plan_id written again: without a signing key
    an id proves only consistency) is shown and confirmed before any of it runs: the
    shadow copy, on the target's server with the target's credentials, ran it first, so
    a COPY ... TO PROGRAM ran before the operator said no (or before apply found stdin
    was no terminal)."""
    pg_exec(pg_dsn, "CREATE TABLE t (a int); INSERT INTO t VALUES (1)")
    schema = tmp_path / "s.sql"
    schema.write_text("CREATE TABLE t (a int, b int);\n")
    plan_file = tmp_path / "plan.json"
    env = _no_key()
    made = subprocess.run([sys.executable, "-m", "lockplane", "plan", "--from", pg_dsn,
                           "--to", str(schema), "-o", str(plan_file)], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=300)
    assert made.returncode == 0, made.stderr
    plan = Plan.model_validate(json.loads(plan_file.read_text()))
    plan.steps[0].sql = [f"COPY (SELECT 1) TO PROGRAM 'touch {drop_dir}/ran'",
                         *plan.steps[0].sql]
    edited = tmp_path / "edited.json"
    edited.write_text(seal_plan(plan, None).to_json())
    # stdin is no terminal: apply needs a confirmation it cannot get.
    proc = subprocess.run([sys.executable, "-m", "lockplane", "apply", str(edited),
                           "--target", pg_dsn], capture_output=True, text=True, cwd=ROOT,
                          env=env, input="yes\n", timeout=300)
    assert proc.returncode != 0
    assert "confirmation needed" in proc.stderr, proc.stderr
    assert "shadow validation passed" not in proc.stderr
    assert list(drop_dir.iterdir()) == []


def test_the_flow_judges_a_plan_before_its_shadow_runs(prefect_api: str, pg_dsn: str,
                                                       tmp_path: Path,
                                                       drop_dir: Path) -> None:
    """apply-migration validates on a shadow before the approval, and only apply_plan
    read the bodies of the functions a step evaluates (check_privileged_calls): a schema
    file's function called by a default filled for the rows the shadow copies ran there
    as the flow's user (a superuser here: COPY ... TO PROGRAM), and the refusal came
    after. The same check now runs before any shadow is made."""
    from flows.apply_migration import apply_migration
    from lockplane.errors import SafetyRefusal

    pg_exec(pg_dsn, "CREATE TABLE t (a int); INSERT INTO t VALUES (1), (2)")
    desired = tmp_path / "schema.sql"
    desired.write_text(
        "CREATE FUNCTION public.f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN\n"
        f"  EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch {drop_dir}/ran''';\n"
        "  RETURN 1;\nEND $$;\n"
        "CREATE TABLE t (a int, b int DEFAULT public.f());\n")
    state = apply_migration(target=pg_dsn, desired_schema=str(desired), return_state=True)
    assert state.is_failed()
    with pytest.raises(SafetyRefusal, match="privileged-function"):
        state.result()
    assert list(drop_dir.iterdir()) == []
    with psycopg.connect(pg_dsn) as conn:
        assert [r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 't' "
            "ORDER BY ordinal_position")] == ["a"]
