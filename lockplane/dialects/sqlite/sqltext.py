"""Reading the SQL text SQLite stores in sqlite_schema.

SQLite's pragmas omit constraint names, CHECK expressions, generated expressions,
DEFERRABLE and index expressions; the only place they survive is the original CREATE
statement. This module reads just enough of SQLite's grammar to recover them: a tokenizer
that respects quotes, comments and nesting, and small parsers over its tokens. Every
expression is returned as a slice of the original text, so whitespace, comments and
spelling inside it are exactly what the user wrote.

The parsers are tolerant: SQLite already accepted the statement, so an unexpected token
is skipped rather than raised on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

__all__ = [
    "Token", "tokenize", "unquote", "fold", "split_table_body", "table_options",
    "is_table_constraint", "column_def", "column_constraints", "table_constraints",
    "parse_create_table", "parse_create_index", "view_select", "view_columns",
    "ColumnDef", "Constraint", "References", "TableDef", "IndexDef", "IndexItem",
]


class Token(NamedTuple):
    kind: str  # word | id (quoted identifier) | str | blob | num | op | ws | comment
    text: str
    start: int
    end: int

    def is_kw(self, *words: str) -> bool:
        """A bare (unquoted) word equal to one of ``words``, case-insensitively."""
        return self.kind == "word" and self.text.upper() in words

    def is_op(self, op: str) -> bool:
        return self.kind == "op" and self.text == op


_SPACE = " \t\n\f\r"


def _is_id_char(ch: str) -> bool:
    # SQLite treats every byte >= 0x80 as an identifier character.
    return ch.isalnum() or ch in "_$" or ord(ch) >= 0x80


def tokenize(sql: str, *, trivia: bool = False) -> list[Token]:
    """Tokens of ``sql``; whitespace and comments only when ``trivia`` is true."""
    out: list[Token] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        start = i
        if ch in _SPACE:
            while i < n and sql[i] in _SPACE:
                i += 1
            kind = "ws"
        elif sql.startswith("--", i):
            nl = sql.find("\n", i)
            i = n if nl < 0 else nl + 1
            kind = "comment"
        elif sql.startswith("/*", i):
            close = sql.find("*/", i + 2)
            i = n if close < 0 else close + 2  # unterminated: runs to the end, as in SQLite
            kind = "comment"
        elif ch in "'\"`":
            i = _quoted_end(sql, i, ch)
            kind = "str" if ch == "'" else "id"
        elif ch == "[":
            close = sql.find("]", i + 1)  # no escape inside [...]
            i = n if close < 0 else close + 1
            kind = "id"
        elif ch in "xX" and i + 1 < n and sql[i + 1] == "'":
            i = _quoted_end(sql, i + 1, "'")
            kind = "blob"
        elif ch.isdigit() or (ch == "." and i + 1 < n and sql[i + 1].isdigit()):
            i += 1
            while i < n and (sql[i].isalnum() or sql[i] in "._"):
                # an exponent sign belongs to the number: 1e-5
                if sql[i] in "eE" and i + 1 < n and sql[i + 1] in "+-" \
                        and not sql[start:i].lower().startswith("0x"):
                    i += 1
                i += 1
            kind = "num"
        elif _is_id_char(ch):
            while i < n and _is_id_char(sql[i]):
                i += 1
            kind = "word"
        else:
            i += 1
            kind = "op"
        if trivia or kind not in ("ws", "comment"):
            out.append(Token(kind, sql[start:i], start, i))
    return out


def _quoted_end(sql: str, i: int, quote: str) -> int:
    """End of the quoted token opening at ``i``; a doubled quote is an escaped quote."""
    j = i + 1
    while True:
        k = sql.find(quote, j)
        if k < 0:
            return len(sql)
        if k + 1 < len(sql) and sql[k + 1] == quote:
            j = k + 2
            continue
        return k + 1


def unquote(text: str) -> str:
    """The identifier a token spells: "a""b" -> a"b, [x] -> x, `y` -> y, 'z' -> z."""
    if len(text) >= 2:
        first, last = text[0], text[-1]
        if first == "[" and last == "]":
            return text[1:-1]
        if first in "\"`'" and last == first:
            return text[1:-1].replace(first * 2, first)
    return text


def _group_end(toks: list[Token], i: int) -> int:
    """Index of the ')' matching the '(' at ``toks[i]`` (or the last token if unbalanced)."""
    depth = 0
    for j in range(i, len(toks)):
        if toks[j].is_op("("):
            depth += 1
        elif toks[j].is_op(")"):
            depth -= 1
            if depth == 0:
                return j
    return len(toks) - 1


