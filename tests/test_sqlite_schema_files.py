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


def test_statements_end_where_sqlite_ends_them(tmp_path: Path) -> None:
    """Two statements on one line are two (they were one, refused with 'You can only
    execute one statement at a time'); a ';' in a string, a comment or a trigger's body
    ends nothing; an error names the line its statement starts on."""
    schema = tmp_path / "s.sql"
    schema.write_text(
        "CREATE TABLE a (x INTEGER); CREATE TABLE b (y INTEGER);\n"
        "-- a note; with a semicolon\n"
        "CREATE TABLE c (v TEXT DEFAULT ';');\n"
        "CREATE TRIGGER tr AFTER INSERT ON a BEGIN INSERT INTO b VALUES (1); "
        "UPDATE b SET y = 2; END; CREATE INDEX i ON a (x)\n")
    r = subprocess.run([sys.executable, "-m", "lockplane", "validate", str(schema),
                        "--dialect", "sqlite"], capture_output=True, text=True, cwd=ROOT,
                       timeout=120)
    assert r.returncode == 0, r
    assert "3 table(s)" in r.stderr, r.stderr
    schema.write_text("CREATE TABLE a (x INTEGER);\n\nCREATE TABLE b (y INTEGER); "
                      "CREATE TABLE a (z INTEGER);\n")
    bad = subprocess.run([sys.executable, "-m", "lockplane", "validate", str(schema),
                          "--dialect", "sqlite"], capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    assert bad.returncode == 2, bad
    assert "s.sql:3:" in bad.stderr and "already exists" in bad.stderr, bad.stderr
