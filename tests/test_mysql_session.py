"""Lockplane's MariaDB sessions start, and stay, in the mode its own SQL assumes.

A trigger a step's or a batch's UPDATE fires, or a procedure a step calls, is the
database's own code: it may change session variables for the rest of the session
(sql_mode alone is put back by the server when a routine returns). Lockplane's SQL after
it (the next batch's key query, checkpoints, history rows, introspection) must not read
the first row only (sql_select_limit), run in a transaction left open (autocommit),
nor see its strings as names (ANSI_QUOTES) or || as a concatenation (PIPES_AS_CONCAT)."""

from __future__ import annotations

from pathlib import Path

import pymysql

from lockplane.dialects import connect
from lockplane.dialects.mysql import parse_dsn


def _run(dsn: str, *statements: str) -> list[tuple[object, ...]]:
    with pymysql.connect(**parse_dsn(dsn).kwargs(), autocommit=True) as conn, \
            conn.cursor() as cur:
        rows: list[tuple[object, ...]] = []
        for s in statements:
            cur.execute(s)
            rows = list(cur.fetchall()) if cur.description else []
        return rows


# What a trigger may leave behind on the session that fires it (a procedure too, and
# autocommit besides).
_HOOK = ("SET SESSION sql_select_limit = 1; SET SESSION time_zone = '+05:00'; "
         "SET SESSION group_concat_max_len = 4; SET SESSION div_precision_increment = 1; "
         "SET SESSION foreign_key_checks = 0; SET SESSION unique_checks = 0")


def test_code_a_batch_fires_cannot_change_a_backfill_worker_s_session(
        mysql_dsn: str) -> None:
    """A backfill's worker session (configure_worker_session) is put back after each
    batch (backfill.py calls restore_session_settings after the batch's UPDATE): a
    trigger the UPDATE fires that turns foreign_key_checks off would otherwise leave the
    next batches' UPDATEs unchecked (dangling rows), with a changed time_zone and
    truncated GROUP_CONCATs besides."""
    _run(mysql_dsn, "CREATE TABLE c (id int PRIMARY KEY, n int)",
         "INSERT INTO c SELECT seq, seq FROM seq_1_to_10",
         f"CREATE TRIGGER c_hook BEFORE UPDATE ON c FOR EACH ROW BEGIN {_HOOK}; END")
    probe = ("SELECT @@SESSION.foreign_key_checks, @@SESSION.time_zone, "
             "@@SESSION.group_concat_max_len, @@SESSION.sql_select_limit")
    with connect(mysql_dsn) as db:
        db.configure_worker_session("lockplane backfill")
        start = db.query(probe)
        with db.transaction():
            db.execute("UPDATE c SET n = n + 1 WHERE id <= 5")
            assert db.query(probe) != start  # (what the trigger left)
            db.restore_session_settings()
            assert db.query(probe) == start


def test_a_procedure_a_step_calls_cannot_change_lockplane_s_session(
        mysql_dsn: str) -> None:
    """run_group's session: after a step's statement that calls a procedure leaving
    autocommit off and sql_select_limit 1, the session's settings are those it started
    with (the step's own SET lines aside)."""
    from lockplane.execute import ApplyOptions, run_group, session_settings
    from lockplane.plan import Step

    _run(mysql_dsn, "CREATE TABLE t (id int PRIMARY KEY, n int)",
         "INSERT INTO t VALUES (1, 1), (2, 2), (3, 3)",
         f"CREATE PROCEDURE hook() BEGIN {_HOOK}; SET SESSION autocommit = 0; END")
    names = ("sql_select_limit", "time_zone", "group_concat_max_len", "autocommit",
             "foreign_key_checks", "sql_mode")
    probe = "SELECT " + ", ".join(f"@@SESSION.{n}" for n in names)
    with connect(mysql_dsn) as db, session_settings(db, ApplyOptions(lock_timeout_ms=1500)):
        start = db.query(probe)
        steps = [Step(description="call", sql=["CALL hook()", "UPDATE t SET n = n + 1"])]
        run_group(db, list(enumerate(steps, 1)), ApplyOptions(lock_timeout_ms=1500))
        assert db.query(probe) == start
        assert len(db.query("SELECT id FROM t")) == 3
    assert _run(mysql_dsn, "SELECT SUM(n) FROM t") == [(9,)]


def test_a_server_default_mode_does_not_change_what_lockplane_s_sql_means(
        mysql_dsn: str, tmp_path: Path) -> None:
    """The session's sql_mode is the server's default (SET GLOBAL: server-wide, so here
    the session's own, as a connection's init would leave it): a mode that changes what
    SQL text means (ANSI_QUOTES, PIPES_AS_CONCAT, NO_BACKSLASH_ESCAPES, ORACLE, ...) is
    off on Lockplane's sessions, the rest (STRICT_TRANS_TABLES) kept."""
    from lockplane.dialects.mysql import MySQLDatabase, normalized_sql_mode

    assert normalized_sql_mode("STRICT_TRANS_TABLES,ANSI_QUOTES,PIPES_AS_CONCAT") \
        == "STRICT_TRANS_TABLES"
    oracle = _run(mysql_dsn, "SET SESSION sql_mode = 'ORACLE,STRICT_TRANS_TABLES'",
                  "SELECT @@SESSION.sql_mode")[0][0]
    kept = normalized_sql_mode(str(oracle))
    assert "ANSI_QUOTES" not in kept and "ORACLE" not in kept and "PIPES" not in kept
    assert "STRICT_TRANS_TABLES" in kept
    with connect(mysql_dsn) as db:
        assert isinstance(db, MySQLDatabase)
        db.execute("SET SESSION sql_mode = 'ANSI_QUOTES,PIPES_AS_CONCAT,STRICT_TRANS_TABLES'")
        db.normalize_session()
        assert db.query("SELECT @@SESSION.sql_mode")[0][0] == "STRICT_TRANS_TABLES"
        assert db.query("SELECT 'a' || 'b', \"x\"") == [(0, "x")]
