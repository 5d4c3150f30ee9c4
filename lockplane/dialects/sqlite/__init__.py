"""SQLite (and local libSQL files) dialect: sqlite3 sessions, pragma introspection."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...dsn import redact, sqlite_path
from ...errors import BadInput, ExecutionFailed
from ...model import Schema
from ..base import Database, Dialect, StatementTimedOut

if TYPE_CHECKING:
    from ...changes.base import Lock


class SQLiteDialect(Dialect):
    name = "sqlite"
    default_schema = "main"
    has_rowid_table_options = True
    nullable_key_columns = True
    has_virtual_generated_columns = True
    transactional_ddl = True
    # ALTER TABLE adds, drops and renames columns; anything else is a rebuild. Triggers'
    # bodies run after the NOT NULL check.
    alters_by_rebuild = True
    before_triggers_fill_new_row = False
    param = "?"
    # One writer at a time, in-memory scratch databases, state tables beside the user's.
    has_advisory_locks = False
    scratch_needs_server = False
    state_schema = None
    archives_dropped_values = True
    # A plan's DROP TABLE first copies the rows (their rowids, the AUTOINCREMENT counter)
    # into a _lockplane_ archive table (changes/refill_table.py).
    archives_dropped_tables = True
    # bench/archive_copy.py --sqlite, 300,000 rows at load average 11: 376,000 rows/s
    # median, rounded down.
    archive_rows_per_s = 300_000
    records_filled_rows = True
    now_sql = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
    # Constraints come and go with their table (changes rebuild the table).
    alters_constraints = False

    def ddl_lock(self) -> Lock:
        from ...changes.base import SQLITE_WRITE

        return SQLITE_WRITE  # one writer: DDL takes the database's write lock

    def distinct_sql(self, left: str, right: str, as_type: str | None = None) -> str:
        return f"{left} IS NOT {right}"

    def default_expression(self, expr: str) -> str:
        # Parentheses around an expression default (anything but a literal).
        from ...changes.render import _is_sqlite_literal

        return expr if _is_sqlite_literal(expr) else f"({expr})"

    def index_expression(self, expr: str) -> str:
        # Keys are plain expressions and introspection keeps their text as written:
        # extra parentheses would read back as a different expression.
        return expr

    def archive_missing_sql(self, name: str) -> str:
        return ("SELECT count(*) = 0 FROM sqlite_master WHERE type = 'table' AND name = "
                + self.literal(self.archive_ident(name)))

    def quote(self, ident: str) -> str:
        if "\x00" in ident:
            raise BadInput(f"identifier {ident!r} contains a NUL byte")
        return '"' + ident.replace('"', '""') + '"'

    def qname(self, schema: str | None, name: str) -> str:
        # One attached database: names are never qualified (CREATE INDEX puts the schema
        # on the index name, not the table, so qualifying everywhere would be wrong).
        return self.quote(name)

    def same_database(self, a: str, b: str) -> bool:
        return Path(sqlite_path(a)).resolve() == Path(sqlite_path(b)).resolve()

    def same_server(self, a: str, b: str) -> bool:
        return True  # (files of this machine)

    def database_name(self, dsn: str) -> str:
        return Path(sqlite_path(dsn)).name

    def database_next_to(self, dsn: str, suffix: str) -> str:
        p = Path(sqlite_path(dsn))
        ext = p.suffix or ".db"
        return f"sqlite:///{p.with_name(f'{p.stem}_{suffix}{ext}')}"

    def with_database(self, dsn: str, name: str) -> str:
        p = Path(sqlite_path(dsn))
        return f"sqlite:///{p.with_name(name if Path(name).suffix else name + (p.suffix or '.db'))}"

    def connect(self, dsn: str, *, create: bool = False) -> SQLiteDatabase:
        return SQLiteDatabase(self, dsn, create=create)

    def error_types(self) -> tuple[type[BaseException], ...]:
        return (sqlite3.Error,)

    def retry_reason(self, exc: BaseException) -> str | None:
        # SQLITE_BUSY / SQLITE_LOCKED: another writer held the database past busy_timeout.
        text = str(exc).lower()
        if "locked" in text or "busy" in text:
            return "database is locked"
        return None

    def concat_skipping_nulls(self, parts_sql: Sequence[str], separator: str) -> str:
        # SQLite's concat_ws arrived in 3.44: build it from || and nullif.
        sep = self.literal(separator)
        pieces = [f"coalesce({p} || {sep}, '')" for p in parts_sql[:-1]]
        expr = " || ".join([*pieces, f"coalesce({parts_sql[-1]}, '')"])
        return f"rtrim({expr}, {sep})" if separator else expr

    def option_text(self, what: str, text: str) -> str | None:
        from .options import refuse_lexer_differences

        # As written: the deparser spells PostgreSQL (pg_catalog.btrim) and SQLite
        # prepares the text on the shadow copy first.
        refuse_lexer_differences(what, text)
        return text.strip()

    def check_type_name(self, text: str, what: str) -> str | None:
        from .options import check_type_name

        return check_type_name(text, what)

    def backfill_catalog(self) -> Any:
        from . import backfill

        return backfill

    def backup_engine(self) -> Any:
        from .backup import SQLiteBackups

        return SQLiteBackups()

    def default_rewrites(self, questions: Sequence[tuple[str, str | None]],
                         schema: Schema | None = None, near_dsn: str | None = None,
                         setup_sql: Sequence[str] = (),
                         ) -> dict[tuple[str, str | None], bool | None]:
        # SQLite's ADD COLUMN only edits the stored CREATE TABLE text: never a rewrite
        # (and it refuses a non-constant default instead of computing it per row).
        return {q: False for q in questions}

    @contextlib.contextmanager
    def scratch(self, near_dsn: str | None = None) -> Iterator[SQLiteDatabase]:
        with SQLiteDatabase(self, "sqlite:///:memory:") as db:
            yield db

    def schema_from_sqlalchemy(self, create_all: Callable[[Any], None],
                               near_dsn: str | None = None) -> Schema:
        import tempfile

        from sqlalchemy import create_engine

        # A file, not :memory: (an engine's connections would each get their own).
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "metadata.db")
            create_all(create_engine(f"sqlite:///{path}"))
            with self.connect(f"sqlite:///{path}") as db:
                return db.introspect()

    def load_untrusted(self, scripts: Sequence[tuple[str, str]], near_dsn: str | None = None,
                       *, allowed_extensions: Sequence[str] = (), lines: bool = True,
                       version_of: str | None = None) -> Schema:
        from .introspect import STATE_PREFIX, fold
        from .sandbox import run_untrusted

        with self.scratch() as db:
            run_untrusted(db.conn, scripts, lines)
            # Introspection leaves Lockplane's own tables out: defined by the file, they
            # would vanish from the desired schema without a word.
            named = sorted(n for (n,) in db.conn.execute("SELECT name FROM sqlite_schema")
                           if fold(n).startswith(STATE_PREFIX))
            if named:
                raise BadInput(f"the desired schema defines {named[0]!r}: the "
                               f"{STATE_PREFIX} prefix is Lockplane's own (its history and "
                               "state live in such tables)")
            return db.introspect()


class SQLiteDatabase(Database):
    def __init__(self, dialect: SQLiteDialect, dsn: str, create: bool = True) -> None:
        self.dialect = dialect
        self.dsn = dsn
        self.dsn_display = redact(dsn)
        path = sqlite_path(dsn)
        if path != ":memory:":
            parent = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(parent):
                raise BadInput(f"cannot open {self.dsn_display}: directory {parent} does not exist")
            if not create and not os.path.exists(path):
                raise BadInput(f"no SQLite database at {path} ({self.dsn_display})")
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, so DDL is transactional.
            self.conn = sqlite3.connect(path, isolation_level=None, timeout=10)
        except sqlite3.Error as exc:
            raise BadInput(f"cannot open {self.dsn_display}: {exc}") from None
        self.conn.execute("PRAGMA foreign_keys = ON")

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        self.conn.execute(sql, params or ())

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        return list(self.conn.execute(sql, params or ()).fetchall())

    def not_one_query(self, sql: str) -> str | None:
        from .sandbox import not_one_query

        return not_one_query(self.conn, sql)

    def introspect(self) -> Schema:
        from .introspect import introspect

        return introspect(self.conn)

    def set_writer_wait(self, ms: int) -> None:
        self.execute(f"PRAGMA busy_timeout = {int(ms)}")

    @contextlib.contextmanager
    def apply_session(self, lock_timeout_ms: int) -> Iterator[None]:
        # The rebuild procedure needs foreign keys off outside the transaction; the
        # integrity check at the end of each transaction stands in for them.
        self.execute("PRAGMA foreign_keys = OFF")
        try:
            yield
        finally:
            self.execute("PRAGMA foreign_keys = ON")

    def after_transactional_group(self) -> None:
        rows = self.query("PRAGMA foreign_key_check")
        if rows:
            table, rowid, parent, _ = rows[0]
            raise ExecutionFailed(f"foreign key violation after the change: {table} row "
                                  f"{rowid} references a missing row in {parent} "
                                  f"({len(rows)} in all); rolled back")

    def read_only_session(self) -> None:
        self.execute("PRAGMA query_only = ON")

    @contextlib.contextmanager
    def read_only(self) -> Iterator[None]:
        before = self.query("PRAGMA query_only")[0][0]
        self.execute("PRAGMA query_only = ON")
        try:
            yield
        finally:
            self.execute(f"PRAGMA query_only = {int(before)}")

    def rowcount(self, sql: str, params: Sequence[Any] | None = None) -> int:
        return int(self.conn.execute(sql, params or ()).rowcount)

    def table_exists(self, schema: str | None, table: str) -> bool:
        return bool(self.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                               [table]))

    def table_size_bytes(self, schema: str | None, table: str) -> int | None:
        # The pages of the table and its indexes, from the dbstat virtual table (a
        # compile-time option of SQLite: None where the build lacks it).
        try:
            rows = self.query("SELECT sum(pgsize) FROM dbstat WHERE name IN (SELECT name FROM "
                              "sqlite_master WHERE tbl_name = ? AND type IN ('table', "
                              "'index'))", [table])
        except sqlite3.OperationalError:
            return None
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    def column_type(self, schema: str | None, table: str, column: str) -> str | None:
        rows = self.query("SELECT type FROM pragma_table_info(?) WHERE name = ?",
                          [table, column])
        return str(rows[0][0]) if rows else None

    def query_with_deadline(self, sql: str, timeout_s: float) -> list[tuple[Any, ...]]:
        # No statement timeout in SQLite: a progress handler interrupts past the deadline.
        deadline = time.monotonic() + timeout_s
        self.conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        try:
            return self.query(sql)
        except sqlite3.OperationalError as exc:
            if "interrupt" in str(exc).lower():
                raise StatementTimedOut from None
            raise
        finally:
            self.conn.set_progress_handler(None, 0)

    def state_table_exists(self, table: str) -> bool:
        return bool(self.query("SELECT 1 FROM sqlite_schema WHERE name = ?", (table,)))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()
