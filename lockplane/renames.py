"""Declared renames in a plain plan: a rename is a rename everywhere.

A desired schema says ``-- lockplane:renamed-from old`` (``renamed_from`` in JSON) on a
table or column. ``lockplane plan --multi-phase`` turns that into expand/contract phases;
a plain plan renames in place (one ALTER ... RENAME, data kept) and never drops the old
column or table to add an empty new one. The rename breaks running code that uses the
old name, so its step is ``multi_phase`` (rules ``rename-table`` / ``rename-column``):
``--safety strict`` refuses it and points to ``plan --multi-phase``.

An enum value says it on its line in ``CREATE TYPE ... AS ENUM (...)``
(``values_renamed_from`` in JSON): the label is renamed in place (ALTER TYPE ... RENAME
VALUE, lockplane/changes/rename_enum_value.py, rule ``enum-value-renamed``), and the
defaults, CHECKs, indexes and views holding a constant of the type print the new label
right after it (the server stores the value, not its label), in every kind of plan.

``declared_renames(before, after)`` gives the rename changes and ``before`` as the server
will have it right after them (the renames carried into indexes, constraints, foreign
keys of other tables, sequence ownership, partitions, as the server does itself). The
differ then diffs that against ``after``: every other step (a type change of the renamed
column, say) is computed against the renamed tables, so the renames run first.

Except what the plan drops that may read the old names (a view or SQL-standard routine
reading a renamed table or column in the server's graph, what reads those, a policy, a
trigger): it is dropped before the renames, as it was (readers_as_they_were), so that the
rollback, run in reverse, creates it again only once the names are back, from the
server's own text of before. (After a rename the server prints such a view with the new
name and keeps the old one as its output name, "bytes AS size": a text the plan does not
know unless the desired schema has it, while the old text names what is not there until
the renames are undone.)
"""

from __future__ import annotations

from collections.abc import Callable

from pglast.parser import ParseError, scan
from pglast.stream import maybe_double_quote_name

from .changes.base import Change, Order
from .changes.pg_common import NOT_NAME_TOKENS
from .changes.rename_column import RenameColumn
from .changes.rename_enum_value import RenameEnumValue, relabel_schema
from .changes.rename_table import RenameTable
from .dialects import get_dialect
from .model import ObjectKey, Schema, Table, quote_name, split_name

# Before every other step: the rest of the plan names tables and columns by their new
# names (and its rollback, run in reverse, renames back last).
RENAME_ORDER = int(Order.DROP_POLICY) - 10
# Before them: the drops of the views and routines that read a name they take away.
READER_DROP_ORDER = RENAME_ORDER - 1


def _first(change: Change) -> Change:
    change.order = RENAME_ORDER  # type: ignore[misc]  # per instance: declared renames only
    return change


def declared_renames(before: Schema, after: Schema) -> tuple[Schema, list[Change]]:
    """(``before`` with the declared renames done, the rename changes); ``before`` itself
    when ``after`` declares no rename that applies to it."""
    tables = _table_renames(before, after)
    columns = _column_renames(before, after, dict(tables))
    # (first: the server prints every stored constant of the type with the new label,
    # which the definitions compared below then hold)
    renamed, changes = declared_value_renames(before, after)
    if not tables and not columns:
        return renamed, changes
    if renamed is before:
        renamed = before.model_copy(deep=True)
    names_not_null = _not_null_namer(before)
    for (schema, old), new in tables:
        t = renamed.table(schema, old)
        assert t is not None
        changes.append(_first(RenameTable(t.model_copy(deep=True), new)))
        _keep_not_null_names(t, names_not_null, new, None)
        _rename_table_in(renamed, t, new)
        renamed._table_index = None
    from .changes.table_hierarchy import inheritors

    # (and the partitions and children the server renames the column of too, see below)
    graph_columns = {key: list(pairs) for key, pairs in columns.items()}
    for (schema, table), pairs in columns.items():
        t = renamed.table(schema, table)
        assert t is not None
        for old, new in pairs:
            changes.append(_first(RenameColumn(t.model_copy(deep=True), old, new)))
            # ALTER TABLE ... RENAME COLUMN recurses: an inherited column is renamed in
            # every partition and INHERITS child with it.
            for key in inheritors(renamed, t, old):
                child = renamed.table(*key)
                assert child is not None
                _keep_not_null_names(child, names_not_null, child.name, (old, new))
                _rename_column_in(renamed, child, old, new)
                graph_columns.setdefault(key, []).append((old, new))
            _keep_not_null_names(t, names_not_null, t.name, (old, new))
            _rename_column_in(renamed, t, old, new)
    renamed._table_index = None
    _follow_definitions(renamed, after, {old: new for (_, old), new in tables} | {
        old: new for pairs in columns.values() for old, new in pairs})
    if after.dialect and get_dialect(after.dialect).derived_constraint_names:
        # The server names constraints and indexes after their table and columns when the
        # schema does not: renamed, they would be dropped and built again under the new
        # names (a primary key, a foreign key validated again...). Rename them instead.
        for key in dict.fromkeys([(s, new) for (s, _), new in tables] + list(graph_columns)):
            t, wanted = renamed.table(*key), after.table(*key)
            if t is not None and wanted is not None:
                changes += [_first(c) for c in _follow_names(t, wanted, names_not_null)]
    renamed.set_dependencies(_renamed_graph(renamed, tables, graph_columns))
    return renamed, changes


