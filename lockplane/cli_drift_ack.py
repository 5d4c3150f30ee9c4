"""``lockplane drift ack``: this drift is known; stop telling it until a date or until it
changes.

The environment is checked now (every environment of lockplane.toml, so its migration
history is compared as the scheduled check compares it) and the acknowledgement of its
current drift, by fingerprint, is stored in its own database (``lockplane.drift_state``,
see lockplane.drift.memory), where the scheduled drift-check flow and ``lockplane drift
check`` read it. ``--fingerprint`` (from the Slack message or the artifact) makes sure
the drift acknowledged is the drift that was read: if it changed since, nothing is
stored (exit 3).

``--remove`` ends the acknowledgement of the current drift (the scheduled check then
posts once that it is no longer acknowledged).

Exit codes: 0 stored (or removed); 1 the database could not be checked; 2 bad input, no
drift to acknowledge, or none acknowledged to remove; 3 the drift is not the one named
by --fingerprint.
"""

from __future__ import annotations

from typing import Annotated

import typer

from .errors import BadInput, LockplaneError, SafetyRefusal


def ack(
    environment: Annotated[str | None, typer.Option("--environment", "-e", help="an environment of lockplane.toml")] = None,
    target: Annotated[str | None, typer.Option("--target", help="a database URL instead of an environment (with --schema)")] = None,
    schema: Annotated[str | None, typer.Option("--schema", help="with --target: its desired schema")] = None,
    until: Annotated[str | None, typer.Option("--until", help="silence until then: 2026-12-31 (00:00 UTC), an ISO date and time, or 12h / 7d / 2w; default: until the drift changes")] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="why this drift is accepted for now (shown with it)")] = None,
    fingerprint: Annotated[str | None, typer.Option("--fingerprint", help="the drift you read (its fingerprint or a prefix): refused if the drift is another now")] = None,
    who: Annotated[str | None, typer.Option("--who", help="recorded as who acknowledged (default user@host)")] = None,
    remove: Annotated[bool, typer.Option("--remove", help="end the acknowledgement of the current drift instead (the scheduled check tells it once more)")] = False,
) -> None:
    """Acknowledge an environment's current drift: the scheduled drift check does not
    post it to Slack again, and `lockplane drift check` lists it as acknowledged (exit 0),
    until --until or until the drift changes."""
    from rich.console import Console

    from .drift import Target, check_drift, targets_from_config
    from .drift.memory import acknowledge, parse_until, unacknowledge
    from .dsn import looks_like_dsn, redact
    from .execute import who as default_who

    if bool(environment) == bool(target):
        raise BadInput("give --environment NAME, or --target DSN with --schema SRC")
    if target and not schema:
        raise BadInput("--target needs --schema (the desired schema it is checked against)")
    if fingerprint is not None and not fingerprint.strip():
        raise BadInput("--fingerprint is empty")
    if remove and (until or reason):
        raise BadInput("--remove takes no --until or --reason")
    expires = parse_until(until) if until else None
    if target:
        from .sources import source_context

        if not looks_like_dsn(target):
            raise BadInput(f"--target {redact(target)!r} is not a database URL")
        assert schema is not None
        targets = [Target(redact(target), target, schema,
                          source_context([target, schema], None, None))]
        name = targets[0].name
    else:
        assert environment is not None
        targets_from_config([environment])  # an unknown environment: exit 2, nothing read
        targets = targets_from_config(None)
        name = environment
    report = check_drift(targets, compare_environments=False).environment(name)
    if report.status in ("unreachable", "error"):
        raise LockplaneError(f"{name}: {report.status}: {report.error}")
    if fingerprint is not None and report.status == "drift" and \
            not report.fingerprint.startswith(fingerprint.strip().lower()):
        raise SafetyRefusal(f"{name}'s drift is not the one acknowledged: its fingerprint is "
                            f"now {report.fingerprint[:12]}, not {fingerprint.strip()[:12]}; "
                            "see it with lockplane drift check and acknowledge again")
    (t,) = [t for t in targets if t.name == name]
    err = Console(stderr=True)
    if remove:
        if report.status != "drift":
            raise BadInput(f"environment {name!r} has no drift (status: {report.status})")
        ended = unacknowledge(t, report)
        if ended is None:
            raise BadInput(f"{name}'s drift {report.fingerprint[:12]} is not acknowledged")
        err.print(f"{name}: drift {report.fingerprint[:12]} is no longer acknowledged (it "
                  f"was {ended.describe()})", markup=False, highlight=False)
        return
    stored = acknowledge(t, report, default_who(who), expires, reason)
    n = len(report.items) + len(report.history_findings)
    err.print(f"{name}: drift {report.fingerprint[:12]} ({n} difference"
              f"{'s' if n != 1 else ''}) {stored.describe()}", markup=False, highlight=False)


def register(drift_app: typer.Typer) -> None:
    drift_app.command("ack")(ack)
