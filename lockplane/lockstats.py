"""Measured lock impact: run a plan on a shadow copy of the target and watch its locks.

``lockplane plan --analyze-locks`` answers "what will this step lock, and for how long?"
with a measurement instead of a rule of thumb:

1. introspect the target and refuse a plan made for another state (as apply does);
2. build a scratch database on the shadow server from the target's schema and copy its
   rows into it: a sample of up to ``sample_rows`` per table, or everything
   (``with_data``); then VACUUM ANALYZE, so autovacuum does not wake up mid-measurement;
3. run the steps one at a time, as apply runs them, while a second session polls
   ``pg_locks`` for the executing backend every few milliseconds;
4. scale what a scan or rewrite measured on the sample to the target's row count: an
   estimate, not a promise. Only the part that grows with the rows is scaled. Each step
   also runs, just before, on an empty copy of the schema: what it takes there (catalog
   work, the new relation's fsync, CONCURRENTLY's waits between its transactions) is paid
   once on the target too, not once per sampled row. The rest grows with the rows,
   an index build's sort as n log n.

The shadow database is dropped afterwards, whatever happens. A lock held for less than
one poll interval can be missed; the report says "not observed" rather than "not taken".
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
from pglast import ast, parse_sql
from pglast.enums import AlterTableType, ConstrType
from psycopg import sql as pgsql

from .backfill import human_bytes
from .dialects import get_dialect
from .dialects.postgres import ONLY_CATALOG_NAMES, PostgresDatabase, only_catalog_names
from .dsn import dialect_of, redact
from .errors import BadInput, ExecutionFailed, SafetyRefusal
from .model import Schema, Table
from .plan import Plan, Step

Reporter = Callable[[str], None]

POLL_INTERVAL_MS = 5.0
# A sampled transactional step also runs this many times in transactions rolled back
# before the run that counts; the fastest run is scaled. A stall of a busy server (or of
# this machine) during one short run would otherwise be multiplied by target/sample rows.
TRIAL_RUNS = 2
SHADOW_LOCK_TIMEOUT = "30s"  # nothing else runs on the shadow: a wait this long is a bug

# Weakest to strongest (PostgreSQL's table-level lock modes).
LOCK_MODES = ["ACCESS SHARE", "ROW SHARE", "ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE",
              "SHARE", "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE"]
_RANK = {m: i for i, m in enumerate(LOCK_MODES)}

_RELKIND = {"r": "table", "p": "table", "i": "index", "I": "index", "S": "sequence",
            "v": "view", "m": "materialized view", "f": "foreign table", "c": "type"}
_SYSTEM_SCHEMAS = ("pg_catalog", "information_schema")
_DML_TAGS = ("INSERT", "UPDATE", "DELETE", "MERGE", "COPY")

_POLL_SQL = """
SELECT l.relation::bigint, l.mode, l.granted, n.nspname, c.relname, c.relkind,
       tn.nspname, t.relname
FROM pg_locks l
LEFT JOIN pg_class c ON c.oid = l.relation
LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_index i ON i.indexrelid = c.oid
LEFT JOIN pg_class t ON t.oid = i.indrelid
LEFT JOIN pg_namespace tn ON tn.oid = t.relnamespace
WHERE l.pid = %s AND l.locktype = 'relation' AND l.database = %s
"""

_RESOLVE_SQL = """
SELECT c.oid::bigint, n.nspname, c.relname, c.relkind, tn.nspname, t.relname
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_index i ON i.indexrelid = c.oid
LEFT JOIN pg_class t ON t.oid = i.indrelid
LEFT JOIN pg_namespace tn ON tn.oid = t.relnamespace
WHERE c.oid = ANY(%s::oid[])
"""


# ------------------------------------------------------------------------ results
@dataclass
class TableRows:
    """Rows of one table on the target and on the shadow."""

    target: int
    shadow: int
    target_is_estimate: bool  # from pg_class.reltuples (planner statistics)

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "shadow": self.shadow,
                "target_is_estimate": self.target_is_estimate}


@dataclass
class LockHeld:
    """One lock the step's backend held (or waited for), grouped under its table."""

    table: str  # the table an index lock belongs to; the relation itself otherwise
    relation: str
    relation_kind: str
    mode: str  # "ACCESS EXCLUSIVE", as in the docs and in step.lock.mode
    first_seen_ms: float  # after the step started
    observed_ms: float  # first to last poll that saw it granted: a lower bound
    # observed_ms plus one poll period (it was taken since the poll before and released
    # before the poll after), at most the step's duration
    held_ms: float
    waited: bool
    seen_by_poll: bool  # False: only in the snapshot taken just before COMMIT
    estimated_held_ms: float | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"table": self.table, "relation": self.relation,
                               "relation_kind": self.relation_kind, "mode": self.mode,
                               "first_seen_ms": round(self.first_seen_ms, 2),
                               "observed_ms": round(self.observed_ms, 2),
                               "held_ms": round(self.held_ms, 2), "waited": self.waited,
                               "seen_by_poll": self.seen_by_poll}
        if self.estimated_held_ms is not None:
            out["estimated_held_ms"] = round(self.estimated_held_ms, 1)
        return out


@dataclass
class StepMeasurement:
    index: int  # 1-based, as printed
    description: str
    status: str  # ok | failed | not_run
    table: str | None = None
    predicted_lock: str | None = None
    predicted_lock_observed: bool | None = None
    duration_ms: float | None = None
    # The fastest of the step's runs on the sample (TRIAL_RUNS rolled back, then the one
    # that counts): what the estimate scales.
    fastest_ms: float | None = None
    estimated_duration_ms: float | None = None
    scale: float | None = None  # target rows / shadow rows, when the step's cost grows with them
    rows_touched: int | None = None
    rows_touched_source: str | None = None  # statement | table_stats | table_size
    wal_bytes: int | None = None
    estimated_wal_bytes: int | None = None
    # The step on an empty copy of the schema: the cost that does not grow with the rows.
    fixed_duration_ms: float | None = None
    fixed_wal_bytes: int | None = None
    growth: str | None = None  # how the rest grows with the rows: "n" | "n log n"
    # Pages that existed before the step, changed by it without a full-page image on the
    # sample (no checkpoint since the copy wrote them): each costs one on the target.
    page_images_missing: int | None = None
    table_rows: TableRows | None = None
    locks: list[LockHeld] = field(default_factory=list)
    summary: str = ""
    error: str | None = None
    poll_interval_ms: float = POLL_INTERVAL_MS
    polls: int | None = None  # polls of pg_locks that landed while the step ran

    def main_lock(self) -> LockHeld | None:
        """The strongest lock on the step's table (or on any table when it names none)."""
        on_tables = [lk for lk in self.locks if lk.relation == lk.table]
        mine = [lk for lk in on_tables if lk.table == self.table] or on_tables
        return max(mine, key=lambda lk: (_RANK.get(lk.mode, -1), lk.held_ms), default=None)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": self.status, "summary": self.summary, "error": self.error,
            "table": self.table, "predicted_lock": self.predicted_lock,
            "predicted_lock_observed": self.predicted_lock_observed,
            "duration_ms": None if self.duration_ms is None else round(self.duration_ms, 2),
            "fastest_ms": None if self.fastest_ms is None else round(self.fastest_ms, 2),
            "estimated_duration_ms": (None if self.estimated_duration_ms is None
                                      else round(self.estimated_duration_ms, 1)),
            "scale": None if self.scale is None else round(self.scale, 3),
            "rows_touched": self.rows_touched, "rows_touched_source": self.rows_touched_source,
            "wal_bytes": self.wal_bytes, "estimated_wal_bytes": self.estimated_wal_bytes,
            "fixed_duration_ms": (None if self.fixed_duration_ms is None
                                  else round(self.fixed_duration_ms, 2)),
            "fixed_wal_bytes": self.fixed_wal_bytes, "growth": self.growth,
            "page_images_missing": self.page_images_missing,
            "table_rows": self.table_rows.to_json() if self.table_rows else None,
            "locks": [lk.to_json() for lk in self.locks],
            "poll_interval_ms": self.poll_interval_ms, "polls": self.polls,
        }
        return {k: v for k, v in out.items() if v is not None}


