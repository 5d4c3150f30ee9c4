"""Dialect-neutral pieces of compare, extract and merge: what they report, how a backup's
table maps onto the live one, the options, and the markdown an operator approves.

The engines (lockplane/dialects/<name>/backup*.py) fill these in; lockplane.backup.compare
and lockplane.backup.extract pick the engine of the backup's dialect.
"""

from __future__ import annotations

import contextlib
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from typing import Any, NoReturn

from .. import optsql
from ..dsn import redact
from ..errors import BadInput

ON_CONFLICT = ("skip", "update", "fail")
SAMPLE = 5
ROWS_PER_STATEMENT = 500


@dataclass
class TableComparison:
    table: str  # live name (or the backup's, for a table dropped since)
    backup_table: str | None
    status: str  # compared | dropped | new | no_key | key_differs
    key: list[str] = field(default_factory=list)
    backup_rows: int = 0
    live_rows: int = 0
    added: int = 0  # live only: newer than the backup
    deleted: int = 0  # backup only: deleted since
    changed: int = 0
    unchanged: int = 0
    columns_compared: list[str] = field(default_factory=list)
    sample_added: list[list[str]] = field(default_factory=list)
    sample_deleted: list[list[str]] = field(default_factory=list)
    sample_changed: list[list[str]] = field(default_factory=list)
    note: str | None = None
    seconds: float = 0.0

    @property
    def differs(self) -> bool:
        return self.status != "compared" or bool(self.added or self.deleted or self.changed)

    def words(self) -> str:
        if self.status == "dropped":
            return (f"{self.table}: dropped since the backup ({_rows(self.backup_rows)} in the "
                    "backup)")
        if self.status == "new":
            return f"{self.table}: new since the backup ({_rows(self.live_rows)} now)"
        if self.status in ("no_key", "key_differs"):
            return (f"{self.table}: {self.note}; {_rows(self.backup_rows)} in the backup, "
                    f"{self.live_rows:,} now")
        if not (self.added or self.deleted or self.changed):
            return f"{self.table}: unchanged since the backup ({_rows(self.live_rows)})"
        name = self.table + (f" (was {self.backup_table})" if self.backup_table
                             and self.backup_table != self.table else "")
        return (f"{name}: {_rows(self.added)} newer than the backup, {self.deleted:,} deleted "
                f"since, {self.changed:,} changed")

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "words": self.words()}


@dataclass
class CompareReport:
    backup_id: str
    backup_created_at: str
    live: str  # redacted
    schema_changes: list[dict[str, Any]]
    tables: list[TableComparison]
    migrations_since: int | None
    restore_s: float
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {"format": "lockplane-backup-compare/1", "backup_id": self.backup_id,
                "backup_created_at": self.backup_created_at, "live": self.live,
                "migrations_since": self.migrations_since,
                "schema": {"same": not self.schema_changes, "changes": self.schema_changes},
                "tables": [t.to_json() for t in self.tables],
                "restore_s": self.restore_s, "seconds": round(self.seconds, 3)}


def pair_tables(backup_tables: list[tuple[str, str]], live_tables: list[tuple[str, str]],
                renames: list[Rename]) -> list[tuple[tuple[str, str] | None,
                                                     tuple[str, str] | None]]:
    """Each backup table with its live table (followed through recorded table renames),
    or None when dropped since; then the live tables new since."""
    live_set = set(live_tables)
    pairs: list[tuple[tuple[str, str] | None, tuple[str, str] | None]] = []
    matched_live: set[tuple[str, str]] = set()
    for s, t in backup_tables:
        target = (s, t)
        if target not in live_set:
            for r in renames:
                if r.column is None and r.table.split(".")[-1] == target[1]:
                    target = (s, r.new_name)
        if target in live_set:
            pairs.append(((s, t), target))
            matched_live.add(target)
        else:
            pairs.append(((s, t), None))
    pairs += [(None, lt) for lt in live_tables if lt not in matched_live]
    return pairs


