"""SQLite (and local libSQL files) dialect: sqlite3 sessions, pragma introspection."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from ...dsn import redact, sqlite_path
from ...errors import BadInput
from ...model import Schema
from ..base import Database, Dialect


class SQLiteDialect(Dialect):
    name = "sqlite"
    default_schema = "main"
    transactional_ddl = True

    def quote(self, ident: str) -> str:
        if "\x00" in ident:
            raise BadInput(f"identifier {ident!r} contains a NUL byte")
        return '"' + ident.replace('"', '""') + '"'

    def qname(self, schema: str | None, name: str) -> str:
        # One attached database: names are never qualified (CREATE INDEX puts the schema
        # on the index name, not the table, so qualifying everywhere would be wrong).
        return self.quote(name)

    def connect(self, dsn: str, *, create: bool = False) -> SQLiteDatabase:
        return SQLiteDatabase(self, dsn, create=create)

    def error_types(self) -> tuple[type[BaseException], ...]:
        return (sqlite3.Error,)

    @contextlib.contextmanager
    def scratch(self, near_dsn: str | None = None) -> Iterator[SQLiteDatabase]:
        with SQLiteDatabase(self, "sqlite:///:memory:") as db:
            yield db

    def load_untrusted(self, scripts: Sequence[tuple[str, str]], near_dsn: str | None = None,
                       *, allowed_extensions: Sequence[str] = (), lines: bool = True,
                       version_of: str | None = None) -> Schema:
        from .sandbox import run_untrusted

        with self.scratch() as db:
            run_untrusted(db.conn, scripts, lines)
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

    def introspect(self) -> Schema:
        from .introspect import introspect

        return introspect(self.conn)

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
