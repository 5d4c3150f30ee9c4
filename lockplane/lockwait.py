"""Short lock waits, retried: how a step that needs a strong lock gets it without stalling
every query on its table.

A DDL statement waiting for its lock (behind a long report, say) is in the table's lock
queue, and every later statement on the table queues behind it, for as long as it waits.
So each attempt waits only briefly (the plan's ``SET lock_timeout``, 150 ms by default),
gives up, lets the queued statements through, and tries again after an exponentially
growing, jittered pause, until the step's lock-wait budget (``--lock-wait-budget``) runs
out. Then the step fails (rolled back) naming the sessions that blocked it, as seen from a
second session while it waited. ``--cancel-blockers-after S`` (off by default) cancels,
from that second session, the queries of the sessions that block a step which has been
failing for S seconds, while the step waits (never a Lockplane session).

Which errors are lock waits, and how to watch and cancel blockers, belong to the dialect
(``Dialect.lock_wait_failure``, ``Database.lock_watch``); the policy here is neutral.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Protocol

from .dsn import redact

# A step gives up waiting for its lock after this long in all (its attempts and pauses).
DEFAULT_LOCK_WAIT_BUDGET_S = 180.0
MAX_LOCK_WAIT_BUDGET_S = 86_400.0
# The pause before retry n is uniform in [0, min(cap, base * 2**(n-1))] (full jitter, so
# that two waiters do not retry in step), and never shorter than MIN_PAUSE_S: the
# statements that queued behind the attempt get through before the next one queues.
DEFAULT_BACKOFF_BASE_S = 0.1
DEFAULT_BACKOFF_CAP_S = 1.0
MIN_PAUSE_S = 0.02
# How often a waiting step says it still waits.
PROGRESS_EVERY_S = 10.0
QUERY_CHARS = 100


@dataclass(frozen=True)
class Blocker:
    """A session that blocked a step's lock request (pg_blocking_pids), as seen while the
    step waited."""

    pid: int
    application_name: str
    user: str
    state: str  # active | idle in transaction | ...
    transaction_s: float | None  # how long its transaction had been open
    query_s: float | None  # how long ago its current (or last) query started
    query: str  # its first QUERY_CHARS characters, whitespace folded
    backend_type: str = "client backend"
    lockplane: bool = False  # one of Lockplane's own sessions: never cancelled

    def describe(self) -> str:
        parts = [f"application '{self.application_name}'" if self.application_name
                 else "no application_name", f"user {self.user}", self.state or "?"]
        if self.transaction_s is not None:
            parts.append(f"transaction open {_duration(self.transaction_s)}")
        if self.query_s is not None:
            parts.append(f"query started {_duration(self.query_s)} ago")
        text = f": {self.query}" if self.query else ""
        return f"pid {self.pid} ({', '.join(parts)}){text}"

    @property
    def cancellable(self) -> bool:
        """A cancel ends only a running statement: in a transaction, the statement's error
        aborts it and its locks go. One idle in its transaction keeps them."""
        return (not self.lockplane and self.backend_type == "client backend"
                and self.state in ("active", "fastpath function call"))


def clean_query(text: str | None) -> str:
    folded = re.sub(r"\s+", " ", redact(text or "")).strip()
    return folded[:QUERY_CHARS] + ("…" if len(folded) > QUERY_CHARS else "")


def _duration(s: float) -> str:
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60)} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60)} min"


def describe_blockers(blockers: list[Blocker]) -> str:
    if not blockers:
        return "no blocking session seen"
    return "; ".join(b.describe() for b in blockers)


class LockWatch(Protocol):
    """A second session that watches the step's session while an attempt runs."""

    def start_attempt(self) -> None:
        """Watch from now on (forget what the last attempt saw)."""

    def end_attempt(self) -> None: ...

    def blockers(self) -> list[Blocker]:
        """Who blocked the step, as last seen while it waited in this attempt."""

    def cancel_from(self, deadline: float | None) -> None:
        """From ``deadline`` (time.monotonic()) on, cancel the cancellable blockers seen
        while the step waits; None: never."""

    def take_cancelled(self) -> tuple[list[Blocker], list[Blocker]]:
        """(cancelled, could not be cancelled) since the last call."""

    def close(self) -> None: ...


@dataclass
class Backoff:
    """Exponential backoff with full jitter, within a budget."""

    base_s: float = DEFAULT_BACKOFF_BASE_S
    cap_s: float = DEFAULT_BACKOFF_CAP_S
    rng: random.Random | None = None

    def pause(self, retry: int) -> float:
        """The pause before retry number ``retry`` (1-based)."""
        ceiling = min(self.cap_s, self.base_s * 2 ** min(retry - 1, 30))
        rng = self.rng or random
        return max(MIN_PAUSE_S, rng.uniform(0.0, ceiling))


def check_seconds(value: object, name: str) -> float:
    """``value`` if it is a usable number of seconds (0 to a day), else bad input."""
    from .errors import BadInput

    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not 0 <= value <= MAX_LOCK_WAIT_BUDGET_S:
        raise BadInput(f"{name} must be a number of seconds from 0 to "
                       f"{MAX_LOCK_WAIT_BUDGET_S:.0f} (24 h), not {value!r}")
    return float(value)
