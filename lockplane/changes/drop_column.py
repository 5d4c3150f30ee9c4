"""ALTER TABLE ... DROP COLUMN: the column's values are gone.

The inverse re-adds the column with its type, default, nullability, collation and
comment; indexes and constraints on it come back through the inverses of their own
drop steps. Values are not restored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Column, Table, qualified
from .base import ACCESS_EXCLUSIVE, Assessment, Change, Lock, Order, Safety, register
from .render import table_name

if TYPE_CHECKING:
    from ..dialects.base import Dialect
    from ..dialects.mysql.alter_facts import MySQLAlter


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class DropColumn(Change):
    kind = "drop_column"
    risk_rule = "drop-column"  # the lockplane.rules id of what assess() reports
    order = Order.DROP_COLUMN
    table: Table
    column: Column

    def __post_init__(self) -> None:
        if self.column.generated is not None:
            # Before any ALTER COLUMN ... TYPE of the columns it is computed from: while
            # it exists PostgreSQL refuses those ("used by a generated column").
            self.order = Order.ALTER_COLUMN - 5  # type: ignore[misc]

    def describe(self) -> str:
        table = qualified(self.table.schema_, self.table.name)
        return f"Drop column {self.column.name} from {table}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        return [f"ALTER TABLE {table_name(d, self.table)} DROP COLUMN {d.quote(self.column.name)}"]

    def sql_sqlite(self, d: Dialect) -> list[str]:
        return [f"ALTER TABLE {table_name(d, self.table)} DROP COLUMN {d.quote(self.column.name)}"]

    def mysql_alter(self, d: Dialect) -> MySQLAlter:
        from ..dialects.mysql.alter_facts import AlterOp, MySQLAlter

        return MySQLAlter(self.table, [f"DROP COLUMN {d.quote(self.column.name)}"],
                          (AlterOp("drop_column", column=self.column),))

    def sql_mysql(self, d: Dialect) -> list[str]:
        from ..dialects.mysql.alter_facts import alter_sql

        return [alter_sql(d, self.mysql_alter(d))]

    def lock_mysql(self, d: Dialect) -> Lock:
        from ..dialects.mysql.alter_facts import alter_lock

        return alter_lock(d, self.mysql_alter(d))

    def transactional(self, d: Dialect) -> bool:
        # Where DDL commits by itself (MySQL), the step cannot share a transaction that
        # a later step's failure would roll back: it runs alone, its progress recorded.
        return d.transactional_ddl

    def inverse(self) -> list[Change]:
        from .add_column import AddColumn
        from .set_comment import SetComment

        bare = self.column.model_copy(update={"comment": None})
        out: list[Change] = [AddColumn(self.table, bare)]
        if self.column.comment:
            out.append(SetComment.for_column(self.table, self.column.name, None,
                                             self.column.comment))
        return out

    def rollback_note(self) -> str:
        return (f"re-adds {self.column.name} with its definition; its values are not "
                "restored (NULL or the default)")

    def lock(self, d: Dialect) -> Lock:
        return ACCESS_EXCLUSIVE if d.name == "postgres" else super().lock(d)

    def assess(self, d: Dialect) -> Assessment:
        name = f"{qualified(self.table.schema_, self.table.name)}.{self.column.name}"
        return Assessment(Safety.DANGEROUS, (
            f"Dropping {name} permanently deletes its values, and running code that reads "
            "or writes it breaks.",
            "Safer: deploy code that no longer uses the column, then drop it "
            "(multi-phase deprecation).",
        ))

    def table_key(self) -> tuple[str, str]:
        return (self.table.schema_ or "", self.table.name)
