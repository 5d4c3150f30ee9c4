"""``lockplane export --to pt-osc|gh-ost``: a MySQL plan as a script in which each step
that would copy its table runs through an online schema change tool.

pt-online-schema-change (Debian's percona-toolkit, installed by scripts/setup.sh) runs for
real against MariaDB, with a writer inserting rows meanwhile: the database ends at the
plan's target hash (what Lockplane's own apply reaches) with every row kept. gh-ost is a
Go binary that cannot be installed here: its command line is checked by shape only (read
back with shlex), untested against the tool itself.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pymysql
import pytest

from lockplane.dialects import connect
from lockplane.dialects.mysql import parse_dsn
from lockplane.export.osc import offer_online_schema_change
from lockplane.plan import load_plan
from tests.cli_inprocess import lockplane
from tests.test_mysql_sandbox import run

TABLE = 'we,ird "t'  # a comma (pt-osc's DSN separator), a space and a quote
CREATE = (f"CREATE TABLE `{TABLE}` (id int PRIMARY KEY AUTO_INCREMENT, v int NOT NULL, "
          "note varchar(20))")
# A STORED generated column makes MariaDB copy the table (ALGORITHM=COPY); the plain
# column is INSTANT and stays SQL.
WANTED = (f"CREATE TABLE `{TABLE}` (id int PRIMARY KEY AUTO_INCREMENT, v int NOT NULL, "
          "note varchar(20), w int AS (v * 2) STORED, x varchar(10) DEFAULT 'it''s');\n")
PASSWORD = "s3cret-pw"  # never in a script


def _plan(dsn: str, tmp_path: Path, wanted: str = WANTED) -> Path:
    schema = tmp_path / "schema.sql"
    schema.write_text(wanted)
    plan = tmp_path / "plan.json"
    res = lockplane("plan", "--from", dsn, "--to", str(schema), "-o", str(plan), "-q")
    assert res.code == 0, res.output
    return plan


def _with_password(dsn: str) -> str:
    return dsn.replace("root@", f"root:{PASSWORD}@", 1)


def _commands(script: str, program: str) -> list[list[str]]:
    """Each ``program`` command of a script, as the shell would split it."""
    out = []
    for block in script.replace("\\\n", " ").splitlines():
        if block.startswith(program + " "):
            out.append(shlex.split(block))
    return out


def test_plan_carries_the_alter_and_offers_the_tools(mysql_dsn: str, tmp_path: Path) -> None:
    run(mysql_dsn, CREATE)
    plan = load_plan(str(_plan(mysql_dsn, tmp_path)))
    copy = [s for s in plan.steps if s.lock and s.lock.rewrites_table]
    assert len(copy) == 1 and copy[0].alter is not None
    assert copy[0].alter.table == TABLE and copy[0].alter.foreign_keys == []
    assert copy[0].alter.clauses == ["ADD COLUMN `w` int(11) GENERATED ALWAYS AS (`v` * 2) "
                                     "STORED"]
    # Over the size threshold (here: any size), the step says how to run it online.
    offer_online_schema_change(plan, mysql_dsn, above_bytes=0)
    assert any("lockplane export --to gh-ost PLAN" in m and "pt-osc" in m
               for m in copy[0].messages)
    plain = [s for s in plan.steps if s is not copy[0]]
    assert plain and not any("export --to" in m for s in plain for m in s.messages)


@pytest.mark.skipif(shutil.which("pt-online-schema-change") is None,
                    reason="percona-toolkit is not installed (scripts/setup.sh installs it)")
def test_pt_osc_script_runs_with_a_writer(mysql_dsn: str, tmp_path: Path) -> None:
    run(mysql_dsn, CREATE, f"INSERT INTO `{TABLE}` (v, note) SELECT seq, 'ünï 😀' "
                           "FROM seq_1_to_8000")
    plan_file = _plan(mysql_dsn, tmp_path)
    plan = json.loads(plan_file.read_text())
    options = tmp_path / "my.cnf"  # the password lives here, the script only names it
    options.write_text("[client]\nuser=root\npassword=\n")
    script = tmp_path / "osc.sh"
    res = lockplane("export", "--to", "pt-osc", str(plan_file), "--target",
                    _with_password(mysql_dsn), "--execute", "--defaults-file", str(options),
                    "--drop-old-table", "-o", str(script))
    assert res.code == 0, res.output
    text = script.read_text()
    assert PASSWORD not in text + res.output
    (pt,) = _commands(text, "pt-online-schema-change")
    db = parse_dsn(mysql_dsn).database
    assert pt[-1] == (f"h=127.0.0.1,P=3306,F={options},A=utf8,u=root,D={db},"
                      f"t={TABLE.replace(',', chr(92) + ',')}")
    assert "--execute" in pt and "--no-drop-old-table" not in pt

    inserted = 0
    done = threading.Event()

    def writer() -> None:  # inserts while pt-osc copies and swaps
        nonlocal inserted
        with pymysql.connect(**parse_dsn(mysql_dsn).kwargs(), autocommit=True) as conn:
            while not done.is_set():
                with conn.cursor() as cur:
                    try:
                        cur.execute(f"INSERT INTO `{TABLE}` (v, note) VALUES (%s, 'new')",
                                    (100000 + inserted,))
                    except pymysql.err.OperationalError as exc:
                        if exc.args[0] != 1213:
                            raise
                        continue  # a deadlock with pt-osc's copy: the client tries again
                inserted += 1

    thread = threading.Thread(target=writer)
    thread.start()
    env = {**os.environ, "LOCKPLANE_TARGET": mysql_dsn,
           "LOCKPLANE": str(Path(sys.executable).parent / "lockplane")}
    try:
        proc = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True,
                              timeout=300)
    finally:
        done.set()
        thread.join()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Successfully altered" in proc.stdout
    assert inserted > 0
    with connect(mysql_dsn) as conn:
        # The script checked it too: where Lockplane's own apply of this plan leads.
        assert conn.introspect().hash() == plan["target_hash"]
        assert conn.query(f"SELECT count(*), sum(w = v * 2), sum(x = 'it''s') "
                          f"FROM `{TABLE}`") == [(8000 + inserted, 8000 + inserted,
                                                  8000 + inserted)]
        assert conn.query(f"SELECT note, count(*) FROM `{TABLE}` GROUP BY note "
                          "ORDER BY note") == [("new", inserted), ("ünï 😀", 8000)]
        assert conn.query("SHOW TABLES") == [(TABLE,)]  # no _old, _new or triggers left


def test_pt_osc_dry_run_changes_nothing(mysql_dsn: str, tmp_path: Path) -> None:
    run(mysql_dsn, CREATE)
    plan_file = _plan(mysql_dsn, tmp_path)
    res = lockplane("export", "--to", "pt-osc", str(plan_file), "--target",
                    _with_password(mysql_dsn))
    assert res.code == 0, res.output
    assert PASSWORD not in res.output
    (pt,) = _commands(res.stdout, "pt-online-schema-change")
    assert "--dry-run" in pt and "--ask-pass" in pt and "--no-drop-old-table" in pt
    assert "--execute" not in pt
    assert "--max-load=Threads_running=25" in pt and "--critical-load=Threads_running=50" in pt
    assert "--chunk-time=0.5" in pt
    # plain SQL steps are printed, not run, and no target check is made
    assert "printf 'would run: %s\\n'" in res.stdout and "where the plan leads" not in res.stdout
    if shutil.which("pt-online-schema-change"):
        with connect(mysql_dsn) as conn:
            before = conn.introspect().hash()
        env = {**os.environ, "LOCKPLANE_TARGET": mysql_dsn,
               "LOCKPLANE": str(Path(sys.executable).parent / "lockplane")}
        proc = subprocess.run(["sh", "-c", res.stdout], env=env, capture_output=True,
                              text=True, timeout=120, input="\n")  # --ask-pass: empty
        assert proc.returncode == 0, proc.stdout + proc.stderr
        with connect(mysql_dsn) as conn:
            assert conn.introspect().hash() == before


def test_gh_ost_command_line(mysql_dsn: str, tmp_path: Path) -> None:
    """The shape of gh-ost's command line (gh-ost itself is not installed here)."""
    run(mysql_dsn, CREATE)
    plan_file = _plan(mysql_dsn, tmp_path)
    plan = load_plan(str(plan_file))
    res = lockplane("export", "--to", "gh-ost", str(plan_file), "--target",
                    _with_password(mysql_dsn))
    assert res.code == 0, res.output
    assert PASSWORD not in res.output
    (ghost,) = _commands(res.stdout, "gh-ost")
    flags = dict(a.split("=", 1) if "=" in a else (a, "") for a in ghost[1:])
    copy = next(s for s in plan.steps if s.alter and s.lock and s.lock.rewrites_table)
    assert copy.alter is not None
    assert flags["--alter"] == ", ".join(copy.alter.clauses)
    assert "ALGORITHM" not in flags["--alter"]
    assert flags["--database"] == parse_dsn(mysql_dsn).database
    assert flags["--table"] == TABLE
    assert (flags["--host"], flags["--port"], flags["--user"]) == ("127.0.0.1", "3306", "root")
    assert "--ask-pass" in flags and "--allow-on-master" in flags
    assert flags["--chunk-size"] == "1000" and flags["--max-load"] == "Threads_running=25"
    assert flags["--critical-load"] == "Threads_running=50"
    flag_file = flags["--postpone-cut-over-flag-file"]
    assert f"touch {flag_file}" in res.stdout
    assert "--execute" not in flags and "--assume-rbr" not in flags
    assert "--assume-rbr is left off" in res.stdout
    # the other step stays the plan's own SQL, in order, between the two hash checks
    lines = res.stdout.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("sql "))
    assert shlex.split(lines[first])[1] == next(s for s in plan.steps if s is not copy).sql[0]
    assert lines.index(f'at_hash {plan.source_hash} "the state this plan was made for"') < first

    res = lockplane("export", "--to", "gh-ost", str(plan_file), "--target", mysql_dsn,
                    "--execute", "--defaults-file", "/etc/lockplane/my.cnf")
    assert res.code == 0, res.output
    (ghost,) = _commands(res.stdout, "gh-ost")
    assert "--execute" in ghost and "--conf=/etc/lockplane/my.cnf" in ghost
    assert "--ask-pass" not in ghost
    assert f'at_hash {plan.target_hash} "where the plan leads"' in res.stdout


