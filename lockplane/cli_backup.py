"""``lockplane backup``: backups with manifests, restores, read-only queries, validation.

    lockplane backup create   --target DSN | --target-environment E [--storage S] [--jobs N]
    lockplane backup list     [--storage S] [--target ... to filter] [--json]
    lockplane backup restore  --from ID --to DSN [--jobs N] [--force] [--no-owner]
    lockplane backup query    --from ID [--sql SQL] [--server DSN] [--json]
    lockplane backup validate ID [--server DSN] [--target ...] [--schema SRC] [--json]
    lockplane backup status   [--storage S] [--json]

STORAGE: a directory or s3://bucket/prefix; default: the environment's backup_storage,
then $LOCKPLANE_BACKUP_STORAGE, then ./.lockplane/backups. ID may be ``latest``.
Imported only when a ``backup`` command runs (cli.py adds it lazily).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.table import Table

from .cli_common import _env, _storage, _target, _target_if_given
from .config import Environment
from .errors import BadInput, LockplaneError
from .report import err, escape

backup_app = typer.Typer(
    help="Backups with manifests: create, list, restore, query read-only, validate.",
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
)

TargetOpt = Annotated[str | None, typer.Option("--target", help="database URL")]
EnvOpt = Annotated[str | None, typer.Option("--target-environment",
                                            help="environment in lockplane.toml")]
StorageOpt = Annotated[str | None, typer.Option(
    "--storage", help="directory or s3://bucket/prefix [default: the environment's "
                      "backup_storage, $LOCKPLANE_BACKUP_STORAGE, ./.lockplane/backups]")]
JobsOpt = Annotated[int, typer.Option("--jobs", "-j", help="parallel pg_dump/pg_restore jobs "
                                                           "(and checksum sessions)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine output on stdout")]


class ValidationFailed(LockplaneError):
    exit_code = 1


def _report(msg: str) -> None:
    err.print(f"[dim]{escape(msg)}[/]")


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _position(m: Any) -> str:
    return f"#{m.history.last_migration_id}" if m.history else "none"


@backup_app.command("create")
def create(
    target: TargetOpt = None,
    target_environment: EnvOpt = None,
    storage: StorageOpt = None,
    jobs: JobsOpt = 2,
    as_json: JsonOpt = False,
) -> None:
    """Back up a database (pg_dump -Fd -j N, or SQLite's online backup) with a manifest."""
    from .backup import create_backup

    env = _env(target_environment)
    dsn = _target(target, env)
    m = create_backup(dsn, _storage(storage, env), jobs=jobs, report=_report)
    if as_json:
        sys.stdout.write(m.to_json())
    err.print(f"[green]Backup {m.id}[/] of {escape(m.database)}: {len(m.tables)} table(s), "
              f"{m.total_rows:,} row(s), {_size(m.size_bytes)} in {m.duration_s:.1f} s; "
              f"schema {m.schema_hash[:12]}, migration {_position(m)}")


@backup_app.command("list")
def list_(
    storage: StorageOpt = None,
    target: Annotated[str | None, typer.Option("--target", help="only backups of this database")] = None,
    target_environment: EnvOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List complete backups, newest first."""
    from .backup import all_statuses, list_backups
    from .backup.storage import LocalStorage

    env = _env(target_environment)
    store = _storage(storage, env)
    missing = isinstance(store, LocalStorage) and not store.root.exists()
    if missing and storage is not None:
        # (a mistyped --storage must not read as "there are no backups")
        raise BadInput(f"--storage {storage}: no such directory")
    found = list_backups(store, _target_if_given(target, env))
    if as_json:
        sys.stdout.write(json.dumps([m.model_dump(mode="json", by_alias=True) for m in found],
                                    indent=2) + "\n")
        return
    if not found:
        err.print(f"No backups in {escape(store.url)}"
                  + (" (it does not exist yet)." if missing else "."))
        return
    validated = {s.last_validation.backup_id: s.last_validation
                 for s in all_statuses(store) if s.last_validation}
    table = Table(title=f"Backups in {store.url}")
    for col in ("id", "created (UTC)", "database", "tables", "rows", "size", "schema",
                "migration", "validated"):
        table.add_column(col, justify="right" if col in ("tables", "rows", "size") else "left")
    for m in found:
        v = validated.get(m.id)
        table.add_row(m.id, m.created_at.replace("T", " ")[:19], m.database,
                      str(len(m.tables)), f"{m.total_rows:,}", _size(m.size_bytes),
                      m.schema_hash[:12], _position(m),
                      ("passed" if v.ok else "FAILED") if v else "")
    err.print(table)


@backup_app.command("restore")
def restore(
    from_: Annotated[str, typer.Option("--from", help="backup id (or 'latest')")],
    to: Annotated[str, typer.Option("--to", help="database URL to restore into (created if "
                                                 "missing; refused if it has tables)")],
    storage: StorageOpt = None,
    target_environment: Annotated[str | None, typer.Option(
        "--storage-environment", help="environment whose backup_storage to read")] = None,
    jobs: JobsOpt = 2,
    force: Annotated[bool, typer.Option("--force", help="restore into a database that has "
                                                        "tables (pg_restore --clean)")] = False,
    no_owner: Annotated[bool, typer.Option("--no-owner", help="do not restore ownership and "
                                                              "grants")] = False,
) -> None:
    """Restore a backup into a new (or, with --force, existing) database."""
    from .backup import restore_backup

    env = _env(target_environment)
    result = restore_backup(_storage(storage, env), from_, to, jobs=jobs, force=force,
                            no_owner=no_owner, report=_report)
    made = " (created)" if result.created_database else ""
    err.print(f"[green]Restored[/] {result.backup_id} into {escape(result.target)}{made} in "
              f"{result.seconds:.1f} s.")


def _server(server: str | None, env: Environment | None, target: str | None) -> str | None:
    if server:
        return server
    if env is not None:
        return env.shadow_database_url or env.database_url
    return target


@backup_app.command("query")
def query(
    from_: Annotated[str, typer.Option("--from", help="backup id (or 'latest')")],
    sql: Annotated[str | None, typer.Option("--sql", help="query to run read-only; without "
                                                          "it, wait while you connect")] = None,
    server: Annotated[str | None, typer.Option("--server", help="PostgreSQL server for the "
                                                                "temporary database")] = None,
    target_environment: EnvOpt = None,
    storage: StorageOpt = None,
    jobs: JobsOpt = 2,
    as_json: JsonOpt = False,
) -> None:
    """Restore a backup into a temporary read-only database and query it; dropped after."""
    from .backup import query_copy, restored_copy

    env = _env(target_environment)
    with restored_copy(_storage(storage, env), from_, _server(server, env, None), jobs=jobs,
                       report=_report) as copy:
        if sql is None:
            err.print(f"Backup {copy.manifest.id} is restored read-only at:")
            sys.stdout.write(copy.display_dsn + "\n")
            sys.stdout.flush()
            err.print("Connect with your usual credentials (e.g. psql "
                      f"'{escape(copy.display_dsn)}'). Press Enter (or Ctrl-C) to drop it.")
            try:
                input()
            except (EOFError, KeyboardInterrupt):
                pass
            err.print(f"Dropped the temporary copy of {copy.manifest.id}.")
            return
        cols, rows = query_copy(copy, sql)
    if as_json:
        sys.stdout.write(json.dumps([dict(zip(cols, r, strict=True)) for r in rows],
                                    default=str, indent=2) + "\n")
        return
    table = Table(*cols) if cols else Table()
    for r in rows:
        table.add_row(*("NULL" if v is None else str(v) for v in r))
    from rich.console import Console

    Console(file=sys.stdout, soft_wrap=True).print(table)
    err.print(f"{len(rows)} row(s) from backup {copy.manifest.id} (temporary copy dropped)")


@backup_app.command("validate")
def validate(
    backup_id: Annotated[str, typer.Argument(help="backup id (or 'latest')")],
    server: Annotated[str | None, typer.Option("--server", help="PostgreSQL server for the "
                                                                "shadow database")] = None,
    target: Annotated[str | None, typer.Option("--target", help="live database: count the "
                                                                "migrations since the backup")] = None,
    target_environment: EnvOpt = None,
    schema: Annotated[str | None, typer.Option("--schema", help="desired schema to compare "
                                                                "with [default: the "
                                                                "environment's schema_path]")] = None,
    storage: StorageOpt = None,
    jobs: JobsOpt = 2,
    as_json: JsonOpt = False,
) -> None:
    """Restore into a shadow database and check counts, checksums and schema; report RTO."""
    from .backup import validate_backup

    env = _env(target_environment)
    live = _target_if_given(target, env)
    desired = None
    wanted = schema or (env.schema_path if env else None)
    if wanted:
        from .sources import SourceContext, load_schema

        server_dsn = _server(server, env, live)
        desired = load_schema(wanted, SourceContext(
            server_dsn=(env.scratch_database_url if env else None) or server_dsn,
            allowed_extensions=env.allowed_extensions if env else ()))
    r = validate_backup(_storage(storage, env), backup_id, server_dsn=_server(server, env, live),
                        jobs=jobs, desired=desired, live_dsn=live, report=_report)
    if as_json:
        sys.stdout.write(json.dumps(r.to_json(), indent=2) + "\n")
    else:
        for c in r.checks:
            mark = "[green]ok[/]  " if c.ok else "[red]FAIL[/]"
            err.print(f"  {mark} {escape(c.name)}: {escape(c.detail)}")
        for n in r.notes:
            err.print(f"  note: {escape(n)}")
    if not r.ok:
        first = r.failures[0]
        raise ValidationFailed(f"backup {r.backup_id} failed validation: {first.name}: "
                               f"{first.detail}")
    err.print(f"[green]Backup {r.backup_id} passed[/]: restored in {r.restore_s:.1f} s "
              f"(measured RTO {r.rto_s:.1f} s with fetch and checks of the files)")


@backup_app.command("status")
def status(storage: StorageOpt = None, target_environment: EnvOpt = None,
           as_json: JsonOpt = False) -> None:
    """Last backup, last good backup and last validation of each database."""
    from .backup import all_statuses

    env = _env(target_environment)
    found = all_statuses(_storage(storage, env))
    if as_json:
        sys.stdout.write(json.dumps([s.model_dump(mode="json") for s in found], indent=2)
                         + "\n")
        return
    for s in found:
        v = s.last_validation
        err.print(f"{escape(s.database)}: last backup "
                  f"{s.last_backup.id if s.last_backup else 'none'}, last good "
                  f"{s.last_good_backup.id if s.last_good_backup else 'none'}, last validation "
                  + (f"{v.backup_id} {'passed' if v.ok else 'FAILED'} at {v.at}"
                     + (f" (RTO {v.rto_s:.1f} s)" if v.rto_s is not None else "")
                     if v else "none"))


def _register_base() -> None:
    from .cli_recover import register_backup

    register_backup(backup_app)


_register_base()


# ---------------------------------------------------------------------------- apply hook
def backup_first(env: Environment, dsn: str, plan: Any) -> Callable[[Any], None] | None:
    """What ``apply`` runs before its first step when the environment asks for a backup
    (backup_before = "always", or "dangerous" and the plan has a dangerous step): the
    backup. It runs after the plan is checked against the target, confirmed by the
    operator and validated on a shadow: nothing is backed up for a plan that will not
    run. None when no backup is asked for."""
    policy = env.backup_before
    dangerous = any(getattr(s, "safety", "") == "dangerous" for s in plan.steps)
    if policy == "never" or (policy == "dangerous" and not dangerous):
        return None

    def backup(p: Any) -> None:
        from .backup import create_backup
        from .integrity import plan_id

        why = "dangerous step(s)" if dangerous else "backup_before = always"
        err.print(f"[dim]taking a backup before applying ({why}; environment {env.name})[/]")
        m = create_backup(dsn, _storage(None, env), jobs=2,
                          reason=f"before apply of plan {plan_id(p)}", report=_report)
        err.print(f"Backup {m.id} taken ({_size(m.size_bytes)}, {m.duration_s:.1f} s); "
                  f"restore with: lockplane backup restore --from {m.id} --to DSN")

    return backup


# compare / extract / merge (lockplane/cli_backup_rows.py) register on backup_app.
from . import cli_backup_rows as _rows  # noqa: E402, F401
