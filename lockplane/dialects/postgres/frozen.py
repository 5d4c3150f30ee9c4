"""Time values PostgreSQL freezes when it stores an expression.

``'now'::timestamp``, ``'today'::date``, ``'tomorrow'``, ``'yesterday'`` (and a bare
``DEFAULT 'now'`` on a date/time column) are read as literals when the statement runs:
the server stores the moment of the CREATE, not "now" (``CURRENT_DATE`` and ``now()``
are functions and stay live; ``'epoch'`` and ``'infinity'`` mean the same at any time).
A view, default or CHECK declared so is almost always a bug, and it differs from itself
loaded at another moment, so every plan would recreate it.

``frozen_marks`` finds them in a desired schema's statements (pglast over the declared
SQL, before the server has turned them into timestamps); ``thawed`` is a printed
expression with the values of its date/time literals left out, so that two loads of
one declaration compare equal (lockplane/frozen.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pglast

SPECIALS = frozenset({"now", "today", "tomorrow", "yesterday"})
DATETIME_TYPES = frozenset({"timestamp", "timestamptz", "date", "time", "timetz"})

# ("view", schema, name) | ("default", schema, table, column) | ("check", schema, table)
Mark = tuple[str, ...]


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list | tuple):
        for v in node:
            yield from _walk(v)


def _type_name(type_name: Any) -> str:
    names = (type_name or {}).get("names") or []
    return str(names[-1].get("sval", "")).lower() if names else ""


def _string(node: Any) -> str | None:
    if isinstance(node, dict) and node.get("@") == "A_Const":
        val = node.get("val") or {}
        if val.get("@") == "String":
            return str(val.get("sval", ""))
    return None


def _is_datetime_literal(node: dict[str, Any]) -> bool:
    return (node.get("@") == "TypeCast" and _string(node.get("arg")) is not None
            and _type_name(node.get("typeName")) in DATETIME_TYPES)


def freezes(node: Any, bare_is_datetime: bool = False) -> bool:
    """Whether an expression (a pglast node as a dict) holds a special value cast to a
    date/time type; ``bare_is_datetime``: a bare special string counts (a column
    default, which the column's date/time type casts)."""
    if bare_is_datetime and (text := _string(node)) is not None:
        return text.strip().lower() in SPECIALS
    return any(_is_datetime_literal(n) and (_string(n.get("arg")) or "").strip().lower()
               in SPECIALS for n in _walk(node))


def _rel(rangevar: Any, default_schema: str) -> tuple[str, str]:
    rv = rangevar or {}
    return (rv.get("schemaname") or default_schema, rv.get("relname") or "")


def _constraints(node: Any) -> list[dict[str, Any]]:
    return [c for c in node or [] if isinstance(c, dict) and c.get("@") == "Constraint"]


def _contype(con: dict[str, Any]) -> str:
    return str((con.get("contype") or {}).get("name", ""))


def _column_marks(schema: str, table: str, col: dict[str, Any]) -> set[Mark]:
    out: set[Mark] = set()
    datetime = _type_name(col.get("typeName")) in DATETIME_TYPES
    for con in _constraints(col.get("constraints")):
        kind, expr = _contype(con), con.get("raw_expr")
        if kind == "CONSTR_DEFAULT" and freezes(expr, bare_is_datetime=datetime):
            out.add(("default", schema, table, col.get("colname", "")))
        elif kind == "CONSTR_CHECK" and freezes(expr):
            out.add(("check", schema, table))
    return out


def frozen_marks(scripts: list[str], default_schema: str = "public") -> set[Mark]:
    """The views, column defaults and tables' CHECKs that these statements declare with a
    time value the server freezes."""
    out: set[Mark] = set()
    for text in scripts:
        try:
            stmts = pglast.parse_sql(text)
        except pglast.parser.ParseError:
            continue  # the server reports it, with its line
        for raw in stmts:
            out |= statement_marks(raw.stmt(skip_none=True), default_schema)
    return out


def statement_marks(stmt: dict[str, Any], default_schema: str = "public") -> set[Mark]:
    """What one statement (a pglast node as a dict) declares with a frozen time value."""
    out: set[Mark] = set()
    kind = stmt.get("@")
    if kind == "ViewStmt" and freezes(stmt.get("query")):
        out.add(("view", *_rel(stmt.get("view"), default_schema)))
    elif kind == "CreateTableAsStmt" and freezes(stmt.get("query")):
        out.add(("view", *_rel((stmt.get("into") or {}).get("rel"), default_schema)))
    elif kind == "CreateStmt":
        schema, table = _rel(stmt.get("relation"), default_schema)
        for elt in stmt.get("tableElts") or []:
            if elt.get("@") == "ColumnDef":
                out |= _column_marks(schema, table, elt)
            elif elt.get("@") == "Constraint" and _contype(elt) == "CONSTR_CHECK" \
                    and freezes(elt.get("raw_expr")):
                out.add(("check", schema, table))
    elif kind == "AlterTableStmt":
        schema, table = _rel(stmt.get("relation"), default_schema)
        for cmd in stmt.get("cmds") or []:
            sub = str((cmd.get("subtype") or {}).get("name", ""))
            node = cmd.get("def_")
            if sub == "AT_ColumnDefault" and freezes(node, bare_is_datetime=True):
                out.add(("default", schema, table, cmd.get("name", "")))
            elif sub == "AT_AddColumn" and isinstance(node, dict):
                out |= _column_marks(schema, table, node)
            elif sub == "AT_AddConstraint" and isinstance(node, dict) \
                    and _contype(node) == "CONSTR_CHECK" \
                    and freezes(node.get("raw_expr")):
                out.add(("check", schema, table))
    return out


def thawed(printed: str, head: str = "SELECT ") -> str:
    """``printed`` (a view's query, or with ``head`` an expression) with the values of
    its date/time literals left out: equal for two loads of one declaration."""
    try:
        stmts = pglast.parse_sql(head + printed)
    except pglast.parser.ParseError:
        return printed
    tree = [raw.stmt(skip_none=True) for raw in stmts]
    for node in _walk(tree):
        node.pop("location", None)
        if _is_datetime_literal(node):
            node["arg"]["val"]["sval"] = "?"
    return json.dumps(tree, sort_keys=True, separators=(",", ":"))
