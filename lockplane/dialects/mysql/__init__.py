"""MySQL and MariaDB dialect: PyMySQL sessions, information_schema introspection,
scratch databases.

One dialect serves both servers; where they differ (how defaults are reported, how a
password hash is given to CREATE USER) the session knows which one it talks to
(:attr:`MySQLDatabase.is_mariadb`). Lockplane's own state lives in tables prefixed
``_lockplane_`` in the target database (a MySQL "schema" is a database).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

import pymysql
from pymysql.constants import ER

from ...dsn import redact
from ...errors import BadInput
from ..base import Database, Dialect

if TYPE_CHECKING:
    from ...changes.base import Change, Lock
    from ...model import Schema

# Where scratch databases are made when nothing else is configured.
DEFAULT_SERVER = "mysql://root@127.0.0.1:3306/"
# Prefix of Lockplane's own tables in a target database (never introspected).
STATE_PREFIX = "_lockplane_"
# Server errors that mean "gave up waiting for a lock": running it again may succeed.
_LOCK_WAITS = {
    ER.LOCK_WAIT_TIMEOUT: "lock wait timeout exceeded",
    ER.LOCK_DEADLOCK: "deadlock",
}
# ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION (PyMySQL's constants stop before it).
_READ_ONLY_TRANSACTION = 1792
# Client errors that mean the session is gone: server gone away, lost connection.
_GONE = {2006, 2013}
# A statement stopped at its time limit: MariaDB's max_statement_time, MySQL's
# max_execution_time.
_TIMED_OUT = {1969, 3024}


def _archive_ident(name: str) -> str:
    """An archive table's name (changes/refill_column.archive_name) under the state
    prefix, within MySQL's 64 characters: a long one keeps its head and its digest."""
    full = STATE_PREFIX + name
    return full if len(full) <= 64 else full[:53] + full[-11:]


