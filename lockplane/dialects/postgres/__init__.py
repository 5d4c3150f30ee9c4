"""PostgreSQL dialect: psycopg 3 sessions, catalog introspection, scratch databases."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql as pgsql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ...dsn import redact
from ...errors import BadInput
from ..base import Database, Dialect

if TYPE_CHECKING:
    from ...model import Schema


class PostgresDialect(Dialect):
    name = "postgres"
    default_schema = "public"
    transactional_ddl = True

    def quote(self, ident: str) -> str:
        if "\x00" in ident:
            raise BadInput(f"identifier {ident!r} contains a NUL byte")
        return '"' + ident.replace('"', '""') + '"'

    def connect(self, dsn: str, *, create: bool = False) -> PostgresDatabase:
        return PostgresDatabase(self, dsn)

    @contextlib.contextmanager
    def scratch(self, near_dsn: str | None = None) -> Iterator[PostgresDatabase]:
        """A new empty database on the same server as ``near_dsn``, dropped afterwards."""
        admin_dsn = near_dsn or "postgresql://postgres@127.0.0.1:5432/postgres"
        name = f"lockplane_scratch_{secrets.token_hex(6)}"
        with PostgresDatabase(self, admin_dsn, autocommit=True) as admin:
            admin.execute(pgsql.SQL("CREATE DATABASE {} TEMPLATE template0").format(
                pgsql.Identifier(name)).as_string(admin.conn))
            try:
                with PostgresDatabase(self, with_dbname(admin_dsn, name)) as db:
                    # A scratch database is thrown away: no reason to wait for fsync.
                    db.execute("SET synchronous_commit = off")
                    yield db
            finally:
                admin.execute(pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    pgsql.Identifier(name)).as_string(admin.conn))


def with_dbname(dsn: str, dbname: str) -> str:
    """The same connection parameters, another database."""
    params = conninfo_to_dict(dsn)
    params["dbname"] = dbname
    return make_conninfo(**params)


class PostgresDatabase(Database):
    def __init__(self, dialect: PostgresDialect, dsn: str, autocommit: bool = True) -> None:
        self.dialect = dialect
        self.dsn = dsn
        self.dsn_display = redact(dsn)
        try:
            self.conn = psycopg.connect(dsn, autocommit=autocommit, connect_timeout=10,
                                        application_name="lockplane")
        except psycopg.OperationalError as exc:
            reason = redact(str(exc).strip().splitlines()[-1] if str(exc).strip() else "")
            raise BadInput(f"cannot connect to {self.dsn_display}: {reason}") from None
        except psycopg.ProgrammingError as exc:
            raise BadInput(f"bad PostgreSQL URL {self.dsn_display}: {redact(str(exc))}") from None

    @property
    def server_version(self) -> int:
        return self.conn.info.server_version

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        with self.conn.cursor() as cur:
            cur.execute(sql, params)  # type: ignore[arg-type]

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cur:
            cur.execute(sql, params)  # type: ignore[arg-type]
            return list(cur.fetchall()) if cur.description else []

    def introspect(self) -> Schema:
        from .introspect import introspect

        return introspect(self.conn, dsn=self.dsn)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        with self.conn.transaction():
            yield

    def close(self) -> None:
        self.conn.close()
