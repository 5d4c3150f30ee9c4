"""ALTER EXTENSION ... UPDATE TO (version) / SET SCHEMA."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Extension
from .base import NO_LOCK, Assessment, Change, Lock, Order, Safety, register

if TYPE_CHECKING:
    from ..dialects.base import Dialect


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class AlterExtension(Change):
    kind = "alter_extension"
    order = Order.CREATE_EXTENSION  # before the types and tables that may need the new version
    before: Extension
    after: Extension

    def describe(self) -> str:
        b, a = self.before, self.after
        what = []
        if a.version != b.version:
            what.append(f"version {b.version} -> {a.version}")
        if a.schema_ != b.schema_:
            what.append(f"schema {b.schema_} -> {a.schema_}")
        return f"Alter extension {a.name} ({', '.join(what)})"

    def sql_postgres(self, d: Dialect) -> list[str]:
        b, a = self.before, self.after
        name = d.quote(a.name)
        out = []
        if a.version != b.version:
            to = f" TO {d.literal(a.version)}" if a.version else ""
            out.append(f"ALTER EXTENSION {name} UPDATE{to}")
        if a.schema_ != b.schema_ and a.schema_:
            out.append(f"ALTER EXTENSION {name} SET SCHEMA {d.quote(a.schema_)}")
        return out

    def inverse(self) -> list[Change]:
        return [AlterExtension(self.after, self.before)]

    def rollback_note(self) -> str | None:
        if self.after.version != self.before.version:
            return (f"going back to version {self.before.version} needs a downgrade script, "
                    "which most extensions do not ship: the rollback then fails; restoring "
                    "the old version means dropping and recreating the extension")
        return None

    def lock(self, d: Dialect) -> Lock:
        return NO_LOCK  # the update script may lock what it alters; nothing predictable

    def assess(self, d: Dialect) -> Assessment:
        return Assessment(Safety.REVIEW, (
            f"Updating extension {self.after.name} runs its update script, which may change "
            "functions and types in use and take locks of its own; it is rarely reversible.",
        ))
