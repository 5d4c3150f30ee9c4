"""Lockplane's state in the target database itself.

Where the tables live and their DDL are the dialect's (PostgreSQL: schema ``lockplane``;
SQLite: tables prefixed ``_lockplane_``; see ``Dialect.state_table``). State travels with
the database, is visible to every operator, and where DDL is transactional changes in the
same transaction as the DDL. Introspection never reports these objects.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

from .dialects.base import Database
from .errors import SafetyRefusal
from .plan import Plan

# Advisory lock key shared by every Lockplane process on a database.
LOCK_KEY = zlib.crc32(b"lockplane.apply")

@dataclass
class MigrationRecord:
    id: int
    plan_id: str
    started_at: str
    finished_at: str | None
    source_hash: str
    target_hash: str | None
    hash_after: str | None
    intermediate_hash: str | None
    steps_total: int
    steps_done: int
    result: str
    error: str | None
    applied_by: str | None

    def to_json(self) -> dict[str, Any]:
        return {k: (str(v) if k.endswith("_at") and v is not None else v)
                for k, v in self.__dict__.items()}


_COLUMNS = ("id, plan_id, started_at, finished_at, source_hash, target_hash, hash_after, "
            "intermediate_hash, steps_total, steps_done, result, error, applied_by")


class StateTable:
    """One of Lockplane's state tables in the target, where the dialect keeps it, with
    the dialect's placeholder and clock."""

    name: ClassVar[str]

    def __init__(self, db: Database) -> None:
        self.db = db
        d = db.dialect
        self.table = d.state_table(self.name)
        self.p = d.param
        self.now = d.now_sql

    def exists(self) -> bool:
        return self.db.state_table_exists(self.table)

    def ensure(self) -> None:
        """Create the table unless it exists. No DDL at all when it does: even CREATE ...
        IF NOT EXISTS fires the database's event triggers (DDL guards, audit logs)."""
        if not self.exists():
            self._create()

    def _create(self) -> None:
        for statement in self.db.dialect.state_table_ddl(self.name):
            self.db.execute(statement)


class History(StateTable):
    name = "migrations"

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self._ready = False

    def ensure(self) -> None:
        if not self._ready:
            super().ensure()
            self._ready = True

    def _create(self) -> None:
        # Another process may create it at the same moment; the lock serializes that.
        self.db.execute(self.db.dialect.history_table_sql())

    @contextmanager
    def exclusive_lock(self) -> Iterator[None]:
        """One Lockplane apply per database at a time (an advisory lock, where the
        dialect has them; SQLite serializes writers itself)."""
        if not self.db.dialect.has_advisory_locks:
            yield
            return
        if not self.db.try_advisory_lock(LOCK_KEY):
            raise SafetyRefusal(f"another Lockplane operation holds the lock on "
                                f"{self.db.dsn_display}; wait for it to finish")
        try:
            yield
        finally:
            self.db.advisory_unlock(LOCK_KEY)

    def start(self, plan_id: str, plan: Plan, applied_by: str) -> int:
        self.ensure()
        p = self.p
        return self.db.insert_returning_id(
            f"INSERT INTO {self.table} (plan_id, source_hash, target_hash, intermediate_hash, "
            f"steps_total, plan, applied_by) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p})",
            (plan_id, plan.source_hash, plan.target_hash, plan.source_hash, len(plan.steps),
             plan.to_json(), applied_by))

    def progress(self, migration_id: int, steps_done: int, intermediate_hash: str | None) -> None:
        """``steps_done`` steps are done, leaving the state of ``intermediate_hash`` (None:
        not recorded; apply records none after the last step, whose state the end-state
        check reads)."""
        p = self.p
        self.db.execute(f"UPDATE {self.table} SET steps_done = {p}, intermediate_hash = {p} "
                        f"WHERE id = {p}", (steps_done, intermediate_hash, migration_id))

    def finish(self, migration_id: int, result: str, hash_after: str | None,
               error: str | None) -> None:
        p = self.p
        self.db.execute(f"UPDATE {self.table} SET finished_at = {self.now}, result = {p}, "
                        f"hash_after = {p}, error = {p} WHERE id = {p}",
                        (result, hash_after, error, migration_id))

    def unfinished(self, plan_id: str) -> MigrationRecord | None:
        """The run of this plan to resume: one that crashed (``running``, or marked
        ``interrupted`` by the run after it), or failed after committing some steps (a
        lock-safe plan is not one transaction). Only the latest run of the plan counts:
        an interrupted attempt that a later one carried on is not unfinished."""
        if not self.exists():
            return None
        p = self.p
        rows = self.db.query(f"SELECT {_COLUMNS} FROM {self.table} WHERE plan_id = {p} "
                             "ORDER BY id DESC LIMIT 1", (plan_id,))
        if not rows:
            return None
        rec = MigrationRecord(*rows[0])
        if rec.result in ("running", "interrupted") or (rec.result == "failed"
                                                        and rec.steps_done > 0):
            return rec
        return None

    def running(self) -> list[MigrationRecord]:
        """Records still marked ``running`` (under the apply lock: their process died)."""
        if not self.exists():
            return []
        rows = self.db.query(f"SELECT {_COLUMNS} FROM {self.table} WHERE result = 'running' "
                             "ORDER BY id")
        return [MigrationRecord(*r) for r in rows]

    def interrupt(self, migration_id: int, note: str) -> None:
        """Mark a run whose process died: ``interrupted``, noticed now, and why."""
        p = self.p
        self.db.execute(f"UPDATE {self.table} SET finished_at = {self.now}, "
                        f"result = 'interrupted', error = {p} WHERE id = {p} "
                        "AND result = 'running'", (note, migration_id))

    def add_note(self, migration_id: int, note: str) -> None:
        p, d = self.p, self.db.dialect
        earlier = d.concat(["error", d.literal("; ")])
        noted = d.concat([f"coalesce({earlier}, '')", p])
        self.db.execute(f"UPDATE {self.table} SET error = {noted} WHERE id = {p}",
                        (note, migration_id))

    def list(self, limit: int = 50) -> list[MigrationRecord]:
        if not self.exists():
            return []
        rows = self.db.query(f"SELECT {_COLUMNS} FROM {self.table} "
                             f"ORDER BY id DESC LIMIT {int(limit)}")
        return [MigrationRecord(*r) for r in rows]

    def plan_of(self, migration_id: int) -> Plan:
        p = self.p
        raw = self.db.query(f"SELECT plan FROM {self.table} WHERE id = {p}", (migration_id,))[0][0]
        return Plan.model_validate(raw if isinstance(raw, dict) else json.loads(raw))