def _renamed_readers(changes: list[Change], before: Schema) -> set[ObjectKey]:
    """The views and routines that read (in ``before``'s server graph) a table or column
    that a declared rename among ``changes`` takes the name of."""
    from .changes.table_hierarchy import inheritors

    was_named = {(c.table.schema_ or "", c.new): c.table.name for c in changes
                 if isinstance(c, RenameTable)}
    gone: set[ObjectKey] = set()
    for c in changes:
        if isinstance(c, RenameTable):
            s = c.table.schema_ or ""
            gone |= {("relation", s, c.table.name, "")} | {
                ("column", s, c.table.name, col.name) for col in c.table.columns}
        elif isinstance(c, RenameColumn):
            s = c.table.schema_ or ""
            t = before.table(s, was_named.get((s, c.table.name), c.table.name))
            if t is not None:  # (the partitions and children it recurses to too)
                gone |= {("column", *key, c.old)
                         for key in ((s, t.name), *inheritors(before, t, c.old))}
    if not gone:
        return set()
    views = {("relation", v.schema_ or "", v.name, "") for v in before.views}
    return {obj for obj, dep in before.dependencies
            if dep in gone and (obj in views or obj[0] == "function")}


def _held(before: Schema) -> set[ObjectKey]:
    """Routines (and views) that something other than a view or routine uses, directly
    or through those (a column default, a CHECK, a domain): no plan step drops that
    first, so they cannot be dropped before the renames (they stay where they were)."""
    views = {("relation", v.schema_ or "", v.name, "") for v in before.views}
    reads: dict[ObjectKey, list[ObjectKey]] = {}
    for obj, dep in before.dependencies:
        if dep[0] == "function" or dep in views:
            reads.setdefault(obj, []).append(dep)
    held = {dep for obj, deps in reads.items() if obj[0] != "function" and obj not in views
            for dep in deps if dep[0] == "function"}
    stack = list(held)
    while stack:  # (a routine or view they read holds what it reads)
        for dep in reads.get(stack.pop(), ()):
            if dep not in held:
                held.add(dep)
                stack.append(dep)
    return held


def split_renamed_readers(changes: list[Change], before: Schema) -> list[Change]:
    """``changes`` with each routine that reads a name a declared rename takes away and
    that the plan replaces in place (CREATE OR REPLACE, or DROP + CREATE in one step)
    dropped and created in two: the drop goes before the renames, so that its undo comes
    after theirs (readers_as_they_were), and what calls it goes and comes back around it
    (plan.recreate_dependents). One that a default, CHECK or domain holds cannot go: it
    is written again as it is before the renames (the undo of that puts its old text
    back after theirs), and replaced after them by a step whose undo keeps the new text,
    which the renames' undo then follows (a body reads columns by number)."""
    from dataclasses import replace

    from .changes.create_function import CreateFunction, function_key
    from .changes.drop_function import DropFunction

    first = _renamed_readers(changes, before)
    if not first:
        return changes
    held = _held(before)
    was = {function_key(f): f for f in before.functions}
    out: list[Change] = []
    for c in changes:
        key = function_key(c.before) if isinstance(c, CreateFunction) and c.before else None
        if not isinstance(c, CreateFunction) or c.before is None or key not in first:
            out.append(c)
        elif key not in held:
            out += [DropFunction(c.before, recreated=True),
                    replace(CreateFunction(c.function, after_tables=c.after_tables),
                            context_findings=c.context_findings)]
        elif not c.recreate and key in was:
            out += [CreateFunction(was[key], before=was[key], kept_for_rollback=True),
                    replace(c, before=c.function)]
        else:
            out.append(c)
    return out


