"""ALTER TABLE ... RENAME TO: instant, but breaks running code that uses the old name.

Used by the multi-phase table rename, which leaves an updatable view under the old name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Table, qualified
from .base import Assessment, Change, Order, Safety, register
from .render import table_name

if TYPE_CHECKING:
    from ..dialects.base import Dialect


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

    def sql_mysql(self, d: Dialect) -> list[str]:
        return [f"RENAME TABLE {table_name(d, self.table)} TO "
                f"{d.qname(self.table.schema_, self.new)}"]

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
