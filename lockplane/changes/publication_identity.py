"""Published tables PostgreSQL refuses UPDATE and DELETE on (no usable replica identity).

A table a publication publishes with UPDATE (or DELETE) needs a replica identity that
logical decoding can write for the old row. PostgreSQL (checked on 15) refuses the
statement, per operation the publication publishes, when:

- there is none: no primary key under REPLICA IDENTITY DEFAULT, or REPLICA IDENTITY
  NOTHING ("cannot update table ... because it does not have a replica identity and
  publishes updates");
- the publication's column list for the table leaves out an identity column; under
  REPLICA IDENTITY FULL, any column (generated ones included, which a column list cannot
  name) ("Column list used by the publication does not cover the replica identity");
- its row filter uses a column outside the identity (under FULL, any column is fine)
  ("Column used in the publication WHERE expression is not part of the replica
  identity").

A partition under DEFAULT uses its parent's primary key; it takes the column list and
row filter of a published ancestor only with publish_via_partition_root. Rows of a
partitioned table live in its partitions: those are checked, not the parent.

The plan reports a problem on the step that causes it (see ``annotate``): the
publication's own step when its new definition does (a table comes in, a column list
or row filter changes, UPDATE or DELETE starts being published), else the step on the
table (its primary key dropped, its replica identity changed, the table created in a
FOR ALL TABLES or TABLES IN SCHEMA publication). ``lockplane.checks`` reports them for a
desired schema on its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import (
    PrimaryKey,
    Publication,
    PublicationTable,
    Schema,
    Table,
    TableKey,
    qualified,
    split_name,
)
from .base import CHANGE_ANNOTATORS, Change, Finding

if TYPE_CHECKING:
    from ..dialects.base import Dialect

IDENTITY_OPERATIONS = ("update", "delete")
RULE = "publication-no-replica-identity"


@dataclass(frozen=True)
class IdentityProblem:
    """One table a publication publishes UPDATE or DELETE of, which PostgreSQL refuses."""

    publication: str
    table: TableKey
    operations: tuple[str, ...]  # of update, delete
    reason: str

    @property
    def label(self) -> str:
        return qualified(self.table[0] or None, self.table[1])

    def describe(self) -> str:
        return f"{self.label} ({self.reason})"


def operations_text(ops: tuple[str, ...] | list[str]) -> str:
    return " and ".join(op.upper() for op in ops)


# ------------------------------------------------------------------------ the rules
def _children(schema: Schema) -> dict[TableKey, list[TableKey]]:
    out: dict[TableKey, list[TableKey]] = {}
    for t in schema.tables:
        if t.partition_of:
            parent = split_name(t.partition_of, t.schema_ or "")
            out.setdefault(parent, []).append((t.schema_ or "", t.name))
    return out


def _descendants(key: TableKey, children: dict[TableKey, list[TableKey]]) -> list[TableKey]:
    out: list[TableKey] = []
    todo = list(children.get(key, []))
    while todo:
        k = todo.pop()
        if k in out or k == key:
            continue
        out.append(k)
        todo += children.get(k, [])
    return out


def _primary_key(t: Table, tables: dict[TableKey, Table]) -> PrimaryKey | None:
    """The table's primary key; a partition's is its parent's (PostgreSQL gives every
    partition the partitioned table's)."""
    seen: set[TableKey] = set()
    while t.primary_key is None and t.partition_of:
        key = split_name(t.partition_of, t.schema_ or "")
        parent = tables.get(key)
        if parent is None or key in seen:
            return None
        seen.add(key)
        t = parent
    return t.primary_key


