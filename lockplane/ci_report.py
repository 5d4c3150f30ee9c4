"""``lockplane ci-report``: one pull-request comment from a plan, lint results and a drift
report.

Inputs are the files CI made with ``lockplane plan -o``, ``lockplane lint --format json``
and ``lockplane drift check --format json``. They are untrusted: a pull request can put
anything in a table name, a column default or a migration file, and those end up in
descriptions, messages and SQL. So every value read from them is rendered inert:

- in prose and table cells (:func:`text`): HTML-significant characters as entities, every
  other ASCII punctuation backslash-escaped (no emphasis, link, image, code span, table
  cell or strikethrough can start), and a zero-width space after ``@`` and ``#`` and in
  ``://`` and ``www.`` (GitHub links mentions, issue references and URLs in rendered text);
- in code spans and fenced blocks (:func:`code`, :func:`sql_block`): a fence longer than
  any backtick run inside, so the value cannot close it;
- everywhere: newlines and other control characters, and the bidirectional-text
  controls that could make text read differently from what it is, shown as escapes;
  long values cut.

The comment starts with :data:`MARKER` and a one-line verdict. The same inputs give the
same bytes (nothing in it depends on time or order of discovery), and it stays within
GitHub's comment size by showing fewer items and leaving SQL out when it has to.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr
from pydantic import ValidationError as _ValidationError

from . import __version__
from .errors import BadInput
from .plan import Plan, Step

MARKER = "<!-- lockplane-ci-report -->"
# GitHub refuses comments over 65,536 characters; room for what a workflow appends.
MAX_CHARS = 60_000
SAFETY_ORDER = ("dangerous", "lossy", "multi_phase", "review", "safe")
ICON = {"safe": "✅", "review": "👀", "multi_phase": "🔀", "lossy": "⚠️", "dangerous": "⛔"}


# ------------------------------------------------------------------------ escaping
# Shown as escapes: C0/C1 controls, zero-width and joiner characters, line/paragraph
# separators, bidirectional embeddings, overrides and isolates, the byte-order mark.
_INVISIBLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
_ZWSP = "&#8203;"
_PUNCT = set(string.punctuation)
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}


def _escape_char(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def visible(value: object, limit: int | None = 300, *, keep_newlines: bool = False) -> str:
    """``value`` as one line of plain characters: controls and invisible characters shown
    as ``\\xNN``/``\\uNNNN`` escapes (newlines too, unless ``keep_newlines``), cut at
    ``limit`` characters."""
    s = str(value)
    if keep_newlines:
        s = s.replace("\r\n", "\n")
        s = "\n".join(_INVISIBLE.sub(_escape_char, line) for line in s.split("\n"))
    else:
        s = _INVISIBLE.sub(_escape_char, s)
    if limit is not None and len(s) > limit:
        s = s[: limit - 1] + "…"
    return s


def text(value: object, limit: int | None = 300) -> str:
    """``value`` as inert Markdown text, safe in a paragraph, a list item or a table cell."""
    s = visible(value, limit)
    out: list[str] = []
    lead, trail = len(s) - len(s.lstrip(" ")), len(s.rstrip(" "))
    for i, ch in enumerate(s):
        if ch == " " and (i < lead or i >= trail):
            out.append("&#32;")  # (leading spaces would indent, trailing ones vanish)
        elif ch in _ENTITIES:
            out.append(_ENTITIES[ch])
        elif ch in "@#":
            # GitHub turns @name, @org/team and #123 in rendered text into mentions and
            # references: a zero-width space after the sign breaks the pattern.
            out.append(ch + _ZWSP)
        elif ch in _PUNCT:
            out.append("\\" + ch)
            if ch == ":" and s.startswith("//", i + 1):
                out.append(_ZWSP)  # no URL autolink, by any renderer
        elif ch in "wW" and s[i:i + 4].lower() == "www.":
            out.append(ch + _ZWSP)
        else:
            out.append(ch)
    return "".join(out)


def _longest_run(s: str, ch: str) -> int:
    runs = re.findall(re.escape(ch) + "+", s)
    return max((len(r) for r in runs), default=0)


def code(value: object, limit: int | None = 300) -> str:
    """``value`` as an inline code span (not for table cells: there use :func:`text`).
    Nothing in a code span is Markdown, HTML, a mention or a link; the fence is longer
    than any backtick run inside, so the value cannot end the span."""
    s = visible(value, limit)
    if not s:
        return "_(empty)_"
    fence = "`" * (_longest_run(s, "`") + 1)
    # (one space each side is stripped when both are there, unless it is all spaces)
    pad = " " if (s[0] in "` " or s[-1] in "` ") and s.strip(" ") else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def sql_block(statements: Iterable[str], limit: int = 4000) -> str:
    """Statements in a fenced block whose fence no line inside can close."""
    body = "\n".join(visible(s.rstrip().rstrip(";"), limit, keep_newlines=True) + ";"
                     for s in statements)
    return _fenced(body)


def _fenced(body: str) -> str:
    fence = "`" * max(3, _longest_run(body, "`") + 1)
    return f"{fence}sql\n{body}\n{fence}"


def details(summary: str, body: str) -> list[str]:
    """A collapsed block. ``summary`` must be Lockplane's own words (HTML context: GitHub
    links mentions there too), never a value from the inputs."""
    return ["<details>", f"<summary>{summary}</summary>", "", body, "", "</details>"]


def _count(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


# ------------------------------------------------------------------------ inputs
class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class _Loose(BaseModel):
    """Drift report parts: keys added within lockplane-drift/1 are ignored."""

    model_config = ConfigDict(strict=True, extra="ignore")


SafetyName = Literal["safe", "review", "multi_phase", "lossy", "dangerous"]


class LintFinding(_Strict):
    file: StrictStr
    line: Annotated[StrictInt, Field(ge=0)]
    column: Annotated[StrictInt, Field(ge=0)]
    rule: StrictStr
    safety: SafetyName
    message: StrictStr
    safer: StrictStr | None = None


class DriftItem(_Loose):
    object: StrictStr
    type: StrictStr
    kind: StrictStr
    detail: StrictStr = ""
    message: StrictStr
    table: StrictStr | None = None


class HistoryFinding(_Loose):
    kind: StrictStr
    message: StrictStr


class History(_Loose):
    available: StrictBool = False
    note: StrictStr | None = None
    findings: list[HistoryFinding] = Field(default_factory=list)


class DriftEnvironment(_Loose):
    name: StrictStr
    status: Literal["clean", "drift", "unreachable", "error"]
    desired_schema: StrictStr | None = None
    error: StrictStr | None = None
    items: list[DriftItem] = Field(default_factory=list)
    ignored: list[DriftItem] = Field(default_factory=list)
    history: History | None = None
    fingerprint: StrictStr | None = None


class Comparison(_Loose):
    environments: Annotated[list[StrictStr], Field(min_length=2, max_length=2)]
    same: StrictBool
    items: list[DriftItem] = Field(default_factory=list)


class DriftReport(_Loose):
    format: Literal["lockplane-drift/1"]
    status: StrictStr
    environments: list[DriftEnvironment]
    comparisons: list[Comparison] = Field(default_factory=list)


def _where(exc: _ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(x) for x in err["loc"])
    return f"at {loc or 'top level'}: {err['msg']}"


def load_plan_file(path: str) -> Plan:
    from .inputs import load_json

    data: Any = load_json(path, "plan file")
    if isinstance(data, dict) and data.get("multi_phase"):
        raise BadInput(f"{path}: a multi-phase plan; ci-report takes a plan from "
                       "'lockplane plan' (without --multi-phase)")
    if not isinstance(data, dict):
        raise BadInput(f"{path}: not a plan (expected a JSON object from 'lockplane plan', "
                       f"not {_json_type(data)})")
    try:
        return Plan.model_validate(data)
    except _ValidationError as exc:
        raise BadInput(f"{path}: invalid plan {_where(exc)}") from None


def load_lint_file(path: str) -> list[LintFinding]:
    from .inputs import load_json

    data: Any = load_json(path, "lint results file")
    if not isinstance(data, list):
        raise BadInput(f"{path}: not lint results (expected the JSON array of 'lockplane "
                       f"lint --format json', not {_json_type(data)})")
    out = []
    for i, item in enumerate(data):
        try:
            out.append(LintFinding.model_validate(item))
        except _ValidationError as exc:
            raise BadInput(f"{path}: invalid lint finding [{i}] {_where(exc)}") from None
    return out


def load_drift_file(path: str) -> DriftReport:
    from .inputs import load_json

    data: Any = load_json(path, "drift report file")
    if not isinstance(data, dict) or "format" not in data:
        raise BadInput(f"{path}: not a drift report (expected the JSON of 'lockplane drift "
                       "check --format json', with \"format\": \"lockplane-drift/1\")")
    try:
        return DriftReport.model_validate(data)
    except _ValidationError as exc:
        raise BadInput(f"{path}: invalid drift report {_where(exc)}") from None


def _json_type(value: object) -> str:
    names = {list: "an array", dict: "an object", str: "a string", bool: "a boolean",
             int: "a number", float: "a number", type(None): "null"}
    return names.get(type(value), "a value")


# ------------------------------------------------------------------------ the report
@dataclass(frozen=True)
class _Limits:
    steps: int  # rows of the steps table
    items: int  # entries per list (lint findings, drift items per environment, details)
    sql: bool  # each step's SQL, collapsed


_TIERS = (_Limits(200, 50, True), _Limits(60, 15, False), _Limits(20, 5, False))


@dataclass
class Verdict:
    line: str
    failing: list[str]  # what makes the job fail (empty: it passes)


def _lock_cell(step: Step) -> str:
    from .lockstats import LOCK_MODES

    lk = step.lock
    if lk is None:
        return "-"
    mode = lk.mode if lk.mode in LOCK_MODES or lk.mode in ("NONE", "DATABASE") \
        else visible(lk.mode, 40)
    blocks = ("blocks reads and writes" if lk.blocks_reads
              else "blocks writes" if lk.blocks_writes else "blocks neither")
    work = " · rewrites table" if lk.rewrites_table else " · scans table" \
        if lk.scans_table else ""
    if mode == "NONE":
        return "none"
    return text(f"{mode}: {blocks}", None) + work


def _safety_cell(value: str) -> str:
    return f"{ICON[value]} {value}" if value in ICON else text(value, 40)


def _rollback_cell(step: Step) -> str:
    rb = step.rollback
    if rb is None:
        return "none"
    if not rb.sql:
        return "nothing to undo"
    if rb.safety in ("lossy", "dangerous"):
        return f"{ICON[rb.safety]} loses data"
    return _safety_cell(rb.safety)


def _stake_words(stake: dict[str, Any] | None) -> str | None:
    """What an undo destroys (Change.rollback_stake), in words."""
    if not stake:
        return None
    what = stake.get("what")
    table = ".".join(str(p) for p in (stake.get("schema"), stake.get("table")) if p)
    if what == "column":
        return f"drops column {table}.{stake.get('column')} and every value written to it"
    if what == "columns":
        cols = ", ".join(str(c) for c in stake.get("columns") or [])
        return f"drops columns {cols} of {table} and every value written to them"
    if what == "table":
        return f"drops table {table} and every row written to it"
    if what == "narrowing":
        return (f"narrows {table}.{stake.get('column')} back: values that do not fit "
                "fail the undo or lose precision")
    return None


def _needs_attention(step: Step) -> bool:
    rb = step.rollback
    return step.safety != "safe" or bool(step.findings) or (
        rb is not None and bool(rb.sql) and rb.safety in ("lossy", "dangerous"))


def _plan_section(plan: Plan, limits: _Limits, level: str, refused: dict[int, str],
                  id_note: str | None) -> list[str]:
    from .integrity import plan_id

    if not plan.steps:
        return ["### Changes", "", "No schema changes: the database already matches the "
                "desired schema."]
    counts = {s: sum(1 for st in plan.steps if st.safety == s) for s in SAFETY_ORDER}
    summary = ", ".join(f"{counts[s]} {s}" for s in SAFETY_ORDER if counts[s])
    other = len(plan.steps) - sum(counts.values())
    if other:
        summary += f", {other} of an unknown class"
    pid = plan_id(plan)
    lines = ["### Changes", "",
             f"{_count(len(plan.steps), 'step')} ({summary}) · safety level {level} · "
             f"plan id `{pid[:16]}`", ""]
    if id_note:
        lines += [f"⚠️ {id_note}", ""]
    lines += ["| # | Step | Safety | Lock | Rollback |", "|---:|---|---|---|---|"]
    for i, step in enumerate(plan.steps[: limits.steps], 1):
        mark = " ⛔" if i in refused else ""
        lines.append(f"| {i}{mark} | {text(step.description, 200)} | "
                     f"{_safety_cell(step.safety)} | {_lock_cell(step)} | "
                     f"{_rollback_cell(step)} |")
    if len(plan.steps) > limits.steps:
        lines.append(f"| … | {len(plan.steps) - limits.steps} more steps not shown | | | |")
    attention = [(i, s) for i, s in enumerate(plan.steps, 1) if _needs_attention(s)]
    # Worst first, then in plan order: what a reviewer must look at leads.
    rank = {s: n for n, s in enumerate(SAFETY_ORDER)}
    attention.sort(key=lambda it: (0 if it[0] in refused else 1,
                                   rank.get(it[1].safety, -1), it[0]))
    shown = attention[: limits.items]
    for i, step in shown:
        lines += ["", f"#### {i}. {_safety_cell(step.safety)} · {text(step.description, 200)}",
                  ""]
        if i in refused:
            lines.append(f"- ⛔ **Refused at safety level {level}:** {refused[i]}")
        for f in step.findings:
            entry = f"- {code(f.rule, 60)} ({_safety_cell(f.safety)}): {text(f.message, 500)}"
            if f.safer:
                entry += f" **Safer:** {text(f.safer, 300)}"
            lines.append(entry)
        if not step.findings:
            lines += [f"- {text(m, 500)}" for m in step.messages[:3]]
        rb = step.rollback
        if rb is not None and rb.sql:
            said = "; ".join(text(w, 400) for w in (_stake_words(rb.at_stake), rb.note) if w)
            label = "Rollback loses data" if rb.safety in ("lossy", "dangerous") \
                else "Rollback"
            lines.append(f"- **{label}** ({_safety_cell(rb.safety)})"
                         + (f": {said}" if said else ""))
    if len(attention) > len(shown):
        lines += ["", f"_…and {len(attention) - len(shown)} more steps that need a look "
                  "(see the plan file)._"]
    if limits.sql and plan.steps:
        body = []
        for i, step in enumerate(plan.steps[: limits.steps], 1):
            body.append(f"-- {i}. {visible(step.description, 200)}")
            body += [visible(s.rstrip().rstrip(";"), 4000, keep_newlines=True) + ";"
                     for s in step.sql]
            # Everything else apply runs for the step, as print_plan shows it: what the
            # reviewer approves (and CI then signs) is everything that runs.
            body += _also_runs(step, plan.dialect)
        lines += [""] + details(f"All SQL ({_count(len(plan.steps), 'step')})",
                                _fenced("\n".join(body)))
    return lines


def _also_runs(step: Step, dialect: str | None) -> list[str]:
    """A step's condition, batched form and clean-up, as SQL comments (one line each)."""
    from .markdown import backfill_statement, cleanup_label

    out: list[str] = []
    if step.condition is not None:
        out.append("-- runs only where this counts 0 (else skipped): "
                   + visible(step.condition.query, 1000))
    batched = backfill_statement(step, dialect)
    if batched:
        out.append("-- apply runs, in committed batches instead of the above: "
                   + visible(batched, 2000))
    if step.cleanup:
        out.append(f"-- clean-up, {cleanup_label(step)}:")
        out += [f"--   {visible(c.rstrip().rstrip(';'), 1000)};" for c in step.cleanup]
    return out


