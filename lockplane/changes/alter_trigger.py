"""ALTER TABLE ... ENABLE / DISABLE / ENABLE REPLICA / ENABLE ALWAYS TRIGGER."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Trigger, qualified
from .base import SHARE_ROW_EXCLUSIVE, Assessment, Change, Lock, Order, Safety, register

if TYPE_CHECKING:
    from ..dialects.base import Dialect

_WORDS = {"O": "enabled", "D": "disabled", "R": "enabled on replicas only",
          "A": "always enabled"}


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class AlterTrigger(Change):
    kind = "alter_trigger"
    order = Order.CREATE_TRIGGER
    schema: str
    table: str
    before: Trigger
    after: Trigger

    def describe(self) -> str:
        return (f"Set trigger {self.after.name} on {qualified(self.schema, self.table)} "
                f"{_WORDS[self.after.enabled]}")

    def sql_postgres(self, d: Dialect) -> list[str]:
        from .create_trigger import enable_sql

        return [enable_sql(d, self.schema, self.table, self.after)]

    def inverse(self) -> list[Change]:
        return [AlterTrigger(self.schema, self.table, self.after, self.before)]

    def lock(self, d: Dialect) -> Lock:
        return SHARE_ROW_EXCLUSIVE

    def assess(self, d: Dialect) -> Assessment:
        if self.after.enabled == "D":
            return Assessment(Safety.REVIEW, (
                f"Disabling trigger {self.after.name}: what it does on writes stops.",))
        return Assessment(Safety.SAFE)

    def table_key(self) -> tuple[str, str]:
        return (self.schema, self.table)
