"""PostgreSQL's recovery to an exact time: its WAL archive and physical base backups.

The server's archive is its own: its ``archive_command`` is read and, for the usual forms
(``cp %p DIR/%f``, pgBackRest's ``archive-push``, WAL-G's ``wal-push``), turned into the
matching ``restore_command``; pgBackRest and WAL-G are detected when installed and their
own restore commands are named, never reimplemented. pgBackRest's ``archive-get`` keeps
archive-push's options (--config, --stanza, --repo1-path, ...) and gets ``--pg1-path``
set to the new instance's data directory: it resolves ``%p`` against that path and checks
the server there. It runs as the new instance's OS user (as root: nobody), who must be
able to read the configuration and the repository.

A base backup (``pg_basebackup``, taken with ``lockplane backup base``) taken before the
time, plus the archive, is replayed into a new data directory started on another port
with ``restore_command``, ``recovery_target_time`` and ``recovery_target_action =
promote``. Base backups live in the backup storage under ``_base/<id>/`` (``base.json``
written last, then ``data/base.tar``, ``data/pg_wal.tar``, ``data/backup_manifest``): a
listing of logical backups never sees them.

The dialect-neutral half (timeline, what a restore loses, the recovery plan) is
lockplane/backup/pitr.py; it reaches this module through the backup engine's
``point_in_time()`` (``PostgresPointInTime``).
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from pydantic import BaseModel, Field

from ...backup.core import BackupCorrupt, _describe_files, _sha256, new_backup_id
from ...backup.manifest import StoredFile
from ...backup.pitr import PointInTime, _dbname, ago, as_time, stamp
from ...backup.storage import Storage, StorageError
from ...dsn import redact
from ...errors import BadInput, ExecutionFailed
from . import pgtools
from .backup import pg_connect as _pg_connect

Reporter = Callable[[str], None]

BASE_DIR = "_base"
BASE_FILE = "base.json"
ARCHIVE_WAIT_S = 60.0
RECOVERY_WAIT_S = 120.0

def _quiet(report: Reporter | None) -> Reporter:
    return report or (lambda _msg: None)


def _now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------------- WAL archive
@dataclass
class WalArchive:
    """What the server says about its WAL archiving, and how to read the archive back."""

    wal_level: str = ""
    archive_mode: str = ""
    archive_command: str = ""
    archive_library: str = ""
    restore_command: str | None = None  # derived from archive_command, or given
    method: str | None = None  # "directory" | "pgbackrest" | "wal-g" | "given"
    archive_dir: str | None = None
    last_archived_wal: str | None = None
    last_archived_time: datetime | None = None
    failed_count: int = 0
    last_failed_time: datetime | None = None
    tools: dict[str, str] = field(default_factory=dict)  # installed: name -> path
    problems: list[str] = field(default_factory=list)
    system_identifier: str | None = None

    @property
    def usable(self) -> bool:
        return not self.problems and self.restore_command is not None

    def restore_command_into(self, data: Path) -> str:
        """The restore_command for a new instance in ``data``: pgBackRest resolves %p
        against, and checks the server against, its pg1-path, the new data directory."""
        command = self.restore_command or ""
        if self.method == "pgbackrest":
            return command.replace(PGBACKREST_DATA_DIR, shlex.quote(str(data)))
        return command

    def describe(self) -> list[str]:
        """What is available, in an operator's words (one line each)."""
        lines = []
        if self.archive_mode in ("on", "always") and self.wal_level in ("replica", "logical"):
            how = {"directory": f"into {self.archive_dir}", "pgbackrest": "with pgBackRest",
                   "wal-g": "with WAL-G", "given": "(restore_command given)"}.get(
                self.method or "", "by a command Lockplane cannot read back")
            last = (f", last segment {self.last_archived_wal} {ago(self.last_archived_time)}"
                    if self.last_archived_wal and self.last_archived_time else "")
            lines.append(f"WAL archiving is on (wal_level {self.wal_level}) {how}{last}")
            if self.failed_count:
                lines.append(f"the archiver has failed {self.failed_count} time(s)"
                             + (f", last {ago(self.last_failed_time)}"
                                if self.last_failed_time else ""))
        lines += self.problems
        for name, path in sorted(self.tools.items()):
            lines.append(f"{name} is installed ({path})")
        if not self.tools:
            lines.append("neither pgBackRest nor WAL-G is installed here")
        return lines


