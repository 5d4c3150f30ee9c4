"""``lockplane backup compare|extract|merge``: what changed since a backup, and rows back.

    lockplane backup compare  ENV BACKUP | --target DSN BACKUP [--table T ...] [--json]
    lockplane backup extract  --from BACKUP --table T --target ... [--where EXPR]
                              [--on-conflict skip|update|fail] [-o FILE]
    lockplane backup merge    --from BACKUP --table T --target ... [--where EXPR]
                              [--on-conflict skip|update|fail] [--auto-approve]

Registered on ``backup_app`` by cli_backup (imported with it, lazily).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated, Any

import typer
from rich.table import Table

from .cli_backup import (
    EnvOpt,
    JobsOpt,
    JsonOpt,
    StorageOpt,
    _env,
    _report,
    _server,
    _storage,
    _target,
    backup_app,
)
from .dsn import redact
from .errors import BadInput, ConfirmationNeeded, SafetyRefusal
from .report import err, escape

FromOpt = Annotated[str, typer.Option("--from", help="backup id (or 'latest')")]
TableOpt = Annotated[str, typer.Option("--table", help="table (TABLE or SCHEMA.TABLE)")]
WhereOpt = Annotated[str | None, typer.Option("--where", help="condition on the backup's "
                                              "rows (its column names)")]
ConflictOpt = Annotated[str, typer.Option("--on-conflict", help="skip | update | fail: what "
                                          "to do with a row whose key exists live")]
TargetOpt = Annotated[str | None, typer.Option("--target", help="live database URL")]
ServerOpt = Annotated[str | None, typer.Option("--server", help="PostgreSQL server for the "
                                               "temporary copy [default: the environment's "
                                               "shadow server, else the target's]")]


@backup_app.command("compare")
def compare(
    args: Annotated[list[str], typer.Argument(help="ENV BACKUP, or BACKUP with --target",
                                              show_default=False)],
    target: TargetOpt = None,
    target_environment: EnvOpt = None,
    table: Annotated[list[str] | None, typer.Option("--table", help="only these tables")] = None,
    server: ServerOpt = None,
    storage: StorageOpt = None,
    jobs: JobsOpt = 2,
    as_json: JsonOpt = False,
) -> None:
    """What changed since a backup: the schema in words, and per table the rows added,
    deleted and changed since, by primary key."""
    from .backup.compare import compare_backup

    env_name = target_environment
    if len(args) == 2 and not target and not env_name:
        env_name, backup_id = args
    elif len(args) == 1 and (target or env_name):
        backup_id = args[0]
    else:
        raise BadInput("usage: lockplane backup compare ENV BACKUP, or --target DSN BACKUP")
    env = _env(env_name)
    live = _target(target, env)
    r = compare_backup(_storage(storage, env), backup_id, live,
                       server_dsn=_server(server, env, live), jobs=jobs,
                       tables=list(table or []), report=_report)
    if as_json:
        sys.stdout.write(json.dumps(r.to_json(), indent=2, default=str) + "\n")
        return
    err.print(f"Backup [bold]{r.backup_id}[/] ({r.backup_created_at}) compared with "
              f"{escape(r.live)}" + (f"; {r.migrations_since} migration(s) applied since"
                                     if r.migrations_since else ""))
    if r.schema_changes:
        err.print(f"Schema: {len(r.schema_changes)} difference(s) since the backup")
        for item in r.schema_changes:
            err.print(f"  - {escape(item['message'])}")
    else:
        err.print("Schema: the same as in the backup")
    err.print("Rows:")
    for t in r.tables:
        err.print(f"  - {escape(t.words())}")
    err.print(f"[dim](restore {r.restore_s:.1f} s, {r.seconds:.1f} s in all)[/]")


def _live(target: str | None, target_environment: str | None) -> tuple[Any, str]:
    env = _env(target_environment)
    live = _target(target, env)
    return env, live


@backup_app.command("extract")
def extract(
    from_: FromOpt,
    table: TableOpt,
    target: TargetOpt = None,
    target_environment: EnvOpt = None,
    where: WhereOpt = None,
    on_conflict: ConflictOpt = "skip",
    output: Annotated[str | None, typer.Option("--output", "-o", help="SQL file to write "
                                               "[default: stdout]")] = None,
    server: ServerOpt = None,
    storage: StorageOpt = None,
    jobs: JobsOpt = 2,
) -> None:
    """Write a table's rows from a backup as upserts (INSERT ... ON CONFLICT) that fit the
    live database's current schema."""
    from .backup.extract import check_where, extract_rows

    check_where(where)  # bad input before anything is read
    env, live = _live(target, target_environment)
    if output:
        import tempfile
        from pathlib import Path

        dest = Path(output)
        with tempfile.NamedTemporaryFile("w", dir=dest.parent or ".", prefix=".lp-extract-",
                                         suffix=".sql", delete=False, encoding="utf-8") as f:
            tmp = Path(f.name)
            try:
                r = extract_rows(_storage(storage, env), from_, live, table, f, where=where,
                                 on_conflict=on_conflict,
                                 server_dsn=_server(server, env, live), jobs=jobs,
                                 report=_report)
            except BaseException:
                f.close()
                tmp.unlink(missing_ok=True)
                raise
        tmp.replace(dest)
    else:
        r = extract_rows(_storage(storage, env), from_, live, table, sys.stdout, where=where,
                         on_conflict=on_conflict, server_dsn=_server(server, env, live),
                         jobs=jobs, report=_report)
    for note in r.mapping.notes:
        err.print(f"  note: {escape(note)}")
    err.print(f"[green]Extracted[/] {r.rows:,} row(s) of {escape(r.mapping.backup_display)} "
              f"from backup {r.backup_id} as {r.statements} upsert statement(s) into "
              f"{escape(r.table)} (on conflict: {on_conflict})"
              + (f" -> {escape(output)}" if output else ""))


