"""The per-server half of backups: what a dialect provides (``Dialect.backup_engine()``).

Everything in lockplane/backup/ is dialect-neutral: it asks the engine of the backup's
(or the target's) dialect to dump, restore, make a temporary read-only copy, read
counts and checksums, compare rows and merge them back. The engines live with their
dialects (lockplane/dialects/postgres/backup.py, lockplane/dialects/sqlite/backup.py);
a dialect without one has no backups yet, which is said in one line (exit 2).
"""

from __future__ import annotations

import contextlib
import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Any

from ..dsn import dialect_of, redact
from ..errors import BadInput

if TYPE_CHECKING:
    from .core import RestoredCopy
    from .manifest import Manifest, TableStats
    from .pitr import PointInTime
    from .rows import CompareReport, ExtractResult, RowMergeBase
    from .storage import Storage

Reporter = Callable[[str], None]
HISTORY_COLUMNS = "id, plan_id, started_at, finished_at, result, applied_by, steps_total"


class BackupEngine(ABC):
    """Backups of one kind of server."""

    name: str  # the dialect's name, as manifests record it
    # Whether a temporary copy is made on a server (``--server``) rather than in a file.
    copies_on_server: bool = False

    def point_in_time(self) -> PointInTime | None:
        """Recovery to an exact time from the server's archive of its changes and its base
        backups (lockplane.backup.pitr); None: only restores of backups."""
        return None

    # ------------------------------------------------------------ whole backups
    @abstractmethod
    def create(self, dsn: str, storage: Storage, backup_id: str, jobs: int,
               report: Reporter) -> Manifest:
        """Dump ``dsn`` into ``storage`` under ``backup_id``; the manifest (not stored)."""

    @abstractmethod
    def restore(self, storage: Storage, manifest: Manifest, target_dsn: str, *, jobs: int,
                force: bool, no_owner: bool, report: Reporter) -> bool:
        """Restore into ``target_dsn``; whether the database was created."""

    @abstractmethod
    def restored_copy(self, storage: Storage, manifest: Manifest, server_dsn: str | None, *,
                      jobs: int, report: Reporter,
                      ) -> contextlib.AbstractContextManager[RestoredCopy]:
        """The backup restored into a temporary read-only database, dropped on exit."""

    @abstractmethod
    def query(self, copy: RestoredCopy, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run ``sql`` read-only on a restored copy."""

    @abstractmethod
    def copy_stats(self, copy: RestoredCopy, jobs: int) -> list[TableStats]:
        """Counts and checksums of a restored copy, by its manifest's method."""

    def validated_copy(self, storage: Storage, manifest: Manifest, server_dsn: str | None, *,
                       jobs: int, report: Reporter,
                       ) -> contextlib.AbstractContextManager[tuple[RestoredCopy,
                                                                    list[TableStats]]]:
        """A restored copy and its stats (an engine may read the stats back while the
        restore still runs)."""
        return _copy_then_stats(self, storage, manifest, server_dsn, jobs, report)

    # ------------------------------------------------------------ the live database
    @abstractmethod
    def history(self, live_dsn: str, columns: str = HISTORY_COLUMNS
                ) -> list[tuple[Any, ...]]:
        """Rows of the live database's migration history (oldest first); none without."""

    @abstractmethod
    def live_stats(self, live_dsn: str, jobs: int, manifest: Manifest | None
                   ) -> list[TableStats]:
        """Counts and checksums of the live tables, computed as ``manifest``'s were."""

    def same_rows(self, storage: Storage, manifest: Manifest, live_dsn: str,
                  tables: list[str], jobs: int) -> set[str]:
        """Of ``tables`` (whose checksum differs from the manifest's while the counts are
        equal), those holding the same rows live as in the backup in another order.
        Engines whose checksums do not depend on row order have none."""
        return set()

    # ------------------------------------------------------------ rows back
    @abstractmethod
    def compare(self, storage: Storage, manifest: Manifest, live_dsn: str, *,
                server_dsn: str | None, jobs: int, tables: list[str] | None,
                report: Reporter) -> CompareReport:
        """The schema and, per table, rows added/deleted/changed since the backup."""

    @abstractmethod
    def extract(self, storage: Storage, manifest: Manifest, live_dsn: str, table: str,
                out: IO[str], *, where: str | None, on_conflict: str,
                server_dsn: str | None, jobs: int, report: Reporter) -> ExtractResult:
        """Write the backup's rows of ``table`` as upserts that fit the live schema."""

    @abstractmethod
    def open_merge(self, storage: Storage, manifest: Manifest, live_dsn: str, table: str, *,
                   where: str | None, on_conflict: str, server_dsn: str | None, jobs: int,
                   report: Reporter) -> contextlib.AbstractContextManager[RowMergeBase]:
        """The backup's rows staged next to the live ones; ``.preview``, ``.run()``."""


@contextlib.contextmanager
def _copy_then_stats(engine: BackupEngine, storage: Storage, manifest: Manifest,
                     server_dsn: str | None, jobs: int, report: Reporter
                     ) -> Iterator[tuple[RestoredCopy, list[TableStats]]]:
    with engine.restored_copy(storage, manifest, server_dsn, jobs=jobs, report=report) as copy:
        yield copy, engine.copy_stats(copy, jobs)


@functools.cache
def engine_named(name: str) -> BackupEngine:
    """The backup engine of a dialect, by name (one per dialect); one line (exit 2) when
    it has none."""
    from ..dialects import get_dialect

    engine = get_dialect(name).backup_engine()
    if engine is None:
        raise BadInput(f"backups of {name} databases are not supported yet")
    return engine


def engine_for(dsn: str) -> BackupEngine:
    """The backup engine of the database a DSN names."""
    try:
        return engine_named(dialect_of(dsn))
    except BadInput as exc:
        if "not supported" in exc.message:
            raise BadInput(f"{redact(dsn)}: {exc.message}") from None
        raise


def engine_of(manifest: Manifest) -> BackupEngine:
    """The backup engine that made ``manifest``'s backup."""
    return engine_named(manifest.dialect)
