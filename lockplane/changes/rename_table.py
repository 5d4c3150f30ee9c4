"""ALTER TABLE ... RENAME TO: instant, but breaks running code that uses the old name.

Used by the multi-phase table rename, which leaves an updatable view under the old name.
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
class RenameTable(Change):
    kind = "rename_table"
    risk_rule = "rename-table"  # the lockplane.rules id of what assess() reports
    order = Order.ALTER_TABLE
    table: Table
    new: str

    def describe(self) -> str:
        return f"Rename table {qualified(self.table.schema_, self.table.name)} to {self.new}"

    def _sql(self, d: Dialect) -> list[str]:
        return [f"ALTER TABLE {table_name(d, self.table)} RENAME TO {d.quote(self.new)}"]

    def sql_postgres(self, d: Dialect) -> list[str]:
        return self._sql(d)

    def sql_sqlite(self, d: Dialect) -> list[str]:
        return self._sql(d)

    def mysql_alter(self, d: Dialect) -> MySQLAlter:
        """ALTER TABLE ... RENAME TO (not RENAME TABLE, which takes no ALGORITHM): its
        ALGORITHM decided and asked for like any ALTER (alter_facts)."""
        from ..dialects.mysql.alter_facts import AlterOp, MySQLAlter

        return MySQLAlter(self.table, [f"RENAME TO {d.qname(self.table.schema_, self.new)}"],
                          (AlterOp("rename_table"),))

    def sql_mysql(self, d: Dialect) -> list[str]:
        from ..dialects.mysql.alter_facts import alter_sql

        return [alter_sql(d, self.mysql_alter(d))]

    def lock_mysql(self, d: Dialect) -> Lock:
        from ..dialects.mysql.alter_facts import alter_lock

        return alter_lock(d, self.mysql_alter(d))

    def inverse(self) -> list[Change]:
        renamed = self.table.model_copy(update={"name": self.new})
        return [RenameTable(renamed, self.table.name)]

    def assess(self, d: Dialect) -> Assessment:
        return Assessment(Safety.MULTI_PHASE, (
            f"Code that uses {self.table.name} breaks the moment this commits.",
            "Safer: expand/contract with a compatibility view (lockplane plan --multi-phase).",
        ))

    def table_key(self) -> tuple[str, str]:
        return (self.table.schema_ or "", self.table.name)
