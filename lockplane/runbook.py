"""Recovery runbooks: how to undo one migration, and what each way back loses.

``build_runbook(plan, ...)`` writes the procedure for a plan (applied or about to be):

* **SQL rollback** — the plan's own rollback steps; what they destroy is counted on the
  live target (lockplane.stake: "loses 1,243 values"), and forward steps that already
  destroyed data are named (the SQL rollback rebuilds their structure, not their rows).
* **Backup restore** — the backup taken before the migration (apply's ``backup_before``:
  reason "before apply of plan <id>"; otherwise the newest backup before the migration's
  start in lockplane.migrations); it loses every write since that backup, counted per
  table against the live database.
* **Point-in-time recovery** — when the server archives WAL and a base backup precedes
  the migration: back to just before it started, in a new instance.

Each path comes with the exact commands and the checks to run after it. Commands never
carry a password: a target with one is written as ``--target-environment NAME`` or
``"$DATABASE_URL"``.
"""

from __future__ import annotations

import contextlib
import shlex
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .backup.manifest import Manifest
from .backup.pitr import (
    Migration,
    RecoveryPlan,
    ago,
    as_time,
    migrations,
    plan_recovery,
    stamp,
)
from .backup.storage import Storage
from .ci_report import code, text
from .dsn import holds_password, redact
from .errors import BadInput, LockplaneError
from .integrity import plan_id
from .plan import Plan, rollback_plan

BEFORE_APPLY = "before apply of plan "


# ---------------------------------------------------------------------------- the backup
@dataclass
class BackupBefore:
    """The backup that holds the database as it was before a migration."""

    plan_id: str
    backup: Manifest
    migration: Migration | None
    how: str  # why this backup
    recovery: RecoveryPlan  # the timeline from it, and what restoring it loses now

    def explain(self) -> str:
        ran = (f"migration #{self.migration.id} started {stamp(self.migration.started_at)}"
               if self.migration else "the migration is not in lockplane.migrations")
        return f"Backup {self.backup.id} ({self.how}); {ran}."


def _applied_record(plan: Plan, history: list[Migration]) -> Migration | None:
    pid = plan_id(plan)
    runs = [m for m in history if m.plan_id == pid]
    done = [m for m in runs if m.result == "applied"]
    return (done or runs or [None])[-1]


def find_backup_before(plan: Plan, live_dsn: str, storage: Storage,
                       history: list[Migration] | None = None,
                       ) -> tuple[Manifest | None, Migration | None, str]:
    """``(backup, migration record, how it was chosen)``; the backup is None when there
    is none before the migration."""
    from .backup.pitr import backups_of

    pid = plan_id(plan)
    if history is None:
        history = migrations(live_dsn)
    record = _applied_record(plan, history)
    found = backups_of(storage, live_dsn)  # newest first
    tagged = [m for m in found if (m.reason or "") == BEFORE_APPLY + pid]
    if record is not None:
        tagged = [m for m in tagged if (as_time(m.created_at) or record.started_at)
                  <= record.started_at + timedelta(seconds=1)]
    if tagged:
        return tagged[0], record, "taken by apply right before this plan ran (backup_before)"
    if record is None:
        return None, None, "the plan was never applied to this database"
    for m in found:
        made = as_time(m.created_at)
        if made is not None and made <= record.started_at:
            return m, record, (f"the newest backup before migration #{record.id} started, "
                               f"{_gap(made, record.started_at)} earlier")
    return None, record, f"no backup was taken before migration #{record.id} started"


def _gap(a: datetime, b: datetime) -> str:
    return ago(a, b).removesuffix(" ago")


def backup_before_plan(plan: Plan, live_dsn: str, storage: Storage, *,
                       jobs: int = 2) -> BackupBefore:
    """The backup to restore to undo ``plan`` (bad input when there is none), with what
    restoring it loses now."""
    history = migrations(live_dsn)
    backup, record, how = find_backup_before(plan, live_dsn, storage, history)
    pid = plan_id(plan)
    if backup is None:
        raise BadInput(f"no backup of {redact(live_dsn)} before plan {pid[:12]} in "
                       f"{storage.url}: {how}")
    recovery = plan_recovery(storage, live_dsn, datetime.now(UTC), jobs=jobs,
                             backup_id=backup.id, target_label=None)
    return BackupBefore(pid, backup, record, how, recovery)