@dataclass
class LockAnalysis:
    target: str  # redacted
    shadow_server: str  # redacted
    shadow_database: str | None
    with_data: bool
    sample_rows: int
    tables: dict[str, TableRows] = field(default_factory=dict)
    steps: list[StepMeasurement] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    poll_interval_ms: float = POLL_INTERVAL_MS

    @property
    def failed(self) -> StepMeasurement | None:
        return next((s for s in self.steps if s.status == "failed"), None)

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "shadow_server": self.shadow_server,
                "shadow_database": self.shadow_database, "with_data": self.with_data,
                "sample_rows": None if self.with_data else self.sample_rows,
                "poll_interval_ms": self.poll_interval_ms,
                "tables": {k: v.to_json() for k, v in self.tables.items()},
                "steps": [s.to_json() for s in self.steps], "warnings": self.warnings}

    def annotate(self, plan: Plan) -> None:
        """Put each step's measurement under ``measured`` in the plan (SQL and hashes
        stay as they are)."""
        for step, m in zip(plan.steps, self.steps, strict=False):
            step.measured = m.to_json()


# ------------------------------------------------------------------- formatting
def format_duration(ms: float) -> str:
    if ms < 1:
        return "<1 ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    s = ms / 1000
    if s < 10:
        return f"{s:.1f} s"
    if s < 90:
        return f"{s:.0f} s"
    m = s / 60
    if m < 10:
        return f"{m:.1f} min"
    if m < 90:
        return f"{m:.0f} min"
    return f"{m / 60:.1f} h"


def pg_mode_name(mode: str) -> str:
    """pg_locks' 'ShareUpdateExclusiveLock' -> 'SHARE UPDATE EXCLUSIVE'."""
    return re.sub(r"(?<!^)(?=[A-Z])", " ", mode.removesuffix("Lock")).upper()


def _label(schema: str | None, name: str) -> str:
    return f"{schema}.{name}" if schema else name


# ------------------------------------------------------------------ the monitor
@dataclass
class _Seen:
    first: float
    last: float
    granted_first: float | None
    granted_last: float | None
    waited: bool
    polled: bool = True


@dataclass(frozen=True)
class _Rel:
    schema: str
    name: str
    kind: str
    table: str  # owning table of an index; the relation itself otherwise


class _LockMonitor:
    """Polls pg_locks for one backend from its own session, on a thread of its own."""

    def __init__(self, conn: psycopg.Connection[Any], pid: int, db_oid: int,
                 interval_s: float) -> None:
        self.conn, self.pid, self.db_oid, self.interval_s = conn, pid, db_oid, interval_s
        self.seen: dict[tuple[int, str], _Seen] = {}
        self.names: dict[int, _Rel] = {}
        self.polls = 0
        self.poll_times: list[float] = []
        self.error: str | None = None
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lockplane-lock-monitor",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()
        self.ready.wait(10)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        try:
            with self.conn.cursor() as cur:
                while True:
                    cur.execute(_POLL_SQL, (self.pid, self.db_oid), prepare=True)
                    rows = cur.fetchall()
                    now = time.perf_counter()
                    self.record(rows, now)
                    self.polls += 1
                    self.poll_times.append(now)
                    self.ready.set()
                    if self._stop.wait(self.interval_s):
                        return
        except psycopg.Error as exc:
            self.error = redact(str(exc).strip().splitlines()[0] if str(exc).strip() else "")
        finally:
            self.ready.set()

    def record(self, rows: list[tuple[Any, ...]], now: float, polled: bool = True) -> None:
        """Rows of _POLL_SQL seen at ``now``; ``polled`` False for the executing
        session's own look at its locks just before COMMIT (call after stop())."""
        for oid, mode, granted, nsp, rel, kind, tnsp, trel in rows:
            key = (int(oid), str(mode))
            s = self.seen.get(key)
            if s is None:
                s = self.seen[key] = _Seen(now, now, None, None, False, polled)
            s.last = now
            if granted:
                s.granted_first = s.granted_first if s.granted_first is not None else now
                s.granted_last = now
            else:
                s.waited = True
            if nsp is not None and key[0] not in self.names:
                self.names[key[0]] = _rel(nsp, rel, kind, tnsp, trel)

    def resolve(self) -> None:
        """Name relations the polls could not (created inside the step's transaction)."""
        missing = [oid for oid, _ in self.seen if oid not in self.names]
        if not missing:
            return
        with self.conn.cursor() as cur:
            cur.execute(_RESOLVE_SQL, (missing,))
            for oid, nsp, rel, kind, tnsp, trel in cur.fetchall():
                self.names[int(oid)] = _rel(nsp, rel, kind, tnsp, trel)

    def polls_between(self, t0: float, t1: float) -> int:
        return sum(1 for t in self.poll_times if t0 <= t <= t1)

    def period_s(self, t0: float, t1: float) -> float:
        """The mean time between polls while the step ran."""
        during = [t for t in self.poll_times if t0 <= t <= t1]
        if len(during) < 2:
            return self.interval_s
        return (during[-1] - during[0]) / (len(during) - 1)

    def locks(self, t0: float, t1: float) -> list[LockHeld]:
        """The locks seen between ``t0`` and ``t1`` (the step's start and end)."""
        out: list[LockHeld] = []
        period = self.period_s(t0, t1)
        for (oid, mode), s in self.seen.items():
            rel = self.names.get(oid)
            # Catalog, TOAST and temporary relations (and ones gone before we could
            # name them, like a rewrite's transient heap) are not the user's tables.
            if rel is None or rel.schema in _SYSTEM_SCHEMAS or rel.schema.startswith(
                    ("pg_toast", "pg_temp")):
                continue
            first = s.granted_first if s.granted_first is not None else s.first
            seen = (s.granted_last - s.granted_first) if s.granted_first is not None \
                and s.granted_last is not None else 0.0
            held = min(seen + period, t1 - t0) if s.granted_first is not None else 0.0
            out.append(LockHeld(table=rel.table, relation=_label(rel.schema, rel.name),
                                relation_kind=rel.kind, mode=pg_mode_name(mode),
                                first_seen_ms=max(first - t0, 0.0) * 1000,
                                observed_ms=seen * 1000, held_ms=held * 1000,
                                waited=s.waited, seen_by_poll=s.polled))
        out.sort(key=lambda lk: (lk.table, lk.relation != lk.table, lk.relation,
                                 -_RANK.get(lk.mode, -1)))
        return out


def _rel(nsp: str, rel: str, kind: str, tnsp: str | None, trel: str | None) -> _Rel:
    table = _label(tnsp, trel) if trel is not None else _label(nsp, rel)
    return _Rel(nsp, rel, _RELKIND.get(kind, kind), table)


