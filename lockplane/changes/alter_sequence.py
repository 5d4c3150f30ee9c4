"""ALTER SEQUENCE: options (type, increment, bounds, start, cache, cycle) and OWNED BY.

Taking ownership needs the owning column, so it runs late (``Order.ALTER_SEQUENCE``,
after tables are created). Giving ownership up runs early, before any table or column
drop: dropping the owner would otherwise drop the sequence with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Sequence, qualified
from .base import NO_LOCK, Assessment, Change, Lock, Order, Safety, register

if TYPE_CHECKING:
    from ..dialects.base import Dialect

_OPTIONS = ("data_type", "increment", "min_value", "max_value", "start", "cache", "cycle")
# Type and bounds go together: a narrower type with the old bounds would be refused.
_BOUNDS = {"data_type", "min_value", "max_value"}
_TYPE_RANGE = {"smallint": (-(2**15), 2**15 - 1), "integer": (-(2**31), 2**31 - 1),
               "bigint": (-(2**63), 2**63 - 1)}


def effective(seq: Sequence, option: str) -> object:
    """An option's value as the server stores it (a declared None means its default)."""
    value = getattr(seq, option)
    if value is not None or option not in ("min_value", "max_value"):
        return value
    lo, hi = _TYPE_RANGE.get(seq.data_type, _TYPE_RANGE["bigint"])
    if option == "min_value":
        return 1 if seq.increment > 0 else lo
    return hi if seq.increment > 0 else -1


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class AlterSequence(Change):
    kind = "alter_sequence"
    before: Sequence
    after: Sequence

    @property  # type: ignore[override]
    def order(self) -> int:
        if self.before.owned_by is not None and self.after.owned_by is None:
            return Order.ALTER_TABLE  # before DROP COLUMN / DROP TABLE of the old owner
        return Order.ALTER_SEQUENCE

    def option_fields(self) -> set[str]:
        changed = {f for f in _OPTIONS
                   if effective(self.before, f) != effective(self.after, f)}
        if changed & _BOUNDS:
            changed |= _BOUNDS
        return changed

    def describe(self) -> str:
        name = qualified(self.after.schema_, self.after.name)
        what = sorted(self.option_fields())
        if self.before.owned_by != self.after.owned_by:
            what.append(f"owned by {self.after.owned_by}" if self.after.owned_by
                        else "owned by none")
        return f"Alter sequence {name} ({', '.join(what)})"

    def sql_postgres(self, d: Dialect) -> list[str]:
        from .create_sequence import owned_by_sql, sequence_options_sql

        q = d.qname(self.after.schema_, self.after.name)
        out = []
        fields = self.option_fields()
        if fields:
            out.append(f"ALTER SEQUENCE {q} {sequence_options_sql(self.after, fields=fields)}")
        if self.before.owned_by != self.after.owned_by:
            out.append(f"ALTER SEQUENCE {q} {owned_by_sql(d, self.after)}")
        return out

    def inverse(self) -> list[Change]:
        return [AlterSequence(self.after, self.before)]

    def lock(self, d: Dialect) -> Lock:
        if self.option_fields():
            # Blocks nextval() on the sequence (not the tables) for the statement.
            return Lock("SHARE ROW EXCLUSIVE", False, True)
        return NO_LOCK

    def assess(self, d: Dialect) -> Assessment:
        b, a = self.before, self.after
        name = qualified(a.schema_, a.name)
        msgs: list[str] = []
        narrower = (b.data_type != a.data_type
                    or (a.max_value is not None and (b.max_value is None
                                                     or a.max_value < b.max_value))
                    or (a.min_value is not None and (b.min_value is None
                                                     or a.min_value > b.min_value)))
        if narrower:
            msgs.append(f"Narrowing {name}'s type or bounds fails if its current value is "
                        "outside them, and makes nextval() fail sooner.")
            return Assessment(Safety.REVIEW, tuple(msgs))
        if b.owned_by is not None and a.owned_by is None:
            msgs.append(f"{name} no longer belongs to {b.owned_by}: dropping that column no "
                        "longer drops the sequence.")
        return Assessment(Safety.SAFE, tuple(msgs))
