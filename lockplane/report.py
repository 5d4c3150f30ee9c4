"""Human output (stderr, rich): plan summaries a reviewer can read at 2 AM."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

from .plan import Plan

err = Console(stderr=True, highlight=False, soft_wrap=False)

SAFETY_STYLE = {"safe": "green", "review": "yellow", "multi_phase": "magenta",
                "lossy": "red", "dangerous": "bold red"}


def lock_text(plan: Plan, i: int) -> str:
    step = plan.steps[i]
    if step.lock is None:
        return "-"
    lk = step.lock
    if lk.mode == "NONE":
        return "none"
    effects = []
    if lk.blocks_reads:
        effects.append("blocks reads")
    elif lk.blocks_writes:
        effects.append("blocks writes")
    if lk.rewrites_table:
        effects.append("rewrites")
    elif lk.scans_table:
        effects.append("scans")
    return lk.mode + (f" ({', '.join(effects)})" if effects else "")


def print_plan(plan: Plan, *, show_sql: bool = True, title: str = "Plan") -> None:
    if not plan.steps:
        err.print(f"[green]No changes.[/] The database already matches "
                  f"(hash {plan.source_hash[:12]}).")
        return
    table = RichTable(title=f"{title}: {len(plan.steps)} step(s), "
                            f"{plan.source_hash[:12]} -> {(plan.target_hash or '?')[:12]}",
                      show_lines=show_sql, expand=False)
    table.add_column("#", justify="right")
    table.add_column("step")
    table.add_column("safety")
    table.add_column("lock")
    table.add_column("rollback")
    for i, step in enumerate(plan.steps):
        body = Text(step.description, style="bold")
        for msg in step.messages:
            body.append("\n  " + msg, style="dim")
        if show_sql:
            for stmt in step.sql:
                body.append("\n" + stmt, style="cyan")
        rb = step.rollback
        rb_text = Text(rb.safety if rb else "-", style=SAFETY_STYLE.get(rb.safety, "") if rb else "")
        if rb and rb.note:
            rb_text.append("\n" + rb.note, style="dim")
        table.add_row(str(i + 1), body, Text(step.safety, style=SAFETY_STYLE.get(step.safety, "")),
                      lock_text(plan, i), rb_text)
    err.print(table)
    counts: dict[str, int] = {}
    for s in plan.steps:
        counts[s.safety] = counts.get(s.safety, 0) + 1
    summary = ", ".join(f"[{SAFETY_STYLE.get(k, '')}]{v} {k}[/]" for k, v in sorted(counts.items()))
    err.print(f"Summary: {summary}")
