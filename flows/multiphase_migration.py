"""Runbook: a breaking schema change, one phase at a time, with code deploys in between.

1. Read the migration's progress from the target database (``lockplane.phases``).
   Everything below is derived from it, never from this run's memory: a resumed,
   retried or re-started run continues where the database says the migration stands,
   and never repeats a phase.
2. If the last applied phase needs a code deploy: publish what to deploy and what to
   verify, notify, and wait for an operator's ``PhaseApproval`` (the Prefect UI's resume
   form, or ``lockplane approve RUN --approver NAME``). From a deployment the run
   suspends: a wait of days holds no process and no database connection. The decision
   is recorded in the database. A rejection stops here and shows the way back
   (``lockplane rollback-phase``); it rolls back by itself only if ``rollback_on_reject``.
3. Verify the last applied phase (queries that must return no rows); stop if one fails.
4. Apply the next phase (hash-checked, shadow-validated, in the engine) and publish what
   ran. Repeat from 2 until every phase is applied.
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.responses import SetStateStatus
from prefect.context import FlowRunContext
from prefect.exceptions import Abort
from prefect.flow_runs import pause_flow_run, suspend_flow_run
from prefect.input import RunInput
from prefect.input.actions import read_flow_run_input
from prefect.input.run_input import keyset_from_base_key
from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL
from prefect.states import Cancelled, State
from prefect.utilities.annotations import quote
from pydantic import Field

from blocks.database_target import DatabaseTarget
from flows.approvals import waiting_for_approval
from flows.targets import NoPasswordStr, ResolvedTarget, no_passwords, resolve_target
from lockplane.errors import SafetyRefusal
from lockplane.execute import ApplyOptions
from lockplane.integrity import check_environment, check_multiphase
from lockplane.multiphase.markdown import (
    approval_markdown,
    phase_applied_markdown,
    rejected_markdown,
    verification_markdown,
)
from lockplane.multiphase.model import MultiPhasePlan, Phase, read_multiphase_plan
from tasks.notify_tasks import notify_task
from tasks.phase_tasks import (
    apply_phase_task,
    phase_state_task,
    record_approval_task,
    record_rejection_task,
    rollback_phases_task,
    verify_phase_task,
)

APPROVAL_POLL_S = 0.5  # outside a deployment: how often a paused run asks if it was resumed
# (Prefect sleeps one interval before its first check: this is the floor of an approval;
# deployed runs suspend instead and do not poll)
ONE_WEEK_S = 7 * 24 * 3600


class PhaseApproval(RunInput):
    """The operator's decision once the code deploy a phase asks for is done.

    ``approved`` is a choice with no default, not a bool: the UI draws a bool as a toggle
    that starts off and submits ``false`` when left alone, so an operator who only typed
    a name would reject without having chosen. Here the form shows an empty choice and
    refuses to submit until one is made.
    """

    approved: Literal["yes", "no"] = Field(
        description="yes: the code deploy is done and verified, run the next phase; "
                    "no: reject, stop here and leave the database as it is")
    approver: str = Field(description="who decides (recorded in the database)")
    comment: str = ""

    @property
    def granted(self) -> bool:
        return self.approved == "yes"


@no_passwords
@flow(name="multiphase-migration", description=__doc__)
def multiphase_migration(
    plan: str,
    target: NoPasswordStr | DatabaseTarget,
    notify: str | None = None,
    approval_timeout_s: int = ONE_WEEK_S,
    safety: str = "moderate",
    rollback_on_reject: bool = False,
    cancel_blockers_after_s: float | None = None,
) -> dict[str, Any] | State:
    """Run the multi-phase ``plan`` on ``target``, waiting for approval between deploys.

    ``plan``: path of the multi-phase plan JSON (``lockplane plan --multi-phase``), or the
    JSON itself. ``target``: a DatabaseTarget block name (or instance), or a DSN for local
    use. ``notify``: a SlackNotifier block name. ``rollback_on_reject``: undo every applied
    phase when an approval is rejected (default: stop and leave it to the operator).
    ``cancel_blockers_after_s``: once a phase's step (or a rollback's) has waited this
    long for its lock, cancel the statements of the sessions blocking it
    (pg_cancel_backend, never Lockplane's own; default: never).
    """
    # A bad value is refused now, not a week later after the approval.
    ApplyOptions(cancel_blockers_after_s=cancel_blockers_after_s)
    logger = get_run_logger()
    db = resolve_target(target)
    level = db.effective_safety(safety)
    mp = read_multiphase_plan(plan)
    # Signed (LOCKPLANE_PLAN_KEY) for other environments than this block: refused before
    # anything connects, as apply-phase --target-environment does.
    check_multiphase(mp)
    check_environment(mp.signed_for, mp.signature, "multi-phase plan", db.environment)
    run = _Run(mp, db, plan, notify, cancel_blockers_after_s)
    logger.info("%s on %s: %d phases, migration %s, safety %s", mp.description, db.label,
                mp.total_phases, mp.id, level)
    try:
        state = phase_state_task(quote(mp), db.dsn)
        applied: list[int] = []
        while state.next_phase is not None:
            last = state.completed_phases
            if last:
                done = mp.phase(last)
                if done.requires_code_deploy and not state.approvals(last):
                    decision = run.wait_for_approval(done, approval_timeout_s)
                    if not decision.granted:
                        return run.rejected(done, decision, rollback_on_reject, level)
                    record_approval_task(quote(mp), db.dsn, last, decision.approver,
                                         decision.comment)
                run.verify(done)
            result = apply_phase_task(quote(mp), db.dsn, last + 1, safety=level,
                                      shadow_dsn=db.shadow_dsn,
                                      lock_timeout_ms=db.lock_timeout_ms, actor=run.actor,
                                      cancel_blockers_after_s=cancel_blockers_after_s)
            run.published_applied(mp.phase(last + 1), result)
            applied.append(last + 1)
            state = phase_state_task(quote(mp), db.dsn)
        final = mp.phase(mp.total_phases)
        if final.verification:
            run.verify(final)
    except Exception as exc:
        run.notify(f"❌ {mp.description} on {db.label} failed: {exc}")
        raise
    logger.info("all %d phases applied%s", mp.total_phases,
                f" (this run: {applied})" if applied else " already")
    if applied:
        run.notify(f"✅ {mp.description} on {db.label}: all {mp.total_phases} phases "
                   "applied.")
    return {"migration_id": mp.id, "status": state.status,
            "completed_phases": state.completed_phases, "total_phases": mp.total_phases,
            "applied_in_this_run": applied, "target_hash": mp.target_hash}


class _Run:
    """This flow run's side of the runbook: artifacts, notifications, the approval wait."""

    def __init__(self, mp: MultiPhasePlan, db: ResolvedTarget, plan: str,
                 notifier: str | None, cancel_blockers_after_s: float | None = None) -> None:
        self.mp, self.db, self.notifier = mp, db, notifier
        self.cancel_blockers_after_s = cancel_blockers_after_s
        self.plan_ref = "PLAN.json" if plan.lstrip().startswith("{") else plan
        ctx = FlowRunContext.get()
        flow_run = ctx.flow_run if ctx else None
        self.run_id = str(flow_run.id) if flow_run else None
        self.in_deployment = bool(flow_run and flow_run.deployment_id)
        self.actor = f"prefect:{flow_run.name}" if flow_run else "prefect"
        ui = PREFECT_UI_URL.value() or (PREFECT_API_URL.value() or "").removesuffix("/api")
        self.url = f"{ui.rstrip('/')}/runs/flow-run/{self.run_id}" if ui and self.run_id \
            else None

    def notify(self, text: str) -> None:
        if self.notifier:  # no task run at all when nobody listens
            notify_task(self.notifier, text + (f" {self.url}" if self.url else ""))

    def _key(self, kind: str) -> str:
        return f"mp-{self.mp.id}-{kind}"

    def published_applied(self, phase: Phase, result: dict[str, Any]) -> None:
        create_markdown_artifact(
            phase_applied_markdown(self.mp, phase, result, self.db.label),
            key=self._key(f"phase-{phase.phase_number}"),
            description=f"Phase {phase.phase_number} ({phase.name}) applied")
        self.notify(f"Phase {phase.phase_number}/{self.mp.total_phases} ({phase.name}) of "
                    f"{self.mp.description} applied on {self.db.label}.")

    def verify(self, phase: Phase) -> None:
        if not phase.verification:
            return
        results = verify_phase_task(quote(self.mp), self.db.dsn, phase.phase_number,
                                    actor=self.actor)
        create_markdown_artifact(verification_markdown(self.mp, phase, results),
                                 key=self._key(f"verify-{phase.phase_number}"),
                                 description=f"Verification of phase {phase.phase_number}")
        failed = [r for r in results if not r.passed]
        if failed:
            raise SafetyRefusal(f"verification of phase {phase.phase_number} failed: "
                                f"{failed[0].description}"
                                + (f" ({failed[0].error})" if failed[0].error else "")
                                + "; the next phase was not applied, re-run the flow once "
                                  "it is fixed")

    def wait_for_approval(self, phase: Phase, timeout_s: int) -> PhaseApproval:
        """Publish what to deploy and verify, then wait for the operator's decision."""
        n = phase.phase_number
        md = approval_markdown(self.mp, phase, self.db.label, self.plan_ref, self.run_id,
                               self.url, PREFECT_API_URL.value())
        key, fired = self._pause_key(f"approve-phase-{n}")
        prefix = "suspended" if self.in_deployment else "paused"
        if fired:
            # A run resumed from a suspension starts over and passes here again: the
            # decision is already stored; no second artifact, notification or wait.
            keyset = keyset_from_base_key(f"{prefix}-{key}")
            given = read_flow_run_input(keyset["response"], flow_run_id=UUID(str(self.run_id)))
            if given:
                return PhaseApproval(**given)
        else:
            create_markdown_artifact(md, key=self._key(f"approve-phase-{n}"),
                                     description=f"Deploy and verify, then approve phase {n}")
            self.notify(f"⏸ Phase {n}/{self.mp.total_phases} ({phase.name}) of "
                        f"{self.mp.description} is applied on {self.db.label}; deploy the "
                        "code changes and approve the next phase:")
            nxt = self.mp.phase(n + 1)
            get_run_logger().info(
                "phase %d (%s) is applied: deploy its code changes, then approve with the "
                "run's Resume form or 'lockplane approve %s --approver NAME' (see the "
                "artifact) and phase %d (%s) runs; %s", n, phase.name, self.run_id,
                nxt.phase_number, nxt.name, waiting_for_approval(timeout_s))
        # No initial value for `approved`: the operator chooses, the form suggests nothing.
        form = PhaseApproval.with_initial_data(description=md)
        if self.in_deployment:
            # The process exits; on resume the run starts again from the top and, the
            # phases being read from the database, arrives straight back here.
            return suspend_flow_run(wait_for_input=form, timeout=timeout_s, key=key)
        return pause_flow_run(wait_for_input=form, timeout=timeout_s,
                              poll_interval=APPROVAL_POLL_S, key=key)

    def _pause_key(self, base: str) -> tuple[str, bool]:
        """The pause key for this wait, and whether the wait already happened in this run.

        A key the server has seen fire in this run is the one to wait on again (it answers
        at once with the stored input). A key whose input form exists but that has not
        fired belongs to an earlier attempt of a retried run: take the next one.
        """
        assert self.run_id is not None
        run_id = UUID(self.run_id)
        with get_client(sync_client=True) as client:
            fired = client.read_flow_run(run_id).empirical_policy.pause_keys or set()
        prefix = "suspended" if self.in_deployment else "paused"
        for attempt in range(1, 100):
            key = base if attempt == 1 else f"{base}-{attempt}"
            if key in fired:
                return key, True
            schema_key = keyset_from_base_key(f"{prefix}-{key}")["schema"]
            if read_flow_run_input(schema_key, flow_run_id=run_id) is None:
                return key, False
        raise RuntimeError(f"too many attempts at {base} in one flow run")

    def rejected(self, phase: Phase, decision: PhaseApproval, rollback: bool,
                 level: str) -> State:
        """Record the rejection; roll back only if asked; end the run Cancelled."""
        n = phase.phase_number
        record_rejection_task(quote(self.mp), self.db.dsn, n, decision.approver,
                              decision.comment)
        if rollback:
            rollback_phases_task(quote(self.mp), self.db.dsn, 0,
                                 safety=self.db.effective_safety("permissive"),
                                 lock_timeout_ms=self.db.lock_timeout_ms, actor=self.actor,
                                 cancel_blockers_after_s=self.cancel_blockers_after_s)
        create_markdown_artifact(
            rejected_markdown(self.mp, phase, decision.approver, decision.comment,
                              self.db.label, self.plan_ref, rolled_back=rollback),
            key=self._key("rejected"), description=f"Phase {n} rejected: the way back")
        why = f" ({decision.comment})" if decision.comment else ""
        if rollback:
            message = (f"phase {n} rejected by {decision.approver}{why}; every applied phase "
                       "was rolled back (rollback_on_reject)")
        else:
            message = (f"phase {n} rejected by {decision.approver}{why}; the database stays "
                       f"after phase {n}/{self.mp.total_phases}: re-run the flow to ask "
                       f"again, or undo with 'lockplane rollback-phase {self.plan_ref} "
                       f"--target ... --to-phase {n - 1}'")
        self.notify(f"🛑 {self.mp.description} on {self.db.label}: {message}.")
        get_run_logger().warning(message)
        if self.in_deployment:
            self._end_deployed_run_cancelled(message)
        return Cancelled(message=message)

    def _end_deployed_run_cancelled(self, message: str) -> None:
        """End a deployed run Cancelled, as an operator's decision and not as an error.

        A deployed run that returns a Cancelled state is ended Cancelled, but Prefect's
        engine then reads its result in the runner's process, which raises CancelledRun
        and logs it as an ERROR with a traceback ("Engine execution exited with
        unexpected exception") in the run's logs. Instead the run is set Cancelled here
        and its process told to stop as after any orchestration decision (Abort carrying
        the new state: the engine records it and exits cleanly).
        """
        assert self.run_id is not None
        with get_client(sync_client=True) as client:
            result = client.set_flow_run_state(UUID(self.run_id), Cancelled(message=message))
        if result.status != SetStateStatus.ACCEPT or result.state is None:
            return  # the flow returns its Cancelled state instead
        stop = Abort(message)
        stop.state = result.state  # type: ignore[attr-defined]
        raise stop

