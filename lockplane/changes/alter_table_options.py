"""ALTER TABLE ... ENGINE=, DEFAULT COLLATE=, ROW_FORMAT= and the other table options
(MySQL; PostgreSQL's storage parameters are set_storage_parameters).

A new default collation changes what columns without their own collation get: the
columns that had the old default are restated with the new one (MODIFY COLUMN), as a
table created with the new default would have them. An option the wanted table no longer
has goes back to the server's default (``KEY=DEFAULT``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Table, qualified
from .base import TABLE_PART_DIFFERS, Assessment, Change, Finding, Lock, Order, register

if TYPE_CHECKING:
    from ..dialects.base import Dialect
    from ..dialects.mysql.alter_facts import MySQLAlter

# Types whose values have a character set (and so take the table's default collation).
_CHARACTER_TYPE = re.compile(r"(?i)^\s*(?:char|varchar|tinytext|text|mediumtext|longtext|"
                             r"enum|set)\b")


def _options(t: Table) -> dict[str, str]:
    return {o.partition("=")[0].upper(): o.partition("=")[2] for o in t.options}


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class AlterTableOptions(Change):
    kind = "alter_table_options"
    order = Order.ALTER_TABLE
    table: Table  # as it is before
    after: Table
    # The table whose columns are restated under a new default collation: the plan's
    # before-state, in both directions (this step runs before the columns' own changes,
    # and its undo after theirs).
    columns_from: Table | None = None

    def __post_init__(self) -> None:
        if self.columns_from is None:
            self.columns_from = self.table

    def aspects(self) -> list[str]:
        b, a = self.table, self.after
        out = []
        if b.engine != a.engine:
            out.append(f"engine {b.engine} -> {a.engine}")
        if b.collation != a.collation:
            out.append(f"collation {b.collation} -> {a.collation}")
        old, new = _options(b), _options(a)
        out += [f"{k} {old.get(k, 'default')} -> {new.get(k, 'default')}"
                for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        return out

    def describe(self) -> str:
        return (f"Alter table options of {qualified(self.table.schema_, self.table.name)} "
                f"({', '.join(self.aspects())})")

    def recollated(self) -> list[str]:
        """Columns that follow the table's default collation on both sides."""
        if self.table.collation == self.after.collation or self.columns_from is None:
            return []
        wanted = {c.name: c for c in self.after.columns}
        return [c.name for c in self.columns_from.columns
                if c.collation is None and c.generated is None
                and _CHARACTER_TYPE.match(c.type) and c.name in wanted
                and wanted[c.name].collation is None]

    def mysql_alters(self, d: Dialect) -> list[MySQLAlter]:
        """The ALTER TABLEs (one, or two when a new engine's own options go back to their
        defaults), each with what it does: lockplane/dialects/mysql/alter_facts.py
        decides their ALGORITHM and LOCK."""
        from ..dialects.mysql.alter_facts import AlterOp, MySQLAlter
        from .mysql_common import _WORD, column_sql, word

        b, a = self.table, self.after
        where = f"table {qualified(a.schema_, a.name)}"
        parts: list[str] = []
        ops: list[AlterOp] = []
        options: list[str] = []
        if b.engine != a.engine and a.engine:
            parts.append(f"ENGINE={word(a.engine, 'engine', where)}")
            ops.append(AlterOp("engine"))
        if b.collation != a.collation and a.collation:
            parts.append(f"DEFAULT COLLATE={word(a.collation, 'collation', where)}")
            options.append("default collate")
        old, new = _options(b), _options(a)
        implied: list[str] = []
        if b.engine != a.engine:
            # (the engine's own options, set back in a statement of their own: in the
            # ALTER that changes the engine the server sets them after)
            from ..dialects.mysql.types import ENGINE_IMPLIED_OPTIONS

            implied = [k for k in ENGINE_IMPLIED_OPTIONS.get((b.engine or "").lower(), ())
                       if k not in new and k not in old]
        for key in sorted(set(old) | set(new)):
            if old.get(key) == new.get(key):
                continue
            value = new.get(key)
            value_sql = "DEFAULT" if value is None else value if _WORD.match(value) \
                else d.literal(value)
            parts.append(f"{word(key, 'table option', where)}={value_sql}")
            options.append(key.lower())
        if options:
            ops.append(AlterOp("table_options", options=tuple(options)))
        assert self.columns_from is not None
        for name in self.recollated():
            col = self.columns_from.column(name)
            assert col is not None and a.collation
            new_col = col.model_copy(update={"collation": a.collation})
            parts.append("MODIFY COLUMN " + column_sql(d, self.columns_from, new_col,
                                                       with_comment=True))
            ops.append(AlterOp("modify_column", column=new_col, old=col))
        out = [MySQLAlter(b, parts, tuple(ops))] if parts else []
        if implied:
            out.append(MySQLAlter(a, [f"{k}=DEFAULT" for k in implied],
                                  (AlterOp("table_options",
                                           options=tuple(k.lower() for k in implied)),)))
        return out

    def mysql_alter(self, d: Dialect) -> MySQLAlter | None:
        """The one ALTER TABLE (None: two; the online schema change tools take one)."""
        alters = self.mysql_alters(d)
        return alters[0] if len(alters) == 1 else None

    def sql_mysql(self, d: Dialect) -> list[str]:
        from ..dialects.mysql.alter_facts import alter_sql

        return [alter_sql(d, alter) for alter in self.mysql_alters(d)]

    def lock_mysql(self, d: Dialect) -> Lock:
        from ..dialects.mysql.alter_facts import alters_lock

        return alters_lock(d, self.mysql_alters(d))

    def inverse(self) -> list[Change]:
        return [AlterTableOptions(self.after, self.table, columns_from=self.columns_from,
                                  rank=self.rank)]

    def assess(self, d: Dialect) -> Assessment:
        name = qualified(self.table.schema_, self.table.name)
        if self.table.engine != self.after.engine or self.recollated():
            return Assessment.of(Finding("type-change-rewrite", (
                f"{name}: a new engine or collation copies the whole table, and a "
                "collation changes how code sees text sort and compare.")))
        return Assessment.of()

    def table_key(self) -> tuple[str, str]:
        return (self.table.schema_ or "", self.table.name)


def diff_table_options(b: Table, a: Table, d: Dialect) -> list[Change]:
    if not AlterTableOptions.speaks(d):
        return []
    if (b.engine, b.collation, sorted(b.options)) == (a.engine, a.collation,
                                                      sorted(a.options)):
        return []
    return [AlterTableOptions(b, a)]


TABLE_PART_DIFFERS.append(diff_table_options)
