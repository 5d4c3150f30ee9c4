"""Rows from a backup, as upserts that fit today's schema: extract to a file, or merge back.

``extract_rows`` writes ``INSERT ... ON CONFLICT`` statements; ``open_merge`` stages the
rows next to the live table, compares them by primary key (``.preview``: would insert,
update, skip, with a sample) and ``.run()`` upserts them in short batches through the
backfill engine's checkpoints (resumable; a finished merge is never applied twice).
Columns dropped since the backup are left out, columns added since get their defaults,
renames recorded by multi-phase migrations are followed. ``--on-conflict``: skip (the
live row stays), update (set to the backup's values), fail (refuse if any key exists).

The backup's engine does the work (lockplane/dialects/postgres/backup_extract.py,
lockplane/dialects/sqlite/backup_rows.py); this module checks the inputs and picks it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import IO

from ..dsn import dialect_of, redact
from ..errors import BadInput
from .core import load_manifest
from .engine import BackupEngine, engine_for, engine_of
from .manifest import Manifest
from .rows import (
    ON_CONFLICT,
    ColumnMap,
    ExtractResult,
    Mapping,
    MergeOptions,
    MergePreview,
    MergeResult,
    Rename,
    RowMergeBase,
    check_conflict_mode,
    check_where,
    preview_markdown,
    result_markdown,
    split_table,
)
from .storage import Storage

Reporter = Callable[[str], None]


def _inputs(storage: Storage, backup_id: str, live_dsn: str, table: str, where: str | None,
            on_conflict: str) -> tuple[BackupEngine, Manifest]:
    """Options first (bad ones: exit 2 before anything is read), then the backup."""
    check_conflict_mode(on_conflict)
    split_table(table)
    engine = engine_for(live_dsn)
    check_where(where, dialect_of(live_dsn))
    manifest = load_manifest(storage, backup_id)  # unknown backup: exit 2 before anything
    if engine_of(manifest) is not engine:
        raise BadInput(f"backup {manifest.id} is a {engine_of(manifest).name} backup; "
                       f"{redact(live_dsn)} is not")
    return engine, manifest


def extract_rows(storage: Storage, backup_id: str, live_dsn: str, table: str, out: IO[str], *,
                 where: str | None = None, on_conflict: str = "skip",
                 server_dsn: str | None = None, jobs: int = 1,
                 report: Reporter | None = None) -> ExtractResult:
    """Write the backup's rows of ``table`` as upserts fitting the live schema to ``out``."""
    engine, manifest = _inputs(storage, backup_id, live_dsn, table, where, on_conflict)
    return engine.extract(storage, manifest, live_dsn, table, out, where=where,
                          on_conflict=on_conflict, server_dsn=server_dsn, jobs=jobs,
                          report=report or (lambda _m: None))


@contextlib.contextmanager
def open_merge(storage: Storage, backup_id: str, live_dsn: str, table: str, *,
               where: str | None = None, on_conflict: str = "skip",
               server_dsn: str | None = None, jobs: int = 1,
               report: Reporter | None = None) -> Iterator[RowMergeBase]:
    """Stage the backup's rows of ``table`` next to the live ones and compare them
    (``.preview``); ``.run()`` merges them. Nothing persistent is written before ``run``."""
    engine, manifest = _inputs(storage, backup_id, live_dsn, table, where, on_conflict)
    with engine.open_merge(storage, manifest, live_dsn, table, where=where,
                           on_conflict=on_conflict, server_dsn=server_dsn, jobs=jobs,
                           report=report or (lambda _m: None)) as merge:
        yield merge


__all__ = ["ON_CONFLICT", "ColumnMap", "ExtractResult", "Mapping", "MergeOptions",
           "MergePreview", "MergeResult", "Rename", "RowMergeBase", "check_where",
           "extract_rows", "open_merge", "preview_markdown", "result_markdown", "split_table"]
