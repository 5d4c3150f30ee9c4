"""ALTER TABLE ... ADD CONSTRAINT for primary keys, UNIQUE, CHECK and EXCLUDE.

(Foreign keys have their own module: they lock two tables and order after every table.)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..errors import BadInput
from ..model import (
    CheckConstraint,
    ExclusionConstraint,
    Index,
    PrimaryKey,
    Table,
    UniqueConstraint,
    qualified,
)
from .base import (
    ACCESS_EXCLUSIVE,
    CHANGE_ANNOTATORS,
    Assessment,
    Change,
    Finding,
    Lock,
    Order,
    RewriteContext,
    register,
)
from .render import (
    check_def,
    deferrable_clause,
    exclusion_def,
    primary_key_def,
    table_name,
    unique_def,
)

if TYPE_CHECKING:
    from ..dialects.base import Dialect
    from ..dialects.mysql.alter_facts import MySQLAlter
    from ..model import Schema
    from .drop_index import DropIndex

TableConstraint = PrimaryKey | UniqueConstraint | CheckConstraint | ExclusionConstraint


def constraint_label(c: TableConstraint) -> str:
    kind = {PrimaryKey: "primary key", UniqueConstraint: "unique constraint",
            CheckConstraint: "check constraint",
            ExclusionConstraint: "exclusion constraint"}[type(c)]
    return f"{kind} {c.name}" if c.name else kind


def backing_index(c: PrimaryKey | UniqueConstraint, name: str) -> Index:
    """The unique index a UNIQUE / PRIMARY KEY constraint can adopt (USING INDEX)."""
    nnd = isinstance(c, UniqueConstraint) and c.nulls_not_distinct
    return Index(name=name, columns=list(c.columns), unique=True, include=list(c.include),
                 nulls_not_distinct=nnd)


def constraint_def(d: Dialect, c: TableConstraint) -> str:
    if isinstance(c, PrimaryKey):
        return primary_key_def(d, c)
    if isinstance(c, UniqueConstraint):
        return unique_def(d, c)
    if isinstance(c, CheckConstraint):
        return check_def(d, c)
    return exclusion_def(d, c)


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class AddConstraint(Change):
    kind = "add_constraint"
    order = Order.ADD_CONSTRAINT
    table: Table
    constraint: TableConstraint
    # CHECK only: add without checking existing rows (instant); validate_constraint
    # checks them later without blocking writes.
    not_valid: bool = False
    # UNIQUE / PRIMARY KEY: adopt the index of the same name, built CONCURRENTLY by the
    # step before (the lock-safe form): the ALTER itself then takes only a brief lock.
    using_index: bool = False
    index_name: str | None = None  # the index to adopt, when not the constraint's name
    # The primary key this one replaces in the same statement (Dialect.swaps_in_one_alter;
    # see swap_primary_keys): its DropConstraint is folded into this step.
    replaces: PrimaryKey | None = None
    # PRIMARY KEY / UNIQUE of a partitioned table added ON ONLY the parent, with the
    # copies (partition schema, partition, name) the partitions keep attached: each added
    # to its partition and attached by name; see detach_partition_keys.
    only: tuple[tuple[str, str, str], ...] | None = None
    # The key stays; these partitions' own unique indexes (schema, partition, name) are
    # made its copies (ADD ... USING INDEX) and attached. Its undo drops the key and adds
    # it ON ONLY with ``undo_only`` attached, and builds ``undo_own`` again.
    attach: tuple[tuple[str, str, str], ...] | None = None
    undo_only: tuple[tuple[str, str, str], ...] = ()
    undo_own: tuple[tuple[str, str, Index], ...] = ()

    def describe(self) -> str:
        if self.attach is not None:
            return (f"Attach {', '.join(n for _, _, n in self.attach)} to "
                    f"{constraint_label(self.constraint)} of "
                    f"{qualified(self.table.schema_, self.table.name)}")
        if self.replaces is not None:
            return (f"Replace the primary key of "
                    f"{qualified(self.table.schema_, self.table.name)} "
                    f"({', '.join(self.replaces.columns)}) -> "
                    f"({', '.join(self.constraint.columns)})")  # type: ignore[union-attr]
        suffix = " (NOT VALID: existing rows checked later)" if self.not_valid else ""
        if self.using_index:
            suffix = f" using index {self.index_name or self.constraint.name}"
        return (f"Add {constraint_label(self.constraint)} on "
                f"{qualified(self.table.schema_, self.table.name)}{suffix}")

    def sql_postgres(self, d: Dialect) -> list[str]:
        check = isinstance(self.constraint, CheckConstraint)
        # NOT VALID: the lock-safe add, or a constraint the desired schema keeps NOT VALID
        nv = " NOT VALID" if check and self.constraint.enforced and (
            self.not_valid or not self.constraint.valid) else ""
        body = self._using_index_def(d) if self.using_index else constraint_def(
            d, self.constraint)
        if self.only is not None:
            return self._only_sql(d, body)
        if self.attach is not None:
            return self._attach_sql(d)
        out = [f"ALTER TABLE {table_name(d, self.table)} ADD {body}{nv}"]
        comment = getattr(self.constraint, "comment", None)
        if comment and self.constraint.name:
            from .set_comment import SetComment

            out += SetComment("CONSTRAINT", (self.constraint.name,), None, comment,
                              on_table=(self.table.schema_ or "", self.table.name)
                              ).sql_postgres(d)
        return out

    def _attach_sql(self, d: Dialect) -> list[str]:
        c = self.constraint
        assert isinstance(c, PrimaryKey | UniqueConstraint) and c.name and self.attach
        kind = "PRIMARY KEY" if isinstance(c, PrimaryKey) else "UNIQUE"
        deferral = "" if isinstance(c, PrimaryKey) else deferrable_clause(c.deferrable,
                                                                    c.initially_deferred)
        out = []
        for part_schema, part, name in self.attach:
            out += [f"ALTER TABLE {d.qname(part_schema, part)} ADD CONSTRAINT {d.quote(name)} "
                    f"{kind} USING INDEX {d.quote(name)}{deferral}",
                    f"ALTER INDEX {d.qname(self.table.schema_, c.name)} ATTACH PARTITION "
                    f"{d.qname(part_schema, name)}"]
        return out

    def _only_sql(self, d: Dialect, body: str) -> list[str]:
        """ON ONLY the parent (its index invalid until every partition has an attached
        copy), then each kept partition's copy added under its name and attached."""
        c = self.constraint
        assert self.only is not None and c.name
        out = [f"ALTER TABLE ONLY {table_name(d, self.table)} ADD {body}"]
        for part_schema, part, clone in self.only:
            copy = c.model_copy(update={"name": clone, "comment": None})
            out += [f"ALTER TABLE {d.qname(part_schema, part)} ADD {constraint_def(d, copy)}",
                    f"ALTER INDEX {d.qname(self.table.schema_, c.name)} ATTACH PARTITION "
                    f"{d.qname(part_schema, clone)}"]
        comment = getattr(c, "comment", None)
        if comment:
            from .set_comment import SetComment

            out += SetComment("CONSTRAINT", (c.name,), None, comment,
                              on_table=(self.table.schema_ or "", self.table.name)
                              ).sql_postgres(d)
        return out

    def mysql_alter(self, d: Dialect) -> MySQLAlter:
        """The constraint's ALTER TABLE clauses and what they do (its ALGORITHM and LOCK:
        lockplane/dialects/mysql/alter_facts.py)."""
        from ..dialects.mysql.alter_facts import AlterOp, MySQLAlter

        c = self.constraint
        if isinstance(c, PrimaryKey):
            # MySQL names every primary key PRIMARY: the model's name is not written.
            add = f"ADD PRIMARY KEY ({', '.join(d.quote(n) for n in c.columns)})"
            if self.replaces is not None:
                return MySQLAlter(self.table, ["DROP PRIMARY KEY", add],
                                  (AlterOp("drop_primary_key"), AlterOp("add_primary_key")))
            return MySQLAlter(self.table, [add], (AlterOp("add_primary_key"),))
        if isinstance(c, CheckConstraint):
            return MySQLAlter(self.table, [f"ADD {check_def(d, c)}"], (AlterOp("add_check"),))
        if isinstance(c, UniqueConstraint):
            name = f"CONSTRAINT {d.quote(c.name)} " if c.name else ""
            return MySQLAlter(self.table, [f"ADD {name}UNIQUE "
                                           f"({', '.join(d.quote(n) for n in c.columns)})"],
                              (AlterOp("add_index"),))
        raise BadInput(f"{self.describe()}: not supported on {d.name}")

    def sql_mysql(self, d: Dialect) -> list[str]:
        from ..dialects.mysql.alter_facts import alter_sql

        return [alter_sql(d, self.mysql_alter(d))]

    def lock_mysql(self, d: Dialect) -> Lock:
        from ..dialects.mysql.alter_facts import alter_lock

        return alter_lock(d, self.mysql_alter(d))

    def _using_index_def(self, d: Dialect) -> str:
        c = self.constraint
        assert isinstance(c, PrimaryKey | UniqueConstraint) and c.name
        kind = "PRIMARY KEY" if isinstance(c, PrimaryKey) else "UNIQUE"
        deferral = "" if isinstance(c, PrimaryKey) else deferrable_clause(c.deferrable,
                                                                    c.initially_deferred)
        # PostgreSQL renames the adopted index to the constraint's name.
        return (f"CONSTRAINT {d.quote(c.name)} {kind} USING INDEX "
                f"{d.quote(self.index_name or c.name)}{deferral}")

    def lock_safe(self, ctx: RewriteContext) -> list[Change]:
        c = self.constraint
        if self.not_valid or self.using_index or not c.name or not ctx.plain_table(
                self.table.schema_, self.table.name):
            return [self]
        if isinstance(c, CheckConstraint):
            from .validate_constraint import ValidateConstraint

            if not c.enforced:  # NOT ENFORCED: nothing is checked, nothing to split
                return [self]
            if not c.valid:  # wanted NOT VALID: existing rows are not to be checked
                return [replace(self, not_valid=True)]
            return [replace(self, not_valid=True), ValidateConstraint(self.table, c.name)]
        # A WITHOUT OVERLAPS key is a GiST index, which ADD ... USING INDEX cannot adopt.
        if isinstance(c, PrimaryKey | UniqueConstraint) and not c.without_overlaps:
            from .create_index import CreateIndex

            index = backing_index(c, c.name)
            return [CreateIndex(self.table.schema_ or "", self.table.name, index,
                                concurrently=True, rank=self.rank),
                    replace(self, using_index=True)]
        return [self]

    def inverse(self) -> list[Change]:
        from .drop_constraint import DropConstraint

        if self.attach is not None:  # (no index is ever detached: the key made again)
            from .create_index import CreateIndex

            return [DropConstraint(self.table, self.constraint),
                    AddConstraint(self.table, self.constraint, only=self.undo_only),
                    *(CreateIndex(s, p, ix) for s, p, ix in self.undo_own)]
        if self.replaces is not None:
            assert isinstance(self.constraint, PrimaryKey)
            return [AddConstraint(self.table, self.replaces, replaces=self.constraint,
                                  rank=self.rank)]
        return [DropConstraint(self.table, self.constraint)]

    def lock(self, d: Dialect) -> Lock:
        own = self.for_dialect("lock", d)  # (MySQL: lock_mysql, alter_facts)
        if own is not None:
            return own(d)  # type: ignore[no-any-return]
        if self.not_valid or self.using_index or self.attach is not None \
                or not getattr(self.constraint, "valid", True) \
                or not getattr(self.constraint, "enforced", True):
            return Lock(ACCESS_EXCLUSIVE.mode, True, True)  # brief: no row is read
        # Every kind validates existing rows: CHECK scans, the others build an index.
        return Lock(ACCESS_EXCLUSIVE.mode, True, True, rewrites_table=False, scans_table=True)

    def assess(self, d: Dialect) -> Assessment:
        c = self.constraint
        label = constraint_label(c)
        name = qualified(self.table.schema_, self.table.name)
        if self.not_valid or (isinstance(c, CheckConstraint) and not c.valid):
            return Assessment.of(notes=(f"{label} applies to new writes at once; existing "
                                        "rows are validated separately (or, if the schema "
                                        "keeps it NOT VALID, never).",))
        if self.using_index:
            return Assessment.of(notes=("Adopts the index built concurrently before: a "
                                        "brief ACCESS EXCLUSIVE lock, no scan.",))
        if self.attach is not None:
            return Assessment.of(notes=("Adopts each partition's own unique index as the "
                                        "key's copy and attaches it: a brief ACCESS "
                                        "EXCLUSIVE lock, no build.",))
        if not d.alters_constraints:
            # SQLite adds constraints by rebuilding the table (its own step, assessed there)
            return Assessment.of()
        rule = {CheckConstraint: "add-check-constraint", UniqueConstraint:
                "add-unique-constraint", PrimaryKey: "add-primary-key",
                ExclusionConstraint: "add-exclusion-constraint"}[type(c)]
        found = [Finding(rule, f"Adding {label} checks every existing row of {name} under "
                         "an ACCESS EXCLUSIVE lock and fails if any row violates it.")]
        if isinstance(c, UniqueConstraint | PrimaryKey):
            found.append(Finding("unique-on-existing-data", f"{label} fails if existing rows "
                                 f"of {name} have duplicates."))
        return Assessment.of(*found)

    def table_key(self) -> tuple[str, str]:
        return (self.table.schema_ or "", self.table.name)