_CP_ARCHIVE = re.compile(r"\b(?:cp|rsync)\b(?:\s+-{1,2}[\w=-]+)*\s+[\"']?%p[\"']?\s+"
                         r"[\"']?(/[^\s\"';&|]+?)/?[\"']?/?%f")
_PGBACKREST = re.compile(r"(?P<exe>[^\s;&|\"']*pgbackrest)\b(?P<opts>.*?)\barchive-push\b"
                         r"(?P<rest>[^;&|]*)")
# archive-push options archive-get refuses ("option ... not valid for command"); the data
# directory (pg1-path) is the new instance's, given per recovery.
_PGBACKREST_PUSH_ONLY = {"archive-check", "archive-header-check", "archive-mode-check",
                         "archive-push-queue-max", "compress", "compress-level",
                         "compress-type", "pg-path"}
PGBACKREST_DATA_DIR = "{pg1_path}"
_WALG = re.compile(r"\bwal-g\b.*\bwal-push\b")


def restore_command_for(archive_command: str) -> tuple[str | None, str | None, str | None]:
    """``(restore_command, method, archive directory)`` matching a server's
    ``archive_command``, for the forms Lockplane can read back."""
    m = _CP_ARCHIVE.search(archive_command)
    if m:
        d = m.group(1).rstrip("/")
        return f"cp {shlex.quote(d)}/%f %p", "directory", d
    m = _PGBACKREST.search(archive_command)
    if m:
        opts = _pgbackrest_get_options(f"{m.group('opts')} {m.group('rest')}")
        if opts is None:
            return None, None, None
        return (" ".join([shlex.quote(m.group("exe")), *opts, f"--pg1-path={PGBACKREST_DATA_DIR}",
                          "archive-get", "%f", '"%p"']), "pgbackrest", None)
    if _WALG.search(archive_command):
        return "wal-g wal-fetch %f %p", "wal-g", None
    return None, None, None


def _pgbackrest_get_options(text: str) -> list[str] | None:
    """The options of a ``pgbackrest ... archive-push %p`` command line that archive-get
    needs too (--config, --stanza, --repo1-path, ...), each as ``--name=value``; None when
    the line cannot be split like a shell would."""
    try:
        words = shlex.split(text)
    except ValueError:
        return None
    out: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if not word.startswith("--"):
            continue  # %p
        name, eq, value = word[2:].partition("=")
        if not eq and i < len(words) and not words[i].startswith("--") \
                and words[i] != "%p":
            value, eq = words[i], "="
            i += 1
        plain = re.sub(r"^(?:no|reset)-", "", name)
        if re.sub(r"^(pg|repo)\d+-", r"\1-", plain) in _PGBACKREST_PUSH_ONLY:
            continue
        out.append(shlex.quote(f"--{name}={value}" if eq else f"--{name}"))
    return out


def installed_tools() -> dict[str, str]:
    return {name: path for name in ("pgbackrest", "wal-g") if (path := shutil.which(name))}


