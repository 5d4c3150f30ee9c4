"""COMMENT ON ...: comments on any object (PostgreSQL; SQLite has none). On MySQL a
comment is a clause: ``ALTER TABLE ... COMMENT =`` for a table, and for a column a MODIFY
COLUMN that restates its whole definition (carried as ``definition``).

Also the differ of MySQL's table and column comments (where PostgreSQL's are diffed with
the table, lockplane.diff)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import BadInput
from ..model import Column, Table
from .base import SHARE_UPDATE_EXCLUSIVE, TABLE_PART_DIFFERS, Change, Lock, Order, register

if TYPE_CHECKING:
    from ..dialects.base import Dialect
    from ..dialects.mysql.alter_facts import MySQLAlter


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class SetComment(Change):
    """``target_sql`` is a callable-free description of the object: kind + name parts."""

    kind = "set_comment"
    order = Order.COMMENT
    object_kind: str  # TABLE, COLUMN, INDEX, VIEW, SCHEMA, TYPE, CONSTRAINT, ...
    name_parts: tuple[str, ...]  # e.g. (schema, table, column)
    before: str | None
    after: str | None
    on_table: tuple[str, ...] | None = None  # CONSTRAINT x ON table / TRIGGER x ON table
    signature: str | None = None  # FUNCTION f(args)
    on_kind: str | None = None  # CONSTRAINT x ON DOMAIN d (a table when None)
    # COLUMN: the column's definition, for a dialect that restates it (MySQL)
    definition: Column | None = field(default=None, compare=False)
    column_table: Table | None = field(default=None, compare=False, repr=False)

    @classmethod
    def for_column(cls, table: Table, column: str, before: str | None,
                   after: str | None) -> SetComment:
        return cls("COLUMN", (table.schema_ or "", table.name, column), before, after,
                   definition=table.column(column), column_table=table)

    def describe(self) -> str:
        verb = "Remove comment on" if self.after is None else "Set comment on"
        return f"{verb} {self.object_kind.lower()} {'.'.join(p for p in self.name_parts if p)}"

    def target(self, d: Dialect) -> str:
        if self.on_table is not None:
            on = f"{self.on_kind} " if self.on_kind else ""
            return (f"{self.object_kind} {d.quote(self.name_parts[-1])} ON {on}"
                    f"{d.qname(self.on_table[0], self.on_table[1])}")
        name = ".".join(d.quote(p) for p in self.name_parts)
        if self.signature is not None:
            name += f"({self.signature})"
        return f"{self.object_kind} {name}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        value = "NULL" if self.after is None else d.literal(self.after)
        return [f"COMMENT ON {self.target(d)} IS {value}"]

    def mysql_alter(self, d: Dialect) -> MySQLAlter:
        """The comment as a clause of an ALTER TABLE (lockplane/dialects/mysql/
        alter_facts.py decides its ALGORITHM and LOCK)."""
        from ..dialects.mysql.alter_facts import AlterOp, MySQLAlter
        from .mysql_common import column_sql

        if self.object_kind == "TABLE":
            return MySQLAlter(Table(name=self.name_parts[1], schema=self.name_parts[0]),
                              [f"COMMENT = {d.literal(self.after or '')}"],
                              (AlterOp("table_options", options=("comment",)),))
        if self.object_kind == "COLUMN" and self.definition is not None \
                and self.column_table is not None:
            column = self.definition.model_copy(update={"comment": self.after})
            return MySQLAlter(self.column_table, [
                f"MODIFY COLUMN {column_sql(d, self.column_table, column, with_comment=True)}"],
                (AlterOp("modify_column", column=column, old=self.definition),))
        raise BadInput(f"{self.describe()}: not supported on {d.name} (comments there are "
                       "on tables, columns and indexes)")

    def sql_mysql(self, d: Dialect) -> list[str]:
        from ..dialects.mysql.alter_facts import alter_sql

        return [alter_sql(d, self.mysql_alter(d))]

    def lock_mysql(self, d: Dialect) -> Lock:
        from ..dialects.mysql.alter_facts import alter_lock

        return alter_lock(d, self.mysql_alter(d))

    def inverse(self) -> list[Change]:
        return [SetComment(self.object_kind, self.name_parts, self.after, self.before,
                           self.on_table, self.signature, self.on_kind,
                           definition=self.definition, column_table=self.column_table)]

    def lock(self, d: Dialect) -> Lock:
        own = self.for_dialect("lock", d)  # (MySQL: lock_mysql, alter_facts)
        if own is not None:
            return own(d)  # type: ignore[no-any-return]
        return SHARE_UPDATE_EXCLUSIVE


def diff_comment_clauses(b: Table, a: Table, d: Dialect) -> list[Change]:
    """Table and column comments where they are clauses (Dialect.comment_clauses): each
    changed one is a step, the column's restating its wanted definition."""
    if not d.comment_clauses:
        return []
    out: list[Change] = []
    if b.comment != a.comment:
        out.append(SetComment("TABLE", (a.schema_ or "", a.name), b.comment, a.comment))
    old = {c.name: c for c in b.columns}
    for col in a.columns:
        prev = old.get(col.name)
        before = prev.comment if prev is not None else None
        if before != col.comment:
            out.append(SetComment.for_column(a, col.name, before, col.comment))
    return out


TABLE_PART_DIFFERS.append(diff_comment_clauses)
