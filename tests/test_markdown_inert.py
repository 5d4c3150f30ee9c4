"""Text from schemas shown to people: in the Markdown of Prefect artifacts (names in
warnings, SQL) it is inert, whatever it holds (no heading, link, image, HTML or fence
that it could open); on a terminal it carries no control sequence."""

from __future__ import annotations

import os
import pty
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import psycopg

from lockplane.backfill import BackfillOptions, BackfillResult, make_spec, plan_backfill
from lockplane.backfill import plan_markdown as backfill_plan_markdown
from lockplane.backfill import result_markdown as backfill_result
from lockplane.markdown import drift_markdown, result_markdown
from lockplane.plan import Plan, Step

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = ("t.x\n## Approved by the DBA ![x](https://evil.example/p.png) "
           "<img src=x onerror=alert(1)> [docs](https://evil.example)")


def test_a_result_s_warnings_are_inert() -> None:
    """A warning names the schema's tables and columns (a step held back by its condition:
    '<table>.<column> stays nullable ...'); it went into the result artifact as raw
    Markdown, so a column's name could add a heading, an image or a link."""
    md = result_markdown({"status": "applied", "steps_run": 1, "migration_id": 1,
                          "hash_after": "ab" * 32,
                          "warnings": [HOSTILE + " stays nullable: 3 row(s) have no value"]},
                         "prod")
    lines = md.splitlines()
    assert not any(ln.startswith("## Approved") for ln in lines), md
    assert "](" not in md and "<img" not in md, md


def test_drift_sql_cannot_close_its_fence() -> None:
    plan = Plan(source_hash="a" * 64, target_hash="b" * 64, steps=[Step(
        description="Add comment", sql=["COMMENT ON TABLE t IS 'x\n```\n" + HOSTILE + "'"])])
    md = drift_markdown(plan, "prod", "schema/")
    fence = "`" * 4
    assert f"{fence}sql" in md and md.rstrip().endswith(fence), md


def test_stdout_on_a_terminal_carries_no_terminal_controls(tmp_path: Path) -> None:
    """introspect / plan / runbook ... print SQL and JSON on stdout, with names as the
    schema has them: on a terminal a name holding escape sequences cleared it, retitled
    it or hid what followed. A terminal gets them as escapes; a pipe gets the text exact."""
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute('CREATE TABLE "t\x1b[2J\x1b]0;pwned\x07" (a INTEGER)')
    args = [sys.executable, "-m", "lockplane", "introspect", "--target",
            f"sqlite:///{db}", "--format", "sql"]
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.run(args, stdout=secondary, stderr=subprocess.PIPE, cwd=ROOT,
                              timeout=120)
        os.close(secondary)
        secondary = -1
        shown = b""
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(primary)
        if secondary >= 0:
            os.close(secondary)
    assert proc.returncode == 0, proc.stderr
    assert b"CREATE TABLE" in shown and b"\x1b" not in shown and b"\x07" not in shown, shown
    piped = subprocess.run(args, capture_output=True, cwd=ROOT, timeout=120)
    assert b"\x1b[2J" in piped.stdout  # (exact where a program reads it)


def test_a_backfill_s_artifacts_are_inert(pg_dsn: str) -> None:
    """The backfill flow's plan and result artifacts name the table and show --set /
    --where: a name holding a backtick, a newline, a heading or a link added to the page
    (single-backtick spans, a plain ```sql fence)."""
    table = "t`\n## Approved ![x](https://evil.example/p.png) ```"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE TABLE "{table}" (id int PRIMARY KEY, "v`x" text)')
        conn.execute(f'INSERT INTO "{table}" SELECT g, NULL FROM generate_series(1, 5) g')
    plan = plan_backfill(pg_dsn, make_spec(f'"{table}"', ["\"v`x\" = '```\n# x'"],
                                           "\"v`x\" IS NULL"), BackfillOptions())
    result = BackfillResult(id=plan.id, table=table, status="done", rows_scanned=5,
                            rows_updated=5, batches=1, seconds=0.1, lock_retries=0,
                            chunks=1)
    for md in (backfill_plan_markdown(plan, pg_dsn), backfill_result(result, pg_dsn)):
        outside, fence = [], None  # the lines a renderer reads as Markdown
        for ln in md.splitlines():
            if fence is None and ln.startswith("```"):
                fence = ln.rstrip("sql")
            elif fence is not None:
                if ln == fence:
                    fence = None
            else:
                outside.append(ln)
        assert fence is None, md  # the SQL block closes where it should
        assert not any(ln.lstrip().startswith(("## Approved", "# x")) for ln in outside), md
        # (code spans taken out, escaped backticks are text)
        prose = [re.sub(r"(`+)(?!`).*?(?<!`)\1(?!`)", "", ln.replace("\\`", ""))
                 for ln in outside]
        assert not any("](" in ln or "`" in ln for ln in prose), md