def swap_primary_keys(changes: list[Change], before: Schema, after: Schema,
                      d: Dialect) -> None:
    """Where the dialect replaces a primary key in one statement, a table's DROP of its
    primary key and ADD of the new one become one step (the ADD's, in its place)."""
    if not d.swaps_in_one_alter:
        return
    from .drop_constraint import DropConstraint

    def columns_stay(drop: DropConstraint) -> bool:
        # (a column the plan drops leaves the key first: that DROP stays before it)
        t = after.table(drop.table.schema_ or "", drop.table.name)
        return t is not None and all(t.column(n) is not None
                                     for n in drop.constraint.columns)  # type: ignore[union-attr]

    drops = {(c.table.schema_ or "", c.table.name): c for c in changes
             if isinstance(c, DropConstraint) and isinstance(c.constraint, PrimaryKey)
             and columns_stay(c)}
    for change in changes:
        if isinstance(change, AddConstraint) and isinstance(change.constraint, PrimaryKey):
            drop = drops.pop((change.table.schema_ or "", change.table.name), None)
            if drop is not None:
                assert isinstance(drop.constraint, PrimaryKey)
                change.replaces = drop.constraint
                changes.remove(drop)


def _copies(parts: dict[tuple[str, str], Table],
            label: str) -> tuple[tuple[str, str, str], ...]:
    """(schema, partition, copy name) of the partitions with a copy of ``label``."""
    return tuple((k[0], k[1], t.clone_names[label]) for k, t in parts.items()
                 if label in t.clone_names)


