"""``lockplane recover``, ``lockplane runbook``, ``lockplane backup base`` and the
backup path of ``lockplane rollback --via-backup``.

    lockplane recover --target DSN|--target-environment E --to TIME [--storage S]
                      [--into DSN|DIR] [--port N] [--restore-command CMD] [--dry-run]
                      [--auto-approve] [--force --confirm DBNAME] [--json]
    lockplane runbook --plan PLAN [--target ...] [--storage S] [--output FILE]
    lockplane backup base --target ... [--storage S]

``--into`` a database URL restores the nearest backup there (default: a new database
``<name>_recovered_<time>`` on the target's server); ``--into`` a directory recovers the
server to the exact time into a new instance (base backup + WAL archive). The live
database is overwritten only with ``--force`` and its name confirmed (typed, or
``--confirm NAME``): ``--auto-approve`` alone never does it.
Imported only when one of these commands runs (cli.py adds them lazily).
"""

from __future__ import annotations

import json
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from .cli_common import _env, _storage, _target, _target_if_given
from .dialects import get_dialect
from .dsn import dialect_of, looks_like_dsn, redact
from .errors import BadInput, ConfirmationNeeded, SafetyRefusal
from .report import err, escape

TargetOpt = Annotated[str | None, typer.Option("--target", help="the live database URL")]
EnvOpt = Annotated[str | None, typer.Option("--target-environment",
                                            help="environment in lockplane.toml")]
StorageOpt = Annotated[str | None, typer.Option(
    "--storage", help="backup storage: directory or s3://bucket/prefix [default: the "
                      "environment's backup_storage, $LOCKPLANE_BACKUP_STORAGE, "
                      "./.lockplane/backups]")]


def _report(msg: str) -> None:
    err.print(f"[dim]{escape(msg)}[/]")


# ---------------------------------------------------------------------------- targets
def same_database(a: str, b: str) -> bool:
    """Whether two URLs name the same database (local host spellings are one host)."""
    if dialect_of(a) != dialect_of(b):
        return False
    return get_dialect(dialect_of(a)).same_database(a, b)


def default_into(live: str, suffix: str) -> str:
    """A new database next to the live one: ``<name>_<suffix>_<UTC time>``."""
    at = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    return get_dialect(dialect_of(live)).database_next_to(live, f"{suffix}_{at}")


def _database_name(dsn: str) -> str:
    return get_dialect(dialect_of(dsn)).database_name(dsn)


def confirm_restore(live: str, into: str, *, force: bool, confirm_name: str | None,
                    auto_approve: bool, what: str) -> None:
    """Ask before restoring; refuse to overwrite the live database unless --force and its
    name is confirmed (typed at the prompt, or --confirm NAME)."""
    if looks_like_dsn(into) and same_database(live, into):
        name = _database_name(live)
        if not force:
            raise SafetyRefusal(f"not restored: {redact(into)} is the live database; restore "
                                "into a new database (--into DSN), or pass --force to "
                                "overwrite it")
        if confirm_name is not None:
            if confirm_name != name:
                raise BadInput(f"--confirm {confirm_name!r} does not name the live database "
                               f"({name!r})")
            return
        if not sys.stdin.isatty():
            raise BadInput(f"overwriting the live database needs its name confirmed: pass "
                           f"--confirm {name} (or run interactively); --auto-approve is not "
                           "enough")
        err.print(f"\n[bold red]{escape(what)} will OVERWRITE the live database "
                  f"{escape(redact(live))}.[/]")
        answer = typer.prompt(f"Type the database name ({name}) to confirm", default="",
                              show_default=False, err=True)
        if answer.strip() != name:
            raise SafetyRefusal("not restored: the database name was not confirmed")
        return
    if auto_approve:
        return
    if not sys.stdin.isatty():
        raise ConfirmationNeeded("restored")
    err.print(f"\n{escape(what)} into [bold]{escape(redact(into))}[/].")
    answer = typer.prompt("Only 'yes' will be accepted to approve", default="",
                          show_default=False, err=True)
    if answer.strip() != "yes":
        raise SafetyRefusal("not restored: not confirmed")


# ---------------------------------------------------------------------------- output
def print_plan(plan: Any) -> None:
    from .backup.pitr import stamp

    err.print(f"[bold]Recovery of {escape(plan.target)} to {stamp(plan.when)}[/]")
    err.print("Timeline: " + escape(plan.timeline_text()))
    if plan.backup is not None:
        summary = plan.loss.summary() if plan.loss else "not counted"
        err.print(f"Backup restore ({escape(plan.backup.id)}, {stamp_of(plan.backup)}): "
                  f"loses {escape(summary)}")
        if plan.loss is not None:
            for t in plan.loss.tables[:20]:
                err.print(f"  - {escape(t.message)}")
            if len(plan.loss.tables) > 20:
                err.print(f"  ... and {len(plan.loss.tables) - 20} more table(s)")
    else:
        err.print("No backup at or before that time: only point-in-time recovery reaches it.")
    if plan.exact:
        err.print(f"Point-in-time recovery: base backup {escape(plan.base_backup.id)} + the WAL "
                  f"archive reach exactly {stamp(plan.when)} (--into DIRECTORY)")
    if plan.archive is not None:
        for line in plan.archive.describe():
            err.print(f"  [dim]{escape(line)}[/]")
    for n in plan.notes:
        err.print(f"  note: {escape(n)}")


