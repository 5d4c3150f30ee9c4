"""The first MySQL plans on MariaDB: a new table and a nullable column, planned from a
schema file (loaded in the sandbox), applied with history, re-planned empty, rolled
back to the exact hash before."""

from __future__ import annotations

import json
from pathlib import Path

from lockplane.dialects import connect
from tests.cli_inprocess import lockplane
from tests.test_mysql_sandbox import run

WANTED = """\
CREATE TABLE users (
  id int PRIMARY KEY,
  email varchar(100) NOT NULL,
  nickname varchar(50) COLLATE utf8mb4_bin DEFAULT 'it''s \\\\ me'
);
CREATE TABLE `order ``items"; DROP` (
  id bigint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id int NOT NULL,
  note text,
  price decimal(10,2) NOT NULL DEFAULT 0.00,
  ts timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  token char(36) DEFAULT (uuid()),
  twice int AS (user_id * 2) VIRTUAL,
  CONSTRAINT positive CHECK (user_id > 0)
) ENGINE=InnoDB ROW_FORMAT=DYNAMIC COLLATE=utf8mb4_unicode_ci STATS_PERSISTENT=0
  PAGE_COMPRESSED=1;
"""


def test_plan_apply_replan_rollback(mysql_dsn: str, tmp_path: Path) -> None:
    run(mysql_dsn, "CREATE TABLE users (id int PRIMARY KEY, email varchar(100) NOT NULL)",
        "INSERT INTO users VALUES (1, 'a@example.com')")
    with connect(mysql_dsn) as db:
        before = db.introspect().hash()
    wanted = tmp_path / "schema.sql"
    wanted.write_text(WANTED)
    plan = tmp_path / "plan.json"
    res = lockplane("plan", "--from", mysql_dsn, "--to", str(wanted), "-o", str(plan))
    assert res.code == 0, res.output
    data = json.loads(plan.read_text())
    assert data["dialect"] == "mysql" and data["source_hash"] == before
    kinds = [s["description"] for s in data["steps"]]
    assert kinds == ['Create table order `items"; DROP',
                     "Add column nickname varchar(50) to users"]
    create, add = data["steps"]
    assert create["sql"][0].startswith('CREATE TABLE `order ``items"; DROP` (')
    assert "AUTO_INCREMENT" in create["sql"][0] and "DEFAULT (uuid())" in create["sql"][0]
    assert create["sql"][0].endswith(" PAGE_COMPRESSED=1 ROW_FORMAT=DYNAMIC STATS_PERSISTENT=0")
    assert create["rollback"]["sql"] == ['DROP TABLE `order ``items"; DROP`']
    # The server's own algorithm, asked for explicitly (tests/test_mysql_locks.py).
    assert add["sql"] == ["ALTER TABLE `users` ADD COLUMN `nickname` varchar(50) "
                          "COLLATE utf8mb4_bin DEFAULT 'it''s \\\\ me', ALGORITHM=INSTANT"]
    assert add["rollback"]["sql"] == ["ALTER TABLE `users` DROP COLUMN `nickname`, "
                                      "ALGORITHM=INSTANT"]

    res = lockplane("apply", str(plan), "--target", mysql_dsn, "--auto-approve")
    assert res.code == 0, res.output
    with connect(mysql_dsn) as db:
        after = db.introspect()
        assert after.hash() == data["target_hash"]
        assert db.query("SELECT nickname FROM users") == [("it's \\ me",)]
        assert db.query("SELECT result FROM _lockplane_migrations") == [("applied",)]
    again = lockplane("plan", "--from", mysql_dsn, "--to", str(wanted))
    assert again.code == 0 and json.loads(again.stdout)["steps"] == [], again.output

    # Dropping the new column loses data: refused with what it would lose, counted on
    # the server, until the operator says so.
    res = lockplane("rollback", str(plan), "--target", mysql_dsn, "--auto-approve")
    assert res.code == 3
    assert "rollback will discard values in 1 row of users.nickname" in res.stderr
    res = lockplane("rollback", str(plan), "--target", mysql_dsn, "--auto-approve",
                    "--safety", "permissive")
    assert res.code == 0, res.output
    with connect(mysql_dsn) as db:
        assert db.introspect().hash() == before
        assert db.query("SELECT id, email FROM users") == [(1, "a@example.com")]


