"""ALTER TABLE ... DROP COLUMN: the column's values are gone from the table.

Where the dialect keeps dropped values (``Dialect.archives_dropped_values``), the table
has a primary key the plan keeps and the plan was not told otherwise (``plan
--no-archive``), the step first copies the column's values into an archive table of
Lockplane's own (changes.refill_column: bounded, said in the plan).

The inverse re-adds the column with its type, default, collation and comment (indexes
and constraints on it come back through the inverses of their own drop steps), refills
it from the archive, and gives a NOT NULL column without a default its NOT NULL back
only once every row has a value (changes.enforce_not_null): re-added NOT NULL it would
fail on any table with rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ..model import Column, Table, qualified
from .base import CHANGE_ANNOTATORS, Assessment, Change, Lock, Order, Safety, register
from .render import table_name

if TYPE_CHECKING:
    from ..dialects.base import Dialect
    from ..dialects.mysql.alter_facts import MySQLAlter
    from ..model import Schema


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class DropColumn(Change):
    kind = "drop_column"
    risk_rule = "drop-column"  # the lockplane.rules id of what assess() reports
    order = Order.DROP_COLUMN
    table: Table
    column: Column
    # Set by keep_dropped_values (a plan's own drops, where the dialect keeps values): the
    # inverse re-adds a NOT NULL column nullable, refills it, enforces NOT NULL after.
    keep_data: bool = False
    # The primary key its values are archived under (empty: not archived).
    archive_key: list[str] = field(default_factory=list)
    # The plan was told to keep no copy (turn_archive_off): it says the values come back
    # NULL.
    archive_turned_off: bool = False
    # A parent's column that its INHERITS children keep as their own (set by
    # table_hierarchy.note_kept_by_children): ALTER TABLE ONLY, which leaves the
    # children's column in place, now theirs, with its values (a plain DROP COLUMN
    # recurses and takes it from them).
    only: bool = False

    def __post_init__(self) -> None:
        if self.column.generated is not None:
            # Before any ALTER COLUMN ... TYPE of the columns it is computed from: while
            # it exists PostgreSQL refuses those ("used by a generated column").
            self.order = Order.ALTER_COLUMN - 5  # type: ignore[misc]

    def describe(self) -> str:
        table = qualified(self.table.schema_, self.table.name)
        return f"Drop column {self.column.name} from {table}"

    def archived(self) -> bool:
        c = self.column
        return bool(self.keep_data and self.archive_key and c.generated is None
                    and c.identity is None)

    def _archive_sql(self, d: Dialect) -> list[str]:
        if not self.archived():
            return []
        from .refill_column import archive_sql

        return archive_sql(d, self.table, self.archive_key, [self.column])

    def sql_postgres(self, d: Dialect) -> list[str]:
        only = "ONLY " if self.only else ""
        return [*self._archive_sql(d), f"ALTER TABLE {only}{table_name(d, self.table)} "
                                       f"DROP COLUMN {d.quote(self.column.name)}"]

    def sql_sqlite(self, d: Dialect) -> list[str]:
        return [*self._archive_sql(d),
                f"ALTER TABLE {table_name(d, self.table)} DROP COLUMN {d.quote(self.column.name)}"]

    def mysql_alter(self, d: Dialect) -> MySQLAlter:
        from ..dialects.mysql.alter_facts import AlterOp, MySQLAlter

        return MySQLAlter(self.table, [f"DROP COLUMN {d.quote(self.column.name)}"],
                          (AlterOp("drop_column", column=self.column),))

    def sql_mysql(self, d: Dialect) -> list[str]:
        from ..dialects.mysql.alter_facts import alter_sql

        return [*self._archive_sql(d), alter_sql(d, self.mysql_alter(d))]

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
        relax = self._relaxed()
        back = bare.model_copy(update={"nullable": True}) if relax else bare
        out: list[Change] = [AddColumn(self.table, back)]
        # Each step from the table as the one before leaves it: where a comment is a clause
        # restating the column's definition (MySQL), setting it must not make the column
        # NOT NULL before its refill, nor the NOT NULL drop the comment.
        commented = back.model_copy(update={"comment": self.column.comment})
        if self.column.comment:
            out.append(SetComment.for_column(self._with(back), self.column.name, None,
                                             self.column.comment))
        if self.archived():
            from .refill_column import RefillColumn

            out.append(RefillColumn(self.table, list(self.archive_key), [back]))
        if relax:
            from .enforce_not_null import EnforceNotNull

            out.append(EnforceNotNull(self._with(commented), self.column))
        return out

    def _with(self, column: Column) -> Table:
        """The table with ``column`` in place of the dropped one."""
        now = self.table.model_copy(deep=True)
        now.columns = [column if c.name == column.name else c for c in now.columns]
        return now

    def _relaxed(self) -> bool:
        """Whether the column comes back nullable first (NOT NULL, nothing to fill it)."""
        c = self.column
        return (self.keep_data and not c.nullable and c.default is None
                and c.identity is None and c.generated is None)

    def rollback_note(self) -> str:
        name = self.column.name
        if not self.keep_data:
            return (f"re-adds {name} with its definition; its values are not "
                    "restored (NULL or the default)")
        if self.archived():
            note = f"re-adds {name} and refills it from the archive this step keeps"
        elif self.archive_turned_off:
            note = (f"re-adds {name}; its values are not restored (archiving was turned off "
                    "for this plan: --no-archive, or archive_dropped = false), so they come "
                    "back NULL or as the default")
        else:
            note = (f"re-adds {name}; its values were not archived (the table has no primary "
                    "key that stays), so they come back NULL or as the default")
        if self._relaxed():
            note += ("; NOT NULL comes back only if every row has a value, else the column "
                     "stays nullable and the rollback says how many rows have none")
        return note

    def turn_archive_off(self) -> None:
        if self.archived():
            self.archive_key, self.archive_turned_off = [], True

    def lock(self, d: Dialect) -> Lock:
        own = super().lock(d)
        return replace(own, scans_table=True) if self.archived() else own

    def assess(self, d: Dialect) -> Assessment:
        name = f"{qualified(self.table.schema_, self.table.name)}.{self.column.name}"
        kept: tuple[str, ...] = ()
        if self.archived():
            from .refill_column import archive_message

            kept = (archive_message(d, self.table, self.archive_key, [self.column]),)
        elif self.archive_turned_off:
            from .refill_column import archive_off_message

            kept = (archive_off_message(self.table, [self.column]),)
        return Assessment(Safety.DANGEROUS, (
            f"Dropping {name} permanently deletes its values, and running code that reads "
            "or writes it breaks.",
            "Safer: deploy code that no longer uses the column, then drop it "
            "(multi-phase deprecation).", *kept,
        ))

    def table_key(self) -> tuple[str, str]:
        return (self.table.schema_ or "", self.table.name)


def kept_key(before: Table, after: Table | None, dropped: set[str]) -> list[str]:
    """The primary key dropped values can be archived under: one the table has before and
    keeps after the plan, none of the dropped columns in it (empty: none)."""
    pk = before.primary_key
    if pk is None or after is None or after.primary_key is None:
        return []
    if list(after.primary_key.columns) != list(pk.columns) or dropped & set(pk.columns):
        return []
    return list(pk.columns)


def keep_dropped_values(changes: list[Change], before: Schema, after: Schema,
                        d: Dialect) -> None:
    """A plan's own column drops keep their values for a rollback, where the dialect can."""
    if not d.archives_dropped_values:
        return
    for c in changes:
        if isinstance(c, DropColumn):
            c.keep_data = True
            c.archive_key = kept_key(c.table, after.table(c.table.schema_ or "", c.table.name),
                                     {c.column.name})


CHANGE_ANNOTATORS.append(keep_dropped_values)