def stamp_of(m: Any) -> str:
    from .backup.pitr import ago, as_time, stamp

    when = as_time(m.created_at)
    return f"{stamp(when)}, {ago(when)}" if when else m.created_at


# ---------------------------------------------------------------------------- commands
def recover(
    to: Annotated[str, typer.Option("--to", help="the time to go back to: ISO 8601 (UTC "
                                                 "when no zone), 'now', or '90m ago'")],
    target: TargetOpt = None,
    target_environment: EnvOpt = None,
    storage: StorageOpt = None,
    into: Annotated[str | None, typer.Option(
        "--into", help="a database URL: restore the nearest backup there [default: a new "
                       "database <name>_recovered_<time>]; a directory: recover the server "
                       "to the exact time into a new instance (WAL archive)")] = None,
    port: Annotated[int | None, typer.Option("--port", help="with --into DIR: the new "
                                             "instance's port [default: a free one]")] = None,
    restore_command: Annotated[str | None, typer.Option(
        "--restore-command", help="with --into DIR: how to fetch archived WAL (%f, %p) "
                                  "[default: derived from the server's archive_command]")] = None,
    backup: Annotated[str | None, typer.Option("--backup", help="restore this backup id "
                                               "instead of the nearest one")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show the timeline and what "
                                          "would be lost; restore nothing")] = False,
    auto_approve: Annotated[bool, typer.Option("--auto-approve")] = False,
    force: Annotated[bool, typer.Option("--force", help="allow --into to be the live "
                                        "database (its name must be confirmed)")] = False,
    confirm: Annotated[str | None, typer.Option("--confirm", help="with --force: the live "
                                                "database's name, confirming the overwrite")]
    = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j")] = 2,
    as_json: Annotated[bool, typer.Option("--json", help="machine output on stdout")] = False,
) -> None:
    """Go back to a point in time: the nearest backup (or base backup + WAL archive), the
    timeline since, what restoring would lose; restore into something new after
    confirmation."""
    from .backup import restore_backup
    from .backup.pitr import parse_time, plan_recovery, recover_to_time

    env = _env(target_environment)
    live = _target(target, env)
    if not looks_like_dsn(live):
        raise BadInput(f"--target must be a database URL, not {live!r}")
    when = parse_time(to)
    store = _storage(storage, env)
    pitr = into is not None and not looks_like_dsn(into)
    plan = plan_recovery(store, live, when, jobs=jobs, restore_command=restore_command,
                         backup_id=backup)
    print_plan(plan)
    out: dict[str, Any] = {"plan": plan.to_json()}
    if dry_run:
        from .runbook import target_flags

        # A command to copy: the environment, or "$DATABASE_URL" for a DSN with a password
        # (a redacted one, with ***, would not connect).
        named = escape(target_flags(live, target_environment if target is None else None)[0]
                       + (f" --storage {shlex.quote(storage)}" if storage else ""))
        if plan.backup is not None:
            err.print(f"\nTo restore: lockplane recover {named} "
                      f"--to {when.isoformat()} --into DSN (a new database)")
        if plan.exact:
            err.print(f"To recover the exact time: lockplane recover {named} "
                      f"--to {when.isoformat()} --into /new/data/dir")
        if as_json:
            sys.stdout.write(json.dumps(out, indent=2) + "\n")
        return
    if pitr:
        assert into is not None
        if plan.archive is None or not plan.archive.usable:
            why = plan.archive.problems[0] if plan.archive and plan.archive.problems \
                else "needs PostgreSQL with WAL archiving"
            raise BadInput(f"no point-in-time recovery of {redact(live)}: {why}")
        if plan.base_backup is None:
            raise BadInput(f"no base backup of {redact(live)} finished before "
                           f"{when.isoformat()} (take them with lockplane backup base)")
        if Path(into).exists() and any(Path(into).iterdir()):
            raise BadInput(f"--into {into} exists and is not empty: give a new directory")
        confirm_restore(live, f"new instance in {into}", force=False, confirm_name=None,
                        auto_approve=auto_approve,
                        what=f"Point-in-time recovery to {when.isoformat()}")
        inst = recover_to_time(store, live, when, into, port=port,
                               restore_command=restore_command,
                               base_backup_id=plan.base_backup.id, report=_report)
        out["recovered"] = inst.to_json()
        err.print(f"[green]Recovered[/] {escape(redact(live))} as of {when.isoformat()} into a "
                  f"new instance: {escape(inst.dsn)} (data {escape(inst.data_dir)}, log "
                  f"{escape(inst.log)}, {inst.seconds:.1f} s). It keeps running; stop it with: "
                  f"{escape(inst.stop_command)}")
    else:
        if plan.backup is None:
            raise BadInput(f"no backup of {redact(live)} at or before {when.isoformat()}: "
                           "recover into a directory (point in time) instead")
        dest = into or default_into(live, "recovered")
        confirm_restore(live, dest, force=force, confirm_name=confirm,
                        auto_approve=auto_approve, what=f"Restoring backup {plan.backup.id}")
        result = restore_backup(store, plan.backup.id, dest, jobs=jobs,
                                force=same_database(live, dest), report=_report)
        out["restored"] = {"backup_id": result.backup_id, "into": result.target,
                           "created_database": result.created_database,
                           "seconds": result.seconds}
        err.print(f"[green]Restored[/] backup {result.backup_id} into {escape(result.target)} "
                  f"in {result.seconds:.1f} s.")
    if as_json:
        sys.stdout.write(json.dumps(out, indent=2) + "\n")


