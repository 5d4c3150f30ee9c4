"""Options that reach SQL, checked with PostgreSQL's own parser (pglast), never patterns.

A ``--where``, a ``--set`` or a ``--to-type`` ends up inside a statement Lockplane
builds (``UPDATE t SET c = (<expr>) WHERE k > $1 AND (<where>)``). Each is checked as
what it claims to be, in three steps:

1. **tokens** (PostgreSQL's lexer, ``pglast.parser.scan``): the text is put in the
   parentheses of a wrapper statement and lexed as a whole. No token may start in the
   text and end after it (an unterminated string, dollar quote or ``/*`` comment would
   swallow the closing parenthesis), a ``)`` may never close more than the text opened
   (``x = 1) OR (true``), and there is no ``;``. The wrapper ends the text with a
   newline, so a trailing ``--`` comment ends there.
2. **shape** (PostgreSQL's grammar, ``pglast.parse_sql``): the wrapper must parse to
   exactly one statement of exactly the wrapper's shape: ``SELECT 1 WHERE (<expr>)``
   for a condition, ``SELECT (<expr>)`` for a value, ``UPDATE t SET <assignments>``
   (no WHERE, FROM, RETURNING or WITH) for ``--set``, ``CREATE TABLE x (c <type>)``
   (one column, no constraint, no collation) for a type.
3. **content** (the parse tree): no statement other than a plain SELECT anywhere in it
   (a data-modifying CTE in a subquery is an INSERT/UPDATE/DELETE node), no
   ``SELECT ... INTO`` or ``FOR UPDATE``, no ``$n`` parameter (it would bind to the key
   range's parameters), no ``DEFAULT``, and no call to a built-in function known to have
   side effects (sequences, advisory locks, settings, signals, files, large objects,
   dblink, replication slots, ``query_to_xml``...). A user-defined function's effects
   cannot be known from its name: its body is read (privileged.function_effects) before
   a backfill evaluates the expression anywhere, its dry run included (a read-only
   transaction still runs ``COPY ... TO PROGRAM`` and dblink; the shadow copy is
   writable, with the target's credentials).

What runs is what was checked. On PostgreSQL an expression is re-emitted from the
checked parse tree (pglast's deparser: no comments, canonical quoting), and only if
parsing that text gives the same tree again (else the checked original text is used,
which the server lexes exactly as pglast did; backfill sessions pin
``standard_conforming_strings = on`` for that reason).

SQLite: there is no SQLite parser to call from Python, and its grammar cannot be
driven to tell an expression's extent (``sqlite3.complete_statement`` only finds the
end of a statement). SQLite's expression grammar is, for the common operators,
function calls, CASE, CAST, IN lists and literals, the same as PostgreSQL's, so SQLite
options are checked with PostgreSQL's parser too, *and* must stay in the lexical subset
on which the two lexers agree: no comments (SQLite ends ``/* /* */`` comments at the
first ``*/``, PostgreSQL nests them), only plain ``'...'`` strings (no dollar quotes,
``E''``, ``U&''``, ``B''``/``X''``), no ``[...]`` (identifiers in SQLite), no parameter
sigils (``?``, ``:x``, ``@x``, ``$x``). Within that subset both lexers cut the text into
the same tokens, so the structure PostgreSQL's parser verified is the structure SQLite
sees; the original text is then used (the deparser writes PostgreSQL spellings such as
``pg_catalog.btrim`` that SQLite does not know), and SQLite itself validates the rest
when the statement is prepared on the shadow copy. SQLite-only spellings (``==``,
``GLOB``, backquotes) are refused: write ``=``, ``glob(pattern, x)``, ``"name"``.
A SQLite type name is checked by SQLite itself: ``CREATE TABLE x (c <type>)`` in a
private in-memory database must declare exactly one column whose declared type is
exactly the text given. Those SQLite rules are the dialect's
(``Dialect.option_text``, ``Dialect.check_type_name``; lockplane/dialects/sqlite/options.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pglast
from pglast import ast
from pglast.parser import ParseError, scan
from pglast.stream import RawStream

from .dialects import get_dialect
from .errors import BadInput

# Built-in functions with effects beyond computing a value (PostgreSQL, SQLite):
# exact names, and prefixes of families.
_SIDE_EFFECT_FUNCTIONS = frozenset({
    "nextval", "setval", "set_config", "pg_terminate_backend", "pg_cancel_backend",
    "pg_reload_conf", "pg_rotate_logfile", "pg_switch_wal", "pg_create_restore_point",
    "pg_notify", "pg_sleep", "pg_sleep_for", "pg_sleep_until", "pg_read_file",
    "pg_read_binary_file", "pg_stat_file", "pg_file_write", "pg_file_rename",
    "pg_file_unlink", "lowrite", "loread", "pg_logical_emit_message",
    "pg_logical_slot_get_changes", "pg_logical_slot_get_binary_changes",
    "pg_replication_slot_advance", "pg_create_physical_replication_slot",
    "pg_create_logical_replication_slot", "pg_drop_replication_slot", "pg_promote",
    "pg_wal_replay_pause", "pg_wal_replay_resume", "pg_backup_start", "pg_backup_stop",
    "pg_start_backup", "pg_stop_backup", "pg_import_system_collations",
    "pg_log_backend_memory_contexts", "pg_export_snapshot", "txid_current",
    "pg_current_xact_id", "ts_rewrite",  # (its two-argument form runs a query's text)
    # SQLite
    "load_extension", "fts3_tokenizer", "readfile", "writefile", "edit",
})
_SIDE_EFFECT_PREFIXES = ("pg_advisory_", "pg_try_advisory_", "lo_", "dblink", "pg_ls_",
                         "pg_stat_reset", "pg_stat_statements_reset", "pg_replication_origin_",
                         "pg_copy_", "query_to_xml", "cursor_to_xml", "table_to_xml",
                         "schema_to_xml", "database_to_xml", "ts_stat")

# Token names of pglast's scanner.
_OPEN, _CLOSE, _SEMI = "ASCII_40", "ASCII_41", "ASCII_59"


@dataclass(frozen=True)
class Assignment:
    """One ``column = expression`` of a ``--set``: the column as written (``quoted``:
    it was double-quoted, so its case is exact) and the expression's text."""

    column: str
    quoted: bool
    expression: str