# ------------------------------------------------------------- the shadow's rows
@dataclass
class _TargetTable:
    table: Table
    relkind: str
    reltuples: float
    columns: list[str]  # copyable: not generated, not dropped
    binary_ok: bool  # every column's type (and element, base type) has binary send/recv


def _ident(schema: str | None, name: str) -> pgsql.Composable:
    return pgsql.Identifier(schema, name) if schema else pgsql.Identifier(name)


def _scalar(conn: psycopg.Connection[Any], query: Any, params: Any = None) -> Any:
    with conn.cursor() as cur:
        cur.execute(query, params)
        row = cur.fetchone()
    return row[0] if row else None


def _target_tables(conn: psycopg.Connection[Any], live: Schema) -> list[_TargetTable]:
    with conn.cursor() as cur:
        cur.execute("""
            WITH col AS (
                SELECT a.attrelid, a.attnum, a.attname::text AS name,
                       t.typsend::oid <> 0 AND t.typreceive::oid <> 0
                       AND coalesce(e.typsend::oid <> 0 AND e.typreceive::oid <> 0, true)
                       AND coalesce(b.typsend::oid <> 0 AND b.typreceive::oid <> 0, true)
                       AS binary_ok
                FROM pg_attribute a
                JOIN pg_type t ON t.oid = a.atttypid
                LEFT JOIN pg_type e ON e.oid = t.typelem AND t.typelem <> 0
                LEFT JOIN pg_type b ON b.oid = t.typbasetype AND t.typbasetype <> 0
                WHERE a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '')
            SELECT n.nspname, c.relname, c.relkind::text, c.reltuples::float8,
                   coalesce(array_agg(col.name ORDER BY col.attnum)
                            FILTER (WHERE col.name IS NOT NULL), '{}'),
                   coalesce(bool_and(col.binary_ok), true)
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            LEFT JOIN col ON col.attrelid = c.oid
            WHERE c.relkind IN ('r', 'p')
              AND n.nspname NOT IN ('pg_catalog', 'information_schema')
            GROUP BY 1, 2, 3, 4""")
        found = {(r[0], r[1]): r for r in cur.fetchall()}
    out = []
    for t in live.tables:
        row = found.get((t.schema_, t.name))
        if row is not None:
            out.append(_TargetTable(t, row[2], row[3], list(row[4]), bool(row[5])))
    return out


def _target_count(conn: psycopg.Connection[Any], tt: _TargetTable) -> tuple[int, bool]:
    """Rows on the target: the planner's estimate when there is one (a count(*) of a
    big production table is itself a load), an exact count otherwise."""
    t = tt.table
    name = _ident(t.schema_, t.name)
    if tt.relkind == "p":
        with conn.cursor() as cur:
            cur.execute("""
                SELECT coalesce(sum(greatest(c.reltuples, 0)), 0)::float8,
                       coalesce(bool_or(c.reltuples < 0), false)
                FROM pg_partition_tree(%s::regclass) p JOIN pg_class c ON c.oid = p.relid
                WHERE p.isleaf""", (name.as_string(conn),))
            est, unanalyzed = cur.fetchone() or (0.0, True)
        if not unanalyzed:
            return int(est), True
        query = pgsql.SQL("SELECT count(*) FROM {}").format(name)
    else:
        if tt.reltuples >= 0:
            return int(tt.reltuples), True
        query = pgsql.SQL("SELECT count(*) FROM ONLY {}").format(name)
    return int(_scalar(conn, query)), False


def _copy_table(src: psycopg.Connection[Any], dst: psycopg.Connection[Any],
                tt: _TargetTable, limit: int | None, fmt: str,
                of_parents: pgsql.Composable | None = None) -> tuple[int, bool]:
    """Copy (a sample of) one table; the rows copied, and whether the whole table was.

    ``of_parents``: a condition keeping the rows whose foreign keys point at rows already
    sampled (see _parents_condition): then those rows, up to ``limit``."""
    t = tt.table
    sampled = False
    name = _ident(t.schema_, t.name)
    cols = pgsql.SQL(", ").join(pgsql.Identifier(c) for c in tt.columns)
    select = pgsql.SQL("SELECT {} FROM ONLY {}").format(cols, name)
    if limit is not None and of_parents is not None:
        select = pgsql.SQL("{} WHERE {} LIMIT {}").format(select, of_parents,
                                                          pgsql.Literal(limit))
        sampled = True
    elif limit is not None:
        est = tt.reltuples
        if est > 4 * limit:
            # Blocks from all over the table, not just its first pages.
            pct = min(100.0, 150.0 * limit / est)
            sampled = True
            select = pgsql.SQL("{} TABLESAMPLE SYSTEM ({})").format(select, pgsql.Literal(pct))
        select = pgsql.SQL("{} LIMIT {}").format(select, pgsql.Literal(limit))
    fmt_sql = pgsql.SQL(fmt)
    out_q = pgsql.SQL("COPY ({}) TO STDOUT (FORMAT {})").format(select, fmt_sql)
    in_q = pgsql.SQL("COPY {} ({}) FROM STDIN (FORMAT {})").format(name, cols, fmt_sql)
    with src.transaction(), dst.transaction(), src.cursor() as sc, dst.cursor() as dc:
        with sc.copy(out_q) as cout, dc.copy(in_q) as cin:
            for chunk in cout:
                cin.write(chunk)
        copied = max(dc.rowcount, 0)  # "COPY n", known once the copy is finished
    return copied, limit is None or (not sampled and copied < limit)


def _parent_first(tables: list[_TargetTable]) -> list[_TargetTable]:
    """Referenced tables before the tables that reference them (cycles: as listed)."""
    by_key = {(tt.table.schema_, tt.table.name): tt for tt in tables}
    out: list[_TargetTable] = []
    seen: set[tuple[Any, str]] = set()

    def visit(tt: _TargetTable, path: set[tuple[Any, str]]) -> None:
        key = (tt.table.schema_, tt.table.name)
        if key in seen or key in path:
            return
        for fk in tt.table.foreign_keys:
            parent = by_key.get((fk.referenced_schema or tt.table.schema_, fk.referenced_table))
            if parent is not None and parent is not tt:
                visit(parent, path | {key})
        seen.add(key)
        out.append(tt)

    for tt in tables:
        visit(tt, set())
    return out


def _parents_condition(dst: psycopg.Connection[Any], tt: _TargetTable,
                       sampled: set[tuple[Any, str]]) -> pgsql.Composable | None:
    """Rows of ``tt`` whose every foreign key to a sampled table points at a row of the
    sample (or is NULL): a child's sample keeps the children of the sampled parents,
    instead of an independent sample that pruning then empties. None: no such key."""
    t = tt.table
    parts: list[pgsql.Composable] = []
    for fk in t.foreign_keys:
        ref = (fk.referenced_schema or t.schema_, fk.referenced_table)
        if ref not in sampled or ref == (t.schema_, t.name):
            continue
        types = [t.column(c).type if t.column(c) else None for c in fk.columns]
        if None in types:
            return None
        with dst.cursor() as cur:
            cur.execute(pgsql.SQL("SELECT DISTINCT {} FROM {}").format(
                pgsql.SQL(", ").join(pgsql.SQL("{}::text").format(pgsql.Identifier(c))
                                     for c in fk.referenced_columns),
                _ident(ref[0], ref[1])))
            keys = [r for r in cur.fetchall() if None not in r]
        names = [pgsql.Identifier(f"k{i}") for i in range(len(fk.columns))]
        arrays = pgsql.SQL(", ").join(
            pgsql.SQL("{}::text[]").format(pgsql.Literal([k[i] for k in keys]))
            for i in range(len(fk.columns)))
        casts = pgsql.SQL(", ").join(
            pgsql.SQL("u.{}::{}").format(n, pgsql.SQL(typ)) for n, typ in zip(
                names, types, strict=True))  # types as the target's catalog prints them
        cols = pgsql.SQL(", ").join(pgsql.Identifier(c) for c in fk.columns)
        nulls = pgsql.SQL(" OR ").join(pgsql.SQL("{} IS NULL").format(pgsql.Identifier(c))
                                       for c in fk.columns)
        parts.append(pgsql.SQL("(({}) IN (SELECT {} FROM unnest({}) AS u({})) OR {})").format(
            cols, casts, arrays, pgsql.SQL(", ").join(names), nulls))
    return pgsql.SQL(" AND ").join(parts) if parts else None


