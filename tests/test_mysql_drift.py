"""Drift on the real MariaDB: ``lockplane drift check`` with mysql:// environments next to
a PostgreSQL one (environments of different dialects are compared only with their own
desired schema), each hand-made drift reported in words, the drift memory table on
MySQL, and ``drift fix`` (adopt / drop) bringing an environment back to no drift."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pymysql
import pytest

from lockplane.dialects.mysql import parse_dsn
from tests.cli_inprocess import lockplane

MYSQL_SCHEMA = """\
CREATE TABLE users (
    id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
    email varchar(255) NOT NULL,
    name varchar(100),
    age int,
    CONSTRAINT users_age_check CHECK (age > 0)
) ENGINE=InnoDB;
CREATE INDEX users_email_idx ON users (email);
CREATE TABLE orders (
    id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id bigint NOT NULL,
    total decimal(10,2) NOT NULL DEFAULT 0,
    CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE=InnoDB;
CREATE TRIGGER orders_total_guard BEFORE INSERT ON orders FOR EACH ROW
    SET NEW.total = GREATEST(NEW.total, 0);
"""

PG_SCHEMA = """\
CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL);
"""


def my_exec(dsn: str, *statements: str) -> None:
    with pymysql.connect(**parse_dsn(dsn).kwargs(), autocommit=True) as conn, \
            conn.cursor() as cur:
        for s in statements:
            cur.execute(s)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _toml(root: Path, envs: dict[str, dict[str, str]]) -> None:
    lines = []
    for name, keys in envs.items():
        lines.append(f"[environments.{name}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in keys.items()]
    (root / "lockplane.toml").write_text("\n".join(lines) + "\n")


def _apply(root: Path, schema: str, dsn: str) -> None:
    r = lockplane("apply", "--schema", schema, "--target", dsn, "--auto-approve",
                  "--skip-shadow", "--safety", "permissive", cwd=root)
    assert r.code == 0, r.output


def _messages(env: dict[str, Any]) -> set[str]:
    return {i["message"] for i in env["items"]}


@pytest.fixture
def project(tmp_path: Path, mysql_dsn_factory: Any, pg_dsn: str) -> dict[str, Any]:
    """mprod and mstaging (MariaDB) and pg (PostgreSQL), each brought to its desired
    schema by Lockplane; the MariaDB ones then drifted by hand."""
    root = tmp_path
    _write(root / "schema_mysql" / "app.sql", MYSQL_SCHEMA)
    _write(root / "schema_pg" / "app.sql", PG_SCHEMA)
    mprod, mstaging = mysql_dsn_factory(), mysql_dsn_factory()
    for dsn in (mprod, mstaging):
        _apply(root, "schema_mysql/", dsn)
    _apply(root, "schema_pg/", pg_dsn)
    my_exec(mprod,
            "ALTER TABLE users ADD COLUMN emergency_fix_2024_01 text",
            "DROP INDEX users_email_idx ON users",
            "ALTER TABLE orders ALTER COLUMN total SET DEFAULT 5")
    my_exec(mstaging,
            "CREATE TABLE audit_log (id bigint, happened_at datetime DEFAULT CURRENT_TIMESTAMP)",
            "ALTER TABLE users DROP CONSTRAINT users_age_check",
            "ALTER TABLE users ADD CONSTRAINT users_age_check CHECK (age >= 18)",
            "DROP TRIGGER orders_total_guard",
            "CREATE TRIGGER orders_total_guard BEFORE INSERT ON orders FOR EACH ROW "
            "SET NEW.total = GREATEST(NEW.total, 1)")
    _toml(root, {
        "mprod": {"database_url": mprod, "schema_path": "schema_mysql/"},
        "mstaging": {"database_url": mstaging, "schema_path": "schema_mysql/"},
        "pg": {"database_url": pg_dsn, "schema_path": "schema_pg/"},
    })
    return {"root": root, "mprod": mprod, "mstaging": mstaging, "pg": pg_dsn}


def test_hand_made_drift_reported_in_words(project: dict[str, Any]) -> None:
    r = lockplane("drift", "check", "--all-environments", "--format", "json",
                  cwd=project["root"])
    assert r.code == 4, r.output
    report = json.loads(r.stdout)
    envs = {e["name"]: e for e in report["environments"]}
    assert [e["name"] for e in report["environments"]] == ["mprod", "mstaging", "pg"]
    assert (envs["pg"]["status"], envs["pg"]["dialect"]) == ("clean", "postgres")
    assert _messages(envs["mprod"]) == {
        "mprod has extra column users.emergency_fix_2024_01, not in the desired schema",
        "mprod is missing index users_email_idx on users that the desired schema has",
        "mprod's orders.total default differs: 5.00 in the database, 0.00 in the desired "
        "schema",
    }
    assert _messages(envs["mstaging"]) == {
        "mstaging has extra table audit_log, not in the desired schema",
        "mstaging's check constraint users_age_check on users expression differs: "
        "`age` >= 18 in the database, `age` > 0 in the desired schema",
        "mstaging's trigger orders_total_guard on orders definition differs: ...= "
        "GREATEST(NEW.total, 1) in the database, ...= GREATEST(NEW.total, 0) in the desired "
        "schema",
    }
    for name in ("mprod", "mstaging"):
        assert envs[name]["status"] == "drift" and envs[name]["dialect"] == "mysql"
        assert len(envs[name]["fingerprint"]) == 64
    by_kind = {(i["object"], i["kind"], i["type"]) for i in envs["mprod"]["items"]}
    assert ("users.emergency_fix_2024_01", "extra", "column") in by_kind
    assert ("users.users_email_idx", "missing", "index") in by_kind
    # The two MariaDB environments are compared with each other; PostgreSQL with neither.
    (pair,) = report["comparisons"]
    assert pair["environments"] == ["mprod", "mstaging"] and not pair["same"]
    pair_messages = {i["message"] for i in pair["items"]}
    assert "mprod is missing table audit_log that mstaging has" in pair_messages
    assert ("mprod's orders.total default differs: 5.00 in mprod, 0.00 in mstaging"
            in pair_messages)
    # Migration history read from _lockplane_migrations.
    assert envs["mprod"]["history"]["available"] and envs["mprod"]["history"]["applied"] == 1


def test_memory_on_mysql(project: dict[str, Any]) -> None:
    """An acknowledgement is remembered in the environment's own _lockplane_drift_state."""
    root = project["root"]
    r = lockplane("drift", "ack", "--environment", "mprod", "--until", "7d", "--reason",
                  "hotfix column, index rebuilt Friday", "--who", "ana", cwd=root)
    assert r.code == 0 and "acknowledged by ana" in r.stderr, r.output
    with pymysql.connect(**parse_dsn(project["mprod"]).kwargs()) as conn, \
            conn.cursor() as cur:
        cur.execute("SELECT kind, status, who, reason FROM _lockplane_drift_state")
        assert cur.fetchall() == (("ack", "active", "ana",
                                   "hotfix column, index rebuilt Friday"),)
    r = lockplane("drift", "check", "-e", "mprod", cwd=root)
    assert r.code == 0, r.output
    assert "acknowledged by ana" in r.stdout
    # New drift on top of the acknowledged: reported again.
    my_exec(project["mprod"], "ALTER TABLE users ADD COLUMN another int")
    r = lockplane("drift", "check", "-e", "mprod", cwd=root)
    assert r.code == 4, r.output


