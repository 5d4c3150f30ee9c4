"""Which functions and operators a query or a DML statement resolves to, asked of the
server, not guessed from names.

The judge of what a step evaluates (privileged.function_effects) reads names: an
operator ``=`` in an expression could be any ``=`` of the database, so a database
holding its own ``=`` on some type had every expression with an ``=`` refused, and an
implicit or assignment cast that no name shows went unseen. The server knows exactly:
parse analysis picks each function, operator and cast (the closest overload, the
coercions) and a rewrite rule records every object its stored query uses in pg_depend.
So the statement becomes the action of a rule on a temporary table, in a transaction that
is always rolled back, and pg_depend is read. Parse analysis evaluates nothing (no
function runs; SQL functions are inlined only when planning, which never happens here: no
EXPLAIN, no PREPARE/EXECUTE); nothing is committed. Built-in objects are pinned and never
recorded: what is recorded is everything that is not PostgreSQL's own.

Not asked (the caller judges by name, as before) on a standby, inside a read-only
transaction already begun (a read-only session is no obstacle: the rolled-back
transaction is its own, read-write), when the database has an enabled event trigger for
DDL (the temporary table and rule would fire it), or when the statement does not parse
against the database (a table that a step before it makes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pglast
import psycopg
from pglast import ast
from pglast.enums import AlterTableType as AT
from pglast.enums import ObjectType
from pglast.parser import ParseError
from pglast.stream import RawStream
from pglast.visitors import Visitor

from ...errors import BadInput

if TYPE_CHECKING:
    from . import PostgresDatabase

Call = tuple[str | None, str]

# Statements whose whole text can be a rule's action.
RESOLVABLE = (ast.SelectStmt, ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt)

# May the session make a temporary table whose making runs no code of the database?
_USABLE = """
SELECT NOT pg_catalog.pg_is_in_recovery()
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger e
                  WHERE e.evtenabled OPERATOR(pg_catalog.<>) 'D'
                    AND e.evtevent OPERATOR(pg_catalog.=) ANY (
                      '{ddl_command_start, ddl_command_end}'::pg_catalog.text[]))
"""

# What the rule's query uses that is not the server's own (pinned objects are not
# recorded): functions (a cast's too), operators' functions (and their planner
# estimators), domains it coerces to (their CHECKs run on the value), and, for the types
# of everything it reads or computes (through arrays, ranges, domains and composites),
# the support functions of their default btree and hash operator classes, which the
# server calls without naming an operator (GREATEST, ORDER BY, DISTINCT, GROUP BY, and
# the equality of arrays, rows and ranges of that type), and a range's canonical.
_RESOLVED_SQL = """
WITH RECURSIVE
dep AS (
  SELECT d.refclassid, d.refobjid, d.refobjsubid FROM pg_catalog.pg_depend d
  JOIN pg_catalog.pg_rewrite r ON r.oid OPERATOR(pg_catalog.=) d.objid
  WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass
    -- (looked up when it runs, not when it is planned: the query is prepared once per
    -- session, the temporary table is new each time)
    AND r.ev_class OPERATOR(pg_catalog.=) pg_catalog.to_regclass('pg_temp.lp_judge')),
