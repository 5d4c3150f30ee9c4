"""ALTER TABLE ... ALTER COLUMN: type, collation, default, nullability, identity, expression.

One step per column, holding the column before and after; its inverse is the same step
reversed. (SQLite cannot alter a column: the differ asks for a table rebuild instead.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ..model import CheckConstraint, Column, IdentityOptions, Index, Sequence, Table, qualified
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
from .pg_common import dollar_quoted
from .render import default_expr, identity_options_sql, table_name

if TYPE_CHECKING:
    from ..dialects.base import Dialect
    from ..dialects.mysql.alter_facts import MySQLAlter
    from ..model import ObjectKey, Schema

_VARCHAR = re.compile(r"^character varying(?:\((\d+)\))?$")
_NUMERIC = re.compile(r"^numeric(?:\((\d+)(?:,(\d+))?\))?$")
_VARBIT = re.compile(r"^bit varying(?:\((\d+)\))?$")


def _widening(pattern: re.Pattern[str], old: str, new: str) -> bool:
    mo, mn = pattern.match(old), pattern.match(new)
    if not (mo and mn):
        return False
    if mn.group(1) is None:
        return True  # unbounded is wider than anything
    return mo.group(1) is not None and int(mn.group(1)) >= int(mo.group(1))


def type_change_rewrites(old: str, new: str) -> bool:
    """Whether PostgreSQL rewrites the table for this type change (binary-coercible: no)."""
    old, new = old.replace(", ", ","), new.replace(", ", ",")
    if old == new:
        return False
    if _widening(_VARCHAR, old, new) or _widening(_VARBIT, old, new):
        return False
    if _VARCHAR.match(old) and new == "text":
        return False
    if old == "text" and new == "character varying":
        return False
    mo, mn = _NUMERIC.match(old), _NUMERIC.match(new)
    if mo and mn:
        if mn.group(1) is None:
            return False  # to unconstrained numeric
        if mo.group(1) is not None and (mo.group(2) or "0") == (mn.group(2) or "0"):
            return int(mn.group(1)) < int(mo.group(1))
    return True


def type_change_narrows(old: str, new: str) -> bool:
    """Whether the new type may not hold every old value (the change may fail or truncate)."""
    if not type_change_rewrites(old, new):
        return False
    widenings = {("smallint", "integer"), ("smallint", "bigint"), ("integer", "bigint"),
                 ("real", "double precision"), ("integer", "numeric"), ("bigint", "numeric"),
                 ("smallint", "numeric"), ("date", "timestamp without time zone"),
                 ("date", "timestamp with time zone")}
    if (old, new) in widenings:
        return False
    if new in ("text", "character varying"):
        return False  # every type has a text form
    return True


# Families of built-in types PostgreSQL casts between directly (pg_cast). Across families
# only the string types convert everything (the I/O conversion casts); elsewhere there
# may be no cast at all ("cannot cast type date to bigint", even on an empty table).
_CAST_FAMILIES = (
    {"smallint", "integer", "bigint", "real", "double precision", "numeric"},
    {"date", "timestamp without time zone", "timestamp with time zone"},
    {"json", "jsonb"},
    {"bit", "bit varying"},
    {"integer", "boolean"},
)
_STRING_TYPES = {"text", "character varying", "character", "bpchar", '"char"', "name"}


def _base_type(t: str) -> str:
    return re.sub(r"\(.*?\)", "", t).strip()


def has_direct_cast(old: str, new: str) -> bool:
    """Whether ``old::new`` exists (best knowledge for built-in types; arrays by element)."""
    bo, bn = _base_type(old), _base_type(new)
    if bo.endswith("[]") and bn.endswith("[]"):
        return has_direct_cast(bo[:-2], bn[:-2])
    if bo in _STRING_TYPES or bn in _STRING_TYPES or bo == bn:
        return True
    return any(bo in f and bn in f for f in _CAST_FAMILIES)


def cast_sql(col: str, old: str, new: str, bases: tuple[str, str] | None = None) -> str:
    """The USING expression converting ``col`` from ``old`` to ``new``: a direct cast when
    one exists, else through the text form (which every type has, both ways). ``bases``:
    the two types with each domain read as its base type (base_type), whose casts a
    domain has: numeric to a domain over integer is a direct cast (through text, '7.00'
    is no integer)."""
    if has_direct_cast(*(bases or (old, new))):
        return f"{col}::{new}"
    return f"{col}::text::{new}"


def base_type(schema: Schema, type_text: str) -> str:
    """``type_text`` with a domain of ``schema`` (or an array of one) read as its base
    type, through domains over domains."""
    from .pg_common import type_ref

    domains = {(t.schema_ or "public", t.name): t for t in schema.domains}
    dims = 0
    for _ in range(len(domains)):
        ref = type_ref(type_text)
        dom = domains.get(ref[:2]) if ref is not None else None
        if dom is None or ref is None:
            break
        dims += ref[2]
        type_text = dom.base_type
    return type_text + "[]" * dims


def compare_type(schema: Schema, type_text: str) -> str | None:
    """The type values of ``type_text`` are compared as (Dialect.distinct_sql): a domain's
    base type (None: the type itself)."""
    base = base_type(schema, type_text)
    return None if base == type_text else base


def note_cast_types(changes: list[Change], before: Schema, after: Schema,
                    d: Dialect) -> None:
    """Each type change to or from a domain casts as its base type does (cast_sql)."""
    if not before.domains and not after.domains:
        return
    for c in changes:
        if isinstance(c, AlterColumn) and c.before.type != c.after.type:
            bases = (base_type(before, c.before.type), base_type(after, c.after.type))
            if bases != (c.before.type, c.after.type):
                c.cast_types = bases
                c.domain_constrained = (domain_constrained(before, c.before.type),
                                        domain_constrained(after, c.after.type))


def domain_constrained(schema: Schema, type_text: str) -> bool:
    """Whether ``type_text`` is a domain of ``schema`` with a CHECK or NOT NULL of its
    own or of a domain it is over."""
    from .pg_common import type_ref

    domains = {(t.schema_ or "public", t.name): t for t in schema.domains}
    for _ in range(len(domains)):
        ref = type_ref(type_text)
        dom = domains.get(ref[:2]) if ref is not None else None
        if dom is None:
            return False
        if dom.checks or not dom.nullable:
            return True
        type_text = dom.base_type
    return False


def mentions_column(text: str | None, name: str) -> bool:
    """Whether server-printed SQL (an expression) may name the column ``name``.

    Errs towards yes: a false match only costs recreating something unchanged.
    """
    if not text:
        return False
    from pglast.parser import ParseError, scan

    from .pg_common import NOT_NAME_TOKENS

    try:
        tokens = scan(text)
    except ParseError:
        return True
    for tok in tokens:  # (PostgreSQL's lexer: a name in a string literal is not one)
        if tok.name in NOT_NAME_TOKENS or tok.name.startswith("ASCII_"):
            continue
        word = text[tok.start:tok.end + 1]
        if (word[1:-1].replace('""', '"') if word.startswith('"') else word.lower()) == name:
            return True
    return False


@dataclass
class Regeneration:
    """Generated columns a plan drops and adds back, with their indexes and constraints.

    PostgreSQL 15 can neither change a generation expression nor ALTER the type (or
    collation) of a column a generated column uses ("cannot alter type of a column used
    by a generated column"). A generated column over retyped columns is dropped by the
    first of their AlterColumn steps and added back by the last; one whose own
    expression changes is dropped and added by its own step.
    """

    names: set[str] = field(default_factory=set)  # every column dropped and added back
    drops: dict[str, list[tuple[Column, Column]]] = field(default_factory=dict)
    adds: dict[str, list[tuple[Column, Column]]] = field(default_factory=dict)
    by_base: set[str] = field(default_factory=set)  # those the base columns' steps do


def plan_regeneration(b: Table, a: Table, d: Dialect | None = None) -> Regeneration:
    """``d``: the dialect as it speaks to the plan's server; a column whose new expression
    it sets in place (generation_in_place) is not dropped (None: every one is)."""
    out = Regeneration()
    old = {c.name: c for c in b.columns}
    order = [c.name for c in a.columns]
    retyped = [c.name for c in a.columns if c.name in old and c.generated is None
               and old[c.name].generated is None
               and (old[c.name].type, old[c.name].collation) != (c.type, c.collation)]
    for g in a.columns:
        prev = old.get(g.name)
        if prev is not None and virtual_to_plain(prev, g):
            out.names.add(g.name)  # (its values go to a new column; the old one is dropped)
        if prev is None or g.generated is None:
            continue
        bases = [c for c in retyped if mentions_column(prev.generated, c)
                 or mentions_column(g.generated, c)] if prev.generated is not None else []
        if bases:
            first = min(bases, key=order.index)
            last = max(bases, key=order.index)
            out.drops.setdefault(first, []).append((prev, g))
            out.adds.setdefault(last, []).append((prev, g))
            out.by_base.add(g.name)
            out.names.add(g.name)
        elif generation(prev) != generation(g) and not (
                d is not None and generation_in_place(prev, g, b, a, d)):
            out.names.add(g.name)
    return out


def generation_in_place(prev: Column, col: Column, b: Table, a: Table, d: Dialect) -> bool:
    """Whether a generated column's new expression is set in place (ALTER COLUMN ... SET
    EXPRESSION, PostgreSQL 17) on the server the plan is for, instead of the column being
    dropped and added back: generated on both sides, of the same kind, type and
    collation. A STORED column is rewritten (ACCESS EXCLUSIVE), and keeps everything
    over it: indexes (rebuilt), constraints (checked again), views, SQL-standard
    routines, triggers, policies, privileges, statistics, comment. A VIRTUAL one (18)
    is not rewritten, and the server refuses it on a table with any CHECK constraint
    ("not supported for virtual generated columns in tables with check constraints"):
    those are dropped and added back as before."""
    if prev.generated is None or col.generated is None or generation(prev) == generation(col):
        return False
    if prev.generated_kind != col.generated_kind or (prev.type, prev.collation) != (
            col.type, col.collation):
        return False
    if not d.sets_generation_in_place(col.generated_kind):
        return False
    return computed_on_write(col) or not (b.check_constraints or a.check_constraints)


def generation(c: Column) -> tuple[str, str] | None:
    """A column's generation expression and kind (STORED, or PostgreSQL 18's VIRTUAL)."""
    return None if c.generated is None else (c.generated, c.generated_kind)


def virtual_to_plain(b: Column, a: Column) -> bool:
    """A VIRTUAL generated column (PostgreSQL 18) becoming a plain one: it has no DROP
    EXPRESSION, so its values are copied into a new column (every row is written)."""
    return b.generated is not None and not computed_on_write(b) and a.generated is None


def computed_on_write(c: Column) -> bool:
    """A STORED generated column: adding it back computes it for every row (a rewrite);
    a VIRTUAL one is computed on read."""
    return c.generated is not None and c.generated_kind == "stored"


def mentions_any(obj: object, names: set[str]) -> bool:
    """Whether an index or constraint uses one of the columns ``names``."""
    if not names:
        return False
    cols: list[str] = []
    texts: list[str | None] = []
    for attr in ("columns", "include"):
        cols += list(getattr(obj, attr, None) or [])
    for key in getattr(obj, "keys", None) or []:
        if getattr(key, "column", None):
            cols.append(key.column)
        texts.append(getattr(key, "expression", None))
    for attr in ("where", "expression", "definition"):
        value = getattr(obj, attr, None)
        texts.append(value if isinstance(value, str) else None)
    return bool(set(cols) & names) or any(mentions_column(t, n) for t in texts for n in names)



_INT_MAX = {"smallint": 2**15 - 1, "integer": 2**31 - 1, "bigint": 2**63 - 1}


def _bounds(o: IdentityOptions | None, type_: str) -> tuple[int, int, int]:
    """(MINVALUE, MAXVALUE, START) of an identity column, PostgreSQL's defaults filled in."""
    o = o or IdentityOptions()
    top = _INT_MAX.get(type_, 2**63 - 1)
    up = (o.increment or 1) > 0
    low = o.min_value if o.min_value is not None else (1 if up else -top - 1)
    high = o.max_value if o.max_value is not None else (top if up else -1)
    start = o.start if o.start is not None else (low if up else high)
    return low, high, start