class MySQLDialect(Dialect):
    name = "mysql"
    default_schema = ""  # one database per DSN: names are never qualified
    has_virtual_generated_columns = True
    # DDL commits implicitly: a failed plan cannot roll back the statements before it.
    transactional_ddl = False
    param = "%s"
    # GET_LOCK: named locks held by a session until it releases them or ends.
    has_advisory_locks = True
    scratch_needs_server = True
    state_schema = None  # _lockplane_<name> tables in the target database
    now_sql = "UTC_TIMESTAMP(6)"
    # Online schema change tools: copy the table in the background, swap at the end
    # (lockplane/export/osc.py).
    export_tools = ("gh-ost", "pt-osc")
    comment_clauses = True  # COMMENT '...' of tables, columns and indexes
    replaces_views = True  # CREATE OR REPLACE VIEW takes any new query
    swaps_in_one_alter = True
    foreign_keys_keep_their_index = True

    # Expand/contract renames keep both columns in sync with BEFORE INSERT/UPDATE
    # triggers (multiphase/sync.py); the other patterns are not planned here yet.
    multiphase_operations = ("rename_column",)
    # A batch's checkpoint row is read FOR UPDATE (InnoDB row lock to the commit).
    lock_rows_clause = " FOR UPDATE"
    # A plan's backfill steps (fill-with, multi-phase copies) run in keyset batches
    # (backfill.py), on tables with a key to walk (walks_rows_of).
    batches_backfill_steps = True
    # A plan's DROP COLUMN first copies the values into a _lockplane_ archive table
    # (changes/refill_column.py), which a rollback refills them from.
    archives_dropped_values = True
    # A plan's fill of an existing column records the key and old value of each row it
    # changes (keeping_update), for its undo to put back (changes/unfill_column.py).
    records_filled_rows = True

    def distinct_sql(self, left: str, right: str, as_type: str | None = None) -> str:
        return f"NOT ({left} <=> {right})"

    def row_lock_wait(self, lock_timeout_ms: int) -> str:
        return f"innodb_lock_wait_timeout {lock_wait_seconds(lock_timeout_ms)} s"

    def row_compare(self, columns: Sequence[str], op: str, placeholders: Sequence[str],
                    values: Sequence[Any]) -> tuple[str, list[Any]]:
        """Spelled out column by column: MariaDB does not read ``(a, b) > (x, y)`` as an
        index range (each keyset batch would scan the key from its start); the form
        ``a >= x AND (a > x OR a = x AND b > y)`` is a range on the key's first column."""
        cols, ps, vals = list(columns), list(placeholders), list(values)
        if op == "=":
            return " AND ".join(f"{c} = {p}" for c, p in zip(cols, ps, strict=True)), vals
        strict, last = {">": (">", ">"), "<=": ("<", "<=")}[op]
        sql = f"{cols[0]} {last if len(cols) == 1 else op[0] + '='} {ps[0]}"
        out: list[Any] = [vals[0]]
        terms: list[str] = []
        for i in range(len(cols)):
            eqs = [f"{cols[j]} = {ps[j]}" for j in range(i)]
            cmp = last if i == len(cols) - 1 else strict
            terms.append(" AND ".join([*eqs, f"{cols[i]} {cmp} {ps[i]}"]))
            out += vals[:i] + [vals[i]]
        return f"{sql} AND ({' OR '.join(f'({t})' for t in terms)})", out

    def own_options(self) -> Any:
        # --set / --where are MySQL SQL: checked with sqlglot's MySQL grammar.
        from . import options

        return options

    def backfill_catalog(self) -> Any:
        from . import backfill

        return backfill

    def archive_ident(self, name: str) -> str:
        return _archive_ident(name)

    def archive_missing_sql(self, name: str) -> str:
        return ("SELECT CASE WHEN EXISTS (SELECT 1 FROM information_schema.TABLES WHERE "
                "TABLE_SCHEMA = DATABASE() AND TABLE_NAME = "
                f"{self.literal(_archive_ident(name))}) THEN 0 ELSE 1 END")

    def keeping_update(self, table: str, sets: str, where: str, archive: str,
                       key: list[str], column: str) -> list[str]:
        # No data-modifying CTE or UPDATE ... RETURNING: the rows are copied by a locking
        # read (InnoDB's exclusive row and gap locks, held to the batch's commit, so the
        # UPDATE after it changes exactly those rows), then updated.
        picked = ", ".join([*key, column])
        return [f"INSERT INTO {archive} SELECT {picked} FROM {table} WHERE {where} FOR UPDATE",
                f"UPDATE {table} SET {sets} WHERE {where}"]

    def copy_reading_unlocked(self, insert_select: str) -> list[str]:
        # Under REPEATABLE READ, InnoDB's INSERT ... SELECT share-locks every row it reads
        # until it ends (writes to them wait, up to innodb_lock_wait_timeout); under READ
        # COMMITTED it reads a snapshot. SET TRANSACTION: the next transaction only, here
        # the autocommit INSERT.
        return ["SET TRANSACTION ISOLATION LEVEL READ COMMITTED", insert_select]

    def walks_rows_of(self, table: Any) -> bool:
        """Keyset batches walk the primary key, or a unique key of whole NOT NULL columns
        (backfill.resolve picks the same); a table with neither gets one UPDATE."""
        if table.primary_key is not None and table.primary_key.columns:
            return True
        not_null = {c.name for c in table.columns if not c.nullable}
        keys = [u.columns for u in table.unique_constraints]
        keys += [[k.column for k in ix.keys] for ix in table.indexes
                 if ix.unique and ix.where is None
                 and all(k.column is not None and k.length is None for k in ix.keys)]
        return any(cols and set(cols) <= not_null for cols in keys)

    def json_param(self, value: Any) -> Any:
        # Key values come back as the driver's Python values (dates, decimals): their
        # text form, which the server compares with the column's values as it would
        # the value itself.
        return None if value is None else json.dumps(value, default=str)

    def type_change_narrows(self, old: str, new: str) -> bool | None:
        from .types import type_change_narrows

        return type_change_narrows(old, new)

    def ddl_lock(self) -> Lock:
        """A DDL statement whose kind says nothing finer: its exclusive metadata lock."""
        from ...changes.base import Lock
        from .alter_facts import METADATA_LOCK

        return Lock("EXCLUSIVE", True, True, reasons=(METADATA_LOCK,))

    def decide_locks(self, changes: Sequence[Change], before: Schema,
                     near_dsn: str | None = None) -> contextlib.AbstractContextManager[None]:
        """Each ALTER's ALGORITHM and LOCK: the rules, checked on empty copies of its
        tables in a sandbox on ``near_dsn``'s server (see :mod:`.alter_facts`)."""
        from .alter_facts import decided

        return decided(self, changes, before, near_dsn or DEFAULT_SERVER)

    def quote(self, ident: str) -> str:
        if "\x00" in ident:
            raise BadInput(f"identifier {ident!r} contains a NUL byte")
        return "`" + ident.replace("`", "``") + "`"

    def qname(self, schema: str | None, name: str) -> str:
        # The model's schema is "" for the DSN's own database; another is qualified.
        if schema:
            return f"{self.quote(schema)}.{self.quote(name)}"
        return self.quote(name)

    def literal(self, value: str) -> str:
        # Sessions run with backslash escapes on (see MySQLDatabase): both are escaped.
        return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"

    def error_types(self) -> tuple[type[BaseException], ...]:
        return (pymysql.Error,)

    def alter_clauses(self, change: Change) -> tuple[str, str, list[str]] | None:
        # A kind's ALTER TABLE, as it gives it to alter_facts (its clauses carry no
        # ALGORITHM / LOCK: the tools choose their own way).
        render = getattr(change, "mysql_alter", None)
        if render is None:
            return None
        alter = render(self)
        if alter is None:  # (an index replaced in place: several statements)
            return None
        return alter.table.schema_ or "", alter.table.name, list(alter.clauses)

    # COLUMN_TYPE is what introspection records as a column's type: the two compare.
    canonical_column_types = True

    def concat(self, parts_sql: Sequence[str]) -> str:
        # || is OR in MySQL (unless sql_mode has PIPES_AS_CONCAT).
        return f"CONCAT({', '.join(parts_sql)})"

    def escape_for_params(self, sql: str) -> str:
        # PyMySQL interpolates parameters with %: a literal % is doubled.
        return sql.replace("%", "%%")

    def is_read_only_violation(self, exc: BaseException) -> bool:
        return isinstance(exc, pymysql.Error) and bool(exc.args) \
            and exc.args[0] == _READ_ONLY_TRANSACTION

    def is_disconnect(self, exc: BaseException) -> bool:
        return isinstance(exc, pymysql.err.OperationalError) and bool(exc.args) \
            and exc.args[0] in _GONE

    def timestamp_param(self, value: datetime) -> Any:
        # datetime columns have no time zone: state times are stored as UTC.
        return value.astimezone(UTC).replace(tzinfo=None)

    def upsert_sql(self, table: str, columns: Sequence[str], key: Sequence[str]) -> str:
        values = ", ".join([self.param] * len(columns))
        updates = ", ".join(f"{c} = VALUES({c})" for c in columns if c not in key)
        return (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({values}) "
                f"ON DUPLICATE KEY UPDATE {updates}")

    def lock_wait_failure(self, exc: BaseException) -> str | None:
        if isinstance(exc, pymysql.err.OperationalError | pymysql.err.InternalError) \
                and exc.args and isinstance(exc.args[0], int):
            return _LOCK_WAITS.get(exc.args[0])
        return None

    def connect(self, dsn: str, *, create: bool = False) -> MySQLDatabase:
        return MySQLDatabase(self, dsn)

    @contextlib.contextmanager
    def scratch(self, near_dsn: str | None = None) -> Iterator[MySQLDatabase]:
        """A new empty database on ``near_dsn``'s server (its user's own privileges),
        dropped afterwards; for Lockplane's own SQL. Untrusted SQL goes through
        :meth:`load_untrusted`."""
        from .sandbox import scratch

        with scratch(self, near_dsn or DEFAULT_SERVER) as db:
            yield db

    def load_untrusted(self, scripts: Sequence[tuple[str, str]], near_dsn: str | None = None,
                       *, allowed_extensions: Sequence[str] = (), lines: bool = True,
                       version_of: str | None = None) -> Schema:
        from .sandbox import load_untrusted

        return load_untrusted(self, scripts, near_dsn or DEFAULT_SERVER, lines=lines)


