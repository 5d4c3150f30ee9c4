"""ALTER TABLE ... INHERIT parent / NO INHERIT parent (table inheritance, not partitions).

INHERIT needs every column of the parent on the child (same type, NOT NULL where the
parent has it) and the parent's CHECK constraints by name; the differ brings the child
into shape first (columns and constraints order before this step). NO INHERIT runs early,
so that the parent's later changes no longer reach the child; the child keeps its columns
and rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Table, qualified
from .base import ACCESS_EXCLUSIVE, Assessment, Change, Lock, Order, Safety, register

if TYPE_CHECKING:
    from ..dialects.base import Dialect


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class AlterInheritance(Change):
    kind = "alter_inheritance"
    table: Table
    parent: str  # "schema"."table"
    inherit: bool

    @property  # type: ignore[override]
    def order(self) -> int:
        return Order.ADD_CONSTRAINT + 5 if self.inherit else Order.DROP_POLICY - 5

    def describe(self) -> str:
        name = qualified(self.table.schema_, self.table.name)
        if self.inherit:
            return f"Make {name} inherit from {self.parent}"
        return f"Make {name} no longer inherit from {self.parent}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        from .create_table import parent_sql

        parent = parent_sql(d, self.parent, self.table.schema_ or d.default_schema)
        verb = "INHERIT" if self.inherit else "NO INHERIT"
        return [f"ALTER TABLE {d.qname(self.table.schema_, self.table.name)} {verb} {parent}"]

    def inverse(self) -> list[Change]:
        return [AlterInheritance(self.table, self.parent, not self.inherit)]

    def lock(self, d: Dialect) -> Lock:
        # ACCESS EXCLUSIVE on the child; the parent takes SHARE UPDATE EXCLUSIVE.
        return ACCESS_EXCLUSIVE

    def assess(self, d: Dialect) -> Assessment:
        name = qualified(self.table.schema_, self.table.name)
        if self.inherit:
            return Assessment(Safety.REVIEW, (
                f"From the commit on, queries on {self.parent} also return the rows of "
                f"{name}.",))
        return Assessment(Safety.REVIEW, (
            f"From the commit on, queries on {self.parent} no longer return the rows of "
            f"{name}.",))

    def table_key(self) -> tuple[str, str]:
        return (self.table.schema_ or "", self.table.name)
