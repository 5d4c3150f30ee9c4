"""Declared fills: ``-- lockplane:fill-with EXPR`` in SQL schema files (``fill_with`` in
JSON), and the plan steps they become.

Hand-written histories fill rows before they add a NOT NULL (or a CHECK, or a UNIQUE):
``ALTER TABLE t ADD COLUMN slug text; UPDATE t SET slug = ...; ALTER TABLE t ALTER
slug SET NOT NULL``. A desired schema says the same with an annotation on the column::

    CREATE TABLE users (
        id bigint PRIMARY KEY,
        name text NOT NULL,
        slug text NOT NULL  -- lockplane:fill-with lower(name) || '-' || id
    );

The comment belongs to the column definition it follows on the same line (in ``CREATE
TABLE`` or ``ALTER TABLE ... ADD COLUMN``), or to the one that starts on the next code
line when it stands on a line of its own. Which column that is comes from PostgreSQL's
lexer (``pglast.parser.scan``): token positions, never patterns over the statements.
``EXPR`` is checked as one value expression with PostgreSQL's parser
(:func:`lockplane.optsql.expression`: no statements, no data-modifying subquery, no
function with side effects, no column of another table outside a subquery); anything
else is bad input naming ``file:line``. The columns it names are checked when it acts,
against the table before and after the plan (it may read a column the plan drops).

The fill is intent, not state (like ``renamed_from``: not hashed). It acts only when a
plan adds the column, or makes an existing one NOT NULL:

- a new column is added nullable and without its default, gets its default (new rows),
  is filled in batches (``backfill_column``: rows still NULL get ``EXPR``), then gets its
  NOT NULL, the lock-safe way on PostgreSQL (CHECK NOT VALID, VALIDATE, SET NOT NULL,
  drop the check); its CHECK and UNIQUE constraints are added after the fill;
- an existing column becoming NOT NULL is filled where NULL first;
- on SQLite the table rebuild that would add (or tighten) the column is split: the
  column is added nullable (ADD COLUMN), filled, and the rebuild brings the rest.

An existing column is also filled where a new CHECK on it is false, or where its value
of a new UNIQUE key is another row's too. A column a plan does not add or constrain
ignores its fill (the annotation stays in the file after the apply).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pglast.parser import ParseError, scan

from .errors import BadInput
from .model import Column, Schema, Table, qualified

if TYPE_CHECKING:
    from .changes.base import Change
    from .dialects.base import Dialect

ANNOTATION = "lockplane:fill-with"

_COMMENTS = ("SQL_COMMENT", "C_COMMENT")
_OPEN, _CLOSE, _COMMA, _SEMI, _DOT = "ASCII_40", "ASCII_41", "ASCII_44", "ASCII_59", "ASCII_46"
# First words of a table element (or ADD action) that is not a column definition.
_NOT_COLUMN = frozenset({"CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN", "EXCLUDE",
                         "LIKE"})


# ----------------------------------------------------------------- reading the files
@dataclass(frozen=True)
class _Name:
    text: str
    quoted: bool


@dataclass
class _Element:
    """One element of a CREATE TABLE's list, or one ADD action of an ALTER TABLE."""

    table: list[_Name]
    column: _Name | None  # None: a constraint, LIKE ...
    anchors: tuple[int, ...]  # token indexes a comment on the line above may precede
    first: int  # index of its first token
    last: int  # index of the last token that still belongs to it (its ',' or ')' or ';')


def _word(text: str, tok: Any) -> str:
    return text[tok.start:tok.end + 1]


def _name(text: str, toks: list[Any], i: int) -> tuple[_Name, int]:
    """The name starting at token ``i`` and the index after it: ``"quoted"``, MySQL's
    `` `quoted` `` (PostgreSQL's lexer sees an operator, words, an operator) or plain."""
    raw = _word(text, toks[i])
    if raw.startswith('"') and raw.endswith('"') and len(raw) > 1:
        return _Name(raw[1:-1].replace('""', '"'), True), i + 1
    if raw == "`":
        close = next((j for j in range(i + 1, len(toks)) if _word(text, toks[j]) == "`"),
                     None)
        if close is not None:
            return _Name(text[toks[i].end + 1:toks[close].start], True), close + 1
    return _Name(raw, False), i + 1


