"""``lockplane drift check``: every environment against its desired schema, and each other.

The report (text, markdown or JSON) goes to stdout; exit 0 without drift (or with drift
that is all acknowledged with ``lockplane drift ack``, still listed), 4 with drift, 1 when
an environment could not be checked (the others are still checked and reported).
"""

from __future__ import annotations

from typing import Annotated

import typer

from .errors import BadInput

drift_app = typer.Typer(name="drift", help="Drift between environments and their desired "
                        "schema.", no_args_is_help=True, add_completion=False)


@drift_app.command("check")
def check(
    environment: Annotated[list[str] | None, typer.Option("--environment", "-e", help="an environment of lockplane.toml (repeatable)")] = None,
    all_environments: Annotated[bool, typer.Option("--all-environments", help="every environment of lockplane.toml")] = False,
    format: Annotated[str, typer.Option("--format", help="text, json or markdown")] = "text",
    ignore: Annotated[list[str] | None, typer.Option("--ignore", help="drift to accept: [TYPE:]GLOB on object keys, e.g. public.users.emergency_* or table:audit_* (repeatable)")] = None,
    no_compare: Annotated[bool, typer.Option("--no-compare", help="do not compare environments with each other")] = False,
    no_history: Annotated[bool, typer.Option("--no-history", help="do not read the migration histories")] = False,
    output: Annotated[str | None, typer.Option("--output", "-o", help="write the report here")] = None,
) -> None:
    """Report what each environment's database has, lacks or has differently from its
    desired schema (schema_path), how environments differ from each other, and what their
    migration histories disagree on."""
    from .drift import check_drift, parse_rules, render, targets_from_config
    from .drift.render import FORMATS
    from .report import write_out

    if format not in FORMATS:
        raise BadInput(f"--format must be text, json or markdown, not {format!r}")
    if bool(environment) == all_environments:
        raise BadInput("give --environment NAME (repeatable) or --all-environments")
    patterns = list(ignore or [])
    parse_rules(patterns)  # bad patterns are bad input before anything connects
    targets = targets_from_config(None if all_environments else environment)
    report = check_drift(targets, ignore=patterns, compare_environments=not no_compare,
                         history=not no_history)
    from .drift.memory import read_acknowledgements  # drift ack: listed, exit 0

    read_acknowledgements(targets, report.environments)
    write_out(render(report, format).rstrip("\n"), output)
    if report.exit_code:
        raise typer.Exit(report.exit_code)


def register(app: typer.Typer) -> None:
    from .cli_drift_ack import register as register_ack

    register_ack(drift_app)
    app.add_typer(drift_app, name="drift")