def split_table(name: str) -> tuple[str | None, str]:
    """``schema.table`` or ``table`` (a double-quoted part may hold a dot)."""
    text = name.strip()
    if not text:
        raise BadInput("missing --table")
    parts: list[str] = []
    buf, quoted, i = "", False, 0
    while i < len(text):
        ch = text[i]
        if ch == '"':
            if quoted and i + 1 < len(text) and text[i + 1] == '"':
                buf += '"'
                i += 1
            else:
                quoted = not quoted
        elif ch == "." and not quoted:
            parts.append(buf)
            buf = ""
        else:
            buf += ch
        i += 1
    parts.append(buf)
    if quoted or len(parts) > 2 or not all(parts):
        raise BadInput(f"--table {name!r}: expected TABLE or SCHEMA.TABLE")
    return (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])



@dataclass(frozen=True)
class Rename:
    """A rename recorded by a multi-phase migration in ``lockplane.phases``."""

    migration_id: str
    table: str  # "schema.table" (or "table") as the migration recorded it
    column: str | None  # None for a table rename
    new_name: str



def same_table(key: str, schema: str, table: str) -> bool:
    return key in (f"{schema}.{table}", table)


@dataclass
class ColumnMap:
    backup: str  # name in the backup
    live: str  # name in the live table
    backup_type: str
    live_type: str
    stage_type: str  # the staging column's type: the backup's, or text if unknown live
    how: str  # same | assign | cast
    note: str | None = None



def live_column(name: str, col_renames: list[Rename],
                live: Collection[str]) -> tuple[str, str | None]:
    """The live column a backup column ``name`` became, following the recorded column
    renames of its table in order; (that name, a note saying so, or None)."""
    target, note = name, None
    for r in col_renames:
        if r.column == target and target not in live:
            target = r.new_name
            note = f"renamed to {target} (multi-phase migration {r.migration_id})"
    return target, note

def added_note(name: str, has_default: bool, col_renames: list[Rename],
               used: Collection[str]) -> str:
    """What an inserted row gets in live column ``name``, which no backup column maps to:
    mid-migration (a recorded rename's old name still exists and is written) the
    migration's sync trigger copies the old name's value into it; else its default."""
    for r in col_renames:
        if r.new_name == name and r.column in used:
            return (f"column {name} is the new name of {r.column} (multi-phase migration "
                    f"{r.migration_id}, in progress): its sync trigger fills it from "
                    f"{r.column} on inserted rows")
    return (f"column {name} was added since the backup: "
            + ("its default" if has_default else "NULL") + " on inserted rows")


def _rows(n: int) -> str:
    return f"{n:,} row" + ("" if n == 1 else "s")


@dataclass
class Mapping:
    """How the backup's table maps onto the live one."""

    backup_schema: str
    backup_table: str
    schema: str
    table: str
    columns: list[ColumnMap]
    key: list[str]  # live names of the primary key columns
    left_out: list[str] = field(default_factory=list)  # backup columns dropped since
    defaulted: list[str] = field(default_factory=list)  # live columns filled by defaults
    required: list[str] = field(default_factory=list)  # live NOT NULL, no default, unmapped
    notes: list[str] = field(default_factory=list)
    overriding: bool = False  # an identity ALWAYS column is written

    @property
    def display(self) -> str:
        return f"{self.schema}.{self.table}"

    @property
    def backup_display(self) -> str:
        return f"{self.backup_schema}.{self.backup_table}"

    def column(self, live: str) -> ColumnMap:
        return next(c for c in self.columns if c.live == live)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def check_where(where: str | None, dialect: str = "postgres") -> str | None:
    """``--where`` checked with PostgreSQL's parser (as backfill's; on SQLite also kept to
    the lexical subset both lexers agree on): the SQL to run."""
    if where is None or not where.strip():
        return None
    return optsql.condition(where.strip(), f"--where {where.strip()!r}", dialect)