def _prune_orphans(conn: psycopg.Connection[Any], tables: list[_TargetTable]) -> int:
    """Delete sampled rows whose parent row was not sampled, so the shadow's foreign keys
    hold (a later VALIDATE or rewrite would otherwise fail on the sample alone)."""
    kinds = {(tt.table.schema_, tt.table.name): tt.relkind for tt in tables}
    deleted = 0
    for _ in range(len(tables) + 1):  # grandchildren lose rows after their parents do
        this_pass = 0
        for tt in tables:
            t = tt.table
            for fk in t.foreign_keys:
                ref = (fk.referenced_schema or t.schema_, fk.referenced_table)
                if ref not in kinds or (t.schema_, t.name) not in kinds:
                    continue
                only = pgsql.SQL("ONLY ") if tt.relkind == "r" else pgsql.SQL("")
                ref_only = pgsql.SQL("ONLY ") if kinds[ref] == "r" else pgsql.SQL("")
                not_null = pgsql.SQL(" AND ").join(
                    pgsql.SQL("c.{} IS NOT NULL").format(pgsql.Identifier(c)) for c in fk.columns)
                match = pgsql.SQL(" AND ").join(
                    pgsql.SQL("p.{} = c.{}").format(pgsql.Identifier(pc), pgsql.Identifier(cc))
                    for cc, pc in zip(fk.columns, fk.referenced_columns, strict=False))
                q = pgsql.SQL("DELETE FROM {}{} AS c WHERE {} AND NOT EXISTS "
                              "(SELECT 1 FROM {}{} AS p WHERE {})").format(
                    only, _ident(t.schema_, t.name), not_null, ref_only,
                    _ident(ref[0], ref[1]), match)
                with conn.cursor() as cur:
                    cur.execute(q)
                    this_pass += max(cur.rowcount, 0)
        deleted += this_pass
        if not this_pass:
            break
    return deleted


def _copy_sequences(src: psycopg.Connection[Any], dst: psycopg.Connection[Any]) -> None:
    """Sequences stand where the target's stand, identity and serial ones included, so a
    step that draws from one (a re-added column's default, a key it must not reuse) gives
    on the shadow what it gives on the target. The position is read from each sequence
    (``last_value`` and ``is_called``): pg_sequences shows none for one not drawn from
    since a setval(..., false) or a RESTART, which would start at 1 on the shadow."""
    with src.cursor() as cur:
        cur.execute("""SELECT schemaname::text, sequencename::text FROM pg_sequences
                       WHERE schemaname NOT IN ('pg_catalog', 'information_schema', 'lockplane')
                         AND has_sequence_privilege(
                               format('%I.%I', schemaname, sequencename), 'SELECT')""")
        names = cur.fetchall()
        positions = []
        for schema, name in names:
            cur.execute(pgsql.SQL("SELECT last_value, is_called FROM {}").format(
                _ident(schema, name)))
            row = cur.fetchone()
            if row is not None:
                positions.append((schema, name, row[0], row[1]))
    for schema, name, value, called in positions:
        try:
            _scalar(dst, "SELECT pg_catalog.setval(%s::regclass, %s, %s)",
                    (_ident(schema, name).as_string(dst), value, called))
        except psycopg.Error:
            pass  # not on the shadow, or out of range there


def copy_sequence_positions(shadow: PostgresDatabase, target_dsn: str) -> str | None:
    """Only the sequences' positions (when no rows could be copied); a warning if not."""
    try:
        target = shadow.dialect.connect(target_dsn)
    except Exception as exc:  # validation goes on without them
        return f"sequence positions not copied into the shadow ({_error_line(exc)})"
    assert isinstance(target, PostgresDatabase)
    try:
        target.conn.read_only = True
        with target.conn.transaction():
            _copy_sequences(target.conn, shadow.conn)
    except psycopg.Error as exc:
        return f"sequence positions not copied into the shadow ({_error_line(exc)})"
    finally:
        target.close()
    return None


def _load_rows(target: PostgresDatabase, shadow: PostgresDatabase, live: Schema,
               with_data: bool, sample_rows: int, report: Reporter | None,
               warnings: list[str]) -> dict[str, TableRows]:
    src, dst = target.conn, shadow.conn
    # (Lockplane's SQL alone runs on both here: the copy's triggers are off, see below)
    with only_catalog_names(src), only_catalog_names(dst):
        return _load_rows_in(src, dst, live, with_data, sample_rows, report, warnings)


def _load_rows_in(src: psycopg.Connection[Any], dst: psycopg.Connection[Any], live: Schema,
                  with_data: bool, sample_rows: int, report: Reporter | None,
                  warnings: list[str]) -> dict[str, TableRows]:
    tables = _target_tables(src, live)
    limit = None if with_data else sample_rows
    if report:
        what = "all rows" if with_data else f"a sample of up to {sample_rows:,} rows per table"
        report(f"copying {what} of {len(tables)} table(s) into the shadow database")
    counts: dict[str, tuple[int, bool]] = {}
    copied: dict[str, tuple[int, bool]] = {}  # rows copied, whether that was all of them
    try:
        dst.execute("SET session_replication_role = replica")
    except psycopg.Error as exc:
        raise BadInput(f"loading rows into the shadow needs a role that may set "
                       f"session_replication_role (superuser): {_error_line(exc)}") from None
    src.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    src.read_only = True
    try:
        # One snapshot for every table: the copy is as consistent as the target.
        with src.transaction():
            sampled: set[tuple[Any, str]] = set()  # tables copied in part
            for tt in _parent_first(tables):
                label = _label(tt.table.schema_, tt.table.name)
                counts[label] = _target_count(src, tt)
                if tt.relkind != "r" or not tt.columns:
                    continue  # partitioned parents hold no rows of their own
                of_parents = _parents_condition(dst, tt, sampled) if limit else None
                try:
                    copied[label] = _copy_table(src, dst, tt, limit,
                                                "binary" if tt.binary_ok else "text",
                                                of_parents)
                except psycopg.Error:
                    if not tt.binary_ok:
                        raise
                    # Binary records carry their fields' type OIDs, which differ between
                    # databases for user-defined types; text does not.
                    copied[label] = _copy_table(src, dst, tt, limit, "text", of_parents)
                if not copied[label][1]:
                    sampled.add((tt.table.schema_, tt.table.name))
            _copy_sequences(src, dst)
    except psycopg.Error as exc:
        raise ExecutionFailed(f"could not copy rows into the shadow database: "
                              f"{_error_line(exc)}") from None
    finally:
        src.isolation_level = None
        src.read_only = None
    try:
        if not with_data:
            pruned = _prune_orphans(dst, tables)
            if pruned:
                warnings.append(f"{pruned:,} sampled row(s) whose parent row was not sampled "
                                "were left out of the shadow")
        dst.execute("RESET session_replication_role")
        dst.execute("VACUUM (ANALYZE)")
    except psycopg.Error as exc:
        raise ExecutionFailed(f"could not prepare the shadow database: {_error_line(exc)}") \
            from None
    result: dict[str, TableRows] = {}
    for tt in tables:
        t = tt.table
        label = _label(t.schema_, t.name)
        only = "ONLY " if tt.relkind == "r" else ""
        shadow_rows = int(_scalar(dst, pgsql.SQL("SELECT count(*) FROM " + only + "{}").format(
            _ident(t.schema_, t.name))))
        target_rows, estimated = counts[label]
        n_copied, whole = copied.get(label, (0, False))
        if whole:
            target_rows, estimated = n_copied, False  # same snapshot: exact
        elif n_copied > target_rows:
            target_rows = n_copied  # stale statistics: there are at least this many
        result[label] = TableRows(target_rows, shadow_rows, estimated)
    return result


