"""Lock facts of the MySQL change kinds that are no column or key change, on the real
MariaDB (issue 15): DROP INDEX, table options (engine, row format, statistics options), comments,
a declared table rename, triggers and views. Each step asks for its ALGORITHM and LOCK
explicitly (or, for statements that take no such clause, says it is metadata only), as
the server decided on an empty copy; the plan is then applied to the tables with their
rows, and what the server did there is compared with what the plan said: a table the
plan says is rewritten got a new InnoDB id, every other kept its own.

One MariaDB database for the module (each test cleans it first)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest

from lockplane.dialects import connect
from lockplane.dialects.mysql import parse_dsn, with_database
from tests.cli_inprocess import lockplane
from tests.conftest import MYSQL_SERVER
from tests.test_mysql_sandbox import run


@pytest.fixture(scope="module")
def db() -> Iterator[str]:
    name = f"lp_test_{secrets.token_hex(5)}"
    params = parse_dsn(MYSQL_SERVER).kwargs()
    with pymysql.connect(**params, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
    try:
        yield with_database(MYSQL_SERVER, name)
    finally:
        with pymysql.connect(**params, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


def _empty(dsn: str) -> None:
    views = run(dsn, "SELECT TABLE_NAME FROM information_schema.VIEWS WHERE "
                     "TABLE_SCHEMA = DATABASE()")
    tables = run(dsn, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE "
                      "TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'")
    run(dsn, "SET SESSION foreign_key_checks = 0",
        *(f"DROP VIEW `{v}`" for (v,) in views),
        *(f"DROP TABLE `{t}`" for (t,) in tables))


def _ids(dsn: str) -> dict[str, int]:
    """Each table's InnoDB id: a rebuilt table gets a new one."""
    rows = run(dsn, "SELECT NAME, TABLE_ID FROM information_schema.INNODB_SYS_TABLES "
                    "WHERE NAME LIKE CONCAT(DATABASE(), '/%')")
    return {str(n).split("/", 1)[1]: int(i) for n, i in rows}


def _hash(dsn: str) -> str:
    with connect(dsn) as conn:
        return conn.introspect().hash()


BEFORE = [
    "CREATE TABLE users (id int PRIMARY KEY, email varchar(100), n int, KEY by_n (n), "
    "FULLTEXT KEY ft (email))",
    "CREATE TABLE packed (id int PRIMARY KEY, note varchar(20)) ROW_FORMAT=COMPACT",
    "CREATE TABLE counted (id int PRIMARY KEY) STATS_PERSISTENT=0",
    "CREATE TABLE logbook (id int PRIMARY KEY, line varchar(50)) ENGINE=Aria",
    "CREATE TABLE old_name (id int PRIMARY KEY, v int)",
    "CREATE TRIGGER users_n BEFORE INSERT ON users FOR EACH ROW SET NEW.n = 1",
    "CREATE VIEW first_users AS SELECT id FROM users WHERE id < 10",
    "CREATE VIEW gone AS SELECT id FROM users",
    "INSERT INTO users VALUES (1, 'a@example.com', 7), (2, 'b@example.com', 8)",
    "INSERT INTO packed VALUES (1, 'x')",
    "INSERT INTO counted VALUES (1)",
    "INSERT INTO logbook VALUES (1, 'started')",
    "INSERT INTO old_name VALUES (1, 2)",
]
WANTED = """\
CREATE TABLE users (id int PRIMARY KEY, email varchar(100), n int COMMENT 'tries',
                    FULLTEXT KEY ft (email));
CREATE TABLE packed (id int PRIMARY KEY, note varchar(20)) ROW_FORMAT=DYNAMIC;
CREATE TABLE counted (id int PRIMARY KEY) STATS_PERSISTENT=1 COMMENT='tally';
CREATE TABLE logbook (id int PRIMARY KEY, line varchar(50)) ENGINE=InnoDB;
CREATE TABLE new_name (id int PRIMARY KEY, v int) -- lockplane:renamed-from old_name
;
CREATE TRIGGER users_n2 BEFORE INSERT ON users FOR EACH ROW SET NEW.n = 2;
CREATE VIEW first_users AS SELECT id, email FROM users WHERE id < 10;
CREATE VIEW recent AS SELECT id FROM users WHERE id > 1;
"""


def _by_description(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["description"]: s for s in plan["steps"]}