def _qualified(text: str, toks: list[Any], i: int) -> tuple[list[_Name], int]:
    """The dotted name starting at token ``i``, and the index after it."""
    first, i = _name(text, toks, i)
    parts = [first]
    while i + 1 < len(toks) and toks[i].name == _DOT:
        part, i = _name(text, toks, i + 1)
        parts.append(part)
    return parts, i


def _upper(text: str, tok: Any) -> str:
    return _word(text, tok).upper()


def _skip(text: str, toks: list[Any], i: int, *words: str) -> int:
    """``i`` past the words ``words`` (each optional, in order)."""
    for w in words:
        if i < len(toks) and _upper(text, toks[i]) == w:
            i += 1
    return i


def _elements(text: str, toks: list[Any], lo: int, hi: int) -> Iterator[_Element]:
    """The column-bearing elements of the statement made of ``toks[lo:hi]`` (its ';'
    included when there is one)."""
    words = [_upper(text, t) for t in toks[lo:min(hi, lo + 8)]]
    if not words:
        return
    if words[0] == "CREATE":
        i = lo + 1
        while i < hi and _upper(text, toks[i]) in ("GLOBAL", "LOCAL", "TEMP", "TEMPORARY",
                                                   "UNLOGGED"):
            i += 1
        if i >= hi or _upper(text, toks[i]) != "TABLE":
            return
        i = _skip(text, toks, i + 1, "IF", "NOT", "EXISTS")
        if i >= hi:
            return
        table, i = _qualified(text, toks, i)
        # PARTITION OF parent / OF type come before the list
        while i < hi and toks[i].name != _OPEN:
            i += 1
        if i >= hi:
            return
        depth, start = 0, i + 1
        for j in range(i, hi):
            kind = toks[j].name
            if kind == _OPEN:
                depth += 1
            elif kind == _CLOSE:
                depth -= 1
            if depth == 1 and kind == _COMMA or depth == 0:
                if start < j:
                    last = j
                    if depth == 0 and j + 1 < hi and toks[j + 1].name == _SEMI:
                        last = j + 1  # "c int);  -- ..." belongs to c
                    yield _column_element(text, toks, table, start, last, ())
                start = j + 1
            if depth == 0:
                return
        return
    if words[0] == "ALTER" and len(words) > 1 and words[1] == "TABLE":
        i = _skip(text, toks, lo + 2, "IF", "EXISTS")
        i = _skip(text, toks, i, "ONLY")
        if i >= hi:
            return
        table, i = _qualified(text, toks, i)
        if i < hi and toks[i].name == "ASCII_42":  # ONLY's opposite, "*"
            i += 1
        depth, start = 0, i
        for j in range(i, hi):
            kind = toks[j].name
            depth += kind == _OPEN
            depth -= kind == _CLOSE
            end = j == hi - 1
            if (depth == 0 and kind == _COMMA) or end:
                if start <= j and _upper(text, toks[start]) == "ADD":
                    k = _skip(text, toks, start + 1, "COLUMN")
                    k = _skip(text, toks, k, "IF", "NOT", "EXISTS")
                    if k < hi:
                        anchors = (lo,) if start == i else ()
                        yield _column_element(text, toks, table, k, j, anchors, first=start)
                start = j + 1


def _column_element(text: str, toks: list[Any], table: list[_Name], i: int, last: int,
                    anchors: tuple[int, ...], first: int | None = None) -> _Element:
    word = _upper(text, toks[i])
    column = None if word in _NOT_COLUMN else _name(text, toks, i)[0]
    first = i if first is None else first
    return _Element(table, column, anchors + (first,), first, last)