def _identity(t: Table, tables: dict[TableKey, Table]) -> tuple[str, set[str], str]:
    """(kind, columns, why): kind "none" (why says so), "full" (every column),
    "columns", or "unknown" (an index Lockplane does not see: not judged)."""
    ri = t.replica_identity
    if ri == "nothing":
        return "none", set(), "REPLICA IDENTITY NOTHING"
    if ri == "full":
        return "full", {c.name for c in t.columns}, ""
    if ri.startswith("index:"):
        name = ri.removeprefix("index:")
        for ix in t.indexes:
            if ix.name == name and ix.columns:
                return "columns", set(ix.columns), ""
        for u in t.unique_constraints:
            if u.name == name:
                return "columns", set(u.columns), ""
        if t.primary_key is not None and t.primary_key.name == name:
            return "columns", set(t.primary_key.columns), ""
        return "unknown", set(), ""
    pk = _primary_key(t, tables)
    if pk is None:
        return "none", set(), "no primary key, and REPLICA IDENTITY DEFAULT"
    return "columns", set(pk.columns), ""


_LITERAL = re.compile(r"'(?:[^']|'')*'")


def _filter_columns(where: str, t: Table) -> list[str]:
    """Columns of ``t`` a row filter (as the server prints it) uses; string literals
    are left out, so ``kind = 'id'`` does not count as a use of ``id``."""
    from .alter_column import mentions_column

    text = _LITERAL.sub("''", where)
    return [c.name for c in t.columns if mentions_column(text, c.name)]


def _problem(t: Table, entry: PublicationTable | None,
             tables: dict[TableKey, Table]) -> str | None:
    kind, ident, why = _identity(t, tables)
    if kind == "none":
        return why
    if kind == "unknown" or entry is None:
        return None
    reasons: list[str] = []
    if entry.columns:
        missing = sorted(ident - set(entry.columns))
        if missing and kind == "full":
            reasons.append("REPLICA IDENTITY FULL needs every column in the column list, "
                           f"which leaves out {', '.join(missing)}")
        elif missing:
            reasons.append("the column list leaves out replica identity column(s) "
                           + ", ".join(missing))
    if entry.where is not None and kind == "columns":
        outside = [c for c in _filter_columns(entry.where, t) if c not in ident]
        if outside:
            reasons.append(f"the row filter uses {', '.join(outside)}, outside the replica "
                           f"identity ({', '.join(sorted(ident))})")
    return "; ".join(reasons) or None


def _members(p: Publication, schema: Schema, children: dict[TableKey, list[TableKey]],
             ) -> dict[TableKey, PublicationTable | None]:
    """The tables whose rows ``p`` publishes, each with the entry whose column list and
    row filter apply to it (None: every column, every row)."""
    out: dict[TableKey, PublicationTable | None] = {}
    if p.all_tables:
        return {(t.schema_ or "", t.name): None for t in schema.tables}
    for pt in p.tables:
        out[(pt.schema_ or "", pt.name)] = pt
    for pt in p.tables:
        for k in _descendants((pt.schema_ or "", pt.name), children):
            out.setdefault(k, pt if p.publish_via_partition_root else None)
    for t in schema.tables:
        if (t.schema_ or "") in p.schemas:
            key = (t.schema_ or "", t.name)
            out.setdefault(key, None)
            for k in _descendants(key, children):
                out.setdefault(k, None)
    return out


def identity_problems(schema: Schema, publications: list[Publication] | None = None,
                      ) -> dict[tuple[str, TableKey], IdentityProblem]:
    """Per (publication, table): the tables of ``schema`` that ``publications`` (by
    default its own) publish UPDATE or DELETE of and PostgreSQL would refuse them on."""
    pubs = schema.publications if publications is None else publications
    out: dict[tuple[str, TableKey], IdentityProblem] = {}
    if not pubs:
        return out
    from ..dialects import get_dialect
    from .create_publication import CreatePublication

    if not CreatePublication.speaks(get_dialect(schema.dialect)):
        return out
    tables = {(t.schema_ or "", t.name): t for t in schema.tables}
    children = _children(schema)
    for p in pubs:
        ops = tuple(op for op in IDENTITY_OPERATIONS if op in p.publish)
        if not ops:
            continue
        for key, entry in _members(p, schema, children).items():
            t = tables.get(key)
            # Rows live in partitions; unlogged tables are never published.
            if t is None or t.partition_by is not None or t.unlogged:
                continue
            why = _problem(t, entry, tables)
            if why is not None:
                out[(p.name, key)] = IdentityProblem(p.name, key, ops, why)
    return out


