"""The ``lockplane`` command line (typer + rich).

Exit codes (DESIGN.md): 0 done; 1 failed (database error, rolled back); 2 bad input or
usage; 3 refused for safety; 4 drift found. Human output goes to stderr, machine output
(JSON, plans) to stdout. No traceback ever reaches a user: set LOCKPLANE_DEBUG=1 to see one.
"""

from __future__ import annotations

import copy
import functools
import gc
import os
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
import typer.main
from typer.core import TyperGroup

from . import __version__
from .config import SAFETY_LEVELS, Environment, get_environment
from .crash import DEFAULT_ORPHAN_WAIT_S
from .dialects import dialect_names, get_dialect
from .dsn import dialect_of, looks_like_dsn, redact
from .errors import BadInput, ConfirmationNeeded, LockplaneError, SafetyRefusal
from .lockwait import DEFAULT_LOCK_WAIT_BUDGET_S
from .model import Schema
from .plan import (
    DEFAULT_LOCK_TIMEOUT_MS,
    Plan,
    build_plan,
    check_lock_timeout,
    load_plan,
    rollback_plan,
)
from .report import err, escape, print_plan, write_out
from .sources import load_schema, source_context


class _LazyBackfillGroup(TyperGroup):
    """The top-level group, with ``backfill`` and ``backup`` imported on first use.

    cli_backfill pulls in rich's progress bars and the backfill engine (~50 ms of every
    start-up), which no other command needs; cli_backup likewise.
    """

    _lazy = {"backfill": ("cli_backfill", "backfill_app"),
             "backup": ("cli_backup", "backup_app")}

    def list_commands(self, ctx: typer.Context) -> list[str]:  # type: ignore[override]
        names = super().list_commands(ctx)
        # After the commands, where add_typer would list them.
        return names + [n for n in self._lazy if n not in names]

    def get_command(self, ctx: typer.Context, cmd_name: str) -> object:  # type: ignore[override]
        if cmd_name in self._lazy and cmd_name not in self.commands:
            import importlib

            module, attr = self._lazy[cmd_name]
            sub = getattr(importlib.import_module(f".{module}", __package__), attr)
            self.commands[cmd_name] = typer.main.get_group_from_info(
                typer.main.TyperInfo(sub, name=cmd_name),
                pretty_exceptions_short=app.pretty_exceptions_short,
                rich_markup_mode=app.rich_markup_mode,
                suggest_commands=app.suggest_commands,
            )
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: typer.Context, args: list[str]) -> Any:  # type: ignore[override]
        if args and args[0] not in self.commands:
            for name in self._lazy:  # a typo's "did you mean" sees every command
                self.get_command(ctx, name)
        return super().resolve_command(ctx, args)


def _flags_show_no_type() -> None:
    """No ``<bool>`` after ``--auto-approve``, ``--json`` or ``--help`` in help screens.

    typer's rich help prints every option's type, a flag's too (typer 0.29: "<bool>", a
    placeholder for a value a flag never takes), while its plain help already leaves
    flags out. Flags are shown as the plain help shows them, whatever typer version.
    """
    from typer.core import TyperOption

    shown = getattr(TyperOption, "display_type_rich", None)
    if shown is None or getattr(shown, "_lockplane", False):
        return

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        return None if getattr(self, "is_flag", False) else shown(self, ctx)

    display_type_rich._lockplane = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_show_no_type()

# For --dialect's help: the registered dialects.
_DIALECTS = " | ".join(dialect_names())

app = typer.Typer(
    name="lockplane",
    help="Safe, understandable, boring database schema changes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=_LazyBackfillGroup,
)


# ---------------------------------------------------------------------------- helpers
_P = ParamSpec("_P")
_R = TypeVar("_R")


