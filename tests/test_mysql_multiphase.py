"""Multi-phase migrations on the real MariaDB: the sync triggers that keep a renamed
column and its old name equal while old and new code run side by side (BEFORE INSERT /
BEFORE UPDATE, ``SET NEW.x``), the patterns not planned on MySQL refused in one line
(exit 2), and rename column end to end (plan, apply-phase 1..3, rollback-phase)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pymysql

from lockplane.dialects import get_dialect
from lockplane.dialects.mysql import parse_dsn
from lockplane.multiphase.sync import SyncPair, sync_changes
from tests.cli_inprocess import lockplane

V1 = """\
CREATE TABLE users (id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
                    email varchar(200) NOT NULL, name varchar(50));
CREATE INDEX users_name_idx ON users (name);
"""


def q(dsn: str, sql: str) -> list[tuple[Any, ...]]:
    with pymysql.connect(**parse_dsn(dsn).kwargs(), autocommit=True) as conn, \
            conn.cursor() as cur:
        cur.execute(sql)
        return list(cur.fetchall())


def _start(tmp_path: Path, dsn: str) -> None:
    (tmp_path / "v1.sql").write_text(V1)
    r = lockplane("apply", "--schema", "v1.sql", "--target", dsn, "--auto-approve",
                  "--skip-shadow", cwd=tmp_path)
    assert r.code == 0, r.output
    q(dsn, "INSERT INTO users (email, name) SELECT CONCAT('u', seq, '@x'), 'n' "
           "FROM seq_1_to_300")


def test_sync_triggers_keep_both_columns(mysql_dsn: str, tmp_path: Path) -> None:
    _start(tmp_path, mysql_dsn)
    d = get_dialect("mysql")
    q(mysql_dsn, "ALTER TABLE users ADD COLUMN email_address varchar(200)")
    with d.connect(mysql_dsn) as db:
        table = db.introspect().table("", "users")
        assert table is not None
        changes = sync_changes(SyncPair(table, "email", "email_address"), d)
        for c in changes:
            for sql in c.sql(d):
                db.execute(sql)
        # Introspection reads back exactly what the plan's model says (exact hashes).
        live = db.introspect().table("", "users")
        assert live is not None
        assert sorted((t.name, t.definition) for t in live.triggers) == sorted(
            (c.trigger.name, c.trigger.definition) for c in changes)  # type: ignore[attr-defined]
    # Old code writes email only; new code writes email_address only (email is NOT NULL:
    # the BEFORE trigger fills it before the server checks).
    q(mysql_dsn, "INSERT INTO users (email, name) VALUES ('old@x', 'o')")
    q(mysql_dsn, "INSERT INTO users (email_address, name) VALUES ('new@x', 'n')")
    q(mysql_dsn, "UPDATE users SET email_address = 'changed@x' WHERE id = 1")
    q(mysql_dsn, "UPDATE users SET email = 'oldchanged@x' WHERE id = 2")
    q(mysql_dsn, "UPDATE users SET name = 'other' WHERE id = 3")
    assert q(mysql_dsn, "SELECT email, email_address FROM users WHERE id IN (1, 2, 3) "
                        "OR name IN ('o', 'n') AND id > 300 ORDER BY id") == [
        ("changed@x", "changed@x"), ("oldchanged@x", "oldchanged@x"), ("u3@x", None),
        ("old@x", "old@x"), ("new@x", "new@x")]


def test_patterns_not_planned_on_mysql_are_refused(mysql_dsn: str, tmp_path: Path) -> None:
    _start(tmp_path, mysql_dsn)
    before = q(mysql_dsn, "SELECT * FROM users ORDER BY id")
    r = lockplane("plan-multiphase", "--pattern", "drop_column", "--table", "users",
                  "--from", mysql_dsn, "--column", "name", "-o", "mp.json", cwd=tmp_path)
    assert r.code == 2, r.output
    assert r.stderr.strip() == (
        "error: multi-phase drop_column is not supported on mysql yet (only rename_column); "
        "plan it in one phase with 'lockplane plan', or split the change by hand")
    (tmp_path / "v2.sql").write_text(V1.replace(", name varchar(50)", "").replace(
        "CREATE INDEX users_name_idx ON users (name);\n", ""))
    r = lockplane("plan", "--from", mysql_dsn, "--to", "v2.sql", "--multi-phase", "-o",
                  "mp.json", cwd=tmp_path)
    assert r.code == 2 and len(r.stderr.strip().splitlines()) == 1, r.output
    assert "multi-phase drop_column is not supported on mysql" in r.stderr
    assert not (tmp_path / "mp.json").exists()
    assert q(mysql_dsn, "SELECT * FROM users ORDER BY id") == before


def test_rename_column_end_to_end(mysql_dsn: str, tmp_path: Path) -> None:
    _start(tmp_path, mysql_dsn)
    q(mysql_dsn, "CREATE INDEX users_email_idx ON users (email)")
    r = lockplane("plan-multiphase", "--pattern", "rename_column", "--table", "users",
                  "--from", mysql_dsn, "--column", "email", "--to-name", "email_address",
                  "-o", "mp.json", cwd=tmp_path)
    assert r.code == 0, r.output
    mp = json.loads((tmp_path / "mp.json").read_text())
    # Every ALTER of a phase, forward or rollback, carries the server's decision: NOT NULL
    # -> NULL (the migrate phase's rollback) is no INSTANT on MariaDB 10.11 (error 1845).
    for phase in mp["phases"]:
        for step in [*phase["plan"]["steps"], *phase["rollback"]["plan"]["steps"]]:
            for sql in step["sql"]:
                if sql.startswith("ALTER TABLE"):
                    assert "ALGORITHM=" in sql, sql
                    assert step["lock"]["server"], step
    undo = [s for s in mp["phases"][1]["rollback"]["plan"]["steps"]
            if "drop not null" in s["description"]]
    assert undo and all("ALGORITHM=INSTANT" not in sql for s in undo for sql in s["sql"])
    total = mp["total_phases"]
    for n in range(1, total + 1):
        r = lockplane("apply-phase", "mp.json", "--phase", str(n), "--target", mysql_dsn,
                      "--auto-approve", "--skip-shadow", cwd=tmp_path)
        assert r.code == 0, r.output
        if n == 1:
            q(mysql_dsn, "INSERT INTO users (email, name) VALUES ('old@x', 'o')")
            q(mysql_dsn, "INSERT INTO users (email_address, name) VALUES ('new@x', 'n')")
        if n < total:
            r = lockplane("approve", "mp.json", "--target", mysql_dsn, "--phase", str(n),
                          "--approver", "myfix", cwd=tmp_path)
            assert r.code == 0, r.output
    assert q(mysql_dsn, "SELECT count(*) FROM users WHERE email_address LIKE '%@x'") == [(302,)]
    r = lockplane("rollback-phase", "mp.json", "--target", mysql_dsn, "--to-phase", "0",
                  "--auto-approve", "--safety", "permissive", cwd=tmp_path)
    assert r.code == 0, r.output
    assert q(mysql_dsn, "SELECT count(*) FROM users WHERE email LIKE '%@x'") == [(302,)]
