"""Partitioned tables, partitions and INHERITS children: what the differ must know.

Not a change kind. A child's inherited columns (``Column.inherited``) are added, dropped
and retyped through its parent: ALTER TABLE on the parent recurses to every child, so
the child must not get the same step again (PostgreSQL refuses most of them on a child
anyway). A child may still have its own DEFAULT and NOT NULL: those are compared with
what the parent's step leaves on the child (``diff_inherited_columns``).

Parents are created before their children and dropped after them (``arrange``), and a
table whose partitioning changes (a plain table becoming partitioned, a new partition
key) cannot be altered into shape: it is dropped and created again, with every partition
(``recreated_tables``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..model import Column, Schema, Table, split_name
from .alter_column import AlterColumn
from .base import CHANGE_ANNOTATORS, OBJECT_DIFFERS, Change

if TYPE_CHECKING:
    from ..dialects.base import Dialect

Key = tuple[str, str]


def key_of(t: Table) -> Key:
    return (t.schema_ or "", t.name)


def parent_keys(t: Table) -> list[Key]:
    s = t.schema_ or ""
    return [split_name(p, s) for p in t.parents()]


def depth(schema: Schema, t: Table, _seen: frozenset[Key] = frozenset()) -> int:
    """0 for a table without parents, 1 + the deepest parent's depth otherwise."""
    best = 0
    for pk in parent_keys(t):
        parent = schema.table(*pk)
        if parent is not None and pk not in _seen:
            best = max(best, 1 + depth(schema, parent, _seen | {key_of(t)}))
        elif parent is None:
            best = max(best, 1)
    return best


def inheritors(schema: Schema, t: Table, column: str) -> tuple[Key, ...]:
    """The partitions and INHERITS children, at any depth, that take ``column`` from
    ``t``: an ALTER COLUMN on ``t`` recurses to them (what reads their column is in the
    way of a new type as much as what reads ``t``'s)."""
    children: dict[Key, list[Table]] = {}
    for c in schema.tables:
        for pk in parent_keys(c):
            children.setdefault(pk, []).append(c)
    out: list[Key] = []
    stack = [key_of(t)]
    while stack:
        for c in children.get(stack.pop(), ()):
            col = c.column(column)
            if col is not None and col.inherited and key_of(c) not in out:
                out.append(key_of(c))
                stack.append(key_of(c))
    return tuple(out)


def note_inheritors(changes: list[Change], before: Schema, after: Schema,
                    d: Dialect) -> None:
    """Each column type change learns the tables its ALTER recurses to (AlterColumn.
    inheritors): what reads their column is dropped before it and made again after, as
    what reads the parent's is (plan.recreate_dependents, plan.order_changes)."""
    for c in changes:
        if isinstance(c, AlterColumn) and c.objects_dropped():
            c.inheritors = inheritors(before, c.table, c.before.name)


def note_kept_by_children(changes: list[Change], before: Schema, after: Schema,
                          d: Dialect) -> None:
    """A parent's dropped column that every INHERITS child taking it from that parent
    alone keeps as its own (inherited before, not after) is dropped from the parent
    ONLY: the children's columns stay, with their values. Where some child keeps it and
    another does not, the plain drop stays (the keeping child loses it: the apply says
    the catalog diverged)."""
    from .drop_column import DropColumn

    for c in changes:
        if not isinstance(c, DropColumn) or after.table(*key_of(c.table)) is None:
            continue
        pkey, name = key_of(c.table), c.column.name
        takers = [t for t in before.tables if pkey in parent_keys(t)
                  and (col := t.column(name)) is not None and col.inherited
                  and not _other_parent_has(before, t, pkey, name)]
        kept = [t for t in takers if (a := after.table(*key_of(t))) is not None
                and pkey in parent_keys(a) and (ac := a.column(name)) is not None
                and not ac.inherited]
        if kept and len(kept) == len(takers) and not any(t.partition_of for t in kept):
            c.only = True


def _other_parent_has(schema: Schema, t: Table, pkey: Key, name: str) -> bool:
    """Whether a parent of ``t`` other than ``pkey`` gives it column ``name`` too (the
    column stays inherited whatever ``pkey`` does)."""
    return any((p := schema.table(*k)) is not None and p.column(name) is not None
               for k in parent_keys(t) if k != pkey)


def parent_column(schema: Schema, t: Table, name: str) -> Column | None:
    for pk in parent_keys(t):
        parent = schema.table(*pk)
        if parent is not None:
            col = parent.column(name)
            if col is not None:
                return col
    return None