def test_the_alter_is_covered_by_the_plan_id(mysql_dsn: str, tmp_path: Path) -> None:
    """What the tool runs is the plan's ``alter``: an edited one is refused like edited
    SQL (exit 3), before anything is written."""
    run(mysql_dsn, CREATE)
    plan_file = _plan(mysql_dsn, tmp_path)
    data = json.loads(plan_file.read_text())
    step = next(s for s in data["steps"] if s.get("alter") and s["lock"]["rewrites_table"])
    step["alter"]["clauses"] = ["DROP COLUMN `v`"]
    plan_file.write_text(json.dumps(data))
    res = lockplane("export", "--to", "pt-osc", str(plan_file), "--target", mysql_dsn)
    assert res.code == 3 and "plan_id" in res.stderr and not res.stdout, res.output


def _one_line_refusal(res: object, *words: str) -> None:
    assert res.code == 2, res.output  # type: ignore[attr-defined]
    err = res.stderr.strip()  # type: ignore[attr-defined]
    assert "\n" not in err and "Traceback" not in err, err
    for w in words:
        assert w in err, err


def test_refusals(mysql_dsn: str, pg_dsn: str, tmp_path: Path) -> None:
    # gh-ost and foreign keys (the table is referenced by another)
    run(mysql_dsn, CREATE, f"CREATE TABLE child (id int PRIMARY KEY, t_id int, "
                           f"CONSTRAINT child_t FOREIGN KEY (t_id) REFERENCES `{TABLE}` (id))")
    plan_file = _plan(mysql_dsn, tmp_path, WANTED.replace(";\n", ";\n") + (
        f"CREATE TABLE child (id int PRIMARY KEY, t_id int, CONSTRAINT child_t "
        f"FOREIGN KEY (t_id) REFERENCES `{TABLE}` (id));\n"))
    res = lockplane("export", "--to", "gh-ost", str(plan_file), "--target", mysql_dsn)
    _one_line_refusal(res, "gh-ost does not support foreign keys", "child.child_t")
    res = lockplane("export", "--to", "pt-osc", str(plan_file), "--target", mysql_dsn)
    assert res.code == 0 and "--alter-foreign-keys-method" in res.stderr, res.output
    # a PostgreSQL plan
    pg_schema = tmp_path / "pg.sql"
    pg_schema.write_text("CREATE TABLE t (id int PRIMARY KEY);\n")
    pg_plan = tmp_path / "pg.json"
    assert lockplane("plan", "--from", pg_dsn, "--to", str(pg_schema), "-o",
                     str(pg_plan), "-q").code == 0
    res = lockplane("export", "--to", "pt-osc", str(pg_plan), "--target", mysql_dsn)
    _one_line_refusal(res, "pt-osc changes MySQL tables; this plan is for postgres")
    # no target, a target of another dialect
    _one_line_refusal(lockplane("export", "--to", "gh-ost", str(plan_file)), "--target")
    _one_line_refusal(lockplane("export", "--to", "gh-ost", str(plan_file), "--target",
                                pg_dsn), "must be a mysql database URL")
    _one_line_refusal(lockplane("export", "--to", "flyway", str(plan_file)), "--to flyway")


