"""A private PostgreSQL server that Lockplane starts itself, and throws away.

For loading untrusted schema files where no credential of the target's reaches
(``scratch_database_url = "private"``): a fresh cluster in a temporary directory, listening
only on a Unix socket in a directory only its own OS user may enter, with the binaries of
the target's major version when they are installed (Debian's /usr/lib/postgresql/N/bin,
``pg_config --bindir``, or LOCKPLANE_PG_BINDIR). Run as root, the server runs as
``nobody``: PostgreSQL refuses root, and nothing of the machine's own clusters belongs
to that user.
"""

from __future__ import annotations

import contextlib
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
        return max(usable, key=lambda p: usable[p] or 0)
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
