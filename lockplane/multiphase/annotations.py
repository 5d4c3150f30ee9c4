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

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BadInput
from ..model import EnumType, Schema

_ANNOTATION = re.compile(r"--\s*lockplane:renamed-from\s+(\"(?:[^\"]|\"\")+\"|[^\s;,]+)")
_IDENT = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
_CREATE_TABLE = re.compile(
    rf"^\s*CREATE\s+(?:UNLOGGED\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?"
    rf"((?:{_IDENT}\s*\.\s*)?{_IDENT})", re.IGNORECASE)
_FIRST_IDENT = re.compile(rf"^\s*({_IDENT})")


def _unquote(ident: str, fold: bool) -> str:
    ident = ident.strip()
    if ident.startswith('"'):
        return ident[1:-1].replace('""', '"')
    return ident.lower() if fold else ident


def _split_qualified(text: str, fold: bool) -> tuple[str | None, str]:
    parts = re.findall(_IDENT, text)
    if len(parts) == 2:
        return _unquote(parts[0], fold), _unquote(parts[1], fold)
    return None, _unquote(parts[-1], fold)


def apply_rename_annotations(schema: Schema, files: list[Path]) -> Schema:
    """Set ``renamed_from`` on the tables and columns the SQL files annotate, and
    ``values_renamed_from`` on the enum types whose values they annotate."""
    from ..dialects import get_dialect

    d = get_dialect(schema.dialect)
    fold = d.folds_unquoted_names  # unquoted names fold to lower case (PostgreSQL)
    default_schema = d.default_schema
    for path in files:
        text = path.read_text()
        enum_lines = _apply_enum_value_renames(schema, path, text, default_schema)
        table_ref: tuple[str, str] | None = None
        for lineno, line in enumerate(text.splitlines(), 1):
            if lineno in enum_lines:
                continue
            m_table = _CREATE_TABLE.match(line)
            if m_table:
                sch, name = _split_qualified(m_table.group(1), fold)
                table_ref = (sch or default_schema, name)
            m = _ANNOTATION.search(line)
            if not m:
                continue
            old = _unquote(m.group(1), fold)
            if table_ref is None:
                raise BadInput(f"{path}:{lineno}: renamed-from outside a CREATE TABLE")
            table = schema.table(*table_ref)
            if table is None:
                raise BadInput(f"{path}:{lineno}: renamed-from: table "
                               f"{table_ref[1]} not found after loading")
            if m_table:
                table.renamed_from = old
                continue
            first = _FIRST_IDENT.match(line)
            col = table.column(_unquote(first.group(1), fold)) if first else None
            if col is None:
                raise BadInput(f"{path}:{lineno}: renamed-from must follow a column "
                               "definition on the same line")
            col.renamed_from = old
    return schema


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
        raw = text[tok.start:tok.end + 1]
        inner = raw[2:-2] if raw.startswith("/*") else raw[2:]
        inner = inner.strip()
        if not inner.startswith(_RENAMED_FROM) or (
                inner[len(_RENAMED_FROM):][:1] not in ("", " ", "\t")):
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
        old = _old_label(where, inner[len(_RENAMED_FROM):])
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
