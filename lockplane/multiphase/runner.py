"""Running multi-phase migrations: apply, verify, approve (or reject) and roll back phases.

The same functions serve the CLI (apply-phase, verify-phase, rollback-phase, phase-status,
approve) and the Prefect flow, and all of them go through ``lockplane.phases``: phases
cannot be skipped or repeated (exit 3; ``force_reason`` overrides and is recorded), each
phase's plan is refused on a database not in the state it was made for,
and a phase that needs a code deploy before the next one must be approved first.

Every entry point first checks the plan's integrity (lockplane.integrity): a plan whose
content no longer matches its ``plan_id``, or an unsigned one with LOCKPLANE_PLAN_KEY set,
is refused before anything connects, whether a command or a flow hands it over.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..dialects import connect
from ..dialects.base import Database
from ..errors import BadInput, SafetyRefusal
from ..execute import ApplyOptions, ApplyResult, Reporter, apply_plan, who
from ..integrity import check_multiphase
from .model import MultiPhasePlan, Phase
from .state import MigrationState, PhaseStore


@dataclass
class VerificationResult:
    description: str
    sql: str
    passed: bool
    error: str | None = None


def status(dsn: str) -> list[MigrationState]:
    with connect(dsn) as db:
        return PhaseStore(db).list()


def _checked(mp: MultiPhasePlan) -> None:
    check_multiphase(mp, f"multi-phase plan {mp.id}")


def migration_state(mp: MultiPhasePlan, dsn: str) -> MigrationState:
    """The plan's state in the target, registering it on first use."""
    _checked(mp)
    with connect(dsn, create=True) as db:
        return PhaseStore(db).start(mp)


def verify(mp: MultiPhasePlan, dsn: str, phase: int | None = None,
           actor: str | None = None) -> list[VerificationResult]:
    """Run a phase's verification queries (default: the last completed phase)."""
    _checked(mp)
    with connect(dsn) as db:
        store = PhaseStore(db)
        state = store.start(mp)
        number = phase or state.completed_phases
        if number < 1:
            raise BadInput("no phase has been applied yet: nothing to verify")
        if number > state.completed_phases:
            # Its queries name what its steps make, and nothing of the phase has been
            # checked against this database yet (apply-phase does that first).
            raise SafetyRefusal(f"phase {number} has not been applied yet "
                                f"({state.completed_phases}/{state.total_phases} done): "
                                "nothing of it to verify")
        results = _run_checks(db, mp.phase(number))
        _record_verification(store, mp, number, who(actor), results)
        return results


def _run_checks(db: Database, phase: Phase) -> list[VerificationResult]:
    _judge_checks(db, phase)
    return [_run_check(db, v.description, v.sql) for v in phase.verification]


def _judge_checks(db: Database, phase: Phase) -> None:
    """A phase's verification queries run on the target with the applying credentials,
    as its steps do, and are judged as steps are before anything runs: one SELECT each,
    calling nothing the server lets no ordinary user run and no function that does more
    than compute a value. (Each then runs in a read-only transaction.)"""
    queries = [v.sql for v in phase.verification]
    for v in phase.verification:
        if why := db.not_one_query(v.sql):
            raise SafetyRefusal(f"phase {phase.phase_number} verification "
                                f"'{v.description}' is not one query: {why}")
    if not queries:
        return
    calls = db.privileged_calls(queries)
    effects = [] if calls else db.function_effects(queries, [])
    if calls or effects:
        what = (f"calls or reads {', '.join(calls)}, which the server lets no ordinary "
                "user run or read" if calls else f"evaluates {effects[0]}")
        raise SafetyRefusal(f"phase {phase.phase_number}'s verification {what}: it would "
                            "run with this connection's privileges")


def _record_verification(store: PhaseStore, mp: MultiPhasePlan, number: int, actor: str,
                         results: list[VerificationResult], **details: object) -> None:
    store.record(mp.id, "verified", number, actor, passed=all(r.passed for r in results),
                 failed=[r.description for r in results if not r.passed] or None, **details)


def _run_check(db: Database, description: str, sql: str) -> VerificationResult:
    try:
        with db.read_only():
            rows = db.query(sql)
    except Exception as exc:  # noqa: BLE001 - a broken check is a failed check, reported
        return VerificationResult(description, sql, False, str(exc).splitlines()[0])
    return VerificationResult(description, sql, not rows)


def approve(mp: MultiPhasePlan, dsn: str, phase: int, approver: str,
            comment: str | None = None) -> MigrationState:
    """Record that the code deploy after ``phase`` is done and the next phase may run."""
    _checked(mp)
    with connect(dsn) as db:
        store = PhaseStore(db)
        state = store.start(mp)
        if phase > state.completed_phases:
            raise SafetyRefusal(f"phase {phase} has not been applied yet "
                                f"({state.completed_phases}/{state.total_phases} done)")
        store.record(mp.id, "approved", phase, approver, comment=comment)
        result = store.get(mp.id)
        assert result is not None
        return result


