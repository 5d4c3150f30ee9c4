"""CREATE [MATERIALIZED] VIEW, with options, check option, comment, grants and (for a
materialized view) its indexes, all in one step so that DROP VIEW's inverse is complete.

Also the view differ. A view's definition is never replaced in place (CREATE OR REPLACE
only allows appending columns, which cannot be told apart safely): a changed view is
dropped and created again, and so is every view that depends on it, transitively, and
every view reading a table whose columns change type or are dropped (PostgreSQL refuses
those ALTERs while a view uses the column). ``rank`` orders creates by dependency (and
drops in reverse).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Schema, View, qualified, unchanged_tables
from .base import NO_LOCK, OBJECT_DIFFERS, Assessment, Change, Lock, Order, Safety, register
from .pg_common import (
    changed_columns,
    columns_retyped,
    comment_sql,
    enum_users,
    grants_sql,
    mentions_relation,
    reloption_sql,
    topo_order,
)

if TYPE_CHECKING:
    from ..dialects.base import Dialect
    from ..dialects.mysql.alter_facts import MySQLStatement
    from ..model import ObjectKey

Key = tuple[str, str]


def view_kind(v: View) -> str:
    return "MATERIALIZED VIEW" if v.materialized else "VIEW"


def view_body(v: View) -> str:
    # pg_get_viewdef ends the query with ";": not allowed inside CREATE VIEW ... AS.
    return v.definition.strip().rstrip(";").rstrip()


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class CreateView(Change):
    kind = "create_view"
    order = Order.CREATE_VIEW
    view: View
    recreated: bool = False  # dropped earlier in the same plan

    def objects_created(self) -> tuple[ObjectKey, ...]:
        from .base import relation_keys

        return relation_keys(self.view.schema_, self.view.name)

    def describe(self) -> str:
        verb = "Recreate" if self.recreated else "Create"
        name = qualified(self.view.schema_, self.view.name)
        if self.recreated and self.view.materialized:
            return (f"{verb} {view_kind(self.view).lower()} {name} (its rows computed "
                    "again from its query, as REFRESH MATERIALIZED VIEW would)")
        return f"{verb} {view_kind(self.view).lower()} {name}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        from .create_index import CreateIndex

        v = self.view
        parts = (v.schema_ or "", v.name)
        sql = f"CREATE {view_kind(v)} {d.qname(v.schema_, v.name)}"
        if v.options:
            sql += f" WITH ({', '.join(reloption_sql(d, o) for o in v.options)})"
        sql += f" AS\n{d.stored_expression(view_body(v), head='')}"
        if v.materialized:
            sql += "\nWITH DATA"
        elif v.check_option:
            sql += f"\nWITH {'LOCAL' if v.check_option == 'LOCAL' else 'CASCADED'} CHECK OPTION"
        out = [sql] + comment_sql(d, view_kind(v), parts, v.comment)
        for ix in v.indexes if v.materialized else []:
            out += CreateIndex(parts[0], v.name, ix).sql_postgres(d)
        for col, text in sorted(v.column_comments.items()):
            out += comment_sql(d, "COLUMN", (*parts, col), text)
        out += grants_sql(d, "TABLE", parts, v.grants)
        if v.triggers:
            from .create_trigger import CreateTrigger

            for t in v.triggers:
                out += CreateTrigger(parts[0], v.name, t, new_table=True).sql_postgres(d)
        if v.rules:
            from .create_rule import CreateRule

            for r in v.rules:
                out += CreateRule(parts[0], v.name, r, new_table=True).sql_postgres(d)
        return out

    def sql_sqlite(self, d: Dialect) -> list[str]:
        return [f"CREATE VIEW {d.qname(self.view.schema_, self.view.name)} AS "
                f"{view_body(self.view)}"]

    def sql_mysql(self, d: Dialect) -> list[str]:
        return [mysql_view_sql(d, self.view)]

    def mysql_statement(self, d: Dialect) -> MySQLStatement:
        """No ALGORITHM clause: metadata only, checked on the plan's scratch copy."""
        from ..dialects.mysql.alter_facts import MySQLStatement
        from ..model import Table

        return MySQLStatement(Table(name=self.view.name, schema=self.view.schema_),
                              self.sql_mysql(d), "CREATE VIEW", view=True)

    def lock_mysql(self, d: Dialect) -> Lock:
        from ..dialects.mysql.alter_facts import statement_lock

        return statement_lock(d, self.mysql_statement(d))

    def inverse(self) -> list[Change]:
        from .drop_view import DropView

        return [DropView(self.view, recreated=self.recreated)]

    def lock(self, d: Dialect) -> Lock:
        own = self.for_dialect("lock", d)  # (MySQL: lock_mysql, alter_facts)
        if own is not None:
            return own(d)  # type: ignore[no-any-return]
        if self.view.materialized:
            # Runs the query: reads every source table (ACCESS SHARE, nothing blocked).
            return Lock("ACCESS SHARE", False, False, scans_table=True)
        return NO_LOCK

    def assess(self, d: Dialect) -> Assessment:
        if self.view.materialized and self.recreated:
            return Assessment(Safety.REVIEW, (
                f"Recreating materialized view {qualified(self.view.schema_, self.view.name)} "
                "runs its query in full inside the migration, as a REFRESH would: its "
                "rows are then those of now, no longer those of its last refresh.",))
        if self.view.materialized:
            return Assessment(Safety.REVIEW, (
                f"Creating materialized view {qualified(self.view.schema_, self.view.name)} "
                "runs its query in full inside the migration.",))
        return Assessment(Safety.SAFE)

    def table_key(self) -> tuple[str, str]:
        return (self.view.schema_ or "", self.view.name)


