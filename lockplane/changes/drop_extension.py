"""DROP EXTENSION (RESTRICT: fails while columns or other objects use what it provides)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Extension
from .base import NO_LOCK, Assessment, Change, Lock, Order, Safety, register

if TYPE_CHECKING:
    from ..dialects.base import Dialect


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class DropExtension(Change):
    kind = "drop_extension"
    order = Order.DROP_EXTENSION
    extension: Extension

    def describe(self) -> str:
        return f"Drop extension {self.extension.name}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        return [f"DROP EXTENSION {d.quote(self.extension.name)}"]

    def inverse(self) -> list[Change]:
        from .create_extension import CreateExtension

        return [CreateExtension(self.extension)]

    def rollback_note(self) -> str:
        return ("recreates the extension; data it kept in its own tables (if any) is not "
                "restored")

    def lock(self, d: Dialect) -> Lock:
        return NO_LOCK

    def assess(self, d: Dialect) -> Assessment:
        return Assessment(Safety.REVIEW, (
            f"Dropping extension {self.extension.name} removes its functions, types and "
            "operators: code calling them breaks, and the drop fails while any column, "
            "index or view still uses them.",
        ))
