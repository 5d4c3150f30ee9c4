"""CREATE EVENT TRIGGER (database-wide DDL hooks; needs a superuser), with its comment.

Also the event trigger differ. An event trigger's event, tags or function cannot be
altered: it is dropped and created again. Only its enabled state (ALTER EVENT TRIGGER
ENABLE / DISABLE) and comment change in place.

Order: event triggers are created (and enabled) after every other step and dropped
(and disabled) before any, so that one never fires on the plan's own DDL (it could
refuse it, or log a migration as if it were an incident); that also puts the function
it calls before it and its drop after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import BadInput
from ..model import EventTrigger, Schema
from .base import NO_LOCK, OBJECT_DIFFERS, Assessment, Change, Lock, Order, Safety, register
from .pg_common import comment_sql, split_identifiers

if TYPE_CHECKING:
    from ..dialects.base import Dialect

FIRST = Order.DROP_POLICY - 10
LAST = Order.GRANT + 10

_ENABLE = {"O": "ENABLE", "D": "DISABLE", "R": "ENABLE REPLICA", "A": "ENABLE ALWAYS"}
_WORDS = {"O": "enabled", "D": "disabled", "R": "enabled on replicas only",
          "A": "always enabled"}


def function_sql(d: Dialect, t: EventTrigger) -> str:
    parts = split_identifiers(t.function)
    if not parts or len(parts) > 2:
        raise BadInput(f"event trigger {t.name!r}: function {t.function!r} is not a name")
    return d.qname(parts[0], parts[1]) if len(parts) == 2 else d.qname("public", parts[0])


def enable_sql(d: Dialect, t: EventTrigger) -> str:
    return f"ALTER EVENT TRIGGER {d.quote(t.name)} {_ENABLE[t.enabled]}"


def create_event_trigger_sql(d: Dialect, t: EventTrigger) -> list[str]:
    # The event is a model literal; tags are quoted as string literals.
    stmt = f"CREATE EVENT TRIGGER {d.quote(t.name)} ON {t.event}"
    if t.tags:
        stmt += " WHEN TAG IN (" + ", ".join(d.literal(tag) for tag in t.tags) + ")"
    stmt += f" EXECUTE FUNCTION {function_sql(d, t)}()"
    out = [stmt]
    if t.enabled != "O":
        out.append(enable_sql(d, t))
    return out + comment_sql(d, "EVENT TRIGGER", (t.name,), t.comment)


def trigger_label(t: EventTrigger) -> str:
    return f"event trigger {t.name}"


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class CreateEventTrigger(Change):
    kind = "create_event_trigger"
    order = LAST
    trigger: EventTrigger

    def describe(self) -> str:
        return f"Create {trigger_label(self.trigger)} on {self.trigger.event}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        return create_event_trigger_sql(d, self.trigger)

    def inverse(self) -> list[Change]:
        from .drop_event_trigger import DropEventTrigger

        return [DropEventTrigger(self.trigger)]

    def lock(self, d: Dialect) -> Lock:
        return NO_LOCK

    def assess(self, d: Dialect) -> Assessment:
        return Assessment(Safety.SAFE, (
            "Creating an event trigger needs a superuser; it runs on every matching DDL "
            "statement in this database from then on (later migrations included).",))


def _definition(t: EventTrigger) -> tuple[str, list[str], str]:
    return (t.event, t.tags, t.function)


def diff_event_triggers(before: Schema, after: Schema, d: Dialect) -> list[Change]:
    if not CreateEventTrigger.speaks(d) or not (before.event_triggers or after.event_triggers):
        return []
    from .alter_event_trigger import AlterEventTrigger
    from .drop_event_trigger import DropEventTrigger
    from .set_comment import SetComment

    old = {t.name: t for t in before.event_triggers}
    new = {t.name: t for t in after.event_triggers}
    out: list[Change] = []
    for name, a in new.items():
        b = old.get(name)
        if b is None:
            out.append(CreateEventTrigger(a))
        elif _definition(b) != _definition(a):
            # Dropped first, created last: it may call a function the plan replaces.
            out += [DropEventTrigger(b, replaced=True), CreateEventTrigger(a)]
        else:
            if b.enabled != a.enabled:
                out.append(AlterEventTrigger(b, a))
            if b.comment != a.comment:
                out.append(SetComment("EVENT TRIGGER", (name,), b.comment, a.comment))
    out += [DropEventTrigger(b) for name, b in old.items() if name not in new]
    return out


OBJECT_DIFFERS.append(diff_event_triggers)