@dataclass(frozen=True)
class Declared:
    """One annotation: where it is, the table and column it belongs to, its text."""

    where: str  # file:line
    table: list[_Name]
    column: _Name
    expression: str


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _body(comment: str) -> str | None:
    """The expression of a ``lockplane:fill-with`` comment, or None for another one."""
    if comment.startswith("--"):
        inner = comment[2:]
    else:
        inner = comment[2:-2] if comment.endswith("*/") else comment[2:]
    inner = inner.strip()
    if not inner.startswith(ANNOTATION):
        return None
    rest = inner[len(ANNOTATION):]
    if rest and not rest[0].isspace():
        return None  # lockplane:fill-without...: not ours
    return rest.strip()


def file_tokens(path: Path, text: str, annotation: str) -> list[Any]:
    """A schema file's tokens, read with PostgreSQL's lexer (comments included), to place
    its ``annotation`` comments; a file the lexer cannot read is bad input."""
    try:
        return list(scan(text))
    except ParseError as exc:
        raise BadInput(f"{path}: cannot read the file's tokens to place its {annotation} "
                       f"comments: {exc}") from None


def read_annotations(path: Path, text: str, dialect: str = "postgres") -> list[Declared]:
    """Every ``-- lockplane:fill-with`` comment of a schema file, with its column (its
    expression read with ``dialect``'s grammar: :func:`_checked`)."""
    if ANNOTATION not in text:
        return []
    tokens = file_tokens(path, text, "fill-with")
    found = [(t, body) for t in tokens if t.name in _COMMENTS
             and (body := _body(_word(text, t))) is not None]
    if not found:
        return []
    code = [t for t in tokens if t.name not in _COMMENTS]
    elements = _file_elements(text, code)
    starts = [t.start for t in code]
    out = []
    for tok, body in found:
        line = _line(text, tok.start)
        where = f"{path}:{line}"
        element = _owner(text, code, starts, elements, tok.start)
        if element is None or element.column is None:
            raise BadInput(f"{where}: {ANNOTATION} must be attached to a column definition "
                           "(at the end of its line, or on the line before it) in CREATE "
                           "TABLE or ALTER TABLE ... ADD COLUMN")
        if not body:
            raise BadInput(f"{where}: {ANNOTATION} names no expression")
        # What it is, before anything of the file runs anywhere (its columns are checked
        # once the schema is loaded).
        _checked(f"{where}: {ANNOTATION}", body, dialect)
        out.append(Declared(where, element.table, element.column, body))
    return out


def _file_elements(text: str, code: list[Any]) -> list[_Element]:
    """The column-bearing elements of every statement of a file's code tokens."""
    elements: list[_Element] = []
    lo = 0
    for j, tok in enumerate(code):
        if tok.name == _SEMI or j == len(code) - 1:
            elements += _elements(text, code, lo, j + 1)
            lo = j + 1
    return elements


def _owner(text: str, code: list[Any], starts: list[int], elements: list[_Element],
           pos: int) -> _Element | None:
    import bisect

    i = bisect.bisect_left(starts, pos)  # first code token after the comment
    line_start = text.rfind("\n", 0, pos) + 1
    if i > 0 and code[i - 1].start >= line_start:
        # Code before it on its line: the element that token belongs to.
        prev = i - 1
        return next((e for e in elements if e.first <= prev <= e.last), None)
    if i < len(code):
        # A line of its own: the element starting at the next code token.
        return next((e for e in elements if i in e.anchors), None)
    return None


def _find_table(schema: Schema, parts: list[_Name], default_schema: str) -> Table | None:
    """The loaded table a written name means: an unquoted name as the server folds it
    (lower case), then as written, then (servers whose names ignore case) ignoring case."""
    *qual, name = parts
    schemas = [_variants(qual[-1]) if qual else [default_schema]]
    for s in schemas[0]:
        for n in _variants(name):
            t = schema.table(s, n)
            if t is not None:
                return t
    want = (qual[-1].text.casefold() if qual else default_schema.casefold(),
            name.text.casefold())
    hits = [t for t in schema.tables
            if ((t.schema_ or "").casefold(), t.name.casefold()) == want]
    if not hits and not qual:
        # (the file may set its own search_path: the one table of that name anywhere)
        hits = [t for t in schema.tables if t.name in _variants(name)]
    return hits[0] if len(hits) == 1 else None


