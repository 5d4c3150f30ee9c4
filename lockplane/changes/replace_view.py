"""ALTER [MATERIALIZED] VIEW ... SET / RESET (options): a view's options and check option
change in place (a changed definition is drop + create, see create_view)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import View, qualified
from .base import ACCESS_EXCLUSIVE, Assessment, Change, Lock, Order, Safety, register
from .pg_common import reloption_key, reloption_sql

if TYPE_CHECKING:
    from ..dialects.base import Dialect
    from ..dialects.mysql.alter_facts import MySQLStatement
    from ..model import ObjectKey


def _options(v: View) -> dict[str, str]:
    """Reloptions by key, the check option among them (it is one for the server)."""
    out = {reloption_key(o): o for o in v.options}
    if v.check_option and not v.materialized:
        out["check_option"] = f"check_option={v.check_option.lower()}"
    return out


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class ReplaceView(Change):
    kind = "replace_view"
    order = Order.CREATE_VIEW
    before: View
    after: View

    def objects_created(self) -> tuple[ObjectKey, ...]:
        from .base import object_key

        return (object_key("relation", self.after.schema_, self.after.name),)

    def describe(self) -> str:
        from .create_view import view_body

        what = "Replace" if view_body(self.before) != view_body(self.after) else \
            "Alter options of"
        return f"{what} view {qualified(self.after.schema_, self.after.name)}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        from .create_view import view_kind

        q = f"ALTER {view_kind(self.after)} {d.qname(self.after.schema_, self.after.name)}"
        old, new = _options(self.before), _options(self.after)
        out = []
        reset = [k for k in old if k not in new]
        if reset:
            out.append(f"{q} RESET ({', '.join(reset)})")
        changed = [o for k, o in new.items() if old.get(k) != o]
        if changed:
            out.append(f"{q} SET ({', '.join(reloption_sql(d, o) for o in changed)})")
        return out

    def sql_mysql(self, d: Dialect) -> list[str]:
        from .create_view import mysql_view_sql

        return [mysql_view_sql(d, self.after, replace=True)]

    def mysql_statement(self, d: Dialect) -> MySQLStatement:
        """No ALGORITHM clause: metadata only, checked on the plan's scratch copy."""
        from ..dialects.mysql.alter_facts import MySQLStatement
        from ..model import Table

        return MySQLStatement(Table(name=self.after.name, schema=self.after.schema_),
                              self.sql_mysql(d), "CREATE OR REPLACE VIEW", view=True)

    def lock_mysql(self, d: Dialect) -> Lock:
        from ..dialects.mysql.alter_facts import statement_lock

        return statement_lock(d, self.mysql_statement(d))

    def inverse(self) -> list[Change]:
        return [ReplaceView(self.after, self.before)]

    def lock(self, d: Dialect) -> Lock:
        own = self.for_dialect("lock", d)  # (MySQL: lock_mysql, alter_facts)
        if own is not None:
            return own(d)  # type: ignore[no-any-return]
        return ACCESS_EXCLUSIVE

    def assess(self, d: Dialect) -> Assessment:
        from .create_view import view_body

        if view_body(self.before) != view_body(self.after):
            return Assessment(Safety.REVIEW, (
                f"View {qualified(self.after.schema_, self.after.name)} is replaced in "
                "place: code reading it sees the new query's columns and rows from the "
                "commit on.",))
        return Assessment(Safety.SAFE, (
            "Changing view options (security_barrier, check option ...) changes what "
            "queries through the view may see or write.",))

    def table_key(self) -> tuple[str, str]:
        return (self.after.schema_ or "", self.after.name)
