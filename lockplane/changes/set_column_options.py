"""ALTER TABLE ONLY ... ALTER COLUMN ... SET STATISTICS / SET COMPRESSION.

Per-column settings that change no data: the planner's statistics target (SHARE UPDATE
EXCLUSIVE: reads and writes go on; the next ANALYZE uses it) and the compression method
of values written from then on (ACCESS EXCLUSIVE, briefly; nothing is rewritten).
ONLY: every table of a hierarchy carries its own settings in the model, so a change to
a parent must not reach its children.

Also the per-table differ and the builder for a new table's columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Column, Table, qualified
from .base import (
    ACCESS_EXCLUSIVE,
    SHARE_UPDATE_EXCLUSIVE,
    TABLE_PART_DIFFERS,
    Assessment,
    Change,
    Lock,
    Order,
    Safety,
    register,
)
from .table_parts import PART_BUILDERS

if TYPE_CHECKING:
    from ..dialects.base import Dialect

_METHOD_WORDS = {"pglz", "lz4", "default"}


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class SetColumnOptions(Change):
    kind = "set_column_options"
    order = Order.ALTER_COLUMN + 5
    schema: str
    table: str
    column: str
    statistics: tuple[int | None, int | None] | None = None  # (before, after)
    compression: tuple[str | None, str | None] | None = None
    new_column: bool = False  # on a column this plan creates

    def describe(self) -> str:
        what = []
        if self.statistics is not None:
            target = self.statistics[1]
            what.append(f"statistics {'default' if target is None else target}")
        if self.compression is not None:
            what.append(f"compression {self.compression[1] or 'default'}")
        return (f"Set {', '.join(what)} on column {self.column} of "
                f"{qualified(self.schema, self.table)}")

    def sql_postgres(self, d: Dialect) -> list[str]:
        actions = []
        col = d.quote(self.column)
        if self.statistics is not None:
            target = self.statistics[1]
            actions.append(f"ALTER COLUMN {col} SET STATISTICS "
                           f"{-1 if target is None else int(target)}")
        if self.compression is not None:
            method = (self.compression[1] or "default").lower()
            if method not in _METHOD_WORDS:
                from ..errors import BadInput

                raise BadInput(f"unknown compression method {self.compression[1]!r}")
            actions.append(f"ALTER COLUMN {col} SET COMPRESSION {method}")
        return [f"ALTER TABLE ONLY {d.qname(self.schema, self.table)} " + ", ".join(actions)]

    def inverse(self) -> list[Change]:
        stats, comp = self.statistics, self.compression
        return [SetColumnOptions(self.schema, self.table, self.column,
                                 None if stats is None else (stats[1], stats[0]),
                                 None if comp is None else (comp[1], comp[0]))]

    def lock(self, d: Dialect) -> Lock:
        return ACCESS_EXCLUSIVE if self.compression is not None else SHARE_UPDATE_EXCLUSIVE

    def assess(self, d: Dialect) -> Assessment:
        return Assessment(Safety.SAFE)

    def table_key(self) -> tuple[str, str]:
        return (self.schema, self.table)


def _change(s: str, t: str, prev: Column | None, col: Column, new: bool) -> Change | None:
    before_stats = prev.statistics if prev else None
    before_comp = prev.compression if prev else None
    stats = (before_stats, col.statistics) if before_stats != col.statistics else None
    comp = (before_comp, col.compression) if before_comp != col.compression else None
    if stats is None and comp is None:
        return None
    return SetColumnOptions(s, t, col.name, stats, comp, new_column=new)


def diff_column_options(b: Table, a: Table, d: Dialect) -> list[Change]:
    if not SetColumnOptions.speaks(d):
        return []
    from .table_hierarchy import skip_column_change

    old = {c.name: c for c in b.columns}
    out = []
    for col in a.columns:
        prev = old.get(col.name)
        if prev is None and (col.statistics is None and col.compression is None
                             or not skip_column_change(None, col, a)):
            continue  # (a column the table's diff adds: its AddColumn sets them)
        change = _change(a.schema_ or "", a.name, prev, col, prev is None)
        if change is not None:
            out.append(change)
    return out


def _new_table_column_options(table: Table) -> list[Change]:
    out = []
    for col in table.columns:
        if col.statistics is not None or col.compression is not None:
            change = _change(table.schema_ or "", table.name, None, col, True)
            if change is not None:
                out.append(change)
    return out


TABLE_PART_DIFFERS.append(diff_column_options)
PART_BUILDERS.append(_new_table_column_options)
