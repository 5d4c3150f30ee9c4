"""``lockplane ci-report``: the pull-request comment (lockplane.ci_report does the work).

The comment goes to --output or stdout; exit 0, or 3 after writing it when steps the
safety level refuses, or lint findings at --lint-level, need attention; 2 on bad input.
"""

from __future__ import annotations

from typing import Annotated

import typer

from .errors import SafetyRefusal


def ci_report(
    plan: Annotated[str | None, typer.Option("--plan", help="plan JSON (lockplane plan -o)")] = None,
    lint: Annotated[str | None, typer.Option("--lint", help="lint results (lockplane lint --format json)")] = None,
    drift: Annotated[str | None, typer.Option("--drift", help="drift report (lockplane drift check --format json)")] = None,
    output: Annotated[str | None, typer.Option("--output", "-o", help="write the comment here")] = None,
    safety: Annotated[str, typer.Option("--safety", help="judge the plan at this level: strict | moderate | permissive")] = "moderate",
    acknowledge: Annotated[list[str] | None, typer.Option("--acknowledge", help="dangerous steps acknowledged: rule@schema.table, a rule id or a step number (repeatable)")] = None,
    lint_level: Annotated[str, typer.Option("--lint-level", help="fail on lint findings of this class or worse (none: never)")] = "dangerous",
) -> None:
    """Write a pull-request comment (Markdown) from a plan, lint results and a drift
    report: a one-line verdict, the steps with their locks, findings and rollbacks, lint
    findings with file:line, and drift. Exit 3 (after writing it) when steps the safety
    level refuses, or lint findings at --lint-level, need attention."""
    from .ci_report import run

    v = run(plan, lint, drift, output, level=safety, acknowledged=acknowledge or [],
            lint_level=lint_level)
    if v.failing:
        raise SafetyRefusal("ci-report: " + "; ".join(v.failing))


def register(app: typer.Typer) -> None:
    app.command("ci-report")(ci_report)
