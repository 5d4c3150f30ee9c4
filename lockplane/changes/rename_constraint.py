"""ALTER TABLE ... RENAME CONSTRAINT: a multi-phase pattern builds a constraint under a
temporary name (``pg_common.temp_name``) while the old one still serves running code, then
gives it its real name once the old one is gone; a plan swaps a replaced UNIQUE / PRIMARY
KEY in the same way. PostgreSQL only (SQLite has no rename for constraints).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Table, qualified
from .base import ACCESS_EXCLUSIVE, Assessment, Change, Lock, Order, Safety

if TYPE_CHECKING:
    from ..dialects.base import Dialect


@dataclass(repr=False, eq=False)  # Change's own (see there)
class RenameConstraint(Change):
    """ALTER TABLE ... RENAME CONSTRAINT (a unique / primary key / exclusion constraint's
    index is renamed with it)."""

    kind = "rename_constraint"
    order = Order.ADD_CONSTRAINT  # after the drops that free the name
    table: Table
    old: str
    new: str

    def describe(self) -> str:
        return (f"Rename constraint {self.old} on {qualified(self.table.schema_, self.table.name)}"
                f" to {self.new}")

    def sql_postgres(self, d: Dialect) -> list[str]:
        return [f"ALTER TABLE {d.qname(self.table.schema_, self.table.name)} RENAME "
                f"CONSTRAINT {d.quote(self.old)} TO {d.quote(self.new)}"]

    def inverse(self) -> list[Change]:
        return [RenameConstraint(self.table, self.new, self.old)]

    def lock(self, d: Dialect) -> Lock:
        return ACCESS_EXCLUSIVE  # brief: catalog only

    def assess(self, d: Dialect) -> Assessment:
        return Assessment(Safety.SAFE, ("Instant (catalog only); code naming the constraint "
                                        "(ON CONFLICT ON CONSTRAINT) sees the new name.",))

    def table_key(self) -> tuple[str, str]:
        return (self.table.schema_ or "", self.table.name)
