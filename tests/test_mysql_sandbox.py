"""Loading untrusted MySQL schema files: the statement screen, the throwaway database and
user (privileges on the scratch database only), and clean-up after a killed process."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pymysql
import pytest

from lockplane.dialects import connect, get_dialect
from lockplane.dialects.mysql import parse_dsn, with_database
from lockplane.dialects.mysql.sandbox import (
    SANDBOX_USER_PREFIX,
    SCRATCH_PREFIX,
    Sandbox,
    owner_lock,
    read_as_screened,
)
from lockplane.errors import BadInput

ROOT = Path(__file__).resolve().parent.parent


def run(dsn: str, *statements: str) -> list[tuple[object, ...]]:
    params = parse_dsn(dsn).kwargs()
    with pymysql.connect(**params, autocommit=True) as conn, conn.cursor() as cur:
        for s in statements:
            cur.execute(s)
        return list(cur.fetchall())


def scratch_objects(dsn: str) -> tuple[list[str], list[str]]:
    """Every scratch database and sandbox user on the server (other tests' too)."""
    dbs = [r[0] for r in run(dsn, f"SELECT SCHEMA_NAME FROM information_schema.SCHEMATA "
                                  f"WHERE SCHEMA_NAME LIKE '{SCRATCH_PREFIX}%'")]
    users = [r[0] for r in run(dsn, f"SELECT User FROM mysql.user "
                                    f"WHERE User LIKE '{SANDBOX_USER_PREFIX}%'")]
    return dbs, users


def leftovers(dsn: str) -> tuple[list[str], list[str]]:
    """Scratch databases and sandbox users whose owner is gone: what a load left behind.
    (Tests running at the same time hold theirs: their owner lock is taken.)"""
    dbs, users = scratch_objects(dsn)

    def abandoned(token: str) -> bool:
        return run(dsn, f"SELECT IS_USED_LOCK('{owner_lock(token)}')")[0][0] is None

    dbs = [d for d in dbs if abandoned(d[len(SCRATCH_PREFIX):])]
    users = [u for u in users if abandoned(u[len(SANDBOX_USER_PREFIX):])]
    # Still there after its lock was seen free: an owner drops before it lets go, so one
    # that was being dropped when listed is gone by now.
    now_dbs, now_users = scratch_objects(dsn)
    return [d for d in dbs if d in now_dbs], [u for u in users if u in now_users]


GOOD = """\
-- a mysqldump-style file: executable comments, session settings, hostile names
/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;
/*!40101 SET NAMES utf8mb4 */;
/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;
CREATE TABLE `we``ird "name"; DROP` (
  id int unsigned NOT NULL AUTO_INCREMENT,
  v varchar(60) DEFAULT '/*!50000 DROP DATABASE x */; -- not code',
  ts timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  PRIMARY KEY (id),
  KEY `k``1` (v(4))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE INDEX i2 ON `we``ird "name"; DROP` (ts);
# a hash comment
CREATE VIEW `v``1` AS SELECT id, v FROM `we``ird "name"; DROP`;
/*!40014 SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS */;
"""


def test_loads_a_schema_and_leaves_nothing(mysql_dsn: str, tmp_path: Path) -> None:
    schema = get_dialect("mysql").load_untrusted([("schema.sql", GOOD)], mysql_dsn)
    t = schema.table("", 'we`ird "name"; DROP')
    assert t is not None
    assert t.column("v").default == "'/*!50000 DROP DATABASE x */; -- not code'"
    assert sorted(i.name for i in t.indexes) == ["i2", "k`1"]
    assert [v.name for v in schema.views] == ["v`1"]
    assert leftovers(mysql_dsn) == ([], [])


def test_scratch_gets_the_targets_character_set(mysql_dsn: str) -> None:
    run(mysql_dsn, f"ALTER DATABASE `{mysql_dsn.rsplit('/', 1)[1]}` CHARACTER SET latin1 "
                   "COLLATE latin1_swedish_ci")
    schema = get_dialect("mysql").load_untrusted([("s.sql", "CREATE TABLE t (a text);")],
                                                 mysql_dsn)
    assert schema.tables[0].collation == "latin1_swedish_ci"


def test_triggers_and_view_options_load(mysql_dsn: str) -> None:
    text = (
        "CREATE TABLE `t t` (id int PRIMARY KEY, n int);\n"
        "CREATE TABLE audit (id int);\n"
        "CREATE TRIGGER `b``i` BEFORE INSERT ON `t t` FOR EACH ROW SET NEW.n = 1;\n"
        "CREATE TRIGGER a_i AFTER INSERT ON `t t` FOR EACH ROW "
        "INSERT INTO audit (id) VALUES (NEW.id);\n"
        "CREATE OR REPLACE ALGORITHM=MERGE SQL SECURITY INVOKER VIEW v AS "
        "SELECT id FROM `t t` WHERE n > 0 WITH LOCAL CHECK OPTION;\n")
    schema = get_dialect("mysql").load_untrusted([("s.sql", text)], mysql_dsn)
    t = schema.table("", "t t")
    assert t is not None
    assert sorted(tr.name for tr in t.triggers) == ["a_i", "b`i"]
    (view,) = schema.views
    assert view.check_option == "LOCAL"
    assert sorted(view.options) == ["algorithm=MERGE", "sql_security=INVOKER"]
    assert leftovers(mysql_dsn) == ([], [])


def test_mysqldump_output_loads_as_the_database_it_came_from(mysql_dsn: str) -> None:
    """mysqldump --no-data, as it is: executable comments, DELIMITER ;; around triggers,
    DEFINER clauses (skipped), the MariaDB client's sandbox line, view stand-ins."""
    dump = shutil.which("mariadb-dump") or shutil.which("mysqldump")
    if dump is None:
        pytest.skip("no mysqldump on this machine")
    q = get_dialect("mysql").quote
    run(mysql_dsn,
        "CREATE TABLE `p``x` (id int unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY, "
        "code char(3) NOT NULL, UNIQUE KEY uq (code))",
        f"CREATE TABLE {q('t; DROP')} (id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, "
        "pid int unsigned, n int, j json, body text, "
        "ts timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP, "
        "FULLTEXT KEY ft (body), CONSTRAINT fk FOREIGN KEY (pid) REFERENCES `p``x` (id) "
        "ON DELETE CASCADE, CONSTRAINT ck CHECK (n > 0)) ROW_FORMAT=COMPRESSED "
        "COMMENT='it''s'",
        f"CREATE VIEW v AS SELECT id, n FROM {q('t; DROP')} WHERE n > 1 WITH CHECK OPTION",
        f"CREATE TRIGGER trg BEFORE INSERT ON {q('t; DROP')} FOR EACH ROW SET NEW.n = 1")
    with connect(mysql_dsn) as db:
        mariadb = "mariadb" in str(db.query("SELECT VERSION()")[0][0]).lower()
    if mariadb:  # an ignored index (MySQL's invisible one), as the dump writes it
        run(mysql_dsn, f"ALTER TABLE {q('t; DROP')} ADD KEY ig (n) COMMENT 'x' IGNORED, "
                       "ADD KEY `ignored` (ts) NOT IGNORED")
    params = parse_dsn(mysql_dsn)
    text = subprocess.run(
        [dump, "-h", params.host, "-P", str(params.port), "-u", params.user, "--no-data",
         params.database], check=True, capture_output=True, text=True).stdout
    assert "DEFINER=" in text and "DELIMITER ;;" in text
    assert not mariadb or "COMMENT 'x' IGNORED" in text
    loaded = get_dialect("mysql").load_untrusted([("dump.sql", text)], mysql_dsn)
    with connect(mysql_dsn) as db:
        assert loaded.hash() == db.introspect().hash()
    assert leftovers(mysql_dsn) == ([], [])


HOSTILE = {
    "drop_db.sql": ("CREATE TABLE ok (a int);\nDROP DATABASE {prod};", 2, "DROP DATABASE"),
    "insert.sql": ("INSERT INTO {prod}.t VALUES (666);", 1, "not a schema definition"),
    "grant.sql": ("GRANT ALL ON *.* TO 'x'@'%';", 1, "cannot parse"),
    "user.sql": ("CREATE USER 'evil'@'%' IDENTIFIED BY 'x';", 1, "cannot parse"),
    "load.sql": ("LOAD DATA INFILE '/etc/passwd' INTO TABLE t;", 1, "cannot parse"),
    "outfile.sql": ("CREATE TABLE t (a int);\n\nSELECT * FROM t INTO OUTFILE '/tmp/x';", 3,
                    "cannot parse"),
    "hidden.sql": ("CREATE TABLE t (a int);\n/*!50000 DROP DATABASE {prod} */;", 2,
                   "DROP DATABASE"),
    "mariadb_hidden.sql": ("/*M!100100 INSERT INTO {prod}.t VALUES (666) */;", 1,
                           "not a schema definition"),
    "ctas.sql": ("CREATE TABLE t AS SELECT * FROM mysql.user;", 1, "copies rows"),
    "federated.sql": ("CREATE TABLE t (a int) ENGINE=FEDERATED "
                      "CONNECTION='mysql://u@h/d/t';", 1, "ENGINE=FEDERATED"),
    "global.sql": ("SET GLOBAL general_log = 1;", 1, "SET GLOBAL"),
    "use.sql": ("USE {prod};", 1, "not a schema definition"),
    "rename_out.sql": ("CREATE TABLE t (a int);\nALTER TABLE t RENAME TO {prod}.t2;", 2,
                       "another database"),
    "procedure.sql": ("CREATE PROCEDURE p() SELECT 1;", 1, "CREATE PROCEDURE"),
    "trigger_elsewhere.sql": ("CREATE TABLE t (a int);\nCREATE TRIGGER x AFTER INSERT ON t "
                              "FOR EACH ROW INSERT INTO {prod}.t VALUES (666);", 2,
                              "another database"),
    "definer_table.sql": ("CREATE DEFINER=`root`@`%` TABLE x (a int);", 1, "DEFINER"),
    "trigger_outfile.sql": ("CREATE TRIGGER x AFTER INSERT ON t FOR EACH ROW "
                            "SELECT 1 INTO OUTFILE '/tmp/x';", 1, "cannot parse"),
    # A BEGIN ... END body passes when each of its statements would alone: not this one.
    "compound_trigger.sql": ("CREATE TABLE t2 (a int);\nDELIMITER ;;\nCREATE TRIGGER x "
                             "BEFORE INSERT ON t2 FOR EACH ROW BEGIN SET NEW.a = 1; "
                             "SELECT 1 INTO OUTFILE '/tmp/x'; END;;\n", 3, "cannot parse"),
    "compound_declare.sql": ("CREATE TABLE t2 (a int);\nCREATE TRIGGER x BEFORE INSERT ON "
                             "t2 FOR EACH ROW BEGIN DECLARE n int; SET NEW.a = 1; END;", 2,
                             "SET, INSERT, UPDATE and DELETE statements only"),
    "rename_elsewhere.sql": ("CREATE TABLE t2 (a int);\nRENAME TABLE t2 TO {prod}.t3;", 2,
                             "not a RENAME TABLE Lockplane can read"),
    "never_version.sql": ("/*M!999999\\- enable the sandbox mode */\n"
                          "CREATE TABLE t2 (a int);\nINSERT INTO t VALUES (2);", 3,
                          "not a schema definition"),
    "view_elsewhere.sql": ("CREATE SQL SECURITY INVOKER VIEW v AS SELECT a FROM {prod}.t "
                           "WITH CHECK OPTION;", 1, "another database"),
    "ansi_quotes.sql": ("SET sql_mode = 'ANSI_QUOTES';", 1, "ANSI_QUOTES"),
    "no_backslash.sql": ("SET @m = 'NO_BACKSLASH_ESCAPES';\nSET sql_mode = @m;", 2,
                         "copy of itself"),
    "default_engine.sql": ("SET default_storage_engine = FEDERATED;\nCREATE TABLE t2 (a int);",
                           1, "default_storage_engine"),
    "gbk.sql": ("SET NAMES gbk;", 1, "character set gbk"),
    "user_var_query.sql": ("SET @x = (SELECT count(*) FROM {prod}.t);", 1, "user variable"),
    "delimiter.sql": ("DELIMITER $$\nCREATE TRIGGER x BEFORE INSERT ON t FOR EACH ROW "
                      "BEGIN SET NEW.a = 1; END$$", 1, "DELIMITER"),
    # Combined sql_modes bring ANSI_QUOTES under another name: "a\" is then a name
    # ending in a backslash, and the text after it (a string to the screen) is code.
    "mssql_mode.sql": ('SET sql_mode=\'MSSQL\';\nCREATE TABLE t2 (`a\\` int NOT NULL);\n'
                       'CREATE VIEW v AS SELECT "a\\" FROM t2, {prod}.t -- ", 1 AS b\n;',
                       1, "ANSI_QUOTES"),
    "postgresql_mode.sql": ('SET sql_mode = \'POSTGRESQL\';\nCREATE TABLE t2 ("a\\" int '
                            'NOT NULL) ENGINE=CSV -- " int)\n;', 1, "ANSI_QUOTES"),
    "oracle_mode.sql": ("/*!40101 SET SQL_MODE='ORACLE' */;", 1, "ANSI_QUOTES"),
    "bitmask_mode.sql": ("CREATE TABLE t2 (a int);\nSET sql_mode = 4;", 2, "ANSI_QUOTES"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_files_are_refused_before_anything_runs(mysql_dsn: str, name: str) -> None:
    prod = mysql_dsn.rsplit("/", 1)[1]
    run(mysql_dsn, "CREATE TABLE t (a int)", "INSERT INTO t VALUES (1)")
    text, line, why = HOSTILE[name]
    with pytest.raises(BadInput) as exc:
        get_dialect("mysql").load_untrusted([(name, text.replace("{prod}", f"`{prod}`"))],
                                            mysql_dsn)
    message = str(exc.value)
    assert message.startswith(f"{name}:{line}: "), message
    assert why in message and "\n" not in message
    assert run(mysql_dsn, "SELECT a FROM t") == [(1,)]
    assert leftovers(mysql_dsn) == ([], [])


@pytest.mark.parametrize("space", ["\u00a0", "\u0085", "\u3000"])
def test_a_dash_comment_hides_nothing_from_the_screen(mysql_dsn: str, space: str) -> None:
    """sqlglot reads "--" and a Unicode space as a comment to the end of the line; the
    server wants an ASCII blank or control character there and runs the rest of the line.
    Here that rest makes the table CSV and fills it from a query, both refused by the
    screen: the screen blanks such a comment, so the server runs what was checked."""
    text = (f"CREATE TABLE t (`{space}` int NOT NULL, a int NOT NULL DEFAULT (1 "
            f"--{space} + 1)) ENGINE=CSV SELECT 7 AS `{space}`, 8 AS a, ((1\n));\n")
    loaded = get_dialect("mysql").load_untrusted([("dash.sql", text)], mysql_dsn)
    (table,) = loaded.tables
    assert table.engine == "InnoDB"
    assert [(c.name, c.default) for c in table.columns] == [(space, None), ("a", "1")]
    assert leftovers(mysql_dsn) == ([], [])


def test_a_default_sql_mode_with_ansi_quotes_does_not_change_how_files_read(
        mysql_dsn: str) -> None:
    """With ANSI_QUOTES in the server's default sql_mode, "x" would be a name: the
    sandbox session reads the file as the screen did, "x" a string. (The session's mode
    stands in for the server's default: changing the global one would reach other tests.)"""
    with connect(mysql_dsn) as session:
        session.execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES')")
        read_as_screened(session)
        assert "ANSI_QUOTES" not in session.query("SELECT @@SESSION.sql_mode")[0][0]
        session.execute('CREATE TABLE t (a varchar(5) DEFAULT "x")')
        assert session.introspect().tables[0].columns[0].default == "'x'"


def test_the_sandbox_user_reaches_nothing_but_its_database(mysql_dsn: str) -> None:
    """The second line of defence: statements the screen would refuse, sent straight to
    the sandbox session, fail for lack of privilege."""
    prod = mysql_dsn.rsplit("/", 1)[1]
    run(mysql_dsn, "CREATE TABLE t (a int)", "INSERT INTO t VALUES (1)")
    box = Sandbox(get_dialect("mysql"), mysql_dsn)  # type: ignore[arg-type]
    try:
        box.open()
        assert box.session is not None
        box.session.execute("CREATE TABLE mine (a int)")  # its own database: fine
        for sql in (f"DROP DATABASE `{prod}`", f"INSERT INTO `{prod}`.t VALUES (666)",
                    f"SELECT * FROM `{prod}`.t", "GRANT ALL ON *.* TO CURRENT_USER",
                    "CREATE USER 'evil'@'%'", "SELECT * FROM mysql.user",
                    "LOAD DATA INFILE '/etc/hostname' INTO TABLE mine",
                    "SELECT 1 INTO OUTFILE '/tmp/lockplane_should_not_exist'",
                    "SELECT LOAD_FILE('/etc/hostname') IS NOT NULL AND 1/0",
                    "SET GLOBAL general_log = 1"):
            with pytest.raises(pymysql.Error):
                box.session.execute(sql)
                if "LOAD_FILE" in sql:  # no error, but no file either: NULL
                    rows = box.session.query(sql.split(" IS NOT")[0])
                    assert rows == [(None,)]
                    raise pymysql.err.OperationalError(0, "NULL, as expected")
        # '_' in a granted database name is a wildcard: the grant must be for this name
        # alone, or the user may create look-alike databases that outlive the load.
        look_alike = box.name.replace("_", "X")
        with pytest.raises(pymysql.Error):
            box.session.execute(f"CREATE DATABASE `{look_alike}`")
    finally:
        box.close()
    assert run(mysql_dsn, "SELECT a FROM t") == [(1,)]
    assert not os.path.exists("/tmp/lockplane_should_not_exist")
    assert leftovers(mysql_dsn) == ([], [])


def test_server_errors_name_file_and_line(mysql_dsn: str) -> None:
    text = "CREATE TABLE a (id int PRIMARY KEY);\n\nCREATE TABLE b (x int,\n" \
           "  FOREIGN KEY (x) REFERENCES missing (id));\n"
    with pytest.raises(BadInput, match=r"^b\.sql:3: .*"):
        get_dialect("mysql").load_untrusted([("b.sql", text)], mysql_dsn)
    assert leftovers(mysql_dsn) == ([], [])


def test_lockplane_tables_are_refused(mysql_dsn: str) -> None:
    with pytest.raises(BadInput, match="_lockplane_"):
        get_dialect("mysql").load_untrusted(
            [("s.sql", "CREATE TABLE _lockplane_migrations (id int);")], mysql_dsn)


def test_a_killed_process_leaves_nothing_for_long(mysql_dsn: str) -> None:
    script = (
        "import sys, time\n"
        "from lockplane.dialects import get_dialect\n"
        "from lockplane.dialects.mysql.sandbox import Sandbox\n"
        "box = Sandbox(get_dialect('mysql'), sys.argv[1])\n"
        "box.open()\n"
        "print(box.name, box.user, flush=True)\n"
        "time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", script, mysql_dsn], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        name, user = proc.stdout.readline().split()
        assert name in scratch_objects(mysql_dsn)[0] and user in scratch_objects(mysql_dsn)[1]
        # While its owner lives, another run leaves it alone.
        get_dialect("mysql").load_untrusted([("s.sql", "CREATE TABLE t (a int);")], mysql_dsn)
        assert name in scratch_objects(mysql_dsn)[0]
        assert name not in leftovers(mysql_dsn)[0]
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 10
    while True:  # the server notices the dead session's socket and frees its lock
        get_dialect("mysql").load_untrusted([("s.sql", "CREATE TABLE t (a int);")], mysql_dsn)
        gone = name not in scratch_objects(mysql_dsn)[0] \
            and user not in scratch_objects(mysql_dsn)[1]
        if gone or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert gone
    assert leftovers(mysql_dsn) == ([], [])


def test_scratch_for_lockplanes_own_sql(mysql_dsn: str) -> None:
    with get_dialect("mysql").scratch(mysql_dsn) as db:
        name = db.database
        assert name.startswith(SCRATCH_PREFIX)
        db.execute("CREATE TABLE t (a int)")
        assert [t.name for t in db.introspect().tables] == ["t"]
    assert name not in scratch_objects(mysql_dsn)[0]
    with pytest.raises(BadInput, match="Unknown database"):
        connect(with_database(mysql_dsn, name))
