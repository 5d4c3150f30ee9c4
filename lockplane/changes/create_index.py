"""CREATE INDEX on a table or materialized view."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Index, qualified
from .base import NO_LOCK, Assessment, Change, Lock, Order, Safety, register
from .render import index_sql

if TYPE_CHECKING:
    from ..dialects.base import Dialect


@register
@dataclass
class CreateIndex(Change):
    kind = "create_index"
    order = Order.CREATE_INDEX
    schema: str
    relation: str
    index: Index
    new_relation: bool = False  # on a table created by this plan: empty, no lock worth naming

    def describe(self) -> str:
        unique = "unique " if self.index.unique else ""
        return f"Create {unique}index {self.index.name} on {qualified(self.schema, self.relation)}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        out = [index_sql(d, self.schema, self.relation, self.index)]
        if self.index.comment:  # a new index has no comment; keep the declared one
            from .set_comment import SetComment

            out += SetComment("INDEX", (self.schema, self.index.name), None,
                              self.index.comment).sql_postgres(d)
        return out

    def sql_sqlite(self, d: Dialect) -> list[str]:
        return [index_sql(d, self.schema, self.relation, self.index)]

    def inverse(self) -> list[Change]:
        from .drop_index import DropIndex

        return [DropIndex(self.schema, self.relation, self.index)]

    def lock(self, d: Dialect) -> Lock:
        if d.name != "postgres":
            return super().lock(d)
        if self.new_relation:
            return NO_LOCK
        # Plain CREATE INDEX takes SHARE: reads go on, writes wait for the whole build.
        return Lock("SHARE", False, True, scans_table=True)

    def assess(self, d: Dialect) -> Assessment:
        if self.new_relation or d.name != "postgres":
            return Assessment(Safety.SAFE)
        msgs = [f"Building index {self.index.name} blocks writes to "
                f"{qualified(self.schema, self.relation)} for the whole build."]
        if self.index.unique:
            msgs.append("A unique index fails if existing rows have duplicates.")
        return Assessment(Safety.REVIEW, tuple(msgs))

    def table_key(self) -> tuple[str, str]:
        return (self.schema, self.relation)