def detect_wal_archive(live_dsn: str, restore_command: str | None = None) -> WalArchive:
    """Read the server's archiving settings and archiver statistics."""
    w = WalArchive(tools=installed_tools())
    with _pg_connect(live_dsn, autocommit=True, application_name="lockplane recover") as c:
        def setting(name: str) -> str:
            row = c.execute("SELECT setting FROM pg_settings WHERE name = %s", (name,)
                            ).fetchone()
            return str(row[0]) if row and row[0] is not None else ""

        w.wal_level, w.archive_mode = setting("wal_level"), setting("archive_mode")
        w.archive_command, w.archive_library = setting("archive_command"), \
            setting("archive_library")
        with contextlib.suppress(psycopg.Error):
            row = c.execute("SELECT last_archived_wal, last_archived_time, failed_count, "
                            "last_failed_time FROM pg_stat_archiver").fetchone()
            if row:
                w.last_archived_wal, w.failed_count = row[0], int(row[2] or 0)
                w.last_archived_time, w.last_failed_time = as_time(row[1]), as_time(row[3])
        with contextlib.suppress(psycopg.Error):
            row = c.execute("SELECT system_identifier::text FROM pg_control_system()"
                            ).fetchone()
            w.system_identifier = str(row[0]) if row else None
    if w.wal_level not in ("replica", "logical"):
        w.problems.append(f"wal_level is {w.wal_level or '?'}: the WAL cannot rebuild the "
                          "database (needs replica)")
    if w.archive_mode not in ("on", "always"):
        w.problems.append("WAL archiving is off (archive_mode): no point-in-time recovery, "
                          "only restores of backups")
    elif not w.archive_command and not w.archive_library:
        w.problems.append("archive_mode is on but no archive_command is set")
    if restore_command:
        w.restore_command, w.method = restore_command, "given"
    elif w.archive_mode in ("on", "always"):
        w.restore_command, w.method, w.archive_dir = restore_command_for(w.archive_command)
        if w.restore_command is None and (w.archive_command or w.archive_library):
            # (the command itself is not repeated: it may carry an archive's credentials)
            what = "its archive_command" if w.archive_command else \
                f"archive_library {w.archive_library}"
            w.problems.append(f"cannot derive a restore_command from {what}: pass "
                              "--restore-command")
        if w.method in ("pgbackrest", "wal-g") and w.method not in w.tools:
            w.problems.append(f"the archive is written by {w.method}, which is not installed "
                              "here")
    return w


# ---------------------------------------------------------------------------- base backups
class BaseBackup(BaseModel):
    """A physical base backup (pg_basebackup -Ft) for point-in-time recovery."""

    id: str
    started_at: str
    finished_at: str  # recovery can reach any time after this (with the archive)
    database: str  # redacted DSN it was taken through
    system_identifier: str
    server_version: str
    timeline: int | None = None
    start_lsn: str | None = None
    end_lsn: str | None = None
    tool: str
    files: list[StoredFile] = Field(default_factory=list)
    size_bytes: int = 0

    @property
    def finished(self) -> datetime:
        return as_time(self.finished_at) or _now()


def _server_identity(dsn: str) -> tuple[str, int, str]:
    with _pg_connect(dsn, autocommit=True, application_name="lockplane backup base") as c:
        sysid = str(c.execute("SELECT system_identifier::text FROM pg_control_system()"
                              ).fetchone()[0])  # type: ignore[index]
        return sysid, c.info.server_version, str(c.execute("SHOW server_version"
                                                           ).fetchone()[0])  # type: ignore[index]


def create_base_backup(dsn: str, storage: Storage, *,
                       report: Reporter | None = None) -> BaseBackup:
    """pg_basebackup -Ft -X stream -c fast of the server behind ``dsn`` into the storage
    (needs the REPLICATION privilege). Metadata is written last."""
    report = _quiet(report)
    storage.check()
    sysid, version_num, version = _server_identity(dsn)
    tool = pgtools.find_tool("pg_basebackup", version_num)
    backup_id = new_backup_id()
    conninfo, env = pgtools.conninfo_and_env(dsn, "lockplane backup base", tool=tool.path)
    prefix = f"{BASE_DIR}/{backup_id}"
    started = _now()
    with tempfile.TemporaryDirectory(prefix="lockplane-base-") as tmp:
        out = Path(tmp) / "data"
        report(f"pg_basebackup {tool.version} -Ft -X stream of {redact(dsn)}")
        try:
            pgtools.run_tool([tool.path, "-D", str(out), "-Ft", "-X", "stream", "-c", "fast",
                              "-w", "-l", f"lockplane {backup_id}", "-d", conninfo], env,
                             "pg_basebackup")
            finished = _now()
            files = _describe_files(out, 2)
            storage.put_dir(f"{prefix}/data", out)
        except BaseException:
            with contextlib.suppress(Exception):
                storage.delete_prefix(prefix)
            raise
        timeline = start = end = None
        with contextlib.suppress(OSError, ValueError, KeyError, IndexError):
            ranges = json.loads((out / "backup_manifest").read_text())["WAL-Ranges"]
            timeline, start, end = ranges[0]["Timeline"], ranges[0]["Start-LSN"], \
                ranges[-1]["End-LSN"]
    base = BaseBackup(id=backup_id, started_at=started.isoformat(timespec="seconds"),
                      finished_at=finished.isoformat(timespec="milliseconds"),
                      database=redact(dsn), system_identifier=sysid, server_version=version,
                      timeline=timeline, start_lsn=start, end_lsn=end,
                      tool=f"pg_basebackup {tool.version} -Ft -X stream", files=files,
                      size_bytes=sum(f.size for f in files))
    storage.put_bytes(f"{prefix}/{BASE_FILE}", (base.model_dump_json(indent=2) + "\n").encode())
    return base