def identity_restart_sql(d: Dialect, table: Table, col: Column,
                         before: IdentityOptions | None) -> list[str]:
    """Statements that put an identity's sequence inside bounds being tightened, before
    the ALTER that sets them (which refuses a last value outside them).

    Only a sequence whose last value falls outside is restarted, at the new START (what
    a fresh column would give next); one inside keeps counting where it stands. setval
    checks the old bounds, so when the new START lies outside them the bounds first
    widen to cover both."""
    old_low, old_high, _ = _bounds(before, col.type)
    low, high, start = _bounds(col.identity_options, col.type)
    if low <= old_low and high >= old_high:
        return []  # nothing that was in range falls out
    t, c = table_name(d, table), d.quote(col.name)
    seq = f"pg_get_serial_sequence({d.literal(t)}, {d.literal(col.name)})"
    out = []
    if not old_low <= start <= old_high:
        out.append(f"ALTER TABLE {t} ALTER COLUMN {c} SET MINVALUE {min(low, old_low)} "
                   f"SET MAXVALUE {max(high, old_high)}")
    # (pg_sequence_last_value is NULL for a sequence never used: it starts anew too)
    out.append(f"SELECT setval({seq}, {start}, false) WHERE (pg_sequence_last_value("
               f"{seq}::regclass) BETWEEN {low} AND {high}) IS NOT TRUE")
    return out