ops(oid) AS (
  SELECT refobjid FROM dep
  WHERE refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_operator'::pg_catalog.regclass),
domains(oid) AS (
  SELECT refobjid FROM dep
  WHERE refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_type'::pg_catalog.regclass
  UNION SELECT t.typbasetype FROM domains JOIN pg_catalog.pg_type t
    ON t.oid OPERATOR(pg_catalog.=) domains.oid
  WHERE t.typtype OPERATOR(pg_catalog.=) 'd'),
fns(oid, why) AS (
  -- (a cast's function is a call that no name shows: said so)
  SELECT refobjid, COALESCE((
      SELECT 'the function of the cast from ' OPERATOR(pg_catalog.||)
        s.typname::pg_catalog.text OPERATOR(pg_catalog.||) ' to '
        OPERATOR(pg_catalog.||) t.typname::pg_catalog.text
      FROM pg_catalog.pg_cast c
      JOIN pg_catalog.pg_type s ON s.oid OPERATOR(pg_catalog.=) c.castsource
      JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) c.casttarget
      WHERE c.castfunc OPERATOR(pg_catalog.=) dep.refobjid
      ORDER BY 1 LIMIT 1), '')
  FROM dep
  WHERE refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
  UNION ALL SELECT x.f, 'the function of operator ' OPERATOR(pg_catalog.||)
      o.oid::pg_catalog.regoperator::pg_catalog.text
    FROM ops JOIN pg_catalog.pg_operator o ON o.oid OPERATOR(pg_catalog.=) ops.oid,
    LATERAL (VALUES (o.oprcode::pg_catalog.oid), (o.oprrest::pg_catalog.oid),
                    (o.oprjoin::pg_catalog.oid)) AS x(f)
    WHERE x.f OPERATOR(pg_catalog.<>) 0::pg_catalog.oid
  UNION ALL SELECT x.f, 'which a CHECK of domain ' OPERATOR(pg_catalog.||)
      k.contypid::pg_catalog.regtype::pg_catalog.text OPERATOR(pg_catalog.||) ' calls'
    FROM domains JOIN pg_catalog.pg_constraint k
      ON k.contypid OPERATOR(pg_catalog.=) domains.oid
    JOIN pg_catalog.pg_depend d
      ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_constraint'::pg_catalog.regclass
     AND d.objid OPERATOR(pg_catalog.=) k.oid
    LEFT JOIN pg_catalog.pg_operator o ON d.refclassid OPERATOR(pg_catalog.=)
      'pg_catalog.pg_operator'::pg_catalog.regclass AND o.oid OPERATOR(pg_catalog.=) d.refobjid,
    LATERAL (VALUES (CASE WHEN d.refclassid OPERATOR(pg_catalog.=)
      'pg_catalog.pg_proc'::pg_catalog.regclass THEN d.refobjid
      ELSE o.oprcode::pg_catalog.oid END)) AS x(f)
    WHERE x.f IS NOT NULL AND x.f OPERATOR(pg_catalog.<>) 0::pg_catalog.oid),
types0(oid) AS (
  SELECT oid FROM domains
  UNION SELECT a.atttypid FROM dep JOIN pg_catalog.pg_attribute a
    ON a.attrelid OPERATOR(pg_catalog.=) dep.refobjid
   AND a.attnum OPERATOR(pg_catalog.=) dep.refobjsubid
  WHERE dep.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
    AND dep.refobjsubid OPERATOR(pg_catalog.>) 0
  UNION SELECT pg_catalog.unnest(p.proargtypes::pg_catalog.oid[]
                                 OPERATOR(pg_catalog.||) p.prorettype)
    FROM fns JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) fns.oid),
types(oid) AS (
  SELECT oid FROM types0
  UNION SELECT x.t FROM types JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) types.oid,
    LATERAL (SELECT t.typbasetype UNION ALL SELECT t.typelem
             UNION ALL SELECT r.rngsubtype FROM pg_catalog.pg_range r
               WHERE r.rngtypid OPERATOR(pg_catalog.=) t.oid
             UNION ALL SELECT r.rngtypid FROM pg_catalog.pg_range r
               WHERE r.rngmultitypid OPERATOR(pg_catalog.=) t.oid
             UNION ALL SELECT a.atttypid FROM pg_catalog.pg_attribute a
               WHERE a.attrelid OPERATOR(pg_catalog.=) t.typrelid
                 AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped) AS x(t)
    WHERE x.t OPERATOR(pg_catalog.<>) 0::pg_catalog.oid),
classes(opcfamily, label) AS (
  -- the default btree and hash operator classes of the database's own for these types
  SELECT c.opcfamily, ' of the default ' OPERATOR(pg_catalog.||) am.amname::pg_catalog.text
      OPERATOR(pg_catalog.||) ' operator class of type '
      OPERATOR(pg_catalog.||) c.opcintype::pg_catalog.regtype::pg_catalog.text
    FROM types JOIN pg_catalog.pg_opclass c ON c.opcintype OPERATOR(pg_catalog.=) types.oid
      AND c.opcdefault
      AND c.opcnamespace OPERATOR(pg_catalog.<>) 'pg_catalog'::pg_catalog.regnamespace
    JOIN pg_catalog.pg_am am ON am.oid OPERATOR(pg_catalog.=) c.opcmethod
      AND am.amname OPERATOR(pg_catalog.=) ANY ('{btree, hash}'::pg_catalog.name[])),
