"""Screening an untrusted MySQL schema file before any of it runs.

Each statement is parsed with sqlglot's MySQL dialect and must be a schema definition in
the scratch database: CREATE/ALTER/DROP of tables, indexes and views, and session SET.
Anything else (rows, users, grants, other databases, files, server settings, engines that
reach outside the server) is refused with file:line and why; so is any statement sqlglot
cannot parse (it would fall back to an unparsed "command": we cannot tell what it does).

Executable comments (``/*!40101 ... */``, MariaDB's ``/*M!100101 ... */``) are code to
the server: they are unwrapped first, so the screen reads what the server would run, and
the unwrapped text is what runs. Each statement is then sent alone, on a connection that
refuses several statements in one string, as the sandbox's throwaway user (the second
line of defence: it may touch nothing but the scratch database).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.dialects.mysql import MySQL
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import Token, TokenType

from ...errors import BadInput

# Storage engines whose tables live in the server's own data files. Others reach outside
# it (FEDERATED/SPIDER: other servers; CONNECT: files and ODBC sources).
ENGINES = frozenset({"innodb", "myisam", "aria", "memory", "heap", "archive"})
# Session settings a schema file may set (mysqldump writes most of these).
SETTINGS = frozenset({
    "names", "character_set_client", "character_set_results", "character_set_connection",
    "collation_connection", "foreign_key_checks", "unique_checks", "sql_mode",
    "time_zone", "sql_notes", "sql_quote_show_create", "check_constraint_checks",
    "default_storage_engine", "storage_engine", "innodb_strict_mode",
})
_CREATE_KINDS = {"TABLE", "INDEX", "VIEW"}
_DROP_KINDS = {"TABLE", "INDEX", "VIEW", "TRIGGER"}
_EXECUTABLE = re.compile(r"/\*M?!\d{0,6}")


@dataclass(frozen=True)
class Statement:
    sql: str
    line: int


def screen(text: str, where: str, *, lines: bool = True) -> list[Statement]:
    """The file's statements, each checked; BadInput names the first one refused."""
    def at(line: int) -> str:
        return f"{where}:{line}" if lines else where

    if "\x00" in text:
        raise BadInput(f"{where}: the file contains a NUL byte")
    for line_no, line in enumerate(text.split("\n"), 1):
        if re.match(r"(?i)\s*delimiter\s", line):
            raise BadInput(f"{at(line_no)}: DELIMITER is a command of the mysql client, not "
                           "SQL; compound statements (BEGIN ... END) are not supported in "
                           "schema files yet")
    text = unwrap_executable_comments(text, where)
    out = []
    for tokens in _split(_tokenize(text, where)):
        first, last = tokens[0], tokens[-1]
        sql = text[first.start:last.end + 1]
        _check(sql, at(first.line))
        out.append(Statement(sql=sql, line=first.line))
    return out


def _tokenize(text: str, where: str) -> list[Token]:
    try:
        return MySQL().tokenize(text)
    except TokenError as exc:
        raise BadInput(f"{where}: cannot read the file as MySQL SQL: "
                       f"{str(exc).splitlines()[0]}") from None


def _split(tokens: list[Token]) -> list[list[Token]]:
    out: list[list[Token]] = []
    cur: list[Token] = []
    for tok in tokens:
        if tok.token_type is TokenType.SEMICOLON:
            if cur:
                out.append(cur)
            cur = []
        else:
            cur.append(tok)
    if cur:
        out.append(cur)
    return out


def unwrap_executable_comments(text: str, where: str) -> str:
    """The text with ``/*!NNNNN`` / ``/*M!NNNNNN`` openers and their ``*/`` blanked out
    (same length: line numbers and offsets hold). Only comments count, found between the
    tokens sqlglot's tokenizer reads; the same marker inside a string is left alone."""
    for _ in range(2):  # the server does not nest them: one pass unwraps all, one checks
        tokens = _tokenize(text, where)
        spans: list[tuple[int, int]] = []
        prev_end = 0
        for tok in [*tokens, None]:
            gap_end = tok.start if tok is not None else len(text)
            spans += _executable_in_gap(text, prev_end, gap_end)
            if tok is not None:
                prev_end = tok.end + 1
        if not spans:
            return text
        chars = list(text)
        for start, end in spans:
            for i in range(start, end):
                if chars[i] != "\n":
                    chars[i] = " "
        text = "".join(chars)
    raise BadInput(f"{where}: nested executable comments (/*! ... */)")