def _lint_section(findings: list[LintFinding], limits: _Limits) -> list[str]:
    files = sorted({f.file for f in findings})
    if not findings:
        return ["### Lint", "", "No lint findings in the changed migrations."]
    rank = {s: n for n, s in enumerate(SAFETY_ORDER)}
    ordered = sorted(findings, key=lambda f: (rank[f.safety], f.file, f.line, f.column,
                                              f.rule))
    lines = ["### Lint", "",
             f"{_count(len(findings), 'finding')} in {_count(len(files), 'file')}:", ""]
    for f in ordered[: limits.items]:
        entry = (f"- {_safety_cell(f.safety)} {code(f'{f.file}:{f.line}', 200)} "
                 f"{code(f.rule, 60)}: {text(f.message, 500)}")
        if f.safer:
            entry += f" **Safer:** {text(f.safer, 300)}"
        lines.append(entry)
    if len(ordered) > limits.items:
        lines.append(f"- _…and {len(ordered) - limits.items} more_")
    return lines


def _drift_section(report: DriftReport, limits: _Limits) -> list[str]:
    drifted = [e for e in report.environments if e.status == "drift"]
    broken = [e for e in report.environments if e.status in ("unreachable", "error")]
    clean = [e for e in report.environments if e.status == "clean"]
    lines = ["### Drift", ""]
    if drifted:
        lines += ["⚠️ **This migration will be applied to a drifted database:** it differs "
                  "from the schema it should have. The plan was made from the live "
                  "database, so a step above that touches these objects changes something "
                  "the desired schema does not know about.", ""]
    for e in drifted:
        found: list[DriftItem | HistoryFinding] = [
            *e.items, *(e.history.findings if e.history else [])]
        where = f" from {text(e.desired_schema, 120)}" if e.desired_schema else ""
        lines.append(f"- **{text(e.name, 80)}**: {_count(len(found), 'difference')}{where}"
                     + (f" ({_count(len(e.ignored), 'accepted difference')} ignored)"
                        if e.ignored else ""))
        for item in found[: limits.items]:
            lines.append(f"  - {text(item.message, 400)}")
        if len(found) > limits.items:
            lines.append(f"  - _…and {len(found) - limits.items} more_")
    for e in broken:
        what = "unreachable" if e.status == "unreachable" else "not checked"
        lines.append(f"- ❌ **{text(e.name, 80)}** {what}"
                     + (f": {text(e.error, 300)}" if e.error else ""))
    if clean:
        names = ", ".join(text(e.name, 80) for e in clean)
        lines.append(f"- ✅ no drift: {names}")
    differing = [c for c in report.comparisons if not c.same]
    if differing:
        lines.append("- between environments: " + "; ".join(
            f"{text(c.environments[0], 80)} and {text(c.environments[1], 80)} differ in "
            f"{_count(len(c.items), 'object')}" for c in differing[: limits.items]))
    if not report.environments:
        lines.append("No environment was checked.")
    return lines