# --------------------------------------------------------------------------- tokens
def _check_tokens(what: str, before: str, text: str, after: str) -> str:
    """Lex ``before + text + after`` and check the tokens that start in ``text``."""
    sql = before + text + after
    start, end = len(before), len(before) + len(text)
    try:
        tokens = scan(sql)
    except ParseError as exc:
        raise BadInput(f"{what}: {_parse_message(exc)}") from None
    depth = 0
    for tok in tokens:
        if tok.start < start:
            continue
        if tok.start >= end:
            break
        if tok.end >= end:
            raise BadInput(f"{what}: a string, quoted name or comment is not closed within "
                           "the option")
        if tok.name == _SEMI:
            raise BadInput(f"{what}: one expression expected, not statements (';')")
        if tok.name == _OPEN:
            depth += 1
        elif tok.name == _CLOSE:
            depth -= 1
            if depth < 0:
                raise BadInput(f"{what}: unbalanced ')', it closes a parenthesis the option "
                               "did not open")
    if depth:
        raise BadInput(f"{what}: unbalanced '(', it is not closed")
    return sql


def _parse_message(exc: ParseError) -> str:
    msg = str(exc.args[0]) if exc.args else "syntax error"
    return " ".join(msg.split(", at index")[0].split())


def _parse(what: str, sql: str) -> tuple[Any, ...]:
    try:
        stmts = pglast.parse_sql(sql)
    except ParseError as exc:
        raise BadInput(f"{what}: {_parse_message(exc)}") from None
    if len(stmts) != 1:
        raise BadInput(f"{what}: one expression expected, not statements")
    return stmts


# --------------------------------------------------------------------------- content
def _nodes(node: Any) -> Iterator[ast.Node]:
    if isinstance(node, ast.Node):
        yield node
        for attr in type(node).__slots__:
            yield from _nodes(getattr(node, attr, None))
    elif isinstance(node, tuple | list):
        for item in node:
            yield from _nodes(item)


def _function_name(call: ast.FuncCall) -> str:
    parts = [getattr(p, "sval", "") for p in call.funcname or ()]
    return (parts[-1] if parts else "").lower()