def readers_as_they_were(changes: list[Change], before: Schema) -> list[Change]:
    """``changes`` with what a plan with declared renames drops of what may read the
    names they take away dropped before the renames, as ``before`` has it: its undo then
    comes after the renames' undo and creates it exactly as it was. (The differ saw it as
    the server prints it after the renames, or as it was, and neither stands once the
    renames are undone.) Those are the views and routines that read a renamed table or
    column in the server's graph, what reads them (they go first), and every
    policy and trigger (their expressions may name any table; the graph has no entry
    for them)."""
    from .changes.create_function import function_key
    from .changes.drop_function import DropFunction
    from .changes.drop_policy import DropPolicy
    from .changes.drop_trigger import DropTrigger
    from .changes.drop_view import DropView

    if not any(isinstance(c, RenameTable | RenameColumn) for c in changes):
        return changes
    first = _renamed_readers(changes, before)
    readers: dict[ObjectKey, set[ObjectKey]] = {}
    for obj, dep in before.dependencies:
        readers.setdefault(dep, set()).add(obj)
    stack = list(first)
    while stack:  # (what reads a reader is dropped before it)
        for obj in readers.get(stack.pop(), ()):
            if obj not in first:
                first.add(obj)
                stack.append(obj)
    views = {("relation", v.schema_ or "", v.name, ""): v for v in before.views}
    functions = {function_key(f): f for f in before.functions}
    held = _held(before) if first else set()
    was_named = {(c.table.schema_ or "", c.new): c.table.name for c in changes
                 if isinstance(c, RenameTable)}
    for c in changes:
        if isinstance(c, DropView):
            key = ("relation", c.view.schema_ or "", c.view.name, "")
            if key in first and key in views:
                c.view = views[key]
                # (before the renames, ahead of the drops that used to follow them)
                c.order = READER_DROP_ORDER  # type: ignore[misc]  # per instance
        elif isinstance(c, DropFunction):
            key = function_key(c.function)
            if key in first and key in functions and key not in held:
                c.function, c.before_renames = functions[key], True
        elif isinstance(c, DropPolicy | DropTrigger):
            old = was_named.get((c.schema, c.table), c.table)
            t = before.table(c.schema, old)
            if isinstance(c, DropPolicy):
                policy = next((p for p in t.policies if p.name == c.policy.name), None) \
                    if t is not None else None
                if policy is None:
                    continue
                c.policy = policy
            else:
                trigger = next((x for x in t.triggers if x.name == c.trigger.name), None) \
                    if t is not None else None
                if trigger is None:
                    continue
                c.trigger = trigger
            c.table = old
            c.order = READER_DROP_ORDER  # type: ignore[misc]  # per instance
    return changes


def _renamed_graph(schema: Schema, tables: list[tuple[tuple[str, str], str]],
                   columns: dict[tuple[str, str], list[tuple[str, str]]],
                   ) -> frozenset[tuple[ObjectKey, ObjectKey]]:
    """The server's dependency graph of ``schema`` with its column keys under the
    renamed tables' and columns' new names (a column renamed, then retyped, still has
    its readers: create_view.column_readers, AlterColumn.objects_dropped)."""
    new_table = {key: new for key, new in tables}
    new_column = {(*key, old): new for key, pairs in columns.items() for old, new in pairs}

    def follow(k: ObjectKey) -> ObjectKey:
        kind, s, name, sub = k
        if kind != "column":  # (relations keep the keys the rename steps name them by)
            return k
        name = new_table.get((s, name), name)
        return (kind, s, name, new_column.get((s, name, sub), sub))

    return frozenset((follow(a), follow(b)) for a, b in schema.dependencies)


def _table_renames(before: Schema, after: Schema) -> list[tuple[tuple[str, str], str]]:
    out = []
    taken: set[tuple[str, str]] = set()
    for t in after.tables:
        schema = t.schema_ or ""
        if not t.renamed_from or before.table(schema, t.name) is not None:
            continue  # no rename asked, or already done (the annotation stays in the file)
        old = (schema, t.renamed_from)
        # The old table must exist and be gone from the desired schema (else it is kept,
        # and the new one is a new table); one old table renames once.
        if before.table(*old) is None or after.table(*old) is not None or old in taken:
            continue
        taken.add(old)
        out.append((old, t.name))
    return out