@dataclass(frozen=True)
class ConnectParams:
    """What a ``mysql://`` / ``mariadb://`` URL says."""

    host: str
    port: int
    user: str
    password: str
    database: str
    unix_socket: str | None = None
    connect_timeout: int = 10

    def kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = {"host": self.host, "port": self.port, "user": self.user,
                               "password": self.password, "connect_timeout":
                               self.connect_timeout}
        if self.database:
            out["database"] = self.database
        if self.unix_socket:
            out["unix_socket"] = self.unix_socket
        return out


_QUERY_KEYS = {"unix_socket", "connect_timeout"}


def parse_dsn(dsn: str) -> ConnectParams:
    """mysql://user:password@host:port/database?unix_socket=/path; bad input names the
    URL redacted."""
    try:
        parts = urlsplit(dsn)
        port = parts.port or 3306
    except ValueError as exc:
        raise BadInput(f"bad MySQL URL {redact(dsn)}: {exc}") from None
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(query) - _QUERY_KEYS)
    if unknown:
        raise BadInput(f"bad MySQL URL {redact(dsn)}: unknown parameter {unknown[0]!r} "
                       f"(known: {', '.join(sorted(_QUERY_KEYS))})")
    database = unquote(parts.path.lstrip("/"))
    if "/" in database:
        raise BadInput(f"bad MySQL URL {redact(dsn)}: the path is one database name")
    try:
        timeout = int(query.get("connect_timeout", "10"))
    except ValueError:
        raise BadInput(f"bad MySQL URL {redact(dsn)}: connect_timeout is not a number") \
            from None
    if not 0 < timeout <= 31_536_000:  # (PyMySQL's bounds: a year)
        raise BadInput(f"bad MySQL URL {redact(dsn)}: connect_timeout must be from 1 to "
                       f"31536000 seconds, not {timeout}")
    return ConnectParams(host=parts.hostname or "127.0.0.1", port=port,
                         user=unquote(parts.username or "root"),
                         password=unquote(parts.password or ""), database=database,
                         unix_socket=query.get("unix_socket") or None,
                         connect_timeout=timeout)