def _split_commas(toks: list[Token]) -> list[list[Token]]:
    """Top-level comma-separated runs of tokens."""
    parts: list[list[Token]] = [[]]
    depth = 0
    for tok in toks:
        if tok.is_op("("):
            depth += 1
        elif tok.is_op(")"):
            depth -= 1
        elif tok.is_op(",") and depth == 0:
            parts.append([])
            continue
        parts[-1].append(tok)
    return [p for p in parts if p]


def _span(sql: str, toks: list[Token]) -> str:
    return sql[toks[0].start:toks[-1].end] if toks else ""


def _inner(sql: str, toks: list[Token], open_i: int, close_i: int) -> str:
    """Text between a '(' and its ')', outer whitespace trimmed, the rest untouched."""
    return sql[toks[open_i].end:toks[close_i].start].strip()


def _body_bounds(toks: list[Token]) -> tuple[int, int] | None:
    """Indexes of the '(' and ')' around a CREATE TABLE's column list."""
    for i, tok in enumerate(toks):
        if tok.is_op("("):
            return i, _group_end(toks, i)
        if tok.is_kw("AS"):  # CREATE TABLE ... AS SELECT has no body
            return None
    return None


# ----------------------------------------------------------------------- CREATE TABLE

def split_table_body(create_sql: str) -> list[str]:
    """The top-level comma-separated items inside CREATE TABLE name ( ... )."""
    toks = tokenize(create_sql)
    bounds = _body_bounds(toks)
    if bounds is None:
        return []
    open_i, close_i = bounds
    return [_span(create_sql, part) for part in _split_commas(toks[open_i + 1:close_i])]


def table_options(create_sql: str) -> list[str]:
    """Options after the body, upper-cased: e.g. ["WITHOUT ROWID", "STRICT"]."""
    toks = tokenize(create_sql)
    bounds = _body_bounds(toks)
    if bounds is None:
        return []
    return [" ".join(t.text.upper() for t in part)
            for part in _split_commas(toks[bounds[1] + 1:]) if part[0].kind == "word"]


_TABLE_CONSTRAINT_START = ("CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN")


def is_table_constraint(item: str) -> bool:
    """Whether a body item is a table constraint (these words are reserved in SQLite)."""
    toks = tokenize(item)
    return bool(toks) and toks[0].is_kw(*_TABLE_CONSTRAINT_START)


@dataclass
class IndexItem:
    """One indexed term: its text without the trailing COLLATE / ASC / DESC."""

    expression: str
    collation: str | None = None
    descending: bool = False


@dataclass
class References:
    """The REFERENCES clause of a foreign key, as written."""

    table: str
    columns: list[str] = field(default_factory=list)  # empty: the referenced table's PK
    on_delete: str | None = None
    on_update: str | None = None
    match: str | None = None
    deferrable: bool = False
    initially_deferred: bool = False


@dataclass
class Constraint:
    """One column or table constraint.

    kind: PRIMARY KEY, UNIQUE, CHECK, FOREIGN KEY (column-level REFERENCES too), NOT NULL,
    NULL, DEFAULT, COLLATE, GENERATED.
    """

    kind: str
    name: str | None = None
    text: str = ""  # the constraint's source text, CONSTRAINT name included
    columns: list[str] = field(default_factory=list)  # PK / UNIQUE / FK local columns
    keys: list[IndexItem] = field(default_factory=list)  # table PK / UNIQUE, with COLLATE
    expression: str | None = None  # CHECK, GENERATED, DEFAULT (DEFAULT keeps its parens)
    collation: str | None = None  # COLLATE
    references: References | None = None
    descending: bool = False  # column-level PRIMARY KEY DESC
    autoincrement: bool = False
    stored: bool = False  # GENERATED ... STORED
    on_conflict: str | None = None


@dataclass
class ColumnDef:
    name: str
    type: str  # as written, "GENERATED ALWAYS" stripped as SQLite does
    constraints: list[Constraint] = field(default_factory=list)
    text: str = ""

    def first(self, kind: str) -> Constraint | None:
        return next((c for c in self.constraints if c.kind == kind), None)

    @property
    def collation(self) -> str | None:
        """The column's collation: SQLite applies the last COLLATE written."""
        names = [c.collation for c in self.constraints if c.kind == "COLLATE"]
        return names[-1] if names else None


@dataclass
class TableDef:
    columns: list[ColumnDef] = field(default_factory=list)
    constraints: list[Constraint] = field(default_factory=list)  # table-level only
    options: list[str] = field(default_factory=list)

    def column(self, name: str) -> ColumnDef | None:
        # SQLite identifiers are case-insensitive (ASCII only).
        key = fold(name)
        return next((c for c in self.columns if fold(c.name) == key), None)


