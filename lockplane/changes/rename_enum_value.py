"""ALTER TYPE ... RENAME VALUE: a declared enum-value rename, in place.

The differ never guesses it: a value gone and another one new reads as a removal and an
addition (the type recreated, which rows holding the old value refuse). The desired
schema declares it (``'succeeded',  -- lockplane:renamed-from done`` on the value's line
in ``CREATE TYPE ... AS ENUM (...)``, ``values_renamed_from`` in JSON; see
lockplane/renames.py), and then the plan renames the label in place.

What PostgreSQL does (src/backend/catalog/pg_enum.c, RenameEnumLabel): it updates the one
``pg_enum`` row of the label, under an ExclusiveLock on the type object itself (two
ALTER TYPEs of the same type wait for each other). No table is locked, read or
rewritten: rows store the value's OID, not its label, and so do the stored expressions of
column defaults, CHECKs, index expressions and predicates, views, triggers' WHEN,
policies and SQL-standard function bodies (``'done'::job_state`` is a constant holding
the OID): they all print the new label right after the rename. Text the server keeps as
text does not follow: a PL/pgSQL (or string-bodied SQL) function body, a value compared
as text (``state::text = 'done'``). ``relabel_schema`` is the schema as the server has it
after the rename (what the differ compares against the desired schema).

The rename is transactional and the new label is usable in the same transaction (unlike
a value added by ADD VALUE). Its rollback renames the label back: exact, instant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..model import EnumType, Schema, qualified
from .base import Assessment, Change, Finding, Lock, Order, register

if TYPE_CHECKING:
    from ..dialects.base import Dialect

# Not a table lock: the type object's own ExclusiveLock (see the module's docstring).
TYPE_LOCK = Lock("NONE", False, False, reasons=(
    "ExclusiveLock on the type object only (one pg_enum row updated): no table is locked, "
    "scanned or rewritten; another ALTER TYPE of the same type waits for it",))


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class RenameEnumValue(Change):
    kind = "rename_enum_value"
    risk_rule = "enum-value-renamed"  # the lockplane.rules id of what assess() reports
    order = Order.ALTER_TYPE
    enum: EnumType  # the type before the rename
    old: str
    new: str

    def enum_after(self) -> EnumType:
        return self.enum.model_copy(update={
            "values": [self.new if v == self.old else v for v in self.enum.values]})

    def describe(self) -> str:
        return (f"Rename value {self.old!r} of enum "
                f"{qualified(self.enum.schema_, self.enum.name)} to {self.new!r}")

    def sql_postgres(self, d: Dialect) -> list[str]:
        return [f"ALTER TYPE {d.qname(self.enum.schema_, self.enum.name)} RENAME VALUE "
                f"{d.literal(self.old)} TO {d.literal(self.new)}"]

    def inverse(self) -> list[Change]:
        return [RenameEnumValue(self.enum_after(), self.new, self.old, rank=self.rank)]

    def rollback_note(self) -> str:
        return (f"renames {self.new!r} back to {self.old!r}: rows, defaults, CHECKs, "
                "indexes and views follow, as they did forward")

    def lock(self, d: Dialect) -> Lock:
        return TYPE_LOCK

    def assess(self, d: Dialect) -> Assessment:
        name = qualified(self.enum.schema_, self.enum.name)
        return Assessment.of(Finding("enum-value-renamed", (
            f"Code that writes or compares {self.old!r} as a {name} value fails "
            "('invalid input value for enum') the moment this commits; rows, defaults, "
            "CHECKs, indexes and views follow the rename (the server stores the value, "
            "not its label). Function bodies kept as text (PL/pgSQL) and comparisons as "
            "text do not.")), notes=(
            "No table lock, no scan, no rewrite: one catalog row changes.",))


# ------------------------------------------------------ what the server prints after it
def relabel_schema(schema: Schema, enum: EnumType, old: str, new: str) -> None:
    """``schema`` (in place) as the server prints it once ``enum``'s label ``old`` is
    ``new``: every constant of the type (``'old'::type``, ``'{old,x}'::type[]``) in the
    expressions the server stores as trees. Function bodies are left alone but for
    SQL-standard ones (their tokens are outside any string; a string body is one
    string token, which no cast follows)."""
    from ..dialects import get_dialect

    default = get_dialect(schema.dialect).default_schema
    key = (enum.schema_ or "", enum.name)
    alone = sum(e.name == enum.name for e in schema.enums) == 1

    def means(names: list[str]) -> bool:
        if len(names) == 2:
            return (names[0], names[1]) == key
        return len(names) == 1 and names[0] == enum.name and (alone or key[0] == default)

    def fix(sql: str | None) -> str | None:
        return relabel_sql(sql, means, old, new)

    for t in schema.tables:
        for c in t.columns:
            c.default, c.generated = fix(c.default), fix(c.generated)
        _relabel_indexes(t.indexes, fix)
        for ck in t.check_constraints:
            ck.expression = fix(ck.expression) or ck.expression
        for ex in t.exclusion_constraints:
            ex.definition = fix(ex.definition) or ex.definition
        for tr in t.triggers:
            tr.definition = fix(tr.definition) or tr.definition
        for po in t.policies:
            po.using, po.with_check = fix(po.using), fix(po.with_check)
        for obj in (*t.rules, *t.statistics):
            obj.definition = fix(obj.definition) or obj.definition
    for t in schema.tables:
        if t.partition_of and t.partition_bound:
            t.partition_bound = _relabel_bound(schema, t, means, old, new)
    for v in schema.views:
        v.definition = fix(v.definition) or v.definition
        _relabel_indexes(v.indexes, fix)
        for obj in (*v.rules, *v.triggers):
            obj.definition = fix(obj.definition) or obj.definition
    for dom in schema.domains:
        dom.default = fix(dom.default)
        for ck in dom.checks:
            ck.expression = fix(ck.expression) or ck.expression
    for f in schema.functions:
        f.definition = fix(f.definition) or f.definition


def _relabel_bound(schema: Schema, t: Any, means: Any, old: str, new: str) -> str:
    """A partition's bound with the label renamed where its parent's key column has the
    type: the server prints those constants without their cast (``FOR VALUES IN
    ('done')``, ``FROM (1, 'done') TO (...)``), so which ones are the type's comes from
    the key's position."""
    from pglast.parser import ParseError, scan

    from ..model import split_name

    bound = t.partition_bound
    try:
        parent = schema.table(*split_name(t.partition_of, t.schema_ or ""))
    except ValueError:
        return bound
    if parent is None or not parent.partition_by or old not in bound.replace("''", "'"):
        return bound
    try:
        key_toks, toks = scan(parent.partition_by), scan(bound)
    except ParseError:
        return bound
    # The key's columns by position (None: an expression), then which are of the type.
    keys: list[str | None] = []
    depth, item = 0, []
    for tok in key_toks:
        text = parent.partition_by[tok.start:tok.end + 1]
        if tok.name == "ASCII_40":
            depth += 1
            if depth == 1:
                continue
        elif tok.name == "ASCII_41":
            depth -= 1
        if depth >= 1 and not (depth == 1 and tok.name in ("ASCII_44", "ASCII_41")):
            item.append(text)
        elif depth <= 1 and tok.name in ("ASCII_44", "ASCII_41") and item:
            one = item[0] if len(item) == 1 else None
            keys.append(one[1:-1].replace('""', '"') if one and one.startswith('"')
                        else one.lower() if one else None)
            item = []
    typed = set()
    for i, name in enumerate(keys):
        col = parent.column(name) if name else None
        if col is None:
            continue
        try:
            parts = split_name(col.type, "")
        except ValueError:
            continue
        if means([p for p in parts if p]):
            typed.add(i)
    if not typed:
        return bound
    edits: list[tuple[int, int, str]] = []
    depth, position, listing = 0, 0, False
    for tok in toks:
        word = bound[tok.start:tok.end + 1]
        if depth == 0 and tok.name in ("IN_P", "FROM", "TO"):
            listing = tok.name == "IN_P"
        elif tok.name == "ASCII_40":
            depth += 1
            position = 0
        elif tok.name == "ASCII_41":
            depth -= 1
        elif tok.name == "ASCII_44" and depth == 1:
            position += 1
        elif tok.name == "SCONST" and depth == 1 and word.startswith("'") \
                and (0 if listing else position) in typed \
                and word[1:-1].replace("''", "'") == old:
            edits.append((tok.start, tok.end + 1, "'" + new.replace("'", "''") + "'"))
    for start, end, text in reversed(edits):
        bound = bound[:start] + text + bound[end:]
    return bound


