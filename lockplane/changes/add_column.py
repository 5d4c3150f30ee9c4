"""ALTER TABLE ... ADD COLUMN."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Column, Table, qualified
from .base import ACCESS_EXCLUSIVE, Assessment, Change, Lock, Order, Safety, register
from .render import column_def, table_name

if TYPE_CHECKING:
    from ..dialects.base import Dialect

# Defaults PostgreSQL evaluates per row: adding a column with one rewrites the table.
VOLATILE_DEFAULT_HINTS = ("random(", "gen_random_uuid(", "uuid_generate", "clock_timestamp(",
                          "nextval(", "timeofday(", "txid_current(")


def is_volatile_default(expr: str | None) -> bool:
    return expr is not None and any(h in expr.lower() for h in VOLATILE_DEFAULT_HINTS)


@register
@dataclass
class AddColumn(Change):
    kind = "add_column"
    order = Order.ALTER_TABLE
    table: Table  # the table as it is before the change
    column: Column

    def describe(self) -> str:
        return (f"Add column {self.column.name} {self.column.type} to "
                f"{qualified(self.table.schema_, self.table.name)}")

    def sql_postgres(self, d: Dialect) -> list[str]:
        from .pg_common import grants_sql

        t, c = self.table, self.column
        return ([f"ALTER TABLE {table_name(d, t)} ADD COLUMN {column_def(d, c)}"]
                + grants_sql(d, "COLUMN", (t.schema_ or "", t.name, c.name), c.grants))

    def sql_sqlite(self, d: Dialect) -> list[str]:
        return [f"ALTER TABLE {table_name(d, self.table)} ADD COLUMN {column_def(d, self.column)}"]

    def inverse(self) -> list[Change]:
        from .drop_column import DropColumn

        return [DropColumn(self.table, self.column)]

    def rewrites(self) -> bool:
        c = self.column
        return (c.generated is not None or c.identity is not None
                or is_volatile_default(c.default))

    def lock(self, d: Dialect) -> Lock:
        if d.name != "postgres":
            return super().lock(d)
        rw = self.rewrites()
        return Lock(ACCESS_EXCLUSIVE.mode, True, True, rewrites_table=rw, scans_table=rw)

    def assess(self, d: Dialect) -> Assessment:
        c = self.column
        if not c.nullable and c.default is None and c.generated is None and c.identity is None:
            return Assessment(Safety.REVIEW, (
                f"Adding NOT NULL column {c.name} without a default fails if the table "
                "has rows.",
                "Safer: add it nullable (or with a default), backfill, then set NOT NULL.",
            ))
        if d.name == "postgres" and self.rewrites():
            return Assessment(Safety.REVIEW, (
                f"Column {c.name}'s default or expression is computed per row: PostgreSQL "
                "rewrites the whole table under an ACCESS EXCLUSIVE lock.",
                "Safer: add the column without a default, set the default, then backfill "
                "in batches.",
            ))
        return Assessment(Safety.SAFE)

    def table_key(self) -> tuple[str, str]:
        return (self.table.schema_ or "", self.table.name)
