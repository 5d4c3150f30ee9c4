"""PostgreSQL dialect: psycopg 3 sessions, catalog introspection, scratch databases."""

from __future__ import annotations

import contextlib
import functools
import secrets
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg
from pglast import ast, parse_sql
from pglast.parser import ParseError
from psycopg import sql as pgsql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ...dsn import NO_AMBIENT_PASSWORD, redact, redact_for
from ...errors import BadInput
from ..base import Database, Dialect, StatementTimedOut

if TYPE_CHECKING:
    from ...model import Schema

# Errors a write batch waits out (smaller, later) instead of failing on.
RETRYABLE_SQLSTATES = {
    "55P03": "lock timeout",          # lock_not_available
    "40P01": "deadlock",              # deadlock_detected
    "40001": "serialization failure",
    "57014": "statement timeout",     # query_canceled
}
READ_ONLY_SQLSTATE = "25006"  # read_only_sql_transaction
# Types with a max() aggregate (uuid, for one, has none before PostgreSQL 16).
MAX_TYPES = ("smallint", "integer", "bigint", "numeric", "text", "character", "date",
             "timestamp", "time ", "real", "double precision", "oid")
# The server ended the session (admin shutdown, crash shutdown, cannot connect now).
_SESSION_GONE_SQLSTATES = ("57P01", "57P02", "57P03")

@functools.lru_cache(maxsize=4096)
def _only_sets(statement: str) -> bool:
    """Whether a step's statement only sets session settings (the plan's own SET
    lock_timeout before its DDL): it fires no code, and what it sets is for the next."""
    try:
        parsed = parse_sql(statement)
    except ParseError:
        return False
    return bool(parsed) and all(isinstance(s.stmt, ast.VariableSetStmt) for s in parsed)


# Settings that code a step fires may change for the rest of the session and that decide
# what Lockplane's own SQL on it means: where names resolve (a schema put before
# pg_catalog holds a now() or an = of its own), whom it runs as, whether triggers and
# foreign keys run, how literals and values read and print, what guards the next step.
# Held by apply and backfill sessions (Database.hold_session_settings).
HELD_SETTINGS = (
    "session_authorization", "role", "search_path", "session_replication_role",
    "row_security", "standard_conforming_strings", "backslash_quote",
    "transform_null_equals", "array_nulls", "default_text_search_config", "xmloption",
    "client_encoding", "DateStyle", "IntervalStyle", "TimeZone", "extra_float_digits",
    "bytea_output", "lock_timeout", "statement_timeout",
    "idle_in_transaction_session_timeout", "default_transaction_isolation",
    "default_transaction_read_only", "default_transaction_deferrable",
    "default_tablespace", "temp_tablespaces", "check_function_bodies",
)


