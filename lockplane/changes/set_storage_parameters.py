"""ALTER TABLE ... SET (storage parameters) / RESET (...).

Also its per-table differ (a new table gets its parameters in CREATE TABLE ... WITH).
Fillfactor, autovacuum, toast.* and the planner's parallel_workers take SHARE UPDATE
EXCLUSIVE (reads and writes go on); anything else ACCESS EXCLUSIVE. Nothing is
rewritten: a new fillfactor applies to pages written from then on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Table, qualified
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
from .pg_common import reloption_key, reloption_sql

if TYPE_CHECKING:
    from ..dialects.base import Dialect

_LIGHT = ("fillfactor", "autovacuum_", "toast.", "toast_tuple_target", "parallel_workers",
          "vacuum_index_cleanup", "vacuum_truncate", "log_autovacuum_min_duration")


def _options(opts: list[str]) -> dict[str, str]:
    return {reloption_key(o): o for o in opts}


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class SetStorageParameters(Change):
    kind = "set_storage_parameters"
    order = Order.ALTER_TABLE
    table: Table
    before: list[str]
    after: list[str]

    def _delta(self) -> tuple[list[str], list[str]]:
        old, new = _options(self.before), _options(self.after)
        set_ = [o for k, o in sorted(new.items()) if old.get(k) != o]
        reset = [k for k in sorted(old) if k not in new]
        return set_, reset

    def describe(self) -> str:
        set_, reset = self._delta()
        what = [*set_, *(f"reset {k}" for k in reset)]
        return (f"Storage parameters of {qualified(self.table.schema_, self.table.name)}: "
                f"{', '.join(what)}")

    def sql_postgres(self, d: Dialect) -> list[str]:
        set_, reset = self._delta()
        t = d.qname(self.table.schema_, self.table.name)
        out = []
        if set_:
            out.append(f"ALTER TABLE {t} SET ({', '.join(reloption_sql(d, o) for o in set_)})")
        if reset:
            out.append(f"ALTER TABLE {t} RESET ({', '.join(reset)})")
        return out

    def inverse(self) -> list[Change]:
        return [SetStorageParameters(self.table, self.after, self.before)]

    def lock(self, d: Dialect) -> Lock:
        set_, reset = self._delta()
        keys = [reloption_key(o) for o in set_] + reset
        if all(k.startswith(_LIGHT) for k in keys):
            return SHARE_UPDATE_EXCLUSIVE
        return ACCESS_EXCLUSIVE

    def assess(self, d: Dialect) -> Assessment:
        if self.lock(d) is ACCESS_EXCLUSIVE:
            return Assessment(Safety.REVIEW, (
                "Changing these storage parameters takes an ACCESS EXCLUSIVE lock (brief: "
                "no rewrite).",))
        return Assessment(Safety.SAFE)

    def table_key(self) -> tuple[str, str]:
        return (self.table.schema_ or "", self.table.name)


def diff_storage_parameters(b: Table, a: Table, d: Dialect) -> list[Change]:
    if not SetStorageParameters.speaks(d) or sorted(b.options) == sorted(a.options):
        return []
    return [SetStorageParameters(a, b.options, a.options)]


TABLE_PART_DIFFERS.append(diff_storage_parameters)
