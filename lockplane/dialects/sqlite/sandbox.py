"""Loading an untrusted SQLite schema script into an in-memory database.

SQLite has no server and no roles: the script runs in this process. SQLite's own
authorizer (asked for every action each statement compiles to) is the gate: schema
definitions pass; attaching or writing files (``ATTACH``, ``VACUUM INTO``), changing rows,
queries, and pragmas beyond a few harmless ones are refused with file:line and why.
Loading extensions is off in Python's sqlite3 unless enabled, and it is never enabled here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from ...errors import BadInput

# The tables a schema statement itself writes (its row in the schema table).
_SCHEMA_TABLES = frozenset({"sqlite_master", "sqlite_schema", "sqlite_temp_master",
                            "sqlite_temp_schema", "sqlite_sequence"})
# Pragmas that only set how this connection behaves.
_PRAGMAS = frozenset({"foreign_keys", "defer_foreign_keys", "recursive_triggers",
                      "encoding", "legacy_alter_table", "case_sensitive_like",
                      "journal_mode", "synchronous", "auto_vacuum", "page_size",
                      "user_version", "application_id"})

_REFUSED = {
    sqlite3.SQLITE_ATTACH: "it opens or writes a file (ATTACH, VACUUM INTO)",
    sqlite3.SQLITE_DETACH: "it detaches a database",
    sqlite3.SQLITE_SELECT: "it runs a query (CREATE TABLE ... AS SELECT included)",
    sqlite3.SQLITE_ANALYZE: "it is maintenance, not a definition",
}
_WRITES = (sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE)


class _Gate:
    def __init__(self) -> None:
        self.why: str | None = None

    def __call__(self, action: int, arg1: str | None, arg2: str | None,
                 db: str | None, trigger: str | None) -> int:
        why = _REFUSED.get(action)
        if action in _WRITES and arg1 not in _SCHEMA_TABLES:
            why = "it changes rows (DML)"
        elif action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() not in _PRAGMAS:
            why = f"PRAGMA {arg1} is not a schema definition"
        elif action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() == "load_extension":
            why = "it loads code into the process"
        if why is None:
            return sqlite3.SQLITE_OK
        self.why = why
        return sqlite3.SQLITE_DENY


def statements(text: str) -> list[tuple[int, str]]:
    """The script's complete statements with the line each starts on. SQLite's own
    ``complete_statement`` decides where one ends, asked at every ``;`` (not at line
    ends: two statements on one line are two, and a ``;`` in a string or a trigger's
    body ends nothing)."""
    out: list[tuple[int, str]] = []
    start = 0  # where the statement being read begins
    line, counted = 1, 0  # the line number at offset ``counted``

    def add(chunk_end: int) -> None:
        nonlocal line, counted
        chunk = text[start:chunk_end]
        body = len(chunk) - len(chunk.lstrip())
        if body == len(chunk):
            return
        line += text.count("\n", counted, start + body)
        counted = start + body
        out.append((line, chunk[body:]))

    pos = text.find(";")
    while pos != -1:
        if sqlite3.complete_statement(text[start:pos + 1]):
            add(pos + 1)
            start = pos + 1
        pos = text.find(";", pos + 1)
    rest = text[start:]
    if rest.strip() and not all(x.strip().startswith("--")
                                for x in rest.splitlines() if x.strip()):
        add(len(text))
    return out


def run_untrusted(conn: sqlite3.Connection, scripts: Sequence[tuple[str, str]],
                  lines: bool = True) -> None:
    gate = _Gate()
    conn.set_authorizer(gate)
    try:
        for where, text in scripts:
            for start, stmt in statements(text):
                at = f"{where}:{start}" if lines else where
                gate.why = None
                try:
                    conn.execute(stmt)
                except sqlite3.Error as exc:
                    if gate.why:
                        raise BadInput(f"{at}: not allowed in a schema file: {gate.why}; only "
                                       "statements that define schema objects are run") from None
                    raise BadInput(f"{at}: {exc}") from None
    finally:
        conn.set_authorizer(None)


_SCHEMA_TEXT = frozenset({"sqlite_master", "sqlite_schema", "sqlite_temp_master",
                          "sqlite_temp_schema"})
# Actions a query that only reads compiles to (a recursive WITH included).
_READS = frozenset({sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION,
                    getattr(sqlite3, "SQLITE_RECURSIVE", 33)})


def not_one_query(conn: sqlite3.Connection, sql: str) -> str | None:
    """Why ``sql`` is not one query that only reads, in words; None when it is. Asked of
    SQLite's authorizer while the statement is compiled (``EXPLAIN`` compiles it and
    runs nothing): ``DELETE ... RETURNING`` is a query to the driver, and a step's
    condition runs in the apply's own writable transaction."""
    said: list[str] = []

    def gate(action: int, arg1: str | None, arg2: str | None, db: str | None,
             trigger: str | None) -> int:
        if action in _READS and not (action == sqlite3.SQLITE_FUNCTION
                                     and (arg2 or "").lower() == "load_extension"):
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_UPDATE and arg1 in _SCHEMA_TEXT:
            # (SQLite asks this while it reads the schema in, for a table-valued pragma;
            # a statement cannot write the schema table without writable_schema)
            return sqlite3.SQLITE_OK
        said.append(_REFUSED.get(action) or ("it changes rows" if action in _WRITES else
                                             f"it does more than read (action {action})"))
        return sqlite3.SQLITE_DENY

    conn.set_authorizer(gate)
    try:
        conn.execute("EXPLAIN " + sql).fetchall()
    except sqlite3.ProgrammingError as exc:  # (more than one statement)
        return str(exc)
    except sqlite3.Error as exc:
        return said[0] if said else f"it does not compile ({exc})"
    finally:
        conn.set_authorizer(None)
    return said[0] if said else None