def check_conflict_mode(on_conflict: str) -> None:
    if on_conflict not in ON_CONFLICT:
        raise BadInput(f"--on-conflict must be one of {', '.join(ON_CONFLICT)}, "
                       f"not {on_conflict!r}")


@dataclass
class ExtractResult:
    backup_id: str
    table: str
    rows: int
    statements: int
    mapping: Mapping
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {"backup_id": self.backup_id, "table": self.table, "rows": self.rows,
                "statements": self.statements, "seconds": round(self.seconds, 3),
                "mapping": self.mapping.to_json()}


@dataclass
class MergePreview:
    merge_id: str
    backup_id: str
    table: str
    on_conflict: str
    where: str | None
    rows: int  # staged rows in all
    done_before: int  # staged rows already merged by an earlier run (checkpoint)
    status: str  # new | resumable | done
    insert: int = 0  # key not live
    update: int = 0  # key live, values differ (update mode)
    skip: int = 0  # key live and not updated (skip mode), or values already equal
    conflicts: int = 0  # key live (fail mode refuses when > 0)
    unchanged: int = 0  # key live with the same values
    changed: int = 0  # key live with other values
    sample_insert: list[dict[str, Any]] = field(default_factory=list)
    sample_changed: list[dict[str, Any]] = field(default_factory=list)
    mapping: Mapping | None = None
    digest: str = ""

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        return d

    def summary(self) -> str:
        if self.status == "done":
            return (f"merge {self.merge_id} of {self.rows:,} row(s) into {self.table} is "
                    "already done: nothing to apply")
        left = self.rows - self.done_before
        resumed = (f" (resuming: {self.done_before:,} of {self.rows:,} already merged)"
                   if self.done_before else "")
        return (f"{left:,} row(s) of backup {self.backup_id} into {self.table}{resumed}: "
                f"would insert {self.insert:,}, update {self.update:,}, skip {self.skip:,} "
                f"({self.unchanged:,} identical, {self.changed:,} changed since the backup)")


@dataclass
class MergeResult:
    merge_id: str
    table: str
    status: str  # done | cancelled | already_done
    inserted: int
    updated: int
    skipped: int
    batches: int
    seconds: float
    rows_done: int  # by every run of this merge (checkpoint)
    rows: int

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "seconds": round(self.seconds, 3)}


@dataclass
class MergeOptions:
    batch_size: int = 1000
    max_batch_size: int = 20_000
    target_batch_ms: int = 200
    lock_timeout_ms: int = 200
    max_retries: int = 30
    wait_for_runner_s: float = 15.0

    def validate(self) -> None:
        if not 1 <= self.batch_size <= 1_000_000:
            raise BadInput("--batch-size must be from 1 to 1000000")
        self.max_batch_size = max(self.max_batch_size, self.batch_size)


def key_text(key: dict[str, Any] | None) -> str:
    return ", ".join(f"{k}={v}" for k, v in (key or {}).items())


# ---------------------------------------------------------------------------- markdown
def _md(value: Any) -> str:
    """A value as one line of inert Markdown text. Rows come from the application's users:
    a value holding '<!--' hid the rest of the preview an operator approves (what would be
    updated) when the artifact was rendered; '|' and newlines were all that was escaped."""
    from ..ci_report import text

    return "NULL" if value is None else text(value)


def _code(value: Any) -> str:
    from ..ci_report import code

    return code(value)