def declared_value_renames(before: Schema, after: Schema) -> tuple[Schema, list[Change]]:
    """(``before`` with the declared enum-value renames done, as the server prints it
    then, the rename changes); ``before`` itself when there is none to make."""
    labels = _enum_value_renames(before, after)
    if not labels:
        return before, []
    renamed = before.model_copy(deep=True)
    changes: list[Change] = []
    for key, old, new in labels:
        e = next(e for e in renamed.enums if (e.schema_ or "", e.name) == key)
        changes.append(_first(RenameEnumValue(e.model_copy(deep=True), old, new)))
        e.values = [new if v == old else v for v in e.values]
        relabel_schema(renamed, e, old, new)
    return renamed, changes


def _enum_value_renames(before: Schema, after: Schema) -> list[tuple[tuple[str, str], str, str]]:
    """(enum key, old label, new label) of the declared value renames that apply: the
    type has the old label and not the new one (renamed already: nothing to do; the
    annotation stays in the file)."""
    if not after.enums or not RenameEnumValue.speaks(get_dialect(after.dialect)):
        return []
    old_enums = {(e.schema_ or "", e.name): e for e in before.enums}
    out = []
    for e in after.enums:
        key = (e.schema_ or "", e.name)
        b = old_enums.get(key)
        if b is None or not e.values_renamed_from:
            continue
        values = list(b.values)
        for new, old in e.values_renamed_from.items():
            if new in values or old not in values:
                continue
            out.append((key, old, new))
            values[values.index(old)] = new
    return out


def _column_renames(before: Schema, after: Schema, tables: dict[tuple[str, str], str],
                    ) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """Per table (as named once the table renames are done): (old, new) column names."""
    back = {(s, new): old for (s, old), new in tables.items()}
    out: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for t in after.tables:
        schema = t.schema_ or ""
        old_t = before.table(schema, back.get((schema, t.name), t.name))
        if old_t is None:
            continue
        for c in t.columns:
            if not c.renamed_from or old_t.column(c.name) is not None:
                continue
            if old_t.column(c.renamed_from) is None or t.column(c.renamed_from) is not None:
                continue
            pairs = out.setdefault((schema, t.name), [])
            if all(old != c.renamed_from for old, _ in pairs):
                pairs.append((c.renamed_from, c.name))
    return out


def _follow_names(t: Table, wanted: Table,
                  not_null_name: Callable[[str, str], str] | None = None) -> list[Change]:
    """Renames of ``t``'s constraints and indexes that differ from ``wanted``'s only by
    name (``t`` is updated to the new names); with ``not_null_name`` (the server's derived
    name of a NOT NULL constraint), of its NOT NULL constraints too."""
    from .changes.rename_constraint import RenameConstraint
    from .changes.rename_index import RenameIndex
    from .diff import same

    out: list[Change] = []
    for c in t.columns if not_null_name is not None else ():
        w = wanted.column(c.name)
        if c.nullable or c.inherited or w is None or w.nullable or w.inherited:
            continue
        mine = c.not_null_name or not_null_name(t.name, c.name)
        theirs = w.not_null_name or not_null_name(wanted.name, w.name)
        if mine != theirs:
            out.append(RenameConstraint(t.model_copy(deep=True), mine, theirs))
            c.not_null_name = w.not_null_name
    pk, new_pk = t.primary_key, wanted.primary_key
    if pk and new_pk and pk.name and new_pk.name and pk.name != new_pk.name and same(
            pk, new_pk, "name"):
        out.append(RenameConstraint(t.model_copy(deep=True), pk.name, new_pk.name))
        pk.name = new_pk.name
    for group in ("unique_constraints", "check_constraints", "foreign_keys",
                  "exclusion_constraints", "indexes"):
        mine, theirs = getattr(t, group), getattr(wanted, group)
        have = {o.name for o in mine}
        free = [o for o in theirs if o.name and o.name not in have]
        for obj in mine:
            if not obj.name or any(o.name == obj.name for o in theirs):
                continue
            twin = next((o for o in free if same(obj, o, "name", "comment")), None)
            if twin is None:
                continue
            free.remove(twin)
            if group == "indexes":
                out.append(RenameIndex(t.schema_ or "", t.name, obj.name, twin.name))
            else:
                out.append(RenameConstraint(t.model_copy(deep=True), obj.name, twin.name))
            obj.name = twin.name
    return out