def test_a_hostile_schema_file_changes_nothing(mysql_dsn: str, tmp_path: Path) -> None:
    prod = mysql_dsn.rsplit("/", 1)[1]
    run(mysql_dsn, "CREATE TABLE users (id int PRIMARY KEY)")
    wanted = tmp_path / "schema.sql"
    wanted.write_text(f"CREATE TABLE users (id int PRIMARY KEY, x int);\n"
                      f"/*!50000 DROP TABLE `{prod}`.users */;\n")
    res = lockplane("plan", "--from", mysql_dsn, "--to", str(wanted))
    assert res.code == 2
    assert res.stderr.strip().splitlines()[-1].startswith(f"error: {wanted}:2: refused")
    assert run(mysql_dsn, "SELECT COUNT(*) FROM users") == [(0,)]


def test_bad_mysql_input_is_one_line_and_exit_2(mysql_dsn: str) -> None:
    unreachable = lockplane("introspect", "--target", "mysql://root:hunter2@127.0.0.1:1/x")
    unknown = lockplane("introspect", "--target", mysql_dsn + "?sslmode=require")
    no_db = lockplane("introspect", "--target", mysql_dsn.rsplit("/", 1)[0] + "/")
    for res, needle in ((unreachable, "cannot connect to mysql://root:***@127.0.0.1:1/x"),
                        (unknown, "unknown parameter 'sslmode'"),
                        (no_db, "names no database")):
        assert res.code == 2, res.output
        assert needle in res.stderr and "hunter2" not in res.output
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_introspect_as_sql(mysql_dsn: str) -> None:
    run(mysql_dsn, "CREATE TABLE `a``b` (id int PRIMARY KEY, v varchar(3) DEFAULT 'x')")
    res = lockplane("introspect", "--target", mysql_dsn, "--format", "sql")
    assert res.code == 0, res.output
    assert res.stdout.startswith("CREATE TABLE `a``b` (\n  `id` int(11) NOT NULL,")


def test_ddl_behind_a_metadata_lock_gives_up_within_its_budget(mysql_dsn: str,
                                                              tmp_path: Path) -> None:
    """A transaction that read the table holds its metadata lock: the ALTER waits
    lock_wait_timeout (the plan's lock timeout, in whole seconds), is retried within the
    lock-wait budget and then fails, instead of queueing every later query behind it."""
    import time

    run(mysql_dsn, "CREATE TABLE users (id int PRIMARY KEY)")
    wanted = tmp_path / "schema.sql"
    wanted.write_text("CREATE TABLE users (id int PRIMARY KEY, nickname varchar(50));\n")
    plan = tmp_path / "plan.json"
    assert lockplane("plan", "--from", mysql_dsn, "--to", str(wanted), "-o",
                     str(plan)).code == 0
    with connect(mysql_dsn) as blocker:
        blocker.execute("START TRANSACTION")
        blocker.query("SELECT * FROM users")
        started = time.monotonic()
        res = lockplane("apply", str(plan), "--target", mysql_dsn, "--auto-approve",
                        "--skip-shadow", "--lock-timeout-ms", "500", "--lock-wait-budget", "3")
        took = time.monotonic() - started
        blocker.execute("COMMIT")
    assert res.code == 1, res.output
    assert "lock wait timeout exceeded" in res.stderr and "lock-wait budget" in res.stderr
    assert took < 20
    with connect(mysql_dsn) as db:
        assert db.column_type(None, "users", "nickname") is None
    res = lockplane("apply", str(plan), "--target", mysql_dsn, "--auto-approve")
    assert res.code == 0, res.output


def test_partitioned_table(mysql_dsn: str, tmp_path: Path) -> None:
    wanted = tmp_path / "schema.sql"
    wanted.write_text(
        "CREATE TABLE events (id bigint NOT NULL, at date NOT NULL, PRIMARY KEY (id, at))\n"
        "PARTITION BY RANGE (year(at)) (PARTITION `p 2025` VALUES LESS THAN (2026),\n"
        "  PARTITION later VALUES LESS THAN (MAXVALUE));\n")
    plan = tmp_path / "plan.json"
    assert lockplane("plan", "--from", mysql_dsn, "--to", str(wanted), "-o",
                     str(plan)).code == 0
    assert "PARTITION BY RANGE (year(`at`)) (PARTITION `p 2025` VALUES LESS THAN (2026), " \
        "PARTITION `later` VALUES LESS THAN MAXVALUE)" in plan.read_text()
    res = lockplane("apply", str(plan), "--target", mysql_dsn, "--auto-approve")
    assert res.code == 0, res.output
    again = lockplane("plan", "--from", mysql_dsn, "--to", str(wanted))
    assert again.code == 0 and json.loads(again.stdout)["steps"] == [], again.output


