"""COMMENT ON ...: comments on any object (PostgreSQL; SQLite has none)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Table
from .base import SHARE_UPDATE_EXCLUSIVE, Change, Lock, Order, register

if TYPE_CHECKING:
    from ..dialects.base import Dialect


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class SetComment(Change):
    """``target_sql`` is a callable-free description of the object: kind + name parts."""

    kind = "set_comment"
    order = Order.COMMENT
    object_kind: str  # TABLE, COLUMN, INDEX, VIEW, SCHEMA, TYPE, CONSTRAINT, ...
    name_parts: tuple[str, ...]  # e.g. (schema, table, column)
    before: str | None
    after: str | None
    on_table: tuple[str, ...] | None = None  # CONSTRAINT x ON table / TRIGGER x ON table
    signature: str | None = None  # FUNCTION f(args)
    on_kind: str | None = None  # CONSTRAINT x ON DOMAIN d (a table when None)

    @classmethod
    def for_column(cls, table: Table, column: str, before: str | None,
                   after: str | None) -> SetComment:
        return cls("COLUMN", (table.schema_ or "", table.name, column), before, after)

    def describe(self) -> str:
        verb = "Remove comment on" if self.after is None else "Set comment on"
        return f"{verb} {self.object_kind.lower()} {'.'.join(p for p in self.name_parts if p)}"

    def target(self, d: Dialect) -> str:
        if self.on_table is not None:
            on = f"{self.on_kind} " if self.on_kind else ""
            return (f"{self.object_kind} {d.quote(self.name_parts[-1])} ON {on}"
                    f"{d.qname(self.on_table[0], self.on_table[1])}")
        name = ".".join(d.quote(p) for p in self.name_parts)
        if self.signature is not None:
            name += f"({self.signature})"
        return f"{self.object_kind} {name}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        value = "NULL" if self.after is None else d.literal(self.after)
        return [f"COMMENT ON {self.target(d)} IS {value}"]

    def inverse(self) -> list[Change]:
        return [SetComment(self.object_kind, self.name_parts, self.after, self.before,
                           self.on_table, self.signature, self.on_kind)]

    def lock(self, d: Dialect) -> Lock:
        return SHARE_UPDATE_EXCLUSIVE
