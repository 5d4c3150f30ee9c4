"""Scratch databases on a MySQL / MariaDB server, and loading untrusted schema files.

A schema file is screened first (:mod:`.screen`); then it runs in a throwaway database
``lockplane_scratch_<token>`` as a throwaway user ``lockplane_sb_<token>`` that has
privileges on that database only: no FILE (LOAD DATA INFILE, INTO OUTFILE, LOAD_FILE
fail), no other database, no user or grant administration. Both are dropped afterwards.

A killed process cannot drop them: each is owned by a named lock (``GET_LOCK``) that the
creating session holds while it works, and the server frees when that session ends. The
next run on the server drops every scratch database and sandbox user whose lock is free.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import pymysql

from ...dsn import redact
from ...errors import BadInput
from . import (
    STATE_PREFIX,
    MySQLDatabase,
    MySQLDialect,
    error_message,
    parse_dsn,
    with_database,
)
from .screen import Statement, screen, session_refusal

if TYPE_CHECKING:
    from ...model import Schema

log = logging.getLogger("lockplane")

SCRATCH_PREFIX = "lockplane_scratch_"
SANDBOX_USER_PREFIX = "lockplane_sb_"
# A statement of a schema file that runs longer than this is stopped (MariaDB only:
# MySQL's max_execution_time covers SELECTs alone).
STATEMENT_SECONDS = 60


def owner_lock(token: str) -> str:
    """The named lock whose holder owns the scratch database and user of ``token``."""
    return f"lockplane scratch {token}"


def drop_leftovers(admin: MySQLDatabase) -> list[str]:
    """Drop scratch databases and sandbox users whose owner lock is free: what a killed
    process left behind. What this user may not drop is left for one who may."""
    dropped = []
    names = [r[0] for r in admin.query(
        "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE %s",
        (SCRATCH_PREFIX.replace("_", "\\_") + "%",))]
    for name in names:
        token = name[len(SCRATCH_PREFIX):]
        if not _abandoned(admin, token):
            continue
        try:
            admin.execute(f"DROP DATABASE IF EXISTS {admin.dialect.quote(name)}")
            dropped.append(name)
        except pymysql.Error:
            continue
    try:
        users = admin.query("SELECT User, Host FROM mysql.user WHERE User LIKE %s",
                            (SANDBOX_USER_PREFIX.replace("_", "\\_") + "%",))
    except pymysql.Error:
        users = []  # may not read mysql.user: then it could not drop them either
    for user, host in users:
        if _abandoned(admin, user[len(SANDBOX_USER_PREFIX):]):
            with contextlib.suppress(pymysql.Error):
                admin.execute(f"DROP USER IF EXISTS {_account(admin, user, host)}")
    if dropped:
        log.info("dropped %d scratch database(s) left by interrupted runs: %s",
                 len(dropped), ", ".join(dropped))
    return dropped


def _abandoned(admin: MySQLDatabase, token: str) -> bool:
    return admin.query("SELECT IS_USED_LOCK(%s)", (owner_lock(token),))[0][0] is None


def _account(db: MySQLDatabase, user: str, host: str) -> str:
    return f"{db.dialect.literal(user)}@{db.dialect.literal(host)}"


def read_as_screened(session: MySQLDatabase) -> None:
    """The session reads text as the screen did: double quotes delimit strings, whatever
    the server's default sql_mode says (backslash escapes are on in every session)."""
    mode = str(session.query("SELECT @@SESSION.sql_mode")[0][0] or "")
    kept = [m for m in mode.split(",") if m not in ("ANSI_QUOTES", "ANSI")]
    if len(kept) != len(mode.split(",")):
        session.execute("SET SESSION sql_mode = %s", (",".join(kept),))


class _Scratch:
    """A scratch database on ``server_dsn``'s server, owned by ``admin``'s named lock."""

    def __init__(self, dialect: MySQLDialect, server_dsn: str) -> None:
        self.dialect = dialect
        self.server_dsn = server_dsn
        self.token = secrets.token_hex(6)
        self.name = SCRATCH_PREFIX + self.token
        self.admin = MySQLDatabase(dialect, server_dsn)
        self.created = False

    def open(self) -> None:
        admin = self.admin
        with contextlib.suppress(pymysql.Error):
            drop_leftovers(admin)
        # The lock before the database: a database without a held lock is a leftover.
        if admin.query("SELECT GET_LOCK(%s, 0)", (owner_lock(self.token),))[0][0] != 1:
            raise BadInput(f"cannot take the scratch lock on {admin.dsn_display}")
        charset, collation = self._defaults_of_target()
        q = self.dialect.quote
        try:
            admin.execute(f"CREATE DATABASE {q(self.name)} CHARACTER SET {q(charset)} "
                          f"COLLATE {q(collation)}")
        except pymysql.Error as exc:
            raise BadInput(f"cannot create a scratch database on {admin.dsn_display}: "
                           f"{error_message(exc)}") from None
        self.created = True

    def _defaults_of_target(self) -> tuple[str, str]:
        """The character set and collation of the DSN's database, else the server's: a
        table the file creates without naming one gets what it would get there."""
        row = self.admin.query(
            "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM "
            "information_schema.SCHEMATA WHERE SCHEMA_NAME = DATABASE()")
        if row:
            return str(row[0][0]), str(row[0][1])
        row = self.admin.query("SELECT @@character_set_server, @@collation_server")
        return str(row[0][0]), str(row[0][1])

    def close(self) -> None:
        try:
            if self.created:
                self.admin.execute(f"DROP DATABASE IF EXISTS {self.dialect.quote(self.name)}")
        finally:
            self.admin.close()  # frees the owner lock


