"""``plan-multiphase --pattern ... --table ...``: the desired schema, stated as one change.

Builds the target schema from the current one plus the stated change (with its
consequences: a renamed column is renamed in its indexes and constraints too; a dropped
column takes its indexes and constraints with it), then plans it like any other.
"""

from __future__ import annotations

import re

from ..errors import BadInput
from ..model import Schema, Table, UniqueConstraint
from ..optsql import type_name
from .patterns import index_uses, sql_mentions

PATTERNS = ("rename_column", "rename_table", "change_type", "drop_column", "drop_table",
            "add_not_null", "add_unique")


def _find_table(schema: Schema, ref: str) -> Table:
    if "." in ref:
        sch, name = ref.split(".", 1)
        t = schema.table(sch, name)
    else:
        t = next((x for x in schema.tables if x.name == ref), None)
    if t is None:
        raise BadInput(f"--table {ref}: no such table")
    return t


def _rename_in(names: list[str], old: str, new: str) -> list[str]:
    return [new if n == old else n for n in names]


def _rename_sql(expression: str | None, old: str, new: str) -> str | None:
    """``expression`` with the identifier ``old`` renamed (whole identifiers only)."""
    if not expression or not sql_mentions(expression, old):
        return expression
    quoted_old = '"' + old.replace('"', '""') + '"'
    quoted_new = '"' + new.replace('"', '""') + '"'
    out = expression.replace(quoted_old, quoted_new)
    return re.sub(rf"(?<![\w$\"']){re.escape(old)}(?![\w$\"'])", quoted_new, out)


def explicit_target(before: Schema, pattern: str, table: str, column: str | None,
                    to_name: str | None, to_type: str | None) -> Schema:
    if pattern not in PATTERNS:
        raise BadInput(f"--pattern must be one of {', '.join(PATTERNS)}")
    after = before.model_copy(deep=True)
    t = _find_table(after, table)
    needs_column = pattern in ("rename_column", "change_type", "drop_column", "add_not_null",
                               "add_unique")
    if needs_column:
        if not column:
            raise BadInput(f"--pattern {pattern} needs --column")
        if t.column(column) is None:
            raise BadInput(f"--column {column}: {t.name} has no such column")
    if pattern in ("rename_column", "rename_table") and not to_name:
        raise BadInput(f"--pattern {pattern} needs --to-name")
    if pattern == "change_type" and not to_type:
        raise BadInput("--pattern change_type needs --to-type")
    if to_type is not None:
        # It goes into DDL (ALTER ... TYPE, CAST(... AS ...)): exactly one type name,
        # as the dialect's own parser reads it.
        to_type = type_name(to_type, f"--to-type {to_type!r}", after.dialect)
    col = t.column(column) if column else None
    if pattern == "rename_column" and col is not None and to_name:
        if t.column(to_name) is not None:
            raise BadInput(f"--to-name {to_name}: {t.name} already has that column")
        col.renamed_from, col.name = col.name, to_name
        for group in (t.unique_constraints, t.foreign_keys):
            for c in group:
                c.columns = _rename_in(c.columns, column or "", to_name)
        if t.primary_key:
            t.primary_key.columns = _rename_in(t.primary_key.columns, column or "", to_name)
        for ix in t.indexes:
            for k in ix.keys:
                if k.column == column:
                    k.column = to_name
                k.expression = _rename_sql(k.expression, column or "", to_name)
            ix.columns = _rename_in(ix.columns, column or "", to_name)
            ix.include = _rename_in(ix.include, column or "", to_name)
            ix.where = _rename_sql(ix.where, column or "", to_name)
        for ck in t.check_constraints:
            ck.expression = _rename_sql(ck.expression, column or "", to_name) or ""
    elif pattern == "rename_table" and to_name:
        t.renamed_from, t.name = t.name, to_name
    elif pattern == "change_type" and col is not None and to_type:
        col.type = to_type
    elif pattern == "add_not_null" and col is not None:
        col.nullable = False
    elif pattern == "add_unique" and col is not None:
        # UNIQUE (column), named as PostgreSQL would name it.
        from ..dialects import get_dialect

        # (named as the server would name it: only where it derives such names)
        if not get_dialect(after.dialect).derived_constraint_names:
            raise BadInput("--pattern add_unique is planned for PostgreSQL only")
        name = f"{t.name}_{col.name}_key"[:63]
        taken = {o.name for group in (t.unique_constraints, t.indexes, t.check_constraints,
                                      t.foreign_keys) for o in group}
        if name in taken or (t.primary_key and t.primary_key.name == name):
            raise BadInput(f"--pattern add_unique: {t.name} already has {name}")
        t.unique_constraints.append(UniqueConstraint(name=name, columns=[col.name]))
    elif pattern == "drop_column":
        t.columns = [c for c in t.columns if c.name != column]
        t.indexes = [ix for ix in t.indexes if not index_uses(ix, column or "")]
        t.unique_constraints = [u for u in t.unique_constraints if column not in u.columns]
        t.foreign_keys = [f for f in t.foreign_keys if column not in f.columns]
        t.check_constraints = [c for c in t.check_constraints
                               if not sql_mentions(c.expression, column or "")]
    elif pattern == "drop_table":
        after.tables = [x for x in after.tables if x is not t]
        for other in after.tables:
            other.foreign_keys = [f for f in other.foreign_keys
                                  if (f.referenced_schema, f.referenced_table)
                                  != (t.schema_, t.name)]
    after._table_index = None
    return after
