"""CREATE PUBLICATION (logical replication), with its comment.

Also the publication differ. A publication that exists on both sides is ALTERed (ADD /
DROP / SET its tables and schemas, SET its options), never dropped and created again:
dropping it breaks every subscriber. Only a switch to or from FOR ALL TABLES, which
ALTER cannot do, drops and creates.

Order: a publication is created (and gains tables) after the tables, columns and
schemas it names exist; it is dropped (and loses tables) before they are dropped. A
table it keeps whose columns or table the plan drops or retypes leaves it in an early
step and comes back in a late one (PostgreSQL refuses to drop or retype a column a
column list or row filter uses, and a dropped table leaves every publication).

Tables a publication would publish UPDATE or DELETE of without a usable replica identity
(PostgreSQL then refuses those statements) are found by publication_identity, which
fills in ``identity_problems`` on the publication's step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import (
    PUBLISH_OPERATIONS,
    Publication,
    PublicationTable,
    Schema,
    TableKey,
    unchanged_tables,
)
from .base import (
    NO_LOCK,
    OBJECT_DIFFERS,
    SHARE_UPDATE_EXCLUSIVE,
    Assessment,
    Change,
    Finding,
    Lock,
    Order,
    Safety,
    register,
)
from .pg_common import comment_sql

if TYPE_CHECKING:
    from ..dialects.base import Dialect
    from .publication_identity import IdentityProblem

# Before columns, tables and schemas are dropped or retyped / after they are created.
EARLY = Order.DROP_VIEW + 5
LATE = Order.CREATE_VIEW - 5

def table_key(t: PublicationTable) -> TableKey:
    return (t.schema_ or "", t.name)


def table_label(t: PublicationTable) -> str:
    return f"{t.schema_}.{t.name}" if t.schema_ else t.name


def table_sql(d: Dialect, t: PublicationTable) -> str:
    """``TABLE ONLY "s"."t" ("a", "b") WHERE (...)``: ONLY because pg_publication_rel
    lists each published inheritance child itself."""
    out = f"TABLE ONLY {d.qname(t.schema_, t.name)}"
    if t.columns:
        out += " (" + ", ".join(d.quote(c) for c in t.columns) + ")"
    if t.where is not None:
        out += f" WHERE ({t.where})"
    return out


def objects_sql(d: Dialect, tables: list[PublicationTable], schemas: list[str], *,
                bare: bool = False) -> str:
    """The publication objects of CREATE / ALTER PUBLICATION (``bare``: names only, as
    DROP takes them)."""
    parts = [f"TABLE ONLY {d.qname(t.schema_, t.name)}" if bare else table_sql(d, t)
             for t in tables]
    parts += [f"TABLES IN SCHEMA {d.quote(s)}" for s in schemas]
    return ", ".join(parts)


def publish_sql(d: Dialect, p: Publication) -> str:
    # The operations are model literals, checked against this list again.
    return "publish = " + d.literal(", ".join(op for op in PUBLISH_OPERATIONS
                                              if op in p.publish))


def via_root_sql(p: Publication) -> str:
    return f"publish_via_partition_root = {'true' if p.publish_via_partition_root else 'false'}"


def create_publication_sql(d: Dialect, p: Publication) -> list[str]:
    stmt = f"CREATE PUBLICATION {d.quote(p.name)}"
    if p.all_tables:
        stmt += " FOR ALL TABLES"
    elif p.tables or p.schemas:
        stmt += " FOR " + objects_sql(d, p.tables, p.schemas)
    options = []
    if p.publish != list(PUBLISH_OPERATIONS):
        options.append(publish_sql(d, p))
    if p.publish_via_partition_root:
        options.append(via_root_sql(p))
    if options:
        stmt += f" WITH ({', '.join(options)})"
    return [stmt, *comment_sql(d, "PUBLICATION", (p.name,), p.comment)]


def names_tables(p: Publication) -> bool:
    return bool(p.tables or p.schemas)


def recreated_note(name: str) -> str:
    return (f"Publication {name} is created again after being dropped: a subscriber whose "
            "replication slot still has changes from before the re-creation to stream may "
            f"fail with 'publication \"{name}\" does not exist' (decoding reads the "
            "publications as they were when each change was made): check each "
            "subscription, and re-create (re-sync) the ones that stay failing; run ALTER "
            "SUBSCRIPTION ... REFRESH PUBLICATION if the tables differ.")


def future_tables_note(p: Publication) -> str | None:
    """What a publication does to tables created later, when it takes them in."""
    if not ({"update", "delete"} & set(p.publish)) or not (p.all_tables or p.schemas):
        return None
    where = ("in this database" if p.all_tables
             else "in schema " + ", ".join(p.schemas))
    return (f"Tables created later {where} are published by {p.name} too: each needs a "
            "primary key (or another REPLICA IDENTITY), or PostgreSQL refuses its UPDATE "
            "and DELETE.")


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class CreatePublication(Change):
    kind = "create_publication"
    order = LATE
    publication: Publication
    # Tables it publishes UPDATE or DELETE of that have no usable replica identity
    # (computed by publication_identity.annotate from the desired schema).
    identity_problems: tuple[IdentityProblem, ...] = ()
    # It existed before: dropped earlier (a FOR ALL TABLES switch, or a rollback).
    recreated: bool = False

    def describe(self) -> str:
        return f"Create publication {self.publication.name}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        return create_publication_sql(d, self.publication)

    def inverse(self) -> list[Change]:
        from .drop_publication import DropPublication

        return [DropPublication(self.publication)]

    def lock(self, d: Dialect) -> Lock:
        # SHARE UPDATE EXCLUSIVE on each table named: reads and writes go on.
        return SHARE_UPDATE_EXCLUSIVE if names_tables(self.publication) else NO_LOCK

    def assess(self, d: Dialect) -> Assessment:
        from .publication_identity import identity_finding

        p = self.publication
        findings: list[Finding] = []
        if self.identity_problems:
            findings.append(identity_finding(self.identity_problems))
        if self.recreated:
            findings.append(Finding("review-required", recreated_note(p.name), Safety.REVIEW))
        note = future_tables_note(p)
        return Assessment.of(*findings, notes=(note,) if note else ())


# ------------------------------------------------------------------------------ differ
@dataclass
class Lost:
    """What the plan drops that a publication may name: per table of the before side,
    None when the table goes (or is dropped and created again), else the columns it
    drops, retypes or regenerates; and the schemas it drops."""

    tables: dict[TableKey, set[str] | None]
    schemas: set[str]


def _lost(before: Schema, after: Schema, d: Dialect | None = None) -> Lost:
    """``d``: the dialect as it speaks to the plan's server (a new generation expression
    set in place keeps its column)."""
    from .alter_column import generation_in_place, plan_regeneration
    from .create_schema import _namespaces
    from .table_hierarchy import recreated_tables

    recreated = recreated_tables(before, after)
    out: dict[TableKey, set[str] | None] = {}
    same = unchanged_tables(before, after)
    for b in before.tables:
        key = (b.schema_ or "", b.name)
        a = after.table(*key)
        if a is None or key in recreated:
            out[key] = None
            continue
        if key in same or b.columns == a.columns:
            continue
        new = {c.name: c for c in a.columns}
        lost = {c.name for c in b.columns
                if (n := new.get(c.name)) is None
                or ((n.type, n.collation, n.generated) != (c.type, c.collation, c.generated)
                    and not (d is not None and generation_in_place(c, n, b, a, d)))}
        out[key] = lost | plan_regeneration(b, a, d).names
    return Lost(out, set(_namespaces(before)) - set(_namespaces(after)))


def _needs_early(t: PublicationTable, lost: Lost) -> bool:
    """Whether the publication must let go of ``t`` before the plan's drops run."""
    from .alter_column import mentions_column

    key = table_key(t)
    if key not in lost.tables:
        return False
    cols = lost.tables[key]
    if cols is None:
        return True
    return bool(set(t.columns) & cols) or (
        t.where is not None and any(mentions_column(t.where, c) for c in cols))