def _aside(name: str) -> str:
    """The name a sequence has while its twin still holds ``name`` (within 63 bytes)."""
    return name.encode()[:48].decode(errors="ignore") + "_lockplane_tmp"


def serial_takeover_sql(d: Dialect, table: Table, col: Column, dropped: Sequence | None,
                        created: Sequence | None) -> tuple[list[str], list[str]]:
    """(before, after) the ALTER TABLE of a serial <-> identity change: the new sequence
    is made under a name aside, continues from the old one's value, and takes the old
    one's name once that is dropped. (Without this the identity was named ``..._seq1``
    and started at 1 again, under rows the serial had numbered.)"""
    t = table_name(d, table)
    identity = (f"pg_get_serial_sequence({d.literal(t)}, {d.literal(col.name)})"
                "::regclass")
    if dropped is not None:  # serial -> identity (the identity is created ``_aside``)
        old = d.qname(dropped.schema_, dropped.name)
        return [], [f"SELECT setval({identity}, last_value, is_called) FROM {old}",
                    f"DROP SEQUENCE {old}",
                    f"ALTER SEQUENCE {d.qname(dropped.schema_, _aside(dropped.name))} "
                    f"RENAME TO {d.quote(dropped.name)}"]
    assert created is not None  # identity -> serial: made aside, renamed once it is gone
    from .create_sequence import CreateSequence

    aside = created.model_copy(update={"name": _aside(created.name)})
    new = d.qname(aside.schema_, aside.name)
    before = [*CreateSequence(aside).sql_postgres(d),
              f"SELECT setval({d.literal(new)}, v) FROM (SELECT pg_sequence_last_value("
              f"{identity}) AS v) AS identity_value WHERE v IS NOT NULL"]
    return before, [f"ALTER SEQUENCE {new} RENAME TO {d.quote(created.name)}"]


def take_over_serials(changes: list[Change], before: Schema, after: Schema,
                      d: Dialect) -> None:
    """A column going from serial to identity (or back) takes its old sequence's place
    in the same step: the step that would drop (or create) that sequence on its own
    becomes part of it (see serial_takeover_sql). (Identity columns and sequences are
    PostgreSQL's: elsewhere no step matches.)"""
    from .create_sequence import CreateSequence
    from .drop_sequence import DropSequence
    from .pg_common import owned_by_parts

    def owner(seq: Sequence, schema: Schema) -> tuple[str, str, str] | None:
        # (as the schema has it: the step may carry it already released, OWNED BY NONE)
        held = next((s for s in schema.sequences
                     if (s.schema_, s.name) == (seq.schema_, seq.name)), None)
        if held is None or held.owned_by is None:
            return None
        return owned_by_parts(held.owned_by, held.schema_ or d.default_schema)

    for change in list(changes):
        if not isinstance(change, AlterColumn):
            continue
        b, a, tb = change.before, change.after, change.table
        key = (tb.schema_ or d.default_schema, tb.name, a.name)
        if b.identity is None and a.identity is not None and b.default is not None:
            found = next((c for c in changes if isinstance(c, DropSequence)
                          and owner(c.sequence, before) == key), None)
            if found is not None:
                changes.remove(found)
                change.serial_dropped = found.sequence
        elif b.identity is not None and a.identity is None and a.default is not None:
            made = next((c for c in changes if isinstance(c, CreateSequence)
                         and owner(c.sequence, after) == key), None)
            if made is not None:
                changes.remove(made)
                change.serial_created = made.sequence