def test_names_the_tools_cannot_quote(mysql_dsn: str, tmp_path: Path) -> None:
    run(mysql_dsn, "CREATE TABLE `a``b` (id int PRIMARY KEY, v int)")
    plan_file = _plan(mysql_dsn, tmp_path, "CREATE TABLE `a``b` (id int PRIMARY KEY, v int, "
                                           "w int AS (v + 1) STORED);\n")
    for tool in ("gh-ost", "pt-osc"):
        res = lockplane("export", "--to", tool, str(plan_file), "--target", mysql_dsn)
        _one_line_refusal(res, "contains a backtick")
    # pt-osc mangles non-ASCII names (Percona Toolkit 3.2); gh-ost takes them
    run(mysql_dsn, "CREATE TABLE `tü` (id int PRIMARY KEY, v int)")
    plan_file = _plan(mysql_dsn, tmp_path, "CREATE TABLE `a``b` (id int PRIMARY KEY, v int);\n"
                      "CREATE TABLE `tü` (id int PRIMARY KEY, v int, w int AS (v) STORED);\n")
    res = lockplane("export", "--to", "pt-osc", str(plan_file), "--target", mysql_dsn)
    _one_line_refusal(res, "is not ASCII")
    res = lockplane("export", "--to", "gh-ost", str(plan_file), "--target", mysql_dsn)
    assert res.code == 0 and "--table=tü" in res.stdout, res.output


