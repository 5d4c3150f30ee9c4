"""Option SQL (``--set``, ``--where``) on MySQL / MariaDB, checked with sqlglot's MySQL
grammar, the parser the schema-file screen uses (:mod:`.screen`); PostgreSQL's parser
would read MySQL's backquotes, backslash escapes and ``#`` comments differently.

A value or condition lands in parentheses inside a statement Lockplane builds
(``UPDATE t SET c = (<expr>) WHERE k > %s AND (<where>)``). Each is checked in three
steps, and what runs is exactly the text checked:

1. **tokens** (sqlglot's MySQL lexer, which reads backslash escapes as the backfill
   sessions do): no comment of any kind (``#``, ``-- ``, ``/* */`` and the executable
   ``/*! */``: one could hide or widen a condition), no ``;``, parentheses balanced
   and never closing more than the option opened, no user or system variable
   (``@x``, ``@@x``, ``:=`` assigns one), no ``?`` placeholder, no double-quoted text
   (a string by default, a name under ANSI_QUOTES: write ``'text'`` or ```name```);
2. **shape**: ``SELECT (<text>\\n)`` parses to exactly one SELECT of exactly one
   expression and nothing else, with no part sqlglot could not read (``Command``);
3. **content**: no ``FOR UPDATE`` / ``LOCK IN SHARE MODE`` or ``INTO`` in a subquery, no
   statement other than SELECT, no ``DEFAULT``, and no call to a built-in with effects
   beyond its value (sleeping, named locks, files, sequences, replication waits,
   ``LAST_INSERT_ID(x)``). A stored function's effects cannot be known from its name:
   those are contained by the read-only checks and the trial on a scratch copy.
"""

from __future__ import annotations

import logging
import re

import sqlglot
from sqlglot import exp
from sqlglot.dialects.mysql import MySQL
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import Token, TokenType

from ...errors import BadInput

# Built-ins with effects beyond computing a value (MySQL 8, MariaDB 10.11).
SIDE_EFFECT_FUNCTIONS = frozenset({
    "sleep", "benchmark", "get_lock", "release_lock", "release_all_locks", "is_free_lock",
    "is_used_lock", "load_file", "master_pos_wait", "source_pos_wait", "master_gtid_wait",
    "wait_for_executed_gtid_set", "wait_until_sql_thread_after_gtids", "nextval",
    "setval", "lastval", "last_insert_id", "sys_exec", "sys_eval", "uuid_short",
    "name_const", "set_user_var", "sequence_next", "row_count", "found_rows",
})
_REFUSED_TOKENS = {
    TokenType.PARAMETER: "a user variable (@name) is not allowed",
    TokenType.SESSION_PARAMETER: "a system variable (@@name) is not allowed",
    TokenType.COLON_EQ: "':=' assigns a variable; not allowed",
    TokenType.PLACEHOLDER: "a '?' placeholder is not allowed (write the value)",
    TokenType.SEMICOLON: "one expression expected, not statements (';')",
}


def _tokens(text: str, what: str) -> list[Token]:
    try:
        tokens = MySQL().tokenize(text)
    except TokenError as exc:
        raise BadInput(f"{what}: cannot read it as MySQL SQL ({_first(exc)})") from None
    if not tokens:
        raise BadInput(f"{what}: empty expression")
    depth = 0
    for tok in tokens:
        if tok.comments:
            raise BadInput(f"{what}: comments are not allowed in an option (one could hide "
                           "or widen a condition)")
        why = _REFUSED_TOKENS.get(tok.token_type)
        if why:
            raise BadInput(f"{what}: {why}")
        if tok.token_type is TokenType.STRING and text[tok.start] == '"':
            raise BadInput(f"{what}: double-quoted text is a string or a name depending on "
                           "sql_mode: write 'text' or `name`")
        if tok.token_type is TokenType.L_PAREN:
            depth += 1
        elif tok.token_type is TokenType.R_PAREN:
            depth -= 1
            if depth < 0:
                raise BadInput(f"{what}: unbalanced ')', it closes a parenthesis the option "
                               "did not open")
    if depth:
        raise BadInput(f"{what}: unbalanced '(', it is not closed")
    return tokens