@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class AlterColumn(Change):
    kind = "alter_column"
    order = Order.ALTER_COLUMN
    table: Table
    before: Column
    after: Column
    # Generated columns over this one (see Regeneration), as (before, after) pairs: the
    # step drops ``drops`` first and adds ``adds`` back last.
    drops: list[tuple[Column, Column]] = field(default_factory=list)
    adds: list[tuple[Column, Column]] = field(default_factory=list)
    # (before, after) comments of this column, set again when the step re-adds it
    comments: tuple[str | None, str | None] = (None, None)
    # SET NOT NULL after a validated CHECK (col IS NOT NULL) of this name: PostgreSQL
    # then skips the scan (the lock-safe form).
    not_null_check: str | None = None
    # serial <-> identity: the serial's sequence this step drops (the identity takes its
    # name and value) or creates (taking the identity's value); see take_over_serials.
    serial_dropped: Sequence | None = None
    serial_created: Sequence | None = None
    # CHECKs over this column (and over no other column the plan changes) dropped and
    # added in the ALTER TABLE that changes its type, the new ones as declared (the
    # server would rebuild them from their printed text, which can read back as another
    # expression): checked in the pass the type change makes anyway, never absent.
    # See keep_checks_with_retypes.
    checks_dropped: list[CheckConstraint] = field(default_factory=list)
    checks_added: list[CheckConstraint] = field(default_factory=list)
    # The partitions and INHERITS children the ALTER recurses to (schema, name), whose
    # column's readers are in the way too (table_hierarchy.note_inheritors fills it in).
    inheritors: tuple[tuple[str, str], ...] = field(default=(), kw_only=True, compare=False)
    # What the server drops with this column when the undo drops it to add it back
    # generated (a generated column made plain) and this plan keeps: its indexes,
    # constraints and extended statistics, made again by the undo after the column
    # (diff._undo_readds). The forward step keeps them and costs no rebuild.
    undo_readds: list[Change] = field(default_factory=list, kw_only=True)
    # The new generation expression is set in place (SET EXPRESSION; generation_in_place
    # decided it for the plan's server): the column is not dropped, nor is anything over
    # it, either way.
    in_place: bool = field(default=False, kw_only=True)
    # Indexes over this column dropped before the ALTER TABLE and built after it, as
    # declared, in the same step (one transaction: never absent, a UNIQUE one never
    # unenforced); see keep_indexes_with_retypes. DropIndex and CreateIndex changes.
    indexes_dropped: list[Change] = field(default_factory=list, kw_only=True)
    indexes_added: list[Change] = field(default_factory=list, kw_only=True)
    # (before, after) types as their casts are: a domain as its base type (set by
    # note_cast_types when either is a domain).
    cast_types: tuple[str, str] | None = field(default=None, kw_only=True)
    # (before, after) types: a domain with constraints (note_cast_types): see
    # retype_rewrites.
    domain_constrained: tuple[bool, bool] = field(default=(False, False), kw_only=True)

    def describe(self) -> str:
        what = ", ".join(self.aspects()) or "definition"
        regen = sorted({g.name for g, _ in self.drops} | {g.name for g, _ in self.adds})
        if regen:
            what += f"; generated {', '.join(regen)} dropped and added back"
        back, gone = self._folded_checks()
        if back:
            what += f"; CHECK {', '.join(back)} added as declared in the same statement"
        rebuilt = _index_names(self.indexes_added)
        if rebuilt:
            what += f"; index {', '.join(rebuilt)} built again as declared in the same step"
        if gone:
            what += f"; CHECK {', '.join(gone)} dropped in the same statement"
        return (f"Alter column {self.after.name} of "
                f"{qualified(self.table.schema_, self.table.name)} ({what})")

    def _folded_checks(self) -> tuple[list[str], list[str]]:
        """(CHECKs this step adds, as declared; CHECKs it only drops), by name."""
        back = sorted({c.name or "" for c in self.checks_added})
        return back, sorted({c.name or "" for c in self.checks_dropped} - set(back))

    def aspects(self) -> list[str]:
        b, a = self.before, self.after
        out = []
        if b.type != a.type or b.collation != a.collation:
            out.append(f"type {b.type} -> {a.type}" if b.type != a.type else "collation")
        if generation(b) != generation(a):
            out.append("generated expression")
        if b.identity != a.identity:
            out.append("identity")
        elif a.identity is not None and b.identity_options != a.identity_options:
            out.append("identity options")
        if b.default != a.default and a.generated is None:
            out.append("default")
        if b.nullable != a.nullable:
            out.append("drop not null" if a.nullable else "set not null")
        elif not a.nullable and b.not_null_name != a.not_null_name:
            out.append("not null constraint name")
        if b.on_update != a.on_update:
            out.append("on update")
        if b.auto_increment != a.auto_increment:
            out.append("auto_increment")
        return out

    def mysql_alter(self, d: Dialect) -> MySQLAlter:
        """MODIFY COLUMN restates the whole column: written from the wanted column, with
        the comment the column has now (a comment change is its own step, after this).
        Its ALGORITHM and LOCK: lockplane/dialects/mysql/alter_facts.py."""
        from ..dialects.mysql.alter_facts import AlterOp, MySQLAlter
        from .mysql_common import column_sql

        now = self.table.column(self.before.name)
        wanted = self.after.model_copy(update={"comment": now.comment if now else None})
        return MySQLAlter(self.table, [
            f"MODIFY COLUMN {column_sql(d, self.table, wanted, with_comment=True)}"],
            (AlterOp("modify_column", column=self.after, old=self.before),))

    def sql_mysql(self, d: Dialect) -> list[str]:
        from ..dialects.mysql.alter_facts import alter_sql

        return [alter_sql(d, self.mysql_alter(d))]

    def lock_mysql(self, d: Dialect) -> Lock:
        from ..dialects.mysql.alter_facts import alter_lock

        return alter_lock(d, self.mysql_alter(d))

    def sql_postgres(self, d: Dialect) -> list[str]:
        t = table_name(d, self.table)
        out = [s for c in self.indexes_dropped for s in c.sql(d)]
        out += [f"ALTER TABLE {t} DROP COLUMN {d.quote(g.name)}" for g, _ in self.drops]
        out += self._sql_postgres(d)
        for _, g in self.adds:
            out += readd_column_sql(d, self.table, g)
        out += [s for c in self.indexes_added for s in c.sql(d)]
        return out

    def _comment_sql(self, d: Dialect, column: str, comment: str | None) -> list[str]:
        from .set_comment import SetComment

        if comment is None:
            return []
        return SetComment.for_column(self.table, column, None, comment).sql_postgres(d)

    def _sql_postgres(self, d: Dialect) -> list[str]:
        b, a = self.before, self.after
        t = table_name(d, self.table)
        col = d.quote(a.name)
        out: list[str] = []
        if generation(b) != generation(a):
            # Before 17 PostgreSQL cannot change a generation expression: drop it and
            # re-add (its indexes and constraints come back through their own steps). 18
            # has no DROP EXPRESSION for a VIRTUAL column, nor a change of kind.
            if self.in_place:
                out.append(f"ALTER TABLE {t} ALTER COLUMN {col} SET EXPRESSION AS "
                           f"({d.stored_expression(a.generated or '')})")
            elif computed_on_write(b) and a.generated is None:
                out.append(f"ALTER TABLE {t} ALTER COLUMN {col} DROP EXPRESSION")
            elif virtual_to_plain(b, a):
                # Its values are kept: copied into a plain column that takes its place.
                from .pg_common import temp_name

                tmp = d.quote(temp_name(b.name))
                collate = f" COLLATE {b.collation}" if b.collation else ""
                from .pg_common import grants_sql

                out += [f"ALTER TABLE {t} ADD COLUMN {tmp} {b.type}{collate}",
                        f"UPDATE {t} SET {tmp} = {col}",
                        f"ALTER TABLE {t} DROP COLUMN {col}",
                        f"ALTER TABLE {t} RENAME COLUMN {tmp} TO {col}",
                        *self._comment_sql(d, a.name, self.comments[1]),
                        *grants_sql(d, "COLUMN", (self.table.schema_ or "", self.table.name,
                                                  a.name), a.grants)]
            else:
                return [f"ALTER TABLE {t} DROP COLUMN {col}",
                        *readd_column_sql(d, self.table, a.model_copy(
                            update={"comment": self.comments[1]}))]
        actions: list[str] = []
        if b.identity is not None and a.identity != b.identity:
            actions.append(f"ALTER COLUMN {col} DROP IDENTITY")
        # An identity column has no default: a default goes before ADD GENERATED.
        if b.default != a.default and b.default is not None and a.generated is None:
            actions.append(f"ALTER COLUMN {col} DROP DEFAULT")
        if b.type != a.type or b.collation != a.collation:
            collate = f" COLLATE {a.collation}" if a.collation else ""
            using = "" if not type_change_rewrites(b.type, a.type) or b.type == a.type \
                else f" USING {cast_sql(col, b.type, a.type, self.cast_types)}"
            actions.append(f"ALTER COLUMN {col} TYPE {a.type}{collate}{using}")
        if self.serial_created is not None and a.default is not None:
            # (nextval keeps the sequence's oid: the default reads right once renamed)
            s = self.serial_created
            out += serial_takeover_sql(d, self.table, a, None, s)[0]
            actions.append(f"ALTER COLUMN {col} SET DEFAULT nextval("
                           f"{d.literal(d.qname(s.schema_, _aside(s.name)))}::regclass)")
        elif b.default != a.default and a.default is not None and a.generated is None \
                and a.identity is None:
            actions.append(f"ALTER COLUMN {col} SET DEFAULT {default_expr(d, a.default)}")
        if a.identity is not None and a.identity != b.identity:
            if b.identity is None:
                kind = "ALWAYS" if a.identity == "always" else "BY DEFAULT"
                if b.default is not None and b.default == a.default:
                    actions.append(f"ALTER COLUMN {col} DROP DEFAULT")
                opts = identity_options_sql(a.identity_options)
                if self.serial_dropped is not None:
                    s = self.serial_dropped
                    opts.insert(0, f"SEQUENCE NAME {d.qname(s.schema_, _aside(s.name))}")
                actions.append(f"ALTER COLUMN {col} ADD GENERATED {kind} AS IDENTITY"
                               + (f" ({' '.join(opts)})" if opts else ""))
            else:
                actions = [x for x in actions if "DROP IDENTITY" not in x]
                kind = "ALWAYS" if a.identity == "always" else "BY DEFAULT"
                actions.append(f"ALTER COLUMN {col} SET GENERATED {kind}")
        if a.identity is not None and b.identity is not None \
                and a.identity_options != b.identity_options:
            opts = identity_options_sql(a.identity_options, alter=True,
                                        before=b.identity_options)
            if opts:
                out += identity_restart_sql(d, self.table, a, b.identity_options)
                actions.append(f"ALTER COLUMN {col} {' '.join(opts)}")
        if b.nullable != a.nullable:
            if not a.nullable and a.name in self.table.unvalidated_not_null:
                # (18) its NOT VALID NOT NULL goes first: validated, it would keep its
                # name, which a shadow copy (built without it) cannot know
                actions.append(f"ALTER COLUMN {col} DROP NOT NULL")
            actions.append(f"ALTER COLUMN {col} {'DROP' if a.nullable else 'SET'} NOT NULL")
        if self.checks_dropped or self.checks_added:
            from .render import check_def

            actions = [f"DROP CONSTRAINT {d.quote(c.name or '')}" for c in self.checks_dropped] \
                + actions + [f"ADD {check_def(d, c)}"
                             + (" NOT VALID" if c.enforced and not c.valid else "")
                             for c in self.checks_added]
        drop_identity = f"ALTER COLUMN {col} DROP IDENTITY"
        if drop_identity in actions and b.type != a.type:
            # (in one ALTER TABLE the server checks the new type against the identity
            # before dropping it: "identity column type must be smallint, integer, or
            # bigint")
            actions.remove(drop_identity)
            out.append(f"ALTER TABLE {t} {drop_identity}")
        if actions:
            out.append(f"ALTER TABLE {t} " + ", ".join(actions))
        if self.checks_added:
            from .add_constraint import AddConstraint

            for c in self.checks_added:  # (their comments)
                out += AddConstraint(self.table, c).sql_postgres(d)[1:]
        if not a.nullable and (b.nullable or b.not_null_name != a.not_null_name):
            # 18 names NOT NULL constraints: SET NOT NULL gives the derived name.
            derived = d.not_null_constraint_name(self.table.name, a.name)
            now = derived if b.nullable else b.not_null_name or derived
            want = a.not_null_name or derived
            if b.inherited and not b.nullable and not a.inherited:
                # A detached partition's: it had its parent's name (made PARTITION OF)
                # or its own (attached), which the schema does not hold for an inherited
                # column: the server's is read when the step runs.
                body = _rename_not_null_body(d, self.table, a.name, want)
                out.append(f"DO {dollar_quoted(body)}")
            elif now != want:
                out.append(f"ALTER TABLE {t} RENAME CONSTRAINT {d.quote(now)} TO "
                           f"{d.quote(want)}")
        if self.serial_dropped is not None or self.serial_created is not None:
            out += serial_takeover_sql(d, self.table, a, self.serial_dropped,
                                       self.serial_created)[1]
        return out

    def objects_created(self) -> tuple[ObjectKey, ...]:
        from .base import object_key, relation_keys

        s = self.serial_created or self.serial_dropped  # (the identity takes its name)
        dropped = self.objects_dropped()
        # (what reads the retyped table, new or recreated, comes after it)
        table = (object_key("relation", self.table.schema_, self.table.name),) \
            if dropped else ()
        return (relation_keys(s.schema_, s.name) if s is not None else ()) + dropped + table

    def objects_dropped(self) -> tuple[ObjectKey, ...]:
        # A new type (or collation) for a column that a view or a function's
        # SQL-standard body reads is refused while they stand ("cannot alter type of a
        # column used by a view or rule / by a function"): those, as the server's graph
        # records them per column, are dropped before and made again after
        # (plan.recreate_dependents, create_view.diff_views); nothing else of the table's.
        from .base import column_key

        b, a = self.before, self.after
        # ... and under a column this step or its undo drops and adds back (a new
        # generation expression, either way): "cannot drop column ... because other
        # objects depend on it"
        if (b.type, b.collation) == (a.type, a.collation) and (
                generation(b) == generation(a) or self.in_place):
            return ()  # (SET EXPRESSION keeps what reads the column standing)
        return tuple(column_key(s, t, b.name) for s, t in (
            (self.table.schema_ or "", self.table.name), *self.inheritors))

    def undo_drops_column(self) -> bool:
        """Whether the undo drops the column and adds it back: a generated column whose
        generation expression this step changes (the step drops it too when it stays
        generated)."""
        return self.before.generated is not None and not self.in_place \
            and generation(self.before) != generation(self.after)

    def sets_not_null(self) -> bool:
        return self.before.nullable and not self.after.nullable

    def lock_safe(self, ctx: RewriteContext) -> list[Change]:
        b, a = self.before, self.after
        if (not self.sets_not_null() or self.not_null_check or self.drops or self.adds
                or type_change_rewrites(b.type, a.type) or b.collation != a.collation
                or generation(b) != generation(a) or b.identity != a.identity
                or not ctx.plain_table(self.table.schema_, self.table.name)):
            return [self]
        if b.type != a.type:
            # ALTER COLUMN TYPE re-checks every CHECK on the column, the temporary one
            # too (a full scan under ACCESS EXCLUSIVE): change the type first, alone.
            typed = b.model_copy(update={"type": a.type})
            return [AlterColumn(self.table, b, typed, rank=self.rank,
                                checks_dropped=self.checks_dropped,
                                checks_added=self.checks_added,
                                indexes_dropped=self.indexes_dropped,
                                indexes_added=self.indexes_added,
                                cast_types=self.cast_types,
                                domain_constrained=self.domain_constrained),
                    *not_null_via_check(self.table, replace(
                        self, before=typed, checks_dropped=[], checks_added=[],
                        indexes_dropped=[], indexes_added=[]), ctx)]
        return not_null_via_check(self.table, self, ctx)

    def _rechecks(self) -> bool:
        """A type change re-checks the CHECK constraints on the column (a scan), and
        checks those it adds (in the same pass)."""
        if self.before.type == self.after.type:
            return False
        gone = {c.name for c in self.checks_dropped}
        return any(mentions_column(c.expression, self.after.name)
                   for c in self.table.check_constraints if c.name not in gone) \
            or any(c.valid and c.enforced for c in self.checks_added)

    def inverse(self) -> list[Change]:
        return [AlterColumn(self.table, self.after, self.before,
                            drops=[(g, p) for p, g in self.adds],
                            adds=[(g, p) for p, g in self.drops],
                            comments=(self.comments[1], self.comments[0]), rank=self.rank,
                            serial_dropped=self.serial_created,
                            serial_created=self.serial_dropped,
                            checks_dropped=self.checks_added,
                            checks_added=self.checks_dropped, in_place=self.in_place,
                            indexes_dropped=[i for c in reversed(self.indexes_added)
                                             for i in c.inverse()],
                            indexes_added=[i for c in reversed(self.indexes_dropped)
                                           for i in c.inverse()],
                            cast_types=self.cast_types and (self.cast_types[1],
                                                            self.cast_types[0]),
                            domain_constrained=self.domain_constrained[::-1]),
                *self.undo_readds]

    def rollback_note(self) -> str | None:
        if type_change_narrows(self.after.type, self.before.type):
            return (f"converting {self.after.name} back to {self.before.type} may fail or "
                    "lose precision for values written after the change")
        return None

    def rollback_stake(self) -> dict[str, str] | None:
        if self.before.type == self.after.type \
                or not type_change_narrows(self.after.type, self.before.type):
            return None
        return {"what": "narrowing", "schema": self.table.schema_ or "",
                "table": self.table.name, "column": self.after.name,
                "type_from": self.after.type, "type_to": self.before.type}

    def retype_rewrites(self) -> bool:
        """Whether PostgreSQL rewrites the table for the type change, as the server
        decides it (tablecmds.c, ATColumnChangeRequiresRewrite): to or from a domain, as
        its base types' conversion, plus a rewrite where the new domain has a CHECK or
        NOT NULL (every row is coerced to it, checked while the table is rewritten);
        an array of domains is converted element by element, a rewrite."""
        b, a = self.before.type, self.after.type
        if b == a:
            return False
        if self.cast_types is None or b.endswith("]") or a.endswith("]"):
            return type_change_rewrites(b, a)
        return type_change_rewrites(*self.cast_types) or self.domain_constrained[1]

    def lock_postgres(self, d: Dialect) -> Lock:
        b, a = self.before, self.after
        rewrite = (self.retype_rewrites() or b.collation != a.collation
                   or (generation(b) != generation(a) and computed_on_write(a))
                   or virtual_to_plain(b, a)
                   or (a.identity is not None and b.identity is None))
        # (a VIRTUAL column's new expression is checked against its NOT NULL: a scan)
        scan = rewrite or (b.nullable and not a.nullable and not self.not_null_check) \
            or self._rechecks() or (self.in_place and not a.nullable) \
            or bool(self.indexes_added)  # (an index built)
        return Lock(ACCESS_EXCLUSIVE.mode, True, True, rewrites_table=rewrite, scans_table=scan)

    def assess(self, d: Dialect) -> Assessment:
        b, a = self.before, self.after
        name = f"{qualified(self.table.schema_, self.table.name)}.{a.name}"
        found: list[Finding] = []
        notes: list[str] = []
        if b.type != a.type:
            narrows = d.type_change_narrows(b.type, a.type)
            if narrows is None:
                narrows = type_change_narrows(b.type, a.type)
            if narrows:
                found.append(Finding("type-change-narrowing", (
                    f"Changing {name} from {b.type} to {a.type} fails on values that do not "
                    "fit, or loses precision.")))
        own = self.for_dialect("findings", d)
        if own is not None:
            own(name, found, notes)
        if a.nullable and not b.nullable:
            found.append(Finding("drop-not-null", f"{name} may now be NULL; code reading it "
                                 "may not expect that."))
        if b.default is not None and a.default is None and b.identity is None \
                and a.identity is None and a.generated is None:
            found.append(Finding("drop-default", (
                f"Dropping the default of {name}: inserts that omit it now get NULL or "
                "fail.")))
        return Assessment.of(*found, notes=tuple(notes))

    def findings_postgres(self, name: str, found: list[Finding], notes: list[str]) -> None:
        """PostgreSQL's costs: rewrites, scans, re-checks, regenerated columns."""
        b, a = self.before, self.after
        if b.type != a.type:
            if self.retype_rewrites():
                found.append(Finding("type-change-rewrite", (
                    f"Changing {name} from {b.type} to {a.type} rewrites the table under an "
                    "ACCESS EXCLUSIVE lock, and code reading the old type may break.")))
            elif self._rechecks():
                notes.append(f"{b.type} -> {a.type} is binary-coercible (no rewrite), but "
                             "the column's CHECK constraints are re-checked: a scan under "
                             "ACCESS EXCLUSIVE.")
            else:
                notes.append(f"{b.type} -> {a.type} is binary-coercible: no rewrite, no scan.")
        elif b.collation != a.collation:
            # ALTER COLUMN TYPE ... COLLATE: the same statement and the same lock.
            found.append(Finding("type-change-rewrite", (
                f"Changing the collation of {name} rebuilds its indexes under ACCESS "
                "EXCLUSIVE, and changes how code sees it sort and compare.")))
        had = {(c.name, c.expression) for c in self.checks_dropped}
        for c in self.checks_added:
            if (c.name, c.expression) not in had and c.valid and c.enforced:
                found.append(Finding("add-check-constraint", (
                    f"CHECK {c.name} is new over {name}: the type change checks every row "
                    "against it under ACCESS EXCLUSIVE and fails if any row violates it.")))
        back, gone = self._folded_checks()
        if back:
            notes.append(
                f"CHECK {', '.join(back)} over {name}: dropped and added back as declared "
                "inside the same ALTER TABLE, checked in the pass the type change makes "
                "anyway (no separate scan, no moment without it).")
        if gone:
            notes.append(f"CHECK {', '.join(gone)} over {name}: dropped in the same ALTER "
                         "TABLE, before the type change (not re-checked).")
        rebuilt = _index_names(self.indexes_added)
        if rebuilt:
            notes.append(
                f"Index {', '.join(rebuilt)} over {name}: dropped before the type change and "
                "built again as declared after it, in the same transaction (never absent, "
                "a unique one never unenforced), under the ACCESS EXCLUSIVE lock the "
                "rewrite holds.")
        if self.in_place and computed_on_write(a):
            found.append(Finding("table-rewrite", (
                f"SET EXPRESSION on {name} computes it again for every row: the table is "
                "rewritten under ACCESS EXCLUSIVE and its indexes rebuilt (what uses the "
                "column is kept).")))
        elif self.in_place:
            notes.append(f"SET EXPRESSION on the virtual column {name}: no rewrite, a brief "
                         "ACCESS EXCLUSIVE lock" + ("" if a.nullable else
                                                    " and a scan for its NOT NULL") + ".")
        regenerated = sorted({g.name for _, g in self.adds if computed_on_write(g)} | (
            {a.name} if generation(b) != generation(a) and computed_on_write(a)
            and not self.in_place else set()))
        if regenerated:
            # PostgreSQL 15 cannot change a generation expression in place: the column is
            # dropped and added back, which computes it for every row.
            found.append(Finding("add-generated-column", (
                f"Generated column(s) {', '.join(regenerated)} of "
                f"{qualified(self.table.schema_, self.table.name)} are added back: the "
                "table is rewritten under ACCESS EXCLUSIVE.")))
        if self.sets_not_null():
            if self.not_null_check:
                notes.append(f"SET NOT NULL on {name} uses the validated check "
                             f"{self.not_null_check}: no scan, a brief lock.")
            elif not self.retype_rewrites():
                found.append(Finding("set-not-null", (
                    f"SET NOT NULL on {name} scans the table under ACCESS EXCLUSIVE and "
                    "fails if any row is NULL.")))

    def findings_mysql(self, name: str, found: list[Finding], notes: list[str]) -> None:
        """MODIFY COLUMN: a new type or collation copies the table; NOT NULL fails on a
        NULL (strict mode). How long it blocks writes is the step's lock facts."""
        b, a = self.before, self.after
        if b.type != a.type or b.collation != a.collation:
            what = f"from {b.type} to {a.type}" if b.type != a.type else "its collation"
            found.append(Finding("type-change-rewrite", (
                f"Changing {name} {what} rebuilds the table, and code reading the old "
                "type may break.")))
        if self.sets_not_null():
            found.append(Finding("set-not-null", (
                f"Making {name} NOT NULL reads every row and fails if any row is NULL.")))

    def table_key(self) -> tuple[str, str]:
        return (self.table.schema_ or "", self.table.name)


