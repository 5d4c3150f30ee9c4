"""ALTER TABLE parent DETACH PARTITION table: the table stays, with its rows, on its own.

Plain DETACH (not CONCURRENTLY: that cannot run in a transaction, nor while the parent
has a default partition) takes ACCESS EXCLUSIVE on the parent: every query on the
partitioned table waits for it. It runs early in a plan, before the parent's columns,
indexes or constraints change, so that those changes no longer reach the table.
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
class DetachPartition(Change):
    kind = "detach_partition"
    order = Order.DROP_POLICY - 5
    table: Table
    parent: str
    bound: str  # kept for the inverse (attach again with the same bound)

    def describe(self) -> str:
        return (f"Detach partition {qualified(self.table.schema_, self.table.name)} from "
                f"{self.parent}")

    def sql_postgres(self, d: Dialect) -> list[str]:
        from .attach_partition import partition_sql

        parent, part = partition_sql(d, self.table, self.parent)
        return [f"ALTER TABLE {parent} DETACH PARTITION {part}"]

    def inverse(self) -> list[Change]:
        from .attach_partition import AttachPartition

        return [AttachPartition(self.table, self.parent, self.bound)]

    def rollback_note(self) -> str:
        return "attaching again scans the table to check its rows against the bound"

    def lock(self, d: Dialect) -> Lock:
        # ACCESS EXCLUSIVE on the parent and on the partition (no scan, no rewrite).
        return ACCESS_EXCLUSIVE

    def assess(self, d: Dialect) -> Assessment:
        name = qualified(self.table.schema_, self.table.name)
        return Assessment(Safety.REVIEW, (
            f"Detaching {name} takes an ACCESS EXCLUSIVE lock on {self.parent}: queries on "
            "the partitioned table wait for it (and it waits for them).",
            f"Queries on {self.parent} no longer see the rows of {name}.",
            "Safer under load: run ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY by "
            "hand (outside a transaction; not possible with a default partition).",
        ))

    def table_key(self) -> tuple[str, str]:
        return (self.table.schema_ or "", self.table.name)
