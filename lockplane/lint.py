"""``lockplane lint``: the safety catalogue applied to hand-written PostgreSQL migrations.

A migration file is parsed with pglast (PostgreSQL's own parser) and walked statement by
statement, remembering what the file itself did before: tables it created (new tables
have no rows and no readers, so lock and existing-row rules do not apply to them, as in
Squawk), constraints and indexes it created, ``SET lock_timeout``, explicit
transactions, and ``CHECK (col IS NOT NULL)`` constraints it validated. Findings use the
rule ids of :mod:`lockplane.rules`, so ``-- lockplane-ignore: <id>`` comments and CI
settings are shared with plans.

Lint never connects to the target: without the live schema some findings are hedged
("may rewrite"), which is what a reviewer would say reading the same file. Whether an
added column's default rewrites the table is the server's to say, as in ``plan``: given a
scratch server (``server_dsn``) lint asks it, after the file's own CREATE FUNCTION,
DOMAIN, SEQUENCE, TYPE and SCHEMA statements; without one, a default that is not a
constant "may" rewrite.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pglast
from pglast import ast
from pglast.enums import (
    AlterPublicationAction,
    ConstrType,
    NullTestType,
    ObjectType,
    TransactionStmtKind,
    VariableSetKind,
)
from pglast.enums import AlterTableType as AT
from pglast.parser import ParseError
from pglast.stream import RawStream, maybe_double_quote_name

from .changes.base import Safety
from .errors import BadInput
from .model import PUBLISH_OPERATIONS
from .rules import RULES

__all__ = ["FORMATS", "LintFinding", "at_or_above", "format_findings", "format_rules",
           "lint_files", "lint_sql", "sql_files"]


@dataclass(frozen=True)
class LintFinding:
    file: str
    line: int
    column: int
    rule: str
    safety: Safety
    message: str
    safer: str

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "column": self.column,
                "rule": self.rule, "safety": self.safety.value, "message": self.message,
                "safer": self.safer}


_SERIAL_TYPES = {"serial", "serial2", "serial4", "serial8", "smallserial", "bigserial"}
# ALTER TABLE subcommands that take at most SHARE UPDATE EXCLUSIVE: reads and writes go on.
_WEAK_LOCK_CMDS = {AT.AT_ValidateConstraint, AT.AT_SetStatistics, AT.AT_ClusterOn,
                   AT.AT_DropCluster, AT.AT_SetRelOptions, AT.AT_ResetRelOptions,
                   AT.AT_DetachPartitionFinalize}
_REWRITE_CMDS = {AT.AT_SetLogged: "SET LOGGED", AT.AT_SetUnLogged: "SET UNLOGGED",
                 AT.AT_SetAccessMethod: "SET ACCESS METHOD",
                 AT.AT_SetTableSpace: "SET TABLESPACE",
                 AT.AT_SetExpression: "ALTER COLUMN SET EXPRESSION"}
# DROP of these takes a strong lock on the table they belong to (objects: [schema.]table.name)
_TABLE_CHILD_DROPS = {ObjectType.OBJECT_TRIGGER: "trigger", ObjectType.OBJECT_POLICY: "policy",
                      ObjectType.OBJECT_RULE: "rule"}
_IGNORE_RE = re.compile(
    r"lockplane-ignore(?P<file>-file)?\s*:\s*(?P<ids>[A-Za-z0-9_-]+(?:\s*,\s*[A-Za-z0-9_-]+)*)?")
_ZERO_RE = re.compile(r"^\s*0+(\.0*)?\s*(us|ms|s|min|h|d)?\s*$")

Key = tuple[str, str]


# ------------------------------------------------------------------------ public API
def lint_sql(text: str, filename: str = "<sql>", exclude: Iterable[str] = (),
             server_dsn: str | None = None) -> list[LintFinding]:
    """Findings for one migration file's text, in file order. ``server_dsn``: a scratch
    server to ask whether defaults rewrite the table (None: hedged findings).

    Raises BadInput for a syntax error or an unknown rule id in an ignore comment.
    """
    try:
        stmts = pglast.parse_sql(text)
    except ParseError as exc:
        msg, pos = (exc.args + (None,))[:2] if exc.args else ("syntax error", None)
        line = _line_col(text, pos)[0] if isinstance(pos, int) else 1
        msg = str(msg).removeprefix("syntax error ")
        raise BadInput(f"{filename}:{line}: syntax error: {msg}") from None
    answers = _ask_default_rewrites(stmts, server_dsn) if server_dsn else None
    return _Linter(text, filename, stmts, set(exclude), default_answers=answers).run()


def sql_files(paths: Iterable[str]) -> list[Path]:
    """The files to lint: each path, or the ``*.sql`` files of a directory in name order."""
    from .inputs import no_link_out

    out: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_symlink():  # (a syntax error quotes a word of what it reads)
            no_link_out(path, path.absolute().parent, p)
        if path.is_dir():
            found = sorted(no_link_out(f, path, str(f)) for f in path.glob("*.sql"))
            if not found:
                raise BadInput(f"{p}: no .sql files in this directory")
            out.extend(found)
        elif path.is_file():
            out.append(path)
        else:
            raise BadInput(f"{p}: no such file")
    return out


def lint_files(paths: Iterable[str], exclude: Iterable[str] = (),
               server_dsn: str | None = None) -> list[LintFinding]:
    """Lint each file on its own: a table created by an earlier migration may hold rows."""
    excluded = set(exclude)
    unknown = sorted(excluded - RULES.keys())
    if unknown:
        raise BadInput(f"--exclude: unknown rule id {unknown[0]!r} (see lockplane lint "
                       "--list-rules)")
    findings: list[LintFinding] = []
    for path in sql_files(paths):
        try:
            # (a byte order mark that an editor on Windows put first is not SQL)
            text = path.read_text(encoding="utf-8").removeprefix("\ufeff")
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInput(f"{path}: cannot read: {exc}") from None
        findings.extend(lint_sql(text, str(path), excluded, server_dsn))
    return findings


# ------------------------------------------------------------------------ helpers
def _line_col(text: str, pos: int) -> tuple[int, int]:
    pos = max(0, min(pos, len(text)))
    line = text.count("\n", 0, pos) + 1
    return line, pos - (text.rfind("\n", 0, pos) + 1) + 1


def _key(schema: str | None, name: str) -> Key:
    # Unqualified and public-qualified names meet: the usual search_path.
    return ("" if schema in (None, "", "public") else schema, name)


def _rv_key(rv: ast.RangeVar) -> Key:
    return _key(rv.schemaname, rv.relname)


def _names_key(names: tuple[Any, ...]) -> Key:
    parts = [n.sval for n in names if isinstance(n, ast.String)]
    return _key(parts[-2] if len(parts) > 1 else None, parts[-1] if parts else "")


def _ident(name: str) -> str:
    """A name as SQL spells it, for messages: quoted only when it needs to be."""
    return str(maybe_double_quote_name(name))


def _show(k: Key) -> str:
    return f"{_ident(k[0])}.{_ident(k[1])}" if k[0] else _ident(k[1])


def _sql(node: Any) -> str:
    """A node as SQL text, for messages."""
    if isinstance(node, ast.String):
        return _ident(node.sval)
    if isinstance(node, tuple):
        return ".".join(_sql(n) for n in node)
    try:
        return str(RawStream()(node))
    except Exception:  # a message must never fail the lint
        return "?"


def _walk(node: Any) -> Iterator[ast.Node]:
    if isinstance(node, tuple | list):
        for item in node:
            yield from _walk(item)
    elif isinstance(node, ast.Node):
        yield node
        for attr in node:
            yield from _walk(getattr(node, attr))


def _func_name(fc: ast.FuncCall) -> str:
    return fc.funcname[-1].sval.lower() if fc.funcname else ""


# Statements that make what a default may name: run before the questions.
_SETUP_STMTS = (ast.CreateSchemaStmt, ast.CreateFunctionStmt, ast.CreateDomainStmt,
                ast.CreateSeqStmt, ast.CreateEnumStmt, ast.CompositeTypeStmt,
                ast.CreateRangeStmt)


def _default_question(col: ast.ColumnDef) -> tuple[str, str | None] | None:
    """(type, default) of an added column whose default is the server's to judge (None:
    the type's own, which a domain may have)."""
    cons = _constraints(col)
    if any(c.contype in (ConstrType.CONSTR_IDENTITY, ConstrType.CONSTR_GENERATED)
           for c in cons) or _type_name(col.typeName) in _SERIAL_TYPES:
        return None
    default = next((c for c in cons if c.contype == ConstrType.CONSTR_DEFAULT), None)
    if col.typeName is None:
        return None
    expr = None if default is None else str(RawStream()(default.raw_expr))
    return (str(RawStream()(col.typeName)), expr)


