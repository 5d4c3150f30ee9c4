"""DROP DOMAIN (columns that use it are dropped or converted by earlier steps)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import DomainType, qualified
from .base import NO_LOCK, Assessment, Change, Lock, Order, Safety, register

if TYPE_CHECKING:
    from ..dialects.base import Dialect
    from ..model import ObjectKey


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class DropDomain(Change):
    kind = "drop_domain"
    order = Order.DROP_TYPE
    domain: DomainType

    def objects_dropped(self) -> tuple[ObjectKey, ...]:
        from .base import object_key

        return (object_key("type", self.domain.schema_, self.domain.name),)

    def describe(self) -> str:
        return f"Drop domain {qualified(self.domain.schema_, self.domain.name)}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        return [f"DROP DOMAIN {d.qname(self.domain.schema_, self.domain.name)}"]

    def inverse(self) -> list[Change]:
        from .create_domain import CreateDomain

        return [CreateDomain(self.domain)]

    def lock(self, d: Dialect) -> Lock:
        return NO_LOCK

    def assess(self, d: Dialect) -> Assessment:
        return Assessment(Safety.REVIEW, (
            f"Dropping domain {qualified(self.domain.schema_, self.domain.name)}: code that "
            "casts to it breaks; the drop fails while a column or function uses it.",
        ))
