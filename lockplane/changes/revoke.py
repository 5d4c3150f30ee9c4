"""REVOKE a privilege (or only its grant option) on a table, view, sequence, function,
procedure or schema."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Grant as GrantModel
from .base import NO_LOCK, Assessment, Change, Lock, Order, Safety, register
from .pg_common import grantee_sql, privilege_on_sql

if TYPE_CHECKING:
    from ..dialects.base import Dialect


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class Revoke(Change):
    kind = "revoke"
    order = Order.GRANT
    object_kind: str
    name_parts: tuple[str, ...]
    grant: GrantModel  # the privilege as it is before the change
    signature: str | None = None
    keep: GrantModel | None = None  # set: revoke only the grant option, keep the privilege
    # What default privileges gave an object this plan creates: nobody relied on it yet.
    from_defaults: bool = False

    def _label(self) -> str:
        from .grant import object_label

        return object_label(self.object_kind, self.name_parts, self.signature)

    def describe(self) -> str:
        what = "grant option for " if self.keep is not None else ""
        return f"Revoke {what}{self.grant.privilege} on {self._label()} from {self.grant.grantee}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        option = "GRANT OPTION FOR " if self.keep is not None else ""
        what = privilege_on_sql(d, self.object_kind, self.name_parts, self.grant.privilege,
                                self.signature)
        return [f"REVOKE {option}{what} FROM {grantee_sql(d, self.grant.grantee)}"]

    def inverse(self) -> list[Change]:
        from .grant import Grant

        return [Grant(self.object_kind, self.name_parts, self.grant, self.signature,
                      had=self.keep)]

    def lock(self, d: Dialect) -> Lock:
        return NO_LOCK

    def assess(self, d: Dialect) -> Assessment:
        g = self.grant
        if self.from_defaults:
            return Assessment(Safety.SAFE)
        if self.keep is not None:
            return Assessment(Safety.REVIEW, (
                f"{g.grantee} can no longer pass {g.privilege} on {self._label()} on to "
                "other roles.",))
        return Assessment(Safety.REVIEW, (
            f"Code running as {g.grantee} loses {g.privilege} on {self._label()} and fails "
            "where it relies on it.",
            "Safer: deploy code that no longer needs the privilege first.",
        ))

    def table_key(self) -> tuple[str, str] | None:
        if self.object_kind in ("TABLE", "COLUMN") and len(self.name_parts) >= 2:
            return (self.name_parts[0], self.name_parts[1])
        return None