def _drift(root: Path, env: str) -> set[tuple[str, str, str]]:
    r = lockplane("drift", "check", "-e", env, "--format", "json", "--no-history", cwd=root)
    assert r.code in (0, 4), r.output
    (e,) = json.loads(r.stdout)["environments"]
    return {(i["object"], i["type"], i["kind"]) for i in e["items"]}


def _apply_fix(root: Path, env: str, *extra: str) -> Any:
    return lockplane("apply", "fix.json", "--target-environment", env, "--auto-approve",
                     "--skip-shadow", *extra, cwd=root)


def test_fix_drop_all_brings_mysql_back(project: dict[str, Any]) -> None:
    root = project["root"]
    for env in ("mprod", "mstaging"):
        r = lockplane("drift", "fix", "-e", env, "--drop-all", "-o", "fix.json", cwd=root)
        assert r.code == 0, r.output
        r = _apply_fix(root, env)
        assert r.code == 3, r.output  # a column and a table dropped: dangerous
        plan = json.loads((root / "fix.json").read_text())
        acks = [a for s in plan["steps"] for f in s.get("findings", [])
                if f["safety"] == "dangerous"
                for a in ("--acknowledge", f"{f['rule']}@{s['table']}" if s.get("table")
                          else f["rule"])]
        r = _apply_fix(root, env, *acks)
        assert r.code == 0, r.output
        assert _drift(root, env) == set()