def list_base_backups(storage: Storage, system_identifier: str | None = None,
                      ) -> list[BaseBackup]:
    """Complete base backups in the storage (newest first), optionally of one server."""
    storage.check()
    out = []
    for name in storage.list_dirs(BASE_DIR):
        try:
            raw = storage.get_bytes(f"{BASE_DIR}/{name}/{BASE_FILE}")
        except StorageError as exc:
            if "not found" in exc.message:
                continue
            raise
        try:
            b = BaseBackup.model_validate_json(raw)
        except ValueError:
            raise BadInput(f"{storage.url}/{BASE_DIR}/{name}/{BASE_FILE}: not a Lockplane base "
                           "backup") from None
        if system_identifier is None or b.system_identifier == system_identifier:
            out.append(b)
    return sorted(out, key=lambda b: (b.finished_at, b.id), reverse=True)


def nearest_base_backup(storage: Storage, system_identifier: str | None,
                        when: datetime) -> BaseBackup | None:
    for b in list_base_backups(storage, system_identifier):
        if b.finished <= when:
            return b
    return None


# ---------------------------------------------------------------------------- PITR
@dataclass
class RecoveredInstance:
    data_dir: str
    port: int
    dsn: str  # no password: the source's user, on 127.0.0.1:port
    log: str
    base_backup_id: str
    target_time: datetime
    seconds: float
    stop_command: str
    timeline: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"data_dir": self.data_dir, "port": self.port, "dsn": self.dsn, "log": self.log,
                "base_backup": self.base_backup_id, "target_time": self.target_time.isoformat(),
                "seconds": self.seconds, "stop_command": self.stop_command,
                "timeline": self.timeline}


def flush_archive(live_dsn: str, wait_s: float = ARCHIVE_WAIT_S,
                  report: Reporter | None = None) -> str | None:
    """Ask the server to finish its current WAL segment (pg_switch_wal) and wait until
    the archiver has it, so the archive reaches the present. A note (not an error) when
    that is not allowed or takes too long."""
    report = _quiet(report)
    try:
        with _pg_connect(live_dsn, autocommit=True,
                         application_name="lockplane recover") as c:
            segment = str(c.execute("SELECT pg_walfile_name(pg_switch_wal())"
                                    ).fetchone()[0])  # type: ignore[index]
            report(f"asked the server to archive WAL up to segment {segment} (pg_switch_wal)")
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline:
                row = c.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()
                if row and row[0] and str(row[0])[:24] >= segment:
                    return None
                time.sleep(0.2)
            return (f"the archiver had not archived {segment} after {wait_s:.0f} s: the most "
                    "recent writes may be missing from the archive")
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"could not switch WAL segments ({redact(first)}): relying on the archive as is"


