"""Which built-in functions a plan's SQL calls that PUBLIC may not run.

PostgreSQL revokes EXECUTE from PUBLIC on the functions that reach outside the database
(``pg_read_file``, ``pg_ls_dir``, ``lo_import``, ``pg_reload_conf`` ...). A schema that
calls one (a materialized view's query, a default evaluated for existing rows) runs it
with the applying user's privileges, often a superuser's. Which functions those are is
asked of the server (their ACLs), not kept in a list here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pglast
from pglast import ast
from pglast.enums import AlterTableType as AT
from pglast.enums import ObjectType
from pglast.parser import ParseError, scan
from pglast.visitors import Visitor

if TYPE_CHECKING:
    from . import PostgresDatabase


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
            calls(pglast.parse_sql(sql))
        except ParseError:
            continue  # not ours to judge: the server reports it when the step runs
    return calls.names


def privileged_calls(db: PostgresDatabase, statements: Sequence[str]) -> list[str]:
    return privileged_names(db, called_builtins(statements))


def privileged_names(db: PostgresDatabase, names: set[str]) -> list[str]:
    """Which of these built-in function names PUBLIC may not run."""
    if not names:
        return []
    rows = db.query(
        "SELECT DISTINCT p.proname FROM pg_proc p "
        "WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.proname = ANY(%s) "
        "AND NOT EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, "
        "  acldefault('f', p.proowner))) a "
        "  WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE') ORDER BY 1",
        (sorted(names),))
    return [r[0] for r in rows]


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


def _names_of(funcname: Sequence[ast.String]) -> tuple[str | None, str]:
    names = [n.sval for n in funcname]
    return (names[-2] if len(names) > 1 else None), names[-1]


class _AllCalls(Visitor):
    """Every function a tree calls, qualified or not; and what it does beyond reading."""

    def __init__(self) -> None:
        self.calls: set[tuple[str | None, str]] = set()
        self.types: set[tuple[str | None, str]] = set()
        self.effects: list[str] = []

    def visit_FuncCall(self, ancestors: object, node: ast.FuncCall) -> None:  # noqa: N802
        self.calls.add(_names_of(node.funcname))

    def visit_TypeName(self, ancestors: object, node: ast.TypeName) -> None:  # noqa: N802
        names = [getattr(n, "sval", "") for n in node.names or ()]
        if names and names[0] != "pg_catalog":
            self.types.add(((names[-2] if len(names) > 1 else None), names[-1]))

    def visit_InsertStmt(self, ancestors: object, node: ast.Node) -> None:  # noqa: N802
        self.effects.append("INSERT")

    def visit_UpdateStmt(self, ancestors: object, node: ast.Node) -> None:  # noqa: N802
        self.effects.append("UPDATE")

    def visit_DeleteStmt(self, ancestors: object, node: ast.Node) -> None:  # noqa: N802
        self.effects.append("DELETE")

    def visit_MergeStmt(self, ancestors: object, node: ast.Node) -> None:  # noqa: N802
        self.effects.append("MERGE")


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


def _scan_calls(sql: str) -> set[tuple[str | None, str]]:
    """Function names in a PL/pgSQL expression (``x := f(1)``, ``g() > 0``): a name
    followed by ``(``, read with PostgreSQL's own lexer."""
    out: set[tuple[str | None, str]] = set()
    try:
        tokens = list(scan(sql))
    except ParseError:
        return out

    def name(tok: object) -> str:
        text = sql[tok.start:tok.end + 1]  # type: ignore[attr-defined]
        return text[1:-1].replace('""', '"') if text.startswith('"') else text.lower()

    for i, tok in enumerate(tokens[:-1]):
        if tokens[i + 1].name == "ASCII_40" and tok.name not in ("SCONST", "ICONST", "FCONST",
                                                                  "Op", "PARAM") \
                and not tok.name.startswith("ASCII_"):
            schema = name(tokens[i - 2]) if i >= 2 and tokens[i - 1].name == "ASCII_46" \
                else None
            out.add((schema, name(tok)))
    return out


def _plpgsql(definition: str) -> tuple[set[tuple[str | None, str]], list[str]]:
    """Calls and effects of a PL/pgSQL function, from PL/pgSQL's own parse tree."""
    calls: set[tuple[str | None, str]] = set()
    effects: list[str] = []
    try:
        tree = pglast.parse_plpgsql(definition)
    except (ParseError, Exception):  # noqa: BLE001 - an unreadable body is not trusted
        return calls, ["a body the check cannot read"]

    def walk(node: object) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            for key, value in node.items():
                if key.startswith("PLpgSQL_stmt_dyn") or key == "dynquery":
                    effects.append("dynamic SQL (EXECUTE)")
                if key == "PLpgSQL_expr" and isinstance(value, dict):
                    query = value.get("query") or ""
                    if value.get("parseMode") == 0:
                        c, e = _sql(query)
                        calls.update(c)
                        effects.extend(e)
                    else:
                        calls.update(_scan_calls(query))
                walk(value)

    walk(tree)
    return calls, effects


def _sql(body: str) -> tuple[set[tuple[str | None, str]], list[str]]:
    """Calls and effects of SQL statements (a SQL function's body, a PL/pgSQL statement)."""
    try:
        parsed = pglast.parse_sql(body)
    except ParseError:
        return set(), ["a body the check cannot read"]
    seen = _AllCalls()
    for raw in parsed:
        stmt = raw.stmt
        if not isinstance(stmt, ast.SelectStmt):
            seen.effects.append(type(stmt).__name__.removesuffix("Stmt").upper())
        seen(stmt)
    return seen.calls, seen.effects


class _Definition:
    def __init__(self, schema: str | None, name: str, language: str, definition: str,
                 body: str | None, atomic: ast.Node | None) -> None:
        self.schema, self.name, self.language = schema, name, language
        self.definition, self.body, self.atomic = definition, body, atomic

    calls: set[tuple[str | None, str]] | None = None  # an aggregate: its support functions

    def read(self) -> tuple[set[tuple[str | None, str]], list[str]]:
        if self.calls is not None:
            return self.calls, []
        if self.atomic is not None:  # BEGIN ATOMIC ... END: parsed with the statement
            seen = _AllCalls()
            seen(self.atomic)
            return seen.calls, seen.effects
        if self.language == "sql":
            return _sql(self.body or "")
        if self.language == "plpgsql":
            return _plpgsql(self.definition)
        return set(), [f"code in language {self.language} the check cannot read"]


def _definitions(statements: Sequence[str]) -> list[_Definition]:
    out = []
    for sql in statements:
        try:
            parsed = pglast.parse_sql(sql)
        except ParseError:
            continue
        for raw in parsed:
            stmt = raw.stmt
            if isinstance(stmt, ast.DefineStmt) and stmt.kind == ObjectType.OBJECT_AGGREGATE:
                out.append(_aggregate(stmt))
                continue
            if not isinstance(stmt, ast.CreateFunctionStmt):
                continue
            schema, name = _names_of(stmt.funcname)
            language, body = "sql", None
            for opt in stmt.options or ():
                if opt.defname == "language":
                    language = opt.arg.sval.lower()
                elif opt.defname == "as":
                    body = opt.arg[0].sval if opt.arg else None
            text = sql[raw.stmt_location:raw.stmt_location + (raw.stmt_len or len(sql))]
            out.append(_Definition(schema, name.lower() if name else name, language, text,
                                   body, stmt.sql_body))
    return out


def _aggregate(stmt: ast.DefineStmt) -> _Definition:
    """CREATE AGGREGATE: a call of it is a call of each of its support functions."""
    schema, name = _names_of(stmt.defnames)
    agg = _Definition(schema, name.lower(), "aggregate", "", None, None)
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


def function_effects(db: PostgresDatabase, statements: Sequence[str],
                     defined: Sequence[str]) -> list[str]:
    """What the user-defined functions these statements evaluate do beyond computing a
    value, in words ("public.f (through public.g): dynamic SQL (EXECUTE)"); functions
    are looked up among the CREATE FUNCTIONs of ``defined`` (the plan's SQL) first, then
    in the database (its own functions, not an extension's)."""
    roots: set[tuple[str | None, str]] = set()
    types: set[tuple[str | None, str]] = set()
    for sql in statements:
        try:
            parsed = pglast.parse_sql(sql)
        except ParseError:
            continue
        for raw in parsed:
            calls = _AllCalls()
            for part in _evaluated(raw.stmt):
                calls(part)
            roots |= calls.calls
            types |= calls.types
    # A value of a domain type is checked by the domain's CHECKs where it is made.
    roots |= _domain_calls(db, types, defined)
    roots = {(s, n) for s, n in roots if s != "pg_catalog"}
    if not roots:
        return []
    planned = _definitions(defined)
    found: list[str] = []
    for root in sorted(roots, key=lambda r: (r[0] or "", r[1])):
        effects = _effects_of(db, root, planned)
        if effects:
            found.append(effects)
    return found


def _domain_calls(db: PostgresDatabase, types: set[tuple[str | None, str]],
                  defined: Sequence[str]) -> set[tuple[str | None, str]]:
    """Functions the CHECKs and defaults of these types (when domains) call: the plan's
    CREATE/ALTER DOMAIN statements, then the database's domains."""
    if not types:
        return set()
    calls = _AllCalls()
    for sql in defined:
        try:
            parsed = pglast.parse_sql(sql)
        except ParseError:
            continue
        for raw in parsed:
            stmt = raw.stmt
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
            calls(pglast.parse_sql(sql))
    return {c for c in calls.calls if c[0] != "pg_catalog"}


def _lookup(db: PostgresDatabase, call: tuple[str | None, str],
            planned: list[_Definition]) -> list[_Definition]:
    schema, name = call
    mine = [d for d in planned if d.name == name and (schema is None or d.schema == schema)]
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
                (raw,) = pglast.parse_sql(definition)
                atomic = raw.stmt.sql_body
            except (ParseError, ValueError):
                pass
        out.append(_Definition(nsp, name, lang, definition, src, atomic))
    return out


def _effects_of(db: PostgresDatabase, root: tuple[str | None, str],
                planned: list[_Definition]) -> str:
    """What a called function does beyond computing a value, through what it calls."""
    todo: list[tuple[tuple[str | None, str], tuple[str, ...]]] = [(root, ())]
    seen: set[tuple[str | None, str]] = set()
    builtins: set[str] = set()
    while todo:
        call, path = todo.pop()
        if call in seen or len(seen) > 200:
            continue
        seen.add(call)
        defs = _lookup(db, call, planned) if call[0] != "pg_catalog" else []
        if not defs:
            if path:  # (the step's own calls of built-ins are in plain sight)
                builtins.add(call[1])
            continue
        for d in defs:
            calls, effects = d.read()
            label = f"{d.schema}.{d.name}" if d.schema else d.name
            where = path + (label,)
            if effects:
                return _say(where, sorted(set(effects))[0])
            todo.extend((c, where) for c in calls)
    from ...optsql import _SIDE_EFFECT_FUNCTIONS, _SIDE_EFFECT_PREFIXES

    risky = sorted(b for b in builtins
                   if b in _SIDE_EFFECT_FUNCTIONS or b.startswith(_SIDE_EFFECT_PREFIXES))
    risky += [p for p in privileged_names(db, builtins) if p not in risky]
    if risky:
        root_label = f"{root[0]}.{root[1]}" if root[0] else root[1]
        return f"{root_label}: calls {', '.join(risky)}"
    return ""


def _say(path: tuple[str, ...], effect: str) -> str:
    through = f" (through {' -> '.join(path[1:])})" if len(path) > 1 else ""
    return f"{path[0]}{through}: {effect}"
