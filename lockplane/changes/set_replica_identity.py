"""ALTER TABLE ... REPLICA IDENTITY DEFAULT | FULL | NOTHING | USING INDEX name.

What logical replication (and CDC tools reading it) write for the old row of an UPDATE
or DELETE. A catalog change under ACCESS EXCLUSIVE (brief, no scan); it runs after
indexes are created, as USING INDEX needs its index.

Also the per-table differ and the builder for a new table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import BadInput
from ..model import Table, qualified
from .base import (
    ACCESS_EXCLUSIVE,
    NO_LOCK,
    TABLE_PART_DIFFERS,
    Assessment,
    Change,
    Lock,
    Order,
    Safety,
    register,
)
from .table_parts import PART_BUILDERS

if TYPE_CHECKING:
    from ..dialects.base import Dialect


def identity_sql(d: Dialect, value: str) -> str:
    if value.startswith("index:"):
        return f"USING INDEX {d.quote(value.removeprefix('index:'))}"
    if value in ("default", "full", "nothing"):
        return value.upper()
    raise BadInput(f"unknown replica identity {value!r} (default, full, nothing, index:NAME)")


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class SetReplicaIdentity(Change):
    kind = "set_replica_identity"
    order = Order.CREATE_INDEX + 5
    table: Table
    before: str
    after: str
    new_table: bool = False

    def describe(self) -> str:
        return (f"Replica identity of {qualified(self.table.schema_, self.table.name)}: "
                f"{self.after}")

    def sql_postgres(self, d: Dialect) -> list[str]:
        return [f"ALTER TABLE {d.qname(self.table.schema_, self.table.name)} REPLICA IDENTITY "
                f"{identity_sql(d, self.after)}"]

    def inverse(self) -> list[Change]:
        return [SetReplicaIdentity(self.table, self.after, self.before)]

    def lock(self, d: Dialect) -> Lock:
        return NO_LOCK if self.new_table else ACCESS_EXCLUSIVE

    def assess(self, d: Dialect) -> Assessment:
        if self.new_table:
            return Assessment(Safety.SAFE)
        msgs = ["Logical replication and CDC consumers see different old-row data for "
                "UPDATE and DELETE from the commit on."]
        if self.after == "nothing":
            msgs.append("With REPLICA IDENTITY NOTHING, a table in a publication refuses "
                        "UPDATE and DELETE.")
        if self.after == "full":
            msgs.append("FULL writes the whole old row to the WAL on every UPDATE and DELETE.")
        return Assessment(Safety.REVIEW, tuple(msgs))

    def table_key(self) -> tuple[str, str]:
        return (self.table.schema_ or "", self.table.name)


def diff_replica_identity(b: Table, a: Table, d: Dialect) -> list[Change]:
    if not SetReplicaIdentity.speaks(d) or b.replica_identity == a.replica_identity:
        return []
    return [SetReplicaIdentity(a, b.replica_identity, a.replica_identity)]


def _new_table_replica_identity(table: Table) -> list[Change]:
    if table.replica_identity == "default":
        return []
    return [SetReplicaIdentity(table, "default", table.replica_identity, new_table=True)]


TABLE_PART_DIFFERS.append(diff_replica_identity)
PART_BUILDERS.append(_new_table_replica_identity)
