"""Data paths on the real MariaDB (issue 15): a declared fill (``-- lockplane:fill-with``)
runs in the MySQL keyset batches, its expression read with sqlglot's MySQL grammar; a
table without a key to walk gets the plain UPDATE; and no engine code outside
``lockplane/dialects/`` tests a dialect's name.

One MariaDB database for the whole module (``db``: emptied before each test).
"""

from __future__ import annotations

import ast
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest

from lockplane.dialects.mysql import parse_dsn, with_database
from lockplane.errors import BadInput
from lockplane.fill import read_annotations
from tests.cli_inprocess import lockplane
from tests.conftest import MYSQL_SERVER

ROOT = Path(__file__).resolve().parent.parent


def run_sql(dsn: str, *statements: str) -> None:
    with pymysql.connect(**parse_dsn(dsn).kwargs(), autocommit=True) as conn, \
            conn.cursor() as cur:
        for s in statements:
            cur.execute(s)


def rows(dsn: str, sql: str) -> list[tuple[Any, ...]]:
    with pymysql.connect(**parse_dsn(dsn).kwargs(), autocommit=True) as conn, \
            conn.cursor() as cur:
        cur.execute(sql)
        return list(cur.fetchall())


@pytest.fixture(scope="module")
def module_db() -> Iterator[str]:
    name = f"lp_data_{secrets.token_hex(5)}"
    run_sql(MYSQL_SERVER, f"CREATE DATABASE `{name}`")
    try:
        yield with_database(MYSQL_SERVER, name)
    finally:
        run_sql(MYSQL_SERVER, f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture
def db(module_db: str) -> str:
    """The module's database, every table dropped (Lockplane's state tables too)."""
    names = [r[0] for r in rows(module_db, "SELECT TABLE_NAME FROM information_schema."
                                           "TABLES WHERE TABLE_SCHEMA = DATABASE()")]
    run_sql(module_db, "SET SESSION foreign_key_checks = 0",
            *[f"DROP TABLE IF EXISTS `{n.replace('`', '``')}`" for n in names])
    return module_db


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _plan(src: str, to: Path, out: Path, *extra: str) -> dict[str, Any]:
    res = lockplane("plan", "--from", src, "--to", str(to), "--output", str(out), *extra)
    assert res.code == 0, res.output
    return json.loads(out.read_text())


# ------------------------------------------------------- no dialect names in the engine
_NAMES = {"postgres", "sqlite", "mysql", "libsql", "mariadb"}


def _names_a_dialect(node: ast.expr) -> bool:
    if isinstance(node, ast.Attribute):
        return node.attr in ("name", "dialect")
    return isinstance(node, ast.Name) and node.id in ("dialect", "dialect_name")


def test_no_dialect_name_tests_outside_dialects() -> None:
    """Engine code asks the dialect (capability flags, methods, ``sql_<family>``), never
    compares its name: ``x.name == "sqlite"``, ``dialect in ("postgres", ...)``."""
    found = []
    for path in sorted((ROOT / "lockplane").rglob("*.py")):
        if "dialects" in path.relative_to(ROOT / "lockplane").parts:
            continue
        text = path.read_text()
        if "is_postgres" in text:
            found.append(f"{path.relative_to(ROOT)}: is_postgres")
        if not any(f'"{n}"' in text or f"'{n}'" in text for n in _NAMES):
            continue  # (no literal to compare with: not parsed)
        for node in ast.walk(ast.parse(text, str(path))):
            if not isinstance(node, ast.Compare):
                continue
            parts = [node.left, *node.comparators]
            literal = any(isinstance(p, ast.Constant) and p.value in _NAMES
                          or isinstance(p, ast.Tuple | ast.List | ast.Set) and any(
                              isinstance(e, ast.Constant) and e.value in _NAMES
                              for e in p.elts) for p in parts)
            if literal and any(_names_a_dialect(p) for p in parts):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    assert found == []


# ------------------------------------------------------------------- fill-with
USERS = [
    "CREATE TABLE users (id bigint PRIMARY KEY, name varchar(50), email varchar(80))",
    "INSERT INTO users SELECT seq, IF(seq % 10 = 0, NULL, CONCAT('n', seq)), "
    "CONCAT('E', seq) FROM seq_1_to_3000",
]
WANTED = """
CREATE TABLE users (
    id bigint PRIMARY KEY,
    name varchar(50) NOT NULL, -- lockplane:fill-with CONCAT('anon-', id)
    email varchar(80),
    -- lockplane:fill-with CONCAT(LOWER(`email`), '#', id)
    `Handle` varchar(120) NOT NULL DEFAULT 'x' UNIQUE
);
"""


def test_fill_in_keyset_batches_apply_rollback(db: str, tmp_path: Path) -> None:
    """Plan, apply (each fill a batched, checkpointed backfill walking the primary key),
    re-plan empty, rollback to the exact previous hash."""
    run_sql(db, *USERS)
    snapshot = "SELECT id, name, email FROM users ORDER BY id"
    before = rows(db, snapshot)
    schema = _write(tmp_path, "schema.sql", WANTED)
    plan_path = tmp_path / "plan.json"
    plan = _plan(db, schema, plan_path)
    fills = [s for s in plan["steps"] if s["kind"] == "backfill_column"]
    assert [f["backfill"]["column"] for f in fills] == ["Handle", "name"]
    # The existing column's fill records the rows it changes, by id, for the rollback.
    assert "archive" not in fills[0]["backfill"]  # (Handle is new: its undo drops it)
    assert fills[1]["backfill"]["archive"]["key"] == ["id"]
    assert [t["kind"] for t in fills[1]["rollback"]["then"]] == ["unfill_column"]
    assert any("Records the key (id) and old value" in m for m in fills[1]["messages"])
    for f in fills:
        # MySQL's quoting in what the batches run (the step's own SQL says the same)
        col = f["backfill"]["column"]
        assert f["backfill"]["where"] == f"`{col}` IS NULL"
        assert f["sql"][-1].endswith(f"WHERE `{col}` IS NULL")
        assert f["safety"] == "review" and f["findings"][0]["rule"] == "fill-with"
        assert f["backfill"]["not_null"] is True
    assert fills[0]["backfill"]["expression"] == "CONCAT(LOWER(`email`), '#', id)"
    assert any("fills 3,000 row(s)" in m for m in fills[0]["messages"])
    res = lockplane("apply", str(plan_path), "--target", db, "--auto-approve")
    assert res.code == 0, res.output
    assert "backfilled 3000 row(s) of users.Handle in batches" in res.output
    assert "backfilled 300 row(s) of users.name in batches" in res.output
    assert rows(db, "SELECT sum(name = CONCAT('anon-', id)), sum(`Handle` = CONCAT("
                    "LOWER(email), '#', id)), count(*) FROM users") == [(300, 3000, 3000)]
    # The batches' checkpoints: done, walking the primary key.
    state = rows(db, "SELECT status, rows_updated, spec FROM _lockplane_backfills "
                     "ORDER BY rows_updated")
    assert [(s, n) for s, n, _ in state] == [("done", 300), ("done", 3000)]
    assert all(json.loads(spec)["key_columns"] == ["id"] for _, _, spec in state)
    assert rows(db, "SELECT IS_NULLABLE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA "
                    "= DATABASE() AND TABLE_NAME = 'users' AND COLUMN_NAME IN ('name', "
                    "'Handle') ORDER BY COLUMN_NAME") == [("NO",), ("NO",)]
    run_sql(db, "INSERT INTO users (id, name) VALUES (5000, 'z')")
    assert rows(db, "SELECT `Handle` FROM users WHERE id = 5000") == [("x",)]
    run_sql(db, "DELETE FROM users WHERE id = 5000")
    assert _plan(db, schema, tmp_path / "again.json")["steps"] == []

    # Rows written after the fill are the application's: the rollback leaves them be.
    run_sql(db, "INSERT INTO users (id, name, email) VALUES (9001, 'late', 'L')")
    res = lockplane("rollback", str(plan_path), "--target", db, "--auto-approve",
                    "--safety", "permissive")
    assert res.code == 0, res.output
    run_sql(db, "DELETE FROM users WHERE id = 9001")
    assert rows(db, snapshot) == before  # the 300 filled names are NULL again
    assert rows(db, "SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
                    "DATABASE() AND TABLE_NAME LIKE '\\_lockplane\\_fill%'") == [(0,)]
    res = lockplane("plan", "--from", db, "--to", str(schema))
    assert res.code == 0 and '"source_hash": "' + plan["source_hash"] in res.stdout


def test_fill_giving_null_fails_before_writing(db: str, tmp_path: Path) -> None:
    """The batches' read-only check of every row refuses an expression that leaves a
    row NULL in a column about to be NOT NULL, before any write."""
    run_sql(db, *USERS)
    schema = _write(tmp_path, "s.sql", "CREATE TABLE users (id bigint PRIMARY KEY, email "
                    "varchar(80),\n  name varchar(50) NOT NULL -- lockplane:fill-with "
                    "UPPER(name)\n);")
    plan_path = tmp_path / "p.json"
    _plan(db, schema, plan_path)
    res = lockplane("apply", str(plan_path), "--target", db, "--auto-approve", "--skip-shadow")
    assert res.code == 1, res.output
    assert "would set NOT NULL column name to NULL for row id=10; nothing was written" \
        in res.output, res.output
    assert rows(db, "SELECT count(*) FROM users WHERE BINARY name = UPPER(name)") == [(0,)]


def test_table_without_key_gets_one_update(db: str, tmp_path: Path) -> None:
    """No primary key and no unique key of NOT NULL columns: nothing for keyset batches
    to walk, so the fill is the step's one UPDATE."""
    run_sql(db, "CREATE TABLE log (at int, msg varchar(20))",
            "INSERT INTO log SELECT seq, IF(seq % 2, NULL, 'm') FROM seq_1_to_100")
    schema = _write(tmp_path, "s.sql", "CREATE TABLE log (at int,\n  msg varchar(20) NOT "
                    "NULL -- lockplane:fill-with CONCAT('at ', at)\n);")
    plan_path = tmp_path / "p.json"
    plan = _plan(db, schema, plan_path)
    (fill,) = [s for s in plan["steps"] if s["kind"] == "backfill_column"]
    assert fill.get("backfill") is None
    res = lockplane("apply", str(plan_path), "--target", db, "--auto-approve")
    assert res.code == 0, res.output
    assert rows(db, "SELECT count(*) FROM log WHERE msg = CONCAT('at ', at)") == [(50,)]


@pytest.mark.parametrize(("expr", "why"), [
    ("SLEEP(1)", "calls SLEEP(), which has side effects"),
    ("GET_LOCK('x', 1)", "calls GET_LOCK()"),
    ("name; DROP TABLE users", "not statements"),
    ("@v", "user variable"),
    ('"text"', "double-quoted text"),
    ("name /* hidden */", "comments are not allowed"),
    ("other.name", "only the row's own columns (of users)"),
    ("db.users.name", "only the row's own columns (of users)"),
    ("CONCAT((SELECT name FROM users LIMIT 1 FOR UPDATE), 1)", "row locks"),
    ("name, email", "exactly one expression"),
])
def test_hostile_fill_is_bad_input(expr: str, why: str, tmp_path: Path) -> None:
    """Checked with sqlglot's MySQL grammar (no server needed to refuse these), naming
    file:line; column names of the row only (a subquery's are its own)."""
    from lockplane.fill import check_fill
    from lockplane.model import Column, Table

    text = f"CREATE TABLE users (id bigint,\n  name text -- lockplane:fill-with {expr}\n);"
    table = Table(name="users", columns=[Column(name="id", type="bigint"),
                                         Column(name="name", type="text")])
    with pytest.raises(BadInput, match="f.sql:2: lockplane:fill-with: ") as exc:
        for d in read_annotations(Path("f.sql"), text, "mysql"):
            check_fill(d.expression, f"{d.where}: lockplane:fill-with", table,
                       table.columns[1], "mysql")
    assert why in str(exc.value)


def test_mysql_fill_reads_mysql() -> None:
    """Backquotes, backslash escapes and a subquery over the same table: MySQL's SQL,
    taken as written (PostgreSQL's parser would refuse or misread them)."""
    text = ("CREATE TABLE users (id bigint, name text,\n  c text -- lockplane:fill-with "
            "CONCAT(`name`, '\\\\', (SELECT count(*) FROM users u2 WHERE u2.id < users.id))"
            "\n);")
    (d,) = read_annotations(Path("f.sql"), text, "mysql")
    assert d.expression == ("CONCAT(`name`, '\\\\', (SELECT count(*) FROM users u2 "
                            "WHERE u2.id < users.id))")
    from lockplane.dialects.mysql.options import row_columns

    assert row_columns(d.expression, "x", "users") == {"name"}


def test_bad_fill_exits_2_nothing_changes(db: str, tmp_path: Path) -> None:
    run_sql(db, *USERS)
    schema = _write(tmp_path, "s.sql", "CREATE TABLE users (id bigint PRIMARY KEY, name "
                    "varchar(50), email varchar(80),\n  c int NOT NULL -- lockplane:fill-with "
                    "BENCHMARK(10, 1)\n);")
    res = lockplane("plan", "--from", db, "--to", str(schema))
    assert res.code == 2, res.output
    assert res.stderr.strip().splitlines()[-1].startswith(f"error: {schema}:2: ")
    assert "Traceback" not in res.output
    assert rows(db, "SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
                    "DATABASE()") == [(1,)]


# ------------------------------------------------------------- dropped values archived
LONG = "orders_with_a_rather_long_name_kept"  # its archive's name is cut to 64 characters


def test_dropped_values_archived_and_refilled(db: str, tmp_path: Path) -> None:
    """A plan's DROP COLUMN first copies the values (keyed by the primary key) into a
    _lockplane_ archive; the rollback re-adds the columns, refills them from it, gives a
    NOT NULL column its NOT NULL back, drops the archives and ends at the exact hash."""
    run_sql(db, f"CREATE TABLE `{LONG}` (id bigint PRIMARY KEY, "
                "code varchar(20) NOT NULL, qty int, state enum('new','done'), "
                "a_rather_long_column_name_too int, keep int)",
            f"INSERT INTO `{LONG}` SELECT seq, CONCAT('c', seq), IF(seq % 3 = 0, NULL, seq), "
            "IF(seq % 2, 'new', 'done'), seq * 2, seq FROM seq_1_to_2000")
    before = rows(db, f"SELECT sum(qty), sum(state = 'new'), sum(code = CONCAT('c', id)), "
                      f"sum(a_rather_long_column_name_too) FROM `{LONG}`")
    schema = _write(tmp_path, "s.sql", f"CREATE TABLE `{LONG}` (id bigint PRIMARY KEY, "
                    "keep int);")
    plan_path = tmp_path / "p.json"
    plan = _plan(db, schema, plan_path)
    drops = [s for s in plan["steps"] if s["kind"] == "drop_column"]
    assert len(drops) == 4
    for s in drops:
        assert s["sql"][0].startswith("CREATE TABLE IF NOT EXISTS `_lockplane_drop_")
        assert s["sql"][-1].startswith(f"ALTER TABLE `{LONG}` DROP COLUMN ")
        # (the copy reads a snapshot: under REPEATABLE READ it would share-lock every row
        # it reads, and writes to them would wait for it)
        assert s["sql"][-3] == "SET TRANSACTION ISOLATION LEVEL READ COMMITTED"
        assert s["sql"][-2].startswith("INSERT INTO `_lockplane_drop_")
        assert s["lock"]["scans_table"] is True
        assert "refills it from the archive" in s["rollback"]["note"]
        assert any("before the drop, for a rollback to put back" in m for m in s["messages"])
    res = lockplane("apply", str(plan_path), "--target", db, "--auto-approve",
                    "--safety", "permissive")
    assert res.code == 0, res.output
    archives = [r[0] for r in rows(db, "SELECT TABLE_NAME FROM information_schema.TABLES "
                                       "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME "
                                       "LIKE '\\_lockplane\\_drop\\_%' ORDER BY 1")]
    assert len(archives) == 4 and all(len(a) <= 64 for a in archives)
    assert sorted(rows(db, f"SELECT count(*) FROM `{a}`")[0][0] for a in archives) \
        == [1334, 2000, 2000, 2000]
    # The archives are Lockplane's own: not in the schema, so nothing left to plan.
    assert _plan(db, schema, tmp_path / "again.json")["steps"] == []

    res = lockplane("rollback", str(plan_path), "--target", db, "--auto-approve",
                    "--safety", "permissive")
    assert res.code == 0, res.output
    assert f"database hash {plan['source_hash'][:12]}" in res.output
    assert rows(db, f"SELECT sum(qty), sum(state = 'new'), sum(code = CONCAT('c', id)), "
                    f"sum(a_rather_long_column_name_too) FROM `{LONG}`") == before
    assert rows(db, "SELECT IS_NULLABLE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA "
                    f"= DATABASE() AND TABLE_NAME = '{LONG}' AND COLUMN_NAME = 'code'") \
        == [("NO",)]
    assert rows(db, "SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
                    "DATABASE() AND TABLE_NAME LIKE '\\_lockplane\\_drop\\_%'") == [(0,)]


def test_rows_written_after_the_drop_keep_nullable(db: str, tmp_path: Path) -> None:
    """A row written after the drop has no archived value: the column comes back
    nullable, and the rollback says how many rows have none (it does not fail)."""
    run_sql(db, "CREATE TABLE t (id int PRIMARY KEY, code varchar(9) NOT NULL)",
            "INSERT INTO t SELECT seq, CONCAT('c', seq) FROM seq_1_to_50")
    schema = _write(tmp_path, "s.sql", "CREATE TABLE t (id int PRIMARY KEY);")
    plan_path = tmp_path / "p.json"
    _plan(db, schema, plan_path)
    res = lockplane("apply", str(plan_path), "--target", db, "--auto-approve",
                    "--safety", "permissive")
    assert res.code == 0, res.output
    run_sql(db, "INSERT INTO t VALUES (51)")
    res = lockplane("rollback", str(plan_path), "--target", db, "--auto-approve",
                    "--safety", "permissive")
    assert res.code == 0, res.output
    assert "t.code stays nullable: 1 row(s) have no value" in res.output, res.output
    assert rows(db, "SELECT count(*), sum(code = CONCAT('c', id)) FROM t") == [(51, 50)]


# ------------------------------------------------------------- the Prefect flow
_FLOW_RUN = """
import sys
from flows.backfill import backfill
backfill(target=sys.argv[1], table="accounts", set="cents = balance * 100 + id",
         batch_size=100, max_rows_per_second=3000)
"""


def test_backfill_flow_killed_midway_resumes(prefect_api: str, db: str) -> None:
    """The ``backfill`` flow on MariaDB: a run SIGKILLed midway (batches committed, its
    GET_LOCK gone with its session), then the same flow again resumes from the
    checkpoint; every row updated exactly once (a trigger counts the updates)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from flows.backfill import backfill as backfill_flow
    from lockplane.backfill import backfill_status

    total = 6_000
    run_sql(db, "CREATE TABLE accounts (id bigint PRIMARY KEY, balance int NOT NULL, "
                "cents bigint, updates int NOT NULL DEFAULT 0)",
            "CREATE TRIGGER counter BEFORE UPDATE ON accounts FOR EACH ROW "
            "SET NEW.updates = OLD.updates + 1",
            f"INSERT INTO accounts (id, balance) SELECT seq * 7, seq % 997 "
            f"FROM seq_1_to_{total}")

    def done() -> int:
        got = rows(db, "SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA "
                       "= DATABASE() AND TABLE_NAME = '_lockplane_backfills'")
        if not got[0][0]:
            return 0
        return int(rows(db, "SELECT coalesce(sum(rows_updated), 0) FROM "
                            "_lockplane_backfills")[0][0])

    proc = subprocess.Popen([sys.executable, "-c", _FLOW_RUN, db], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ})
    try:
        deadline = time.monotonic() + 120
        while done() < 500 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    at_kill = done()
    assert 0 < at_kill < total, at_kill
    deadline = time.monotonic() + 10
    while backfill_status(db)[0].status != "interrupted":
        assert time.monotonic() < deadline, backfill_status(db)
        time.sleep(0.05)

    state = backfill_flow(target=db, table="accounts", set="cents = balance * 100 + id",
                          return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    assert result["status"] == "done"
    assert rows(db, "SELECT count(*), sum(cents = balance * 100 + id), min(updates), "
                    "max(updates) FROM accounts") == [(total, total, 1, 1)]
    (status,) = backfill_status(db)
    assert (status.status, status.rows_updated) == ("done", total)


def test_apply_killed_mid_fill_resumes(db: str, tmp_path: Path) -> None:
    """SIGKILL while an apply's fill runs: the next apply marks the run interrupted,
    resumes after the step it had finished, and the fill carries on from its checkpoint
    (rows done stay done) to the plan's target."""
    import os
    import signal
    import subprocess
    import sys
    import time

    # More rows than the largest batch (max_batch_size 50,000): on a quiet machine the
    # first batch's estimate may take every row of a small table at once.
    total = 120_000
    run_sql(db, "CREATE TABLE users (id bigint PRIMARY KEY, email varchar(80))",
            f"INSERT INTO users SELECT seq, CONCAT('e', seq) FROM seq_1_to_{total}")
    schema = _write(tmp_path, "s.sql", "CREATE TABLE users (id bigint PRIMARY KEY, email "
                    "varchar(80),\n  code varchar(64) NOT NULL -- lockplane:fill-with "
                    "MD5(email)\n);")
    plan_path = tmp_path / "p.json"
    plan = _plan(db, schema, plan_path)
    cmd = [sys.executable, "-m", "lockplane", "apply", str(plan_path), "--target", db,
           "--auto-approve", "--skip-shadow"]

    def done() -> int:
        got = rows(db, "SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA "
                       "= DATABASE() AND TABLE_NAME = '_lockplane_backfills'")
        return int(rows(db, "SELECT coalesce(max(rows_updated), 0) FROM "
                            "_lockplane_backfills")[0][0]) if got[0][0] else 0

    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env={**os.environ})
    try:
        deadline = time.monotonic() + 120
        while done() < 500 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    at_kill = done()
    assert 0 < at_kill < total, at_kill
    res = lockplane("apply", str(plan_path), "--target", db, "--auto-approve")
    assert res.code == 0, res.output
    assert "marked interrupted" in res.output
    (line,) = [x for x in res.output.splitlines() if "backfilled" in x]
    assert int(line.split()[1]) <= total - at_kill, (line, at_kill)
    assert rows(db, "SELECT count(*), sum(code = MD5(email)) FROM users") == [(total, total)]
    assert rows(db, "SELECT result FROM _lockplane_migrations ORDER BY id") \
        == [("interrupted",), ("applied",)]
    assert _plan(db, schema, tmp_path / "again.json")["steps"] == []
    assert plan["steps"][-1]["kind"] == "alter_column"