def base_backup(
    target: TargetOpt = None,
    target_environment: EnvOpt = None,
    storage: StorageOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine output on stdout")] = False,
) -> None:
    """Take a base backup (pg_basebackup) for point-in-time recovery with the WAL archive."""
    from .backup.pitr import create_base_backup, detect_wal_archive

    env = _env(target_environment)
    dsn = _target(target, env)
    archive = detect_wal_archive(dsn)
    if not archive.usable:
        err.print("[yellow]warning:[/] " + escape(
            "; ".join(archive.problems) + ": this base backup alone cannot reach a point in "
            "time"))
    b = create_base_backup(dsn, _storage(storage, env), report=_report)
    if as_json:
        sys.stdout.write(b.model_dump_json(indent=2) + "\n")
    err.print(f"[green]Base backup {b.id}[/] of {escape(b.database)}: {b.size_bytes:,} bytes "
              f"({escape(b.tool)}); point-in-time recovery reaches any time after "
              f"{b.finished_at}")


def runbook(
    plan_file: Annotated[str, typer.Option("--plan", help="the migration's plan file")],
    target: TargetOpt = None,
    target_environment: EnvOpt = None,
    storage: StorageOpt = None,
    output: Annotated[str | None, typer.Option("--output", "-o", help="write the markdown "
                                               "here [default: stdout]")] = None,
) -> None:
    """Write the recovery procedure for a migration (markdown): SQL rollback vs backup
    restore, what each loses, the exact commands, verification steps."""
    from .integrity import check_plan
    from .plan import load_plan
    from .report import write_out
    from .runbook import build_runbook

    forward = load_plan(plan_file)
    check_plan(forward, plan_file)
    env = _env(target_environment)
    live = _target_if_given(target, env)
    book = build_runbook(forward, plan_file, live, _storage(storage, env),
                         environment=env.name if env else None)
    write_out(book.markdown(), output, " (recovery runbook)")
    err.print(f"Runbook for plan {book.plan_id}: " + escape(book.headline()))


def rollback_via_backup(plan_file: str, target: str | None, target_environment: str | None,
                        storage: str | None, into: str | None, force: bool,
                        confirm_name: str | None, auto_approve: bool, jobs: int = 2) -> None:
    """``lockplane rollback --via-backup PLAN``: restore the backup taken before that
    migration, into a new database (default) or, with --force, over the target."""
    from .backup import restore_backup
    from .integrity import check_plan
    from .plan import load_plan
    from .runbook import backup_before_plan

    forward = load_plan(plan_file)
    check_plan(forward, plan_file)
    env = _env(target_environment)
    live = _target(target, env)
    store = _storage(storage, env)
    found = backup_before_plan(forward, live, store)
    err.print(escape(found.explain()))
    print_plan(found.recovery)
    dest = into or (live if force else default_into(live, "before_" + found.plan_id[:8]))
    confirm_restore(live, dest, force=force, confirm_name=confirm_name,
                    auto_approve=auto_approve,
                    what=f"Rolling back plan {found.plan_id[:12]} by restoring backup "
                         f"{found.backup.id}")
    result = restore_backup(store, found.backup.id, dest, jobs=jobs,
                            force=same_database(live, dest), report=_report)
    err.print(f"[green]Restored[/] backup {result.backup_id} (taken before plan "
              f"{found.plan_id[:12]}) into {escape(result.target)} in {result.seconds:.1f} s.")
    if not same_database(live, dest):
        err.print("The live database is unchanged. Check the copy (lockplane introspect, row "
                  "counts), then point the application at it or restore over the live "
                  "database with --force.")


def register(app: typer.Typer) -> None:
    app.command("recover")(recover)
    app.command("runbook")(runbook)


def register_backup(backup_app: typer.Typer) -> None:
    backup_app.command("base")(base_backup)
