"""DROP TABLE: destroys the table and every row in it.

Its inverse recreates the structure (columns, constraints, indexes, triggers, policies,
comments, grants). Its rows come back where the dialect archives a dropped table's rows
(``Dialect.archives_dropped_tables``), the plan was not told otherwise (``plan
--no-archive``) and the table was small enough to copy (changes.refill_table: the drop
copies them first, the undo puts them back before the indexes, constraints and
triggers); otherwise only a backup has them, and the plan says so. Foreign keys into and
out of the table are dropped by their own steps first (on PostgreSQL and MySQL).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ..model import Column, Sequence, Table, qualified
from .base import CHANGE_ANNOTATORS, Assessment, Change, Lock, Order, Safety, register
from .render import table_name

if TYPE_CHECKING:
    from ..dialects.base import Dialect
    from ..model import ObjectKey, Schema


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
    # Sequences it owns that the new table does not (as they were): released too, so that
    # the plan's own steps still find them; the inverse owns them again.
    released_sequences: list[Sequence] = field(default_factory=list)
    # Set by keep_dropped_rows (a plan's own drops, where the dialect can): the rows are
    # copied into an archive first, and the inverse refills the table from it.
    archive: bool = False
    # The plan was told to keep no copy (turn_archive_off): it says the table comes back
    # empty.
    archive_turned_off: bool = False

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
               for q in [*self.owned_sequences, *self.released_sequences]]
        if self.table.partition_of is not None:
            # A partition of a table foreign keys reference cannot be dropped while it
            # is attached ("other objects depend on it": the keys' clones on it); the
            # DETACH takes the parent's lock the DROP would, and checks no row refers
            # to the partition's rows.
            from .create_table import parent_sql

            parent = parent_sql(d, self.table.partition_of,
                                self.table.schema_ or d.default_schema)
            out.append(f"ALTER TABLE {parent} DETACH PARTITION {table_name(d, self.table)}")
        if self.archive:
            from .refill_table import archive_sql_postgres

            out = [*archive_sql_postgres(d, self.table), *out]
        return [*out, f"DROP TABLE {table_name(d, self.table)}"]

    def sql_sqlite(self, d: Dialect) -> list[str]:
        out: list[str] = []
        if self.archive:
            from .refill_table import archive_sql_sqlite

            out = archive_sql_sqlite(d, self.table)
        return [*out, f"DROP TABLE {table_name(d, self.table)}"]

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
        created: list[Change] = [CreateTable(
            self.table, column_overrides=self.column_overrides,
            owned_sequences=[*self.owned_sequences, *self.released_sequences])]
        if self.archive:
            from .refill_table import RefillTable

            # (the rows before the indexes, constraints and triggers: no trigger fires
            # for them, and each constraint checks them once)
            created.append(RefillTable(self.table))
        return [*created, *table_parts(self.table, with_fks=False)]

    def rollback_note(self) -> str:
        if self.archive:
            from .refill_table import ARCHIVE_MAX_TABLE_ROWS

            return ("recreates the table and puts back the rows this step archives (if it "
                    f"had at most {ARCHIVE_MAX_TABLE_ROWS:,}; else it comes back empty: "
                    "restore them from a backup); rows written while the step ran are "
                    "not among them")
        if self.archive_turned_off:
            return ("recreates the table empty: archiving was turned off for this plan "
                    "(--no-archive, or archive_dropped = false), so its rows are not "
                    "restored; restore them from a backup")
        return ("recreates the empty table: its rows are not restored by SQL; "
                "restore them from a backup")

    def turn_archive_off(self) -> None:
        if self.archive:
            self.archive, self.archive_turned_off = False, True

    def lock(self, d: Dialect) -> Lock:
        own = super().lock(d)
        return replace(own, scans_table=True) if self.archive else own

    def assess(self, d: Dialect) -> Assessment:
        name = qualified(self.table.schema_, self.table.name)
        kept: tuple[str, ...] = ()
        if self.archive:
            from .refill_table import archive_message

            kept = (archive_message(d, self.table),)
        elif self.archive_turned_off:
            from .refill_table import archive_off_message

            kept = (archive_off_message(self.table),)
        return Assessment(Safety.DANGEROUS, (
            f"Dropping {name} permanently deletes all of its rows.",
            "Safer: stop using the table in code first (multi-phase deprecation), "
            "archive its data, then drop it.", *kept,
        ))

    def table_key(self) -> tuple[str, str]:
        return (self.table.schema_ or "", self.table.name)


def keep_dropped_rows(changes: list[Change], before: Schema, after: Schema,
                      d: Dialect) -> None:
    """A plan's own table drops keep the rows for a rollback, where the dialect can: not a
    table the plan creates again (its rows are another matter), nor a partitioned table
    or a partition (their rows move with the hierarchy)."""
    if not d.archives_dropped_tables:
        return
    for c in changes:
        if isinstance(c, DropTable) and not c.recreated and c.table.partition_by is None \
                and c.table.partition_of is None \
                and after.table(c.table.schema_ or "", c.table.name) is None:
            c.archive = True


CHANGE_ANNOTATORS.append(keep_dropped_rows)