support(oid, why) AS (
  SELECT ap.amproc::pg_catalog.oid, 'a support function' OPERATOR(pg_catalog.||) classes.label
    FROM classes
    JOIN pg_catalog.pg_amproc ap ON ap.amprocfamily OPERATOR(pg_catalog.=) classes.opcfamily
  UNION ALL SELECT o.oprcode::pg_catalog.oid, 'the function of operator '
      OPERATOR(pg_catalog.||) o.oid::pg_catalog.regoperator::pg_catalog.text
      OPERATOR(pg_catalog.||) classes.label
    FROM classes
    JOIN pg_catalog.pg_amop ao ON ao.amopfamily OPERATOR(pg_catalog.=) classes.opcfamily
    JOIN pg_catalog.pg_operator o ON o.oid OPERATOR(pg_catalog.=) ao.amopopr
  UNION ALL SELECT r.rngcanonical::pg_catalog.oid, 'the canonical function of range type '
      OPERATOR(pg_catalog.||) r.rngtypid::pg_catalog.regtype::pg_catalog.text
    FROM types JOIN pg_catalog.pg_range r ON r.rngtypid OPERATOR(pg_catalog.=) types.oid
    WHERE r.rngcanonical OPERATOR(pg_catalog.<>) 0::pg_catalog.regproc)
SELECT DISTINCT n.nspname, p.proname, w.why
FROM (SELECT oid, why FROM fns UNION ALL SELECT oid, why FROM support) AS w
JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) w.oid
JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace
-- (a built-in only when reached through an object of the database's own: an operator
-- over pg_read_file; a call of it the statement makes itself is in plain sight)
WHERE n.nspname OPERATOR(pg_catalog.<>) ALL ('{pg_catalog, information_schema}'::pg_catalog.name[])
   OR w.why OPERATOR(pg_catalog.<>) ''
