"""DROP EVENT TRIGGER (first of all steps: see create_event_trigger)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import EventTrigger
from .base import NO_LOCK, Assessment, Change, Finding, Lock, Safety, register
from .create_event_trigger import FIRST, trigger_label

if TYPE_CHECKING:
    from ..dialects.base import Dialect


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class DropEventTrigger(Change):
    kind = "drop_event_trigger"
    order = FIRST
    trigger: EventTrigger
    # Created again at the end of the plan (its event, tags or function changed).
    replaced: bool = False

    def describe(self) -> str:
        tail = " (created again below)" if self.replaced else ""
        return f"Drop {trigger_label(self.trigger)}{tail}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        return [f"DROP EVENT TRIGGER {d.quote(self.trigger.name)}"]

    def inverse(self) -> list[Change]:
        from .create_event_trigger import CreateEventTrigger

        return [CreateEventTrigger(self.trigger)]

    def lock(self, d: Dialect) -> Lock:
        return NO_LOCK

    def assess(self, d: Dialect) -> Assessment:
        if self.replaced:
            return Assessment(Safety.REVIEW, (
                f"{trigger_label(self.trigger).capitalize()} is off while this plan runs: "
                "what it enforces or records on DDL does not happen for the plan's own "
                "steps.",))
        # Dangerous, not a review: a desired schema written before Lockplane modelled
        # event triggers leaves them out, and DDL guards or audit would go silently.
        return Assessment.of(Finding("drop-event-trigger", (
            f"Dropping {trigger_label(self.trigger)} (on {self.trigger.event}): what it "
            "enforces or records on DDL stops for every later statement in this database. "
            "If the desired schema just does not declare it, add it there instead.")))