def _first(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _parse(sql: str, what: str) -> list[exp.Expression | None]:
    log = logging.getLogger("sqlglot")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        return sqlglot.parse(sql, read="mysql")
    except (ParseError, TokenError) as exc:
        raise BadInput(f"{what}: not one MySQL expression ({_first(exc)})") from None
    finally:
        log.setLevel(level)


def _check_content(what: str, root: exp.Expression, calls: bool) -> None:
    for node in root.walk():
        if isinstance(node, exp.Command):
            raise BadInput(f"{what}: part of it cannot be read by the parser, so it is "
                           "not run")
        if isinstance(node, exp.Lock):
            raise BadInput(f"{what}: a subquery with FOR UPDATE / LOCK IN SHARE MODE takes "
                           "row locks; not allowed")
        if isinstance(node, exp.Into):
            raise BadInput(f"{what}: SELECT ... INTO writes; not allowed")
        if isinstance(node, exp.DML | exp.DDL) or (
                isinstance(node, exp.Query) and not isinstance(node, exp.Select | exp.Union
                                                               | exp.Subquery)):
            raise BadInput(f"{what}: contains a {node.key.upper()} statement; only an "
                           "expression that reads is allowed")
        if isinstance(node, exp.Var) and node.name.upper() == "DEFAULT":
            raise BadInput(f"{what}: DEFAULT is not an expression a backfill can compute")
        if isinstance(node, exp.Column) and node.name.upper() == "DEFAULT" \
                and not node.this.args.get("quoted"):
            raise BadInput(f"{what}: DEFAULT is not an expression a backfill can compute")
        if calls and isinstance(node, exp.Func):
            name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name())
            if name.lower() in SIDE_EFFECT_FUNCTIONS:
                raise BadInput(f"{what}: calls {name.upper()}(), which has side effects; an "
                               "option may only compute values")


def _one_expression(text: str, what: str) -> exp.Expression:
    """The tree of ``text`` read as exactly one MySQL expression (tokens and shape
    checked, content not yet)."""
    if not text or not text.strip():
        raise BadInput(f"{what}: empty expression")
    _tokens(text, what)
    sql = f"SELECT ({text}\n)"
    trees = _parse(sql, what)
    tree = trees[0] if len(trees) == 1 else None
    if not isinstance(tree, exp.Select) or len(tree.expressions) != 1 or any(
            v for k, v in tree.args.items() if k not in ("expressions", "kind")):
        raise BadInput(f"{what}: exactly one expression expected")
    item = tree.expressions[0]
    if not isinstance(item, exp.Paren):
        raise BadInput(f"{what}: exactly one expression expected")
    return item


def expression(text: str, what: str, *, calls: bool = True) -> str:
    """Exactly one MySQL value expression (or condition: MySQL's are the same), checked;
    the text to run."""
    _check_content(what, _one_expression(text, what), calls)
    return text.strip()


def row_columns(text: str, what: str, table: str) -> set[str]:
    """The (case-folded) columns of the row that the expression ``text`` names outside
    its subqueries (a declared fill, lockplane/fill.py); bad input for a name qualified
    by another table or by a database. Tokens and shape checked as :func:`expression`."""
    out: set[str] = set()

    def visit(node: exp.Expression) -> None:
        if isinstance(node, exp.Query | exp.Subquery):
            return  # its names are its own tables' (x IN (SELECT ...): x is visited)
        if isinstance(node, exp.Column):
            parts = [p.name for p in node.parts]
            if isinstance(node.this, exp.Star):
                raise BadInput(f"{what}: {node.sql(dialect='mysql')} is not a column of "
                               f"{table}")
            if len(parts) > 2 or (len(parts) == 2 and parts[0].casefold()
                                  != table.casefold()):
                raise BadInput(f"{what}: {'.'.join(parts)}: only the row's own columns "
                               f"(of {table}) may be named outside a subquery")
            out.add(parts[-1].casefold())
            return
        for child in node.iter_expressions():
            visit(child)

    visit(_one_expression(text, what))
    return out


def condition(text: str, what: str, *, calls: bool = True) -> str:
    """Exactly one condition (``--where``), checked; the text to run."""
    if not text or not text.strip():
        raise BadInput(f"{what}: empty condition")
    return expression(text, what, calls=calls)


