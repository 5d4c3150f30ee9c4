"""Turn a pattern's phase specs into a multi-phase plan with exact hashes.

Every phase is run, in order, on a scratch database built from the starting schema: the
state each phase leaves is introspected, so the next phase's ``source_hash`` is a fact,
not a prediction, and a pattern that would fail on the real database fails here first.
The last phase is always "whatever still differs from the desired schema", computed by
the differ, so the end state is exactly the desired schema.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .. import __version__
from ..changes.add_column import AddColumn
from ..changes.alter_column import AlterColumn, compare_type
from ..changes.backfill_column import BackfillColumn
from ..changes.base import Change
from ..dialects import get_dialect
from ..dialects.base import Database, Dialect
from ..diff import diff
from ..errors import BadInput, ExecutionFailed, LockplaneError, SafetyRefusal
from ..execute import (
    ApplyOptions,
    check_privileged_calls,
    group_steps,
    materialize,
    run_group,
    session_settings,
)
from ..model import HASH_FORMAT, Schema, Table
from ..plan import Plan, Step, build_plan, lock_safe_changes, order_changes, step_for
from .model import MultiPhasePlan, Phase, PhaseRollback, Verification

# What a phase may contain: fixed changes, or changes computed from the state the earlier
# phases left ("the rest of the diff, restricted to ...").
ChangeSource = Callable[[Schema, Dialect], list[Change]]


@dataclass
class PhaseSpec:
    name: str
    description: str
    changes: list[Change] | ChangeSource
    requires_code_deploy: bool = False
    code_changes_required: list[str] = field(default_factory=list)
    verification: list[Verification] = field(default_factory=list)
    rollback_description: str = ""
    rollback_note: str | None = None
    rollback_warning: str | None = None
    # Columns the rollback re-adds and must refill: column -> SQL expression. The column
    # comes back nullable, is refilled in batches, then gets its NOT NULL/default back.
    rollback_fill: dict[str, str] = field(default_factory=dict)
    rollback_requires_code_deploy: bool = False
    # Steps the pattern makes safe by construction (e.g. dropping a column whose values
    # live on in its renamed twin): given a change, the reason, or None. Such steps are
    # classified multi_phase, which no safety level refuses inside a multi-phase plan.
    sanctioned: Callable[[Change], str | None] | None = None


def remaining(after: Schema, keep: Callable[[Change], bool] | None = None) -> ChangeSource:
    """Changes still needed to reach ``after`` (optionally only those ``keep`` accepts)."""

    def source(state: Schema, d: Dialect) -> list[Change]:
        changes = diff(state, after, d)
        return [c for c in changes if keep is None or keep(c)]

    return source


def _undo(forward: list[Change], fill: dict[str, str], state: Schema) -> list[Change]:
    """Inverses in reverse order; re-added columns named in ``fill`` are refilled.

    A refilled column comes back nullable; it is filled last, once everything else
    (sync trigger included) is back, so no write can slip between fill and trigger, and
    then gets its NOT NULL / default back.
    """
    out: list[Change] = []
    refill: list[Change] = []
    for change in reversed(forward):
        for inv in change.inverse():
            col = getattr(inv, "column", None)
            if isinstance(inv, AddColumn) and col is not None and col.name in fill:
                loose = col.model_copy(update={"nullable": True, "default": None})
                out.append(AddColumn(inv.table, loose))
                refill.append(BackfillColumn(inv.table, col.name, fill[col.name],
                                             compare_as=compare_type(state, col.type)))
                if loose != col:
                    refill.append(AlterColumn(inv.table, loose, col))
            else:
                out.append(inv)
                # A SQLite rebuild that brings a column back brings it back empty.
                b, a = getattr(inv, "before", None), getattr(inv, "after", None)
                if isinstance(b, Table) and isinstance(a, Table):
                    refill += [BackfillColumn(a, name, expr, compare_as=compare_type(
                                   state, getattr(a.column(name), "type", "")))
                               for name, expr in fill.items()
                               if a.column(name) is not None and b.column(name) is None]
    return out + refill


def _classify(step: Step, change: Change, spec: PhaseSpec) -> Step:
    reason = spec.sanctioned(change) if spec.sanctioned else None
    if reason and step.safety in ("dangerous", "lossy", "review"):
        step.messages = [f"Planned by this multi-phase migration: {reason}.", *step.messages]
        step.safety = "multi_phase"
    return step


def _run(db: Database, plan: Plan) -> None:
    opts = ApplyOptions(lock_timeout_ms=0, retries=0)
    # The scratch copy runs the phases with the credentials planning was given, on the
    # target's own server unless told otherwise, while the desired schema is untrusted:
    # what apply would refuse to run there (a schema function that does more than
    # compute a value, a built-in no ordinary user may call) is refused before it runs.
    try:
        check_privileged_calls(db, plan, opts)
    except SafetyRefusal as exc:
        raise SafetyRefusal(f"multi-phase planning: {exc.message.split(': applied,')[0]}: "
                            "run on the scratch copy, that code would run with this "
                            "connection's privileges") from None
    # (the copy's event triggers, which may be a schema file's, do not fire on its DDL)
    with session_settings(db, opts), db.event_triggers_paused(
            [sql for step in plan.steps for sql in step.sql]):
        for group in group_steps(plan.steps):
            run_group(db, group, opts)


def build_multiphase(before: Schema, after: Schema, specs: list[PhaseSpec], *, operation: str,
                     description: str, pattern: str, table: str, safety_notes: list[str],
                     server_dsn: str | None) -> MultiPhasePlan:
    d = get_dialect(before.dialect)
    phases: list[Phase] = []
    with d.scratch(server_dsn) as db:
        try:
            materialize(db, before)
        except LockplaneError as exc:
            raise BadInput(f"cannot rebuild the starting schema on a scratch database: "
                           f"{exc.message}") from None
        state = db.introspect()
        if state.hash() != before.hash():
            raise BadInput("the starting schema does not rebuild exactly on a scratch "
                           "database; plan from the live database instead")
        for number, spec in enumerate(specs, 1):
            changes = spec.changes(state, d) if callable(spec.changes) else spec.changes
            ordered = order_changes(list(changes), state, after)
            # Each phase in its lock-safe form (CONCURRENTLY, NOT VALID + VALIDATE, ...);
            # its rollback stays the plain inverse of the phase's changes.
            forward = lock_safe_changes(ordered, state, after, d) \
                if d.has_lock_safe_forms else ordered
            undo = _undo(ordered, spec.rollback_fill, state)
            # Forward and rollback SQL alike from the dialect's decisions, tried on the
            # server in the order they run (MySQL: each ALTER's ALGORITHM and LOCK).
            with d.decide_locks([*forward, *undo], state, server_dsn):
                steps: list[Step] = [_classify(step_for(c, d), c, spec) for c in forward]
                back_steps = [step_for(c, d) for c in undo]
            plan = Plan(source_hash=state.hash(), dialect=d.name, lockplane_version=__version__,
                        hash_format=HASH_FORMAT, steps=steps)
            try:
                _run(db, plan)
            except ExecutionFailed as exc:
                raise BadInput(f"phase {number} ({spec.name}) fails on a scratch copy: "
                               f"{exc.message}") from None
            new_state = db.introspect()
            plan.target_hash = new_state.hash()
            back = Plan(source_hash=plan.target_hash, target_hash=plan.source_hash,
                        dialect=d.name, lockplane_version=__version__, hash_format=HASH_FORMAT,
                        steps=back_steps)
            # Prove the way back too: undo on the scratch copy, check, and redo.
            try:
                _run(db, back)
                if db.introspect().hash() != plan.source_hash:
                    raise BadInput(f"phase {number} ({spec.name}): its rollback does not "
                                   "restore the previous state exactly")
                _run(db, plan)
            except ExecutionFailed as exc:
                raise BadInput(f"phase {number} ({spec.name}): its rollback fails on a "
                               f"scratch copy: {exc.message}") from None
            phases.append(Phase(
                phase_number=number, name=spec.name, description=spec.description,
                requires_code_deploy=spec.requires_code_deploy,
                depends_on_phase=number - 1 if number > 1 else None,
                code_changes_required=spec.code_changes_required, plan=plan,
                verification=spec.verification,
                rollback=PhaseRollback(
                    description=spec.rollback_description or f"Undo phase {number}",
                    sql=[s for st in back.steps for s in st.sql], note=spec.rollback_note,
                    warning=spec.rollback_warning,
                    requires_code_deploy=spec.rollback_requires_code_deploy,
                    plan=back),
            ))
            state = new_state
        if state.hash() != after.hash():
            # The last phase is "the rest of the diff", so this means the differ cannot
            # reach the target from here: say so rather than hand over a wrong plan.
            leftover = build_plan(state, after)
            raise BadInput("the phases do not reach the desired schema; still differing: "
                           + "; ".join(s.description for s in leftover.steps[:5]))
    return MultiPhasePlan(operation=operation, description=description, pattern=pattern,
                          dialect=d.name, table=table, total_phases=len(phases),
                          phases=phases, safety_notes=safety_notes,
                          source_hash=before.hash(), target_hash=after.hash())
