"""ALTER EVENT TRIGGER ... ENABLE / DISABLE / ENABLE REPLICA / ENABLE ALWAYS.

Disabling runs first in the plan and enabling last, as creating and dropping do (see
create_event_trigger).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import EventTrigger
from .base import NO_LOCK, Assessment, Change, Lock, Safety, register
from .create_event_trigger import _WORDS, FIRST, LAST, enable_sql, trigger_label

if TYPE_CHECKING:
    from ..dialects.base import Dialect


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class AlterEventTrigger(Change):
    kind = "alter_event_trigger"
    before: EventTrigger
    after: EventTrigger

    @property  # type: ignore[override]
    def order(self) -> int:
        return FIRST if self.after.enabled == "D" else LAST

    def describe(self) -> str:
        return f"Set {trigger_label(self.after)} {_WORDS[self.after.enabled]}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        return [enable_sql(d, self.after)]

    def inverse(self) -> list[Change]:
        return [AlterEventTrigger(self.after, self.before)]

    def lock(self, d: Dialect) -> Lock:
        return NO_LOCK

    def assess(self, d: Dialect) -> Assessment:
        if self.after.enabled == "D":
            return Assessment(Safety.REVIEW, (
                f"Disabling {trigger_label(self.after)}: what it enforces or records on DDL "
                "stops.",))
        return Assessment(Safety.SAFE)
