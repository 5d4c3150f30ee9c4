"""Declared renames: ``-- lockplane:renamed-from old_name`` in SQL schema files.

A declarative diff cannot tell a rename from a drop and an add; the user states it. The
annotation goes at the end of the column's line, or of the ``CREATE TABLE`` line for a
table rename. (In JSON schemas: ``"renamed_from"`` on the column or table.)
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import BadInput
from ..model import Schema

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
    """Set ``renamed_from`` on the tables and columns the SQL files annotate."""
    from ..dialects import get_dialect

    d = get_dialect(schema.dialect)
    fold = d.folds_unquoted_names  # unquoted names fold to lower case (PostgreSQL)
    default_schema = d.default_schema
    for path in files:
        table_ref: tuple[str, str] | None = None
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
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
