"""Human output (stderr, rich): plan summaries a reviewer can read at 2 AM."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import BadInput
from .markdown import backfill_statement, cleanup_label, lock_summary
from .plan import Plan

if TYPE_CHECKING:
    from rich.console import Console


_console: Console | None = None
NOT_A_TTY_WIDTH = 10_000  # "no limit" for rich's layout when stderr is not a terminal


def stderr_console() -> Console:
    """The rich Console on stderr, made on first use: importing rich is ~50 ms of every
    start-up, and a quiet run (``plan -q -o FILE`` in CI) prints nothing that needs it."""
    global _console
    if _console is None:
        import sys

        from rich.console import Console

        # Wrapped at a terminal's width; piped or captured (CI logs, scripts), a line stays
        # one line, so ids, paths and SQL are never cut in two, and a table (backfill
        # status) takes the width its cells need instead of rich's default of 80 columns.
        tty = sys.stderr.isatty()
        _console = Console(stderr=True, highlight=False, soft_wrap=not tty,
                           width=None if tty else NOT_A_TTY_WIDTH)
    return _console


# C0 controls but newline and tab, DEL, and C1 controls (0x9b is a one-byte CSI): text
# from files, databases and options (approver names, history, descriptions) must not move
# the cursor, recolour or retitle an operator's terminal. Nor may it show other than what
# it is: bidirectional embeddings, overrides and isolates (which reorder what a terminal
# shows: "Trojan Source"), zero-width characters, line and paragraph separators and the
# byte-order mark are shown as escapes too (as ci_report.visible does in Markdown).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f"
                      "\u2028-\u202e\u2060-\u2069\ufeff]")


def _escape_char(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def printable(text: str) -> str:
    """``text`` with every terminal control (and invisible or reordering) character shown
    as an escape (``\\x1b``, ``\\u202e``)."""
    return _CONTROL.sub(_escape_char, text)


def sql_comment(text: str) -> str:
    """``text`` as one SQL comment line (``-- ...``), whatever it holds. Identifiers and
    prose from a schema file or a database end up in the comments of scripts that psql or
    another runner executes; a carriage return ends a ``--`` comment for PostgreSQL's (and
    psql's) lexer, so a table named ``t\\rDROP TABLE users;`` ran its DROP from a comment.
    Every control character is shown as an escape, newlines as spaces."""
    return "-- " + printable(text.replace("\r\n", " ").replace("\n", " "))


class _Stderr:
    """``err``: stands for ``stderr_console()`` (pass that one to rich objects that take a
    console, such as Progress). What it prints carries no terminal control characters."""

    def __getattr__(self, name: str) -> Any:
        return getattr(stderr_console(), name)

    def print(self, *objects: Any, **kwargs: Any) -> None:
        stderr_console().print(*(_defanged(o) for o in objects), **kwargs)


def _defanged(obj: Any) -> Any:
    if isinstance(obj, str):
        return printable(obj)  # the escapes hold no "[": markup is left as it was
    plain = getattr(obj, "plain", None)
    if isinstance(plain, str) and _CONTROL.search(plain):  # a rich Text: same length, so
        obj = obj.copy()                                   # its styles stay in place
        obj.plain = _CONTROL.sub("\ufffd", plain)
    return obj


err: Console = _Stderr()  # type: ignore[assignment]


def escape(text: str) -> str:
    """``text`` with rich markup escaped and control characters shown as escapes (rich
    imported on first use, as above)."""
    from rich.markup import escape as rich_escape

    return rich_escape(printable(text))

def write_out(text: str, output: str | None, detail: str = "") -> None:
    """``text`` into the file ``output`` (saying so on stderr), or on stdout without one."""
    if output:
        try:
            Path(output).write_text(text + "\n")
        except OSError as exc:
            raise BadInput(f"cannot write {output}: {exc.strerror}") from None
        sys.stderr.write(f"Wrote {output}{detail}\n")  # plain: a path is not rich markup
    elif sys.stdout.isatty():
        # A person reads it: names and literals from a schema or a plan (a pull
        # request's) must not drive the terminal. Piped or written to a file, the text
        # stays exact (SQL and JSON a program reads).
        sys.stdout.write(printable(text) + "\n")
    else:
        sys.stdout.write(text + "\n")


SAFETY_STYLE = {"safe": "green", "review": "yellow", "multi_phase": "magenta",
                "lossy": "red", "dangerous": "bold red"}


def lock_text(plan: Plan, i: int) -> str:
    return lock_summary(plan.steps[i])


def print_plan(plan: Plan, *, show_sql: bool = True, title: str = "Plan") -> None:
    """One block per step: what, how safe, what it locks, its SQL and its rollback."""
    from rich.text import Text

    from .integrity import plan_id

    if not plan.steps:
        err.print(f"[green]No changes.[/] The database already matches "
                  f"(hash {plan.source_hash[:12]}).")
        return
    err.print(Text(f"{title}: {len(plan.steps)} step(s), {plan.source_hash[:12]} -> "
                   f"{(plan.target_hash or '?')[:12]}", style="bold underline"))
    err.print(Text(f"plan_id {plan_id(plan)}"))
    for i, step in enumerate(plan.steps):
        head = Text(f"{i + 1:>3}. ")
        # (one line: a description is prose the plan_id does not cover, and an edited one
        # could otherwise draw lines that look like the step's SQL)
        head.append(step.description.replace("\n", "\\n"), style="bold")
        head.append("  [")
        head.append(step.safety, style=SAFETY_STYLE.get(step.safety, ""))
        head.append(f"; lock: {lock_text(plan, i)}")
        if not step.transactional:
            head.append("; runs outside a transaction")
        head.append("]")
        err.print(head)
        found = {f.message for f in step.findings}
        for f in step.findings:
            line = Text("     ! ", style="yellow")
            line.append(f.rule, style=SAFETY_STYLE.get(f.safety, "yellow"))
            line.append(f": {f.message}", style="yellow")
            err.print(line)
            if f.safer:
                err.print(Text(f"       safer: {f.safer}", style="dim"))
        if step.lock is not None:  # why (MySQL: the rules, and what the server said)
            for reason in step.lock.reasons or []:
                err.print(Text(f"     lock: {reason}", style="dim"))
            if step.lock.server:
                err.print(Text(f"     server: {step.lock.server}", style="dim"))
        has_safer = any(f.safer for f in step.findings)
        for msg in step.messages:
            # The catalogue's safer form is shown with the finding; a kind's own
            # "Safer: ..." line would say it twice.
            if msg not in found and not (has_safer and msg.startswith("Safer:")):
                err.print(Text(f"     ! {msg}", style="yellow"))
        if show_sql:
            for stmt in step.sql:
                err.print(Text("     " + stmt.replace("\n", "\n     "), style="cyan"))
            # Everything else that runs: nothing may run that the operator was not shown.
            batched = backfill_statement(step, plan.dialect)
            if batched:
                err.print(Text("     apply runs, in committed batches instead of the above:",
                               style="dim"))
                err.print(Text("     " + batched.replace("\n", "\n     "), style="cyan"))
            if step.condition is not None:  # (it runs on the target, before the step)
                err.print(Text("     runs only where this counts 0 (else skipped):",
                               style="dim"))
                err.print(Text("     " + step.condition.query.replace("\n", "\n     "),
                               style="cyan"))
            if step.cleanup:
                err.print(Text(f"     clean-up, {cleanup_label(step)}:", style="dim"))
                for stmt in step.cleanup:
                    err.print(Text("     " + stmt.replace("\n", "\n     "), style="cyan"))
        rb = step.rollback
        if rb is not None:
            line = Text("     rollback: ", style="dim")
            line.append(rb.safety, style=SAFETY_STYLE.get(rb.safety, ""))
            if rb.note:
                line.append(f" ({rb.note})".replace("\n", "\\n"), style="dim")
            if not rb.sql:
                line.append(" (nothing to undo)", style="dim")
            err.print(line)
    counts: dict[str, int] = {}
    for s in plan.steps:
        counts[s.safety] = counts.get(s.safety, 0) + 1
    summary = Text("Summary: ")
    for n, (k, v) in enumerate(sorted(counts.items(), key=lambda kv: kv[0])):
        if n:
            summary.append(", ")
        summary.append(f"{v} {k}", style=SAFETY_STYLE.get(k, ""))
    err.print(summary)
