"""``lockplane drift fix``: the plan that brings an environment back to its desired schema,
and the schema file edits that adopt what the database has and should keep.

Registered on the ``drift`` group by :func:`register` (lockplane/cli.py). The plan goes to
stdout or ``--output`` like ``lockplane plan``'s; it is applied with ``lockplane apply``.
"""

from __future__ import annotations

from typing import Annotated

import typer


def fix(
    environment: Annotated[str, typer.Option("--environment", "-e", help="the environment of lockplane.toml to fix")],
    adopt: Annotated[list[str] | None, typer.Option("--adopt", help="keep this object as the database has it: write it into the schema files ([TYPE:]GLOB on object keys, as drift check shows them; repeatable)")] = None,
    drop: Annotated[list[str] | None, typer.Option("--drop", help="revert this object to the desired schema: an object only in the database is dropped by the plan (repeatable)")] = None,
    adopt_all: Annotated[bool, typer.Option("--adopt-all", help="adopt every drifted object not named by --drop")] = False,
    drop_all: Annotated[bool, typer.Option("--drop-all", help="drop every object only in the database not named by --adopt")] = False,
    output: Annotated[str | None, typer.Option("--output", "-o", help="write the plan JSON here (default: stdout)")] = None,
    lock_timeout: Annotated[int | None, typer.Option("--lock-timeout-ms", help="lock_timeout written into every locking step (0: none) [default: as lockplane plan]")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no summary on stderr")] = False,
) -> None:
    """Write the plan that brings ENVIRONMENT back to its desired schema. Objects only in
    the database are adopted (written into the schema files) or dropped (by the plan):
    name them with --adopt/--drop, or --adopt-all/--drop-all, or answer when asked.
    Missing and different objects are reverted by the plan unless adopted."""
    import sys

    from .cli import _sealed_json
    from .drift import targets_from_config
    from .drift.fix import ADOPT, REVERT, check_choices, propose_fix
    from .plan import DEFAULT_LOCK_TIMEOUT_MS, check_lock_timeout
    from .report import err, escape, print_plan, write_out

    timeout = DEFAULT_LOCK_TIMEOUT_MS if lock_timeout is None else check_lock_timeout(lock_timeout)
    check_choices(adopt or [], drop or [], adopt_all, drop_all)
    (target,) = targets_from_config([environment])

    def ask(item):  # type: ignore[no-untyped-def]
        err.print(escape(f"{item.message}"))
        while True:
            answer = typer.prompt("  adopt it into the schema files, or drop it? [adopt/drop]",
                                  default="", show_default=False, err=True).strip().lower()
            if answer in ("a", "adopt"):
                return ADOPT
            if answer in ("d", "drop"):
                return REVERT

    interactive = sys.stdin.isatty() and not (adopt_all or drop_all)
    proposal = propose_fix(target, adopt=adopt or [], drop=drop or [], adopt_all=adopt_all,
                           drop_all=drop_all, ask=ask if interactive else None,
                           lock_timeout_ms=timeout or None,
                           report=None if quiet else (lambda m: err.print(f"[dim]{escape(m)}[/]")))
    written = proposal.write_schema()
    if not quiet:
        if proposal.clean:
            err.print(f"[green]No drift[/] in {escape(environment)}: the plan is empty.")
        for item in proposal.adopted:
            err.print(f"  adopted  {escape(item.object)} ({item.type})")
        for item in proposal.reverted:
            verb = "drop" if item.kind == "extra" else "revert"
            err.print(f"  {verb:<8} {escape(item.object)} ({item.type})")
        for item in proposal.ignored:
            err.print(f"  left     {escape(item.object)} ({item.type}): accepted drift (ignore)")
        for path in written:
            err.print(f"[green]Wrote[/] {escape(path)}")
        if proposal.plan.steps:
            print_plan(proposal.plan)
            where = output or "PLAN"
            err.print(escape(f"Apply it with: lockplane apply {where} --target-environment "
                             f"{environment}"))
    write_out(_sealed_json(proposal.plan), output)


def register(drift_app: typer.Typer) -> None:
    """Add ``fix`` to the ``drift`` command group."""
    if any(c.name == "fix" for c in drift_app.registered_commands):
        return
    drift_app.command("fix")(fix)
