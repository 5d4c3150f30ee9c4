"""ALTER TABLE ... DROP CONSTRAINT of a foreign key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import ForeignKey, Table, qualified
from .base import ACCESS_EXCLUSIVE, Assessment, Change, Finding, Lock, Order, Safety, register
from .render import table_name

if TYPE_CHECKING:
    from ..dialects.base import Dialect
    from ..dialects.mysql.alter_facts import MySQLAlter


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class DropForeignKey(Change):
    kind = "drop_foreign_key"
    order = Order.DROP_FOREIGN_KEY
    table: Table
    fk: ForeignKey
    table_dropped: bool = False  # dropped because its table goes away

    def describe(self) -> str:
        return (f"Drop foreign key {self.fk.name} from "
                f"{qualified(self.table.schema_, self.table.name)}")

    def sql_postgres(self, d: Dialect) -> list[str]:
        if not self.fk.name:
            raise ValueError("cannot drop an unnamed foreign key")
        return [f"ALTER TABLE {table_name(d, self.table)} DROP CONSTRAINT {d.quote(self.fk.name)}"]

    def mysql_alter(self, d: Dialect) -> MySQLAlter:
        from ..dialects.mysql.alter_facts import AlterOp, MySQLAlter

        if not self.fk.name:
            raise ValueError("cannot drop an unnamed foreign key")
        return MySQLAlter(self.table, [f"DROP FOREIGN KEY {d.quote(self.fk.name)}"],
                          (AlterOp("drop_foreign_key"),))

    def sql_mysql(self, d: Dialect) -> list[str]:
        from ..dialects.mysql.alter_facts import alter_sql

        return [alter_sql(d, self.mysql_alter(d))]

    def lock_mysql(self, d: Dialect) -> Lock:
        from ..dialects.mysql.alter_facts import alter_lock

        return alter_lock(d, self.mysql_alter(d))

    def inverse(self) -> list[Change]:
        from .add_foreign_key import AddForeignKey

        return [AddForeignKey(self.table, self.fk)]

    def rollback_note(self) -> str:
        return "re-adding the foreign key fails if orphaned rows were written meanwhile"

    def lock(self, d: Dialect) -> Lock:
        own = self.for_dialect("lock", d)  # (MySQL: lock_mysql, alter_facts)
        if own is not None:
            return own(d)  # type: ignore[no-any-return]
        return ACCESS_EXCLUSIVE

    def assess(self, d: Dialect) -> Assessment:
        if self.table_dropped:
            return Assessment(Safety.SAFE)
        return Assessment.of(Finding("drop-constraint", (
            f"Dropping foreign key {self.fk.name}: the database no longer prevents orphaned "
            "rows; code may rely on it.")))

    def table_key(self) -> tuple[str, str]:
        return (self.table.schema_ or "", self.table.name)
