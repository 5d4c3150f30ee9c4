"""Renaming a constraint or an index: how a pattern builds an object under a temporary
name while the old one (same name, old column) still serves running code, then gives it
its real name once the old one is gone; and how a plan replaces an index by one of the
same name without a moment when the table has neither (lockplane.plan).

PostgreSQL only: SQLite has no rename for either (the patterns drop and re-create there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..changes.base import ACCESS_EXCLUSIVE, Assessment, Change, Lock, Order, Safety
from ..model import Table, qualified

if TYPE_CHECKING:
    from ..dialects.base import Dialect

TEMP_SUFFIX = "__lp_new"


def temp_name(name: str) -> str:
    """The temporary name of ``name`` (within PostgreSQL's 63-byte identifiers)."""
    return name[:63 - len(TEMP_SUFFIX)] + TEMP_SUFFIX


@dataclass
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


@dataclass
class RenameIndex(Change):
    """ALTER INDEX ... RENAME TO."""

    kind = "rename_index"
    order = Order.CREATE_INDEX
    schema: str
    relation: str
    old: str
    new: str

    def describe(self) -> str:
        return f"Rename index {self.old} on {qualified(self.schema, self.relation)} to {self.new}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        return [f"ALTER INDEX {d.qname(self.schema, self.old)} RENAME TO {d.quote(self.new)}"]

    def inverse(self) -> list[Change]:
        return [RenameIndex(self.schema, self.relation, self.new, self.old)]

    def lock(self, d: Dialect) -> Lock:
        return Lock("SHARE UPDATE EXCLUSIVE", False, False)

    def assess(self, d: Dialect) -> Assessment:
        return Assessment(Safety.SAFE, ("Instant (catalog only).",))

    def table_key(self) -> tuple[str, str]:
        return (self.schema, self.relation)