def _temporary_check_name(table: Table, column: str) -> str:
    """A name for the helper CHECK no constraint of the table uses (63 bytes at most)."""
    taken = {c.name for c in table.check_constraints} | {
        c.name for c in table.unique_constraints} | {f.name for f in table.foreign_keys}
    base = f"{column}_not_null_lp".encode()[:60].decode(errors="ignore")
    name, n = base, 1
    while name in taken:
        name, n = f"{base[:57]}_{n}", n + 1
    return name


def not_null_via_check(table: Table, step: AlterColumn, ctx: RewriteContext) -> list[Change]:
    """SET NOT NULL without a long lock: CHECK (col IS NOT NULL) NOT VALID (brief lock),
    VALIDATE it (scans, blocking no writes), SET NOT NULL (PostgreSQL 12+ trusts the
    validated check and skips its own scan), then drop the check."""
    from .add_constraint import AddConstraint
    from .drop_constraint import DropConstraint
    from .validate_constraint import ValidateConstraint

    name = _temporary_check_name(table, step.after.name)
    check = CheckConstraint(name=name,
                            expression=f"{ctx.dialect.quote(step.after.name)} IS NOT NULL")
    return [AddConstraint(table, check, not_valid=True, rank=step.rank),
            ValidateConstraint(table, name, temporary=True, rank=step.rank),
            replace(step, not_null_check=name),
            DropConstraint(table, check, temporary=True, rank=step.rank)]


