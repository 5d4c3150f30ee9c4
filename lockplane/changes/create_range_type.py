"""CREATE TYPE ... AS RANGE (subtype = ...), with its comment.

Also the range type differ. A range type cannot be altered: a changed one is dropped and
created again (``drop_range_type`` first), which fails while a column, function or domain
still uses it, so the step is marked dangerous.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import RangeType, Schema, qualified
from .base import NO_LOCK, OBJECT_DIFFERS, Assessment, Change, Lock, Order, Safety, register
from .pg_common import comment_sql, type_ranks

if TYPE_CHECKING:
    from ..dialects.base import Dialect
    from ..model import ObjectKey


def uses_functions(r: RangeType) -> bool:
    """Whether a support function is a user's (regproc prints it schema-qualified)."""
    return any(f is not None and "." in f for f in (r.canonical, r.subtype_diff))


def range_sql(d: Dialect, r: RangeType) -> str:
    opts = [f"SUBTYPE = {r.subtype}"]
    if r.subtype_opclass:
        opts.append(f"SUBTYPE_OPCLASS = {r.subtype_opclass}")
    if r.collation:
        opts.append(f"COLLATION = {r.collation}")
    if r.canonical:
        opts.append(f"CANONICAL = {r.canonical}")
    if r.subtype_diff:
        opts.append(f"SUBTYPE_DIFF = {r.subtype_diff}")
    if r.multirange_type_name:
        opts.append(f"MULTIRANGE_TYPE_NAME = {d.qname(r.schema_, r.multirange_type_name)}")
    return f"CREATE TYPE {d.qname(r.schema_, r.name)} AS RANGE ({', '.join(opts)})"


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class CreateRangeType(Change):
    kind = "create_range_type"
    range_type: RangeType
    before: RangeType | None = None  # set: drop this one first (no ALTER for ranges)

    @property  # type: ignore[override]
    def order(self) -> int:
        # A user-defined subtype_diff or canonical function exists first.
        return Order.CREATE_FUNCTION + 1 if uses_functions(self.range_type) \
            else Order.CREATE_TYPE

    def objects_created(self) -> tuple[ObjectKey, ...]:
        from .base import object_key

        return (object_key("type", self.range_type.schema_, self.range_type.name),)

    def describe(self) -> str:
        verb = "Create" if self.before is None else "Recreate"
        return f"{verb} range type {qualified(self.range_type.schema_, self.range_type.name)}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        r = self.range_type
        out = []
        if self.before is not None:
            out.append(f"DROP TYPE {d.qname(self.before.schema_, self.before.name)}")
        return out + [range_sql(d, r)] + comment_sql(d, "TYPE", (r.schema_ or "", r.name),
                                                     r.comment)

    def inverse(self) -> list[Change]:
        if self.before is not None:
            return [CreateRangeType(self.before, before=self.range_type, rank=self.rank)]
        from .drop_range_type import DropRangeType

        return [DropRangeType(self.range_type, rank=-self.rank)]

    def lock(self, d: Dialect) -> Lock:
        return NO_LOCK

    def assess(self, d: Dialect) -> Assessment:
        if self.before is None:
            return Assessment(Safety.SAFE)
        return Assessment(Safety.DANGEROUS, (
            f"Range type {qualified(self.range_type.schema_, self.range_type.name)} cannot "
            "be altered: it is dropped and created again, which fails while columns, "
            "functions or domains use it.",))


def _key(r: RangeType) -> tuple[str, str]:
    return (r.schema_ or "", r.name)


def diff_range_types(before: Schema, after: Schema, d: Dialect) -> list[Change]:
    if not CreateRangeType.speaks(d) or not (before.range_types or after.range_types):
        return []
    from .drop_range_type import DropRangeType
    from .set_comment import SetComment

    old = {_key(r): r for r in before.range_types}
    new = {_key(r): r for r in after.range_types}
    new_ranks, old_ranks = type_ranks(after), type_ranks(before)
    out: list[Change] = []
    for key, a in new.items():
        b = old.get(key)
        if b is None:
            out.append(CreateRangeType(a, rank=new_ranks.get(key, 0)))
        elif b.model_copy(update={"comment": None}) != a.model_copy(update={"comment": None}):
            out.append(CreateRangeType(a, before=b, rank=new_ranks.get(key, 0)))
        elif b.comment != a.comment:
            out.append(SetComment("TYPE", key, b.comment, a.comment))
    out += [DropRangeType(b, rank=-old_ranks.get(key, 0)) for key, b in old.items()
            if key not in new]
    return out


OBJECT_DIFFERS.append(diff_range_types)