def skip_column_change(prev: Column | None, col: Column | None, after: Table) -> bool:
    """Whether diff.py leaves this column to the parent (and ``diff_inherited_columns``).

    Inherited on both sides (or added/dropped as inherited while the table stays a
    child): the parent's step does it. A column that becomes inherited (ATTACH, INHERIT)
    or stops being inherited (DETACH, NO INHERIT) is the table's own business.
    """
    if col is not None and col.inherited:
        return prev is None or prev.inherited
    if col is None and prev is not None and prev.inherited:
        return bool(after.parents())
    return False


def _with(col: Column, default: str | None, nullable: bool) -> Column:
    return col.model_copy(update={"default": default, "nullable": nullable, "comment": None})


def column_overrides(schema: Schema, t: Table) -> list[tuple[Column, Column]]:
    """Inherited columns of ``t`` whose DEFAULT / NOT NULL differ from what the parent
    gives a new child: (as given, as wanted)."""
    out = []
    for c in t.columns:
        if not c.inherited or c.generated is not None or c.identity is not None:
            continue
        pc = parent_column(schema, t, c.name)
        if pc is not None and (pc.default, pc.nullable) != (c.default, c.nullable):
            out.append((_with(c, pc.default, pc.nullable), _with(c, c.default, c.nullable)))
    return out


def diff_inherited_columns(before: Schema, after: Schema, d: Dialect) -> list[Change]:
    """DEFAULT / NOT NULL of inherited columns where a child differs from its parent
    (a new child gets them with its CREATE TABLE). (Only PostgreSQL's tables inherit.)"""
    if not any(a.parents() for a in after.tables):
        return []
    out: list[Change] = []
    for a in after.tables:
        if not a.parents():
            continue
        b = before.table(*key_of(a))
        if b is None:
            continue
        rank = depth(after, a)
        for ca in a.columns:
            if not ca.inherited or ca.generated is not None or ca.identity is not None:
                continue
            pa = parent_column(after, a, ca.name)
            if pa is None:
                continue
            cb = b.column(ca.name)
            if cb is None or not cb.inherited:
                if cb is not None:
                    continue  # it becomes inherited: diff.py alters it as the table's own
                # New through the parent: it starts as the parent's.
                eff = _with(ca, pa.default, pa.nullable)
            else:
                pb = parent_column(before, b, ca.name)
                # The parent's own change recurses to the child; otherwise it keeps its own.
                default = (pa.default if pb is not None and pb.default != pa.default
                           else cb.default)
                nullable = (pa.nullable if pb is not None and pb.nullable != pa.nullable
                            else cb.nullable)
                eff = _with(cb.model_copy(update={"type": ca.type,
                                                  "collation": ca.collation}),
                            default, nullable)
            want = _with(eff, ca.default, ca.nullable)
            if (eff.default, eff.nullable) != (want.default, want.nullable):
                out.append(AlterColumn(b, eff, want, rank=rank))
    return out


def recreated_tables(before: Schema, after: Schema) -> set[Key]:
    """Tables on both sides whose partitioning cannot be altered: the table is dropped
    and created again, and so is every table below it (partitions go with their parent)."""
    out: set[Key] = set()
    for a in after.tables:
        b = before.table(*key_of(a))
        if b is not None and b.partition_by != a.partition_by:
            out.add(key_of(a))
    if not out:
        return out
    # Below it, on either side: kept ones are created again, dropped ones go first.
    grew = True
    while grew:
        grew = False
        for schema in (before, after):
            for t in schema.tables:
                k = key_of(t)
                if k not in out and any(pk in out for pk in parent_keys(t)):
                    out.add(k)
                    grew = True
    return out


def arrange(changes: list[Change], before: Schema, after: Schema) -> None:
    """Parents are created before their children and dropped after them; a new child
    gets its own DEFAULT / NOT NULL; attach and detach keep what PostgreSQL keeps."""
    from .alter_inheritance import AlterInheritance
    from .attach_partition import AttachPartition
    from .create_table import CreateTable
    from .detach_partition import DetachPartition
    from .drop_table import DropTable

    for c in list(changes):
        if isinstance(c, CreateTable) and c.table.parents():
            c.rank = depth(after, c.table)
            c.column_overrides = column_overrides(after, c.table)
        elif isinstance(c, DropTable):
            # A table whose rules name other tables goes first (and comes back last).
            c.rank = -depth(before, c.table) - (1 if c.table.rules else 0)
            if c.table.parents():
                c.column_overrides = column_overrides(before, c.table)
        elif isinstance(c, AttachPartition):
            _attach(changes, c, before, after)
        elif isinstance(c, DetachPartition):
            _detach(changes, c, before, after)
        elif isinstance(c, AlterInheritance):
            _inheritance(changes, c, before, after)