def reject(mp: MultiPhasePlan, dsn: str, phase: int, approver: str,
           comment: str | None = None) -> MigrationState:
    """Record that the code deploy after ``phase`` was rejected (the database is untouched:
    rolling back is a separate, explicit decision)."""
    _checked(mp)
    with connect(dsn) as db:
        store = PhaseStore(db)
        state = store.start(mp)
        if phase > state.completed_phases:
            raise SafetyRefusal(f"phase {phase} has not been applied yet "
                                f"({state.completed_phases}/{state.total_phases} done)")
        store.record(mp.id, "rejected", phase, approver, comment=comment)
        result = store.get(mp.id)
        assert result is not None
        return result


def apply_phase(mp: MultiPhasePlan, dsn: str, phase: int | None = None, *,
                options: ApplyOptions | None = None, force_reason: str | None = None,
                actor: str | None = None, report: Reporter | None = None) -> ApplyResult:
    """Apply one phase: the next one unless ``phase`` says otherwise (then ``force_reason``)."""
    _checked(mp)
    options = options or ApplyOptions()
    actor = who(actor or options.applied_by)
    state = migration_state(mp, dsn)
    if state.status == "completed":
        raise SafetyRefusal(f"multi-phase migration {mp.id} is already completed")
    expected = state.next_phase
    number = phase or expected
    if number is None:
        raise SafetyRefusal(f"all {mp.total_phases} phases are already applied")
    target = mp.phase(number)
    if number != expected:
        if not force_reason:
            done = state.completed_phases
            raise SafetyRefusal(f"phase {number} is out of order: {done}/{mp.total_phases} "
                                f"applied, next is phase {expected} (--force with a reason "
                                "overrides, and is recorded)")
    checked = False
    if number == expected and number > 1:
        checked = _check_gate(mp, dsn, mp.phase(number - 1), state, force_reason, actor)
    result = apply_plan(target.plan, dsn, options, report=report)
    with connect(dsn) as db:
        store = PhaseStore(db)
        done = number == mp.total_phases
        # The gate's passing re-check is part of this apply, not a second "verified"
        # event next to the one the flow (or verify-phase) recorded moments before.
        store.record(mp.id, "applied", number, actor, completed=number,
                     status="completed" if done else "active", forced=force_reason,
                     migration=result.migration_id,
                     verified_first=number - 1 if checked else None)
    return result


def _check_gate(mp: MultiPhasePlan, dsn: str, previous: Phase, state: MigrationState,
                force_reason: str | None, actor: str | None = None) -> bool:
    """Before phase N: phase N-1 verified, and approved if it needed a code deploy.
    Whether phase N-1's verification queries ran (and passed)."""
    if force_reason:
        return False
    with connect(dsn) as db:
        results = _run_checks(db, previous)
        failed = [r for r in results if not r.passed]
        if failed:  # recorded: the refusal's reason stays in the history
            _record_verification(PhaseStore(db), mp, previous.phase_number, who(actor),
                                 results, before_phase=previous.phase_number + 1)
    if failed:
        raise SafetyRefusal(f"verification of phase {previous.phase_number} failed: "
                            f"{failed[0].description}" + (f" ({failed[0].error})"
                                                          if failed[0].error else ""))
    if previous.requires_code_deploy and not state.approvals(previous.phase_number):
        raise SafetyRefusal(f"phase {previous.phase_number} ({previous.name}) needs a code "
                            "deploy before the next phase: approve it first "
                            "(lockplane approve, the Prefect UI, or apply-phase --approver)")
    return bool(results)


def rollback(mp: MultiPhasePlan, dsn: str, to_phase: int | None = None, *,
             options: ApplyOptions | None = None, actor: str | None = None,
             report: Reporter | None = None) -> list[ApplyResult]:
    """Undo applied phases, last first, down to ``to_phase`` (default: undo the last one)."""
    _checked(mp)
    options = options or ApplyOptions()
    actor = who(actor or options.applied_by)
    state = migration_state(mp, dsn)
    done = state.completed_phases
    target = done - 1 if to_phase is None else to_phase
    if done == 0:
        raise SafetyRefusal("no phase has been applied: nothing to roll back")
    if not 0 <= target < done:
        raise SafetyRefusal(f"cannot roll back to phase {target}: {done} phase(s) applied")
    results = []
    for number in range(done, target, -1):
        back = mp.phase(number).rollback.plan
        if back is None:
            raise BadInput(f"phase {number} has no rollback plan")
        results.append(apply_plan(back, dsn, options, report=report))
        with connect(dsn) as db:
            PhaseStore(db).record(mp.id, "rolled_back", number, actor,
                                  completed=number - 1,
                                  status="rolled_back" if number == 1 else "active")
    return results
