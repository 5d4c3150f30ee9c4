"""Drift memory: what a scheduled check last reported, and drift operators acknowledged.

Where it lives, and why: in the checked database itself, ``lockplane.drift_state``
(SQLite, MySQL: ``_lockplane_drift_state``), next to ``lockplane.migrations``, written
with the dialect's state-table machinery (:class:`lockplane.state.StateTable`). The database
travels with its environment and every operator who can check it can read it: the
scheduled flow (environments of lockplane.toml or DatabaseTarget blocks alike) and the
CLI (``lockplane drift ack``, ``lockplane drift check``) reach it without Prefect and
without a server; it survives flow runs, restarts of ``lockplane serve`` and redeploys.
A Prefect Variable would not be readable by the CLI without a server, and a file next to
lockplane.toml would not exist for a flow given blocks. Introspection never reports
Lockplane's state tables, so the memory itself is never drift.

Two kinds of rows (``kind``, ``name`` is the key):

- ``seen``: per checker (an environment or block name, ``name``), what the last scheduled
  check reported: ``status`` clean | drift | acknowledged, the drift's ``fingerprint``
  (:func:`lockplane.drift.fingerprint`) and its ``items`` in words. It is what lets a
  check tell new drift, changed drift (another fingerprint), resolved drift and the same
  drift as last time (:func:`observe`).
- ``ack``: an acknowledgement (``lockplane drift ack``) of one drift, ``name`` = its
  fingerprint: who, why, and ``until`` (none: until the drift changes). It silences that
  drift only: a different fingerprint is new drift. When a scheduled check sees the drift
  it acknowledged change or go away, the acknowledgement ends (its row is deleted), so
  the same drift coming back later is told again.

The decision (:func:`observe`, pure reads) and the write (:func:`remember`) are separate
so a flow records what it reported only once the notification went out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from ..dialects.base import Database
from ..errors import BadInput
from ..state import StateTable
from .check import EnvironmentReport, Target

SeenStatus = Literal["clean", "drift", "acknowledged"]
EventKind = Literal["new", "changed", "resolved", "ack_expired", "same", "acknowledged",
                    "clean", "not_checked"]
NOTIFY: frozenset[str] = frozenset({"new", "changed", "resolved", "ack_expired"})

_COLS = ("kind, name, status, fingerprint, items, environment, expires_at, reason, who, "
         "updated_at")


def _utc(value: Any) -> datetime | None:
    """A stored time (PostgreSQL: aware datetime; MySQL: naive UTC; SQLite: ISO text) as an
    aware UTC datetime."""
    if value is None:
        return None
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _when(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@dataclass
class Seen:
    """What the last scheduled check reported for one checker."""

    name: str
    status: SeenStatus
    fingerprint: str
    items: list[str]
    at: datetime


@dataclass
class Acknowledgement:
    """``lockplane drift ack``: this drift (``fingerprint``) is known; do not tell it again
    until ``until`` (None: until it changes)."""

    fingerprint: str
    environment: str
    by: str
    at: datetime
    until: datetime | None = None
    reason: str | None = None
    items: list[str] = field(default_factory=list)

    def active(self, now: datetime | None = None) -> bool:
        return self.until is None or (now or datetime.now(UTC)) < self.until

    def describe(self) -> str:
        """'acknowledged by ana@host until 2026-12-31 00:00 UTC: index rebuild pending'"""
        until = f"until {_when(self.until)}" if self.until else "until it changes"
        return (f"acknowledged by {self.by} on {_when(self.at)} {until}"
                + (f": {self.reason}" if self.reason else ""))

    def to_json(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "environment": self.environment,
                "by": self.by, "at": self.at.isoformat(),
                "until": None if self.until is None else self.until.isoformat(),
                "reason": self.reason}


class DriftState(StateTable):
    """``lockplane.drift_state`` / ``_lockplane_drift_state`` of one database."""

    name = "drift_state"

    def _create(self) -> None:
        try:
            super()._create()
        except self.db.dialect.error_types():
            # Another writer (the flow, `drift ack`) created it at the same moment:
            # CREATE ... IF NOT EXISTS is not atomic on PostgreSQL.
            if not self.exists():
                raise

    def _rows(self, where: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        if not self.exists():
            return []
        return self.db.query(f"SELECT {_COLS} FROM {self.table} WHERE {where}", params)

    @staticmethod
    def _items(value: Any) -> list[str]:
        return list(value) if isinstance(value, list) else json.loads(value or "[]")

    def seen(self, name: str) -> Seen | None:
        rows = self._rows(f"kind = 'seen' AND name = {self.p}", (name,))
        if not rows:
            return None
        r = rows[0]
        return Seen(r[1], r[2], r[3], self._items(r[4]), _utc(r[9]) or datetime.now(UTC))

    def _ack(self, r: tuple[Any, ...]) -> Acknowledgement:
        return Acknowledgement(fingerprint=r[1], environment=r[5] or "", by=r[8] or "unknown",
                               at=_utc(r[9]) or datetime.now(UTC), until=_utc(r[6]),
                               reason=r[7], items=self._items(r[4]))

    def acknowledgement(self, fingerprint: str) -> Acknowledgement | None:
        rows = self._rows(f"kind = 'ack' AND name = {self.p}", (fingerprint,))
        return self._ack(rows[0]) if rows else None

    def acknowledgements(self) -> list[Acknowledgement]:
        return [self._ack(r) for r in self._rows("kind = 'ack' ORDER BY updated_at", ())]

    def _upsert(self, kind: str, name: str, status: str, fingerprint: str, items: list[str],
                environment: str | None = None, until: datetime | None = None,
                reason: str | None = None, by: str | None = None) -> None:
        self.ensure()
        d = self.db.dialect
        stamp = d.timestamp_param(datetime.now(UTC))
        until_v = None if until is None else d.timestamp_param(until)
        self.db.execute(
            d.upsert_sql(self.table, _COLS.split(", "), ("kind", "name")),
            (kind, name, status, fingerprint, json.dumps(items, ensure_ascii=False),
             environment, until_v, reason, by, stamp))

    def record_seen(self, name: str, status: SeenStatus, fingerprint: str,
                    items: list[str]) -> None:
        self._upsert("seen", name, status, fingerprint, items)

    def add_acknowledgement(self, ack: Acknowledgement) -> None:
        self._upsert("ack", ack.fingerprint, "active", ack.fingerprint, ack.items,
                     environment=ack.environment, until=ack.until, reason=ack.reason,
                     by=ack.by)

    def end_acknowledgement(self, fingerprint: str) -> bool:
        if not self.exists():
            return False
        found = self.acknowledgement(fingerprint) is not None
        self.db.execute(f"DELETE FROM {self.table} WHERE kind = 'ack' AND name = {self.p}",
                        (fingerprint,))
        return found


def _connect(target: Target) -> Database:
    from ..dialects import get_dialect

    return get_dialect(target.dialect).connect(target.database_url)


def drift_words(report: EnvironmentReport) -> list[str]:
    """The drift of one environment in words: its items, then its history findings."""
    return [i.message for i in report.items] + [f.message for f in report.history_findings]


# ------------------------------------------------------------------------ the decision
@dataclass
class Event:
    """What one check of one environment means, given the memory.

    ``kind``: ``new`` (drift where the last check saw none, or the first check), ``changed``
    (another fingerprint), ``resolved`` (clean after drift), ``ack_expired`` (the drift an
    expired acknowledgement silenced is still there), ``same`` (the drift already
    reported), ``acknowledged`` (drift silenced by an active acknowledgement), ``clean``
    (clean as before), ``not_checked`` (unreachable, or its desired schema did not load:
    the memory is left as it was). ``notify``: whether to tell the channel.
    """

    environment: str
    kind: EventKind
    report: EnvironmentReport
    previous: Seen | None = None
    acknowledgement: Acknowledgement | None = None  # active, silencing this drift
    expired: Acknowledgement | None = None  # expired since, drift still there
    ended: list[str] = field(default_factory=list)  # fingerprints whose acks end now

    @property
    def notify(self) -> bool:
        return self.kind in NOTIFY

    @property
    def status(self) -> SeenStatus:
        if self.report.status == "clean":
            return "clean"
        return "acknowledged" if self.acknowledgement is not None else "drift"

    @property
    def words(self) -> list[str]:
        return drift_words(self.report)

    def new_and_gone(self) -> tuple[list[str], list[str]]:
        before = set(self.previous.items if self.previous else [])
        now = self.words
        return [w for w in now if w not in before], [w for w in (
            self.previous.items if self.previous else []) if w not in set(now)]

    def summary(self) -> str:
        """One line for logs and artifacts."""
        r = self.report
        last = (f" (reported {_when(self.previous.at)})" if self.previous
                and self.previous.status != "clean" else "")
        return {
            "new": "new drift: notified",
            "changed": "drift changed (another fingerprint): notified",
            "resolved": "drift resolved: notified",
            "ack_expired": "acknowledgement expired, drift still there: notified",
            "same": f"same drift as already reported{last}: not notified again",
            "acknowledged": (f"{self.acknowledgement.describe()}: not notified"
                             if self.acknowledgement else "acknowledged"),
            "clean": "no drift",
            "not_checked": f"not checked: {r.error}",
        }[self.kind]

    def message(self, ack_command: str | None = None, limit: int = 20) -> str:
        """The chat message (for events that notify). ``ack_command``: how to acknowledge
        this drift, shown with new or changed drift (default: ``lockplane drift ack
        --environment NAME --fingerprint FP``)."""
        r = self.report
        fp = r.fingerprint
        ack_command = ack_command or (f"lockplane drift ack --environment {r.name} "
                                      f"--fingerprint {fp} [--until DATE] [--reason TEXT]")
        hint = f"Known and accepted for now? {ack_command}"

        def listed(words: list[str]) -> list[str]:
            shown = [f"• {w}" for w in words[:limit]]
            if len(words) > limit:
                shown.append(f"• ... and {len(words) - limit} more")
            return shown

        if self.kind == "resolved":
            was = self.previous.items if self.previous else []
            return "\n".join([f"✅ Drift on {r.name} resolved: {r.database} matches "
                              f"{r.desired_schema} again (it had {len(was)} "
                              f"difference{'s' if len(was) != 1 else ''}):", *listed(was)])
        counts = _counts(r)
        if self.kind == "new":
            head = f"⚠️ Drift found on {r.name}: {counts} in {r.database} [fingerprint {fp[:12]}]"
            return "\n".join([head, *listed(self.words), hint])
        if self.kind == "changed":
            new, gone = self.new_and_gone()
            was = self.previous.fingerprint[:12] if self.previous else "?"
            lines = [f"⚠️ Drift on {r.name} changed: now {counts} in {r.database} "
                     f"[fingerprint {fp[:12]}, was {was}]"]
            if new:
                lines += ["New:", *listed(new)]
            if gone:
                lines += ["Gone:", *listed(gone)]
            if self.ended:
                lines.append("The acknowledgement of the earlier drift has ended.")
            lines += ["All of it now:", *listed(self.words)]
            return "\n".join([*lines, hint])
        assert self.kind == "ack_expired"
        why = (f"it was {self.expired.describe()}" if self.expired is not None
               else "its acknowledgement was removed")
        return "\n".join([f"⏰ Drift on {r.name} is no longer acknowledged ({why}); it is "
                          f"still there: {counts} in {r.database} [fingerprint {fp[:12]}]",
                          *listed(self.words), hint])


def _counts(r: EnvironmentReport) -> str:
    parts = []
    if r.items:
        n = len(r.items)
        parts.append(f"{n} difference{'s' if n != 1 else ''} from {r.desired_schema}")
    if r.history_findings:
        n = len(r.history_findings)
        parts.append(f"{n} migration history finding{'s' if n != 1 else ''}")
    return ", ".join(parts) or "drift"


def decide(report: EnvironmentReport, previous: Seen | None,
           ack: Acknowledgement | None, now: datetime | None = None) -> Event:
    """The event for ``report`` given what was last reported and the acknowledgement of
    its fingerprint (if any). Pure: no database."""
    now = now or datetime.now(UTC)
    name = report.name
    if report.status not in ("clean", "drift"):
        return Event(name, "not_checked", report, previous)
    before = previous.fingerprint if previous and previous.status != "clean" else None
    # The acknowledgement of the drift last reported ends when that drift changes or goes.
    ended = [before] if before and before != (report.fingerprint
                                              if report.status == "drift" else None) else []
    if report.status == "clean":
        return Event(name, "resolved" if before else "clean", report, previous, ended=ended)
    active = ack if ack is not None and ack.active(now) else None
    if before == report.fingerprint:
        if active is not None:
            return Event(name, "acknowledged", report, previous, active)
        if previous is not None and previous.status == "acknowledged":
            # Silenced last time; now the acknowledgement is over (expired or removed).
            return Event(name, "ack_expired", report, previous, expired=ack)
        return Event(name, "same", report, previous)
    if active is not None:  # acknowledged before any check reported it
        return Event(name, "acknowledged", report, previous, active, ended=ended)
    return Event(name, "changed" if before else "new", report, previous, ended=ended)


# --------------------------------------------------------------------------- databases
def observe(target: Target, report: EnvironmentReport, checker: str | None = None,
            now: datetime | None = None) -> Event:
    """Read ``target``'s memory and decide what ``report`` means (nothing is written).
    ``checker``: the name the memory is kept under (default: the environment's)."""
    if report.status not in ("clean", "drift"):
        return Event(report.name, "not_checked", report)
    with _connect(target) as db:
        state = DriftState(db)
        previous = state.seen(checker or report.name)
        ack = state.acknowledgement(report.fingerprint) if report.status == "drift" else None
    event = decide(report, previous, ack, now)
    if event.acknowledgement is not None:
        report.acknowledged = event.acknowledgement
    return event


def remember(target: Target, event: Event, checker: str | None = None) -> None:
    """Record what was reported for ``event`` (and end the acknowledgements it ends)."""
    if event.kind == "not_checked" or (event.kind == "clean" and (
            event.previous is None or event.previous.status == "clean")):
        return  # nothing new to remember: no write (and no table) in a clean database
    r = event.report
    with _connect(target) as db:
        state = DriftState(db)
        state.ensure()  # before the transaction: a creation race must not abort it
        with db.transaction():
            for fp in event.ended:
                state.end_acknowledgement(fp)
            if event.expired is not None and event.expired.until is not None:
                state.end_acknowledgement(event.expired.fingerprint)
            state.record_seen(checker or event.environment, event.status,
                              r.fingerprint if r.status == "drift" else "", event.words)


def read_acknowledgements(targets: Iterable[Target], reports: Iterable[EnvironmentReport],
                          now: datetime | None = None) -> None:
    """Mark each drifted report whose drift has an active acknowledgement in its database
    (``report.acknowledged``). Read-only; a database that cannot be read keeps its drift
    unacknowledged."""
    by_name = {t.name: t for t in targets}
    for r in reports:
        t = by_name.get(r.name)
        if t is None or r.status != "drift":
            continue
        try:
            with _connect(t) as db:
                ack = DriftState(db).acknowledgement(r.fingerprint)
        except Exception:  # noqa: BLE001 - the check itself already read this database
            continue
        if ack is not None and ack.active(now):
            r.acknowledged = ack


def acknowledge(target: Target, report: EnvironmentReport, by: str,
                until: datetime | None = None, reason: str | None = None) -> Acknowledgement:
    """Store an acknowledgement of ``report``'s current drift in its database."""
    if report.status != "drift":
        raise BadInput(f"environment {report.name!r} has no drift to acknowledge "
                       f"(status: {report.status}"
                       + (f": {report.error})" if report.error else ")"))
    ack = Acknowledgement(report.fingerprint, report.name, by, datetime.now(UTC), until,
                          reason, drift_words(report))
    with _connect(target) as db:
        DriftState(db).add_acknowledgement(ack)
    return ack


def unacknowledge(target: Target, report: EnvironmentReport) -> Acknowledgement | None:
    """End the acknowledgement of ``report``'s current drift (the scheduled check then
    tells it once more); the acknowledgement removed, or None if there was none."""
    with _connect(target) as db:
        state = DriftState(db)
        ack = state.acknowledgement(report.fingerprint)
        if ack is not None:
            state.end_acknowledgement(report.fingerprint)
    return ack


_RELATIVE = re.compile(r"^\s*(\d+)\s*([hdw])\s*$")


def parse_until(text: str, now: datetime | None = None) -> datetime:
    """``--until``: a date (``2026-12-31``: 00:00 UTC that day), a date and time (ISO;
    UTC unless it says otherwise), or a span from now (``12h``, ``7d``, ``2w``). Must be in
    the future."""
    now = now or datetime.now(UTC)
    m = _RELATIVE.match(text)
    try:
        if m:
            n, unit = int(m.group(1)), m.group(2)
            until = now + {"h": timedelta(hours=n), "d": timedelta(days=n),
                           "w": timedelta(weeks=n)}[unit]
        else:
            until = datetime.fromisoformat(text.strip())
            until = until.replace(tzinfo=UTC) if until.tzinfo is None \
                else until.astimezone(UTC)
    except (ValueError, OverflowError):
        # (OverflowError: '99999999999w', or a time whose zone moves it past year 9999:
        # 'internal error' before)
        raise BadInput(f"--until {text!r} is not a date (2026-12-31), a date and time "
                       "(2026-12-31T18:00+01:00) or a span (12h, 7d, 2w) before the year "
                       "10000") from None
    if until <= now:
        raise BadInput(f"--until {text!r} is in the past ({_when(until)})")
    return until
