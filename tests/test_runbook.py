"""Recovery runbooks and `rollback --via-backup` on a real PostgreSQL database: a plan
applied with a backup taken first (backup_before), values written after it, then the
runbook's two ways back with what each loses, and the backup path taken for real."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from lockplane.backup import list_backups, open_storage
from tests.cli_inprocess import lockplane
from tests.conftest import pg_exec

SEED = """
CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL);
INSERT INTO users SELECT g, 'u' || g || '@x.org' FROM generate_series(1, 2000) g;
"""
DESIRED = """
CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL, nickname text);
"""


def _count(dsn: str, sql: str) -> int:
    with psycopg.connect(dsn) as c:
        return int(c.execute(sql).fetchone()[0])  # type: ignore[index]


def _staging_backs_up_first(project: Path, dsn: str) -> None:
    """lockplane.toml with one environment, staging, that backs up before every apply."""
    (project / "lockplane.toml").write_text(
        "[environments.staging]\n"
        f'database_url = "{dsn}"\n'
        'schema_path = "schema.sql"\n'
        'backup_before = "always"\n'
        'backup_storage = "backups"\n')


@pytest.fixture
def applied(pg_dsn: str, tmp_path: Path) -> tuple[str, Path]:
    """The plan (a nullable column) applied through an environment that backs up first,
    then 1,243 nicknames and 10 users written: (DSN, project directory)."""
    pg_exec(pg_dsn, SEED)
    (tmp_path / "schema.sql").write_text(DESIRED)
    _staging_backs_up_first(tmp_path, pg_dsn)
    r = lockplane("plan", "--from", pg_dsn, "--to", "schema.sql", "-o", "plan.json",
                  cwd=tmp_path)
    assert r.code == 0, r.output
    r = lockplane("apply", "plan.json", "--target-environment", "staging", "--auto-approve",
                  "--skip-shadow", cwd=tmp_path)
    assert r.code == 0, r.output
    pg_exec(pg_dsn, "UPDATE users SET nickname = 'n' || id WHERE id <= 1243;"
                    "INSERT INTO users SELECT g, 'late' || g FROM generate_series(2001, 2010) g")
    return pg_dsn, tmp_path


def test_runbook_compares_sql_rollback_and_backup_restore(applied: tuple[str, Path]) -> None:
    dsn, project = applied
    (backup,) = list_backups(open_storage(str(project / "backups")))
    assert backup.reason and backup.reason.startswith("before apply of plan")
    r = lockplane("runbook", "--plan", "plan.json", "--target-environment", "staging",
                  "-o", "runbook.md", cwd=project)
    assert r.code == 0, r.output
    md = (project / "runbook.md").read_text()
    assert "## A. SQL rollback" in md and "## B. Restore the backup" in md
    assert "loses 1,243 value(s)" in md  # stake.py counted on the live target
    assert f"Backup **{backup.id}**" in md and "taken by apply right before this plan" in md
    assert "of writes since backup" in md
    assert "10 row(s) inserted after the backup" in md
    assert "lockplane rollback plan.json --target-environment staging" in md
    assert "lockplane rollback --via-backup plan.json --target-environment staging" in md
    assert "## Verification" in md and "`public.users` 2,000" in md
    assert "migration #1" in md
    # Without a target: the procedure in general, no counts.
    r = lockplane("runbook", "--plan", "plan.json", cwd=project)
    assert r.code == 0 and "## A. SQL rollback" in r.stdout, r.output


def test_rollback_via_backup_restores_into_a_new_database(applied: tuple[str, Path],
                                                          pg_dsn_factory) -> None:
    dsn, project = applied
    into = pg_dsn_factory()
    r = lockplane("rollback", "--via-backup", "plan.json", "--target-environment", "staging",
                  "--into", into, "--auto-approve", cwd=project)
    assert r.code == 0, r.output
    assert "taken by apply right before this plan" in r.stderr
    assert _count(into, "SELECT count(*) FROM users") == 2000
    assert _count(into, "SELECT count(*) FROM information_schema.columns WHERE "
                        "table_name = 'users' AND column_name = 'nickname'") == 0
    assert _count(dsn, "SELECT count(*) FROM users") == 2010  # the target untouched
    # Over the target: --force, and the name confirmed.
    r = lockplane("rollback", "--via-backup", "plan.json", "--target-environment", "staging",
                  "--force", "--auto-approve", cwd=project)
    assert r.code == 2 and "--confirm" in r.stderr, r.output
    r = lockplane("rollback", "--via-backup", "plan.json", "--target-environment", "staging",
                  "--force", "--confirm", dsn.rsplit("/", 1)[1], cwd=project)
    assert r.code == 0, r.output
    assert _count(dsn, "SELECT count(*) FROM users") == 2000


def test_rollback_via_backup_without_a_backup(pg_dsn: str, tmp_path: Path) -> None:
    pg_exec(pg_dsn, SEED)
    (tmp_path / "schema.sql").write_text(DESIRED)
    r = lockplane("plan", "--from", pg_dsn, "--to", "schema.sql", "-o", "plan.json",
                  cwd=tmp_path)
    assert r.code == 0, r.output
    r = lockplane("rollback", "--via-backup", "plan.json", "--target", pg_dsn,
                  "--storage", str(tmp_path / "none"), "--auto-approve", cwd=tmp_path)
    assert r.code == 2 and "no backup of" in r.stderr and "never applied" in r.stderr, r.output


@pytest.mark.parametrize("archive", [True, False])
def test_a_drop_the_rollback_refills_is_not_called_lost(pg_dsn: str, tmp_path: Path,
                                                        archive: bool) -> None:
    """A dropped column whose values the step archived comes back with the SQL rollback:
    the runbook says so (and the rollback does it); with --no-archive only a backup has
    them."""
    pg_exec(pg_dsn, "CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL, legacy text);"
                    "INSERT INTO users SELECT g, 'u' || g, 'l' || g "
                    "FROM generate_series(1, 300) g")
    (tmp_path / "schema.sql").write_text(
        "CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL);\n")
    _staging_backs_up_first(tmp_path, pg_dsn)
    r = lockplane("plan", "--from", pg_dsn, "--to", "schema.sql", "-o", "plan.json",
                  "--archive" if archive else "--no-archive", cwd=tmp_path)
    assert r.code == 0, r.output
    r = lockplane("apply", "plan.json", "--target-environment", "staging", "--auto-approve",
                  "--skip-shadow", "--safety", "permissive", cwd=tmp_path)
    assert r.code == 0, r.output
    r = lockplane("runbook", "--plan", "plan.json", "--target-environment", "staging",
                  "-o", "runbook.md", cwd=tmp_path)
    assert r.code == 0, r.output
    md = (tmp_path / "runbook.md").read_text()
    sql_row = next(ln for ln in md.splitlines() if ln.startswith("| SQL rollback |"))
    if archive:
        assert "puts back from Lockplane's archive" in sql_row, sql_row
        assert "cannot bring back" not in sql_row and "only a backup has them" not in md
        assert "destroyed data that only the backup holds" not in md
    else:
        assert "cannot bring back what the migration destroyed" in sql_row, sql_row
        assert "only a backup has them" in md and "puts back" not in sql_row
    r = lockplane("rollback", "plan.json", "--target-environment", "staging",
                  "--auto-approve", "--safety", "permissive", cwd=tmp_path)
    assert r.code == 0, r.output
    back = _count(pg_dsn, "SELECT count(*) FROM users WHERE legacy = 'l' || id")
    assert back == (300 if archive else 0)