# ---------------------------------------------------------------- running steps
def _error_line(exc: BaseException) -> str:
    diag = getattr(exc, "diag", None)
    msg = getattr(diag, "message_primary", None) or (str(exc).strip().splitlines() or [""])[0]
    return redact(msg)


def _execute_all(conn: psycopg.Connection[Any], statements: Iterable[str],
                 held: PostgresDatabase | None = None) -> int | None:
    """Run the statements; the rows DML among them reported, or None if none was DML.
    ``held``: the session (conn's) whose held settings are put back after each statement
    (what code a statement fired changed: Database.restore_session_settings), before
    Lockplane's own SQL on it."""
    total: int | None = None
    with conn.cursor() as cur:
        for stmt in statements:
            cur.execute(stmt)
            tag = (cur.statusmessage or "").split(" ", 1)[0]
            if tag in _DML_TAGS and cur.rowcount >= 0:
                total = (total or 0) + cur.rowcount
            if held is not None:
                held.restore_session_settings(after=stmt)
    return total


def _xact_tuples(conn: psycopg.Connection[Any]) -> int:
    # This transaction's own counters: exact, and not delayed like pg_stat_user_tables.
    return int(_scalar(conn, "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) "
                             "FROM pg_stat_xact_user_tables") or 0)


def _run_step(shadow: PostgresDatabase, monitor_conn: psycopg.Connection[Any], db_oid: int,
              index: int, step: Step, tables: dict[str, TableRows], poll_interval_ms: float,
              warnings: list[str], own_wal: bool = False,
              fixed: tuple[float, int | None] | None = None) -> StepMeasurement:
    """Run one step on the sample, watching its locks. ``fixed``: the same step's duration
    and WAL on the empty copy (see _EmptyCopy), subtracted before scaling."""
    conn = shadow.conn
    pid = conn.info.backend_pid
    m = StepMeasurement(index=index, description=step.description, status="ok",
                        table=step.table,
                        predicted_lock=step.lock.mode if step.lock else None,
                        table_rows=tables.get(step.table or ""),
                        poll_interval_ms=poll_interval_ms)
    rows = m.table_rows
    trials = _trial_runs(conn, step) if step.transactional and rows is not None \
        and rows.shadow < rows.target and not _writes_rows(step) else []
    pages_before = _user_relation_pages(conn) if own_wal and rows is not None \
        and rows.shadow < rows.target else None
    # The insert position, not the flushed one: the shadow commits asynchronously.
    lsn_before = _scalar(conn, "SELECT pg_current_wal_insert_lsn()")
    monitor = _LockMonitor(monitor_conn, pid, db_oid, poll_interval_ms / 1000)
    monitor.start()
    dml_rows: int | None = None
    stat_rows = 0
    at_commit: list[tuple[Any, ...]] = []
    at_commit_time = 0.0
    t0 = time.perf_counter()
    try:
        if step.transactional:
            with conn.transaction():
                # PostgreSQL 15 keeps earlier transactions' counts in these counters
                # until the backend flushes them (when idle, at most once a second): a
                # catalog-only step read them as the copy's rows and was scaled up (its
                # WAL by 20x). The difference inside the transaction is this step's.
                stat_before = _xact_tuples(conn)
                dml_rows = _execute_all(conn, step.sql, shadow)
                stat_rows = max(_xact_tuples(conn) - stat_before, 0)
                # A transaction keeps its table locks until COMMIT: its own look at
                # pg_locks now catches every one, however briefly a poll could see it.
                with conn.cursor() as cur:
                    cur.execute(_POLL_SQL, (pid, db_oid))
                    at_commit = cur.fetchall()
                at_commit_time = time.perf_counter()
        else:
            dml_rows = _execute_all(conn, step.sql, shadow)  # alone, outside a transaction
    except psycopg.Error as exc:
        m.status, m.error = "failed", _error_line(exc)
    finally:
        t1 = time.perf_counter()
        m.duration_ms = (t1 - t0) * 1000
        monitor.stop()
    monitor.record(at_commit, at_commit_time, polled=False)
    lsn_after = _scalar(conn, "SELECT pg_current_wal_insert_lsn()")
    m.wal_bytes = _own_wal(conn, lsn_before, lsn_after, db_oid) if own_wal else None
    if m.wal_bytes is not None and pages_before and m.status == "ok":
        m.page_images_missing = _page_images_missing(conn, lsn_before, lsn_after, db_oid,
                                                     pages_before)
    if m.wal_bytes is None and own_wal:
        warnings.append(f"step {index}: its WAL could not be read back (on a busy server "
                        "the segments may already be recycled); its WAL is everything the "
                        "server wrote meanwhile, other databases included")
    if m.wal_bytes is None:  # everything the server wrote meanwhile, other databases too
        m.wal_bytes = int(_scalar(conn, "SELECT pg_wal_lsn_diff(%s, %s)",
                                  (lsn_after, lsn_before)))
    monitor.resolve()
    m.locks = monitor.locks(t0, t1)
    m.polls = monitor.polls_between(t0, t1)
    if monitor.error:
        warnings.append(f"step {index}: the lock monitor stopped early ({monitor.error}); "
                        "its locks may be incomplete")

    scans = bool(step.lock and (step.lock.scans_table or step.lock.rewrites_table))
    if dml_rows is not None:
        m.rows_touched, m.rows_touched_source = dml_rows, "statement"
    elif rows is not None and scans:
        m.rows_touched, m.rows_touched_source = rows.shadow, "table_size"
    elif stat_rows:
        m.rows_touched, m.rows_touched_source = stat_rows, "table_stats"
    if m.status == "ok" and rows is not None and rows.shadow > 0 \
            and (scans or bool(m.rows_touched)):
        m.scale = max(rows.target / rows.shadow, 1.0)
        m.fastest_ms = min([m.duration_ms, *trials])
        _estimate(m, step, rows, fixed)
    if m.predicted_lock in _RANK:
        m.predicted_lock_observed = any(
            lk.mode == m.predicted_lock and (step.table is None or lk.table == step.table)
            for lk in m.locks)
    m.summary = _summary(m)
    if step.backfill and m.status == "ok":
        # Measured here as one statement; apply cuts it into short committed batches.
        m.summary += "; apply runs it in small committed batches, each holding its locks briefly"
    return m


