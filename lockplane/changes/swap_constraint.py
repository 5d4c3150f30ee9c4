"""A CHECK or foreign key replaced by a different one of the same name, without a moment
where neither is enforced (the lock-safe form, lockplane.plan._replace_without_gap):

1. the new one is added NOT VALID under a temporary name (``pg_common.temp_name``): new
   writes must satisfy it at once; a brief lock, no row read;
2. it is validated (VALIDATE CONSTRAINT, blocking no writes); if that fails the clean-up
   drops it and the old one was never touched;
3. this step: in one short transaction, the old one is dropped and the new one takes its
   name.

Between 1 and 3 a write must satisfy both, old and new. The undo mirrors it: the new one
goes back to the temporary name and the old one is added back NOT VALID (one
transaction), the old one is validated (ValidateConstraint.undo), the new one is dropped.
PostgreSQL only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import CheckConstraint, ForeignKey, Table, qualified
from .base import ACCESS_EXCLUSIVE, Assessment, Change, Finding, Lock, Order, register
from .invalidate_constraint import label
from .render import table_name

if TYPE_CHECKING:
    from ..dialects.base import Dialect


def add_change(table: Table, c: ForeignKey | CheckConstraint, *, not_valid: bool,
               rank: int = 0) -> Change:
    """Adding ``c`` (NOT VALID when ``not_valid`` or ``c`` is)."""
    if isinstance(c, ForeignKey):
        from .add_foreign_key import AddForeignKey

        return AddForeignKey(table, c, not_valid=not_valid, rank=rank)
    from .add_constraint import AddConstraint

    return AddConstraint(table, c, not_valid=not_valid, rank=rank)


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class SwapConstraint(Change):
    kind = "swap_constraint"
    order = Order.ADD_FOREIGN_KEY
    table: Table
    old: ForeignKey | CheckConstraint  # as it is now, under its name
    new: ForeignKey | CheckConstraint  # added (and validated) under ``temp`` before
    temp: str
    # The step before (ValidateConstraint of ``temp``) validates ``old`` when undone; so
    # this step's undo adds ``old`` back NOT VALID. False when ``new`` is wanted NOT VALID
    # (no validation step): the undo then adds a valid ``old`` back itself, scanning.
    old_validated_by_undo: bool = True

    def describe(self) -> str:
        return (f"Swap in the new {label(self.new)} on "
                f"{qualified(self.table.schema_, self.table.name)}: drop the old one, "
                f"rename {self.temp} to {self.new.name}")

    def sql_postgres(self, d: Dialect) -> list[str]:
        t = table_name(d, self.table)
        assert self.old.name and self.new.name
        return [f"ALTER TABLE {t} DROP CONSTRAINT {d.quote(self.old.name)}",
                f"ALTER TABLE {t} RENAME CONSTRAINT {d.quote(self.temp)} TO "
                f"{d.quote(self.new.name)}"]

    def inverse(self) -> list[Change]:
        from .rename_constraint import RenameConstraint

        assert self.new.name
        return [RenameConstraint(self.table, self.new.name, self.temp),
                add_change(self.table, self.old, not_valid=self.old_validated_by_undo)]

    def rollback_note(self) -> str:
        return (f"the old {label(self.old)} comes back NOT VALID next to the new one, is "
                "validated, then the new one is dropped: validating fails if rows written "
                "since violate the old rule")

    def lock(self, d: Dialect) -> Lock:
        # Brief, catalog only. (A foreign key's drop also takes ACCESS EXCLUSIVE on the
        # referenced table.)
        return ACCESS_EXCLUSIVE

    def assess(self, d: Dialect) -> Assessment:
        name = qualified(self.table.schema_, self.table.name)
        return Assessment.of(Finding("drop-constraint", (
            f"The old {label(self.old)} on {name} gives way to the new one, already "
            "enforced and validated: the rule is enforced at every moment, but from here "
            "on writes follow the new definition (its action, columns, expression); code "
            "may rely on the old one.")))

    def table_key(self) -> tuple[str, str]:
        return (self.table.schema_ or "", self.table.name)
