"""CREATE TYPE ... AS ENUM.

Also the enum differ: values only inserted (the old ones keep their order) become
``add_enum_value`` steps; anything else (removal, reordering) recreates the type with
``recreate_enum``, since PostgreSQL cannot drop or move an enum value in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import EnumType, ForeignKey, Schema, Table, qualified
from .base import NO_LOCK, OBJECT_DIFFERS, Assessment, Change, Lock, Order, Safety, register
from .pg_common import comment_sql, enum_users, type_ranks

if TYPE_CHECKING:
    from ..dialects.base import Dialect
    from ..model import ObjectKey


def enum_values_sql(d: Dialect, values: list[str]) -> str:
    return ", ".join(d.literal(v) for v in values)


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class CreateEnum(Change):
    kind = "create_enum"
    order = Order.CREATE_TYPE
    enum: EnumType

    def objects_created(self) -> tuple[ObjectKey, ...]:
        from .base import object_key

        return (object_key("type", self.enum.schema_, self.enum.name),)

    def describe(self) -> str:
        return f"Create enum type {qualified(self.enum.schema_, self.enum.name)}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        e = self.enum
        return ([f"CREATE TYPE {d.qname(e.schema_, e.name)} AS ENUM "
                 f"({enum_values_sql(d, e.values)})"]
                + comment_sql(d, "TYPE", (e.schema_ or "", e.name), e.comment))

    def inverse(self) -> list[Change]:
        from .drop_enum import DropEnum

        return [DropEnum(self.enum)]

    def lock(self, d: Dialect) -> Lock:
        return NO_LOCK

    def assess(self, d: Dialect) -> Assessment:
        return Assessment(Safety.SAFE)


def only_inserted(before: list[str], after: list[str]) -> bool:
    """Whether ``after`` is ``before`` with values inserted (before is a subsequence)."""
    it = iter(after)
    return all(any(v == w for w in it) for v in before) and len(set(after)) == len(after)


def needs_recreate(before: EnumType, after: EnumType) -> bool:
    return before.values != after.values and not only_inserted(before.values, after.values)


def _key(e: EnumType) -> tuple[str, str]:
    return (e.schema_ or "", e.name)


def enum_foreign_keys(before: Schema, after: Schema,
                      users: list[tuple[str, str, str, int, str | None]],
                      ) -> list[tuple[Table, ForeignKey]]:
    """Foreign keys, alike on both sides, with a column using the enum on either end (but
    not those whose columns change type: diff_retyped_foreign_keys drops and re-adds
    them around the change, and a second DROP would fail)."""
    from .add_foreign_key import unchanged_foreign_keys

    if not users:
        return []
    cols = {(s, t, c) for s, t, c, _, _ in users}

    def retyped(key: tuple[str, str, str]) -> bool:
        tb, ta = before.table(key[0], key[1]), after.table(key[0], key[1])
        cb = tb.column(key[2]) if tb is not None else None
        ca = ta.column(key[2]) if ta is not None else None
        return cb is not None and ca is not None and cb.type != ca.type

    out = []
    for tb, fk, _, _ in unchanged_foreign_keys(before, after):
        here = {(tb.schema_ or "", tb.name, c) for c in fk.columns}
        there = {(fk.referenced_schema or "", fk.referenced_table, c)
                 for c in fk.referenced_columns}
        if (here | there) & cols and not any(retyped(k) for k in here | there):
            out.append((tb, fk))
    return out


def diff_enums(before: Schema, after: Schema, d: Dialect) -> list[Change]:
    if not CreateEnum.speaks(d):
        return []
    from .add_enum_value import AddEnumValue
    from .drop_enum import DropEnum
    from .recreate_enum import RecreateEnum, enum_holders, enum_readers
    from .set_comment import SetComment

    old = {_key(e): e for e in before.enums}
    new = {_key(e): e for e in after.enums}
    # Types that use other types come after them (and are dropped before them).
    new_ranks, old_ranks = type_ranks(after), type_ranks(before)
    out: list[Change] = []
    for key, a in new.items():
        b = old.get(key)
        if b is None:
            out.append(CreateEnum(a, rank=new_ranks[key]))
            continue
        users = enum_users(before, *key)
        fks = enum_foreign_keys(before, after, users)
        holders = enum_holders(before, after, *key)
        if needs_recreate(b, a):
            # sets the new type's comment itself
            out.append(RecreateEnum(b, a, users, fks, holders=holders, readers=enum_readers(
                before, after, *key, users, routines_only=True)))
            continue
        readers = enum_readers(before, after, *key, users)
        # The inverse (a recreate without the new values) runs near the end of a
        # rollback, when the CHECKs this plan swaps for new ones are back.
        holders = enum_holders(before, after, *key, replaced=True)
        values = list(b.values)
        for i, v in enumerate(a.values):
            if v in values:
                continue
            # Insert after the previous desired value (present by now), or before the
            # first value that exists already when it goes first.
            if i > 0:
                step = AddEnumValue(b.model_copy(update={"values": list(values)}), v,
                                    after_value=a.values[i - 1], users=users,
                                    foreign_keys=fks, holders=holders,
                                    readers=readers)
                values.insert(values.index(a.values[i - 1]) + 1, v)
            else:
                anchor = values[0] if values else None
                step = AddEnumValue(b.model_copy(update={"values": list(values)}), v,
                                    before_value=anchor, users=users, foreign_keys=fks,
                                    holders=holders, readers=readers)
                values.insert(0, v)
            out.append(step)
        if a.comment != b.comment:
            out.append(SetComment("TYPE", key, b.comment, a.comment))
    out += [DropEnum(e, rank=-old_ranks[key]) for key, e in old.items() if key not in new]
    return out


OBJECT_DIFFERS.append(diff_enums)