def _variants(n: _Name) -> list[str]:
    return [n.text] if n.quoted else list(dict.fromkeys([n.text.lower(), n.text]))


def _find_column(table: Table, n: _Name) -> Column | None:
    for v in _variants(n):
        c = table.column(v)
        if c is not None:
            return c
    hits = [c for c in table.columns if c.name.casefold() == n.text.casefold()]
    return hits[0] if len(hits) == 1 else None


def apply_fill_annotations(schema: Schema, declared: list[Declared],
                           default_schema: str) -> Schema:
    """Set ``fill_with`` on the columns the SQL files annotate (``declared``: what
    ``read_annotations`` found in them before they were loaded; checked against the
    loaded tables: bad input names the file and line)."""
    for dec in declared:
        table = _find_table(schema, dec.table, default_schema)
        shown = ".".join(p.text for p in dec.table)
        if table is None:
            raise BadInput(f"{dec.where}: {ANNOTATION}: table {shown} not found after "
                           "loading the schema")
        col = _find_column(table, dec.column)
        if col is None:
            raise BadInput(f"{dec.where}: {ANNOTATION}: column {dec.column.text} of "
                           f"{shown} not found after loading the schema")
        if col.fill_with is not None:
            raise BadInput(f"{dec.where}: {ANNOTATION}: {shown}.{col.name} already has "
                           "one")
        col.fill_with = check_fill(dec.expression, f"{dec.where}: {ANNOTATION}", table,
                                   col, schema.dialect)
    return schema


# ------------------------------------------------------------------------ checking
def check_fill(expression: str, what: str, table: Table, column: Column,
               dialect: str) -> str:
    """``expression`` checked as one value over the row of ``table``; the SQL to run.

    Which columns it may name is known only when it acts (a fill may read a column the
    same plan drops, as a history replacing a flag by a timestamp does): ``declared_fills``
    checks them against the table then. Here: names of this table only."""
    from . import optsql

    if column.generated is not None or column.identity is not None:
        kind = "generated" if column.generated is not None else "identity"
        raise BadInput(f"{what}: {column.name} is an {kind} column: the server fills it")
    _names(what, expression, table.name, dialect)
    return optsql.expression(expression, what, dialect)


def _checked(what: str, expression: str, dialect: str) -> None:
    """``expression`` read as one value expression of the dialect's SQL: with
    PostgreSQL's parser (tokens, shape, content: lockplane.optsql), or with the dialect's
    own grammar where it has one (MySQL: sqlglot's, which reads its backquotes and
    backslash escapes as the server does; Dialect.own_options)."""
    from . import optsql
    from .dialects import get_dialect

    own = get_dialect(dialect).own_options()
    if own is not None:
        own.expression(expression, what)
    else:
        optsql._value_node(what, expression)


def _names(what: str, expression: str, table: str, dialect: str) -> set[str]:
    """The (case-folded) columns of the row ``expression`` names outside its subqueries,
    read as :func:`_checked` reads it; bad input for a name of another table."""
    from . import optsql
    from .dialects import get_dialect

    own = get_dialect(dialect).own_options()
    if own is not None:
        return set(own.row_columns(expression, what, table))
    return _row_columns(optsql._value_node(what, expression), what, table)


def _row_columns(node: Any, what: str, table: str) -> set[str]:
    """The (case-folded) columns of the row an expression names outside its subqueries;
    bad input for a name of another table."""
    out: set[str] = set()
    for ref in _column_refs(node):
        fields = [getattr(f, "sval", None) for f in ref.fields or ()]
        if any(f is None for f in fields):
            raise BadInput(f"{what}: {_shown(fields)} is not a column of {table}")
        if len(fields) > 2 or (len(fields) == 2 and (fields[0] or "").casefold()
                               != table.casefold()):
            raise BadInput(f"{what}: {_shown(fields)}: only the row's own columns (of "
                           f"{table}) may be named outside a subquery")
        out.add((fields[-1] or "").casefold())
    return out


