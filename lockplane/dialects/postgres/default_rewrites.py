"""Does ``ALTER TABLE ... ADD COLUMN ... DEFAULT expr`` rewrite the table? Ask a server.

Since PostgreSQL 11 a default the server can evaluate once is stored as the column's
"missing value" (``pg_attribute.atthasmissing``) and no row is touched; otherwise every
row is rewritten. Which defaults qualify is the server's own rule (volatility of every
function the cooked expression calls, resolved for its argument types, including casts,
operators and type input functions; a domain's default and constraints; the version), so
instead of a hand-kept list of function names the question is put to a scratch server,
as pgroll does: on an empty table, in a transaction that is rolled back, does the ADD
COLUMN give the table a new relfilenode? (A volatility lookup of the called functions was
tried too: it misses domains, whose constraints or own default decide it, and the
version's changes, e.g. PostgreSQL 18 keeping domain defaults fast.) The table is empty,
so a volatile default is never evaluated; a non-volatile one is evaluated once, as the
sandbox's unprivileged role in a throwaway database.

Answers are cached per server version, the objects made first (a schema's own functions,
sequences, domains) and the question. Where no server answers, the answer is None
(unknown), unless the default is a constant, which is never computed per row.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import pglast
import psycopg
from pglast import ast
from pglast.parser import ParseError

if TYPE_CHECKING:
    from ...model import Schema
    from . import PostgresDialect

log = logging.getLogger(__name__)

# (column type, default expression or None for the type's own default)
Question = tuple[str, str | None]

_TABLE = "lockplane_default_question"
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
# The same, by server as the DSN names it: answered without opening a sandbox.
_known: dict[tuple[str, str, str, str | None], bool | None] = {}
# (an answer of None here is the server refusing the question: it would again)
_answers: dict[tuple[int, str, str, str | None], bool | None] = {}


def constant_default(expr: str | None) -> bool | None:
    """Whether ``expr`` is a constant (a literal, maybe cast): never computed per row.
    None: not a well-formed single expression."""
    if expr is None:
        return True
    node = _expression(expr)
    if node is None:
        return None
    while isinstance(node, ast.TypeCast):
        node = node.arg
    return isinstance(node, ast.A_Const)


def _expression(expr: str) -> Any:
    try:
        stmts = pglast.parse_sql(f"SELECT {expr}")
    except ParseError:
        return None
    if len(stmts) != 1 or not isinstance(stmts[0].stmt, ast.SelectStmt):
        return None
    targets = stmts[0].stmt.targetList or ()
    if len(targets) != 1 or stmts[0].stmt.fromClause:
        return None
    return targets[0].val


def _add_column_sql(sql_type: str, expr: str | None) -> str | None:
    """The ADD COLUMN to try, when it parses as exactly that (the parts are untrusted)."""
    sql = f"ALTER TABLE {_TABLE} ADD COLUMN c {sql_type}"
    if expr is not None:
        sql += f" DEFAULT {expr}"
    try:
        stmts = pglast.parse_sql(sql)
    except ParseError:
        return None
    if len(stmts) != 1 or not isinstance(stmts[0].stmt, ast.AlterTableStmt):
        return None
    cmds = stmts[0].stmt.cmds or ()
    if len(cmds) != 1 or not isinstance(cmds[0].def_, ast.ColumnDef):
        return None
    return sql


def ask(db: Any, questions: Iterable[Question],
        setup: Sequence[str] = ()) -> dict[Question, bool | None]:
    """Each question's answer from ``db`` (a sandbox session), in one transaction that is
    rolled back. ``setup``: statements making what the defaults name (failures skipped:
    a default naming what could not be made gets None)."""
    wanted = list(dict.fromkeys(questions))
    version = db.server_version
    made = hashlib.sha256("\0".join(setup).encode()).hexdigest()
    out: dict[Question, bool | None] = {}
    todo: list[Question] = []
    for q in wanted:
        key = (version, made, *q)
        if key in _answers:
            out[q] = _answers[key]
        else:
            todo.append(q)
    if not todo:
        return out
    conn = db.conn
    with conn.cursor() as cur:
        try:
            _run_setup(cur, setup)
            for q in todo:
                out[q] = _answers[(version, made, *q)] = _ask_one(cur, q)
        finally:
            conn.rollback()
    return out


def _run_setup(cur: Any, setup: Sequence[str]) -> None:
    """Each statement, failures skipped; those that failed are tried again while others
    succeed (a schema's parts come in no dependency order: a domain before its sequence)."""
    pending = list(setup)
    while pending:
        failed: list[str] = []
        for stmt in pending:
            cur.execute("SAVEPOINT lockplane_setup")
            try:
                _execute_one(cur, stmt)
                cur.execute("RELEASE SAVEPOINT lockplane_setup")
            except psycopg.Error:
                cur.execute("ROLLBACK TO SAVEPOINT lockplane_setup")
                failed.append(stmt)
        if len(failed) == len(pending):
            return
        pending = failed


def _execute_one(cur: Any, sql: str) -> None:
    # With parameters (the extended protocol) the server runs exactly one statement.
    cur.execute(sql.replace("%", "%%"), [])


def _ask_one(cur: Any, q: Question) -> bool | None:
    sql = _add_column_sql(*q)
    if sql is None:
        return None
    cur.execute("SAVEPOINT lockplane_question")
    try:
        cur.execute(f"CREATE TABLE {_TABLE} (id int)")
        cur.execute("SELECT relfilenode FROM pg_class WHERE oid = %s::regclass", [_TABLE])
        before = cur.fetchone()[0]
        _execute_one(cur, sql)
        cur.execute("SELECT relfilenode FROM pg_class WHERE oid = %s::regclass", [_TABLE])
        return bool(cur.fetchone()[0] != before)
    except psycopg.Error as exc:
        log.debug("default question %r: %s", q, exc)
        return None
    finally:
        cur.execute("ROLLBACK TO SAVEPOINT lockplane_question")


def setup_from_schema(schema: Schema | None, d: PostgresDialect) -> list[str]:
    """CREATE statements for what a schema's defaults may name: its namespaces, types,
    sequences, domains and functions, in dependency order (the plan from nothing)."""
    if schema is None or schema.dialect != "postgres":
        return []
    from ...diff import diff
    from ...model import Schema as SchemaModel
    from ...plan import order_changes

    parts = SchemaModel(dialect="postgres", schemas=schema.schemas, extensions=schema.extensions,
                        enums=schema.enums, domains=schema.domains,
                        composite_types=schema.composite_types, sequences=schema.sequences,
                        functions=schema.functions, range_types=schema.range_types,
                        collations=schema.collations)
    if not (parts.domains or parts.sequences or parts.functions):
        return []
    empty = SchemaModel(dialect="postgres")
    try:
        changes = order_changes(diff(empty, parts, d), empty, parts)
        return [s for c in changes for s in c.sql(d)]
    except Exception as exc:  # a part that cannot be rendered: its defaults stay unknown
        log.debug("default questions: setup from schema: %s", exc)
        return []


def default_rewrites(dialect: PostgresDialect, questions: Sequence[Question],
                     schema: Schema | None = None,
                     near_dsn: str | None = None,
                     setup_sql: Sequence[str] = ()) -> dict[Question, bool | None]:
    """The answers: constants of base types without asking, the rest from a sandbox on
    ``near_dsn``'s server (the local one by default), after ``setup_sql`` (or what
    ``schema`` defines); None where no server answered."""
    out: dict[Question, bool | None] = {}
    ask_server: list[Question] = []
    for q in dict.fromkeys(questions):
        if (q[1] is not None and constant_default(q[1]) is True and not setup_sql
                and not _names_domain(schema, q[0])):
            out[q] = False  # a literal of a base type: stored once
        else:
            ask_server.append(q)
    if not ask_server:
        return out
    setup = _screened(setup_sql) if setup_sql else setup_from_schema(schema, dialect)
    server = dialect.server_key(near_dsn or DEFAULT_SERVER)
    made = hashlib.sha256("\0".join(setup).encode()).hexdigest()
    for q in list(ask_server):
        if (server, made, *q) in _known:
            out[q] = _known[(server, made, *q)]
            ask_server.remove(q)
    if not ask_server:
        return out
    from ...dsn import redact
    from ...errors import BadInput

    try:
        with dialect.sandbox(near_dsn) as box:
            box_db = box.sandboxed
            box_db.conn.rollback()
            answers = ask(box_db, ask_server, setup)
        out.update(answers)
        _known.update({(server, made, *q): a for q, a in answers.items()})
    except (BadInput, psycopg.Error, OSError) as exc:
        if near_dsn is not None:  # a server named to ask must answer
            if isinstance(exc, BadInput):
                raise
            raise BadInput(f"cannot ask {redact(near_dsn)} whether defaults rewrite "
                           f"tables: {type(exc).__name__}") from None
        log.info("default questions: no server to ask (%s): unknown", exc)
        out.update({q: None for q in ask_server})
    return out


def _screened(setup_sql: Sequence[str]) -> list[str]:
    """The setup statements (a migration file's own, untrusted) that the schema-file
    screen lets run as the sandbox role, in the form it checked: the same two defences as
    a desired schema's load. What it refuses is not made, so a default that names it gets
    no answer (unknown)."""
    from ...errors import BadInput
    from .screen import Runs, screen

    out: list[str] = []
    for sql in setup_sql:
        try:
            checked = screen(sql, "default question", lines=False)
        except BadInput as exc:
            log.debug("default questions: setup statement refused: %s", exc)
            continue
        out += [st.sql for st in checked.statements if st.runs is Runs.SANDBOX]
    return out


def _names_domain(schema: Schema | None, sql_type: str) -> bool:
    if schema is None:
        return True  # unknown: ask
    name = sql_type.strip().strip('"').lower()
    return any(name in (dom.name.lower(), f"{dom.schema_}.{dom.name}".lower())
               for dom in schema.domains)