def _ask_default_rewrites(stmts: tuple[ast.RawStmt, ...], server_dsn: str,
                          ) -> dict[tuple[str, str | None], bool | None]:
    """Every ADD COLUMN default of the file put to the server at once."""
    from .dialects import get_dialect

    setup: list[str] = []
    questions: list[tuple[str, str | None]] = []
    for raw in stmts:
        if isinstance(raw.stmt, _SETUP_STMTS):
            setup.append(str(RawStream()(raw.stmt)))
        elif isinstance(raw.stmt, ast.AlterTableStmt):
            for cmd in raw.stmt.cmds or ():
                if (isinstance(cmd, ast.AlterTableCmd) and cmd.subtype == AT.AT_AddColumn
                        and isinstance(cmd.def_, ast.ColumnDef)):
                    q = _default_question(cmd.def_)
                    if q is not None:
                        questions.append(q)
    if not questions:
        return {}
    return get_dialect("postgres").default_rewrites(questions, near_dsn=server_dsn,
                                                    setup_sql=setup)


def _type_name(tn: ast.TypeName | None) -> str:
    if tn is None or not tn.names:
        return ""
    return tn.names[-1].sval.lower()


def _constraints(col: ast.ColumnDef) -> tuple[ast.Constraint, ...]:
    return tuple(c for c in (col.constraints or ()) if isinstance(c, ast.Constraint))


def _not_null_column(expr: Any) -> str | None:
    """The column of a ``col IS NOT NULL`` check expression, else None."""
    if (isinstance(expr, ast.NullTest) and expr.nulltesttype == NullTestType.IS_NOT_NULL
            and isinstance(expr.arg, ast.ColumnRef) and expr.arg.fields
            and isinstance(expr.arg.fields[-1], ast.String)):
        return expr.arg.fields[-1].sval
    return None


def _const_is_zero(node: Any) -> bool:
    val = getattr(node, "val", None)
    if isinstance(val, ast.Integer):
        return val.ival == 0
    if isinstance(val, ast.Float):
        return float(val.fval) == 0
    if isinstance(val, ast.String):
        return bool(_ZERO_RE.match(val.sval))
    return False


@dataclass
class _Pending:
    """A constraint added NOT VALID in this file, waiting for its VALIDATE."""

    rule: str
    tx: int | None  # the explicit transaction it was added in
    not_null_column: str | None = None


