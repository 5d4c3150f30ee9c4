"""DROP SEQUENCE: its current value is lost (the rollback restarts it at START WITH)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Sequence, qualified
from .base import NO_LOCK, Assessment, Change, Lock, Order, Safety, register

if TYPE_CHECKING:
    from ..dialects.base import Dialect
    from ..model import ObjectKey


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class DropSequence(Change):
    kind = "drop_sequence"
    risk_rule = "drop-sequence"  # the lockplane.rules id of what assess() reports
    order = Order.DROP_SEQUENCE
    sequence: Sequence

    def objects_dropped(self) -> tuple[ObjectKey, ...]:
        from .base import relation_keys

        return relation_keys(self.sequence.schema_, self.sequence.name)

    def describe(self) -> str:
        return f"Drop sequence {qualified(self.sequence.schema_, self.sequence.name)}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        return [f"DROP SEQUENCE {d.qname(self.sequence.schema_, self.sequence.name)}"]

    def inverse(self) -> list[Change]:
        from .create_sequence import CreateSequence

        return [CreateSequence(self.sequence)]

    def rollback_note(self) -> str:
        return ("recreates the sequence at its START WITH value, not where it was: set it "
                "with setval() past the highest id in use before inserting")

    def lock(self, d: Dialect) -> Lock:
        return NO_LOCK

    def assess(self, d: Dialect) -> Assessment:
        return Assessment(Safety.LOSSY, (
            f"Dropping sequence {qualified(self.sequence.schema_, self.sequence.name)} loses "
            "its current value; code calling nextval() on it breaks.",
        ))