# sql_mode flags that change what SQL text means (strings read as names, || as a
# concatenation, backslashes as characters, NOT's precedence, '' as NULL, another
# server's grammar) or what SHOW CREATE prints (the options it leaves out): off on every
# Lockplane session, whatever the server's default; the others (STRICT_TRANS_TABLES,
# NO_ZERO_DATE, ...) decide what the database accepts, and stay as the server has them.
_MEANING_MODES = frozenset({
    "ANSI", "ANSI_QUOTES", "PIPES_AS_CONCAT", "NO_BACKSLASH_ESCAPES", "IGNORE_SPACE",
    "HIGH_NOT_PRECEDENCE", "EMPTY_STRING_IS_NULL", "SIMULTANEOUS_ASSIGNMENT", "ORACLE",
    "MSSQL", "DB2", "POSTGRESQL", "MAXDB", "MYSQL323", "MYSQL40", "NO_KEY_OPTIONS",
    "NO_TABLE_OPTIONS", "NO_FIELD_OPTIONS", "NO_DIR_IN_CREATE", "REAL_AS_FLOAT",
    "PAD_CHAR_TO_FULL_LENGTH", "TIME_ROUND_FRACTIONAL", "NO_UNSIGNED_SUBTRACTION",
})

# Session variables that code a step fires (a trigger; a procedure a step calls, which
# may also turn autocommit off: the server puts back only sql_mode when a routine
# returns) may change for the rest of the session, and that decide what Lockplane's own
# SQL on it means or does: rows a SELECT returns, whether it commits, how times, text and
# divisions read, whether keys are checked, what guards the next step. Held by apply and
# backfill sessions (hold_session_settings), as PostgreSQL's HELD_SETTINGS.
HELD_VARIABLES = (
    "sql_mode", "autocommit", "time_zone", "character_set_client",
    "character_set_connection", "character_set_results", "collation_connection",
    "sql_select_limit", "max_join_size", "group_concat_max_len", "div_precision_increment",
    "foreign_key_checks", "unique_checks", "check_constraint_checks", "sql_safe_updates",
    "sql_auto_is_null", "sql_quote_show_create", "lc_time_names", "max_statement_time",
    "lock_wait_timeout", "innodb_lock_wait_timeout", "transaction_isolation",
    "transaction_read_only", "explicit_defaults_for_timestamp", "old_mode",
    "sql_if_exists", "big_tables",
)


