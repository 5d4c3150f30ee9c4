"""What a dialect plug-in provides: quoting, connecting, introspecting, scratch databases.

Change kinds own their SQL per dialect (see ``lockplane/changes``); a dialect owns only
what is true of the database itself.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the model is heavy to import; a dialect needs it only to introspect
    from ..lockwait import LockWatch
    from ..model import Schema


class Dialect(ABC):
    name: str
    default_schema: str
    # Whether DDL can run inside a transaction and roll back with it.
    transactional_ddl: bool = True

    @abstractmethod
    def quote(self, ident: str) -> str:
        """Quote an identifier so any name (quotes, spaces, reserved words) is safe."""

    def qname(self, schema: str | None, name: str) -> str:
        """Qualified, quoted name of a schema object."""
        if schema:
            return f"{self.quote(schema)}.{self.quote(name)}"
        return self.quote(name)

    def literal(self, value: str) -> str:
        """A string literal; standard SQL escaping of single quotes."""
        return "'" + value.replace("'", "''") + "'"

    def error_types(self) -> tuple[type[BaseException], ...]:
        """The exceptions the driver raises when a statement fails."""
        return ()

    def lock_wait_failure(self, exc: BaseException) -> str | None:
        """What ``exc`` is, if it is a statement that gave up waiting for a lock (or lost
        a deadlock): running it again later may succeed. None: any other error."""
        return None

    @abstractmethod
    def connect(self, dsn: str, *, create: bool = False) -> Database:
        """Open a session; BadInput (with the password redacted) if it cannot.

        ``create``: for file databases, create a missing file (only apply may do that;
        reading a mistyped path must not leave an empty database behind).
        """

    @abstractmethod
    def scratch(self, near_dsn: str | None = None) -> contextlib.AbstractContextManager[Database]:
        """A throwaway empty database of this dialect, dropped on exit."""

    @abstractmethod
    def load_untrusted(self, scripts: Sequence[tuple[str, str]], near_dsn: str | None = None,
                       *, allowed_extensions: Sequence[str] = (), lines: bool = True,
                       version_of: str | None = None) -> Schema:
        """The schema that untrusted SQL scripts define, read back from a throwaway database.

        ``scripts``: (where, text) pairs, ``where`` naming the script in errors (with the
        line when ``lines``). Every statement is checked before anything runs, and the
        scripts run where they can reach nothing but that database. BadInput names the
        script, line and reason of a refused or failing statement. ``version_of``: a
        database whose server version a server started for the load should match.
        """


class Database(ABC):
    """One session on one database."""

    dialect: Dialect
    dsn_display: str  # redacted, for messages

    def privileged_calls(self, statements: Sequence[str]) -> list[str]:
        """Built-in functions these statements call that the server lets no ordinary user
        run (they reach its files, programs or settings). None where there are none."""
        return []

    def lock_watch(self) -> LockWatch | None:
        """A second session that watches this one's lock waits (who blocks them, and
        cancelling those on request); None where the dialect has none or it cannot
        connect."""
        return None

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None: ...

    @abstractmethod
    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]: ...

    @abstractmethod
    def introspect(self) -> Schema:
        """The structure of this database, minus Lockplane's own state objects."""

    @abstractmethod
    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN ... COMMIT, or ROLLBACK if the block raises."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
