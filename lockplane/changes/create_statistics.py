"""CREATE STATISTICS (extended statistics on a table's columns or expressions).

Also the per-table differ and the builder for a new table. A changed definition is drop
+ create in one step. Creating one takes SHARE UPDATE EXCLUSIVE (reads and writes go
on); the statistics themselves are gathered by the next ANALYZE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import StatisticsObject, Table, qualified
from .base import (
    NO_LOCK,
    SHARE_UPDATE_EXCLUSIVE,
    TABLE_PART_DIFFERS,
    Assessment,
    Change,
    Lock,
    Order,
    Safety,
    register,
)
from .pg_common import comment_sql
from .table_parts import PART_BUILDERS

if TYPE_CHECKING:
    from ..dialects.base import Dialect


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class CreateStatistics(Change):
    kind = "create_statistics"
    order = Order.CREATE_INDEX + 2
    schema: str  # the table's
    table: str
    statistics: StatisticsObject
    before: StatisticsObject | None = None  # set: drop this one first
    new_table: bool = False

    def describe(self) -> str:
        verb = "Create" if self.before is None else "Recreate"
        return (f"{verb} statistics {qualified(self.statistics.schema_, self.statistics.name)}"
                f" on {qualified(self.schema, self.table)}")

    def sql_postgres(self, d: Dialect) -> list[str]:
        st = self.statistics
        out = []
        if self.before is not None:
            out.append(f"DROP STATISTICS {d.qname(self.before.schema_, self.before.name)}")
        return out + [st.definition.strip().rstrip(";")] + comment_sql(
            d, "STATISTICS", (st.schema_ or "", st.name), st.comment)

    def inverse(self) -> list[Change]:
        if self.before is not None:
            return [CreateStatistics(self.schema, self.table, self.before,
                                     before=self.statistics)]
        from .drop_statistics import DropStatistics

        return [DropStatistics(self.schema, self.table, self.statistics)]

    def lock(self, d: Dialect) -> Lock:
        return NO_LOCK if self.new_table else SHARE_UPDATE_EXCLUSIVE

    def assess(self, d: Dialect) -> Assessment:
        return Assessment(Safety.SAFE)

    def table_key(self) -> tuple[str, str]:
        return (self.schema, self.table)


def _key(st: StatisticsObject) -> tuple[str, str]:
    return (st.schema_ or "", st.name)


def diff_statistics(b: Table, a: Table, d: Dialect) -> list[Change]:
    if not CreateStatistics.speaks(d) or not (b.statistics or a.statistics):
        return []
    from .alter_column import mentions_any, plan_regeneration
    from .drop_statistics import DropStatistics
    from .set_comment import SetComment

    s = a.schema_ or ""
    old = {_key(x): x for x in b.statistics}
    new = {_key(x): x for x in a.statistics}
    # Over a column dropped and added back (a generated column): DROP COLUMN drops them
    # or leaves them without it, so they are dropped first and made again after it.
    redo = plan_regeneration(b, a, d).names if d.regenerates_generated_columns else set()
    out: list[Change] = []
    for key, st in new.items():
        prev = old.get(key)
        if prev is not None and mentions_any(prev, redo):
            out += [DropStatistics(s, b.name, prev), CreateStatistics(s, a.name, st)]
        elif prev is None:
            out.append(CreateStatistics(s, a.name, st))
        elif prev.definition != st.definition:
            out.append(CreateStatistics(s, a.name, st, before=prev))
        elif prev.comment != st.comment:
            out.append(SetComment("STATISTICS", key, prev.comment, st.comment))
    out += [DropStatistics(s, b.name, st) for key, st in old.items() if key not in new]
    return out


def _new_table_statistics(table: Table) -> list[Change]:
    return [CreateStatistics(table.schema_ or "", table.name, st, new_table=True)
            for st in table.statistics]


TABLE_PART_DIFFERS.append(diff_statistics)
PART_BUILDERS.append(_new_table_statistics)
