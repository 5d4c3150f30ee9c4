"""What changed since a backup: the schema in words, and per table the rows added,
deleted and changed, by primary key (``lockplane backup compare``).

The backup's engine does the work (PostgreSQL: a temporary copy on a server and two
key-ordered COPY streams merged client-side; SQLite: the backup's file ATTACHed
read-only to a connection on the live file, compared by primary key or rowid).
"""

from __future__ import annotations

from collections.abc import Callable

from ..dsn import redact
from ..errors import BadInput
from .core import load_manifest
from .engine import engine_for, engine_of
from .rows import CompareReport, TableComparison
from .storage import Storage

Reporter = Callable[[str], None]


def compare_backup(storage: Storage, backup_id: str, live_dsn: str, *,
                   server_dsn: str | None = None, jobs: int = 1,
                   tables: list[str] | None = None,
                   report: Reporter | None = None) -> CompareReport:
    """Compare the backup ``backup_id`` with the live database at ``live_dsn``."""
    engine = engine_for(live_dsn)  # a server without backups: said before anything
    manifest = load_manifest(storage, backup_id)
    if engine_of(manifest) is not engine:
        raise BadInput(f"backup {manifest.id} is a {engine.name} backup; {redact(live_dsn)} "
                       "is not")
    return engine.compare(storage, manifest, live_dsn, server_dsn=server_dsn, jobs=jobs,
                          tables=tables, report=report or (lambda _m: None))


__all__ = ["CompareReport", "TableComparison", "compare_backup"]
