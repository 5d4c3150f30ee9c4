"""ALTER INDEX ... RENAME TO: how an index built under a temporary name
(``pg_common.temp_name``) takes its real name, in a multi-phase pattern's contract phase or
when a plan replaces an index by one of the same name without a moment when the table has
neither (lockplane.plan). PostgreSQL only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import qualified
from .base import Assessment, Change, Lock, Order, Safety

if TYPE_CHECKING:
    from ..dialects.base import Dialect


@dataclass(repr=False, eq=False)  # Change's own (see there)
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