def keep_checks_with_retypes(changes: list[Change], before: Schema, after: Schema,
                             d: Dialect) -> None:
    """A CHECK over a column whose type or collation changes is dropped and added back
    as declared (diff._diff_constraints: the server rebuilds it from its printed text,
    which may read back as another expression). Where the dialect does it in one ALTER
    TABLE (Dialect.retypes_with_checks), the CHECK's drop and add become clauses of the
    column's own step: checked in the rewrite (or re-check scan) the type change makes
    anyway, instead of a NOT VALID add and a VALIDATE that scans the table a second
    time. Only CHECKs over that one changed column: one over two retyped columns would
    be parsed against a half-changed table; one over a column dropped and added back is
    dropped with it.

    A CHECK added where none over the column goes is folded only when the type change
    rewrites the table: on a binary-coercible change it would make the step scan under
    ACCESS EXCLUSIVE, which its own NOT VALID add and VALIDATE avoid (where one goes,
    the server would have re-checked it in that step anyway)."""
    if not d.retypes_with_checks:
        return
    from .add_constraint import AddConstraint
    from .drop_constraint import DropConstraint
    from .pg_common import changed_columns

    steps: dict[tuple[str, str, str], AlterColumn] = {}
    changed: dict[tuple[str, str], set[str]] = {}
    for c in changes:
        if not isinstance(c, AlterColumn):
            continue
        b, a = c.before, c.after
        if (b.type, b.collation) == (a.type, a.collation) or generation(b) != generation(a) \
                or c.drops or c.adds or b.name != a.name:
            continue
        key = (c.table.schema_ or "", c.table.name)
        if key not in changed:
            ta = after.table(*key)
            changed[key] = changed_columns(c.table, ta, d) if ta is not None else set()
        steps[(*key, a.name)] = c

    def owner(table: Table, check: CheckConstraint) -> AlterColumn | None:
        key = (table.schema_ or "", table.name)
        over = {n for n in changed.get(key, ()) if mentions_column(check.expression, n)}
        if len(over) != 1 or not check.name:
            return None
        return steps.get((*key, over.pop()))

    for c in list(changes):
        if isinstance(c, DropConstraint) and isinstance(c.constraint, CheckConstraint):
            step = owner(c.table, c.constraint)
            if step is not None:
                step.checks_dropped.append(c.constraint)
                changes.remove(c)
    for c in list(changes):
        if isinstance(c, AddConstraint) and isinstance(c.constraint, CheckConstraint) \
                and not c.not_valid:
            step = owner(c.table, c.constraint)
            if step is not None and (step.checks_dropped or type_change_rewrites(
                    step.before.type, step.after.type)):
                step.checks_added.append(c.constraint)
                changes.remove(c)


