"""Approving a waiting flow run from outside the UI: ``lockplane approve RUN``.

The run is resumed through the Prefect API with the same ``PhaseApproval`` input the UI's
resume form sends, so the flow cannot tell the two apart. A run paused without an input
form (``apply-migration``'s approval) is resumed as is, or cancelled on rejection.
"""

from __future__ import annotations

from uuid import UUID

import httpx
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.exceptions import FlowPauseTimeout, NotPausedError, ObjectNotFound
from prefect.flow_runs import resume_flow_run
from prefect.settings import PREFECT_API_URL
from prefect.states import Cancelled

from lockplane.errors import BadInput


def waiting_for_approval(timeout_s: float, what: str = "") -> str:
    """The log line of a run that waits for an operator, in the operator's words:
    "waiting for an operator's approval of phase 1 (up to 7 days)"."""
    return f"waiting for an operator's approval{what} (up to {human_duration(timeout_s)})"


def human_duration(seconds: float) -> str:
    """604800 -> "7 days", 5400 -> "1 hour 30 minutes", 90 -> "1 minute 30 seconds"."""
    left = max(int(seconds), 0)
    parts = []
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        n, left = divmod(left, size)
        if n:
            parts.append(f"{n} {unit}{'s' if n != 1 else ''}")
    return " ".join(parts[:2]) or "0 seconds"


def _api() -> str:
    return PREFECT_API_URL.value() or "the local ephemeral Prefect API (PREFECT_API_URL unset)"


def _read_run(run_id: UUID) -> FlowRun:
    try:
        with get_client(sync_client=True) as client:
            return client.read_flow_run(run_id)
    except ObjectNotFound:
        raise BadInput(f"no flow run {run_id} on the Prefect server at {_api()}") from None
    except (httpx.HTTPError, OSError) as exc:
        raise BadInput(f"cannot reach the Prefect server at {_api()}: "
                       f"{type(exc).__name__}") from None


def approve_run(run_id: str, approver: str, comment: str | None = None,
                approved: bool = True) -> None:
    """Resume the paused or suspended flow run ``run_id`` with the operator's decision.

    Bad input (exit 2) when the id is malformed, the run does not exist, the server is
    unreachable, or the run is not waiting for an approval.
    """
    try:
        uid = UUID(run_id)
    except ValueError:
        raise BadInput(f"{run_id!r} is neither a flow run id nor a multi-phase plan "
                       "file") from None
    if not approver.strip():
        raise BadInput("--approver must name who approves")
    run = _read_run(uid)
    state = run.state
    if state is None or not state.is_paused():
        where = f"{state.name}" if state else "no state"
        raise BadInput(f"flow run {run.name} ({uid}) is not waiting for approval "
                       f"(it is {where})")
    if state.state_details.run_input_keyset is None:
        # A plain pause (no input form): approving resumes it, rejecting cancels it.
        if not approved:
            with get_client(sync_client=True) as client:
                client.set_flow_run_state(uid, Cancelled(
                    message=f"rejected by {approver}" + (f": {comment}" if comment else "")),
                    force=True)
            return
        _resume(uid, None, run.name)
        return
    # PhaseApproval's choice (flows.multiphase_migration): "yes" or "no", as the form sends.
    _resume(uid, {"approved": "yes" if approved else "no", "approver": approver,
                  "comment": comment or ""}, run.name)


def _resume(uid: UUID, run_input: dict[str, object] | None, name: str) -> None:
    try:
        resume_flow_run(uid, run_input=run_input)
    except NotPausedError:
        raise BadInput(f"flow run {name} ({uid}) is no longer waiting for approval") from None
    except FlowPauseTimeout:
        raise BadInput(f"flow run {name} ({uid}) waited too long: its approval timed "
                       "out; re-run the flow to ask again") from None
    except RuntimeError as exc:
        raise BadInput(f"flow run {name} ({uid}) cannot be resumed: {exc}") from None
