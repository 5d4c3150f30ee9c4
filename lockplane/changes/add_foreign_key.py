"""ALTER TABLE ... ADD CONSTRAINT ... FOREIGN KEY."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import ForeignKey, Table, qualified
from .base import SHARE_ROW_EXCLUSIVE, Assessment, Change, Lock, Order, Safety, register
from .render import foreign_key_def, table_name

if TYPE_CHECKING:
    from ..dialects.base import Dialect


@register
@dataclass
class AddForeignKey(Change):
    kind = "add_foreign_key"
    order = Order.ADD_FOREIGN_KEY
    table: Table
    fk: ForeignKey
    new_table: bool = False  # on a table created by this plan: nothing to validate

    def describe(self) -> str:
        fk = self.fk
        label = f"foreign key {fk.name}" if fk.name else "foreign key"
        return (f"Add {label} {qualified(self.table.schema_, self.table.name)}"
                f"({', '.join(fk.columns)}) -> "
                f"{qualified(fk.referenced_schema, fk.referenced_table)}")

    def sql_postgres(self, d: Dialect) -> list[str]:
        out = [f"ALTER TABLE {table_name(d, self.table)} ADD {foreign_key_def(d, self.fk)}"]
        if self.fk.comment and self.fk.name:
            from .set_comment import SetComment

            out += SetComment("CONSTRAINT", (self.fk.name,), None, self.fk.comment,
                              on_table=(self.table.schema_ or "", self.table.name)
                              ).sql_postgres(d)
        return out

    def inverse(self) -> list[Change]:
        from .drop_foreign_key import DropForeignKey

        return [DropForeignKey(self.table, self.fk)]

    def lock(self, d: Dialect) -> Lock:
        # SHARE ROW EXCLUSIVE on both tables while every existing row is checked.
        return Lock(SHARE_ROW_EXCLUSIVE.mode, False, True, scans_table=not self.new_table)

    def assess(self, d: Dialect) -> Assessment:
        if self.new_table:
            return Assessment(Safety.SAFE)
        return Assessment(Safety.REVIEW, (
            "Adding a foreign key checks every existing row while blocking writes on both "
            "tables, and fails on orphaned rows.",
        ))

    def table_key(self) -> tuple[str, str]:
        return (self.table.schema_ or "", self.table.name)
