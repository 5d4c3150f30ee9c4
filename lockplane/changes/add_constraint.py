"""ALTER TABLE ... ADD CONSTRAINT for primary keys, UNIQUE, CHECK and EXCLUDE.

(Foreign keys have their own module: they lock two tables and order after every table.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import (
    CheckConstraint,
    ExclusionConstraint,
    PrimaryKey,
    Table,
    UniqueConstraint,
    qualified,
)
from .base import ACCESS_EXCLUSIVE, Assessment, Change, Lock, Order, Safety, register
from .render import check_def, exclusion_def, primary_key_def, table_name, unique_def

if TYPE_CHECKING:
    from ..dialects.base import Dialect

TableConstraint = PrimaryKey | UniqueConstraint | CheckConstraint | ExclusionConstraint


def constraint_label(c: TableConstraint) -> str:
    kind = {PrimaryKey: "primary key", UniqueConstraint: "unique constraint",
            CheckConstraint: "check constraint",
            ExclusionConstraint: "exclusion constraint"}[type(c)]
    return f"{kind} {c.name}" if c.name else kind


def constraint_def(d: Dialect, c: TableConstraint) -> str:
    if isinstance(c, PrimaryKey):
        return primary_key_def(d, c)
    if isinstance(c, UniqueConstraint):
        return unique_def(d, c)
    if isinstance(c, CheckConstraint):
        return check_def(d, c)
    return exclusion_def(d, c)


@register
@dataclass
class AddConstraint(Change):
    kind = "add_constraint"
    order = Order.ADD_CONSTRAINT
    table: Table
    constraint: TableConstraint
    # CHECK only: add without checking existing rows (instant); validate_constraint
    # checks them later without blocking writes.
    not_valid: bool = False

    def describe(self) -> str:
        suffix = " (NOT VALID: existing rows checked later)" if self.not_valid else ""
        return (f"Add {constraint_label(self.constraint)} on "
                f"{qualified(self.table.schema_, self.table.name)}{suffix}")

    def sql_postgres(self, d: Dialect) -> list[str]:
        nv = " NOT VALID" if self.not_valid and isinstance(self.constraint, CheckConstraint) \
            else ""
        out = [f"ALTER TABLE {table_name(d, self.table)} "
               f"ADD {constraint_def(d, self.constraint)}{nv}"]
        comment = getattr(self.constraint, "comment", None)
        if comment and self.constraint.name:
            from .set_comment import SetComment

            out += SetComment("CONSTRAINT", (self.constraint.name,), None, comment,
                              on_table=(self.table.schema_ or "", self.table.name)
                              ).sql_postgres(d)
        return out

    def inverse(self) -> list[Change]:
        from .drop_constraint import DropConstraint

        return [DropConstraint(self.table, self.constraint)]

    def lock(self, d: Dialect) -> Lock:
        if self.not_valid:
            return Lock(ACCESS_EXCLUSIVE.mode, True, True)  # brief: no row is read
        # Every kind validates existing rows: CHECK scans, the others build an index.
        return Lock(ACCESS_EXCLUSIVE.mode, True, True, rewrites_table=False, scans_table=True)

    def assess(self, d: Dialect) -> Assessment:
        label = constraint_label(self.constraint)
        name = qualified(self.table.schema_, self.table.name)
        if self.not_valid:
            return Assessment(Safety.SAFE, (f"{label} applies to new writes at once; "
                                            "existing rows are validated separately.",))
        return Assessment(Safety.REVIEW, (
            f"Adding {label} checks every existing row of {name} under an ACCESS EXCLUSIVE "
            "lock and fails if any row violates it.",
        ))

    def table_key(self) -> tuple[str, str]:
        return (self.table.schema_ or "", self.table.name)
