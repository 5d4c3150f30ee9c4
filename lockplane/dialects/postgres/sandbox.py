"""Loading an untrusted schema file: a scratch database that an unprivileged role fills.

The file was screened statement by statement first (:mod:`.screen`), but DDL can still run
user code as a side effect (``ADD COLUMN ... DEFAULT f()`` evaluates ``f``). So the file
runs as a throwaway role made for this load: no superuser, CREATEROLE, CREATEDB or
replication rights, no memberships, owner of nothing but the scratch database, which
PUBLIC may not connect to. Whatever the file's code does, it does as that role, inside
that database: it cannot read server files, run programs, reach other databases or touch
roles.

A few statements need the privileged session (the DSN's own user) and were screened to
carry nothing but names: allow-listed extensions, default privileges for other roles,
event triggers (last, so they never fire on the file's own DDL). After the file, what the
sandbox role owns is handed to the privileged user and the role's traces dropped, so the
schema reads back exactly as if the file had run as that user; the role is dropped with
the database.

Where the DSN's user may not create roles (no superuser, no CREATEROLE), it is already
unprivileged: the file runs as that user in the scratch database.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import logging
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql as pgsql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ...dsn import redact
from ...errors import BadInput
from .screen import (
    FORBIDDEN_SETTINGS,
    STATE_SCHEMA,
    Runs,
    Screened,
    Statement,
    for_role,
)

if TYPE_CHECKING:
    from ...model import Schema
    from . import PostgresDatabase, PostgresDialect

log = logging.getLogger("lockplane")

SCRATCH_PREFIX = "lockplane_scratch_"
SANDBOX_ROLE_PREFIX = "lockplane_sandbox_"
# The application_name of the session that owns a scratch database while it is in use:
# a scratch database without its owner session was left by a process that died.
OWNER_MARK = "lockplane scratch "

# Roles whose members can read or write the server's files or run programs on it.
_SERVER_ACCESS_ROLES = ("pg_execute_server_program", "pg_read_server_files",
                        "pg_write_server_files")


def scratch_name(token: str) -> str:
    return SCRATCH_PREFIX + token


def drop_database(conn: psycopg.Connection[Any], name: str) -> None:
    """DROP DATABASE IF EXISTS ... WITH (FORCE), on an autocommit connection."""
    conn.execute(pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
        pgsql.Identifier(name)))


def drop_scratch_later(admin: PostgresDatabase, name: str, role: str | None = None) -> None:
    """Drop scratch database ``name`` (then its sandbox ``role``) on ``admin``'s session in
    the background (:mod:`lockplane.background`), and close the session: DROP DATABASE
    waits for a checkpoint, which the command need not wait for. The session keeps its
    owner mark until the drop is done, so no other run takes the database for a
    leftover; if this process dies first, the next run drops it (:func:`drop_leftovers`)."""
    from ... import background

    def work() -> None:
        try:
            drop_database(admin.conn, name)
            if role:
                admin.execute(pgsql.SQL("DROP ROLE IF EXISTS {}").format(
                    pgsql.Identifier(role)).as_string(admin.conn))
        except Exception as exc:  # noqa: BLE001 - a leftover, dropped by the next run
            log.warning("could not drop scratch database %s (the next run on this server "
                        "drops it): %s", name, redact(str(exc).splitlines()[0] if str(exc)
                                                      else type(exc).__name__))
        finally:
            with contextlib.suppress(Exception):
                admin.close()

    background.start(work, f"lockplane-drop-{name}")


def drop_abandoned_databases(conn: psycopg.Connection[Any], prefix: str,
                             owner_mark: str) -> list[str]:
    """Drop the databases named ``prefix<token>`` that nobody is connected to and whose
    owner session (application_name ``owner_mark<token>``) is gone: what a killed process
    left behind. Only what this user may drop is dropped; the rest is left for a user
    who may."""
    pattern = prefix.replace("_", "\\_") + "%"
    rows = conn.execute(
        "SELECT d.datname FROM pg_catalog.pg_database d "
        "WHERE d.datname OPERATOR(pg_catalog.~~) %s::pg_catalog.text "
        "AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a "
        "  WHERE a.datname OPERATOR(pg_catalog.=) d.datname "
        "  OR a.application_name OPERATOR(pg_catalog.=) (%s::pg_catalog.text "
        "     OPERATOR(pg_catalog.||) pg_catalog.substr(d.datname::pg_catalog.text, %s))) "
        "AND (pg_catalog.pg_has_role(d.datdba, 'MEMBER') OR "
        "     (SELECT rolsuper FROM pg_catalog.pg_roles "
        "      WHERE rolname OPERATOR(pg_catalog.=) CURRENT_USER))",
        (pattern, owner_mark, len(prefix) + 1)).fetchall()
    dropped = []
    for (name,) in rows:
        try:
            drop_database(conn, name)
            dropped.append(name)
        except psycopg.Error:  # another run got there first, or it is not ours to drop
            continue
    return dropped


def drop_leftovers(admin: PostgresDatabase) -> list[str]:
    """Drop scratch databases (and sandbox roles) whose owner session is gone.

    A process killed while it held a scratch database leaves it behind; the next run on
    the same server finds it by name and by the absence of its owner's session.
    """
    dropped = drop_abandoned_databases(admin.conn, SCRATCH_PREFIX, OWNER_MARK)
    roles = admin.query(
        "SELECT r.rolname FROM pg_catalog.pg_roles r "
        "WHERE r.rolname OPERATOR(pg_catalog.~~) 'lockplane\\_sandbox\\_%%'::pg_catalog.text "
        "AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_database d "
        "  WHERE d.datname::pg_catalog.text OPERATOR(pg_catalog.=) (%s::pg_catalog.text "
        "  OPERATOR(pg_catalog.||) pg_catalog.substr(r.rolname::pg_catalog.text, %s))) "
        "AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a "
        "  WHERE a.usename OPERATOR(pg_catalog.=) r.rolname "
        "  OR a.application_name OPERATOR(pg_catalog.=) (%s::pg_catalog.text "
        "     OPERATOR(pg_catalog.||) pg_catalog.substr(r.rolname::pg_catalog.text, %s)))",
        (SCRATCH_PREFIX, len(SANDBOX_ROLE_PREFIX) + 1, OWNER_MARK,
         len(SANDBOX_ROLE_PREFIX) + 1))
    for (role,) in roles:
        try:
            admin.execute(pgsql.SQL("DROP ROLE IF EXISTS {}").format(
                pgsql.Identifier(role)).as_string(admin.conn))
        except psycopg.Error:
            continue
    if dropped:
        log.info("dropped %d scratch database(s) left by interrupted runs: %s",
                 len(dropped), ", ".join(dropped))
    return dropped


def scram_verifier(password: str, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (RFC 5802/7677).

    CREATE ROLE gets the verifier, not the password: statements are often logged
    (log_statement = 'ddl'), and the sandbox's password never leaves this process.
    """
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(b: bytes) -> str:
        return base64.b64encode(b).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


