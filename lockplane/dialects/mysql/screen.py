"""Screening an untrusted MySQL schema file before any of it runs.

Each statement is parsed with sqlglot's MySQL dialect and must be a schema definition in
the scratch database: CREATE/ALTER/DROP of tables, indexes and views, RENAME TABLE,
triggers (a body of SET, INSERT, UPDATE and DELETE statements, alone or in BEGIN ...
END), and session SET.
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
_EXECUTABLE = re.compile(r"/\*M?!(\d{0,6})")
# A version no server has: mysqldump's "/*M!999999\- enable the sandbox mode */" is for
# the mysql client, and the server skips it as a comment.
_NEVER = 999999


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
    lines_ = text.split("\n")
    for line_no, line in enumerate(lines_, 1):
        m = re.match(r"(?i)\s*delimiter\s+(\S+)\s*$", line)
        if m and set(m.group(1)) == {";"}:
            # mysqldump's DELIMITER ;; around triggers: a doubled semicolon ends the
            # statement all the same (the empty one after it is no statement).
            lines_[line_no - 1] = " " * len(line)
        elif m or re.match(r"(?i)\s*delimiter(\s|$)", line):
            raise BadInput(f"{at(line_no)}: DELIMITER is a command of the mysql client, not "
                           "SQL; a trigger's BEGIN ... END needs none here (end it with ;)")
    text = unwrap_executable_comments("\n".join(lines_), where)
    out = []
    saved: dict[str, str] = {}  # user variable -> the setting it holds a copy of
    for tokens in _split(_tokenize(text, where)):
        first, last = tokens[0], tokens[-1]
        head = _create_head(tokens, at(first.line))
        if head is not None and head[2] is not None:
            # DEFINER is skipped, as OWNER TO is on PostgreSQL: the object is created by
            # whoever loads or applies (accounts are not modelled).
            start, end = head[2]
            text = text[:start] + " " * (end - start) + text[end:]
        sql = text[first.start:last.end + 1]
        if head is not None and head[0] == "TRIGGER":
            _check_trigger(text, tokens, head[1], at(first.line))
        elif _word(first) == "RENAME":
            _check_rename(text, tokens, at(first.line))
        elif head is not None and head[0] == "VIEW":
            _check(_view_for_parser(text, tokens, head[1]), at(first.line), saved)
        else:
            _check(_ignored_for_parser(text, tokens), at(first.line), saved)
        out.append(Statement(sql=sql, line=first.line))
    return out


def _ignored_for_parser(text: str, tokens: list[Token]) -> str:
    """The statement as sqlglot reads it: MariaDB's index attribute [NOT] IGNORED (what
    mariadb-dump and SHOW CREATE TABLE write) spelled as MySQL's [IN]VISIBLE, the same
    attribute, which sqlglot parses. Only the word after an index's column list, its
    COMMENT or ALTER INDEX name; elsewhere (a column named ignored) it stays."""
    first, last = tokens[0], tokens[-1]
    pieces, at = [], first.start
    for i, tok in enumerate(tokens):
        if tok.token_type is TokenType.IDENTIFIER or _word(tok) != "IGNORED" or i < 2:
            continue
        j = i - 1 if _word(tokens[i - 1]) == "NOT" else i
        before = tokens[j - 1]
        if not (before.token_type in (TokenType.R_PAREN, TokenType.STRING)
                or j >= 3 and [_word(t) for t in tokens[j - 3:j - 1]] == ["ALTER", "INDEX"]):
            continue
        pieces += [text[at:tokens[j].start], "VISIBLE" if j < i else "INVISIBLE"]
        at = tok.end + 1
    return "".join(pieces) + text[at:last.end + 1]


_VIEW_ALGORITHMS = {"UNDEFINED", "MERGE", "TEMPTABLE"}
_ACCOUNT_TOKENS = {TokenType.IDENTIFIER, TokenType.VAR, TokenType.STRING, TokenType.PARAMETER,
                   TokenType.L_PAREN, TokenType.R_PAREN, TokenType.CURRENT_USER,
                   TokenType.NUMBER, TokenType.DOT}
_SECURITY = {"DEFINER", "INVOKER"}


def _word(tok: Token) -> str:
    return "" if tok.token_type is TokenType.IDENTIFIER else tok.text.upper()


def _create_head(tokens: list[Token],
                 where: str) -> tuple[str, int, tuple[int, int] | None] | None:
    """For CREATE [OR REPLACE] [ALGORITHM = a] [DEFINER = user] [SQL SECURITY s] VIEW and
    CREATE [OR REPLACE] [DEFINER = user] TRIGGER, which sqlglot does not parse whole:
    ("VIEW" | "TRIGGER", index of that word, the DEFINER clause's span in the text or
    None). Their heads are fixed words, checked here token by token."""
    words = [_word(t) for t in tokens] + ["", "", ""]
    if words[0] != "CREATE":
        return None
    i = 1
    if words[1:3] == ["OR", "REPLACE"]:
        i = 3
    definer: tuple[int, int] | None = None
    while True:
        if words[i] == "ALGORITHM" and tokens[i + 1].token_type is TokenType.EQ \
                and words[i + 2] in _VIEW_ALGORITHMS:
            i += 3
        elif words[i:i + 2] == ["SQL", "SECURITY"] and words[i + 2] in _SECURITY:
            i += 3
        elif " ".join(words[i].split()) == "SQL SECURITY" and words[i + 1] in _SECURITY:
            i += 2  # one token to sqlglot's tokenizer
        elif words[i] == "DEFINER" and definer is None \
                and tokens[i + 1].token_type is TokenType.EQ and i + 2 < len(tokens):
            # user@host, 'user'@'host', CURRENT_USER[()]: one run of adjacent tokens
            j = i + 2
            while j + 1 < len(tokens) and tokens[j + 1].start == tokens[j].end + 1 \
                    and tokens[j + 1].token_type in _ACCOUNT_TOKENS:
                j += 1
            definer = (tokens[i].start, tokens[j].end + 1)
            i = j + 1
        else:
            break
    if words[i] in ("VIEW", "TRIGGER"):
        return words[i], i, definer
    if definer is not None:
        raise BadInput(f"{where}: refused: DEFINER belongs to views and triggers here")
    return None


def _view_for_parser(text: str, tokens: list[Token], at: int) -> str:
    """The view as sqlglot reads it: without the head options and WITH ... CHECK OPTION
    (fixed words, checked), which its MySQL dialect does not parse."""
    end = len(tokens)
    tail = [_word(t) for t in tokens[-4:]]
    if tail[-2:] == ["CHECK", "OPTION"]:
        end -= 3 if tail[-3] == "WITH" else 4 if tail[-4] == "WITH" \
            and tail[-3] in ("CASCADED", "LOCAL") else 0
    return "CREATE VIEW " + text[tokens[at + 1].start:tokens[end - 1].end + 1]


def _check_trigger(text: str, tokens: list[Token], at: int, where: str) -> None:
    """CREATE TRIGGER name {BEFORE|AFTER} {INSERT|UPDATE|DELETE} ON table FOR EACH ROW
    [{FOLLOWS|PRECEDES} other] body: the head word by word, the body (one statement; a
    BEGIN ... END block needs DELIMITER) parsed by sqlglot. The body never runs while the
    schema loads: the file changes no rows."""
    words = [_word(t) for t in tokens] + [""] * 10
    i = at + 1
    if words[i:i + 3] == ["IF", "NOT", "EXISTS"]:
        i += 3

    def name(j: int) -> bool:
        return _plain_name(tokens, j)

    ok = (name(i) and words[i + 1] in ("BEFORE", "AFTER")
          and words[i + 2] in ("INSERT", "UPDATE", "DELETE") and words[i + 3] == "ON"
          and name(i + 4) and words[i + 5:i + 8] == ["FOR", "EACH", "ROW"])
    if not ok:
        raise BadInput(f"{where}: refused: not a trigger Lockplane can read (CREATE TRIGGER "
                       "name BEFORE|AFTER INSERT|UPDATE|DELETE ON table FOR EACH ROW "
                       "statement, names in this database)")
    i += 8
    if words[i] in ("FOLLOWS", "PRECEDES"):
        if not name(i + 1):
            raise BadInput(f"{where}: refused: {words[i]} names no trigger")
        i += 2
    if i >= len(tokens):
        raise BadInput(f"{where}: refused: the trigger has no body")
    if words[i] == "BEGIN":
        # BEGIN statement; ... END: each statement one this check accepts alone
        if words[len(tokens) - 1] != "END":
            raise BadInput(f"{where}: refused: the trigger's BEGIN has no END")
        for part in _split(tokens[i + 1:len(tokens) - 1]):
            if _word(part[0]) in ("BEGIN", "DECLARE", "IF", "WHILE", "LOOP", "REPEAT",
                                  "CASE", "LEAVE", "ITERATE", "RETURN") \
                    or (len(part) > 1 and part[1].token_type is TokenType.COLON):
                raise BadInput(f"{where}: refused: a trigger's BEGIN ... END holds SET, "
                               f"INSERT, UPDATE and DELETE statements only (not "
                               f"{_word(part[0]) or 'a label'})")
            _check_trigger_statement(text[part[0].start:part[-1].end + 1], where)
        return
    _check_trigger_statement(text[tokens[i].start:tokens[-1].end + 1], where)


def _check_trigger_statement(body: str, where: str) -> None:
    tree = _parse(body, where)
    if not isinstance(tree, exp.Set | exp.Insert | exp.Update | exp.Delete):
        raise BadInput(f"{where}: refused: a trigger body here is SET, INSERT, UPDATE or "
                       f"DELETE statements (not {tree.key.upper()})")
    why = _names_elsewhere(tree)
    if why:
        raise BadInput(f"{where}: refused: {why}")


def _tokenize(text: str, where: str) -> list[Token]:
    try:
        return MySQL().tokenize(text)
    except TokenError as exc:
        raise BadInput(f"{where}: cannot read the file as MySQL SQL: "
                       f"{str(exc).splitlines()[0]}") from None


# Words after END that close a block not opened by BEGIN or CASE (END IF, END LOOP ...).
_END_OF_OTHER = {"IF", "LOOP", "WHILE", "REPEAT"}


def _split(tokens: list[Token]) -> list[list[Token]]:
    """Statements at semicolons, except inside the BEGIN ... END body of a CREATE
    TRIGGER (a compound statement the server reads as one, as the mysql client sends it
    after DELIMITER): there BEGIN and CASE open a block, END closes one."""
    out: list[list[Token]] = []
    cur: list[Token] = []
    depth = 0
    trigger = False
    for i, tok in enumerate(tokens):
        word = _word(tok)
        if tok.token_type is TokenType.SEMICOLON and depth == 0:
            if cur:
                out.append(cur)
            cur, trigger = [], False
            continue
        if not cur:
            trigger = False
        elif word == "TRIGGER" and _word(cur[0]) == "CREATE":
            trigger = True
        if trigger:
            if word in ("BEGIN", "CASE"):
                depth += 1
            elif word == "END" and depth and (
                    i + 1 >= len(tokens) or _word(tokens[i + 1]) not in _END_OF_OTHER):
                depth -= 1
        cur.append(tok)
    if cur:
        out.append(cur)
    return out


def _plain_name(tokens: list[Token], j: int) -> bool:
    """tokens[j] is one name in this database (not ``db.name``)."""
    tok = tokens[j] if j < len(tokens) else None
    return tok is not None and (tok.token_type is TokenType.IDENTIFIER
                                or re.fullmatch(r"\w+", tok.text) is not None) \
        and (j + 1 >= len(tokens) or tokens[j + 1].token_type is not TokenType.DOT)


def _check_rename(text: str, tokens: list[Token], where: str) -> None:
    """RENAME TABLE a TO b [, c TO d ...], every name in this database. (sqlglot's
    tokenizer reads what follows RENAME as one string: it is read again here.)"""
    tokens = [tokens[0], *_tokenize(text[tokens[0].end + 1:tokens[-1].end + 1], where)]
    words = [_word(t) for t in tokens]
    i = 2
    ok = words[:2] == ["RENAME", "TABLE"]
    while ok:
        ok = _plain_name(tokens, i) and i + 2 < len(tokens) and words[i + 1] == "TO" \
            and _plain_name(tokens, i + 2)
        i += 3
        if not ok or i >= len(tokens):
            break
        ok = tokens[i].token_type is TokenType.COMMA
        i += 1
    if not ok:
        raise BadInput(f"{where}: refused: not a RENAME TABLE Lockplane can read (RENAME "
                       "TABLE a TO b [, c TO d], names in this database)")


def unwrap_executable_comments(text: str, where: str) -> str:
    """The text with ``/*!NNNNN`` / ``/*M!NNNNNN`` openers and their ``*/`` blanked out
    (same length: line numbers and offsets hold). Only comments count, found between the
    tokens sqlglot's tokenizer reads; the same marker inside a string is left alone.

    A ``--`` comment followed by a character that is not ASCII is blanked whole: sqlglot
    ends such a comment's boundary test with Python's ``isspace`` (U+00A0, U+0085, U+3000
    ... pass it), the server with ASCII blanks and control characters only, so the server
    would run as code what the screen read as a comment. Blank, both read nothing there."""
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
            if m and not (m.group(1) and int(m.group(1)) >= _NEVER):
                spans += [(i, m.end()), (close, close + 2)]
            i = close + 2
        elif text.startswith("#", i) or text.startswith("--", i):
            nl = text.find("\n", i)
            stop = end if nl < 0 else nl
            if text.startswith("--", i) and i + 2 < stop and ord(text[i + 2]) > 127:
                spans.append((i, stop))
            i = stop + 1
        else:
            i += 1
    return spans


def _parse(sql: str, where: str) -> exp.Expression:
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
    if isinstance(tree, exp.Command):
        head = " ".join(str(tree.this).split()[:1] + _words(tree.expression, 1))
        raise BadInput(f"{where}: refused: sqlglot cannot parse this {head.upper()} "
                       "statement, and a statement that cannot be read is not run")
    return tree


def _check(sql: str, where: str, saved: dict[str, str]) -> None:
    tree = _parse(sql, where)
    why = _setting_refusal(tree, saved) if isinstance(tree, exp.Set) else _refusal(tree)
    if why:
        raise BadInput(f"{where}: refused: {why}")


def _refusal(tree: exp.Expression) -> str | None:
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
    else:
        return (f"{tree.key.upper()} is not a schema definition (only CREATE, ALTER and "
                "DROP of tables, indexes and views, and session SET)")
    why = _names_elsewhere(tree)
    if why:
        return why
    for node in tree.walk():
        if isinstance(node, exp.EngineProperty):
            engine = node.this.name if isinstance(node.this, exp.Expression) \
                else str(node.this)
            if engine.lower() not in ENGINES:
                return (f"ENGINE={engine}: only engines that keep tables in the server's "
                        f"own files ({', '.join(sorted(ENGINES))})")
        if isinstance(node, exp.Query) and not isinstance(tree, exp.Create):
            return "a query inside a table change"
    return None


def _names_elsewhere(tree: exp.Expression) -> str | None:
    for node in tree.walk():
        if isinstance(node, exp.Table | exp.Column) and node.args.get("db") is not None:
            return (f"{node.sql(dialect='mysql')} names another database; a schema file "
                    "defines objects in the target's own")
    return None


def _setting_refusal(tree: exp.Set, saved: dict[str, str]) -> str | None:
    """Session settings only, with values that keep the text reading as the screen read
    it: no ANSI_QUOTES or NO_BACKSLASH_ESCAPES in sql_mode, no character set whose
    multi-byte characters can hide a quote or backslash. A user variable may hold a copy
    of a setting (@OLD_SQL_MODE = @@SQL_MODE) or a literal; a setting may be given back
    the copy of itself."""
    for item in tree.expressions:
        kind = str(item.args.get("kind") or "").upper()
        if kind in ("GLOBAL", "PERSIST", "PERSIST_ONLY"):
            return f"SET {kind} changes the server for everyone"
        if kind in ("NAMES", "CHARACTER SET"):
            why = _charset_refusal(item.this)
            if why:
                return why
            continue
        if not isinstance(item.this, exp.EQ):
            return f"SET {item.sql(dialect='mysql')} is not a setting a schema file may make"
        target, value = item.this.this, item.this.expression
        if isinstance(target, exp.Parameter):  # a user variable (@x)
            if isinstance(value, exp.SessionParameter):
                saved[target.name.lower()] = _setting_name(value)
            elif isinstance(value, exp.Literal):
                saved.pop(target.name.lower(), None)
            else:
                return (f"SET @{target.name}: a user variable here holds a literal or a "
                        "copy of a setting")
            continue
        name = _setting_name(target)
        if name not in SETTINGS:
            return f"SET {name or item.sql(dialect='mysql')} is not a session setting a " \
                "schema file may change"
        if isinstance(value, exp.Parameter):
            if saved.get(value.name.lower()) != name:
                return (f"SET {name} = @{value.name}: a setting may be given back only the "
                        "copy of itself saved in this file")
            continue
        if isinstance(value, exp.Var) and value.name.upper() == "DEFAULT":
            if name == "sql_mode" or name in _CHARSET_SETTINGS:
                return (f"SET {name} = DEFAULT takes the server's global value, which the "
                        "check cannot see")
            continue
        if not isinstance(value, exp.Literal | exp.Var):
            return f"SET {name}: the value is a literal here"
        if name == "sql_mode":
            modes = {m.strip().upper() for m in value.name.split(",")}
            bad = sorted(modes & _READING_MODES)
            if bad:
                return (f"sql_mode {bad[0]} changes how the server reads the file's text "
                        "(quotes, backslashes) from how it was checked")
        elif name in _CHARSET_SETTINGS:
            why = _charset_refusal(value)
            if why:
                return why
        elif name in ("default_storage_engine", "storage_engine") \
                and value.name.lower() not in ENGINES:
            # Tables created without ENGINE= would get it: the same list as ENGINE=.
            return (f"SET {name} = {value.name}: only engines that keep tables in the "
                    f"server's own files ({', '.join(sorted(ENGINES))})")
    return None


# sql_mode flags under which the server splits the text into tokens differently.
_READING_MODES = {"ANSI_QUOTES", "NO_BACKSLASH_ESCAPES", "ANSI"}


def session_refusal(sql_mode: str, charsets: list[str]) -> str | None:
    """Why a session whose settings the server reports as these no longer reads the text
    as the screen did, else None. Asked of the server after each SET a file runs: a
    combined mode (ORACLE, POSTGRESQL, MSSQL, DB2, MAXDB ...) brings ANSI_QUOTES with it
    under a name the screen does not see, and ORACLE swaps in another grammar."""
    modes = {m.strip().upper() for m in sql_mode.split(",") if m.strip()}
    bad = sorted(modes & (_READING_MODES | {"ORACLE"}))
    if bad:
        return (f"the server's sql_mode became {sql_mode}: {bad[0]} changes how the server "
                "reads the file's text (quotes, backslashes, grammar) from how it was "
                "checked")
    for charset in charsets:
        why = _charset_refusal(exp.Var(this=charset))
        if why:
            return why
    return None
_CHARSET_SETTINGS = {"character_set_client", "character_set_connection",
                     "character_set_results", "collation_connection"}
# Character sets in which no byte of a multi-byte character is a quote or a backslash.
SAFE_CHARSETS = frozenset({"utf8", "utf8mb3", "utf8mb4", "latin1", "ascii", "binary"})


def _setting_name(node: exp.Expression) -> str:
    name = node.name.lower()
    return name.removeprefix("@@").removeprefix("session.")


def _charset_refusal(node: exp.Expression | None) -> str | None:
    value = node.name.lower() if isinstance(node, exp.Expression) else ""
    if value == "default":
        return None
    charset = value.split("_", 1)[0] if value not in SAFE_CHARSETS else value
    if charset not in SAFE_CHARSETS:
        return (f"character set {value or '?'}: a schema file's text is read as one of "
                f"{', '.join(sorted(SAFE_CHARSETS))}")
    return None


def _words(node: object, n: int) -> list[str]:
    text = node.name if isinstance(node, exp.Expression) else str(node or "")
    return text.split()[:n]


def _first_line(exc: Exception) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    return text.strip().splitlines()[0] if text.strip() else exc.__class__.__name__
