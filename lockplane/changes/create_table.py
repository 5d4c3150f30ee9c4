"""CREATE TABLE: a new table with its columns and inline constraints.

Foreign keys are added by ``add_foreign_key`` after every table exists (cycles, order),
except on SQLite, which cannot add a foreign key later and does not check the referenced
table at creation. Indexes, triggers, policies, comments and grants are their own steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..model import Column, Sequence, Table, qualified, split_name
from .base import NO_LOCK, Assessment, Change, Lock, Order, Safety, register
from .pg_common import reloption_sql
from .render import (
    check_def,
    column_def,
    exclusion_def,
    foreign_key_def,
    primary_key_def,
    table_name,
    unique_def,
)

if TYPE_CHECKING:
    from ..dialects.base import Dialect
    from ..model import ObjectKey


def parent_sql(d: Dialect, ref: str, default_schema: str) -> str:
    """A parent reference of the model (``"s"."t"``) as SQL, re-quoted by the dialect."""
    return d.qname(*split_name(ref, default_schema))


def not_valid_checks_sql(d: Dialect, table: Table) -> list[str]:
    """A new table's NOT VALID CHECKs, added after CREATE TABLE (which would make them
    valid): the table is empty, nothing is scanned."""
    if not d.has_not_valid_constraints:
        return []
    return [f"ALTER TABLE {table_name(d, table)} ADD {check_def(d, c)} NOT VALID"
            for c in table.check_constraints if not c.valid]


def create_table_sql(d: Dialect, table: Table, *, inline_fks: bool,
                     name: str | None = None) -> str:
    """CREATE TABLE for ``table``, optionally under another ``name`` (SQLite's rebuild
    creates the new definition beside the old table before swapping them).

    A partition (``PARTITION OF``) and an INHERITS child get their inherited columns from
    the parent; only the columns of their own are listed.
    """
    t = table
    # SQLite takes AUTOINCREMENT only as a column constraint of the INTEGER PRIMARY KEY
    # (a dialect with rowid tables: Dialect.has_rowid_table_options).
    pk_col = (t.primary_key.columns[0] if t.primary_key and t.primary_key.autoincrement
              and d.has_rowid_table_options else None)
    items = [column_def(d, c, pk=t.primary_key if c.name == pk_col else None)
             for c in t.columns if not c.inherited]
    if t.primary_key and pk_col is None:
        items.append(primary_key_def(d, t.primary_key))
    items += [unique_def(d, u) for u in t.unique_constraints]
    # (a NOT VALID CHECK cannot be made so by CREATE TABLE: see not_valid_checks_sql)
    items += [check_def(d, c) for c in t.check_constraints
              if c.valid or not d.has_not_valid_constraints]
    items += [exclusion_def(d, x) for x in t.exclusion_constraints]
    if inline_fks:
        items += [foreign_key_def(d, fk) for fk in t.foreign_keys]
    head = table_name(d, t) if name is None else d.qname(t.schema_, name)
    unlogged = "UNLOGGED " if t.unlogged else ""
    body = ",\n  ".join(items)
    s = t.schema_ or d.default_schema
    if t.partition_of is not None:
        sql = f"CREATE {unlogged}TABLE {head} PARTITION OF {parent_sql(d, t.partition_of, s)}"
        if items:
            sql += f" (\n  {body}\n)"
        sql += f" {t.partition_bound or 'DEFAULT'}"
    else:
        sql = f"CREATE {unlogged}TABLE {head} (\n  {body}\n)" if items else \
            f"CREATE {unlogged}TABLE {head} ()"
        if t.inherits:
            sql += f" INHERITS ({', '.join(parent_sql(d, p, s) for p in t.inherits)})"
    if t.partition_by is not None:
        sql += f" PARTITION BY {t.partition_by}"
    if t.options:
        sql += f" WITH ({', '.join(reloption_sql(d, o) for o in t.options)})"
    if d.has_rowid_table_options:
        sqlite_options = [o for o, on in (("WITHOUT ROWID", t.without_rowid),
                                          ("STRICT", t.strict)) if on]
        if sqlite_options:
            sql += " " + ", ".join(sqlite_options)
    return sql


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class CreateTable(Change):
    kind = "create_table"
    order = Order.CREATE_TABLE
    table: Table
    # Inherited columns whose DEFAULT / NOT NULL differ from the parent's: (as the parent
    # gives them, as wanted). Filled in by changes.table_hierarchy.
    column_overrides: list[tuple[Column, Column]] = field(default_factory=list)
    # Sequences this table owns that outlive a DROP of it (a recreated table's serials):
    # owned again once it exists (see DropTable.owned_sequences).
    owned_sequences: list[Sequence] = field(default_factory=list)
    # Sequences the table it replaces owned and this one does not (see
    # DropTable.released_sequences): its inverse releases them before its DROP, for the
    # old table's undo to own them again.
    released_sequences: list[Sequence] = field(default_factory=list)

    def objects_created(self) -> tuple[ObjectKey, ...]:
        from .base import table_name_keys

        return table_name_keys(self.table, with_indexes=False)

    def describe(self) -> str:
        return f"Create table {qualified(self.table.schema_, self.table.name)}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        from .alter_column import AlterColumn

        out = [create_table_sql(d, self.table, inline_fks=False),
               *not_valid_checks_sql(d, self.table)]
        for given, wanted in self.column_overrides:
            out += AlterColumn(self.table, given, wanted).sql_postgres(d)
        if self.owned_sequences:
            from .create_sequence import owned_by_sql

            out += [f"ALTER SEQUENCE {d.qname(q.schema_ or '', q.name)} {owned_by_sql(d, q)}"
                    for q in self.owned_sequences]
        return out

    def sql_sqlite(self, d: Dialect) -> list[str]:
        return [create_table_sql(d, self.table, inline_fks=True)]

    def sql_mysql(self, d: Dialect) -> list[str]:
        from .mysql_common import create_table_sql as mysql_create_table_sql

        return [mysql_create_table_sql(d, self.table)]

    def lock_mysql(self, d: Dialect) -> Lock:
        from ..dialects.mysql.alter_facts import create_table_lock

        return create_table_lock()

    def transactional(self, d: Dialect) -> bool:
        # Where DDL commits by itself (MySQL), the step cannot share a transaction that
        # a later step's failure would roll back: it runs alone, its progress recorded.
        return d.transactional_ddl

    def inverse(self) -> list[Change]:
        from .drop_table import DropTable

        return [DropTable(self.table, column_overrides=self.column_overrides,
                          owned_sequences=self.owned_sequences,
                          released_sequences=self.released_sequences)]

    def rollback_stake(self) -> dict[str, str] | None:
        return {"what": "table", "schema": self.table.schema_ or "", "table": self.table.name}

    def lock(self, d: Dialect) -> Lock:
        own = self.for_dialect("lock", d)
        return own(d) if own is not None else NO_LOCK

    def assess(self, d: Dialect) -> Assessment:
        return Assessment(Safety.SAFE)

    def table_key(self) -> tuple[str, str]:
        return (self.table.schema_ or "", self.table.name)
