"""CREATE OR REPLACE FUNCTION / PROCEDURE from the definition the server printed.

Three shapes, one kind: a new routine; a replaced body (CREATE OR REPLACE keeps grants,
comment and dependents); and, when the signature line, the return type or the kind
changes (which CREATE OR REPLACE refuses), DROP + CREATE in one step.

``check_function_bodies`` is turned off first (session level, harmless): functions are
created before the tables they query.

Also the function differ: routines are matched by schema, name and identity arguments;
a changed argument list is a different routine (drop one, create the other).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Function, Schema, Table, qualified
from .base import NO_LOCK, OBJECT_DIFFERS, Assessment, Change, Lock, Order, Safety, register
from .pg_common import comment_sql, grants_sql, mentions_relation

if TYPE_CHECKING:
    from ..dialects.base import Dialect
    from ..model import ObjectKey


def routine_kind(f: Function) -> str:
    return "PROCEDURE" if f.kind == "procedure" else "FUNCTION"


def routine_label(f: Function) -> str:
    return f"{f.kind} {qualified(f.schema_, f.name)}({f.identity_arguments})"


def routine_ref(d: Dialect, f: Function) -> str:
    return f"{d.qname(f.schema_, f.name)}({f.identity_arguments})"


def function_key(f: Function) -> ObjectKey:
    from .base import object_key

    return object_key("function", f.schema_, f.name, f.identity_arguments)


def header(f: Function) -> str:
    """What CREATE OR REPLACE cannot change: the signature line and RETURNS.

    pg_get_functiondef prints them before the `` LANGUAGE`` line.
    """
    head, sep, _ = f.definition.partition("\n LANGUAGE ")
    return head if sep else f.definition


def drop_routine_sql(d: Dialect, f: Function) -> str:
    return f"DROP {routine_kind(f)} {routine_ref(d, f)}"


def create_routine_sql(d: Dialect, f: Function, *, with_extras: bool) -> list[str]:
    out = ["SET check_function_bodies = off", f.definition.rstrip().rstrip(";")]
    if with_extras:
        parts = (f.schema_ or "", f.name)
        kind = routine_kind(f)
        out += comment_sql(d, kind, parts, f.comment, signature=f.identity_arguments)
        out += grants_sql(d, kind, parts, f.grants, signature=f.identity_arguments)
        from .revoke import Revoke

        for g in f.revoked_defaults:
            out += Revoke(kind, parts, g, f.identity_arguments).sql_postgres(d)
    return out


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class CreateFunction(Change):
    kind = "create_function"
    function: Function
    before: Function | None = None  # set: replace this definition
    recreate: bool = False  # replace by DROP + CREATE (signature, return type or kind)
    # Its signature names the row type of a table this plan creates: run after that.
    after_tables: bool = False
    # The routine as it is, written again before declared renames: nothing changes, but
    # its undo puts back the old text once the renames are undone (a routine that reads
    # a renamed name and that a default or CHECK holds, lockplane.renames).
    kept_for_rollback: bool = False

    @property  # type: ignore[override]
    def order(self) -> int:
        if self.kept_for_rollback:
            from ..renames import READER_DROP_ORDER

            return READER_DROP_ORDER
        return Order.CREATE_TABLE + 5 if self.after_tables else Order.CREATE_FUNCTION

    def objects_created(self) -> tuple[ObjectKey, ...]:
        return (function_key(self.function),)

    def objects_dropped(self) -> tuple[ObjectKey, ...]:
        return (function_key(self.before),) if self.recreate and self.before else ()

    def describe(self) -> str:
        if self.kept_for_rollback:
            return (f"Write {routine_label(self.function)} again as it is (its rollback "
                    "puts its old text back once the renames are undone)")
        verb = ("Create" if self.before is None else "Recreate" if self.recreate
                else "Replace")
        return f"{verb} {routine_label(self.function)}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        if self.before is None:
            return create_routine_sql(d, self.function, with_extras=True)
        if self.recreate:
            return [drop_routine_sql(d, self.before),
                    *create_routine_sql(d, self.function, with_extras=True)]
        return create_routine_sql(d, self.function, with_extras=False)

    def inverse(self) -> list[Change]:
        if self.before is None:
            from .drop_function import DropFunction

            return [DropFunction(self.function, before_tables=self.after_tables)]
        return [CreateFunction(self.before, before=self.function, recreate=self.recreate,
                               after_tables=self.after_tables,
                               kept_for_rollback=self.kept_for_rollback)]

    def lock(self, d: Dialect) -> Lock:
        return NO_LOCK

    def assess(self, d: Dialect) -> Assessment:
        label = routine_label(self.function)
        if self.before is None:
            return Assessment(Safety.SAFE)
        if self.kept_for_rollback:
            return Assessment(Safety.SAFE)
        if self.recreate:
            return Assessment(Safety.REVIEW, (
                f"{label} changes its signature or return type: it is dropped and created "
                "again, which fails while views, triggers, defaults or other routines "
                "depend on it, and callers expecting the old result break.",
                "Safer: create the new version under a new name, move callers, drop the old.",
            ))
        return Assessment(Safety.REVIEW, (
            f"{label} gets a new body: every caller uses it from the commit on.",))


def _arg_count(f: Function) -> int:
    """Top-level comma-separated arguments (commas inside parentheses or quotes do not
    count)."""
    text = f.identity_arguments.strip()
    if not text:
        return 0
    depth, quoted, count = 0, False, 1
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        elif not quoted and depth == 0 and ch == ",":
            count += 1
    return count


def _tkey(t: Table) -> tuple[str, str]:
    return (t.schema_ or "", t.name)


def _key(f: Function) -> tuple[str, str, str]:
    return (f.schema_ or "", f.name, f.identity_arguments)


def diff_functions(before: Schema, after: Schema, d: Dialect) -> list[Change]:
    if not CreateFunction.speaks(d):
        return []
    from .drop_function import DropFunction
    from .grant import diff_grants, diff_revoked_defaults
    from .set_comment import SetComment

    old = {_key(f): f for f in before.functions}
    new = {_key(f): f for f in after.functions}
    created = [_tkey(t) for t in after.tables if before.table(*_tkey(t)) is None]
    dropped = [_tkey(t) for t in before.tables if after.table(*_tkey(t)) is None]

    def uses(f: Function, tables: list[tuple[str, str]]) -> bool:
        # RETURNS SETOF t / an argument of type t needs the table's row type.
        return any(mentions_relation(header(f), s, n) for s, n in tables)

    # Identity arguments carry parameter names, PostgreSQL's identity does not: f(a int)
    # and f(b int) are one routine to the server, and creating the second fails while the
    # first exists. A lone unmatched pair with the same name and argument count is
    # therefore replaced in one step (DROP + CREATE).
    # (grouped once: a schema of thousands of routines, all new on a shadow built from
    # nothing, made the pairwise scan take seconds)
    paired: dict[tuple[str, str, str], Function] = {}
    gone: dict[tuple[str | None, str, str], list[Function]] = {}
    for k, f in old.items():
        if k not in new:
            gone.setdefault((f.schema_, f.name, f.kind), []).append(f)
    fresh: dict[tuple[str | None, str, str], int] = {}
    for k, f in new.items():
        if k not in old:
            fresh[(f.schema_, f.name, f.kind)] = fresh.get((f.schema_, f.name, f.kind), 0) + 1
    for k, a in new.items():
        if k in old:
            continue
        same_name = gone.get((a.schema_, a.name, a.kind), [])
        if len(same_name) == 1 and fresh[(a.schema_, a.name, a.kind)] == 1 \
                and _arg_count(same_name[0]) == _arg_count(a):
            paired[k] = same_name[0]

    out: list[Change] = []
    for key, a in new.items():
        b = old.get(key)
        if b is None and key in paired:
            out.append(CreateFunction(a, before=paired[key], recreate=True,
                                      after_tables=uses(a, created)))
            continue
        if b is None:
            out.append(CreateFunction(a, after_tables=uses(a, created)))
            continue
        recreate = b.kind != a.kind or header(b) != header(a)
        if recreate:
            out.append(CreateFunction(a, before=b, recreate=True,
                                      after_tables=uses(a, created)))
            continue  # the new routine gets its comment and grants in the same step
        if b.definition != a.definition:
            out.append(CreateFunction(a, before=b))
        parts = (key[0], key[1])
        if b.comment != a.comment:
            out.append(SetComment(routine_kind(a), parts, b.comment, a.comment,
                                  signature=a.identity_arguments))
        out += diff_grants(routine_kind(a), parts, b.grants, a.grants,
                           signature=a.identity_arguments)
        out += diff_revoked_defaults(routine_kind(a), parts, b.revoked_defaults,
                                     a.revoked_defaults, signature=a.identity_arguments)
    replaced = {_key(f) for f in paired.values()}
    out += [DropFunction(f, before_tables=uses(f, dropped))
            for key, f in old.items() if key not in new and key not in replaced]
    return out


OBJECT_DIFFERS.append(diff_functions)
