"""DROP TRIGGER."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Trigger, qualified
from .base import Assessment, Change, Lock, Order, Safety, register

if TYPE_CHECKING:
    from ..dialects.base import Dialect
    from ..dialects.mysql.alter_facts import MySQLStatement


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class DropTrigger(Change):
    kind = "drop_trigger"
    order = Order.DROP_TRIGGER
    schema: str
    table: str
    trigger: Trigger

    def describe(self) -> str:
        return f"Drop trigger {self.trigger.name} on {qualified(self.schema, self.table)}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        return [f"DROP TRIGGER {d.quote(self.trigger.name)} ON "
                f"{d.qname(self.schema, self.table)}"]

    def sql_sqlite(self, d: Dialect) -> list[str]:
        return [f"DROP TRIGGER {d.qname(self.schema, self.trigger.name)}"]

    def sql_mysql(self, d: Dialect) -> list[str]:
        return [f"DROP TRIGGER {d.qname(self.schema, self.trigger.name)}"]

    def mysql_statement(self, d: Dialect) -> MySQLStatement:
        """No ALGORITHM clause: metadata only, checked on the plan's scratch copy."""
        from ..dialects.mysql.alter_facts import MySQLStatement
        from ..model import Table

        return MySQLStatement(Table(name=self.table, schema=self.schema),
                              self.sql_mysql(d), "DROP TRIGGER")

    def lock_mysql(self, d: Dialect) -> Lock:
        from ..dialects.mysql.alter_facts import statement_lock

        return statement_lock(d, self.mysql_statement(d))

    def inverse(self) -> list[Change]:
        from .create_trigger import CreateTrigger

        return [CreateTrigger(self.schema, self.table, self.trigger)]

    def assess(self, d: Dialect) -> Assessment:
        return Assessment(Safety.REVIEW, (
            f"Dropping trigger {self.trigger.name}: whatever it did on each write to "
            f"{qualified(self.schema, self.table)} (auditing, derived columns ...) stops.",))

    def table_key(self) -> tuple[str, str]:
        return (self.schema, self.table)