def test_the_plan_s_hashes_cannot_run_commands(tmp_path: Path) -> None:
    """The hashes come from the plan file, which can be edited and resealed without a key:
    on 4c305cb the script wrote them unquoted (`at_hash $(touch ...) ...`), and running it
    ran the command. Every value from the plan is quoted for the shell now."""
    from lockplane.integrity import seal_plan
    from lockplane.plan import Plan

    canary = tmp_path / "pwned"
    plan = seal_plan(Plan.model_validate({
        "source_hash": f"$(touch {canary})", "target_hash": f"x; touch {canary}; #",
        "dialect": "mysql", "steps": [{"description": "Add column c to t", "kind": "add_column",
                                       "sql": ["ALTER TABLE `t` ADD COLUMN `c` int"],
                                       "table": "t", "safety": "safe"}]}))
    path = tmp_path / "plan.json"
    path.write_text(plan.model_dump_json(by_alias=True, exclude_none=True))
    for tool in ("gh-ost", "pt-osc"):
        res = lockplane("export", "--to", tool, str(path), "--target",
                        "mysql://root@127.0.0.1/x", "--execute")
        assert res.code == 0, res.output
        checks = [shlex.split(ln) for ln in res.stdout.splitlines()
                  if ln.startswith("at_hash ")]
        assert [c[1] for c in checks] == [plan.source_hash, plan.target_hash], checks
        script = tmp_path / "x.sh"
        script.write_text(res.stdout)
        done = subprocess.run(["sh", str(script)], capture_output=True, text=True,
                              env={**os.environ, "LOCKPLANE": "true", "LOCKPLANE_TARGET": "x"})
        assert done.returncode == 3 and not canary.exists(), (done, canary.exists())
