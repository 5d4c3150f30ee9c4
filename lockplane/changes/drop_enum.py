"""DROP TYPE of an enum (columns that use it are dropped or converted by earlier steps)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import EnumType, qualified
from .base import NO_LOCK, Assessment, Change, Lock, Order, Safety, register

if TYPE_CHECKING:
    from ..dialects.base import Dialect
    from ..model import ObjectKey


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class DropEnum(Change):
    kind = "drop_enum"
    order = Order.DROP_TYPE
    enum: EnumType

    def objects_dropped(self) -> tuple[ObjectKey, ...]:
        from .base import object_key

        return (object_key("type", self.enum.schema_, self.enum.name),)

    def describe(self) -> str:
        return f"Drop enum type {qualified(self.enum.schema_, self.enum.name)}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        return [f"DROP TYPE {d.qname(self.enum.schema_, self.enum.name)}"]

    def inverse(self) -> list[Change]:
        from .create_enum import CreateEnum

        return [CreateEnum(self.enum)]

    def lock(self, d: Dialect) -> Lock:
        return NO_LOCK

    def assess(self, d: Dialect) -> Assessment:
        return Assessment(Safety.REVIEW, (
            f"Dropping type {qualified(self.enum.schema_, self.enum.name)}: code that casts "
            "to it breaks; the drop fails while a column, function or domain uses it.",
        ))