def _trial_runs(conn: psycopg.Connection[Any], step: Step,
                runs: int = TRIAL_RUNS) -> list[float]:
    """Run a transactional step ``runs`` times, each in a transaction rolled back; the
    durations (ms) of those that succeeded."""
    out: list[float] = []
    for _ in range(runs):
        t0 = time.perf_counter()
        try:
            with conn.transaction(force_rollback=True):
                _execute_all(conn, step.sql)
        except psycopg.Error:
            return out  # the run that counts fails the same way, and reports it
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _statements(step: Step) -> Iterator[ast.Node]:
    for text in step.sql:
        try:
            statements = parse_sql(text)
        except Exception:  # noqa: BLE001 - the server judges it when the step runs
            continue
        for raw in statements:
            yield raw.stmt


def _writes_rows(step: Step) -> bool:
    """Whether the step has DML: run and rolled back, it would leave dead rows behind
    that slow the steps after it, so it is not run for trial."""
    return bool(step.backfill) or any(
        isinstance(stmt, (ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt))
        for stmt in _statements(step))


def _sorts_rows(step: Step) -> bool:
    """Whether the step builds an index (CREATE INDEX, or a PRIMARY KEY / UNIQUE /
    EXCLUDE constraint that is not added USING an existing index): it sorts the rows."""
    for stmt in _statements(step):
        if isinstance(stmt, ast.IndexStmt):
            return True
        if isinstance(stmt, ast.AlterTableStmt):
            for cmd in stmt.cmds or ():
                c = getattr(cmd, "def_", None)
                if cmd.subtype == AlterTableType.AT_AddConstraint \
                        and isinstance(c, ast.Constraint) and not c.indexname \
                        and c.contype in (ConstrType.CONSTR_PRIMARY, ConstrType.CONSTR_UNIQUE,
                                          ConstrType.CONSTR_EXCLUSION):
                    return True
    return False


def _estimate(m: StepMeasurement, step: Step, rows: TableRows,
              fixed: tuple[float, int | None] | None) -> None:
    """Scale the sample's measurement to the target's rows: the fixed part (the step on
    the empty copy) once, the rest by how the work grows with the rows."""
    assert m.duration_ms is not None and m.wal_bytes is not None and m.scale is not None
    took = m.fastest_ms if m.fastest_ms is not None else m.duration_ms
    fixed_ms, fixed_wal = fixed if fixed is not None else (0.0, None)
    # More than half the sample's time "fixed" is noise of a busy server or a sample too
    # small to tell the two apart: at least half stays per-row work, so the estimate errs
    # high, not low.
    fixed_ms = min(fixed_ms, took / 2)
    wal_fixed = min(fixed_wal or 0, m.wal_bytes // 2)
    if fixed is not None:
        m.fixed_duration_ms = fixed_ms
        m.fixed_wal_bytes = wal_fixed if fixed_wal is not None else None
    growth = m.scale
    if _sorts_rows(step) and m.scale > 1 and rows.shadow >= 2:
        # Comparisons of a sort: n log n. (The index it writes, and its WAL, are linear.)
        growth = m.scale * math.log(rows.target) / math.log(rows.shadow)
        m.growth = "n log n"
    else:
        m.growth = "n"
    m.estimated_duration_ms = fixed_ms + (took - fixed_ms) * growth
    m.estimated_wal_bytes = int(wal_fixed + (m.wal_bytes - wal_fixed) * m.scale)
    if m.page_images_missing:
        # A table's pages were last changed long before a checkpoint: the step's first
        # change of each on the target writes its image (at least once; again after
        # every checkpoint a long step outlasts).
        m.estimated_wal_bytes += int(m.page_images_missing * m.scale * BLOCK_SIZE)
    stretch = m.estimated_duration_ms / m.duration_ms if m.duration_ms > 0 else m.scale
    for lk in m.locks:  # a lock held through the step is held through its estimate
        lk.estimated_held_ms = lk.held_ms * stretch


class _EmptyCopy:
    """The target's schema without rows, on the shadow server, kept in step with the
    sample: each step runs here first, and what it takes is its fixed cost."""

    def __init__(self, db: PostgresDatabase) -> None:
        self.db: PostgresDatabase | None = db
        self.oid = int(_scalar(db.conn, "SELECT oid FROM pg_database "
                                        "WHERE datname = current_database()"))
        self.own_wal = _walinspect(db.conn)
        db.execute(f"SET lock_timeout = '{SHADOW_LOCK_TIMEOUT}'")

    def run(self, step: Step) -> tuple[float, int | None] | None:
        """The step's duration (ms) and WAL (bytes; None: not measurable) here; None once
        a step has failed here (this copy no longer follows the sample)."""
        if self.db is None:
            return None
        conn = self.db.conn
        trials = _trial_runs(conn, step, 1) if step.transactional \
            and not _writes_rows(step) else []
        lsn_before = _scalar(conn, "SELECT pg_current_wal_insert_lsn()")
        t0 = time.perf_counter()
        try:
            if step.transactional:
                with conn.transaction():
                    _execute_all(conn, step.sql)
            else:
                _execute_all(conn, step.sql)
        except psycopg.Error:
            self.db = None
            return None
        ms = min([(time.perf_counter() - t0) * 1000, *trials])
        lsn_after = _scalar(conn, "SELECT pg_current_wal_insert_lsn()")
        wal = _own_wal(conn, lsn_before, lsn_after, self.oid) if self.own_wal else None
        return ms, wal


@contextlib.contextmanager
def _empty_copy(server: str, live: Schema, analysis: LockAnalysis) -> Iterator[_EmptyCopy | None]:
    """An empty copy of the target's schema, for a sample's fixed costs (None with a
    full copy of the data: nothing is scaled then)."""
    from .execute import build_shadow

    if analysis.with_data:
        yield None
        return
    with get_dialect(dialect_of(server)).scratch(server) as db:
        assert isinstance(db, PostgresDatabase)
        copy: _EmptyCopy | None = None
        try:
            build_shadow(db, live, live.hash())
            copy = _EmptyCopy(db)
        except (ExecutionFailed, psycopg.Error) as exc:
            analysis.warnings.append(f"no empty copy of the schema for the steps' fixed costs "
                                     f"({_error_line(exc)}): estimates scale the whole "
                                     "measured time")
        yield copy


def _walinspect(conn: psycopg.Connection[Any]) -> bool:
    """Whether the shadow can tell its own WAL from the server's (pg_walinspect, PG 15+).

    pg_current_wal_insert_lsn() is server-wide: measured by it, a step's WAL includes
    whatever every other database on the shadow server wrote meanwhile (on a busy server,
    far more than the step), and scaled to the target's rows that was multiplied again.
    """
    try:
        with conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
        return True
    except psycopg.Error:
        return False


BLOCK_SIZE = 8192  # a full-page image is at most a page (PostgreSQL's default block size)
_BLOCK_REF = re.compile(r"rel \d+/(\d+)/(\d+) fork (\w+) blk (\d+)( \(FPW\))?")


def _user_relation_pages(conn: psycopg.Connection[Any]) -> dict[int, int]:
    """Pages of each user relation's main fork, by file node (as WAL names them)."""
    with conn.cursor() as cur:
        cur.execute("SELECT pg_relation_filenode(oid)::bigint, "
                    "pg_relation_size(oid) / current_setting('block_size')::int "
                    "FROM pg_class WHERE oid >= 16384 AND relpersistence = 'p' "
                    "AND relkind IN ('r', 'i', 't', 'm') "
                    "AND pg_relation_filenode(oid) IS NOT NULL")
        return {int(node): int(pages) for node, pages in cur.fetchall()}


def _page_images_missing(conn: psycopg.Connection[Any], start: Any, end: Any, db_oid: int,
                         pages_before: dict[int, int]) -> int | None:
    """Pages of user relations that existed before the step, changed by it, and whose
    first change in these WAL records came without a full-page image."""
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT block_ref FROM pg_get_wal_records_info(%s, %s) "
                        "WHERE block_ref LIKE %s", (start, end, f"%/{db_oid}/%"))
            refs = [r[0] for r in cur.fetchall()]
    except psycopg.Error:
        return None
    changed: set[tuple[int, int]] = set()
    imaged: set[tuple[int, int]] = set()
    for ref in refs:  # WAL records as pg_walinspect prints them, not SQL
        for db, node, fork, blk, fpw in _BLOCK_REF.findall(ref):
            page = (int(node), int(blk))
            if int(db) != db_oid or fork != "main" or page[1] >= pages_before.get(page[0], 0):
                continue  # another database, a new relation or page, not the main fork
            if fpw and page not in changed:
                imaged.add(page)
            changed.add(page)
    return len(changed - imaged)