@functools.lru_cache(maxsize=4096)
def _only_sets(statement: str) -> bool:
    """Whether a step's statement only sets session variables (read with sqlglot's MySQL
    grammar): what it sets is meant for what follows."""
    import logging

    import sqlglot
    from sqlglot import exp

    quiet = logging.getLogger("sqlglot")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        parsed = sqlglot.parse(statement, read="mysql")
    except sqlglot.errors.SqlglotError:
        return False
    finally:
        quiet.setLevel(level)
    return bool(parsed) and all(isinstance(p, exp.Set) for p in parsed)


def normalized_sql_mode(mode: str) -> str:
    """``mode`` without the flags that change what SQL text means (_MEANING_MODES)."""
    return ",".join(m for m in mode.split(",") if m and m.upper() not in _MEANING_MODES)


def with_database(dsn: str, database: str) -> str:
    """The same URL, another database (the name percent-encoded)."""
    from urllib.parse import quote as urlquote

    parts = urlsplit(dsn)
    return parts._replace(path="/" + urlquote(database, safe="")).geturl()


class MySQLDatabase(Database):
    def __init__(self, dialect: MySQLDialect, dsn: str, *,
                 params: ConnectParams | None = None) -> None:
        self.dialect = dialect
        self.dsn = dsn
        self.dsn_display = redact(dsn)
        self.params = params or parse_dsn(dsn)
        try:
            # autocommit: DDL commits anyway; transaction() opens one explicitly.
            # local_infile stays off: LOAD DATA LOCAL would let a server read our files.
            self.conn = pymysql.connect(**self.params.kwargs(), charset="utf8mb4",
                                        autocommit=True, local_infile=False)
        except pymysql.Error as exc:
            raise BadInput(f"cannot connect to {self.dsn_display}: {_reason(exc)}") from None
        version = str(self.query("SELECT VERSION()")[0][0])
        self.server_version = version
        self.is_mariadb = "mariadb" in version.lower()
        # (names, values) of HELD_VARIABLES as hold_session_settings found them
        self._held: tuple[list[str], list[Any]] | None = None
        self.normalize_session()

    def normalize_session(self) -> None:
        """The mode Lockplane's SQL assumes, whatever the server's defaults: no sql_mode
        flag that changes what its text means (Dialect.literal escapes backslashes, names
        are quoted with backticks, strings with single quotes), every row a SELECT
        finds, text in utf8mb4, SHOW CREATE quoting names. One round trip."""
        mode = str(self.query("SELECT @@SESSION.sql_mode")[0][0] or "")
        self.execute("SET SESSION sql_mode = %s, sql_select_limit = DEFAULT, "
                     "sql_quote_show_create = 1, character_set_client = utf8mb4, "
                     "character_set_connection = utf8mb4, character_set_results = utf8mb4",
                     (normalized_sql_mode(mode),))

    def configure_worker_session(self, application_name: str) -> None:
        self.hold_session_settings()

    def hold_session_settings(self) -> None:
        names = [n for n in HELD_VARIABLES if self._has_variable(n)]
        values = self.query("SELECT " + ", ".join(f"@@SESSION.{n}" for n in names))[0]
        self._held = (names, list(values))

    def _has_variable(self, name: str) -> bool:
        # (MySQL and older MariaDB lack some: check_constraint_checks, sql_if_exists ...)
        known = getattr(self, "_variables", None)
        if known is None:
            with self.conn.cursor() as cur:  # (MySQL 8 and MariaDB alike)
                cur.execute("SHOW SESSION VARIABLES")
                known = self._variables = {str(r[0]).lower() for r in cur.fetchall()}
        return name in known

    def restore_session_settings(self, after: str | None = None) -> None:
        held = self._held
        if held is None or self.closed or (after is not None and _only_sets(after)):
            return
        names, values = held
        now = self.query("SELECT " + ", ".join(f"@@SESSION.{n}" for n in names))[0]
        changed = [(n, v) for n, v, c in zip(names, values, now, strict=True) if c != v]
        if not changed:
            return
        # (autocommit last: turned back on, it commits what the session has open)
        changed.sort(key=lambda nv: nv[0] == "autocommit")
        self.execute("SET SESSION " + ", ".join(f"{n} = %s" for n, _ in changed),
                     [v for _, v in changed])

    @property
    def database(self) -> str:
        """The database this session works in ('' when the URL names none)."""
        return str(self.query("SELECT DATABASE()")[0][0] or "")

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        with self.conn.cursor() as cur:
            # No parameters (None): the SQL goes as it is (a % in it is not a placeholder);
            # a list, even empty, is interpolated (%% is %), as psycopg does.
            cur.execute(sql, None if params is None else tuple(params))

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cur:
            cur.execute(sql, None if params is None else tuple(params))
            return list(cur.fetchall()) if cur.description else []

    def introspect(self) -> Schema:
        from .introspect import introspect

        return introspect(self)

    def table_size_bytes(self, schema: str | None, table: str) -> int | None:
        rows = self.query(
            "SELECT DATA_LENGTH + INDEX_LENGTH FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = COALESCE(NULLIF(%s, ''), DATABASE()) AND TABLE_NAME = %s",
            (schema or "", table))
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    def not_one_query(self, sql: str) -> str | None:
        from .options import not_one_query

        return not_one_query(sql)

    def privileged_calls(self, statements: Sequence[str],
                         defined: Sequence[str] = ()) -> list[str]:
        from .options import privileged_calls

        try:  # the server's loadable (native) functions
            udfs = frozenset(str(r[0]).lower() for r in self.query("SELECT name FROM mysql.func"))
        except pymysql.Error:
            udfs = frozenset()  # (may not read it: the built-ins are still judged)
        return privileged_calls(list(statements), udfs)

    def read_only_session(self) -> None:
        # Every transaction from now on, autocommit statements included.
        self.execute("SET SESSION TRANSACTION READ ONLY")

    @contextlib.contextmanager
    def read_only(self) -> Iterator[None]:
        self.execute("START TRANSACTION READ ONLY")
        try:
            yield
        finally:
            self.conn.rollback()

    @contextlib.contextmanager
    def apply_session(self, lock_timeout_ms: int) -> Iterator[None]:
        """DDL waits for its metadata lock at most ``lock_timeout_ms``, rounded up to
        lock_wait_timeout's whole seconds (:func:`lock_wait_seconds`), and then fails
        with a lock wait timeout (1205), which the apply retries within its budget, as
        PostgreSQL's lock_timeout."""
        if not lock_timeout_ms:
            with self.settings_held():
                yield
            return
        before = int(self.query("SELECT @@SESSION.lock_wait_timeout")[0][0])
        self.execute(f"SET SESSION lock_wait_timeout = {lock_wait_seconds(lock_timeout_ms)}")
        try:
            with self.settings_held():
                yield
        finally:
            if not self.closed:
                self.execute(f"SET SESSION lock_wait_timeout = {before}")

    def release_session_settings(self) -> None:
        self._held = None

    def lock_wait_setting(self, lock_timeout_ms: int) -> str | None:
        if not lock_timeout_ms:
            return None
        seconds = lock_wait_seconds(lock_timeout_ms)
        said = f"lock_wait_timeout = {seconds} s"
        if seconds * 1000 != lock_timeout_ms:
            said += (f" ({lock_timeout_ms} ms asked: the server takes whole seconds, and 0 "
                     "would fail even the brief metadata lock at a DDL's end)")
        return said + "; a step that waits longer is retried within its lock-wait budget"

    def lock_watch(self) -> Any:
        from .lockwait import MySQLLockWatch

        try:
            return MySQLLockWatch(self)
        except (BadInput, pymysql.Error):
            return None  # (no connection left, say): the blockers stay unknown

    @property
    def closed(self) -> bool:
        return not self.conn.open

    def rowcount(self, sql: str, params: Sequence[Any] | None = None) -> int:
        with self.conn.cursor() as cur:
            return int(cur.execute(sql, None if params is None else tuple(params)))

    # GET_LOCK names are server-wide; PostgreSQL's advisory keys are per database. The
    # name carries the database (hashed: a name is at most 64 characters).
    def _lock_name(self, key: Sequence[int]) -> str:
        database = hashlib.sha256(self.database.encode()).hexdigest()[:24]
        return f"lockplane:{database}:" + ".".join(str(int(k)) for k in key)

    def set_local_settings(self, lock_timeout_ms: int | None = None,
                           statement_timeout_ms: int | None = None,
                           synchronous_commit: bool | None = None) -> None:
        """Row lock waits (``innodb_lock_wait_timeout``, whole seconds, at least 1) and,
        on MariaDB, a statement time limit (``max_statement_time``; 0: none). Session
        settings: MySQL has no transaction-local ones; whoever calls this per
        transaction sets them again each time. Commit durability is the server's."""
        sets = []
        if lock_timeout_ms is not None:
            sets.append(f"innodb_lock_wait_timeout = {lock_wait_seconds(lock_timeout_ms)}")
        if statement_timeout_ms is not None and self.is_mariadb:
            sets.append(f"max_statement_time = {int(statement_timeout_ms) / 1000!r}")
        if sets:
            self.execute("SET SESSION " + ", ".join(sets))

    def held_advisory_locks(self, this_database: bool = True) -> set[tuple[int, int]]:
        """GET_LOCK names cannot be listed without a plug-in: a set that asks the server
        (IS_USED_LOCK) whether the lock of each two-integer key it is asked about is held
        (keys are this database's: the lock name carries it)."""
        return _UsedLocks(self)

    def try_advisory_lock(self, *key: int) -> bool:
        return self.query("SELECT GET_LOCK(%s, 0)", (self._lock_name(key),))[0][0] == 1

    def advisory_unlock(self, *key: int) -> None:
        self.query("SELECT RELEASE_LOCK(%s)", (self._lock_name(key),))

    def table_exists(self, schema: str | None, table: str) -> bool:
        return bool(self.query(
            "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
            "COALESCE(%s, DATABASE()) AND TABLE_NAME = %s AND TABLE_TYPE = 'BASE TABLE'",
            (schema or None, table)))

    def column_type(self, schema: str | None, table: str, column: str) -> str | None:
        rows = self.query(
            "SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = "
            "COALESCE(%s, DATABASE()) AND TABLE_NAME = %s AND COLUMN_NAME = %s",
            (schema or None, table, column))
        return str(rows[0][0]) if rows else None

    def query_with_deadline(self, sql: str, timeout_s: float) -> list[tuple[Any, ...]]:
        """In a READ ONLY transaction, stopped by the server after ``timeout_s``
        (MariaDB: SET STATEMENT max_statement_time; MySQL: max_execution_time, which
        covers SELECTs)."""
        from ..base import StatementTimedOut

        self.execute("START TRANSACTION READ ONLY")
        try:
            if self.is_mariadb:
                return self.query(f"SET STATEMENT max_statement_time = {float(timeout_s)!r} "
                                  f"FOR {sql}")
            self.execute(f"SET SESSION max_execution_time = {int(timeout_s * 1000)}")
            try:
                return self.query(sql)
            finally:
                self.execute("SET SESSION max_execution_time = DEFAULT")
        except pymysql.err.OperationalError as exc:
            if exc.args and exc.args[0] in _TIMED_OUT:
                raise StatementTimedOut(str(exc.args[1])) from None
            raise
        finally:
            self.conn.rollback()

    def state_table_exists(self, table: str) -> bool:
        return bool(self.query(
            "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
            "AND TABLE_NAME = %s", (table,)))

    def insert_returning_id(self, sql: str, params: Sequence[Any]) -> int:
        # MySQL 8 has no INSERT ... RETURNING (MariaDB 10.5+ does): the session's
        # LAST_INSERT_ID(), which the driver reports as lastrowid.
        with self.conn.cursor() as cur:
            cur.execute(sql, tuple(params))
            return int(cur.lastrowid)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN ... COMMIT. MySQL commits DDL implicitly: only row changes roll back."""
        self.conn.begin()
        try:
            yield
        except BaseException:
            self.conn.rollback()
            raise
        self.conn.commit()

    def close(self) -> None:
        with contextlib.suppress(pymysql.Error):
            self.conn.close()


class _UsedLocks(set):  # type: ignore[type-arg]
    """Membership asked of the server: ``(a, b) in locks`` (unsigned 32-bit halves, as
    held_advisory_locks gives them elsewhere) is IS_USED_LOCK of that key's name."""

    def __init__(self, db: MySQLDatabase) -> None:
        super().__init__()
        self.db = db

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, tuple):
            return False
        signed = [int(k) - 2**32 if int(k) >= 2**31 else int(k) for k in key]
        rows = self.db.query("SELECT IS_USED_LOCK(%s)", (self.db._lock_name(signed),))
        return bool(rows and rows[0][0] is not None)


def lock_wait_seconds(lock_timeout_ms: int) -> int:
    """lock_wait_timeout for a wait of ``lock_timeout_ms``: MariaDB and MySQL take whole
    seconds only (MariaDB refuses a fraction; its ALTER ... WAIT n truncates one), so it
    is rounded up, and at least 1 (0 is NOWAIT: the metadata-lock upgrade at the end of
    an online ALTER would fail behind any reader)."""
    return max(1, math.ceil(lock_timeout_ms / 1000))


def _reason(exc: pymysql.Error) -> str:
    """The server's message without the error number tuple, redacted."""
    args = getattr(exc, "args", ())
    msg = args[1] if len(args) > 1 else (args[0] if args else exc.__class__.__name__)
    return redact(str(msg).strip().splitlines()[0] if str(msg).strip() else str(exc))


def error_message(exc: BaseException) -> str:
    """One line for a failed statement: the server's message, redacted."""
    if isinstance(exc, pymysql.Error):
        return _reason(exc)
    return redact(str(exc))