class PostgresDialect(Dialect):
    name = "postgres"
    default_schema = "public"
    transactional_ddl = True
    param = "%s"
    has_advisory_locks = True
    scratch_needs_server = True
    batches_backfill_steps = True
    server_side_restore = True  # pg_restore
    missing_primary_key_costs = ("logical replication, batched backfills and row identity "
                                 "all need one")
    foreign_keys_need_index = True
    derived_constraint_names = True
    state_schema = "lockplane"
    archives_dropped_values = True
    records_filled_rows = True
    archives_dropped_tables = True
    now_sql = "pg_catalog.now()"  # (Lockplane's own SQL names no function a search_path picks)
    # A function of the database named count with the expression's own type (count(double
    # precision)) is a closer match than the built-in count("any"), wherever pg_catalog
    # stands on the search_path: unqualified, the backfill's checks called it.
    count_sql = "pg_catalog.count"
    max_sql = "pg_catalog.max"  # (a database's max(character varying) is closer than max(text))
    settles_orphaned_sessions = True
    has_not_valid_constraints = True
    measures_locks = True
    has_default_privileges = True
    has_not_null_constraint_names = True
    has_virtual_generated_columns = True  # from 18; an older server refuses them
    repartitions_by_recreating = True  # no ALTER into or out of partitioning
    regenerates_generated_columns = True
    has_comment_statements = True
    views_pin_columns = True
    retypes_with_checks = True
    retype_rebuilds_indexes_from_text = True
    attaches_partition_indexes = True
    has_identity_columns = True
    renames_constraints = True
    step_sql_sets_timeouts = True
    has_lock_safe_forms = True
    triggers_call_functions = True
    folds_unquoted_names = True
    renames_table_behind_view = True  # simple views take writes
    export_tools = ("pgroll",)

    def distinct_sql(self, left: str, right: str, as_type: str | None = None) -> str:
        # A domain over an enum has no = ("operator does not exist: dm = dm"): the
        # server finds anyenum's only for the enum itself, so both sides are cast to it.
        if as_type is not None:
            left, right = f"CAST({left} AS {as_type})", f"CAST({right} AS {as_type})"
        return f"{left} IS DISTINCT FROM {right}"

    def thawed(self, printed: str, head: str = "SELECT ") -> str:
        from .frozen import thawed

        return thawed(printed, head)

    def keeping_update(self, table: str, sets: str, where: str, archive: str,
                       key: list[str], column: str) -> list[str]:
        # The rows are read and locked first (one materialized CTE, read by both), the
        # archive gets their key and old value, and the UPDATE changes exactly those rows
        # (found by key: a row updated since the snapshot is the locked version).
        old = ", ".join([f"{k} AS lockplane_k{i}" for i, k in enumerate(key)]
                        + [f"{self.archived_text(c)} AS lockplane_t{i}"
                           for i, c in enumerate([*key, column])])
        kept = ", ".join(f"lockplane_t{i}" for i in range(len(key) + 1))
        match = " AND ".join(f"{table}.{k} = lockplane_old.lockplane_k{i}"
                             for i, k in enumerate(key))
        return [f"WITH lockplane_old AS MATERIALIZED (SELECT {old} FROM {table} WHERE "
                f"{where} FOR UPDATE), lockplane_kept AS (INSERT INTO {archive} SELECT "
                f"{kept} FROM lockplane_old) UPDATE {table} SET {sets} FROM lockplane_old "
                f"WHERE {match}"]

    def archive_missing_sql(self, name: str) -> str:
        return ("SELECT CASE WHEN pg_catalog.to_regclass("
                f"{self.literal(self.archive_table(name))}::pg_catalog.text) "
                "IS NULL THEN 1 ELSE 0 END")

    def quote(self, ident: str) -> str:
        if "\x00" in ident:
            raise BadInput(f"identifier {ident!r} contains a NUL byte")
        return '"' + ident.replace('"', '""') + '"'

    def type_change_rewrites(self, old: str, new: str) -> bool:
        from ...changes.alter_column import type_change_rewrites

        return type_change_rewrites(old, new)

    def stored_expression(self, printed: str, head: str = "SELECT ") -> str:
        from .expressions import as_stored

        return as_stored(printed, head)

    @property
    def server_major(self) -> int | None:
        return None if self.server_version is None else self.server_version // 10000

    def sets_generation_in_place(self, kind: str) -> bool:
        # ALTER COLUMN ... SET EXPRESSION: 17 for STORED columns (a rewrite, which keeps
        # the indexes, constraints, views, privileges and statistics over the column);
        # VIRTUAL columns exist from 18 (no rewrite there).
        major = self.server_major
        return major is not None and major >= (17 if kind == "stored" else 18)

    def not_null_constraint_name(self, table: str, column: str) -> str:
        from .introspect import derived_not_null_name

        return derived_not_null_name(table, column)

    def server_key(self, dsn: str) -> str:
        try:
            params = conninfo_to_dict(dsn)
        except Exception:  # noqa: BLE001 - not parseable: keep it whole
            return dsn
        params.pop("dbname", None)
        return repr(sorted(params.items()))

    def same_database(self, a: str, b: str) -> bool:
        try:
            return _server_and_database(a) == _server_and_database(b)
        except Exception:  # noqa: BLE001 - a malformed URL fails later with its own message
            return a == b

    def same_server(self, a: str, b: str) -> bool:
        try:
            return _server_and_database(a)[:2] == _server_and_database(b)[:2]
        except Exception:  # noqa: BLE001 - a malformed URL fails later with its own message
            return a == b

    def database_name(self, dsn: str) -> str:
        try:
            return str(conninfo_to_dict(dsn).get("dbname") or "")
        except Exception:  # noqa: BLE001
            return ""

    def database_next_to(self, dsn: str, suffix: str) -> str:
        name = f"{self.database_name(dsn) or 'db'}_{suffix}"[:63]  # NAMEDATALEN - 1
        return self.with_database(dsn, name)

    def with_database(self, dsn: str, name: str) -> str:
        """The same connection, another database; a URL stays a URL (dialect detection
        needs one)."""
        if "://" in dsn:
            from urllib.parse import quote, urlsplit, urlunsplit

            parts = urlsplit(dsn)
            return urlunsplit(parts._replace(path="/" + quote(name, safe="")))
        return with_dbname(dsn, name)

    def connect(self, dsn: str, *, create: bool = False) -> PostgresDatabase:
        return PostgresDatabase(self, dsn)

    def error_types(self) -> tuple[type[BaseException], ...]:
        return (psycopg.Error,)

    def lock_wait_failure(self, exc: BaseException) -> str | None:
        from .lockwait import lock_wait_failure

        return lock_wait_failure(exc)

    def retry_reason(self, exc: BaseException) -> str | None:
        from .lockwait import sqlstate

        return RETRYABLE_SQLSTATES.get(sqlstate(exc) or "")

    def is_disconnect(self, exc: BaseException) -> bool:
        from .lockwait import sqlstate

        state = sqlstate(exc) or ""
        if state.startswith("08") or state in _SESSION_GONE_SQLSTATES:
            return True
        # No SQLSTATE at all: the client lost the socket.
        return isinstance(exc, psycopg.OperationalError) and not state

    def is_read_only_violation(self, exc: BaseException) -> bool:
        from .lockwait import sqlstate

        return sqlstate(exc) == READ_ONLY_SQLSTATE

    def escape_for_params(self, sql: str) -> str:
        return sql.replace("%", "%%")

    def typed_param(self, sql_type: str) -> str:
        return f"CAST(%s AS {sql_type})"

    def as_text(self, expr: str) -> str:
        return f"{expr}::text"

    def archived_text(self, expr: str) -> str:
        return f'{expr}::text COLLATE "default"'

    def cast_to_column(self, expr: str, sql_type: str) -> str:
        return f"CAST({expr} AS {sql_type})"

    def json_param(self, value: Any) -> Any:
        from psycopg.types.json import Jsonb

        return None if value is None else Jsonb(value)

    def timestamp_param(self, value: datetime) -> Any:
        return value  # timestamptz

    lock_rows_clause = " FOR UPDATE"
    canonical_column_types = True  # format_type()

    def has_max(self, sql_type: str) -> bool:
        return sql_type.startswith(MAX_TYPES)

    def sample_of(self, table_sql: str, wanted: int, total: int, seed: int) -> str:
        # Pages at random: no full scan, and the same pages for the same seed.
        pct = min(100.0, 100.0 * wanted / max(total, 1))
        return f"{table_sql} TABLESAMPLE SYSTEM ({pct:.6f}) REPEATABLE ({int(seed)})"

    def option_text(self, what: str, text: str) -> str | None:
        return None  # the deparsed tree PostgreSQL's parser checked

    def check_type_name(self, text: str, what: str) -> str | None:
        return None

    def backfill_catalog(self) -> Any:
        from . import backfill

        return backfill

    def backup_engine(self) -> Any:
        from .backup import PostgresBackups

        return PostgresBackups()

    def copy_sample(self, shadow: Database, source_dsn: str, schema: Schema) -> list[str]:
        from ...lockstats import copy_sample

        return copy_sample(shadow, source_dsn, schema)  # type: ignore[arg-type]

    @contextlib.contextmanager
    def scratch(self, near_dsn: str | None = None) -> Iterator[PostgresDatabase]:
        """A new empty database on the same server as ``near_dsn``, dropped afterwards.

        For Lockplane's own SQL (shadow copies of a target); untrusted SQL goes through
        :meth:`sandbox`. Scratch databases left by a killed process are dropped here.
        """
        from .sandbox import OWNER_MARK, drop_leftovers, drop_scratch_later, scratch_name

        admin_dsn = near_dsn or "postgresql://postgres@127.0.0.1:5432/postgres"
        token = secrets.token_hex(6)
        name = scratch_name(token)
        admin = PostgresDatabase(self, admin_dsn, autocommit=True,
                                 application_name=OWNER_MARK + token)
        try:
            refuse_read_only_server(admin, "a scratch database")
            with contextlib.suppress(psycopg.Error):
                drop_leftovers(admin)
            admin.execute(pgsql.SQL("CREATE DATABASE {} TEMPLATE template0").format(
                pgsql.Identifier(name)).as_string(admin.conn))
        except BaseException:
            admin.close()
            raise
        try:
            with PostgresDatabase(self, with_dbname(admin_dsn, name)) as db:
                # A scratch database is thrown away: no reason to wait for fsync.
                db.execute("SET synchronous_commit = off")
                yield db
        finally:
            drop_scratch_later(admin, name)

    def default_rewrites(self, questions: Sequence[tuple[str, str | None]],
                         schema: Schema | None = None, near_dsn: str | None = None,
                         setup_sql: Sequence[str] = (),
                         ) -> dict[tuple[str, str | None], bool | None]:
        """Asked of a sandbox on ``near_dsn``'s server (see :mod:`.default_rewrites`)."""
        from .default_rewrites import default_rewrites

        return default_rewrites(self, questions, schema, near_dsn, setup_sql)

    def sandbox(self, near_dsn: str | None = None, *,
                allowed_extensions: Sequence[str] = ()) -> contextlib.AbstractContextManager[Any]:
        """A scratch database where untrusted SQL runs as a throwaway unprivileged role
        (see :mod:`.sandbox`)."""
        from .sandbox import sandbox

        return sandbox(self, near_dsn or "postgresql://postgres@127.0.0.1:5432/postgres",
                       allowed_extensions)

    def load_untrusted(self, scripts: Sequence[tuple[str, str]], near_dsn: str | None = None,
                       *, allowed_extensions: Sequence[str] = (), lines: bool = True,
                       version_of: str | None = None) -> Schema:
        """``near_dsn`` "private": on a server Lockplane starts for this load, of the major
        version of ``version_of``'s server (see :mod:`.cluster`)."""
        from .sandbox import sandbox
        from .screen import screen

        # Every file is screened before the sandbox exists: a refused statement changes
        # nothing anywhere.
        screened = [screen(text, where, lines=lines) for where, text in scripts]
        with contextlib.ExitStack() as stack:
            private = near_dsn == PRIVATE_SCRATCH
            if private:
                from .cluster import private_server

                near_dsn = stack.enter_context(private_server(self._major_of(version_of)))
            box = stack.enter_context(sandbox(
                self, near_dsn or "postgresql://postgres@127.0.0.1:5432/postgres",
                allowed_extensions, make_roles=private))
            box.run(screened)
            box.finish()
            schema = box.introspect()
        from .frozen import frozen_marks

        # (time values the server froze as it ran them: see lockplane/frozen.py)
        schema.set_frozen_literals(frozenset(frozen_marks([text for _, text in scripts])))
        return schema

    def schema_from_sqlalchemy(self, create_all: Callable[[Any], None],
                               near_dsn: str | None = None) -> Schema:
        from sqlalchemy import create_engine

        with self.scratch(near_dsn) as db:
            dsn = db.dsn
            create_all(create_engine("postgresql+psycopg://",
                                     creator=lambda: psycopg.connect(dsn)))
            return db.introspect()

    def _major_of(self, dsn: str | None) -> int | None:
        if not dsn or not dsn.startswith("postgres"):
            return None
        with PostgresDatabase(self, dsn) as db:
            return db.server_version // 10000