# ------------------------------------------------------------------------ the plan
def _new(now: IdentityProblem, then: IdentityProblem | None) -> IdentityProblem | None:
    """``now`` less what ``then`` already refused (None: nothing new)."""
    if then is None:
        return now
    ops = tuple(op for op in now.operations if op not in then.operations)
    return IdentityProblem(now.publication, now.table, ops, now.reason) if ops else None


def _table_step(changes: list[Change], key: TableKey, after: Schema) -> Change | None:
    """The step that leaves the table (or the partitioned table it takes its primary
    key from) without a usable replica identity."""
    from .create_table import CreateTable
    from .drop_constraint import DropConstraint
    from .set_replica_identity import SetReplicaIdentity

    keys = [key]
    t = after.table(*key)
    while t is not None and t.partition_of and len(keys) < 32:
        keys.append(split_name(t.partition_of, t.schema_ or ""))
        t = after.table(*keys[-1])
    for k in keys:
        mine = [c for c in changes if c.table_key() == k]
        for kind in (DropConstraint, SetReplicaIdentity, CreateTable):
            for c in mine:
                if isinstance(c, kind) and (not isinstance(c, DropConstraint)
                                            or isinstance(c.constraint, PrimaryKey)):
                    return c
        if mine:
            return mine[0]
    return None


def annotate(changes: list[Change], before: Schema, after: Schema, d: Dialect) -> None:
    """Report each table the plan leaves published without a usable replica identity,
    on the step that causes it (see the module docstring)."""
    from .create_publication import CreatePublication

    if not CreatePublication.speaks(d) or not after.publications:
        return
    now = identity_problems(after)
    if not now:
        return
    from .alter_publication import AlterPublication
    from .create_publication import CreatePublication

    old = {p.name: p for p in before.publications}
    # The publications as they were, over the tables as they will be: what differs is
    # the publications' doing.
    same_pubs = identity_problems(after, [old[n] for n in {p.name for p in after.publications}
                                          if n in old])
    was = identity_problems(before)
    pub_steps: dict[str, CreatePublication | AlterPublication] = {}
    for c in changes:
        if isinstance(c, CreatePublication):
            pub_steps[c.publication.name] = c
        elif isinstance(c, AlterPublication) and not c.early:
            pub_steps[c.after.name] = c
    on_tables: dict[int, tuple[Change, list[IdentityProblem]]] = {}
    for key, problem in sorted(now.items()):
        step = pub_steps.get(problem.publication)
        by_pub = _new(problem, same_pubs.get(key))
        if by_pub is not None and step is not None:
            step.identity_problems = (*step.identity_problems, by_pub)
            continue
        by_table = _new(problem, was.get(key))
        if by_table is None:
            continue
        target = _table_step(changes, problem.table, after)
        if target is not None:
            on_tables.setdefault(id(target), (target, []))[1].append(by_table)
    for target, problems in on_tables.values():
        target.context_findings = (*target.context_findings, identity_finding(problems))


def _refusals(problems: list[IdentityProblem] | tuple[IdentityProblem, ...]) -> str:
    """``UPDATE and DELETE on public.a (why), public.b (why); DELETE on public.c (why)``"""
    groups: dict[tuple[str, ...], list[str]] = {}
    for p in problems:
        tables = groups.setdefault(p.operations, [])
        if p.describe() not in tables:
            tables.append(p.describe())
    return "; ".join(f"{operations_text(ops)} on {', '.join(tables)}"
                     for ops, tables in groups.items())


def identity_finding(problems: list[IdentityProblem] | tuple[IdentityProblem, ...],
                     ) -> Finding:
    """The finding of a step that leaves ``problems`` behind (publication or table)."""
    names = sorted({p.publication for p in problems})
    who = (f"publication {names[0]} publishes" if len(names) == 1
           else f"publications {', '.join(names)} publish")
    return Finding(RULE, (
        f"From this step on, PostgreSQL refuses {_refusals(problems)}: {who} those "
        "changes, and logical decoding needs a replica identity that covers them."))


CHANGE_ANNOTATORS.append(annotate)
