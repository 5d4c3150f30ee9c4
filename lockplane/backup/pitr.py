"""Recovery to a point in time, whatever the server: the nearest backup, the timeline,
what a restore loses, and, where the server keeps an archive of its changes, recovery to
the exact time into a new instance.

Two ways back, both into something new (never over the live database unless asked):

* **Logical** (any backup of ``lockplane backup``): the newest backup taken at or before
  the time, restored into a new database. What it loses is counted against the live
  database: per table, the backup manifest's row count and checksum against the live
  ones ("public.users: 1,243 rows more now than in the backup"), and the migrations
  applied since (the migration history).
* **Point in time**, where the server's backup engine has one (``BackupEngine.
  point_in_time()``, a ``PointInTime``: PostgreSQL's WAL archive and base backups, in
  lockplane/dialects/postgres/pitr.py): a base backup taken before the time, plus the
  archive, replayed into a new instance up to the time.

Times are UTC; a time without a zone is read as UTC.
"""

from __future__ import annotations

import contextlib
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from ..dialects import get_dialect
from ..dsn import dialect_of, redact
from ..errors import BadInput, ExecutionFailed, LockplaneError
from .core import list_backups
from .engine import engine_for, engine_of
from .manifest import Manifest, TableStats, database_identity
from .storage import Storage

Reporter = Callable[[str], None]


def _quiet(report: Reporter | None) -> Reporter:
    return report or (lambda _msg: None)


def _now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------------- times
_AGO = re.compile(r"^\s*(?:-\s*)?(\d+(?:\.\d+)?)\s*(s|sec|secs|seconds?|m|min|mins|minutes?|"
                  r"h|hrs?|hours?|d|days?)\s*(?:ago)?\s*$", re.IGNORECASE)
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """An ISO 8601 time (``2025-01-02T03:04:05Z``, ``2025-01-02 03:04``; no zone = UTC),
    ``now``, or a duration ago (``90m``, ``2 hours ago``, ``-1d``); bad input otherwise."""
    now = now or _now()
    raw = text.strip()
    if raw.lower() == "now":
        return now
    m = _AGO.match(raw)
    try:
        if m:
            unit = m.group(2).lower()[0]
            return now - timedelta(seconds=float(m.group(1)) * _UNIT_S[unit])
        when = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except (ValueError, OverflowError):
        # (OverflowError: '99999999999 hours ago', or a time at the calendar's edge whose
        # zone moves it past year 1 or 9999: 'internal error' before)
        raise BadInput(f"--to {text!r} is not a time: give ISO 8601 (2025-01-02T03:04:05Z, "
                       "UTC when no zone is given, years 1 to 9999), 'now', or a duration "
                       "ago ('90m', '2 hours ago')") from None


def as_time(value: object) -> datetime | None:
    """A timestamp from a manifest or a state table (datetime, or ISO text) in UTC."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    with contextlib.suppress(BadInput):  # (what parse_time raises for text that is not one)
        return parse_time(str(value))
    return None


def ago(when: datetime, now: datetime | None = None) -> str:
    """``2 h 5 min ago``, ``40 s ago``, ``in 3 min``."""
    delta = ((now or _now()) - when).total_seconds()
    future, s = delta < 0, int(abs(delta))
    if s < 90:
        text = f"{s} s"
    elif s < 5400:
        text = f"{round(s / 60)} min"
    elif s < 172800:
        h, rest = divmod(s, 3600)
        text = f"{h} h" + (f" {rest // 60} min" if rest // 60 else "")
    else:
        text = f"{s // 86400} days"
    return f"in {text}" if future else f"{text} ago"


def stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# ---------------------------------------------------------------------------- history
@dataclass(frozen=True)
class Migration:
    """One row of the live database's migration history, for a timeline."""

    id: int
    plan_id: str
    started_at: datetime
    finished_at: datetime | None
    result: str
    applied_by: str | None
    steps_total: int
    plan: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        by = f" by {self.applied_by}" if self.applied_by else ""
        return (f"migration #{self.id} (plan {self.plan_id[:12]}, {self.steps_total} step(s), "
                f"{self.result}{by})")


