"""Recreate an enum type whose values are removed or reordered.

PostgreSQL can only add enum values. The type is renamed aside, created anew under its
name, every column using it is converted through text, and the old type is dropped; in
one transaction, so readers never see a half-done state. Column defaults are dropped
around the conversion (they name the old type) and set again, and so are the indexes,
CHECKs, triggers and policies whose stored expressions hold a value of the type
(``'queued'::job_state``): the server re-reads their printed text when it converts a
column (where the old type, renamed aside, no longer compares with the new one), and the
old type cannot be dropped while they still use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ..model import (
    CheckConstraint,
    EnumType,
    ForeignKey,
    Function,
    Index,
    ObjectKey,
    Policy,
    Schema,
    Table,
    Trigger,
    View,
    qualified,
)
from .base import (
    ACCESS_EXCLUSIVE,
    CHANGE_ANNOTATORS,
    NO_LOCK,
    Assessment,
    Change,
    Finding,
    Lock,
    Order,
    RewriteContext,
    Safety,
    register,
)
from .pg_common import comment_sql

if TYPE_CHECKING:
    from ..dialects.base import Dialect

_SUFFIX = "_lockplane_old"


def aside_name(name: str) -> str:
    """The temporary name of the old type (kept under PostgreSQL's 63-byte limit)."""
    head = name
    while len((head + _SUFFIX).encode()) > 63:
        head = head[:-1]
    return head + _SUFFIX


Holder = Index | CheckConstraint | Trigger | Policy


def _casts_to(node: Any, schema: str, name: str) -> bool:
    """Whether a parse tree casts anything to the type (or an array of it)."""
    from pglast import ast

    if isinstance(node, ast.TypeCast) and node.typeName is not None:
        names = [n.sval for n in node.typeName.names or () if isinstance(n, ast.String)]
        if names and names[-1] == name and (len(names) == 1 or names[-2] == schema) \
                and names[0] != "pg_catalog":
            return True
    if isinstance(node, ast.Node):
        return any(_casts_to(getattr(node, a, None), schema, name)
                   for a in type(node).__slots__)
    if isinstance(node, tuple | list):
        return any(_casts_to(item, schema, name) for item in node)
    return False


def _mentions_type(sql: str | None, schema: str, name: str, prefix: str = "SELECT ") -> bool:
    """Whether an expression (or, with ``prefix`` "", a statement) as the server printed
    it holds a value of the type: the server prints every such constant with its cast."""
    if not sql:
        return False
    import pglast

    try:
        tree = pglast.parse_sql(prefix + sql)
    except pglast.parser.ParseError:
        return True  # (cannot tell: treat it as holding one)
    return _casts_to(tree, schema, name)


def enum_holders(before: Schema, after: Schema, schema: str,
                 name: str, *, replaced: bool = False) -> list[tuple[Table, Holder]]:
    """Indexes, CHECKs, triggers and policies of ``before`` that hold a value of the enum
    ``schema.name`` and that the plan keeps as they are (those it changes are its own
    steps). Indexes of partitions are their parents' (made again with them).
    ``replaced``: also the CHECKs and indexes the plan replaces (same name, new
    expression), which their swap puts back before a rollback reaches the type."""
    out: list[tuple[Table, Holder]] = []
    for t in before.tables:
        there = after.table(t.schema_ or "", t.name)
        if there is None:
            continue
        objs: list[tuple[Holder, bool]] = []
        if not t.partition_of:
            objs += [(ix, ix.valid and (_mentions_type(ix.where, schema, name) or any(
                _mentions_type(k.expression, schema, name) for k in ix.keys)))
                for ix in t.indexes]
        objs += [(ck, _mentions_type(ck.expression, schema, name))
                 for ck in t.check_constraints]
        objs += [(tr, _mentions_type(tr.definition, schema, name, prefix=""))
                 for tr in t.triggers]
        objs += [(po, _mentions_type(po.using, schema, name)
                  or _mentions_type(po.with_check, schema, name)) for po in t.policies]
        kept = [*there.indexes, *there.check_constraints, *there.triggers, *there.policies]
        swapped = {o.name for o in [*there.check_constraints, *there.indexes]} \
            if replaced else set()
        out += [(t, obj) for obj, holds in objs if holds and (
            obj in kept or (isinstance(obj, CheckConstraint | Index) and obj.name in swapped))]
    return out


def _holder_changes(t: Table, obj: Holder) -> tuple[Change, Change]:
    """(the change that drops ``obj``, the one that makes it again)."""
    from .add_constraint import AddConstraint
    from .create_index import CreateIndex
    from .create_policy import CreatePolicy
    from .create_trigger import CreateTrigger
    from .drop_constraint import DropConstraint
    from .drop_index import DropIndex
    from .drop_policy import DropPolicy
    from .drop_trigger import DropTrigger

    schema = t.schema_ or ""
    if isinstance(obj, Index):
        return DropIndex(schema, t.name, obj), CreateIndex(schema, t.name, obj)
    if isinstance(obj, CheckConstraint):
        return DropConstraint(t, obj), AddConstraint(t, obj)
    if isinstance(obj, Trigger):
        return DropTrigger(schema, t.name, obj), CreateTrigger(schema, t.name, obj)
    return DropPolicy(schema, t.name, obj), CreatePolicy(schema, t.name, obj)


def _sql_standard(f: Function) -> bool:
    """Whether a routine has an SQL-standard body (BEGIN ATOMIC / RETURN), whose column
    references the server records (and then refuses to convert those columns)."""
    import pglast
    from pglast import ast

    try:
        stmts = pglast.parse_sql(f.definition)
    except pglast.parser.ParseError:
        return False
    return any(isinstance(s.stmt, ast.CreateFunctionStmt) and s.stmt.sql_body is not None
               for s in stmts)


def enum_readers(before: Schema, after: Schema, schema: str, name: str,
                 users: list[tuple[str, str, str, int, str | None]], *,
                 routines_only: bool = False) -> list[View | Function]:
    """Views and routines the server will not let the columns of the type be converted
    under (views and SQL-standard routines reading those columns, or the type), and what
    depends on those in turn, in creation order (``before``'s dependency graph). Only
    those the plan keeps as they are. ``routines_only``: for a plan that recreates the
    type itself, whose views over those tables are its own steps already
    (create_view.diff_views), as is what depends on them (plan.recreate_dependents)."""
    from .base import column_key
    from .create_function import function_key

    views = {("relation", v.schema_ or "", v.name, ""): v for v in before.views}
    kept_views = {("relation", v.schema_ or "", v.name, ""): v for v in after.views}
    fns = {function_key(f): f for f in before.functions}
    kept_fns = {function_key(f): f for f in after.functions}
    dependents: dict[ObjectKey, set[ObjectKey]] = {}
    for obj, dep in before.dependencies:
        dependents.setdefault(dep, set()).add(obj)
    seeds: list[ObjectKey] = [("type", schema, name, "")]
    # (the columns of the type, as the server's graph records who reads each: not the
    # views and routines over their tables' other columns)
    seeds += [column_key(s, t, c) for s, t, c, _, _ in users]
    found: set[ObjectKey] = set()
    stack = list(seeds)
    while stack:
        key = stack.pop()
        for obj in sorted(dependents.get(key, ())):
            if obj in found:
                continue
            if obj in views:
                keep = not routines_only and kept_views.get(obj) == views[obj]
            elif obj in fns:
                # (a routine that only names a table's row type is no obstacle, unless
                # the view it names goes; one that takes or returns the type itself, in
                # any language, holds the old type, renamed aside, from being dropped)
                keep = kept_fns.get(obj) == fns[obj] and (
                    _sql_standard(fns[obj]) or key in views or key == seeds[0])
            else:
                continue
            if keep:
                found.add(obj)
                stack.append(obj)
    # creation order: what an object depends on first
    deps = {obj: {d for o, d in before.dependencies if o == obj and d in found}
            for obj in found}
    order: list[ObjectKey] = []
    while len(order) < len(found):
        ready = sorted(k for k in found if k not in order and deps[k] <= set(order))
        order += ready or sorted(k for k in found if k not in order)[:1]  # (a cycle)
    return [views[k] if k in views else fns[k] for k in order]


def _reader_changes(reader: View | Function) -> tuple[Change, Change]:
    from .create_function import CreateFunction
    from .create_view import CreateView
    from .drop_function import DropFunction
    from .drop_view import DropView

    if isinstance(reader, View):
        return DropView(reader, recreated=True), CreateView(reader, recreated=True)
    return DropFunction(reader, recreated=True), CreateFunction(reader)


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class RecreateEnum(Change):
    kind = "recreate_enum"
    risk_rule = "enum-value-reordered"  # the lockplane.rules id of what assess() reports
    order = Order.ALTER_TYPE
    before: EnumType
    after: EnumType
    # (schema, table, column, array dims, default) of every column using the type
    users: list[tuple[str, str, str, int, str | None]] = field(default_factory=list)
    # Foreign keys over those columns (either side): dropped around the conversion, since
    # converting one side leaves the key comparing two different types.
    foreign_keys: list[tuple[Table, ForeignKey]] = field(default_factory=list)
    # Re-add those keys NOT VALID and validate them in later steps (the lock-safe form):
    # the conversion holds ACCESS EXCLUSIVE already; checking the keys need not.
    fks_not_valid: bool = False
    # Indexes, CHECKs, triggers and policies that hold a value of the type (enum_holders):
    # dropped before the conversion and made again after it.
    holders: list[tuple[Table, Holder]] = field(default_factory=list)
    # Views and SQL-standard routines over the converted tables or the type, in creation
    # order (enum_readers): dropped before the conversion, created again after it.
    readers: list[View | Function] = field(default_factory=list)
    # Each user's default once the type is made again, where the plan changes it (set by
    # own_changed_defaults; empty: each keeps the default it has): the old one may hold a
    # removed value, the new one one the old type lacks, so the step sets it itself.
    defaults_after: list[str | None] = field(default_factory=list)

    def removed(self) -> list[str]:
        return [v for v in self.before.values if v not in self.after.values]

    def describe(self) -> str:
        name = qualified(self.after.schema_, self.after.name)
        gone = self.removed()
        what = f"remove {', '.join(map(repr, gone))}" if gone else "reorder values"
        return f"Recreate enum type {name} ({what})"

    def sql_postgres(self, d: Dialect) -> list[str]:
        from .create_enum import enum_values_sql

        e = self.after
        new = d.qname(e.schema_, e.name)
        old = d.qname(e.schema_, aside_name(self.before.name))
        from .render import foreign_key_def

        fks = [(d.qname(t.schema_, t.name), fk) for t, fk in self.foreign_keys if fk.name]
        out = [f"ALTER TABLE {t} DROP CONSTRAINT {d.quote(str(fk.name))}" for t, fk in fks]
        made_again: list[str] = []
        for reader in reversed(self.readers):
            out += _reader_changes(reader)[0].sql_postgres(d)
        for t, obj in self.holders:
            drop, create = _holder_changes(t, obj)
            out += drop.sql_postgres(d)
            made_again += create.sql_postgres(d)
        out += [f"ALTER TYPE {new} RENAME TO {d.quote(aside_name(self.before.name))}",
                f"CREATE TYPE {new} AS ENUM ({enum_values_sql(d, e.values)})"]
        for i, (schema, table, column, dims, default) in enumerate(self.users):
            t, c = d.qname(schema, table), d.quote(column)
            arr = "[]" * dims
            wanted = self.defaults_after[i] if self.defaults_after else default
            if default is not None:
                out.append(f"ALTER TABLE {t} ALTER COLUMN {c} DROP DEFAULT")
            out.append(f"ALTER TABLE {t} ALTER COLUMN {c} TYPE {new}{arr} "
                       f"USING {c}::text{arr}::{new}{arr}")
            if wanted is not None:
                out.append(f"ALTER TABLE {t} ALTER COLUMN {c} SET DEFAULT {wanted}")
        out += [f"ALTER TABLE {t} ADD {foreign_key_def(d, fk)}"
                + (" NOT VALID" if self.fks_not_valid or not fk.valid else "") for t, fk in fks]
        out += made_again
        for reader in self.readers:
            out += _reader_changes(reader)[1].sql_postgres(d)
        out += comment_sql(d, "TYPE", (e.schema_ or "", e.name), e.comment)
        out.append(f"DROP TYPE {old}")
        return out

    def lock_safe(self, ctx: RewriteContext) -> list[Change]:
        from .validate_constraint import ValidateConstraint

        named = [(t, fk) for t, fk in self.foreign_keys if fk.name and fk.valid]
        if not named:
            return [self]
        return [replace(self, fks_not_valid=True),
                *(ValidateConstraint(t, str(fk.name), rank=self.rank) for t, fk in named)]

    def inverse(self) -> list[Change]:
        if self.defaults_after:
            users = [(s, t, c, n, self.defaults_after[i])
                     for i, (s, t, c, n, _) in enumerate(self.users)]
            return [RecreateEnum(self.after, self.before, users, self.foreign_keys,
                                 holders=self.holders, readers=self.readers,
                                 defaults_after=[u[4] for u in self.users])]
        return [RecreateEnum(self.after, self.before, self.users, self.foreign_keys,
                             holders=self.holders, readers=self.readers)]

    def rollback_note(self) -> str | None:
        if self.removed():
            return ("restores the removed values to the type; rows that held them were "
                    "converted or refused by the forward step, so no row data comes back")
        return None

    def lock(self, d: Dialect) -> Lock:
        if not self.users:
            return NO_LOCK
        return Lock(ACCESS_EXCLUSIVE.mode, True, True, rewrites_table=True, scans_table=True)

    def assess(self, d: Dialect) -> Assessment:
        name = qualified(self.after.schema_, self.after.name)
        cols = ", ".join(f"{qualified(s, t)}.{c}" for s, t, c, _, _ in self.users) or "none"
        msgs = [f"PostgreSQL cannot remove or reorder enum values: {name} is recreated and "
                f"every column using it is rewritten under ACCESS EXCLUSIVE (columns: {cols})."]
        msgs.append("The old type cannot be dropped while a domain, composite type or "
                    "routine still uses it: move those first.")
        gone = self.removed()
        if gone:
            msgs.append(f"The rewrite fails if any row still holds {', '.join(map(repr, gone))}.")
            msgs.append("Safer: first update rows away from the removed values (and stop code "
                        "from writing them), then remove the values.")
            return Assessment(Safety.DANGEROUS, tuple(msgs), (
                Finding("enum-value-removed", msgs[-2], Safety.DANGEROUS),))
        return Assessment(Safety.REVIEW if self.users else Safety.SAFE, tuple(msgs))

    def table_key(self) -> tuple[str, str] | None:
        tables = {(s, t) for s, t, _, _, _ in self.users}
        return next(iter(tables)) if len(tables) == 1 else None


def own_changed_defaults(changes: list[Change], before: Schema, after: Schema,
                         d: Dialect) -> None:
    """A column of a recreated enum whose default the plan changes gets it from the
    recreate itself (between the conversion and the old type's drop): set before it, a
    new default may name a value the old type lacks; after it, the old one a removed
    value, and the rollback would set it back before the type has that value again. The
    column's own step keeps its other changes, or goes."""
    from dataclasses import replace as dc_replace

    from .alter_column import AlterColumn

    for c in [c for c in changes if isinstance(c, RecreateEnum)]:
        wanted: list[str | None] = []
        moved: set[tuple[str, str, str]] = set()
        for s, t, col, _, default in c.users:
            table = after.table(s, t)
            now = table.column(col) if table is not None else None
            wanted.append(now.default if now is not None else default)
            if now is not None and now.default != default:
                moved.add((s, t, col))
        if not moved:
            continue
        c.defaults_after = wanted
        out: list[Change] = []
        for other in changes:
            if isinstance(other, AlterColumn) and (
                    other.table.schema_ or "", other.table.name, other.before.name) in moved:
                other = dc_replace(other, before=other.before.model_copy(
                    update={"default": other.after.default}))
                if other.before == other.after and not (
                        other.drops or other.adds or other.checks_dropped
                        or other.checks_added or other.serial_dropped
                        or other.serial_created or other.not_null_check) \
                        and other.comments == (None, None):
                    continue  # nothing left but the default, which the recreate sets
            out.append(other)
        changes[:] = out


CHANGE_ANNOTATORS.append(own_changed_defaults)
