"""Restore-rows tasks: thin wrappers around lockplane.backup.extract."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from lockplane.backup import Storage
from lockplane.backup.extract import MergeOptions, MergePreview, MergeResult, open_merge
from lockplane.errors import SafetyRefusal


@task(name="preview-restore-rows", cache_policy=NO_CACHE)
def preview_merge_task(storage: Storage, backup_id: str, dsn: str, table: str,
                       where: str | None, on_conflict: str, server_dsn: str | None,
                       jobs: int = 2) -> MergePreview:
    """Restore the backup, stage the table's rows next to the live ones, compare."""
    with open_merge(storage, backup_id, dsn, table, where=where, on_conflict=on_conflict,
                    server_dsn=server_dsn, jobs=jobs) as rm:
        return rm.preview


@task(name="merge-restore-rows", cache_policy=NO_CACHE)
def merge_rows_task(storage: Storage, backup_id: str, dsn: str, table: str,
                    where: str | None, on_conflict: str, server_dsn: str | None,
                    approved_id: str, batch_size: int = 1000, who: str = "prefect",
                    jobs: int = 2) -> MergeResult:
    """Stage the rows again and merge them in checkpointed batches, only if they are the
    rows that were approved (same merge id: same backup, mapping and rows)."""
    with open_merge(storage, backup_id, dsn, table, where=where, on_conflict=on_conflict,
                    server_dsn=server_dsn, jobs=jobs) as rm:
        if rm.id != approved_id:
            raise SafetyRefusal(f"not merged: the rows to merge are not the ones approved "
                                f"(merge {rm.id}, approved {approved_id}: the live schema "
                                "changed since?); run the flow again to review them")
        return rm.run(MergeOptions(batch_size=batch_size), who=who)