def migrations(live_dsn: str, with_plans: bool = False) -> list[Migration]:
    """The live database's migration history (oldest first); empty when it has none."""
    cols = "id, plan_id, started_at, finished_at, result, applied_by, steps_total" + (
        ", plan" if with_plans else "")
    rows = engine_for(live_dsn).history(live_dsn, cols)
    out = []
    for r in rows:
        plan = None
        if with_plans:
            plan = r[7] if isinstance(r[7], dict) else json.loads(r[7])
        out.append(Migration(int(r[0]), str(r[1]), as_time(r[2]) or _now(), as_time(r[3]),
                             str(r[4]), r[5], int(r[6]), plan))
    return out


# ---------------------------------------------------------------------------- backups
def _same_database(manifest: Manifest, live_dsn: str) -> bool:
    return database_identity(manifest.database) == database_identity(redact(live_dsn))


def backups_of(storage: Storage, live_dsn: str) -> list[Manifest]:
    """Logical backups of the live database (newest first): those naming it exactly
    (redacted DSN); if none does, those of a database of the same name and dialect
    (the same database reached by another URL)."""
    found = list_backups(storage)
    exact = [m for m in found if _same_database(m, live_dsn)]
    if exact:
        return exact
    name = _dbname(live_dsn)
    engine = engine_for(live_dsn)
    return [m for m in found if name and m.database_name == name and engine_of(m) is engine]


def _dbname(dsn: str) -> str:
    from ..dialects import get_dialect

    with contextlib.suppress(Exception):
        return get_dialect(dialect_of(dsn)).database_name(dsn)
    return ""


def nearest_backup(storage: Storage, live_dsn: str, when: datetime) -> Manifest:
    """The newest backup of the live database taken at or before ``when``; bad input
    (exit 2, one line) when there is none."""
    found = backups_of(storage, live_dsn)
    if not found:
        raise BadInput(f"no backup of {redact(live_dsn)} in {storage.url} "
                       "(lockplane backup create)")
    for m in found:  # newest first
        made = as_time(m.created_at)
        if made is not None and made <= when:
            return m
    oldest = found[-1]
    raise BadInput(f"{stamp(when)} is before the oldest backup of {redact(live_dsn)} "
                   f"({oldest.id}, {stamp(as_time(oldest.created_at) or when)}): nothing to "
                   "recover it from")


# ---------------------------------------------------------------------------- what is lost
@dataclass(frozen=True)
class TableChange:
    table: str
    backup_rows: int | None  # None: not in the backup
    live_rows: int | None  # None: not in the live database
    changed: bool  # checksums differ

    @property
    def lost_rows(self) -> int:
        """Rows in the live table that the backup does not have (at least)."""
        if self.live_rows is None:
            return 0
        return max(0, self.live_rows - (self.backup_rows or 0))

    @property
    def message(self) -> str:
        t, b, n = self.table, self.backup_rows, self.live_rows
        if b is None:
            return (f"{t}: created after the backup; restoring loses the table and its "
                    f"{n:,} row(s)")
        if n is None:
            return f"{t}: dropped since the backup; restoring brings it back ({b:,} row(s))"
        if n > b:
            return (f"{t}: {n - b:,} row(s) inserted after the backup ({b:,} then, {n:,} now); "
                    "restoring loses them" + (" and other changes" if self.changed else ""))
        if n < b:
            return (f"{t}: {b - n:,} row(s) deleted since the backup ({b:,} then, {n:,} now); "
                    "restoring brings them back" + ("; other rows changed too"
                                                     if self.changed else ""))
        return f"{t}: same {n:,} row(s), but rows changed since the backup; restoring undoes that"


