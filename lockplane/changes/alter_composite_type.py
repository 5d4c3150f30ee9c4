"""ALTER TYPE ... ADD / DROP / ALTER ATTRIBUTE of a composite type.

Attribute order is part of the type. ADD ATTRIBUTE only appends, so when the desired
order cannot be reached that way the step drops and recreates the type instead (which
fails while a column uses it; the assessment says so).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import CompositeType, qualified
from .base import ACCESS_EXCLUSIVE, NO_LOCK, Assessment, Change, Lock, Order, Safety, register

if TYPE_CHECKING:
    from ..dialects.base import Dialect
    from ..model import ObjectKey


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class AlterCompositeType(Change):
    kind = "alter_composite_type"
    order = Order.ALTER_TYPE
    before: CompositeType
    after: CompositeType

    def _names(self) -> tuple[list[str], list[str]]:
        return [x.name for x in self.before.attributes], [x.name for x in self.after.attributes]

    def recreate(self) -> bool:
        """Whether drop/add/alter in place cannot reach the desired attribute order."""
        old, new = self._names()
        kept_old = [n for n in old if n in new]
        kept_new = [n for n in new if n in old]
        if kept_old != kept_new:
            return True
        # Added attributes must all come after the last kept one.
        last_kept = max((new.index(n) for n in kept_new), default=-1)
        return any(new.index(n) < last_kept for n in new if n not in old)

    def _plan(self) -> tuple[list[str], list[str], list[str]]:
        old, new = self._names()
        b = {x.name: x for x in self.before.attributes}
        altered = [x.name for x in self.after.attributes
                   if x.name in b and (b[x.name].type, b[x.name].collation)
                   != (x.type, x.collation)]
        return ([n for n in old if n not in new], [n for n in new if n not in old], altered)

    def objects_created(self) -> tuple[ObjectKey, ...]:
        from .base import object_key

        return (object_key("type", self.after.schema_, self.after.name),)

    def objects_dropped(self) -> tuple[ObjectKey, ...]:
        # The type's row changes under what builds or reads it (a function's
        # ROW(...)::type, a view): those are dropped before and made again after
        # (plan.recreate_dependents), so that the rollback, run in reverse, finds the
        # type as they knew it. (Recreated for an attribute order: it is dropped.)
        from .base import object_key

        return (object_key("type", self.before.schema_, self.before.name),)

    def describe(self) -> str:
        name = qualified(self.after.schema_, self.after.name)
        if self.recreate():
            return f"Recreate composite type {name} (attribute order)"
        dropped, added, altered = self._plan()
        what = ([f"drop {n}" for n in dropped] + [f"add {n}" for n in added]
                + [f"alter {n}" for n in altered])
        return f"Alter composite type {name} ({', '.join(what)})"

    def sql_postgres(self, d: Dialect) -> list[str]:
        from .create_composite_type import attribute_def, create_composite_sql

        a = self.after
        q = d.qname(a.schema_, a.name)
        if self.recreate():
            return [f"DROP TYPE {q}", *create_composite_sql(d, a)]
        dropped, added, altered = self._plan()
        attrs = {x.name: x for x in a.attributes}
        actions = [f"DROP ATTRIBUTE {d.quote(n)}" for n in dropped]
        for n in altered:
            x = attrs[n]
            collate = f" COLLATE {x.collation}" if x.collation else ""
            actions.append(f"ALTER ATTRIBUTE {d.quote(n)} TYPE {x.type}{collate}")
        actions += [f"ADD ATTRIBUTE {attribute_def(d, attrs[n])}" for n in added]
        return [f"ALTER TYPE {q} " + ", ".join(actions)] if actions else []

    def inverse(self) -> list[Change]:
        return [AlterCompositeType(self.after, self.before)]

    def rollback_note(self) -> str | None:
        dropped, _, _ = self._plan()
        if dropped and not self.recreate():
            return ("re-adds the dropped attributes at the end: the type is recreated to "
                    "restore their order, which fails while a column uses it; their values "
                    "are not restored")
        return None

    def lock(self, d: Dialect) -> Lock:
        return ACCESS_EXCLUSIVE if self.recreate() else NO_LOCK

    def assess(self, d: Dialect) -> Assessment:
        name = qualified(self.after.schema_, self.after.name)
        if self.recreate():
            return Assessment(Safety.DANGEROUS, (
                f"Composite type {name} cannot reach this attribute order in place: it is "
                "dropped and recreated, which fails while any column or function uses it.",
                "Safer: only append attributes.",
            ))
        dropped, _, altered = self._plan()
        if dropped:
            return Assessment(Safety.DANGEROUS, (
                f"Dropping attributes {', '.join(dropped)} of {name} deletes those values "
                "from every column of this type.",))
        if altered:
            return Assessment(Safety.REVIEW, (
                f"Changing attribute types of {name} fails while a column uses the type.",))
        return Assessment(Safety.SAFE)
