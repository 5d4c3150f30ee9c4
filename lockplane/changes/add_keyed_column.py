"""MySQL: an AUTO_INCREMENT column added together with the key it needs, in one ALTER.

MySQL and MariaDB refuse an AUTO_INCREMENT column that is not the first column of some
key ("there can be only one auto column and it must be defined as a key", error 1075),
so ``ADD COLUMN id ... AUTO_INCREMENT`` and ``ADD PRIMARY KEY (id)`` cannot be two steps:
the first fails. :func:`keep_keys_with_auto_columns` folds the key's change into the
column's step (one ``ALTER TABLE``, its ALGORITHM and LOCK decided as one), and its undo
drops both in one ``ALTER TABLE`` too (the key cannot go first, and dropping the column
alone would leave what remains of a key over several columns).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..model import PrimaryKey, UniqueConstraint, qualified
from .add_column import AddColumn
from .add_constraint import AddConstraint
from .base import Assessment, Change, Lock, Order, register
from .create_index import CreateIndex
from .create_table import CreateTable

if TYPE_CHECKING:
    from ..dialects.base import Dialect
    from ..dialects.mysql.alter_facts import MySQLAlter
    from ..model import ObjectKey


def _first_column(key: Change) -> str | None:
    """The first column of the key a change adds (None: it adds no plain key)."""
    # (a primary key replaced: DROP PRIMARY KEY, ADD PRIMARY KEY in the same ALTER)
    if isinstance(key, AddConstraint) and (key.replaces is None
                                           or isinstance(key.constraint, PrimaryKey)) \
            and isinstance(key.constraint, PrimaryKey | UniqueConstraint) \
            and key.constraint.columns:
        return key.constraint.columns[0]
    if isinstance(key, CreateIndex) and key.replaces is None and key.index.keys:
        return key.index.keys[0].column
    return None


def keep_keys_with_auto_columns(changes: list[Change], d: Dialect) -> list[Change]:
    """Each added AUTO_INCREMENT column joined, at its place, by the first key the plan
    adds that starts with it; a new table's, by the first index that starts with it when
    its primary key does not (dialects whose SQL these kinds speak; others unchanged)."""
    if not AddKeyedColumn.speaks(d):
        return changes
    out = list(changes)
    for i, c in enumerate(out):
        if isinstance(c, AddColumn) and c.column.auto_increment:
            auto = c.column.name
        elif isinstance(c, CreateTable):
            t = c.table
            auto = next((col.name for col in t.columns if col.auto_increment), None)
            keyed = [k.columns[0] for k in (t.primary_key, *t.unique_constraints)
                     if k is not None and k.columns]
            if auto in keyed:
                continue
        else:
            continue
        at = next((j for j in range(i + 1, len(out))
                   if out[j].table_key() == c.table_key() and _first_column(out[j]) == auto
                   and (isinstance(c, AddColumn) or isinstance(out[j], CreateIndex))),
                  None) if auto is not None else None
        if at is None:
            continue
        key = out.pop(at)
        if isinstance(c, AddColumn):
            out[i] = AddKeyedColumn(c, key, rank=c.rank, context_findings=c.context_findings)
        else:
            out[i] = CreateKeyedTable(c, key, rank=c.rank,  # type: ignore[arg-type]
                                      context_findings=c.context_findings)
    return out


def _drop_key_clause(d: Dialect, key: Change) -> tuple[str, str]:
    """The ALTER TABLE clause that drops the key ``key`` adds, and its AlterOp."""
    if isinstance(key, AddConstraint) and isinstance(key.constraint, PrimaryKey):
        return "DROP PRIMARY KEY", "drop_primary_key"
    name = key.constraint.name if isinstance(key, AddConstraint) else \
        key.index.name  # type: ignore[attr-defined]
    return f"DROP INDEX {d.quote(name or '')}", "drop_index"


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class AddKeyedColumn(Change):
    kind = "add_keyed_column"
    order = Order.ALTER_TABLE
    add: AddColumn
    key: Change  # AddConstraint (PRIMARY KEY / UNIQUE) or CreateIndex, led by the column

    def describe(self) -> str:
        return f"{self.add.describe()}, with {self.key.describe()}"

    def mysql_alter(self, d: Dialect) -> MySQLAlter:
        from ..dialects.mysql.alter_facts import MySQLAlter

        a, k = self.add.mysql_alter(d), self.key.mysql_alter(d)  # type: ignore[attr-defined]
        assert k is not None
        return MySQLAlter(self.add.table, [*a.clauses, *k.clauses], (*a.ops, *k.ops))

    def sql_mysql(self, d: Dialect) -> list[str]:
        from ..dialects.mysql.alter_facts import alter_sql

        return [alter_sql(d, self.mysql_alter(d))]

    def lock_mysql(self, d: Dialect) -> Lock:
        from ..dialects.mysql.alter_facts import alter_lock

        return alter_lock(d, self.mysql_alter(d))

    def transactional(self, d: Dialect) -> bool:
        return self.add.transactional(d)

    def assess(self, d: Dialect) -> Assessment:
        # (the column numbers every row itself: no "NOT NULL without a default" here)
        parts = [a for a in (self.add.assess(d), self.key.assess(d))
                 if not any(f.rule == "add-not-null-column-without-default"
                            for f in a.findings)]
        if not parts:
            return Assessment.of()
        worst = max(parts, key=lambda a: a.safety.rank)
        return Assessment(worst.safety, tuple(m for a in parts for m in a.messages),
                          tuple(f for a in parts for f in a.findings))

    def inverse(self) -> list[Change]:
        return [DropKeyedColumn(self.add, self.key, rank=self.rank)]

    def rollback_note(self) -> str | None:
        return self.add.rollback_note()

    def rollback_stake(self) -> dict[str, Any] | None:
        return self.add.rollback_stake()

    def table_key(self) -> tuple[str, str]:
        return self.add.table_key()

    def objects_created(self) -> tuple[ObjectKey, ...]:
        return (*self.add.objects_created(), *self.key.objects_created())

    def objects_dropped(self) -> tuple[ObjectKey, ...]:
        return (*self.add.objects_dropped(), *self.key.objects_dropped())


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class DropKeyedColumn(Change):
    """The undo of :class:`AddKeyedColumn`: the key and its AUTO_INCREMENT column dropped
    in one ALTER TABLE."""

    kind = "drop_keyed_column"
    order = Order.ALTER_TABLE
    add: AddColumn
    key: Change

    def _drop(self) -> Change:
        return self.add.inverse()[0]

    def describe(self) -> str:
        t = self.add.table
        return (f"Drop column {self.add.column.name} and its key from "
                f"{qualified(t.schema_, t.name)}")

    def mysql_alter(self, d: Dialect) -> MySQLAlter:
        from ..dialects.mysql.alter_facts import AlterOp, MySQLAlter

        col = self._drop().mysql_alter(d)  # type: ignore[attr-defined]
        if isinstance(self.key, AddConstraint) and self.key.replaces is not None:
            # DROP PRIMARY KEY, the column, ADD PRIMARY KEY (the one it replaced)
            back = self.key.inverse()[0].mysql_alter(d)  # type: ignore[attr-defined]
            return MySQLAlter(col.table, [back.clauses[0], *col.clauses, *back.clauses[1:]],
                              (back.ops[0], *col.ops, *back.ops[1:]))
        clause, what = _drop_key_clause(d, self.key)
        return MySQLAlter(col.table, [clause, *col.clauses], (AlterOp(what), *col.ops))

    def sql_mysql(self, d: Dialect) -> list[str]:
        from ..dialects.mysql.alter_facts import alter_sql

        return [alter_sql(d, self.mysql_alter(d))]

    def lock_mysql(self, d: Dialect) -> Lock:
        from ..dialects.mysql.alter_facts import alter_lock

        return alter_lock(d, self.mysql_alter(d))

    def transactional(self, d: Dialect) -> bool:
        return self._drop().transactional(d)

    def assess(self, d: Dialect) -> Assessment:
        return self._drop().assess(d)

    def inverse(self) -> list[Change]:
        return [AddKeyedColumn(self.add, self.key, rank=self.rank)]

    def table_key(self) -> tuple[str, str]:
        return self.add.table_key()

    def objects_dropped(self) -> tuple[ObjectKey, ...]:
        return (*self.add.objects_created(), *self.key.objects_created())


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class CreateKeyedTable(Change):
    """A new table whose AUTO_INCREMENT column is keyed by an index, not its primary key:
    the index in its CREATE TABLE (the server refuses the table without it)."""

    kind = "create_keyed_table"
    order = Order.CREATE_TABLE
    create: CreateTable
    index: CreateIndex

    def describe(self) -> str:
        return f"{self.create.describe()}, with {self.index.describe()}"

    def sql_mysql(self, d: Dialect) -> list[str]:
        from .mysql_common import add_index_clause

        first, *rest = self.create.sql(d)
        head, sep, tail = first.rpartition("\n)")
        clause = add_index_clause(d, self.index.relation, self.index.index,
                                  self.index.schema).removeprefix("ADD ")
        return [f"{head},\n  {clause}{sep}{tail}", *rest]

    def lock(self, d: Dialect) -> Lock:
        return self.create.lock(d)

    def transactional(self, d: Dialect) -> bool:
        return self.create.transactional(d)

    def assess(self, d: Dialect) -> Assessment:
        return self.create.assess(d)

    def inverse(self) -> list[Change]:
        return self.create.inverse()

    def rollback_note(self) -> str | None:
        return self.create.rollback_note()

    def rollback_stake(self) -> dict[str, Any] | None:
        return self.create.rollback_stake()

    def table_key(self) -> tuple[str, str] | None:
        return self.create.table_key()

    def objects_created(self) -> tuple[ObjectKey, ...]:
        return (*self.create.objects_created(), *self.index.objects_created())

    def objects_dropped(self) -> tuple[ObjectKey, ...]:
        return self.create.objects_dropped()
