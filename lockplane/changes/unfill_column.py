"""Undo a declared fill of an existing column: the rows it filled get back what they held.

A plan that fills an existing column (``-- lockplane:fill-with`` before its NOT NULL, or
where a new CHECK or UNIQUE would refuse a row: lockplane.fill) writes, with every batch
of the fill and in the same statement, the key and the old value (as text, NULL for a
NULL) of each row it changes into an archive table of Lockplane's own
(``Dialect.archive_table``: ``lockplane.fill_...`` / ``_lockplane_fill_...``), keyed by
the primary key the plan keeps (``FillKeepingRows``). Where the table has none, nothing
is recorded and the rollback says that the filled rows keep their value: a row's physical
position (``ctid``) is no key, VACUUM FULL or any rewrite moves it.

Undoing the fill (``UnfillColumn``, after the undo of the NOT NULL or the constraint)
puts the old values back where the archive names the row, then drops the archive. On
PostgreSQL it runs in batches of ``UNFILL_BATCH_ROWS`` rows, each its own transaction
that takes its rows out of the archive as it writes them back: a rollback killed midway
goes on from what is left in the archive when it is run again. On SQLite (one writer at a
time, the fill itself one transaction) it is one UPDATE; on MySQL too (no loop outside a
routine), a multi-table UPDATE by the key. MySQL's fill batches record their rows with a
locking read before the UPDATE, in the batch's transaction (Dialect.keeping_update).
Where the archive does not exist (a shadow copy, or one dropped by hand) the step is
skipped and the filled values stay.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..model import Table, qualified
from .backfill_column import BackfillColumn
from .base import Assessment, Change, Condition, Lock, Order, Safety, register
from .pg_common import dollar_quoted
from .render import table_name

if TYPE_CHECKING:
    from ..dialects.base import Dialect

# Rows one batch of the undo puts back (and takes out of the archive), per transaction.
UNFILL_BATCH_ROWS = 5_000
_ALIAS = "lockplane_filled"


def fill_archive_name(table: Table, column: str) -> str:
    """The archive table's name (unquoted, without prefix) of a fill of ``column``."""
    digest = hashlib.sha256(json.dumps(
        [table.schema_ or "", table.name, column]).encode()).hexdigest()[:10]

    def cut(text: str, n: int) -> str:
        return text.encode()[:n].decode(errors="ignore")

    return f"fill_{cut(table.name, 24)}_{cut(column, 20)}_{digest}"


def picked_sql(d: Dialect, key: Sequence[str], column: str, alias: str | None = None) -> str:
    """The archive's columns read from the table: the key, then the old value, as text."""
    pre = f"{alias}." if alias else ""
    return ", ".join(f"{d.archived_text(pre + d.quote(c))} AS {d.quote(c)}"
                     for c in [*key, column])


def archive_create_sql(d: Dialect, source: str, archive: str, key: Sequence[str],
                       column: str) -> list[str]:
    """Create the fill's archive (quoted name ``archive``) if it is not there: empty, with
    the key and the column of the table ``source`` (quoted name), as text."""
    return [*d.archive_setup_sql(),
            f"CREATE TABLE IF NOT EXISTS {archive} AS SELECT {picked_sql(d, key, column)} "
            f"FROM {source} LIMIT 0"]


