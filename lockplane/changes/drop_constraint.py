"""ALTER TABLE ... DROP CONSTRAINT for primary keys, UNIQUE, CHECK and EXCLUDE."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import PrimaryKey, Table, UniqueConstraint, qualified
from .add_constraint import TableConstraint, constraint_label
from .base import ACCESS_EXCLUSIVE, Assessment, Change, Finding, Lock, Order, register
from .render import table_name

if TYPE_CHECKING:
    from ..dialects.base import Dialect
    from ..dialects.mysql.alter_facts import MySQLAlter


def pg_constraint_name(table: Table, c: TableConstraint) -> str:
    if c.name:
        return c.name
    if isinstance(c, PrimaryKey):
        return f"{table.name}_pkey"  # PostgreSQL's own default name
    raise ValueError("cannot drop an unnamed constraint")


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class DropConstraint(Change):
    kind = "drop_constraint"
    order = Order.DROP_CONSTRAINT
    table: Table
    constraint: TableConstraint
    # The CHECK (col IS NOT NULL) a lock-safe SET NOT NULL used: nothing relies on it.
    temporary: bool = False
    # A partitioned table's PRIMARY KEY / UNIQUE whose undo adds it back ON ONLY the
    # parent with these copies attached (AddConstraint.only; detach_partition_keys).
    undo_only: tuple[tuple[str, str, str], ...] | None = None

    def describe(self) -> str:
        if self.temporary:
            return (f"Drop the temporary check {self.constraint.name} from "
                    f"{qualified(self.table.schema_, self.table.name)}")
        return (f"Drop {constraint_label(self.constraint)} from "
                f"{qualified(self.table.schema_, self.table.name)}")

    def sql_postgres(self, d: Dialect) -> list[str]:
        name = pg_constraint_name(self.table, self.constraint)
        return [f"ALTER TABLE {table_name(d, self.table)} DROP CONSTRAINT {d.quote(name)}"]

    def mysql_alter(self, d: Dialect) -> MySQLAlter:
        from ..dialects.mysql.alter_facts import AlterOp, MySQLAlter

        c = self.constraint
        if isinstance(c, PrimaryKey):
            return MySQLAlter(self.table, ["DROP PRIMARY KEY"], (AlterOp("drop_primary_key"),))
        name = d.quote(pg_constraint_name(self.table, c))
        if isinstance(c, UniqueConstraint):  # a unique key is an index
            return MySQLAlter(self.table, [f"DROP INDEX {name}"], (AlterOp("drop_index"),))
        return MySQLAlter(self.table, [f"DROP CONSTRAINT {name}"], (AlterOp("drop_check"),))

    def sql_mysql(self, d: Dialect) -> list[str]:
        from ..dialects.mysql.alter_facts import alter_sql

        return [alter_sql(d, self.mysql_alter(d))]

    def lock_mysql(self, d: Dialect) -> Lock:
        from ..dialects.mysql.alter_facts import alter_lock

        return alter_lock(d, self.mysql_alter(d))

    def inverse(self) -> list[Change]:
        from .add_constraint import AddConstraint

        return [AddConstraint(self.table, self.constraint, only=self.undo_only)]

    def rollback_note(self) -> str:
        return "re-adding the constraint fails if rows written meanwhile violate it"

    def lock(self, d: Dialect) -> Lock:
        own = self.for_dialect("lock", d)  # (MySQL: lock_mysql, alter_facts)
        if own is not None:
            return own(d)  # type: ignore[no-any-return]
        return ACCESS_EXCLUSIVE

    def assess(self, d: Dialect) -> Assessment:
        if self.temporary:
            return Assessment.of()
        label = constraint_label(self.constraint)
        if isinstance(self.constraint, PrimaryKey):
            return Assessment.of(Finding("change-primary-key", (
                f"Dropping {label}: code, foreign keys and logical replication may rely on "
                "it.")))
        return Assessment.of(Finding("drop-constraint", (
            f"Dropping {label}: application code may rely on it to keep data valid.")))

    def table_key(self) -> tuple[str, str]:
        return (self.table.schema_ or "", self.table.name)
