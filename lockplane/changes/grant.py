"""GRANT a privilege on a table, view, sequence, function, procedure or schema.

Also the grant differ (shared by every object kind that carries grants), the table-part
differ for table grants and the builder that grants a new table's privileges.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..model import Grant as GrantModel
from ..model import Table
from .base import (
    CHANGE_ANNOTATORS,
    NO_LOCK,
    TABLE_PART_DIFFERS,
    Assessment,
    Change,
    Lock,
    Order,
    Safety,
    register,
)
from .pg_common import grant_sql
from .table_parts import PART_BUILDERS

if TYPE_CHECKING:
    from ..dialects.base import Dialect
    from ..model import Schema


def object_label(object_kind: str, name_parts: tuple[str, ...], signature: str | None) -> str:
    name = ".".join(p for p in name_parts if p)
    if signature is not None:
        name += f"({signature})"
    return f"{object_kind.lower()} {name}"


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class Grant(Change):
    kind = "grant"
    order = Order.GRANT
    object_kind: str  # TABLE (also views), SEQUENCE, FUNCTION, PROCEDURE, SCHEMA
    name_parts: tuple[str, ...]
    grant: GrantModel
    signature: str | None = None  # identity arguments of a function or procedure
    had: GrantModel | None = None  # the same privilege held before, without grant option

    def describe(self) -> str:
        g = self.grant
        what = "grant option for " if self.had is not None else ""
        return (f"Grant {what}{g.privilege} on "
                f"{object_label(self.object_kind, self.name_parts, self.signature)} "
                f"to {g.grantee}")

    def sql_postgres(self, d: Dialect) -> list[str]:
        return [grant_sql(d, self.object_kind, self.name_parts, self.grant, self.signature)]

    def inverse(self) -> list[Change]:
        from .revoke import Revoke

        return [Revoke(self.object_kind, self.name_parts, self.grant, self.signature,
                       keep=self.had)]

    def lock(self, d: Dialect) -> Lock:
        return NO_LOCK  # catalog update only

    def assess(self, d: Dialect) -> Assessment:
        return Assessment(Safety.SAFE)

    def table_key(self) -> tuple[str, str] | None:
        if self.object_kind in ("TABLE", "COLUMN") and len(self.name_parts) >= 2:
            return (self.name_parts[0], self.name_parts[1])
        return None


PrivilegePair = tuple[GrantModel, GrantModel | None]


def _by_privilege(grants: list[GrantModel]) -> dict[tuple[str, str], GrantModel]:
    return {("PUBLIC" if g.grantee.lower() == "public" else g.grantee, g.privilege.upper()): g
            for g in grants}


def privileges_delta(before: list[GrantModel], after: list[GrantModel],
                     ) -> tuple[list[PrivilegePair], list[PrivilegePair]]:
    """What turns one privilege list into another, as (taken, given).

    ``taken``: (the privilege as held, the same privilege kept without its grant option,
    or None when all of it goes); ``given``: (the privilege, the same privilege held
    before without its grant option, or None when it is new)."""
    old, new = _by_privilege(before), _by_privilege(after)
    taken: list[PrivilegePair] = []
    for k, g in old.items():
        if k not in new:
            taken.append((g, None))
        elif g.with_grant_option and not new[k].with_grant_option:
            taken.append((g, new[k]))
    given: list[PrivilegePair] = []
    for k, g in new.items():
        if k not in old:
            given.append((g, None))
        elif g.with_grant_option and not old[k].with_grant_option:
            given.append((g, old[k]))
    return taken, given


def revoked_defaults_delta(before: list[GrantModel], after: list[GrantModel],
                           ) -> tuple[list[GrantModel], list[GrantModel]]:
    """Built-in defaults taken away, between two ``revoked_defaults`` lists, as (newly
    revoked, restored)."""
    old, new = _by_privilege(before), _by_privilege(after)
    return ([g for k, g in new.items() if k not in old],
            [g for k, g in old.items() if k not in new])


def diff_grants(object_kind: str, name_parts: tuple[str, ...], before: list[GrantModel],
                after: list[GrantModel], signature: str | None = None) -> list[Change]:
    """GRANT / REVOKE steps that turn one privilege list into another."""
    from .revoke import Revoke

    taken, given = privileges_delta(before, after)
    return ([Revoke(object_kind, name_parts, g, signature, keep=kept) for g, kept in taken]
            + [Grant(object_kind, name_parts, g, signature, had=had) for g, had in given])


def diff_revoked_defaults(object_kind: str, name_parts: tuple[str, ...],
                          before: list[GrantModel], after: list[GrantModel],
                          signature: str | None = None) -> list[Change]:
    """REVOKE / GRANT steps for default privileges taken away (``revoked_defaults``):
    a newly revoked default is a REVOKE, a restored one a GRANT."""
    from .revoke import Revoke

    revoked, restored = revoked_defaults_delta(before, after)
    return ([Revoke(object_kind, name_parts, g, signature) for g in revoked]
            + [Grant(object_kind, name_parts, g, signature) for g in restored])


def _diff_table_grants(b: Table, a: Table, d: Dialect) -> list[Change]:
    if not Grant.speaks(d):
        return []
    s = a.schema_ or ""
    out = diff_grants("TABLE", (s, a.name), b.grants, a.grants)
    old_cols = {c.name: c for c in b.columns}
    for col in a.columns:
        prev = old_cols.get(col.name)
        # A new column gets its grants with ADD COLUMN; a dropped one loses them with it.
        if prev is not None and (prev.grants or col.grants):
            out += diff_grants("COLUMN", (s, a.name, col.name), prev.grants, col.grants)
    return out


def _new_table_grants(table: Table) -> list[Change]:
    s = table.schema_ or ""
    out: list[Change] = [Grant("TABLE", (s, table.name), g) for g in table.grants]
    for col in table.columns:
        out += [Grant("COLUMN", (s, table.name, col.name), g) for g in col.grants]
    return out


def _defaults_at_creation(before: Schema, after: Schema, objects: str, schema: str,
                          ) -> list[GrantModel]:
    """What ALTER DEFAULT PRIVILEGES gives a new ``objects`` in ``schema`` while the plan
    creates it, for any role (the one running the apply is not known when planning).

    Default privileges taken away run before anything is created and new ones after
    (changes.alter_default_privileges): in force are the grants on both sides."""
    def grants(s: Schema) -> dict[tuple[str, str | None, str, str], GrantModel]:
        return {(p.role, p.schema_, g.grantee, g.privilege.upper()): g
                for p in s.default_privileges
                if p.objects == objects and p.schema_ in (None, schema) for g in p.grants}

    old, new = grants(before), grants(after)
    return [g.model_copy(update={"with_grant_option": g.with_grant_option
                                 and new[k].with_grant_option})
            for k, g in old.items() if k in new]


def revoke_default_grants(changes: list[Change], before: Schema, after: Schema,
                          d: Dialect) -> None:
    """A table, view or sequence the plan creates ends with exactly its declared
    privileges: what default privileges gave it beyond them is revoked (a no-op where the
    role running the apply has no such defaults)."""
    if not Grant.speaks(d) or not before.default_privileges:
        return
    from .create_sequence import CreateSequence
    from .create_table import CreateTable
    from .create_view import CreateView
    from .revoke import Revoke

    for change in list(changes):
        if isinstance(change, CreateTable):
            obj: Table | Any = change.table
        elif isinstance(change, CreateView):
            obj = change.view
        elif isinstance(change, CreateSequence):
            obj = change.sequence
        else:
            continue
        sequence = isinstance(change, CreateSequence)
        s = obj.schema_ or d.default_schema
        given = _defaults_at_creation(before, after, "sequences" if sequence else "tables", s)
        taken, _ = privileges_delta(given, obj.grants)
        changes += [Revoke("SEQUENCE" if sequence else "TABLE", (obj.schema_ or "", obj.name),
                           g, keep=kept, from_defaults=True) for g, kept in taken]


TABLE_PART_DIFFERS.append(_diff_table_grants)
PART_BUILDERS.append(_new_table_grants)
CHANGE_ANNOTATORS.append(revoke_default_grants)