def _extract(tar: Path, dest: Path) -> None:
    with tarfile.open(tar) as tf:
        kw: dict[str, Any] = {"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}
        tf.extractall(dest, **kw)  # noqa: S202 - our own verified pg_basebackup output


def _verify(base: BaseBackup, local: Path) -> None:
    for f in base.files:
        p = local / f.path
        if not p.is_file() or p.stat().st_size != f.size or _sha256(p) != f.sha256:
            raise BackupCorrupt(f"base backup {base.id} is corrupt: {f.path} is missing or "
                                "differs from its record")


def recover_to_time(storage: Storage, live_dsn: str, when: datetime, data_dir: str | Path,
                    *, port: int | None = None, restore_command: str | None = None,
                    base_backup_id: str | None = None, switch_wal: bool = True,
                    report: Reporter | None = None) -> RecoveredInstance:
    """Rebuild the live server as it was at ``when`` in a NEW instance: the nearest base
    backup before it, extracted into ``data_dir`` (must not exist, or be empty), WAL
    replayed from the archive up to ``when``, promoted, left running on 127.0.0.1:``port``
    (a free one by default). The live server is only read (and asked for pg_switch_wal)."""
    from .cluster import Cluster, free_port, own_tree

    report = _quiet(report)
    started = time.monotonic()
    archive = detect_wal_archive(live_dsn, restore_command)
    if not archive.usable:
        why = archive.problems[0] if archive.problems else "no restore_command"
        raise BadInput(f"no point-in-time recovery of {redact(live_dsn)}: {why}")
    assert archive.restore_command is not None
    if base_backup_id:
        base = next((b for b in list_base_backups(storage) if b.id == base_backup_id), None)
        if base is None:
            raise BadInput(f"unknown base backup {base_backup_id!r} in {storage.url}")
    else:
        base = nearest_base_backup(storage, archive.system_identifier, when)
    if base is None:
        have = list_base_backups(storage, archive.system_identifier)
        oldest = f"the oldest is {have[-1].id}, finished {stamp(have[-1].finished)}" if have \
            else "there is none (lockplane backup base)"
        raise BadInput(f"no base backup of {redact(live_dsn)} finished before {stamp(when)} "
                       f"in {storage.url}: {oldest}")
    if base.finished > when:
        raise BadInput(f"base backup {base.id} finished at {stamp(base.finished)}, after "
                       f"{stamp(when)}")
    if when > _now():
        raise BadInput(f"{stamp(when)} is in the future")
    data = Path(data_dir).expanduser().resolve()
    if data.exists() and (not data.is_dir() or any(data.iterdir())):
        raise BadInput(f"--into {data} exists and is not empty: give a new directory")
    _reachable(data)
    if switch_wal:
        note = flush_archive(live_dsn, report=report)
        if note:
            report(note)
    with _pg_connect(live_dsn, autocommit=True) as c:
        major = c.info.server_version // 10000
        user = str(conninfo_to_dict(live_dsn).get("user") or c.info.user or "postgres")
    port = port or free_port()
    cluster = Cluster(data, port=port, major=major,
                      log=data.parent / f"{data.name}.log")
    data.parent.mkdir(parents=True, exist_ok=True)
    data.mkdir(mode=0o700, exist_ok=True)
    data.chmod(0o700)
    prefix = f"{BASE_DIR}/{base.id}/data"
    try:
        with storage.fetched(prefix, [f.path for f in base.files]) as local:
            _verify(base, local)
            report(f"extracting base backup {base.id} into {data}")
            _extract(local / "base.tar", data)
            if (local / "pg_wal.tar").is_file():
                (data / "pg_wal").mkdir(exist_ok=True)
                _extract(local / "pg_wal.tar", data / "pg_wal")
        for name in ("standby.signal", "postmaster.pid", "postmaster.opts"):
            (data / name).unlink(missing_ok=True)
        (data / "recovery.signal").touch()
        data.chmod(0o700)
        own_tree(data)
        cluster.configure({
            "restore_command": archive.restore_command_into(data),
            "recovery_target_time": when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00"),
            "recovery_target_action": "promote",
            # The copy must never write into the live server's archive, nor be a replica.
            "archive_mode": "off", "primary_conninfo": "",
            "port": str(port), "listen_addresses": "127.0.0.1",
            "unix_socket_directories": "",
        })
        report(f"replaying WAL up to {stamp(when)} on port {port} (log {cluster.log})")
        try:
            cluster.start(wait_s=int(RECOVERY_WAIT_S))
            dsn = cluster.dsn(user=user, dbname=_dbname(live_dsn) or "postgres")
            timeline = _wait_promoted(cluster, dsn)
        except (BadInput, ExecutionFailed) as exc:
            said = _archive_tool_error(cluster.log)
            if said is None:
                raise
            # PostgreSQL only says recovery ended early; the archive tool says why.
            failed = BadInput if isinstance(exc, BadInput) else ExecutionFailed
            raise failed(f"{exc.message}; restore_command ({archive.method}) failed: "
                         f"{said}") from None
    except BaseException:
        with contextlib.suppress(Exception):
            cluster.stop("immediate")
        raise
    return RecoveredInstance(str(data), port, dsn, str(cluster.log), base.id, when,
                             round(time.monotonic() - started, 3), cluster.stop_command(),
                             timeline)


def _archive_tool_error(log: Path) -> str | None:
    """The last error pgBackRest or WAL-G wrote into the server log while fetching WAL
    (a missing segment is no error: they say nothing, or "not found", for that)."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return None
    hits = [ln.strip() for ln in lines
            if re.match(r"^(?:ERROR: \[\d+\]|ERROR: \d{4}/\d\d/\d\d )", ln)]
    return redact(hits[-1])[:300] if hits else None


def _reachable(data: Path) -> None:
    """As root the server runs as nobody: every directory above ``data`` must let it in."""
    from .cluster import server_user

    if server_user() is None:
        return
    for parent in data.parents:
        if parent.exists() and not parent.stat().st_mode & 0o001:
            raise BadInput(f"--into {data}: the server runs as nobody (Lockplane runs as "
                           f"root) and cannot enter {parent}; choose a directory under one "
                           "that others may traverse (chmod o+x), e.g. /var/tmp")


def _wait_promoted(cluster: Any, dsn: str) -> int | None:
    deadline = time.monotonic() + RECOVERY_WAIT_S
    admin = dsn.rsplit("/", 1)[0] + "/postgres"
    while time.monotonic() < deadline:
        if not cluster.running():
            raise ExecutionFailed(f"the recovered instance stopped: {cluster.log_tail()}")
        with contextlib.suppress(psycopg.OperationalError):
            with psycopg.connect(admin, autocommit=True, connect_timeout=5) as c:
                if not c.execute("SELECT pg_is_in_recovery()").fetchone()[0]:  # type: ignore[index]
                    row = c.execute("SELECT timeline_id FROM pg_control_checkpoint()"
                                    ).fetchone()
                    return int(row[0]) if row else None
        time.sleep(0.3)
    raise ExecutionFailed(f"the recovered instance was still replaying WAL after "
                          f"{RECOVERY_WAIT_S:.0f} s ({cluster.log_tail()}); it is left running "
                          f"in {cluster.data}")


class PostgresPointInTime(PointInTime):
    """Recovery to an exact time from the server's WAL archive and base backups."""

    def archive(self, live_dsn: str, restore_command: str | None = None) -> WalArchive:
        return detect_wal_archive(live_dsn, restore_command)

    def base_backups(self, storage: Storage, system_identifier: str | None = None,
                     ) -> list[BaseBackup]:
        return list_base_backups(storage, system_identifier)

    def create_base_backup(self, dsn: str, storage: Storage, report: Reporter) -> BaseBackup:
        return create_base_backup(dsn, storage, report=report)

    def recover(self, storage: Storage, live_dsn: str, when: datetime, data_dir: str | Path,
                *, port: int | None, restore_command: str | None,
                base_backup_id: str | None, switch_wal: bool,
                report: Reporter) -> RecoveredInstance:
        return recover_to_time(storage, live_dsn, when, data_dir, port=port,
                               restore_command=restore_command,
                               base_backup_id=base_backup_id, switch_wal=switch_wal,
                               report=report)
