"""Dialect plug-ins, looked up by name."""

from __future__ import annotations

from functools import cache

from ..errors import BadInput
from .base import Database, Dialect

__all__ = ["Database", "Dialect", "get_dialect", "connect"]


@cache
def get_dialect(name: str) -> Dialect:
    if name == "postgres":
        from .postgres import PostgresDialect

        return PostgresDialect()
    if name == "sqlite":
        from .sqlite import SQLiteDialect

        return SQLiteDialect()
    if name == "mysql":
        from .mysql import MySQLDialect

        return MySQLDialect()
    raise BadInput(f"dialect {name!r} is not supported yet (postgres, sqlite, mysql)")


def connect(dsn: str, *, create: bool = False) -> Database:
    from ..dsn import dialect_of

    return get_dialect(dialect_of(dsn)).connect(dsn, create=create)
