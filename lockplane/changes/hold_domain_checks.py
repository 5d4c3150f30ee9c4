"""A domain's CHECKs and default held apart while a routine they call is dropped and
created again.

CREATE OR REPLACE cannot change a routine's return type, so the plan drops and creates
it; PostgreSQL refuses the drop while a domain's CHECK or default calls it ("cannot drop
function ... because other objects depend on it"), as it does under a table's CHECK
(plan._table_parts_calling_recreated drops and adds that one around the routine). This
step drops those CHECKs and that default (ALTER DOMAIN ... DROP CONSTRAINT / DROP
DEFAULT) before the routine goes; an ALTER DOMAIN from what is left to the desired
domain makes them again once the routine is back (the plan's own step for the domain,
rebased, or a new one). Its undo adds them back as they were, after the rollback has
made the old routine again. While they are apart the domain does not check those rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..model import CheckConstraint, DomainType, qualified
from .base import NO_LOCK, Assessment, Change, Lock, Order, register

if TYPE_CHECKING:
    from ..dialects.base import Dialect


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class HoldDomainChecks(Change):
    kind = "hold_domain_checks"
    domain: DomainType  # as it is before the plan
    checks: list[CheckConstraint] = field(default_factory=list)  # named, of ``domain``
    default: bool = False  # the domain's default too
    # False: dropped, before the routine they call is; True (the undo): added back
    restore: bool = False

    @property  # type: ignore[override]
    def order(self) -> int:
        # (a routine dropped to be created again goes at Order.DROP_CONSTRAINT + 5)
        return Order.DROP_CONSTRAINT

    def describe(self) -> str:
        name = qualified(self.domain.schema_, self.domain.name)
        what = [f"check {c.name}" for c in self.checks] + (["default"] if self.default
                                                            else [])
        if self.restore:
            return f"Add back {', '.join(what)} of domain {name} (the routine is back)"
        return (f"Drop {', '.join(what)} of domain {name} while the routine they call is "
                "recreated")

    def sql_postgres(self, d: Dialect) -> list[str]:
        from .create_domain import domain_check_comment_sql, domain_check_def

        q = d.qname(self.domain.schema_, self.domain.name)
        if not self.restore:
            out = [f"ALTER DOMAIN {q} DROP CONSTRAINT {d.quote(c.name or '')}"
                   for c in self.checks]
            return out + ([f"ALTER DOMAIN {q} DROP DEFAULT"] if self.default else [])
        out = [f"ALTER DOMAIN {q} SET DEFAULT {d.stored_expression(self.domain.default)}"
               ] if self.default and self.domain.default is not None else []
        for c in self.checks:
            out += [f"ALTER DOMAIN {q} ADD {domain_check_def(d, c)}",
                    *domain_check_comment_sql(d, self.domain, c)]
        return out

    def inverse(self) -> list[Change]:
        return [HoldDomainChecks(self.domain, self.checks, self.default,
                                 restore=not self.restore)]

    def lock(self, d: Dialect) -> Lock:
        # Adding a CHECK back checks every column of the domain's type (SHARE on each
        # table); dropping one touches the catalog only.
        return Lock("SHARE", False, True, scans_table=True) \
            if self.restore and self.checks else NO_LOCK

    def assess(self, d: Dialect) -> Assessment:
        if self.restore:
            return Assessment.of(notes=(
                "Each CHECK added back is checked against every column of the domain, "
                "blocking writes to those tables.",))
        return Assessment.of(notes=("Until the routine is created again, the domain does "
                                    "not check these rules.",))
