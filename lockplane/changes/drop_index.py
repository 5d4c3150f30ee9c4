"""DROP INDEX."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..model import Index, qualified
from .base import (
    ACCESS_EXCLUSIVE,
    CHANGE_ANNOTATORS,
    SHARE_UPDATE_EXCLUSIVE,
    Assessment,
    Change,
    Condition,
    Finding,
    Lock,
    Order,
    RewriteContext,
    register,
)
from .pg_common import dollar_quoted

if TYPE_CHECKING:
    from ..dialects.base import Dialect
    from ..dialects.mysql.alter_facts import MySQLAlter
    from ..model import ObjectKey, Schema


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class DropIndex(Change):
    kind = "drop_index"
    order = Order.DROP_INDEX
    schema: str
    relation: str
    index: Index
    # Waits for queries using the index instead of blocking them (the lock-safe form).
    concurrently: bool = False
    # After the plan's new indexes are built: a foreign key that stays may be using this
    # one (Dialect.foreign_keys_keep_their_index; see keep_foreign_key_indexes).
    after_creates: bool = False
    # On a partitioned table (set by note_partitioned_indexes): a partition's own PRIMARY
    # KEY, UNIQUE or EXCLUDE index that the server attached to this one holds it ("cannot
    # drop index ... because other objects depend on it").
    on_partitioned: bool = False
    # The copies its undo builds and attaches by name (CreateIndex.clones).
    undo_clones: tuple[tuple[str, str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.after_creates:
            self.order = Order.CREATE_INDEX + 5  # type: ignore[misc]

    def condition(self, d: Dialect) -> Condition | None:
        """After the new indexes, an index the server made for a foreign key may be
        gone already: the server drops it itself once another index serves the key."""
        own = self.for_dialect("condition", d) if self.after_creates else None
        return own(d) if own is not None else None

    def condition_mysql(self, d: Dialect) -> Condition:
        schema = d.literal(self.schema) if self.schema else "DATABASE()"
        return Condition(
            "SELECT COUNT(*) = 0 FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = "
            f"{schema} AND TABLE_NAME = {d.literal(self.relation)} AND INDEX_NAME = "
            f"{d.literal(self.index.name)}")

    def objects_dropped(self) -> tuple[ObjectKey, ...]:
        from .base import object_key

        return (object_key("name", self.schema, self.index.name),) if self.index.name else ()

    def describe(self) -> str:
        return f"Drop index {self.index.name} on {qualified(self.schema, self.relation)}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        if self.concurrently:  # IF EXISTS: a retry after a crash finds it gone
            return [f"DROP INDEX CONCURRENTLY IF EXISTS {d.qname(self.schema, self.index.name)}"]
        if self.on_partitioned:
            body = _drop_over_partition_constraints(d, self.schema, self.index.name)
            return [f"DO {dollar_quoted(body)}"]
        return [f"DROP INDEX {d.qname(self.schema, self.index.name)}"]

    def transactional(self, d: Dialect) -> bool:
        return d.transactional_ddl and not self.concurrently

    def lock_safe(self, ctx: RewriteContext) -> list[Change]:
        if not ctx.plain_table(self.schema, self.relation):
            return [self]
        return [replace(self, concurrently=True)]

    def sql_sqlite(self, d: Dialect) -> list[str]:
        return [f"DROP INDEX {d.quote(self.index.name)}"]

    def mysql_alter(self, d: Dialect) -> MySQLAlter:
        """ALTER TABLE ... DROP INDEX (lockplane/dialects/mysql/alter_facts.py decides its
        ALGORITHM and LOCK, as for the index's creation)."""
        from ..dialects.mysql.alter_facts import AlterOp, MySQLAlter
        from ..model import Table

        return MySQLAlter(Table(name=self.relation, schema=self.schema),
                          [f"DROP INDEX {d.quote(self.index.name)}"],
                          (AlterOp("drop_index", method=self.index.method),))

    def sql_mysql(self, d: Dialect) -> list[str]:
        from ..dialects.mysql.alter_facts import alter_sql

        return [alter_sql(d, self.mysql_alter(d))]

    def lock_mysql(self, d: Dialect) -> Lock:
        from ..dialects.mysql.alter_facts import alter_lock

        return alter_lock(d, self.mysql_alter(d))

    def inverse(self) -> list[Change]:
        from .create_index import CreateIndex

        # (its copies, when it has any to attach, are built concurrently, as a plan does)
        return [CreateIndex(self.schema, self.relation, self.index,
                            concurrently=self.concurrently or bool(self.undo_clones),
                            on_partitioned=self.on_partitioned, clones=self.undo_clones)]

    def lock_postgres(self, d: Dialect) -> Lock:
        return SHARE_UPDATE_EXCLUSIVE if self.concurrently else ACCESS_EXCLUSIVE

    def rollback_note(self) -> str | None:
        if not self.index.valid:
            return "the index comes back built and valid (it was INVALID)"
        return None

    def assess(self, d: Dialect) -> Assessment:
        found = []
        blocking = self.for_dialect("blocking_finding", d)
        if blocking is not None and not self.concurrently:
            found.append(blocking())
        if not self.index.valid:
            found.append(Finding("drop-index", (
                f"{self.index.name} is INVALID (a failed CREATE INDEX CONCURRENTLY): queries "
                "do not use it, but writes still maintain it (and a unique one may still "
                "reject duplicates).")))
        else:
            found.append(Finding("drop-index", f"Queries that use {self.index.name} get "
                                 "slower."))
            if self.index.unique:
                found.append(Finding("drop-index", "Uniqueness is no longer enforced; code "
                                     "may rely on it."))
        return Assessment.of(*found)

    def blocking_finding_postgres(self) -> Finding:
        return Finding("drop-index-blocking", f"DROP INDEX {self.index.name} takes ACCESS "
                       f"EXCLUSIVE on {qualified(self.schema, self.relation)}.")

    def table_key(self) -> tuple[str, str]:
        return (self.schema, self.relation)


def _drop_over_partition_constraints(d: Dialect, schema: str, name: str) -> str:
    """A DO body dropping a partitioned table's index. A partition's own PRIMARY KEY,
    UNIQUE or EXCLUDE constraint whose index the server attached to it can be dropped
    neither before it ("index ... requires it") nor after: the DROP goes with CASCADE,
    and those constraints, and the foreign keys that went with them, are added again
    (their definitions as the server prints them), on their partitions, unattached. A
    foreign key that needed the dropped index itself fails to come back, as the plain
    DROP would have failed."""
    index = d.literal(d.qname(schema, name))
    held = ("SELECT i.inhrelid FROM pg_catalog.pg_inherits i WHERE i.inhparent = "
            f"{index}::regclass")
    return ("DECLARE r record; again text[] := '{}'; q text; BEGIN "
            "FOR r IN SELECT c.conrelid::regclass::text AS tbl, c.conname, "
            "pg_catalog.pg_get_constraintdef(c.oid) AS def FROM pg_catalog.pg_constraint c "
            f"WHERE (c.contype IN ('p', 'u', 'x') AND c.conindid IN ({held})) OR "
            f"(c.contype = 'f' AND (c.conindid IN ({held}) OR c.conindid = "
            f"{index}::regclass)) ORDER BY c.contype = 'f', c.conname LOOP "
            "again := again || format('ALTER TABLE %s ADD CONSTRAINT %I %s', r.tbl, "
            f"r.conname, r.def); END LOOP; DROP INDEX {d.qname(schema, name)} CASCADE; "
            "FOREACH q IN ARRAY again LOOP EXECUTE q; END LOOP; END")


def note_partitioned_indexes(changes: list[Change], before: Schema, after: Schema,
                             d: Dialect) -> None:
    """Index drops on a partitioned table (and index creations there, for their undo)
    know it: see DropIndex.on_partitioned."""
    from .create_index import CreateIndex, clones_to_attach

    for i, change in enumerate(changes):
        if isinstance(change, DropIndex):
            t = before.table(change.schema, change.relation)
            if t is not None and t.partition_by:
                changes[i] = replace(change, on_partitioned=True,
                                     undo_clones=clones_to_attach(t, change.index, before))
        elif isinstance(change, CreateIndex) and change.replaces is None:
            t = after.table(change.schema, change.relation)
            if t is not None and t.partition_by:
                changes[i] = replace(change, on_partitioned=True,
                                     clones=clones_to_attach(t, change.index, after))


def keep_foreign_key_indexes(changes: list[Change], before: Schema, after: Schema,
                             d: Dialect) -> None:
    """Where a foreign key keeps the index it uses (MySQL refuses to drop it), an index
    whose leading columns hold a foreign key that stays is dropped after the plan's new
    indexes (one of which the key moves to) are built."""
    if not d.foreign_keys_keep_their_index:
        return
    for i, change in enumerate(changes):
        if not isinstance(change, DropIndex) or change.after_creates:
            continue
        tb = before.table(change.schema, change.relation)
        ta = after.table(change.schema, change.relation)
        if tb is None or ta is None:
            continue
        kept = {fk.name for fk in ta.foreign_keys}
        leading = [k.column for k in change.index.keys]
        if any(fk.name in kept and leading[:len(fk.columns)] == list(fk.columns)
               for fk in tb.foreign_keys):
            changes[i] = replace(change, after_creates=True)


CHANGE_ANNOTATORS.append(keep_foreign_key_indexes)
CHANGE_ANNOTATORS.append(note_partitioned_indexes)
