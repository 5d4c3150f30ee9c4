"""ALTER DEFAULT PRIVILEGES: grant or revoke what a role's future objects get (PostgreSQL).

Also the differ for ``Schema.default_privileges``. Objects that exist are not touched by
these steps: their own grants are diffed on their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import DefaultPrivileges
from ..model import Grant as GrantModel
from .base import NO_LOCK, OBJECT_DIFFERS, Assessment, Change, Lock, Order, Safety, register
from .grant import privileges_delta, revoked_defaults_delta
from .pg_common import grantee_sql, privilege_sql

if TYPE_CHECKING:
    from ..dialects.base import Dialect
    from ..model import Schema

PrivilegesKey = tuple[str, str | None, str]  # role, schema (None: every schema), objects


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class AlterDefaultPrivileges(Change):
    kind = "alter_default_privileges"
    role: str
    schema: str | None
    objects: str  # tables, sequences, functions, types, schemas
    grant: GrantModel  # the privilege granted, or held before it is revoked
    revoke: bool = False
    option_only: bool = False  # only the grant option (the privilege itself stays)
    # Before the plan creates anything (see diff_default_privileges), not with the grants.
    first: bool = False

    @property  # type: ignore[override]
    def order(self) -> int:  # type: ignore[override]
        return Order.DEFAULT_PRIVILEGES_FIRST if self.first else Order.GRANT

    def _where(self) -> str:
        where = f"new {self.objects} of {self.role}"
        return where + (f" in schema {self.schema}" if self.schema is not None else "")

    def describe(self) -> str:
        g = self.grant
        what = ("grant option for " if self.option_only else "") + g.privilege
        if self.revoke:
            return f"Default privileges: revoke {what} on {self._where()} from {g.grantee}"
        return f"Default privileges: grant {what} on {self._where()} to {g.grantee}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        g = self.grant
        head = f"ALTER DEFAULT PRIVILEGES FOR ROLE {d.quote(self.role)}"
        if self.schema is not None:
            head += f" IN SCHEMA {d.quote(self.schema)}"
        on = f"{privilege_sql(g.privilege)} ON {self.objects.upper()}"
        if self.revoke:
            option = "GRANT OPTION FOR " if self.option_only else ""
            return [f"{head} REVOKE {option}{on} FROM {grantee_sql(d, g.grantee)}"]
        option = " WITH GRANT OPTION" if g.with_grant_option else ""
        return [f"{head} GRANT {on} TO {grantee_sql(d, g.grantee)}{option}"]

    def inverse(self) -> list[Change]:
        return [AlterDefaultPrivileges(self.role, self.schema, self.objects, self.grant,
                                       revoke=not self.revoke, option_only=self.option_only)]

    def lock(self, d: Dialect) -> Lock:
        return NO_LOCK  # catalog update only

    def assess(self, d: Dialect) -> Assessment:
        if not self.revoke:
            return Assessment(Safety.SAFE)
        g = self.grant
        if self.option_only:
            return Assessment(Safety.REVIEW, (
                f"{g.grantee} can no longer pass {g.privilege} on {self._where()} on to "
                "other roles.",))
        return Assessment(Safety.REVIEW, (
            f"{self._where().capitalize()} no longer give {g.grantee} {g.privilege}: code "
            "running as it fails on objects created from now on (existing ones keep "
            "their grants).",))


def _key(p: DefaultPrivileges) -> PrivilegesKey:
    return (p.role, p.schema_, p.objects)


def diff_default_privileges(before: Schema, after: Schema, d: Dialect) -> list[Change]:
    """The steps between two sets of default privileges.

    Objects the plan creates get the default privileges in force at that moment; the
    plan then grants and revokes what the desired schema lists for each of them. Two
    kinds of step therefore run before anything is created: taking a privilege or a
    grant option away (a new object would keep it, and nothing else revokes it), and
    restoring a built-in default (create steps never grant a built-in: a new function
    would lack PUBLIC EXECUTE). New grants and newly revoked built-ins run last, with
    the other grants: each new object's own grants and revokes already cover them.
    """
    if not AlterDefaultPrivileges.speaks(d):
        return []
    from .create_schema import _namespaces

    old = {_key(p): p for p in before.default_privileges}
    new = {_key(p): p for p in after.default_privileges}
    schemas = set(_namespaces(after)) | {"public"}
    out: list[Change] = []
    for key in sorted(old.keys() | new.keys(), key=lambda k: (k[0], k[1] or "", k[2])):
        role, schema, objects = key
        if schema is not None and schema not in schemas:
            continue  # DROP SCHEMA takes its default privileges with it

        def change(g: GrantModel, *, revoke: bool = False, option_only: bool = False,
                   first: bool = False, role: str = role, schema: str | None = schema,
                   objects: str = objects) -> AlterDefaultPrivileges:
            return AlterDefaultPrivileges(role, schema, objects, g, revoke=revoke,
                                          option_only=option_only, first=first)

        b, a = old.get(key), new.get(key)
        taken, given = privileges_delta(b.grants if b else [], a.grants if a else [])
        out += [change(g, revoke=True, option_only=kept is not None, first=True)
                for g, kept in taken]
        out += [change(g, option_only=had is not None) for g, had in given]
        revoked, restored = revoked_defaults_delta(b.revoked_defaults if b else [],
                                                   a.revoked_defaults if a else [])
        out += [change(g, revoke=True) for g in revoked]
        # (A restored default goes first: create steps grant what a schema lists, and a
        # built-in default is never listed.)
        out += [change(g, first=True) for g in restored]
    return out


OBJECT_DIFFERS.append(diff_default_privileges)