# scratch_database_url = "private": a server Lockplane starts itself (dialects/postgres/cluster)
PRIVATE_SCRATCH = "private"


def refuse_read_only_server(admin: PostgresDatabase, what: str) -> None:
    """Bad input when ``admin``'s sessions are read-only (a standby, or
    default_transaction_read_only set for the URL, the role or the database): Lockplane
    could not make ``what`` there, and the server's refusal would come later as an
    unexplained error."""
    rows = admin.query("SELECT pg_is_in_recovery(), current_setting('transaction_read_only')")
    standby, read_only = rows[0]
    if standby or read_only == "on":
        why = "a standby" if standby else "its sessions are read-only " \
            "(default_transaction_read_only)"
        raise BadInput(f"cannot make {what} on {admin.dsn_display}: {why}; give a server "
                       "Lockplane may write to (--shadow-db, scratch_database_url)")


# Lockplane's own SQL on a session that runs none of the schema's (a lock monitor, the
# reads of a copy): with search_path '' only pg_catalog's functions, operators and types
# answer an unqualified name, so no overload a schema holds (a closer max(character
# varying), an =(oid, integer)) stands in for them, wherever pg_catalog stands.
ONLY_CATALOG_NAMES = "SELECT pg_catalog.set_config('search_path', '', false)"


