"""DROP TYPE of a range type (and with it its multirange type and constructors)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import RangeType, qualified
from .base import NO_LOCK, Assessment, Change, Lock, Order, Safety, register

if TYPE_CHECKING:
    from ..dialects.base import Dialect
    from ..model import ObjectKey


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class DropRangeType(Change):
    kind = "drop_range_type"
    range_type: RangeType

    @property  # type: ignore[override]
    def order(self) -> int:
        from .create_range_type import uses_functions

        return Order.DROP_FUNCTION - 1 if uses_functions(self.range_type) else Order.DROP_TYPE

    def objects_dropped(self) -> tuple[ObjectKey, ...]:
        from .base import object_key

        return (object_key("type", self.range_type.schema_, self.range_type.name),)

    def describe(self) -> str:
        return f"Drop range type {qualified(self.range_type.schema_, self.range_type.name)}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        return [f"DROP TYPE {d.qname(self.range_type.schema_, self.range_type.name)}"]

    def inverse(self) -> list[Change]:
        from .create_range_type import CreateRangeType

        return [CreateRangeType(self.range_type, rank=-self.rank)]

    def lock(self, d: Dialect) -> Lock:
        return NO_LOCK

    def assess(self, d: Dialect) -> Assessment:
        return Assessment(Safety.REVIEW, (
            f"Dropping range type {qualified(self.range_type.schema_, self.range_type.name)}"
            ": code that casts to it breaks; the drop fails while a column, function or "
            "domain uses it.",))
