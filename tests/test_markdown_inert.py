"""Markdown that Prefect artifacts show: text from schemas (names in warnings, SQL) is
inert, whatever it holds (no heading, link, image, HTML or fence that it could open)."""

from __future__ import annotations

from lockplane.markdown import drift_markdown, result_markdown
from lockplane.plan import Plan, Step

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
