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

    def error_types(self) -> tuple[type[BaseException], ...]:
        return (psycopg.Error,)

    def lock_wait_failure(self, exc: BaseException) -> str | None:
        from .lockwait import lock_wait_failure

        return lock_wait_failure(exc)

    @contextlib.contextmanager
    def scratch(self, near_dsn: str | None = None) -> Iterator[PostgresDatabase]:
        """A new empty database on the same server as ``near_dsn``, dropped afterwards.

        For Lockplane's own SQL (shadow copies of a target); untrusted SQL goes through
        :meth:`sandbox`. Scratch databases left by a killed process are dropped here.
        """
        from .sandbox import OWNER_MARK, drop_database, drop_leftovers, scratch_name

        admin_dsn = near_dsn or "postgresql://postgres@127.0.0.1:5432/postgres"
        token = secrets.token_hex(6)
        name = scratch_name(token)
        with PostgresDatabase(self, admin_dsn, autocommit=True,
                              application_name=OWNER_MARK + token) as admin:
            with contextlib.suppress(psycopg.Error):
                drop_leftovers(admin)
            admin.execute(pgsql.SQL("CREATE DATABASE {} TEMPLATE template0").format(
                pgsql.Identifier(name)).as_string(admin.conn))
            try:
                with PostgresDatabase(self, with_dbname(admin_dsn, name)) as db:
                    # A scratch database is thrown away: no reason to wait for fsync.
                    db.execute("SET synchronous_commit = off")
                    yield db
            finally:
                drop_database(admin.conn, name)

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
            return box.introspect()

    def _major_of(self, dsn: str | None) -> int | None:
        if not dsn or not dsn.startswith("postgres"):
            return None
        with PostgresDatabase(self, dsn) as db:
            return db.server_version // 10000


# scratch_database_url = "private": a server Lockplane starts itself (dialects/postgres/cluster)
PRIVATE_SCRATCH = "private"


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
        try:
            self.conn = psycopg.connect(dsn, autocommit=autocommit, connect_timeout=10,
                                        application_name=application_name)
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

    def lock_watch(self) -> Any:
        from .lockwait import PostgresLockWatch

        try:
            return PostgresLockWatch(self)
        except psycopg.Error:
            return None  # (no connection left, say): the blockers stay unknown

    def privileged_calls(self, statements: Sequence[str]) -> list[str]:
        from .privileged import privileged_calls

        return privileged_calls(self, statements)

    def introspect(self) -> Schema:
        from .introspect import introspect

        return introspect(self.conn, dsn=self.dsn)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        with self.conn.transaction():
            yield

    def close(self) -> None:
        self.conn.close()