# ----------------------------------------------------------------- attach and detach
def _same(x: object, y: object) -> bool:
    from ..diff import same

    return same(x, y, "name", "comment")


def _parent(schema: Schema, t: Table, ref: str) -> Table | None:
    return schema.table(*split_name(ref, t.schema_ or ""))


def _clone_name(child: str, label: str, columns: list[str] | None) -> str | None:
    """The name PostgreSQL gives a copy of a parent's index or key on a partition
    (ChooseIndexName); None when it cannot be told (expressions, long names)."""
    if columns is None:
        return None
    name = "_".join([child, *columns, label]) if label != "pkey" else f"{child}_pkey"
    return name if len(name.encode()) <= 63 else None


def _remove(changes: list[Change], pred: object) -> bool:
    for i, c in enumerate(changes):
        if pred(c):  # type: ignore[operator]
            del changes[i]
            return True
    return False


def _attach(changes: list[Change], att: Change, before: Schema, after: Schema) -> None:
    """What the attach takes over is not dropped first; what it creates is dropped again
    by its inverse; the parent's CHECK constraints it needs are added first."""
    from .add_constraint import AddConstraint
    from .drop_constraint import DropConstraint
    from .drop_foreign_key import DropForeignKey
    from .drop_index import DropIndex

    a: Table = att.table  # type: ignore[attr-defined]
    b = before.table(*key_of(a))
    parent = _parent(after, a, att.parent)  # type: ignore[attr-defined]
    if b is None or parent is None:
        return
    s = a.schema_ or ""
    created: list[Change] = []
    for ix in parent.indexes:
        mine = next((x for x in b.indexes if _same(x, ix)), None)
        if mine is not None:
            _remove(changes, lambda c, m=mine: isinstance(c, DropIndex)
                    and (c.schema, c.relation) == key_of(b) and c.index.name == m.name)
            continue
        cols = ix.columns if ix.columns and all(k.column for k in ix.keys) else None
        name = _clone_name(a.name, "idx", cols)
        if name is not None:
            created.append(DropIndex(s, a.name, ix.model_copy(update={"name": name,
                                                                    "comment": None})))
    keys = ([parent.primary_key] if parent.primary_key else []) + parent.unique_constraints
    for key in keys:
        is_pk = key is parent.primary_key
        mine = b.primary_key if is_pk else next(
            (u for u in b.unique_constraints if _same(u, key)), None)
        if mine is not None and mine.columns == key.columns:
            _remove(changes, lambda c, m=mine: isinstance(c, DropConstraint)
                    and key_of(c.table) == key_of(b) and c.constraint.name == m.name)
            continue
        name = _clone_name(a.name, "pkey" if is_pk else "key", key.columns)
        if name is not None:
            created.append(DropConstraint(a, key.model_copy(update={"name": name,
                                                                   "comment": None})))
    for ck in parent.check_constraints:
        mine = next((x for x in b.check_constraints if x.name == ck.name), None)
        if mine is not None:
            _remove(changes, lambda c, m=mine: isinstance(c, DropConstraint)
                    and key_of(c.table) == key_of(b) and c.constraint.name == m.name)
        elif not ck.no_inherit:
            changes.append(AddConstraint(b, ck.model_copy(update={"comment": None})))
    for fk in parent.foreign_keys:
        mine = next((x for x in b.foreign_keys if _same(x, fk)), None)
        if mine is not None:
            _remove(changes, lambda c, m=mine: isinstance(c, DropForeignKey)
                    and key_of(c.table) == key_of(b) and c.fk.name == m.name)
        elif fk.name:
            created.append(DropForeignKey(a, fk.model_copy(update={"comment": None})))
    att.created = created  # type: ignore[attr-defined]


