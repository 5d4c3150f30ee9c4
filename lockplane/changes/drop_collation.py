"""DROP COLLATION (after the columns and indexes that used it are gone)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Collation, qualified
from .base import NO_LOCK, Assessment, Change, Lock, Order, Safety, register

if TYPE_CHECKING:
    from ..dialects.base import Dialect


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class DropCollation(Change):
    kind = "drop_collation"
    order = Order.DROP_TYPE + 5
    collation: Collation

    def describe(self) -> str:
        return f"Drop collation {qualified(self.collation.schema_, self.collation.name)}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        return [f"DROP COLLATION {d.qname(self.collation.schema_, self.collation.name)}"]

    def inverse(self) -> list[Change]:
        from .create_collation import CreateCollation

        return [CreateCollation(self.collation)]

    def lock(self, d: Dialect) -> Lock:
        return NO_LOCK

    def assess(self, d: Dialect) -> Assessment:
        return Assessment(Safety.REVIEW, (
            f"Dropping collation {qualified(self.collation.schema_, self.collation.name)}: "
            "queries naming it break; the drop fails while a column or index uses it.",))