def _executable_in_gap(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Spans to blank (opener, closer) of executable comments in text[start:end], which
    holds only whitespace and comments."""
    spans = []
    i = start
    while i < end:
        if text.startswith("/*", i):
            close = text.find("*/", i + 2)
            close = end - 2 if close < 0 else close
            m = _EXECUTABLE.match(text, i)
            if m:
                spans += [(i, m.end()), (close, close + 2)]
            i = close + 2
        elif text.startswith("#", i) or text.startswith("--", i):
            nl = text.find("\n", i)
            i = end if nl < 0 else nl + 1
        else:
            i += 1
    return spans


def _check(sql: str, where: str) -> None:
    root = logging.getLogger("sqlglot")
    level = root.level
    root.setLevel(logging.ERROR)  # its "falling back to Command" warning is ours to say
    try:
        tree = sqlglot.parse_one(sql, read="mysql")
    except (ParseError, TokenError) as exc:
        raise BadInput(f"{where}: sqlglot cannot parse this statement, so it is not run "
                       f"({_first_line(exc)})") from None
    finally:
        root.setLevel(level)
    why = _refusal(tree)
    if why:
        raise BadInput(f"{where}: refused: {why}")


def _refusal(tree: exp.Expression) -> str | None:
    if isinstance(tree, exp.Command):
        head = " ".join(str(tree.this).split()[:1] + _words(tree.expression, 1))
        return (f"sqlglot cannot parse this {head.upper()} statement, and a statement "
                "that cannot be read is not run")
    if isinstance(tree, exp.Create):
        kind = str(tree.args.get("kind") or "").upper()
        if kind not in _CREATE_KINDS:
            return f"CREATE {kind} is not a table, index or view definition"
        if kind == "TABLE" and isinstance(tree.expression, exp.Query):
            return "CREATE TABLE ... AS SELECT copies rows; a schema file defines tables"
    elif isinstance(tree, exp.Alter):
        if str(tree.args.get("kind") or "").upper() != "TABLE":
            return f"ALTER {tree.args.get('kind')} is not a table change"
    elif isinstance(tree, exp.Drop):
        kind = str(tree.args.get("kind") or "").upper()
        if kind not in _DROP_KINDS:
            return f"DROP {kind} is not allowed in a schema file"
    elif isinstance(tree, exp.Set):
        return _setting_refusal(tree)
    else:
        return (f"{tree.key.upper()} is not a schema definition (only CREATE, ALTER and "
                "DROP of tables, indexes and views, and session SET)")
    for node in tree.walk():
        if isinstance(node, exp.Table | exp.Column) and node.args.get("db") is not None:
            return (f"{node.sql(dialect='mysql')} names another database; a schema file "
                    "defines objects in the target's own")
        if isinstance(node, exp.EngineProperty):
            engine = node.this.name if isinstance(node.this, exp.Expression) \
                else str(node.this)
            if engine.lower() not in ENGINES:
                return (f"ENGINE={engine}: only engines that keep tables in the server's "
                        f"own files ({', '.join(sorted(ENGINES))})")
        if isinstance(node, exp.Query) and not isinstance(tree, exp.Create):
            return "a query inside a table change"
    return None


def _setting_refusal(tree: exp.Set) -> str | None:
    for item in tree.expressions:
        kind = str(item.args.get("kind") or "").upper()
        if kind in ("GLOBAL", "PERSIST", "PERSIST_ONLY"):
            return f"SET {kind} changes the server for everyone"
        if kind in ("NAMES", "CHARACTER SET"):
            continue
        target = item.this.this if isinstance(item.this, exp.EQ) else item.this
        if isinstance(target, exp.Parameter):
            continue  # a user variable (@x): nothing outside this session
        name = target.name.lower() if isinstance(target, exp.Expression) else ""
        if name.startswith("@@"):
            name = name[2:]
        name = name.removeprefix("session.")
        if name not in SETTINGS:
            return f"SET {name or item.sql(dialect='mysql')} is not a session setting a " \
                "schema file may change"
    return None


def _words(node: object, n: int) -> list[str]:
    text = node.name if isinstance(node, exp.Expression) else str(node or "")
    return text.split()[:n]


def _first_line(exc: Exception) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    return text.strip().splitlines()[0] if text.strip() else exc.__class__.__name__
