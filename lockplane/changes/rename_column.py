"""ALTER TABLE ... RENAME COLUMN: instant, but breaks running code that uses the old name.

The differ never emits it (a declarative diff cannot see a rename); multi-phase patterns
use it, e.g. to swap a shadow column of a new type into place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Table, qualified
from .base import Assessment, Change, Lock, Order, Safety, register
from .render import table_name

if TYPE_CHECKING:
    from ..dialects.base import Dialect
    from ..dialects.mysql.alter_facts import MySQLAlter


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class RenameColumn(Change):
    kind = "rename_column"
    risk_rule = "rename-column"  # the lockplane.rules id of what assess() reports
    order = Order.ALTER_COLUMN
    table: Table
    old: str
    new: str

    def describe(self) -> str:
        return (f"Rename column {qualified(self.table.schema_, self.table.name)}.{self.old} "
                f"to {self.new}")

    def _sql(self, d: Dialect) -> list[str]:
        return [f"ALTER TABLE {table_name(d, self.table)} RENAME COLUMN "
                f"{d.quote(self.old)} TO {d.quote(self.new)}"]

    def sql_postgres(self, d: Dialect) -> list[str]:
        return self._sql(d)

    def sql_sqlite(self, d: Dialect) -> list[str]:
        return self._sql(d)

    def mysql_alter(self, d: Dialect) -> MySQLAlter:
        from ..dialects.mysql.alter_facts import AlterOp, MySQLAlter

        return MySQLAlter(self.table, [f"RENAME COLUMN {d.quote(self.old)} TO "
                                       f"{d.quote(self.new)}"], (AlterOp("rename_column"),))

    def sql_mysql(self, d: Dialect) -> list[str]:
        from ..dialects.mysql.alter_facts import alter_sql

        return [alter_sql(d, self.mysql_alter(d))]

    def lock_mysql(self, d: Dialect) -> Lock:
        from ..dialects.mysql.alter_facts import alter_lock

        return alter_lock(d, self.mysql_alter(d))

    def inverse(self) -> list[Change]:
        return [RenameColumn(self.table, self.new, self.old)]

    def assess(self, d: Dialect) -> Assessment:
        return Assessment(Safety.MULTI_PHASE, (
            f"Code that uses {self.old} breaks the moment this commits.",
            "Safer: expand/contract (lockplane plan --multi-phase).",
        ))

    def table_key(self) -> tuple[str, str]:
        return (self.table.schema_ or "", self.table.name)
