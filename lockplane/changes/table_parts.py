"""The steps that complete a table after CREATE TABLE (or restore one after DROP TABLE).

Other change modules add their parts (triggers, policies, grants) by registering a
function in ``PART_BUILDERS``; this keeps one place that knows what a whole table is.
"""

from __future__ import annotations

from collections.abc import Callable

from ..model import Table
from .add_foreign_key import AddForeignKey
from .base import Change
from .create_index import CreateIndex
from .set_comment import SetComment

PART_BUILDERS: list[Callable[[Table], list[Change]]] = []


def comment_changes(table: Table) -> list[Change]:
    """Comments of a new table: on the table, its columns and inline constraints."""
    s, n = table.schema_ or "", table.name
    out: list[Change] = []
    if table.comment:
        out.append(SetComment("TABLE", (s, n), None, table.comment))
    for col in table.columns:
        if col.comment:
            out.append(SetComment.for_column(table, col.name, None, col.comment))
    # Foreign keys and indexes set their own comments when they are created.
    for group in (table.unique_constraints, table.check_constraints,
                  table.exclusion_constraints):
        for con in group:
            if con.comment and con.name:
                out.append(SetComment("CONSTRAINT", (con.name,), None, con.comment,
                                      on_table=(s, n)))
    return out


def table_parts(table: Table, *, with_fks: bool, new_table: bool = True) -> list[Change]:
    s = table.schema_ or ""
    out: list[Change] = [CreateIndex(s, table.name, ix, new_relation=new_table)
                         for ix in table.indexes]
    if with_fks:
        out += [AddForeignKey(table, fk, new_table=new_table) for fk in table.foreign_keys]
    for build in PART_BUILDERS:
        out += build(table)
    out += comment_changes(table)
    return out
