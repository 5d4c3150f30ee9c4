"""PostgreSQL's own dump tools: finding a pg_dump/pg_restore whose major version is the
server's, and running them without a password on their command line.

The password of a DSN goes to the child process in ``PGPASSWORD`` (its environment is
readable only by its user, unlike a command line in ``ps``); the command line gets the
connection parameters without it.
"""

from __future__ import annotations

import functools
import glob
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ...dsn import redact, redact_for
from ...errors import BadInput

BINDIR_ENV = "LOCKPLANE_PG_BINDIR"
_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


def parse_tool_version(output: str) -> tuple[int, str]:
    """``(major, full)`` from ``pg_dump --version`` output such as
    ``pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)``."""
    m = _VERSION.search(output)
    if not m:
        raise BadInput(f"cannot read a PostgreSQL version from {output.strip()[:80]!r}")
    full = m.group(1) + (f".{m.group(2)}" if m.group(2) else "")
    return int(m.group(1)), full


def server_major(server_version_num: int) -> int:
    return server_version_num // 10000


def server_version_text(server_version_num: int) -> str:
    major, minor = divmod(server_version_num, 10000)
    return f"{major}.{minor}"


@dataclass(frozen=True)
class Tool:
    path: str
    major: int
    version: str


def _candidate_dirs() -> list[str]:
    """Where to look: $LOCKPLANE_PG_BINDIR alone when set; else PATH, pg_config's bindir,
    and the usual versioned install directories (Debian/Ubuntu, RHEL, Homebrew)."""
    forced = os.environ.get(BINDIR_ENV)
    if forced:
        return [forced]
    dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d]
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                                 timeout=10).stdout.strip()
            if out:
                dirs.append(out)
        except (OSError, subprocess.SubprocessError):
            pass
    for pattern in ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin",
                    "/opt/homebrew/opt/postgresql@*/bin", "/usr/local/opt/postgresql@*/bin",
                    "/Applications/Postgres.app/Contents/Versions/*/bin"):
        dirs.extend(sorted(glob.glob(pattern)))
    return list(dict.fromkeys(dirs))


def tool_version(path: str) -> Tool:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as exc:
        raise BadInput(f"cannot run {path}: {exc}") from None
    major, full = parse_tool_version(out.stdout or out.stderr)
    return Tool(path, major, full)


def find_tool(name: str, server_version_num: int) -> Tool:
    """The ``name`` (pg_dump, pg_restore) whose major version is the server's.

    Bad input (exit 2), naming both versions, when only other versions are installed.
    Remembered per search path (a search runs ``--version`` of each candidate).
    """
    return _find_tool(name, server_major(server_version_num), server_version_num,
                      os.environ.get(BINDIR_ENV, ""), os.environ.get("PATH", ""))


@functools.lru_cache(maxsize=32)
def _find_tool(name: str, want: int, server_version_num: int, _bindir: str,
               _path: str) -> Tool:
    want = server_major(server_version_num)
    seen: list[Tool] = []
    for d in _candidate_dirs():
        path = Path(d) / name
        if not (path.is_file() and os.access(path, os.X_OK)):
            continue
        try:
            tool = tool_version(str(path))
        except BadInput:
            continue
        if tool.major == want:
            return tool
        seen.append(tool)
    server = server_version_text(server_version_num)
    if seen:
        found = ", ".join(f"{t.version} ({t.path})" for t in dict.fromkeys(seen))
        raise BadInput(f"{name} must match the server's major version: server is PostgreSQL "
                       f"{server}, found {name} {found}; install the PostgreSQL {want} client "
                       f"tools or set {BINDIR_ENV}")
    raise BadInput(f"{name} not found (server is PostgreSQL {server}): install the PostgreSQL "
                   f"{want} client tools or set {BINDIR_ENV}")


def check_tool(tool: Tool, name: str, server_version_num: int) -> None:
    """Refuse (exit 2) a tool of another major version than the server's."""
    if tool.major != server_major(server_version_num):
        raise BadInput(f"{name} {tool.version} ({tool.path}) does not match the server's "
                       f"PostgreSQL {server_version_text(server_version_num)}")


def _option_value(value: str) -> str:
    # libpq's options: spaces and backslashes inside a value are backslash-escaped
    return value.replace("\\", "\\\\").replace(" ", "\\ ")


