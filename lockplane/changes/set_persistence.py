"""ALTER TABLE ... SET LOGGED / SET UNLOGGED.

Both rewrite the whole table under ACCESS EXCLUSIVE (SET LOGGED also writes all of it to
the WAL). An unlogged table is emptied after a crash and is not replicated: standbys
see it empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Table, qualified
from .base import TABLE_PART_DIFFERS, Assessment, Change, Lock, Order, Safety, register

if TYPE_CHECKING:
    from ..dialects.base import Dialect


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class SetPersistence(Change):
    kind = "set_persistence"
    risk_rule = "table-rewrite"  # the lockplane.rules id of what assess() reports
    order = Order.ALTER_TABLE
    table: Table
    unlogged: bool  # after the change

    def describe(self) -> str:
        what = "unlogged" if self.unlogged else "logged"
        return f"Make {qualified(self.table.schema_, self.table.name)} {what}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        what = "UNLOGGED" if self.unlogged else "LOGGED"
        return [f"ALTER TABLE {d.qname(self.table.schema_, self.table.name)} SET {what}"]

    def inverse(self) -> list[Change]:
        return [SetPersistence(self.table, not self.unlogged)]

    def lock(self, d: Dialect) -> Lock:
        return Lock("ACCESS EXCLUSIVE", True, True, rewrites_table=True, scans_table=True)

    def assess(self, d: Dialect) -> Assessment:
        name = qualified(self.table.schema_, self.table.name)
        msgs = [f"Rewrites all of {name} under an ACCESS EXCLUSIVE lock."]
        if self.unlogged:
            msgs.append(f"Unlogged, {name} is emptied after a crash and is empty on "
                        "streaming replicas (a failover loses its rows).")
        else:
            msgs.append(f"Every row of {name} is written to the WAL (and to replicas).")
        return Assessment(Safety.REVIEW, tuple(msgs))

    def table_key(self) -> tuple[str, str]:
        return (self.table.schema_ or "", self.table.name)


def diff_persistence(b: Table, a: Table, d: Dialect) -> list[Change]:
    if not SetPersistence.speaks(d) or b.unlogged == a.unlogged:
        return []
    return [SetPersistence(a, a.unlogged)]


TABLE_PART_DIFFERS.append(diff_persistence)
