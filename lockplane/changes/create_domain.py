"""CREATE DOMAIN with its default, NOT NULL, collation, named checks and comments.

Also the domain differ: default, NOT NULL and checks change in place (``alter_domain``);
a new base type or collation cannot, so the domain is recreated in one step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import CheckConstraint, DomainType, Schema, qualified
from .base import NO_LOCK, OBJECT_DIFFERS, Assessment, Change, Lock, Order, Safety, register
from .pg_common import comment_sql, type_ranks

if TYPE_CHECKING:
    from ..dialects.base import Dialect
    from ..model import ObjectKey
    from .alter_domain import AlterDomain


def domain_check_def(d: Dialect, ck: CheckConstraint) -> str:
    name = f"CONSTRAINT {d.quote(ck.name)} " if ck.name else ""
    return f"{name}CHECK ({d.stored_expression(ck.expression)})"


def domain_check_comment_sql(d: Dialect, dom: DomainType, ck: CheckConstraint) -> list[str]:
    if not ck.name:
        return []
    return comment_sql(d, "CONSTRAINT", (ck.name,), ck.comment,
                       on_table=(dom.schema_ or "", dom.name), on_kind="DOMAIN")


def create_domain_sql(d: Dialect, dom: DomainType) -> list[str]:
    sql = f"CREATE DOMAIN {d.qname(dom.schema_, dom.name)} AS {dom.base_type}"
    if dom.collation:
        sql += f" COLLATE {dom.collation}"
    if dom.default is not None:
        sql += f" DEFAULT {d.stored_expression(dom.default)}"
    if not dom.nullable:
        sql += " NOT NULL"
    for ck in dom.checks:
        sql += f" {domain_check_def(d, ck)}"
    out = [sql] + comment_sql(d, "DOMAIN", (dom.schema_ or "", dom.name), dom.comment)
    for ck in dom.checks:
        out += domain_check_comment_sql(d, dom, ck)
    return out


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class CreateDomain(Change):
    kind = "create_domain"
    order = Order.CREATE_TYPE
    domain: DomainType

    def objects_created(self) -> tuple[ObjectKey, ...]:
        from .base import object_key

        return (object_key("type", self.domain.schema_, self.domain.name),)

    def describe(self) -> str:
        return f"Create domain {qualified(self.domain.schema_, self.domain.name)}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        return create_domain_sql(d, self.domain)

    def inverse(self) -> list[Change]:
        from .drop_domain import DropDomain

        return [DropDomain(self.domain)]

    def lock(self, d: Dialect) -> Lock:
        return NO_LOCK

    def assess(self, d: Dialect) -> Assessment:
        return Assessment(Safety.SAFE)


def _key(t: DomainType) -> tuple[str, str]:
    return (t.schema_ or "", t.name)


def _recreating(before: Schema, after: Schema, alter: AlterDomain,
                key: tuple[str, str]) -> AlterDomain:
    """A recreated domain with what it must convert and move out of the way (the
    columns of it, not those a parent's ALTER reaches: partitions, inherited columns)."""
    from .create_enum import enum_foreign_keys
    from .pg_common import enum_users
    from .recreate_enum import enum_holders, enum_readers

    users = [u for u in enum_users(before, *key)
             if not _inherited(before, u[0], u[1], u[2])]
    alter.users = users
    alter.foreign_keys = enum_foreign_keys(before, after, users)
    alter.holders = enum_holders(before, after, *key)
    alter.readers = enum_readers(before, after, *key, users)
    return alter


def _inherited(schema: Schema, table_schema: str, table: str, column: str) -> bool:
    t = schema.table(table_schema, table)
    c = t.column(column) if t is not None else None
    return c is not None and c.inherited


def diff_domains(before: Schema, after: Schema, d: Dialect) -> list[Change]:
    if not CreateDomain.speaks(d):
        return []
    from .alter_domain import AlterDomain
    from .drop_domain import DropDomain
    from .set_comment import SetComment

    old = {_key(t): t for t in before.domains}
    new = {_key(t): t for t in after.domains}
    # Types that use other types come after them (and are dropped before them).
    new_ranks, old_ranks = type_ranks(after), type_ranks(before)
    out: list[Change] = []
    for key, a in new.items():
        b = old.get(key)
        if b is None:
            out.append(CreateDomain(a, rank=new_ranks[key]))
            continue
        alter = AlterDomain(b, a)
        if alter.recreate():
            alter = _recreating(before, after, alter, key)
        if alter.recreate() or alter.statements_needed():
            out.append(alter)
        if not alter.recreate() and a.comment != b.comment:
            out.append(SetComment("DOMAIN", key, b.comment, a.comment))
    out += [DropDomain(t, rank=-old_ranks[key]) for key, t in old.items() if key not in new]
    return out


OBJECT_DIFFERS.append(diff_domains)