def _print_preview(p: Any) -> None:
    m = p.mapping
    for note in (m.notes if m else []):
        err.print(f"  note: {escape(note)}")
    err.print(escape(p.summary()))
    if p.sample_insert:
        t = Table(title=f"would insert (first {len(p.sample_insert)})")
        cols = list(p.sample_insert[0]["row"])
        for c in cols:
            t.add_column(c)
        for item in p.sample_insert:
            t.add_row(*("NULL" if item["row"][c] is None else str(item["row"][c])
                        for c in cols))
        err.print(t)
    if p.sample_changed:
        verb = {"update": "would update", "skip": "changed since the backup (skipped)",
                "fail": "conflicts"}[p.on_conflict]
        t = Table(title=f"{verb} (first {len(p.sample_changed)})")
        for c in ("key", "column", "backup", "live"):
            t.add_column(c)
        for item in p.sample_changed:
            key = ", ".join(f"{k}={v}" for k, v in item["key"].items())
            for col, vals in (item.get("changed") or {}).items():
                t.add_row(key, col, str(vals["backup"]), str(vals["live"]))
        err.print(t)


def _confirm(p: Any, live: str) -> None:
    if not sys.stdin.isatty():
        raise ConfirmationNeeded("merged")
    err.print(f"\nLockplane will upsert {p.rows - p.done_before:,} row(s) into "
              f"[bold]{escape(p.table)}[/] on [bold]{escape(redact(live))}[/] in batches.")
    answer = typer.prompt("Only 'yes' will be accepted to approve", default="",
                          show_default=False, err=True)
    if answer.strip() != "yes":
        raise SafetyRefusal("merge cancelled: not confirmed")


@backup_app.command("merge")
def merge(
    from_: FromOpt,
    table: TableOpt,
    target: TargetOpt = None,
    target_environment: EnvOpt = None,
    where: WhereOpt = None,
    on_conflict: ConflictOpt = "skip",
    auto_approve: Annotated[bool, typer.Option("--auto-approve", help="do not ask for "
                                               "confirmation")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", help="rows in the first batch "
                                            "(batches then aim at ~200 ms)")] = 1000,
    server: ServerOpt = None,
    storage: StorageOpt = None,
    jobs: JobsOpt = 2,
    as_json: JsonOpt = False,
) -> None:
    """Merge a table's rows from a backup back into the live database: extract, show what
    would be inserted/updated/skipped, confirm, then upsert in resumable batches."""
    from .backup.extract import MergeOptions, check_where, open_merge

    check_where(where)
    opts = MergeOptions(batch_size=batch_size)
    opts.validate()
    env, live = _live(target, target_environment)
    with open_merge(_storage(storage, env), from_, live, table, where=where,
                    on_conflict=on_conflict, server_dsn=_server(server, env, live), jobs=jobs,
                    report=_report) as rm:
        p = rm.preview
        _print_preview(p)
        if p.status == "done":
            if as_json:
                sys.stdout.write(json.dumps({"preview": p.to_json(), "result": None},
                                            indent=2, default=str) + "\n")
            return
        if on_conflict == "fail" and p.conflicts:
            rm.run(opts)  # refuses (exit 3), naming a conflicting key
        if not auto_approve:
            _confirm(p, live)
        last = [time.monotonic()]

        def progress(done: int, total: int) -> None:
            if time.monotonic() - last[0] > 2:
                last[0] = time.monotonic()
                _report(f"merged {done:,}/{total:,} staged row(s)")

        r = rm.run(opts, who="cli", on_batch=progress)
    if as_json:
        sys.stdout.write(json.dumps({"preview": p.to_json(), "result": r.to_json()},
                                    indent=2, default=str) + "\n")
    if r.status == "cancelled":
        raise SafetyRefusal(f"merge {r.merge_id} was cancelled ({r.rows_done:,}/{r.rows:,} "
                            "rows merged); run it again to resume")
    err.print(f"[green]Merged[/] backup rows into {escape(r.table)}: inserted {r.inserted:,}, "
              f"updated {r.updated:,}, skipped {r.skipped:,} in {r.batches} batch(es), "
              f"{r.seconds:.1f} s (merge {r.merge_id}, checkpointed with the backfills)")
