"""A plan as one SQL script, the way the executor runs it: for review, for other tools
(Squawk, psql), and for teams that apply migrations with their own runner.

Consecutive transactional steps share one ``BEGIN`` ... ``COMMIT``, as in ``apply``;
non-transactional steps (CONCURRENTLY, VALIDATE, batched backfills) stand alone.
"""

from __future__ import annotations

from .execute import group_steps
from .integrity import plan_id
from .markdown import backfill_statement, cleanup_label, lock_summary
from .plan import Plan
from .report import sql_comment as _comment


def plan_sql(plan: Plan) -> str:
    lines = [_comment(f"Lockplane plan {plan.source_hash[:12]} -> "
                      f"{(plan.target_hash or '?')[:12]} ({plan.dialect or '?'}), "
                      f"{len(plan.steps)} step(s)"),
             _comment(f"plan_id {plan_id(plan)}")]
    for group in group_steps(plan.steps):
        lines.append("")
        in_tx = group[0][1].transactional
        for i, step in group:
            lines.append(_comment(f"{i + 1}. {step.description} [{step.safety}; lock: "
                                  f"{lock_summary(step)}]"))
            for f in step.findings:
                lines.append(_comment(f"   {f.safety} {f.rule}: {f.message}"))
        if in_tx:
            lines.append("BEGIN;")
        for _, step in group:
            batched = backfill_statement(step, plan.dialect)
            if batched:
                lines.append(_comment("lockplane apply runs this UPDATE in small committed "
                                      "batches (resumable); this is its one-statement form."))
                lines.append(_comment(f"Each batch runs: {batched};"))
            if step.condition is not None:
                lines.append(_comment(f"lockplane apply runs the step only where this "
                                      f"counts 0 (else skips it): "
                                      f"{step.condition.query.rstrip().rstrip(';')};"))
            if step.cleanup:
                lines.append(_comment(f"clean-up, {cleanup_label(step)}:"))
            for stmt in step.cleanup:
                lines.append(_comment(f"  {stmt.rstrip().rstrip(';')};"))
            lines += [stmt.rstrip().rstrip(";") + ";" for stmt in step.sql]
        if in_tx:
            lines.append("COMMIT;")
    return "\n".join(lines) + "\n"
