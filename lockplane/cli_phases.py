"""CLI commands for multi-phase migrations: plan-multiphase, apply-phase, phase-status,
verify-phase, rollback-phase, approve. They share state with the Prefect flow through
the target's ``lockplane.phases`` table."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from .errors import BadInput, ConfirmationNeeded, SafetyRefusal
from .lockwait import DEFAULT_LOCK_WAIT_BUDGET_S
from .report import err, escape, print_plan, write_out

if TYPE_CHECKING:
    from types import ModuleType

    from .execute import ApplyOptions
    from .multiphase.model import MultiPhasePlan


# The multi-phase engine loads when a phase command runs, not on every start-up of the
# CLI (plan and apply do not need it).
def _runner() -> ModuleType:
    from .multiphase import runner

    return runner


def _load(path: str) -> MultiPhasePlan:
    from .multiphase import load_multiphase_plan

    return load_multiphase_plan(path)


def _load_checked(path: str, *, changes: bool = False,
                  environment: str | None = None) -> MultiPhasePlan:
    """A multi-phase plan to act on, refused (exit 3) before anything connects if its
    content does not match its plan_id, or if LOCKPLANE_PLAN_KEY is set and it is not
    signed with it (the engine checks again; here the refusal names the file). ``changes``:
    it is about to change ``environment`` (None: a --target URL), which its signature
    must name."""
    from .integrity import check_environment, check_multiphase

    mp = _load(path)
    check_multiphase(mp, path)
    if changes:
        check_environment(mp.signed_for, mp.signature, path, environment)
    return mp


def _level(safety: str | None, environment: str | None, default: str) -> str:
    """--safety, else the target environment's own level (lockplane.toml, the pipeline's
    LOCKPLANE_<ENV>_SAFETY; strict for a production-like name), else ``default``: a phase
    applied to production is judged at production's level, whatever it was planned at."""
    from .cli import _env, _safety_level

    env = _env(environment)
    return _safety_level(safety, env) if (safety or env) else default


def _options(**kwargs: object) -> ApplyOptions:
    from .execute import ApplyOptions

    return ApplyOptions(**kwargs)  # type: ignore[arg-type]


def print_multiphase(mp: MultiPhasePlan) -> None:
    from rich.text import Text

    err.print(Text(f"Multi-phase plan: {mp.description} ({mp.pattern}, {mp.total_phases} "
                   f"phases, id {mp.id})", style="bold underline"))
    for p in mp.phases:
        deploy = "  [code deploy after this phase]" if p.requires_code_deploy else ""
        err.print(Text(f"\nPhase {p.phase_number}: {p.name}{deploy}", style="bold magenta"))
        err.print(Text(f"  {p.description}"))
        for c in p.code_changes_required:
            err.print(Text(f"  deploy: {c}", style="yellow"))
        if p.plan.steps:
            print_plan(p.plan, title=f"  Phase {p.phase_number} SQL")
        for v in p.verification:
            err.print(Text(f"  verify: {v.description}: {v.sql}", style="dim"))
        err.print(Text(f"  rollback: {p.rollback.description}", style="dim"))
    for note in mp.safety_notes:
        err.print(Text(f"note: {note}", style="dim"))


def event_text(e: dict[str, object]) -> str:
    """One event of a migration's history, as phase-status prints it."""
    action, n, by = e.get("action"), e.get("phase"), f" by {e.get('who')}"
    if action == "verified" and e.get("failed"):
        failed = e["failed"]
        what = ", ".join(map(str, failed)) if isinstance(failed, list) else str(failed)
        before = f" before phase {e['before_phase']}" if e.get("before_phase") else ""
        text = f"verification of phase {n} failed{before}{by}: {what}"
    else:
        text = f"{str(action).replace('_', ' ')} phase {n}{by}"
    if action == "applied" and e.get("verified_first"):
        # apply-phase re-runs the previous phase's checks before it applies (its gate)
        text += f", after checking phase {e['verified_first']} again"
    if e.get("forced"):
        text += f" (forced: {e['forced']})"
    if e.get("comment"):
        text += f" ({e['comment']})"
    return text


