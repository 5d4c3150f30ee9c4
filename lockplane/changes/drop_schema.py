"""DROP SCHEMA (RESTRICT: every object in it is dropped by its own earlier step)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import BadInput
from ..model import Namespace
from .base import NO_LOCK, Assessment, Change, Lock, Order, Safety, register
from .pg_common import user_namespace

if TYPE_CHECKING:
    from ..dialects.base import Dialect


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class DropSchema(Change):
    kind = "drop_schema"
    risk_rule = "drop-schema"  # the lockplane.rules id of what assess() reports
    order = Order.DROP_SCHEMA
    namespace: Namespace

    def describe(self) -> str:
        return f"Drop schema {self.namespace.name}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        if not user_namespace(self.namespace.name):
            raise BadInput(f"refusing to drop reserved schema {self.namespace.name!r}")
        return [f"DROP SCHEMA {d.quote(self.namespace.name)}"]

    def inverse(self) -> list[Change]:
        from .create_schema import CreateSchema

        return [CreateSchema(self.namespace)]

    def lock(self, d: Dialect) -> Lock:
        return NO_LOCK

    def assess(self, d: Dialect) -> Assessment:
        return Assessment(Safety.REVIEW, (
            f"Dropping schema {self.namespace.name}: code that names it breaks. The drop "
            "fails if anything not managed by this plan still lives in it.",
        ))