def _check_content(what: str, root: Any, *, calls: bool = True) -> None:
    for node in _nodes(root):
        kind = type(node).__name__
        if kind.endswith("Stmt") and kind != "SelectStmt":
            verb = kind.removesuffix("Stmt").upper()
            raise BadInput(f"{what}: contains a {verb} statement (a data-modifying CTE or "
                           "subquery); only an expression that reads is allowed")
        if isinstance(node, ast.SelectStmt):
            if node.intoClause is not None:
                raise BadInput(f"{what}: SELECT ... INTO creates a table; not allowed")
            if node.lockingClause:
                raise BadInput(f"{what}: a subquery with FOR UPDATE/SHARE takes row locks; "
                               "not allowed")
        elif isinstance(node, ast.ParamRef):
            raise BadInput(f"{what}: a $n parameter is not allowed (write the value)")
        elif isinstance(node, ast.SetToDefault):
            raise BadInput(f"{what}: DEFAULT is not an expression a backfill can compute")
        elif isinstance(node, ast.FuncCall) and calls:
            name = _function_name(node)
            if name in _SIDE_EFFECT_FUNCTIONS or name.startswith(_SIDE_EFFECT_PREFIXES):
                raise BadInput(f"{what}: calls {name}(), which has side effects; an option "
                               "may only compute values")


def _strip_locations(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_locations(v) for k, v in value.items() if k != "location"}
    if isinstance(value, list | tuple):
        return [_strip_locations(v) for v in value]
    return value


def _same_tree(a: ast.Node, b: ast.Node) -> bool:
    return bool(_strip_locations(a(skip_none=True)) == _strip_locations(b(skip_none=True)))


# --------------------------------------------------------------------------- public
def _value_node(what: str, text: str, calls: bool = True) -> ast.Node:
    """The parse tree of one value expression, checked (tokens, shape, content)."""
    sql = _check_tokens(what, "SELECT (", text, "\n)")
    (raw,) = _parse(what, sql)
    stmt = raw.stmt
    if (not isinstance(stmt, ast.SelectStmt) or len(stmt.targetList or ()) != 1
            or _extra_select_clauses(stmt) or stmt.whereClause is not None):
        raise BadInput(f"{what}: exactly one expression expected")
    target = stmt.targetList[0]
    if target.name is not None or target.indirection:
        raise BadInput(f"{what}: exactly one expression expected")
    _check_content(what, target.val, calls=calls)
    return target.val


def _extra_select_clauses(stmt: ast.SelectStmt) -> bool:
    return any(getattr(stmt, attr) for attr in (
        "distinctClause", "intoClause", "fromClause", "groupClause", "havingClause",
        "windowClause", "valuesLists", "sortClause", "limitOffset", "limitCount",
        "lockingClause", "withClause", "larg", "rarg")) or bool(stmt.groupDistinct)


def _emit(what: str, text: str, node: ast.Node, dialect: str, wrap: str) -> str:
    as_written = get_dialect(dialect).option_text(what, text)
    if as_written is not None:
        return as_written
    deparsed = RawStream()(node)
    try:
        again = pglast.parse_sql(wrap.format(deparsed))[0].stmt
    except ParseError:
        return text.strip()
    node2 = again.whereClause if wrap.startswith("SELECT 1 WHERE") else again.targetList[0].val
    return deparsed if _same_tree(node, node2) else text.strip()


def expression(text: str, what: str, dialect: str = "postgres", *,
               calls: bool = True) -> str:
    """A value expression (``--set``'s right-hand side), checked; the SQL to run.

    ``calls=False`` skips the side-effect function check, for expressions a plan derived
    from a schema (a column's default ``nextval(...)`` is backfilled that way); options
    always get it."""
    if not text or not text.strip():
        raise BadInput(f"{what}: empty expression")
    own = get_dialect(dialect).own_options()
    if own is not None:
        return str(own.expression(text, what, calls=calls))
    node = _value_node(what, text, calls)
    return _emit(what, text, node, dialect, "SELECT ({}\n)")


def condition(text: str, what: str = "--where", dialect: str = "postgres", *,
              calls: bool = True) -> str:
    """Exactly one boolean expression (``--where``), checked; the SQL to run."""
    if not text or not text.strip():
        raise BadInput(f"{what}: empty condition")
    own = get_dialect(dialect).own_options()
    if own is not None:
        return str(own.condition(text, what, calls=calls))
    sql = _check_tokens(what, "SELECT 1 WHERE (", text, "\n)")
    (raw,) = _parse(what, sql)
    stmt = raw.stmt
    ok = (isinstance(stmt, ast.SelectStmt) and stmt.whereClause is not None
          and not _extra_select_clauses(stmt) and len(stmt.targetList or ()) == 1)
    if ok:
        target = stmt.targetList[0]
        val = target.val
        ok = (target.name is None and not target.indirection
              and isinstance(val, ast.A_Const) and getattr(val.val, "ival", None) == 1)
    if not ok:
        raise BadInput(f"{what}: exactly one condition expected")
    _check_content(what, stmt.whereClause, calls=calls)
    return _emit(what, text, stmt.whereClause, dialect, "SELECT 1 WHERE ({}\n)")