def register(app: typer.Typer, resolve_target: object) -> None:
    """Add the multi-phase commands to the main app."""

    def target_dsn(target: str | None, env: str | None) -> str:
        return resolve_target(target, env, "--target")  # type: ignore[operator]

    @app.command("apply-phase")
    def apply_phase(
        plan_file: Annotated[str, typer.Argument(help="multi-phase plan JSON")],
        target: Annotated[str | None, typer.Option("--target")] = None,
        target_environment: Annotated[str | None, typer.Option("--target-environment")] = None,
        phase: Annotated[int | None, typer.Option("--phase", help="phase number")] = None,
        next_: Annotated[bool, typer.Option("--next", help="the next phase")] = False,
        force: Annotated[str | None, typer.Option("--force", help="apply out of order; the reason is recorded")] = None,
        approver: Annotated[str | None, typer.Option("--approver", help="approve the previous phase's code deploy as NAME first")] = None,
        safety: Annotated[str | None, typer.Option("--safety", help="strict | moderate | permissive [default: the target environment's level, else moderate]")] = None,
        skip_shadow: Annotated[bool, typer.Option("--skip-shadow")] = False,
        auto_approve: Annotated[bool, typer.Option("--auto-approve")] = False,
        lock_wait_budget: Annotated[float, typer.Option("--lock-wait-budget", help="seconds a step may spend retrying short lock waits before it fails, naming who blocks it")] = DEFAULT_LOCK_WAIT_BUDGET_S,
        cancel_blockers_after: Annotated[float | None, typer.Option("--cancel-blockers-after", help="after this many seconds of failed lock waits, cancel the statements of the sessions blocking the step (pg_cancel_backend; never Lockplane's own) [default: never]")] = None,
    ) -> None:
        """Apply one phase of a multi-phase plan (refuses phases out of order)."""
        from rich.text import Text

        if (phase is None) == (not next_):
            raise BadInput("give exactly one of --phase N or --next")
        mp = _load_checked(plan_file, changes=True, environment=target_environment)
        level = _level(safety, target_environment, "moderate")
        dsn = target_dsn(target, target_environment)
        state = _runner().migration_state(mp, dsn)
        number = phase or state.next_phase
        if number is None:
            raise SafetyRefusal(f"all {mp.total_phases} phases are already applied")
        if approver and number > 1:
            _runner().approve(mp, dsn, number - 1, approver, comment="via apply-phase")
        chosen = mp.phase(number)
        err.print(Text(f"Phase {number}/{mp.total_phases}: {chosen.name}: "
                       f"{chosen.description}", style="bold"))
        print_plan(chosen.plan, title=f"Phase {number}")
        if not auto_approve:
            if not sys.stdin.isatty():
                raise ConfirmationNeeded("applied")
            if typer.prompt("Only 'yes' will be accepted to approve", default="",
                            show_default=False, err=True).strip() != "yes":
                raise SafetyRefusal("apply-phase cancelled: not confirmed")
        opts = _options(safety=level, skip_shadow=skip_shadow,
                        lock_wait_budget_s=lock_wait_budget,
                        cancel_blockers_after_s=cancel_blockers_after)
        result = _runner().apply_phase(mp, dsn, number if phase else None, options=opts,
                                       force_reason=force,
                                       report=lambda m: err.print(f"[dim]{escape(m)}[/]"))
        err.print(f"[green]Phase {number} applied[/] ({result.status}, "
                  f"{result.steps_run} step(s)).")
        if chosen.requires_code_deploy and number < mp.total_phases:
            err.print("[yellow]Next:[/] deploy the code changes below, verify, then approve "
                      "and apply the next phase:")
            for c in chosen.code_changes_required:
                err.print(Text(f"  - {c}"))
            err.print(Text(f"  lockplane verify-phase {plan_file} --target ...\n"
                           f"  lockplane apply-phase {plan_file} --next --approver NAME "
                           "--target ..."))

    @app.command("phase-status")
    def phase_status(
        target: Annotated[str | None, typer.Option("--target")] = None,
        target_environment: Annotated[str | None, typer.Option("--target-environment")] = None,
        json_out: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Multi-phase migrations on a database and how far each has got."""
        from rich.text import Text

        rows = _runner().status(target_dsn(target, target_environment))
        if json_out:
            sys.stdout.write(json.dumps([r.to_json() for r in rows], indent=2) + "\n")
            return
        if not rows:
            err.print("No multi-phase migrations.")
        for r in rows:
            nxt = f", next: phase {r.next_phase}" if r.next_phase and r.status == "active" else ""
            err.print(Text(f"{r.migration_id}  {r.table_key}  {r.description}  "
                           f"[{r.status}] {r.completed_phases}/{r.total_phases} phases{nxt}"))
            for e in r.events[-5:]:
                err.print(Text(f"    {e['at']}  {event_text(e)}", style="dim"))

    @app.command("verify-phase")
    def verify_phase(
        plan_file: Annotated[str, typer.Argument()],
        target: Annotated[str | None, typer.Option("--target")] = None,
        target_environment: Annotated[str | None, typer.Option("--target-environment")] = None,
        phase: Annotated[int | None, typer.Option("--phase")] = None,
    ) -> None:
        """Run a phase's verification queries (default: the last applied phase)."""
        mp = _load_checked(plan_file)
        results = _runner().verify(mp, target_dsn(target, target_environment), phase)
        for r in results:
            mark = "[green]pass[/]" if r.passed else "[red]FAIL[/]"
            err.print(f"{mark} {escape(r.description)}"
                      + (f" [dim]({escape(r.error)})[/]" if r.error else ""))
        if not all(r.passed for r in results):
            raise SafetyRefusal("verification failed: do not proceed to the next phase")

    @app.command("rollback-phase")
    def rollback_phase(
        plan_file: Annotated[str, typer.Argument()],
        target: Annotated[str | None, typer.Option("--target")] = None,
        target_environment: Annotated[str | None, typer.Option("--target-environment")] = None,
        to_phase: Annotated[int | None, typer.Option("--to-phase", help="roll back until only N phases remain applied")] = None,
        safety: Annotated[str, typer.Option("--safety")] = "permissive",
        auto_approve: Annotated[bool, typer.Option("--auto-approve")] = False,
        lock_wait_budget: Annotated[float, typer.Option("--lock-wait-budget", help="seconds a step may spend retrying short lock waits before it fails, naming who blocks it")] = DEFAULT_LOCK_WAIT_BUDGET_S,
        cancel_blockers_after: Annotated[float | None, typer.Option("--cancel-blockers-after", help="after this many seconds of failed lock waits, cancel the statements of the sessions blocking the step (pg_cancel_backend; never Lockplane's own) [default: never]")] = None,
    ) -> None:
        """Undo the last applied phase, or every phase after --to-phase."""
        mp = _load_checked(plan_file, changes=True, environment=target_environment)
        dsn = target_dsn(target, target_environment)
        if not auto_approve and not sys.stdin.isatty():
            raise ConfirmationNeeded("rolled back")
        if not auto_approve and typer.prompt("Only 'yes' will be accepted to roll back",
                                             default="", show_default=False,
                                             err=True).strip() != "yes":
            raise SafetyRefusal("rollback-phase cancelled: not confirmed")
        results = _runner().rollback(mp, dsn, to_phase, options=_options(
            safety=safety, lock_wait_budget_s=lock_wait_budget,
            cancel_blockers_after_s=cancel_blockers_after),
                                     report=lambda m: err.print(f"[dim]{escape(m)}[/]"))
        err.print(f"[green]Rolled back[/] {len(results)} phase(s).")

    @app.command("plan-multiphase")
    def plan_multiphase_cmd(
        pattern: Annotated[str, typer.Option("--pattern", help="rename_column | rename_table | change_type | drop_column | drop_table | add_not_null | add_unique")],
        table: Annotated[str, typer.Option("--table")],
        from_: Annotated[str, typer.Option("--from", help="current state (URL or file)")],
        column: Annotated[str | None, typer.Option("--column")] = None,
        to_name: Annotated[str | None, typer.Option("--to-name", help="new name (renames)")] = None,
        to_type: Annotated[str | None, typer.Option("--to-type", help="new type (change_type)")] = None,
        archive: Annotated[bool, typer.Option("--archive", help="archive dropped data first")] = False,
        output: Annotated[str | None, typer.Option("--output", "-o")] = None,
        shadow_db: Annotated[str | None, typer.Option("--shadow-db")] = None,
    ) -> None:
        """Build a multi-phase plan explicitly, without writing the desired schema."""
        from .dialects import get_dialect
        from .dsn import dialect_of, looks_like_dsn
        from .multiphase.explicit import explicit_target
        from .sources import SourceContext, canonicalize, load_schema

        # The target's own server makes the scratch database the new schema is read back
        # from, where its dialect needs a server for one.
        from_server = looks_like_dsn(from_) and get_dialect(dialect_of(from_)).scratch_needs_server
        ctx = SourceContext(server_dsn=shadow_db or (from_ if from_server else None))
        before = load_schema(from_, ctx)
        ctx.dialect = before.dialect
        # As the server renders it (rewritten expressions, types), renames carried over.
        after = canonicalize(explicit_target(before, pattern, table, column, to_name, to_type),
                             ctx, where=f"--pattern {pattern}")
        _emit(before, after, table, archive, output, ctx.server_dsn)

    def _emit(before: object, after: object, table: str | None, archive: bool,
              output: str | None, server: str | None) -> None:
        from .multiphase import plan_multiphase

        mp = plan_multiphase(before, after, server_dsn=server, table=table,  # type: ignore[arg-type]
                             archive=archive)
        print_multiphase(mp)
        from .integrity import plan_key, seal_multiphase

        write_out(seal_multiphase(mp, plan_key()).to_json(), output)

    app.command("plan-multi-phase", hidden=True)(plan_multiphase_cmd)

    def _export_osc(plan_file: str, to: str, output: str | None, target: str | None,
                    target_environment: str | None, execute: bool,
                    defaults_file: str | None, drop_old_table: bool) -> None:
        from rich.text import Text

        from .cli_common import _env, _target
        from .export.osc import OscOptions, export_osc
        from .inputs import load_json
        from .integrity import check_environment, check_plan
        from .plan import load_plan

        data = load_json(plan_file, "plan file")
        if isinstance(data, dict) and data.get("multi_phase"):
            raise BadInput(f"{plan_file}: --to {to} exports a single-phase plan "
                           "(export each phase's plan, or apply the phases)")
        plan = load_plan(plan_file)
        check_plan(plan, plan_file)
        if execute:  # (the tool then changes the target: where the plan may run is asked)
            check_environment(plan.signed_for, plan.signature, plan_file, target_environment)
        dsn = _target(target, _env(target_environment))
        if defaults_file is not None and (not defaults_file or "\n" in defaults_file):
            raise BadInput(f"--defaults-file {defaults_file!r}: not a file name")
        script, warnings = export_osc(plan, to, dsn, OscOptions(
            execute=execute, defaults_file=defaults_file, drop_old_table=drop_old_table))
        for w in warnings:
            err.print(Text(f"warning: {w}", style="yellow"))
        write_out(script.rstrip("\n"), output, f" ({to} script)")

    @app.command("export")
    def export_cmd(
        plan_file: Annotated[str, typer.Argument(help="plan or multi-phase plan JSON")],
        to: Annotated[str, typer.Option("--to", help="pgroll, gh-ost or pt-osc")] = "pgroll",
        output: Annotated[str | None, typer.Option("--output", "-o")] = None,
        name: Annotated[str | None, typer.Option("--name", help="migration name (pgroll)")] = None,
        target: Annotated[str | None, typer.Option("--target", help="gh-ost, pt-osc: the database URL (its password is never written)")] = None,
        target_environment: Annotated[str | None, typer.Option("--target-environment")] = None,
        execute: Annotated[bool, typer.Option("--execute", help="gh-ost, pt-osc: a script that makes the change (default: a dry run)")] = False,
        defaults_file: Annotated[str | None, typer.Option("--defaults-file", help="gh-ost, pt-osc: a MySQL option file the tools read the password from (default: they ask)")] = None,
        drop_old_table: Annotated[bool, typer.Option("--drop-old-table", help="pt-osc: drop the original table after the swap (default: kept)")] = False,
    ) -> None:
        """Write the equivalent migration for another tool: pgroll's JSON operations, or a
        script running gh-ost / pt-online-schema-change for each step that copies a table."""
        from rich.text import Text

        from .export.pgroll import export_multiphase, export_plan
        from .inputs import load_json
        from .integrity import check_plan
        from .plan import load_plan

        if to in ("gh-ost", "pt-osc"):
            _export_osc(plan_file, to, output, target, target_environment, execute,
                        defaults_file, drop_old_table)
            return
        if to != "pgroll":
            raise BadInput(f"--to {to}: pgroll, gh-ost or pt-osc")
        # The exported migration runs against production as the plan would: the same
        # integrity check as apply (content matches plan_id; signed when a key is set).
        data = load_json(plan_file, "plan file")
        if isinstance(data, dict) and data.get("multi_phase"):
            migration, warnings = export_multiphase(_load_checked(plan_file), name)
        else:
            plan = load_plan(plan_file)
            check_plan(plan, plan_file)
            migration, warnings = export_plan(plan, name)
        for w in warnings:
            err.print(Text(f"warning: {w}", style="yellow"))
        write_out(json.dumps(migration, indent=2, ensure_ascii=False), output,
                  f" ({len(migration['operations'])} pgroll operation(s))")