def verdict(plan: Plan | None, refused: dict[int, str], level: str,
            lint: list[LintFinding] | None, lint_level: str,
            drift: DriftReport | None) -> Verdict:
    from .changes.base import Safety

    parts: list[str] = []
    failing: list[str] = []
    warned = False  # (its parts carry their own icons)
    if plan is not None:
        if refused:
            dangerous = sum(1 for i in refused if plan.steps[i - 1].safety == "dangerous")
            if level == "moderate" and dangerous == len(refused):
                what = (f"{_count(dangerous, 'dangerous step')} "
                        f"{'needs' if dangerous == 1 else 'need'} acknowledgement")
            else:
                what = f"{_count(len(refused), 'step')} refused at safety level {level}"
            failing.append(what)
            parts.append(f"**{what}**")
        elif not plan.steps:
            parts.append("no schema changes")
        else:
            worst = max((s.safety for s in plan.steps),
                        key=lambda s: Safety(s).rank if s in ICON else 99)
            parts.append(f"{_count(len(plan.steps), 'step')}, the riskiest "
                         f"{_safety_cell(worst)}")
    if lint is not None:
        threshold = None if lint_level == "none" else Safety(lint_level)
        bad = [f for f in lint if threshold is not None
               and Safety(f.safety).rank >= threshold.rank]
        if bad:
            what = f"{_count(len(bad), 'lint finding')} at {lint_level} or worse"
            failing.append(what)
            parts.append(f"**{what}**" + (f" ({len(lint)} in all)" if len(lint) > len(bad)
                                          else ""))
        elif lint:
            parts.append(_count(len(lint), "lint finding"))
        else:
            parts.append("lint clean")
    if drift is not None:
        drifted = [e for e in drift.environments if e.status == "drift"]
        broken = [e for e in drift.environments if e.status in ("unreachable", "error")]
        if drifted:
            warned = True
            parts.append("⚠️ drift in " + ", ".join(text(e.name, 40) for e in drifted[:5])
                         + ("…" if len(drifted) > 5 else ""))
        if broken:
            warned = True
            parts.append("❌ drift not checked in " + ", ".join(
                text(e.name, 40) for e in broken[:5]) + ("…" if len(broken) > 5 else ""))
        if not drifted and not broken:
            parts.append("no drift")
    line = " · ".join(parts)
    if failing:
        line = "⛔ " + line
    elif not warned:
        line = "✅ " + line
    return Verdict(line, failing)


