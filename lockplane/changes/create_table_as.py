"""Archive copy: CREATE TABLE <archive> AS SELECT ... in Lockplane's own schema.

The archive lives where introspection never looks (``lockplane`` schema on PostgreSQL,
``_lockplane_`` prefix on SQLite), so it survives the drop it protects against without
becoming part of anyone's declared schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Table, qualified
from .base import Assessment, Change, Lock, Order, Safety, register

if TYPE_CHECKING:
    from ..dialects.base import Dialect


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class CreateTableAs(Change):
    kind = "archive_table"
    order = Order.CREATE_TABLE
    table: Table  # the source
    label: str  # what is archived (a column name, or "all")
    columns: list[str]

    def archive_name(self, d: Dialect) -> str:
        return d.archive_table(f"archive_{self.table.name}_{self.label}"[:60])

    def describe(self) -> str:
        return (f"Archive {', '.join(self.columns)} of "
                f"{qualified(self.table.schema_, self.table.name)}")

    def _sql(self, d: Dialect) -> list[str]:
        cols = ", ".join(d.quote(c) for c in self.columns)
        src = d.qname(self.table.schema_, self.table.name)
        return d.archive_setup_sql() + [f"DROP TABLE IF EXISTS {self.archive_name(d)}",
                      f"CREATE TABLE {self.archive_name(d)} AS SELECT {cols} FROM {src}"]

    def sql_postgres(self, d: Dialect) -> list[str]:
        return self._sql(d)

    def sql_sqlite(self, d: Dialect) -> list[str]:
        return self._sql(d)

    def inverse(self) -> list[Change]:
        return []  # keep the archive: it is the point

    def lock(self, d: Dialect) -> Lock:
        return Lock("ACCESS SHARE", False, False, scans_table=True)

    def assess(self, d: Dialect) -> Assessment:
        return Assessment(Safety.SAFE, ("Reads the whole table once (a full copy).",))

    def table_key(self) -> tuple[str, str]:
        return (self.table.schema_ or "", self.table.name)
