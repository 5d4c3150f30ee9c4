"""Markdown renderings of plans and results, for reviewers outside a terminal.

Prefect artifacts, pull-request comments and chat messages all read Markdown; the rich
output in ``report.py`` is for terminals. Nothing here may show a password: targets are
passed through ``dsn.redact`` before they are printed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .dsn import redact
from .integrity import plan_id
from .plan import Plan, Step

SAFETY_BADGE = {"safe": "✅ safe", "review": "👀 review", "multi_phase": "🔀 multi_phase",
                "lossy": "⚠️ lossy", "dangerous": "⛔ dangerous"}


def _cell(value: str) -> str:
    """A table cell: one line of inert text (ci_report.text: pipes, Markdown and HTML
    escaped, control and invisible characters shown as escapes)."""
    from .ci_report import text

    return text(value, None)


def lock_summary(step: Step) -> str:
    lk = step.lock
    if lk is None:
        return "-"
    if lk.algorithm is not None:  # MySQL: what the server takes, and its LOCK= level
        mode = f"ALGORITHM={lk.algorithm}, LOCK={lk.mode}"
        return mode + (", rewrites table" if lk.rewrites_table else
                       ", scans table" if lk.scans_table else "")
    if lk.mode == "NONE":
        return "none"
    effects = []
    if lk.blocks_reads:
        effects.append("blocks reads")
    elif lk.blocks_writes:
        effects.append("blocks writes")
    if lk.rewrites_table:
        effects.append("rewrites table")
    elif lk.scans_table:
        effects.append("scans table")
    return lk.mode + (f" ({', '.join(effects)})" if effects else "")


def backfill_statement(step: Step, dialect: str | None) -> str | None:
    """What ``apply`` runs for a step with a backfill spec where the dialect batches
    them, instead of the step's one-statement SQL: this UPDATE, once per batch, each
    batch one range of the table's key (committed one by one, resumable). None for any
    other step."""
    spec = step.backfill
    if not spec:
        return None
    from .dialects import get_dialect
    from .errors import BadInput

    try:
        d = get_dialect(dialect or "postgres")
    except BadInput:
        return None
    if not d.batches_backfill_steps:
        return None
    try:
        table = d.qname(spec.get("schema"), spec["table"])
        sets = f"{d.quote(spec['column'])} = ({spec['expression']})"
    except (KeyError, TypeError, AttributeError):
        return f"(a malformed backfill spec: {spec!r})"
    where = f" AND ({spec['where']})" if spec.get("where") else ""
    return f"UPDATE {table} SET {sets} WHERE <the batch's key range>{where}"


def cleanup_label(step: Step) -> str:
    """When a step's clean-up statements run (execute.run_group)."""
    if step.cleanup_reverts_previous:
        return "after a failure (also undoes the step before)"
    if not step.transactional:
        return "before each attempt and after a failure"
    return "after a failure"


def _sql_block(statements: list[str]) -> str:
    """Statements in a fenced block that no line inside can close (a name holding
    three backticks ended a plain fence, and what followed was Markdown)."""
    from .ci_report import sql_block

    return sql_block(statements, 100_000)


def plan_markdown(plan: Plan, target: str, safety: str | None = None) -> str:
    """The plan as a reviewer reads it: a summary table, then each step's SQL and rollback."""
    head = [f"# Migration plan for `{redact(target)}`", ""]
    if not plan.steps:
        return "\n".join(head + [f"No changes: the database already matches "
                                 f"(hash `{plan.source_hash[:12]}`)."]) + "\n"
    worst = plan.worst_safety().value
    head += [f"- **Steps:** {len(plan.steps)}",
             f"- **Worst step:** {SAFETY_BADGE.get(worst, worst)}"]
    if safety:
        head.append(f"- **Safety level:** {safety}")
    head += [
        f"- **Dialect:** {plan.dialect or '?'}",
        f"- **Hashes:** `{plan.source_hash[:12]}` → `{(plan.target_hash or '?')[:12]}`",
        f"- **Plan id:** `{plan_id(plan)}`",
        "",
        "| # | Step | Safety | Lock | Transactional | Rollback |",
        "|---|------|--------|------|---------------|----------|",
    ]
    for i, step in enumerate(plan.steps, 1):
        rb = step.rollback
        rb_text = "-" if rb is None else (rb.safety if rb.sql else "nothing to undo")
        head.append(f"| {i} | {_cell(step.description)} | "
                    f"{SAFETY_BADGE.get(step.safety, step.safety)} | {_cell(lock_summary(step))} | "
                    f"{'yes' if step.transactional else 'no'} | {_cell(rb_text)} |")
    body: list[str] = []
    for i, step in enumerate(plan.steps, 1):
        # Prose from the plan file (not covered by its plan_id) and names from the schema:
        # one line of inert text each, so that none can add a heading, a link or a block.
        body += ["", f"## {i}. {_cell(step.description)}", ""]
        body += [f"> {_cell(m)}" for m in step.messages]
        if step.messages:
            body.append("")
        body += [_sql_block(step.sql)]
        batched = backfill_statement(step, plan.dialect)
        if batched:
            body += ["", "**Runs in committed batches** (instead of the statement above):",
                     "", _sql_block([batched])]
        if step.condition is not None:
            body += ["", "**Runs only where this counts 0** (else it is skipped):", "",
                     _sql_block([step.condition.query])]
        if step.cleanup:
            body += ["", f"**Clean-up**, {cleanup_label(step)}:", "", _sql_block(step.cleanup)]
        rb = step.rollback
        if rb is not None:
            note = f" — {_cell(rb.note)}" if rb.note else ""
            body += ["", f"**Rollback** ({rb.safety}){note}:"]
            body += ["", _sql_block(rb.sql) if rb.sql else "_nothing to undo_"]
    return "\n".join(head + body) + "\n"


def result_markdown(result: Mapping[str, Any], target: str) -> str:
    """What an apply did, from the summary dict the apply task returns."""
    lines = [f"# Migration result for `{redact(target)}`", "",
             f"- **Status:** {result.get('status')}",
             f"- **Steps run:** {result.get('steps_run')}",
             f"- **Migration id:** {result.get('migration_id')}",
             f"- **Database hash after:** `{str(result.get('hash_after', ''))[:12]}`"]
    warnings = list(result.get("warnings") or [])
    if warnings:
        # (a warning names tables and columns: one line of inert text each)
        lines += ["", "## Warnings", ""] + [f"- {_cell(redact(w))}" for w in warnings]
    return "\n".join(lines) + "\n"


def drift_markdown(plan: Plan, target: str, desired: str) -> str:
    """Drift report: what would have to change for the live database to match."""
    from .ci_report import code

    title = f"# Drift check for {code(redact(target))} against {code(redact(desired))}"
    if not plan.steps:
        return (f"{title}\n\nNo drift: the database matches the desired schema "
                f"(hash `{plan.source_hash[:12]}`).\n")
    lines = [title, "", f"**Drift found:** {len(plan.steps)} difference(s). "
             "These steps would bring the database to the desired schema:", ""]
    lines += [f"{i}. {_cell(s.description)} ({s.safety})" for i, s in enumerate(plan.steps, 1)]
    lines += ["", _sql_block([stmt for s in plan.steps for stmt in s.sql])]
    return "\n".join(lines) + "\n"
