"""``lockplane backfill``: resumable batched backfills from the command line.

    lockplane backfill --target DSN --table T --set "col = expr" [--where COND]
                       [--batch-size N] [--sleep MS] [--max-rows-per-second N] [--auto-approve]
    lockplane backfill status --target DSN [--id ID] [--json]
    lockplane backfill cancel --target DSN (--id ID | --table T --set ... [--where ...])

Like ``apply``, a backfill first shows what it will do (the batch statement, the key it
walks, rows, duration and WAL measured on a shadow sample) and asks before it touches
the database. Human output goes to stderr; ``--json`` puts the result on stdout.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import asdict
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn
from rich.table import Table
from rich.text import Text

from .backfill import (
    BackfillOptions,
    BackfillPlan,
    BackfillResult,
    backfill_status,
    cancel_backfill,
    find_backfill_id,
    human_bytes,
    human_count,
    human_duration,
    make_spec,
    plan_backfill,
    run_backfill,
)
from .backfill import Progress as BackfillProgress
from .config import get_environment
from .dsn import dialect_of, redact
from .errors import BadInput, ConfirmationNeeded, SafetyRefusal
from .report import err, stderr_console

backfill_app = typer.Typer(
    help="Resumable batched backfills: UPDATE a big table in small committed batches.",
    add_completion=False,
    pretty_exceptions_enable=False,
)

TargetOpt = Annotated[str | None, typer.Option("--target", help="database URL")]
EnvOpt = Annotated[str | None, typer.Option("--target-environment",
                                            help="environment in lockplane.toml")]


def _target(target: str | None, environment: str | None) -> str:
    if target:
        return target
    if environment:
        env = get_environment(environment)
        if env.database_url:
            return env.database_url
        raise BadInput(f"environment {env.name!r} has no database_url "
                       f"(lockplane.toml or .env.{env.name})")
    raise BadInput("missing --target: pass it, or --target-environment")


def _note(msg: str) -> None:
    err.print(Text(msg, style="dim"))


# ---------------------------------------------------------------------------- run
@backfill_app.callback(invoke_without_command=True)
def backfill(
    ctx: typer.Context,
    target: TargetOpt = None,
    target_environment: EnvOpt = None,
    table: Annotated[str | None, typer.Option("--table", help="table to update: name or schema.name")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help='"column = expression" (repeatable)')] = None,
    where: Annotated[str | None, typer.Option("--where", help="only rows matching this condition")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="rows in the first batch (then adapted)")] = 1000,
    sleep: Annotated[int, typer.Option("--sleep", help="milliseconds to pause after each batch")] = 0,
    max_rows_per_second: Annotated[float | None, typer.Option("--max-rows-per-second", help="ceiling on rows updated per second")] = None,
    target_batch_ms: Annotated[int, typer.Option("--target-batch-ms", help="batch duration the pacing aims at")] = 100,
    fixed_batch_size: Annotated[bool, typer.Option("--fixed-batch-size", help="never adapt the batch size")] = False,
    lock_timeout: Annotated[int, typer.Option("--lock-timeout-ms", help="how long a batch waits for a row lock (PostgreSQL lock_timeout; MySQL innodb_lock_wait_timeout, whole seconds)")] = 200,
    max_replication_lag: Annotated[int | None, typer.Option("--max-replication-lag-ms", help="PostgreSQL: pause while a replica lags more")] = None,
    chunks: Annotated[int, typer.Option("--chunks", help="split the key range; run the chunks in parallel")] = 1,
    shadow_db: Annotated[str | None, typer.Option("--shadow-db", help="server for the shadow database")] = None,
    skip_row_check: Annotated[bool, typer.Option("--skip-row-check", help="do not evaluate every target row read-only first")] = False,
    restart: Annotated[bool, typer.Option("--restart", help="start over, ignoring a checkpoint")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show the plan and estimate, change nothing")] = False,
    auto_approve: Annotated[bool, typer.Option("--auto-approve", help="do not ask for confirmation")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="print the result as JSON on stdout")] = False,
    who: Annotated[str | None, typer.Option("--who", help="recorded with the checkpoint")] = None,
) -> None:
    """Backfill a column in resumable batches (subcommands: status, cancel)."""
    if ctx.invoked_subcommand is not None:
        return
    if not table:
        raise BadInput("missing --table (or a subcommand: status, cancel)")
    dsn = _target(target, target_environment)
    spec = make_spec(table, set_ or [], where, dialect_of(dsn))
    opts = BackfillOptions(
        batch_size=batch_size, sleep_ms=sleep, max_rows_per_second=max_rows_per_second,
        target_batch_ms=target_batch_ms, adaptive=not fixed_batch_size,
        lock_timeout_ms=lock_timeout, max_replication_lag_ms=max_replication_lag,
        chunks=chunks, shadow_dsn=shadow_db, check_rows=not skip_row_check, restart=restart,
        started_by=who)
    opts.validate()
    with err.status(f"Planning the backfill of {escape(table)} (shadow trial, read-only "
                    "check)...", spinner="dots"):
        plan = plan_backfill(dsn, spec, opts, report=_note)
    print_backfill_plan(plan, dsn, opts)
    if plan.status == "done" and not restart:
        err.print(f"[green]Already done:[/] backfill {plan.id} finished "
                  f"({plan.rows_done:,} row(s)); pass --restart to run it again.")
        if json_out:
            sys.stdout.write(json.dumps({"id": plan.id, "status": "already_done"}) + "\n")
        return
    if dry_run:
        err.print("[yellow]Dry run:[/] nothing was changed.")
        return
    if not auto_approve:
        _confirm(plan, dsn)
    result = _run_with_progress(dsn, plan, opts)
    _print_result(result)
    if json_out:
        out = {**result.to_json(), "estimate": asdict(plan.estimate)}
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
    if result.status == "cancelled":
        raise SafetyRefusal(f"backfill {result.id} was cancelled by an operator; its "
                            "checkpoint is kept: run the same command to resume")


def print_backfill_plan(plan: BackfillPlan, dsn: str, opts: BackfillOptions) -> None:
    rb, est = plan.resolved, plan.estimate
    err.print(Text(f"Backfill {plan.id} on {redact(dsn)}", style="bold underline"))

    def row(label: str, value: str, style: str = "") -> None:
        line = Text(f"  {label:<9}", style="dim")
        line.append(value, style=style)
        err.print(line)

    row("table", f"{rb.display} ({rb.key_text})")
    for col, expr in zip(rb.columns, rb.expressions, strict=True):
        row("set", f"{col} = {expr}", "cyan")
    if rb.where:
        row("where", rb.where, "cyan")
    if plan.status == "done":
        row("status", "done", "green")
        return
    tilde = "" if est.rows_exact else "~"
    rows = f"{tilde}{est.rows_to_update:,} to update"
    if est.rows_to_update != est.rows_in_table or not est.rows_exact:
        rows += f" of {'' if est.rows_exact else '~'}{est.rows_in_table:,} in the table"
    row("rows", rows)
    if est.seconds is not None:
        rate = f" at ~{human_count(est.rows_per_second or 0)} rows/s" \
            if est.rows_per_second else ""
        row("time", f"~{human_duration(est.seconds)}{rate} (measured on the shadow sample)")
    if est.wal_bytes is not None:
        fpi = (f", of which up to {human_bytes(est.full_page_bytes)} full-page images"
               if est.full_page_bytes else "")
        row("WAL", f"~{human_bytes(est.wal_bytes)} ({est.wal_bytes_per_row or 0:.0f} B/row"
                   f"{fpi})")
    pacing = (f"batches near {opts.target_batch_ms} ms (first {opts.batch_size:,} rows)"
              if opts.adaptive else f"batches of {opts.batch_size:,} rows")
    if opts.sleep_ms:
        pacing += f", {opts.sleep_ms} ms pause"
    if opts.max_rows_per_second:
        pacing += f", at most {opts.max_rows_per_second:,.0f} rows/s"
    if opts.max_replication_lag_ms:
        pacing += f", replica lag under {opts.max_replication_lag_ms} ms"
    if opts.chunks > 1:
        pacing += f", {opts.chunks} chunks in parallel"
    row("pacing", pacing)
    from .dialects import get_dialect

    wait = get_dialect(dialect_of(dsn)).row_lock_wait(opts.lock_timeout_ms)
    row("each", f"one transaction ({wait}) with its checkpoint in {plan.state_table}")
    row("SQL", plan.statement, "cyan")
    for check in plan.checks:
        row("checked", check, "green")
    for w in plan.warnings:
        err.print(Text(f"  ! {w}", style="yellow"))


def _confirm(plan: BackfillPlan, dsn: str) -> None:
    if not sys.stdin.isatty():
        raise ConfirmationNeeded("started")
    est = plan.estimate
    err.print(f"\nLockplane will update {'' if est.rows_exact else '~'}"
              f"{est.rows_to_update:,} row(s) of [bold]{escape(plan.resolved.display)}[/] on "
              f"[bold]{escape(redact(dsn))}[/] in batches.")
    answer = typer.prompt("Only 'yes' will be accepted to approve", default="",
                          show_default=False, err=True)
    if answer.strip() != "yes":
        raise SafetyRefusal("backfill cancelled: not confirmed")


class _RowsColumn(ProgressColumn):
    """Processed 100,000/1,000,000 rows (10%), 2m left"""

    def render(self, task: Task) -> Text:
        total = int(task.total or 0)
        done = int(task.completed)
        pct = 100.0 * done / total if total else 0.0
        left = task.fields.get("left") or ""
        tail = f", {left}" if left else ""
        return Text(f"Processed {done:,}/{total:,} rows ({pct:.0f}%){tail}")


def eta_text(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return ""
    if seconds < 60:
        return f"{max(1, int(seconds))}s left"
    if seconds < 3600:
        return f"{int(seconds // 60)}m left"
    return f"{int(seconds // 3600)}h {int(seconds % 3600 // 60)}m left"


def _run_with_progress(dsn: str, plan: BackfillPlan, opts: BackfillOptions) -> BackfillResult:
    total = max(plan.estimate.rows_in_table, 1)
    done_before = plan.rows_done
    lock = threading.Lock()
    per_chunk: dict[int, BackfillProgress] = {}
    t0 = time.monotonic()
    with Progress(_RowsColumn(), BarColumn(), TextColumn("[dim]{task.fields[note]}"),
                  console=stderr_console(), transient=False) as bar:
        task = bar.add_task("backfill", total=total, completed=done_before, left="", note="")

        def on_progress(p: BackfillProgress) -> None:
            with lock:
                per_chunk[p.chunk] = p
                scanned = (p.total_scanned if p.chunks > 1
                           else sum(c.rows_scanned for c in per_chunk.values()))
                grand = max(total, scanned)
                rate = (scanned - done_before) / max(time.monotonic() - t0, 1e-3)
                left = eta_text((grand - scanned) / rate) if rate > 0 else ""
                bar.update(task, completed=scanned, total=grand, left=left,
                           note=p.note or f"batch {p.batch_size:,} rows, "
                                          f"{p.last_batch_ms:.0f} ms")

        result = run_backfill(dsn, plan, opts, on_progress=on_progress)
        if result.status == "done":
            finished = max(int(bar.tasks[0].completed), 1)
            bar.update(task, completed=finished, total=finished, left="done", note="")
    return result


def _print_result(result: BackfillResult) -> None:
    if result.status == "cancelled":
        err.print(f"[yellow]Cancelled[/] after {result.rows_scanned:,} row(s) in this run.")
        return
    err.print(f"[green]Backfilled[/] {escape(result.table)}: {result.rows_scanned:,} row(s) "
              f"scanned, {result.rows_updated:,} updated in {result.batches:,} batch(es), "
              f"{human_duration(result.seconds)} ({result.rows_per_second:,.0f} rows/s"
              f"{f', {result.lock_retries} lock retries' if result.lock_retries else ''}).")


# ---------------------------------------------------------------------------- status
@backfill_app.command()
def status(
    target: TargetOpt = None,
    target_environment: EnvOpt = None,
    id_: Annotated[str | None, typer.Option("--id", help="one backfill")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="JSON on stdout")] = False,
) -> None:
    """Backfills recorded in the database, with their progress."""
    dsn = _target(target, target_environment)
    rows = backfill_status(dsn, id_)
    if id_ and not rows:
        raise BadInput(f"no backfill {id_} in {redact(dsn)}")
    if json_out:
        sys.stdout.write(json.dumps([r.to_json() for r in rows], indent=2) + "\n")
        return
    if not rows:
        err.print("No backfills recorded.")
        return
    styles = {"done": "green", "running": "cyan", "failed": "red", "cancelled": "yellow",
              "interrupted": "yellow", "pending": "dim"}
    out = Table(show_edge=False, header_style="bold")
    for col in ("id", "table", "set / where", "status", "progress", "updated", "batches",
                "last change"):
        out.add_column(col)
    for r in rows:
        what = r.set + (f" WHERE {r.where}" if r.where else "")
        chunks = f" ({r.chunks_done}/{r.chunks} chunks)" if r.chunks > 1 else ""
        out.add_row(r.id, r.table, Text(what), Text(r.status + chunks,
                                                    style=styles.get(r.status, "")),
                    f"{r.rows_scanned:,}/{r.rows_estimate:,} ({r.percent:.0f}%)",
                    f"{r.rows_updated:,}", f"{r.batches:,}", r.updated_at[:19])
    err.print(out)
    for r in rows:
        if r.error:
            err.print(Text(f"{r.id}: {r.error}", style="red"))


# ---------------------------------------------------------------------------- cancel
@backfill_app.command()
def cancel(
    target: TargetOpt = None,
    target_environment: EnvOpt = None,
    id_: Annotated[str | None, typer.Option("--id", help="the backfill (see status)")] = None,
    table: Annotated[str | None, typer.Option("--table")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set")] = None,
    where: Annotated[str | None, typer.Option("--where")] = None,
) -> None:
    """Stop a backfill before its next batch (its checkpoint is kept: re-run to resume)."""
    dsn = _target(target, target_environment)
    if not id_:
        if not table:
            raise BadInput("give --id, or the --table/--set/--where of the backfill")
        id_ = find_backfill_id(dsn, make_spec(table, set_ or [], where, dialect_of(dsn)))
    n = cancel_backfill(dsn, id_)
    if n == 0:
        err.print(f"Backfill {id_} is not running (nothing to cancel).")
        return
    err.print(f"[yellow]Cancelled[/] backfill {id_} ({n} chunk(s)): its workers stop before "
              "their next batch. Run the same backfill again to resume.")
