"""Resumable batched backfills: rewrite a column of a big table in small committed batches.

A backfill is ``UPDATE table SET col = expr [WHERE cond]`` cut into batches along a key,
each batch its own short transaction. The order of a backfill, and why:

1. **resolve** the table, the columns to set and the key to walk: the primary key, else
   a unique NOT NULL key, else (PostgreSQL) the physical row position ``ctid`` by block
   ranges. Walking is keyset (``WHERE key > last ORDER BY key LIMIT n``), never OFFSET,
   so the last batch costs what the first one did;
2. **try it on a shadow**: a scratch database with the target's schema and a sample of
   its rows. The exact batch statement runs there first, so an unknown column, a type
   error, or a constraint or trigger the new values break is found (the failing row
   named by its key) before the target is touched; the same trial measures time and
   WAL per row (``pg_current_wal_lsn()`` before and after);
3. **check every row of the target, read-only**: in bounded key ranges, each in a
   ``READ ONLY`` transaction, the expressions are evaluated and cast to their column's
   type, so a row they fail on is reported by key before the first write;
4. **estimate**: rows (``pg_class.reltuples``; ``count(*)`` on SQLite), duration and WAL;
5. **run**: each batch locks its checkpoint row, updates the next key range and moves
   the checkpoint, in one transaction with ``lock_timeout``. A crash loses at most the
   batch in flight, which rolls back together with its checkpoint: no batch is lost and
   none is applied twice. For the same reason batches commit asynchronously on
   PostgreSQL (``synchronous_commit = off``): a server crash loses the last batches and
   their checkpoints together, and the backfill redoes them. The id of a backfill is a
   hash of its table, SET and WHERE, so running it again resumes from its checkpoint;
6. **pace**: keep each batch near a target duration by growing and shrinking it, back
   off on lock timeouts, and honour ``sleep_ms``, ``max_rows_per_second`` and, on
   PostgreSQL, a replication lag ceiling read from ``pg_stat_replication``.

The key range can be split into chunks, each with its own checkpoint row, so several
workers can backfill one table in parallel (the Prefect flow maps chunks over tasks, or
runs each as a flow run of the ``backfill-chunk`` deployment that any worker of a work
pool picks up; ``chunk_runs`` tells it which chunks still have a live runner).

Rows inserted behind the cursor while a backfill runs are not visited: as with any
online backfill, the application (or a trigger) must already write the new value.
Checkpoints live in ``lockplane.backfills`` (SQLite: ``_lockplane_backfills``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from . import optsql
from .crash import TaggedSession, settle_orphans
from .dialects import get_dialect
from .dialects.base import BackfillCatalog, Database
from .dsn import dialect_of, redact
from .errors import BadInput, ExecutionFailed, SafetyRefusal
from .state import StateTable

KEY_PRIMARY = "primary key"
KEY_UNIQUE = "unique key"
KEY_CTID = "ctid"

_CHECK_STEP_ROWS = 100_000  # rows per read-only check query
_SAMPLE_ROWS = 5_000  # rows copied to the shadow for the trial
_SPLIT_SAMPLE_KEYS = 20_000  # keys sampled to split a table into chunks
_LOCATE_LINEAR = 32  # below this many rows, test rows one by one


# --------------------------------------------------------------------------- input
@dataclass(frozen=True)
class SetClause:
    """``column = expression``: the column as written (quoted or not), the expression as
    SQL (user-declared, like a schema file; validated on a shadow before use)."""

    column: str
    expression: str
    quoted: bool = False

    def __str__(self) -> str:
        return f"{self.column} = {self.expression}"


@dataclass(frozen=True)
class BackfillSpec:
    """What to backfill: ``UPDATE table SET sets... [WHERE where]``."""

    table: str
    sets: tuple[SetClause, ...]
    where: str | None = None
    # Columns (as in ``sets``) whose new value must not be NULL although the column may
    # still hold NULLs (a fill before its NOT NULL): the read-only check refuses a NULL.
    not_null: tuple[str, ...] = ()
    # Where every batch first records the key and old value (as text) of each row it
    # changes, in the same statement (a plan's fill of an existing column, for its undo:
    # lockplane.changes.unfill_column): the archive table's quoted name and the key.
    archive: str | None = None
    archive_key: tuple[str, ...] = ()


def parse_set(text: str, dialect: str = "postgres") -> SetClause:
    """Parse one ``"col = expr"`` (the column may be double-quoted); bad input otherwise.

    Checked with PostgreSQL's parser as ``UPDATE t SET <text>`` (see ``optsql``), or the
    dialect's own (MySQL: sqlglot)."""
    clauses = parse_sets(text, dialect)
    if len(clauses) != 1:
        raise BadInput(f"--set {text!r}: one \"column = expression\" expected")
    return clauses[0]


def parse_sets(text: str, dialect: str = "postgres") -> list[SetClause]:
    """``"a = expr[, b = expr ...]"``: one --set may hold several assignments."""
    return [SetClause(a.column, a.expression, quoted=a.quoted)
            for a in optsql.assignments(text, f"--set {text!r}", dialect)]


def make_spec(table: str, sets: Sequence[str | SetClause], where: str | None = None,
              dialect: str = "postgres") -> BackfillSpec:
    """A spec from CLI/flow parameters: ``sets`` as "col = expr" strings or clauses.

    Every expression is checked with PostgreSQL's parser here (bad input names the
    option); ``_resolve`` checks them again for the target's dialect and keeps the text
    that will run."""
    if not table or not table.strip():
        raise BadInput("missing --table")
    clauses: list[SetClause] = []
    for s in sets:
        if isinstance(s, SetClause):
            check_expression(s.expression, f"--set {str(s)!r}", dialect)
            clauses.append(s)
        else:
            clauses += parse_sets(s, dialect)
    if not clauses:
        raise BadInput("missing --set \"column = expression\"")
    where = where.strip() if where else None
    if where:
        optsql.condition(where, f"--where {where!r}", dialect)
    return BackfillSpec(table.strip(), tuple(clauses), where or None)


def check_expression(expr: str, what: str, dialect: str = "postgres") -> None:
    """Exactly one SQL value expression (PostgreSQL's parser: ``optsql.expression``).

    Expressions are put in parentheses inside the batch statement; this keeps one from
    closing them (``1) OR (true``), from being statements, from hiding a data-modifying
    subquery or a call with side effects. The server validates the rest, on the shadow
    copy first.
    """
    optsql.expression(expr, what, dialect)


def runnable(spec: BackfillSpec, dialect: str) -> tuple[list[str], str | None]:
    """The SET expressions and WHERE condition to run on ``dialect``, checked.

    Their structure, that is: options went through ``make_spec``, which also refuses
    built-ins with side effects; a plan's data step may legitimately backfill a column
    default such as ``nextval(...)``."""
    exprs = [optsql.expression(s.expression, f"--set {str(s)!r}", dialect, calls=False)
             for s in spec.sets]
    where = optsql.condition(spec.where, f"--where {spec.where!r}", dialect, calls=False) \
        if spec.where else None
    return exprs, where


# ------------------------------------------------------------- expression helpers
def type_conversion(table: str, column: str, new_type: str, *, into: str | None = None,
                    using: str | None = None, dialect: str = "postgres") -> BackfillSpec:
    """Backfill for a type change done online (add ``into``, backfill, swap):
    ``into = CAST(column AS new_type)``, or ``into = (using)`` for a custom conversion
    (PostgreSQL's ALTER ... TYPE ... USING expression)."""
    q = get_dialect(dialect).quote
    expr = using if using else f"CAST({q(column)} AS {new_type})"
    return BackfillSpec(table, (SetClause(into or column, expr, quoted=True),))


def computed_column(table: str, column: str, expression: str,
                    where: str | None = None) -> BackfillSpec:
    """``column = expression`` (e.g. ``lower(email)``), optionally only ``where``."""
    return BackfillSpec(table, (SetClause(column, expression, quoted=True),), where)


def concat_columns(table: str, column: str, parts: Sequence[str], separator: str = " ",
                   dialect: str = "postgres") -> BackfillSpec:
    """``full_name = first_name || ' ' || last_name``: NULL parts are skipped (their
    separator too), as PostgreSQL's concat_ws does, on both dialects."""
    d = get_dialect(dialect)
    if not parts:
        raise BadInput("concat_columns needs at least one column")
    expr = d.concat_skipping_nulls([d.quote(p) for p in parts], separator)
    return BackfillSpec(table, (SetClause(column, expr, quoted=True),))


def coalesce_nulls(table: str, column: str, default: str,
                   dialect: str = "postgres") -> BackfillSpec:
    """Clean-up before ``SET NOT NULL``: ``column = COALESCE(column, default)`` on the rows
    where it is NULL (``default`` is an SQL expression, e.g. ``'unknown'`` or ``0``)."""
    q = get_dialect(dialect).quote(column)
    return BackfillSpec(table, (SetClause(column, f"COALESCE({q}, {default})", quoted=True),),
                        f"{q} IS NULL")


# ------------------------------------------------------------------ resolved spec
@dataclass
class ResolvedBackfill:
    """A spec checked against the live database: catalog names, types and the key."""

    id: str
    dialect: str
    schema: str | None
    table: str
    columns: list[str]
    expressions: list[str]
    types: list[str]
    not_null: list[bool]
    where: str | None
    key_kind: str
    key_name: str | None
    key_columns: list[str]
    key_types: list[str]
    # See BackfillSpec.archive (absent in checkpoints of older backfills).
    archive: str | None = None
    archive_key: list[str] = field(default_factory=list)
    # Per key column, the comparison operators (">", "<=", "=") of the key index's own
    # operator class, schema-qualified (PostgreSQL: OPERATOR(pg_catalog.>)): a database's
    # closer overload of > for the key's type (an enum, a varchar, a domain) must not
    # stand in for them in Lockplane's range conditions. Empty: the plain symbols (other
    # servers, checkpoints of older backfills).
    key_ops: list[dict[str, str]] = field(default_factory=list)
    # Per column, the type its values are compared as (PostgreSQL: a domain's base type,
    # for a domain over an enum has no =), or None: its own. Empty: every one its own.
    compare_types: list[str | None] = field(default_factory=list)

    @property
    def display(self) -> str:
        return f"{self.schema}.{self.table}" if self.schema else self.table

    @property
    def set_text(self) -> str:
        return ", ".join(f"{c} = {e}" for c, e in zip(self.columns, self.expressions,
                                                          strict=True))

    @property
    def key_text(self) -> str:
        if self.key_kind == KEY_CTID:
            return "ctid block ranges (no primary or unique NOT NULL key)"
        name = f" {self.key_name}" if self.key_kind == KEY_UNIQUE and self.key_name else ""
        return f"keyset on {self.key_kind}{name} ({', '.join(self.key_columns)})"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | str) -> ResolvedBackfill:
        raw = json.loads(data) if isinstance(data, str) else data
        return cls(**raw)


