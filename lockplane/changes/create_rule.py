"""CREATE RULE from the server's own definition (pg_get_ruledef), then its enabled state
and comment.

Also the per-table rule differ and the builder that gives a new table its rules. A
changed definition is drop + create in one step (CREATE OR REPLACE RULE would do, but
the drop keeps the inverse exact); a changed enabled state is an ALTER TABLE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Rule, Table, qualified
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
from .pg_common import comment_sql
from .table_parts import PART_BUILDERS

if TYPE_CHECKING:
    from ..dialects.base import Dialect

_ENABLE = {"O": "ENABLE", "D": "DISABLE", "R": "ENABLE REPLICA", "A": "ENABLE ALWAYS"}


def rule_enable_sql(d: Dialect, schema: str, table: str, rule: Rule) -> str:
    return (f"ALTER TABLE {d.qname(schema, table)} {_ENABLE[rule.enabled]} RULE "
            f"{d.quote(rule.name)}")


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class CreateRule(Change):
    kind = "create_rule"
    order = Order.CREATE_TRIGGER
    schema: str
    table: str
    rule: Rule
    before: Rule | None = None  # set: replace this rule
    new_table: bool = False

    def describe(self) -> str:
        verb = "Create" if self.before is None else "Replace"
        return f"{verb} rule {self.rule.name} on {qualified(self.schema, self.table)}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        r = self.rule
        out = []
        if self.before is not None:
            out.append(f"DROP RULE {d.quote(self.before.name)} ON "
                       f"{d.qname(self.schema, self.table)}")
        out.append(r.definition.strip().rstrip(";"))
        if r.enabled != "O":
            out.append(rule_enable_sql(d, self.schema, self.table, r))
        return out + comment_sql(d, "RULE", (r.name,), r.comment,
                                 on_table=(self.schema, self.table))

    def inverse(self) -> list[Change]:
        if self.before is not None:
            return [CreateRule(self.schema, self.table, self.before, before=self.rule)]
        from .drop_rule import DropRule

        return [DropRule(self.schema, self.table, self.rule)]

    def lock(self, d: Dialect) -> Lock:
        return NO_LOCK if self.new_table else ACCESS_EXCLUSIVE

    def assess(self, d: Dialect) -> Assessment:
        if self.new_table:
            return Assessment(Safety.SAFE)
        return Assessment(Safety.REVIEW, (
            f"Rule {self.rule.name} rewrites queries on {qualified(self.schema, self.table)} "
            "from the commit on; creating it takes an ACCESS EXCLUSIVE lock (brief).",))

    def table_key(self) -> tuple[str, str]:
        return (self.schema, self.table)


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class AlterRule(Change):
    """ALTER TABLE ... ENABLE / DISABLE [REPLICA | ALWAYS] RULE."""

    kind = "alter_rule"
    order = Order.CREATE_TRIGGER
    schema: str
    table: str
    before: Rule
    after: Rule

    def describe(self) -> str:
        return (f"Set rule {self.after.name} on {qualified(self.schema, self.table)} "
                f"{_ENABLE[self.after.enabled].lower()}d")

    def sql_postgres(self, d: Dialect) -> list[str]:
        return [rule_enable_sql(d, self.schema, self.table, self.after)]

    def inverse(self) -> list[Change]:
        return [AlterRule(self.schema, self.table, self.after, self.before)]

    def lock(self, d: Dialect) -> Lock:
        return ACCESS_EXCLUSIVE

    def assess(self, d: Dialect) -> Assessment:
        return Assessment(Safety.REVIEW, (
            f"Rule {self.after.name} {'stops' if self.after.enabled == 'D' else 'starts'} "
            "rewriting queries from the commit on.",))

    def table_key(self) -> tuple[str, str]:
        return (self.schema, self.table)


def diff_rules(b: Table, a: Table, d: Dialect) -> list[Change]:
    if not CreateRule.speaks(d) or (not b.rules and not a.rules):
        return []
    from .drop_rule import DropRule
    from .set_comment import SetComment

    s = a.schema_ or ""
    old = {r.name: r for r in b.rules}
    new = {r.name: r for r in a.rules}
    out: list[Change] = []
    for name, r in new.items():
        prev = old.get(name)
        if prev is None:
            out.append(CreateRule(s, a.name, r))
        elif prev.definition != r.definition:
            out.append(CreateRule(s, a.name, r, before=prev))
        else:
            if prev.enabled != r.enabled:
                out.append(AlterRule(s, a.name, prev, r))
            if prev.comment != r.comment:
                out.append(SetComment("RULE", (name,), prev.comment, r.comment,
                                      on_table=(s, a.name)))
    out += [DropRule(s, b.name, r) for name, r in old.items() if name not in new]
    return out


def _new_table_rules(table: Table) -> list[Change]:
    return [CreateRule(table.schema_ or "", table.name, r, new_table=True)
            for r in table.rules]


TABLE_PART_DIFFERS.append(diff_rules)
PART_BUILDERS.append(_new_table_rules)