def fold(name: str) -> str:
    """SQLite's identifier comparison: ASCII letters only are case-folded."""
    return name.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

# Words that begin a column constraint, i.e. end the column's type name.
_CCONS_START = ("CONSTRAINT", "DEFAULT", "NULL", "NOT", "PRIMARY", "UNIQUE", "CHECK",
                "REFERENCES", "DEFERRABLE", "COLLATE", "AS", "GENERATED")


class _Cursor:
    """A position in a token list, with the few look-ahead helpers the parsers need."""

    def __init__(self, sql: str, toks: list[Token]) -> None:
        self.sql, self.toks, self.i = sql, toks, 0

    def peek(self, ahead: int = 0) -> Token | None:
        j = self.i + ahead
        return self.toks[j] if j < len(self.toks) else None

    def kw(self, *words: str) -> bool:
        return self.kw_at(0, *words)

    def kw_at(self, ahead: int, *words: str) -> bool:
        tok = self.peek(ahead)
        return tok is not None and tok.is_kw(*words)

    def op(self, op: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.is_op(op)

    def take(self) -> Token:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def done(self) -> bool:
        return self.i >= len(self.toks)

    def group(self) -> tuple[int, int]:
        """Consume a parenthesised group; return the indexes of its '(' and ')'."""
        open_i = self.i
        close_i = _group_end(self.toks, open_i)
        self.i = close_i + 1
        return open_i, close_i

    def sort_list(self) -> list[IndexItem]:
        """Consume ( a [COLLATE x] [ASC|DESC], ... )."""
        open_i, close_i = self.group()
        return [_index_item(self.sql, part)
                for part in _split_commas(self.toks[open_i + 1:close_i])]

    def name_list(self) -> list[str]:
        """Consume ( a [COLLATE x] [ASC|DESC], ... ) and return the names."""
        return [unquote(item.expression) for item in self.sort_list()]

    def on_conflict(self) -> str | None:
        if self.kw("ON") and self.kw_at(1, "CONFLICT"):
            self.i += 2
            return self.take().text.upper() if not self.done() else None
        return None


def _references(cur: _Cursor) -> References:
    """After REFERENCES: name [(cols)] {ON DELETE|UPDATE action | MATCH x}* [defer]."""
    ref = References(table=unquote(cur.take().text) if not cur.done() else "")
    if cur.op("("):
        ref.columns = cur.name_list()
    while not cur.done():
        if cur.kw("ON") and not cur.kw_at(1, "CONFLICT"):
            cur.take()
            event = cur.take().text.upper() if not cur.done() else ""
            action = _fk_action(cur)
            if event == "DELETE":
                ref.on_delete = action
            elif event == "UPDATE":
                ref.on_update = action
            # ON INSERT is accepted and ignored by SQLite.
        elif cur.kw("MATCH"):
            cur.take()
            ref.match = unquote(cur.take().text).upper() if not cur.done() else None
        elif cur.kw("DEFERRABLE") or (cur.kw("NOT") and cur.kw_at(1, "DEFERRABLE")):
            _defer(cur, ref)
        else:
            break
    return ref


def _fk_action(cur: _Cursor) -> str:
    words = []
    first = cur.take().text.upper() if not cur.done() else ""
    words.append(first)
    if first in ("SET", "NO") and not cur.done():
        words.append(cur.take().text.upper())
    return " ".join(words)


def _defer(cur: _Cursor, ref: References | None) -> None:
    """[NOT] DEFERRABLE [INITIALLY DEFERRED|IMMEDIATE]; SQLite defers only the full form."""
    negated = cur.kw("NOT")
    if negated:
        cur.take()
    cur.take()  # DEFERRABLE
    deferred = False
    if cur.kw("INITIALLY"):
        cur.take()
        deferred = not cur.done() and cur.take().is_kw("DEFERRED")
    if ref is not None:
        ref.deferrable = not negated
        ref.initially_deferred = not negated and deferred


def column_def(item: str) -> ColumnDef:
    """Parse one column definition: name, type, and its constraints in order."""
    toks = tokenize(item)
    if not toks:
        return ColumnDef(name="", type="", text=item)
    cur = _Cursor(item, toks)
    name = unquote(cur.take().text)
    type_start = cur.i
    while not cur.done() and not cur.kw(*_CCONS_START):
        if cur.op("("):
            cur.group()
        else:
            cur.take()
    # The type ends at the first constraint word; "INT GENERATED ALWAYS AS (...)" thus
    # yields "INT", which is also what SQLite keeps (it trims "GENERATED ALWAYS").
    type_toks = toks[type_start:cur.i]
    col = ColumnDef(name=name, type=_span(item, type_toks), text=item)
    col.constraints = _column_constraints(cur)
    for con in col.constraints:
        if con.kind in ("PRIMARY KEY", "UNIQUE", "FOREIGN KEY"):
            con.columns = [name]  # same shape as the table-level form
        if con.kind in ("PRIMARY KEY", "UNIQUE"):
            con.keys = [IndexItem(toks[0].text, descending=con.descending)]
    return col


def column_constraints(item: str) -> list[Constraint]:
    """The constraints of a column definition, in the order written."""
    return column_def(item).constraints


def _column_constraints(cur: _Cursor) -> list[Constraint]:
    out: list[Constraint] = []
    name: str | None = None
    name_start: int | None = None
    while not cur.done():
        start = cur.i
        tok = cur.take()
        con: Constraint | None = None
        if tok.is_kw("CONSTRAINT"):
            if not cur.done():
                name = unquote(cur.take().text)
                name_start = start
            continue
        if tok.is_kw("DEFAULT"):
            if cur.op("("):
                open_i, close_i = cur.group()
                expr = cur.sql[cur.toks[open_i].start:cur.toks[close_i].end]
            else:
                first = cur.i
                if cur.op("+") or cur.op("-"):
                    cur.take()
                if not cur.done():
                    cur.take()
                expr = _span(cur.sql, cur.toks[first:cur.i])
            con = Constraint("DEFAULT", expression=expr)
        elif tok.is_kw("NULL"):
            con = Constraint("NULL", on_conflict=cur.on_conflict())
        elif tok.is_kw("NOT") and cur.kw("DEFERRABLE"):
            cur.i = start
            _defer(cur, _last_fk(out))
            continue
        elif tok.is_kw("NOT"):
            if cur.kw("NULL"):
                cur.take()
            con = Constraint("NOT NULL", on_conflict=cur.on_conflict())
        elif tok.is_kw("PRIMARY"):
            if cur.kw("KEY"):
                cur.take()
            con = Constraint("PRIMARY KEY")
            if cur.kw("ASC", "DESC"):
                con.descending = cur.take().is_kw("DESC")
            con.on_conflict = cur.on_conflict()
            if cur.kw("AUTOINCREMENT"):
                cur.take()
                con.autoincrement = True
        elif tok.is_kw("UNIQUE"):
            con = Constraint("UNIQUE", on_conflict=cur.on_conflict())
        elif tok.is_kw("CHECK") and cur.op("("):
            open_i, close_i = cur.group()
            con = Constraint("CHECK", expression=_inner(cur.sql, cur.toks, open_i, close_i))
        elif tok.is_kw("REFERENCES"):
            con = Constraint("FOREIGN KEY", references=_references(cur))
        elif tok.is_kw("DEFERRABLE"):
            cur.i = start
            _defer(cur, _last_fk(out))
            continue
        elif tok.is_kw("COLLATE"):
            con = Constraint("COLLATE",
                             collation=unquote(cur.take().text) if not cur.done() else None)
        elif tok.is_kw("GENERATED", "AS"):
            if tok.is_kw("GENERATED"):
                while cur.kw("ALWAYS", "AS"):
                    cur.take()
            if cur.op("("):
                open_i, close_i = cur.group()
                con = Constraint("GENERATED",
                                 expression=_inner(cur.sql, cur.toks, open_i, close_i))
                if cur.kw("STORED", "VIRTUAL"):
                    con.stored = cur.take().is_kw("STORED")
        if con is None:
            continue  # not something we model: skip the token
        first = name_start if name is not None and name_start is not None else start
        con.name = name
        con.text = _span(cur.sql, cur.toks[first:cur.i])
        name, name_start = None, None
        out.append(con)
    return out


def _last_fk(cons: list[Constraint]) -> References | None:
    fks = [c.references for c in cons if c.references is not None]
    return fks[-1] if fks else None


def table_constraints(item: str) -> list[Constraint]:
    """Table constraints in one body item (SQLite allows several without commas)."""
    toks = tokenize(item)
    cur = _Cursor(item, toks)
    out: list[Constraint] = []
    name: str | None = None
    name_start: int | None = None
    while not cur.done():
        start = cur.i
        tok = cur.take()
        con: Constraint | None = None
        if tok.is_kw("CONSTRAINT"):
            if not cur.done():
                name = unquote(cur.take().text)
                name_start = start
            continue
        if tok.is_kw("PRIMARY", "UNIQUE"):
            if cur.kw("KEY"):
                cur.take()
            con = Constraint("PRIMARY KEY" if tok.is_kw("PRIMARY") else "UNIQUE")
            if cur.op("("):
                open_i, close_i = cur.group()
                inner = toks[open_i + 1:close_i]
                if con.kind == "PRIMARY KEY" and inner and inner[-1].is_kw("AUTOINCREMENT"):
                    # SQLite's grammar takes it at the end of the table-level key list too.
                    con.autoincrement = True
                    inner = inner[:-1]
                con.keys = [_index_item(item, part) for part in _split_commas(inner)]
                con.columns = [unquote(k.expression) for k in con.keys]
            con.on_conflict = cur.on_conflict()
        elif tok.is_kw("CHECK") and cur.op("("):
            open_i, close_i = cur.group()
            con = Constraint("CHECK", expression=_inner(item, toks, open_i, close_i))
            con.on_conflict = cur.on_conflict()
        elif tok.is_kw("FOREIGN"):
            if cur.kw("KEY"):
                cur.take()
            con = Constraint("FOREIGN KEY")
            if cur.op("("):
                con.columns = cur.name_list()
            if cur.kw("REFERENCES"):
                cur.take()
                con.references = _references(cur)
        if con is None:
            continue
        first = name_start if name is not None and name_start is not None else start
        con.name = name
        con.text = _span(item, toks[first:cur.i])
        name, name_start = None, None
        out.append(con)
    return out


def parse_create_table(create_sql: str) -> TableDef:
    """Columns, table constraints and options of a CREATE TABLE statement."""
    table = TableDef(options=table_options(create_sql))
    for item in split_table_body(create_sql):
        if is_table_constraint(item):
            table.constraints.extend(table_constraints(item))
        else:
            table.columns.append(column_def(item))
    return table


# ----------------------------------------------------------------------- CREATE INDEX

@dataclass
class IndexDef:
    name: str
    table: str
    unique: bool = False
    items: list[IndexItem] = field(default_factory=list)
    where: str | None = None


def parse_create_index(sql: str) -> IndexDef:
    """CREATE [UNIQUE] INDEX [IF NOT EXISTS] [schema.]name ON table (terms) [WHERE expr]."""
    toks = tokenize(sql)
    cur = _Cursor(sql, toks)
    unique = False
    name = table = ""
    while not cur.done() and not cur.kw("ON"):
        tok = cur.take()
        if tok.is_kw("UNIQUE"):
            unique = True
        elif tok.kind in ("word", "id", "str") and not tok.is_kw(
                "CREATE", "UNIQUE", "INDEX", "IF", "NOT", "EXISTS"):
            name = unquote(tok.text)  # the last name before ON (after any "schema.")
    if cur.kw("ON"):
        cur.take()
        table = unquote(cur.take().text) if not cur.done() else ""
    index = IndexDef(name=name, table=table, unique=unique)
    if cur.op("("):
        open_i, close_i = cur.group()
        for part in _split_commas(toks[open_i + 1:close_i]):
            index.items.append(_index_item(sql, part))
    if cur.kw("WHERE"):
        where_tok = cur.take()
        index.where = sql[where_tok.end:].strip() or None
    return index


def _index_item(sql: str, part: list[Token]) -> IndexItem:
    item = IndexItem(expression="")
    end = len(part)
    if end and part[end - 1].is_kw("ASC", "DESC"):
        item.descending = part[end - 1].is_kw("DESC")
        end -= 1
    if end >= 2 and part[end - 2].is_kw("COLLATE"):
        item.collation = unquote(part[end - 1].text)
        end -= 2
    item.expression = _span(sql, part[:end])
    return item


# ------------------------------------------------------------------------ CREATE VIEW

def view_select(sql: str) -> str:
    """The query of CREATE VIEW name [(columns)] AS query: everything after that AS."""
    toks = tokenize(sql)
    depth = 0
    for tok in toks:
        if tok.is_op("("):
            depth += 1
        elif tok.is_op(")"):
            depth -= 1
        elif depth == 0 and tok.is_kw("AS"):
            return sql[tok.end:].strip()
    return ""


def view_columns(sql: str) -> list[str]:
    """The optional column list of CREATE VIEW name (a, b) AS ..."""
    toks = tokenize(sql)
    for i, tok in enumerate(toks):
        if tok.is_kw("AS"):
            return []
        if tok.is_op("("):
            close_i = _group_end(toks, i)
            return [unquote(p[0].text) for p in _split_commas(toks[i + 1:close_i])]
    return []
