"""DROP PUBLICATION (before the tables, columns and schemas it names are dropped)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Publication
from .base import NO_LOCK, Assessment, Change, Finding, Lock, register
from .create_publication import EARLY

if TYPE_CHECKING:
    from ..dialects.base import Dialect


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class DropPublication(Change):
    kind = "drop_publication"
    risk_rule = "drop-publication"
    order = EARLY
    publication: Publication
    # Created again later in the plan (FOR ALL TABLES switched on or off: ALTER cannot).
    replaced: bool = False

    def describe(self) -> str:
        tail = " (created again below)" if self.replaced else ""
        return f"Drop publication {self.publication.name}{tail}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        return [f"DROP PUBLICATION {d.quote(self.publication.name)}"]

    def inverse(self) -> list[Change]:
        from .create_publication import CreatePublication

        return [CreatePublication(self.publication, recreated=True)]

    def rollback_note(self) -> str:
        from .create_publication import recreated_note

        return recreated_note(self.publication.name)

    def lock(self, d: Dialect) -> Lock:
        return NO_LOCK

    def assess(self, d: Dialect) -> Assessment:
        name = self.publication.name
        why = (" FOR ALL TABLES cannot be switched by ALTER PUBLICATION: it is dropped and "
               "created again, and subscribers must refresh or re-subscribe."
               if self.replaced else "")
        return Assessment.of(Finding("drop-publication", (
            f"Dropping publication {name}: its subscribers stop replicating (their "
            f"replication slots keep WAL on this server until they are dropped).{why}")))