def assignments(text: str, what: str = "--set", dialect: str = "postgres",
                ) -> list[Assignment]:
    """``column = expression[, ...]`` as ``UPDATE t SET <text>`` parses it: exactly one
    UPDATE with no WHERE, FROM, RETURNING or WITH; plain columns; checked expressions.
    The expressions are returned as written (``expression()`` makes them runnable).
    A dialect with its own option grammar (``Dialect.own_options``) checks them."""
    if not text or not text.strip():
        raise BadInput(f"{what}: expected \"column = expression\"")
    own = get_dialect(dialect).own_options()
    if own is not None:
        return [Assignment(c, q, e) for c, q, e in own.assignments(text, what)]
    before = "UPDATE lockplane_t SET "
    sql = _check_tokens(what, before, text, "\n")
    (raw,) = _parse(what, sql)
    stmt = raw.stmt
    if (not isinstance(stmt, ast.UpdateStmt) or stmt.whereClause is not None
            or stmt.fromClause or getattr(stmt, "returningClause", None)
            or getattr(stmt, "returningList", None) or stmt.withClause
            or stmt.relation.relname != "lockplane_t" or stmt.relation.schemaname
            or stmt.relation.alias is not None):
        raise BadInput(f"{what}: expected \"column = expression\" (only assignments: no "
                       "WHERE, FROM, RETURNING or WITH)")
    # Where each assignment's text is: split the option at its top-level commas.
    tokens = [t for t in scan(sql) if t.start >= len(before)]
    pieces: list[list[Any]] = [[]]
    depth = 0
    for tok in tokens:
        if tok.name == _OPEN:
            depth += 1
        elif tok.name == _CLOSE:
            depth -= 1
        if tok.name == "ASCII_44" and depth == 0:
            pieces.append([])
        else:
            pieces[-1].append(tok)
    targets = list(stmt.targetList or ())
    for target in targets:
        if (not isinstance(target, ast.ResTarget) or target.indirection
                or isinstance(target.val, ast.MultiAssignRef)):
            raise BadInput(f"{what}: expected \"column = expression\" with a plain column "
                           "name (no (a, b) = ..., no subscripts or fields)")
    if len(pieces) != len(targets) or any(not p for p in pieces):
        raise BadInput(f"{what}: expected \"column = expression\"")
    out: list[Assignment] = []
    for target, toks in zip(targets, pieces, strict=True):
        eq = next((i for i, t in enumerate(toks) if t.name == "ASCII_61"), None)
        if eq != 1 or len(toks) < 3:
            raise BadInput(f"{what}: expected \"column = expression\"")
        col_src = sql[toks[0].start:toks[0].end + 1]
        expr_src = sql[toks[2].start:toks[-1].end + 1]
        quoted = col_src.startswith('"')
        column = target.name if quoted else col_src
        _check_content(what, target.val)
        expression(expr_src, what)  # the same checks as on its own
        out.append(Assignment(column, quoted, expr_src.strip()))
    return out


def type_name(text: str, what: str = "--to-type", dialect: str = "postgres") -> str:
    """Exactly one type name, checked; the text to put in DDL."""
    if not text or not text.strip():
        raise BadInput(f"{what}: empty type name")
    own = get_dialect(dialect).check_type_name(text, what)
    if own is not None:
        return own
    sql = _check_tokens(what, "CREATE TABLE lockplane_x (c ", text, "\n)")
    (raw,) = _parse(what, sql)
    stmt = raw.stmt
    ok = (isinstance(stmt, ast.CreateStmt) and len(stmt.tableElts or ()) == 1
          and not any(getattr(stmt, a) for a in (
              "inhRelations", "partbound", "partspec", "ofTypename", "constraints",
              "options", "tablespacename", "accessMethod")))
    col = stmt.tableElts[0] if ok else None
    if (not isinstance(col, ast.ColumnDef) or col.colname != "c" or col.typeName is None
            or col.constraints or col.collClause is not None or col.typeName.setof
            or col.raw_default is not None or col.compression
            or getattr(col, "storage_name", None)):
        raise BadInput(f"{what}: exactly one type name expected")
    _check_content(what, col.typeName)
    deparsed = RawStream()(col.typeName)
    try:
        again = pglast.parse_sql(f"CREATE TABLE lockplane_x (c {deparsed})")[0].stmt
        if _same_tree(col.typeName, again.tableElts[0].typeName):
            return deparsed
    except (ParseError, AttributeError, IndexError):
        pass
    return text.strip()
