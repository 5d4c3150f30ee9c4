"""DROP [MATERIALIZED] VIEW (its indexes, comment and grants go with it; the inverse
creates them all again)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import View, qualified
from .base import ACCESS_EXCLUSIVE, Assessment, Change, Finding, Lock, Order, Safety, register

if TYPE_CHECKING:
    from ..dialects.base import Dialect
    from ..dialects.mysql.alter_facts import MySQLStatement
    from ..model import ObjectKey


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class DropView(Change):
    kind = "drop_view"
    risk_rule = "drop-object"  # the lockplane.rules id of what assess() reports
    order = Order.DROP_VIEW
    view: View
    recreated: bool = False  # created again later in the same plan

    def _kind(self) -> str:
        from .create_view import view_kind

        return view_kind(self.view)

    def objects_dropped(self) -> tuple[ObjectKey, ...]:
        from .base import relation_keys

        return relation_keys(self.view.schema_, self.view.name)

    def describe(self) -> str:
        again = " (recreated below)" if self.recreated else ""
        return (f"Drop {self._kind().lower()} {qualified(self.view.schema_, self.view.name)}"
                f"{again}")

    def sql_postgres(self, d: Dialect) -> list[str]:
        return [f"DROP {self._kind()} {d.qname(self.view.schema_, self.view.name)}"]

    def sql_sqlite(self, d: Dialect) -> list[str]:
        return [f"DROP VIEW {d.qname(self.view.schema_, self.view.name)}"]

    def sql_mysql(self, d: Dialect) -> list[str]:
        return [f"DROP VIEW {d.qname(self.view.schema_, self.view.name)}"]

    def mysql_statement(self, d: Dialect) -> MySQLStatement:
        """No ALGORITHM clause: metadata only, checked on the plan's scratch copy."""
        from ..dialects.mysql.alter_facts import MySQLStatement
        from ..model import Table

        return MySQLStatement(Table(name=self.view.name, schema=self.view.schema_),
                              self.sql_mysql(d), "DROP VIEW", view=True)

    def lock_mysql(self, d: Dialect) -> Lock:
        from ..dialects.mysql.alter_facts import statement_lock

        return statement_lock(d, self.mysql_statement(d))

    def inverse(self) -> list[Change]:
        from .create_view import CreateView

        return [CreateView(self.view, recreated=self.recreated)]

    def rollback_note(self) -> str | None:
        if self.view.materialized:
            return "recreating the materialized view runs its query again (fresh data)"
        return None

    def lock(self, d: Dialect) -> Lock:
        own = self.for_dialect("lock", d)  # (MySQL: lock_mysql, alter_facts)
        if own is not None:
            return own(d)  # type: ignore[no-any-return]
        return ACCESS_EXCLUSIVE  # on the view itself: its readers wait until commit

    def assess(self, d: Dialect) -> Assessment:
        name = qualified(self.view.schema_, self.view.name)
        if self.recreated:
            return Assessment(Safety.SAFE, (
                f"{name} is dropped and created again in this plan: queries on it wait "
                "until the plan commits.",))
        msgs = (f"Dropping {self._kind().lower()} {name}: code that reads it breaks.",
                "Safer: deploy code that no longer reads it first.")
        rule = "drop-materialized-view" if self.view.materialized else "drop-object"
        return Assessment(Safety.REVIEW, msgs, (Finding(rule, msgs[0], Safety.REVIEW),))

    def table_key(self) -> tuple[str, str]:
        return (self.view.schema_ or "", self.view.name)