def preview_markdown(p: MergePreview, target: str) -> str:
    """The diff an operator approves: counts, the mapping, a sample of each kind."""
    m = p.mapping
    lines = [f"# Restore rows of {_md(p.table)} from backup {_md(p.backup_id)}", "",
             f"Target: {target}; on conflict: **{p.on_conflict}**"
             + (f"; where {_code(p.where)}" if p.where else "") + f"; merge `{p.merge_id}`",
             "", f"**{_md(p.summary())}**", "",
             "| would insert | would update | would skip | identical | changed since |",
             "|---:|---:|---:|---:|---:|",
             f"| {p.insert:,} | {p.update:,} | {p.skip:,} | {p.unchanged:,} | {p.changed:,} |",
             ""]
    if m and m.notes:
        lines += ["## Schema since the backup", ""] + [f"- {_md(n)}" for n in m.notes] + [""]
    if p.sample_insert:
        cols = list(p.sample_insert[0]["row"])
        lines += [f"## Would insert (first {len(p.sample_insert)})", "",
                  "| " + " | ".join(_md(c) for c in cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(_md(i["row"][c]) for c in cols) + " |"
                  for i in p.sample_insert]
        lines.append("")
    if p.sample_changed:
        lines += [f"## Changed since the backup (first {len(p.sample_changed)}; "
                  f"{'updated' if p.on_conflict == 'update' else 'left as they are'})", "",
                  "| key | column | backup | live |", "|---|---|---|---|"]
        for i in p.sample_changed:
            key = _md(key_text(i["key"]))
            for col, v in (i.get("changed") or {}).items():
                lines.append(f"| {key} | {_md(col)} | {_md(v['backup'])} | {_md(v['live'])} |")
        lines.append("")
    return "\n".join(lines)


def result_markdown(r: MergeResult, target: str) -> str:
    return (f"# Rows restored into {_md(r.table)}\n\nTarget: {target}; merge `{r.merge_id}`: "
            f"**{r.status}**\n\n| inserted | updated | skipped | batches | seconds |\n"
            f"|---:|---:|---:|---:|---:|\n| {r.inserted:,} | {r.updated:,} | {r.skipped:,} | "
            f"{r.batches} | {r.seconds:.1f} |\n\n{r.rows_done:,} of {r.rows:,} staged row(s) "
            "merged (checkpointed with the backfills: lockplane backfill status).\n")


def first_line(exc: BaseException) -> str:
    """A database error's first line, any password in it redacted."""
    text = str(exc).strip()
    return redact(text.splitlines()[0] if text else type(exc).__name__)


class RowMergeBase(ABC):
    """Backup rows staged next to the live table, ready to merge (an engine's).

    ``run`` is the same on every server: resumable batches of staged rows, each committed
    with its checkpoint (the backfill engine's table), halved on a lock wait and resized
    towards ``target_batch_ms``. An engine says how it opens the run (``_merging``), what a
    batch's transaction is (``_batch_transaction``), which errors are its server's and
    which of those are lock waits, and how it writes one batch (``_batch``)."""

    id: str
    rows: int
    preview: MergePreview
    m: Mapping
    on_conflict: str
    db_errors: tuple[type[BaseException], ...] = ()
    lock_wait_words = "lock waits ran out"  # "merge ID: <these> N times in a row"

    @abstractmethod
    def _checkpoint(self) -> tuple[str | None, int]:
        """(status, staged rows done) of this merge's checkpoint; (None, 0) before it."""

    @abstractmethod
    def _merging(self, opts: MergeOptions, who: str) -> AbstractContextManager[Any]:
        """Open the run: the checkpoint table (``Checkpoints``, yielded) ready and this
        merge's checkpoint recorded (``_record_start``), the server's run settings made."""

    @abstractmethod
    def _batch_transaction(self, opts: MergeOptions) -> AbstractContextManager[Any]:
        """One batch's transaction (its lock wait bounded by ``opts.lock_timeout_ms``)."""

    @abstractmethod
    def _is_lock_wait(self, exc: BaseException) -> bool:
        """Whether a server error (of ``db_errors``) is a lock wait worth retrying."""

    @abstractmethod
    def _batch(self, after: int, upto: int) -> tuple[int, int]:
        """Write staged rows ``after < ord <= upto``; (inserted, updated)."""

    def _record_start(self, state: Any, who: str) -> None:
        status, _ = self._checkpoint()
        if status is None:
            state.create(self.spec, [(0, self.rows, 0)], [self.rows], who)  # type: ignore[attr-defined]
        elif status in ("cancelled", "failed", "pending"):
            state.set_status(self.id, "running", chunk=0)

    def _failed(self, state: Any, exc: BaseException, cursor: int, upto: int) -> NoReturn:
        from ..errors import ExecutionFailed

        with contextlib.suppress(*self.db_errors):
            state.set_status(self.id, "failed", chunk=0, error=first_line(exc))
        raise ExecutionFailed(
            f"merge {self.id} into {self.m.display} failed at staged rows {cursor + 1}-{upto} "
            "(rolled back; earlier batches are kept, run it again to resume): "
            f"{first_line(exc)}") from None

    def run(self, opts: MergeOptions | None = None, *, who: str = "lockplane",
            on_batch: Callable[[int, int], None] | None = None) -> MergeResult:
        """Upsert the staged rows in batches, each committed with its checkpoint.

        ``on_batch(rows_done, rows)`` after every committed batch."""
        from ..errors import ExecutionFailed, SafetyRefusal

        opts = opts or MergeOptions()
        opts.validate()
        started = time.monotonic()
        p = self.preview
        if p.status == "done":
            return MergeResult(self.id, self.m.display, "already_done", 0, 0, 0, 0, 0.0,
                               self.rows, self.rows)
        if self.on_conflict == "fail" and p.conflicts:
            example = p.sample_changed[0]["key"] if p.sample_changed else None
            raise SafetyRefusal(
                f"not merged: {p.conflicts:,} row(s) of the backup already exist in "
                f"{self.m.display} (--on-conflict fail"
                + (f"; e.g. {key_text(example)}" if example else "") + "); use skip or "
                "update")
        totals = [0, 0, 0, 0]  # inserted, updated, skipped, batches
        size, retries, result_status = opts.batch_size, 0, "done"
        cursor = upto = 0
        with self._merging(opts, who) as state:
            while True:
                t0 = time.monotonic()
                try:
                    with self._batch_transaction(opts):
                        cstatus, cursor = state.lock(self.id, 0)
                        cursor = int(cursor or 0)
                        if cstatus == "cancelled":
                            result_status = "cancelled"
                            break
                        if cstatus == "done" or cursor >= self.rows:
                            if cstatus != "done":
                                state.finish(self.id, 0)
                            break
                        upto = min(self.rows, cursor + size)
                        ins, upd = self._batch(cursor, upto)
                        n = upto - cursor
                        state.advance(self.id, 0, upto, n, ins + upd, size,
                                      done=upto >= self.rows)
                except self.db_errors as exc:
                    if not self._is_lock_wait(exc):
                        self._failed(state, exc, cursor, upto)
                    retries += 1
                    if retries > opts.max_retries:
                        raise ExecutionFailed(f"merge {self.id}: {self.lock_wait_words} "
                                              f"{retries} times in a row; run it again to "
                                              "resume") from None
                    size = max(1, size // 2)
                    time.sleep(min(1.0, 0.05 * 2 ** min(retries, 5)))
                    continue
                retries = 0
                totals[0] += ins
                totals[1] += upd
                totals[2] += n - ins - upd
                totals[3] += 1
                ms = (time.monotonic() - t0) * 1000
                if ms < opts.target_batch_ms / 2:
                    size = min(opts.max_batch_size, size * 2)
                elif ms > opts.target_batch_ms * 2:
                    size = max(1, size // 2)
                if on_batch:
                    on_batch(upto, self.rows)
        _, done = self._checkpoint()
        return MergeResult(self.id, self.m.display, result_status, totals[0], totals[1],
                           totals[2], totals[3], time.monotonic() - started, done, self.rows)