def _one(steps: dict[str, dict[str, Any]], start: str) -> dict[str, Any]:
    (step,) = [s for d, s in steps.items() if d.startswith(start)]
    return step


def test_every_kind_carries_the_servers_algorithm_and_lock(db: str, tmp_path: Path) -> None:
    _empty(db)
    run(db, *BEFORE)
    before_hash, before_ids = _hash(db), _ids(db)
    (tmp_path / "wanted.sql").write_text(WANTED)
    r = lockplane("plan", "--from", db, "--to", "wanted.sql", "-o", "plan.json",
                  cwd=tmp_path)
    assert r.code == 0, r.output
    plan = json.loads((tmp_path / "plan.json").read_text())
    steps = _by_description(plan)

    # DROP INDEX is an ALTER TABLE ... DROP INDEX with MariaDB's clause: in place, no copy.
    drop = steps["Drop index by_n on users"]
    assert drop["sql"] == ["ALTER TABLE `users` DROP INDEX `by_n`, ALGORITHM=NOCOPY, "
                           "LOCK=NONE"]
    assert (drop["lock"]["algorithm"], drop["lock"]["mode"]) == ("NOCOPY", "NONE")
    assert not drop["lock"]["rewrites_table"] and not drop["lock"]["blocks_writes"]
    assert "took ALGORITHM=NOCOPY, LOCK=NONE on an empty copy" in drop["lock"]["server"]
    # Its undo builds the index again, the same way.
    assert drop["rollback"]["sql"] == ["ALTER TABLE `users` ADD INDEX `by_n` (`n`), "
                                       "ALGORITHM=NOCOPY, LOCK=NONE"]

    # ROW_FORMAT: rebuilt in place, writes go on; the server confirms the rebuild.
    packed = _one(steps, "Alter table options of packed")
    assert packed["sql"] == ["ALTER TABLE `packed` ROW_FORMAT=DYNAMIC, ALGORITHM=INPLACE, "
                             "LOCK=NONE"]
    assert packed["lock"]["rewrites_table"] and not packed["lock"]["blocks_writes"]
    assert packed["lock"]["server"].endswith(", and rebuilt it")
    # A statistics option is metadata only.
    counted = _one(steps, "Alter table options of counted")
    assert counted["sql"] == ["ALTER TABLE `counted` STATS_PERSISTENT=1, ALGORITHM=INSTANT"]
    assert not counted["lock"]["rewrites_table"]
    assert "(no rebuild: its id is kept)" in counted["lock"]["server"]
    # A new engine: MariaDB takes ALGORITHM=INSTANT for it and copies the table all the
    # same; the step asks for the copy it is, and says why (and points to gh-ost).
    logbook = _one(steps, "Alter table options of logbook")
    assert "ENGINE=InnoDB" in logbook["sql"][0]
    assert logbook["sql"][0].endswith(", ALGORITHM=COPY, LOCK=SHARED")
    assert logbook["lock"]["rewrites_table"] and logbook["lock"]["blocks_writes"]
    assert any("rebuilds the table all the same" in r for r in logbook["lock"]["reasons"])
    assert any(f["rule"] == "mysql-copy-alter" for f in logbook["findings"])

    # Comments are ALTER TABLE clauses: metadata only.
    for start, sql in (("Set comment on table counted",
                        "ALTER TABLE `counted` COMMENT = 'tally', ALGORITHM=INSTANT"),
                       ("Set comment on column users.n",
                        "ALTER TABLE `users` MODIFY COLUMN `n` int(11) COMMENT 'tries', "
                        "ALGORITHM=INSTANT")):
        step = _one(steps, start)
        assert step["sql"] == [sql], step["sql"]
        assert "on an empty copy" in step["lock"]["server"]

    # A declared rename: ALTER TABLE ... RENAME TO, instant.
    rename = _one(steps, "Rename table old_name")
    assert rename["sql"] == ["ALTER TABLE `old_name` RENAME TO `new_name`, ALGORITHM=INSTANT"]
    assert rename["rollback"]["sql"] == ["ALTER TABLE `new_name` RENAME TO `old_name`, "
                                         "ALGORITHM=INSTANT"]
    assert "took ALGORITHM=INSTANT" in rename["lock"]["server"]

    # Triggers and views take no ALGORITHM clause: metadata only, run on the copy with
    # no table rebuilt; a view's lock is on the view's name.
    for start in ("Create trigger users_n2", "Drop trigger users_n", "Replace view",
                  "Create view recent", "Drop view gone"):
        step = _one(steps, start)
        lock = step["lock"]
        assert (lock["algorithm"], lock["mode"], lock["rewrites_table"],
                lock["blocks_writes"]) == ("INSTANT", "NONE", False, False), (start, lock)
        assert "takes no ALGORITHM clause" in lock["reasons"][0], lock
        assert lock["server"].endswith("no table got a new id (metadata only)"), lock
        assert not any("ALGORITHM=" in s for s in step["sql"])
    view_lock = _one(steps, "Create view recent")["lock"]["reasons"]
    assert any("metadata lock on the view's name" in r for r in view_lock)

    # Applied to the tables with their rows: the server takes every clause asked, and
    # rebuilds exactly the tables the plan says it rewrites.
    r = lockplane("apply", "plan.json", "--target", db, "--auto-approve", "--safety",
                  "permissive", "--skip-shadow", cwd=tmp_path)
    assert r.code == 0, r.output
    after_ids = _ids(db)
    after_ids["old_name"] = after_ids.pop("new_name")
    rewritten = {s["table"] for s in plan["steps"] if s["lock"]["rewrites_table"]
                 and s.get("table")}
    assert rewritten == {"packed", "logbook"}, rewritten
    assert "logbook" not in before_ids  # (Aria: no InnoDB id before)
    assert {t for t in before_ids if after_ids[t] != before_ids[t]} == {"packed"}
    assert run(db, "SELECT id, line FROM logbook") == [(1, "started")]
    r = lockplane("plan", "--from", db, "--to", "wanted.sql", "-o", "again.json",
                  cwd=tmp_path)
    assert r.code == 0 and json.loads((tmp_path / "again.json").read_text())["steps"] == []
    r = lockplane("rollback", "plan.json", "--target", db, "--auto-approve", "--safety",
                  "permissive", "--skip-shadow", cwd=tmp_path)
    assert r.code == 0, r.output
    assert _hash(db) == before_hash


