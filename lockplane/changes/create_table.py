"""CREATE TABLE: a new table with its columns and inline constraints.

Foreign keys are added by ``add_foreign_key`` after every table exists (cycles, order),
except on SQLite, which cannot add a foreign key later and does not check the referenced
table at creation. Indexes, triggers, policies, comments and grants are their own steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Table, qualified
from .base import NO_LOCK, Assessment, Change, Lock, Order, Safety, register
from .render import (
    check_def,
    column_def,
    exclusion_def,
    foreign_key_def,
    primary_key_def,
    table_name,
    unique_def,
)

if TYPE_CHECKING:
    from ..dialects.base import Dialect


def create_table_sql(d: Dialect, table: Table, *, inline_fks: bool,
                     name: str | None = None) -> str:
    """CREATE TABLE for ``table``, optionally under another ``name`` (SQLite's rebuild
    creates the new definition beside the old table before swapping them)."""
    t = table
    items = [column_def(d, c) for c in t.columns]
    if t.primary_key:
        items.append(primary_key_def(d, t.primary_key))
    items += [unique_def(d, u) for u in t.unique_constraints]
    items += [check_def(d, c) for c in t.check_constraints]
    items += [exclusion_def(d, x) for x in t.exclusion_constraints]
    if inline_fks:
        items += [foreign_key_def(d, fk) for fk in t.foreign_keys]
    head = table_name(d, t) if name is None else d.qname(t.schema_, name)
    body = ",\n  ".join(items)
    return f"CREATE TABLE {head} (\n  {body}\n)"


@register
@dataclass
class CreateTable(Change):
    kind = "create_table"
    order = Order.CREATE_TABLE
    table: Table

    def describe(self) -> str:
        return f"Create table {qualified(self.table.schema_, self.table.name)}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        return [create_table_sql(d, self.table, inline_fks=False)]

    def sql_sqlite(self, d: Dialect) -> list[str]:
        return [create_table_sql(d, self.table, inline_fks=True)]

    def inverse(self) -> list[Change]:
        from .drop_table import DropTable

        return [DropTable(self.table)]

    def lock(self, d: Dialect) -> Lock:
        return NO_LOCK

    def assess(self, d: Dialect) -> Assessment:
        return Assessment(Safety.SAFE)

    def table_key(self) -> tuple[str, str]:
        return (self.table.schema_ or "", self.table.name)