def _own_wal(conn: psycopg.Connection[Any], start: Any, end: Any, db_oid: int) -> int | None:
    """Bytes of the WAL records between two LSNs that touch this database's relations
    (commit records, a few dozen bytes, aside); None when they cannot be read."""
    deadline = time.monotonic() + 3.0
    try:
        # pg_walinspect reads only flushed WAL, and the shadow commits asynchronously:
        # a commit that waits for its flush carries every record before it to disk now,
        # instead of whenever the WAL writer of a busy server gets to it.
        with conn.transaction():
            conn.execute("SET LOCAL synchronous_commit = on")
            conn.execute("SELECT pg_current_xact_id()")
        while _scalar(conn, "SELECT pg_current_wal_flush_lsn() < %s::pg_lsn", (end,)):
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)
        return int(_scalar(conn, "SELECT coalesce(sum(record_length), 0) "
                                 "FROM pg_get_wal_records_info(%s, %s) "
                                 "WHERE block_ref LIKE %s", (start, end, f"%/{db_oid}/%")))
    except psycopg.Error:
        return None


def _rows_phrase(m: StepMeasurement) -> str:
    rows = m.table_rows
    if rows is None:
        return ""
    approx = "~" if rows.target_is_estimate else ""
    if m.scale is not None and rows.shadow < rows.target:
        return f" on {rows.shadow:,} of {approx}{rows.target:,} rows"
    return f" on all {rows.shadow:,} rows"


def _summary(m: StepMeasurement) -> str:
    """One sentence a reviewer reads: the strongest lock, on what, for how long."""
    if m.status == "failed":
        return f"failed on the shadow database: {m.error}"
    took = format_duration(m.duration_ms or 0.0)
    if m.scale and m.scale > 1 and m.estimated_duration_ms is not None:
        took += f" (~{format_duration(m.estimated_duration_ms)} on the target)"
    lock = m.main_lock()
    if lock is None:
        if m.predicted_lock in _RANK:
            where = f" on {m.table}" if m.table else ""
            if m.polls == 0:  # a busy machine did not schedule the monitor in time
                return (f"predicted {m.predicted_lock}{where}: not observed (the step "
                        f"ended before the lock monitor could poll); step took {took}")
            poll = format_duration(m.poll_interval_ms)
            return (f"predicted {m.predicted_lock}{where}: not observed (a lock held for "
                    f"less than ~{poll} can be missed); step took {took}")
        return f"no lock observed on a user table; step took {took}"
    held = format_duration(lock.held_ms)
    if lock.estimated_held_ms is not None and m.scale and m.scale > 1:
        text = (f"will hold {lock.mode} on {lock.table} for "
                f"~{format_duration(lock.estimated_held_ms)} "
                f"(measured {held}{_rows_phrase(m)})")
    else:
        text = f"will hold {lock.mode} on {lock.table} for ~{held} (measured{_rows_phrase(m)})"
    if lock.waited:
        text += "; it had to wait for the lock"
    if m.predicted_lock in _RANK and m.predicted_lock != lock.mode:
        if m.predicted_lock_observed:
            text += f"; also {m.predicted_lock}, as the plan predicts"
        else:
            text += f"; the plan predicts {m.predicted_lock} (not observed)"
    return text


# -------------------------------------------------------------------- the entry
def _of_major(plan: Plan, db: PostgresDatabase, what: str) -> None:
    from .execute import check_server_major

    try:
        check_server_major(plan, db)
    except SafetyRefusal as exc:
        raise SafetyRefusal(f"--analyze-locks: {what}: {exc.message}") from None


def analyze_locks(plan: Plan, target_dsn: str, shadow_server_dsn: str | None, *,
                  with_data: bool = False, sample_rows: int = 10000,
                  report: Reporter | None = None,
                  poll_interval_ms: float = POLL_INTERVAL_MS) -> LockAnalysis:
    """Measure each step's locks, duration, rows and WAL on a shadow copy of the target.

    ``shadow_server_dsn``: where the scratch database is made (None: the target's
    server). Refuses (SafetyRefusal) a plan whose ``source_hash`` is not the target's.
    A step that fails on the shadow is reported as failed; the steps after it are not run.
    """
    d = get_dialect(dialect_of(target_dsn))
    for name in (d.name, plan.dialect):
        if name and not get_dialect(name).measures_locks:
            raise BadInput(f"--analyze-locks needs PostgreSQL (it watches pg_locks); the "
                           f"{'target' if name == d.name else 'plan'} is {name}")
    server = shadow_server_dsn or target_dsn
    if dialect_of(server) != d.name:
        raise BadInput(f"--analyze-locks needs a {d.name} shadow server, not {redact(server)}")
    if not with_data and not 1 <= sample_rows <= 2**31 - 1:
        raise BadInput(f"--sample-rows must be from 1 to {2**31 - 1}, not {sample_rows}")
    target = d.connect(target_dsn)
    assert isinstance(target, PostgresDatabase)
    try:
        live = target.introspect()
        live_hash = live.hash()
        if live_hash != plan.source_hash:
            raise SafetyRefusal(
                f"plan was made for a database with hash {plan.source_hash[:12]}…, but "
                f"{redact(target_dsn)} has hash {live_hash[:12]}… (re-plan against its "
                "current state)")
        # A plan for another major (its SQL may use what only that one has) is refused
        # as apply refuses it (exit 3), on the target and on the server it is measured
        # on: a shadow server of another major would measure another server's locks.
        _of_major(plan, target, "the target")
        # The shadow runs every step with these credentials, on the target's own server
        # unless told otherwise: what apply refuses to run (a schema function that does
        # more than compute a value, a built-in no ordinary user may call) is refused here
        # too, before the shadow exists. A desired schema is untrusted during plan.
        from .execute import ApplyOptions, check_privileged_calls

        try:
            check_privileged_calls(target, plan, ApplyOptions())
        except SafetyRefusal as exc:
            raise SafetyRefusal(f"--analyze-locks: {exc.message.split(': applied,')[0]}: "
                                "run on the shadow, that code would run with this "
                                "connection's privileges") from None
        analysis = LockAnalysis(target=redact(target_dsn), shadow_server=redact(server),
                                shadow_database=None, with_data=with_data,
                                sample_rows=sample_rows, poll_interval_ms=poll_interval_ms)
        if not plan.steps:
            return analysis
        if report:
            report(f"building a shadow database on {redact(server)}")
        with d.scratch(server) as shadow:
            assert isinstance(shadow, PostgresDatabase)
            if shadow_server_dsn is not None:
                _of_major(plan, shadow, "the shadow server")
            analysis.shadow_database = shadow.conn.info.dbname
            _build_shadow(shadow, target, live, plan, analysis, report)
            target.close()  # everything else happens on the shadow
            with _empty_copy(server, live, analysis) as empty:
                _run_steps(plan, shadow, analysis, report, empty)
        return analysis
    finally:
        target.close()


