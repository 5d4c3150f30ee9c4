"""CREATE TRIGGER from the server's own definition (pg_get_triggerdef), then its enabled
state and comment.

Also the per-table trigger differ and the builder that gives a new table its triggers.
A changed definition is drop + create (there is no ALTER for it); a changed enabled
state is ``alter_trigger``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Table, Trigger, qualified
from .base import (
    NO_LOCK,
    SHARE_ROW_EXCLUSIVE,
    TABLE_PART_DIFFERS,
    Assessment,
    Change,
    Lock,
    Order,
    Safety,
    register,
)
from .pg_common import changed_columns, columns_read, comment_sql
from .table_parts import PART_BUILDERS

if TYPE_CHECKING:
    from ..dialects.base import Dialect
    from ..dialects.mysql.alter_facts import MySQLStatement

# pg_trigger.tgenabled -> the ALTER TABLE action that sets it
ENABLE_ACTIONS = {"O": "ENABLE", "D": "DISABLE", "R": "ENABLE REPLICA", "A": "ENABLE ALWAYS"}


def enable_sql(d: Dialect, schema: str, table: str, trigger: Trigger) -> str:
    return (f"ALTER TABLE {d.qname(schema, table)} {ENABLE_ACTIONS[trigger.enabled]} "
            f"TRIGGER {d.quote(trigger.name)}")


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class CreateTrigger(Change):
    kind = "create_trigger"
    order = Order.CREATE_TRIGGER
    schema: str
    table: str
    trigger: Trigger
    new_table: bool = False

    def describe(self) -> str:
        return f"Create trigger {self.trigger.name} on {qualified(self.schema, self.table)}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        t = self.trigger
        out = [d.stored_expression(t.definition.strip().rstrip(";"), head="")]
        if t.enabled != "O":
            out.append(enable_sql(d, self.schema, self.table, t))
        return out + comment_sql(d, "TRIGGER", (t.name,), t.comment,
                                 on_table=(self.schema, self.table))

    def sql_sqlite(self, d: Dialect) -> list[str]:
        return [self.trigger.definition]

    def sql_mysql(self, d: Dialect) -> list[str]:
        # As introspection wrote it: names quoted, no DEFINER, the body as the server
        # printed it (a BEGIN ... END block is one statement to the server).
        return [self.trigger.definition]

    def mysql_statement(self, d: Dialect) -> MySQLStatement:
        """No ALGORITHM clause: metadata only, checked on the plan's scratch copy."""
        from ..dialects.mysql.alter_facts import MySQLStatement

        return MySQLStatement(Table(name=self.table, schema=self.schema),
                              self.sql_mysql(d), "CREATE TRIGGER")

    def lock_mysql(self, d: Dialect) -> Lock:
        from ..dialects.mysql.alter_facts import statement_lock

        return statement_lock(d, self.mysql_statement(d))

    def inverse(self) -> list[Change]:
        from .drop_trigger import DropTrigger

        return [DropTrigger(self.schema, self.table, self.trigger)]

    def lock_postgres(self, d: Dialect) -> Lock:
        return NO_LOCK if self.new_table else SHARE_ROW_EXCLUSIVE

    def assess(self, d: Dialect) -> Assessment:
        if self.new_table:
            return Assessment(Safety.SAFE)
        return Assessment(Safety.REVIEW, (
            f"Trigger {self.trigger.name} runs on writes to "
            f"{qualified(self.schema, self.table)} from the commit on; creating it briefly "
            "blocks writes to the table.",))

    def table_key(self) -> tuple[str, str]:
        return (self.schema, self.table)


def _pins_columns(t: Trigger) -> bool:
    return " WHEN (" in t.definition or " UPDATE OF " in t.definition


def diff_triggers(b: Table, a: Table, d: Dialect) -> list[Change]:
    from .alter_trigger import AlterTrigger
    from .drop_trigger import DropTrigger
    from .set_comment import SetComment

    if not b.triggers and not a.triggers:
        return []
    s = a.schema_ or ""
    old = {t.name: t for t in b.triggers}
    new = {t.name: t for t in a.triggers}
    # A trigger condition (WHEN, UPDATE OF) pins its columns' types: recreate around a
    # change of the columns it names.
    changed = changed_columns(b, a, d)
    names = [c.name for c in b.columns]

    def pinned(t: Trigger) -> bool:
        if not changed or not _pins_columns(t):
            return False
        read = columns_read(t.definition, names)
        return read is None or bool(read & changed)

    out: list[Change] = []
    for name, t in new.items():
        prev = old.get(name)
        if prev is None:
            out.append(CreateTrigger(s, a.name, t))
        elif prev.definition != t.definition or pinned(prev):
            out.append(DropTrigger(s, b.name, prev))
            out.append(CreateTrigger(s, a.name, t))
        else:  # (enabled states and trigger comments are PostgreSQL's; else equal)
            if prev.enabled != t.enabled:
                out.append(AlterTrigger(s, a.name, prev, t))
            if prev.comment != t.comment:
                out.append(SetComment("TRIGGER", (name,), prev.comment, t.comment,
                                      on_table=(s, a.name)))
    out += [DropTrigger(s, b.name, t) for name, t in old.items() if name not in new]
    return out


def _new_table_triggers(table: Table) -> list[Change]:
    return [CreateTrigger(table.schema_ or "", table.name, t, new_table=True)
            for t in table.triggers]


TABLE_PART_DIFFERS.append(diff_triggers)
PART_BUILDERS.append(_new_table_triggers)
