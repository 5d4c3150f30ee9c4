"""Three MySQL plan bugs on the real MariaDB (issue 15, myfix), each planned from a schema
file, applied, re-planned empty and rolled back to the exact hash before:

- NOT NULL -> NULL is no ALGORITHM=INSTANT on MariaDB 10.11 (error 1845 even on an empty
  table), forward or in a rollback;
- an index moved to a new column while its old column is dropped: the index goes before
  the column (MySQL drops an index with its last column: error 1091 otherwise);
- an AUTO_INCREMENT column and its key in one statement (error 1075 otherwise), added to
  a table or in a new table whose primary key is another column.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lockplane.dialects import connect
from tests.cli_inprocess import lockplane
from tests.test_mysql_multiphase import q
from tests.test_mysql_sandbox import run


def _hash(dsn: str) -> str:
    with connect(dsn) as db:
        return db.introspect().hash()


def _round_trip(dsn: str, tmp_path: Path, wanted: str) -> dict[str, Any]:
    """Plan to ``wanted``, apply (with a shadow check), re-plan empty, roll back exactly;
    the plan."""
    before = _hash(dsn)
    (tmp_path / "wanted.sql").write_text(wanted)
    r = lockplane("plan", "--from", dsn, "--to", "wanted.sql", "-o", "plan.json",
                  cwd=tmp_path)
    assert r.code == 0, r.output
    plan = json.loads((tmp_path / "plan.json").read_text())
    r = lockplane("apply", "plan.json", "--target", dsn, "--auto-approve", "--safety",
                  "permissive", cwd=tmp_path)
    assert r.code == 0, r.output
    r = lockplane("plan", "--from", dsn, "--to", "wanted.sql", "-o", "again.json",
                  cwd=tmp_path)
    assert r.code == 0, r.output
    assert json.loads((tmp_path / "again.json").read_text())["steps"] == []
    r = lockplane("rollback", "plan.json", "--target", dsn, "--auto-approve", "--safety",
                  "permissive", cwd=tmp_path)
    assert r.code == 0, r.output
    assert _hash(dsn) == before
    return plan


def test_not_null_to_null_is_no_instant_either_way(mysql_dsn: str, tmp_path: Path) -> None:
    run(mysql_dsn, "CREATE TABLE t (id int PRIMARY KEY, a varchar(20) NOT NULL)",
        "INSERT INTO t VALUES (1, 'x')")
    plan = _round_trip(mysql_dsn, tmp_path,
                       "CREATE TABLE t (id int PRIMARY KEY, a varchar(20));")
    [step] = plan["steps"]
    assert step["sql"] == ["ALTER TABLE `t` MODIFY COLUMN `a` varchar(20), "
                           "ALGORITHM=INPLACE, LOCK=NONE"], step["sql"]
    assert "MariaDB" in step["lock"]["server"] and "refused ALGORITHM=INSTANT" in \
        step["lock"]["server"]
    assert q(mysql_dsn, "SELECT a FROM t") == [("x",)]


def test_index_moved_off_a_dropped_column_goes_first(mysql_dsn: str, tmp_path: Path) -> None:
    run(mysql_dsn, "CREATE TABLE users (id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, "
                   "email varchar(200) NOT NULL, name varchar(50), "
                   "KEY users_email_idx (email), KEY two (email, name))",
        "INSERT INTO users (email, name) VALUES ('a@x', 'a')")
    plan = _round_trip(mysql_dsn, tmp_path, """\
CREATE TABLE users (id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
                    email_address varchar(200) NOT NULL, name varchar(50));
CREATE INDEX users_email_idx ON users (email_address);
CREATE INDEX two ON users (email_address, name);
""")
    said = [s["description"] for s in plan["steps"]]
    dropped = said.index("Drop column email from users")
    for name in ("users_email_idx", "two"):
        assert said.index(f"Drop index {name} on users") < dropped, said
        assert said.index(f"Create index {name} on users") > dropped, said
    # (the dropped column comes back with its values: the drop archived them)
    assert q(mysql_dsn, "SELECT email, name FROM users") == [("a@x", "a")]


@pytest.mark.parametrize(("wanted", "key"), [
    ("CREATE TABLE t (id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, name varchar(50));",
     "ADD PRIMARY KEY (`id`)"),
    ("CREATE TABLE t (id bigint NOT NULL AUTO_INCREMENT UNIQUE, name varchar(50));",
     "ADD UNIQUE INDEX `id` (`id`)"),
    ("CREATE TABLE t (id bigint NOT NULL AUTO_INCREMENT, name varchar(50), "
     "KEY ix (id, name));", "ADD INDEX `ix` (`id`, `name`)"),
])
def test_auto_increment_column_and_its_key_in_one_alter(mysql_dsn: str, tmp_path: Path,
                                                        wanted: str, key: str) -> None:
    run(mysql_dsn, "CREATE TABLE t (name varchar(50))",
        "INSERT INTO t VALUES ('a'), ('b')")
    plan = _round_trip(mysql_dsn, tmp_path, wanted)
    [step] = plan["steps"]
    [sql] = step["sql"]
    assert sql.startswith("ALTER TABLE `t` ADD COLUMN `id` bigint(20) NOT NULL "
                          f"AUTO_INCREMENT, {key}, ALGORITHM="), sql
    [undo] = step["rollback"]["sql"]
    assert undo.startswith("ALTER TABLE `t` DROP ") and "DROP COLUMN `id`" in undo, undo
    assert step["lock"]["server"].startswith("MariaDB"), step["lock"]
    assert q(mysql_dsn, "SELECT name FROM t ORDER BY name") == [("a",), ("b",)]


def test_new_table_with_auto_increment_keyed_by_an_index(mysql_dsn: str,
                                                         tmp_path: Path) -> None:
    run(mysql_dsn, "CREATE TABLE keep (k int PRIMARY KEY)")
    plan = _round_trip(mysql_dsn, tmp_path, """\
CREATE TABLE keep (k int PRIMARY KEY);
CREATE TABLE t (k int PRIMARY KEY, seq bigint NOT NULL AUTO_INCREMENT, KEY by_seq (seq),
                KEY other (k, seq));
""")
    [create, other] = plan["steps"]
    assert "INDEX `by_seq` (`seq`)" in create["sql"][0], create["sql"]
    assert other["description"] == "Create index other on t"


def test_auto_increment_column_takes_over_the_primary_key(mysql_dsn: str,
                                                          tmp_path: Path) -> None:
    run(mysql_dsn, "CREATE TABLE t (k int PRIMARY KEY, name varchar(50))",
        "INSERT INTO t VALUES (1, 'a'), (2, 'b')")
    plan = _round_trip(mysql_dsn, tmp_path, "CREATE TABLE t (id bigint NOT NULL "
                       "AUTO_INCREMENT PRIMARY KEY, k int NOT NULL, name varchar(50));")
    [step] = plan["steps"]
    assert step["sql"][0].startswith(
        "ALTER TABLE `t` ADD COLUMN `id` bigint(20) NOT NULL AUTO_INCREMENT, "
        "DROP PRIMARY KEY, ADD PRIMARY KEY (`id`), ALGORITHM="), step["sql"]
    assert step["rollback"]["sql"][0].startswith(
        "ALTER TABLE `t` DROP PRIMARY KEY, DROP COLUMN `id`, ADD PRIMARY KEY (`k`), "
        "ALGORITHM="), step["rollback"]["sql"]
    assert q(mysql_dsn, "SELECT k, name FROM t ORDER BY k") == [(1, "a"), (2, "b")]