def _relabel_indexes(indexes: list[Any], fix: Any) -> None:
    for ix in indexes:
        ix.where = fix(ix.where)
        for k in ix.keys:
            k.expression = fix(k.expression)


def relabel_sql(sql: str | None, means: Any, old: str, new: str) -> str | None:
    """``sql`` with every constant ``'old'::T`` (or an array constant of T holding
    ``old``) written with ``new``, where ``means(names)`` says the type name ``T`` is the
    enum's. Token positions from PostgreSQL's lexer, never patterns."""
    if not sql or old not in sql.replace("''", "'"):
        return sql
    from pglast.parser import ParseError, scan

    try:
        toks = scan(sql)
    except ParseError:
        return sql
    toks = [t for t in toks if t.name not in ("SQL_COMMENT", "C_COMMENT")]
    edits: list[tuple[int, int, str]] = []
    for i, tok in enumerate(toks):
        text = sql[tok.start:tok.end + 1]
        if tok.name != "SCONST" or not text.startswith("'") or i + 2 >= len(toks) \
                or toks[i + 1].name != "TYPECAST":
            continue
        names, j = _type_name(sql, toks, i + 2)
        if not names or not means(names):
            continue
        dims = 0
        while j + 1 < len(toks) and toks[j].name == "ASCII_91" \
                and toks[j + 1].name == "ASCII_93":
            dims, j = dims + 1, j + 2
        value = text[1:-1].replace("''", "'")
        if dims:
            relabeled = _relabel_array(value, old, new)
            if relabeled is None or relabeled == value:
                continue
        elif value != old:
            continue
        else:
            relabeled = new
        edits.append((tok.start, tok.end + 1, "'" + relabeled.replace("'", "''") + "'"))
    for start, end, text in reversed(edits):
        sql = sql[:start] + text + sql[end:]
    return sql


