"""Refill dropped columns from their archive: the data half of undoing a column drop.

A plan that drops a column (``DROP COLUMN``; on SQLite, a rebuild without it) first
copies its non-NULL values, keyed by the table's primary key, into an archive table of
Lockplane's own (``Dialect.archive_table``: the ``lockplane`` schema, or a
``_lockplane_`` name), at most ``ARCHIVE_MAX_ROWS`` rows, in the same step as the drop
(``archive_sql``). Values and keys are kept as text where the server has types of its
own, so the archive depends on nothing the plan may drop afterwards (an enum, a domain).

Undoing the drop re-adds the column (nullable when it was NOT NULL without a default),
and this step puts the archived values back and drops the archive. It runs only where
the archive exists (a shadow copy has none; neither has a database whose archive was
dropped by hand): elsewhere it is skipped, and the re-added column keeps NULL or its
default. Then changes.enforce_not_null brings NOT NULL back where every row has a value.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..model import Column, Table, qualified
from .base import Assessment, Change, Condition, Lock, Order, Safety, register
from .render import table_name

if TYPE_CHECKING:
    from ..dialects.base import Dialect

# The most rows whose values a drop keeps: the copy runs inside the drop's step, so it
# is bounded; the plan says so, and a rollback leaves the rest NULL (and says so).
ARCHIVE_MAX_ROWS = 1_000_000
_ALIAS = "_lockplane_archive"


def archive_name(table: Table, columns: Sequence[str]) -> str:
    """The archive table's name (unquoted, without prefix) for these dropped columns of
    ``table``: readable, and unique by a digest of the table and the columns."""
    digest = hashlib.sha256(json.dumps(
        [table.schema_ or "", table.name, list(columns)]).encode()).hexdigest()[:10]

    def cut(text: str, n: int) -> str:
        return text.encode()[:n].decode(errors="ignore")

    return f"drop_{cut(table.name, 24)}_{cut('_'.join(columns), 20)}_{digest}"


def archive_sql(d: Dialect, table: Table, key: Sequence[str],
                columns: Sequence[Column]) -> list[str]:
    """Copy the non-NULL values of ``columns`` with ``key`` into their archive (emptying
    one an earlier apply of the same drop left)."""
    name = d.archive_table(archive_name(table, [c.name for c in columns]))
    # (as text without the columns' collations: the plan may drop those afterwards)
    picked = ", ".join(f"{d.archived_text(d.quote(k))} AS {d.quote(k)}" for k in key)
    picked += "".join(f", {d.archived_text(d.quote(c.name))} AS {d.quote(c.name)}"
                      for c in columns)
    some = " OR ".join(f"{d.quote(c.name)} IS NOT NULL" for c in columns)
    src = table_name(d, table)
    # (emptied rather than dropped: what a reviewer or lint reads as a DROP is the user's)
    return [*d.archive_setup_sql(),
            f"CREATE TABLE IF NOT EXISTS {name} AS SELECT {picked} FROM {src} LIMIT 0",
            f"DELETE FROM {name}",
            *d.copy_reading_unlocked(f"INSERT INTO {name} SELECT {picked} FROM {src} "
                                     f"WHERE {some} LIMIT {ARCHIVE_MAX_ROWS}")]


def archive_message(d: Dialect, table: Table, key: Sequence[str],
                    columns: Sequence[Column]) -> str:
    names = [c.name for c in columns]
    return (f"Keeps the values of {', '.join(names)} (up to {ARCHIVE_MAX_ROWS:,} rows, keyed "
            f"by {', '.join(key)}) in {d.archive_table(archive_name(table, names))}"
            " before the drop, for a rollback to put back; values of rows beyond that, or "
            "written while the step runs, are not kept.")


def archive_off_message(table: Table, columns: Sequence[Column]) -> str:
    names = ", ".join(c.name for c in columns)
    return (f"Keeps no copy of the values of {names} of "
            f"{qualified(table.schema_, table.name)}: archiving was turned off for this plan "
            "(--no-archive, or archive_dropped = false), so a rollback brings "
            f"{'it' if len(columns) == 1 else 'them'} back NULL (or as the default).")


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class RefillColumn(Change):
    kind = "refill_column"
    order = Order.ALTER_TABLE
    puts_back_archived = True
    table: Table
    key: list[str]
    # The columns as they come back (their types: archived text is cast back to them).
    columns: list[Column] = field(default_factory=list)

    def _archive(self) -> str:
        return archive_name(self.table, [c.name for c in self.columns])

    def describe(self) -> str:
        return (f"Refill {', '.join(c.name for c in self.columns)} of "
                f"{qualified(self.table.schema_, self.table.name)} from its archive")

    def _sql(self, d: Dialect) -> list[str]:
        t = table_name(d, self.table)
        a = d.quote(_ALIAS)
        sets = ", ".join(f"{d.quote(c.name)} = {d.cast_to_column(f'{a}.{d.quote(c.name)}', c.type)}"
                         for c in self.columns)
        own = d.quote(self.table.name)
        match = " AND ".join(f"{d.archived_text(f'{own}.{d.quote(k)}')} = {a}.{d.quote(k)}"
                             for k in self.key)
        archive = d.archive_table(self._archive())
        return [f"UPDATE {t} SET {sets} FROM {archive} AS {a} WHERE {match}",
                f"DROP TABLE {archive}"]

    def sql_postgres(self, d: Dialect) -> list[str]:
        return self._sql(d)

    def sql_sqlite(self, d: Dialect) -> list[str]:
        return self._sql(d)

    def sql_mysql(self, d: Dialect) -> list[str]:
        # No UPDATE ... FROM: the multi-table form, rows found by the table's key.
        t, a = table_name(d, self.table), d.quote(_ALIAS)
        own = d.quote(self.table.name)
        sets = ", ".join(f"{own}.{d.quote(c.name)} = {a}.{d.quote(c.name)}"
                         for c in self.columns)
        match = " AND ".join(f"{own}.{d.quote(k)} = {a}.{d.quote(k)}" for k in self.key)
        archive = d.archive_table(self._archive())
        return [f"UPDATE {t} AS {own} JOIN {archive} AS {a} ON {match} SET {sets}",
                f"DROP TABLE {archive}"]

    def condition(self, d: Dialect) -> Condition:
        return Condition(d.archive_missing_sql(self._archive()))

    def inverse(self) -> list[Change]:
        return []  # the column's own undo (dropping it again) takes the values

    def lock(self, d: Dialect) -> Lock:
        return Lock("ROW EXCLUSIVE", False, False, scans_table=True)

    def assess(self, d: Dialect) -> Assessment:
        return Assessment(Safety.SAFE, (
            f"Updates the rows whose values were archived (at most {ARCHIVE_MAX_ROWS:,}); "
            "skipped where the archive does not exist.",))

    def table_key(self) -> tuple[str, str]:
        return (self.table.schema_ or "", self.table.name)