def _index_names(changes: list[Change]) -> list[str]:
    return sorted(ix.name or "" for c in changes
                  if (ix := getattr(c, "index", None)) is not None)


def keep_indexes_with_retypes(changes: list[Change], before: Schema, after: Schema,
                              d: Dialect) -> None:
    """An index over a column whose type or collation changes that the plan drops and
    builds again (diff.diff_table: one with an expression or a predicate, or a key with
    its own collation or operator class, which the server would rebuild from its
    printed text, reading back otherwise; or one whose definition changes) is dropped
    and built in the column's own step: one transaction, so the table is never without
    it (a UNIQUE one never without its uniqueness), where the lock-safe form dropped it
    CONCURRENTLY before the ALTER and built it CONCURRENTLY after (a window as long as
    the build). Only where the type change rewrites the table (or changes a collation):
    the index is then built under the ACCESS EXCLUSIVE lock the rewrite holds while it
    rebuilds the table's other indexes. A binary-coercible change is catalog-only once
    the index is gone: folded in, the build would hold that lock (PostgreSQL never
    reuses an index with an expression or a predicate across a type change, so keeping
    the old one costs the same), and it keeps its own steps. Only an index over that one
    changed column (one over two would be built against a half-changed table), on a
    table neither partitioned, a partition nor inherited (the ALTER recurses to those;
    their indexes have copies of their own)."""
    if not d.retypes_with_checks:
        return
    from .create_index import CreateIndex
    from .drop_index import DropIndex
    from .pg_common import changed_columns
    from .table_hierarchy import key_of, parent_keys

    inherited = {pk for t in before.tables for pk in parent_keys(t)}
    steps: dict[tuple[str, str, str], AlterColumn] = {}
    changed: dict[tuple[str, str], set[str]] = {}
    for c in changes:
        if not isinstance(c, AlterColumn):
            continue
        b, a, t = c.before, c.after, c.table
        if (b.type, b.collation) == (a.type, a.collation) or generation(b) != generation(a) \
                or c.drops or c.adds or b.name != a.name or t.partition_by is not None \
                or t.parents() or key_of(t) in inherited:
            continue
        key = (t.schema_ or "", t.name)
        if key not in changed:
            ta = after.table(*key)
            changed[key] = changed_columns(t, ta, d) if ta is not None else set()
        steps[(*key, a.name)] = c

    def owner(key: tuple[str, str], ix: Index) -> AlterColumn | None:
        over = {n for n in changed.get(key, ()) if mentions_any(ix, {n})}
        return steps.get((*key, over.pop())) if len(over) == 1 else None

    made = {(c.schema, c.relation, c.index.name): c for c in changes
            if isinstance(c, CreateIndex) and not c.new_relation and c.replaces is None
            and not c.clones}
    for c in list(changes):
        if not isinstance(c, DropIndex) or c.on_partitioned or c.after_creates \
                or not c.index.valid:
            continue
        key = (c.schema, c.relation)
        new = made.get((*key, c.index.name))
        step = owner(key, c.index)
        if new is None or step is None or owner(key, new.index) is not step:
            continue
        if not (type_change_rewrites(step.before.type, step.after.type)
                or step.before.collation != step.after.collation):
            continue
        step.indexes_dropped.append(c)
        step.indexes_added.append(new)
        changes.remove(c)
        changes.remove(new)


