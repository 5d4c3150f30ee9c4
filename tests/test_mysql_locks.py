"""MySQL's own lock facts on MariaDB: each ALTER step's ALGORITHM and LOCK as the rules
and the server decide them (tried on an empty copy in a sandbox), asked for explicitly in
the step's SQL; the lock wait of a DDL behind an open transaction, short and retried."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pymysql
import pytest

from lockplane.changes.base import Change
from lockplane.dialects import connect, get_dialect
from lockplane.dialects.base import Dialect
from lockplane.dialects.mysql import lock_wait_seconds, parse_dsn
from lockplane.dialects.mysql.alter_facts import (
    AlterOp,
    MySQLAlter,
    Server,
    alter_lock,
    alter_sql,
    decided,
    decision,
    predict,
)
from lockplane.model import Column, Table
from lockplane.plan import build_plan
from tests.cli_inprocess import lockplane
from tests.test_mysql_sandbox import run

BEFORE = [
    "CREATE TABLE users (id int PRIMARY KEY, email varchar(100) NOT NULL, "
    "old int, KEY by_old (old))",
    "CREATE TABLE packed (id int PRIMARY KEY, note varchar(20)) ROW_FORMAT=COMPRESSED",
    "CREATE TABLE docs (id int PRIMARY KEY, body text, FULLTEXT KEY ft (body))",
    "INSERT INTO users VALUES (1, 'a@example.com', 7), (2, 'b@example.com', 8)",
    "INSERT INTO packed VALUES (1, 'x')",
    "INSERT INTO docs VALUES (1, 'hello world')",
]
WANTED = """\
CREATE TABLE users (id int PRIMARY KEY, email varchar(100) NOT NULL,
                    nick varchar(20), twice int AS (id * 2) STORED, KEY by_email (email));