@dataclass
class RestoreLoss:
    """What restoring a backup over the live database would undo, counted now."""

    backup_id: str
    backup_at: datetime
    counted_at: datetime
    tables: list[TableChange]  # only the tables that differ
    unchanged: int  # tables identical to the backup
    migrations_after: list[Migration]
    error: str | None = None  # counting failed (the restore is still possible)
    # same rows as in the backup in another order (VACUUM FULL, CLUSTER): unchanged
    reordered: list[str] = field(default_factory=list)

    @property
    def rows_lost(self) -> int:
        return sum(t.lost_rows for t in self.tables)

    @property
    def window(self) -> str:
        return _span((self.counted_at - self.backup_at).total_seconds())

    def summary(self) -> str:
        if self.error:
            return f"could not count what a restore loses: {self.error}"
        parts = [f"{self.window} of writes since backup {self.backup_id}"]
        if self.rows_lost:
            parts.append(f"{self.rows_lost:,} row(s) inserted after the backup")
        back = sum(max(0, (t.backup_rows or 0) - (t.live_rows or 0)) for t in self.tables
                   if t.live_rows is not None)
        if back:
            parts.append(f"brings back {back:,} row(s) deleted since")
        changed = [t for t in self.tables if t.changed and not t.lost_rows
                   and (t.live_rows or 0) >= (t.backup_rows or 0)]
        if changed:
            parts.append(f"undoes updates in {len(changed)} table(s)")
        gone = [t for t in self.tables if t.backup_rows is None]
        if gone:
            parts.append(f"drops {len(gone)} table(s) created since")
        if self.migrations_after:
            parts.append(f"{len(self.migrations_after)} migration(s) applied since")
        if len(parts) == 1 and not self.tables:
            parts.append("no table differs from the backup")
        if self.reordered:
            # (the order changes with VACUUM FULL or CLUSTER, and with rows deleted and
            # put back, a merge from this very backup: the words name no one cause)
            named = ", ".join(self.reordered) if len(self.reordered) <= 3 else \
                f"{len(self.reordered)} table(s)"
            parts.append(f"{named}: the same rows as in the backup, in another order "
                         "(nothing lost there)")
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {"backup_id": self.backup_id, "backup_at": self.backup_at.isoformat(),
                "counted_at": self.counted_at.isoformat(), "rows_lost": self.rows_lost,
                "tables": [{"table": t.table, "backup_rows": t.backup_rows,
                            "live_rows": t.live_rows, "changed": t.changed,
                            "message": t.message} for t in self.tables],
                "unchanged_tables": self.unchanged, "reordered_tables": self.reordered,
                "migrations_after": [m.id for m in self.migrations_after],
                "summary": self.summary(), "error": self.error}