class Sandbox:
    """One scratch database on ``server_dsn``'s server; untrusted SQL runs as ``role``."""

    def __init__(self, dialect: PostgresDialect, server_dsn: str,
                 allowed_extensions: Sequence[str] = (), *, make_roles: bool = False) -> None:
        self.dialect = dialect
        self.server_dsn = server_dsn
        self.allowed_extensions = {e.lower() for e in allowed_extensions}
        # A private server has none of the target's roles: make the ones the files name.
        self.make_roles = make_roles
        self.token = secrets.token_hex(6)
        self.name = scratch_name(self.token)
        self.role: str | None = None
        self.admin: PostgresDatabase | None = None
        self.privileged: PostgresDatabase | None = None  # the DSN's user, in the scratch db
        self.sandboxed: PostgresDatabase | None = None  # the sandbox role (or the user)
        self.session: list[str] = []  # the file's session settings so far, in order
        self.last: list[tuple[Screened, Statement]] = []
        self._where = ""

    # ------------------------------------------------------------------ life cycle
    def open(self) -> None:
        from . import PostgresDatabase, refuse_read_only_server, with_dbname

        d = self.dialect
        admin = PostgresDatabase(d, self.server_dsn, application_name=OWNER_MARK + self.token)
        try:
            refuse_read_only_server(admin, "a scratch database")
        except BadInput:
            admin.close()  # (nothing made there: nothing to drop)
            raise
        self.admin = admin
        with contextlib.suppress(psycopg.Error):
            drop_leftovers(admin)
        (superuser, createrole, user), = admin.query(
            "SELECT rolsuper, rolcreaterole, current_user FROM pg_roles "
            "WHERE rolname = current_user")
        self.user = user
        ident = pgsql.Identifier
        password = secrets.token_urlsafe(24)
        if superuser or createrole:
            self.role = SANDBOX_ROLE_PREFIX + self.token
            admin.execute(pgsql.SQL(
                "CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
                "NOBYPASSRLS CONNECTION LIMIT 4 PASSWORD {}").format(
                ident(self.role), pgsql.Literal(scram_verifier(password))).as_string(admin.conn))
            if not superuser:
                # To create a database it owns, a non-superuser must be a member of it.
                admin.execute(pgsql.SQL("GRANT {} TO CURRENT_USER").format(
                    ident(self.role)).as_string(admin.conn))
            owner = ident(self.role)
        else:
            self._check_unprivileged(admin, user)
            owner = ident(user)
        try:
            admin.execute(pgsql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE template0").format(
                ident(self.name), owner).as_string(admin.conn))
        except psycopg.errors.InsufficientPrivilege:
            # (a role without CREATEDB: bad input, said in one line, not an internal error)
            raise BadInput(
                f"cannot create a scratch database on {redact(self.server_dsn)} as {user} "
                "(the role lacks CREATEDB): give a scratch server (scratch_database_url in "
                "lockplane.toml, or LOCKPLANE_SCRATCH_DATABASE_URL), or a role that may "
                "create databases") from None
        admin.execute(pgsql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(
            ident(self.name)).as_string(admin.conn))
        self.privileged = PostgresDatabase(d, _reading_as_screened(
            with_dbname(self.server_dsn, self.name)), autocommit=False)
        self.privileged.execute("SET synchronous_commit = off")
        self.privileged.conn.commit()
        if self.role is None:
            self.sandboxed = self.privileged
            return
        params = conninfo_to_dict(_reading_as_screened(with_dbname(self.server_dsn, self.name)))
        params.update(user=self.role, password=password)
        params.pop("passfile", None)
        try:
            self.sandboxed = PostgresDatabase(d, make_conninfo(**params), autocommit=False)
        except BadInput:
            raise BadInput(
                f"cannot connect to {redact(self.server_dsn)} as Lockplane's throwaway "
                "sandbox role (the server's pg_hba.conf may not allow password logins): "
                "give a scratch server (scratch_database_url in lockplane.toml, or "
                "LOCKPLANE_SCRATCH_DATABASE_URL) where it can") from None
        self.sandboxed.execute("SET synchronous_commit = off")
        self.sandboxed.conn.commit()

    @staticmethod
    def _check_unprivileged(admin: PostgresDatabase, user: str) -> None:
        rows = admin.query(
            "SELECT string_agg(r, ', ') FROM unnest(%s::text[]) r "
            "WHERE pg_has_role(current_user, r, 'USAGE')", (list(_SERVER_ACCESS_ROLES),))
        if rows and rows[0][0]:
            raise BadInput(
                f"the scratch server's user {user} may not create roles but is a member of "
                f"{rows[0][0]}: schema files would run with access to the server's files; "
                "give Lockplane a user with CREATEROLE (schema files then run as a "
                "throwaway unprivileged role) or a dedicated scratch server")

    def close(self) -> None:
        for db in (self.sandboxed, self.privileged):
            if db is not None:
                with contextlib.suppress(Exception):
                    db.close()
        if self.admin is not None:
            drop_scratch_later(self.admin, self.name, self.role)

    # ------------------------------------------------------------------ running files
    def check(self, files: Sequence[Screened]) -> None:
        """What depends on the server, checked before any statement runs."""
        assert self.privileged is not None
        db = self.privileged
        settings = {r[0] for r in db.query(
            "SELECT name FROM pg_settings WHERE context = 'user'")}
        languages = {r[0] for r in db.query("SELECT lanname FROM pg_language "
                                            "WHERE lanpltrusted")}
        extensions = self._allowed_extensions(db)
        db.conn.rollback()
        wanted: dict[str, Statement] = {}
        for f in files:
            for s in f.statements:
                where = f.where(s.line)
                if s.setting and s.setting not in settings and "." not in s.setting \
                        or s.setting in FORBIDDEN_SETTINGS:
                    raise BadInput(f"{where}: SET {s.setting} is not allowed in a schema "
                                   "file (only session settings that define nothing run)")
                if s.extension is not None:
                    ext = s.extension.lower()
                    if ext not in extensions:
                        raise BadInput(
                            f"{where}: extension {s.extension!r} is not allowed in a schema "
                            "file: only extensions the server marks trusted, and those listed "
                            "in allowed_extensions (lockplane.toml), are installed in the "
                            "scratch database")
                    wanted[ext] = s
                    if s.extension_cascade:
                        missing = self._requires(db, ext) - extensions
                        if missing:
                            raise BadInput(f"{where}: CASCADE would install extensions "
                                           f"that are not allowed: {', '.join(sorted(missing))}")
                if s.language is not None and s.language not in languages \
                        and s.language not in wanted:
                    raise BadInput(
                        f"{where}: functions in language {s.language!r} are not allowed in a "
                        "schema file (only trusted languages: their code cannot reach the "
                        "server's files or programs)")
        db.conn.rollback()

    def _allowed_extensions(self, db: PostgresDatabase) -> set[str]:
        trusted = {r[0] for r in db.query(
            "SELECT DISTINCT name FROM pg_available_extension_versions WHERE trusted")}
        return trusted | self.allowed_extensions | {"plpgsql"}

    @staticmethod
    def _requires(db: PostgresDatabase, ext: str) -> set[str]:
        rows = db.query(
            "WITH RECURSIVE req(name) AS (SELECT %s::name UNION "
            "SELECT unnest(v.requires) FROM pg_available_extension_versions v JOIN req "
            "ON v.name = req.name) SELECT name FROM req WHERE name <> %s", (ext, ext))
        return {r[0] for r in rows}

    def run(self, files: Sequence[Screened]) -> None:
        """Run the screened files: sandbox statements in batches (one round trip and one
        commit each), privileged ones where they stand."""
        self.check(files)
        if self.make_roles:
            self._make_roles(files)
        for f in files:
            batch: list[Statement] = []
            for s in f.statements:
                if s.runs in (Runs.SANDBOX, Runs.SESSION):
                    batch.append(s)
                    if s.runs is Runs.SESSION:
                        self.session.append(s.sql)
                    continue
                if s.runs is Runs.SKIP:
                    continue
                self._execute(self.sandboxed, f, batch)
                batch = []
                if s.runs is Runs.PRIVILEGED:
                    self._privileged(f, s)
                elif s.runs is Runs.LAST:
                    self.last.append((f, s))
            self._execute(self.sandboxed, f, batch)

    def _make_roles(self, files: Sequence[Screened]) -> None:
        assert self.admin is not None
        named = sorted({r for f in files for s in f.statements for r in s.roles})
        if not named:
            return
        have = {r[0] for r in self.admin.query(
            "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", (named,))}
        for role in named:
            if role not in have:
                self.admin.execute(pgsql.SQL("CREATE ROLE {} NOLOGIN").format(
                    pgsql.Identifier(role)).as_string(self.admin.conn))

    def _execute(self, db: PostgresDatabase | None, f: Screened,
                 statements: Sequence[Statement]) -> None:
        """Each statement on its own, in the extended protocol, where the server refuses a
        second command in one: whatever the server's lexer makes of a statement, it runs
        at most the one statement the screen checked. Pipelined, so a batch costs one
        round trip, in one transaction."""
        assert db is not None
        if not statements:
            return
        try:
            with db.conn.pipeline():
                for s in statements:
                    _send_alone(db, s.sql)
            db.conn.commit()
            return
        except psycopg.Error:
            db.conn.rollback()
        # Which statement failed: again, one by one (all of it is rolled back anyway).
        try:
            for s in statements:
                try:
                    _send_alone(db, s.sql)
                except psycopg.Error as exc:
                    raise BadInput(self._error(f, s, exc)) from None
        finally:
            db.conn.rollback()
        raise BadInput(f"{f.path}: the server refused the file but no statement failed "
                       "alone; load it again")

    @staticmethod
    def _error(f: Screened, s: Statement, exc: psycopg.Error) -> str:
        diag = exc.diag
        pos = int(diag.statement_position) if diag.statement_position else None
        at = s.line
        if pos is not None and not s.rewritten:
            at = f.text.count("\n", 0, s.offset + pos - 1) + 1
        msg = diag.message_primary or str(exc).strip().splitlines()[0]
        return f"{f.where(at)}: {redact(msg)}"

    def _privileged(self, f: Screened, s: Statement) -> None:
        assert self.privileged is not None
        db = self.privileged
        # The file's session settings so far (search_path above all) hold here too.
        for setting in self.session:
            _send_alone(db, setting)
        self._execute(db, f, [s])
        if s.default_privilege_roles is not None and self.role and (
                not s.default_privilege_roles or self.user in s.default_privilege_roles):
            # Objects the file creates after this are created by the sandbox role: give it
            # the same entry, so they get what they would have got as the user's. Its
            # entries are dropped with the role's other traces before reading back.
            twin = replace(s, sql=for_role(s.sql, self.role), rewritten=True)
            self._execute(db, f, [twin])

    def finish(self) -> None:
        """Hand over what the sandbox role made; then the event triggers (they may fire
        from now on, and nothing runs any more but reading the catalog)."""
        assert self.privileged is not None
        db = self.privileged
        ident = pgsql.Identifier
        if self.sandboxed is not self.privileged and self.sandboxed is not None:
            self.sandboxed.close()
        db.execute("RESET ALL")
        if self.role:
            db.execute(pgsql.SQL("REASSIGN OWNED BY {} TO CURRENT_USER").format(
                ident(self.role)).as_string(db.conn))
            db.execute(pgsql.SQL("DROP OWNED BY {}").format(ident(self.role)).as_string(db.conn))
        db.conn.commit()
        for f, s in self.last:
            self._privileged(f, s)
        # Whatever code the file ran could have set database-wide defaults; reading back
        # happens with none.
        db.execute(pgsql.SQL("ALTER DATABASE {} RESET ALL").format(
            ident(self.name)).as_string(db.conn))
        db.execute("RESET ALL")
        db.conn.commit()
        if db.query("SELECT 1 FROM pg_namespace WHERE nspname = %s", (STATE_SCHEMA,)):
            raise BadInput(f"the desired schema defines schema {STATE_SCHEMA!r}, which is "
                           "Lockplane's own (its history and state live there)")
        db.conn.rollback()

    def introspect(self) -> Schema:
        assert self.privileged is not None
        from .introspect import introspect

        db = self.privileged
        db.conn.autocommit = True
        return introspect(db.conn)


def _reading_as_screened(dsn: str) -> str:
    """``dsn`` with the settings under which the server splits and reads statements as
    the screen did, as the session's own defaults (so RESET ALL keeps them)."""
    params = conninfo_to_dict(dsn)
    options = params.get("options") or ""
    params["options"] = (f"{options} -c standard_conforming_strings=on "
                         "-c client_encoding=UTF8").strip()
    return make_conninfo(**params)


def _send_alone(db: PostgresDatabase, sql: str) -> None:
    """Run ``sql`` in the extended query protocol, where the server refuses a second
    command in one string (psycopg sends a query without parameters in the simple
    protocol, which runs them all, unless binary results are asked for). With a (empty)
    parameter list every ``%`` must be doubled to stay literal."""
    with db.conn.cursor() as cur:
        cur.execute(sql.replace("%", "%%"), [], binary=True)


@contextlib.contextmanager
def sandbox(dialect: PostgresDialect, server_dsn: str,
            allowed_extensions: Sequence[str] = (), *,
            make_roles: bool = False) -> Iterator[Sandbox]:
    box = Sandbox(dialect, server_dsn, allowed_extensions, make_roles=make_roles)
    try:
        box.open()
        yield box
    finally:
        box.close()
