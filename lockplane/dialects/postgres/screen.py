"""What a desired-schema file may run: every statement checked with PostgreSQL's parser.

A schema file arrives in a pull request and is loaded on a database server with
Lockplane's credentials, so it is screened statement by statement before anything runs.
Only statements that define schema objects pass (an allow-list: anything the list does
not name is refused); the rest - DML, COPY, DO, CALL, queries, role, database,
tablespace, system, subscription and foreign-server statements, ``CREATE ... AS`` queries
that execute - is refused with file:line and why.

Each statement that passes says where it runs (see :mod:`.sandbox`):
- ``SANDBOX``: on the unprivileged sandbox role's session (nearly everything);
- ``SESSION``: a session setting; runs there and is replayed before privileged statements;
- ``PRIVILEGED``: on the privileged session, in file order (allow-listed extensions,
  default privileges of roles other than the sandbox's);
- ``LAST``: on the privileged session after everything else (event triggers, which would
  otherwise fire on the file's later DDL);
- ``SKIP``: nothing to run (ownership, which Lockplane does not model; transaction
  control, since the loader owns the transaction).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

import pglast
from pglast import ast
from pglast.enums import AlterTableType as AT
from pglast.enums import ObjectType, RoleSpecType, VariableSetKind
from pglast.parser import ParseError
from pglast.stream import RawStream
from pglast.visitors import Visitor

from ...errors import BadInput

# Lockplane's own state lives in this schema on the target: a desired schema may not
# define it (introspection leaves it out, so it would be silently ignored).
STATE_SCHEMA = "lockplane"


class Runs(enum.Enum):
    SANDBOX = "sandbox"
    SESSION = "session"
    PRIVILEGED = "privileged"
    LAST = "last"
    SKIP = "skip"


@dataclass
class Statement:
    sql: str
    line: int  # 1-based line of the file where the statement starts
    offset: int  # character offset of the statement in the file
    runs: Runs
    rewritten: bool = False  # sql is not the file's own text (deparsed after a change)
    # What the runner checks against the server before anything runs.
    extension: str | None = None
    extension_cascade: bool = False
    language: str | None = None
    setting: str | None = None
    # ALTER DEFAULT PRIVILEGES: the roles it names (FOR ROLE), or () for the role running
    # the file. The runner makes an entry of the privileged role for the sandbox role too.
    default_privilege_roles: tuple[str, ...] | None = None
    # Roles the statement names (grantees, FOR ROLE, policies' TO ...): a private scratch
    # server has none of the target's roles and makes them, without login, first.
    roles: tuple[str, ...] = ()


@dataclass
class Screened:
    path: str
    text: str
    statements: list[Statement] = field(default_factory=list)
    lines: bool = True  # whether errors name a line of ``text`` (a file) or not (generated)

    def where(self, line: int) -> str:
        return f"{self.path}:{line}" if self.lines else self.path


# Statements that only define (or alter, comment on, grant on) schema objects. Executing
# them runs no user code by itself; code that runs as a side effect (a function called
# by a default) runs as the sandbox role, which can reach nothing outside the scratch
# database.
_DEFINES = frozenset({
    "CreateStmt", "AlterTableStmt", "IndexStmt", "CreateSeqStmt", "AlterSeqStmt",
    "ViewStmt", "CreateFunctionStmt", "AlterFunctionStmt", "CreateTrigStmt",
    "CreateEnumStmt", "AlterEnumStmt", "CompositeTypeStmt", "CreateRangeStmt",
    "DefineStmt", "CreateDomainStmt", "AlterDomainStmt", "CommentStmt", "GrantStmt",
    "CreatePolicyStmt", "AlterPolicyStmt", "RuleStmt", "CreatePublicationStmt",
    "AlterPublicationStmt", "CreateStatsStmt", "AlterStatsStmt", "RenameStmt",
    "AlterObjectSchemaStmt", "DropStmt", "CreateCastStmt", "CreateOpClassStmt",
    "CreateOpFamilyStmt", "AlterOpFamilyStmt", "CreateConversionStmt",
    "AlterTSConfigurationStmt", "AlterTSDictionaryStmt", "AlterTypeStmt",
    "AlterCollationStmt", "AlterOperatorStmt", "CreateSchemaStmt", "AlterOwnerStmt",
    "CreateExtensionStmt", "AlterExtensionStmt", "AlterDefaultPrivilegesStmt",
    "CreateEventTrigStmt", "AlterEventTrigStmt", "CreateTableAsStmt", "VariableSetStmt",
    "SelectStmt", "TransactionStmt", "ReplicaIdentityStmt",
})

# Why the rest is refused, for the classes a reader will recognise.
_WHY = {
    "InsertStmt": "it changes rows (DML)", "UpdateStmt": "it changes rows (DML)",
    "DeleteStmt": "it changes rows (DML)", "MergeStmt": "it changes rows (DML)",
    "TruncateStmt": "it changes rows (DML)",
    "SelectStmt": "it runs a query", "ExplainStmt": "EXPLAIN can run the statement",
    "CopyStmt": "COPY reads or writes data, files and programs",
    "DoStmt": "a DO block runs code", "CallStmt": "CALL runs a procedure",
    "RefreshMatViewStmt": "it runs the view's query",
    "LoadStmt": "LOAD loads a shared library into the server",
    "CreatePLangStmt": "it creates a procedural language",
    "CreateRoleStmt": "roles are cluster-wide", "AlterRoleStmt": "roles are cluster-wide",
    "AlterRoleSetStmt": "roles are cluster-wide", "DropRoleStmt": "roles are cluster-wide",
    "GrantRoleStmt": "role memberships are cluster-wide",
    "ReassignOwnedStmt": "it acts on everything a role owns",
    "DropOwnedStmt": "it acts on everything a role owns",
    "CreatedbStmt": "it is a database statement", "DropdbStmt": "it is a database statement",
    "AlterDatabaseStmt": "it is a database statement",
    "AlterDatabaseSetStmt": "it is a database statement",
    "AlterDatabaseRefreshCollStmt": "it is a database statement",
    "CreateTableSpaceStmt": "tablespaces are the server's",
    "DropTableSpaceStmt": "tablespaces are the server's",
    "AlterTableSpaceOptionsStmt": "tablespaces are the server's",
    "AlterTableMoveAllStmt": "tablespaces are the server's",
    "AlterSystemStmt": "it changes the server's configuration",
    "CreateSubscriptionStmt": "a subscription connects to another server",
    "AlterSubscriptionStmt": "a subscription connects to another server",
    "DropSubscriptionStmt": "a subscription connects to another server",
    "CreateFdwStmt": "foreign data wrappers reach outside the database",
    "AlterFdwStmt": "foreign data wrappers reach outside the database",
    "CreateForeignServerStmt": "foreign servers reach outside the database",
    "AlterForeignServerStmt": "foreign servers reach outside the database",
    "CreateUserMappingStmt": "user mappings hold credentials for other servers",
    "AlterUserMappingStmt": "user mappings hold credentials for other servers",
    "DropUserMappingStmt": "user mappings hold credentials for other servers",
    "CreateForeignTableStmt": "foreign tables reach outside the database",
    "ImportForeignSchemaStmt": "foreign tables reach outside the database",
    "SecLabelStmt": "security labels belong to a label provider",
    "CreateTransformStmt": "transforms need C functions",
    "CreateAmStmt": "access methods need C functions",
    "VacuumStmt": "it is maintenance, not a definition",
    "ClusterStmt": "it is maintenance, not a definition",
    "ReindexStmt": "it is maintenance, not a definition",
    "CheckPointStmt": "it is maintenance, not a definition",
    "LockStmt": "it takes locks", "ListenStmt": "it is not a definition",
    "NotifyStmt": "it is not a definition", "UnlistenStmt": "it is not a definition",
    "PrepareStmt": "it prepares a query", "ExecuteStmt": "it runs a prepared query",
    "DeclareCursorStmt": "it runs a query", "FetchStmt": "it runs a query",
    "DiscardStmt": "it is not a definition", "ConstraintsSetStmt": "it is not a definition",
    "AlterExtensionContentsStmt": "it changes what an extension owns",
}

# Objects that live outside the database (cluster-wide): a schema file may not touch them.
_CLUSTER_WIDE = frozenset({
    ObjectType.OBJECT_DATABASE, ObjectType.OBJECT_ROLE, ObjectType.OBJECT_TABLESPACE,
    ObjectType.OBJECT_SUBSCRIPTION, ObjectType.OBJECT_FDW, ObjectType.OBJECT_FOREIGN_SERVER,
    ObjectType.OBJECT_USER_MAPPING, ObjectType.OBJECT_FOREIGN_TABLE,
    ObjectType.OBJECT_LARGEOBJECT, ObjectType.OBJECT_PARAMETER_ACL, ObjectType.OBJECT_LANGUAGE,
})
_CLUSTER_WIDE_WHY = "it changes an object outside the database (database, role, tablespace, " \
    "foreign server, language, large object or server parameter)"

# Settings a file may change for its own session, beyond the server's user-level ones
# (checked by the runner): never these.
FORBIDDEN_SETTINGS = frozenset({"role", "session_authorization", "session_replication_role"})


# Settings that change how the server splits and reads statements, and the values under
# which it reads them as the screen does (the sessions start with them).
_LEXICAL_SETTINGS = {
    "standard_conforming_strings": frozenset({"on", "true", "yes", "1"}),
    "client_encoding": frozenset({"utf8", "utf-8", "unicode"}),
}


def _set_value(node: ast.VariableSetStmt) -> str | None:
    """The value a plain ``SET name = value`` gives, lowercased (None: DEFAULT or RESET,
    which go back to what the server was configured with)."""
    if node.kind != VariableSetKind.VAR_SET_VALUE or not node.args or len(node.args) != 1:
        return None
    val = getattr(node.args[0], "val", None)
    for attr in ("sval", "ival", "boolval"):
        if getattr(val, attr, None) is not None:
            return str(getattr(val, attr)).lower()
    return None


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, max(offset, 0)) + 1


class _Lines:
    """Line numbers of offsets met in increasing order: each newline is counted once
    (counting from the start for every statement made a big file's screen quadratic)."""

    def __init__(self, text: str) -> None:
        self.text, self.offset, self.line = text, 0, 1

    def at(self, offset: int) -> int:
        offset = max(offset, 0)
        if offset < self.offset:
            return _line(self.text, offset)
        self.line += self.text.count("\n", self.offset, offset)
        self.offset = offset
        return self.line


def screen(text: str, path: str, *, lines: bool = True) -> Screened:
    """Parse a schema file and decide, for every statement, whether and where it runs.

    Raises BadInput (file:line and why) on the first statement that may not run, before
    anything has run.
    """
    try:
        raw = pglast.parse_sql(text)
    except ParseError as exc:
        where = path
        location = exc.args[1] if len(exc.args) > 1 else None
        if lines and isinstance(location, int):
            where += f":{_line(text, location)}"
        raise BadInput(f"{where}: {exc.args[0]}") from None
    out = Screened(path, text, lines=lines)
    line_at = _Lines(text).at
    for r in raw:
        offset = r.stmt_location
        length = r.stmt_len or len(text) - offset
        sql = text[offset:offset + length]
        line = line_at(offset + len(sql) - len(sql.lstrip()))
        roles = _Roles()
        roles(r.stmt)
        stmt = _classify(r.stmt, sql, offset, line, out)
        stmt.roles = tuple(sorted(roles.names))
        out.statements.append(stmt)
    return out


class _Roles(Visitor):
    def __init__(self) -> None:
        self.names: set[str] = set()

    def visit_RoleSpec(self, ancestors: object, node: ast.RoleSpec) -> None:  # noqa: N802
        if node.roletype == RoleSpecType.ROLESPEC_CSTRING and node.rolename:
            self.names.add(node.rolename)


def _command(sql: str) -> str:
    """The statement's leading keywords (``DROP DATABASE``, ``COPY``), as a reader says it."""
    words = []
    try:
        for tok in pglast.parser.scan(sql):
            if tok.kind == "NO_KEYWORD" or len(words) == 3:
                break
            words.append(sql[tok.start:tok.end + 1].upper())
    except ParseError:
        pass
    return " ".join(words) or "this statement"


def _refuse(f: Screened, line: int, sql: str, why: str) -> BadInput:
    return BadInput(f"{f.where(line)}: {_command(sql)} is not allowed in a schema file: "
                    f"{why}; only statements that define schema objects are run")


def _deparse(node: ast.Node) -> str:
    return RawStream()(node)


def _classify(node: ast.Node, sql: str, offset: int, line: int, f: Screened) -> Statement:
    name = type(node).__name__

    def runs(where: Runs, **kw: object) -> Statement:
        return Statement(sql, line, offset, where, **kw)  # type: ignore[arg-type]

    def rewritten(new: ast.Node, where: Runs = Runs.SANDBOX) -> Statement:
        return Statement(_deparse(new), line, offset, where, rewritten=True)

    if name not in _DEFINES:
        raise _refuse(f, line, sql, _WHY.get(name, "it is not a schema definition"))
    if name == "SelectStmt":
        if _is_dump_search_path(node):
            return runs(Runs.SESSION, setting="search_path")
        raise _refuse(f, line, sql, _WHY["SelectStmt"])
    if name == "VariableSetStmt":
        if node.kind in (VariableSetKind.VAR_SET_MULTI,):
            return runs(Runs.SKIP)  # SET TRANSACTION ...: the loader owns the transaction
        if node.kind == VariableSetKind.VAR_RESET_ALL:
            return runs(Runs.SESSION)
        setting = (node.name or "").lower()
        if setting in FORBIDDEN_SETTINGS:
            raise _refuse(f, line, sql, f"it changes {setting}, who the file runs as")
        if setting in _LEXICAL_SETTINGS and _set_value(node) not in _LEXICAL_SETTINGS[setting]:
            # The screen reads the file as PostgreSQL's parser does with these values; the
            # server must read it the same way, or a string could hide a statement.
            allowed = " or ".join(sorted(_LEXICAL_SETTINGS[setting])[:1])
            raise _refuse(f, line, sql, f"{setting} may only be {allowed}: it changes how "
                          "the server reads the statements after it")
        return runs(Runs.SESSION, setting=setting)
    if name == "TransactionStmt":
        return runs(Runs.SKIP)
    if name == "CreateTableAsStmt":
        if node.objtype != ObjectType.OBJECT_MATVIEW or node.is_select_into:
            raise _refuse(f, line, sql, "it creates a table from a query, which runs "
                          "the query (declare the table, and keep data out of schema files)")
        if not node.into.skipData:
            # The view's definition is the schema; its rows are data and would need the
            # query to run.
            node.into.skipData = True
            return rewritten(node)
        return runs(Runs.SANDBOX)
    if name == "CreateSchemaStmt":
        schema = node.schemaname or (node.authrole.rolename if node.authrole else None)
        if schema == STATE_SCHEMA:
            raise BadInput(f"{f.where(line)}: schema {STATE_SCHEMA!r} is not allowed in a schema "
                           "file: it is Lockplane's own (its history and state live there)")
        if node.authrole is not None:
            # Ownership is not modelled, and the sandbox role may not give objects away.
            node.schemaname, node.authrole = schema, None
            return rewritten(node)
        return runs(Runs.SANDBOX)
    if name == "AlterOwnerStmt":
        return runs(Runs.SKIP)
    if name == "AlterTableStmt":
        if node.objtype in _CLUSTER_WIDE:
            raise _refuse(f, line, sql, _CLUSTER_WIDE_WHY)
        kept = [c for c in node.cmds if c.subtype != AT.AT_ChangeOwner]
        if not kept:
            return runs(Runs.SKIP)
        if any(c.subtype == AT.AT_SetTableSpace for c in kept):
            raise _refuse(f, line, sql, _WHY["CreateTableSpaceStmt"])
        if len(kept) < len(node.cmds):
            node.cmds = tuple(kept)
            return rewritten(node)
        return runs(Runs.SANDBOX)
    if name == "IndexStmt" and node.concurrent:
        # The tables are empty: a plain build is the same index, and runs in the
        # loader's transaction.
        node.concurrent = False
        return rewritten(node)
    if name == "DropStmt" and node.concurrent:
        node.concurrent = False
        return rewritten(node)
    if name == "CreateFunctionStmt":
        language = "sql"
        for opt in node.options or ():
            if opt.defname == "language":
                language = opt.arg.sval.lower()
        return runs(Runs.SANDBOX, language=language)
    if name == "CreateExtensionStmt":
        cascade = any(o.defname == "cascade" and _truthy(o) for o in node.options or ())
        return runs(Runs.PRIVILEGED, extension=node.extname, extension_cascade=cascade)
    if name == "AlterExtensionStmt":
        return runs(Runs.PRIVILEGED, extension=node.extname)
    if name in ("CreateEventTrigStmt", "AlterEventTrigStmt"):
        return runs(Runs.LAST)
    if name in ("CreatePublicationStmt", "AlterPublicationStmt"):
        # FOR ALL TABLES / TABLES IN SCHEMA need a superuser; a publication runs nothing.
        return runs(Runs.PRIVILEGED)
    if name == "AlterDefaultPrivilegesStmt":
        return _default_privileges(node, sql, offset, line)
    objtype = _object_type(node)
    if objtype in _CLUSTER_WIDE:
        raise _refuse(f, line, sql, _CLUSTER_WIDE_WHY)
    if objtype == ObjectType.OBJECT_EVENT_TRIGGER:
        return runs(Runs.LAST)
    if objtype == ObjectType.OBJECT_EXTENSION:
        return runs(Runs.PRIVILEGED)
    if name == "DefineStmt" and node.kind == ObjectType.OBJECT_TYPE and node.definition:
        # A base type: its input and output functions are C functions.
        raise _refuse(f, line, sql, "a base type needs C functions")
    return runs(Runs.SANDBOX)


def _truthy(opt: ast.DefElem) -> bool:
    arg = opt.arg
    return arg is None or getattr(arg, "boolval", True) is not False


def _object_type(node: ast.Node) -> ObjectType | None:
    """The kind of object a generic statement (COMMENT, GRANT, RENAME, DROP ...) acts on."""
    for attr in ("objtype", "renameType", "removeType", "objectType"):
        value = getattr(node, attr, None)
        if isinstance(value, ObjectType):
            return value
    if isinstance(node, ast.AlterObjectSchemaStmt):
        return node.objectType
    return None


def _is_dump_search_path(node: ast.SelectStmt) -> bool:
    """pg_dump's ``SELECT pg_catalog.set_config('search_path', '...', false);``"""
    if node.fromClause or node.whereClause or node.withClause or node.op.value != 0 \
            or not node.targetList or len(node.targetList) != 1:
        return False
    call = node.targetList[0].val
    if not isinstance(call, ast.FuncCall):
        return False
    names = [n.sval for n in call.funcname]
    if names not in (["pg_catalog", "set_config"], ["set_config"]):
        return False
    args = call.args or ()
    return (len(args) == 3 and all(isinstance(a, ast.A_Const) for a in args)
            and getattr(args[0].val, "sval", None) == "search_path"
            and isinstance(getattr(args[1].val, "sval", None), str)
            and getattr(args[2].val, "boolval", None) is False)


def _default_privileges(node: ast.AlterDefaultPrivilegesStmt, sql: str, offset: int,
                        line: int) -> Statement:
    """ALTER DEFAULT PRIVILEGES runs privileged: FOR ROLE names roles the sandbox role is
    not a member of, and an entry without it belongs to the role running the file."""
    roles: tuple[str, ...] = ()
    for opt in node.options or ():
        if opt.defname == "roles":
            roles += tuple(r.rolename for r in opt.arg if r.rolename)
    return Statement(sql, line, offset, Runs.PRIVILEGED, default_privilege_roles=roles)


def for_role(node_sql: str, role: str) -> str:
    """``ALTER DEFAULT PRIVILEGES FOR ROLE <role> ...``: an entry of the running role,
    re-made for ``role`` (the sandbox's)."""
    (raw,) = pglast.parse_sql(node_sql)
    node = raw.stmt
    spec = ast.RoleSpec(roletype=0, rolename=role)  # ROLESPEC_CSTRING
    node.options = (*[o for o in node.options or () if o.defname != "roles"],
                    ast.DefElem(defname="roles", arg=(spec,)))
    return _deparse(node)


def statements(files: Iterable[Screened]) -> Iterable[tuple[Screened, Statement]]:
    for f in files:
        for s in f.statements:
            yield f, s