@dataclass(repr=False, eq=False)  # Change's own (see there)
class FillKeepingRows(BackfillColumn):
    """A declared fill of an existing column that records which rows it changes (kind
    ``backfill_column``: the same step, plus its archive; its undo is UnfillColumn)."""

    # The primary key the archive keeps rows by (set: the table has one the plan keeps).
    archive_key: list[str] = field(default_factory=list)

    def _archive(self, d: Dialect) -> str:
        return d.archive_table(fill_archive_name(self.table, self.column))

    def _sql(self, d: Dialect) -> list[str]:
        # As one statement list (a shadow copy, SQLite, a reviewer): the rows the UPDATE
        # changes are copied first, in the same transaction (see transactional).
        t = table_name(d, self.table)
        return [*archive_create_sql(d, t, self._archive(d), self.archive_key, self.column),
                f"DELETE FROM {self._archive(d)}",
                f"INSERT INTO {self._archive(d)} SELECT "
                f"{picked_sql(d, self.archive_key, self.column)} FROM {t} "
                f"WHERE {self._where(d)}",
                *super()._sql(d)]

    def backfill_spec(self, d: Dialect | None = None) -> dict[str, Any] | None:
        import inspect

        own: Any = super().backfill_spec
        # (the base's takes the dialect where batches depend on the table)
        spec = own(d) if inspect.signature(own).parameters else own()
        if spec is not None:
            spec["archive"] = {"name": fill_archive_name(self.table, self.column),
                               "key": list(self.archive_key)}
        return spec

    def transactional(self, d: Dialect) -> bool:
        # Batched (PostgreSQL): each batch archives and updates in one statement. As plain
        # statements: archive and UPDATE commit together, or a re-run would find the rows
        # filled and archive nothing.
        return not d.batches_backfill_steps

    def inverse(self) -> list[Change]:
        return [UnfillColumn(self.table, self.column, list(self.archive_key))]

    def rollback_note(self) -> str | None:
        return (f"puts back what the rows the fill changed held (NULL, or the value it "
                f"replaced), by the {', '.join(self.archive_key)} it recorded, in batches; "
                "rows written since keep theirs")

    def assess(self, d: Dialect) -> Assessment:
        own = super().assess(d)
        kept = (f"Records the key ({', '.join(self.archive_key)}) and old value of every row "
                f"it changes in {self._archive(d)}, with each batch, for a rollback to put "
                "back: one small row per filled row.")
        return Assessment(own.safety, (*own.messages, kept), own.findings)


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class UnfillColumn(Change):
    kind = "unfill_column"
    order = Order.ALTER_TABLE
    table: Table
    column: str
    key: list[str]

    def _archive(self, d: Dialect) -> str:
        return d.archive_table(fill_archive_name(self.table, self.column))

    def describe(self) -> str:
        return (f"Put back the values {qualified(self.table.schema_, self.table.name)}."
                f"{self.column} held before its fill")

    def _type(self, name: str) -> str:
        col = self.table.column(name)
        assert col is not None, name
        return col.type

    def _set_and_match(self, d: Dialect, a: str) -> tuple[str, str]:
        own = d.quote(self.table.name)
        value = d.cast_to_column(f"{a}.{d.quote(self.column)}", self._type(self.column))
        # (the archive's text cast to the key's type: the table's key index finds the row)
        match = " AND ".join(
            f"{own}.{d.quote(k)} = {d.cast_to_column(f'{a}.{d.quote(k)}', self._type(k))}"
            for k in self.key)
        return f"{d.quote(self.column)} = {value}", match

    def sql_postgres(self, d: Dialect) -> list[str]:
        t, archive, a = table_name(d, self.table), self._archive(d), d.quote(_ALIAS)
        sets, match = self._set_and_match(d, a)
        body = (f"BEGIN LOOP "
                f"WITH {a} AS (DELETE FROM {archive} WHERE ctid = ANY (ARRAY("
                f"SELECT ctid FROM {archive} LIMIT {UNFILL_BATCH_ROWS})) RETURNING *) "
                f"UPDATE {t} SET {sets} FROM {a} WHERE {match}; "
                f"EXIT WHEN NOT EXISTS (SELECT FROM {archive}); COMMIT; END LOOP; END")
        return [f"DO {dollar_quoted(body)}", f"DROP TABLE {archive}"]

    def sql_sqlite(self, d: Dialect) -> list[str]:
        t, archive, a = table_name(d, self.table), self._archive(d), d.quote(_ALIAS)
        sets, match = self._set_and_match(d, a)
        return [f"UPDATE {t} SET {sets} FROM {archive} AS {a} WHERE {match}",
                f"DROP TABLE {archive}"]

    def sql_mysql(self, d: Dialect) -> list[str]:
        # No loop outside a routine (MySQL), no UPDATE ... FROM: one multi-table UPDATE
        # by the table's key, as a dropped column's refill (changes/refill_column.py).
        t, archive, a = table_name(d, self.table), self._archive(d), d.quote(_ALIAS)
        own = d.quote(self.table.name)
        match = " AND ".join(f"{own}.{d.quote(k)} = {a}.{d.quote(k)}" for k in self.key)
        col = d.quote(self.column)
        return [f"UPDATE {t} AS {own} JOIN {archive} AS {a} ON {match} "
                f"SET {own}.{col} = {a}.{col}", f"DROP TABLE {archive}"]

    def transactional(self, d: Dialect) -> bool:
        # PostgreSQL: each batch commits (COMMIT inside the DO block needs no outer
        # transaction); what is done is gone from the archive, so a re-run goes on.
        # Elsewhere: one UPDATE (MySQL's DROP TABLE commits by itself anyway).
        return not self._batched(d)

    def _batched(self, d: Dialect) -> bool:
        """Whether the undo runs in committed batches: a DO block's loop, PostgreSQL's."""
        return self.for_dialect("sql", d) == self.sql_postgres

    def condition(self, d: Dialect) -> Condition:
        return Condition(d.archive_missing_sql(fill_archive_name(self.table, self.column)))

    def inverse(self) -> list[Change]:
        return []  # (the fill's own redo is the plan again)

    def lock(self, d: Dialect) -> Lock:
        return Lock("ROW EXCLUSIVE", False, False, scans_table=False)

    def assess(self, d: Dialect) -> Assessment:
        batches = (f"in batches of {UNFILL_BATCH_ROWS:,} rows, each committed by itself"
                   if self._batched(d) else "in one statement")
        return Assessment(Safety.SAFE, (
            f"Updates the rows the fill changed (by key, {batches}); skipped where the "
            "archive does not exist.",))

    def table_key(self) -> tuple[str, str]:
        return (self.table.schema_ or "", self.table.name)
