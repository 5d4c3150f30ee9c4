"""DROP INDEX."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Index, qualified
from .base import ACCESS_EXCLUSIVE, Assessment, Change, Lock, Order, Safety, register

if TYPE_CHECKING:
    from ..dialects.base import Dialect


@register
@dataclass
class DropIndex(Change):
    kind = "drop_index"
    order = Order.DROP_INDEX
    schema: str
    relation: str
    index: Index

    def describe(self) -> str:
        return f"Drop index {self.index.name} on {qualified(self.schema, self.relation)}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        return [f"DROP INDEX {d.qname(self.schema, self.index.name)}"]

    def sql_sqlite(self, d: Dialect) -> list[str]:
        return [f"DROP INDEX {d.quote(self.index.name)}"]

    def inverse(self) -> list[Change]:
        from .create_index import CreateIndex

        return [CreateIndex(self.schema, self.relation, self.index)]

    def lock(self, d: Dialect) -> Lock:
        return ACCESS_EXCLUSIVE if d.name == "postgres" else super().lock(d)

    def rollback_note(self) -> str | None:
        if not self.index.valid:
            return "the index comes back built and valid (it was INVALID)"
        return None

    def assess(self, d: Dialect) -> Assessment:
        if not self.index.valid:
            return Assessment(Safety.REVIEW, (
                f"{self.index.name} is INVALID (a failed CREATE INDEX CONCURRENTLY): queries "
                "do not use it, but writes still maintain it (and a unique one may still "
                "reject duplicates).",))
        msgs = [f"Queries that use {self.index.name} get slower."]
        if self.index.unique:
            msgs.append("Uniqueness is no longer enforced; code may rely on it.")
        return Assessment(Safety.REVIEW, tuple(msgs))

    def table_key(self) -> tuple[str, str]:
        return (self.schema, self.relation)
