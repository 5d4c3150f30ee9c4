"""SQLite schema files: what the loader refuses instead of leaving out in silence."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("sql, name", [
    ("CREATE TABLE _lockplane_migrations (id INTEGER);", "_lockplane_migrations"),
    ("CREATE TABLE _LOCKPLANE_Backfills (id INTEGER);", "_LOCKPLANE_Backfills"),
    ("CREATE TABLE t (a INTEGER);\nCREATE INDEX _lockplane_i ON t (a);", "_lockplane_i"),
])
def test_lockplane_s_own_names_are_refused(tmp_path: Path, sql: str, name: str) -> None:
    """Introspection leaves out Lockplane's own _lockplane_ objects (its state), so a file
    defining one validated as if it had not (issue 11: refused, not silently ignored; as
    the PostgreSQL and MySQL loaders do)."""
    schema = tmp_path / "s.sql"
    schema.write_text(sql + "\n")
    r = subprocess.run([sys.executable, "-m", "lockplane", "validate", str(schema),
                        "--dialect", "sqlite"], capture_output=True, text=True, cwd=ROOT,
                       timeout=120)
    assert r.returncode == 2, r
    assert f"defines {name!r}" in r.stderr and r.stderr.count("\n") == 1, r.stderr
    schema.write_text(sql.replace("_lockplane_", "app_").replace("_LOCKPLANE_", "app_"))
    ok = subprocess.run([sys.executable, "-m", "lockplane", "validate", str(schema),
                         "--dialect", "sqlite"], capture_output=True, text=True, cwd=ROOT,
                        timeout=120)
    assert ok.returncode == 0, ok
