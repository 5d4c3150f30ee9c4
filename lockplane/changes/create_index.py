"""CREATE INDEX on a table or materialized view."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..model import Index, Table, qualified
from .base import (
    CHANGE_ANNOTATORS,
    NO_LOCK,
    SHARE_UPDATE_EXCLUSIVE,
    Assessment,
    Change,
    Finding,
    Lock,
    Order,
    RewriteContext,
    Safety,
    register,
)
from .render import index_sql

if TYPE_CHECKING:
    from ..dialects.base import Dialect
    from ..dialects.mysql.alter_facts import MySQLAlter
    from ..model import ObjectKey, Schema


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class CreateIndex(Change):
    kind = "create_index"
    order = Order.CREATE_INDEX
    schema: str
    relation: str
    index: Index
    new_relation: bool = False  # on a table created by this plan: empty, no lock worth naming
    # Built without blocking writes, outside a transaction (the lock-safe form).
    concurrently: bool = False
    # The index of the same name this one replaces in the same statement
    # (Dialect.swaps_in_one_alter; see swap_indexes): its DropIndex is folded in.
    replaces: Index | None = None
    # On a partitioned table (see DropIndex.on_partitioned): for the undo's DROP.
    on_partitioned: bool = False
    # (partition schema, partition, name of its copy) when CREATE INDEX on the parent
    # would take a partition's own equal index as its copy (see clones_to_attach): the
    # index is made ON ONLY the parent, and each copy built and attached by name.
    clones: tuple[tuple[str, str, str], ...] = ()

    def objects_created(self) -> tuple[ObjectKey, ...]:
        from .base import object_key

        return (object_key("name", self.schema, self.index.name),) if self.index.name else ()

    def describe(self) -> str:
        if self.replaces is not None:
            return (f"Replace index {self.index.name} on "
                    f"{qualified(self.schema, self.relation)}")
        unique = "unique " if self.index.unique else ""
        return f"Create {unique}index {self.index.name} on {qualified(self.schema, self.relation)}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        # An INVALID index of a partitioned table is one made ON ONLY whose partitions'
        # copies are not all attached: built across the partitions it would be valid,
        # and would take their equal indexes in as its own.
        only = self.on_partitioned and (not self.index.valid or bool(self.clones))
        # (ON ONLY a partitioned table: no CONCURRENTLY there, and nothing to build; its
        # partitions' copies are what is built concurrently, in the lock-safe form)
        out = [index_sql(d, self.schema, self.relation, self.index,
                         concurrently=self.concurrently and not self.clones, only=only)]
        if self.clones:  # (an invalid index: the partitions that keep a copy attached)
            for part_schema, part, clone in self.clones:
                copy = self.index.model_copy(update={"name": clone, "comment": None})
                out += [index_sql(d, part_schema, part, copy, concurrently=self.concurrently),
                        f"ALTER INDEX {self._qname(d)} ATTACH PARTITION "
                        f"{d.qname(part_schema, clone)}"]
        if self.index.comment:  # a new index has no comment; keep the declared one
            from .set_comment import SetComment

            out += SetComment("INDEX", (self.schema, self.index.name), None,
                              self.index.comment).sql_postgres(d)
        return out

    def _qname(self, d: Dialect) -> str:
        return d.qname(self.schema, self.index.name)

    def cleanup_sql(self, d: Dialect) -> list[str]:
        """A build that failed or was interrupted leaves an INVALID index of this name
        (the plan was made where none existed): the executor drops it after a failure
        and before every attempt, so the step can always run again."""
        if self.concurrently and self.clones:
            # The parent's index takes its attached copies with it; a copy built but not
            # attached yet is dropped on its own.
            return [f"DROP INDEX IF EXISTS {self._qname(d)}", *(
                f"DROP INDEX CONCURRENTLY IF EXISTS {d.qname(ps, clone)}"
                for ps, _, clone in self.clones)]
        if self.concurrently:  # (the lock-safe form exists on PostgreSQL only)
            return [f"DROP INDEX CONCURRENTLY IF EXISTS {self._qname(d)}"]
        return []

    def transactional(self, d: Dialect) -> bool:
        return d.transactional_ddl and not self.concurrently

    def lock_safe(self, ctx: RewriteContext) -> list[Change]:
        if self.clones and not self.new_relation:
            return [replace(self, concurrently=True)]  # (its partitions' copies)
        if self.new_relation or not ctx.plain_table(self.schema, self.relation):
            return [self]
        return [replace(self, concurrently=True)]

    def sql_sqlite(self, d: Dialect) -> list[str]:
        return [index_sql(d, self.schema, self.relation, self.index)]

    def mysql_alter(self, d: Dialect) -> MySQLAlter | None:
        """ALTER TABLE ... ADD INDEX (lockplane/dialects/mysql/alter_facts.py decides its
        ALGORITHM and LOCK); None for an index replaced in place (several statements)."""
        if self.replaces is not None:
            return None
        from ..dialects.mysql.alter_facts import AlterOp, MySQLAlter
        from ..model import Table
        from .mysql_common import add_index_clause

        # (the rules need only the table's name here; the server is asked on a copy of
        # the whole table)
        table = Table(name=self.relation, schema=self.schema)
        return MySQLAlter(table, [add_index_clause(d, self.relation, self.index,
                                                   self.schema)],
                          (AlterOp("add_index", method=self.index.method),))

    def sql_mysql(self, d: Dialect) -> list[str]:
        from ..dialects.mysql.alter_facts import alter_sql
        from .mysql_common import index_sql as mysql_index_sql

        alter = self.mysql_alter(d)
        if alter is not None:
            return [alter_sql(d, alter)]
        return mysql_index_sql(d, self.relation, self.index, self.schema, self.replaces)

    def lock_mysql(self, d: Dialect) -> Lock:
        from ..dialects.mysql.alter_facts import alter_lock

        alter = self.mysql_alter(d)
        return alter_lock(d, alter) if alter is not None else d.ddl_lock()

    def inverse(self) -> list[Change]:
        from .drop_index import DropIndex

        if self.replaces is not None:
            return [CreateIndex(self.schema, self.relation, self.replaces,
                                replaces=self.index, rank=self.rank)]
        # (a partitioned table's index is never dropped concurrently; its copies go with it)
        return [DropIndex(self.schema, self.relation, self.index,
                          concurrently=self.concurrently and not self.on_partitioned,
                          on_partitioned=self.on_partitioned, undo_clones=self.clones)]

    def lock_postgres(self, d: Dialect) -> Lock:
        if self.new_relation:
            return NO_LOCK
        if self.concurrently:
            # Waits for transactions that could use the table, never blocks them.
            return Lock(SHARE_UPDATE_EXCLUSIVE.mode, False, False, scans_table=True)
        # Plain CREATE INDEX takes SHARE: reads go on, writes wait for the whole build.
        return Lock("SHARE", False, True, scans_table=True)

    def assess(self, d: Dialect) -> Assessment:
        own = self.for_dialect("assess", d)
        if self.new_relation or own is None:
            return Assessment(Safety.SAFE)
        return own(d)

    def assess_postgres(self, d: Dialect) -> Assessment:
        name = qualified(self.schema, self.relation)
        found = []
        if not self.concurrently:
            found.append(Finding("create-index-blocking", f"Building index {self.index.name} "
                                 f"blocks writes to {name} for the whole build."))
        if self.index.unique:
            found.append(Finding("unique-on-existing-data", f"Unique index {self.index.name} "
                                 f"fails if existing rows of {name} have duplicates."))
        notes = ("Built CONCURRENTLY: reads and writes go on; it waits for running "
                 "transactions on the table, and a failed build is dropped again.",
                 ) if self.concurrently else ()
        return Assessment.of(*found, notes=notes)

    def assess_mysql(self, d: Dialect) -> Assessment:
        if not self.index.unique:
            return Assessment.of()
        return Assessment.of(Finding("unique-on-existing-data", (
            f"Unique index {self.index.name} fails if existing rows of "
            f"{qualified(self.schema, self.relation)} have duplicates.")))

    def table_key(self) -> tuple[str, str]:
        return (self.schema, self.relation)


def swap_indexes(changes: list[Change], before: Schema, after: Schema, d: Dialect) -> None:
    """Where the dialect replaces an index in one statement, a DROP and CREATE of the
    same index name on one table become one step (the CREATE's, in its place)."""
    if not d.swaps_in_one_alter:
        return
    from .drop_index import DropIndex

    def columns_stay(drop: DropIndex) -> bool:
        # A column the plan drops takes itself out of the index first (the whole index,
        # when it was its only one): such a DROP INDEX stays where it is, before.
        t = after.table(drop.schema, drop.relation)
        return t is not None and all(t.column(k.column) is not None
                                     for k in drop.index.keys if k.column)

    drops = {(c.schema, c.relation, c.index.name): c for c in changes
             if isinstance(c, DropIndex) and columns_stay(c)}
    for change in changes:
        if isinstance(change, CreateIndex) and change.replaces is None:
            drop = drops.pop((change.schema, change.relation, change.index.name), None)
            if drop is not None:
                change.replaces = drop.index
                changes.remove(drop)


CHANGE_ANNOTATORS.append(swap_indexes)


def derived_clone_name(t: Table, ix: Index) -> str | None:
    """The name PostgreSQL gives the copy of ``ix`` that CREATE INDEX on the parent makes
    on partition ``t`` when it is free (ChooseIndexName: the table, the key and INCLUDE
    columns, "expr" for an expression, "idx"); None where it would be shortened."""
    cols = [k.column or "expr" for k in ix.keys] + list(ix.include)
    name = "_".join([t.name, *cols, "idx"])
    return name if len(name.encode()) <= 63 and len(set(cols)) == len(cols) else None


def clones_to_attach(table: Table, ix: Index, schema: Schema) -> tuple[tuple[str, str, str], ...]:
    """The copies of ``ix`` (an index of the partitioned ``table`` in ``schema``) to build
    and attach by name, when CREATE INDEX on the parent would instead take a partition's
    own index that equals it as the server compares them (keys, opclasses, collations,
    predicate; not ASC/DESC or NULLS) for its copy, and ``schema`` keeps both; or when a
    copy has another name than the one CREATE INDEX on the parent gives it. () when
    neither, or a partition is itself partitioned or its copy's name is not known (the
    plain CREATE INDEX then). An invalid index: the copies the partitions have attached
    (it is made ON ONLY the parent)."""
    from .table_hierarchy import key_of, parent_keys

    parts = [t for t in schema.tables if t.partition_of and key_of(table) in parent_keys(t)]
    if not ix.valid:
        # Made ON ONLY the parent (invalid): the copies of the partitions that have one
        # attached, built and attached by name; none when one is itself partitioned.
        out = [(t.schema_ or "", t.name, clone) for t in parts
               if (clone := t.clone_names.get(f"index:{ix.name}")) is not None]
        return () if any(t.partition_by for t in parts) else tuple(out)

    def shape(x: Index) -> tuple[object, ...]:
        return (x.unique, x.method, x.where, tuple(x.include), x.nulls_not_distinct,
                tuple((k.column, k.expression, k.opclass, k.collation) for k in x.keys))

    if not any(shape(own) == shape(ix) for t in parts for own in t.indexes) and all(
            t.clone_names.get(f"index:{ix.name}") == derived_clone_name(t, ix) for t in parts):
        return ()
    out = []
    for t in parts:
        clone = t.clone_names.get(f"index:{ix.name}")
        if t.partition_by or clone is None:
            return ()
        out.append((t.schema_ or "", t.name, clone))
    return tuple(out)
