"""ALTER TYPE ... ADD VALUE ... BEFORE/AFTER: one new enum value, in its place.

Runs outside a transaction block: a value added inside a transaction cannot be used
until that transaction commits, so later steps of the same plan could not use it.
PostgreSQL cannot remove an enum value, so the inverse recreates the type without it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..model import EnumType, ForeignKey, Table, qualified
from .base import NO_LOCK, Assessment, Change, Lock, Order, Safety, register

if TYPE_CHECKING:
    from ..dialects.base import Dialect


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class AddEnumValue(Change):
    kind = "add_enum_value"
    order = Order.ALTER_TYPE
    enum: EnumType  # the type before this value is added
    value: str
    before_value: str | None = None
    after_value: str | None = None
    # Columns using the type (schema, table, column, array dims, default): the inverse
    # recreates the type and converts them.
    users: list[tuple[str, str, str, int, str | None]] = field(default_factory=list)
    # Foreign keys over those columns, which the inverse's recreate drops and re-adds.
    foreign_keys: list[tuple[Table, ForeignKey]] = field(default_factory=list)
    # What holds a value of the type (recreate_enum.enum_holders), which the inverse's
    # recreate drops and makes again.
    holders: list[tuple[Table, Any]] = field(default_factory=list)
    # ... and the views and routines it drops and creates again (enum_readers).
    readers: list[Any] = field(default_factory=list)

    def enum_after(self) -> EnumType:
        values = list(self.enum.values)
        if self.after_value is not None:
            values.insert(values.index(self.after_value) + 1, self.value)
        elif self.before_value is not None:
            values.insert(values.index(self.before_value), self.value)
        else:
            values.append(self.value)
        return self.enum.model_copy(update={"values": values})

    def describe(self) -> str:
        where = (f" after {self.after_value!r}" if self.after_value is not None
                 else f" before {self.before_value!r}" if self.before_value is not None
                 else "")
        return (f"Add value {self.value!r}{where} to enum "
                f"{qualified(self.enum.schema_, self.enum.name)}")

    def sql_postgres(self, d: Dialect) -> list[str]:
        sql = (f"ALTER TYPE {d.qname(self.enum.schema_, self.enum.name)} "
               f"ADD VALUE {d.literal(self.value)}")
        if self.after_value is not None:
            sql += f" AFTER {d.literal(self.after_value)}"
        elif self.before_value is not None:
            sql += f" BEFORE {d.literal(self.before_value)}"
        return [sql]

    def transactional(self, d: Dialect) -> bool:
        return False

    def inverse(self) -> list[Change]:
        from .recreate_enum import RecreateEnum

        return [RecreateEnum(self.enum_after(), self.enum, self.users, self.foreign_keys,
                             holders=self.holders, readers=self.readers)]

    def rollback_note(self) -> str:
        return (f"PostgreSQL cannot remove an enum value: the rollback recreates the type "
                f"without {self.value!r} and rewrites every column that uses it; it fails if "
                "rows hold that value by then")

    def lock(self, d: Dialect) -> Lock:
        return NO_LOCK

    def assess(self, d: Dialect) -> Assessment:
        return Assessment(Safety.SAFE, (
            "Runs outside a transaction (ALTER TYPE ... ADD VALUE); it cannot be rolled back "
            "with the rest of the plan.",))