def _refusals(plan: Plan, level: str, acknowledged: list[str]) -> dict[int, str]:
    """Step number -> why the safety level refuses it (Markdown, values escaped)."""
    from .execute import parse_acknowledgements, refused_steps

    out = {}
    for r in refused_steps(plan, level, parse_acknowledgements(acknowledged)):
        step = r.step
        if level == "moderate":
            rules = sorted({f.rule for f in step.findings if f.safety == "dangerous"}
                           or {f.rule for f in step.findings})
            ack = ",".join(f"{rule}@{step.table}" if step.table else rule for rule in rules)
            by_number = code(f"--acknowledge {r.number}", 40)
            out[r.number] = (
                f"it is dangerous; acknowledge it with {code('--acknowledge ' + ack, 400)} "
                f"(or {by_number}, with this plan file)" if ack
                else f"it is dangerous; acknowledge it with {by_number}")
        else:
            out[r.number] = text(r.why, 400)
    return out


def build_report(plan: Plan | None = None, lint: list[LintFinding] | None = None,
                 drift: DriftReport | None = None, *, level: str = "moderate",
                 acknowledged: list[str] | None = None, lint_level: str = "dangerous",
                 ) -> tuple[str, Verdict]:
    """The comment's Markdown and its verdict."""
    from .integrity import plan_id

    if plan is None and lint is None and drift is None:
        raise BadInput("ci-report: give at least one of --plan, --lint, --drift")
    refused = _refusals(plan, level, acknowledged or []) if plan is not None else {}
    v = verdict(plan, refused, level, lint, lint_level, drift)
    id_note = None
    if plan is not None and plan.plan_id is not None and plan.plan_id != plan_id(plan):
        id_note = ("The plan file's stored plan_id does not match its content: it was "
                   "edited after it was written, and apply will refuse it.")
        v.failing.insert(0, "plan file edited after it was written")
        v.line = "⛔ **plan file edited after it was written** · " + v.line.removeprefix(
            "⛔ ").removeprefix("✅ ")
    for limits in _TIERS:
        lines = [MARKER, f"### Lockplane: {v.line}", ""]
        if plan is not None:
            lines += _plan_section(plan, limits, level, refused, id_note) + [""]
        if lint is not None:
            lines += _lint_section(lint, limits) + [""]
        if drift is not None:
            lines += _drift_section(drift, limits) + [""]
        if not limits.sql and plan is not None and plan.steps:
            lines += ["_SQL left out to keep this comment within GitHub's size limit: see "
                      "the plan file._", ""]
        lines.append(f"<sub>lockplane {__version__} ci-report</sub>")
        body = "\n".join(lines) + "\n"
        if len(body) <= MAX_CHARS:
            return body, v
    cut = body[:MAX_CHARS].rsplit("\n", 1)[0]
    return cut + "\n\n_(cut: too long for a comment)_\n", v


def run(plan_path: str | None, lint_path: str | None, drift_path: str | None,
        output: str | None, *, level: str = "moderate",
        acknowledged: list[str] | None = None, lint_level: str = "dangerous") -> Verdict:
    """Read the files, write the comment (to ``output`` or stdout), return the verdict."""
    from .config import SAFETY_LEVELS
    from .report import write_out

    if level not in SAFETY_LEVELS:
        raise BadInput(f"--safety must be one of {', '.join(SAFETY_LEVELS)}, not {level!r}")
    if lint_level not in (*SAFETY_ORDER, "none"):
        raise BadInput(f"--lint-level must be one of {', '.join(SAFETY_ORDER)} or none, "
                       f"not {lint_level!r}")
    plan = load_plan_file(plan_path) if plan_path else None
    lint = load_lint_file(lint_path) if lint_path else None
    drift = load_drift_file(drift_path) if drift_path else None
    body, v = build_report(plan, lint, drift, level=level, acknowledged=acknowledged,
                           lint_level=lint_level)
    write_out(body.rstrip("\n"), output)
    return v
