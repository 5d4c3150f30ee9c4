"""ALTER TABLE parent ATTACH PARTITION table FOR VALUES ... (or DEFAULT).

Also the differ for a table's place in a hierarchy: a table that becomes a partition is
attached, one that stops being one (or moves to another bound or parent) is detached
first (``detach_partition``); INHERITS parents come and go through ``alter_inheritance``.

Attaching keeps the table's rows: PostgreSQL checks every row against the bound (a full
scan under ACCESS EXCLUSIVE on the table, unless a valid CHECK constraint already
implies the bound), and scans a default partition for rows that now belong to the new
one. The parent only takes SHARE UPDATE EXCLUSIVE (reads and writes go on).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..model import Table, qualified
from .base import TABLE_PART_DIFFERS, Assessment, Change, Lock, Order, Safety, register

if TYPE_CHECKING:
    from ..dialects.base import Dialect


def partition_sql(d: Dialect, table: Table, parent: str) -> tuple[str, str]:
    """(parent, partition) as SQL names."""
    from .create_table import parent_sql

    return (parent_sql(d, parent, table.schema_ or d.default_schema),
            d.qname(table.schema_, table.name))


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class AttachPartition(Change):
    kind = "attach_partition"
    risk_rule = "attach-partition-scan"  # the lockplane.rules id of what assess() reports
    # After ADD CONSTRAINT (a CHECK that implies the bound spares the scan), before
    # CREATE INDEX and ADD FOREIGN KEY on the parent (they then cascade to it).
    order = Order.ADD_CONSTRAINT + 5
    table: Table
    parent: str  # "schema"."table"
    bound: str  # FOR VALUES ... | DEFAULT
    # Copies of the parent's indexes and keys the attach creates (the table had no
    # matching one), as drop steps under the names PostgreSQL gives them: the inverse
    # detaches and drops them. Filled in by changes.table_hierarchy.
    created: list[Change] = field(default_factory=list)

    def describe(self) -> str:
        return (f"Attach {qualified(self.table.schema_, self.table.name)} as a partition of "
                f"{self.parent} ({self.bound})")

    def sql_postgres(self, d: Dialect) -> list[str]:
        parent, part = partition_sql(d, self.table, self.parent)
        return [f"ALTER TABLE {parent} ATTACH PARTITION {part} {self.bound}"]

    def inverse(self) -> list[Change]:
        from .detach_partition import DetachPartition

        return [DetachPartition(self.table, self.parent, self.bound), *self.created]

    def lock(self, d: Dialect) -> Lock:
        # On the table being attached; the parent gets SHARE UPDATE EXCLUSIVE.
        return Lock("ACCESS EXCLUSIVE", True, True, scans_table=True)

    def assess(self, d: Dialect) -> Assessment:
        name = qualified(self.table.schema_, self.table.name)
        return Assessment(Safety.REVIEW, (
            f"Attaching {name} scans all of its rows under an ACCESS EXCLUSIVE lock to check "
            f"them against the bound ({self.bound}) and fails if one does not fit; a default "
            "partition of the parent is scanned too. The parent takes SHARE UPDATE "
            "EXCLUSIVE only.",
            f"Safer: first add a CHECK constraint on {name} that matches the bound (ADD "
            "CONSTRAINT ... NOT VALID, then VALIDATE): the attach then skips the scan.",
            "Indexes, primary key, unique and foreign keys of the parent are created on "
            "the partition unless it has matching ones, which then get attached.",
        ))

    def table_key(self) -> tuple[str, str]:
        return (self.table.schema_ or "", self.table.name)


def diff_hierarchy(b: Table, a: Table, d: Dialect) -> list[Change]:
    if not AttachPartition.speaks(d):
        return []
    out: list[Change] = []
    if (b.partition_of, b.partition_bound) != (a.partition_of, a.partition_bound):
        from .detach_partition import DetachPartition

        if b.partition_of is not None:
            out.append(DetachPartition(b, b.partition_of, b.partition_bound or "DEFAULT"))
        if a.partition_of is not None:
            out.append(AttachPartition(a, a.partition_of, a.partition_bound or "DEFAULT"))
    if b.inherits != a.inherits:
        from .alter_inheritance import AlterInheritance

        out += [AlterInheritance(b, p, inherit=False) for p in b.inherits
                if p not in a.inherits]
        out += [AlterInheritance(a, p, inherit=True) for p in a.inherits
                if p not in b.inherits]
    return out


TABLE_PART_DIFFERS.append(diff_hierarchy)
