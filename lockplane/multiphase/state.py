"""Progress of multi-phase migrations, in the target database (``lockplane.phases``).

One row per multi-phase migration: how many phases are done, its status, and an event
log (applied, verified, approved, rolled back, forced) saying who did what and when.
The table (the dialect's DDL) allows one active migration per table. The CLI, the Prefect flow
and the UI's approvals all read and write these same rows, so a team can mix them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..errors import SafetyRefusal
from ..state import StateTable
from .model import MultiPhasePlan

_COLS = ("migration_id, table_key, operation, description, total_phases, completed_phases, "
         "status, events, started_at, updated_at")


@dataclass
class MigrationState:
    migration_id: str
    table_key: str
    operation: str
    description: str
    total_phases: int
    completed_phases: int
    status: str  # active | completed | rolled_back
    events: list[dict[str, Any]] = field(default_factory=list)
    started_at: str = ""
    updated_at: str = ""

    @property
    def next_phase(self) -> int | None:
        return self.completed_phases + 1 if self.completed_phases < self.total_phases else None

    def approvals(self, phase: int) -> list[dict[str, Any]]:
        """Approvals of ``phase`` given since it was last applied (a rollback and re-apply
        needs a new approval)."""
        last_applied = max((i for i, e in enumerate(self.events)
                            if e.get("action") == "applied" and e.get("phase") == phase),
                           default=-1)
        return [e for e in self.events[last_applied + 1:]
                if e.get("action") == "approved" and e.get("phase") == phase]

    def rejections(self, phase: int) -> list[dict[str, Any]]:
        """Rejections of ``phase``'s code deploy since it was last applied."""
        last_applied = max((i for i, e in enumerate(self.events)
                            if e.get("action") == "applied" and e.get("phase") == phase),
                           default=-1)
        return [e for e in self.events[last_applied + 1:]
                if e.get("action") == "rejected" and e.get("phase") == phase]

    def count(self, action: str, phase: int) -> int:
        """How many ``action`` events ``phase`` has had (applied, approved, rejected ...)."""
        return sum(1 for e in self.events
                   if e.get("action") == action and e.get("phase") == phase)

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "next_phase": self.next_phase}


class PhaseStore(StateTable):
    name = "phases"

    def _row(self, row: tuple[Any, ...]) -> MigrationState:
        events = row[7] if isinstance(row[7], list) else json.loads(row[7] or "[]")
        return MigrationState(*row[:7], events=events, started_at=str(row[8]),
                              updated_at=str(row[9]))

    def get(self, migration_id: str) -> MigrationState | None:
        if not self.exists():
            return None
        rows = self.db.query(f"SELECT {_COLS} FROM {self.table} WHERE migration_id = {self.p}",
                             (migration_id,))
        return self._row(rows[0]) if rows else None

    def active_for_table(self, table_key: str) -> MigrationState | None:
        if not self.exists():
            return None
        rows = self.db.query(f"SELECT {_COLS} FROM {self.table} WHERE table_key = {self.p} "
                             "AND status = 'active'", (table_key,))
        return self._row(rows[0]) if rows else None

    def list(self) -> list[MigrationState]:
        if not self.exists():
            return []
        rows = self.db.query(f"SELECT {_COLS} FROM {self.table} ORDER BY started_at DESC")
        return [self._row(r) for r in rows]

    def start(self, mp: MultiPhasePlan) -> MigrationState:
        """The migration's state, registering it on first use (one active per table)."""
        self.ensure()
        existing = self.get(mp.id)
        if existing is not None:
            return existing
        other = self.active_for_table(mp.table)
        if other is not None:
            raise SafetyRefusal(f"{mp.table} already has an active multi-phase migration "
                                f"({other.migration_id}: {other.description}, phase "
                                f"{other.completed_phases}/{other.total_phases}); finish or "
                                "roll it back first")
        p = self.p
        self.db.execute(
            f"INSERT INTO {self.table} (migration_id, table_key, operation, description, "
            f"total_phases, plan) VALUES ({p}, {p}, {p}, {p}, {p}, {p})",
            (mp.id, mp.table, mp.operation, mp.description, mp.total_phases, mp.to_json()))
        state = self.get(mp.id)
        assert state is not None
        return state

    def record(self, migration_id: str, action: str, phase: int, who: str,
               completed: int | None = None, status: str | None = None,
               **details: Any) -> None:
        state = self.get(migration_id)
        if state is None:
            raise SafetyRefusal(f"no multi-phase migration {migration_id} in this database")
        event = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "action": action,
                 "phase": phase, "who": who, **{k: v for k, v in details.items() if v}}
        events = [*state.events, event]
        p, now = self.p, self.now
        self.db.execute(
            f"UPDATE {self.table} SET events = {p}, completed_phases = {p}, status = {p}, "
            f"updated_at = {now} WHERE migration_id = {p}",
            (json.dumps(events), state.completed_phases if completed is None else completed,
             status or state.status, migration_id))
