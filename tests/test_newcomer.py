"""The newcomer path (issue 12 item 8): the README's commands, help screens without
placeholders, output that is not a terminal left unwrapped, a confirmation that cannot be
asked as a usage error, and a rollback refusal whose suggestion works."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_inprocess import lockplane

ROOT = Path(__file__).resolve().parent.parent
LOCKPLANE = [sys.executable, "-m", "lockplane"]


def run(*args: str, cwd: Path | None = None, stdin: str = "") -> subprocess.CompletedProcess[str]:
    # stdin is a pipe, stdout and stderr are pipes: nothing here is a terminal.
    env = {**os.environ, "COLUMNS": "80"}
    return subprocess.run([*LOCKPLANE, *args], cwd=cwd, input=stdin, capture_output=True,
                          text=True, timeout=120, env=env)


def _commands() -> list[list[str]]:
    out = lockplane("--help").stdout
    names = re.findall(r"^│ ([a-z][a-z-]+) ", out, re.MULTILINE)
    assert "apply" in names and "rollback" in names, out
    return [[], *[[n] for n in names], ["backfill", "status"], ["backfill", "cancel"]]


def test_help_screens_show_no_bool_placeholder(monkeypatch: pytest.MonkeyPatch) -> None:
    # In this process (tests/cli_inprocess.py): the same entry point and help screens as
    # the console script at 80 columns, without a ~1.4 s start-up for each of ~25 screens.
    monkeypatch.setenv("COLUMNS", "80")
    screens = {}
    for command in _commands():
        proc = lockplane(*command, "--help")
        assert proc.code == 0, (command, proc.stderr)
        assert "<bool>" not in proc.stdout, (command, proc.stdout)
        screens[tuple(command)] = proc.stdout
    # Flags still listed, options still say what they take.
    apply_help = screens[("apply",)]
    assert "--auto-approve" in apply_help and "<str>" in apply_help


def test_readme_links_only_to_files_in_the_repository() -> None:
    text = (ROOT / "README.md").read_text()
    assert "../" not in text and "/work/" not in text
    for target in re.findall(r"\]\(([^)#]+)", text):
        if not re.match(r"https?://", target):
            assert (ROOT / target).exists(), target
    first = re.search(r"```bash\n(.*?)\n", text)
    assert first and first.group(1).startswith("bash scripts/demo.sh"), text[:300]
    assert "source .venv/bin/activate" in text


def test_demo_script_says_how_to_get_lockplane_on_the_path() -> None:
    demo = (ROOT / "scripts" / "demo.sh").read_text()
    assert "source .venv/bin/activate" in demo
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert "pip install" in setup and "--quiet" not in setup  # progress, not silence


def _sqlite_with_nickname(tmp_path: Path) -> tuple[str, Path]:
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    (tmp_path / "schema.sql").write_text(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, nickname TEXT);\n")
    dsn = f"sqlite:///{db}"
    plan = tmp_path / "plan.json"
    # The plan is only the setup (in this process); what the tests check runs as the
    # console script does, with pipes for stdin, stdout and stderr.
    proc = lockplane("plan", "--from", dsn, "--to", str(tmp_path / "schema.sql"), "-o", str(plan))
    assert proc.code == 0, proc.stderr
    return dsn, plan


def test_missing_confirmation_without_a_terminal_is_a_usage_error(tmp_path: Path) -> None:
    dsn, plan = _sqlite_with_nickname(tmp_path)
    proc = run("apply", str(plan), "--target", dsn, "--skip-shadow")
    assert proc.returncode == 2, proc.stderr
    last = [ln for ln in proc.stderr.splitlines() if ln.strip()][-1]
    assert last.startswith("error:") and "--auto-approve" in last and "interactively" in last
    assert "Traceback" not in proc.stderr
    with sqlite3.connect(tmp_path / "app.db") as conn:  # nothing applied
        assert [r[1] for r in conn.execute("PRAGMA table_info(users)")] == ["id", "name"]


def test_rollback_refusal_names_a_rule_and_an_option_that_works(tmp_path: Path) -> None:
    dsn, plan = _sqlite_with_nickname(tmp_path)
    assert lockplane("apply", str(plan), "--target", dsn, "--auto-approve").code == 0
    with sqlite3.connect(tmp_path / "app.db") as conn:
        conn.execute("INSERT INTO users VALUES (1, 'a', 'x')")
    refused = run("rollback", str(plan), "--target", dsn, "--auto-approve")
    assert refused.returncode == 3, refused.stderr
    # Not wrapped at 80 columns although COLUMNS=80: the refusal is one line.
    last = [ln for ln in refused.stderr.splitlines() if ln.strip()][-1]
    assert last.startswith("error:") and "rollback-loses-data" in last, refused.stderr
    suggested = re.search(r"acknowledge it with (--acknowledge \S+)", last)
    assert suggested, last
    option, value = suggested.group(1).split(" ", 1)
    assert option in lockplane("rollback", "--help").stdout
    done = lockplane("rollback", str(plan), "--target", dsn, "--auto-approve", option, value)
    assert done.code == 0, done.stderr
    with sqlite3.connect(tmp_path / "app.db") as conn:
        assert [r[1] for r in conn.execute("PRAGMA table_info(users)")] == ["id", "name"]


def test_output_that_is_not_a_terminal_is_not_wrapped(tmp_path: Path) -> None:
    dsn, plan = _sqlite_with_nickname(tmp_path)
    long_name = "a_really_long_column_name_" * 4
    (tmp_path / "schema.sql").write_text(
        f"CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, {long_name} TEXT);\n")
    proc = run("plan", "--from", dsn, "--to", str(tmp_path / "schema.sql"), "--format", "sql")
    assert proc.returncode == 0, proc.stderr
    assert any(long_name in ln and "ADD COLUMN" in ln for ln in proc.stdout.splitlines()), \
        proc.stdout
    assert any(long_name in ln and len(ln) > 80 for ln in proc.stderr.splitlines()), \
        proc.stderr


def test_stderr_console_is_wide_when_not_a_tty() -> None:
    code = ("from rich.table import Table; from lockplane.report import err\n"
            "t = Table(); t.add_column('x'); t.add_row('y' * 150); err.print(t)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "80"})
    assert "y" * 150 in proc.stderr, proc.stderr
