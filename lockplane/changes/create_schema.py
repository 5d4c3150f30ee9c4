"""CREATE SCHEMA (a PostgreSQL namespace), with its comment and grants.

Also the namespace differ: the desired namespaces are the listed ones plus every schema
an object of the desired state lives in (a schema JSON may not list them). ``public``,
``pg_*``, ``information_schema`` and Lockplane's own ``lockplane`` are never touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import BadInput
from ..model import Namespace, Schema
from .base import NO_LOCK, OBJECT_DIFFERS, Assessment, Change, Lock, Order, Safety, register
from .pg_common import comment_sql, grants_sql, user_namespace

if TYPE_CHECKING:
    from ..dialects.base import Dialect


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class CreateSchema(Change):
    kind = "create_schema"
    order = Order.CREATE_SCHEMA
    namespace: Namespace

    def describe(self) -> str:
        return f"Create schema {self.namespace.name}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        ns = self.namespace
        if not user_namespace(ns.name):
            raise BadInput(f"refusing to create reserved schema {ns.name!r}")
        return ([f"CREATE SCHEMA {d.quote(ns.name)}"]
                + comment_sql(d, "SCHEMA", (ns.name,), ns.comment)
                + grants_sql(d, "SCHEMA", (ns.name,), ns.grants))

    def inverse(self) -> list[Change]:
        from .drop_schema import DropSchema

        return [DropSchema(self.namespace)]

    def lock(self, d: Dialect) -> Lock:
        return NO_LOCK

    def assess(self, d: Dialect) -> Assessment:
        return Assessment(Safety.SAFE)


def _namespaces(s: Schema) -> dict[str, Namespace | None]:
    """Listed namespaces (with their comment and grants) and implied ones (None)."""
    out: dict[str, Namespace | None] = {}
    for group in (s.extensions, s.enums, s.domains, s.composite_types, s.sequences,
                  s.functions, s.tables, s.views, s.range_types, s.collations, s.aggregates,
                  [st for t in s.tables for st in t.statistics], s.default_privileges):
        for obj in group:
            if user_namespace(obj.schema_):
                out[obj.schema_ or ""] = None
    for ns in s.schemas:
        if user_namespace(ns.name):
            out[ns.name] = ns
    return out


def diff_namespaces(before: Schema, after: Schema, d: Dialect) -> list[Change]:
    if not CreateSchema.speaks(d):
        return []
    from .drop_schema import DropSchema
    from .grant import diff_grants
    from .set_comment import SetComment

    old, new = _namespaces(before), _namespaces(after)
    out: list[Change] = []
    for name, ns in new.items():
        if name not in old:
            out.append(CreateSchema(ns or Namespace(name=name)))
    for name, ns in old.items():
        if name not in new:
            out.append(DropSchema(ns or Namespace(name=name)))
    for name in [n for n in new if n in old]:  # a stable order (not a set's)
        a = new[name]
        if a is None:
            continue  # only implied by the desired state: its comment and grants are not managed
        b = old[name] or Namespace(name=name)
        if b.comment != a.comment:
            out.append(SetComment("SCHEMA", (name,), b.comment, a.comment))
        out += diff_grants("SCHEMA", (name,), b.grants, a.grants)
    return out


OBJECT_DIFFERS.append(diff_namespaces)
