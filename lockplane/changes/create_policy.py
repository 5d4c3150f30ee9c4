"""CREATE POLICY (row-level security), with its comment.

Also the per-table policy differ and the builder for a new table's policies. A changed
policy is dropped and created again in the same transaction (its command and
permissiveness cannot be altered, and one shape is simpler to review).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Policy, Table, qualified
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
from .pg_common import changed_columns, columns_read, comment_sql, grantee_sql
from .table_parts import PART_BUILDERS

if TYPE_CHECKING:
    from ..dialects.base import Dialect


def policy_sql(d: Dialect, schema: str, table: str, p: Policy) -> str:
    roles = ", ".join(grantee_sql(d, r) for r in p.roles) or "PUBLIC"
    sql = (f"CREATE POLICY {d.quote(p.name)} ON {d.qname(schema, table)} "
           f"AS {'PERMISSIVE' if p.permissive else 'RESTRICTIVE'} FOR {p.command} TO {roles}")
    if p.using is not None:
        sql += f" USING ({d.stored_expression(p.using)})"
    if p.with_check is not None:
        sql += f" WITH CHECK ({d.stored_expression(p.with_check)})"
    return sql


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class CreatePolicy(Change):
    kind = "create_policy"
    order = Order.CREATE_POLICY
    schema: str
    table: str
    policy: Policy
    new_table: bool = False

    def describe(self) -> str:
        return f"Create policy {self.policy.name} on {qualified(self.schema, self.table)}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        p = self.policy
        return [policy_sql(d, self.schema, self.table, p)] + comment_sql(
            d, "POLICY", (p.name,), p.comment, on_table=(self.schema, self.table))

    def inverse(self) -> list[Change]:
        from .drop_policy import DropPolicy

        return [DropPolicy(self.schema, self.table, self.policy)]

    def lock(self, d: Dialect) -> Lock:
        return NO_LOCK if self.new_table else ACCESS_EXCLUSIVE

    def assess(self, d: Dialect) -> Assessment:
        if self.new_table:
            return Assessment(Safety.SAFE)
        return Assessment(Safety.REVIEW, (
            f"Policy {self.policy.name} changes which rows of "
            f"{qualified(self.schema, self.table)} roles see or may write (when row-level "
            "security is enabled).",))

    def table_key(self) -> tuple[str, str]:
        return (self.schema, self.table)


def diff_policies(b: Table, a: Table, d: Dialect) -> list[Change]:
    if not CreatePolicy.speaks(d):
        return []
    from ..diff import same
    from .drop_policy import DropPolicy
    from .set_comment import SetComment

    if not b.policies and not a.policies:
        return []
    s = a.schema_ or ""
    old = {p.name: p for p in b.policies}
    new = {p.name: p for p in a.policies}
    # Policy expressions pin their columns' types: recreate them around a change of
    # the columns they name.
    changed = changed_columns(b, a, d)
    names = [c.name for c in b.columns]

    def pinned(p: Policy) -> bool:
        if not changed:
            return False
        exprs = [e for e in (p.using, p.with_check) if e]
        read = columns_read("SELECT " + ", ".join(exprs), names) if exprs else set()
        return read is None or bool(read & changed)

    out: list[Change] = []
    for name, p in new.items():
        prev = old.get(name)
        if prev is None:
            out.append(CreatePolicy(s, a.name, p))
        elif not same(prev, p, "comment") or pinned(prev):
            out.append(DropPolicy(s, b.name, prev))
            out.append(CreatePolicy(s, a.name, p))
        elif prev.comment != p.comment:
            out.append(SetComment("POLICY", (name,), prev.comment, p.comment,
                                  on_table=(s, a.name)))
    out += [DropPolicy(s, b.name, p) for name, p in old.items() if name not in new]
    return out


def _new_table_policies(table: Table) -> list[Change]:
    return [CreatePolicy(table.schema_ or "", table.name, p, new_table=True)
            for p in table.policies]


TABLE_PART_DIFFERS.append(diff_policies)
PART_BUILDERS.append(_new_table_policies)