def _type_name(sql: str, toks: list[Any], i: int) -> tuple[list[str], int]:
    """The (possibly schema-qualified) type name from token ``i``: its parts as the server
    means them (quoted as written, unquoted folded), and the index after it."""
    names: list[str] = []
    while i < len(toks):
        tok = toks[i]
        if tok.name.startswith("ASCII_") or tok.name in ("SCONST", "TYPECAST", "ICONST",
                                                         "FCONST", "Op", "PARAM"):
            break
        raw = sql[tok.start:tok.end + 1]
        names.append(raw[1:-1].replace('""', '"') if raw.startswith('"') else raw.lower())
        i += 1
        if i < len(toks) and toks[i].name == "ASCII_46":  # "."
            i += 1
            continue
        break
    return names, i


# An array literal as array_out prints it: elements quoted when empty, NULL, or holding
# a brace, comma, quote, backslash or white space.
_SPECIAL = set('{},"\\ \t\n\r\v\f')


def _relabel_array(text: str, old: str, new: str) -> str | None:
    """The array literal ``text`` with elements ``old`` written ``new`` (None: not one
    array_out prints, left alone)."""
    if not text.startswith("{"):
        return None  # ([1:2]={...}: explicit bounds)
    out: list[str] = []
    i, depth, n = 0, 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "{}," or ch.isspace():
            depth += (ch == "{") - (ch == "}")
            if not ch.isspace():
                out.append(ch)
            i += 1
            continue
        if ch == '"':
            j, chars = i + 1, []
            while j < n and text[j] != '"':
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                chars.append(text[j])
                j += 1
            if j >= n:
                return None
            value, quoted, i = "".join(chars), True, j + 1
        else:
            j = i
            while j < n and text[j] not in '{},"' and not text[j].isspace():
                j += 1
            value, quoted, i = text[i:j], False, j
            if "\\" in value:
                return None
        if not quoted and value.upper() == "NULL":
            out.append(value)
            continue
        out.append(_element(new if value == old else value))
    return "".join(out) if depth == 0 else None


def _element(value: str) -> str:
    if value == "" or value.upper() == "NULL" or any(ch in _SPECIAL for ch in value):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value