@contextlib.contextmanager
def only_catalog_names(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """Within: ``conn``'s search_path is '' (see ONLY_CATALOG_NAMES); then what it was."""
    row = conn.execute("SELECT pg_catalog.current_setting('search_path'), "
                       "pg_catalog.set_config('search_path', '', false)").fetchone()
    try:
        yield
    finally:
        if row is not None and not conn.closed and \
                conn.info.transaction_status != psycopg.pq.TransactionStatus.INERROR:
            conn.execute("SELECT pg_catalog.set_config('search_path', %s, false)", (row[0],))


def connect_failure(exc: Exception, dsn: str) -> str:
    """libpq's reason a connection failed, in one line without the password: its first
    line names the server and the cause ('connection to server at "127.0.0.1", port 1
    failed: Connection refused'); the last one is only a hint ('Is the server running
    ...')."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    reason = redact_for(lines[0].removeprefix("connection failed: ") if lines else "", dsn)
    if NO_AMBIENT_PASSWORD in dsn and 'requirement "!password,!md5" failed' in reason:
        # (the option is Lockplane's, and not shown in the URL: say where it comes from)
        reason += (" (a server that a repository file, lockplane.toml or .env.NAME, names "
                   "without a password may not ask for one in clear or as MD5: name it in "
                   "the process environment, LOCKPLANE_<ENV>_..._URL, or use SCRAM)")
    return reason


def with_dbname(dsn: str, dbname: str) -> str:
    """The same connection parameters, another database."""
    params = conninfo_to_dict(dsn)
    params["dbname"] = dbname
    return make_conninfo(**params)


class PostgresDatabase(Database):
    def __init__(self, dialect: PostgresDialect, dsn: str, autocommit: bool = True,
                 application_name: str = "lockplane") -> None:
        self.dialect = dialect
        self.dsn = dsn
        self.dsn_display = redact(dsn)
        # (names, values) of HELD_SETTINGS as hold_session_settings found them
        self._held: tuple[list[str], list[str]] | None = None
        try:
            self.conn = psycopg.connect(dsn, autocommit=autocommit, connect_timeout=10,
                                        application_name=application_name)
        except psycopg.OperationalError as exc:
            reason = connect_failure(exc, dsn)
            raise BadInput(f"cannot connect to {self.dsn_display}: {reason}") from None
        except psycopg.ProgrammingError as exc:
            raise BadInput(f"bad PostgreSQL URL {self.dsn_display}: "
                           f"{redact_for(str(exc), dsn)}") from None
        if autocommit:  # (the sandbox's sessions run a schema file's own SET lines)
            self._catalog_first()

    @property
    def server_version(self) -> int:
        return self.conn.info.server_version

    def server_major(self) -> int | None:
        return self.server_version // 10000

    @property
    def closed(self) -> bool:
        return bool(self.conn.closed)

    def configure_worker_session(self, application_name: str) -> None:
        # Key values travel as text: make their text form independent of user settings.
        # Strings in the expressions are lexed as pglast lexed them when they were checked
        # (optsql): standard_conforming_strings on, whatever the server's default.
        self.execute("SET datestyle = ISO; SET intervalstyle = postgres; "
                     "SET extra_float_digits = 1; SET standard_conforming_strings = on; "
                     "SET application_name = " + self.dialect.literal(application_name))
        # A worker whose machine vanishes (no FIN, no RST) keeps its session, and so its
        # advisory locks, until the server's TCP keepalives give up: two hours by
        # default. Ask for ~25 s on these sessions (ignored on Unix sockets).
        self.execute("SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; "
                     "SET tcp_keepalives_count = 3")
        self.hold_session_settings()

    def stable_text_session(self) -> None:
        self.execute("SET datestyle = ISO; SET intervalstyle = postgres; "
                     "SET standard_conforming_strings = on")

    def _catalog_first(self) -> None:
        # A search_path that names a schema before pg_catalog (the role's or the
        # database's default, which code run by an earlier step may have set with ALTER
        # ... SET) lets that schema's functions and operators stand in for the server's
        # in Lockplane's own SQL: pg_catalog goes first, where it is when the search_path
        # does not name it.
        self.execute(
            "SELECT pg_catalog.set_config('search_path', 'pg_catalog, ' OPERATOR("
            "pg_catalog.||) pg_catalog.current_setting('search_path'), false) "
            "WHERE (pg_catalog.current_schemas(true))[1] OPERATOR(pg_catalog.<>) "
            "'pg_catalog'")

    def hold_session_settings(self) -> None:
        values = self.query(
            "SELECT pg_catalog.current_setting(s.n) FROM pg_catalog.unnest("
            "%s::pg_catalog.text[]) WITH ORDINALITY AS s(n, i) ORDER BY s.i",
            (list(HELD_SETTINGS),))
        self._held = (list(HELD_SETTINGS), [str(v) for (v,) in values])

    def restore_session_settings(self, after: str | None = None) -> None:
        held = self._held
        if held is None or (after is not None and _only_sets(after)):
            return
        # Every name qualified: this statement runs under whatever search_path the code
        # left. Session-wide (false), so that it also outlasts a SET LOCAL of that code;
        # rows in order: the session's user before its role.
        self.execute(
            "SELECT pg_catalog.set_config(s.n, s.v, false) FROM ROWS FROM ("
            "pg_catalog.unnest(%s::pg_catalog.text[]), "
            "pg_catalog.unnest(%s::pg_catalog.text[])) WITH ORDINALITY AS s(n, v, i) "
            "WHERE pg_catalog.current_setting(s.n) OPERATOR(pg_catalog.<>) s.v "
            "ORDER BY s.i", held)

    def set_local_settings(self, lock_timeout_ms: int | None = None,
                           statement_timeout_ms: int | None = None,
                           synchronous_commit: bool | None = None) -> None:
        settings = []  # integers and keywords only: no quoting needed
        if lock_timeout_ms is not None:
            settings.append(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}")
        if statement_timeout_ms is not None:
            settings.append(f"SET LOCAL statement_timeout = {int(statement_timeout_ms)}")
        if synchronous_commit is not None:
            settings.append("SET LOCAL synchronous_commit = "
                            + ("on" if synchronous_commit else "off"))
        if settings:
            self.execute("; ".join(settings))

    def release_session_settings(self) -> None:
        self._held = None

    @contextlib.contextmanager
    def apply_session(self, lock_timeout_ms: int) -> Iterator[None]:
        self.execute(f"SET lock_timeout = {int(lock_timeout_ms)}")
        try:
            with self.settings_held():
                yield
        finally:
            self.execute("RESET lock_timeout")
            self.execute("RESET statement_timeout")

    def read_only_session(self) -> None:
        self.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")

    @contextlib.contextmanager
    def read_only(self) -> Iterator[None]:
        with self.transaction():
            self.execute("SET TRANSACTION READ ONLY")
            yield

    def rowcount(self, sql: str, params: Sequence[Any] | None = None) -> int:
        with self.conn.cursor() as cur:
            cur.execute(sql, params)  # type: ignore[arg-type]
            return int(cur.rowcount)

    @staticmethod
    def _key_args(key: tuple[int, ...]) -> str:
        if len(key) not in (1, 2):
            raise ValueError(f"an advisory lock key is one or two integers, not {key!r}")
        return ", ".join("%s" for _ in key)

    def try_advisory_lock(self, *key: int) -> bool:
        return bool(self.query(f"SELECT pg_catalog.pg_try_advisory_lock({self._key_args(key)})",
                               key)[0][0])

    def advisory_unlock(self, *key: int) -> None:
        self.query(f"SELECT pg_catalog.pg_advisory_unlock({self._key_args(key)})", key)

    def advisory_xact_lock(self, *key: int) -> None:
        self.execute(f"SELECT pg_catalog.pg_advisory_xact_lock({self._key_args(key)})", key)

    def held_advisory_locks(self, this_database: bool = True) -> set[tuple[int, int]]:
        # Two-integer keys show as (classid, objid) with objsubid 2.
        where = (" AND database = (SELECT oid FROM pg_database "
                 "WHERE datname = current_database())") if this_database else ""
        return {(int(a), int(b)) for a, b in self.query(
            "SELECT classid::bigint, objid::bigint FROM pg_locks "
            "WHERE locktype = 'advisory' AND objsubid = 2 AND granted" + where)}

    def replication_lag_ms(self) -> tuple[int, float | None] | None:
        rows = self.query(
            "SELECT count(*), max(extract(epoch FROM greatest(write_lag, flush_lag, "
            "replay_lag)) * 1000) FROM pg_stat_replication")
        count, lag = rows[0]
        return int(count), (None if lag is None else float(lag))

    def table_size_bytes(self, schema: str | None, table: str) -> int | None:
        rows = self.query("SELECT pg_catalog.pg_total_relation_size("
                          "pg_catalog.to_regclass(%s::pg_catalog.text))",
                          (self.dialect.qname(schema, table),))
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    def table_exists(self, schema: str | None, table: str) -> bool:
        return bool(self.query(
            "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p')",
            [schema or self.dialect.default_schema, table]))

    def column_type(self, schema: str | None, table: str, column: str) -> str | None:
        rows = self.query(
            "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s AND a.attname = %s "
            "AND a.attnum > 0 AND NOT a.attisdropped",
            [schema or self.dialect.default_schema, table, column])
        return str(rows[0][0]) if rows else None

    def table_blocks(self, table_sql: str) -> int:
        return int(self.query(
            "SELECT pg_relation_size(%s::regclass) / current_setting('block_size')::int",
            (table_sql,))[0][0])

    def query_with_deadline(self, sql: str, timeout_s: float) -> list[tuple[Any, ...]]:
        try:
            with self.transaction():
                self.execute("SET TRANSACTION READ ONLY")
                self.execute(f"SET LOCAL statement_timeout = {max(1, int(timeout_s * 1000))}")
                return self.query(sql)
        except psycopg.errors.QueryCanceled:
            raise StatementTimedOut from None

    def state_table_exists(self, table: str) -> bool:
        return bool(self.query("SELECT pg_catalog.to_regclass(%s::pg_catalog.text) IS NOT NULL",
                               (table,))[0][0])

    def drop_scratch_leftovers(self, *servers: str) -> list[str]:
        from .sandbox import drop_leftovers

        dropped: list[str] = []
        with contextlib.suppress(psycopg.Error):
            dropped += drop_leftovers(self)
        for server in {s for s in servers if s and s != self.dsn}:
            with contextlib.suppress(Exception):
                with PostgresDatabase(self.dialect, server) as other:
                    dropped += drop_leftovers(other)
        return dropped

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        with self.conn.cursor() as cur:
            cur.execute(sql, params)  # type: ignore[arg-type]

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cur:
            cur.execute(sql, params)  # type: ignore[arg-type]
            return list(cur.fetchall()) if cur.description else []

    def lock_watch(self) -> Any:
        from .lockwait import PostgresLockWatch

        try:
            return PostgresLockWatch(self)
        except psycopg.Error:
            return None  # (no connection left, say): the blockers stay unknown

    def privileged_calls(self, statements: Sequence[str],
                         defined: Sequence[str] = ()) -> list[str]:
        from .privileged import privileged_calls

        return privileged_calls(self, statements, defined)

    def not_one_query(self, sql: str) -> str | None:
        from .privileged import not_one_query

        return not_one_query(sql)

    @contextlib.contextmanager
    def event_triggers_paused(self, statements: Sequence[str]) -> Iterator[None]:
        """The copy's enabled event triggers are disabled while ``statements`` run, and
        enabled again as they were (those the statements themselves drop or alter are
        left as the statements leave them). A scratch copy is built from a schema that
        may come from a file: on d434a2e 'plan --from a.sql --to b.sql --multi-phase'
        built the copy with a.sql's event trigger, whose function ran a static COPY ...
        TO PROGRAM as the planning superuser on the phases' DDL (a database's own event
        trigger is judged only where it reaches what the plan redefines)."""
        from .privileged import _event_trigger_target, _parsed

        touched = {_event_trigger_target(stmt) for stmt in _parsed(statements)}
        states = {name: state for name, state in self.query(
            "SELECT evtname, evtenabled FROM pg_event_trigger WHERE evtenabled <> 'D'")
            if name not in touched}
        for name in states:
            self.execute(f"ALTER EVENT TRIGGER {self.dialect.quote(name)} DISABLE")
        try:
            yield
        finally:
            again = {"O": "ENABLE", "A": "ENABLE ALWAYS", "R": "ENABLE REPLICA"}
            still = {r[0] for r in self.query(
                "SELECT evtname FROM pg_event_trigger WHERE evtenabled = 'D'")}
            for name, state in states.items():
                if name in still:
                    self.execute(f"ALTER EVENT TRIGGER {self.dialect.quote(name)} "
                                 f"{again.get(state, 'ENABLE')}")

    def function_effects(self, statements: Sequence[str], defined: Sequence[str],
                         rewrites: bool = False,
                         writes: Sequence[tuple[str | None, str]] = ()) -> list[str]:
        from .privileged import function_effects

        return function_effects(self, statements, defined, rewrites, writes)

    def introspect(self) -> Schema:
        from .introspect import introspect

        return introspect(self.conn, dsn=self.dsn)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        with self.conn.transaction():
            yield

    def close(self) -> None:
        self.conn.close()


def _server_and_database(dsn: str) -> tuple[str, str, str]:
    """(host, port, database) of a DSN; local host spellings (none, localhost, loopback,
    a socket directory) are one host."""
    d = conninfo_to_dict(dsn)
    host = str(d.get("host") or "")
    host = "local" if host in ("", "localhost", "127.0.0.1", "::1") or host.startswith("/") \
        else host
    return (host, str(d.get("port") or "5432"), str(d.get("dbname") or d.get("user") or ""))
