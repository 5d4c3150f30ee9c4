"""DROP STATISTICS."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import StatisticsObject, qualified
from .base import SHARE_UPDATE_EXCLUSIVE, Assessment, Change, Lock, Order, Safety, register

if TYPE_CHECKING:
    from ..dialects.base import Dialect


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class DropStatistics(Change):
    kind = "drop_statistics"
    order = Order.DROP_INDEX
    schema: str
    table: str
    statistics: StatisticsObject

    def describe(self) -> str:
        return (f"Drop statistics {qualified(self.statistics.schema_, self.statistics.name)}"
                f" on {qualified(self.schema, self.table)}")

    def sql_postgres(self, d: Dialect) -> list[str]:
        return [f"DROP STATISTICS {d.qname(self.statistics.schema_, self.statistics.name)}"]

    def inverse(self) -> list[Change]:
        from .create_statistics import CreateStatistics

        return [CreateStatistics(self.schema, self.table, self.statistics)]

    def lock(self, d: Dialect) -> Lock:
        return SHARE_UPDATE_EXCLUSIVE

    def assess(self, d: Dialect) -> Assessment:
        return Assessment(Safety.REVIEW, (
            f"The planner loses the extended statistics "
            f"{qualified(self.statistics.schema_, self.statistics.name)}: some plans on "
            f"{qualified(self.schema, self.table)} may get worse.",))

    def table_key(self) -> tuple[str, str]:
        return (self.schema, self.table)