def _gc_paused(command: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run a short-lived command with the cyclic garbage collector off.

    Loading and hashing two 1,000-table schemas allocates a few hundred thousand
    acyclic objects; the collector would rescan that growing heap over and over (more
    than half of ``plan``'s CPU time). Nothing there makes cycles worth collecting, and
    the previous state is restored for in-process callers (tests, flows).
    """
    @functools.wraps(command)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return command(*args, **kwargs)
        finally:
            if was_enabled:
                gc.enable()

    return wrapper


def _env(name: str | None) -> Environment | None:
    return get_environment(name) if name else None


def _resolve_src(value: str | None, env_name: str | None, what: str,
                 use_schema_path: bool = False) -> str:
    if value:
        return value
    env = _env(env_name)
    if env is not None:
        src = env.schema_path if use_schema_path else env.database_url
        if src:
            return src
        key = "schema_path" if use_schema_path else "database_url"
        raise BadInput(f"environment {env.name!r} has no {key} (lockplane.toml or .env.{env.name})")
    raise BadInput(f"missing {what}: pass it, or its --*-environment option")


def _confirm(plan: Plan, target: str) -> bool:
    if not sys.stdin.isatty():
        raise ConfirmationNeeded("applied")
    from .integrity import plan_id

    err.print(f"\nLockplane will run {len(plan.steps)} step(s) (plan_id {plan_id(plan)}) on "
              f"[bold]{redact(target)}[/].")
    answer = typer.prompt("Only 'yes' will be accepted to approve", default="",
                          show_default=False, err=True)
    return answer.strip() == "yes"


_ORPHAN_WAIT_HELP = ("seconds to wait for a statement a killed run left running on the server "
                     "(CREATE INDEX CONCURRENTLY, VALIDATE) before cancelling it")


def _orphan_wait(seconds: float) -> float:
    if not 0 <= seconds <= 86_400:
        raise BadInput(f"--orphan-wait must be from 0 to 86400 seconds, not {seconds:g}")
    return seconds


def _safety_level(flag: str | None, env: Environment | None) -> str:
    level = flag or (env.default_safety if env else "moderate")
    if level not in SAFETY_LEVELS:
        raise BadInput(f"--safety must be one of {', '.join(SAFETY_LEVELS)}, not {level!r}")
    return level


def _archive_dropped(flag: bool | None, env: Environment | None) -> bool:
    """Whether a plan keeps dropped rows and values for its rollback: --archive or
    --no-archive, else the environment's archive_dropped (lockplane.toml), else yes."""
    if flag is not None:
        return flag
    return env.archive_dropped if env else True


def _report(msg: str) -> None:
    err.print(f"[dim]{msg}[/]")


def _load_checked(path: str, environment: str | None) -> Plan:
    """A plan file, refused (exit 3) before anything connects if its content does not
    match its plan_id, or if LOCKPLANE_PLAN_KEY is set and it is not signed with it, or
    signed for other environments than ``environment`` (None: a --target URL)."""
    from .integrity import check_environment, check_plan

    loaded = load_plan(path)
    check_plan(loaded, path)
    check_environment(loaded.signed_for, loaded.signature, path, environment)
    return loaded


def _plan_scope(environment: str | None) -> list[str] | None:
    """Where a plan signed as it is written may run: the environment it was made from
    (--from-environment), else any (a URL names none)."""
    from .integrity import plan_key, signing_scope

    if plan_key() is None:
        return None
    scope = signing_scope([environment] if environment else None,
                          any_environment=environment is None)
    if environment is None:
        err.print("[dim]signed for any environment (planned from a URL); plan "
                  "--from-environment NAME or lockplane sign --environment NAME binds it to "
                  "one[/]")
    return scope


def _sealed_json(p: Plan, environment: str | None = None) -> str:
    """A plan file's text: with its plan_id, and signed when LOCKPLANE_PLAN_KEY is set
    (for ``environment``, else for any)."""
    from .integrity import plan_key, seal_plan

    return seal_plan(p, plan_key(), _plan_scope(environment)).to_json()


def _sealed_multiphase_json(mp: Any, environment: str | None = None) -> str:
    from .integrity import plan_key, seal_multiphase

    return seal_multiphase(mp, plan_key(), _plan_scope(environment)).to_json()


# ---------------------------------------------------------------------------- commands
@app.command()
def version() -> None:
    """Print Lockplane's version."""
    sys.stdout.write(f"lockplane {__version__}\n")


@app.command()
def init(
    directory: Annotated[str, typer.Argument(help="project directory")] = ".",
    database_url: Annotated[str, typer.Option(help="database URL of the local environment")]
    = "sqlite:///lockplane-dev.db",
) -> None:
    """Create lockplane.toml and a schema/ directory."""
    root = Path(directory)
    cfg = root / "lockplane.toml"
    if cfg.exists():
        raise BadInput(f"{cfg} already exists")
    from .inputs import make_dir

    make_dir(root, "project directory")
    make_dir(root / "schema", "schema directory")
    cfg.write_text(
        "# Lockplane environments. Secrets (DATABASE_URL, SHADOW_DATABASE_URL) may live in\n"
        "# .env.<name> next to this file instead of here.\n"
        "[environments.local]\n"
        f"database_url = \"{database_url}\"\n"
        "schema_path = \"schema/\"\n"
        "# safety = \"moderate\"   # strict | moderate | permissive\n")
    err.print(f"Created {cfg} and {root / 'schema'}/")


@app.command()
def introspect(
    target: Annotated[str | None, typer.Option("--target", help="database URL")] = None,
    target_environment: Annotated[str | None, typer.Option("--target-environment")] = None,
    format: Annotated[str, typer.Option("--format", help="json, sql or hash (the state's hash, as plans record it)")] = "json",
    output: Annotated[str | None, typer.Option("--output", "-o")] = None,
) -> None:
    """Read a live database's schema."""
    src = _resolve_src(target, target_environment, "--target")
    if not looks_like_dsn(src):
        raise BadInput(f"--target must be a database URL, not {src!r}")
    schema = load_schema(src)
    _warn_unmanaged(schema.unmanaged, "left as they are")
    write_out(schema.hash() if format == "hash" else _format_schema(schema, format), output)


def _warn_unmanaged(objects: list[str], what_happens: str) -> None:
    """Say which objects of the database Lockplane does not model: a plan neither creates
    nor drops them, which must not pass for "there is nothing there"."""
    if objects:
        err.print("[yellow]warning:[/] " + escape(
            f"not managed by Lockplane ({what_happens}): {', '.join(objects)}"))


def _warn_unmanaged_pair(before: Schema, after: Schema) -> None:
    _warn_unmanaged(before.unmanaged, "left as they are")
    # Declared in the desired state but beyond the model: no step creates them.
    seen = set(before.unmanaged)
    _warn_unmanaged([o for o in after.unmanaged if o not in seen],
                    "in the desired schema, not created")


def _format_schema(schema: Schema, fmt: str) -> str:
    if fmt == "json":
        return schema.to_json()
    if fmt == "sql":
        plan = build_plan(Schema(dialect=schema.dialect), schema)
        return "\n".join(stmt.rstrip(";") + ";" for s in plan.steps for stmt in s.sql)
    raise BadInput(f"--format must be json or sql, not {fmt!r}")


@app.command()
@_gc_paused
def plan(
    from_: Annotated[str | None, typer.Option("--from", help="current state: URL, .json, .sql, dir")] = None,
    to: Annotated[str | None, typer.Option("--to", help="desired state: URL, .json, .sql, dir, module:metadata")] = None,
    from_environment: Annotated[str | None, typer.Option("--from-environment")] = None,
    to_environment: Annotated[str | None, typer.Option("--to-environment")] = None,
    output: Annotated[str | None, typer.Option("--output", "-o", help="write the plan JSON here")] = None,
    dialect: Annotated[str | None, typer.Option("--dialect", help=f"{_DIALECTS}, when no source says")] = None,
    shadow_db: Annotated[str | None, typer.Option("--shadow-db", help="server for scratch databases")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no summary on stderr")] = False,
    exit_code: Annotated[bool, typer.Option("--exit-code", help="exit 4 when the plan is not empty")] = False,
    check_schema: Annotated[bool, typer.Option("--check-schema", help="check the desired schema first; errors exit 2")] = False,
    multi_phase: Annotated[bool, typer.Option("--multi-phase", help="plan a breaking change as expand/contract phases")] = False,
    table: Annotated[str | None, typer.Option("--table", help="with --multi-phase: which table's change")] = None,
    archive: Annotated[bool | None, typer.Option("--archive/--no-archive", help="copy dropped tables' rows and columns' values for a rollback to put back [default: yes, or the environment's archive_dropped]; --no-archive: the rollback brings them back empty. With --multi-phase: an archive phase first [default: no]")] = None,
    no_rewrite: Annotated[bool, typer.Option("--no-rewrite", help="plain DDL instead of the lock-safe forms (CONCURRENTLY, NOT VALID + VALIDATE, ...)")] = False,
    lock_timeout: Annotated[int, typer.Option("--lock-timeout-ms", help="lock_timeout written into every locking step (0: none)")] = DEFAULT_LOCK_TIMEOUT_MS,
    format: Annotated[str, typer.Option("--format", help="json (the plan file) or sql (a script to review or feed to other tools)")] = "json",
    analyze_locks: Annotated[bool, typer.Option("--analyze-locks", help="measure each step's locks on a shadow copy of --from (PostgreSQL)")] = False,
    with_data: Annotated[bool, typer.Option("--with-data", help="with --analyze-locks: copy all rows, not a sample")] = False,
    sample_rows: Annotated[int | None, typer.Option("--sample-rows", help="with --analyze-locks: rows per table to copy [default: 10000]")] = None,
) -> None:
    """Compute the plan from one state to another; JSON on stdout or --output."""
    check_lock_timeout(lock_timeout)
    src_from = _resolve_src(from_, from_environment, "--from")
    if (with_data or sample_rows is not None) and not analyze_locks:
        raise BadInput("--with-data and --sample-rows go with --analyze-locks")
    if analyze_locks and (multi_phase or not looks_like_dsn(src_from)
                          or not get_dialect(dialect_of(src_from)).measures_locks):
        raise BadInput("--analyze-locks needs PostgreSQL: --from (or --from-environment) must "
                       "be a live postgresql:// database, and not with --multi-phase")
    shadow_server = shadow_db or _shadow_of(from_environment)
    if analyze_locks and not shadow_server:
        # Without one the shadow is made on --from's own server, usually the primary: a
        # full copy loads it and holds a snapshot on the target for the whole copy.
        if with_data:
            raise BadInput("--analyze-locks --with-data copies every row of --from: give "
                           "--shadow-db (or the environment's shadow_database_url) so the "
                           "copy is not made on the target's own server")
        err.print("[yellow]note:[/] the lock-analysis shadow database is created on "
                  "--from's own server (pass --shadow-db to use another)")
    src_to = _resolve_src(to, to_environment or from_environment, "--to", use_schema_path=True)
    ctx = source_context([src_from, src_to], dialect, shadow_db,
                   [_env(from_environment), _env(to_environment)])
    # Both sides load at once: each is mostly waiting on its own server.
    with ThreadPoolExecutor(max_workers=1) as pool:
        loading_before = pool.submit(load_schema, src_from, ctx)
        after = load_schema(src_to, ctx)
        if check_schema:
            _report_checks(after, src_to)
        before = loading_before.result()
    _warn_unmanaged_pair(before, after)
    if multi_phase:
        from .cli_phases import print_multiphase
        from .multiphase import plan_multiphase

        mp = plan_multiphase(before, after, server_dsn=ctx.server_dsn, table=table,
                             archive=bool(archive))
        if not quiet:
            print_multiphase(mp)
        write_out(_sealed_multiphase_json(mp, from_environment), output)
        return
    if format not in ("json", "sql"):
        raise BadInput(f"--format must be json or sql, not {format!r}")
    result = build_plan(before, after, lock_safe=not no_rewrite,
                        lock_timeout_ms=lock_timeout or None, server_dsn=ctx.server_dsn,
                        archive_dropped=_archive_dropped(archive, _env(from_environment)))
    if looks_like_dsn(src_from):  # what the live rows make certain to fail
        from .predict import note_certain_failures_at

        note_certain_failures_at(result, src_from)
        from .export.osc import offer_online_schema_change

        offer_online_schema_change(result, src_from)  # a big table MySQL would copy
    if not quiet:
        print_plan(result)
        if looks_like_dsn(src_from):
            _print_existing_stakes(result, src_from)
    if analyze_locks:
        from .lockstats import analyze_locks as measure_locks
        from .lockstats import print_lock_analysis

        analysis = measure_locks(result, src_from, shadow_server,
                                 with_data=with_data,
                                 sample_rows=10000 if sample_rows is None else sample_rows,
                                 report=None if quiet else _report)
        analysis.annotate(result)
        if not quiet:
            print_lock_analysis(analysis)
        if analysis.failed is not None:
            from .errors import ExecutionFailed

            bad = analysis.failed
            raise ExecutionFailed(f"--analyze-locks: step {bad.index} ({bad.description}) "
                                  f"failed on the shadow database: {bad.error}")
    if format == "sql":
        from .sqlscript import plan_sql

        write_out(plan_sql(result).rstrip("\n"), output)
    else:
        write_out(_sealed_json(result, from_environment), output)
    if exit_code and result.steps:
        raise typer.Exit(4)


def _report_checks(schema: Schema, where: str) -> None:
    from .checks import check_schema

    findings = check_schema(schema)
    for f in findings:
        style = "red" if f.level == "error" else "yellow"
        err.print(f"[{style}]{f.level}:[/] " + escape(f"{f.where}: {f.message}"))
    errors = [f for f in findings if f.level == "error"]
    if errors:
        raise BadInput(f"{where}: {len(errors)} schema error(s), first: "
                       f"{errors[0].where}: {errors[0].message}")


def _shadow_of(env_name: str | None) -> str | None:
    env = _env(env_name)
    return env.shadow_database_url if env else None


@app.command()
def apply(
    plan_file: Annotated[str | None, typer.Argument(help="plan JSON (or use --schema)")] = None,
    target: Annotated[str | None, typer.Option("--target", help="database URL")] = None,
    target_environment: Annotated[str | None, typer.Option("--target-environment")] = None,
    schema: Annotated[str | None, typer.Option("--schema", help="plan against this desired schema and apply")] = None,
    auto_approve: Annotated[bool, typer.Option("--auto-approve", help="do not ask for confirmation")] = False,
    safety: Annotated[str | None, typer.Option("--safety", help="strict | moderate | permissive")] = None,
    shadow_db: Annotated[str | None, typer.Option("--shadow-db", help="server for the shadow database")] = None,
    skip_shadow: Annotated[bool, typer.Option("--skip-shadow", help="do not validate on a shadow database")] = False,
    lock_timeout: Annotated[int, typer.Option("--lock-timeout-ms", help="PostgreSQL lock_timeout: written into the steps with --schema; for a plan file, used where its steps set none (a plan carries the value it was reviewed with)")] = DEFAULT_LOCK_TIMEOUT_MS,
    retries: Annotated[int | None, typer.Option("--retries", help="at most this many retries of a step that cannot get its lock [default: as many as --lock-wait-budget allows]")] = None,
    lock_wait_budget: Annotated[float, typer.Option("--lock-wait-budget", help="seconds a step may spend retrying short lock waits before it fails, naming who blocks it")] = DEFAULT_LOCK_WAIT_BUDGET_S,
    cancel_blockers_after: Annotated[float | None, typer.Option("--cancel-blockers-after", help="after this many seconds of failed lock waits, cancel the statements of the sessions blocking the step (pg_cancel_backend; never Lockplane's own) [default: never]")] = None,
    applied_by: Annotated[str | None, typer.Option("--who", help="recorded in the history")] = None,
    no_rewrite: Annotated[bool, typer.Option("--no-rewrite", help="with --schema: plain DDL instead of the lock-safe forms")] = False,
    archive: Annotated[bool | None, typer.Option("--archive/--no-archive", help="with --schema: copy dropped tables' rows and columns' values for a rollback [default: yes, or the environment's archive_dropped]")] = None,
    acknowledge: Annotated[list[str] | None, typer.Option("--acknowledge", help="at --safety moderate: run these dangerous steps anyway: rule@schema.table, a rule id, or a step number of a plan file (repeatable)")] = None,
    orphan_wait: Annotated[float, typer.Option("--orphan-wait", help=_ORPHAN_WAIT_HELP)] = DEFAULT_ORPHAN_WAIT_S,
) -> None:
    """Apply a plan to a database (checks its hash, validates on a shadow first)."""
    from .execute import ApplyOptions, apply_plan, parse_acknowledgements

    check_lock_timeout(lock_timeout)
    env = _env(target_environment)
    dsn = _resolve_src(target, target_environment, "--target")
    if plan_file and schema:
        raise BadInput("give either a plan file or --schema, not both")
    if plan_file and archive is not None:
        raise BadInput("--archive/--no-archive go with --schema: a plan file's steps "
                       "already say what they archive")
    if plan_file:
        the_plan = _load_checked(plan_file, target_environment)
    else:
        desired = schema or (env.schema_path if env else None)
        if not desired:
            raise BadInput("missing plan: pass a plan file, or --schema with the desired schema")
        ctx = source_context([dsn, desired], None, shadow_db, [env])
        live, wanted = load_schema(dsn, ctx), load_schema(desired, ctx)
        _warn_unmanaged_pair(live, wanted)
        the_plan = build_plan(live, wanted, lock_safe=not no_rewrite,
                              lock_timeout_ms=lock_timeout or None,
                              archive_dropped=_archive_dropped(archive, env))
        from .predict import note_certain_failures_at

        note_certain_failures_at(the_plan, dsn)
    level = _safety_level(safety, env)
    if the_plan.steps:  # an empty plan is still checked against the target's hash below
        print_plan(the_plan)
    opts = ApplyOptions(safety=level, shadow_dsn=shadow_db or (env.shadow_database_url if env else None),
                        skip_shadow=skip_shadow, lock_timeout_ms=lock_timeout, retries=retries,
                        lock_wait_budget_s=lock_wait_budget,
                        cancel_blockers_after_s=cancel_blockers_after,
                        applied_by=applied_by, acknowledged=parse_acknowledgements(
                            acknowledge, allow_numbers=plan_file is not None),
                        plan_file=plan_file)
    opts.orphan_wait_s = _orphan_wait(orphan_wait)
    confirm = None if auto_approve else (lambda p: _confirm(p, dsn))
    first = None
    if env is not None and env.backup_before != "never":
        from .cli_backup import backup_first  # lockplane.toml: backup_before

        first = backup_first(env, dsn, the_plan)
    result = apply_plan(the_plan, dsn, opts, report=_report, confirm=confirm,
                        before_first_step=first)
    for w in result.warnings:
        err.print(f"[yellow]warning:[/] {w}")
    if result.status == "already_applied":
        err.print("[green]Already applied:[/] the database is at the plan's target state.")
    elif result.status == "empty":
        err.print(f"[green]No changes.[/] The database is at the plan's state "
                  f"(hash {result.hash_after[:12]}).")
    else:
        err.print(f"[green]Applied[/] {result.steps_run} step(s) "
                  f"(migration {result.migration_id}); database hash {result.hash_after[:12]}")


def _rollback_stake_notes(forward: Plan, dsn: str) -> list[list[str]] | None:
    """Per step of ``forward``, what undoing it destroys on ``dsn`` now (read-only counts);
    None when no rollback destroys anything countable (no connection is made then)."""
    from .dialects import connect
    from .stake import count_rollback_stakes, stake_notes

    if not any(s.rollback is not None and s.rollback.at_stake for s in forward.steps):
        return None
    with connect(dsn) as db:
        return stake_notes(count_rollback_stakes(forward, db))


def _print_existing_stakes(forward: Plan, dsn: str) -> None:
    """At plan time the objects a rollback would destroy rarely exist yet: show only what
    was actually counted and is not nothing."""
    from .dialects import connect
    from .stake import TIMED_OUT, count_rollback_stakes

    if not any(s.rollback is not None and s.rollback.at_stake for s in forward.steps):
        return
    with connect(dsn) as db:
        stakes = count_rollback_stakes(forward, db)
    for i, stake in enumerate(stakes):
        if stake is not None and ((stake.counted and stake.rows) or stake.status == TIMED_OUT):
            err.print(f"  {i + 1:>3}. [yellow]! {escape(stake.message)}[/]")


@app.command("plan-rollback")
def plan_rollback(
    plan_file: Annotated[str, typer.Option("--plan", help="the plan to undo")],
    from_: Annotated[str | None, typer.Option("--from", help="the state the plan was made from, or the database it was applied to")] = None,
    from_environment: Annotated[str | None, typer.Option("--from-environment")] = None,
    output: Annotated[str | None, typer.Option("--output", "-o")] = None,
) -> None:
    """Compute the plan that undoes PLAN (each step's inverse, in reverse order); with a
    live --from, count the data each undo step would destroy there."""
    from .integrity import check_plan

    forward = load_plan(plan_file)  # (read to plan its undo: where it may run is not asked)
    check_plan(forward, plan_file)
    src = from_ or (_resolve_src(None, from_environment, "--from") if from_environment else None)
    back = rollback_plan(forward)  # refuses an original-format plan before any connection
    if src:
        ctx = source_context([src], forward.dialect, None)
        current = load_schema(src, ctx).hash()
        # Before the plan (source_hash) or after it (target_hash): where it can be undone.
        if current not in (forward.source_hash, forward.target_hash):
            raise SafetyRefusal(f"{plan_file} goes from hash {forward.source_hash[:12]}… to "
                                f"{(forward.target_hash or '?')[:12]}…, but {redact(src)} "
                                f"has hash {current[:12]}…")
        if looks_like_dsn(src):
            back = rollback_plan(forward, _rollback_stake_notes(forward, src))
    print_plan(back, title="Rollback plan")
    write_out(_sealed_json(back), output)


@app.command()
def sign(
    plan_file: Annotated[str, typer.Argument(help="plan or multi-phase plan JSON, as reviewed")],
    output: Annotated[str | None, typer.Option("--output", "-o", help="write the signed plan here (default: stdout)")] = None,
    environment: Annotated[list[str] | None, typer.Option("--environment", "-e", help="an environment (lockplane.toml name) the plan was reviewed for and may run in (repeatable)")] = None,
    any_environment: Annotated[bool, typer.Option("--any-environment", help="the plan may run in any environment, and with --target URL")] = False,
) -> None:
    """Sign a reviewed plan with LOCKPLANE_PLAN_KEY for the environments it may run in, so
    apply, rollback and apply-phase run it there while the key is set (an HMAC-SHA256 of
    its plan_id and those names; the key is never printed)."""
    import json

    from .integrity import (
        check_multiphase,
        check_plan,
        key_id,
        plan_key,
        seal_multiphase,
        seal_plan,
        signing_scope,
    )
    from .multiphase.model import parse_multiphase_plan

    key = plan_key()
    if key is None:
        raise BadInput("lockplane sign needs the signing key in LOCKPLANE_PLAN_KEY")
    scope = signing_scope(environment, any_environment)
    try:
        text = Path(plan_file).read_text()
        multi = isinstance(data := json.loads(text), dict) and bool(data.get("multi_phase"))
    except (OSError, ValueError):
        multi = False  # load_plan says what is wrong with it
    # What is signed is what was reviewed: a file changed after it was written (its
    # content no longer matches its plan_id) is refused. An old signature is replaced.
    if multi:
        mp = parse_multiphase_plan(text, plan_file)
        check_multiphase(mp.model_copy(update={"signature": None}), plan_file,
                         require_signature=False)
        signed_mp = seal_multiphase(mp, key, scope)
        pid, out = signed_mp.plan_id, signed_mp.to_json()
    else:
        p = load_plan(plan_file)
        check_plan(p.model_copy(update={"signature": None}), plan_file, require_signature=False)
        signed = seal_plan(p, key, scope)
        pid, out = signed.plan_id, signed.to_json()
    where = "any environment" if scope == ["*"] else "environment " + ", ".join(scope)
    what = f" (plan_id {pid}, signed with key id {key_id(key)} for {where})"
    write_out(out, output, what)
    if not output:
        sys.stderr.write(f"Signed{what}\n")


@app.command()
def rollback(
    plan_file: Annotated[str, typer.Argument(help="the plan that was applied")],
    target: Annotated[str | None, typer.Option("--target")] = None,
    target_environment: Annotated[str | None, typer.Option("--target-environment")] = None,
    auto_approve: Annotated[bool, typer.Option("--auto-approve")] = False,
    safety: Annotated[str | None, typer.Option("--safety")] = None,
    shadow_db: Annotated[str | None, typer.Option("--shadow-db")] = None,
    skip_shadow: Annotated[bool, typer.Option("--skip-shadow")] = False,
    lock_wait_budget: Annotated[float, typer.Option("--lock-wait-budget", help="seconds a step may spend retrying short lock waits before it fails, naming who blocks it")] = DEFAULT_LOCK_WAIT_BUDGET_S,
    cancel_blockers_after: Annotated[float | None, typer.Option("--cancel-blockers-after", help="after this many seconds of failed lock waits, cancel the statements of the sessions blocking the step (pg_cancel_backend; never Lockplane's own) [default: never]")] = None,
    orphan_wait: Annotated[float, typer.Option("--orphan-wait", help=_ORPHAN_WAIT_HELP)] = DEFAULT_ORPHAN_WAIT_S,
    acknowledge: Annotated[list[str] | None, typer.Option("--acknowledge", help="at --safety moderate: undo these dangerous steps anyway: rule@schema.table (e.g. rollback-loses-data@public.users), a rule id, or a step number of the rollback plan shown (repeatable)")] = None,
    via_backup: Annotated[bool, typer.Option("--via-backup", help="restore the backup taken before this migration instead of running rollback SQL (lockplane runbook compares the two)")] = False,
    into: Annotated[str | None, typer.Option("--into", help="with --via-backup: database URL to restore into [default: a new database <name>_before_<plan>]")] = None,
    storage: Annotated[str | None, typer.Option("--storage", help="with --via-backup: backup storage [default: the environment's backup_storage]")] = None,
    force: Annotated[bool, typer.Option("--force", help="with --via-backup: restore over the target itself (its name must be confirmed)")] = False,
    confirm_name: Annotated[str | None, typer.Option("--confirm", help="with --via-backup --force: the target database's name, confirming the overwrite")] = None,
) -> None:
    """Undo an applied plan on the target (refused unless the target is at its target_hash)."""
    if via_backup:
        from .cli_recover import rollback_via_backup

        rollback_via_backup(plan_file, target, target_environment, storage, into, force,
                            confirm_name, auto_approve)
        return
    from .execute import ApplyOptions, apply_plan, parse_acknowledgements

    _orphan_wait(orphan_wait)
    env = _env(target_environment)
    dsn = _resolve_src(target, target_environment, "--target")
    # The applied plan, checked before anything connects (its id covers its rollback
    # SQL); the rollback plan made from it here runs under that check.
    forward = _load_checked(plan_file, target_environment)
    back = rollback_plan(forward)
    if back.steps and looks_like_dsn(dsn):
        # Counted before the confirmation prompt: the operator sees what is at stake.
        back = rollback_plan(forward, _rollback_stake_notes(forward, dsn))
    print_plan(back, title="Rollback plan")
    if not back.steps:
        return
    opts = ApplyOptions(safety=_safety_level(safety, env), shadow_dsn=shadow_db,
                        skip_shadow=skip_shadow, lock_wait_budget_s=lock_wait_budget,
                        cancel_blockers_after_s=cancel_blockers_after,
                        orphan_wait_s=orphan_wait,
                        # The rollback plan is derived from a reviewed plan file and shown
                        # above, numbered: its step numbers may be acknowledged.
                        acknowledged=parse_acknowledgements(acknowledge, allow_numbers=True))
    confirm = None if auto_approve else (lambda p: _confirm(p, dsn))
    result = apply_plan(back, dsn, opts, report=_report, confirm=confirm)
    for w in result.warnings:
        err.print(f"[yellow]warning:[/] {w}")
    if result.status == "already_applied":
        err.print("[green]Already rolled back.[/]")
    else:
        err.print(f"[green]Rolled back[/] {result.steps_run} step(s); database hash "
                  f"{result.hash_after[:12]}")


@app.command()
def validate(
    path: Annotated[str, typer.Argument(help="schema (.json, .sql, dir) or plan JSON")],
    dialect: Annotated[str | None, typer.Option("--dialect", help=f"{_DIALECTS}, when the file does not say")] = None,
    shadow_db: Annotated[str | None, typer.Option("--shadow-db")] = None,
) -> None:
    """Check that a schema loads on a scratch database, or that a plan file is well-formed."""
    if path.endswith(".json") and Path(path).is_file():
        from .inputs import load_json

        data = load_json(path)
        if isinstance(data, dict) and "steps" in data:
            from .integrity import check_plan

            p = load_plan(path)
            pid = check_plan(p, path, require_signature=False)
            scope = ("" if not p.signed_for else " for any environment"
                     if p.signed_for == ["*"] else " for " + ", ".join(p.signed_for))
            err.print(f"[green]valid plan:[/] {len(p.steps)} step(s), plan_id {pid}"
                      + (f" (signed{escape(scope)})" if p.signature else ""))
            return
    ctx = source_context([path], dialect, shadow_db)
    schema = load_schema(path, ctx)
    _report_checks(schema, path)
    err.print(f"[green]valid schema:[/] {len(schema.tables)} table(s), hash {schema.hash()[:12]}")


@app.command()
def convert(
    input: Annotated[str, typer.Option("--input", "-i", help="schema: .json, .sql, dir, URL, module:metadata")],
    output: Annotated[str | None, typer.Option("--output", "-o")] = None,
    to: Annotated[str, typer.Option("--to", help="json or sql")] = "json",
    dialect: Annotated[str | None, typer.Option("--dialect", help=f"{_DIALECTS}, when the input does not say")] = None,
    shadow_db: Annotated[str | None, typer.Option("--shadow-db")] = None,
) -> None:
    """Convert a schema between formats (JSON <-> SQL)."""
    fmt = to
    if output and to == "json" and output.endswith(".sql"):
        fmt = "sql"
    ctx = source_context([input], dialect, shadow_db)
    write_out(_format_schema(load_schema(input, ctx), fmt), output)


@app.command()
def history(
    target: Annotated[str | None, typer.Option("--target")] = None,
    target_environment: Annotated[str | None, typer.Option("--target-environment")] = None,
    json_out: Annotated[bool, typer.Option("--json")] = False,
    limit: Annotated[int, typer.Option("--limit")] = 20,
) -> None:
    """Migrations applied to a database (from its lockplane.migrations table)."""
    import json

    from .dialects import connect
    from .state import History

    if not 1 <= limit <= 1_000_000:
        raise BadInput(f"--limit must be from 1 to 1000000, not {limit}")
    dsn = _resolve_src(target, target_environment, "--target")
    with connect(dsn) as db:
        rows = History(db).list(limit)
    if json_out:
        sys.stdout.write(json.dumps([r.to_json() for r in rows], indent=2) + "\n")
        return
    if not rows:
        err.print("No migrations recorded.")
    for r in rows:
        err.print(escape(f"{r.id:>5}  {str(r.started_at)[:19]}  {r.result:<8}  "
                         f"{r.steps_done}/{r.steps_total} steps  {r.source_hash[:12]} -> "
                         f"{(r.hash_after or r.target_hash or '?')[:12]}  {r.applied_by or ''}"))
        if r.result in ("interrupted", "diverged") and r.error:
            # When the next run noticed, at which step, what became of its statement.
            err.print(escape(f"       {str(r.finished_at)[:19]}  {r.error}"))


@app.command()
def lint(
    files: Annotated[list[str] | None, typer.Argument(help="migration .sql files, or directories of them")] = None,
    format: Annotated[str, typer.Option("--format", help="text, json or github")] = "text",
    level: Annotated[str, typer.Option("--level", help="exit 3 on a finding of this class or worse: safe|review|multi_phase|lossy|dangerous")] = "review",
    exclude: Annotated[list[str] | None, typer.Option("--exclude", help="rule id to skip (repeatable, or comma-separated)")] = None,
    list_rules: Annotated[bool, typer.Option("--list-rules", help="print the rule catalogue")] = False,
    shadow_db: Annotated[str | None, typer.Option("--shadow-db", help="a server to ask whether each ADD COLUMN default rewrites the table (as plan does); without one, non-constant defaults 'may' rewrite")] = None,
) -> None:
    """Check hand-written PostgreSQL migrations against the safety catalogue."""
    from .changes.base import Safety
    from .lint import FORMATS, at_or_above, format_findings, format_rules, lint_files

    if format not in FORMATS:
        raise BadInput(f"--format must be one of {', '.join(FORMATS)}, not {format!r}")
    if list_rules:
        sys.stdout.write(format_rules(format) + "\n")
        return
    try:
        threshold = Safety(level)
    except ValueError:
        levels = ", ".join(s.value for s in sorted(Safety, key=lambda s: s.rank))
        raise BadInput(f"--level must be one of {levels}, not {level!r}") from None
    if not files:
        raise BadInput("lint: give at least one .sql file")
    skipped = [r.strip() for e in exclude or () for r in e.split(",") if r.strip()]
    findings = lint_files(files, exclude=skipped, server_dsn=shadow_db)
    if findings or format == "json":
        sys.stdout.write(format_findings(findings, format) + "\n")
    failing = at_or_above(findings, threshold)
    if format == "text":
        if findings:
            err.print(f"{len(findings)} finding(s), {len(failing)} at or above {level}.")
        else:
            err.print(f"[green]No findings[/] in {len(files)} path(s).")
    if failing:
        raise SafetyRefusal(f"lint: {len(failing)} finding(s) at or above --level {level}")


@app.command()
def demo(
    directory: Annotated[str, typer.Option("--dir", help="where to put the demo database")]
    = ".lockplane-demo",
) -> None:
    """Plan and apply a schema change on an embedded SQLite database."""
    from .demo import run_demo

    run_demo(directory)


@app.command()
def serve(
    target: Annotated[str | None, typer.Option(
        "--target", help="DatabaseTarget block name the deployments use by default "
                         "[default: production]; drift-check too, else it checks every "
                         "environment of ./lockplane.toml when there is one")] = None,
    schema: Annotated[str, typer.Option("--schema", help="desired schema (.sql, dir, .json)")]
    = "schema/",
    drift_cron: Annotated[str, typer.Option("--drift-cron", help="drift check schedule (UTC)")]
    = "0 6 * * *",
    limit: Annotated[int | None, typer.Option("--limit", help="max concurrent flow runs")]
    = None,
    work_pool: Annotated[str | None, typer.Option(
        "--work-pool", help="put the backfill-chunk deployment on this process work pool "
                            "(made if missing) for its workers: prefect worker start --pool "
                            "NAME --type process")] = None,
) -> None:
    """Serve every Prefect deployment (as in prefect.yaml) from this process."""
    # The engine never imports Prefect at module level: only this command needs it.
    from deployments.serve import serve_all

    if Path(schema).exists():
        schema = str(Path(schema).resolve())  # flow runs may start in another directory
    project = str(Path.cwd()) if target is None and Path("lockplane.toml").exists() else None
    serve_all(target=target or "production", desired_schema=schema, drift_cron=drift_cron,
              limit=limit, work_pool=work_pool, drift_project_dir=project)


def _register_phase_commands() -> None:
    from .cli_phases import register

    register(app, _resolve_src)


_register_phase_commands()


def _register_drift_commands() -> None:
    from .cli_drift import drift_app, register
    from .cli_drift_fix import register as register_fix

    register_fix(drift_app)
    register(app)


_register_drift_commands()


def _register_ci_report_command() -> None:
    from .cli_ci_report import register

    register(app)


_register_ci_report_command()


def _register_recover_commands() -> None:
    from .cli_recover import register

    register(app)


_register_recover_commands()


@app.command()
def approve(
    run: Annotated[str, typer.Argument(help="Prefect flow run id, or a multi-phase plan file")],
    approver: Annotated[str, typer.Option("--approver", help="who approves (recorded)")],
    comment: Annotated[str | None, typer.Option("--comment")] = None,
    reject: Annotated[bool, typer.Option("--reject", help="reject instead (the flow offers rollback)")] = False,
    phase: Annotated[int | None, typer.Option("--phase", help="with a plan file: the phase whose deploy is done")] = None,
    target: Annotated[str | None, typer.Option("--target", help="with a plan file")] = None,
    target_environment: Annotated[str | None, typer.Option("--target-environment")] = None,
) -> None:
    """Approve a waiting phase: resume a paused Prefect run, or record it in the database."""
    if run.endswith(".json") or Path(run).is_file():
        from .multiphase import load_multiphase_plan
        from .multiphase.runner import approve as approve_phase

        if reject:
            raise BadInput("--reject applies to a waiting Prefect run; to undo phases use "
                           "rollback-phase")
        mp = load_multiphase_plan(run)
        dsn = _resolve_src(target, target_environment, "--target")
        from .multiphase.runner import migration_state

        number = phase or migration_state(mp, dsn).completed_phases
        approve_phase(mp, dsn, number, approver, comment)
        err.print(f"[green]Approved[/] phase {number} of {mp.id} as {escape(approver)}.")
        return
    # The Prefect layer is imported only here: the engine itself never needs it.
    from flows.approvals import approve_run

    approve_run(run, approver=approver, comment=comment, approved=not reject)
    verb = "Rejected" if reject else "Approved"
    err.print(f"[green]{verb}[/] flow run {escape(run)} as {escape(approver)}.")


def main() -> None:
    """The console entry point (a process of its own: never called in-process)."""
    try:
        _main()
    finally:
        # Python's shutdown runs a full garbage collection whatever gc.disable() says:
        # after a plan of two 1,000-table schemas that is ~0.2 s spent only on exiting.
        # Frozen objects are left out of it (they are still freed as the process ends).
        gc.freeze()


def _command_for(args: list[str]) -> Any:
    """The click command to run: the app, with only the command being run when the
    first argument names one.

    typer builds a click command for every command at each start, evaluating each
    one's annotations: ~80 ms for 21 commands, of which a run uses one. Without a
    command name (--help, a typo and its "did you mean") the whole app is built; for a
    lazily imported group (``backfill``, ``backup``) none of the commands is.
    """
    chosen = [c for c in app.registered_commands if args and args[0] == (
        c.name or typer.main.get_command_name(c.callback.__name__))]  # type: ignore[union-attr]
    if not chosen and not (args and args[0] in _LazyBackfillGroup._lazy):
        return typer.main.get_command(app)
    lean = copy.copy(app)
    lean.registered_commands = chosen
    return typer.main.get_group(lean)  # a group still, so that argv[1] names the command


def _main() -> None:
    from . import background

    try:
        _run()
    finally:
        background.finish()  # (a scratch database's drop still under way)


def _redacted(message: str) -> str:
    """The last line of defence for what the command line prints: ``message`` redacted,
    and with the password of every database URL or conninfo on the command line taken
    out wherever it shows (dsn.redact_for), however the code that raised quoted it: a
    SQLite URL 'sqlite://u:pw@/x.db' came back as 'directory /tmp/u:pw@ does not exist'."""
    from .dsn import holds_password, redact_for

    out = redact(message)
    for arg in sys.argv[1:]:
        value = arg.split("=", 1)[1] if arg.startswith("--") and "=" in arg else arg
        if "://" in value or holds_password(value):
            out = redact_for(out, value)
    return out


def _run() -> None:
    try:
        # Without standalone mode click returns typer.Exit's code instead of exiting.
        code = _command_for(sys.argv[1:])(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except LockplaneError as exc:
        err.print("[red]error:[/] " + escape(_redacted(exc.message)))
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("[red]aborted[/]")
        sys.exit(3)
    except KeyboardInterrupt:
        err.print("[red]interrupted[/]")
        sys.exit(130)
    except RecursionError:
        # An input whose tree is deeper than Python walks: a DEFAULT of 900 '1+1+...'
        # terms parses (the server's own parser takes it) and then every walker of its
        # tree (pglast's, Lockplane's) recursed past the interpreter's limit: 'internal
        # error' on dee3fd9. It is the input's doing, whichever walker met it first.
        if os.environ.get("LOCKPLANE_DEBUG"):
            raise
        err.print("[red]error:[/] an input is nested too deeply to read (an expression "
                  "or document hundreds of levels deep, such as a long chain of a + b + "
                  "...): split or simplify it")
        sys.exit(2)
    except Exception as exc:  # click usage errors and anything unexpected
        # typer vendors its own click; recognise its exceptions by shape, not by class.
        if hasattr(exc, "format_message") and isinstance(getattr(exc, "exit_code", None), int):
            label = "usage" if exc.exit_code == 2 else "error"  # type: ignore[attr-defined]
            # click echoes what it could not use ("No such command 'postgresql://u:pw@...'")
            err.print(f"[red]{label}:[/] " + escape(_redacted(exc.format_message())))  # type: ignore[attr-defined]
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        if os.environ.get("LOCKPLANE_DEBUG"):
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        if getattr(exc, "sqlstate", None) == "25006":
            # (a URL, role or database with default_transaction_read_only, or a standby:
            # what the user gave cannot be written to, which is not Lockplane's fault)
            err.print("[red]error:[/] " + escape(
                f"the database refused a write, its session is read-only "
                f"(default_transaction_read_only, or a standby): {_redacted(first)}"))
            sys.exit(2)
        err.print("[red]internal error:[/] " + escape(f"{type(exc).__name__}: {_redacted(first)}")
                  + " (set LOCKPLANE_DEBUG=1 for a traceback)")
        sys.exit(1)