def _check_acting(b: Table, a: Table | None, column: Column, d: Dialect) -> None:
    """A fill about to act names only columns its row has then (the table's, before or
    after the plan: the fill runs while both are there)."""
    assert column.fill_with is not None
    what = f"{qualified(b.schema_, b.name)}.{column.name}: {ANNOTATION} {column.fill_with}"
    names = _names(what, column.fill_with, b.name, d.name)
    have = {c.name.casefold() for t in (b, a) if t is not None for c in t.columns}
    missing = sorted(names - have)
    if missing:
        raise BadInput(f"{what}: names {', '.join(missing)}, which {b.name} has neither "
                       "before nor after this plan")


def _shown(fields: list[str | None]) -> str:
    return ".".join(f if f is not None else "*" for f in fields)


def _column_refs(node: Any) -> Iterator[Any]:
    """Column references of an expression, outside its subqueries (whose names are
    their own tables')."""
    from pglast import ast

    if isinstance(node, ast.SubLink):
        yield from _column_refs(node.testexpr)  # (x IN (SELECT ...): x is the row's)
        return
    if isinstance(node, ast.ColumnRef):
        yield node
        return
    if isinstance(node, ast.Node):
        for attr in type(node).__slots__:
            yield from _column_refs(getattr(node, attr, None))
    elif isinstance(node, tuple | list):
        for item in node:
            yield from _column_refs(item)


def check_schema_fills(schema: Schema, where: str) -> Schema:
    """Check every ``fill_with`` of a schema read from JSON (``where``: the file)."""
    for i, t in enumerate(schema.tables):
        for j, c in enumerate(t.columns):
            if c.fill_with is not None:
                what = (f"{where}: tables[{i}] ({t.name}).columns[{j}] ({c.name})"
                        ".fill_with")
                c.fill_with = check_fill(c.fill_with, what, t, c, schema.dialect)
    return schema


def carry_fills(declared: Schema, loaded: Schema) -> None:
    """Fills are intent, not state: the server cannot give them back."""
    for t in declared.tables:
        live = loaded.table(t.schema_ or "", t.name)
        if live is None:
            continue
        for c in t.columns:
            lc = live.column(c.name)
            if lc is not None and c.fill_with is not None:
                lc.fill_with = c.fill_with


# ------------------------------------------------------------------- plan steps
def declared_fills(changes: list[Change], before: Schema, after: Schema,
                   d: Dialect) -> list[Change]:
    """``changes`` with each change that adds or tightens a column declaring a fill
    replaced, in place, by the steps that fill it first (see the module's docstring).
    Steps made here keep the slot of the change they replace; the fill of an existing
    column that only gains a CHECK or UNIQUE goes just before the constraints."""
    from .changes.add_column import AddColumn
    from .changes.alter_column import AlterColumn
    from .changes.base import Order
    from .changes.rebuild_table import RebuildTable

    out: list[Change] = []
    done: set[tuple[str, str, str]] = set()  # (schema, table, column) filled already
    for c in changes:
        key = c.table_key()
        if isinstance(c, AddColumn) and c.column.fill_with is not None:
            _check_acting(c.table, _wanted(after, c.table), c.column, d)
            out += _slot(c, _add_filled(c))
        elif isinstance(c, AlterColumn) and c.after.fill_with is not None \
                and c.before.nullable and not c.after.nullable and key is not None:
            _check_acting(c.table, _wanted(after, c.table), c.after, d)
            out += _slot(c, _tighten_filled(c, _wanted(after, c.table), d))
            done.add((*key, c.after.name))
        elif isinstance(c, RebuildTable) and _rebuild_fills(c, d):
            for col, _ in _rebuild_fills(c, d):
                _check_acting(c.before, c.after, col, d)
            out += _slot(c, _rebuild_filled(c, d))
            done |= {(*key, col.name) for col in c.after.columns} if key else set()
        else:
            out.append(c)
    # Existing columns that are not tightened but gain a CHECK or UNIQUE: their rows
    # that would break it are filled before the constraints are added.
    for c in [c for c in changes if c.kind in ("add_constraint", "create_index")]:
        key = c.table_key()
        b = before.table(*key) if key else None
        a = after.table(*key) if key else None
        if b is None or a is None:
            continue
        for col in a.columns:
            if col.fill_with is None or b.column(col.name) is None \
                    or (*key, col.name) in done:  # type: ignore[misc]
                continue
            conds = _violations(b, a, col.name, d)
            if conds:
                _check_acting(b, a, col, d)
                fill = declared_fill(b, col, False, where=_any(conds),
                                     keep_by=recorded_key(b, a, col.name, d))
                fill.order, fill.rank = Order.ADD_CONSTRAINT, -1  # type: ignore[misc]
                out.append(fill)
            done.add((*key, col.name))  # type: ignore[arg-type]
    return out