@functools.lru_cache(maxsize=16)
def takes_require_auth(tool: str) -> bool:
    """Whether the libpq of the client tool at ``tool`` knows ``require_auth`` (16+;
    Debian's PostgreSQL 15 tools may link an older one). Asked of its psql (or pg_dump)
    with a connection to a socket that does not exist: libpq reads the options first."""
    here = Path(tool).parent
    probe = "require_auth=none host=/nonexistent/lockplane-probe"
    for name, args in (("psql", ["-X", "-d", probe, "-c", "SELECT 1"]),
                       ("pg_dump", ["-d", probe, "-s", "-f", os.devnull])):
        exe = here / name
        if exe.exists():
            proc = subprocess.run([str(exe), *args], capture_output=True, text=True,
                                  env={**os.environ, "PGCONNECT_TIMEOUT": "2"}, timeout=30)
            return 'invalid connection option "require_auth"' not in proc.stderr
    return False


def conninfo_and_env(dsn: str, application_name: str = "lockplane backup", *,
                     options: dict[str, str] | None = None,
                     tool: str | None = None) -> tuple[str, dict[str, str]]:
    """``(conninfo without password, environment for the child)``; ``options`` are
    session settings added to the DSN's own (``client_encoding`` replaces the DSN's
    and the environment's, so the child's text encoding is the one asked for). ``tool``:
    the client tool's path, asked whether its libpq takes ``require_auth``."""
    try:
        params = conninfo_to_dict(dsn)
    except Exception as exc:  # noqa: BLE001 - psycopg's ProgrammingError
        raise BadInput(f"bad PostgreSQL URL {redact(dsn)}: {redact_for(str(exc), dsn)}") from None
    env = dict(os.environ)
    password = params.pop("password", None)
    if password is not None:
        env["PGPASSWORD"] = str(password)
    elif "require_auth" in params and not (tool and takes_require_auth(tool)):
        # A URL without a password that limits how the server may authenticate
        # (config.py gives one a repository file names to a server that may be anyone's)
        # must not let the child hand that server an ambient password either. A libpq
        # before 16, which the client tools of PostgreSQL 14 and 15 may link, rejects
        # require_auth: the child gets no password to send instead (none in its
        # environment, no password file); a libpq that takes it gets the option.
        params.pop("require_auth")
        env.pop("PGPASSWORD", None)
        env["PGPASSFILE"] = os.devnull
    params.setdefault("application_name", application_name)
    if options:
        settings = dict(options)
        if "client_encoding" in settings:
            params["client_encoding"] = settings.pop("client_encoding")
            env.pop("PGCLIENTENCODING", None)
        extra = " ".join(f"-c {k}={_option_value(v)}" for k, v in settings.items())
        params["options"] = f"{params['options']} {extra}" if params.get("options") else extra
    return make_conninfo(**params), env


def run_tool(args: list[str], env: dict[str, str], what: str) -> None:
    """Run a dump tool; its first error line (redacted) in a one-line failure."""
    proc = subprocess.run(args, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or "").splitlines() if ln.strip()]
        first = next((ln for ln in lines if "error" in ln.lower()), lines[0] if lines else "")
        from ...errors import ExecutionFailed

        raise ExecutionFailed(f"{what} failed (exit {proc.returncode}): {redact(first.strip())}")


def list_archive(tool: Tool, archive: Path, env: dict[str, str]) -> str:
    """``pg_restore -l`` of an archive: its table of contents, one entry a line."""
    proc = subprocess.run([tool.path, "-l", str(archive)], env=env, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        from ...errors import ExecutionFailed

        first = (proc.stderr or "").strip().splitlines()[:1]
        raise ExecutionFailed(f"pg_restore -l failed (exit {proc.returncode}): "
                              f"{redact(first[0]) if first else ''}")
    return proc.stdout


def run_tool_lines(args: list[str], env: dict[str, str], what: str,
                   on_line: Callable[[str], None]) -> None:
    """Run a dump tool, calling ``on_line`` with each line of its stderr as it comes
    (``pg_restore -v``: items as they finish); a failure as ``run_tool``'s."""
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stderr is not None
    lines: list[str] = []
    try:
        for line in proc.stderr:
            lines.append(line)
            on_line(line.rstrip("\n"))
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if proc.wait() != 0:
        kept = [ln for ln in lines if ln.strip()]
        first = next((ln for ln in kept if "error" in ln.lower()), kept[0] if kept else "")
        from ...errors import ExecutionFailed

        raise ExecutionFailed(f"{what} failed (exit {proc.returncode}): {redact(first.strip())}")