def assignments(text: str, what: str) -> list[tuple[str, bool, str]]:
    """``column = expression[, ...]``: (column, backquoted, expression) per assignment,
    split at the top-level commas; each expression checked as :func:`expression`."""
    if not text or not text.strip():
        raise BadInput(f"{what}: expected \"column = expression\"")
    tokens = _tokens(text, what)
    pieces: list[list[Token]] = [[]]
    depth = 0
    for tok in tokens:
        if tok.token_type is TokenType.L_PAREN:
            depth += 1
        elif tok.token_type is TokenType.R_PAREN:
            depth -= 1
        if tok.token_type is TokenType.COMMA and depth == 0:
            pieces.append([])
        else:
            pieces[-1].append(tok)
    out: list[tuple[str, bool, str]] = []
    for toks in pieces:
        if len(toks) < 3 or toks[1].token_type is not TokenType.EQ:
            raise BadInput(f"{what}: expected \"column = expression\"")
        col = toks[0]
        quoted = text[col.start] == "`"
        if not quoted and (col.token_type in (TokenType.STRING, TokenType.NUMBER)
                           or not re.fullmatch(r"[A-Za-z0-9_$]+", col.text)):
            raise BadInput(f"{what}: expected \"column = expression\" with a plain column "
                           "name (backquote other names)")
        if quoted and col.token_type is not TokenType.IDENTIFIER:
            raise BadInput(f"{what}: expected \"column = expression\"")
        expr = text[toks[2].start:toks[-1].end + 1]
        expression(expr, what)
        out.append((col.text, quoted, expr.strip()))
    return out


def not_one_query(sql: str) -> str | None:
    """Why ``sql`` is not one query that only reads, in words; None when it is. A step's
    condition and a phase's verification come from a plan file and run with the applying
    credentials; MySQL's read-only transaction still lets ``SELECT ... INTO OUTFILE``
    write a server file, ``LOAD_FILE`` read one (and an error such as EXTRACTVALUE's
    "XPATH syntax error" print it), ``SLEEP`` and ``GET_LOCK`` hold the server. So: the
    tokens, shape and content checks of an option (:func:`expression`), for exactly one
    SELECT, naming no database but information_schema (the conditions Lockplane writes
    read it; ``mysql.user`` and the like are not a plan's business)."""
    what = "query"
    try:
        _tokens(sql, what)
        trees = _parse(sql, what)
        tree = trees[0] if len(trees) == 1 else None
        if not isinstance(tree, exp.Select | exp.Union):
            return "it is not one SELECT"
        _check_content(what, tree, calls=True)
    except BadInput as exc:
        return exc.message.removeprefix(f"{what}: ")
    for node in tree.walk():
        if isinstance(node, exp.Table) and node.args.get("db") is not None \
                and node.text("db").lower() != "information_schema":
            return (f"it reads {node.sql(dialect='mysql')}, outside the database (only "
                    "information_schema may be named)")
    return None


# Built-ins that act with the FILE privilege (the server's files), which an ordinary
# account lacks. A trigger runs as its definer, and a view the plan creates SQL SECURITY
# DEFINER, both the applying account: the application's writes would then read server
# files with its privileges.
FILE_FUNCTIONS = frozenset({"load_file"})


def privileged_calls(statements: list[str], udfs: frozenset[str]) -> list[str]:
    """What in ``statements`` reaches the server's files or native code: calls of
    FILE_FUNCTIONS and of the loadable functions the server has (``udfs``, from
    mysql.func: sys_exec and the like), and INTO OUTFILE / DUMPFILE. Read from sqlglot's
    tokens (CREATE TRIGGER and CREATE VIEW heads do not parse whole)."""
    found: set[str] = set()
    for sql in statements:
        try:
            tokens = MySQL().tokenize(sql)
        except TokenError:
            continue  # (not run as it is either: the server refuses it)
        for tok, nxt in zip(tokens, [*tokens[1:], None], strict=True):
            if nxt is None or tok.token_type in (TokenType.STRING, TokenType.NUMBER):
                continue
            name = tok.text.lower()
            if nxt.token_type is TokenType.L_PAREN and (name in FILE_FUNCTIONS
                                                        or name in udfs):
                found.add(f"{name.upper()}()")
            elif name == "into" and nxt.text.lower() in ("outfile", "dumpfile"):
                found.add(f"INTO {nxt.text.upper()}")
    return sorted(found)
