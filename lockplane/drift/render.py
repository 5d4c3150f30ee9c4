"""A drift report as text, markdown (PR comments, Prefect artifacts) or JSON."""

from __future__ import annotations

import json

from .check import Comparison, DriftReport, EnvironmentReport


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _headline(e: EnvironmentReport) -> str:
    if e.status in ("unreachable", "error"):
        what = "unreachable" if e.status == "unreachable" else "not checked"
        return f"{e.name}: {what}: {e.error}"
    if e.status == "clean":
        return f"{e.name}: no drift ({e.database} matches {e.desired_schema})"
    parts = []
    if e.items:
        parts.append(f"{_count(len(e.items), 'difference')} from {e.desired_schema}")
    if e.history_findings:
        parts.append(_count(len(e.history_findings), "migration history finding"))
    status = "drift, acknowledged" if e.acknowledged else "drift"
    return f"{e.name}: {status} ({', '.join(parts)}) in {e.database}"


def _summary(report: DriftReport) -> str:
    counts: dict[str, int] = {}
    for e in report.environments:
        status = "acknowledged" if e.acknowledged else e.status
        counts[status] = counts.get(status, 0) + 1
    order = ("drift", "acknowledged", "clean", "unreachable", "error")
    words = {"drift": "drifted", "acknowledged": "drifted (acknowledged)", "clean": "clean",
             "unreachable": "unreachable", "error": "not checked"}
    listed = ", ".join(f"{counts[s]} {words[s]}" for s in order if counts.get(s))
    return (f"{_count(len(report.environments), 'environment')} checked in "
            f"{report.seconds:.2f} s: {listed}")


def _comparison_line(c: Comparison) -> str:
    if c.same:
        return f"{c.a} and {c.b}: same schema"
    return f"{c.a} and {c.b}: {_count(len(c.items), 'difference')}"


def to_text(report: DriftReport) -> str:
    lines: list[str] = []
    for e in report.environments:
        lines.append(_headline(e))
        if e.acknowledged:
            lines.append(f"  {e.acknowledged.describe()}")
        lines += [f"  - {i.message}" for i in e.items]
        lines += [f"  - {f.message}" for f in e.history_findings]
        if e.ignored:
            lines.append(f"  ({_count(len(e.ignored), 'difference')} ignored)")
        if e.history is not None and not e.history.available and e.history.note:
            lines.append(f"  note: {e.history.note}")
    differing = [c for c in report.comparisons if not c.same]
    if report.comparisons:
        lines.append("between environments:")
        for c in report.comparisons:
            lines.append(f"  {_comparison_line(c)}")
            lines += [f"    - {i.message}" for i in c.items]
    lines.append(_summary(report) + (f"; {_count(len(differing), 'pair')} of environments "
                                     "differ" if differing else ""))
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    """Plain text safe inside markdown (no tables, links or HTML from object names)."""
    out = text
    for ch in "\\`*_[]<>|#":
        out = out.replace(ch, "\\" + ch)
    return out


def to_markdown(report: DriftReport) -> str:
    icon = {"clean": "✅", "drift": "⚠️", "unreachable": "❌", "error": "❌"}
    lines = ["## Lockplane drift check", "",
             "| Environment | Status | Differences | Migration history | Fingerprint |",
             "|---|---|---|---|---|"]
    for e in report.environments:
        status = f"{icon[e.status]} {e.status}" if not e.acknowledged else "🔕 acknowledged"
        lines.append(f"| {_md(e.name)} | {status} | {len(e.items)} | "
                     f"{len(e.history_findings)} | `{e.fingerprint[:12]}` |")
    lines.append("")
    for e in report.environments:
        if e.status == "clean":
            continue
        lines.append(f"### {_md(e.name)}")
        lines.append("")
        if e.error:
            lines.append(_md(e.error))
        if e.acknowledged:
            lines += [f"_{_md(e.acknowledged.describe())}_", ""]
        lines += [f"- **{i.kind}** {_md(i.message)}" for i in e.items]
        lines += [f"- **{f.kind.replace('_', ' ')}** {_md(f.message)}"
                  for f in e.history_findings]
        if e.ignored:
            lines.append(f"- _{_count(len(e.ignored), 'difference')} ignored_")
        lines.append("")
    differing = [c for c in report.comparisons if not c.same]
    if differing:
        lines.append("### Between environments")
        lines.append("")
        for c in differing:
            lines.append(f"- {_md(_comparison_line(c))}")
            lines += [f"  - {_md(i.message)}" for i in c.items]
        lines.append("")
    lines.append(f"_{_md(_summary(report))}_")
    return "\n".join(lines) + "\n"


def to_json(report: DriftReport) -> str:
    return json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n"


FORMATS = {"text": to_text, "markdown": to_markdown, "json": to_json}


def render(report: DriftReport, fmt: str) -> str:
    return FORMATS[fmt](report)
