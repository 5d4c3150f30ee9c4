"""NOT NULL again where every row has a value: the last half of undoing a column drop.

A dropped NOT NULL column without a default comes back nullable (re-adding it NOT NULL
fails on any table with rows), is refilled from its archive (changes.refill_column),
and then gets its NOT NULL back by this step, which runs only when no row holds NULL
in it. Where some rows do (values that were never archived: a table without a primary
key, rows beyond the archive's bound, rows written since), it is skipped: the column
stays nullable, the rollback says which table and column and how many rows, and the
rollback does not fail for it.

PostgreSQL: without a long lock, as plans add NOT NULL: ``CHECK (col IS NOT NULL) NOT
VALID`` (brief lock), ``VALIDATE`` (scans, blocking no writes), ``SET NOT NULL`` (trusts
the validated check), drop the check; outside a transaction, its clean-up dropping the
check an interrupted attempt left. SQLite: the table rebuilt with the column NOT NULL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Column, Table, qualified
from .base import ACCESS_EXCLUSIVE, Assessment, Change, Condition, Lock, Order, Safety, register
from .render import table_name

if TYPE_CHECKING:
    from ..dialects.base import Dialect


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class EnforceNotNull(Change):
    kind = "enforce_not_null"
    order = Order.ALTER_COLUMN
    table: Table  # as it is before this step: the column nullable
    column: Column  # as it must end: NOT NULL

    def describe(self) -> str:
        return (f"Make {qualified(self.table.schema_, self.table.name)}.{self.column.name} "
                "NOT NULL again if every row has a value")

    def _check(self) -> str:
        from .alter_column import _temporary_check_name

        return _temporary_check_name(self.table, self.column.name)

    def sql_postgres(self, d: Dialect) -> list[str]:
        t, c, check = table_name(d, self.table), d.quote(self.column.name), d.quote(self._check())
        return [f"ALTER TABLE {t} ADD CONSTRAINT {check} CHECK ({c} IS NOT NULL) NOT VALID",
                f"ALTER TABLE {t} VALIDATE CONSTRAINT {check}",
                f"ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL",
                f"ALTER TABLE {t} DROP CONSTRAINT {check}"]

    def _strict(self) -> Table:
        strict = self.table.model_copy(deep=True)
        strict.columns = [self.column if c.name == self.column.name else c
                          for c in strict.columns]
        return strict

    def sql_sqlite(self, d: Dialect) -> list[str]:
        from .rebuild_table import RebuildTable

        return RebuildTable(self.table, self._strict()).sql_sqlite(d)

    def _alter(self) -> Change:
        """MODIFY COLUMN ... NOT NULL (MySQL: checks every row while the table is rebuilt
        in place; its ALGORITHM and LOCK decided as any AlterColumn's)."""
        from .alter_column import AlterColumn

        now = self.table.column(self.column.name) or self.column.model_copy(
            update={"nullable": True})
        return AlterColumn(self.table, now, self.column)

    def sql_mysql(self, d: Dialect) -> list[str]:
        return self._alter().sql(d)

    def lock_mysql(self, d: Dialect) -> Lock:
        return self._alter().lock(d)

    def mysql_alter(self, d: Dialect) -> object:
        return self._alter().mysql_alter(d)  # type: ignore[attr-defined]

    def transactional(self, d: Dialect) -> bool:
        # Where constraints can be validated apart (PostgreSQL), each statement commits
        # by itself, so the scan holds no strong lock; a rebuild is one transaction
        # (where DDL commits by itself, MySQL, none).
        return not d.has_not_valid_constraints and d.transactional_ddl

    def cleanup_sql(self, d: Dialect) -> list[str]:
        if not d.has_not_valid_constraints:
            return []
        return [f"ALTER TABLE {table_name(d, self.table)} DROP CONSTRAINT IF EXISTS "
                f"{d.quote(self._check())}"]

    def condition(self, d: Dialect) -> Condition:
        name = qualified(self.table.schema_, self.table.name)
        return Condition(
            f"SELECT count(*) FROM {table_name(d, self.table)} "
            f"WHERE {d.quote(self.column.name)} IS NULL",
            warning=(f"{name}.{self.column.name} stays nullable: {{n}} row(s) have no value "
                     "in it (written since the drop, or not archived); fill them, then make "
                     "it NOT NULL"),
            leaves_nullable=(self.table.schema_ or "", self.table.name, self.column.name))

    def inverse(self) -> list[Change]:
        return []  # undone with the column itself (dropping it again)

    def lock(self, d: Dialect) -> Lock:
        own = self.for_dialect("lock", d)
        if own is not None:
            return own(d)  # type: ignore[no-any-return]
        if d.has_not_valid_constraints:
            return Lock(ACCESS_EXCLUSIVE.mode, True, True, scans_table=True)
        from .rebuild_table import REBUILD_LOCK

        return REBUILD_LOCK

    def assess(self, d: Dialect) -> Assessment:
        how = ("holds ACCESS EXCLUSIVE only briefly: the scan (VALIDATE) blocks no reads "
               "or writes" if d.has_not_valid_constraints
               else "makes the column NOT NULL (its lock: this step's)"
               if self.for_dialect("lock", d) is not None
               else "rebuilds the table under the database write lock")
        return Assessment(Safety.SAFE, (
            f"Counts the rows without a value, then {how}; skipped, with a warning, when "
            "some have none.",))

    def table_key(self) -> tuple[str, str]:
        return (self.table.schema_ or "", self.table.name)
