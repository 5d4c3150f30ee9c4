"""ALTER TABLE ... VALIDATE CONSTRAINT: check existing rows of a NOT VALID constraint.

Takes SHARE UPDATE EXCLUSIVE: reads and writes go on while it scans. Runs alone, never in
the transaction that added the constraint (that one holds ACCESS EXCLUSIVE).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..model import Table, qualified
from .base import Assessment, Change, Lock, Order, Safety, register
from .render import table_name

if TYPE_CHECKING:
    from ..dialects.base import Dialect


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class ValidateConstraint(Change):
    kind = "validate_constraint"
    order = Order.ADD_FOREIGN_KEY + 5
    table: Table
    name: str
    # The helper CHECK of a lock-safe SET NOT NULL, added NOT VALID by the step before:
    # if validating fails, it is dropped again rather than left enforcing on live writes.
    temporary: bool = False
    # What undoing the validation takes, when not nothing: a constraint that was NOT
    # VALID before the plan is made NOT VALID again (InvalidateConstraint); the new
    # constraint of a swap (SwapConstraint) validates the old one it brings back.
    undo: list[Change] = field(default_factory=list)

    def cleanup_sql(self, d: Dialect) -> list[str]:
        if not self.temporary:
            return []
        return [f"ALTER TABLE {table_name(d, self.table)} DROP CONSTRAINT IF EXISTS "
                f"{d.quote(self.name)}"]

    def cleanup_reverts_previous(self) -> bool:
        return self.temporary

    def describe(self) -> str:
        return (f"Validate constraint {self.name} on "
                f"{qualified(self.table.schema_, self.table.name)}")

    def sql_postgres(self, d: Dialect) -> list[str]:
        return [f"ALTER TABLE {table_name(d, self.table)} VALIDATE CONSTRAINT "
                f"{d.quote(self.name)}"]

    def transactional(self, d: Dialect) -> bool:
        return False  # its own short transaction, apart from the ADD ... NOT VALID

    def inverse(self) -> list[Change]:
        # (added by this plan: its add's undo drops it, valid or not)
        return list(self.undo)

    def rollback_note(self) -> str | None:
        notes = [n for u in self.undo if (n := u.rollback_note())]
        return "; ".join(notes) or None

    def lock(self, d: Dialect) -> Lock:
        return Lock("SHARE UPDATE EXCLUSIVE", False, False, scans_table=True)

    def assess(self, d: Dialect) -> Assessment:
        return Assessment(Safety.SAFE, (
            f"Scans {qualified(self.table.schema_, self.table.name)} without blocking reads "
            "or writes; fails (changing nothing) if a row violates the constraint.",))

    def table_key(self) -> tuple[str, str]:
        return (self.table.schema_ or "", self.table.name)
