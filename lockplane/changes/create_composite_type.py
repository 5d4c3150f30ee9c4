"""CREATE TYPE ... AS (attributes): a standalone composite type.

Also the composite-type differ (changes go through ``alter_composite_type``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import CompositeAttribute, CompositeType, Schema, qualified
from .base import NO_LOCK, OBJECT_DIFFERS, Assessment, Change, Lock, Order, Safety, register
from .pg_common import comment_sql, type_ranks

if TYPE_CHECKING:
    from ..dialects.base import Dialect
    from ..model import ObjectKey


def attribute_def(d: Dialect, attr: CompositeAttribute) -> str:
    collate = f" COLLATE {attr.collation}" if attr.collation else ""
    return f"{d.quote(attr.name)} {attr.type}{collate}"


def create_composite_sql(d: Dialect, t: CompositeType) -> list[str]:
    attrs = ", ".join(attribute_def(d, a) for a in t.attributes)
    return ([f"CREATE TYPE {d.qname(t.schema_, t.name)} AS ({attrs})"]
            + comment_sql(d, "TYPE", (t.schema_ or "", t.name), t.comment))


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class CreateCompositeType(Change):
    kind = "create_composite_type"
    order = Order.CREATE_TYPE
    type: CompositeType

    def objects_created(self) -> tuple[ObjectKey, ...]:
        from .base import object_key

        return (object_key("type", self.type.schema_, self.type.name),)

    def describe(self) -> str:
        return f"Create composite type {qualified(self.type.schema_, self.type.name)}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        return create_composite_sql(d, self.type)

    def inverse(self) -> list[Change]:
        from .drop_composite_type import DropCompositeType

        return [DropCompositeType(self.type)]

    def lock(self, d: Dialect) -> Lock:
        return NO_LOCK

    def assess(self, d: Dialect) -> Assessment:
        return Assessment(Safety.SAFE)


def _key(t: CompositeType) -> tuple[str, str]:
    return (t.schema_ or "", t.name)


def diff_composite_types(before: Schema, after: Schema, d: Dialect) -> list[Change]:
    if not CreateCompositeType.speaks(d):
        return []
    from .alter_composite_type import AlterCompositeType
    from .drop_composite_type import DropCompositeType
    from .set_comment import SetComment

    old = {_key(t): t for t in before.composite_types}
    new = {_key(t): t for t in after.composite_types}
    # Types that use other types come after them (and are dropped before them).
    new_ranks, old_ranks = type_ranks(after), type_ranks(before)
    out: list[Change] = []
    for key, a in new.items():
        b = old.get(key)
        if b is None:
            out.append(CreateCompositeType(a, rank=new_ranks[key]))
            continue
        alter = AlterCompositeType(b, a)
        if b.attributes != a.attributes:
            out.append(alter)
        if not (b.attributes != a.attributes and alter.recreate()) and a.comment != b.comment:
            out.append(SetComment("TYPE", key, b.comment, a.comment))
    out += [DropCompositeType(t, rank=-old_ranks[key])
            for key, t in old.items() if key not in new]
    return out


OBJECT_DIFFERS.append(diff_composite_types)
