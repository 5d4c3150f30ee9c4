"""Which built-in functions a plan's SQL calls that PUBLIC may not run.

PostgreSQL revokes EXECUTE from PUBLIC on the functions that reach outside the database
(``pg_read_file``, ``pg_ls_dir``, ``lo_import``, ``pg_reload_conf`` ...). A schema that
calls one (a materialized view's query, a default evaluated for existing rows) runs it
with the applying user's privileges, often a superuser's. Which functions those are is
asked of the server (their ACLs), not kept in a list here.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import pglast
import pglast.keywords
from pglast import ast
from pglast.enums import AlterTableType as AT
from pglast.enums import ConstrType, ObjectType
from pglast.parser import ParseError, scan
from pglast.visitors import Visitor

from . import resolved

if TYPE_CHECKING:
    from . import PostgresDatabase


@functools.lru_cache(maxsize=4096)
def _parse(sql: str) -> tuple[ast.RawStmt, ...]:
    """``pglast.parse_sql``, remembered: a plan's SQL is read again for each of its steps
    (the statements a step runs, and the whole plan for the functions it defines). The
    trees are only read here, never changed."""
    return tuple(pglast.parse_sql(sql))


class _Calls(Visitor):
    def __init__(self) -> None:
        self.names: set[str] = set()

    def visit_FuncCall(self, ancestors: object, node: ast.FuncCall) -> None:  # noqa: N802
        names = [n.sval for n in node.funcname]
        if len(names) == 1 or names[0] == "pg_catalog":
            self.names.add(names[-1])


def called_builtins(statements: Sequence[str]) -> set[str]:
    """Names of the functions these statements call that may resolve to built-ins
    (unqualified, or qualified with pg_catalog)."""
    calls = _Calls()
    for sql in statements:
        try:
            calls(_parse(sql))
        except ParseError:
            continue  # not ours to judge: the server reports it when the step runs
    return calls.names


# Functions PUBLIC may run that do what no parse of the step can see: they run a query
# given as text (query_to_xml, ts_stat, ts_rewrite's two-argument form), read a relation
# named by a value (table_to_xml ...), or reach another database or a large object
# (dblink, an extension's: lo_get). With a superuser's session, on 90e6923 a schema
# file's column DEFAULT query_to_xml('SELECT rolname, rolpassword FROM pg_authid', ...)
# applied and copied every password hash into the target's rows, and with dblink allowed
# a DEFAULT dblink_exec('dbname=other ...', 'DELETE FROM ...') emptied another database.
_UNSEEN_PREFIXES = ("query_to_xml", "cursor_to_xml", "table_to_xml", "schema_to_xml",
                    "database_to_xml", "ts_stat", "dblink", "lo_", "pg_read_", "pg_file_",
                    "pg_ls_",
                    # (what the views of _SEES_MORE read: every session's query text)
                    "pg_stat_get_activity", "pg_stat_get_backend_activity",
                    "pg_show_all_settings", "pg_stat_statements", "pg_stat_get_wal_receiver",
                    "pg_stat_get_subscription",
                    # (what acts on the server beyond the statement's tables, with the
                    # applying role's rights: advisory locks (Lockplane's own apply lock
                    # released), other sessions ended, a replication slot that keeps every
                    # WAL segment from now on, a NOTIFY the application's listeners obey)
                    "pg_advisory_", "pg_try_advisory_", "pg_cancel_backend",
                    "pg_terminate_backend", "pg_create_physical_replication_slot",
                    "pg_create_logical_replication_slot", "pg_drop_replication_slot",
                    "pg_copy_physical_replication_slot", "pg_copy_logical_replication_slot",
                    "pg_replication_origin_", "pg_replication_slot_advance",
                    "pg_logical_slot_", "pg_logical_emit_message",
                    "pg_notify")  # (a payload for the application's listeners)


# set_config() evaluated by a step (a CHECK that VALIDATE CONSTRAINT runs for each row)
# changes the applying session for what runs after it: on a7ce27a a CHECK calling
# set_config('search_path', 'evil, pg_catalog, public', false) made Lockplane's own
# "UPDATE lockplane.migrations SET finished_at = now()" run the plan's evil.now() (stored,
# never evaluated by a step, so never judged): COPY ... TO PROGRAM as the superuser.
_UNSEEN_SETTINGS = ("set_config (it changes the applying session's settings, search_path "
                    "included, for the steps and Lockplane's own statements after it)")


_SERVER_WIDE = _UNSEEN_PREFIXES.index("pg_advisory_")


class _UnseenCalls(Visitor):
    def __init__(self) -> None:
        self.names: set[str] = set()

    def visit_FuncCall(self, ancestors: object, node: ast.FuncCall) -> None:  # noqa: N802
        name = node.funcname[-1].sval
        if name.startswith(_UNSEEN_PREFIXES) or name == "set_config" or (
                name == "ts_rewrite" and len(node.args or ()) == 2):
            self.names.add(name)


def unseen_calls(statements: Sequence[str]) -> list[str]:
    """Functions these statements call (in any schema) that run SQL given as text, read
    a relation named by a value or reach outside the database (:data:`_UNSEEN_PREFIXES`)."""
    calls = _UnseenCalls()
    for stmt in _parsed(statements):
        # A domain's DEFAULT and CHECKs are stored now and evaluated, as the applying
        # role, for every row of a later ADD COLUMN of that type, whose SQL names no
        # function. (A view's, trigger's, rule's or policy's functions run later as whoever
        # uses it: stored, not judged here.)
        for part in [stmt] if isinstance(stmt, (ast.CreateDomainStmt, ast.AlterDomainStmt)) \
                else _evaluated(stmt):
            calls(part)
    return sorted(calls.names)


def privileged_calls(db: PostgresDatabase, statements: Sequence[str],
                     defined: Sequence[str] = ()) -> list[str]:
    """The built-in functions these statements call, and the system relations they read
    when they run, that PUBLIC may not use: run with this session's privileges, a value
    read from ``pg_authid`` (password hashes), ``pg_statistic`` (samples of every
    column) or ``pg_file_settings`` lands in rows others can read, or in an error. And
    the functions that run or reach what no parse of the statements sees
    (:func:`unseen_calls`), whoever may run them: built-in or an extension's, not the
    database's own or the plan's (``defined``: its SQL) that merely share a prefix
    (lo_total), whose bodies function_effects reads."""
    unseen = set(unseen_calls(statements))
    unseen -= _own_routine_names(db, unseen, defined)
    return sorted(set(privileged_names(db, called_builtins(statements)))
                  | {_UNSEEN_SETTINGS if name == "set_config" else
                     f"{name} (it acts on the server beyond the statement's tables)"
                     if name.startswith(_UNSEEN_PREFIXES[_SERVER_WIDE:]) else
                     f"{name} (it runs a query given as text, reads a relation named by a "
                     "value or reaches outside the database)"
                     for name in unseen}) + [
        f"{name} (a system relation)" for name in closed_reads(db, statements)]


def _own_routine_names(db: PostgresDatabase, names: set[str],
                       defined: Sequence[str]) -> set[str]:
    """Of ``names``, those that no built-in (pg_catalog) or extension function has, and
    that a routine of the database or of ``defined`` has. A name no function has yet
    (an extension the same plan creates) is not one."""
    if not names:
        return set()
    rows = db.query(
        "SELECT p.proname, n.nspname = 'pg_catalog' OR EXISTS (SELECT 1 FROM pg_depend d"
        "  WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')"
        " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE p.proname = ANY(%s)", (sorted(names),))
    system = {r[0] for r in rows if r[1]}
    own = {r[0] for r in rows if not r[1]} | {d.name for d in _definitions(defined)}
    return (own & names) - system


def closed_reads(db: PostgresDatabase, statements: Sequence[str]) -> list[str]:
    """pg_catalog relations PUBLIC may not read that these statements read when they run
    (a view's or rule's stored query is judged by :func:`_views_of_closed_relations`)."""
    rels = _Relations()
    for stmt in _parsed(statements):
        for part in _evaluated(stmt):
            rels(part)
    # (an unqualified name is pg_catalog's first: it is searched before any schema)
    return sorted(_closed_relations(db, {n for s, n in rels.names
                                         if s in (None, "pg_catalog")}))


# pg_catalog views PUBLIC may read whose rows depend on who reads them: a superuser (or
# a member of pg_read_all_stats, pg_read_all_settings) sees every session's query text,
# every user mapping's options (a foreign server's password), every setting's value. On
# d434a2e a schema file's '-- lockplane:fill-with (SELECT string_agg(query, ' | ') FROM
# pg_stat_activity)' applied (exit 0) and another role's query in flight was in every row.
_SEES_MORE = frozenset({"pg_stat_activity", "pg_user_mappings", "pg_settings",
                        "pg_stat_replication", "pg_stat_wal_receiver", "pg_stat_subscription",
                        "pg_stat_ssl", "pg_stat_gssapi", "pg_stat_statements",
                        "pg_stat_statements_info"})


def _closed_relations(db: PostgresDatabase, names: set[str]) -> set[str]:
    if not names:
        return set()
    if names & _SEES_MORE and _holds_powers(db):
        return (names & _SEES_MORE) | _closed_relations(db, names - _SEES_MORE)
    return {r[0] for r in db.query(
        "SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'pg_catalog'::regnamespace "
        "AND c.relname = ANY(%s) AND NOT has_table_privilege('public', c.oid, 'SELECT')",
        (sorted(names),))}


def privileged_names(db: PostgresDatabase, names: set[str]) -> list[str]:
    """Which of these built-in function names PUBLIC may not run."""
    return sorted({name for name, schema, closed in _functions_named(db, names)
                   if schema == "pg_catalog" and closed})


def _functions_named(db: PostgresDatabase, names: set[str]) -> list[tuple[str, str, bool]]:
    """(name, schema, closed) of every function with one of these names: ``closed`` when
    PUBLIC may not execute it, or (outside pg_catalog and information_schema) may not
    use its schema."""
    if not names:
        return []
    return [(r[0], r[1], r[2]) for r in db.query(
        # (every function and operator qualified: the database's own overloads of them,
        # closer to these argument types, are not what Lockplane's SQL means)
        "SELECT p.proname, n.nspname, NOT EXISTS (SELECT 1 FROM pg_catalog.aclexplode("
        "  coalesce(p.proacl, pg_catalog.acldefault('f'::\"char\", p.proowner))) a "
        "  WHERE a.grantee OPERATOR(pg_catalog.=) 0::pg_catalog.oid "
        "  AND a.privilege_type OPERATOR(pg_catalog.=) 'EXECUTE'::pg_catalog.text) "
        "OR (n.nspname OPERATOR(pg_catalog.<>) ALL ('{pg_catalog, information_schema}'"
        "  ::pg_catalog.name[]) AND NOT EXISTS (SELECT 1 FROM pg_catalog.aclexplode("
        "  coalesce(n.nspacl, pg_catalog.acldefault('n'::\"char\", n.nspowner))) a "
        "  WHERE a.grantee OPERATOR(pg_catalog.=) 0::pg_catalog.oid "
        "  AND a.privilege_type OPERATOR(pg_catalog.=) 'USAGE'::pg_catalog.text)) "
        "FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n "
        "  ON n.oid OPERATOR(pg_catalog.=) p.pronamespace "
        "WHERE p.proname OPERATOR(pg_catalog.=) ANY(%s::pg_catalog.name[])", (sorted(names),))]


# ------------------------------------------------------------------ user-defined functions
# A plan's DDL can evaluate functions the desired schema defines: ADD COLUMN evaluates a
# non-volatile default at once, an index build its expressions for every row, a CHECK or a
# domain's CHECK every existing value, a materialized view its query. Such a function runs
# with the applying session's privileges (often a superuser's); one that acts only outside
# a scratch database looks harmless while the schema is loaded in the sandbox. So the
# bodies of the functions a step evaluates are read (SQL with PostgreSQL's parser, PL/pgSQL
# with PL/pgSQL's), through the functions they call, and a step whose functions do more
# than compute a value is refused like a privileged built-in.

# Statements whose expressions the server stores without evaluating them.
_STORED_ONLY = (ast.CreateFunctionStmt, ast.ViewStmt, ast.CreateTrigStmt,
                ast.CreatePolicyStmt, ast.AlterPolicyStmt, ast.RuleStmt, ast.CommentStmt,
                ast.AlterFunctionStmt, ast.CreateDomainStmt)


_ORDERING = frozenset({"=", "<", "<=", ">", ">=", "<>"})
# The operators a keyword of an expression runs (any BETWEEN; the rest as the PL/pgSQL
# expression scan meets them).
_IMPLIED_OPS: dict[str, frozenset[str]] = {
    "BETWEEN": frozenset({"<", "<=", ">", ">="}),
    "CASE": frozenset({"="}), "IN": frozenset({"=", "<>"}), "DISTINCT": _ORDERING,
    "NULLIF": frozenset({"="}), "USING": frozenset({"="}), "NATURAL": frozenset({"="}),
    "LIKE": frozenset({"~~", "!~~"}), "ILIKE": frozenset({"~~*", "!~~*"}),
    "SIMILAR": frozenset({"~", "!~"}), "GREATEST": _ORDERING, "LEAST": _ORDERING,
    "ORDER": _ORDERING, "GROUP": _ORDERING, "UNION": _ORDERING, "INTERSECT": _ORDERING,
    "EXCEPT": _ORDERING, "ANY": _ORDERING, "ALL": _ORDERING, "SOME": _ORDERING,
}


def _names_of(funcname: Sequence[ast.String]) -> tuple[str | None, str]:
    names = [n.sval for n in funcname]
    return (names[-2] if len(names) > 1 else None), names[-1]


class _AllCalls(Visitor):
    """Every function a tree calls, qualified or not; and what it does beyond reading."""

    def __init__(self) -> None:
        self.calls: set[tuple[str | None, str]] = set()
        self.types: set[tuple[str | None, str]] = set()
        self.effects: list[str] = []
        # Operators and the types of casts: a user-defined OPERATOR (FUNCTION = f) or
        # CAST ... WITH FUNCTION f calls f from an expression that names no function.
        self.ops: set[str] = set()
        self.typenames: set[str] = set()
        self.writes: set[tuple[str | None, str]] = set()  # tables it writes to
        self.relations: set[tuple[str | None, str]] = set()  # relations it names

    def visit_RangeVar(self, ancestors: object, node: ast.RangeVar) -> None:  # noqa: N802
        self.relations.add((node.schemaname, node.relname))

    def visit_FuncCall(self, ancestors: object, node: ast.FuncCall) -> None:  # noqa: N802
        self.calls.add(_names_of(node.funcname))

    def visit_TypeName(self, ancestors: object, node: ast.TypeName) -> None:  # noqa: N802
        names = [getattr(n, "sval", "") for n in node.names or ()]
        if names and names[0] != "pg_catalog":
            self.types.add(((names[-2] if len(names) > 1 else None), names[-1]))
        if names and not _no_value(ancestors):
            self.typenames.add(names[-1])

    def visit_A_Expr(self, ancestors: object, node: ast.A_Expr) -> None:  # noqa: N802
        names = node.name or ()
        if len(names) > 1 and getattr(names[0], "sval", None) == "pg_catalog":
            return  # (OPERATOR(pg_catalog.=) is the server's own, whatever the database has)
        for name in names[-1:]:
            if isinstance(name, ast.String):
                # (BETWEEN is named by its keyword: the server runs <= and >=, or < and >)
                self.ops |= _IMPLIED_OPS["BETWEEN"] if "BETWEEN" in name.sval \
                    else {name.sval}

    # Constructs that name no operator and still run one the server looks up by name for
    # the operands' types (a user-defined "=" (integer, text) is found like a built-in):
    # CASE x WHEN y compares with =, JOIN ... USING / NATURAL JOIN with =, GREATEST and
    # LEAST, ORDER BY, DISTINCT and GROUP BY with the type's ordering and equality.
    def visit_CaseExpr(self, ancestors: object, node: ast.CaseExpr) -> None:  # noqa: N802
        if node.arg is not None:
            self.ops.add("=")

    def visit_JoinExpr(self, ancestors: object, node: ast.JoinExpr) -> None:  # noqa: N802
        if node.usingClause or node.isNatural:
            self.ops.add("=")

    def visit_MinMaxExpr(self, ancestors: object, node: ast.Node) -> None:  # noqa: N802
        self.ops |= _ORDERING

    def visit_SortBy(self, ancestors: object, node: ast.SortBy) -> None:  # noqa: N802
        self.ops |= _ORDERING
        for name in (node.useOp or ())[-1:]:
            if isinstance(name, ast.String):
                self.ops.add(name.sval)

    def visit_SelectStmt(self, ancestors: object, node: ast.SelectStmt) -> None:  # noqa: N802
        if node.distinctClause or node.groupClause or node.op.value != 0:
            self.ops |= _ORDERING

    def visit_SubLink(self, ancestors: object, node: ast.SubLink) -> None:  # noqa: N802
        for name in (node.operName or ())[-1:]:  # x = ANY (SELECT ...), x IN (SELECT ...)
            if isinstance(name, ast.String):
                self.ops.add(name.sval)

    def visit_LockingClause(self, ancestors: object,  # noqa: N802
                            node: ast.LockingClause) -> None:
        # SELECT ... FOR UPDATE / SHARE reads nothing more, and locks the rows it reads
        # until the step's transaction ends: the application's writes to them (another
        # table's, for a backfill's every batch) wait, or deadlock with the step.
        strength = str(getattr(node.strength, "name", node.strength))
        words = {"LCS_FORKEYSHARE": "KEY SHARE", "LCS_FORSHARE": "SHARE",
                 "LCS_FORNOKEYUPDATE": "NO KEY UPDATE"}.get(strength, "UPDATE")
        self.effects.append(f"SELECT ... FOR {words} (it locks the rows it reads)")

    def _writes(self, effect: str, node: ast.Node) -> None:
        self.effects.append(effect)
        rel = getattr(node, "relation", None)
        if isinstance(rel, ast.RangeVar):
            self.writes.add((rel.schemaname, rel.relname))

    def visit_InsertStmt(self, ancestors: object, node: ast.Node) -> None:  # noqa: N802
        self._writes("INSERT", node)

    def visit_UpdateStmt(self, ancestors: object, node: ast.Node) -> None:  # noqa: N802
        self._writes("UPDATE", node)

    def visit_DeleteStmt(self, ancestors: object, node: ast.Node) -> None:  # noqa: N802
        self._writes("DELETE", node)

    def visit_MergeStmt(self, ancestors: object, node: ast.Node) -> None:  # noqa: N802
        self._writes("MERGE", node)


def _no_value(ancestors: object) -> bool:
    """Whether a type name is a new column's, with no default or generation expression:
    no value is converted to it (ALTER COLUMN ... TYPE converts every row's)."""
    parent = getattr(ancestors, "node", None)
    if not isinstance(parent, ast.ColumnDef) or parent.raw_default is not None:
        return False
    if any(getattr(c, "contype", None) in (ConstrType.CONSTR_DEFAULT,
                                          ConstrType.CONSTR_GENERATED)
           for c in parent.constraints or ()):
        return False
    up = getattr(ancestors, "parent", None)
    grand = getattr(up, "node", None)
    return not (isinstance(grand, ast.AlterTableCmd)
                and grand.subtype == AT.AT_AlterColumnType)


def _evaluated(stmt: ast.Node) -> list[ast.Node]:
    """The parts of a statement whose expressions run when it runs."""
    if isinstance(stmt, _STORED_ONLY):
        return []
    if isinstance(stmt, ast.CreateTableAsStmt) and stmt.into is not None \
            and stmt.into.skipData:
        return []
    if isinstance(stmt, ast.CreateStmt):
        # A new table has no rows: only a partition's bounds are computed.
        return [stmt.partbound] if stmt.partbound is not None else []
    if isinstance(stmt, ast.AlterTableStmt):
        return [c for c in stmt.cmds or () if c.subtype != AT.AT_ColumnDefault]
    return [stmt]


# One-character operators reach the lexer as ASCII_<code> tokens.
_ASCII_OPS = {f"ASCII_{ord(c)}": c for c in "+-*/%^<>="}


def _scan(sql: str, into: _AllCalls) -> None:
    """Function names, operators and cast types in a PL/pgSQL expression (``x := f(1)``,
    ``g() > 0``, ``a === b``, ``v::money2``), read with PostgreSQL's own lexer: a name
    followed by ``(``, an operator token, a name after ``::``."""
    try:
        tokens = list(scan(sql))
    except ParseError:
        return

    def name(tok: object) -> str:
        text = sql[tok.start:tok.end + 1]  # type: ignore[attr-defined]
        return text[1:-1].replace('""', '"') if text.startswith('"') else text.lower()

    for i, tok in enumerate(tokens):
        if tok.kind != "NO_KEYWORD":
            into.ops |= _IMPLIED_OPS.get(sql[tok.start:tok.end + 1].upper(), frozenset())
        # (OPERATOR(pg_catalog.=) is the server's own, whatever the database has)
        own = i >= 2 and tokens[i - 1].name == "ASCII_46" \
            and name(tokens[i - 2]) == "pg_catalog"
        if tok.name == "Op" and not own:
            into.ops.add(sql[tok.start:tok.end + 1])
        elif tok.name in _ASCII_OPS and not own:
            into.ops.add(_ASCII_OPS[tok.name])
        elif tok.name == "TYPECAST" and i + 1 < len(tokens):
            j = i + 1  # (a qualified type: the last name)
            while j + 2 < len(tokens) and tokens[j + 1].name == "ASCII_46":
                j += 2
            into.typenames.add(name(tokens[j]))
        if i + 1 < len(tokens) and tokens[i + 1].name == "ASCII_40" \
                and tok.name not in ("SCONST", "ICONST", "FCONST", "Op", "PARAM",
                                     "OPERATOR") \
                and not tok.name.startswith("ASCII_"):
            schema = name(tokens[i - 2]) if i >= 2 and tokens[i - 1].name == "ASCII_46" \
                else None
            into.calls.add((schema, name(tok)))


def _expression(query: str, into: _AllCalls, assignment: bool = False) -> None:
    """A PL/pgSQL expression (``a IN (1, 2)``) or assignment (``x[i] := f(y)``): parsed
    as the SQL it is when it parses (every construct seen as in a SQL body), and scanned
    (:func:`_scan`) besides, for what does not."""
    _scan(query, into)
    parts = [query]
    with contextlib.suppress(ParseError):
        for tok in scan(query) if assignment else ():
            if tok.name == "COLON_EQUALS" or tok.name == "ASCII_61":  # := or =
                parts = [query[:tok.start], query[tok.end + 1:]]
                break
    for part in parts:
        try:
            parsed = _parse(f"SELECT {part}")
        except ParseError:
            continue
        for raw in parsed:
            into(raw.stmt)


def _plpgsql(definition: str) -> _AllCalls:
    """Calls and effects of a PL/pgSQL function, from PL/pgSQL's own parse tree."""
    seen = _AllCalls()
    try:
        tree = pglast.parse_plpgsql(definition)
    except (ParseError, Exception):  # noqa: BLE001 - an unreadable body is not trusted
        seen.effects.append("a body the check cannot read")
        return seen

    def walk(node: object) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            for key, value in node.items():
                if key.startswith("PLpgSQL_stmt_dyn") or key == "dynquery":
                    seen.effects.append("dynamic SQL (EXECUTE)")
                if key == "PLpgSQL_expr" and isinstance(value, dict):
                    query = value.get("query") or ""
                    if value.get("parseMode") == 0:
                        _sql(query, seen)
                    else:
                        # (modes 3-5: an assignment, "target := value")
                        _expression(query, seen, value.get("parseMode") in (3, 4, 5))
                walk(value)

    walk(tree)
    return seen


def _sql(body: str, seen: _AllCalls | None = None) -> _AllCalls:
    """Calls and effects of SQL statements (a SQL function's body, a PL/pgSQL statement)."""
    seen = seen if seen is not None else _AllCalls()
    try:
        parsed = _parse(body)
    except ParseError:
        seen.effects.append("a body the check cannot read")
        return seen
    for raw in parsed:
        stmt = raw.stmt
        if not isinstance(stmt, ast.SelectStmt):
            seen.effects.append(type(stmt).__name__.removesuffix("Stmt").upper())
        seen(stmt)
    return seen


class _Definition:
    def __init__(self, schema: str | None, name: str, language: str, definition: str,
                 body: str | None, atomic: ast.Node | None) -> None:
        self.schema, self.name, self.language = schema, name, language
        self.definition, self.body, self.atomic = definition, body, atomic

    calls: set[tuple[str | None, str]] | None = None  # an aggregate: its support functions
    definer: bool = False  # SECURITY DEFINER

    def read(self) -> _AllCalls:
        seen = _AllCalls()
        if self.calls is not None:
            seen.calls |= self.calls
            return seen
        if self.atomic is not None:  # BEGIN ATOMIC ... END: parsed with the statement
            seen(self.atomic)
            return seen
        if self.language == "sql":
            return _sql(self.body or "", seen)
        if self.language == "plpgsql":
            return _plpgsql(self.definition)
        seen.effects.append(f"code in language {self.language} the check cannot read")
        return seen


def _parsed_raw(statements: Sequence[str]) -> Iterator[tuple[str, ast.RawStmt]]:
    """(text, raw statement) of each statement in ``statements``, skipping texts that
    do not parse."""
    for sql in statements:
        try:
            parsed = _parse(sql)
        except ParseError:
            continue
        for raw in parsed:
            yield sql, raw


def _parsed(statements: Sequence[str]) -> Iterator[ast.Node]:
    """The statements of ``statements`` as parse trees, skipping any that do not parse."""
    for _, raw in _parsed_raw(statements):
        yield raw.stmt


def _definitions(statements: Sequence[str]) -> list[_Definition]:
    out = []
    for sql, raw in _parsed_raw(statements):
        stmt = raw.stmt
        if isinstance(stmt, ast.DefineStmt) and stmt.kind == ObjectType.OBJECT_AGGREGATE:
            out.append(_aggregate(stmt))
            continue
        if not isinstance(stmt, ast.CreateFunctionStmt):
            continue
        schema, name = _names_of(stmt.funcname)
        language, body, definer = "sql", None, False
        for opt in stmt.options or ():
            if opt.defname == "language":
                language = opt.arg.sval.lower()
            elif opt.defname == "as":
                body = opt.arg[0].sval if opt.arg else None
            elif opt.defname == "security":
                definer = bool(getattr(opt.arg, "boolval", False))
        text = sql[raw.stmt_location:raw.stmt_location + (raw.stmt_len or len(sql))]
        # (the parser has folded an unquoted name already; a quoted one keeps its
        # case, and is the name calls use: "Wipe"() is not wipe())
        out.append(_Definition(schema, name, language, text,
                               body, stmt.sql_body))
        out[-1].definer = definer
    return out


def _aggregate(stmt: ast.DefineStmt) -> _Definition:
    """CREATE AGGREGATE: a call of it is a call of each of its support functions."""
    schema, name = _names_of(stmt.defnames)
    agg = _Definition(schema, name, "aggregate", "", None, None)
    agg.calls = set()
    for opt in stmt.definition or ():
        arg = opt.arg
        if not (opt.defname or "").endswith("func"):  # sfunc, finalfunc, msfunc ...
            continue
        if isinstance(arg, ast.TypeName):  # (how the grammar hands over a function name)
            agg.calls.add(_names_of(arg.names))
        elif isinstance(arg, ast.String):
            agg.calls.add((None, arg.sval))
    return agg


# Settings a plan's SQL may change without changing how a name resolves or how a text
# lexes (Lockplane's own step SQL sets the timeouts and check_function_bodies).
_RESOLUTION_NEUTRAL = frozenset({
    "lock_timeout", "statement_timeout", "transaction", "check_function_bodies",
    "idle_in_transaction_session_timeout", "idle_session_timeout", "work_mem",
    "maintenance_work_mem", "max_parallel_maintenance_workers", "synchronous_commit",
    "application_name", "client_min_messages", "jit", "extra_float_digits", "datestyle",
    "intervalstyle", "timezone"})
# Objects a plan may create, rename or move that change what an expression resolves to
# before the expression runs, and that the server does not have yet (functions are
# matched by name: see function_effects).
_RESOLVES_TO = frozenset({ObjectType.OBJECT_FUNCTION, ObjectType.OBJECT_PROCEDURE,
                          ObjectType.OBJECT_ROUTINE, ObjectType.OBJECT_AGGREGATE,
                          ObjectType.OBJECT_OPERATOR, ObjectType.OBJECT_TYPE,
                          ObjectType.OBJECT_DOMAIN, ObjectType.OBJECT_SCHEMA,
                          ObjectType.OBJECT_CAST, ObjectType.OBJECT_OPCLASS,
                          ObjectType.OBJECT_OPFAMILY})


def _changes_resolution(statements: Sequence[str]) -> bool:
    """Whether the plan's SQL changes what the server would resolve its expressions to by
    the time they run, in ways only the by-name reading covers: a setting (search_path,
    role: "$user"), an operator, cast, type, aggregate or operator class it makes, or a
    function, type or schema it renames or moves, a domain's CHECK it adds."""
    for stmt in _parsed(statements):
        if isinstance(stmt, ast.VariableSetStmt):
            if (stmt.name or "").lower() not in _RESOLUTION_NEUTRAL:
                return True
        elif isinstance(stmt, ast.DefineStmt) and stmt.kind != ObjectType.OBJECT_COLLATION:
            return True  # CREATE OPERATOR / AGGREGATE / TYPE (base)
        elif isinstance(stmt, (ast.CreateCastStmt, ast.CompositeTypeStmt, ast.CreateEnumStmt,
                               ast.CreateRangeStmt, ast.CreateDomainStmt,
                               ast.AlterDomainStmt,
                               ast.CreateOpClassStmt, ast.CreateOpFamilyStmt,
                               ast.CreateConversionStmt)):
            return True
        elif isinstance(stmt, ast.RenameStmt) and stmt.renameType in _RESOLVES_TO:
            return True
        elif isinstance(stmt, ast.AlterObjectSchemaStmt) and stmt.objectType in _RESOLVES_TO:
            return True
    return False


def _may_reach_own_code(seen: _AllCalls, catalog: _Catalog) -> bool:
    """Whether what a statement names could resolve to code that is not the server's
    own: a function not qualified with pg_catalog, a type named (a domain, a cast), an
    operator the database has its own of, or any cast of the database's own (an implicit
    or assignment cast names nothing). When not, asking the server finds nothing either."""
    return any(sch != "pg_catalog" for sch, _ in seen.calls) or bool(seen.types) \
        or bool(catalog.functions_of(seen.ops, set())) or catalog.has_casts()


def function_effects(db: PostgresDatabase, statements: Sequence[str],
                     defined: Sequence[str], rewrites: bool = False,
                     writes: Sequence[tuple[str | None, str]] = ()) -> list[str]:
    """What the user-defined functions these statements evaluate do beyond computing a
    value, in words ("public.f (through public.g): dynamic SQL (EXECUTE)"); functions
    are looked up among the CREATE FUNCTIONs of ``defined`` (the plan's SQL) first, then
    in the database (its own functions, not an extension's).

    Besides the functions the statements call themselves, a statement evaluates
    expressions already stored on a table (see :func:`_reevaluated`): ``rewrites`` says
    the step rewrites the tables it alters (its lock facts), ``writes`` names tables whose
    rows the step changes outside its SQL (a batched backfill)."""
    roots: dict[tuple[str | None, str], str] = {}
    seen = _AllCalls()
    wants: list[_Want] = [_Want("dml", schema, table) for schema, table in writes]
    catalog = _Catalog(db)
    ask: list[bool] = []  # (whether the server may be asked: asked once, when needed)
    for sql in statements:
        try:
            parsed = _parse(sql)
        except ParseError:
            continue
        for raw in parsed:
            wants += _reevaluated(raw.stmt, rewrites)
            mine = _AllCalls()
            for part in _evaluated(raw.stmt):
                mine(part)
            # A query or DML statement that may reach the database's own code is
            # resolved by the server (its exact functions, operators and casts); by
            # name only when the server cannot say (a table the plan makes first).
            if len(parsed) == 1 and isinstance(raw.stmt, resolved.RESOLVABLE) \
                    and _may_reach_own_code(mine, catalog):
                if not ask:
                    ask.append(not _changes_resolution([*defined, *statements])
                               and resolved.usable(db))
                got = resolved.resolved_calls(db, sql, defined) if ask[0] else None
                if got is not None:
                    for call, why in got.items():
                        roots.setdefault(call, why)
                    # The plan's own functions do not exist yet: a call by one of their
                    # names may be theirs once the plan has run (a closer overload).
                    mine_names = {d.name for d in _definitions(defined)}
                    for call in mine.calls:
                        if call[1] in mine_names:
                            roots.setdefault(call, "")
                    continue
            seen.calls |= mine.calls
            seen.types |= mine.types
            seen.ops |= mine.ops
            seen.typenames |= mine.typenames
    for call in seen.calls:
        roots.setdefault(call, "")
    # A value of a domain type is checked by the domain's CHECKs where it is made.
    for call in _domain_calls(db, seen.types, defined):
        roots.setdefault(call, "")
    planned = _definitions(defined)
    for call, why in _runs_as_owner(db, statements).items():
        roots.setdefault(call, why)
    for call, why in catalog.functions_of(seen.ops, seen.typenames).items():
        roots.setdefault(call, why)
    existing_triggers: set[tuple[str | None, str]] = set()
    stored = _stored_calls(db, wants, defined, planned)
    if any(_fires_event_triggers(stmt) for stmt in _parsed(statements)):
        for call, why_existing in _event_trigger_calls(db, defined, planned).items():
            stored.setdefault(call, why_existing)
    if any(isinstance(stmt, ast.IndexStmt) for stmt in _parsed(statements)) \
            or any(w.kind in ("rewrite", "dml", "attach") for w in wants):
        for call, why_existing in _range_support_calls(db, defined, planned).items():
            stored.setdefault(call, why_existing)
    for call, (why, existing) in stored.items():
        roots.setdefault(call, why)
        if existing and roots[call] == why:
            existing_triggers.add(call)
    # A built-in reached through the database's own operator, cast or domain (CREATE
    # OPERATOR ### (RIGHTARG = text, FUNCTION = pg_catalog.pg_read_file), made by a
    # superuser) is in no call a parse of the step sees: judged as a call of it.
    hidden = {r: why for r, why in roots.items() if r[0] == "pg_catalog" and why}
    roots = {r: why for r, why in roots.items() if r[0] != "pg_catalog"}
    found: list[str] = []
    if hidden:
        _, risky = _judge_builtins(db, {r: (why,) for r, why in hidden.items()})
        found += [f"pg_catalog.{r[1]}, {why}: it has side effects or the server lets no "
                  "ordinary user run it" for r, why in sorted(hidden.items()) if r[1] in risky]

    def fired_by(tables: set[tuple[str | None, str]]) -> dict[tuple[str | None, str], bool]:
        wants = [_Want("dml", schema, table) for schema, table in sorted(
            tables, key=lambda t: (t[0] or "", t[1]))]
        return {c: existing for c, (_, existing) in
                _stored_calls(db, wants, defined, planned).items()}

    for root in sorted(roots, key=lambda r: (r[0] or "", r[1])):
        effects = _effects_of(db, root, planned, catalog, fired_by,
                              through_plan_only=root in existing_triggers)
        if effects:
            found.append(effects + (f", {roots[root]}" if roots[root] else ""))
    return found + _views_of_closed_relations(db, statements)


# ------------------------------------------------------------------- what the owner runs
# Objects a plan makes belong to the role applying it, often a superuser, and some run
# with their owner's privileges whenever anyone uses them later: a SECURITY DEFINER
# function for whoever may call it (EXECUTE is PUBLIC's by default), a view or
# materialized view reading relations with its owner's rights, a rule's actions reading
# and writing with its table owner's rights (for whoever may write to the table). Checked against
# PostgreSQL 15 on e7ce489: a schema file's "CREATE FUNCTION promote_me() SECURITY
# DEFINER ... UPDATE pg_authid SET rolsuper = true WHERE rolname = session_user" and a
# view over pg_authid granted to PUBLIC both applied; any login role then made itself
# superuser, or read every password hash. So such a function is judged as if the step
# evaluated it, and a view or rule may not use a system relation as PUBLIC may not. So is the
# function of an event trigger the plan makes: it runs as whoever makes DDL later.


# A SECURITY DEFINER function owned by a role with no power beyond its own objects is
# the application's design (a trigger that writes a profile row, say), and the plan shows
# its body. Owned by a role that has more, whoever may call it borrows that power.
_HOLDS_POWERS = """
SELECT r.rolsuper OR r.rolcreaterole OR r.rolbypassrls OR EXISTS (
  SELECT 1 FROM pg_roles p
  WHERE p.rolname LIKE 'pg\\_%' AND p.rolname <> 'pg_database_owner'
    AND p.oid < 16384 AND pg_has_role(r.oid, p.oid, 'USAGE'))
FROM pg_roles r WHERE r.rolname = current_user
"""


def _holds_powers(db: PostgresDatabase) -> bool:
    """Whether the applying role (the owner of what the plan makes) may do more than
    use its own objects: a superuser, CREATEROLE, BYPASSRLS, or a member of a predefined
    role (reading server files, all data, signalling backends ...; asked of the server)."""
    rows = db.query(_HOLDS_POWERS)
    return bool(rows and rows[0][0])


def _runs_as_owner(db: PostgresDatabase,
                   statements: Sequence[str]) -> dict[tuple[str | None, str], str]:
    out: dict[tuple[str | None, str], str] = {}
    why = ("a SECURITY DEFINER function: whoever may call it runs its code with the "
           "privileges of its owner, the role applying the plan, which holds powers "
           "beyond its own objects")
    definers = [(d.schema, d.name) for d in _definitions(statements) if d.definer]
    definers += [_names_of(stmt.func.objname) for stmt in _parsed(statements)
                 if isinstance(stmt, ast.AlterFunctionStmt) and stmt.func is not None
                 and any(a.defname == "security" and getattr(a.arg, "boolval", False)
                         for a in stmt.actions or ())]
    if definers and _holds_powers(db):
        for call in definers:
            out.setdefault(call, why)
    for stmt in _parsed(statements):
        if isinstance(stmt, ast.CreateEventTrigStmt) and stmt.funcname:
            # (it runs as whoever makes DDL from now on: migrations, often a superuser's)
            out.setdefault(_names_of(stmt.funcname), (
                f"the function of event trigger {stmt.trigname}, which runs as whoever "
                "makes DDL in the database from now on (migrations: often a superuser)"))
    return out


def _views_of_closed_relations(db: PostgresDatabase, statements: Sequence[str]) -> list[str]:
    """Views, materialized views and rules of these statements that read (or, a rule's
    action, write) a pg_catalog relation in a way PUBLIC may not: each runs with the
    privileges of its table's owner, the role applying the plan."""
    # (label, [(relation name, privilege)])
    uses: list[tuple[str, list[tuple[str, str]]]] = []

    def catalog_names(node: ast.Node) -> set[str]:
        rels = _Relations()
        rels(node)
        # (an unqualified name is pg_catalog's first: it is searched before any schema)
        return {n for sch, n in rels.names if sch in (None, "pg_catalog")}

    for stmt in _parsed(statements):
        if isinstance(stmt, ast.ViewStmt) and stmt.view is not None:
            rel, query = stmt.view, stmt.query
        elif isinstance(stmt, ast.CreateTableAsStmt) and stmt.into is not None \
                and stmt.into.rel is not None:
            rel, query = stmt.into.rel, stmt.query
        elif isinstance(stmt, ast.RuleStmt) and stmt.relation is not None:
            used: list[tuple[str, str]] = []
            for action in stmt.actions or ():
                written = getattr(action, "relation", None)
                if isinstance(action, (ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt,
                                       ast.MergeStmt)) and isinstance(written, ast.RangeVar) \
                        and written.schemaname in (None, "pg_catalog"):
                    used.append((written.relname, type(action).__name__
                                 .removesuffix("Stmt").upper().replace("MERGE", "UPDATE")))
                used += [(n, "SELECT") for n in catalog_names(action)]
            uses.append((f"rule {stmt.rulename} on {stmt.relation.relname}", used))
            continue
        else:
            continue
        label = f"{rel.schemaname}.{rel.relname}" if rel.schemaname else rel.relname
        uses.append((f"view {label}", [(n, "SELECT") for n in catalog_names(query)]))
    wanted = sorted({u for _, used in uses for u in used})
    if not wanted:
        return []
    closed = {(r[0], r[1]) for r in db.query(
        "SELECT c.relname, w.priv FROM unnest(%s::text[], %s::text[]) AS w(rel, priv) "
        "JOIN pg_class c ON c.relname = w.rel "
        "AND c.relnamespace = 'pg_catalog'::regnamespace "
        "WHERE NOT has_table_privilege('public', c.oid, w.priv)",
        ([n for n, _ in wanted], [p for _, p in wanted]))}
    return [f"{label}: {'reads' if priv == 'SELECT' else 'writes'} pg_catalog.{name}, which "
            f"PUBLIC may not {'read' if priv == 'SELECT' else 'change'}; whoever uses it "
            "does so with the privileges of its owner, the role applying the plan"
            for label, used in uses for name, priv in sorted(set(used)) if (name, priv) in closed]


# ------------------------------------------------------------------------ event triggers
# An event trigger runs its function (as the session's user) on every DDL command of the
# database: each DDL step of a plan fires the event triggers the target already has.
# What they do themselves is the database's own code, as a table's existing trigger is;
# what they reach that the plan gives a new body is not (checked against PostgreSQL 15:
# an event trigger calling a helper that a plan's CREATE OR REPLACE redefined ran the new
# body on the plan's next statement, and on that CREATE OR REPLACE itself). The plan's
# own event triggers are created after every other step, and its drops and disables of
# event triggers come before any (create_event_trigger.py): those never fire on its DDL.

# Statements that fire no event trigger (not DDL, or about event triggers themselves).
_NO_EVENT = (ast.SelectStmt, ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt,
             ast.MergeStmt, ast.VariableSetStmt, ast.VariableShowStmt,
             ast.TransactionStmt, ast.CopyStmt, ast.CreateEventTrigStmt,
             ast.AlterEventTrigStmt, ast.ExplainStmt, ast.LockStmt, ast.VacuumStmt,
             ast.NotifyStmt, ast.CheckPointStmt, ast.DiscardStmt)


def _fires_event_triggers(stmt: ast.Node) -> bool:
    if isinstance(stmt, _NO_EVENT):
        return False
    return _event_trigger_target(stmt) is None


def _event_trigger_target(stmt: ast.Node) -> str | None:
    """The name of the event trigger a DROP / COMMENT / ALTER EVENT TRIGGER acts on."""
    if isinstance(stmt, ast.AlterEventTrigStmt):
        return stmt.trigname
    if not any(getattr(stmt, attr, None) == ObjectType.OBJECT_EVENT_TRIGGER
               for attr in ("removeType", "objtype", "renameType", "objectType")):
        return None
    objects = getattr(stmt, "objects", None) or (getattr(stmt, "object", None),)
    for obj in objects:
        if isinstance(obj, ast.String):
            return obj.sval
        if isinstance(obj, (list, tuple)) and obj and isinstance(obj[-1], ast.String):
            return obj[-1].sval
    return ""


def _event_trigger_calls(db: PostgresDatabase, defined: Sequence[str],
                         planned: list[_Definition],
                         ) -> dict[tuple[str | None, str], tuple[str, bool]]:
    """The functions of the target's enabled event triggers that the plan neither drops
    nor disables (those go before any other step), with why, and whether each is the
    database's own code (a function the plan does not redefine)."""
    gone = set()
    for stmt in _parsed(defined):
        if isinstance(stmt, ast.DropStmt) or (isinstance(stmt, ast.AlterEventTrigStmt)
                                              and stmt.tgenabled == "D"):
            gone.add(_event_trigger_target(stmt))
    out: dict[tuple[str | None, str], tuple[str, bool]] = {}
    # (replica-only triggers fire only under session_replication_role = replica)
    for evtname, nsp, proname in db.query(
            "SELECT e.evtname, n.nspname, p.proname FROM pg_event_trigger e "
            "JOIN pg_proc p ON p.oid = e.evtfoid "
            "JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE e.evtenabled IN ('O', 'A') ORDER BY 1"):
        if evtname in gone:
            continue
        existing = not any(d.name == proname and d.schema in (nsp, None) for d in planned)
        out.setdefault((nsp, proname), (f"which event trigger {evtname} runs on the "
                                        "step's DDL", existing))
    return out


# -------------------------------------------------------------------- range types
# A range type's subtype_diff runs wherever its values go into a GiST or SP-GiST index
# (the penalty and split functions of range_ops call it: checked against PostgreSQL 15,
# a plan's CREATE INDEX ... USING gist over a new range column ran the plan's
# subtype_diff for the rows, as the applying user), and its canonical function wherever
# a value is made. No expression names them, and the index's column may be one the
# plan adds: so every index build, rewrite and write counts the support functions of
# the plan's range types and of the database's (those as its own code, see _effects_of).


def _range_support_calls(db: PostgresDatabase, defined: Sequence[str],
                         planned: list[_Definition],
                         ) -> dict[tuple[str | None, str], tuple[str, bool]]:
    out: dict[tuple[str | None, str], tuple[str, bool]] = {}
    for stmt in _parsed(defined):
        if isinstance(stmt, ast.CreateRangeStmt):
            _, typname = _names_of(stmt.typeName)
            for opt in stmt.params or ():
                if opt.defname in ("subtype_diff", "canonical") \
                        and isinstance(opt.arg, ast.TypeName):
                    out.setdefault(_names_of(opt.arg.names), (
                        f"the {opt.defname} function of range type {typname}, which an "
                        "index of its values runs", False))
    for typname, nsp, proname, role in db.query(
            "SELECT t.typname, n.nspname, p.proname, CASE WHEN p.oid = r.rngsubdiff "
            "THEN 'subtype_diff' ELSE 'canonical' END FROM pg_range r "
            "JOIN pg_type t ON t.oid = r.rngtypid "
            "JOIN pg_proc p ON p.oid IN (r.rngsubdiff, r.rngcanonical) "
            "JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 3"):
        existing = not any(d.name == proname and d.schema in (nsp, None) for d in planned)
        out.setdefault((nsp, proname), (f"the {role} function of range type {typname}, "
                                        "which an index of its values runs", existing))
    return out


# ------------------------------------------------------------ expressions stored on tables
# A statement also evaluates expressions the table already holds, which name no function in
# its own SQL (checked against PostgreSQL 15, a function that raises a NOTICE per row):
# - a table rewrite (ALTER COLUMN TYPE, SET LOGGED/UNLOGGED, ADD COLUMN with a volatile
#   default ...) rebuilds every index: index expressions, partial-index predicates, the
#   operator classes' support functions; it checks again the CHECK constraints over a
#   retyped column (even when the type change rewrites nothing: varchar(10) -> (20));
# - writing rows (UPDATE, INSERT, a backfill's batches): indexes, CHECKs, defaults and
#   generated columns, domain CHECKs of the columns, and the table's triggers;
# - VALIDATE CONSTRAINT: that constraint (a foreign key: its equality operators);
# - ATTACH PARTITION: the parent's partition key (for the new partition's rows and the
#   default partition's), and the parent's indexes, built on the new partition;
#   CREATE TABLE ... PARTITION OF: the partition key, for the default partition's rows;
# - ALTER DOMAIN ... VALIDATE CONSTRAINT: that CHECK of the domain.
# SET NOT NULL scans for NULLs only; CREATE INDEX and ADD CONSTRAINT evaluate only what
# their own SQL says (read above), not the table's other indexes or constraints.


class _Want:
    """One thing a statement evaluates again: ``kind`` of :data:`_PARTS`, on a table
    (or a domain, for "domain"), optionally one constraint of it."""

    def __init__(self, kind: str, schema: str | None, name: str,
                 constraint: str | None = None) -> None:
        self.kind, self.schema, self.name, self.constraint = kind, schema, name, constraint


# kind: (indexes, CHECK/exclusion constraints, defaults and generated columns, domain
# CHECKs of the columns, triggers, partition key)
_PARTS: dict[str, tuple[bool, bool, bool, bool, bool, bool]] = {
    "rewrite": (True, True, False, False, False, False),
    "dml": (True, True, True, True, True, False),
    "validate": (False, False, False, False, False, False),
    "attach": (True, False, False, False, False, True),
    "partition": (False, False, False, False, False, True),
    "read": (False, False, False, False, False, False),  # a view's query: _RETURN rules
    "domain": (False, False, False, True, False, False),
}
_REWRITES = {AT.AT_AlterColumnType, AT.AT_SetLogged, AT.AT_SetUnLogged,
             AT.AT_SetAccessMethod}


def _rel(node: ast.RangeVar) -> tuple[str | None, str]:
    return node.schemaname, node.relname


class _Relations(Visitor):
    def __init__(self) -> None:
        self.names: set[tuple[str | None, str]] = set()

    def visit_RangeVar(self, ancestors: object, node: ast.RangeVar) -> None:  # noqa: N802
        self.names.add(_rel(node))


def _reevaluated(stmt: ast.Node, rewrites: bool) -> list[_Want]:
    """What of a table's stored expressions this statement evaluates again."""
    out: list[_Want] = []
    query = stmt.query if isinstance(stmt, ast.CreateTableAsStmt) and not (
        stmt.into is not None and stmt.into.skipData) else \
        stmt.selectStmt if isinstance(stmt, ast.InsertStmt) else \
        stmt if isinstance(stmt, ast.SelectStmt) else None
    if query is not None:
        # A query runs the queries of the views it reads (a materialized view created
        # with data over a view whose function the plan gives a new body).
        rels = _Relations()
        rels(query)
        out += [_Want("read", schema, name) for schema, name in sorted(
            rels.names, key=lambda r: (r[0] or "", r[1]))]
    if isinstance(stmt, ast.AlterTableStmt) and stmt.relation is not None:
        schema, name = _rel(stmt.relation)
        cmds = stmt.cmds or ()
        if rewrites or any(c.subtype in _REWRITES for c in cmds):
            out.append(_Want("rewrite", schema, name))
        for c in cmds:
            if c.subtype == AT.AT_ValidateConstraint and c.name:
                out.append(_Want("validate", schema, name, c.name))
            elif c.subtype == AT.AT_AttachPartition:
                out.append(_Want("attach", schema, name))
    elif isinstance(stmt, ast.RefreshMatViewStmt) and stmt.relation is not None:
        out.append(_Want("read", *_rel(stmt.relation)))
    elif isinstance(stmt, ast.CreateStmt) and stmt.partbound is not None:
        # CREATE TABLE ... PARTITION OF: the parent's default partition is scanned for rows
        # that would belong to the new one, through the partition key.
        for parent in stmt.inhRelations or ():
            out.append(_Want("partition", *_rel(parent)))
    elif isinstance(stmt, (ast.UpdateStmt, ast.InsertStmt, ast.DeleteStmt, ast.MergeStmt)) \
            and stmt.relation is not None:
        out.append(_Want("dml", *_rel(stmt.relation)))
    elif isinstance(stmt, ast.AlterDomainStmt) and stmt.subtype == "V" and stmt.name:
        schema, name = _names_of(stmt.typeName)
        out.append(_Want("domain", schema, name, stmt.name))
    return out


def _renamed_from(defined: Sequence[str]) -> dict[str, set[str]]:
    """Table names the plan renames, new name -> the names it had before (the database
    holds a table under the name it has before the plan runs)."""
    before: dict[str, set[str]] = {}
    for stmt in _parsed(defined):
        if isinstance(stmt, ast.RenameStmt) and stmt.renameType == ObjectType.OBJECT_TABLE \
                and stmt.relation is not None and stmt.newname:
            before.setdefault(stmt.newname, set()).add(stmt.relation.relname)
    changed = True
    while changed:  # a -> b -> c: c was also a
        changed = False
        for new, olds in before.items():
            more = set().union(*(before.get(o, set()) for o in olds)) - olds - {new}
            if more:
                olds |= more
                changed = True
    return before


_STORED_SQL = """
WITH RECURSIVE rel AS (
  SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relname = ANY(%(names)s) AND (%(schema)s::text IS NULL OR n.nspname = %(schema)s)
    AND NOT %(is_domain)s),
reach(oid) AS (
  SELECT oid FROM rel WHERE %(reads)s
  UNION SELECT d.refobjid FROM reach JOIN pg_rewrite r ON r.ev_class = reach.oid
  JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass::oid AND d.objid = r.oid
    AND d.refclassid = 'pg_class'::regclass::oid AND d.refobjid <> reach.oid),
dom(oid) AS (
  SELECT a.atttypid FROM pg_attribute a
  WHERE a.attrelid IN (SELECT oid FROM rel) AND a.attnum > 0 AND NOT a.attisdropped
  UNION SELECT t.oid FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
  WHERE %(is_domain)s AND t.typname = ANY(%(names)s)
    AND (%(schema)s::text IS NULL OR n.nspname = %(schema)s)
  UNION SELECT x.oid FROM dom JOIN pg_type t ON t.oid = dom.oid,
    LATERAL (VALUES (t.typbasetype), (t.typelem)) AS x(oid) WHERE x.oid <> 0::oid),
objs(classid, objid) AS (
  SELECT 'pg_class'::regclass::oid, i.indexrelid FROM pg_index i
  WHERE %(indexes)s AND i.indrelid IN (SELECT oid FROM rel)
  UNION ALL SELECT 'pg_constraint'::regclass::oid, k.oid FROM pg_constraint k
  WHERE k.conrelid IN (SELECT oid FROM rel)
    AND ((%(checks)s AND k.contype IN ('c', 'x')) OR k.conname = %(constraint)s
         OR (%(partkey)s AND k.contype = 'f'))
  UNION ALL SELECT 'pg_attrdef'::regclass::oid, d.oid FROM pg_attrdef d
  WHERE %(defaults)s AND d.adrelid IN (SELECT oid FROM rel)
  UNION ALL SELECT 'pg_class'::regclass::oid, oid FROM rel WHERE %(partkey)s
  UNION ALL SELECT 'pg_rewrite'::regclass::oid, r.oid FROM pg_rewrite r
  WHERE r.ev_class IN (SELECT oid FROM reach)
  UNION ALL SELECT 'pg_trigger'::regclass::oid, t.oid FROM pg_trigger t
  WHERE %(triggers)s AND NOT t.tgisinternal AND t.tgenabled <> 'D'
    AND t.tgrelid IN (SELECT oid FROM rel)
  UNION ALL SELECT 'pg_policy'::regclass::oid, p.oid FROM pg_policy p
  WHERE (%(triggers)s AND p.polrelid IN (SELECT oid FROM rel))
     OR p.polrelid IN (SELECT oid FROM reach)
  UNION ALL SELECT 'pg_constraint'::regclass::oid, k.oid FROM pg_constraint k
  WHERE %(domains)s AND k.contypid IN (SELECT oid FROM dom)
    AND (NOT %(is_domain)s OR k.conname = %(constraint)s)),
procs(oid, classid, objid, how) AS (
  SELECT d.refobjid, o.classid, o.objid,
    CASE WHEN o.classid = 'pg_trigger'::regclass::oid THEN 'trigger'
         WHEN o.classid = 'pg_policy'::regclass::oid THEN 'policy' ELSE '' END
    FROM objs o JOIN pg_depend d
    ON d.classid = o.classid AND d.objid = o.objid AND d.refclassid = 'pg_proc'::regclass::oid
  UNION ALL SELECT op.oprcode, o.classid, o.objid, 'operator '::text || op.oprname::text
    FROM objs o JOIN pg_depend d
    ON d.classid = o.classid AND d.objid = o.objid AND d.refclassid = 'pg_operator'::regclass::oid
    JOIN pg_operator op ON op.oid = d.refobjid
  UNION ALL SELECT ap.amproc, o.classid, o.objid, 'operator class '::text || oc.opcname::text
    FROM objs o JOIN pg_depend d
    ON d.classid = o.classid AND d.objid = o.objid AND d.refclassid = 'pg_opclass'::regclass::oid
    JOIN pg_opclass oc ON oc.oid = d.refobjid JOIN pg_amproc ap ON ap.amprocfamily = oc.opcfamily
  UNION ALL SELECT op.oprcode, o.classid, o.objid, 'operator class '::text || oc.opcname::text
    FROM objs o JOIN pg_depend d
    ON d.classid = o.classid AND d.objid = o.objid AND d.refclassid = 'pg_opclass'::regclass::oid
    JOIN pg_opclass oc ON oc.oid = d.refobjid JOIN pg_amop am ON am.amopfamily = oc.opcfamily
    JOIN pg_operator op ON op.oid = am.amopopr
  UNION ALL SELECT t.tgfoid, o.classid, o.objid, 'trigger' FROM objs o
    JOIN pg_trigger t ON o.classid = 'pg_trigger'::regclass::oid AND t.oid = o.objid
  UNION ALL SELECT op.oprcode, o.classid, o.objid, 'operator '::text || op.oprname::text
    FROM objs o
    JOIN pg_constraint k ON o.classid = 'pg_constraint'::regclass::oid AND k.oid = o.objid,
    pg_catalog.unnest(pg_catalog.array_cat(pg_catalog.array_cat(
      coalesce(k.conpfeqop, '{}'), coalesce(k.conppeqop, '{}')), coalesce(k.conffeqop, '{}')))
    AS e(opr)
    JOIN pg_operator op ON op.oid = e.opr)
SELECT DISTINCT n.nspname, p.proname, pg_describe_object(procs.classid,
  procs.objid, 0), procs.how
FROM procs JOIN pg_proc p ON p.oid = procs.oid JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY 1, 2, 3, 4
"""


def _stored_calls(db: PostgresDatabase, wants: Sequence[_Want], defined: Sequence[str],
                  planned: list[_Definition],
                  ) -> dict[tuple[str | None, str], tuple[str, bool]]:
    """Functions the expressions stored on these tables call, asked of the server
    (pg_depend from indexes, constraints, defaults, triggers, the partition key; their
    operators and operator classes resolved to functions), with where each was found and
    whether it is an existing trigger's function that the plan does not redefine.
    The plan's own definitions on those tables (a table it creates, then fills) too."""
    out: dict[tuple[str | None, str], tuple[str, bool]] = {}
    if not wants:
        return out
    renamed = _renamed_from(defined)
    for want in wants:
        indexes, checks, defaults, domains, triggers, partkey = _PARTS[want.kind]
        names = sorted({want.name, *renamed.get(want.name, ())})
        rows = db.query(_STORED_SQL, {
            "names": names, "schema": want.schema, "is_domain": want.kind == "domain",
            "indexes": indexes, "checks": checks, "defaults": defaults, "domains": domains,
            "triggers": triggers, "partkey": partkey, "constraint": want.constraint,
            "reads": want.kind in ("read", "dml")})  # (a write fires the table's rules)
        for nsp, proname, obj, how in rows:
            call = (nsp, proname)
            if obj.startswith("table "):  # what a table itself calls: its partition key
                obj = f"the partition key of {obj}"
            # A trigger already there runs on every write the application makes: what it
            # does itself is the application's, but what it calls that this plan
            # (re)defines is new code that the step runs (see _effects_of).
            # So is a row security policy already there (it runs for each row the
            # step's UPDATE reads or writes, as the applying role when that role is
            # subject to it: a non-superuser owner under FORCE ROW LEVEL SECURITY).
            existing = how in ("trigger", "policy") and not any(
                d.name == proname and d.schema in (nsp, None) for d in planned)
            out.setdefault(call, (f"which {obj} runs for each row the step writes"
                                  if how == "trigger" else
                                  f"which {obj} evaluates for each row the step reads "
                                  "or writes" if how == "policy" else
                                  f"which {how + ' in ' if how else ''}{obj} calls (the "
                                  "step evaluates it again)", existing))
        for call in _planned_on(want, names, defined):
            out.setdefault(call, (f"which this plan's definitions on {want.name} call",
                                  False))
    return out


def _planned_on(want: _Want, names: Sequence[str],
                defined: Sequence[str]) -> set[tuple[str | None, str]]:
    """Functions the plan's own CREATE TABLE / CREATE INDEX / ALTER TABLE statements on a
    table written to call (a table the plan creates has nothing stored in the database)."""
    seen = _AllCalls()
    policies = (ast.CreatePolicyStmt, ast.AlterPolicyStmt)
    # (a policy's expressions run for the rows read or written)
    kinds = policies if want.kind == "read" else \
        (ast.CreateStmt, ast.IndexStmt, ast.AlterTableStmt, *policies) \
        if want.kind == "dml" else ()
    for stmt in _parsed(defined):
        rel = stmt.table if isinstance(stmt, policies) else getattr(stmt, "relation", None)
        if isinstance(stmt, kinds) and isinstance(rel, ast.RangeVar) and rel.relname in names:
            seen(stmt)
    if want.kind == "read":
        return seen.calls | _planned_views(set(names), defined)
    return seen.calls


def _planned_views(names: set[str], defined: Sequence[str]) -> set[tuple[str | None, str]]:
    """Functions the queries of the plan's own views with these names call, through the
    views those read in turn."""
    views: dict[str, ast.Node] = {}
    for stmt in _parsed(defined):
        if isinstance(stmt, ast.ViewStmt) and stmt.view is not None:
            views[stmt.view.relname] = stmt.query
        elif isinstance(stmt, ast.CreateTableAsStmt) and stmt.into is not None \
                and stmt.into.rel is not None:
            views[stmt.into.rel.relname] = stmt.query
    seen = _AllCalls()
    todo, done = list(names), set()
    while todo:
        name = todo.pop()
        if name in done or name not in views:
            continue
        done.add(name)
        seen(views[name])
        rels = _Relations()
        rels(views[name])
        todo += [n for _, n in rels.names]
    return seen.calls


class _Catalog:
    """The user-defined operators and casts of the database, read once per check: an
    expression ``a === b`` or ``v::money2`` calls their functions."""

    def __init__(self, db: PostgresDatabase) -> None:
        self.db = db
        self._rows: list[tuple[str, str, str, str, str]] | None = None
        self._closed: set[str] | None = None

    def closed_relations(self, names: set[str]) -> set[str]:
        """Which of these pg_catalog relations PUBLIC may not read."""
        if not names:
            return set()
        if self._closed is None:
            self._closed = {r[0] for r in self.db.query(
                "SELECT c.relname FROM pg_class c "
                "WHERE c.relnamespace = 'pg_catalog'::regnamespace "
                "AND NOT has_table_privilege('public', c.oid, 'SELECT')")}
            if _holds_powers(self.db):
                self._closed |= _SEES_MORE
        return names & self._closed

    def has_casts(self) -> bool:
        """Whether the database has casts of its own (with a function)."""
        return any(kind == "c" for kind, *_ in self._read())

    def functions_of(self, ops: set[str],
                     typenames: set[str]) -> dict[tuple[str | None, str], str]:
        if not ops and not typenames:
            return {}
        out: dict[tuple[str | None, str], str] = {}
        for kind, a, b, nsp, proname in self._read():
            if kind == "o" and a in ops:
                out.setdefault((nsp, proname), f"the function of operator {a}")
            elif kind == "c" and (a in typenames or b in typenames):
                out.setdefault((nsp, proname), f"the function of the cast from {a} to {b}")
        return out

    def _read(self) -> list[tuple[str, str, str, str, str]]:
        if self._rows is None:
            self._rows = [tuple(r) for r in self.db.query(
                "SELECT 'o', o.oprname, '', n.nspname, p.proname FROM pg_operator o "
                "JOIN pg_proc p ON p.oid = o.oprcode "
                "JOIN pg_namespace n ON n.oid = p.pronamespace "
                # (an operator of the database's own over a built-in counts: see
                # function_effects)
                "WHERE (n.nspname NOT IN ('pg_catalog', 'information_schema') "
                "  OR o.oprnamespace <> 'pg_catalog'::regnamespace) "
                "UNION ALL SELECT 'c', s.typname, t.typname, n.nspname, p.proname "
                "FROM pg_cast c JOIN pg_type s ON s.oid = c.castsource "
                "JOIN pg_type t ON t.oid = c.casttarget JOIN pg_proc p ON p.oid = c.castfunc "
                "JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')")]
        return self._rows


def _domain_calls(db: PostgresDatabase, types: set[tuple[str | None, str]],
                  defined: Sequence[str]) -> set[tuple[str | None, str]]:
    """Functions the CHECKs and defaults of these types (when domains) call: the plan's
    CREATE/ALTER DOMAIN statements, then the database's domains."""
    if not types:
        return set()
    calls = _AllCalls()
    for stmt in _parsed(defined):
        if isinstance(stmt, (ast.CreateDomainStmt, ast.AlterDomainStmt)):
            names = [getattr(n, "sval", "") for n in
                     (stmt.domainname if isinstance(stmt, ast.CreateDomainStmt)
                      else stmt.typeName) or ()]
            if names and any(n == names[-1] and (sch is None or len(names) < 2
                                                 or sch == names[-2])
                             for sch, n in types):
                calls(stmt)
    rows = db.query(
        "SELECT 'ALTER DOMAIN x ADD ' || pg_get_constraintdef(c.oid) FROM pg_constraint c "
        "JOIN pg_type t ON t.oid = c.contypid JOIN pg_namespace n ON n.oid = t.typnamespace "
        "WHERE t.typtype = 'd' AND t.typname = ANY(%s) AND c.contype = 'c' "
        "UNION ALL SELECT 'SELECT ' || pg_get_expr(t.typdefaultbin, 0) FROM pg_type t "
        "WHERE t.typtype = 'd' AND t.typname = ANY(%s) AND t.typdefaultbin IS NOT NULL",
        (sorted(n for _, n in types), sorted(n for _, n in types)))
    for (sql,) in rows:
        with contextlib.suppress(ParseError):
            calls(_parse(sql))
    return {c for c in calls.calls if c[0] != "pg_catalog"}


def _lookup(db: PostgresDatabase, call: tuple[str | None, str],
            planned: list[_Definition]) -> list[_Definition]:
    schema, name = call
    # (a definition written without a schema may be any schema's: it counts for all)
    mine = [d for d in planned
            if d.name == name and (schema is None or d.schema in (schema, None))]
    if mine:
        return mine
    rows = db.query(
        "SELECT n.nspname, l.lanname, CASE WHEN p.prokind <> 'a' THEN "
        "pg_get_functiondef(p.oid) END, p.prosrc, (SELECT array_remove(ARRAY[a.aggtransfn, "
        "a.aggfinalfn, a.aggcombinefn, a.aggserialfn, a.aggdeserialfn, a.aggmtransfn, "
        "a.aggminvtransfn, a.aggmfinalfn]::regproc[]::text[], '-') FROM pg_aggregate a "
        "WHERE a.aggfnoid = p.oid) "
        "FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "JOIN pg_language l ON l.oid = p.prolang "
        "WHERE p.proname = %s AND (%s::text IS NULL OR n.nspname = %s) "
        "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass "
        "  AND d.objid = p.oid AND d.deptype = 'e')", (name, schema, schema))
    out = []
    for nsp, lang, definition, src, support in rows:
        if support is not None:  # an aggregate (support functions print qualified)
            agg = _Definition(nsp, name, "aggregate", "", None, None)
            agg.calls = {(f.rsplit(".", 1)[0].strip('"') if "." in f else None,
                          f.rsplit(".", 1)[-1].strip('"')) for f in support}
            out.append(agg)
            continue
        atomic = None
        if lang == "sql" and not src:
            try:  # BEGIN ATOMIC: pg_get_functiondef prints the parsed body
                (raw,) = _parse(definition)
                atomic = raw.stmt.sql_body
            except (ParseError, ValueError):
                pass
        out.append(_Definition(nsp, name, lang, definition, src, atomic))
    return out


def _effects_of(db: PostgresDatabase, root: tuple[str | None, str],
                planned: list[_Definition], catalog: _Catalog,
                fired_by: Callable[[set[tuple[str | None, str]]],
                                   dict[tuple[str | None, str], bool]],
                through_plan_only: bool = False) -> str:
    """What a called function does beyond computing a value, through what it calls.

    ``through_plan_only``: the root is the database's own code (a trigger already there);
    only what the plan's definitions do counts, once the calls reach one, and dynamic SQL
    of the database's own code when the plan defines any function (it may reach one).
    The database's own code that writes to a table runs what that table holds
    (``fired_by``: its functions, and whether each is a trigger's the plan leaves be)."""
    # (call, path, whether the path has gone through a definition of the plan)
    todo: list[tuple[tuple[str | None, str], tuple[str, ...], bool]] = [
        (root, (), not through_plan_only)]
    seen: set[tuple[tuple[str | None, str], bool]] = set()
    builtins: dict[tuple[str | None, str], tuple[str, ...]] = {}
    while todo:
        call, path, counts = todo.pop()
        if (call, counts) in seen or len(seen) > 200:
            continue
        seen.add((call, counts))
        defs = _lookup(db, call, planned) if call[0] != "pg_catalog" else []
        if not defs:
            if path and counts:  # (the step's own calls of built-ins are in plain sight)
                builtins.setdefault(call, path)
            continue
        for d in defs:
            read = d.read()
            label = f"{d.schema}.{d.name}" if d.schema else d.name
            where = path + (label,)
            mine = counts or any(d is p for p in planned)
            effects = read.effects if mine else [
                e for e in read.effects if e.startswith("dynamic SQL") and planned]
            if mine:  # (what it reads is a value it returns, or writes somewhere)
                effects = effects + [
                    f"reads pg_catalog.{n}, which PUBLIC may not read" for n in
                    sorted(catalog.closed_relations({n for sch, n in read.relations
                                                     if sch in (None, "pg_catalog")}))]
            if effects:
                return _say(where, sorted(set(effects))[0])
            if read.writes and not mine:
                todo.extend((c, where, not existing)
                            for c, existing in fired_by(read.writes).items())
            todo.extend((c, where, mine) for c in read.calls)
            todo.extend((c, where, mine)
                        for c in catalog.functions_of(read.ops, read.typenames))
    unknown, risky = _judge_builtins(db, builtins)
    if unknown:
        call, path = unknown[0]
        label = f"{call[0]}.{call[1]}" if call[0] else call[1]
        return _say(path, f"calls {label}(), which is neither in the plan nor a function "
                          "of the database (the check cannot see what it would run)")
    if risky:
        root_label = f"{root[0]}.{root[1]}" if root[0] else root[1]
        return f"{root_label}: calls {', '.join(risky)}"
    return ""


_KEYWORDS = (pglast.keywords.RESERVED_KEYWORDS | pglast.keywords.COL_NAME_KEYWORDS
             | pglast.keywords.TYPE_FUNC_NAME_KEYWORDS | pglast.keywords.UNRESERVED_KEYWORDS)


def _judge_builtins(db: PostgresDatabase,
                    calls: dict[tuple[str | None, str], tuple[str, ...]],
                    ) -> tuple[list[tuple[tuple[str | None, str], tuple[str, ...]]], list[str]]:
    """The calls a user-defined function makes of functions that are not user-defined:
    (those the database has no function for, the names that are risky).

    A name the server would resolve to something the check cannot see (it is in neither
    the plan nor the catalog) is not trusted: every way past this check so far went
    through such a mismatch. A keyword the PL/pgSQL expression scan read as a call
    (``coalesce(``, ``exists(``) is syntax, not a function. A built-in or an extension's
    function is risky when it has side effects, or when PUBLIC may not execute it or use
    its schema (``pg_read_file``, pg_cron's ``cron.schedule``)."""
    from ...optsql import _SIDE_EFFECT_FUNCTIONS, _SIDE_EFFECT_PREFIXES

    rows = _functions_named(db, {name for _, name in calls})
    unknown, risky = [], set()
    for call, path in sorted(calls.items(), key=lambda c: (c[0][0] or "", c[0][1])):
        schema, name = call
        found = [closed for proname, nsp, closed in rows
                 if proname == name and schema in (None, nsp)]
        if not found:
            if schema is None and name in _KEYWORDS:
                continue
            unknown.append((call, path))
        elif any(found) or name in _SIDE_EFFECT_FUNCTIONS \
                or name.startswith(_SIDE_EFFECT_PREFIXES):
            risky.add(name)
    return unknown, sorted(risky)


def _say(path: tuple[str, ...], effect: str) -> str:
    through = f" (through {' -> '.join(path[1:])})" if len(path) > 1 else ""
    return f"{path[0]}{through}: {effect}"


# --------------------------------------------------------------------------- one query
class _Writes(Visitor):
    """What a SELECT does beyond reading: a data-modifying WITH, SELECT INTO, FOR UPDATE."""

    def __init__(self) -> None:
        self.why: str | None = None

    def _say(self, why: str) -> None:
        self.why = self.why or why

    def visit_InsertStmt(self, ancestors: object, node: ast.InsertStmt) -> None:  # noqa: N802
        self._say("it changes rows (INSERT in a WITH)")

    def visit_UpdateStmt(self, ancestors: object, node: ast.UpdateStmt) -> None:  # noqa: N802
        self._say("it changes rows (UPDATE in a WITH)")

    def visit_DeleteStmt(self, ancestors: object, node: ast.DeleteStmt) -> None:  # noqa: N802
        self._say("it changes rows (DELETE in a WITH)")

    def visit_MergeStmt(self, ancestors: object, node: ast.MergeStmt) -> None:  # noqa: N802
        self._say("it changes rows (MERGE in a WITH)")

    def visit_SelectStmt(self, ancestors: object, node: ast.SelectStmt) -> None:  # noqa: N802
        if node.intoClause is not None:
            self._say("it creates a table (SELECT INTO)")
        if node.lockingClause:
            self._say("it locks the rows it reads (FOR UPDATE / SHARE)")


def not_one_query(sql: str) -> str | None:
    """Why ``sql`` is not one query that only reads, in words; None when it is. A step's
    condition runs in the apply's own writable transaction, so "a SELECT" is not enough:
    ``WITH d AS (DELETE ...) SELECT``, ``SELECT ... INTO`` and ``FOR UPDATE`` parse as
    one."""
    try:
        parsed = pglast.parse_sql(sql)
    except ParseError as exc:
        return f"it does not parse ({exc})"
    if len(parsed) != 1:
        return f"it is {len(parsed)} statements"
    stmt = parsed[0].stmt
    if not isinstance(stmt, ast.SelectStmt):
        return f"it is {type(stmt).__name__.removesuffix('Stmt').upper()}, not a SELECT"
    writes = _Writes()
    writes(stmt)
    return writes.why
