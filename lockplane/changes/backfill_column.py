"""UPDATE ... SET column = expression: moving data between columns during a multi-phase
migration (rename, type change, NOT NULL with a default).

The step carries a ``backfill`` spec so the executor can run it in small committed
batches (resumable, paced) instead of one long UPDATE; its plain SQL is the one-statement
equivalent for review and for databases too small to care.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..model import Table, qualified
from .base import Assessment, Change, Finding, Lock, Order, Safety, register

if TYPE_CHECKING:
    from ..dialects.base import Dialect


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class BackfillColumn(Change):
    kind = "backfill_column"
    # After everything else in its phase: the sync trigger must exist before copying, or
    # rows written in between would be missed.
    order = Order.CREATE_POLICY + 5
    table: Table
    column: str
    expression: str  # SQL over the row's columns, e.g. "old_name" or "CAST(price AS bigint)"
    # What the column held before (for the inverse): None means "NULL out what we wrote".
    undo_expression: str | None = None
    # Only rows where the column IS NULL (filling a new column: rows written since its
    # default was set keep the value they got).
    only_null: bool = False
    # Declared by the desired schema (``-- lockplane:fill-with``, lockplane.fill): the
    # expression is the schema author's, run on every existing row; a reviewer reads it.
    declared: bool = False
    # What its rollback (which writes nothing back) leaves behind, for the reader.
    undo_note: str | None = None
    # Only the rows where this holds (a declared fill: the rows a new CHECK or UNIQUE
    # would refuse); SQL the plan made from the schema, like ``expression``.
    where: str | None = None
    # The column is made NOT NULL after it (a declared fill): the backfill engine's
    # read-only check refuses an expression that gives a row NULL, before any write.
    fills_not_null: bool = False
    # The type the column's values are compared as (alter_column.compare_type: a domain's
    # base type), for the rows it skips, which already hold their value.
    compare_as: str | None = None

    def describe(self) -> str:
        return (f"Backfill {qualified(self.table.schema_, self.table.name)}.{self.column} "
                f"= {self.expression} (in batches)")

    def _where(self, d: Dialect) -> str:
        col = d.quote(self.column)
        if self.where is not None:
            return self.where
        if self.only_null:
            return f"{col} IS NULL"
        return d.distinct_sql(col, f"({self.expression})", self.compare_as)

    def _sql(self, d: Dialect) -> list[str]:
        col = d.quote(self.column)
        return [f"UPDATE {d.qname(self.table.schema_, self.table.name)} SET {col} = "
                f"{self.expression} WHERE {self._where(d)}"]

    def sql_postgres(self, d: Dialect) -> list[str]:
        return self._sql(d)

    def sql_sqlite(self, d: Dialect) -> list[str]:
        return self._sql(d)

    def sql_mysql(self, d: Dialect) -> list[str]:
        return self._sql(d)

    def backfill_spec(self, d: Dialect) -> dict[str, Any] | None:
        """What the batched backfill runs (lockplane/execute.py): the WHERE quoted as
        ``d`` quotes names, like the step's SQL. None where ``d`` cannot walk the table's
        rows in batches (the step's UPDATE then runs as it is)."""
        if not d.walks_rows_of(self.table):
            return None
        spec = {"schema": self.table.schema_, "table": self.table.name,
                "column": self.column, "expression": self.expression}
        if self.only_null or self.where is not None:
            spec["where"] = self._where(d)
        if self.fills_not_null:
            spec["not_null"] = True
        return spec

    def transactional(self, d: Dialect) -> bool:
        return False  # batches commit one by one

    def inverse(self) -> list[Change]:
        if self.undo_expression is None:
            return []  # the column is dropped by the inverse of the step that added it
        return [BackfillColumn(self.table, self.column, self.undo_expression,
                               compare_as=self.compare_as)]

    def lock(self, d: Dialect) -> Lock:
        # Row locks only, batch by batch: reads go on, writes to other rows go on.
        return Lock("ROW EXCLUSIVE", False, False, scans_table=True)

    def rollback_note(self) -> str | None:
        return self.undo_note

    def assess(self, d: Dialect) -> Assessment:
        if self.declared:
            where = f"{qualified(self.table.schema_, self.table.name)}.{self.column}"
            rows = f"where {self.where}" if self.where is not None else "that is NULL"
            return Assessment.of(Finding("fill-with", (
                f"Every existing row of {where} {rows} gets {self.expression} "
                "(the desired schema's fill-with), in small committed batches that resume "
                "after a crash.")))
        return Assessment(Safety.SAFE, (
            "Runs in small committed batches; resumes where it stopped after a crash.",))

    def table_key(self) -> tuple[str, str]:
        return (self.table.schema_ or "", self.table.name)