def backfill_id(dialect: str, schema: str | None, table: str, columns: Sequence[str],
                expressions: Sequence[str], where: str | None) -> str:
    """Identity of a backfill: a hash of its table, SET clauses and WHERE."""
    body = json.dumps([dialect, schema, table, list(columns), list(expressions), where])
    return hashlib.sha256(body.encode()).hexdigest()[:16]


# ------------------------------------------------------------------ options, results
@dataclass
class BackfillOptions:
    batch_size: int = 1000             # first batch (and every batch if not adaptive)
    min_batch_size: int = 10
    max_batch_size: int = 50_000
    adaptive: bool = True              # grow/shrink batches toward target_batch_ms
    # Row locks are held for a whole batch: the target stays well under the 250 ms a
    # concurrent client should ever wait.
    target_batch_ms: int = 100
    sleep_ms: int = 0                  # pause after each batch
    max_rows_per_second: float | None = None
    max_replication_lag_ms: int | None = None  # PostgreSQL: pause while replicas lag more
    lock_timeout_ms: int = 200         # per batch; a timeout shrinks the batch and backs off
    statement_timeout_ms: int = 30_000
    # PostgreSQL: batches commit without waiting for their WAL flush. Safe here: a batch
    # and its checkpoint are one transaction, so a server crash loses both together and
    # the backfill redoes them; it saves a flush per batch (a quarter of the time with
    # 100 ms batches on ordinary disks).
    synchronous_commit: bool = False
    max_retries: int = 30              # consecutive lock timeouts before giving up
    chunks: int = 1                    # split the key range for parallel workers
    shadow_dsn: str | None = None      # server for the shadow database (PostgreSQL)
    check_rows: bool = True            # read-only check of every target row before writing
    sample_rows: int = _SAMPLE_ROWS
    restart: bool = False              # start a finished/cancelled backfill over
    wait_for_runner_s: float = 15.0    # wait for a crashed runner's session to go away
    started_by: str | None = None
    # The caller has judged what the expressions call (apply's check of a plan's
    # backfill steps, or its --acknowledge privileged-function): not asked again here.
    calls_checked: bool = False

    def validate(self) -> None:
        for name in ("batch_size", "min_batch_size", "max_batch_size", "target_batch_ms",
                     "chunks"):
            if getattr(self, name) < 1:
                raise BadInput(f"{name.replace('_', '-')} must be at least 1")
        for name in ("sleep_ms", "lock_timeout_ms", "statement_timeout_ms", "max_retries"):
            if getattr(self, name) < 0:
                raise BadInput(f"{name.replace('_', '-')} must not be negative")
        if self.max_rows_per_second is not None and not 0 < self.max_rows_per_second < 1e12:
            raise BadInput("max-rows-per-second must be a positive number")  # not nan or inf
        if self.max_replication_lag_ms is not None and self.max_replication_lag_ms <= 0:
            raise BadInput("max-replication-lag-ms must be positive")
        # Milliseconds go into SET ... = N (int4 on PostgreSQL), sizes into LIMIT.
        from .plan import MAX_LOCK_TIMEOUT_MS
        for name in ("sleep_ms", "lock_timeout_ms", "statement_timeout_ms", "target_batch_ms",
                     "max_replication_lag_ms"):
            if (getattr(self, name) or 0) > MAX_LOCK_TIMEOUT_MS:
                raise BadInput(f"{name.replace('_', '-')} must be at most {MAX_LOCK_TIMEOUT_MS}")
        for name in ("batch_size", "min_batch_size", "max_batch_size", "max_retries",
                     "chunks", "sample_rows"):
            if getattr(self, name) > 2**31 - 1:
                raise BadInput(f"{name.replace('_', '-')} must be at most {2**31 - 1}")
        self.min_batch_size = min(self.min_batch_size, self.batch_size)
        self.max_batch_size = max(self.max_batch_size, self.batch_size)


@dataclass
class Estimate:
    rows_in_table: int
    rows_exact: bool
    rows_to_update: int
    sample_rows: int = 0
    sample_matching: int = 0
    rows_per_second: float | None = None
    seconds: float | None = None
    wal_bytes_per_row: float | None = None
    wal_bytes: int | None = None
    full_page_bytes: int | None = None  # part of wal_bytes: first touch after checkpoints

    def summary(self) -> str:
        """``~1.0M rows, ~3 min, ~2.0 GB WAL``."""
        parts = [f"{'' if self.rows_exact else '~'}{human_count(self.rows_to_update)} rows"]
        if self.seconds is not None:
            parts.append(f"~{human_duration(self.seconds)}")
        if self.wal_bytes is not None:
            parts.append(f"~{human_bytes(self.wal_bytes)} WAL")
        return ", ".join(parts)


@dataclass
class ChunkState:
    chunk: int
    status: str
    lower: Any
    upper: Any
    cursor: Any
    rows_scanned: int
    rows_updated: int
    batches: int
    rows_estimate: int | None
    error: str | None


@dataclass
class BackfillPlan:
    """What a backfill will do, shown before it touches the database."""

    resolved: ResolvedBackfill
    estimate: Estimate
    statement: str                     # the batch UPDATE, placeholders for the key range
    existing: list[ChunkState] = field(default_factory=list)  # checkpoint rows, if any
    checks: list[str] = field(default_factory=list)     # what was verified
    warnings: list[str] = field(default_factory=list)
    state_table: str = "lockplane.backfills"

    @property
    def id(self) -> str:
        return self.resolved.id

    @property
    def status(self) -> str:
        """new | done | resumable (a checkpoint exists and is not finished)."""
        if not self.existing:
            return "new"
        if all(c.status == "done" for c in self.existing):
            return "done"
        return "resumable"

    @property
    def rows_done(self) -> int:
        return sum(c.rows_scanned for c in self.existing)


@dataclass
class Progress:
    backfill_id: str
    chunk: int
    chunks: int
    rows_scanned: int                  # this chunk, since the backfill started
    rows_updated: int
    rows_estimate: int                 # this chunk
    batches: int
    batch_size: int
    last_batch_ms: float
    rows_per_second: float             # this run of this chunk
    total_scanned: int                 # all chunks (refreshed about once a second)
    total_estimate: int
    status: str = "running"
    note: str | None = None

    @property
    def fraction(self) -> float:
        if self.status == "done" and self.chunks == 1:
            return 1.0
        total = max(self.total_estimate, self.total_scanned, 1)
        return min(1.0, self.total_scanned / total)


ProgressCallback = Callable[[Progress], None]
Reporter = Callable[[str], None]


@dataclass
class ChunkResult:
    chunk: int
    status: str  # done | cancelled
    rows_scanned: int  # by this run
    rows_updated: int
    batches: int
    seconds: float
    lock_retries: int


@dataclass
class BackfillResult:
    id: str
    table: str
    status: str  # done | cancelled | already_done
    rows_scanned: int
    rows_updated: int
    batches: int
    seconds: float
    lock_retries: int
    chunks: int

    @property
    def rows_per_second(self) -> float:
        return self.rows_scanned / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "rows_per_second": round(self.rows_per_second, 1)}


@dataclass
class BackfillStatus:
    id: str
    table: str
    set: str
    where: str | None
    status: str  # pending | running | interrupted | cancelled | failed | done
    chunks: int
    chunks_done: int
    rows_scanned: int
    rows_updated: int
    rows_estimate: int
    batches: int
    started_by: str | None
    created_at: str
    updated_at: str
    finished_at: str | None
    error: str | None

    @property
    def percent(self) -> float:
        if self.status == "done":
            return 100.0
        return min(99.9, 100.0 * self.rows_scanned / max(self.rows_estimate, 1))

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "percent": round(self.percent, 1)}


class _Cancelled(Exception):
    pass


# ------------------------------------------------------------------- formatting
def human_count(n: float) -> str:
    if n >= 1e9:
        return f"{n / 1e9:.1f}B"
    if n >= 1e6:
        return f"{n / 1e6:.1f}M"
    if n >= 1e4:
        return f"{n / 1e3:.0f}k"
    return f"{int(n):,}"


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover


def human_duration(s: float) -> str:
    if s < 1:
        return "<1 s"
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


# ------------------------------------------------------------------ sessions
def _connect(dsn: str) -> Database:
    db = get_dialect(dialect_of(dsn)).connect(dsn)
    # Key values travel as text between sessions; a runner whose machine vanishes must
    # not hold its chunk's runner lock for hours (see configure_worker_session).
    db.configure_worker_session("lockplane backfill")
    return db


def _catalog(db: Database) -> BackfillCatalog:
    """What this backfill asks the server's catalog (``dialects/<name>/backfill.py``)."""
    catalog = db.dialect.backfill_catalog()
    if catalog is None:
        raise BadInput(f"batched backfills are not supported on {db.dialect.name} yet "
                       f"({db.dsn_display})")
    return catalog


def _errors(db: Database) -> tuple[type[BaseException], ...]:
    return db.dialect.error_types()


def _is_disconnect(db: Database, exc: BaseException) -> bool:
    return db.closed or db.dialect.is_disconnect(exc)


def db_closed(db: Database) -> bool:
    return db.closed


def error_line(exc: BaseException) -> str:
    diag = getattr(exc, "diag", None)
    args = getattr(exc, "args", ())
    if len(args) == 2 and isinstance(args[0], int) and isinstance(args[1], str):
        text = args[1]  # (error number, message): PyMySQL's shape
    else:
        text = str(exc)
    msg = getattr(diag, "message_primary", None) or (text.strip().splitlines() or [""])[0]
    detail = getattr(diag, "message_detail", None)
    return redact(msg + (f" ({detail})" if detail else ""))


def _rowcount(db: Database, statements: Sequence[str], params: Sequence[Any]) -> int:
    """Run a batch's statements (the caller's transaction); the last one's row count."""
    for sql in statements[:-1]:
        db.execute(sql, params)
    return db.rowcount(statements[-1], params)


# ------------------------------------------------------------------ the SQL of a backfill
def _encode_key(values: Sequence[Any]) -> list[Any]:
    return [{"b64": base64.b64encode(v).decode()} if isinstance(v, bytes | bytearray | memoryview)
            else v for v in values]


def _decode_key(values: Sequence[Any] | None) -> list[Any] | None:
    if values is None:
        return None
    return [base64.b64decode(v["b64"]) if isinstance(v, dict) and "b64" in v else v
            for v in values]