# ---------------------------------------------------------------------------- the runbook
@dataclass
class SqlPath:
    available: bool
    steps: list[Any] = field(default_factory=list)  # rollback plan steps
    stakes: list[Any] = field(default_factory=list)  # per forward step: Stake | None
    destroyed_forward: list[str] = field(default_factory=list)  # data the forward plan lost
    # data the forward plan destroyed after archiving it, which the rollback puts back
    archived_forward: list[str] = field(default_factory=list)
    reason: str | None = None  # why not available

    @property
    def values_lost(self) -> int:
        return sum(s.rows or 0 for s in self.stakes if s is not None and s.counted)

    def summary(self, *, markdown: bool = False) -> str:
        """In words; ``markdown``: what comes from the plan or a database as inert text."""
        said = (lambda x: text(x, None)) if markdown else str
        if not self.available:
            return f"not available: {said(self.reason)}"
        parts = []
        counted = [s for s in self.stakes if s is not None]
        if counted:
            parts.append(f"loses {self.values_lost:,} value(s) (counted on the live target)")
            unknown = [s for s in counted if not s.counted and s.status != "missing"]
            if unknown:
                parts.append(f"{len(unknown)} stake(s) could not be counted")
        elif self.steps:
            parts.append("loses no data written since (nothing its undo destroys)")
        else:
            parts.append("nothing to undo")
        if self.archived_forward:
            parts.append("puts back from Lockplane's archive what the migration destroyed ("
                         + "; ".join(said(d) for d in self.archived_forward) + "), except "
                         "values beyond the archive's row limit or written while the step ran")
        if self.destroyed_forward:
            parts.append("cannot bring back what the migration destroyed ("
                         + "; ".join(said(d) for d in self.destroyed_forward) + ")")
        return "; ".join(parts)


