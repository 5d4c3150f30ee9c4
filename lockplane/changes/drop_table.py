"""DROP TABLE: destroys the table and every row in it.

Its inverse recreates the structure (columns, constraints, indexes, triggers, policies,
comments, grants) but not the rows: that needs a backup, and the rollback says so.
Foreign keys into and out of the table are dropped by their own steps first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..model import Column, Sequence, Table, qualified
from .base import Assessment, Change, Lock, Order, Safety, register
from .render import table_name

if TYPE_CHECKING:
    from ..dialects.base import Dialect
    from ..model import ObjectKey


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class DropTable(Change):
    kind = "drop_table"
    risk_rule = "drop-table"  # the lockplane.rules id of what assess() reports
    table: Table
    # Dropped to be created again (a new partitioning): before the create.
    recreated: bool = False
    # For the inverse: see CreateTable.column_overrides.
    column_overrides: list[tuple[Column, Column]] = field(default_factory=list)
    # Sequences it owns that the plan keeps (a recreated table's serials): released first,
    # or the DROP takes them along and the new table's defaults fail.
    owned_sequences: list[Sequence] = field(default_factory=list)

    @property  # type: ignore[override]
    def order(self) -> int:
        return Order.CREATE_TABLE - 5 if self.recreated else Order.DROP_TABLE

    def objects_dropped(self) -> tuple[ObjectKey, ...]:
        from .base import table_name_keys

        return table_name_keys(self.table, with_indexes=True)

    def describe(self) -> str:
        name = qualified(self.table.schema_, self.table.name)
        return f"Drop table {name}" + (" (created again below)" if self.recreated else "")

    def sql_postgres(self, d: Dialect) -> list[str]:
        out = [f"ALTER SEQUENCE {d.qname(q.schema_ or '', q.name)} OWNED BY NONE"
               for q in self.owned_sequences]
        if self.table.partition_of is not None:
            # A partition of a table foreign keys reference cannot be dropped while it
            # is attached ("other objects depend on it": the keys' clones on it); the
            # DETACH takes the parent's lock the DROP would, and checks no row refers
            # to the partition's rows.
            from .create_table import parent_sql

            parent = parent_sql(d, self.table.partition_of,
                                self.table.schema_ or d.default_schema)
            out.append(f"ALTER TABLE {parent} DETACH PARTITION {table_name(d, self.table)}")
        return [*out, f"DROP TABLE {table_name(d, self.table)}"]

    def sql_sqlite(self, d: Dialect) -> list[str]:
        return [f"DROP TABLE {table_name(d, self.table)}"]

    def sql_mysql(self, d: Dialect) -> list[str]:
        return [f"DROP TABLE {table_name(d, self.table)}"]

    def lock_mysql(self, d: Dialect) -> Lock:
        from ..dialects.mysql.alter_facts import drop_table_lock

        return drop_table_lock()

    def transactional(self, d: Dialect) -> bool:
        # Where DDL commits by itself (MySQL), the step cannot share a transaction that
        # a later step's failure would roll back: it runs alone, its progress recorded.
        return d.transactional_ddl

    def inverse(self) -> list[Change]:
        from .create_table import CreateTable
        from .table_parts import table_parts

        # FKs of this table come back through the inverse of their own drop steps.
        return [CreateTable(self.table, column_overrides=self.column_overrides,
                            owned_sequences=self.owned_sequences),
                *table_parts(self.table, with_fks=False)]

    def rollback_note(self) -> str:
        return ("recreates the empty table: its rows are not restored by SQL; "
                "restore them from a backup")

    def assess(self, d: Dialect) -> Assessment:
        name = qualified(self.table.schema_, self.table.name)
        return Assessment(Safety.DANGEROUS, (
            f"Dropping {name} permanently deletes all of its rows.",
            "Safer: stop using the table in code first (multi-phase deprecation), "
            "archive its data, then drop it.",
        ))

    def table_key(self) -> tuple[str, str]:
        return (self.table.schema_ or "", self.table.name)
