"""A generated column dropped while a routine its expression calls is dropped and created
again, and added back after it.

CREATE OR REPLACE cannot change a routine's return type, so the plan drops and creates
it; PostgreSQL refuses the drop while a generated column's expression calls it ("cannot
drop function ... because other objects depend on it"), and a column cannot lose its
expression and get it back in place (DROP EXPRESSION is one way; SET EXPRESSION, 17 on,
only changes a generated column's). So this step drops the column before the routine
goes; the plan adds it back, generated, once the routine is back (an AddColumn), and
drops and makes again the indexes, constraints and extended statistics over it, which
the DROP COLUMN takes along (plan._table_parts_calling_recreated). Its values are
computed again; a STORED column's ADD rewrites the table under ACCESS EXCLUSIVE. The
undo adds the old column back, generated, after the rollback has made the old routine
again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Column, Table, qualified
from .base import ACCESS_EXCLUSIVE, Assessment, Change, Lock, Order, register
from .render import table_name

if TYPE_CHECKING:
    from ..dialects.base import Dialect


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class HoldGeneratedColumn(Change):
    kind = "hold_generated_column"
    table: Table
    column: Column  # as it is before the plan
    # False: dropped, before the routine it calls is; True (the undo): added back
    restore: bool = False

    @property  # type: ignore[override]
    def order(self) -> int:
        # After the drops of its indexes and constraints (DROP COLUMN would take them,
        # and their own steps would then fail), before the routine's drop (which goes at
        # Order.DROP_CONSTRAINT + 5).
        return Order.DROP_CONSTRAINT + 2

    def describe(self) -> str:
        where = f"{qualified(self.table.schema_, self.table.name)}.{self.column.name}"
        if self.restore:
            return f"Add back generated column {where} (the routine it calls is back)"
        return f"Drop generated column {where} while the routine it calls is recreated"

    def sql_postgres(self, d: Dialect) -> list[str]:
        from .alter_column import readd_column_sql

        t, c = self.table, self.column
        if not self.restore:
            return [f"ALTER TABLE {table_name(d, t)} DROP COLUMN {d.quote(c.name)}"]
        return readd_column_sql(d, t, c)

    def inverse(self) -> list[Change]:
        return [HoldGeneratedColumn(self.table, self.column, restore=not self.restore)]

    def lock(self, d: Dialect) -> Lock:
        if self.restore and self.column.generated_kind != "virtual":
            return Lock(ACCESS_EXCLUSIVE.mode, True, True, rewrites_table=True,
                        scans_table=True)
        return ACCESS_EXCLUSIVE  # (brief: the catalog only)

    def assess(self, d: Dialect) -> Assessment:
        return Assessment.of(notes=(
            "The column's values are computed again when it is added back (a STORED "
            "column rewrites the table); until then the table has no such column.",))

    def table_key(self) -> tuple[str, str]:
        return (self.table.schema_ or "", self.table.name)