class BatchSql:
    """The statements of one resolved backfill on one database.

    Identifiers come from the catalog and are quoted by the dialect; key values are
    parameters (PostgreSQL: their text form, cast back to the column's catalog type);
    the user's SET and WHERE expressions, checked again here (``optsql``), are kept in
    parentheses of their own.

    psycopg reads ``%`` as a placeholder once a statement has parameters, so on
    PostgreSQL every part (identifiers such as ``"we%ird"`` too) has its ``%`` doubled,
    and every statement built from these parts runs with a parameter list (empty if
    need be), never ``None``.
    """

    def __init__(self, db: Database, rb: ResolvedBackfill, keep: bool = False) -> None:
        self.db = db
        self.rb = rb
        # Batches record the rows they change (rb.archive): on the target only (a
        # shadow trial has no archive; its statement is the UPDATE alone).
        self.keep = keep and rb.archive is not None
        d = db.dialect
        self.d = d
        self.ctid = rb.key_kind == KEY_CTID
        for e in rb.expressions:  # a spec read back from the state table, too
            optsql.expression(e, "a backfill's SET expression", rb.dialect, calls=False)
        if rb.where:
            optsql.condition(rb.where, "a backfill's WHERE condition", rb.dialect,
                             calls=False)
        esc = d.escape_for_params

        def q(name: str) -> str:
            return esc(d.quote(name))
        self.p = d.param
        self.qt = esc(d.qname(rb.schema, rb.table))
        self.qkeys = [q(c) for c in rb.key_columns]
        self.kops = [{op: esc(text) for op, text in ops.items()} for ops in rb.key_ops]
        self.exprs = [f"({esc(e)}\n)" for e in rb.expressions]
        self.qcols = [q(c) for c in rb.columns]
        self.sets = ", ".join(f"{c} = {e}" for c, e in zip(self.qcols, self.exprs, strict=True))
        self.where = f"({esc(rb.where)}\n)" if rb.where else None

    # ---------------------------------------------------------------- key ranges
    def _param(self, i: int) -> str:
        return self.d.typed_param(self.rb.key_types[i])

    def _cmp(self, op: str, key: Sequence[Any]) -> tuple[str, list[Any]]:
        params = [self._param(i) for i in range(len(self.qkeys))]
        ops = [o[op] for o in self.kops] if self.kops else None
        if len(self.qkeys) == 1:
            return f"{self.qkeys[0]} {ops[0] if ops else op} {params[0]}", [key[0]]
        if ops and len(set(ops)) == 1:
            return (f"({', '.join(self.qkeys)}) {ops[0]} ({', '.join(params)})", list(key))
        if ops:  # operators of several schemas: no row comparison spells them
            eq = [o["="] for o in self.kops]
            if op == "=":
                return (" AND ".join(f"{k} {e} {p}" for k, e, p in zip(
                    self.qkeys, eq, params, strict=True)), list(key))
            # (a, b) > (x, y) is a > x OR (a = x AND b > y); <= is a < x OR (a = x AND b <= y)
            strict = [o[">" if op == ">" else "<"] for o in self.kops]
            terms, values = [], []
            for i in range(len(self.qkeys)):
                cmp = ops[i] if i == len(self.qkeys) - 1 else strict[i]
                parts = [f"{self.qkeys[j]} {eq[j]} {params[j]}" for j in range(i)]
                parts.append(f"{self.qkeys[i]} {cmp} {params[i]}")
                values += [key[j] for j in range(i + 1)]
                terms.append("(" + " AND ".join(parts) + ")")
            return "(" + " OR ".join(terms) + ")", values
        return self.d.row_compare(self.qkeys, op, params, list(key))

    def range(self, after: Any, upto: Any) -> tuple[list[str], list[Any]]:
        """Conditions of the key range (after, upto]; ctid: blocks [after, upto)."""
        if self.ctid:
            return (["ctid >= CAST(%s AS tid)", "ctid < CAST(%s AS tid)"],
                    [_tid(after), _tid(upto)])
        conds: list[str] = []
        params: list[Any] = []
        for op, key in ((">", after), ("<=", upto)):
            if key is not None:
                c, p = self._cmp(op, key)
                conds.append(c)
                params += p
        return conds, params

    @staticmethod
    def _where(conds: list[str]) -> str:
        return " AND ".join(conds) if conds else "1 = 1"

    def bound(self, after: Any, upto: Any, n: int) -> tuple[list[Any], int] | None:
        """The n-th key after ``after`` (or the last one before ``upto``) and how many
        keys that is: an index-only walk of the key, never OFFSET."""
        conds, params = self.range(after, upto)
        keys = ", ".join(self.qkeys)
        inner = (f"SELECT {keys} FROM {self.qt} WHERE {self._where(conds)} "
                 f"ORDER BY {keys} LIMIT {self.p}")
        if len(self.qkeys) == 1 and self.d.has_max(self.rb.key_types[0]):
            # One column of a type with max(): an aggregate over the walked keys, no sort.
            k = f"s.{self.qkeys[0]}"
            sql = (f"SELECT {self.d.as_text(f'{self.d.max_sql}({k})')}, {self.d.count_sql}(*) "
                   f"FROM ({inner}) AS s")
        else:
            outs = ", ".join(self.d.as_text(f"s.{k}") for k in self.qkeys)
            desc = ", ".join(f"s.{k} DESC" for k in self.qkeys)
            sql = (f"SELECT {outs}, count(*) OVER () FROM ({inner}) AS s "
                   f"ORDER BY {desc} LIMIT 1")
        rows = self.db.query(sql, [*params, int(n)])
        if not rows or not rows[0][-1]:
            return None
        *key, count = rows[0]
        return list(key), int(count)

    def keys_in(self, after: Any, upto: Any) -> list[list[Any]]:
        conds, params = self.range(after, upto)
        keys = ", ".join(self.qkeys)
        outs = ", ".join(self.d.as_text(k) for k in self.qkeys)
        return [list(r) for r in self.db.query(
            f"SELECT {outs} FROM {self.qt} WHERE {self._where(conds)} ORDER BY {keys}", params)]

    # ---------------------------------------------------------------- statements
    def update_sql(self, conds: list[str]) -> str:
        """The batch's UPDATE (what EXPLAIN reads)."""
        return self.update_statements(conds)[-1]

    def update_statements(self, conds: list[str]) -> list[str]:
        """What one batch runs, in its transaction, each with the range's parameters:
        the UPDATE, after what records the rows it changes where the batches keep them."""
        conds = list(conds)
        if self.where:
            conds.append(self.where)
        if self.ctid:
            # Rows an UPDATE moves may land in a block ahead of the cursor: skip rows
            # that already hold their new value, or they would be updated twice.
            as_types = self.rb.compare_types or [None] * len(self.qcols)
            differs = [self.d.distinct_sql(c, e, None if t is None else self.d.escape_for_params(t))
                       for c, e, t in zip(self.qcols, self.exprs, as_types, strict=True)]
            conds.append(differs[0] if len(differs) == 1 else f"({' OR '.join(differs)})")
        if self.keep:
            assert self.rb.archive is not None
            esc = self.d.escape_for_params
            return self.d.keeping_update(self.qt, self.sets, self._where(conds),
                                         esc(self.rb.archive),
                                         [esc(self.d.quote(k)) for k in self.rb.archive_key],
                                         self.qcols[0])
        return [f"UPDATE {self.qt} SET {self.sets} WHERE {self._where(conds)}"]

    def update(self, after: Any, upto: Any) -> int:
        conds, params = self.range(after, upto)
        return _rowcount(self.db, self.update_statements(conds), params)

    def display_statement(self) -> str:
        """The batch statement as a reviewer reads it ($1.. for the key range)."""
        if self.ctid:
            conds = ["ctid >= $1::tid", "ctid < $2::tid"]
        elif len(self.qkeys) == 1:
            conds = [f"{self.qkeys[0]} > $1", f"{self.qkeys[0]} <= $2"]
        else:
            n = len(self.qkeys)
            keys = ", ".join(self.qkeys)
            lo = ", ".join(f"${i + 1}" for i in range(n))
            hi = ", ".join(f"${i + 1 + n}" for i in range(n))
            conds = [f"({keys}) > ({lo})", f"({keys}) <= ({hi})"]
        return ";\n".join(self.update_statements(conds)).replace("%%", "%").replace(
            "\n)", ")")

    def check(self, after: Any, upto: Any) -> tuple[int, list[int]]:
        """Evaluate every expression on the range, cast to its column's type (reads only):
        (rows in range, non-NULL results per expression)."""
        conds, params = self.range(after, upto)
        if self.where:
            conds.append(self.where)
        exprs = [self.d.cast_to_column(e, t)
                 for e, t in zip(self.exprs, self.rb.types, strict=True)]
        counts = ", ".join(f"{self.d.count_sql}({e})" for e in exprs)
        row = self.db.query(f"SELECT count(*), {counts} FROM {self.qt} "
                            f"WHERE {self._where(conds)}", params)[0]
        return int(row[0]), [int(c) for c in row[1:]]

    def first_null(self, after: Any, upto: Any, i: int) -> list[Any] | None:
        conds, params = self.range(after, upto)
        if self.where:
            conds.append(self.where)
        conds.append(f"{self.exprs[i]} IS NULL")
        outs = self._row_id_outputs()
        order = "" if self.ctid else f" ORDER BY {', '.join(self.qkeys)}"
        rows = self.db.query(f"SELECT {outs} FROM {self.qt} WHERE {self._where(conds)}"
                             f"{order} LIMIT 1", params)
        return list(rows[0]) if rows else None

    def _row_id_outputs(self) -> str:
        if self.ctid:
            return "ctid::text"
        return ", ".join(self.d.as_text(k) for k in self.qkeys)

    def row_ids_in_blocks(self, b0: int, b1: int) -> list[str]:
        rows = self.db.query(f"SELECT ctid::text FROM {self.qt} WHERE ctid >= CAST(%s AS tid) "
                             "AND ctid < CAST(%s AS tid) ORDER BY ctid", [_tid(b0), _tid(b1)])
        return [r[0] for r in rows]

    def one_row(self, row_id: Sequence[Any]) -> tuple[list[str], list[Any]]:
        """Conditions selecting exactly one row: its key, or its ctid."""
        if self.ctid:
            return ["ctid = CAST(%s AS tid)"], [row_id[0]]
        c, p = self._cmp("=", row_id)
        return [c], p

    def describe_row(self, row_id: Sequence[Any]) -> str:
        if self.ctid:
            return f"row at ctid {row_id[0]}"
        pairs = [f"{c}={v if not isinstance(v, bytes) else v.hex()}"
                 for c, v in zip(self.rb.key_columns, row_id, strict=True)]
        return f"row {pairs[0]}" if len(pairs) == 1 else f"row ({', '.join(pairs)})"