def test_a_user_without_process_is_told_what_was_not_watched(db: str) -> None:
    """The plan's user may not read the InnoDB table ids (no PROCESS privilege): the
    steps say the rebuild was not observed, and a new engine is still a copy (the
    server's INSTANT for it is not believed)."""
    from lockplane.dialects import get_dialect
    from lockplane.plan import build_plan

    _empty(db)
    run(db, "CREATE TABLE logbook (id int PRIMARY KEY) ENGINE=Aria",
        "CREATE TABLE t (id int PRIMARY KEY, n int)")
    user, password = f"lp_np_{secrets.token_hex(4)}", secrets.token_hex(12)
    run(db, f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'",
        f"GRANT ALL ON *.* TO '{user}'@'%' WITH GRANT OPTION",
        f"REVOKE PROCESS ON *.* FROM '{user}'@'%'")
    try:
        params = parse_dsn(db)
        dsn = f"mysql://{user}:{password}@{params.host}:{params.port}/{params.database}"
        with connect(dsn) as conn:
            before = conn.introspect()
        after = get_dialect("mysql").load_untrusted([("wanted.sql", (
            "CREATE TABLE logbook (id int PRIMARY KEY) ENGINE=InnoDB;\n"
            "CREATE TABLE t (id int PRIMARY KEY, n int);\n"
            "CREATE TRIGGER t_n BEFORE INSERT ON t FOR EACH ROW SET NEW.n = 1;\n"))], dsn)
        plan = build_plan(before, after, server_dsn=dsn)
    finally:
        run(db, f"DROP USER '{user}'@'%'")
    steps = {s.description.split(" (")[0]: s for s in plan.steps}
    engine = steps["Alter table options of logbook"]
    assert engine.sql[0].endswith(", ALGORITHM=COPY, LOCK=SHARED")
    assert engine.lock is not None and engine.lock.rewrites_table
    assert any("a new engine copies the table" in r for r in engine.lock.reasons)
    trigger = steps["Create trigger t_n on t"]
    assert trigger.lock is not None and trigger.lock.server is not None
    assert "not observed: INNODB_SYS_TABLES not readable by the plan's user (PROCESS)" \
        in trigger.lock.server