@dataclass
class _Linter:
    text: str
    file: str
    stmts: tuple[ast.RawStmt, ...]
    exclude: set[str]
    findings: list[LintFinding] = field(default_factory=list)
    # the server's word on each ADD COLUMN default; None: no server was given
    default_answers: dict[tuple[str, str | None], bool | None] | None = None
    new_tables: set[Key] = field(default_factory=set)
    new_indexes: set[Key] = field(default_factory=set)
    new_constraints: set[tuple[Key, str]] = field(default_factory=set)
    pending: dict[tuple[Key, str], _Pending] = field(default_factory=dict)
    not_null_checked: set[tuple[Key, str]] = field(default_factory=set)
    validated_tables: set[Key] = field(default_factory=set)
    # (table, column) added by ALTER TABLE ... ADD COLUMN in this file
    new_columns: set[tuple[Key, str]] = field(default_factory=set)
    timeout_session: bool = False
    timeout_local: bool = False
    timeout_at_begin: bool = False
    timeout_reported: bool = False
    local_outside_tx: int | None = None  # position of a SET LOCAL that had no effect
    tx: int | None = None  # id of the open explicit transaction
    tx_count: int = 0
    file_ignores: set[str] = field(default_factory=set)
    stmt_ignores: dict[int, set[str]] = field(default_factory=dict)
    # current statement
    index: int = 0
    start: int = 0

    # -------------------------------------------------------------------- driver
    def run(self) -> list[LintFinding]:
        self._read_ignore_comments()
        for i, raw in enumerate(self.stmts):
            self.index, self.start = i, raw.stmt_location
            handler = getattr(self, f"_on_{type(raw.stmt).__name__}", None)
            if handler is not None:
                handler(raw.stmt)
            self._frozen(raw.stmt)
        return self.findings

    def _frozen(self, stmt: ast.Node) -> None:
        from .dialects.postgres.frozen import statement_marks

        for mark in sorted(statement_marks(stmt(skip_none=True))):
            kind, *where = mark
            what = {"view": f"view {'.'.join(where)}",
                    "default": f"the default of {'.'.join(where)}",
                    "check": f"a CHECK of {'.'.join(where)}"}[kind]
            self.report("frozen-time-literal", (
                f"{what} holds a time value the server freezes when this runs "
                "('now'::timestamp, 'today'::date ...): it stays that moment, not the "
                "current time; use now(), CURRENT_TIMESTAMP or CURRENT_DATE"))

    def report(self, rule_id: str, message: str, pos: int | None = None) -> bool:
        """Record a finding unless excluded or ignored; True when it was recorded."""
        if (rule_id in self.exclude or rule_id in self.file_ignores
                or rule_id in self.stmt_ignores.get(self.index, ())):
            return False
        rule = RULES[rule_id]
        where = pos if pos is not None and pos >= self.start else self.start
        line, col = _line_col(self.text, where)
        self.findings.append(LintFinding(self.file, line, col, rule_id, rule.safety,
                                         message, rule.safer))
        return True

    def locks(self, what: str) -> None:
        """The statement takes a lock that blocks reads or writes of an existing table."""
        if self.timeout_session or self.timeout_local or self.timeout_reported:
            return
        why = ""
        if self.local_outside_tx is not None:
            line = _line_col(self.text, self.local_outside_tx)[0]
            why = (f" (the transaction-local lock_timeout on line {line} is outside BEGIN ... "
                   "COMMIT, where it has no effect)")
        # Once per file: one SET at the top fixes every statement after it.
        self.timeout_reported = self.report(
            "require-lock-timeout",
            f"{what} with no lock_timeout set earlier in the file: while it waits for its "
            f"lock, every query on the table queues behind it{why}")

    def is_new(self, k: Key) -> bool:
        return k in self.new_tables

    # -------------------------------------------------------------------- ignores
    def _read_ignore_comments(self) -> None:
        spans = [(r.stmt_location, r.stmt_location + r.stmt_len if r.stmt_len
                  else len(self.text)) for r in self.stmts]
        for tok in pglast.parser.scan(self.text):
            if tok.name not in ("SQL_COMMENT", "C_COMMENT"):
                continue
            body = self.text[tok.start:tok.end + 1]
            m = _IGNORE_RE.search(body)
            if not m:
                continue
            line = _line_col(self.text, tok.start)[0]
            if not m["ids"]:
                raise BadInput(f"{self.file}:{line}: lockplane-ignore names no rule id")
            ids = {s.strip() for s in m["ids"].split(",")}
            for rid in sorted(ids):
                if rid not in RULES:
                    raise BadInput(f"{self.file}:{line}: unknown rule id {rid!r} in "
                                   "lockplane-ignore comment (see lockplane lint --list-rules)")
            if m["file"]:
                self.file_ignores |= ids
                continue
            target = self._comment_target(tok.start, tok.end + 1, spans)
            if target is not None:
                self.stmt_ignores.setdefault(target, set()).update(ids)

    def _comment_target(self, pos: int, end: int, spans: list[tuple[int, int]]) -> int | None:
        """Which statement the comment at ``pos:end`` is about.

        Inside a statement or after code on its last line: that statement. On lines of
        its own: the statement that starts right after its comment block.
        """
        line_start = self.text.rfind("\n", 0, pos) + 1
        own_line = not self.text[line_start:pos].strip()
        before = [i for i, (start, _) in enumerate(spans) if start <= pos]
        if before:
            i = before[-1]
            if pos < spans[i][1] or (not own_line and self._same_line(spans[i][1], pos)):
                return i
        following = [i for i, (start, _) in enumerate(spans) if start >= end]
        if not own_line or not following:
            return None
        i = following[0]
        # Only comment lines (no blank line, no code) between it and the statement.
        middle = self.text[end:spans[i][0]].split("\n")[1:-1]
        if any(not ln.strip().startswith(("--", "/*", "*")) for ln in middle):
            return None
        return i

    def _same_line(self, a: int, b: int) -> bool:
        return "\n" not in self.text[min(a, b):max(a, b)]

    # -------------------------------------------------------------------- session state
    def _on_TransactionStmt(self, s: ast.TransactionStmt) -> None:
        kind = s.kind
        if kind in (TransactionStmtKind.TRANS_STMT_BEGIN, TransactionStmtKind.TRANS_STMT_START):
            self.tx_count += 1
            self.tx = self.tx_count
            self.timeout_at_begin = self.timeout_session
        elif kind in (TransactionStmtKind.TRANS_STMT_COMMIT,
                      TransactionStmtKind.TRANS_STMT_ROLLBACK,
                      TransactionStmtKind.TRANS_STMT_COMMIT_PREPARED,
                      TransactionStmtKind.TRANS_STMT_PREPARE):
            if kind == TransactionStmtKind.TRANS_STMT_ROLLBACK:
                self.timeout_session = self.timeout_at_begin
            self.tx = None
            self.timeout_local = False  # SET LOCAL ends with its transaction

    def _set_timeout(self, on: bool, local: bool) -> None:
        if local and self.tx is None:
            # Outside BEGIN ... COMMIT, SET LOCAL (or set_config(..., true)) lasts only
            # for its own implicit transaction: PostgreSQL warns and nothing changes.
            self.local_outside_tx = self.start
            return
        if local:
            self.timeout_local = on
        else:
            self.timeout_session = on
            self.timeout_local = False
            self.local_outside_tx = None  # no longer why a timeout is missing

    def _on_VariableSetStmt(self, s: ast.VariableSetStmt) -> None:
        if (s.name or "").lower() != "lock_timeout":
            return
        on = (s.kind == VariableSetKind.VAR_SET_VALUE and bool(s.args)
              and not _const_is_zero(s.args[0]))
        self._set_timeout(on, bool(s.is_local))

    def _on_SelectStmt(self, s: ast.SelectStmt) -> None:
        # SELECT set_config('lock_timeout', '3s', is_local)
        for node in _walk(s.targetList):
            if not (isinstance(node, ast.FuncCall) and _func_name(node) == "set_config"):
                continue
            args = node.args or ()
            if len(args) != 3 or not isinstance(getattr(args[0], "val", None), ast.String):
                continue
            if args[0].val.sval.lower() != "lock_timeout":
                continue
            local = isinstance(getattr(args[2], "val", None), ast.Boolean) and args[2].val.boolval
            self._set_timeout(not _const_is_zero(args[1]), bool(local))

    # -------------------------------------------------------------------- creates
    def _on_CreateStmt(self, s: ast.CreateStmt) -> None:
        k = _rv_key(s.relation)
        self.new_tables.add(k)
        for elt in s.tableElts or ():
            cons: tuple[Any, ...] = (elt,) if isinstance(elt, ast.Constraint) else ()
            if isinstance(elt, ast.ColumnDef):
                cons = _constraints(elt)
            for c in cons:
                if isinstance(c, ast.Constraint) and c.conname:
                    self.new_constraints.add((k, c.conname))
                if isinstance(c, ast.Constraint):
                    self._references(c)

    def _references(self, c: ast.Constraint) -> None:
        """A foreign key locks the table it references, even from a new table.

        Its RI triggers are added to the referenced table under SHARE ROW EXCLUSIVE
        (NOT VALID or not), which blocks writes to it while the lock is waited for.
        """
        if c.contype != ConstrType.CONSTR_FOREIGN or c.pktable is None:
            return
        ref = _rv_key(c.pktable)
        if not self.is_new(ref):
            self.locks(f"REFERENCES {_show(ref)} takes SHARE ROW EXCLUSIVE on {_show(ref)}")

    def _on_CreateTableAsStmt(self, s: ast.CreateTableAsStmt) -> None:
        if s.objtype == ObjectType.OBJECT_TABLE and s.into is not None:
            self.new_tables.add(_rv_key(s.into.rel))

    def _on_IndexStmt(self, s: ast.IndexStmt) -> None:
        k = _rv_key(s.relation)
        if s.idxname:
            self.new_indexes.add(_key(s.relation.schemaname, s.idxname))
        name = f" {s.idxname}" if s.idxname else ""
        if s.unique and not self.is_new(k):
            self.report("unique-on-existing-data", f"UNIQUE INDEX{name} on {_show(k)} fails "
                        "if existing rows have duplicates")
        if s.concurrent:
            self._concurrently("CREATE INDEX CONCURRENTLY")
            return
        if self.is_new(k):
            return
        self.report("create-index-blocking",
                    f"CREATE INDEX{name} on {_show(k)} without CONCURRENTLY blocks writes to "
                    "the table for the whole build")
        self.locks(f"CREATE INDEX on {_show(k)} takes SHARE")

    def _on_CreateTrigStmt(self, s: ast.CreateTrigStmt) -> None:
        if not self.is_new(_rv_key(s.relation)):
            self.locks(f"CREATE TRIGGER on {_show(_rv_key(s.relation))} takes SHARE ROW "
                       "EXCLUSIVE")

    def _on_CreatePolicyStmt(self, s: ast.CreatePolicyStmt) -> None:
        if not self.is_new(_rv_key(s.table)):
            self.locks(f"CREATE POLICY on {_show(_rv_key(s.table))} takes ACCESS EXCLUSIVE")

    # -------------------------------------------------------------------- drops
    def _on_DropdbStmt(self, s: ast.DropdbStmt) -> None:
        self.report("drop-database", f"DROP DATABASE {s.dbname} deletes everything in it")

    def _on_TruncateStmt(self, s: ast.TruncateStmt) -> None:
        existing = [_rv_key(rv) for rv in s.relations or () if not self.is_new(_rv_key(rv))]
        if not existing:
            return
        names = ", ".join(_show(k) for k in existing)
        self.report("truncate-table", f"TRUNCATE {names} deletes every row")
        self.locks(f"TRUNCATE {names} takes ACCESS EXCLUSIVE")

    def _on_DropStmt(self, s: ast.DropStmt) -> None:
        kind = s.removeType
        objects = list(s.objects or ())
        keys = [_names_key(o) for o in objects if isinstance(o, tuple)]
        if kind == ObjectType.OBJECT_TABLE:
            for k in keys:
                if self.is_new(k):
                    self.new_tables.discard(k)
                    continue
                self.report("drop-table", f"DROP TABLE {_show(k)} deletes its rows")
                self.locks(f"DROP TABLE {_show(k)} takes ACCESS EXCLUSIVE")
        elif kind == ObjectType.OBJECT_INDEX:
            for k in keys:
                if k not in self.new_indexes:
                    self.report("drop-index", f"DROP INDEX {_show(k)}: queries that use it get "
                                "slower (and a unique one stops enforcing uniqueness)")
            if s.concurrent:
                self._concurrently("DROP INDEX CONCURRENTLY")
                return
            for k in keys:
                if k in self.new_indexes:
                    continue
                self.report("drop-index-blocking",
                            f"DROP INDEX {_show(k)} without CONCURRENTLY takes ACCESS "
                            "EXCLUSIVE on its table")
                self.locks(f"DROP INDEX {_show(k)} takes ACCESS EXCLUSIVE on its table")
        elif kind == ObjectType.OBJECT_SCHEMA:
            for o in objects:
                self.report("drop-schema", f"DROP SCHEMA {_sql(o)} deletes everything in it")
        elif kind == ObjectType.OBJECT_SEQUENCE:
            for k in keys:
                self.report("drop-sequence", f"DROP SEQUENCE {_show(k)} loses its current value")
        elif kind == ObjectType.OBJECT_MATVIEW:
            for k in keys:
                self.report("drop-materialized-view",
                            f"DROP MATERIALIZED VIEW {_show(k)} drops its computed rows")
        elif kind == ObjectType.OBJECT_PUBLICATION:
            for o in objects:
                self.report("drop-publication", f"DROP PUBLICATION {_sql(o)} stops logical "
                            "replication to its subscribers")
        elif kind == ObjectType.OBJECT_EVENT_TRIGGER:
            for o in objects:
                self.report("drop-event-trigger", f"DROP EVENT TRIGGER {_sql(o)}: the DDL "
                            "guard or audit it runs stops for every later statement")
        else:
            self._drop_object(s, kind)

    def _drop_object(self, s: ast.DropStmt, kind: ObjectType) -> None:
        what = kind.name.removeprefix("OBJECT_").lower().replace("_", " ")
        if kind in _TABLE_CHILD_DROPS:
            for o in s.objects or ():
                parts = [n.sval for n in o if isinstance(n, ast.String)]
                table = _key(parts[-3] if len(parts) > 2 else None,
                             parts[-2] if len(parts) > 1 else "")
                if self.is_new(table):
                    continue
                self.report("drop-object", f"DROP {what.upper()} {parts[-1]} ON "
                            f"{_show(table)}: code or data may rely on it")
                self.locks(f"DROP {what.upper()} on {_show(table)} takes ACCESS EXCLUSIVE")
            return
        names = ", ".join(_sql(o) for o in s.objects or ())
        self.report("drop-object", f"DROP {what.upper()} {names}: code or other objects may "
                    "still use what is dropped")

    def _on_AlterPublicationStmt(self, s: ast.AlterPublicationStmt) -> None:
        # SET replaces the whole list: what it leaves out is removed (unknown from SQL
        # alone, so said as "may").
        name = _ident(s.pubname or "")
        if s.action == AlterPublicationAction.AP_DropObjects:
            self.report("publication-remove-table", f"ALTER PUBLICATION {name} DROP: "
                        "subscribers stop receiving the changes of what is removed")
        elif s.action == AlterPublicationAction.AP_SetObjects and s.pubobjects:
            self.report("publication-remove-table", f"ALTER PUBLICATION {name} SET "
                        "replaces its tables: subscribers stop receiving the changes of any "
                        "table it leaves out")
        for opt in s.options or ():
            if not (isinstance(opt, ast.DefElem) and opt.defname == "publish"):
                continue
            value = opt.arg.sval if isinstance(opt.arg, ast.String) else ""
            listed = {op.strip().lower() for op in value.split(",")}
            left_out = [op for op in PUBLISH_OPERATIONS if op not in listed]
            if left_out:
                self.report("publication-narrow-publish", (
                    f"ALTER PUBLICATION {name} SET (publish = '{value}') leaves out "
                    f"{', '.join(left_out).upper()}: subscribers stop receiving those "
                    "changes if it published them"), opt.location)

    # -------------------------------------------------------------------- renames
    def _on_RenameStmt(self, s: ast.RenameStmt) -> None:
        if s.relation is None:
            return
        k = _rv_key(s.relation)
        if s.renameType == ObjectType.OBJECT_TABLE:
            if self.is_new(k):
                self.new_tables.discard(k)
                self.new_tables.add(_key(s.relation.schemaname, s.newname))
                return
            self.report("rename-table", f"RENAME {_show(k)} TO {s.newname} breaks code that "
                        "uses the old name")
            self.locks(f"ALTER TABLE {_show(k)} RENAME takes ACCESS EXCLUSIVE")
        elif (s.renameType == ObjectType.OBJECT_COLUMN
              and s.relationType == ObjectType.OBJECT_TABLE):
            if self.is_new(k):
                return
            self.report("rename-column", f"RENAME COLUMN {_show(k)}.{s.subname} TO "
                        f"{s.newname} breaks code that uses the old name")
            self.locks(f"ALTER TABLE {_show(k)} RENAME COLUMN takes ACCESS EXCLUSIVE")

    def _on_AlterEnumStmt(self, s: ast.AlterEnumStmt) -> None:
        if s.oldVal is None:
            return  # ADD VALUE: nothing existing changes
        name = ".".join(_ident(n.sval) for n in s.typeName or () if isinstance(n, ast.String))
        self.report("enum-value-renamed", f"ALTER TYPE {name} RENAME VALUE '{s.oldVal}' TO "
                    f"'{s.newVal}' breaks code that writes or compares the old label (rows, "
                    "defaults, CHECKs and views follow it; PL/pgSQL bodies do not)")

    # -------------------------------------------------------------------- maintenance
    def _on_VacuumStmt(self, s: ast.VacuumStmt) -> None:
        if not s.is_vacuumcmd:
            return
        if not any(isinstance(o, ast.DefElem) and o.defname == "full" for o in s.options or ()):
            return
        rels = [_rv_key(r.relation) for r in s.rels or () if r.relation is not None]
        if rels and all(self.is_new(k) for k in rels):
            return
        names = ", ".join(_show(k) for k in rels) or "every table"
        self.report("table-rewrite", f"VACUUM FULL {names} rewrites under ACCESS EXCLUSIVE")
        self.locks(f"VACUUM FULL {names} takes ACCESS EXCLUSIVE")

    def _on_ClusterStmt(self, s: ast.ClusterStmt) -> None:
        if s.relation is not None and self.is_new(_rv_key(s.relation)):
            return
        name = _show(_rv_key(s.relation)) if s.relation is not None else "every clustered table"
        self.report("table-rewrite", f"CLUSTER {name} rewrites under ACCESS EXCLUSIVE")
        self.locks(f"CLUSTER {name} takes ACCESS EXCLUSIVE")

    def _concurrently(self, what: str) -> None:
        if self.tx is not None:
            self.report("concurrently-in-transaction", f"{what} inside BEGIN ... COMMIT: "
                        "PostgreSQL refuses it (it cannot run in a transaction block)")

    def _on_ReindexStmt(self, s: ast.ReindexStmt) -> None:
        concurrent = any(isinstance(o, ast.DefElem) and o.defname == "concurrently"
                         for o in s.params or ())
        if concurrent:
            self._concurrently("REINDEX CONCURRENTLY")
            return
        self.locks("REINDEX without CONCURRENTLY blocks writes")

    def _on_LockStmt(self, s: ast.LockStmt) -> None:
        # modes 1-3 (ACCESS SHARE .. ROW EXCLUSIVE) conflict with neither reads nor writes
        # of others; 4 (SHARE UPDATE EXCLUSIVE) neither; SHARE and up block writes.
        if (s.mode or 8) >= 5 and not all(self.is_new(_rv_key(r)) for r in s.relations or ()):
            self.locks("LOCK TABLE")

    # -------------------------------------------------------------------- ALTER TABLE
    def _on_AlterTableStmt(self, s: ast.AlterTableStmt) -> None:
        if s.objtype != ObjectType.OBJECT_TABLE or s.relation is None:
            return
        k = _rv_key(s.relation)
        new = self.is_new(k)
        strong = False
        for cmd in s.cmds or ():
            if not isinstance(cmd, ast.AlterTableCmd):
                continue
            strong |= self._alter_cmd(k, new, cmd)
        if strong and not new:
            self.locks(f"ALTER TABLE {_show(k)} takes ACCESS EXCLUSIVE")

    def _alter_cmd(self, k: Key, new: bool, cmd: ast.AlterTableCmd) -> bool:
        """Check one subcommand; True when it blocks reads or writes of table ``k``."""
        t = cmd.subtype
        table = _show(k)
        if t == AT.AT_AddConstraint and isinstance(cmd.def_, ast.Constraint):
            self._add_constraint(k, new, cmd.def_)
            if new:
                self._references(cmd.def_)
        elif t == AT.AT_ValidateConstraint:
            self._validate(k, cmd.name or "")
        elif t == AT.AT_AddColumn and isinstance(cmd.def_, ast.ColumnDef):
            if not new:
                self.new_columns.add((k, cmd.def_.colname or ""))
                self._add_column(table, cmd.def_)
            else:
                for c in _constraints(cmd.def_):
                    self._references(c)
        elif new:
            pass  # nothing below matters on a table this file created
        elif t == AT.AT_DropColumn:
            self.report("drop-column", f"DROP COLUMN {table}.{cmd.name} deletes its values")
        elif t == AT.AT_AlterColumnType and isinstance(cmd.def_, ast.ColumnDef):
            self._alter_type(table, cmd.name or "", cmd.def_)
        elif t == AT.AT_SetNotNull:
            if (k, cmd.name or "") not in self.not_null_checked:
                self.report("set-not-null", f"SET NOT NULL on {table}.{cmd.name} scans every "
                            "row under ACCESS EXCLUSIVE")
        elif t == AT.AT_DropNotNull:
            self.report("drop-not-null", f"DROP NOT NULL on {table}.{cmd.name}: code may "
                        "rely on it never being NULL")
        elif t == AT.AT_DropConstraint:
            if (k, cmd.name or "") not in self.new_constraints:
                self.report("drop-constraint", f"DROP CONSTRAINT {cmd.name} on {table}: code "
                            "or data quality may rely on it")
        elif t == AT.AT_ColumnDefault and cmd.def_ is None:
            # Django's AddField: ADD COLUMN ... DEFAULT x NOT NULL, then DROP DEFAULT. A
            # column added in this file has no code relying on its default yet.
            if (k, cmd.name or "") in self.new_columns:
                return True
            self.report("drop-default", f"DROP DEFAULT on {table}.{cmd.name}: inserts that "
                        "omit the column now get NULL or fail")
        elif t in _REWRITE_CMDS:
            self.report("table-rewrite", f"{_REWRITE_CMDS[t]} rewrites {table} under ACCESS "
                        "EXCLUSIVE")
        elif t == AT.AT_AttachPartition and isinstance(cmd.def_, ast.PartitionCmd):
            return self._attach(table, cmd.def_)
        elif t == AT.AT_DetachPartition and isinstance(cmd.def_, ast.PartitionCmd):
            if cmd.def_.concurrent:
                self._concurrently("DETACH PARTITION CONCURRENTLY")
                return False
        return t not in _WEAK_LOCK_CMDS

    def _attach(self, table: str, pc: ast.PartitionCmd) -> bool:
        part = _rv_key(pc.name)
        if self.is_new(part):
            return False  # an empty partition: nothing to scan, nobody waits on it
        if part not in self.validated_tables:
            self.report("attach-partition-scan",
                        f"ATTACH PARTITION {_show(part)} to {table} scans the partition to "
                        "check its bounds, under ACCESS EXCLUSIVE on the partition")
        self.locks(f"ATTACH PARTITION {_show(part)} takes ACCESS EXCLUSIVE on it")
        return False  # the parent only takes SHARE UPDATE EXCLUSIVE (PG12+)

    def _default(self, name: str, question: tuple[str, str | None], pos: int | None) -> None:
        from .dialects.postgres.default_rewrites import constant_default

        expr = question[1] or f"(the default of type {question[0]})"
        if self.default_answers is None:  # no server: only a constant is surely stored once
            if constant_default(question[1]) is not True:
                self.report("volatile-default", f"ADD COLUMN {name} DEFAULT {expr} may be "
                            "computed per row, rewriting the table under ACCESS EXCLUSIVE "
                            "(no server was asked: lint --shadow-db)", pos)
            return
        answer = self.default_answers.get(question)
        if answer:
            self.report("volatile-default", f"ADD COLUMN {name} DEFAULT {expr} is computed "
                        "per row: the table is rewritten under ACCESS EXCLUSIVE", pos)
        elif answer is None:
            self.report("volatile-default", f"ADD COLUMN {name} DEFAULT {expr} may be "
                        "computed per row, rewriting the table under ACCESS EXCLUSIVE (the "
                        "server could not answer)", pos)

    def _add_column(self, table: str, col: ast.ColumnDef) -> None:
        cons = _constraints(col)
        kinds = {c.contype for c in cons}
        name = f"{table}.{col.colname}"
        tname = _type_name(col.typeName)
        cpos = col.location if isinstance(col.location, int) else None
        default = next((c for c in cons if c.contype == ConstrType.CONSTR_DEFAULT), None)
        identity = ConstrType.CONSTR_IDENTITY in kinds or tname in _SERIAL_TYPES
        generated = next((c for c in cons if c.contype == ConstrType.CONSTR_GENERATED), None)
        not_null = (col.is_not_null or ConstrType.CONSTR_NOTNULL in kinds
                    or ConstrType.CONSTR_PRIMARY in kinds)
        if not_null and default is None and not identity and generated is None:
            self.report("add-not-null-column-without-default",
                        f"ADD COLUMN {name} NOT NULL without a default fails if the table "
                        "has rows", cpos)
        question = _default_question(col)
        if question is not None:
            self._default(name, question, cpos)
        if generated is not None and generated.generated_kind != "v":
            self.report("add-generated-column", f"ADD COLUMN {name} GENERATED ... STORED "
                        "rewrites the table under ACCESS EXCLUSIVE", cpos)
        if identity:
            how = tname.upper() if tname in _SERIAL_TYPES else "an identity"
            self.report("add-identity-column", f"ADD COLUMN {name} as {how} fills every row "
                        "from a sequence: the table is rewritten under ACCESS EXCLUSIVE", cpos)
        for c in cons:
            pos = c.location if isinstance(c.location, int) else None
            if c.contype == ConstrType.CONSTR_FOREIGN:
                ref = _show(_rv_key(c.pktable)) if c.pktable is not None else "?"
                self.report("add-foreign-key", f"ADD COLUMN {name} REFERENCES {ref} checks "
                            "every row while blocking writes on both tables", pos)
            elif c.contype == ConstrType.CONSTR_UNIQUE:
                self.report("add-unique-constraint", f"ADD COLUMN {name} UNIQUE builds its "
                            "index under ACCESS EXCLUSIVE", pos)
            elif c.contype == ConstrType.CONSTR_PRIMARY:
                self.report("add-primary-key", f"ADD COLUMN {name} PRIMARY KEY builds its "
                            "index under ACCESS EXCLUSIVE", pos)
            elif c.contype == ConstrType.CONSTR_CHECK:
                self.report("add-check-constraint", f"ADD COLUMN {name} CHECK (...) checks "
                            "every row under ACCESS EXCLUSIVE", pos)

    def _alter_type(self, table: str, column: str, col: ast.ColumnDef) -> None:
        tn = col.typeName
        name = _type_name(tn)
        unbounded = not (tn.typmods if tn is not None else None)
        using = col.raw_default is not None
        array = bool(tn is not None and tn.arrayBounds)
        # To text or unbounded varchar is binary-coercible from varchar/text: no rewrite.
        if not using and not array and unbounded and name in ("text", "varchar"):
            return
        shown = _sql(tn) if tn is not None else "?"
        why = "rewrites" if using else "may rewrite"
        self.report("type-change-rewrite",
                    f"ALTER COLUMN {table}.{column} TYPE {shown} {why} the table under "
                    "ACCESS EXCLUSIVE (lint cannot see the old type; safe only when "
                    "binary-coercible, e.g. widening varchar(n))")

    def _add_constraint(self, k: Key, new: bool, c: ast.Constraint) -> None:
        table = _show(k)
        name = c.conname or ""
        if name:
            self.new_constraints.add((k, name))
        pos = c.location if isinstance(c.location, int) else None
        label = f" {name}" if name else ""
        nn_col = _not_null_column(c.raw_expr) if c.contype == ConstrType.CONSTR_CHECK else None
        if c.contype in (ConstrType.CONSTR_CHECK, ConstrType.CONSTR_FOREIGN):
            rule = ("add-check-constraint" if c.contype == ConstrType.CONSTR_CHECK
                    else "add-foreign-key")
            if c.skip_validation:  # NOT VALID: no scan now, VALIDATE later
                if name:
                    self.pending[(k, name)] = _Pending(rule, self.tx, nn_col)
                return
            if nn_col:
                # a valid CHECK (col IS NOT NULL) lets a later SET NOT NULL skip its scan
                self.not_null_checked.add((k, nn_col))
            if c.contype == ConstrType.CONSTR_CHECK:
                self.validated_tables.add(k)
            if new:
                return
            what = ("CHECK" if rule == "add-check-constraint" else "FOREIGN KEY")
            self.report(rule, f"ADD CONSTRAINT{label} {what} on {table} without NOT VALID "
                        "checks every row under a lock that blocks writes", pos)
            return
        if new:
            return
        if c.contype in (ConstrType.CONSTR_UNIQUE, ConstrType.CONSTR_PRIMARY) \
                and not c.indexname:
            what = "UNIQUE" if c.contype == ConstrType.CONSTR_UNIQUE else "PRIMARY KEY"
            self.report("unique-on-existing-data", f"{what} on {table} fails if existing rows "
                        "have duplicates", pos)
        if c.contype == ConstrType.CONSTR_UNIQUE and not c.indexname:
            self.report("add-unique-constraint", f"ADD CONSTRAINT{label} UNIQUE on {table} "
                        "builds its index under ACCESS EXCLUSIVE", pos)
        elif c.contype == ConstrType.CONSTR_PRIMARY and not c.indexname:
            self.report("add-primary-key", f"ADD PRIMARY KEY on {table} builds its index "
                        "under ACCESS EXCLUSIVE", pos)
        elif c.contype == ConstrType.CONSTR_EXCLUSION:
            self.report("add-exclusion-constraint", f"ADD CONSTRAINT{label} EXCLUDE on "
                        f"{table} builds its index under ACCESS EXCLUSIVE", pos)

    def _validate(self, k: Key, name: str) -> None:
        p = self.pending.pop((k, name), None)
        if p is None:
            return
        if p.not_null_column:
            self.not_null_checked.add((k, p.not_null_column))
        if p.rule == "add-check-constraint":
            self.validated_tables.add(k)
        if p.tx is not None and p.tx == self.tx and not self.is_new(k):
            self.report(p.rule, f"VALIDATE CONSTRAINT {name} on {_show(k)} runs in the same "
                        "transaction as its ADD ... NOT VALID: the ADD's lock is held for the "
                        "whole scan; commit in between")


