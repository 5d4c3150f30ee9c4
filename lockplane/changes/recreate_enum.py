"""Recreate an enum type whose values are removed or reordered.

PostgreSQL can only add enum values. The type is renamed aside, created anew under its
name, every column using it is converted through text, and the old type is dropped; in
one transaction, so readers never see a half-done state. Column defaults are dropped
around the conversion (they name the old type) and set again.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ..model import EnumType, ForeignKey, Table, qualified
from .base import (
    ACCESS_EXCLUSIVE,
    NO_LOCK,
    Assessment,
    Change,
    Finding,
    Lock,
    Order,
    RewriteContext,
    Safety,
    register,
)
from .pg_common import comment_sql

if TYPE_CHECKING:
    from ..dialects.base import Dialect

_SUFFIX = "_lockplane_old"


def aside_name(name: str) -> str:
    """The temporary name of the old type (kept under PostgreSQL's 63-byte limit)."""
    head = name
    while len((head + _SUFFIX).encode()) > 63:
        head = head[:-1]
    return head + _SUFFIX


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class RecreateEnum(Change):
    kind = "recreate_enum"
    risk_rule = "enum-value-reordered"  # the lockplane.rules id of what assess() reports
    order = Order.ALTER_TYPE
    before: EnumType
    after: EnumType
    # (schema, table, column, array dims, default) of every column using the type
    users: list[tuple[str, str, str, int, str | None]] = field(default_factory=list)
    # Foreign keys over those columns (either side): dropped around the conversion, since
    # converting one side leaves the key comparing two different types.
    foreign_keys: list[tuple[Table, ForeignKey]] = field(default_factory=list)
    # Re-add those keys NOT VALID and validate them in later steps (the lock-safe form):
    # the conversion holds ACCESS EXCLUSIVE already; checking the keys need not.
    fks_not_valid: bool = False

    def removed(self) -> list[str]:
        return [v for v in self.before.values if v not in self.after.values]

    def describe(self) -> str:
        name = qualified(self.after.schema_, self.after.name)
        gone = self.removed()
        what = f"remove {', '.join(map(repr, gone))}" if gone else "reorder values"
        return f"Recreate enum type {name} ({what})"

    def sql_postgres(self, d: Dialect) -> list[str]:
        from .create_enum import enum_values_sql

        e = self.after
        new = d.qname(e.schema_, e.name)
        old = d.qname(e.schema_, aside_name(self.before.name))
        from .render import foreign_key_def

        fks = [(d.qname(t.schema_, t.name), fk) for t, fk in self.foreign_keys if fk.name]
        out = [f"ALTER TABLE {t} DROP CONSTRAINT {d.quote(str(fk.name))}" for t, fk in fks]
        out += [f"ALTER TYPE {new} RENAME TO {d.quote(aside_name(self.before.name))}",
                f"CREATE TYPE {new} AS ENUM ({enum_values_sql(d, e.values)})"]
        for schema, table, column, dims, default in self.users:
            t, c = d.qname(schema, table), d.quote(column)
            arr = "[]" * dims
            if default is not None:
                out.append(f"ALTER TABLE {t} ALTER COLUMN {c} DROP DEFAULT")
            out.append(f"ALTER TABLE {t} ALTER COLUMN {c} TYPE {new}{arr} "
                       f"USING {c}::text{arr}::{new}{arr}")
            if default is not None:
                out.append(f"ALTER TABLE {t} ALTER COLUMN {c} SET DEFAULT {default}")
        out += [f"ALTER TABLE {t} ADD {foreign_key_def(d, fk)}"
                + (" NOT VALID" if self.fks_not_valid or not fk.valid else "") for t, fk in fks]
        out += comment_sql(d, "TYPE", (e.schema_ or "", e.name), e.comment)
        out.append(f"DROP TYPE {old}")
        return out

    def lock_safe(self, ctx: RewriteContext) -> list[Change]:
        from .validate_constraint import ValidateConstraint

        named = [(t, fk) for t, fk in self.foreign_keys if fk.name and fk.valid]
        if not named:
            return [self]
        return [replace(self, fks_not_valid=True),
                *(ValidateConstraint(t, str(fk.name), rank=self.rank) for t, fk in named)]

    def inverse(self) -> list[Change]:
        return [RecreateEnum(self.after, self.before, self.users, self.foreign_keys)]

    def rollback_note(self) -> str | None:
        if self.removed():
            return ("restores the removed values to the type; rows that held them were "
                    "converted or refused by the forward step, so no row data comes back")
        return None

    def lock(self, d: Dialect) -> Lock:
        if not self.users:
            return NO_LOCK
        return Lock(ACCESS_EXCLUSIVE.mode, True, True, rewrites_table=True, scans_table=True)

    def assess(self, d: Dialect) -> Assessment:
        name = qualified(self.after.schema_, self.after.name)
        cols = ", ".join(f"{qualified(s, t)}.{c}" for s, t, c, _, _ in self.users) or "none"
        msgs = [f"PostgreSQL cannot remove or reorder enum values: {name} is recreated and "
                f"every column using it is rewritten under ACCESS EXCLUSIVE (columns: {cols})."]
        msgs.append("The old type cannot be dropped while a domain, composite type or "
                    "routine still uses it: move those first.")
        gone = self.removed()
        if gone:
            msgs.append(f"The rewrite fails if any row still holds {', '.join(map(repr, gone))}.")
            msgs.append("Safer: first update rows away from the removed values (and stop code "
                        "from writing them), then remove the values.")
            return Assessment(Safety.DANGEROUS, tuple(msgs), (
                Finding("enum-value-removed", msgs[-2], Safety.DANGEROUS),))
        return Assessment(Safety.REVIEW if self.users else Safety.SAFE, tuple(msgs))

    def table_key(self) -> tuple[str, str] | None:
        tables = {(s, t) for s, t, _, _, _ in self.users}
        return next(iter(tables)) if len(tables) == 1 else None