@contextlib.contextmanager
def scratch(dialect: MySQLDialect, server_dsn: str) -> Iterator[MySQLDatabase]:
    """A new empty database for Lockplane's own SQL, as the DSN's user."""
    box = _Scratch(dialect, server_dsn)
    try:
        box.open()
        with MySQLDatabase(dialect, with_database(server_dsn, box.name)) as db:
            yield db
    finally:
        box.close()


class Sandbox(_Scratch):
    """A scratch database plus a throwaway user with privileges on it alone."""

    def __init__(self, dialect: MySQLDialect, server_dsn: str) -> None:
        super().__init__(dialect, server_dsn)
        self.user = SANDBOX_USER_PREFIX + self.token
        self.account: str | None = None
        self.session: MySQLDatabase | None = None

    def open(self) -> None:
        super().open()
        admin = self.admin
        # The host this client connects from, as the server sees it: the sandbox user
        # may log in from there only.
        host = str(admin.query("SELECT SUBSTRING_INDEX(USER(), '@', -1)")[0][0])
        password = secrets.token_urlsafe(24)
        account = _account(admin, self.user, host)
        try:
            # The password's hash, not the password: statements may be logged.
            digest = "*" + hashlib.sha1(hashlib.sha1(password.encode()).digest()) \
                .hexdigest().upper()
            if admin.is_mariadb:
                admin.execute(f"CREATE USER {account} IDENTIFIED BY PASSWORD "
                              f"{admin.dialect.literal(digest)}")
            else:
                admin.execute(f"CREATE USER {account} IDENTIFIED WITH mysql_native_password "
                              f"AS {admin.dialect.literal(digest)}")
            self.account = account
            # '_' is a wildcard in a GRANT's database name: unescaped, the grant covered
            # every name with any character there, and the user could create such
            # databases, which outlive the load.
            granted = self.dialect.quote(self.name.replace("_", "\\_"))
            admin.execute(f"GRANT ALL PRIVILEGES ON {granted}.* TO {account}")
        except pymysql.Error as exc:
            raise BadInput(
                f"cannot make Lockplane's throwaway sandbox user on {admin.dsn_display} "
                f"({error_message(exc)}): schema files run as a user that can reach only "
                "the scratch database, so the server's user needs CREATE USER and GRANT "
                "OPTION; give a scratch server where it has them") from None
        params = parse_dsn(with_database(self.server_dsn, self.name))
        from dataclasses import replace

        try:
            self.session = MySQLDatabase(self.dialect, with_database(self.server_dsn,
                                                                     self.name),
                                         params=replace(params, user=self.user,
                                                        password=password))
        except BadInput:
            raise BadInput(f"cannot connect to {redact(self.server_dsn)} as Lockplane's "
                           "throwaway sandbox user") from None
        if admin.is_mariadb:
            self.session.execute(f"SET SESSION max_statement_time = {STATEMENT_SECONDS}")
        read_as_screened(self.session)

    def run(self, files: Sequence[tuple[str, list[Statement], bool]]) -> None:
        assert self.session is not None
        for where, statements, lines in files:
            for s in statements:
                at = f"{where}:{s.line}" if lines else where
                try:
                    self.session.execute(s.sql)
                except pymysql.Error as exc:
                    raise BadInput(f"{at}: {error_message(exc)}") from None
                if s.sql[:3].upper() == "SET":
                    # What the SET made of the session, as the server says: the next
                    # statements must read as the screen read them.
                    row = self.session.query(
                        "SELECT @@SESSION.sql_mode, @@SESSION.character_set_client, "
                        "@@SESSION.character_set_connection")[0]
                    why = session_refusal(str(row[0] or ""), [str(v) for v in row[1:]])
                    if why:
                        raise BadInput(f"{at}: refused: {why}")

    def introspect(self) -> Schema:
        from .introspect import introspect

        assert self.session is not None
        self.session.close()
        self.session = None
        with MySQLDatabase(self.dialect, with_database(self.server_dsn, self.name)) as db:
            named = db.query("SELECT TABLE_NAME FROM information_schema.TABLES WHERE "
                             "TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE %s "
                             "ORDER BY TABLE_NAME", (STATE_PREFIX.replace("_", "\\_") + "%",))
            if named:
                raise BadInput(f"the desired schema defines {named[0][0]!r}: the "
                               f"{STATE_PREFIX} prefix is Lockplane's own (its history and "
                               "state live in such tables)")
            return introspect(db)

    def close(self) -> None:
        try:
            if self.session is not None:
                self.session.close()
            if self.account is not None:
                with contextlib.suppress(pymysql.Error):
                    self.admin.execute(f"DROP USER IF EXISTS {self.account}")
        finally:
            super().close()


def load_untrusted(dialect: MySQLDialect, scripts: Sequence[tuple[str, str]],
                   server_dsn: str, *, lines: bool = True) -> Schema:
    # Every file is screened before the sandbox exists: a refused statement changes
    # nothing anywhere.
    screened = [(where, screen(text, where, lines=lines), lines) for where, text in scripts]
    box = Sandbox(dialect, server_dsn)
    try:
        box.open()
        box.run(screened)
        return box.introspect()
    finally:
        box.close()