def _tid(block: int) -> str:
    return f"({int(block)},0)"


# ------------------------------------------------------------------ locating a bad row
def _try(db: Database, fn: Callable[[], Any]) -> str | None:
    """Run ``fn`` inside a savepoint that is always rolled back; its error, or None."""
    errors = _errors(db)
    db.execute("SAVEPOINT lockplane_probe")
    try:
        fn()
        return None
    except errors as exc:
        return error_line(exc)
    finally:
        db.execute("ROLLBACK TO SAVEPOINT lockplane_probe")
        db.execute("RELEASE SAVEPOINT lockplane_probe")


def locate_failure(sql: BatchSql, after: Any, upto: Any, n: int,
                   probe: Callable[[list[str], list[Any]], None]) -> tuple[str, str] | None:
    """The first row of the range on which ``probe(conds, params)`` fails, as
    (description, error); None if no single row fails (e.g. rows that clash together).

    Bisects by key (each probe runs in a rolled-back savepoint, so nothing sticks);
    below a few dozen rows, tries them one by one. Needs an open transaction.
    """
    db = sql.db

    def fails(conds: list[str], params: list[Any]) -> str | None:
        return _try(db, lambda: probe(conds, params))

    if sql.ctid:
        b0, b1 = int(after), int(upto)
        while b1 - b0 > 1:
            mid = (b0 + b1) // 2
            if fails(*sql.range(b0, mid)):
                b1 = mid
            else:
                b0 = mid
        candidates = [[t] for t in sql.row_ids_in_blocks(b0, b1)]
    else:
        lo, hi = after, upto
        while n > _LOCATE_LINEAR:
            found = sql.bound(lo, hi, n // 2)
            if found is None:
                break
            mid, count = found
            if fails(*sql.range(lo, mid)):
                hi, n = mid, count
            else:
                lo, n = mid, n - count
        candidates = sql.keys_in(lo, hi)
    for row_id in candidates:
        error = fails(*sql.one_row(row_id))
        if error:
            return sql.describe_row(row_id), error
    return None


# ------------------------------------------------------------------ checkpoints
_STATE_LOCK = zlib.crc32(b"lockplane.backfills.ddl")
_RUNNER_NS = zlib.crc32(b"lockplane.backfill") - 2**31  # int4 namespace of runner locks


def _runner_key(backfill: str, chunk: int) -> tuple[int, int]:
    return _RUNNER_NS, zlib.crc32(f"{backfill}:{chunk}".encode()) - 2**31


class Checkpoints(StateTable):
    """The ``backfills`` state table: one row per (backfill, chunk)."""

    name = "backfills"

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        # ``cursor`` is a reserved word on MySQL: quoted wherever it is named.
        self.cursor = db.dialect.quote("cursor")
        self._COLS = (f"chunk, status, lower_bound, upper_bound, {self.cursor}, "
                      "rows_scanned, rows_updated, batches, rows_estimate, error")

    def _create(self) -> None:
        ddl = self.db.dialect.backfills_table_sql()
        if self.db.dialect.has_advisory_locks and self.db.dialect.transactional_ddl:
            with self.db.transaction():
                # Two workers may create it at once; CREATE ... IF NOT EXISTS is not atomic
                # (where DDL is transactional: MySQL's takes the table's metadata lock).
                self.db.advisory_xact_lock(_STATE_LOCK)
                self.db.execute(ddl)
        else:
            self.db.execute(ddl)

    def _json(self, value: Any) -> Any:
        return self.db.dialect.json_param(value)

    @staticmethod
    def _load(value: Any) -> Any:
        if value is None or not isinstance(value, str):
            return value
        return json.loads(value)

    def _chunk(self, row: Sequence[Any]) -> ChunkState:
        return ChunkState(chunk=int(row[0]), status=row[1], lower=self._load(row[2]),
                          upper=self._load(row[3]), cursor=self._load(row[4]),
                          rows_scanned=int(row[5]), rows_updated=int(row[6]),
                          batches=int(row[7]),
                          rows_estimate=None if row[8] is None else int(row[8]), error=row[9])

    def chunks(self, backfill: str) -> list[ChunkState]:
        if not self.exists():
            return []
        rows = self.db.query(f"SELECT {self._COLS} FROM {self.table} WHERE id = {self.p} "
                             "ORDER BY chunk", (backfill,))
        return [self._chunk(r) for r in rows]

    def spec(self, backfill: str) -> ResolvedBackfill | None:
        if not self.exists():
            return None
        rows = self.db.query(f"SELECT spec FROM {self.table} WHERE id = {self.p} "
                             "ORDER BY chunk LIMIT 1", (backfill,))
        return ResolvedBackfill.from_json(rows[0][0]) if rows else None

    def create(self, rb: ResolvedBackfill, bounds: list[tuple[Any, Any, Any]],
               estimates: list[int], who: str) -> None:
        p = self.p
        with self.db.transaction():
            self.db.execute(f"DELETE FROM {self.table} WHERE id = {p}", (rb.id,))
            for i, ((lower, upper, cursor), est) in enumerate(zip(bounds, estimates,
                                                                 strict=True)):
                self.db.execute(
                    f"INSERT INTO {self.table} (id, chunk, chunks, table_name, spec, "
                    f"lower_bound, upper_bound, {self.cursor}, status, rows_estimate, started_by) "
                    f"VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, 'running', {p}, {p})",
                    (rb.id, i, len(bounds), rb.display, self._json(rb.to_json()),
                     self._json(lower), self._json(upper), self._json(cursor), est, who))

    def lock(self, backfill: str, chunk: int) -> tuple[str, Any]:
        """(status, cursor) of a chunk, locked until the end of the batch's transaction."""
        tail = self.db.dialect.lock_rows_clause
        rows = self.db.query(f"SELECT status, {self.cursor} FROM {self.table} WHERE id = {self.p} "
                             f"AND chunk = {self.p}{tail}", (backfill, chunk))
        if not rows:
            raise BadInput(f"no backfill {backfill} chunk {chunk} in {self.table}")
        return rows[0][0], self._load(rows[0][1])

    def advance(self, backfill: str, chunk: int, cursor: Any, scanned: int, updated: int,
                batch_size: int, done: bool) -> None:
        p = self.p
        status = f"'done', finished_at = {self.now}" if done else "'running'"
        self.db.execute(
            f"UPDATE {self.table} SET {self.cursor} = {p}, rows_scanned = rows_scanned + {p}, "
            f"rows_updated = rows_updated + {p}, batches = batches + 1, batch_size = {p}, "
            f"updated_at = {self.now}, error = NULL, status = {status} "
            f"WHERE id = {p} AND chunk = {p}",
            (self._json(cursor), scanned, updated, batch_size, backfill, chunk))

    def finish(self, backfill: str, chunk: int) -> None:
        self.db.execute(f"UPDATE {self.table} SET status = 'done', finished_at = {self.now}, "
                        f"updated_at = {self.now} WHERE id = {self.p} AND chunk = {self.p}",
                        (backfill, chunk))

    def set_status(self, backfill: str, status: str, *, chunk: int | None = None,
                   only_from: Sequence[str] = (), error: str | None = None) -> int:
        p = self.p
        conds = [f"id = {p}"]
        params: list[Any] = [status, error, backfill]
        if chunk is not None:
            conds.append(f"chunk = {p}")
            params.append(chunk)
        if only_from:
            conds.append(f"status IN ({', '.join(p for _ in only_from)})")
            params += list(only_from)
        conds_sql = " AND ".join(conds)
        return self.db.rowcount(f"UPDATE {self.table} SET status = {p}, error = {p}, "
                                f"updated_at = {self.now} WHERE {conds_sql}", params)

    def totals(self, backfill: str) -> tuple[int, int]:
        rows = self.db.query(f"SELECT coalesce(sum(rows_scanned), 0), "
                             f"coalesce(sum(rows_estimate), 0) FROM {self.table} "
                             f"WHERE id = {self.p}", (backfill,))
        return int(rows[0][0]), int(rows[0][1])

    def summaries(self, backfill: str | None = None) -> list[tuple[Any, ...]]:
        if not self.exists():
            return []
        where = f"WHERE id = {self.p}" if backfill else ""
        return self.db.query(
            f"SELECT id, min(table_name), min({self.db.dialect.as_text('spec')}), "
            f"count(*), sum(CASE WHEN status = 'done' THEN 1 ELSE 0 END), "
            f"sum(rows_scanned), sum(rows_updated), sum(coalesce(rows_estimate, 0)), "
            f"sum(batches), min(started_by), min(created_at), max(updated_at), "
            f"max(finished_at), max(error), "
            f"sum(CASE WHEN status = 'running' THEN 1 ELSE 0 END), "
            f"sum(CASE WHEN status = 'cancelled' THEN 1 ELSE 0 END), "
            f"sum(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) "
            f"FROM {self.table} {where} GROUP BY id ORDER BY min(created_at) DESC",
            (backfill,) if backfill else None)


# ------------------------------------------------------------------ resolving
def _resolve(db: Database, spec: BackfillSpec) -> ResolvedBackfill:
    rb = _catalog(db).resolve(db, spec)
    if spec.archive is not None:
        if len(rb.columns) != 1:
            raise BadInput("a backfill that records the rows it changes sets one column")
        rb.archive, rb.archive_key = spec.archive, list(spec.archive_key)
    if spec.not_null:
        rb.not_null = [nn or c in spec.not_null for c, nn in zip(rb.columns, rb.not_null,
                                                                   strict=True)]
    return rb


def _refuse_privileged_calls(db: Database, rb: ResolvedBackfill, effects: bool = True,
                             ) -> None:
    """A --set or --where is untrusted: it may not call what the server lets no ordinary
    user run (the name list of optsql misses some: pg_show_all_file_settings() reads the
    server's configuration files, pg_hba_file_rules() its access rules, and an UPDATE
    would copy them into the table), nor a function of the database that does more than
    compute a value (``effects``). Both are asked before anything evaluates the
    expressions (planning, --dry-run) and again before the first write: a read-only
    transaction does not contain such a function, nor does the shadow copy."""
    # (read from the table: the server resolves their operators and functions for its
    # columns' types, see privileged.function_effects)
    table = db.dialect.qname(rb.schema, rb.table)
    # (as its column's type, as the batches store it and the read-only check evaluates
    # it: an assignment cast of the database's own names nothing)
    runs = [f"SELECT {db.dialect.cast_to_column(e, t)} FROM {table}"
            for e, t in zip(rb.expressions, rb.types, strict=True)]
    if rb.where:
        runs.append(f"SELECT 1 FROM {table} WHERE {rb.where}")
    calls = db.privileged_calls(runs)
    if calls:
        raise SafetyRefusal(
            f"backfill of {rb.display} calls or reads {', '.join(calls)}, which the server "
            "lets no ordinary user run or read (its files, programs, settings or secrets): "
            "refused")
    found = db.function_effects(runs, []) if effects else []
    if found:
        raise SafetyRefusal(f"backfill of {rb.display} evaluates {found[0]}: refused")


def pick_columns(spec: BackfillSpec, table_display: str,
                  columns: dict[str, tuple[str, bool, str]], fold: Callable[[str], str],
                  ) -> list[str]:
    """Catalog names of the SET columns (unknown, generated or repeated: bad input)."""
    names: list[str] = []
    for s in spec.sets:
        wanted = s.column if s.quoted else fold(s.column)
        name = next((c for c in columns if c == wanted), None)
        if name is None and not s.quoted:
            name = next((c for c in columns if c.lower() == s.column.lower()), None) \
                if fold is str else None
        if name is None:
            known = ", ".join(list(columns)[:12])
            raise BadInput(f"unknown column {s.column!r} in --set for table {table_display} "
                           f"(columns: {known}{', ...' if len(columns) > 12 else ''})")
        if columns[name][2]:
            raise BadInput(f"column {table_display}.{name} is {columns[name][2]}: it cannot "
                           "be set by a backfill")
        if name in names:
            raise BadInput(f"column {table_display}.{name} is set twice")
        names.append(name)
    return names


# ------------------------------------------------------------------ statistics
@dataclass
class TableStats:
    rows: int
    exact: bool
    pages: int
    heap_bytes: int
    index_bytes: int
    block_size: int


# ------------------------------------------------------------------ shadow trial
@dataclass
class Trial:
    sample_rows: int
    matching: int
    seconds: float
    wal_bytes: int | None


def bad_row(rb: ResolvedBackfill, where: str, row: str, error: str) -> BadInput:
    return BadInput(f"the backfill of {rb.display} fails {where} for {row}: {error}; "
                    "nothing was written to the target")


def _shadow_trial(db: Database, rb: ResolvedBackfill, stats: TableStats,
                  opts: BackfillOptions, report: Reporter | None) -> Trial:
    return _catalog(db).shadow_trial(db, rb, stats, opts, report)


def _stats(db: Database, rb: ResolvedBackfill) -> TableStats:
    return _catalog(db).table_stats(db, rb)


def explain_on_shadow(shadow: Database, sql: BatchSql, rb: ResolvedBackfill) -> None:
    errors = _errors(shadow)
    params: list[Any]
    conds, params = sql.range(0, 1) if sql.ctid else ([], [])
    try:
        shadow.query("EXPLAIN " + sql.update_sql(conds), params)
    except errors as exc:
        raise BadInput(f"the backfill of {rb.display} is not valid SQL on the shadow copy: "
                       f"{error_line(exc)} (SET {rb.set_text}"
                       f"{' WHERE ' + rb.where if rb.where else ''})") from None


def trial_run(shadow: Database, sql: BatchSql, rb: ResolvedBackfill,
               sample: int) -> tuple[int, float]:
    """Run the batch statement over the whole sample; a failure is reported by row."""
    errors = _errors(shadow)
    hi: Any = None
    lo: Any = None
    if sql.ctid:
        lo, hi = 0, shadow.table_blocks(shadow.dialect.qname(rb.schema, rb.table)) + 1
    t0 = time.perf_counter()
    try:
        with shadow.transaction():
            updated = sql.update(lo, hi)
            shadow.restore_session_settings()
        return updated, time.perf_counter() - t0
    except errors as exc:
        first = error_line(exc)
    with shadow.transaction():
        found = locate_failure(sql, lo, hi, sample,
                               lambda c, p: _rowcount(shadow, sql.update_statements(c), p))
    if found:
        raise bad_row(rb, "on the shadow copy", found[0], found[1])
    raise BadInput(f"the backfill of {rb.display} fails on the shadow copy: {first}; "
                   "nothing was written to the target")


# ------------------------------------------------------------------ read-only check
def _check_target(db: Database, rb: ResolvedBackfill, ranges: list[tuple[Any, Any]],
                  stats: TableStats, report: Reporter | None) -> tuple[str, int | None]:
    """Evaluate the expressions on every row of the ranges, read-only; a failing row is
    bad input. Returns what was checked (for the plan's summary) and how many rows the
    WHERE selects (None if the check could not run)."""
    sql = BatchSql(db, rb)
    errors = _errors(db)
    checked = 0
    step = _CHECK_STEP_ROWS
    for lo, hi in ranges:
        cursor = lo
        while True:
            if sql.ctid:
                if cursor >= hi:
                    break
                density = stats.rows / max(stats.pages, 1)
                upto = min(hi, cursor + max(1, int(step / max(density, 1.0))))
                count_hint = step
            else:
                with db.read_only():
                    found = sql.bound(cursor, hi, step)
                if found is None:
                    break
                upto, count_hint = found
            try:
                with db.read_only():
                    db.set_local_settings(statement_timeout_ms=0)
                    rows, non_null = sql.check(cursor, upto)
            except errors as exc:
                if db.dialect.is_read_only_violation(exc):
                    return ("not evaluated on the target's rows: the expression writes "
                            f"({error_line(exc)}); tried on the shadow sample only"), None
                with db.read_only():
                    hit = locate_failure(sql, cursor, upto, count_hint,
                                         lambda c, p: sql.db.query(
                                             _check_sql(sql, c), p))
                if hit:
                    raise bad_row(rb, "on the target (read-only check)", hit[0],
                                   hit[1]) from None
                raise BadInput(f"the backfill of {rb.display} fails on the target "
                               f"(read-only check): {error_line(exc)}; nothing was "
                               "written") from None
            for i, nn in enumerate(non_null):
                if rb.not_null[i] and nn < rows:
                    with db.read_only():
                        row = sql.first_null(cursor, upto, i)
                    where = sql.describe_row(row) if row else "a row"
                    raise BadInput(f"the backfill of {rb.display} would set NOT NULL column "
                                   f"{rb.columns[i]} to NULL for {where}; nothing was written")
            checked += rows
            cursor = upto
    if report:
        report(f"checked {checked:,} row(s) of {rb.display} read-only: every expression "
               "evaluates")
    return f"every row of the target evaluated read-only ({checked:,} row(s))", checked


def _check_sql(sql: BatchSql, conds: list[str]) -> str:
    conds = list(conds)
    if sql.where:
        conds.append(sql.where)
    exprs = [sql.d.cast_to_column(e, t) for e, t in zip(sql.exprs, sql.rb.types, strict=True)]
    counts = ", ".join(f"{sql.d.count_sql}({e})" for e in exprs)
    return (f"SELECT count(*), {counts} FROM {sql.qt} "
            f"WHERE {' AND '.join(conds) or '1 = 1'}")


# ------------------------------------------------------------------ planning
def plan_backfill(dsn: str, spec: BackfillSpec, opts: BackfillOptions | None = None,
                  report: Reporter | None = None) -> BackfillPlan:
    """Resolve, try on a shadow, check read-only and estimate. Writes nothing."""
    opts = opts or BackfillOptions()
    opts.validate()
    with _connect(dsn) as db:
        # Nothing of planning writes to the target, and nothing can: expressions are
        # evaluated on it only in this read-only session (their trial runs on a shadow).
        db.read_only_session()
        try:
            return _plan_backfill(db, spec, opts, report)
        except _errors(db) as exc:
            if not db.dialect.is_read_only_violation(exc):
                raise
            # Reading the table ran code that writes: a row security policy's function
            # (the table's own code, not the options'): on 0717b2c "internal error:
            # ReadOnlySqlTransaction" from the count of its rows.
            raise BadInput(f"planning the backfill of {spec.table} only reads the target, "
                           f"and reading it ran code that writes ({error_line(exc)}): a "
                           "row security policy of the table, or a function it calls? "
                           "Nothing was written") from None


def _plan_backfill(db: Database, spec: BackfillSpec, opts: BackfillOptions,
                   report: Reporter | None) -> BackfillPlan:
    rb = _resolve(db, spec)
    if not opts.calls_checked:
        # Before the shadow trial and the read-only checks evaluate them: a value read
        # from the server's files would come back in an error message, and neither
        # contains a function of the database that does more than compute a value.
        # The shadow copy is writable, made with these credentials (often a
        # superuser's), on the target's server; a READ ONLY transaction still runs
        # COPY ... TO PROGRAM, dblink and untrusted languages. On 0717b2c
        # 'backfill --dry-run --set "n = exec_sql(\'COPY ... TO PROGRAM ...\')"' ran
        # the program (exec_sql: a function of the database running its argument).
        _refuse_privileged_calls(db, rb)
    state = Checkpoints(db)
    existing = [] if opts.restart else state.chunks(rb.id)
    stats = _stats(db, rb)
    sql = BatchSql(db, rb)
    checks: list[str] = []
    warnings: list[str] = []
    trial: Trial | None = None
    matching: int | None = None
    resuming = bool(existing) and not all(c.status == "done" for c in existing)
    if existing and not resuming:
        est = Estimate(stats.rows, stats.exact, 0)
        return BackfillPlan(rb, est, sql.display_statement(), existing,
                            state_table=state.table)
    if not resuming:
        trial = _shadow_trial(db, rb, stats, opts, report)
        checks.append(f"the batch statement on a shadow copy with a sample of "
                      f"{trial.sample_rows:,} row(s)")
        if report:
            report(f"shadow trial passed: {trial.matching:,} of {trial.sample_rows:,} "
                   f"sample row(s) updated in {trial.seconds * 1000:.0f} ms")
    if opts.check_rows:
        ranges = _remaining_ranges(rb, existing, stats)
        what, matching = _check_target(db, rb, ranges, stats, report)
        checks.append(what)
    est = _estimate(db, rb, stats, trial, opts, matching)
    if resuming:
        done = sum(c.rows_scanned for c in existing)
        warnings.append(f"resuming: {done:,} row(s) already done in "
                        f"{sum(c.batches for c in existing):,} batch(es)")
    if rb.key_kind == KEY_CTID:
        warnings.append("no primary or unique NOT NULL key: walking ctid block ranges; "
                        "rows already holding their new value are skipped")
    return BackfillPlan(rb, est, sql.display_statement(), existing, checks, warnings,
                        state_table=state.table)


def _remaining_ranges(rb: ResolvedBackfill, existing: list[ChunkState],
                      stats: TableStats) -> list[tuple[Any, Any]]:
    if rb.key_kind == KEY_CTID:
        if not existing:
            return [(0, stats.pages + 1)]
        return [(c.cursor, c.upper) for c in existing if c.status != "done"]
    if not existing:
        return [(None, None)]
    return [(_decode_key(c.cursor), _decode_key(c.upper)) for c in existing
            if c.status != "done"]


def _estimate(db: Database, rb: ResolvedBackfill, stats: TableStats, trial: Trial | None,
              opts: BackfillOptions, matching: int | None = None) -> Estimate:
    selectivity = 1.0
    if trial and trial.sample_rows:
        selectivity = trial.matching / trial.sample_rows
    if matching is not None and rb.key_kind != KEY_CTID:
        # The read-only check counted them: exact (as of the check).
        to_update, exact = matching, True
        selectivity = matching / max(stats.rows, 1)
    else:
        to_update = int(round(stats.rows * selectivity))
        exact = stats.exact and (rb.where is None or trial is None
                                 or trial.sample_rows >= stats.rows)
    est = Estimate(stats.rows, exact, to_update)
    if trial is None:
        return est
    est.sample_rows, est.sample_matching = trial.sample_rows, trial.matching
    if trial.matching:
        per_row = max(trial.seconds / trial.matching, 1e-6)
        est.rows_per_second = 1.0 / per_row
        # Batches add a round trip or three and a commit each.
        batch_rows = max(1.0, min(opts.max_batch_size, opts.target_batch_ms / 1000 / per_row))
        batches = to_update / batch_rows
        seconds = to_update * per_row + batches * 0.003 + batches * opts.sleep_ms / 1000
        if opts.max_rows_per_second:
            seconds = max(seconds, to_update / opts.max_rows_per_second)
        est.seconds = seconds
    if trial.wal_bytes is not None and trial.matching:
        est.wal_bytes_per_row = trial.wal_bytes / trial.matching
        fpw = db.query("SELECT current_setting('full_page_writes')")[0][0] == "on"
        # After a checkpoint, the first change to a page logs the whole page: count one
        # image per heap and index page of the touched part of the table (an upper bound).
        fpi = int((stats.heap_bytes + stats.index_bytes) * min(1.0, 2 * selectivity)) \
            if fpw else 0
        est.full_page_bytes = fpi
        est.wal_bytes = int(est.wal_bytes_per_row * to_update) + fpi
    return est


# ------------------------------------------------------------------ starting
def start_backfill(dsn: str, plan: BackfillPlan, opts: BackfillOptions | None = None,
                   ) -> list[int]:
    """Create (or re-arm, to resume) the checkpoint rows; the chunk numbers to run."""
    opts = opts or BackfillOptions()
    with _connect(dsn) as db:
        # (a killed runner's batch would hold its checkpoint row: see run_chunk)
        settle_orphans(db, 0.0, label=f"b={plan.resolved.id}")
        rb = plan.resolved
        if not opts.calls_checked:  # (planning ran them read-only; from here they write)
            _refuse_privileged_calls(db, rb)
        state = Checkpoints(db)
        state.ensure()
        existing = [] if opts.restart else state.chunks(rb.id)
        if existing:
            state.set_status(rb.id, "running", only_from=("pending", "running", "cancelled",
                                                         "failed"))
            return [c.chunk for c in existing if c.status != "done"]
        if opts.restart and db.dialect.has_advisory_locks:
            for c in state.chunks(rb.id):
                # Starting over under a live runner would apply its batches twice.
                with _runner_lock(db, rb.id, c.chunk, wait_s=0):
                    pass
        stats = _stats(db, rb)
        bounds = _split(db, rb, stats, max(1, opts.chunks))
        n = len(bounds)
        per = max(1, plan.estimate.rows_in_table // n)
        estimates = [per] * n
        estimates[-1] = max(1, plan.estimate.rows_in_table - per * (n - 1))
        from .execute import who

        state.create(rb, bounds, estimates, who(opts.started_by))
        return list(range(n))


def _split(db: Database, rb: ResolvedBackfill, stats: TableStats,
           chunks: int) -> list[tuple[Any, Any, Any]]:
    """(lower, upper, cursor) per chunk: keys split at sampled quantiles; ctid: blocks."""
    if rb.key_kind == KEY_CTID:
        end = stats.pages + 1  # blocks present when the backfill starts (+1: a partial one)
        edges = sorted({round(end * i / chunks) for i in range(chunks + 1)})
        return [(a, b, a) for a, b in zip(edges, edges[1:], strict=False)]
    if chunks == 1:
        return [(None, None, None)]
    sql = BatchSql(db, rb)
    keys = ", ".join(sql.qkeys)
    outs = ", ".join(sql.d.as_text(f"s.{k}") for k in sql.qkeys)
    order = ", ".join(f"s.{k}" for k in sql.qkeys)
    if stats.rows <= _SPLIT_SAMPLE_KEYS * 2:
        inner = f"SELECT {keys} FROM {sql.qt}"
    else:
        sampled = sql.d.sample_of(sql.qt, _SPLIT_SAMPLE_KEYS, stats.rows, seed=11)
        inner = f"SELECT {keys} FROM {sampled}"
    sample = [list(r) for r in db.query(f"SELECT {outs} FROM ({inner}) AS s ORDER BY {order}",
                                        [])]  # [], not None: the parts are %-escaped
    edges: list[list[Any]] = []
    for i in range(1, chunks):
        if not sample:
            break
        key = sample[min(len(sample) - 1, len(sample) * i // chunks)]
        if not edges or key != edges[-1]:
            edges.append(key)
    lowers: list[Any] = [None, *(_encode_key(e) for e in edges)]
    uppers: list[Any] = [*(_encode_key(e) for e in edges), None]
    return [(lo, hi, lo) for lo, hi in zip(lowers, uppers, strict=True)]


# ------------------------------------------------------------------ running
class _Pacer:
    """Batch size and pauses: near ``target_batch_ms`` per batch, never over the ceilings."""

    def __init__(self, opts: BackfillOptions, rows_per_block: float = 1.0) -> None:
        self.opts = opts
        self.max_size = opts.max_batch_size
        if opts.max_rows_per_second:
            # At most about a second's worth of rows per batch: a steady trickle, not
            # one big batch followed by a long sleep.
            self.max_size = max(opts.min_batch_size,
                                min(self.max_size, int(opts.max_rows_per_second)))
        self.size = min(opts.batch_size, self.max_size)
        self.failures = 0
        self.started = time.monotonic()
        self.updated = 0
        self.rows_per_block = max(rows_per_block, 1.0)

    def after_batch(self, rows: int, updated: int, full: bool, seconds: float) -> None:
        self.failures = 0
        self.updated += updated
        if not self.opts.adaptive:
            return
        target = self.opts.target_batch_ms / 1000
        if seconds > 2 * target:
            factor = 0.5
        elif not full:
            return  # a short last batch says nothing about the right size
        else:
            factor = min(1.5, max(0.5, target / max(seconds, 1e-4)))
        self.size = int(min(self.max_size, max(self.opts.min_batch_size, self.size * factor)))

    def after_retryable(self) -> float:
        """Shrink, and how long to wait before the next try (exponential, jittered)."""
        self.failures += 1
        self.size = max(self.opts.min_batch_size, self.size // 2)
        base = min(10.0, 0.05 * 2 ** min(self.failures, 10))
        return base * random.uniform(0.5, 1.0)

    def pause(self) -> float:
        """Seconds to wait before the next batch (sleep_ms, rows-per-second ceiling)."""
        wait = self.opts.sleep_ms / 1000
        if self.opts.max_rows_per_second:
            due = self.started + self.updated / self.opts.max_rows_per_second
            wait = max(wait, due - time.monotonic())
        return max(0.0, wait)

    def blocks(self) -> int:
        return max(1, int(self.size / self.rows_per_block))


def replication_lag_ms(db: Database) -> tuple[int, float | None]:
    """(replicas, worst lag in ms; None if not visible); (0, None) where the dialect
    cannot see its replicas."""
    return db.replication_lag_ms() or (0, None)


@contextmanager
def _runner_lock(db: Database, backfill: str, chunk: int, wait_s: float) -> Iterator[None]:
    """One runner per chunk (a session advisory lock, where the dialect has them; SQLite
    has one writer at a time). A crashed runner's session may take a moment to end: wait
    for it, then refuse."""
    if not db.dialect.has_advisory_locks:
        yield
        return
    a, b = _runner_key(backfill, chunk)
    deadline = time.monotonic() + wait_s
    while not db.try_advisory_lock(a, b):
        if time.monotonic() > deadline:
            raise SafetyRefusal(f"backfill {backfill} chunk {chunk} is being run by another "
                                "process; wait for it, or cancel it with "
                                "'lockplane backfill cancel'")
        time.sleep(0.2)
    try:
        yield
    finally:
        if not db.closed:
            db.advisory_unlock(a, b)


def _checked_spec(db: Database, backfill: str, stored: ResolvedBackfill,
                  expected: ResolvedBackfill | None, opts: BackfillOptions) -> None:
    """Refuse (exit 3) to run a spec read back from the state table unless it is the one
    that started: a row of ``lockplane.backfills`` edited between a crash and the resume
    (a wider WHERE, another SET, a name spliced into the batch statement) would otherwise
    run as it reads. Its SET, WHERE and table hash to its id (which the caller asked
    for); its expressions pass the parser's checks they passed when planned; what was
    resolved from the catalog (columns, types, the key and its operators) is resolved
    again and must be equal; an archive is one of Lockplane's own archive tables; and,
    when the caller planned this backfill itself (``expected``), it must equal that."""
    where = f"backfill {backfill} (its row in {Checkpoints(db).table})"
    fix = "cancel it (lockplane backfill cancel) and start it again from its plan"
    if stored.id != backfill or backfill_id(
            stored.dialect, stored.schema, stored.table, stored.columns, stored.expressions,
            stored.where) != backfill:
        raise SafetyRefusal(f"{where}: its table, SET or WHERE no longer hash to its id: "
                            f"changed since it started; {fix}")
    if stored.dialect != db.dialect.name:
        raise SafetyRefusal(f"{where}: written for {stored.dialect!r}, not "
                            f"{db.dialect.name}; {fix}")
    sets = tuple(SetClause(c, e, quoted=True) for c, e in zip(
        stored.columns, stored.expressions, strict=True))
    spec = BackfillSpec(db.dialect.qname(stored.schema, stored.table), sets, stored.where,
                        not_null=tuple(c for c, nn in zip(stored.columns, stored.not_null,
                                                           strict=True) if nn),
                        archive=stored.archive, archive_key=tuple(stored.archive_key))
    try:
        runnable(spec, db.dialect.name)  # (bad input: an expression no plan would hold)
        again = _resolve(db, spec)
    except BadInput as exc:
        raise SafetyRefusal(f"{where}: {exc.message}; {fix}") from None
    if stored.archive is not None and not _own_archive(db, stored.archive):
        raise SafetyRefusal(f"{where}: its archive is not one of Lockplane's archive "
                            f"tables; {fix}")
    now, then = again.to_json(), stored.to_json()
    for older in ("key_ops", "compare_types"):  # (absent from older checkpoints: see above)
        if not then[older]:
            now[older] = then[older]
    if now != then:
        raise SafetyRefusal(f"{where}: what it resolved from the catalog (columns, types, "
                            f"key) is not what it resolves to now; {fix}")
    if expected is not None and expected.to_json() != stored.to_json():
        raise SafetyRefusal(f"{where}: not the backfill this run planned; {fix}")
    if expected is None and not opts.calls_checked:  # (else: judged when it was planned)
        _refuse_privileged_calls(db, stored)


def _own_archive(db: Database, archive: str) -> bool:
    """Whether ``archive`` is ``Dialect.archive_table(name)`` for some name: a quoted
    identifier in Lockplane's own schema (or with its prefix), nothing else."""
    d = db.dialect
    mark = d.quote("x")[0]
    prefix = d.quote(d.state_schema) + "." if d.state_schema else ""
    rest = archive[len(prefix):] if archive.startswith(prefix) else ""
    if len(rest) < 2 or rest[0] != mark or rest[-1] != mark:
        return False
    ident = rest[1:-1].replace(mark * 2, mark)
    name = ident if d.state_schema else ident.removeprefix("_lockplane_")
    return bool(name) and d.archive_table(name) == archive


def run_chunk(dsn: str, backfill: str, chunk: int, opts: BackfillOptions | None = None,
              on_progress: ProgressCallback | None = None,
              stop: threading.Event | None = None,
              expected: ResolvedBackfill | None = None) -> ChunkResult:
    """Run one chunk of a started backfill to its end (or to a cancel). ``expected``: the
    spec the caller planned, which the stored one must equal (see _checked_spec)."""
    opts = opts or BackfillOptions()
    t_start = time.monotonic()
    with _connect(dsn) as db, TaggedSession(db, "backfill") as session:
        state = Checkpoints(db)
        try:
            rb = state.spec(backfill)
        except (TypeError, ValueError, AttributeError):  # (a row edited out of shape)
            raise SafetyRefusal(f"backfill {backfill}: its spec in {state.table} is not one "
                                "Lockplane wrote: refused; cancel it and start it again "
                                "from its plan") from None
        if rb is None:
            raise BadInput(f"no backfill {backfill} in {db.dsn_display}")
        _checked_spec(db, backfill, rb, expected, opts)
        # A killed runner's batch runs on (holding its rows, its checkpoint and the chunk)
        # until it ends, then rolls back: cancelled at once, as an apply settles its
        # orphans (crash.py).
        session.tag(f"b={backfill}")
        settle_orphans(db, 0.0, label=session.label)
        # Where there is one writer at a time (SQLite), the lock_timeout is how long a
        # batch waits for the other writers: the application, or the other chunks.
        db.set_writer_wait(opts.lock_timeout_ms
                           + 2 * opts.target_batch_ms * max(1, opts.chunks))
        with _runner_lock(db, backfill, chunk, opts.wait_for_runner_s):
            runner = _ChunkRunner(db, dsn, rb, chunk, opts, on_progress, stop, t_start)
            runner.session = session
            try:
                return runner.run()
            finally:
                if runner.db is not db:  # reconnected: that session is ours to close
                    runner.db.close()


class _ChunkRunner:
    def __init__(self, db: Database, dsn: str, rb: ResolvedBackfill, chunk: int,
                 opts: BackfillOptions, on_progress: ProgressCallback | None,
                 stop: threading.Event | None, t_start: float) -> None:
        self.db, self.dsn, self.rb, self.chunk, self.opts = db, dsn, rb, chunk, opts
        self.on_progress, self.stop, self.t_start = on_progress, stop, t_start
        self.session: TaggedSession | None = None  # (re-tagged when it reconnects)
        self.state = Checkpoints(db)
        self.sql = BatchSql(db, rb, keep=True)
        row = next((c for c in self.state.chunks(rb.id) if c.chunk == chunk), None)
        if row is None:
            raise BadInput(f"no chunk {chunk} in backfill {rb.id}")
        self.info = row
        self.upper = row.upper if self.sql.ctid else _decode_key(row.upper)
        chunks = self.state.chunks(rb.id)
        self.chunks = len(chunks)
        self.scanned_before = row.rows_scanned
        self.updated_before = row.rows_updated
        self.batches_before = row.batches
        stats = _stats(db, rb) if self.sql.ctid else None
        density = (stats.rows / max(stats.pages, 1)) if stats else 1.0
        self.pacer = _Pacer(opts, density)
        self.scanned = self.updated = self.batches = self.retries = 0
        self.last_ms = 0.0
        self.total = (sum(c.rows_scanned for c in chunks), sum(c.rows_estimate or 0
                                                                for c in chunks))
        self.total_at = time.monotonic()
        self.lag_warned = False

    # -------------------------------------------------------------- progress
    def _progress(self, status: str = "running", note: str | None = None) -> None:
        if not self.on_progress:
            return
        now = time.monotonic()
        if self.chunks > 1 and now - self.total_at > 1.0 and not db_closed(self.db):
            self.total = self.state.totals(self.rb.id)
            self.total_at = now
        total_scanned = (self.total[0] if self.chunks > 1
                         else self.scanned_before + self.scanned)
        elapsed = max(now - self.t_start, 1e-6)
        self.on_progress(Progress(
            backfill_id=self.rb.id, chunk=self.chunk, chunks=self.chunks,
            rows_scanned=self.scanned_before + self.scanned,
            rows_updated=self.updated_before + self.updated,
            rows_estimate=self.info.rows_estimate or 0,
            batches=self.batches_before + self.batches, batch_size=self.pacer.size,
            last_batch_ms=self.last_ms, rows_per_second=self.scanned / elapsed,
            total_scanned=total_scanned,
            total_estimate=self.total[1] if self.chunks > 1 else (self.info.rows_estimate or 0),
            status=status, note=note))

    def _sleep(self, seconds: float, note: str | None = None) -> None:
        if seconds <= 0:
            return
        if note:
            self._progress(note=note)
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if self.stop is not None and self.stop.is_set():
                return
            time.sleep(min(left, 0.25))

    # -------------------------------------------------------------- the loop
    def run(self) -> ChunkResult:
        if self.info.status == "done":
            return self._result("done")
        status = "done"
        while True:
            if self.stop is not None and self.stop.is_set():
                status = "stopped"
                break
            self._wait_for_replicas()
            try:
                done = self._batch()
            except _Cancelled:
                status = "cancelled"
                break
            if done:
                break
            self._sleep(self.pacer.pause())
        self._progress(status=status)
        return self._result(status)

    def _result(self, status: str) -> ChunkResult:
        return ChunkResult(self.chunk, status, self.scanned, self.updated, self.batches,
                           time.monotonic() - self.t_start, self.retries)

    def _batch(self) -> bool:
        """One batch in one transaction; True when the chunk is finished."""
        db, sql, state, rb = self.db, self.sql, self.state, self.rb
        errors = _errors(db)
        n = self.pacer.size
        t0 = time.perf_counter()
        after: Any = None
        upto: Any = None
        count = 0
        try:
            with db.transaction():
                db.set_local_settings(
                    self.opts.lock_timeout_ms, self.opts.statement_timeout_ms,
                    None if self.opts.synchronous_commit else False)
                status, cursor = state.lock(rb.id, self.chunk)
                if status == "cancelled":
                    raise _Cancelled()
                if status == "done":
                    return True
                if sql.ctid:
                    after = int(cursor)
                    if after >= int(self.upper):
                        state.finish(rb.id, self.chunk)
                        return True
                    upto = min(int(self.upper), after + self.pacer.blocks())
                    updated = sql.update(after, upto)
                    db.restore_session_settings()  # (what the UPDATE's triggers set)
                    count = int((upto - after) * self.pacer.rows_per_block)
                    state.advance(rb.id, self.chunk, upto, count, updated, n,
                                  done=upto >= int(self.upper))
                    new_cursor_done = upto >= int(self.upper)
                else:
                    after = _decode_key(cursor)
                    found = sql.bound(after, self.upper, n)
                    if found is None:
                        state.finish(rb.id, self.chunk)
                        return True
                    upto, count = found
                    updated = sql.update(after, upto)
                    db.restore_session_settings()
                    # The next batch finds no key and marks the chunk done.
                    new_cursor_done = False
                    state.advance(rb.id, self.chunk, _encode_key(upto), count, updated, n,
                                  done=False)
        except _Cancelled:
            raise
        except errors as exc:
            return self._failed(exc, after, upto, n)
        seconds = time.perf_counter() - t0
        self.last_ms = seconds * 1000
        self.scanned += count
        self.updated += updated
        self.batches += 1
        self.pacer.after_batch(count, updated, count >= n if not sql.ctid else True, seconds)
        self._progress()
        return new_cursor_done

    def _failed(self, exc: BaseException, after: Any, upto: Any, n: int) -> bool:
        reason = self.db.dialect.retry_reason(exc)
        if reason:
            self.retries += 1
            if self.pacer.failures >= self.opts.max_retries:
                msg = (f"gave up after {self.pacer.failures} {reason}s in a row on "
                       f"{self.rb.display}; the checkpoint is kept: re-run to resume")
                self._mark("failed", msg)
                raise ExecutionFailed(msg) from None
            wait = self.pacer.after_retryable()
            self._sleep(wait, note=f"{reason}: batch of {n:,} rolled back; retrying with "
                                   f"{self.pacer.size:,} in {wait:.1f} s")
            return False
        if _is_disconnect(self.db, exc):
            self._reconnect(exc)
            return False
        # A data error: find the row, record why the backfill stopped, and say so.
        first = error_line(exc)
        where = None
        if after is not None or upto is not None or not self.sql.ctid:
            try:
                with self.db.transaction():
                    self.db.set_local_settings(lock_timeout_ms=self.opts.lock_timeout_ms)
                    where = locate_failure(self.sql, after, upto, n, lambda c, p: _rowcount(
                        self.db, self.sql.update_statements(c), p))
            except _errors(self.db):
                where = None
        done = self.scanned_before + self.scanned
        what = f"{where[0]}: {where[1]}" if where else first
        msg = (f"the backfill of {self.rb.display} stopped at {what}; the {done:,} row(s) "
               "before it are done and kept: fix the data or the expression, then re-run "
               "to resume")
        self._mark("failed", msg)
        raise BadInput(msg) from None

    def _mark(self, status: str, error: str) -> None:
        try:
            self.state.set_status(self.rb.id, status, chunk=self.chunk, error=error)
        except _errors(self.db):
            pass

    def _reconnect(self, exc: BaseException) -> None:
        self.retries += 1
        for attempt in range(1, 6):
            self._sleep(min(10.0, 0.5 * 2 ** attempt),
                        note=f"connection lost ({error_line(exc)}); reconnecting")
            try:
                fresh = _connect(self.dsn)
            except BadInput:
                continue
            try:
                self.db.close()
            except Exception:  # noqa: BLE001 - it is gone already
                pass
            self.db = fresh
            if self.session is not None:
                self.session.move_to(fresh)
            self.state = Checkpoints(fresh)
            self.sql = BatchSql(fresh, self.rb)
            a, b = _runner_key(self.rb.id, self.chunk)
            if fresh.dialect.has_advisory_locks and not fresh.try_advisory_lock(a, b):
                raise SafetyRefusal(f"backfill {self.rb.id} chunk {self.chunk}: another "
                                    "runner took over while the connection was lost")
            return
        raise ExecutionFailed(f"lost the connection to {self.db.dsn_display} and could not "
                              "reconnect; the checkpoint is kept: re-run to resume")

    def _wait_for_replicas(self) -> None:
        ceiling = self.opts.max_replication_lag_ms
        if not ceiling:
            return
        while True:
            seen = self.db.replication_lag_ms()
            if seen is None:  # the dialect cannot see replicas
                return
            replicas, lag = seen
            if replicas == 0 or lag is None or lag <= ceiling:
                if replicas and lag is None and not self.lag_warned:
                    self.lag_warned = True
                    self._progress(note="replication lag not visible (needs pg_monitor); "
                                        "the lag ceiling is not applied")
                return
            if self.stop is not None and self.stop.is_set():
                return
            self._sleep(0.5, note=f"waiting for replicas: lag {lag / 1000:.1f} s > "
                                  f"{ceiling / 1000:.1f} s")


def run_backfill(dsn: str, plan: BackfillPlan, opts: BackfillOptions | None = None,
                 on_progress: ProgressCallback | None = None) -> BackfillResult:
    """Start (or resume) a planned backfill and run all its chunks (in parallel threads
    when there are several) to the end."""
    opts = opts or BackfillOptions()
    opts.validate()
    rb = plan.resolved
    if plan.status == "done" and not opts.restart:
        return BackfillResult(rb.id, rb.display, "already_done", 0, 0, 0, 0.0, 0,
                              len(plan.existing))
    chunks = start_backfill(dsn, plan, opts)
    t0 = time.monotonic()
    results: list[ChunkResult] = []
    if len(chunks) <= 1:
        results = [run_chunk(dsn, rb.id, c, opts, on_progress, expected=rb) for c in chunks]
    else:
        from concurrent.futures import ThreadPoolExecutor

        per_worker = BackfillOptions(**{**asdict(opts), "max_rows_per_second": (
            opts.max_rows_per_second / len(chunks) if opts.max_rows_per_second else None)})
        stop = threading.Event()
        with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
            futures = [pool.submit(run_chunk, dsn, rb.id, c, per_worker, on_progress, stop,
                                   rb) for c in chunks]
            try:
                results = [f.result() for f in futures]
            except BaseException:
                stop.set()
                raise
    return combine_results(rb, results, time.monotonic() - t0, total_chunks=len(chunks))


def combine_results(rb: ResolvedBackfill, results: Sequence[ChunkResult], seconds: float,
                    total_chunks: int) -> BackfillResult:
    status = "done" if all(r.status == "done" for r in results) else (
        "cancelled" if any(r.status == "cancelled" for r in results) else "stopped")
    return BackfillResult(
        rb.id, rb.display, status, sum(r.rows_scanned for r in results),
        sum(r.rows_updated for r in results), sum(r.batches for r in results), seconds,
        sum(r.lock_retries for r in results), total_chunks)


# ------------------------------------------------------------------ status, cancel
def backfill_status(dsn: str, backfill: str | None = None) -> list[BackfillStatus]:
    """Every backfill recorded in the target (or one), newest first."""
    with _connect(dsn) as db:
        state = Checkpoints(db)
        rows = state.summaries(backfill)
        live: set[str] = set()
        locks = db.dialect.has_advisory_locks
        if rows and locks:
            # Runners hold a session advisory lock per chunk: a 'running' chunk whose
            # lock nobody holds belongs to a runner that died (interrupted).
            held = db.held_advisory_locks(this_database=False)
            for r in rows:
                for c in range(int(r[3])):
                    a, b = _runner_key(r[0], c)
                    if (a & 0xFFFFFFFF, b & 0xFFFFFFFF) in held:
                        live.add(r[0])
        out: list[BackfillStatus] = []
        for r in rows:
            spec = ResolvedBackfill.from_json(r[2])
            chunks, done, running, cancelled, failed = (int(r[3]), int(r[4]), int(r[14]),
                                                        int(r[15]), int(r[16]))
            if done == chunks:
                status = "done"
            elif failed:
                status = "failed"
            elif cancelled:
                status = "cancelled"
            elif running:
                status = "running" if (r[0] in live or not locks) else "interrupted"
            else:
                status = "pending"
            out.append(BackfillStatus(
                id=r[0], table=r[1], set=spec.set_text, where=spec.where, status=status,
                chunks=chunks, chunks_done=done, rows_scanned=int(r[5] or 0),
                rows_updated=int(r[6] or 0), rows_estimate=int(r[7] or 0),
                batches=int(r[8] or 0), started_by=r[9], created_at=str(r[10]),
                updated_at=str(r[11]), finished_at=None if r[12] is None else str(r[12]),
                error=r[13]))
        return out


def find_backfill_id(dsn: str, spec: BackfillSpec) -> str:
    """The id a spec has on this database (resolving its table and columns)."""
    with _connect(dsn) as db:
        return _resolve(db, spec).id


def cancel_backfill(dsn: str, backfill: str) -> int:
    """Mark a backfill cancelled: its runners stop before their next batch, keeping the
    checkpoint (running the same backfill again resumes). Chunks cancelled."""
    with _connect(dsn) as db:
        state = Checkpoints(db)
        if not state.exists() or not state.chunks(backfill):
            raise BadInput(f"no backfill {backfill} in {db.dsn_display} "
                           "(see 'lockplane backfill status')")
        return state.set_status(backfill, "cancelled", only_from=("pending", "running",
                                                                  "failed"))


def chunk_runs(dsn: str, backfill: str) -> tuple[list[ChunkState], set[int] | None]:
    """The checkpoint rows of a backfill and the chunks a live runner holds right now.

    A runner holds a session advisory lock on its chunk while it runs (PostgreSQL); when
    its process dies the server ends the session and the lock goes with it. This is how
    a coordinator on another machine tells a dead runner from a slow one. ``None`` for
    the runners on SQLite, which has no such locks."""
    with _connect(dsn) as db:
        states = Checkpoints(db).chunks(backfill)
        if not db.dialect.has_advisory_locks:
            return states, None
        held = db.held_advisory_locks(this_database=True)
        live = set()
        for c in states:
            a, b = _runner_key(backfill, c.chunk)
            if (a & 0xFFFFFFFF, b & 0xFFFFFFFF) in held:
                live.add(c.chunk)
        return states, live


# ------------------------------------------------------------------ markdown
# Names, --set and --where come from the schema and the operator: inert text in the
# artifact (a name holding a backtick, a newline or a link adds nothing to the page).


def plan_markdown(plan: BackfillPlan, target: str) -> str:
    """The plan of a backfill as a reviewer reads it (Prefect artifacts, chat)."""
    from .ci_report import code, sql_block, text

    rb, est = plan.resolved, plan.estimate
    lines = [f"# Backfill {code(plan.id)} of {code(rb.display)} on {code(redact(target))}", "",
             "| | |", "|---|---|",
             f"| **Key** | {text(rb.key_text)} |",
             f"| **Set** | {text(rb.set_text, None)} |"]
    if rb.where:
        lines.append(f"| **Where** | {text(rb.where, None)} |")
    lines.append(f"| **Status** | {text(plan.status)} |")
    if plan.status != "done":
        lines.append(f"| **Rows** | {'' if est.rows_exact else '~'}{est.rows_to_update:,} to "
                     f"update of {'' if est.rows_exact else '~'}{est.rows_in_table:,} |")
        if est.seconds is not None:
            lines.append(f"| **Duration** | ~{human_duration(est.seconds)} |")
        if est.wal_bytes is not None:
            lines.append(f"| **WAL** | ~{human_bytes(est.wal_bytes)} "
                         f"({est.wal_bytes_per_row or 0:.0f} B/row) |")
        lines.append(f"| **Estimate** | {text(est.summary())} |")
    lines += ["", "Each batch:", "", sql_block([plan.statement], limit=100_000), ""]
    lines += [f"- ✅ checked: {text(c, None)}" for c in plan.checks]
    lines += [f"- ⚠️ {text(w, None)}" for w in plan.warnings]
    return "\n".join(lines) + "\n"


def result_markdown(result: BackfillResult, target: str) -> str:
    from .ci_report import code, text

    return "\n".join([
        f"# Backfill {code(result.id)} of {code(result.table)} on {code(redact(target))}", "",
        f"- **Status:** {text(result.status)}",
        f"- **Rows scanned:** {result.rows_scanned:,}",
        f"- **Rows updated:** {result.rows_updated:,}",
        f"- **Batches:** {result.batches:,} ({result.chunks} chunk(s))",
        f"- **Duration:** {human_duration(result.seconds)} "
        f"({result.rows_per_second:,.0f} rows/s)",
        f"- **Lock retries:** {result.lock_retries}"]) + "\n"


__all__ = [
    "BackfillOptions", "BackfillPlan", "BackfillResult", "BackfillSpec", "BackfillStatus",
    "BatchSql", "Checkpoints", "ChunkResult", "Estimate", "Progress", "ResolvedBackfill",
    "SetClause", "backfill_id", "backfill_status", "cancel_backfill", "check_expression",
    "coalesce_nulls", "computed_column", "concat_columns", "find_backfill_id",
    "human_bytes", "human_count", "human_duration", "locate_failure", "make_spec",
    "parse_set", "plan_backfill", "plan_markdown", "replication_lag_ms", "result_markdown",
    "run_backfill", "run_chunk", "start_backfill", "type_conversion",
]

