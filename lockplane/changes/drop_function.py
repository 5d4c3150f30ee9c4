"""DROP FUNCTION / PROCEDURE (RESTRICT: triggers and views using it go first)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Function
from .base import NO_LOCK, Assessment, Change, Lock, Order, Safety, register

if TYPE_CHECKING:
    from ..dialects.base import Dialect
    from ..model import ObjectKey


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class DropFunction(Change):
    kind = "drop_function"
    function: Function
    # Its signature names the row type of a table this plan drops: run before that.
    before_tables: bool = False
    # Created again later in the plan (plan.order_changes puts what depends on it in
    # between): before the creates, like a view that is recreated.
    recreated: bool = False
    # It reads a name a declared rename takes away: dropped before the renames, so that
    # its undo comes after theirs (lockplane.renames.readers_as_they_were).
    before_renames: bool = False

    @property  # type: ignore[override]
    def order(self) -> int:
        if self.before_renames:
            from ..renames import READER_DROP_ORDER

            return READER_DROP_ORDER
        if self.recreated:
            return Order.DROP_CONSTRAINT + 5
        return Order.DROP_TABLE - 5 if self.before_tables else Order.DROP_FUNCTION

    def objects_dropped(self) -> tuple[ObjectKey, ...]:
        from .create_function import function_key

        return (function_key(self.function),)

    def describe(self) -> str:
        from .create_function import routine_label

        again = " (created again below)" if self.recreated else ""
        return f"Drop {routine_label(self.function)}{again}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        from .create_function import drop_routine_sql

        return [drop_routine_sql(d, self.function)]

    def inverse(self) -> list[Change]:
        from .create_function import CreateFunction

        return [CreateFunction(self.function, after_tables=self.before_tables)]

    def lock(self, d: Dialect) -> Lock:
        return NO_LOCK

    def assess(self, d: Dialect) -> Assessment:
        from .create_function import routine_label

        if self.recreated:
            return Assessment(Safety.REVIEW, (
                f"{routine_label(self.function)} is dropped and created again in this plan "
                "(something it uses is dropped or changed in between): a call made between "
                "the two fails, unless both run in one transaction (consecutive "
                "transactional steps share one).",))
        return Assessment(Safety.REVIEW, (
            f"Dropping {routine_label(self.function)}: code calling it breaks; the drop "
            "fails while a view, trigger, default or index still uses it.",
            "Safer: deploy code that no longer calls it first.",
        ))