def _span(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 120:
        return f"{s} second(s)"
    if s < 7200:
        return f"{s // 60} minute(s)"
    if s < 172800:
        return f"{s // 3600} hour(s) {s % 3600 // 60} minute(s)"
    return f"{s // 86400} day(s)"


def live_table_stats(live_dsn: str, jobs: int = 2,
                     manifest: Manifest | None = None) -> list[TableStats]:
    """Counts and checksums of the live tables, computed as ``manifest``'s were (one
    read-only scan per table; row-hash-sum without a manifest)."""
    return engine_for(live_dsn).live_stats(live_dsn, jobs, manifest)


def _own(table: str) -> bool:
    """Lockplane's own state (lockplane.*, _lockplane_*): its history is reported as
    migrations, not as rows."""
    return table.startswith(("lockplane.", "_lockplane_"))


def restore_loss(manifest: Manifest, live_dsn: str, *, jobs: int = 2,
                 history: list[Migration] | None = None,
                 storage: Storage | None = None) -> RestoreLoss:
    """Compare the backup's manifest with the live database: per table, rows then and now
    and whether the checksums differ; and the migrations applied after the backup.

    A checksum that depends on row order (copy-crc32) differs for a table rewritten by
    VACUUM FULL or CLUSTER: with ``storage``, a table with the same count and another
    checksum is called changed only after an order-independent check (the backup
    engine's ``same_rows``: its data file against the live rows) says so."""
    backup_at = as_time(manifest.created_at) or _now()
    if history is None:
        history = migrations(live_dsn)
    last = manifest.history.last_migration_id if manifest.history else 0
    after = [m for m in history if m.id > last and m.result != "running"]
    driver_errors = get_dialect(dialect_of(live_dsn)).error_types()
    try:
        live = {t.qualified: t for t in live_table_stats(live_dsn, jobs, manifest)}
    except (*driver_errors, BadInput, ExecutionFailed) as exc:
        text = exc.message if isinstance(exc, BadInput) else str(exc).strip().splitlines()[0]
        return RestoreLoss(manifest.id, backup_at, _now(), [], 0, after, redact(text))
    then = {t.qualified: t for t in manifest.tables if not _own(t.qualified)}
    live = {k: v for k, v in live.items() if not _own(k)}
    changes, same = [], 0
    for name in sorted(set(live) | set(then)):
        a, b = then.get(name), live.get(name)
        if a is not None and b is not None and a.rows == b.rows and a.checksum == b.checksum:
            same += 1
            continue
        changes.append(TableChange(name, a.rows if a else None, b.rows if b else None,
                                   bool(a and b and a.checksum != b.checksum)))
    suspects = [c.table for c in changes if c.changed and c.backup_rows == c.live_rows]
    reordered: set[str] = set()
    if storage is not None and suspects:
        try:
            reordered = engine_for(live_dsn).same_rows(storage, manifest, live_dsn, suspects,
                                                       jobs)
        except (LockplaneError, *driver_errors, OSError):
            reordered = set()  # not decided: they stay 'changed'
    changes = [c for c in changes if c.table not in reordered]
    changes.sort(key=lambda c: (-c.lost_rows, c.table))
    return RestoreLoss(manifest.id, backup_at, _now(), changes, same + len(reordered), after,
                       reordered=sorted(reordered))


# ---------------------------------------------------------------------------- point in time
class Archive(Protocol):
    """What a server says about the archive of its changes (PostgreSQL: ``WalArchive``)."""

    problems: list[str]
    system_identifier: str | None

    @property
    def usable(self) -> bool: ...

    def describe(self) -> list[str]: ...


class BaseBackupRecord(Protocol):
    """A physical base backup recovery to a time starts from."""

    id: str

    @property
    def finished(self) -> datetime: ...


class RecoveredTo(Protocol):
    """A new instance recovered to a time."""

    dsn: str
    data_dir: str
    log: str
    seconds: float
    stop_command: str

    def to_json(self) -> dict[str, Any]: ...


class PointInTime(ABC):
    """A server's recovery to an exact time: its archive of changes and its base backups
    (``BackupEngine.point_in_time()``; PostgreSQL: lockplane/dialects/postgres/pitr.py)."""

    @abstractmethod
    def archive(self, live_dsn: str, restore_command: str | None = None) -> Archive:
        """What the server behind ``live_dsn`` archives, and how it is read back."""

    @abstractmethod
    def base_backups(self, storage: Storage, system_identifier: str | None = None,
                     ) -> list[Any]:
        """Complete base backups in the storage (newest first), optionally of one server."""

    @abstractmethod
    def create_base_backup(self, dsn: str, storage: Storage, report: Reporter) -> Any:
        """A base backup of the server behind ``dsn``, stored (its record written last)."""

    @abstractmethod
    def recover(self, storage: Storage, live_dsn: str, when: datetime, data_dir: str | Path,
                *, port: int | None, restore_command: str | None,
                base_backup_id: str | None, switch_wal: bool,
                report: Reporter) -> RecoveredTo:
        """The server as it was at ``when``, in a new instance in ``data_dir``."""

    def nearest_base_backup(self, storage: Storage, system_identifier: str | None,
                            when: datetime) -> Any:
        """The newest base backup finished at or before ``when``; None when there is none."""
        for b in self.base_backups(storage, system_identifier):
            if b.finished <= when:
                return b
        return None


def point_in_time_of(dsn: str) -> PointInTime | None:
    """The recovery to a time of the server behind ``dsn`` (its backup engine's); None
    when its dialect has none."""
    from ..dialects import get_dialect

    engine = get_dialect(dialect_of(dsn)).backup_engine()
    return engine.point_in_time() if engine is not None else None


@dataclass
class NoArchive:
    """The archive of a server whose dialect has no recovery to a time."""

    problems: list[str] = field(default_factory=lambda: [
        "point-in-time recovery needs PostgreSQL with WAL archiving"])
    system_identifier: str | None = None

    @property
    def usable(self) -> bool:
        return False

    def describe(self) -> list[str]:
        return list(self.problems)


def detect_wal_archive(live_dsn: str, restore_command: str | None = None) -> Archive:
    """What the server behind ``live_dsn`` archives (its point-in-time engine's word)."""
    pit = point_in_time_of(live_dsn)
    return NoArchive() if pit is None else pit.archive(live_dsn, restore_command)


def create_base_backup(dsn: str, storage: Storage, *,
                       report: Reporter | None = None) -> Any:
    """A base backup of the server behind ``dsn`` into the storage, for recovery to a
    time (PostgreSQL: pg_basebackup, needs the REPLICATION privilege)."""
    pit = point_in_time_of(dsn)
    if pit is None:
        raise BadInput("base backups are for PostgreSQL servers")
    return pit.create_base_backup(dsn, storage, _quiet(report))


def nearest_base_backup(storage: Storage, live_dsn: str, system_identifier: str | None,
                        when: datetime) -> Any:
    """The newest base backup of the server behind ``live_dsn`` (``system_identifier``)
    finished at or before ``when``; None when there is none."""
    pit = point_in_time_of(live_dsn)
    return None if pit is None else pit.nearest_base_backup(storage, system_identifier, when)


def recover_to_time(storage: Storage, live_dsn: str, when: datetime, data_dir: str | Path,
                    *, port: int | None = None, restore_command: str | None = None,
                    base_backup_id: str | None = None, switch_wal: bool = True,
                    report: Reporter | None = None) -> RecoveredTo:
    """Rebuild the live server as it was at ``when`` in a NEW instance in ``data_dir``
    (the live server is only read); bad input where its dialect cannot."""
    pit = point_in_time_of(live_dsn)
    if pit is None:
        raise BadInput(f"no point-in-time recovery of {redact(live_dsn)}: "
                       f"{NoArchive().problems[0]}")
    return pit.recover(storage, live_dsn, when, data_dir, port=port,
                       restore_command=restore_command, base_backup_id=base_backup_id,
                       switch_wal=switch_wal, report=_quiet(report))



# ---------------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class Event:
    at: datetime
    kind: str  # backup | base_backup | migration | target | now
    label: str


@dataclass
class RecoveryPlan:
    """Everything an operator needs to decide: where the time falls, from what it can be
    recovered, and what each way back loses."""

    target: str  # redacted live DSN
    when: datetime
    now: datetime
    backup: Manifest | None
    base_backup: BaseBackupRecord | None
    archive: Archive | None
    events: list[Event]
    loss: RestoreLoss | None
    notes: list[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        """Recovery to the exact time is possible (base backup + usable archive)."""
        return self.base_backup is not None and self.archive is not None \
            and self.archive.usable

    def timeline_text(self) -> str:
        return " → ".join(f"{e.label} ({ago(e.at, self.now)})" if e.kind != "now"
                          else e.label for e in self.events)

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target, "to": self.when.isoformat(), "now": self.now.isoformat(),
            "backup": self.backup.id if self.backup else None,
            "backup_created_at": self.backup.created_at if self.backup else None,
            "base_backup": self.base_backup.id if self.base_backup else None,
            "point_in_time": self.exact,
            "archive": self.archive.describe() if self.archive else [],
            "timeline": [{"at": e.at.isoformat(), "kind": e.kind, "label": e.label}
                         for e in self.events],
            "loss": self.loss.to_json() if self.loss else None, "notes": self.notes}

    def markdown(self) -> str:
        lines = [f"# Recovery of {self.target} to {stamp(self.when)}", "",
                 f"**Timeline:** {self.timeline_text()}", ""]
        lines += ["| when (UTC) | what |", "|---|---|"]
        lines += [f"| {stamp(e.at)[:19]} | {e.label} |" for e in self.events]
        lines.append("")
        if self.backup is not None:
            lines.append(f"**Backup restore** (backup {self.backup.id}, "
                         f"{self.backup.total_rows:,} rows in {len(self.backup.tables)} "
                         "tables): " + (self.loss.summary() if self.loss else "not counted"))
            if self.loss and self.loss.tables:
                lines += [""] + [f"- {t.message}" for t in self.loss.tables[:30]]
            lines.append("")
        if self.exact:
            assert self.base_backup is not None
            lines.append(f"**Point-in-time recovery** to exactly {stamp(self.when)}: base "
                         f"backup {self.base_backup.id} + the WAL archive; loses the writes "
                         f"after that time ({_span((self.now - self.when).total_seconds())}).")
        if self.archive is not None:
            lines += ["", "WAL archive:"] + [f"- {d}" for d in self.archive.describe()]
        if self.notes:
            lines += ["", "Notes:"] + [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"


def plan_recovery(storage: Storage, live_dsn: str, when: datetime, *, jobs: int = 2,
                  count: bool = True, restore_command: str | None = None,
                  backup_id: str | None = None,
                  target_label: str | None = "recovery target") -> RecoveryPlan:
    """Where ``when`` falls and how to get back to it. Bad input (exit 2) when nothing
    can recover it: no backup at or before it and no base backup with a WAL archive."""
    now = _now()
    if when > now + timedelta(seconds=5):
        raise BadInput(f"--to {stamp(when)} is in the future")
    archive = base = None
    notes: list[str] = []
    pit = point_in_time_of(live_dsn)
    if pit is not None:
        archive = pit.archive(live_dsn, restore_command)
        base = pit.nearest_base_backup(storage, archive.system_identifier, when)
        if archive.usable and base is None:
            notes.append("WAL is archived but no base backup was taken before that time "
                         "(lockplane backup base): only backup restores can reach it")
    backup: Manifest | None
    if backup_id:
        from .core import load_manifest

        backup = load_manifest(storage, backup_id)
    else:
        try:
            backup = nearest_backup(storage, live_dsn, when)
        except BadInput:
            if base is None or archive is None or not archive.usable:
                raise
            backup = None
    history = migrations(live_dsn)
    events: list[Event] = []
    if backup is not None:
        events.append(Event(as_time(backup.created_at) or now, "backup",
                            f"backup {backup.id}"))
    if base is not None:
        events.append(Event(base.finished, "base_backup", f"base backup {base.id}"))
    start = min((e.at for e in events), default=when)
    for m in history:
        if m.started_at >= start:
            events.append(Event(m.started_at, "migration", m.label))
    if target_label:
        events.append(Event(when, "target", target_label))
    events.sort(key=lambda e: (e.at, e.kind != "backup"))
    events.append(Event(now, "now", "now"))
    loss = restore_loss(backup, live_dsn, jobs=jobs, history=history, storage=storage) \
        if backup is not None and count else None
    return RecoveryPlan(redact(live_dsn), when, now, backup, base, archive, events, loss, notes)