def _wanted(after: Schema, table: Table) -> Table | None:
    return after.table(table.schema_ or "", table.name)


def _any(conds: list[str]) -> str:
    return conds[0] if len(conds) == 1 else " OR ".join(f"({c})" for c in conds)


def _violations(b: Table, a: Table, column: str, d: Dialect) -> list[str]:
    """SQL conditions true on the rows of ``b`` that would break a CHECK or UNIQUE
    which ``a`` adds on ``column``: the check is false; the key's value is another row's
    too (each row of such a group, until the fill makes it unique)."""
    from .changes.alter_column import mentions_column

    out: list[str] = []
    had = {ck.name for ck in b.check_constraints}
    for ck in a.check_constraints:
        if ck.name not in had and ck.valid and mentions_column(ck.expression, column):
            out.append(f"NOT ({ck.expression})")
    had = {u.name for u in b.unique_constraints} | {ix.name for ix in b.indexes}
    keys = [u.columns for u in a.unique_constraints
            if u.name not in had and column in u.columns]
    keys += [[k.column or "" for k in ix.keys] for ix in a.indexes
             if ix.unique and ix.name not in had and ix.where is None
             and all(k.column for k in ix.keys) and column in [k.column for k in ix.keys]]
    t = d.qname(a.schema_, a.name)
    for cols in keys:
        q = ", ".join(d.quote(c) for c in cols)
        # (through a derived table: MySQL refuses a subquery on the table it updates)
        out.append(f"({q}) IN (SELECT {q} FROM (SELECT {q} FROM {t} GROUP BY {q} "
                   "HAVING count(*) > 1) AS lockplane_shared)")
    return out


def _slot(original: Change, made: list[Change]) -> list[Change]:
    for m in made:
        if m is not original:
            m.order = original.order  # type: ignore[misc]  # per instance: this plan's fill
            m.rank = original.rank
    return made


def _plain(c: Column) -> Column:
    return c.model_copy(update={"fill_with": None})


def declared_fill(table: Table, column: Column, new: bool,
                  where: str | None = None, keep_by: list[str] | None = None) -> Change:
    """The fill of ``column``: rows where it is NULL, or where ``where`` holds (``new``:
    added by this plan, whose undo drops it with what the fill wrote). ``keep_by``: an
    existing column's fill records the rows it changes by this key, and its undo puts
    their old values back (changes/unfill_column.py); empty or None, they keep the fill's."""
    from .changes.backfill_column import BackfillColumn

    assert column.fill_with is not None
    if keep_by and not new:
        from .changes.unfill_column import FillKeepingRows

        return FillKeepingRows(table, column.name, column.fill_with,
                               only_null=where is None, declared=True, where=where,
                               fills_not_null=not column.nullable, archive_key=keep_by)
    note = None if new else (
        "rows the fill gave a value keep it" if keep_by is None else
        "rows the fill gave a value keep it: the table has no primary key that stays, so "
        "which rows it changed is not recorded (a row's position, ctid, is no key: VACUUM "
        "FULL or a rewrite moves it)")
    return BackfillColumn(table, column.name, column.fill_with, only_null=where is None,
                          declared=True, undo_note=note, where=where,
                          fills_not_null=not column.nullable)


