"""CREATE AGGREGATE from the statement introspection builds out of pg_aggregate.

Also the aggregate differ. A changed aggregate is dropped and created again in one step
(its support functions are created before it, dropped after it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Aggregate, Schema, qualified
from .base import NO_LOCK, OBJECT_DIFFERS, Assessment, Change, Lock, Order, Safety, register
from .pg_common import comment_sql

if TYPE_CHECKING:
    from ..dialects.base import Dialect


def aggregate_label(a: Aggregate) -> str:
    return f"aggregate {qualified(a.schema_, a.name)}({a.identity_arguments})"


def aggregate_ref(d: Dialect, a: Aggregate) -> str:
    return f"{d.qname(a.schema_, a.name)}({a.identity_arguments or '*'})"


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class CreateAggregate(Change):
    kind = "create_aggregate"
    order = Order.CREATE_FUNCTION + 2
    aggregate: Aggregate
    before: Aggregate | None = None  # set: drop this one first

    def describe(self) -> str:
        verb = "Create" if self.before is None else "Recreate"
        return f"{verb} {aggregate_label(self.aggregate)}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        a = self.aggregate
        out = []
        if self.before is not None:
            out.append(f"DROP AGGREGATE {aggregate_ref(d, self.before)}")
        return out + [a.definition.strip().rstrip(";")] + comment_sql(
            d, "AGGREGATE", (a.schema_ or "", a.name), a.comment,
            signature=a.identity_arguments or "*")

    def inverse(self) -> list[Change]:
        if self.before is not None:
            return [CreateAggregate(self.before, before=self.aggregate)]
        from .drop_aggregate import DropAggregate

        return [DropAggregate(self.aggregate)]

    def lock(self, d: Dialect) -> Lock:
        return NO_LOCK

    def assess(self, d: Dialect) -> Assessment:
        if self.before is None:
            return Assessment(Safety.SAFE)
        return Assessment(Safety.REVIEW, (
            f"{aggregate_label(self.aggregate)} is dropped and created again: the drop fails "
            "while a view uses it.",))


def _key(a: Aggregate) -> tuple[str, str, str]:
    return (a.schema_ or "", a.name, a.identity_arguments)


def diff_aggregates(before: Schema, after: Schema, d: Dialect) -> list[Change]:
    if not CreateAggregate.speaks(d) or not (before.aggregates or after.aggregates):
        return []
    from .drop_aggregate import DropAggregate
    from .set_comment import SetComment

    old = {_key(a): a for a in before.aggregates}
    new = {_key(a): a for a in after.aggregates}
    out: list[Change] = []
    for key, a in new.items():
        b = old.get(key)
        if b is None:
            out.append(CreateAggregate(a))
        elif b.definition != a.definition:
            out.append(CreateAggregate(a, before=b))
        elif b.comment != a.comment:
            out.append(SetComment("AGGREGATE", key[:2], b.comment, a.comment,
                                  signature=a.identity_arguments or "*"))
    out += [DropAggregate(b) for key, b in old.items() if key not in new]
    return out


OBJECT_DIFFERS.append(diff_aggregates)