def _adoptable(changes: list[Change], key: PrimaryKey | UniqueConstraint, label: str,
               parts_b: dict[tuple[str, str], Table],
               parts_a: dict[tuple[str, str], Table]) -> list[DropIndex] | None:
    """The plan's drops of the partitions' own unique indexes that ``key`` takes as its
    copies, where the desired schema only attaches (no partition loses its copy) and
    each partition gaining one has such an index, of the copy's name and shape; None
    otherwise."""
    from .drop_index import DropIndex

    common = parts_b.keys() & parts_a.keys()
    if any(label in parts_b[k].clone_names and label not in parts_a[k].clone_names
           for k in common):
        return None
    nnd = isinstance(key, UniqueConstraint) and key.nulls_not_distinct

    def fits(ix: Index) -> bool:
        return (ix.unique and ix.method == "btree" and ix.where is None and ix.valid
                and not ix.options and ix.include == list(key.include)
                and ix.nulls_not_distinct == nnd
                and [k.column for k in ix.keys] == list(key.columns)
                and not any(k.expression or k.descending or k.nulls_first is not None
                            or k.opclass or k.collation for k in ix.keys))

    out = []
    for k in common:
        if label in parts_b[k].clone_names or label not in parts_a[k].clone_names:
            continue
        name = parts_a[k].clone_names[label]
        drop = next((c for c in changes if isinstance(c, DropIndex) and (
            c.schema, c.relation, c.index.name) == (*k, name)), None)
        if drop is None or not fits(drop.index):
            return None
        out.append(drop)
    return out