def mysql_view_sql(d: Dialect, v: View, *, replace: bool = False) -> str:
    """CREATE [OR REPLACE] [ALGORITHM=a] [SQL SECURITY s] VIEW ... [WITH ... CHECK OPTION],
    the options as introspection records them (the server's defaults left out)."""
    from .mysql_common import word

    where = f"view {qualified(v.schema_, v.name)}"
    head = "CREATE OR REPLACE" if replace else "CREATE"
    for option in sorted(v.options):
        key, _, value = option.partition("=")
        if key.lower() == "algorithm":
            head += f" ALGORITHM={word(value, 'view algorithm', where).upper()}"
        elif key.lower() == "sql_security":
            head += f" SQL SECURITY {word(value, 'view SQL SECURITY', where).upper()}"
        else:
            from ..errors import BadInput

            raise BadInput(f"{where}: view option {option!r} is not one MySQL has "
                           "(algorithm, sql_security)")
    sql = f"{head} VIEW {d.qname(v.schema_, v.name)} AS {view_body(v)}"
    if v.check_option:
        sql += f" WITH {'LOCAL' if v.check_option == 'LOCAL' else 'CASCADED'} CHECK OPTION"
    return sql


# ------------------------------------------------------------------------------ differ
def _key(v: View) -> Key:
    return (v.schema_ or "", v.name)


def _dep_keys(v: View, known: dict[str, Key]) -> set[Key]:
    """The views among ``known`` this view selects from (depends_on holds "schema.name")."""
    return {known[dep] for dep in v.depends_on if dep in known}


def _named_views(v: View, known: dict[str, Key]) -> set[Key]:
    """SQLite keeps no dependencies: the views whose names appear in this view's text as
    a word or quoted identifier. Too many is harmless (an extra view is dropped and
    created again); missing one breaks the next ALTER, which re-checks every view."""
    from ..dialects.sqlite.sqltext import fold, tokenize, unquote

    by_name = {fold(k[1]): k for k in known.values()}
    out = {by_name[name] for tok in tokenize(v.definition) if tok.kind in ("word", "id")
           and (name := fold(unquote(tok.text))) in by_name}
    out.discard(_key(v))
    return out


def _label(key: Key) -> str:
    return f"{key[0]}.{key[1]}"


def _tables_with_changed_columns(before: Schema, after: Schema) -> set[str]:
    """Tables (as "schema.name") whose columns are dropped or change type, collation,
    generation expression, or use an enum that is recreated."""
    from .create_enum import needs_recreate

    out: set[str] = set()
    same = unchanged_tables(before, after)
    for tb in before.tables:
        if (tb.schema_ or "", tb.name) in same:
            continue
        ta = after.table(tb.schema_ or "", tb.name)
        if ta is not None and columns_retyped(tb, ta):
            out.add(_label((tb.schema_ or "", tb.name)))
    new_enums = {(e.schema_ or "", e.name): e for e in after.enums}
    for e in before.enums:
        a = new_enums.get((e.schema_ or "", e.name))
        if a is not None and needs_recreate(e, a):
            for s, t, _, _, _ in enum_users(before, e.schema_ or "", e.name):
                out.add(_label((s, t)))
    return out


