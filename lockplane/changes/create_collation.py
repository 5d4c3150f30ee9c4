"""CREATE COLLATION (ICU or libc), with its comment.

Also the collation differ. A collation cannot be altered (beyond its version): a changed
one is dropped and created again, which fails while a column or index uses it.
Collations are created before types and tables use them and dropped after.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Collation, Schema, qualified
from .base import NO_LOCK, OBJECT_DIFFERS, Assessment, Change, Lock, Order, Safety, register
from .pg_common import comment_sql

if TYPE_CHECKING:
    from ..dialects.base import Dialect


def collation_sql(d: Dialect, c: Collation) -> str:
    opts = [f"provider = {c.provider}"]
    if c.provider == "libc":
        if c.lc_collate is not None and c.lc_collate == c.lc_ctype:
            opts.append(f"locale = {d.literal(c.lc_collate)}")
        else:
            if c.lc_collate is not None:
                opts.append(f"lc_collate = {d.literal(c.lc_collate)}")
            if c.lc_ctype is not None:
                opts.append(f"lc_ctype = {d.literal(c.lc_ctype)}")
    elif c.locale is not None:
        opts.append(f"locale = {d.literal(c.locale)}")
    if not c.deterministic:
        opts.append("deterministic = false")
    return f"CREATE COLLATION {d.qname(c.schema_, c.name)} ({', '.join(opts)})"


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class CreateCollation(Change):
    kind = "create_collation"
    order = Order.CREATE_TYPE - 5
    collation: Collation
    before: Collation | None = None  # set: drop this one first

    def describe(self) -> str:
        verb = "Create" if self.before is None else "Recreate"
        return f"{verb} collation {qualified(self.collation.schema_, self.collation.name)}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        c = self.collation
        out = []
        if self.before is not None:
            out.append(f"DROP COLLATION {d.qname(self.before.schema_, self.before.name)}")
        return out + [collation_sql(d, c)] + comment_sql(
            d, "COLLATION", (c.schema_ or "", c.name), c.comment)

    def inverse(self) -> list[Change]:
        if self.before is not None:
            return [CreateCollation(self.before, before=self.collation)]
        from .drop_collation import DropCollation

        return [DropCollation(self.collation)]

    def lock(self, d: Dialect) -> Lock:
        return NO_LOCK

    def assess(self, d: Dialect) -> Assessment:
        if self.before is None:
            return Assessment(Safety.SAFE)
        return Assessment(Safety.DANGEROUS, (
            f"Collation {qualified(self.collation.schema_, self.collation.name)} cannot be "
            "altered: it is dropped and created again, which fails while a column or index "
            "uses it.",))


def _key(c: Collation) -> tuple[str, str]:
    return (c.schema_ or "", c.name)


def diff_collations(before: Schema, after: Schema, d: Dialect) -> list[Change]:
    if not CreateCollation.speaks(d) or not (before.collations or after.collations):
        return []
    from .drop_collation import DropCollation
    from .set_comment import SetComment

    old = {_key(c): c for c in before.collations}
    new = {_key(c): c for c in after.collations}
    out: list[Change] = []
    for key, a in new.items():
        b = old.get(key)
        if b is None:
            out.append(CreateCollation(a))
        elif b.model_copy(update={"comment": None}) != a.model_copy(update={"comment": None}):
            out.append(CreateCollation(a, before=b))
        elif b.comment != a.comment:
            out.append(SetComment("COLLATION", key, b.comment, a.comment))
    out += [DropCollation(b) for key, b in old.items() if key not in new]
    return out


OBJECT_DIFFERS.append(diff_collations)
