"""Diff two schemas into typed changes.

Tables, columns, constraints and indexes are diffed here. Other object kinds (types,
sequences, functions, views, triggers, policies, grants ...) register a differ in
``OBJECT_DIFFERS`` or ``TABLE_PART_DIFFERS`` from their own change module, so that
adding a kind touches one file.

SQLite cannot ALTER most of a table: when a table changes in a way SQLite cannot ALTER,
one ``RebuildTable`` step replaces all of that table's column and constraint changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from . import changes as _changes  # noqa: F401  (registers every change kind)
from .changes.add_column import AddColumn
from .changes.add_constraint import AddConstraint
from .changes.add_foreign_key import AddForeignKey
from .changes.alter_column import (
    AlterColumn,
    Regeneration,
    generation,
    generation_in_place,
    mentions_any,
    mentions_column,
    plan_regeneration,
)
from .changes.base import (  # the differ registries live there (no import cycle)
    CHANGE_ANNOTATORS,
    OBJECT_DIFFERS,
    TABLE_PART_DIFFERS,
    Change,
    ObjectDiffer,
    TablePartDiffer,
)
from .changes.create_index import CreateIndex
from .changes.create_statistics import CreateStatistics
from .changes.create_table import CreateTable
from .changes.drop_column import DropColumn
from .changes.drop_constraint import DropConstraint
from .changes.drop_foreign_key import DropForeignKey
from .changes.drop_index import DropIndex
from .changes.drop_statistics import DropStatistics
from .changes.drop_table import DropTable
from .changes.set_comment import SetComment
from .changes.table_hierarchy import skip_column_change
from .changes.table_parts import table_parts
from .dialects.base import Dialect
from .model import Column, Index, Schema, Table, quote_name, unchanged_tables
from .model import Sequence as SequenceObject

__all__ = ["OBJECT_DIFFERS", "TABLE_PART_DIFFERS", "ObjectDiffer", "TablePartDiffer", "diff",
           "match_named", "same"]

T = TypeVar("T")


def diff(before: Schema, after: Schema, dialect: Dialect) -> list[Change]:
    """Every change that turns ``before`` into ``after``, unordered (see plan.order)."""
    from .renames import declared_renames

    # Declared renames first; everything else is diffed against the renamed tables.
    before, out = declared_renames(before, after)
    for differ in OBJECT_DIFFERS:
        out += differ(before, after, dialect)
    out += diff_tables(before, after, dialect)
    for annotate in CHANGE_ANNOTATORS:
        annotate(out, before, after, dialect)
    from .fill import declared_fills

    # Columns declaring how existing rows get a value (-- lockplane:fill-with) are filled
    # before their NOT NULL.
    return declared_fills(out, before, after, dialect)


# ----------------------------------------------------------------------------- helpers
def _strip(obj: Any, *fields: str) -> dict[str, Any]:
    return obj.model_dump(exclude={"renamed_from", "fill_with", "is_primary_key", *fields})


def same(a: Any, b: Any, *ignore: str) -> bool:
    if a == b:  # fast path: pydantic compares field dicts without serializing
        return True
    return _strip(a, *ignore) == _strip(b, *ignore)


def match_named(before: Sequence[T], after: Sequence[T], *ignore: str,
                ) -> tuple[list[tuple[T, T]], list[T], list[T]]:
    """Pair objects: identical ones, then by name. Returns (changed pairs, dropped, added).

    An object declared without a name (original format) matches a live one with the same
    definition whatever the server named it.
    """
    left = list(before)
    right = list(after)
    changed: list[tuple[T, T]] = []
    for b in list(left):
        for a in right:
            if same(b, a, *ignore) or (getattr(a, "name", "x") is None
                                       and same(b, a, "name", "comment", *ignore)):
                left.remove(b)
                right.remove(a)
                if getattr(a, "comment", None) != getattr(b, "comment", None):
                    changed.append((b, a))
                break
    for b in list(left):
        name = getattr(b, "name", None)
        a2 = next((a for a in right if name is not None and getattr(a, "name", None) == name),
                  None)
        if a2 is not None:
            left.remove(b)
            right.remove(a2)
            changed.append((b, a2))
    return changed, left, right


def by_key(items: Iterable[T], key: Callable[[T], Any]) -> dict[Any, T]:
    return {key(i): i for i in items}


def _tkey(t: Table) -> tuple[str, str]:
    return (t.schema_ or "", t.name)


# ------------------------------------------------------------------------------ tables
def diff_tables(before: Schema, after: Schema, d: Dialect) -> list[Change]:
    from .changes.table_hierarchy import arrange, recreated_tables

    old = by_key(before.tables, _tkey)
    new = by_key(after.tables, _tkey)
    out: list[Change] = []
    inline_fks = not d.alters_constraints
    # A new partitioning cannot be ALTERed in: drop and create (with the partitions).
    redo = recreated_tables(before, after) if d.repartitions_by_recreating else set()
    for key, table in new.items():
        if key not in old or key in redo:
            out.append(CreateTable(table, owned_sequences=_kept_owned(key, before, after)
                                   if key in redo else [],
                                   released_sequences=_released_owned(key, before, after)
                                   if key in redo else []))
            out += table_parts(table, with_fks=not inline_fks)
    for key, table in old.items():
        if key not in new or key in redo:
            if not inline_fks:
                out += [DropForeignKey(table, fk, table_dropped=True)
                        for fk in table.foreign_keys]
            out.append(DropTable(table, recreated=key in redo, owned_sequences=_kept_owned(
                key, before, after) if key in redo else [],
                released_sequences=_released_owned(key, before, after) if key in redo else []))
    # In the desired schema's order (a set here would order steps by PYTHONHASHSEED:
    # the same inputs must always give the same plan).
    # Equal models differ in nothing (diff_table reads only the two tables): on a large
    # schema nearly every table is unchanged, and comparing is far cheaper.
    same = unchanged_tables(before, after)
    for key in [k for k in new if k in old and k not in redo and k not in same]:
        out += diff_table(old[key], new[key], d)
    _fill_referencing_tables(out, before, after)
    arrange(out, before, after)
    return out


def _kept_owned(key: tuple[str, str], before: Schema, after: Schema,
                ) -> list[SequenceObject]:
    """Sequences the table ``key`` owns on both sides (its serials, as wanted)."""
    mine = quote_name(*key) + "."
    kept = {(q.schema_, q.name) for q in before.sequences
            if q.owned_by and q.owned_by.startswith(mine)}
    return [q for q in after.sequences if (q.schema_, q.name) in kept
            and q.owned_by and q.owned_by.startswith(mine)]


def _released_owned(key: tuple[str, str], before: Schema, after: Schema,
                    ) -> list[SequenceObject]:
    """Sequences the recreated table ``key`` owns that the new one does not (dropped by
    the plan, owned by another column, or by none), as ``before`` has them: the plan's
    own steps change them after the table is made again, so the DROP must not take them
    along."""
    mine = quote_name(*key) + "."
    kept = {(q.schema_, q.name) for q in _kept_owned(key, before, after)}
    return [q for q in before.sequences if q.owned_by and q.owned_by.startswith(mine)
            and (q.schema_, q.name) not in kept]


def _fill_referencing_tables(changes: list[Change], before: Schema, after: Schema) -> None:
    """Tell each SQLite rebuild which tables reference it, so it checks their FKs too.

    Both schemas count: a child created or dropped by the same plan exists while the
    rebuild (or its undo) runs, since creates order before rebuilds and drops after.
    """
    from .changes.rebuild_table import RebuildTable

    for change in changes:
        if isinstance(change, RebuildTable):
            key = _tkey(change.after)
            names = [t.name for s in (before, after) for t in s.tables
                     if t.name != change.after.name
                     and any((fk.referenced_schema or "", fk.referenced_table) == key
                             for fk in t.foreign_keys)]
            change.referencing_tables = list(dict.fromkeys(names))


def sqlite_needs_rebuild(b: Table, a: Table) -> bool:
    """Whether SQLite can reach ``a`` from ``b`` only through the table-rebuild procedure."""
    # The primary key (AUTOINCREMENT included), WITHOUT ROWID and STRICT are fixed when
    # the table is created: no ALTER changes them.
    if not (same(b.primary_key, a.primary_key) if b.primary_key and a.primary_key
            else b.primary_key == a.primary_key):
        return True
    if b.without_rowid != a.without_rowid or b.strict != a.strict:
        return True
    for group in ("unique_constraints", "check_constraints", "foreign_keys"):
        changed, dropped, added = match_named(getattr(b, group), getattr(a, group))
        if changed or dropped or added:
            return True
    old_cols = {c.name: c for c in b.columns}
    for col in a.columns:
        prev = old_cols.get(col.name)
        if prev is None:
            # ALTER TABLE ADD COLUMN: no PK/UNIQUE, no STORED generated column (a VIRTUAL
            # one is fine), and a NOT NULL column needs a non-NULL constant default.
            stored = col.generated is not None and col.generated_kind == "stored"
            if stored or (not col.nullable and col.default is None):
                return True
            if col.fill_with is not None and (not col.nullable or col.default is not None):
                return True  # added bare, filled, then rebuilt with the rest (fill.py)
            if col.default is not None and _sqlite_non_constant(col.default):
                return True
        elif not same(prev, col, "comment"):
            return True
    # Dropped columns: DROP COLUMN refuses indexed/constrained columns; rebuild is exact.
    return any(c.name not in {x.name for x in a.columns} for c in b.columns)


def _sqlite_non_constant(default: str) -> bool:
    """A default ADD COLUMN refuses on a table with rows ("non-constant default"): any
    expression (SQLite reports "(1 + 2)" as "1 + 2") and CURRENT_TIME/DATE/TIMESTAMP."""
    from .changes.render import _is_sqlite_literal

    text = default.strip()
    return (text.startswith("(") or not _is_sqlite_literal(text) or text.upper() in (
        "CURRENT_TIME", "CURRENT_DATE", "CURRENT_TIMESTAMP"))


def diff_table(b: Table, a: Table, d: Dialect) -> list[Change]:
    out: list[Change] = []
    s = a.schema_ or ""
    rebuild = d.alters_by_rebuild and sqlite_needs_rebuild(b, a)
    if rebuild:
        from .changes.rebuild_table import RebuildTable

        out.append(RebuildTable(b, a))
    else:
        # Generated columns dropped and added back take their indexes and constraints.
        regen = plan_regeneration(b, a, d) if d.regenerates_generated_columns \
            else Regeneration()
        out += _diff_columns(b, a, d, regen)
        out += _diff_constraints(b, a, d, regen.names)
    # Indexes (a rebuild recreates the table's indexes itself)
    if not rebuild:
        # An INVALID index (a failed CREATE INDEX CONCURRENTLY) differs from its valid
        # twin: it is dropped and built again. One cannot be created invalid, so an
        # invalid index wanted where a valid one exists asks for nothing.
        (b_ix, b_redo), (a_ix, a_redo) = _split(b.indexes, regen.names), _split(
            a.indexes, regen.names)
        # An index the server rebuilds from its printed text when a column's type or
        # collation changes (ALTER COLUMN ... TYPE) may read back otherwise: an IN list
        # over varchar in its predicate becomes a cast ARRAY, a key's COLLATE equal to
        # the column's new collation is no longer printed and the key takes the
        # column's next one (the rollback's). Dropped before and built after, as
        # declared, both ways.
        retyped = _retyped_columns(b, a) if d.retype_rebuilds_indexes_from_text else set()
        if retyped:
            names = {ix.name for ix in (*b_ix, *a_ix) if _rebuilt_inexactly(ix, retyped)}
            b_redo += [ix for ix in b_ix if ix.name in names]
            a_redo += [ix for ix in a_ix if ix.name in names]
            b_ix = [ix for ix in b_ix if ix.name not in names]
            a_ix = [ix for ix in a_ix if ix.name not in names]
        changed, dropped, added = match_named(b_ix, a_ix, "comment")
        dropped += b_redo
        added += a_redo
        for old_ix, new_ix in changed:
            # (a partitioned table's index can be made invalid: ON ONLY the parent, the
            # partitions the desired schema keeps attached given their copies; it is
            # dropped and made so, since PostgreSQL detaches no index from its parent)
            if same(old_ix, new_ix, "comment") or (
                    old_ix.valid and not new_ix.valid and a.partition_by is None
                    and same(old_ix, new_ix, "comment", "valid")):
                if old_ix.comment == new_ix.comment or d.has_comment_statements:
                    if old_ix.comment != new_ix.comment:
                        out.append(SetComment("INDEX", (s, new_ix.name), old_ix.comment,
                                              new_ix.comment))
                    continue
                # (else the comment is a clause of the index: it is created again)
            dropped.append(old_ix)
            added.append(new_ix)
        out += [DropIndex(s, b.name, ix) for ix in dropped]
        out += [CreateIndex(s, a.name, ix) for ix in added]
    # A rebuild drops the old table with its triggers and creates the new one's: other
    # per-table differs (triggers) would repeat that work.
    if not rebuild:
        for differ in TABLE_PART_DIFFERS:
            out += differ(b, a, d)
        if d.regenerates_generated_columns:
            _undo_readds(b, out)
    if d.has_comment_statements:
        out += _diff_comments(b, a)
    return out


def _undo_readds(b: Table, changes: list[Change]) -> None:
    """The undo of a generated column made plain drops the column and adds it back
    generated, and DROP COLUMN takes the table's indexes, constraints and extended
    statistics that use it: those the plan neither drops nor makes (so they stand when
    the undo runs) are made again by that undo, as ``b`` has them."""
    undone = [c for c in changes if isinstance(c, AlterColumn) and c.undo_drops_column()]
    if not undone:
        return
    touched: set[tuple[str, str | None]] = set()
    for c in changes:
        for kind, attr, what in _TOUCHES:
            if isinstance(c, kind):
                touched.add((what, getattr(c, attr).name))
    s = b.schema_ or ""
    for c in undone:
        names = {c.before.name}
        constraints = [k for k in (b.primary_key, *b.unique_constraints,
                                   *b.exclusion_constraints, *b.check_constraints)
                       if k is not None and ("constraint", k.name) not in touched
                       and mentions_any(k, names)]
        c.undo_readds = [
            *(AddConstraint(b, k) for k in constraints),
            *(CreateIndex(s, b.name, ix) for ix in b.indexes
              if ("index", ix.name) not in touched and mentions_any(ix, names)),
            *(AddForeignKey(b, fk) for fk in b.foreign_keys
              if ("constraint", fk.name) not in touched and mentions_any(fk, names)),
            *(CreateStatistics(s, b.name, st) for st in b.statistics
              if ("statistics", st.name) not in touched and mentions_any(st, names))]


# (change kind, its attribute, what it names): what a table's diff drops or makes anew
_TOUCHES: tuple[tuple[type, str, str], ...] = (
    (DropIndex, "index", "index"), (CreateIndex, "index", "index"),
    (DropConstraint, "constraint", "constraint"), (AddConstraint, "constraint", "constraint"),
    (DropForeignKey, "fk", "constraint"), (AddForeignKey, "fk", "constraint"),
    (DropStatistics, "statistics", "statistics"), (CreateStatistics, "statistics", "statistics"))


def _retyped_columns(b: Table, a: Table) -> set[str]:
    """Columns of both whose type or collation changes."""
    old = {c.name: c for c in b.columns}
    return {c.name for c in a.columns if (o := old.get(c.name)) is not None
            and (o.type, o.collation) != (c.type, c.collation)}


def _rebuilt_inexactly(ix: Index, columns: set[str]) -> bool:
    """Whether ALTER COLUMN TYPE of ``columns`` may rebuild ``ix`` otherwise than declared:
    it uses one of them and has an expression or a predicate (over any column: the whole
    index is rebuilt from its text), or a key on one with its own collation or operator
    class."""
    if not mentions_any(ix, columns):
        return False
    return ix.where is not None or any(k.expression is not None for k in ix.keys) or any(
        k.column in columns and bool(k.collation or k.opclass) for k in ix.keys)


def _split(items: Sequence[T], names: set[str]) -> tuple[list[T], list[T]]:
    """(items not using the columns ``names``, items using them)."""
    keep: list[T] = []
    redo: list[T] = []
    for item in items:
        (redo if names and mentions_any(item, names) else keep).append(item)
    return keep, redo


def _diff_columns(b: Table, a: Table, d: Dialect, regen: Regeneration) -> list[Change]:
    out: list[Change] = []
    old_cols = {c.name: c for c in b.columns}
    retyped = _retyped_columns(b, a)
    new_names = {c.name for c in a.columns}
    for col in a.columns:
        prev = old_cols.get(col.name)
        if skip_column_change(prev, col, a):
            continue  # the parent's step does it (see changes.table_hierarchy)
        if prev is None:
            # A generated column comes after the columns it is computed from (and after
            # their new types).
            out.append(AddColumn(b, col, rank=1 if col.generated else 0, after_retypes=any(
                mentions_column(col.generated, c) for c in retyped)))
        elif col.name in regen.by_base:
            continue  # dropped and added back by the steps of the columns it uses
        elif not same(prev, col, "comment", "inherited", "grants", "statistics",
                      "compression"):
            # The step drops and adds the column back (or its undo does: a generated
            # column made plain comes back generated), and sets its comment again.
            in_place = generation_in_place(prev, col, b, a, d)
            own = col.name in regen.names or (
                d.regenerates_generated_columns and generation(prev) != generation(col)
                and not in_place)
            # Added back generated: after the columns it is computed from change. Made
            # plain (DROP EXPRESSION): before they do, which the server refuses while it
            # is computed from them ("cannot alter type of a column used by a generated
            # column"); its undo, which adds it back generated, then comes after theirs.
            rank = (-1 if prev.generated is not None and col.generated is None else 1) \
                if own else 0
            out.append(AlterColumn(b, _no_comment(prev), _no_comment(col),
                                   drops=regen.drops.get(col.name, []),
                                   adds=regen.adds.get(col.name, []),
                                   comments=(prev.comment, col.comment) if own else (None, None),
                                   rank=rank, in_place=in_place))
    for col in b.columns:
        if col.name not in new_names and not skip_column_change(col, None, a):
            # A generated column goes before the columns it is computed from.
            out.append(DropColumn(b, col, rank=-1 if col.generated else 0))
    return out


def _no_comment(c: Column) -> Column:
    return c.model_copy(update={"comment": None})


def _validity_change(table: Table, old: Any, new: Any, d: Dialect) -> list[Change]:
    """The same CHECK or foreign key, validated on one side only. NOT VALID wanted valid
    (an interrupted lock-safe add): VALIDATE CONSTRAINT, undone by making it NOT VALID
    again. Valid wanted NOT VALID: dropped and added back NOT VALID in one statement
    (changes.invalidate_constraint says why that is done rather than ignored)."""
    from .changes.invalidate_constraint import InvalidateConstraint
    from .changes.validate_constraint import ValidateConstraint

    # (``old`` carries the name and comment the database has; a new comment is its own
    # step, after this one)
    if not d.has_not_valid_constraints or not old.name:
        return []
    if new.valid and not old.valid:
        return [ValidateConstraint(table, old.name, undo=[InvalidateConstraint(table, old)])]
    if old.valid and not new.valid:
        return [InvalidateConstraint(table, old)]
    return []


def _diff_constraints(b: Table, a: Table, d: Dialect,
                      redo: set[str] | None = None) -> list[Change]:
    """``redo``: columns dropped and added back; constraints using them are too."""
    out: list[Change] = []
    redo = redo or set()
    # Primary key: at most one per table.
    if b.primary_key is not None and a.primary_key is not None and redo & set(
            a.primary_key.columns):
        out += [DropConstraint(b, b.primary_key), AddConstraint(b, a.primary_key)]
    elif b.primary_key != a.primary_key:
        pk_same = (b.primary_key is not None and a.primary_key is not None
                   and (a.primary_key.name is None or a.primary_key.name == b.primary_key.name)
                   and a.primary_key.columns == b.primary_key.columns
                   and a.primary_key.include == b.primary_key.include)
        if not pk_same:
            if b.primary_key is not None:
                out.append(DropConstraint(b, b.primary_key))
            if a.primary_key is not None:
                out.append(AddConstraint(b, a.primary_key))
    # A CHECK over a column whose type or collation changes is rebuilt by the server
    # from its printed text, which it may read back otherwise (an IN list over varchar
    # becomes a cast ARRAY): dropped and added back, written as declared.
    old_cols = {c.name: c for c in b.columns}
    retyped = {c.name for c in a.columns if (o := old_cols.get(c.name)) is not None
               and (o.type, o.collation) != (c.type, c.collation)}
    for group in ("unique_constraints", "check_constraints", "exclusion_constraints"):
        names = redo | retyped if group == "check_constraints" else redo
        (b_keep, b_redo), (a_keep, a_redo) = (_split(getattr(b, group), names),
                                              _split(getattr(a, group), names))
        changed, dropped, added = match_named(b_keep, a_keep)
        dropped += b_redo
        added += a_redo
        for old_c, new_c in changed:
            if same(old_c, new_c, "comment", "valid") and getattr(
                    old_c, "valid", True) != getattr(new_c, "valid", True):
                out += _validity_change(b, old_c, new_c, d)
            if not same(old_c, new_c, "comment", "valid"):
                dropped.append(old_c)
                added.append(new_c)
            elif old_c.comment != new_c.comment:  # type: ignore[union-attr]
                out.append(_constraint_comment(a, old_c, new_c))
        out += [DropConstraint(b, c) for c in dropped]
        out += [AddConstraint(b, c) for c in added]
    (b_keep, b_redo), (a_keep, a_redo) = (_split(b.foreign_keys, redo),
                                          _split(a.foreign_keys, redo))
    changed, dropped, added = match_named(b_keep, a_keep)
    dropped += b_redo
    added += a_redo
    for old_fk, new_fk in changed:
        if same(old_fk, new_fk, "comment", "valid") and old_fk.valid != new_fk.valid:
            out += _validity_change(b, old_fk, new_fk, d)
        if not same(old_fk, new_fk, "comment", "valid"):
            dropped.append(old_fk)
            added.append(new_fk)
        elif old_fk.comment != new_fk.comment:
            out.append(_constraint_comment(a, old_fk, new_fk))
    out += [DropForeignKey(b, fk) for fk in dropped]
    out += [AddForeignKey(b, fk) for fk in added]
    return out


def _diff_comments(b: Table, a: Table) -> list[Change]:
    s, n = a.schema_ or "", a.name
    out: list[Change] = []
    if b.comment != a.comment:
        out.append(SetComment("TABLE", (s, n), b.comment, a.comment))
    old_cols = {c.name: c for c in b.columns}
    for col in a.columns:
        prev = old_cols.get(col.name)
        before = prev.comment if prev else None
        if before != col.comment:
            out.append(SetComment("COLUMN", (s, n, col.name), before, col.comment))
    return out


def _constraint_comment(t: Table, old: Any, new: Any) -> Change:
    return SetComment("CONSTRAINT", (new.name or old.name,), old.comment, new.comment,
                      on_table=(t.schema_ or "", t.name))