def test_fix_adopt_all_on_mysql(project: dict[str, Any]) -> None:
    root = project["root"]
    r = lockplane("drift", "fix", "-e", "mstaging", "--adopt-all", "-o", "fix.json", cwd=root)
    assert r.code == 0, r.output
    assert json.loads((root / "fix.json").read_text())["steps"] == []
    assert _drift(root, "mstaging") == set()
    added = "\n".join(p.read_text() for p in sorted((root / "schema_mysql").glob("zz_adopted_*")))
    assert "CREATE TABLE `audit_log`" in added and "GREATEST(NEW.total, 1)" in added, added
    # The adopted schema files load and describe mstaging: the other environment now
    # drifts from them the other way.
    assert _drift(root, "mprod")


def test_fix_plans_and_adopts_as_a_plan_does(tmp_path: Path, mysql_dsn: str) -> None:
    """Drift fix on MariaDB takes the plan's path: an AUTO_INCREMENT column added by hand
    with its key is adopted as one ALTER (the server refuses the column alone), and
    every step, reverted or adopted, carries the ALGORITHM and LOCK the server took on
    an empty copy, the same as ``lockplane plan`` gives."""
    root = tmp_path
    _write(root / "schema" / "app.sql",
           "CREATE TABLE items (id int PRIMARY KEY, name varchar(50));\n")
    _toml(root, {"prod": {"database_url": mysql_dsn, "schema_path": "schema/"}})
    _apply(root, "schema/", mysql_dsn)
    my_exec(mysql_dsn, "INSERT INTO items VALUES (1, 'a'), (2, 'b')",
            "ALTER TABLE items ADD COLUMN seq int NOT NULL AUTO_INCREMENT, "
            "ADD UNIQUE KEY items_seq (seq)",
            "ALTER TABLE items ROW_FORMAT=COMPACT",
            "CREATE INDEX items_name ON items (name)")

    # Reverting: the fix plan's steps are the plan's, word for word, lock facts included.
    r = lockplane("drift", "fix", "-e", "prod", "--drop-all", "-o", "fix.json", cwd=root)
    assert r.code == 0, r.output
    r = lockplane("plan", "--from", mysql_dsn, "--to", "schema/", "-o", "plan.json",
                  cwd=root)
    assert r.code == 0, r.output
    fix, plan = (json.loads((root / f).read_text()) for f in ("fix.json", "plan.json"))
    assert [(s["sql"], s["lock"]) for s in fix["steps"]] == \
        [(s["sql"], s["lock"]) for s in plan["steps"]]
    assert all("on an empty copy" in s["lock"]["server"] for s in fix["steps"]), \
        [s["lock"] for s in fix["steps"]]
    options = [s for s in fix["steps"] if s["description"].startswith("Alter table options")]
    assert options[0]["sql"] == ["ALTER TABLE `items` ROW_FORMAT=DEFAULT, "
                                 "ALGORITHM=INPLACE, LOCK=NONE"]

    # Adopting: the column and its key in one ALTER, as decided on the server.
    r = lockplane("drift", "fix", "-e", "prod", "--adopt-all", "-o", "fix.json", cwd=root)
    assert r.code == 0, r.output
    assert json.loads((root / "fix.json").read_text())["steps"] == []
    added = "\n".join(p.read_text() for p in sorted((root / "schema").glob("*adopted_*")))
    assert ("ALTER TABLE `items` ADD COLUMN `seq` int(11) NOT NULL AUTO_INCREMENT, "
            "ADD UNIQUE INDEX `items_seq` (`seq`), ALGORITHM=INPLACE, LOCK=SHARED;") \
        in added, added
    assert "ROW_FORMAT=COMPACT, ALGORITHM=INPLACE, LOCK=NONE;" in added, added
    assert "ADD INDEX `items_name` (`name`), ALGORITHM=NOCOPY, LOCK=NONE;" in added, added
    assert _drift(root, "prod") == set()