def column_readers(before: Schema, after: Schema, d: Dialect | None = None) -> set[ObjectKey]:
    """What reads, in ``before``'s server graph, a column the plan drops, retypes or
    regenerates (pg_common.changed_columns), or one typed with an enum that is
    recreated: the views and SQL-standard routines PostgreSQL refuses to leave standing
    under that change. Not transitive (what reads those is theirs to follow)."""
    from .base import column_key
    from .create_enum import needs_recreate

    cols: set[ObjectKey] = set()
    same = unchanged_tables(before, after)
    for tb in before.tables:
        if (tb.schema_ or "", tb.name) in same:
            continue
        ta = after.table(tb.schema_ or "", tb.name)
        if ta is not None:
            cols |= {column_key(tb.schema_, tb.name, c) for c in changed_columns(tb, ta, d)}
    new_enums = {(e.schema_ or "", e.name): e for e in after.enums}
    for e in before.enums:
        a = new_enums.get((e.schema_ or "", e.name))
        if a is not None and needs_recreate(e, a):
            cols |= {column_key(s, t, c)
                     for s, t, c, _, _ in enum_users(before, e.schema_ or "", e.name)}
    return {obj for obj, dep in before.dependencies if dep in cols}


def _recreated_routines(before: Schema, after: Schema) -> set[Key]:
    """Aggregates and functions that are dropped and created again (a changed aggregate,
    a function whose signature line changes): views calling them go and come back."""
    from .create_function import header

    out: set[Key] = set()
    new_aggs = {(x.schema_ or "", x.name, x.identity_arguments): x for x in after.aggregates}
    for x in before.aggregates:
        y = new_aggs.get((x.schema_ or "", x.name, x.identity_arguments))
        if y is not None and y.definition != x.definition:
            out.add((x.schema_ or "", x.name))
    new_fns = {(f.schema_ or "", f.name, f.identity_arguments): f for f in after.functions}
    for f in before.functions:
        g = new_fns.get((f.schema_ or "", f.name, f.identity_arguments))
        if g is not None and (g.kind != f.kind or header(g) != header(f)):
            out.add((f.schema_ or "", f.name))
    return out


def _view_changed(b: View, a: View) -> bool:
    return view_body(b) != view_body(a) or b.materialized != a.materialized


def diff_views(before: Schema, after: Schema, d: Dialect) -> list[Change]:
    from .create_index import CreateIndex
    from .drop_index import DropIndex
    from .drop_view import DropView
    from .grant import diff_grants
    from .replace_view import ReplaceView
    from .set_comment import SetComment

    old = {_key(v): v for v in before.views}
    new = {_key(v): v for v in after.views}
    old_known = {_label(k): k for k in old}
    new_known = {_label(k): k for k in new}
    if d.replaces_views:
        return _replaced_views(old, new, old_known, new_known)

    # Views to drop and create again: changed ones, readers of changed tables, and
    # (transitively) every view that selects from one of those.
    redo: set[Key] = {k for k in old.keys() & new.keys() if _view_changed(old[k], new[k])}
    if d.views_pin_columns:
        if before.dependencies:
            # The server's graph: only the views reading a changed column.
            readers = column_readers(before, after, d)
            redo |= {k for k in old.keys() & new.keys()
                     if ("relation", k[0], k[1], "") in readers}
        else:  # (a schema from a file: no graph; every view over such a table)
            changed_tables = _tables_with_changed_columns(before, after)
            redo |= {k for k in old.keys() & new.keys()
                     if set(old[k].depends_on) & changed_tables}
        routines = _recreated_routines(before, after)
        if routines:
            redo |= {k for k in old.keys() & new.keys()
                     if any(mentions_relation(old[k].definition, s, n) for s, n in routines)}
    gone = (old.keys() - new.keys()) | redo
    # (the catalog's dependencies where the server records them, else names in the text)
    deps = _dep_keys if d.views_pin_columns else _named_views
    dependents: dict[Key, set[Key]] = {}
    for k, v in old.items():
        for dep in deps(v, old_known):
            dependents.setdefault(dep, set()).add(k)
    stack = list(gone)
    while stack:
        for k in dependents.get(stack.pop(), ()):
            if k not in gone:
                gone.add(k)
                stack.append(k)
                if k in new:
                    redo.add(k)

    out: list[Change] = []
    old_order = topo_order(sorted(old), {k: deps(v, old_known) for k, v in old.items()})
    for rank, k in enumerate(old_order):
        if k in gone:
            out.append(DropView(old[k], recreated=k in redo, rank=-rank))
    new_order = topo_order(sorted(new), {k: deps(v, new_known) for k, v in new.items()})
    for rank, k in enumerate(new_order):
        if k not in old or k in redo:
            out.append(CreateView(new[k], recreated=k in redo, rank=rank))
    if not ReplaceView.speaks(d) or d.replaces_views:
        return out

    for k in sorted(old.keys() & new.keys() - redo):
        b, a = old[k], new[k]
        if b.options != a.options or b.check_option != a.check_option:
            out.append(ReplaceView(b, a))
        if b.comment != a.comment:
            out.append(SetComment(view_kind(a), k, b.comment, a.comment))
        for col in sorted(set(b.column_comments) | set(a.column_comments)):
            old_c, new_c = b.column_comments.get(col), a.column_comments.get(col)
            if old_c != new_c:
                out.append(SetComment("COLUMN", (*k, col), old_c, new_c))
        out += diff_grants("TABLE", k, b.grants, a.grants)
        if b.triggers or a.triggers:
            out += _diff_view_triggers(k, b, a)
        if b.rules or a.rules:
            from .create_rule import diff_rules

            out += diff_rules(b, a, d)  # type: ignore[arg-type]  (a view has rules too)
        if a.materialized:
            old_ix = {ix.name: ix for ix in b.indexes}
            new_ix = {ix.name: ix for ix in a.indexes}
            for name, ix in new_ix.items():
                prev = old_ix.get(name)
                if prev is None or not _same_index(prev, ix):
                    if prev is not None:
                        out.append(DropIndex(k[0], a.name, prev))
                    out.append(CreateIndex(k[0], a.name, ix))
                elif prev.comment != ix.comment:
                    out.append(SetComment("INDEX", (k[0], name), prev.comment, ix.comment))
            out += [DropIndex(k[0], a.name, ix) for name, ix in old_ix.items()
                    if name not in new_ix]
    return out