@dataclass
class Runbook:
    plan: Plan
    plan_path: str
    plan_id: str
    target: str | None  # redacted
    flags: tuple[str, str]  # how commands name the target: --target ..., --from ...
    generated: datetime
    migration: Migration | None
    sql: SqlPath
    backup: Manifest | None
    backup_how: str
    recovery: RecoveryPlan | None  # from the backup (its loss) and the archive
    pitr_to: datetime | None
    pitr_base: Any = None  # the base backup point-in-time recovery starts from
    notes: list[str] = field(default_factory=list)

    def headline(self) -> str:
        b = ("backup restore: loses " + self.backup_loss()) if self.backup is not None else \
            "no backup before it"
        return f"SQL rollback: {self.sql.summary()}; {b}"

    def backup_loss(self) -> str:
        if self.backup is None:
            return "no backup"
        if self.recovery is not None and self.recovery.loss is not None:
            return self.recovery.loss.summary()
        made = as_time(self.backup.created_at)
        return f"every write since backup {self.backup.id}" + (
            f" ({ago(made, self.generated).removesuffix(' ago')})" if made else "")

    def recommendation(self) -> str:
        if not self.sql.available:
            return ("Restore the backup: the plan has no SQL rollback." if self.backup
                    else "Neither path is ready: take a backup before applying this plan.")
        if self.sql.destroyed_forward and self.backup is not None:
            return ("The migration destroyed data that only the backup holds: restore the "
                    "backup into a new database and merge what was written since, or accept "
                    "the loss and roll back with SQL.")
        if self.sql.values_lost == 0:
            return "SQL rollback: it loses nothing that was written since."
        # The migration destroyed nothing: a restore loses what the SQL rollback loses
        # (the new objects did not exist then) plus every other write since the backup.
        return ("SQL rollback: a backup restore would lose the same values and every other "
                "write since the backup as well.")

    # -- markdown -----------------------------------------------------------------------
    def markdown(self) -> str:
        p, pid = self.plan, self.plan_id
        t, f = self.flags
        # Prose and names come from the plan file (descriptions and messages are not
        # covered by its plan_id, so a signed plan's can be edited) and from databases:
        # each is one line of inert text, and what goes into a command is quoted for the
        # shell. A description holding '\n## A. SQL rollback\n```bash ...' put its own
        # "rollback" commands into the runbook on 8c7a847.
        path = shlex.quote(self.plan_path)
        lines = [f"# Recovery runbook: plan {pid[:12]}", ""]
        lines.append(f"- plan file: {code(self.plan_path)} ({len(p.steps)} step(s), worst "
                     f"safety **{p.worst_safety().value}**)")
        if self.target:
            lines.append(f"- target: {code(self.target)}")
        if self.migration is not None:
            m = self.migration
            lines.append(f"- applied: migration #{m.id}, {m.result}, started "
                         f"{stamp(m.started_at)}" + (f" by {text(m.applied_by)}" if m.applied_by
                                                      else ""))
        elif self.target:
            lines.append("- not applied to this target yet (no row in lockplane.migrations)")
        lines.append(f"- generated {stamp(self.generated)}")
        lines += ["", "## Which way back", "", "| path | what it loses |", "|---|---|",
                  f"| SQL rollback | {self.sql.summary(markdown=True)} |",
                  "| Backup restore | " + (f"loses {self.backup_loss()}" if self.backup
                                           else "no backup before the migration") + " |"]
        if self.pitr_to is not None:
            lines.append(f"| Point-in-time recovery | every write after {stamp(self.pitr_to)} "
                         "(just before the migration), into a new instance |")
        lines += ["", f"**Recommendation:** {self.recommendation()}", ""]
        if self.recovery is not None:
            lines += [f"Timeline: {self.recovery.timeline_text()}", ""]

        lines += ["## A. SQL rollback", ""]
        if not self.sql.available:
            lines += [f"Not available: {text(self.sql.reason, None)}", ""]
        else:
            for i, s in enumerate(self.sql.steps, 1):
                lines.append(f"{i}. {text(s.description)} — {s.safety}")
                lines += [f"   - {text(msg, None)}" for msg in s.messages]
            if not self.sql.steps:
                lines.append("Nothing to undo.")
            for d in self.sql.archived_forward:
                lines.append(f"- {text(d)}: the rollback puts back the data this step archived "
                             "before it ran (while the archive table is there); values beyond "
                             "the archive's row limit, or written while the step ran, only a "
                             "backup has")
            for d in self.sql.destroyed_forward:
                lines.append(f"- ⚠ {text(d)}: the rollback recreates the structure, not the rows; "
                             "only a backup has them")
            lines += ["", "```bash",
                      f"lockplane plan-rollback --plan {path} {f}   # review",
                      f"lockplane rollback {path} {t}",
                      "```", "",
                      "A rollback step that loses data is refused at `--safety moderate` until "
                      "acknowledged (`--acknowledge rollback-loses-data@schema.table`).", ""]

        lines += ["## B. Restore the backup taken before the migration", ""]
        if self.backup is None:
            lines += [f"No backup: {self.backup_how}. Take one before applying "
                      f"(`lockplane backup create {t}`, or `backup_before` in "
                      "lockplane.toml).", ""]
        else:
            b = self.backup
            lines += [f"Backup **{b.id}** ({self.backup_how}), taken {b.created_at}: "
                      f"{len(b.tables)} table(s), {b.total_rows:,} row(s), schema "
                      f"`{b.schema_hash[:12]}`.", "", f"It loses {self.backup_loss()}."]
            loss = self.recovery.loss if self.recovery else None
            if loss is not None:
                lines += [f"- {text(c.message, None)}" for c in loss.tables[:20]]
            lines += ["", "```bash",
                      f"lockplane backup validate {shlex.quote(b.id)} {t}   # restorable? "
                      "counts?",
                      f"lockplane rollback --via-backup {path} {t}"
                      "   # into a new database <name>_before_<plan>",
                      f"lockplane rollback --via-backup {path} {t} "
                      "--force   # over the target, after typing its name",
                      "```", ""]

        if self.pitr_to is not None and self.pitr_base is not None:
            lines += ["## C. Point-in-time recovery", "",
                      f"Base backup {self.pitr_base.id} and the WAL archive rebuild "
                      f"the server as of {stamp(self.pitr_to)} in a new instance (another "
                      "port); copy what you need from it, or switch to it.", "", "```bash",
                      f"lockplane recover {t} --to {self.pitr_to.isoformat()} "
                      "--into /srv/pg/recovered",
                      "```", ""]
        elif self.recovery is not None and self.recovery.archive is not None:
            lines += ["## C. Point-in-time recovery", ""]
            lines += [f"- {d}" for d in self.recovery.archive.describe()]
            if self.recovery.archive.usable:
                lines.append("- no base backup precedes the migration (`lockplane backup "
                             "base`)")
            lines.append("")

        lines += ["## Verification after either path", ""]
        lines.append(f"1. The schema is the one before the migration: `lockplane plan {f} "
                     f"--to <schema before>` is empty, or `lockplane history "
                     f"{t}` and introspection show hash `{p.source_hash[:12]}`.")
        if self.backup is not None:
            top = sorted(self.backup.tables, key=lambda x: -x.rows)[:5]
            counts = ", ".join(f"{code(x.qualified)} {x.rows:,}" for x in top)
            lines.append(f"2. Row counts against the backup's manifest ({counts}): after a "
                         "restore they match exactly; after a SQL rollback they differ only "
                         "by the writes since.")
        else:
            lines.append("2. Row counts of the tables the plan touched look right "
                         "(`SELECT count(*) ...`).")
        tables = sorted({s.table for s in p.steps if s.table})
        if tables:
            lines.append(f"3. Foreign keys and constraints hold on "
                         f"{', '.join(code(x) for x in tables)}: "
                         "no `NOT VALID` constraint left (`SELECT conrelid::regclass, conname "
                         "FROM pg_constraint WHERE NOT convalidated`).")
        lines.append(f"{4 if tables else 3}. The application's smoke tests pass against the "
                     "database; then tell the team what was lost (the table above).")
        if self.notes:
            lines += ["", "Notes:"] + [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"


def _destroyed_by_forward(plan: Plan) -> tuple[list[str], list[str]]:
    """The forward steps that destroy data: those whose rollback cannot bring it back, and
    those that archive it first for their rollback to put back (a drop's refill)."""
    from .changes.base import REGISTRY

    gone, archived = [], []
    for s in plan.steps:
        if s.safety in ("lossy", "dangerous"):
            what = s.findings[0].message if s.findings else s.description
            said = f"{s.description} ({what})" if what != s.description else s.description
            refills = s.rollback is not None and any(
                getattr(REGISTRY.get(t.kind or ""), "puts_back_archived", False)
                for t in s.rollback.then)
            (archived if refills else gone).append(said)
    return gone, archived


def build_runbook(plan: Plan, plan_path: str, live_dsn: str | None,
                  storage: Storage | None, *, environment: str | None = None,
                  jobs: int = 2) -> Runbook:
    """The recovery procedure for ``plan`` on ``live_dsn`` (or in general without one)."""
    from .dialects import connect
    from .stake import count_rollback_stakes

    pid = plan_id(plan)
    notes: list[str] = []
    try:
        back = rollback_plan(plan)
        sql = SqlPath(True, back.steps)
    except BadInput as exc:
        sql = SqlPath(False, reason=exc.message)
    sql.destroyed_forward, sql.archived_forward = _destroyed_by_forward(plan)
    history: list[Migration] = []
    record = backup = recovery = None
    how = "no target given"
    pitr_to = pitr_base = None
    if live_dsn:
        if sql.available and any(s.rollback is not None and s.rollback.at_stake
                                  for s in plan.steps):
            with connect(live_dsn) as db:
                sql.stakes = count_rollback_stakes(plan, db)
            sql.steps = rollback_plan(plan, [[s.message] if s else [] for s in sql.stakes]
                                      ).steps
        history = migrations(live_dsn)
        record = _applied_record(plan, history)
        if storage is not None:
            backup, record, how = find_backup_before(plan, live_dsn, storage, history)
            if record is None and backup is None:
                # Not applied yet: the backup a restore would use is the newest one.
                from .backup.pitr import backups_of

                found = backups_of(storage, live_dsn)
                backup = found[0] if found else None
                how = ("the newest backup; the plan is not applied yet, so take a fresh one "
                       "right before applying") if backup else "no backup in " + storage.url
            before = record.started_at - timedelta(seconds=1) if record else \
                datetime.now(UTC)
            with contextlib.suppress(LockplaneError):
                recovery = plan_recovery(storage, live_dsn, datetime.now(UTC), jobs=jobs,
                                         backup_id=backup.id if backup else None,
                                         target_label=None)
            if recovery is None and backup is not None:
                notes.append("could not count what restoring the backup loses")
            if recovery is not None and recovery.archive is not None \
                    and recovery.archive.usable and record is not None:
                from .backup.pitr import nearest_base_backup

                pitr_base = nearest_base_backup(storage, live_dsn,
                                                recovery.archive.system_identifier,
                                                before)
                pitr_to = before if pitr_base is not None else None
    elif storage is None:
        notes.append("no backup storage given")
    return Runbook(plan, plan_path, pid, redact(live_dsn) if live_dsn else None,
                   target_flags(live_dsn, environment), datetime.now(UTC), record, sql,
                   backup, how, recovery, pitr_to, pitr_base, notes)


def target_flags(live: str | None, environment: str | None) -> tuple[str, str]:
    """``(--target ..., --from ...)`` naming the target in commands, never with a password."""
    if environment:
        env = shlex.quote(environment)
        return f"--target-environment {env}", f"--from-environment {env}"
    ref = '"$DATABASE_URL"' if live is None or holds_password(live) \
        else shlex.quote(redact(live))
    return f"--target {ref}", f"--from {ref}"