ORDER BY 1, 2, 3
"""


def usable(db: PostgresDatabase) -> bool:
    """Whether the server may be asked (see the module's docstring)."""
    rows = db.query(_USABLE)
    return bool(rows and rows[0][0])


class _Relations(Visitor):
    def __init__(self) -> None:
        self.nodes: list[ast.RangeVar] = []

    def visit_RangeVar(self, ancestors: object, node: ast.RangeVar) -> None:  # noqa: N802
        self.nodes.append(node)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _same(rel: ast.RangeVar, other: ast.RangeVar) -> bool:
    return rel.relname == other.relname and (
        rel.schemaname is None or other.schemaname is None
        or rel.schemaname == other.schemaname)


def _stand_ins(stmt: ast.Node, sql: str, defined: Sequence[str]) -> list[str]:
    """The plan's statements before ``sql`` change the columns of tables the statement
    names (a column a phase adds, then fills): DDL that makes, for each such table, an
    empty temporary copy of its columns as they will be by then (names and types only:
    no default, constraint or index, and no rows, so nothing is evaluated); the
    statement's references to it are pointed at the copy (``stmt`` is changed)."""
    rels = _Relations()
    rels(stmt)
    before: list[ast.Node] = []
    for text in defined:
        if text == sql:
            break
        try:
            before += [raw.stmt for raw in pglast.parse_sql(text)]
        except ParseError:
            continue
    out: list[str] = []
    done: set[str] = set()
    for rel in rels.nodes:
        changes: list[str] = []
        for s in before:
            if isinstance(s, ast.AlterTableStmt) and s.relation is not None \
                    and _same(rel, s.relation):
                for c in s.cmds or ():
                    if c.subtype == AT.AT_AddColumn and isinstance(c.def_, ast.ColumnDef):
                        col = c.def_
                        collate = f" COLLATE {RawStream()(col.collClause)}" \
                            if col.collClause is not None else ""
                        changes.append(f"ADD COLUMN IF NOT EXISTS {_q(col.colname)} "
                                       f"{RawStream()(col.typeName)}{collate}")
                    elif c.subtype == AT.AT_AlterColumnType and c.name \
                            and isinstance(c.def_, ast.ColumnDef):
                        changes.append(f"ALTER COLUMN {_q(c.name)} TYPE "
                                       f"{RawStream()(c.def_.typeName)} USING NULL")
                    elif c.subtype == AT.AT_DropColumn and c.name:
                        changes.append(f"DROP COLUMN IF EXISTS {_q(c.name)}")
            elif isinstance(s, ast.RenameStmt) and s.renameType == ObjectType.OBJECT_COLUMN \
                    and s.relation is not None and _same(rel, s.relation) \
                    and s.subname and s.newname:
                changes.append(f"RENAME COLUMN {_q(s.subname)} TO {_q(s.newname)}")
        if not changes:
            continue
        real = f"{_q(rel.schemaname)}.{_q(rel.relname)}" if rel.schemaname \
            else _q(rel.relname)
        if rel.relname not in done:
            done.add(rel.relname)
            out.append(f"CREATE TEMPORARY TABLE {_q(rel.relname)} (LIKE {real})")
            out += [f"ALTER TABLE pg_temp.{_q(rel.relname)} {c}" for c in changes]
        rel.schemaname = "pg_temp"
    return out


def resolved_calls(db: PostgresDatabase, sql: str,
                   defined: Sequence[str] = ()) -> dict[Call, str] | None:
    """The functions that are not the server's own (schema, name) that ``sql`` (one
    SELECT, INSERT, UPDATE or DELETE) would call, as the server resolves it, each with
    why (empty: it calls it), and the server's own that it reaches through an object
    of the database (an operator's function: why says which); None when the server
    cannot say (the caller judges by name). A statement the server finds ambiguous
    (two operators or functions equally close) cannot run: bad input, in the server's
    words."""
    try:
        (raw,) = pglast.parse_sql(sql)
    except (ParseError, ValueError):
        return None
    stmt = raw.stmt
    if not isinstance(stmt, RESOLVABLE):
        return None
    try:
        setup = _stand_ins(stmt, sql, defined)
        action = RawStream()(stmt) if setup else sql
    except Exception:  # noqa: BLE001 - what the deparser cannot print is judged by name
        return None
    rows: list[tuple[str, str, str]] = []
    outer = db.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
    try:
        with db.transaction():
            # A session made read only (backfill planning) still may: this transaction
            # only makes a temporary table and rule, evaluates nothing and is rolled
            # back. (Inside a transaction already begun, it is a savepoint: the
            # transaction's own mode holds, and a read-only one cannot be asked.)
            top = [] if outer else ["SET TRANSACTION READ WRITE"]
            # (one round trip; the action last, on its own lines: nothing follows it)
            db.execute("; ".join([*top,
                "SET LOCAL lock_timeout = '2s'", "SET LOCAL statement_timeout = '10s'",
                # (the catalog query's estimated cost calls for JIT: ~300 ms to compile
                # a query that runs in a few)
                "SET LOCAL jit = off",
                *setup, "CREATE TEMPORARY TABLE lp_judge ()",
                f"CREATE RULE lp_judge AS ON INSERT TO pg_temp.lp_judge DO INSTEAD\n"
                f"{action}\n"]))
            with db.conn.cursor() as cur:  # (planning it costs more than running it)
                cur.execute(_RESOLVED_SQL, prepare=True)
                rows = [(r[0], r[1], r[2]) for r in cur.fetchall()]
            raise psycopg.Rollback()
    except psycopg.errors.AmbiguousFunction as exc:
        first = " ".join(sql.split())
        raise BadInput(f"{first[:200]}: {str(exc).splitlines()[0]} (the server cannot "
                       "tell which one it means; it would fail when it runs)") from None
    except psycopg.Error:
        return None
    out: dict[Call, str] = {}
    for nsp, name, why in rows:
        if not out.get((nsp, name)):
            out[(nsp, name)] = why
    return out