def _build_shadow(shadow: PostgresDatabase, target: PostgresDatabase, live: Schema,
                  plan: Plan, analysis: LockAnalysis, report: Reporter | None) -> None:
    from .execute import build_shadow

    if not build_shadow(shadow, live, plan.source_hash):
        analysis.warnings.append("the shadow copy of the target differs slightly from the "
                                 "target; measurements are approximate")
    analysis.tables = _load_rows(target, shadow, live, analysis.with_data,
                                 analysis.sample_rows, report, analysis.warnings)


def _run_steps(plan: Plan, shadow: PostgresDatabase, analysis: LockAnalysis,
               report: Reporter | None, empty: _EmptyCopy | None = None) -> None:
    shadow.execute(f"SET lock_timeout = '{SHADOW_LOCK_TIMEOUT}'")
    # The steps fire the copy's triggers on this session, which Lockplane's measuring
    # SQL shares: held as apply's session is (restored after each statement).
    shadow.hold_session_settings()
    db_oid = int(_scalar(shadow.conn, "SELECT oid FROM pg_database "
                                      "WHERE datname = current_database()"))
    try:
        monitor_conn = psycopg.connect(shadow.dsn, autocommit=True, connect_timeout=10,
                                       application_name="lockplane lock monitor")
        monitor_conn.execute(ONLY_CATALOG_NAMES)
    except psycopg.Error as exc:
        raise ExecutionFailed(f"cannot open the lock monitor's session on the shadow "
                              f"database: {_error_line(exc)}") from None
    own_wal = _walinspect(shadow.conn)
    if not own_wal:
        analysis.warnings.append("pg_walinspect is not available on the shadow server: each "
                                 "step's WAL includes what other databases there wrote "
                                 "meanwhile")
    with monitor_conn:
        failed = False
        for i, step in enumerate(plan.steps, 1):
            if failed:
                analysis.steps.append(StepMeasurement(
                    i, step.description, "not_run", table=step.table,
                    predicted_lock=step.lock.mode if step.lock else None,
                    summary="not run: an earlier step failed on the shadow"))
                continue
            if report:
                report(f"measuring step {i}/{len(plan.steps)}: {step.description}")
            fixed = empty.run(step) if empty is not None else None
            if empty is not None and fixed is None and empty.db is None:
                analysis.warnings.append(f"step {i} failed on the empty copy of the schema: "
                                         "from it on, estimates scale the whole measured time")
                empty = None
            m = _run_step(shadow, monitor_conn, db_oid, i, step, analysis.tables,
                          analysis.poll_interval_ms, analysis.warnings, own_wal, fixed)
            analysis.steps.append(m)
            failed = m.status == "failed"


# ------------------------------------------------------------------ human output
def print_lock_analysis(analysis: LockAnalysis) -> None:
    """Per-step measured impact on stderr, after the plan summary."""
    from rich.text import Text

    from .report import err

    how = ("a full copy of the data" if analysis.with_data
           else f"a sample of up to {analysis.sample_rows:,} rows per table")
    err.print(Text(f"Measured lock impact (shadow: {how}; locks polled every "
                   f"{format_duration(analysis.poll_interval_ms)})", style="bold underline"))
    for m in analysis.steps:
        head = Text(f"{m.index:>3}. ")
        head.append(m.description, style="bold")
        err.print(head)
        style = {"ok": "", "failed": "red", "not_run": "dim"}[m.status]
        err.print(Text(f"     {m.summary}", style=style))
        if m.status != "ok":
            continue
        facts = [f"took {format_duration(m.duration_ms or 0)}"]
        if m.estimated_duration_ms is not None and m.scale and m.scale > 1:
            fixed = "" if m.fixed_duration_ms is None else \
                f", {format_duration(m.fixed_duration_ms)} of it fixed"
            fastest = "" if m.fastest_ms is None or m.fastest_ms >= m.duration_ms else \
                f"fastest of {TRIAL_RUNS + 1} runs {format_duration(m.fastest_ms)}; "
            facts[0] += (f" ({fastest}~{format_duration(m.estimated_duration_ms)} on the "
                         f"target{fixed})")
        if m.rows_touched is not None:
            facts.append(f"{m.rows_touched:,} rows")
        if m.wal_bytes is not None:
            wal = f"WAL {human_bytes(m.wal_bytes)}"
            if m.estimated_wal_bytes is not None and m.scale and m.scale > 1:
                wal += f" (~{human_bytes(m.estimated_wal_bytes)} on the target)"
            facts.append(wal)
        if m.predicted_lock:
            seen = {True: "observed", False: "not observed", None: "nothing to observe"}
            facts.append(f"plan predicts {m.predicted_lock} "
                         f"({seen[m.predicted_lock_observed]})")
        err.print(Text("     " + ", ".join(facts), style="dim"))
        by_table: dict[str, list[str]] = {}
        for lk in m.locks:
            what = lk.mode if lk.relation == lk.table else \
                f"{lk.relation_kind} {lk.relation.split('.', 1)[-1]}: {lk.mode}"
            by_table.setdefault(lk.table, []).append(
                f"{what} {format_duration(lk.held_ms)}" + (" (waited)" if lk.waited else ""))
        for table, held in by_table.items():
            err.print(Text(f"     locks on {table}: " + "; ".join(held), style="dim"))
    for w in analysis.warnings:
        err.print(f"[yellow]warning:[/] {w}")


# ------------------------------------------------------- rows for apply's shadow
SHADOW_SAMPLE_ROWS = 1000


def copy_sample(shadow: PostgresDatabase, target_dsn: str, live: Schema,
                rows: int = SHADOW_SAMPLE_ROWS) -> list[str]:
    """Copy an FK-consistent sample of the target's rows into a shadow built from its
    schema (apply's validation: a step that fails on data, such as ADD COLUMN ... NOT
    NULL without a default on a table with rows, then fails there, not on the target).
    Returns warnings; a sample that cannot be copied leaves the shadow schema-only."""
    warnings: list[str] = []
    try:
        target = shadow.dialect.connect(target_dsn)
    except Exception as exc:  # validation goes on without rows
        return [f"no rows copied into the shadow ({_error_line(exc)}): validated on the "
                "schema alone"]
    assert isinstance(target, PostgresDatabase)
    try:
        _load_rows(target, shadow, live, False, rows, None, warnings)
    except (BadInput, ExecutionFailed) as exc:
        warnings.append(f"no rows copied into the shadow ({exc.message}): validated on the "
                        "schema alone")
        try:
            shadow.conn.execute("RESET session_replication_role")
        except psycopg.Error:
            pass
        # Without rows, sequences still start where the target's stand.
        if (failed := copy_sequence_positions(shadow, target_dsn)) is not None:
            warnings.append(failed)
    finally:
        target.close()
    return warnings

