"""Runbooks: take a backup on a schedule; validate the newest one on a schedule.

backup-create: pg_dump -Fd (or SQLite's online backup) with a manifest of per-table
counts and checksums, into a BackupStorage block. backup-validate: restore the newest
backup into a temporary database, check counts, checksums and schema, measure the
restore time (RTO). Both publish an artifact, post to Slack when they fail, and keep
their state (last backup, last good backup, last validation) next to the backups, where
it survives server restarts and ``lockplane backup status`` reads it.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.utilities.annotations import quote

from blocks.backup_storage import BackupStorage
from blocks.database_target import DatabaseTarget
from flows.targets import no_passwords, resolve_target
from lockplane.backup import Manifest, ValidationReport
from lockplane.dsn import redact
from lockplane.errors import LockplaneError
from tasks.backup_tasks import (
    create_backup_task,
    latest_backup_task,
    resolve_storage,
    validate_backup_task,
)
from tasks.migration_tasks import load_schema_task
from tasks.notify_tasks import notify_task


def manifest_markdown(m: Manifest, where: str) -> str:
    rows = "\n".join(f"| {t.qualified} | {t.rows:,} | `{t.checksum}` |" for t in m.tables)
    pos = f"#{m.history.last_migration_id}" if m.history else "none"
    return (f"# Backup {m.id}\n\n{m.database} → {where}\n\n"
            f"- tool: {m.tool}; server {m.server_version}\n- size: {m.size_bytes:,} bytes "
            f"in {len(m.files)} file(s); took {m.duration_s:.1f} s\n- schema hash: "
            f"`{m.schema_hash[:16]}`; last migration: {pos}\n\n"
            f"| table | rows | checksum |\n|---|---:|---|\n{rows}\n")


def validation_markdown(r: ValidationReport, m_id: str) -> str:
    checks = "\n".join(f"| {c.name} | {'ok' if c.ok else '**FAIL**'} | {c.detail} |"
                       for c in r.checks)
    notes = "".join(f"- {n}\n" for n in r.notes)
    return (f"# Validation of backup {m_id}: {'passed' if r.ok else 'FAILED'}\n\n"
            f"Measured RTO: **{r.rto_s:.1f} s** (restore {r.restore_s:.1f} s)\n\n"
            f"| check | result | detail |\n|---|---|---|\n{checks}\n\n{notes}")


def _reason(exc: BaseException) -> str:
    """One line for Slack (notify_task redacts passwords)."""
    if isinstance(exc, LockplaneError):
        return exc.message
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _label(target: str | DatabaseTarget) -> str:
    return redact(target) if isinstance(target, str) else target.display_dsn


@no_passwords
@flow(name="backup-create", description=__doc__)
def backup_create(target: str | DatabaseTarget, storage: str | BackupStorage,
                  jobs: int = 2, notify: str | None = None) -> dict[str, Any]:
    """Back up ``target`` into ``storage`` (a BackupStorage block name, or a path)."""
    label = _label(target)
    # Any failure is news, however it fails: the target or the storage unreachable, the
    # client tools missing, pg_dump failing.
    try:
        db = resolve_target(target)
        label = db.label
        store = resolve_storage(storage)
        m = create_backup_task(db.dsn, store, jobs)
    except Exception as exc:
        notify_task(notify, f"backup of {label} failed: {_reason(exc)}")
        raise
    create_markdown_artifact(manifest_markdown(m, store.url), key=f"backup-{db.slug}",
                             description=f"Backup of {db.label}")
    get_run_logger().info("backup %s of %s: %d table(s), %d row(s), %d bytes in %.1f s",
                          m.id, db.label, len(m.tables), m.total_rows, m.size_bytes,
                          m.duration_s)
    return {"backup_id": m.id, "rows": m.total_rows, "size_bytes": m.size_bytes,
            "schema_hash": m.schema_hash}


@no_passwords
@flow(name="backup-validate", description=__doc__)
def backup_validate(target: str | DatabaseTarget, storage: str | BackupStorage,
                    backup_id: str | None = None, desired_schema: str | None = None,
                    jobs: int = 2, notify: str | None = None) -> dict[str, Any]:
    """Restore ``backup_id`` (default: the target's newest backup) into a temporary
    database on the target's shadow server and check it; fail (and notify) if not sound."""
    logger = get_run_logger()
    label = _label(target)
    # Any failure is news: a corrupt backup, none to validate, the storage or the server
    # for the temporary copy unreachable, the desired schema not loading.
    try:
        db = resolve_target(target)
        label = db.label
        store = resolve_storage(storage)
        chosen = backup_id or latest_backup_task(store, redact(db.dsn))
        if not chosen:
            raise LockplaneError(f"no backup of {db.label} in {store.url} to validate")
        desired = None
        if desired_schema:
            desired = load_schema_task(desired_schema, dialect=db.dialect,
                                       server_dsn=db.scratch_server,
                                       allowed_extensions=db.allowed_extensions)
        report = validate_backup_task(store, chosen, db.shadow_dsn or db.dsn, jobs,
                                      quote(desired), db.dsn)
    except Exception as exc:
        notify_task(notify, f"backup validation of {label} failed: {_reason(exc)}")
        raise
    create_markdown_artifact(validation_markdown(report, chosen),
                             key=f"backup-validation-{db.slug}",
                             description=f"Backup validation of {db.label}")
    if not report.ok:
        failed = "; ".join(f"{c.name}: {c.detail}" for c in report.failures)
        message = f"backup {chosen} of {db.label} failed validation: {failed}"
        notify_task(notify, message)
        raise LockplaneError(message)
    logger.info("backup %s of %s passed: RTO %.1f s; %s", chosen, db.label, report.rto_s,
                "; ".join(report.notes))
    return report.to_json()
