"""A column default held apart while a routine it calls is dropped and created again.

CREATE OR REPLACE cannot change a routine's return type, so the plan drops and creates
it; PostgreSQL refuses the drop while a column default calls it ("cannot drop function
... because other objects depend on it"). The default is dropped before the routine
goes (ALTER COLUMN ... DROP DEFAULT) and set again, as the desired schema has it, once
the routine is back (plan.recreate_dependents adds the pair). Rows keep their values:
only a row written in between gets no default. Where the plan changes the column too
(a new default, a new type) the default set again is the new one, after the column's
own step, which then leaves the default alone; a column (or default) the plan drops gets
only the first step (plan._hold_default).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..model import Table, qualified
from .base import ACCESS_EXCLUSIVE, Change, Lock, Order, register
from .render import table_name

if TYPE_CHECKING:
    from ..dialects.base import Dialect


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class HoldDefault(Change):
    kind = "hold_default"
    table: Table
    column: str
    default: str  # as the server prints it
    # False: dropped, before the routine it calls is; True: set again, after it is back
    release: bool = False

    @property  # type: ignore[override]
    def order(self) -> int:
        # (a routine dropped to be created again goes at Order.DROP_CONSTRAINT + 5)
        return Order.ALTER_COLUMN if self.release else Order.DROP_CONSTRAINT

    def describe(self) -> str:
        where = f"{qualified(self.table.schema_, self.table.name)}.{self.column}"
        if self.release:
            return f"Set the default of {where} again (the routine it calls is back)"
        return f"Drop the default of {where} while the routine it calls is recreated"

    def sql_postgres(self, d: Dialect) -> list[str]:
        head = f"ALTER TABLE {table_name(d, self.table)} ALTER COLUMN {d.quote(self.column)}"
        if self.release:
            return [f"{head} SET DEFAULT {self.default}"]
        return [f"{head} DROP DEFAULT"]

    def inverse(self) -> list[Change]:
        return [replace(self, release=not self.release)]

    def lock(self, d: Dialect) -> Lock:
        return ACCESS_EXCLUSIVE  # (brief: the catalog only, no row is read)

    def table_key(self) -> tuple[str, str]:
        return (self.table.schema_ or "", self.table.name)