# ------------------------------------------------------------------------ output
FORMATS = ("text", "json", "github")


def at_or_above(findings: Iterable[LintFinding], level: Safety) -> list[LintFinding]:
    return [f for f in findings if f.safety.rank >= level.rank]


def format_findings(findings: list[LintFinding], fmt: str) -> str:
    """Findings as ``text`` (file:line:col: ...), ``json`` or ``github`` annotations."""
    if fmt == "json":
        return json.dumps([f.to_json() for f in findings], indent=2)
    if fmt == "github":
        return "\n".join(_github(f) for f in findings)
    out: list[str] = []
    for f in findings:
        out.append(f"{_line_text(f.file)}:{f.line}:{f.column}: {f.safety.value} {f.rule}: "
                   f"{_line_text(f.message)}")
        if f.safer:
            out.append(f"    safer: {_line_text(f.safer)}")
    return "\n".join(out)


def _line_text(s: str) -> str:
    """One line of text without terminal controls: names quoted in the linted file (a
    pull request's) may hold escapes that clear, retitle or hide a terminal's lines, and
    line breaks that would start a made-up ``file:line:col:`` finding for whatever reads
    the output (a problem matcher)."""
    from .report import printable

    return printable(s).replace("\n", "\\n")


def _gh_data(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_prop(s: str) -> str:
    return _gh_data(s).replace(":", "%3A").replace(",", "%2C")


def _github(f: LintFinding) -> str:
    # GitHub workflow command: data loss fails the eye as an error, the rest warn.
    kind = "error" if f.safety in (Safety.LOSSY, Safety.DANGEROUS) else "warning"
    body = f.message + (f"\nSafer: {f.safer}" if f.safer else "")
    return (f"::{kind} file={_gh_prop(f.file)},line={f.line},col={f.column},"
            f"title={_gh_prop('lockplane ' + f.rule)}::{_gh_data(body)}")


def format_rules(fmt: str) -> str:
    """The catalogue, for ``lockplane lint --list-rules``."""
    if fmt == "json":
        return json.dumps([{"id": r.id, "safety": r.safety.value, "title": r.title,
                            "safer": r.safer, "squawk": list(r.squawk),
                            "lintable": r.lintable, "lock": r.lock} for r in RULES.values()],
                          indent=2)
    out: list[str] = []
    for r in RULES.values():
        note = "" if r.lintable else "  (plans only)"
        out.append(f"{r.id:<37} {r.safety.value:<11} {r.title}{note}")
        if r.safer:
            out.append(f"    safer: {r.safer}")
        if r.squawk:
            out.append(f"    squawk: {', '.join(r.squawk)}")
    return "\n".join(out)