def recorded_key(b: Table, a: Table | None, column: str, d: Dialect) -> list[str] | None:
    """The key a plan's fill of the existing ``column`` records its rows by ([]: none
    the plan keeps; None: the dialect keeps no archives)."""
    if not d.records_filled_rows:
        return None
    from .changes.drop_column import kept_key

    return kept_key(b, a, {column})


def _add_filled(c: Any) -> list[Change]:
    """Add bare, default for new rows, fill the rest, then NOT NULL."""
    from .changes.add_column import AddColumn
    from .changes.alter_column import AlterColumn

    col = c.column
    bare = col.model_copy(update={"nullable": True, "default": None, "fill_with": None})
    with_default = bare.model_copy(update={"default": col.default})
    out: list[Change] = [AddColumn(c.table, bare)]
    if col.default is not None:
        out.append(AlterColumn(c.table, bare, with_default))
    out.append(declared_fill(c.table, col, True))
    if not col.nullable:
        out.append(AlterColumn(c.table, with_default, _plain(col)))
    return out


def _tighten_filled(c: Any, a: Table | None, d: Dialect) -> list[Change]:
    """Everything but the NOT NULL first (a type change, say: the fill then writes the
    new type), then the fill (of the NULLs, and of rows a new CHECK or UNIQUE on the
    column would refuse), then the NOT NULL."""
    from dataclasses import replace

    conds = _violations(c.table, a, c.after.name, d) if a is not None else []
    where = _any([f"{d.quote(c.after.name)} IS NULL", *conds]) if conds else None
    wanted = _plain(c.after)
    loose = wanted.model_copy(update={"nullable": True})
    # (the table as the fill finds it: its column already of the new type, if any)
    now = c.table.model_copy(deep=True)
    now.columns = [loose if x.name == loose.name else x for x in now.columns]
    fill = declared_fill(now, c.after, False, where=where,
                         keep_by=recorded_key(c.table, a, c.after.name, d))
    if loose == _plain(c.before):
        return [fill, replace(c, after=wanted)]
    return [replace(c, after=loose), fill,
            replace(c, before=loose, after=wanted, drops=[], adds=[], comments=(None, None),
                    serial_dropped=None, serial_created=None)]


def _rebuild_fills(c: Any, d: Dialect) -> list[tuple[Column, str | None]]:
    """The filled columns of a table rebuild: (column, None: its NULLs | the condition
    of the rows to fill)."""
    b, a = c.before, c.after
    out = []
    for col in a.columns:
        if col.fill_with is None or col.generated is not None:
            continue
        prev = b.column(col.name)
        if prev is None:
            out.append((col, None))
            continue
        conds = _violations(b, a, col.name, d)
        if prev.nullable and not col.nullable:
            out.append((col, _any([f"{d.quote(col.name)} IS NULL", *conds]) if conds
                        else None))
        elif conds:
            out.append((col, _any(conds)))
    return out


def _rebuild_filled(c: Any, d: Dialect) -> list[Change]:
    """A table rebuild that adds (or constrains) filled columns: the new ones added
    nullable first, every one filled, then the rebuild from there."""
    from .changes.rebuild_table import RebuildTable
    from .diff import diff_table

    b, a = c.before, c.after
    fills = _rebuild_fills(c, d)
    mid = b.model_copy(deep=True)
    for col, _ in fills:
        if b.column(col.name) is None:
            mid.columns.append(col.model_copy(update={
                "nullable": True, "default": None, "fill_with": None}))
    first = diff_table(b, mid, d) if mid != b else []
    rest = RebuildTable(mid, a)
    rest.referencing_tables = list(c.referencing_tables)
    return [*first, *(declared_fill(mid, col, b.column(col.name) is None, where,
                                    keep_by=recorded_key(b, a, col.name, d))
                      for col, where in fills), rest]
