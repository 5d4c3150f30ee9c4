"""ALTER TABLE ... ENABLE / DISABLE / FORCE / NO FORCE ROW LEVEL SECURITY.

Also its per-table differ and the builder that switches it on for a new table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Table, qualified
from .base import (
    ACCESS_EXCLUSIVE,
    NO_LOCK,
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


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class AlterRls(Change):
    kind = "alter_rls"
    order = Order.ALTER_RLS
    table: Table  # the table as desired (for its name and policy count)
    enabled_before: bool
    forced_before: bool
    enabled_after: bool
    forced_after: bool
    new_table: bool = False

    def _what(self) -> list[str]:
        out = []
        if self.enabled_before != self.enabled_after:
            out.append("ENABLE" if self.enabled_after else "DISABLE")
        if self.forced_before != self.forced_after:
            out.append("FORCE" if self.forced_after else "NO FORCE")
        return out

    def describe(self) -> str:
        what = ", ".join(w.lower() for w in self._what())
        return (f"Row-level security on {qualified(self.table.schema_, self.table.name)}: "
                f"{what}")

    def sql_postgres(self, d: Dialect) -> list[str]:
        t = d.qname(self.table.schema_, self.table.name)
        return [f"ALTER TABLE {t} {w} ROW LEVEL SECURITY" for w in self._what()]

    def inverse(self) -> list[Change]:
        return [AlterRls(self.table, self.enabled_after, self.forced_after,
                         self.enabled_before, self.forced_before)]

    def lock(self, d: Dialect) -> Lock:
        return NO_LOCK if self.new_table else ACCESS_EXCLUSIVE

    def assess(self, d: Dialect) -> Assessment:
        name = qualified(self.table.schema_, self.table.name)
        if self.new_table:
            return Assessment(Safety.SAFE)
        msgs = []
        if self.enabled_after and not self.enabled_before:
            if not self.table.policies:
                msgs.append(f"Enabling row-level security on {name} with no policy: roles "
                            "other than the owner see and write no rows at all.")
            else:
                msgs.append(f"Enabling row-level security on {name}: roles other than the "
                            "owner see only what its policies allow.")
            msgs.append("Safer: create the policies first and test them under each role.")
        if self.enabled_before and not self.enabled_after:
            msgs.append(f"Disabling row-level security on {name}: every role with table "
                        "privileges sees every row again.")
        if self.forced_after != self.forced_before:
            msgs.append(f"{'Forcing' if self.forced_after else 'No longer forcing'} "
                        f"row-level security on {name} changes what the table owner sees.")
        return Assessment(Safety.REVIEW, tuple(msgs))

    def table_key(self) -> tuple[str, str]:
        return (self.table.schema_ or "", self.table.name)


def diff_rls(b: Table, a: Table, d: Dialect) -> list[Change]:
    if not AlterRls.speaks(d):
        return []
    if (b.rls_enabled, b.rls_forced) == (a.rls_enabled, a.rls_forced):
        return []
    return [AlterRls(a, b.rls_enabled, b.rls_forced, a.rls_enabled, a.rls_forced)]


def _new_table_rls(table: Table) -> list[Change]:
    if not (table.rls_enabled or table.rls_forced):
        return []
    return [AlterRls(table, False, False, table.rls_enabled, table.rls_forced, new_table=True)]


TABLE_PART_DIFFERS.append(diff_rls)
PART_BUILDERS.append(_new_table_rls)
