"""ALTER TABLE ... ADD CONSTRAINT ... FOREIGN KEY."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..model import ForeignKey, Schema, Table, qualified, unchanged_tables
from .base import (
    CHANGE_ANNOTATORS,
    OBJECT_DIFFERS,
    SHARE_ROW_EXCLUSIVE,
    Assessment,
    Change,
    Finding,
    Lock,
    Order,
    RewriteContext,
    register,
)
from .render import foreign_key_def, table_name

if TYPE_CHECKING:
    from ..dialects.base import Dialect
    from ..dialects.mysql.alter_facts import MySQLAlter


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class AddForeignKey(Change):
    kind = "add_foreign_key"
    order = Order.ADD_FOREIGN_KEY
    table: Table
    fk: ForeignKey
    new_table: bool = False  # on a table created by this plan: nothing to validate
    # Checks new writes at once and existing rows later, in a VALIDATE step that blocks
    # no writes (the lock-safe form).
    not_valid: bool = False

    def describe(self) -> str:
        fk = self.fk
        label = f"foreign key {fk.name}" if fk.name else "foreign key"
        return (f"Add {label} {qualified(self.table.schema_, self.table.name)}"
                f"({', '.join(fk.columns)}) -> "
                f"{qualified(fk.referenced_schema, fk.referenced_table)}")

    def sql_postgres(self, d: Dialect) -> list[str]:
        nv = " NOT VALID" if self.fk.enforced and (self.not_valid or not self.fk.valid) \
            else ""
        out = [f"ALTER TABLE {table_name(d, self.table)} ADD {foreign_key_def(d, self.fk)}{nv}"]
        if self.fk.comment and self.fk.name:
            from .set_comment import SetComment

            out += SetComment("CONSTRAINT", (self.fk.name,), None, self.fk.comment,
                              on_table=(self.table.schema_ or "", self.table.name)
                              ).sql_postgres(d)
        return out

    def mysql_alter(self, d: Dialect) -> MySQLAlter:
        """ADD FOREIGN KEY, with foreign_key_checks on: existing rows are checked (the
        server copies the table; alter_facts decides)."""
        from ..dialects.mysql.alter_facts import AlterOp, MySQLAlter

        return MySQLAlter(self.table, [f"ADD {foreign_key_def(d, self.fk)}"],
                          (AlterOp("add_foreign_key"),))

    def sql_mysql(self, d: Dialect) -> list[str]:
        from ..dialects.mysql.alter_facts import alter_sql

        return [alter_sql(d, self.mysql_alter(d))]

    def lock_mysql(self, d: Dialect) -> Lock:
        from ..dialects.mysql.alter_facts import alter_lock

        return alter_lock(d, self.mysql_alter(d))

    def lock_safe(self, ctx: RewriteContext) -> list[Change]:
        if self.new_table or self.not_valid or not self.fk.name or not ctx.plain_table(
                self.table.schema_, self.table.name) or not ctx.plain_table(
                self.fk.referenced_schema, self.fk.referenced_table):
            return [self]
        from .validate_constraint import ValidateConstraint

        if not self.fk.enforced:  # NOT ENFORCED: nothing is checked, nothing to split
            return [self]
        if not self.fk.valid:  # wanted NOT VALID: existing rows are not to be checked
            return [replace(self, not_valid=True)]
        return [replace(self, not_valid=True), ValidateConstraint(self.table, self.fk.name)]

    def inverse(self) -> list[Change]:
        from .drop_foreign_key import DropForeignKey

        return [DropForeignKey(self.table, self.fk)]

    def lock(self, d: Dialect) -> Lock:
        own = self.for_dialect("lock", d)  # (MySQL: lock_mysql, alter_facts)
        if own is not None:
            return own(d)  # type: ignore[no-any-return]
        # SHARE ROW EXCLUSIVE on both tables; held while every existing row is checked,
        # unless NOT VALID (then only briefly).
        scans = (not self.new_table and not self.not_valid and self.fk.valid
                 and self.fk.enforced)
        return Lock(SHARE_ROW_EXCLUSIVE.mode, False, True, scans_table=scans)

    def assess(self, d: Dialect) -> Assessment:
        if self.new_table:
            return Assessment.of()
        if self.not_valid or not self.fk.valid:
            return Assessment.of(notes=("New writes are checked at once; existing rows are "
                                        "validated separately without blocking writes.",))
        return Assessment.of(Finding("add-foreign-key", (
            "Adding a foreign key checks every existing row while blocking writes on both "
            "tables, and fails on orphaned rows.")))

    def table_key(self) -> tuple[str, str]:
        return (self.table.schema_ or "", self.table.name)


# ------------------------------------------------------------------------------ differ
def unchanged_foreign_keys(before: Schema, after: Schema,
                           wanted: Callable[[Table, ForeignKey], bool] | None = None,
                           ignore: tuple[str, ...] = (),
                           ) -> list[tuple[Table, ForeignKey, Table, ForeignKey]]:
    """Foreign keys present alike on both sides: (table, fk) before and after. ``wanted``
    picks the keys worth comparing first (comparing is the costly part); ``ignore``:
    fields besides the comment that may differ."""
    from ..diff import same

    out = []
    for tb in before.tables:
        if not tb.foreign_keys:
            continue
        keys = [fk for fk in tb.foreign_keys if wanted is None or wanted(tb, fk)]
        ta = after.table(tb.schema_ or "", tb.name) if keys else None
        if ta is None:
            continue
        for fk in keys:
            twin = next((f for f in ta.foreign_keys if same(fk, f, "comment", *ignore)),
                        None)
            if twin is not None:
                out.append((tb, fk, ta, twin))
    return out


def diff_retyped_foreign_keys(before: Schema, after: Schema, d: Dialect) -> list[Change]:
    """Drop and re-add an unchanged foreign key around type changes of its columns.

    PostgreSQL re-creates a foreign key when ALTER COLUMN TYPE changes one side; between
    the two ALTERs of a key and its reference (text -> uuid on both) the sides no longer
    compare ("foreign key constraint ... cannot be implemented"). MySQL refuses to
    change a column a foreign key uses at all. (Where constraints change only with
    their table, SQLite, the rebuild does it.) A key whose validity changes too is added
    back as wanted (valid or NOT VALID), and that is its validity change
    (drop_validity_of_readded_keys).
    """
    if not d.alters_constraints:
        return []

    # Columns whose type changes, as (schema, table, column): few or none in a plan, so
    # the foreign keys are looked at only when there are some.
    retyped_columns: set[tuple[str, str, str]] = set()
    same = unchanged_tables(before, after)
    for tb in before.tables:
        if (tb.schema_ or "", tb.name) in same:
            continue
        ta = after.table(tb.schema_ or "", tb.name)
        if ta is None or ta.columns == tb.columns:
            continue
        types_after = {c.name: c.type for c in ta.columns}
        retyped_columns.update(
            (tb.schema_ or "", tb.name, c.name) for c in tb.columns
            if types_after.get(c.name, c.type) != c.type)
    if not retyped_columns:
        return []

    def retyped(schema: str | None, table: str, columns: list[str]) -> bool:
        return any((schema or "", table, name) in retyped_columns for name in columns)

    def on_retyped(tb: Table, fk: ForeignKey) -> bool:
        return retyped(tb.schema_, tb.name, fk.columns) or retyped(
            fk.referenced_schema, fk.referenced_table, fk.referenced_columns)

    from .drop_foreign_key import DropForeignKey

    out: list[Change] = []
    for tb, fk, ta, fk_after in unchanged_foreign_keys(before, after, on_retyped,
                                                       ignore=("valid",)):
        out += [DropForeignKey(tb, fk), AddForeignKey(ta, fk_after)]
    return out


def replaced_keys(changes: list[Change]) -> dict[tuple[str, str], set[frozenset[str]]]:
    """Per table: the column sets of the PRIMARY KEY, UNIQUE constraints and unique
    indexes (over plain columns, not partial) that ``changes`` drop, changed or not: what
    a foreign key referencing those columns may depend on (the server refuses the drop
    while it does: 'cannot drop constraint ... because other objects depend on it')."""
    from ..model import PrimaryKey, UniqueConstraint
    from .drop_constraint import DropConstraint
    from .drop_index import DropIndex

    out: dict[tuple[str, str], set[frozenset[str]]] = {}
    for c in changes:
        columns: list[str] | None = None
        if isinstance(c, DropConstraint) and isinstance(
                c.constraint, PrimaryKey | UniqueConstraint) and not c.temporary:
            columns = c.constraint.columns
        elif isinstance(c, DropIndex) and c.index.unique and c.index.where is None and all(
                k.column is not None and k.expression is None for k in c.index.keys):
            columns = [k.column for k in c.index.keys if k.column is not None]
        key = c.table_key()
        if columns and key is not None:
            out.setdefault(key, set()).add(frozenset(columns))
    return out


def references(table: Table, fk: ForeignKey) -> tuple[str, str]:
    """(schema, table) that ``fk`` of ``table`` references."""
    return (fk.referenced_schema or table.schema_ or "", fk.referenced_table)


def readd_keys_over_replaced_keys(changes: list[Change], before: Schema, after: Schema,
                                  d: Dialect) -> None:
    """Drop and re-add an unchanged foreign key around the replacement of the key it
    references (a UNIQUE made NULLS NOT DISTINCT or plain, renamed, made deferrable; a
    unique index built again): the key depends on the referenced PRIMARY KEY, UNIQUE or
    unique index, and the server refuses to drop that under it. Added back as
    diff_retyped_foreign_keys adds a retyped key's: NOT VALID, then validated, in the
    lock-safe form."""
    if not d.alters_constraints:
        return
    replaced = replaced_keys(changes)
    if not replaced:
        return
    from .drop_foreign_key import DropForeignKey

    dropped = {(c.table.schema_ or "", c.table.name, c.fk.name) for c in changes
               if isinstance(c, DropForeignKey)}

    def on_replaced(tb: Table, fk: ForeignKey) -> bool:
        return frozenset(fk.referenced_columns) in replaced.get(references(tb, fk), set()) \
            and (tb.schema_ or "", tb.name, fk.name) not in dropped

    for tb, fk, ta, fk_after in unchanged_foreign_keys(before, after, on_replaced,
                                                       ignore=("valid",)):
        changes += [DropForeignKey(tb, fk), AddForeignKey(ta, fk_after)]


def drop_validity_of_readded_keys(changes: list[Change], before: Schema, after: Schema,
                                  d: Dialect) -> None:
    """A foreign key dropped and added back around type changes (diff_retyped_foreign_keys)
    or around the key it references (readd_keys_over_replaced_keys) comes back valid or
    NOT VALID as wanted: the table diff's VALIDATE or NOT VALID step for it would run on
    the key added back (and before it, the drop would not yet have happened: the ALTER
    TYPE failed under the old key, 'cannot be implemented')."""
    from .drop_foreign_key import DropForeignKey
    from .invalidate_constraint import InvalidateConstraint
    from .validate_constraint import ValidateConstraint

    readd_keys_over_replaced_keys(changes, before, after, d)
    readded = {(c.table.schema_ or "", c.table.name, c.fk.name) for c in changes
               if isinstance(c, DropForeignKey) and not c.table_dropped}
    if not readded:
        return

    def validity_of_readded(c: Change) -> bool:
        if isinstance(c, InvalidateConstraint) and isinstance(c.constraint, ForeignKey):
            name = c.constraint.name
        elif isinstance(c, ValidateConstraint):
            name = c.name
        else:
            return False
        return (c.table.schema_ or "", c.table.name, name) in readded

    changes[:] = [c for c in changes if not validity_of_readded(c)]


OBJECT_DIFFERS.append(diff_retyped_foreign_keys)
CHANGE_ANNOTATORS.append(drop_validity_of_readded_keys)
