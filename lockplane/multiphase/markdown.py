"""Markdown for multi-phase migrations: what a phase did, what to deploy and verify
before the next one, and the way back. Prefect artifacts and chat messages read these.

Targets are shown through ``dsn.redact``; plan references are file paths or "PLAN.json".
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from ..ci_report import code, sql_block
from ..ci_report import text as _text
from ..dsn import redact
from ..markdown import plan_markdown
from .model import MultiPhasePlan, Phase
from .runner import VerificationResult


# A multi-phase plan's names, descriptions, code changes, notes and verification
# descriptions are prose its plan_id does not cover (a signed plan's can be edited), and
# the approver's name and comment come from a form: each is one line of inert text here,
# SQL sits in a fence no line inside can close, and what goes into a command is quoted for
# the shell. On f1e267a a code change listed as '...\n## 3. Approve\n```bash ...' wrote
# its own steps into the page an operator follows before approving.
def text(value: object) -> str:
    return _text(value, None)


def _sql(sql: str) -> str:
    return sql_block([sql], 100_000)


def _sh(*lines: str) -> str:
    return "```bash\n" + "\n".join(lines) + "\n```"


def _title(mp: MultiPhasePlan, phase: Phase) -> str:
    return (f"Phase {phase.phase_number}/{mp.total_phases} ({text(phase.name)}) of: "
            f"{text(mp.description)}")


def phase_applied_markdown(mp: MultiPhasePlan, phase: Phase, result: Mapping[str, Any],
                           target: str) -> str:
    """What applying one phase did, with its plan (SQL, locks, rollback)."""
    lines = [f"# {_title(mp, phase)}", "",
             f"- **Target:** `{redact(target)}`",
             f"- **Migration:** {code(mp.id)} ({text(mp.pattern)}, table {code(mp.table)})",
             f"- **Status:** {result.get('status')}, {result.get('steps_run')} step(s) run",
             f"- **Database hash after:** `{str(result.get('hash_after') or '')[:12]}` "
             f"(phase target `{(phase.plan.target_hash or '?')[:12]}`)",
             "", text(phase.description), ""]
    warnings = list(result.get("warnings") or [])
    if warnings:
        lines += ["## Warnings", ""] + [f"- {text(redact(w))}" for w in warnings] + [""]
    body = plan_markdown(phase.plan, target).split("\n", 1)[1]  # drop its own title
    lines += ["## What ran", body.strip() or "_no SQL: this phase is a code deploy only_"]
    return "\n".join(lines) + "\n"


def approve_command(run_id: str, api_url: str | None = None, reject: bool = False) -> str:
    """``lockplane approve`` as an operator can paste it: it names the Prefect API the run
    lives on (a shell without PREFECT_API_URL would ask a temporary local server that has
    no such run) and records who ran it."""
    env = f"PREFECT_API_URL={redact(api_url)} " if api_url else ""
    decision = "--reject --comment 'why'" if reject else "--comment 'deployed'"
    return f'{env}lockplane approve {run_id} --approver "$(whoami)" {decision}'


def approval_markdown(mp: MultiPhasePlan, phase: Phase, target: str, plan_ref: str,
                      run_id: str | None = None, run_url: str | None = None,
                      api_url: str | None = None) -> str:
    """What an operator must deploy and verify before approving the next phase."""
    nxt = mp.phase(phase.phase_number + 1)
    run = run_id or "RUN_ID"
    lines = [f"# Waiting for approval: {_title(mp, phase)}", "",
             f"Phase {phase.phase_number} is applied on `{redact(target)}`. Before phase "
             f"{nxt.phase_number} (**{text(nxt.name)}**: {text(nxt.description)}) can run:",
             "",
             "## 1. Deploy", ""]
    lines += [f"- {text(c)}" for c in phase.code_changes_required] or \
        ["- (no code change listed)"]
    lines += ["", "## 2. Verify", ""]
    if phase.verification:
        lines += ["Each query must return **no rows**; the flow runs them again before "
                  f"phase {nxt.phase_number} and stops if one returns rows.", ""]
        for v in phase.verification:
            lines += [f"- {text(v.description)}:", "", _sql(v.sql), ""]
    else:
        lines += ["- Watch the application's errors and logs after the deploy.", ""]
    lines += ["## 3. Approve (or reject)", "",
              "Resume this flow run in the Prefect UI with the form "
              "(approved, approver, comment)" + (f": {run_url}" if run_url else "") + ", or:",
              "", _sh(approve_command(run, api_url), approve_command(run, api_url, True)), "",
              "Rejecting stops the flow and leaves the database as it is; the way back is "
              "`lockplane rollback-phase` (see below)."]
    lines += ["", "## Rollback of this phase", "", text(phase.rollback.description) + "."]
    if phase.rollback.note:
        lines.append(f"Note: {text(phase.rollback.note)}.")
    if phase.rollback.sql:
        lines += ["", _sql(";\n".join(s.rstrip().rstrip(";") for s in phase.rollback.sql))]
    lines += ["", _sh(f"lockplane rollback-phase {shlex.quote(plan_ref)} --target ... --to-phase "
                      f"{phase.phase_number - 1}")]
    return "\n".join(lines) + "\n"


def verification_markdown(mp: MultiPhasePlan, phase: Phase,
                          results: Sequence[VerificationResult]) -> str:
    ok = all(r.passed for r in results)
    lines = [f"# Verification of {_title(mp, phase)}: {'passed' if ok else 'FAILED'}", "",
             "| Check | Result |", "|-------|--------|"]
    for r in results:
        mark = "✅ pass" if r.passed else "❌ FAIL" + (f" ({r.error})" if r.error else "")
        lines.append(f"| {text(r.description)} | {text(mark)} |")
    if not results:
        lines.append("| (this phase lists no verification query) | - |")
    if not ok:
        lines += ["", "The next phase was not applied. Fix the rows or the deploy the failed "
                      "queries point at, then re-run the flow: it continues from here."]
        for r in results:
            if not r.passed:
                lines += ["", f"- {text(r.description)}:", "", _sql(r.sql)]
    return "\n".join(lines) + "\n"


def rejected_markdown(mp: MultiPhasePlan, phase: Phase, approver: str, comment: str,
                      target: str, plan_ref: str, rolled_back: bool) -> str:
    """The rejection and the way back (rollback-phase), or what the automatic rollback did."""
    lines = [f"# Rejected: {_title(mp, phase)}", "",
             f"- **Rejected by:** {text(approver)}" + (f" ({text(comment)})" if comment else ""),
             f"- **Target:** `{redact(target)}`", ""]
    if rolled_back:
        lines += [f"The flow rolled back every applied phase (`rollback_on_reject`): "
                  f"{code(mp.table)} is back at the migration's starting state "
                  f"(hash `{mp.source_hash[:12]}`). Re-deploy the code that ran before phase "
                  "1 if it was changed."]
        return "\n".join(lines) + "\n"
    lines += [f"Nothing was rolled back: the database stays after phase "
              f"{phase.phase_number} of {mp.total_phases}, which the code running before "
              "the rejected deploy can use. Choose one:", "",
              "- **Try again:** fix the deploy, then re-run the flow; it asks for this "
              "approval again and continues from here.",
              f"- **Undo this phase only:** ({text(phase.rollback.description)})", "",
              _sh(f"lockplane rollback-phase {shlex.quote(plan_ref)} --target ... --to-phase "
                  f"{phase.phase_number - 1}"), "",
              "- **Undo the whole migration:**", "",
              _sh(f"lockplane rollback-phase {shlex.quote(plan_ref)} --target ... --to-phase 0"),
              "",
              "`lockplane phase-status --target ...` shows where the migration stands."]
    return "\n".join(lines) + "\n"