# ------------------------------------------------------------ what the server renames too
def _follow_definitions(renamed: Schema, after: Schema, names: dict[str, str]) -> None:
    """Definitions the server prints anew once the renames are done (a trigger's UPDATE
    OF list and WHEN, a policy, a view's query, an SQL-standard function body), taken
    from ``after`` where they are ``renamed``'s with the renamed identifiers: no step
    makes them (the server did), and none must undo them before the renames are undone."""
    if not names:
        return
    for t in renamed.tables:
        want = after.table(t.schema_ or "", t.name)
        if want is None:
            continue
        triggers = {tr.name: tr for tr in want.triggers}
        for tr in t.triggers:
            twin = triggers.get(tr.name)
            if twin is not None and _same_renamed(tr.definition, twin.definition, names, ""):
                tr.definition = twin.definition
        policies = {po.name: po for po in want.policies}
        for po in t.policies:
            twin = policies.get(po.name)
            if twin is not None and all(_same_renamed(getattr(po, f), getattr(twin, f), names)
                                        for f in ("using", "with_check")):
                po.using, po.with_check = twin.using, twin.with_check
    views = {(v.schema_ or "", v.name): v for v in after.views}
    for v in renamed.views:
        twin = views.get((v.schema_ or "", v.name))
        # (a view keeps a renamed column's old name as its output name: "x AS old")
        if twin is not None and _same_renamed(v.definition, twin.definition, names, "",
                                              keep_output_names=True):
            v.definition, v.depends_on = twin.definition, list(twin.depends_on)
    functions = {(f.schema_ or "", f.name, f.identity_arguments): f for f in after.functions}
    for f in renamed.functions:
        twin = functions.get((f.schema_ or "", f.name, f.identity_arguments))
        if twin is not None and _same_renamed(f.definition, twin.definition, names, ""):
            f.definition = twin.definition


def _same_renamed(old: str | None, new: str | None, names: dict[str, str],
                  head: str = "SELECT ", keep_output_names: bool = False) -> bool:
    """Whether ``new`` parses to ``old`` with the identifiers of ``names`` renamed
    (``head``: what makes an expression a statement). ``keep_output_names``: a select
    list item that is a bare renamed column keeps its old name as its output name."""
    if old == new or old is None or new is None:
        return old == new
    import pglast

    try:
        was, now = pglast.parse_sql(head + old), pglast.parse_sql(head + new)
    except pglast.parser.ParseError:
        return False
    return _tree([n(skip_none=True) for n in was], names, keep_output_names) == _tree(
        [n(skip_none=True) for n in now], {})


def _tree(node: object, names: dict[str, str], keep_output_names: bool = False) -> object:
    """A parse tree as plain data, without source positions, names renamed."""
    if isinstance(node, dict):
        out = {k: _tree(v, names, keep_output_names) for k, v in node.items()
               if k not in ("location", "stmt_location", "stmt_len")}
        if keep_output_names and node.get("@") == "ResTarget" and "name" not in node:
            fields = (node.get("val") or {}).get("fields") or ()
            if node["val"].get("@") == "ColumnRef" and fields and \
                    fields[-1].get("sval") in names:
                out["name"] = fields[-1]["sval"]
        return out
    if isinstance(node, list | tuple):
        return [_tree(v, names, keep_output_names) for v in node]
    if isinstance(node, str):
        return names.get(node, node)
    return node


def _not_null_namer(before: Schema) -> Callable[[str, str], str] | None:
    """The name the server of ``before`` gives an unnamed NOT NULL constraint, where its
    NOT NULL constraints have names (PostgreSQL 18+); None elsewhere, or when ``before``
    was not read from a server (a schema file: which version runs the plan is not known)."""
    d = get_dialect(before.dialect).for_server(before.server_version) if before.dialect \
        else None
    if d is None or not d.has_not_null_constraint_names or d.server_major is None \
            or d.server_major < 18:
        return None
    return d.not_null_constraint_name


def _keep_not_null_names(t: Table, derived: Callable[[str, str], str] | None, new_table: str,
                         column: tuple[str, str] | None) -> None:
    """The NOT NULL constraints of ``t`` keep their names when the table is renamed (to
    ``new_table``) or a column of it (``column``: old, new): ALTER TABLE ... RENAME renames
    neither. One named as the server derives it from the old names (``not_null_name``
    None) is named so explicitly, as the server will print it after the rename; one whose
    name is the one derived from the new names is that (None)."""
    if derived is None:
        return
    for c in t.columns:
        if c.nullable or c.inherited:
            continue
        if column is not None and c.name != column[0]:
            continue
        now = c.not_null_name or derived(t.name, c.name)
        later = derived(new_table, column[1] if column is not None else c.name)
        c.not_null_name = None if now == later else now


