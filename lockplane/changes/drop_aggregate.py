"""DROP AGGREGATE (before its support functions go)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Aggregate
from .base import NO_LOCK, Assessment, Change, Lock, Order, Safety, register

if TYPE_CHECKING:
    from ..dialects.base import Dialect


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class DropAggregate(Change):
    kind = "drop_aggregate"
    order = Order.DROP_FUNCTION - 2
    aggregate: Aggregate

    def describe(self) -> str:
        from .create_aggregate import aggregate_label

        return f"Drop {aggregate_label(self.aggregate)}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        from .create_aggregate import aggregate_ref

        return [f"DROP AGGREGATE {aggregate_ref(d, self.aggregate)}"]

    def inverse(self) -> list[Change]:
        from .create_aggregate import CreateAggregate

        return [CreateAggregate(self.aggregate)]

    def lock(self, d: Dialect) -> Lock:
        return NO_LOCK

    def assess(self, d: Dialect) -> Assessment:
        from .create_aggregate import aggregate_label

        return Assessment(Safety.REVIEW, (
            f"Dropping {aggregate_label(self.aggregate)}: queries using it break; the drop "
            "fails while a view uses it.",))