CHANGE_ANNOTATORS.append(take_over_serials)
CHANGE_ANNOTATORS.append(keep_checks_with_retypes)
CHANGE_ANNOTATORS.append(keep_indexes_with_retypes)
CHANGE_ANNOTATORS.append(note_cast_types)


def _rename_not_null_body(d: Dialect, table: Table, column: str, want: str) -> str:
    """A DO body giving ``table.column``'s NOT NULL constraint the name ``want``, whatever
    name it has now (PostgreSQL 18)."""
    rel = d.literal(d.qname(table.schema_, table.name))
    return ("DECLARE n name; BEGIN SELECT c.conname INTO n FROM pg_catalog.pg_constraint c "
            "JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid "
            f"AND a.attnum = c.conkey[1] WHERE c.conrelid = {rel}::pg_catalog.regclass "
            f"AND c.contype = 'n' AND a.attname = {d.literal(column)}; "
            f"IF n IS DISTINCT FROM {d.literal(want)} THEN EXECUTE "
            f"pg_catalog.format('ALTER TABLE %s RENAME CONSTRAINT %I TO %I', {rel}, n, "
            f"{d.literal(want)}); END IF; END")


def readd_column_sql(d: Dialect, table: Table, col: Column) -> list[str]:
    """ADD COLUMN for a column a step dropped, with what the drop took of its own: its
    comment, column privileges, statistics target and compression."""
    from .add_column import column_options_sql
    from .pg_common import comment_sql, grants_sql
    from .render import column_def

    key = (table.schema_ or "", table.name, col.name)
    return [f"ALTER TABLE {table_name(d, table)} ADD COLUMN {column_def(d, col)}",
            *comment_sql(d, "COLUMN", key, col.comment),
            *grants_sql(d, "COLUMN", key, col.grants),
            *column_options_sql(d, table, col)]