def detach_partition_keys(changes: list[Change], before: Schema, after: Schema,
                          d: Dialect) -> None:
    """A partitioned table's PRIMARY KEY or UNIQUE that stays, where the desired schema
    attaches it to other partitions than the database does (Table.clone_names; not
    state): made ON ONLY the parent with a partition's copy left out (the partition
    keeping a plain unique index under the copy's name), or attached to a partition
    that had only such an index. PostgreSQL detaches no constraint from its parent, so
    the key is dropped (its copies with it) and added again ON ONLY the parent, each
    copy the desired schema has added to its partition and attached by name (the key
    valid again once every partition has one); its undo does the same the other way. A
    partition's own index is built once the drop freed its name, or dropped before the
    copy takes it. The copies are built under the ALTER's lock, and the drop and the add
    run in one transaction where nothing outside one runs between them. Only where the
    desired schema was read from a database (a schema file names no copies: the keys
    are taken as they are)."""
    if not d.attaches_partition_indexes or after.server_version is None:
        return
    from .drop_constraint import DropConstraint
    from .table_hierarchy import key_of, parent_keys

    touched = {(c.table_key(), getattr(c, "constraint", None) and c.constraint.name)
               for c in changes if isinstance(c, AddConstraint | DropConstraint)}
    for tb in before.tables:
        ta = after.table(tb.schema_ or "", tb.name)
        if not tb.partition_by or ta is None or not ta.partition_by:
            continue
        parts_b = {key_of(t): t for t in before.tables if key_of(tb) in parent_keys(t)}
        parts_a = {key_of(t): t for t in after.tables if key_of(ta) in parent_keys(t)}
        if any(t.partition_by for t in (*parts_b.values(), *parts_a.values())):
            continue
        pairs = [(tb.primary_key, ta.primary_key)] + [
            (u, next((v for v in ta.unique_constraints if v.name == u.name), None))
            for u in tb.unique_constraints]
        for old, new in pairs:
            if old is None or new is None or not old.name or old != new \
                    or (key_of(tb), old.name) in touched:
                continue
            label = f"constraint:{old.name}"
            common = parts_b.keys() & parts_a.keys()
            if {k for k in common if label in parts_b[k].clone_names} == {
                    k for k in common if label in parts_a[k].clone_names}:
                continue

            adopted = _adoptable(changes, old, label, parts_b, parts_a)
            if adopted is not None:
                for drop in adopted:
                    changes.remove(drop)
                changes.append(AddConstraint(
                    ta, new, attach=tuple((c.schema, c.relation, c.index.name)
                                          for c in adopted),
                    undo_only=_copies(parts_b, label),
                    undo_own=tuple((c.schema, c.relation, c.index) for c in adopted)))
                continue
            changes += [DropConstraint(tb, old, undo_only=_copies(parts_b, label)),
                        AddConstraint(ta, new, only=_copies(parts_a, label))]


CHANGE_ANNOTATORS.append(swap_primary_keys)
CHANGE_ANNOTATORS.append(detach_partition_keys)
