"""Declared renames: ``-- lockplane:renamed-from old_name`` in SQL schema files.

A declarative diff cannot tell a rename from a drop and an add; the user states it. The
annotation goes at the end of the column's line, or of the ``CREATE TABLE`` line for a
table rename. (In JSON schemas: ``"renamed_from"`` on the column or table.)

An enum value's rename goes on the value's line inside ``CREATE TYPE ... AS ENUM (...)``;
the old label is a string literal (``'done'``) or a bare word taken as written (labels
are case-sensitive), and the type then carries ``values_renamed_from`` (new -> old)::

    CREATE TYPE job_state AS ENUM (
        'queued',
        'succeeded',  -- lockplane:renamed-from 'done'
        'failed'
    );

Which value a comment belongs to comes from PostgreSQL's lexer (token positions), as for
``fill-with``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BadInput
from ..model import EnumType, Schema


def apply_rename_annotations(schema: Schema, files: list[Path]) -> Schema:
    """Set ``renamed_from`` on the tables and columns the SQL files annotate, and
    ``values_renamed_from`` on the enum types whose values they annotate."""
    from ..dialects import get_dialect
    from ..fill import _find_column, _find_table

    d = get_dialect(schema.dialect)
    fold = d.folds_unquoted_names  # unquoted names fold to lower case (PostgreSQL)
    default_schema = d.default_schema
    for path in files:
        text = path.read_text()
        enum_lines = _apply_enum_value_renames(schema, path, text, default_schema)
        for where, table_name, column_name, old in _declared(path, text, enum_lines, fold):
            table = _find_table(schema, table_name, default_schema)
            if table is None:
                shown = ".".join(n.text for n in table_name)
                raise BadInput(f"{where}: renamed-from: table {shown} not found after "
                               "loading")
            if column_name is None:
                table.renamed_from = old
                continue
            col = _find_column(table, column_name)
            if col is None:
                raise BadInput(f"{where}: renamed-from: column {column_name.text} of "
                               f"{table.name} not found after loading")
            col.renamed_from = old
    return schema


def _declared(path: Path, text: str, skip_lines: set[int], fold: bool,
              ) -> list[tuple[str, list[Any], Any, str]]:
    """(file:line, table name, column name or None for the table, old name) of each
    table or column renamed-from comment, placed with PostgreSQL's lexer: on the line of
    a CREATE TABLE, the table's; else the column definition it ends the line of (or, on
    a line of its own, the one it stands before), in CREATE TABLE or ALTER TABLE ... ADD
    COLUMN. A comment inside a string or a dollar-quoted body is not one."""
    import bisect

    from ..fill import _COMMENTS, _file_elements, _owner, file_tokens

    if _RENAMED_FROM not in text:
        return []
    tokens = file_tokens(path, text, "renamed-from")
    comments = [t for t in tokens if t.name in _COMMENTS]
    code = [t for t in tokens if t.name not in _COMMENTS]
    elements = _file_elements(text, code)
    starts = [t.start for t in code]
    out = []
    for tok in comments:
        inner = _inner(text[tok.start:tok.end + 1])
        if inner is None:
            continue
        line = _line(text, tok.start)
        if line in skip_lines:
            continue
        where = f"{path}:{line}"
        old = _old_name(where, inner, fold)
        i = bisect.bisect_left(starts, tok.start)
        created = _created_on_line(text, code, i, text.rfind("\n", 0, tok.start) + 1)
        if created is not None:
            table, create = created
            depth = sum((t.name == "ASCII_40") - (t.name == "ASCII_41") for t in code[create:i])
            if depth > 0 and code[i - 1].name != "ASCII_40":
                # "CREATE TABLE t (id int, b int, -- renamed-from a": the table's or b's?
                raise BadInput(f"{where}: renamed-from on a CREATE TABLE line that also "
                               "defines columns: put it at the end of the column's own line "
                               "(a column rename) or right after the '(' (the table's)")
            out.append((where, table, None, old))
            continue
        element = _owner(text, code, starts, elements, tok.start)
        if element is None or element.column is None:
            raise BadInput(f"{where}: renamed-from must end the line of a column definition "
                           "(or of the CREATE TABLE line, for the table)")
        out.append((where, element.table, element.column, old))
    return out


def _inner(comment: str) -> str | None:
    """What follows ``lockplane:renamed-from`` in a comment; None for another comment."""
    inner = (comment[2:-2] if comment.startswith("/*") else comment[2:]).strip()
    if not inner.startswith(_RENAMED_FROM) or \
            inner[len(_RENAMED_FROM):][:1] not in ("", " ", "\t"):
        return None
    return inner[len(_RENAMED_FROM):].strip()


def _old_name(where: str, body: str, fold: bool) -> str:
    """The old name a table or column renamed-from names: one name, "quoted" or plain
    (folded as the server folds an unquoted one)."""
    from pglast.parser import ParseError, scan

    from ..fill import _name

    try:
        toks = list(scan(body))
    except ParseError:
        toks = []
    if not toks:
        raise BadInput(f"{where}: renamed-from names no old name")
    name, _ = _name(body, toks, 0)
    if name.quoted:
        return name.text
    return name.text.lower() if fold else name.text


def _created_on_line(text: str, code: list[Any], i: int,
                     line_start: int) -> tuple[list[Any], int] | None:
    """The name of the table a CREATE TABLE on this line (before token ``i``) makes, and
    the index of its CREATE."""
    from ..fill import _qualified, _skip, _upper

    k = i - 1
    while k >= 0 and code[k].start >= line_start:
        k -= 1
    for c in range(k + 1, i):
        if _upper(text, code[c]) != "CREATE":
            continue
        t = c + 1
        while t < i and _upper(text, code[t]) in ("GLOBAL", "LOCAL", "TEMP", "TEMPORARY",
                                                   "UNLOGGED"):
            t += 1
        if t < i and _upper(text, code[t]) == "TABLE":
            name, _ = _qualified(text, code, _skip(text, code, t + 1, "IF", "NOT", "EXISTS"))
            return name, c
    return None


# ----------------------------------------------------------------- enum value renames
_RENAMED_FROM = "lockplane:renamed-from"


@dataclass
class _EnumList:
    """The value list of one ``CREATE TYPE ... AS ENUM (...)``."""

    type_name: list[Any]  # lockplane.fill._Name parts
    first_line: int  # of its "("
    last_line: int  # of its ")"
    values: list[tuple[int, str]]  # (line, label)


def _enum_lists(text: str, code: list[Any]) -> list[_EnumList]:
    from ..fill import _qualified, _upper

    out = []
    i, n = 0, len(code)
    while i < n:
        if _upper(text, code[i]) != "CREATE" or i + 1 >= n \
                or _upper(text, code[i + 1]) != "TYPE":
            i += 1
            continue
        name, j = _qualified(text, code, i + 2)
        if j + 2 >= n or _upper(text, code[j]) != "AS" or _upper(text, code[j + 1]) != "ENUM" \
                or code[j + 2].name != "ASCII_40":
            i = j
            continue
        k = j + 3
        values = []
        while k < n and code[k].name != "ASCII_41":
            label = _literal(text[code[k].start:code[k].end + 1]) \
                if code[k].name in ("SCONST", "USCONST") else None
            if label is not None:
                values.append((_line(text, code[k].start), label))
            k += 1
        if k >= n:
            break
        out.append(_EnumList(name, _line(text, code[j + 2].start), _line(text, code[k].start),
                             values))
        i = k + 1
    return out


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _literal(token: str) -> str | None:
    """The value of a string constant token as PostgreSQL's parser reads it (None: not
    one string constant)."""
    import pglast
    from pglast import ast

    try:
        stmt = pglast.parse_sql("SELECT " + token)[0].stmt
    except pglast.parser.ParseError:
        return None
    targets = getattr(stmt, "targetList", None) or ()
    val = targets[0].val if len(targets) == 1 else None
    if isinstance(val, ast.A_Const) and isinstance(val.val, ast.String):
        return val.val.sval
    return None


def _old_label(where: str, body: str) -> str:
    """The old label a renamed-from comment names: ``'a literal'`` or one bare word."""
    body = body.strip()
    if not body:
        raise BadInput(f"{where}: {_RENAMED_FROM} names no old value")
    if body.startswith("'") or body[:2].upper() in ("E'", "U&"):
        label = _literal(body)
        if label is None:
            raise BadInput(f"{where}: {_RENAMED_FROM}: the old value is one string literal "
                           f"('old') or one word, not {body!r}")
        return label
    if any(ch.isspace() for ch in body):
        raise BadInput(f"{where}: {_RENAMED_FROM}: the old value is one string literal "
                       f"('old') or one word, not {body!r}")
    return body


def _apply_enum_value_renames(schema: Schema, path: Path, text: str,
                              default_schema: str) -> set[int]:
    """Read the renamed-from comments that stand in an enum's value list into the loaded
    types' ``values_renamed_from``; the lines they are on (the table and column handler
    leaves those alone)."""
    if _RENAMED_FROM not in text or "ENUM" not in text.upper():
        return set()
    from pglast.parser import ParseError, scan

    try:
        tokens = scan(text)
    except ParseError:
        return set()  # (the server reports the file when it loads it)
    comments = [t for t in tokens if t.name in ("SQL_COMMENT", "C_COMMENT")]
    code = [t for t in tokens if t.name not in ("SQL_COMMENT", "C_COMMENT")]
    lists = _enum_lists(text, code)
    done: set[int] = set()
    for tok in comments:
        body = _inner(text[tok.start:tok.end + 1])
        if body is None:
            continue
        line = _line(text, tok.start)
        owner = next((e for e in lists if e.first_line <= line <= e.last_line), None)
        if owner is None:
            continue
        where = f"{path}:{line}"
        here = [label for value_line, label in owner.values if value_line == line]
        if len(here) != 1:
            raise BadInput(f"{where}: {_RENAMED_FROM} in an enum's value list goes at the end "
                           "of the line of the one value it renames (enum types themselves "
                           f"are not renamed){'' if not here else f'; this line has {len(here)}'}")
        old = _old_label(where, body)
        new = here[0]
        enum = _find_enum(schema, owner.type_name, default_schema)
        shown = ".".join(p.text for p in owner.type_name)
        if enum is None:
            raise BadInput(f"{where}: {_RENAMED_FROM}: enum type {shown} not found after "
                           "loading the schema")
        if new not in enum.values:
            raise BadInput(f"{where}: {_RENAMED_FROM}: {new!r} is not a value of {shown} "
                           "after loading the schema")
        if old == new:
            raise BadInput(f"{where}: {_RENAMED_FROM}: {new!r} is renamed from itself")
        if old in enum.values:
            raise BadInput(f"{where}: {_RENAMED_FROM}: {old!r} is still a value of {shown}: "
                           "a renamed value is gone under its old label")
        if new in enum.values_renamed_from:
            raise BadInput(f"{where}: {_RENAMED_FROM}: {new!r} of {shown} already has one")
        if old in enum.values_renamed_from.values():
            raise BadInput(f"{where}: {_RENAMED_FROM}: another value of {shown} is renamed "
                           f"from {old!r}")
        enum.values_renamed_from[new] = old
        done.add(line)
    return done


def _find_enum(schema: Schema, parts: list[Any], default_schema: str) -> EnumType | None:
    *qual, name = parts

    def variants(n: Any) -> list[str]:
        return [n.text] if n.quoted else list(dict.fromkeys([n.text.lower(), n.text]))

    schemas = variants(qual[-1]) if qual else [default_schema]
    for e in schema.enums:
        if (e.schema_ or default_schema) in schemas and e.name in variants(name):
            return e
    if not qual:  # (the file may set its own search_path: the one type of that name)
        hits = [e for e in schema.enums if e.name in variants(name)]
        return hits[0] if len(hits) == 1 else None
    return None
