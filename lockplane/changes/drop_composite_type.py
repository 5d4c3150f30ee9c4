"""DROP TYPE of a standalone composite type."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import CompositeType, qualified
from .base import NO_LOCK, Assessment, Change, Lock, Order, Safety, register

if TYPE_CHECKING:
    from ..dialects.base import Dialect
    from ..model import ObjectKey


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class DropCompositeType(Change):
    kind = "drop_composite_type"
    order = Order.DROP_TYPE
    type: CompositeType

    def objects_dropped(self) -> tuple[ObjectKey, ...]:
        from .base import object_key

        return (object_key("type", self.type.schema_, self.type.name),)

    def describe(self) -> str:
        return f"Drop composite type {qualified(self.type.schema_, self.type.name)}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        return [f"DROP TYPE {d.qname(self.type.schema_, self.type.name)}"]

    def inverse(self) -> list[Change]:
        from .create_composite_type import CreateCompositeType

        return [CreateCompositeType(self.type)]

    def lock(self, d: Dialect) -> Lock:
        return NO_LOCK

    def assess(self, d: Dialect) -> Assessment:
        return Assessment(Safety.REVIEW, (
            f"Dropping type {qualified(self.type.schema_, self.type.name)}: code that uses "
            "it breaks; the drop fails while a column or function uses it.",
        ))