def _detach(changes: list[Change], det: Change, before: Schema, after: Schema) -> None:
    """The partition keeps copies of its parent's indexes and keys as its own: those the
    detached table wants are not created again, the others are dropped."""
    from .add_constraint import AddConstraint
    from .add_foreign_key import AddForeignKey
    from .create_index import CreateIndex
    from .drop_constraint import DropConstraint
    from .drop_foreign_key import DropForeignKey
    from .drop_index import DropIndex

    b: Table = det.table  # type: ignore[attr-defined]
    parent = _parent(before, b, det.parent)  # type: ignore[attr-defined]
    a = after.table(*key_of(b))
    if parent is None or a is None:
        return
    s = b.schema_ or ""
    clones = b.clone_names

    def keep_or_drop(wanted: object | None, remove: object, drop: Change) -> None:
        if wanted is not None and _remove(changes, remove):
            return
        changes.append(drop)

    for ix in parent.indexes:
        cols = ix.columns if ix.columns and all(k.column for k in ix.keys) else None
        name = clones.get(f"index:{ix.name}") or _clone_name(b.name, "idx", cols)
        if name is None:
            continue
        copy = ix.model_copy(update={"name": name, "comment": None})
        wanted = next((x for x in a.indexes if x.name == name and _same(x, ix)), None)
        keep_or_drop(wanted, lambda c, n=name: isinstance(c, CreateIndex)
                     and (c.schema, c.relation) == key_of(a) and c.index.name == n,
                     DropIndex(s, b.name, copy))
    keys = ([parent.primary_key] if parent.primary_key else []) + parent.unique_constraints
    for key in keys:
        is_pk = key is parent.primary_key
        name = clones.get(f"constraint:{key.name}") or _clone_name(
            b.name, "pkey" if is_pk else "key", key.columns)
        if name is None:
            continue
        copy = key.model_copy(update={"name": name, "comment": None})
        mine = a.primary_key if is_pk else next(
            (u for u in a.unique_constraints if u.name == name), None)
        wanted = mine if mine is not None and mine.name == name and _same(mine, key) else None
        keep_or_drop(wanted, lambda c, n=name: isinstance(c, AddConstraint)
                     and key_of(c.table) == key_of(a) and c.constraint.name == n,
                     DropConstraint(b, copy))
    _detach_checks(changes, parent, b, a)
    for fk in parent.foreign_keys:
        name = clones.get(f"constraint:{fk.name}") or fk.name
        if name is None:
            continue
        copy = fk.model_copy(update={"name": name, "comment": None})
        wanted = next((x for x in a.foreign_keys if x.name == name and _same(x, fk)), None)
        keep_or_drop(wanted, lambda c, n=name: isinstance(c, AddForeignKey)
                     and key_of(c.table) == key_of(a) and c.fk.name == n,
                     DropForeignKey(b, copy))


def _detach_checks(changes: list[Change], parent: Table, b: Table, a: Table) -> None:
    """Inherited CHECK constraints stay on a detached (NO INHERIT) table as its own."""
    from .add_constraint import AddConstraint
    from .drop_constraint import DropConstraint

    for ck in parent.check_constraints:
        if ck.no_inherit or any(x.name == ck.name for x in b.check_constraints):
            continue
        copy = ck.model_copy(update={"comment": None})
        wanted = next((x for x in a.check_constraints if x.name == ck.name
                       and x.expression == ck.expression), None)
        if wanted is not None and _remove(
                changes, lambda c, n=ck.name: isinstance(c, AddConstraint)
                and key_of(c.table) == key_of(a) and c.constraint.name == n):
            continue
        changes.append(DropConstraint(b, copy))


def _inheritance(changes: list[Change], c: Change, before: Schema, after: Schema) -> None:
    from .add_constraint import AddConstraint
    from .drop_constraint import DropConstraint

    t: Table = c.table  # type: ignore[attr-defined]
    if c.inherit:  # type: ignore[attr-defined]
        b = before.table(*key_of(t))
        parent = _parent(after, t, c.parent)  # type: ignore[attr-defined]
        if b is None or parent is None:
            return
        for ck in parent.check_constraints:
            mine = next((x for x in b.check_constraints if x.name == ck.name), None)
            if mine is not None:
                _remove(changes, lambda x, m=mine: isinstance(x, DropConstraint)
                        and key_of(x.table) == key_of(b) and x.constraint.name == m.name)
            elif not ck.no_inherit:
                changes.append(AddConstraint(b, ck.model_copy(update={"comment": None})))
    else:
        parent = _parent(before, t, c.parent)  # type: ignore[attr-defined]
        a = after.table(*key_of(t))
        if parent is not None and a is not None:
            _detach_checks(changes, parent, t, a)


OBJECT_DIFFERS.append(diff_inherited_columns)
CHANGE_ANNOTATORS.append(note_inheritors)
CHANGE_ANNOTATORS.append(note_kept_by_children)
