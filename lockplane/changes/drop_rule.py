"""DROP RULE ... ON table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Rule, qualified
from .base import ACCESS_EXCLUSIVE, Assessment, Change, Lock, Order, Safety, register

if TYPE_CHECKING:
    from ..dialects.base import Dialect


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class DropRule(Change):
    kind = "drop_rule"
    order = Order.DROP_TRIGGER
    schema: str
    table: str
    rule: Rule

    def describe(self) -> str:
        return f"Drop rule {self.rule.name} on {qualified(self.schema, self.table)}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        return [f"DROP RULE {d.quote(self.rule.name)} ON {d.qname(self.schema, self.table)}"]

    def inverse(self) -> list[Change]:
        from .create_rule import CreateRule

        return [CreateRule(self.schema, self.table, self.rule)]

    def lock(self, d: Dialect) -> Lock:
        return ACCESS_EXCLUSIVE

    def assess(self, d: Dialect) -> Assessment:
        return Assessment(Safety.REVIEW, (
            f"Dropping rule {self.rule.name}: queries on "
            f"{qualified(self.schema, self.table)} are no longer rewritten by it.",))

    def table_key(self) -> tuple[str, str]:
        return (self.schema, self.table)
