"""DROP POLICY."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Policy, qualified
from .base import ACCESS_EXCLUSIVE, Assessment, Change, Lock, Order, Safety, register

if TYPE_CHECKING:
    from ..dialects.base import Dialect


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class DropPolicy(Change):
    kind = "drop_policy"
    order = Order.DROP_POLICY
    schema: str
    table: str
    policy: Policy

    def describe(self) -> str:
        return f"Drop policy {self.policy.name} on {qualified(self.schema, self.table)}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        return [f"DROP POLICY {d.quote(self.policy.name)} ON {d.qname(self.schema, self.table)}"]

    def inverse(self) -> list[Change]:
        from .create_policy import CreatePolicy

        return [CreatePolicy(self.schema, self.table, self.policy)]

    def lock(self, d: Dialect) -> Lock:
        return ACCESS_EXCLUSIVE

    def assess(self, d: Dialect) -> Assessment:
        kind = "permissive" if self.policy.permissive else "restrictive"
        effect = ("roles it let in lose access to those rows" if self.policy.permissive
                  else "rows it hid become visible to the roles it restricted")
        return Assessment(Safety.REVIEW, (
            f"Dropping {kind} policy {self.policy.name} on "
            f"{qualified(self.schema, self.table)}: {effect}.",))

    def table_key(self) -> tuple[str, str]:
        return (self.schema, self.table)