def _definition(p: Publication) -> Publication:
    return p.model_copy(update={"comment": None})


def diff_publications(before: Schema, after: Schema, d: Dialect) -> list[Change]:
    if not CreatePublication.speaks(d) or not (before.publications or after.publications):
        return []
    from .alter_publication import AlterPublication
    from .drop_publication import DropPublication
    from .set_comment import SetComment

    old = {p.name: p for p in before.publications}
    new = {p.name: p for p in after.publications}
    lost: Lost | None = None
    out: list[Change] = []
    for name, a in new.items():
        b = old.get(name)
        if b is None:
            out.append(CreatePublication(a))
            continue
        if b.all_tables != a.all_tables:
            out += [DropPublication(b, replaced=True), CreatePublication(a, recreated=True)]
            continue
        # Even when it stays the same: a table of it the plan drops and creates again,
        # or whose listed columns it retypes, must leave it and come back.
        if b.tables or b.schemas:
            if lost is None:
                lost = _lost(before, after, d)
            out += _alter_steps(b, a, lost)
        elif _definition(b) != _definition(a):
            out.append(AlterPublication(_definition(b), _definition(a)))
        if b.comment != a.comment:
            out.append(SetComment("PUBLICATION", (name,), b.comment, a.comment))
    out += [DropPublication(b) for name, b in old.items() if name not in new]
    return out


def _alter_steps(b: Publication, a: Publication, lost: Lost) -> list[Change]:
    """One ALTER after the plan's creates; plus one before its drops when a table (or
    schema) the publication had must leave it first."""
    from .alter_publication import AlterPublication

    early_tables = [t for t in b.tables if _needs_early(t, lost)]
    early_schemas = [s for s in b.schemas if s in lost.schemas]
    # Those the late step adds back: they leave only for the time between the steps.
    kept = {table_key(t) for t in a.tables}
    restored = tuple(table_key(t) for t in early_tables if table_key(t) in kept)
    steps: list[Change] = []
    start = _definition(b)
    if early_tables or early_schemas:
        start = start.model_copy(update={
            "tables": [t for t in b.tables if t not in early_tables],
            "schemas": [s for s in b.schemas if s not in early_schemas]})
        steps.append(AlterPublication(_definition(b), start, early=True,
                                      restored_tables=restored))
    if start != _definition(a):
        steps.append(AlterPublication(start, _definition(a), restored_tables=restored))
    return steps


OBJECT_DIFFERS.append(diff_publications)
