"""Options that reach SQL (``--set``, ``--where``, ``--to-type``) on SQLite.

They are checked with PostgreSQL's parser (lockplane/optsql.py) and must also stay in
the lexical subset on which SQLite's lexer and PostgreSQL's agree; a type name is
checked by SQLite itself.
"""

from __future__ import annotations

import sqlite3

from pglast.parser import ParseError, scan

from ...errors import BadInput
from ...optsql import _parse_message

# Tokens SQLite's lexer reads differently from PostgreSQL's (see the module docstring).
_REFUSED_TOKENS = {
    "C_COMMENT": "a comment", "SQL_COMMENT": "a comment", "USCONST": "a U&'' string",
    "BCONST": "a B'' bit string", "XCONST": "an X'' string", "UIDENT": "a U&\"\" identifier",
    "PARAM": "a $n parameter", "ASCII_58": "':'", "ASCII_91": "'['", "ASCII_93": "']'",
    "ASCII_63": "'?'", "TYPECAST": "'::' (write CAST(x AS type))",
}


def refuse_lexer_differences(what: str, text: str) -> None:
    """Refuse tokens SQLite's lexer would read differently from PostgreSQL's."""
    try:
        tokens = scan(text)
    except ParseError as exc:
        raise BadInput(f"{what}: {_parse_message(exc)}") from None
    for tok in tokens:
        src = text[tok.start:tok.end + 1]
        refused = _REFUSED_TOKENS.get(tok.name)
        if tok.name == "SCONST" and not src.startswith("'"):
            refused = "a dollar-quoted or E'' string (write a plain '...' string)"
        elif tok.name == "Op" and any(c in src for c in "@#?$`"):
            refused = f"the operator {src!r}"
        elif tok.name in ("IDENT", "Op") and "$" in src:
            refused = f"{src!r} ('$' starts a parameter in SQLite)"
        if refused:
            raise BadInput(f"{what}: {refused} is not allowed in an option for SQLite (its "
                           "lexer differs from PostgreSQL's there)")


def check_type_name(text: str, what: str) -> str:
    # SQLite's own parser: declare one column of that type in a private in-memory
    # database; anything beyond a type name shows as a declared type that is not the
    # text, a second column, or a second statement.
    stmt = f"CREATE TABLE x (c {text})"
    if not sqlite3.complete_statement(stmt + ";"):
        raise BadInput(f"{what}: not one type name (an unclosed quote, comment or '(')")
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute(stmt)
        objects = conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0]
        cols = conn.execute("PRAGMA table_xinfo(x)").fetchall()
    except (sqlite3.Error, sqlite3.Warning) as exc:
        raise BadInput(f"{what}: {exc}") from None
    finally:
        conn.close()
    if objects != 1 or len(cols) != 1 or cols[0][1] != "c" \
            or cols[0][2].casefold() != text.strip().casefold() \
            or cols[0][3] or cols[0][4] is not None or cols[0][5]:
        raise BadInput(f"{what}: exactly one type name expected")
    return text.strip()