CREATE TABLE packed (id int PRIMARY KEY, note varchar(20), extra int) ROW_FORMAT=COMPRESSED;
CREATE TABLE docs (id int PRIMARY KEY, body text, lang char(2), FULLTEXT KEY ft (body));
"""


def _steps(plan: dict) -> dict[str, dict]:
    return {s["description"]: s for s in plan["steps"]}


def test_each_alter_carries_the_servers_algorithm_and_lock(mysql_dsn: str,
                                                           tmp_path: Path) -> None:
    run(mysql_dsn, *BEFORE)
    (tmp_path / "schema.sql").write_text(WANTED)
    plan_file = tmp_path / "plan.json"
    res = lockplane("plan", "--from", mysql_dsn, "--to", str(tmp_path / "schema.sql"),
                    "-o", str(plan_file))
    assert res.code == 0, res.output
    steps = _steps(json.loads(plan_file.read_text()))

    nick = steps["Add column nick varchar(20) to users"]
    assert nick["sql"] == ["ALTER TABLE `users` ADD COLUMN `nick` varchar(20), "
                           "ALGORITHM=INSTANT"]
    assert nick["lock"]["algorithm"] == "INSTANT" and nick["lock"]["mode"] == "NONE"
    assert not (nick["lock"]["blocks_writes"] or nick["lock"]["rewrites_table"])
    assert nick["lock"]["server"].startswith("MariaDB 10.") \
        and "took ALGORITHM=INSTANT on an empty copy" in nick["lock"]["server"]
    assert any("exclusive metadata lock" in r for r in nick["lock"]["reasons"])
    assert nick["safety"] == "safe"
    # The rollback was tried too, after the plan's steps, last step first.
    assert nick["rollback"]["sql"] == ["ALTER TABLE `users` DROP COLUMN `nick`, "
                                       "ALGORITHM=INSTANT"]
    assert "took ALGORITHM=INSTANT" in nick["rollback"]["lock"]["server"]

    # A STORED generated column is computed for every row: the table is copied, and the
    # step says an online schema change tool is the way.
    twice = steps["Add column twice int(11) to users"]
    assert twice["sql"][0].endswith(", ALGORITHM=COPY, LOCK=SHARED")
    assert twice["lock"] | {"reasons": None, "server": None} == {
        "mode": "SHARED", "blocks_reads": False, "blocks_writes": True,
        "rewrites_table": True, "scans_table": True, "algorithm": "COPY",
        "reasons": None, "server": None}
    assert "refused ALGORITHM=INSTANT" in twice["lock"]["server"]
    # ... and that a long statement must get its metadata lock again at its end.
    assert any("again to finish" in r for r in twice["lock"]["reasons"])
    assert not any("again to finish" in r for r in nick["lock"]["reasons"])
    copy = [f for f in twice["findings"] if f["rule"] == "mysql-copy-alter"]
    assert copy and "gh-ost" in copy[0]["message"] and twice["safety"] == "review"

    # ROW_FORMAT=COMPRESSED: no instant ADD COLUMN; rebuilt in place, writes go on.
    extra = steps["Add column extra int(11) to packed"]
    assert extra["sql"][0].endswith(", ALGORITHM=INPLACE, LOCK=NONE")
    assert extra["lock"]["rewrites_table"] and not extra["lock"]["blocks_writes"]
    assert any("ROW_FORMAT=COMPRESSED" in r for r in extra["lock"]["reasons"])
    assert extra["rollback"]["sql"][0].endswith(", ALGORITHM=INPLACE, LOCK=NONE")
    assert extra["rollback"]["lock"]["rewrites_table"]

    # A table with a FULLTEXT index: the rebuild takes LOCK=SHARED; the server's reason.
    lang = steps["Add column lang char(2) to docs"]
    assert lang["sql"][0].endswith(", ALGORITHM=INPLACE, LOCK=SHARED")
    assert "Fulltext index creation requires a lock" in lang["lock"]["server"]
    assert any(f["rule"] == "mysql-blocking-alter" for f in lang["findings"])

    # The rules read the table as it was (old indexed: no instant drop), but the plan
    # drops the index in an earlier step: tried in plan order, the server takes INSTANT,
    # and the server wins.
    old = steps["Drop column old from users"]
    # (its values are archived first: the drop is the step's last statement)
    assert old["sql"][-1] == "ALTER TABLE `users` DROP COLUMN `old`, ALGORITHM=INSTANT"
    assert "the rules said ALGORITHM=NOCOPY, LOCK=NONE; the server decides " \
        "ALGORITHM=INSTANT" in old["lock"]["reasons"]

    # Other kinds call the same API: an index is an ALTER TABLE ... ADD INDEX, in place.
    ix = steps["Create index by_email on users"]
    assert ix["sql"] == ["ALTER TABLE `users` ADD INDEX `by_email` (`email`), "
                         "ALGORITHM=NOCOPY, LOCK=NONE"]
    assert ix["lock"]["scans_table"] and not ix["lock"]["blocks_writes"]

    # The plan text says the same.
    assert "lock: ALGORITHM=COPY, LOCK=SHARED, rewrites table" in res.stderr
    assert "server: MariaDB" in res.stderr

    # The explicit clauses are taken by the server on the real table, with its rows.
    res = lockplane("apply", str(plan_file), "--target", mysql_dsn, "--auto-approve",
                    "--acknowledge", "drop-column@users")
    assert res.code == 0, res.output
    assert "lock_wait_timeout = 1 s (150 ms asked" in res.stderr
    assert run(mysql_dsn, "SELECT id, twice FROM users ORDER BY id") == [(1, 2), (2, 4)]
    again = lockplane("plan", "--from", mysql_dsn, "--to", str(tmp_path / "schema.sql"))
    assert again.code == 0 and json.loads(again.stdout)["steps"] == [], again.output


@dataclass(repr=False, eq=False)
class _Told(Change):
    """A step whose rules are told the wrong thing about its clause: a table option
    (rebuilt, say the rules) for what is an instant ADD COLUMN."""

    kind = "told"
    table: Table

    def describe(self) -> str:
        return "told"

    def mysql_alter(self, d: Dialect) -> MySQLAlter:
        return MySQLAlter(self.table, ["ADD COLUMN `x` int"], (AlterOp("table_options"),))

    def table_key(self) -> tuple[str, str]:
        return ("", self.table.name)


def test_where_rules_and_server_disagree_the_server_wins(mysql_dsn: str) -> None:
    run(mysql_dsn, "CREATE TABLE t (id int PRIMARY KEY)")
    d = get_dialect("mysql")
    with connect(mysql_dsn) as db:
        before = db.introspect()
    change = _Told(before.tables[0])
    alter = change.mysql_alter(d)
    assert predict(alter, Server.parse("10.11.19-MariaDB")).clause == \
        "ALGORITHM=INPLACE, LOCK=NONE"
    with decided(d, [change], before, mysql_dsn):
        lock = alter_lock(d, alter)
        assert alter_sql(d, alter) == "ALTER TABLE `t` ADD COLUMN `x` int, ALGORITHM=INSTANT"
    assert lock.algorithm == "INSTANT" and not lock.rewrites_table
    assert any("the rules said ALGORITHM=INPLACE, LOCK=NONE; the server decides "
               "ALGORITHM=INSTANT" in r for r in lock.reasons)
    # Nothing was changed on the target itself: the trial ran on a copy.
    assert run(mysql_dsn, "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE "
                          "TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 't'") == [(1,)]


def test_without_a_server_the_rules_decide_and_say_so(mysql_dsn: str) -> None:
    run(mysql_dsn, "CREATE TABLE t (id int PRIMARY KEY)")
    with connect(mysql_dsn) as db:
        before = db.introspect()
    after = before.model_copy(deep=True)
    after.tables[0].columns.append(Column(name="note", type="varchar(10)"))
    plan = build_plan(before, after, server_dsn="mysql://root@127.0.0.1:1/")
    (step,) = plan.steps
    assert step.lock is not None and step.lock.server is not None
    assert step.lock.server.startswith("not checked: no scratch server")
    # Unknown server: MySQL 8.0.0's rules, which have no instant ADD COLUMN.
    assert step.sql == ["ALTER TABLE `t` ADD COLUMN `note` varchar(10), ALGORITHM=INPLACE, "
                        "LOCK=NONE"]


def _table(*columns: Column, options: list[str] | None = None) -> Table:
    return Table(name="t", columns=[Column(name="id", type="int", nullable=False),
                                    *columns], options=options or [])


def test_server_versions() -> None:
    assert Server.parse("10.11.19-MariaDB-0+deb12u1").name == "MariaDB 10.11.19"
    assert Server.parse("5.5.5-10.6.12-MariaDB-log").name == "MariaDB 10.6.12"
    assert Server.parse("8.0.35-0ubuntu0.22.04.1").name == "MySQL 8.0.35"


@pytest.mark.parametrize(("version", "versions", "last", "clause", "why"), [
    ("8.0.11", None, True, "ALGORITHM=INPLACE, LOCK=NONE", "no instant ADD COLUMN"),
    ("8.0.20", None, True, "ALGORITHM=INSTANT", "at the end (8.0.12+)"),
    ("8.0.20", None, False, "ALGORITHM=INPLACE, LOCK=NONE", "no instant"),
    ("8.0.35", 10, False, "ALGORITHM=INSTANT", "54 row versions left"),
    ("8.0.35", 64, True, "ALGORITHM=INPLACE, LOCK=NONE", "TOTAL_ROW_VERSIONS = 64"),
    ("10.2.44-MariaDB", None, True, "ALGORITHM=INPLACE, LOCK=NONE", "MariaDB 10.3"),
    ("10.3.39-MariaDB", None, False, "ALGORITHM=INPLACE, LOCK=NONE", "MariaDB 10.3"),
    ("10.4.34-MariaDB", None, False, "ALGORITHM=INSTANT", "10.4+ anywhere"),
])
def test_add_column_rules_by_flavour_and_version(version: str, versions: int | None,
                                                 last: bool, clause: str, why: str) -> None:
    col = Column(name="c", type="int")
    made = predict(MySQLAlter(_table(), ["ADD COLUMN `c` int"],
                              (AlterOp("add_column", column=col, last=last),)),
                   Server.parse(version), versions)
    assert made.clause == clause
    assert any(why in r for r in made.reasons), made.reasons


@pytest.mark.parametrize(("old", "new", "collation", "clause"), [
    ("varchar(20)", "varchar(60)", "utf8mb4_general_ci", "ALGORITHM=INSTANT"),  # 80 -> 240 B
    ("varchar(50)", "varchar(100)", "utf8mb4_general_ci", "ALGORITHM=COPY, LOCK=SHARED"),
    ("varchar(100)", "varchar(250)", "latin1_swedish_ci", "ALGORITHM=INSTANT"),
    ("varchar(100)", "varchar(300)", "latin1_swedish_ci", "ALGORITHM=COPY, LOCK=SHARED"),
    ("int(11)", "bigint(20)", None, "ALGORITHM=COPY, LOCK=SHARED"),
])
def test_type_change_rules(old: str, new: str, collation: str | None, clause: str) -> None:
    before, after = Column(name="v", type=old), Column(name="v", type=new)
    t = _table(before).model_copy(update={"collation": collation})
    made = predict(MySQLAlter(t, ["MODIFY COLUMN `v` " + new],
                              (AlterOp("modify_column", column=after, old=before),)),
                   Server.parse("10.11.19-MariaDB"))
    assert made.clause == clause, made.reasons
    # MySQL 8 extends a VARCHAR in place (no rebuild), not instantly.
    mysql = predict(MySQLAlter(t, ["MODIFY COLUMN `v` " + new],
                               (AlterOp("modify_column", column=after, old=before),)),
                    Server.parse("8.0.35"))
    assert mysql.clause == clause.replace("ALGORITHM=INSTANT", "ALGORITHM=INPLACE, LOCK=NONE")


@pytest.mark.parametrize(("op", "clause", "rebuild"), [
    (AlterOp("add_index"), "ALGORITHM=NOCOPY, LOCK=NONE", False),
    (AlterOp("add_index", method="fulltext"), "ALGORITHM=INPLACE, LOCK=SHARED", True),
    (AlterOp("add_index", method="spatial"), "ALGORITHM=NOCOPY, LOCK=SHARED", False),
    (AlterOp("add_primary_key"), "ALGORITHM=INPLACE, LOCK=NONE", True),
    (AlterOp("drop_primary_key"), "ALGORITHM=COPY, LOCK=SHARED", True),
    (AlterOp("add_foreign_key"), "ALGORITHM=COPY, LOCK=SHARED", True),
    (AlterOp("add_foreign_key", foreign_key_checks=False), "ALGORITHM=NOCOPY, LOCK=NONE",
     False),
])
def test_index_key_and_foreign_key_rules(op: AlterOp, clause: str, rebuild: bool) -> None:
    made = predict(MySQLAlter(_table(), ["..."], (op,)), Server.parse("10.11.19-MariaDB"))
    assert (made.clause, made.rebuild) == (clause, rebuild)
    # MySQL has no NOCOPY: INPLACE there (the rules say whether it rebuilds).
    on_mysql = predict(MySQLAlter(_table(), ["..."], (op,)), Server.parse("8.0.35"))
    assert on_mysql.clause == clause.replace("NOCOPY", "INPLACE")


def test_lock_wait_timeout_is_whole_seconds_on_the_server(mysql_dsn: str) -> None:
    # MariaDB refuses a fraction (and ALTER ... WAIT 0.5 truncates it to NOWAIT).
    with pytest.raises(pymysql.err.OperationalError):
        run(mysql_dsn, "SET SESSION lock_wait_timeout = 0.5")
    assert [lock_wait_seconds(ms) for ms in (1, 150, 1000, 1001, 2500)] == [1, 1, 1, 2, 3]


def _hold_metadata_lock(dsn: str, table: str) -> pymysql.connections.Connection:
    """A session whose open transaction has read ``table``: it holds a shared metadata
    lock on it until it ends, and any DDL on the table waits."""
    conn = pymysql.connect(**parse_dsn(dsn).kwargs(), autocommit=True)
    with conn.cursor() as cur:
        cur.execute("BEGIN")
        cur.execute(f"SELECT COUNT(*) FROM `{table}`")
    return conn


def _plan_add_column(dsn: str, tmp_path: Path) -> Path:
    run(dsn, "CREATE TABLE t (id int PRIMARY KEY)", "INSERT INTO t VALUES (1)")
    (tmp_path / "s.sql").write_text("CREATE TABLE t (id int PRIMARY KEY, note varchar(10));")
    plan = tmp_path / "plan.json"
    res = lockplane("plan", "--from", dsn, "--to", str(tmp_path / "s.sql"), "-o", str(plan))
    assert res.code == 0, res.output
    return plan


def test_apply_waits_behind_an_open_transaction_retries_and_succeeds(
        mysql_dsn: str, tmp_path: Path) -> None:
    plan = _plan_add_column(mysql_dsn, tmp_path)
    holder = _hold_metadata_lock(mysql_dsn, "t")
    ended = threading.Timer(2.5, holder.rollback)
    ended.start()
    started = time.monotonic()
    try:
        res = lockplane("apply", str(plan), "--target", mysql_dsn, "--auto-approve",
                        "--lock-wait-budget", "30", "--skip-shadow")
    finally:
        ended.join()
        holder.close()
    assert res.code == 0, res.output
    assert time.monotonic() - started >= 2.5
    assert "lock not available (lock wait timeout exceeded); retry 1" in res.stderr
    assert run(mysql_dsn, "SELECT id, note FROM t") == [(1, None)]


def test_apply_gives_up_after_its_budget_and_changes_nothing(mysql_dsn: str,
                                                             tmp_path: Path) -> None:
    plan = _plan_add_column(mysql_dsn, tmp_path)
    with connect(mysql_dsn) as db:
        before = db.introspect().hash()
    holder = _hold_metadata_lock(mysql_dsn, "t")
    try:
        holder_id = holder.thread_id()
        res = lockplane("apply", str(plan), "--target", mysql_dsn, "--auto-approve",
                        "--lock-wait-budget", "2.5", "--skip-shadow")
    finally:
        holder.rollback()
        holder.close()
    assert res.code == 1, res.output
    assert "could not get its lock within the 2.5 s lock-wait budget" in res.stderr
    assert f"blocked by pid {holder_id} (" in res.stderr
    assert "idle in transaction" in res.stderr
    with connect(mysql_dsn) as db:
        assert db.introspect().hash() == before  # no partial DDL
        assert db.query("SELECT result FROM _lockplane_migrations") == [("failed",)]


@dataclass(repr=False, eq=False)
class _Alter(Change):
    """One ALTER TABLE with what it does, as a change kind gives it to alter_facts."""

    kind = "alter"
    table: Table
    clauses: list[str]
    ops: tuple[AlterOp, ...]

    def describe(self) -> str:
        return f"alter {self.table.name}"

    def mysql_alter(self, d: Dialect) -> MySQLAlter:
        return MySQLAlter(self.table, self.clauses, self.ops)

    def sql_mysql(self, d: Dialect) -> list[str]:
        return [alter_sql(d, self.mysql_alter(d))]

    def inverse(self) -> list[Change]:
        return []

    def table_key(self) -> tuple[str, str]:
        return ("", self.table.name)


_V50, _V60 = Column(name="v", type="varchar(50)"), Column(name="v", type="varchar(60)")
_N, _NN = Column(name="n", type="int(11)"), Column(name="n", type="int(11)", nullable=False)
# (table definition, clauses, what they do, the clause MariaDB 10.11 takes)
AGREE = [
    ("(id int PRIMARY KEY, n int)", ["ADD INDEX ix (n)"], (AlterOp("add_index"),),
     "ALGORITHM=NOCOPY, LOCK=NONE"),
    ("(id int PRIMARY KEY, v varchar(50))", ["ADD FULLTEXT INDEX ft (v)"],
     (AlterOp("add_index", method="fulltext"),), "ALGORITHM=INPLACE, LOCK=SHARED"),
    ("(id int PRIMARY KEY, g point NOT NULL)", ["ADD SPATIAL INDEX sp (g)"],
     (AlterOp("add_index", method="spatial"),), "ALGORITHM=NOCOPY, LOCK=SHARED"),
    ("(id int PRIMARY KEY, n int NOT NULL)", ["DROP PRIMARY KEY", "ADD PRIMARY KEY (id, n)"],
     (AlterOp("drop_primary_key"), AlterOp("add_primary_key")),
     "ALGORITHM=INPLACE, LOCK=NONE"),
    ("(id int PRIMARY KEY, n int)", ["DROP PRIMARY KEY"], (AlterOp("drop_primary_key"),),
     "ALGORITHM=COPY, LOCK=SHARED"),
    ("(id int PRIMARY KEY, n int)", ["ADD CONSTRAINT fk FOREIGN KEY (n) REFERENCES p (id)"],
     (AlterOp("add_foreign_key"),), "ALGORITHM=COPY, LOCK=SHARED"),
    ("(id int PRIMARY KEY, v varchar(50))", ["MODIFY COLUMN v varchar(60)"],
     (AlterOp("modify_column", column=_V60, old=_V50),), "ALGORITHM=INSTANT"),
    ("(id int PRIMARY KEY, n int)", ["MODIFY COLUMN n bigint"],
     (AlterOp("modify_column", column=Column(name="n", type="bigint(20)"), old=_N),),
     "ALGORITHM=COPY, LOCK=SHARED"),
    ("(id int PRIMARY KEY, n int)", ["MODIFY COLUMN n int NOT NULL"],
     (AlterOp("modify_column", column=_NN, old=_N),), "ALGORITHM=INPLACE, LOCK=NONE"),
    # NOT NULL -> NULL: MariaDB 10.11 refuses INSTANT (error 1845) but in REDUNDANT rows.
    ("(id int PRIMARY KEY, n int NOT NULL)", ["MODIFY COLUMN n int NULL"],
     (AlterOp("modify_column", column=_N, old=_NN),), "ALGORITHM=INPLACE, LOCK=NONE"),
    ("(id int PRIMARY KEY, n int NOT NULL) ROW_FORMAT=REDUNDANT", ["MODIFY COLUMN n int NULL"],
     (AlterOp("modify_column", column=_N, old=_NN),), "ALGORITHM=INSTANT"),
    ("(id int PRIMARY KEY)", ["ADD COLUMN ai int NOT NULL AUTO_INCREMENT", "ADD UNIQUE (ai)"],
     (AlterOp("add_column", column=Column(name="ai", type="int", nullable=False,
                                          auto_increment=True)), AlterOp("add_index")),
     "ALGORITHM=INPLACE, LOCK=SHARED"),
    ("(id int PRIMARY KEY, n int)", ["RENAME COLUMN n TO m"], (AlterOp("rename_column"),),
     "ALGORITHM=INSTANT"),
    ("(id int PRIMARY KEY, n int)", ["ALTER COLUMN n SET DEFAULT 3"],
     (AlterOp("set_default"),), "ALGORITHM=INSTANT"),
    ("(id int PRIMARY KEY, n int, KEY ix (n))", ["DROP INDEX ix"], (AlterOp("drop_index"),),
     "ALGORITHM=NOCOPY, LOCK=NONE"),
    ("(id int PRIMARY KEY, n int, CONSTRAINT fk FOREIGN KEY (n) REFERENCES p (id))",
     ["DROP FOREIGN KEY fk"], (AlterOp("drop_foreign_key"),), "ALGORITHM=INSTANT"),
    ("(id int PRIMARY KEY, n int)", ["ADD CONSTRAINT ck CHECK (n > 0)"],
     (AlterOp("add_check"),), "ALGORITHM=COPY, LOCK=SHARED"),
    ("(id int PRIMARY KEY, n int, CONSTRAINT ck CHECK (n > 0))", ["DROP CONSTRAINT ck"],
     (AlterOp("drop_check"),), "ALGORITHM=INSTANT"),
]


def test_the_rules_agree_with_mariadb(mysql_dsn: str) -> None:
    """Each rule against the server itself: one plan's worth of ALTERs tried on empty
    copies; the server's choice is the rules' (no "the rules said ..." correction)."""
    run(mysql_dsn, "CREATE TABLE p (id int PRIMARY KEY)",
        *(f"CREATE TABLE t{i} {definition}" for i, (definition, *_) in enumerate(AGREE)))
    d = get_dialect("mysql")
    with connect(mysql_dsn) as db:
        before = db.introspect()
    changes = [_Alter(before.table("", f"t{i}"), clauses, ops)
               for i, (_, clauses, ops, _) in enumerate(AGREE)]
    with decided(d, changes, before, mysql_dsn):
        got = [(c.clauses, decision(c.mysql_alter(d))) for c in changes]
    wrong = [(clauses, made.clause, expected, made.reasons[-1:], made.server)
             for (clauses, made), (*_, expected) in zip(got, AGREE, strict=True)
             if made.clause != expected or "the rules said" in " ".join(made.reasons)]
    assert not wrong, wrong