def _rename_table_in(schema: Schema, t: Table, new: str) -> None:
    s = t.schema_ or ""
    old = t.name
    old_q, new_q = quote_name(s, old), quote_name(s, new)
    for other in schema.tables:
        for fk in other.foreign_keys:
            if fk.referenced_table == old and (fk.referenced_schema or other.schema_
                                               or "") == s:
                fk.referenced_table = new
        if other.partition_of and _same_relation(other.partition_of, s, old, other):
            other.partition_of = new_q
        other.inherits = [new_q if _same_relation(p, s, old, other) else p
                          for p in other.inherits]
    for seq in schema.sequences:
        if seq.owned_by and seq.owned_by.startswith(old_q + "."):
            seq.owned_by = new_q + seq.owned_by[len(old_q):]
    t.name = new


def _same_relation(ref: str, schema: str, name: str, holder: Table) -> bool:
    try:
        return split_name(ref, holder.schema_ or "") == (schema, name)
    except ValueError:
        return False


def _rename_column_in(schema: Schema, t: Table, old: str, new: str) -> None:
    s = t.schema_ or ""
    col = t.column(old)
    assert col is not None
    col.name = new
    if t.primary_key:
        t.primary_key.columns = _names(t.primary_key.columns, old, new)
        t.primary_key.include = _names(t.primary_key.include, old, new)
    for uc in t.unique_constraints:
        uc.columns = _names(uc.columns, old, new)
        uc.include = _names(uc.include, old, new)
    for fk in t.foreign_keys:
        fk.columns = _names(fk.columns, old, new)
        fk.on_delete_columns = _names(fk.on_delete_columns, old, new)
    for ck in t.check_constraints:
        ck.expression = _expr(ck.expression, old, new) or ck.expression
    for ix in t.indexes:
        for k in ix.keys:
            if k.column == old:
                k.column = new
            k.expression = _expr(k.expression, old, new)
        ix.columns = _names(ix.columns, old, new)
        ix.include = _names(ix.include, old, new)
        ix.where = _expr(ix.where, old, new)
    for c in t.columns:
        if c.generated:
            c.generated = _expr(c.generated, old, new)
    # Foreign keys of other tables (and this one's own self-references) that point here.
    for other in schema.tables:
        for fk in other.foreign_keys:
            if fk.referenced_table == t.name and (fk.referenced_schema or other.schema_
                                                  or "") == s:
                fk.referenced_columns = _names(fk.referenced_columns, old, new)
    q_old = quote_name(s, t.name, old)
    for seq in schema.sequences:
        if seq.owned_by == q_old:
            seq.owned_by = quote_name(s, t.name, new)


def _names(names: list[str], old: str, new: str) -> list[str]:
    return [new if n == old else n for n in names]


# Tokens that are no identifier: constants, operators, punctuation (ASCII_<code>).
def _expr(expression: str | None, old: str, new: str) -> str | None:
    """``expression`` with the column ``old`` renamed, read with PostgreSQL's own lexer:
    every name token that is ``old`` (unquoted and folded, or quoted exactly), but not
    inside a string, not a function's name (before ``(``) nor a type's (after ``::``);
    the new name written as the server prints it (quoted only when it must be). The rest
    of the text is kept as it is. An expression the lexer cannot read is left as it is."""
    if not expression:
        return expression
    try:
        tokens = list(scan(expression))
    except ParseError:
        return expression
    written = maybe_double_quote_name(new)
    type_names: set[int] = set()  # the (qualified) name after each ::
    for i, tok in enumerate(tokens):
        if tok.name == "TYPECAST":
            j = i + 1
            type_names.add(j)
            while j + 2 < len(tokens) and tokens[j + 1].name == "ASCII_46":  # "."
                j += 2
                type_names.add(j)
    out, done = [], 0
    for i, tok in enumerate(tokens):
        if tok.name in NOT_NAME_TOKENS or tok.name.startswith("ASCII_") or i in type_names:
            continue
        text = expression[tok.start:tok.end + 1]
        name = text[1:-1].replace('""', '"') if text.startswith('"') else text.lower()
        if name != old or (i + 1 < len(tokens) and tokens[i + 1].name == "ASCII_40"):
            continue
        out += [expression[done:tok.start], written]
        done = tok.end + 1
    return "".join(out) + expression[done:]
