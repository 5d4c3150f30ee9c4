"""A validated CHECK or foreign key made NOT VALID: the desired schema declares it NOT
VALID while the database has it validated (a schema dumped while a lock-safe add was
under way, or written so on purpose).

PostgreSQL has no ALTER for it, so the constraint is dropped and added back NOT VALID in
one ALTER TABLE statement: atomic, so new writes are checked at every moment, and brief
(NOT VALID reads no row). What changes is that the database no longer vouches for the
existing rows: the planner stops using the constraint (constraint exclusion, foreign-key
join estimates) and SET NOT NULL / ATTACH PARTITION no longer skip their scans thanks to
it. That is a downgrade someone should see, so the step is for review.

Its undo is VALIDATE CONSTRAINT (which blocks no writes). The step is transactional, so
it commits with the plan's progress record (a crashed apply resumes exactly); its undo
runs as a forward VALIDATE does, alone and outside a transaction, so the undo steps next
to it do not keep their locks while it scans.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import CheckConstraint, ForeignKey, Table, qualified
from .base import ACCESS_EXCLUSIVE, Assessment, Change, Finding, Lock, Order, register
from .render import check_def, foreign_key_def, table_name

if TYPE_CHECKING:
    from ..dialects.base import Dialect


def label(c: ForeignKey | CheckConstraint) -> str:
    kind = "foreign key" if isinstance(c, ForeignKey) else "check constraint"
    return f"{kind} {c.name}"


def definition(d: Dialect, c: ForeignKey | CheckConstraint) -> str:
    return foreign_key_def(d, c) if isinstance(c, ForeignKey) else check_def(d, c)


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class InvalidateConstraint(Change):
    kind = "invalidate_constraint"
    order = Order.ADD_FOREIGN_KEY + 5  # with the validations
    table: Table
    constraint: ForeignKey | CheckConstraint  # as it is, valid (the wanted one: NOT VALID)

    def describe(self) -> str:
        return (f"Mark {label(self.constraint)} on "
                f"{qualified(self.table.schema_, self.table.name)} NOT VALID (dropped and "
                "added back NOT VALID in one statement)")

    def sql_postgres(self, d: Dialect) -> list[str]:
        c = self.constraint
        assert c.name
        out = [f"ALTER TABLE {table_name(d, self.table)} DROP CONSTRAINT {d.quote(c.name)}, "
               f"ADD {definition(d, c)} NOT VALID"]
        if c.comment:  # (dropped with the constraint)
            from .set_comment import SetComment

            out += SetComment("CONSTRAINT", (c.name,), None, c.comment,
                              on_table=(self.table.schema_ or "", self.table.name)
                              ).sql_postgres(d)
        return out

    def inverse(self) -> list[Change]:
        from .validate_constraint import ValidateConstraint

        assert self.constraint.name
        return [ValidateConstraint(self.table, self.constraint.name)]

    def rollback_note(self) -> str:
        return ("validating again scans the table without blocking writes; it cannot fail, "
                "since new writes were checked all along")

    def lock(self, d: Dialect) -> Lock:
        # Brief: NOT VALID reads no row. (A foreign key's drop also takes ACCESS EXCLUSIVE
        # on the referenced table.)
        return ACCESS_EXCLUSIVE

    def assess(self, d: Dialect) -> Assessment:
        name = qualified(self.table.schema_, self.table.name)
        return Assessment.of(Finding("drop-constraint", (
            f"{label(self.constraint)} on {name} is wanted NOT VALID: it stays enforced on "
            "new writes at every moment (dropped and added back in one statement), but the "
            "database stops vouching for existing rows, so the planner and SET NOT NULL / "
            "ATTACH PARTITION stop relying on it. Validate it again to undo.")))

    def table_key(self) -> tuple[str, str]:
        return (self.table.schema_ or "", self.table.name)