def _replaced_views(old: dict[Key, View], new: dict[Key, View], old_known: dict[str, Key],
                    new_known: dict[str, Key]) -> list[Change]:
    """Where CREATE OR REPLACE VIEW takes any new query (MySQL): a changed view is
    replaced in place, in one statement, and views reading it stay (they name it)."""
    from .drop_view import DropView
    from .replace_view import ReplaceView

    out: list[Change] = []
    old_order = topo_order(sorted(old), {k: _named_views(v, old_known) for k, v in old.items()})
    for rank, k in enumerate(old_order):
        if k not in new:
            out.append(DropView(old[k], rank=-rank))
    new_order = topo_order(sorted(new), {k: _named_views(v, new_known) for k, v in new.items()})
    for rank, k in enumerate(new_order):
        b, a = old.get(k), new[k]
        if b is None:
            out.append(CreateView(a, rank=rank))
        elif (view_body(b), b.options, b.check_option) != (view_body(a), a.options,
                                                          a.check_option):
            out.append(ReplaceView(b, a, rank=rank))
    return out


def _diff_view_triggers(k: Key, b: View, a: View) -> list[Change]:
    """INSTEAD OF (and statement) triggers of a view that stays: drop + create a changed
    one, ``alter_trigger`` for its enabled state, comments in place."""
    from .alter_trigger import AlterTrigger
    from .create_trigger import CreateTrigger
    from .drop_trigger import DropTrigger
    from .set_comment import SetComment

    old = {t.name: t for t in b.triggers}
    new = {t.name: t for t in a.triggers}
    out: list[Change] = []
    for name, t in new.items():
        prev = old.get(name)
        if prev is None or prev.definition != t.definition:
            if prev is not None:
                out.append(DropTrigger(k[0], k[1], prev))
            out.append(CreateTrigger(k[0], k[1], t))
            continue
        if prev.enabled != t.enabled:
            out.append(AlterTrigger(k[0], k[1], prev, t))
        if prev.comment != t.comment:
            out.append(SetComment("TRIGGER", (name,), prev.comment, t.comment, on_table=k))
    out += [DropTrigger(k[0], k[1], t) for name, t in old.items() if name not in new]
    return out


def _same_index(b: object, a: object) -> bool:
    from ..diff import same

    return same(b, a, "comment")


OBJECT_DIFFERS.append(diff_views)
