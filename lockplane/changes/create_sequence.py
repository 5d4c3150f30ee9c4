"""CREATE SEQUENCE with its options, comment and grants.

Also the sequence differ. OWNED BY needs the owning column, which may be created later
in the same plan, so ownership is never part of CREATE: the differ adds an
``alter_sequence`` step for it (late), and takes ownership away before an owning table
or column is dropped (early; dropping them would otherwise drop the sequence too).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Schema, Sequence, qualified
from .base import NO_LOCK, OBJECT_DIFFERS, Assessment, Change, Lock, Order, Safety, register
from .pg_common import comment_sql, grants_sql, owned_by_parts

if TYPE_CHECKING:
    from ..dialects.base import Dialect
    from ..model import ObjectKey


def owned_by_sql(d: Dialect, seq: Sequence) -> str:
    if seq.owned_by is None:
        return "OWNED BY NONE"
    s, t, c = owned_by_parts(seq.owned_by, seq.schema_ or "public")
    return f"OWNED BY {d.qname(s, t)}.{d.quote(c)}"


def sequence_options_sql(seq: Sequence, *, fields: set[str] | None = None) -> str:
    """The option clauses of CREATE/ALTER SEQUENCE (all of them, or only ``fields``)."""
    def want(name: str) -> bool:
        return fields is None or name in fields

    parts = []
    if want("data_type"):
        parts.append(f"AS {seq.data_type}")
    if want("increment"):
        parts.append(f"INCREMENT BY {int(seq.increment)}")
    if want("min_value"):
        parts.append("NO MINVALUE" if seq.min_value is None else f"MINVALUE {int(seq.min_value)}")
    if want("max_value"):
        parts.append("NO MAXVALUE" if seq.max_value is None else f"MAXVALUE {int(seq.max_value)}")
    if want("start"):
        parts.append(f"START WITH {int(seq.start)}")
    if want("cache"):
        parts.append(f"CACHE {int(seq.cache)}")
    if want("cycle"):
        parts.append("CYCLE" if seq.cycle else "NO CYCLE")
    return " ".join(parts)


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class CreateSequence(Change):
    kind = "create_sequence"
    order = Order.CREATE_SEQUENCE
    sequence: Sequence

    def objects_created(self) -> tuple[ObjectKey, ...]:
        from .base import relation_keys

        return relation_keys(self.sequence.schema_, self.sequence.name)

    def describe(self) -> str:
        return f"Create sequence {qualified(self.sequence.schema_, self.sequence.name)}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        s = self.sequence
        sql = f"CREATE SEQUENCE {d.qname(s.schema_, s.name)} {sequence_options_sql(s)}"
        if s.owned_by is not None:
            sql += f" {owned_by_sql(d, s)}"
        parts = (s.schema_ or "", s.name)
        return ([sql] + comment_sql(d, "SEQUENCE", parts, s.comment)
                + grants_sql(d, "SEQUENCE", parts, s.grants))

    def inverse(self) -> list[Change]:
        from .drop_sequence import DropSequence

        return [DropSequence(self.sequence)]

    def lock(self, d: Dialect) -> Lock:
        return NO_LOCK

    def assess(self, d: Dialect) -> Assessment:
        return Assessment(Safety.SAFE)


def _key(s: Sequence) -> tuple[str, str]:
    return (s.schema_ or "", s.name)


def diff_sequences(before: Schema, after: Schema, d: Dialect) -> list[Change]:
    if not CreateSequence.speaks(d):
        return []
    from .alter_sequence import AlterSequence
    from .drop_sequence import DropSequence
    from .grant import diff_grants
    from .set_comment import SetComment

    old = {_key(s): s for s in before.sequences}
    new = {_key(s): s for s in after.sequences}
    out: list[Change] = []
    for key, a in new.items():
        b = old.get(key)
        if b is None:
            unowned = a.model_copy(update={"owned_by": None})
            out.append(CreateSequence(unowned))
            if a.owned_by is not None:
                out.append(AlterSequence(unowned, a))
            continue
        if b.owned_by is not None and a.owned_by is not None and b.owned_by != a.owned_by:
            # Disown early (the old owner may be dropped), own late (the new may be created).
            mid = b.model_copy(update={"owned_by": None})
            out.append(AlterSequence(b, mid))
            out.append(AlterSequence(mid, a))
        elif AlterSequence(b, a).option_fields() or b.owned_by != a.owned_by:
            out.append(AlterSequence(b, a))
        if b.comment != a.comment:
            out.append(SetComment("SEQUENCE", key, b.comment, a.comment))
        out += diff_grants("SEQUENCE", key, b.grants, a.grants)
    for key, b in old.items():
        if key not in new:
            unowned = b.model_copy(update={"owned_by": None})
            if b.owned_by is not None:
                out.append(AlterSequence(b, unowned))
            out.append(DropSequence(unowned))
    return out


OBJECT_DIFFERS.append(diff_sequences)
