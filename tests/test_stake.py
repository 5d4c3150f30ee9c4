"""Data at stake in a rollback, counted on the real database after the plan was applied.

Each test applies a plan, writes rows the rollback would destroy, and checks the exact
count: through the engine (lockplane.stake) and through the CLI (plan-rollback, rollback).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from lockplane.dialects import connect
from lockplane.execute import ApplyOptions, apply_plan
from lockplane.plan import Plan, build_plan
from lockplane.stake import COUNTED, MISSING, NOT_APPLIED, TIMED_OUT, count_rollback_stakes
from tests.conftest import pg_exec
from tests.test_cli import assert_one_line_error, run

APPLY = ApplyOptions(safety="permissive", skip_shadow=True)


def pg_plan(make_dsn: Callable[[], str], before_sql: str, after_sql: str) -> tuple[str, Plan]:
    """A database at ``before_sql`` and the plan that takes it to ``after_sql``."""
    target, desired = make_dsn(), make_dsn()
    pg_exec(target, before_sql)
    pg_exec(desired, after_sql)
    with connect(target) as db:
        before = db.introspect()
    with connect(desired) as db:
        after = db.introspect()
    return target, build_plan(before, after)


def stakes_of(plan: Plan, dsn: str, **kw: float) -> list:
    with connect(dsn) as db:
        return count_rollback_stakes(plan, db, **kw)


def only(stakes: list) -> object:
    found = [s for s in stakes if s is not None]
    assert len(found) == 1, found
    return found[0]


# ------------------------------------------------------------------------ PostgreSQL
USERS = "CREATE TABLE users (id int PRIMARY KEY, name text);"
USERS_NICK = "CREATE TABLE users (id int PRIMARY KEY, name text, nickname text);"


def test_added_column_counts_values_through_the_cli(pg_dsn_factory, tmp_path: Path) -> None:
    target, desired = pg_dsn_factory(), pg_dsn_factory()
    pg_exec(target, USERS + "INSERT INTO users SELECT g, 'n' FROM generate_series(1, 2000) g;")
    pg_exec(desired, USERS_NICK)
    plan_path = tmp_path / "plan.json"
    proc = run("plan", "--from", target, "--to", desired, "-o", str(plan_path))
    assert proc.returncode == 0, proc.stderr
    # At plan time the column does not exist: nothing is counted or printed.
    assert "rollback will" not in proc.stderr
    step = json.loads(plan_path.read_text())["steps"][0]
    assert step["rollback"]["at_stake"] == {"what": "column", "schema": "public",
                                            "table": "users", "column": "nickname"}

    # Before apply: the plan-rollback says there is nothing at stake yet.
    proc = run("plan-rollback", "--plan", str(plan_path), "--from", target)
    assert proc.returncode == 0, proc.stderr
    assert "public.users.nickname does not exist yet" in proc.stderr

    proc = run("apply", str(plan_path), "--target", target, "--auto-approve", "--skip-shadow")
    assert proc.returncode == 0, proc.stderr
    pg_exec(target, "UPDATE users SET nickname = 'nick' || id WHERE id <= 1243")

    proc = run("plan-rollback", "--plan", str(plan_path), "--from", target)
    assert proc.returncode == 0, proc.stderr
    expected = "rollback will discard values in 1,243 rows of public.users.nickname"
    assert f"! rollback-loses-data: {expected}" in proc.stderr  # the risk's rule id
    back = json.loads(proc.stdout)
    assert expected in back["steps"][0]["messages"]
    assert back["steps"][0]["findings"][0]["rule"] == "rollback-loses-data"

    # rollback shows the count before it asks (here: before it runs, auto-approved).
    proc = run("rollback", str(plan_path), "--target", target, "--auto-approve",
               "--safety", "permissive", "--skip-shadow")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.index(expected) < proc.stderr.index("Rolled back")
    with psycopg.connect(target) as conn:
        cols = [r[0] for r in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'users'::regclass "
            "AND attnum > 0 AND NOT attisdropped").fetchall()]
    assert cols == ["id", "name"]


def test_rollback_asks_after_showing_the_count(pg_dsn_factory, tmp_path: Path) -> None:
    target, plan = pg_plan(pg_dsn_factory, USERS, USERS_NICK)
    apply_plan(plan, target, APPLY)
    pg_exec(target, "INSERT INTO users VALUES (1, 'a', 'x'), (2, 'b', NULL)")
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(plan.to_json())
    # No terminal: confirmation cannot be asked (usage, exit 2), but the count came first.
    proc = run("rollback", str(plan_path), "--target", target, "--safety", "permissive",
               "--skip-shadow")
    assert proc.returncode == 2, proc.stderr
    assert "rollback will discard values in 1 row of public.users.nickname" in proc.stderr


def test_created_table_counts_rows(pg_dsn_factory) -> None:
    target, plan = pg_plan(pg_dsn_factory, USERS,
                           USERS + 'CREATE TABLE "Audit Log" (id bigint, what text);')
    assert only(stakes_of(plan, target)).status == MISSING
    apply_plan(plan, target, APPLY)
    pg_exec(target, 'INSERT INTO "Audit Log" SELECT g, NULL FROM generate_series(1, 57) g')
    stake = only(stakes_of(plan, target))
    assert (stake.status, stake.rows) == (COUNTED, 57)
    assert stake.message == 'rollback will delete 57 rows of public.Audit Log'


def test_widened_varchar_counts_only_values_that_do_not_fit(pg_dsn_factory) -> None:
    target, plan = pg_plan(pg_dsn_factory,
                           "CREATE TABLE t (id int PRIMARY KEY, bio varchar(50));",
                           "CREATE TABLE t (id int PRIMARY KEY, bio varchar(200));")
    # Before apply the column still has its old type: nothing to convert.
    assert only(stakes_of(plan, target)).status == NOT_APPLIED
    apply_plan(plan, target, APPLY)
    pg_exec(target, "INSERT INTO t SELECT g, repeat('x', g * 10) FROM generate_series(1, 12) g;"
                    "INSERT INTO t VALUES (100, NULL)")
    stake = only(stakes_of(plan, target))
    assert (stake.status, stake.rows) == (COUNTED, 7)  # lengths 60..120
    assert stake.message == ("rollback will truncate values in 7 rows of public.t.bio "
                             "(longer than character varying(50))")
    # And that is what the rollback does: the explicit cast truncates.
    from lockplane.plan import rollback_plan

    apply_plan(rollback_plan(plan), target, APPLY)
    with psycopg.connect(target) as conn:
        assert conn.execute("SELECT max(length(bio)) FROM t").fetchone()[0] == 50


def test_int_to_bigint_counts_values_out_of_range(pg_dsn_factory) -> None:
    target, plan = pg_plan(pg_dsn_factory, "CREATE TABLE t (id int PRIMARY KEY, n int);",
                           "CREATE TABLE t (id int PRIMARY KEY, n bigint);")
    apply_plan(plan, target, APPLY)
    pg_exec(target, "INSERT INTO t VALUES (1, 1), (2, 2147483647), (3, 2147483648), "
                    "(4, -2147483649), (5, NULL), (6, 9000000000)")
    stake = only(stakes_of(plan, target))
    assert (stake.status, stake.rows) == (COUNTED, 3)
    assert stake.message == ("rollback will fail on 3 rows of public.t.n "
                             "(values outside integer)")


def test_nothing_at_stake_prints_nothing(pg_dsn_factory, tmp_path: Path) -> None:
    target, plan = pg_plan(pg_dsn_factory, USERS,
                           USERS + "CREATE INDEX users_name ON users (name);")
    assert stakes_of(plan, target) == [None]
    apply_plan(plan, target, APPLY)
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(plan.to_json())
    proc = run("plan-rollback", "--plan", str(plan_path), "--from", target)
    assert proc.returncode == 0, proc.stderr
    assert "rollback will" not in proc.stderr
    assert json.loads(proc.stdout)["steps"][0]["messages"] == []


def test_old_plan_without_at_stake_still_works(pg_dsn_factory, tmp_path: Path) -> None:
    target, plan = pg_plan(pg_dsn_factory, USERS, USERS_NICK)
    apply_plan(plan, target, APPLY)
    pg_exec(target, "INSERT INTO users VALUES (1, 'a', 'x')")
    data = json.loads(plan.to_json())
    for step in data["steps"]:
        step["rollback"].pop("at_stake", None)
    plan_path = tmp_path / "old.json"
    plan_path.write_text(json.dumps(data))
    proc = run("plan-rollback", "--plan", str(plan_path), "--from", target)
    assert proc.returncode == 0, proc.stderr
    assert "rollback will" not in proc.stderr
    assert 'ALTER TABLE "public"."users" DROP COLUMN "nickname"' in \
        json.loads(proc.stdout)["steps"][0]["sql"]


def test_plan_rollback_refuses_a_database_in_another_state(pg_dsn_factory,
                                                          tmp_path: Path) -> None:
    target, plan = pg_plan(pg_dsn_factory, USERS, USERS_NICK)
    pg_exec(target, "ALTER TABLE users ADD COLUMN hotfix int")
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(plan.to_json())
    proc = run("plan-rollback", "--plan", str(plan_path), "--from", target)
    assert_one_line_error(proc, 3, plan.source_hash[:12])


def test_malformed_at_stake_is_bad_input(pg_dsn_factory, tmp_path: Path) -> None:
    target, plan = pg_plan(pg_dsn_factory, USERS, USERS_NICK)
    apply_plan(plan, target, APPLY)
    data = json.loads(plan.to_json())
    data["steps"][0]["rollback"]["at_stake"] = {"what": "column", "table": "users"}
    plan_path = tmp_path / "bad.json"
    plan_path.write_text(json.dumps(data))
    proc = run("plan-rollback", "--plan", str(plan_path), "--from", target)
    assert_one_line_error(proc, 2, "rollback.at_stake.column")


def test_count_that_cannot_finish_in_time_says_so(pg_dsn_factory) -> None:
    target, plan = pg_plan(pg_dsn_factory, USERS, USERS + "CREATE TABLE audit (id int);")
    apply_plan(plan, target, APPLY)
    # Another session holds the table: the count waits, and is cut off by the timeout.
    with psycopg.connect(target) as holder:
        holder.execute("LOCK TABLE audit IN ACCESS EXCLUSIVE MODE")
        stake = only(stakes_of(plan, target, timeout_s=0.5))
    assert stake.status == TIMED_OUT
    assert "could not count" in stake.message and "timed out" in stake.message


# ---------------------------------------------------------------------------- SQLite
def test_sqlite_counts_columns_tables_and_rebuilds(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    dsn = f"sqlite:///{db}"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, age TEXT)")
        conn.executemany("INSERT INTO users (id, name) VALUES (?, ?)",
                         [(i, f"u{i}") for i in range(1, 31)])
    conn.close()
    (tmp_path / "desired.sql").write_text(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, age TEXT, nickname TEXT);\n"
        "CREATE TABLE audit (id INTEGER, what TEXT);\n"
        # A type change SQLite cannot ALTER: the table is rebuilt, and `added` with it.
        "CREATE TABLE other (id INTEGER PRIMARY KEY, v INTEGER, added TEXT);\n")
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE other (id INTEGER PRIMARY KEY, v TEXT)")
        conn.executemany("INSERT INTO other (id, v) VALUES (?, ?)", [(i, str(i)) for i in range(5)])
    conn.close()
    proc = run("plan", "--from", dsn, "--to", "desired.sql", "-o", "plan.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    plan = Plan.model_validate_json((tmp_path / "plan.json").read_text())
    kinds = {s.kind: s.rollback.at_stake for s in plan.steps if s.rollback}
    assert kinds["rebuild_table"] == {"what": "columns", "schema": "main", "table": "other",
                                      "columns": ["added"]}
    proc = run("apply", "plan.json", "--target", dsn, "--auto-approve", "--safety",
               "permissive", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE users SET nickname = 'n' WHERE id % 3 = 0")  # 10 rows
        conn.executemany("INSERT INTO audit VALUES (?, 'x')", [(i,) for i in range(1243)])
        conn.execute("UPDATE other SET added = 'a' WHERE id < 2")  # 2 rows
    conn.close()

    proc = run("plan-rollback", "--plan", "plan.json", "--from", dsn, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stderr.split())
    lost = "! rollback-loses-data: rollback will"
    assert f"{lost} discard values in 10 rows of main.users.nickname" in text
    assert f"{lost} delete 1,243 rows of main.audit" in text
    assert f"{lost} discard values in 2 rows of main.other (columns added)" in text
    messages = [m for s in json.loads(proc.stdout)["steps"] for m in s["messages"]]
    assert "rollback will delete 1,243 rows of main.audit" in messages


def test_sqlite_count_is_bounded(tmp_path: Path) -> None:
    db = tmp_path / "big.db"
    dsn = f"sqlite:///{db}"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    conn.close()
    with connect(dsn) as d:
        before = d.introspect()
        d.execute("CREATE TABLE big (id INTEGER, v TEXT)")
        d.execute("INSERT INTO big WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 "
                  "FROM c WHERE x < 3000) SELECT x, 'v' FROM c")
        after = d.introspect()
    plan = build_plan(before, after)
    with connect(dsn) as d:
        stake = only(count_rollback_stakes(plan, d))
        assert (stake.status, stake.rows) == (COUNTED, 3000)

        # The deadline interrupts a long statement (a count of 10^8 generated rows, many
        # seconds of work, cut off after 0.2 s).
        from lockplane import stake as stake_mod

        slow = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                "WHERE x < 100000000) SELECT count(*) FROM c")
        started = time.monotonic()
        with pytest.raises(stake_mod._TimedOut):
            stake_mod._count(d, slow, 0.2)
        assert time.monotonic() - started < 5