HOSTILE_NAMES = ['a`b', 'say "hi"', "it's", "x; DROP TABLE users; --", "naïve ключ", "select"]


def test_hostile_names_round_trip(mysql_dsn: str, tmp_path: Path) -> None:
    """Tables, columns and constraints whose names need quoting: planned from a schema
    file, applied, read back equal, and re-planned empty."""
    from lockplane.dialects import get_dialect

    q = get_dialect("mysql").quote
    cols = ",\n  ".join(f"{q(n)} varchar(10) DEFAULT {get_dialect('mysql').literal(n[:10])}"
                        for n in HOSTILE_NAMES)
    text = "".join(
        f"CREATE TABLE {q(t)} (\n  id int PRIMARY KEY,\n  {cols},\n"
        f"  CONSTRAINT {q(t + ' ck')} CHECK ({q(HOSTILE_NAMES[0])} <> 'no')\n);\n"
        for t in HOSTILE_NAMES)
    wanted = tmp_path / "schema.sql"
    wanted.write_text(text)
    plan = tmp_path / "plan.json"
    res = lockplane("plan", "--from", mysql_dsn, "--to", str(wanted), "-o", str(plan))
    assert res.code == 0, res.output
    assert len(json.loads(plan.read_text())["steps"]) == len(HOSTILE_NAMES)
    res = lockplane("apply", str(plan), "--target", mysql_dsn, "--auto-approve")
    assert res.code == 0, res.output
    with connect(mysql_dsn) as db:
        live = db.introspect()
    assert sorted(t.name for t in live.tables) == sorted(HOSTILE_NAMES)
    assert [c.name for c in live.tables[0].columns] == ["id", *HOSTILE_NAMES]
    again = lockplane("plan", "--from", mysql_dsn, "--to", str(wanted))
    assert again.code == 0 and json.loads(again.stdout)["steps"] == [], again.output


def test_a_failed_step_leaves_the_ones_before_recorded_and_resumes(mysql_dsn: str,
                                                                  tmp_path: Path) -> None:
    """MySQL commits each DDL statement: a step after one that ran cannot roll it back.
    Each step runs alone with its progress recorded; the same plan again resumes."""
    run(mysql_dsn, "CREATE TABLE t1 (id int PRIMARY KEY)", "CREATE TABLE t2 (id int PRIMARY KEY)")
    wanted = tmp_path / "schema.sql"
    wanted.write_text("CREATE TABLE t1 (id int PRIMARY KEY, a int);\n"
                      "CREATE TABLE t2 (id int PRIMARY KEY, b int);\n")
    plan = tmp_path / "plan.json"
    assert lockplane("plan", "--from", mysql_dsn, "--to", str(wanted), "-o",
                     str(plan)).code == 0
    assert [s["transactional"] for s in json.loads(plan.read_text())["steps"]] == [False] * 2
    with connect(mysql_dsn) as blocker:
        blocker.execute("START TRANSACTION")
        blocker.query("SELECT * FROM t2")  # holds t2's metadata lock
        res = lockplane("apply", str(plan), "--target", mysql_dsn, "--auto-approve",
                        "--skip-shadow", "--lock-timeout-ms", "500", "--lock-wait-budget", "2")
        blocker.execute("COMMIT")
    assert res.code == 1, res.output
    assert "steps 1-1 stay applied" in res.stderr
    with connect(mysql_dsn) as db:
        assert db.column_type(None, "t1", "a") == "int(11)"
        assert db.query("SELECT result, steps_done FROM _lockplane_migrations") == [
            ("failed", 1)]
    res = lockplane("apply", str(plan), "--target", mysql_dsn, "--auto-approve")
    assert res.code == 0, res.output
    assert "resuming migration 1 after step 1" in res.stderr
    with connect(mysql_dsn) as db:
        assert db.column_type(None, "t2", "b") == "int(11)"
        assert db.query("SELECT result, steps_done FROM _lockplane_migrations") == [
            ("applied", 2)]
