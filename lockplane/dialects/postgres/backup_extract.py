"""Rows from a backup, as upserts that fit today's schema: extract to a file, or merge back.

The backup is restored into a temporary read-only database (``restored_copy``) and the
table's rows are read from there, ``--where`` applied (checked with PostgreSQL's parser,
``optsql.condition``, like backfill's, and run read-only on the copy), in primary-key
order. They are mapped onto the live table:

- columns dropped since the backup are left out; columns added since are omitted, so
  they get their defaults (a NOT NULL column without one makes inserting impossible:
  refused, naming it); generated columns are never written;
- a column (or the table) renamed by a multi-phase migration recorded in
  ``lockplane.phases`` is written under its new name; while both names exist (mid
  migration) the old one is written and the migration's sync trigger carries it over;
- a column whose type changed is converted as an INSERT would convert it (an assignment
  cast: int to bigint, numeric to integer, text to varchar(n), which errors rather than
  truncates), or with an explicit CAST when only that exists; with no cast at all the
  column is refused, naming both types. Every staged value is converted once before
  anything is written, so a value that does not fit is found first.

**extract** writes ``INSERT ... VALUES ... ON CONFLICT ...`` statements (one transaction,
500 rows a statement). **merge** (``open_merge``) stages the rows in a temporary table on
a session of the live database (COPY straight from the copy: nothing persistent is
written before the operator confirms), compares them with the live rows by primary key
(would insert / update / skip, with a sample), then upserts them in short batches
through the backfill engine's checkpoints (``lockplane.backfills``): each batch and its
checkpoint commit together, so a crash loses at most the batch in flight and running the
merge again resumes after the last committed batch; a finished merge is never applied
twice. The merge's id is a hash of the backup, table, mapping, --where, --on-conflict and
the sha256 of the staged rows, so a re-run finds its checkpoint only if it would stage
exactly the same rows.

On conflict (a row whose primary key exists live): ``skip`` leaves the live row as it is
(rows written after the backup are untouched; any unique conflict skips the row),
``update`` sets the mapped columns to the backup's values (only where they differ),
``fail`` refuses the merge when any such row exists.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import IO, Any

import psycopg
from psycopg import sql as pgsql

from ...backup.core import RestoredCopy
from ...backup.manifest import Manifest
from ...backup.rows import (
    ROWS_PER_STATEMENT,
    SAMPLE,
    ColumnMap,
    ExtractResult,
    Mapping,
    MergeOptions,
    MergePreview,
    Rename,
    RowMergeBase,
    added_note,
    check_conflict_mode,
    check_where,
    first_line,
    live_column,
    same_table,
    split_table,
)
from ...backup.storage import Storage
from ...dsn import redact, redact_for
from ...errors import BadInput, ExecutionFailed, SafetyRefusal
from ...report import sql_comment
from . import connect_failure
from .backup import restored_copy

Reporter = Callable[[str], None]
# Text forms of values pinned on every session that reads or writes rows (both sides).
SESSION = ("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'; SET IntervalStyle = 'postgres'; "
           "SET extra_float_digits = 3; SET bytea_output = 'hex'; "
           "SET standard_conforming_strings = on; SET statement_timeout = 0")
STAGE = "lockplane_merge_rows"  # the temporary table (pg_temp) holding the staged rows


# ---------------------------------------------------------------------------- catalog
@dataclass
class _Col:
    name: str
    type: str
    not_null: bool
    has_default: bool
    identity: str  # '' | 'a' (always) | 'd' (by default)
    generated: bool


_COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.atthasdef,
       a.attidentity::text, a.attgenerated <> ''
FROM pg_attribute a
WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""
_PK = """
SELECT a.attname FROM pg_index i
JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, n) ON true
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = %s::regclass AND i.indisprimary ORDER BY k.n
"""
_FIND = """
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND c.relname = %s AND (%s::text IS NULL OR n.nspname = %s)
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'lockplane')
  AND n.nspname NOT LIKE 'pg\\_%%'
ORDER BY n.nspname = 'public' DESC, n.nspname
"""


def _regclass(schema: str, table: str) -> str:
    return pgsql.Identifier(schema, table).as_string(None)


def columns_of(conn: psycopg.Connection, schema: str, table: str) -> list[_Col]:
    rows = conn.execute(_COLUMNS, (_regclass(schema, table),)).fetchall()
    return [_Col(r[0], r[1], r[2], r[3], r[4] or "", r[5]) for r in rows]


def primary_key(conn: psycopg.Connection, schema: str, table: str) -> list[str]:
    return [r[0] for r in conn.execute(_PK, (_regclass(schema, table),)).fetchall()]


def find_table(conn: psycopg.Connection, schema: str | None, table: str
               ) -> tuple[str, str] | None:
    rows = conn.execute(_FIND, (table, schema, schema)).fetchall()
    if not rows:
        return None
    if schema is None and len(rows) > 1 and rows[0][0] != "public":
        found = ", ".join(f"{s}.{t}" for s, t in rows)
        raise BadInput(f"--table {table!r} is ambiguous ({found}): name the schema")
    return rows[0][0], rows[0][1]


# ---------------------------------------------------------------------------- renames
def recorded_renames(conn: psycopg.Connection) -> list[Rename]:
    """Column and table renames of multi-phase migrations not rolled back, oldest first."""
    if not conn.execute("SELECT pg_catalog.to_regclass('lockplane.phases'::pg_catalog.text) "
                        "IS NOT NULL").fetchone()[0]:  # type: ignore[index]
        return []
    rows = conn.execute(
        "SELECT migration_id, table_key, operation, plan->>'column', plan->>'new_name' "
        "FROM lockplane.phases WHERE operation IN ('rename_column', 'rename_table') "
        "AND status <> 'rolled_back' AND completed_phases > 0 ORDER BY started_at").fetchall()
    out = []
    for mid, table, op, column, new in rows:
        if not new or (op == "rename_column" and not column):
            continue
        out.append(Rename(mid, table, column if op == "rename_column" else None, new))
    return out


# ---------------------------------------------------------------------------- mapping
def resolve_live_table(live: psycopg.Connection, name: str,
                       renames: list[Rename]) -> tuple[str, str, list[Rename]]:
    """The live table ``--table`` names (directly, or as the old name of a recorded
    table rename), and the table renames that lead to it."""
    schema, table = split_table(name)
    found = find_table(live, schema, table)
    if found is not None:
        return found[0], found[1], []
    chain: list[Rename] = []
    current = table
    for r in renames:
        if r.column is None and r.table.split(".")[-1] == current and (
                schema is None or "." not in r.table or r.table.split(".")[0] == schema):
            chain.append(r)
            current = r.new_name
    if chain:
        found = find_table(live, schema, current)
        if found is not None:
            return found[0], found[1], chain
    raise BadInput(f"table {name!r} does not exist in the live database (rows are merged "
                   "into an existing table: recreate it first)")


def build_mapping(backup: psycopg.Connection, live: psycopg.Connection, name: str,
                  renames: list[Rename]) -> Mapping:
    schema, table, table_renames = resolve_live_table(live, name, renames)
    given_schema, given = split_table(name)
    old_names = [r.table.split(".")[-1] for r in renames
                 if r.column is None and r.new_name in (given, table)]
    b_found = None
    for candidate in dict.fromkeys([given, table, *old_names]):
        b_found = find_table(backup, given_schema, candidate) \
            or find_table(backup, schema, candidate)
        if b_found:
            break
    if b_found is None:
        raise BadInput(f"table {name!r} is not in the backup")
    bschema, btable = b_found
    bcols = columns_of(backup, bschema, btable)
    lcols = {c.name: c for c in columns_of(live, schema, table)}
    key = primary_key(live, schema, table)
    if not key:
        raise BadInput(f"{schema}.{table} has no primary key: rows cannot be matched with "
                       "the live ones")
    # Column renames recorded for this table (under its current or an older name).
    col_renames = [r for r in renames if r.column is not None and any(
        same_table(r.table, s, t) for s, t in
        [(schema, table), (bschema, btable)] + [(schema, o) for o in old_names])]
    if old_names and not table_renames:
        table_renames = [r for r in renames if r.column is None and r.new_name == table]
    m = Mapping(bschema, btable, schema, table, [], key)
    if table_renames:
        m.notes.append(f"table {bschema}.{btable} is now {schema}.{table} (multi-phase "
                       f"migration {table_renames[-1].migration_id})")
    used: set[str] = set()
    for c in bcols:
        target, note = live_column(c.name, col_renames, lcols)
        lc = lcols.get(target)
        if lc is None:
            m.left_out.append(c.name)
            m.notes.append(f"column {c.name} was dropped since the backup: left out")
            continue
        if lc.generated:
            m.notes.append(f"column {target} is generated: left to the database")
            continue
        used.add(target)
        m.columns.append(ColumnMap(c.name, target, c.type, lc.type, c.type,
                                   "same" if c.type == lc.type else "assign", note))
        if note:
            m.notes.append(f"column {c.name} {note}")
        if lc.identity == "a":
            m.overriding = True
    for lc in lcols.values():
        if lc.name in used or lc.generated:
            continue
        if lc.not_null and not lc.has_default and not lc.identity:
            m.required.append(lc.name)
        else:
            m.defaulted.append(lc.name)
            m.notes.append(added_note(lc.name, bool(lc.has_default or lc.identity),
                                      col_renames, used))
    missing_key = [k for k in key if k not in used]
    if missing_key:
        raise BadInput(f"{m.display}'s primary key ({', '.join(key)}) is not in the backup's "
                       f"{m.backup_display} (no {', '.join(missing_key)})")
    _check_types(live, m)
    return m


def _check_types(live: psycopg.Connection, m: Mapping) -> None:
    """Decide how each changed column's type converts; refuse those that cannot."""
    q = pgsql.Identifier
    for c in m.columns:
        if c.how == "same":
            continue
        known = live.execute("SELECT to_regtype(%s) IS NOT NULL", (c.backup_type,)).fetchone()
        c.stage_type = c.backup_type if known and known[0] else "text"
        # What an INSERT would do: parse analysis only (PREPARE), nothing runs.
        probe = pgsql.SQL("PREPARE lockplane_probe AS INSERT INTO {} ({}) SELECT NULL::{}"
                          ).format(q(m.schema, m.table), q(c.live), pgsql.SQL(c.stage_type))
        try:
            with live.transaction():
                live.execute("SET LOCAL lock_timeout = '2s'")
                live.execute(probe)
                live.execute("DEALLOCATE lockplane_probe")
            c.how = "assign"
        except psycopg.errors.DatatypeMismatch:
            c.how = "cast"
        except psycopg.Error as exc:
            raise ExecutionFailed(f"cannot check column {c.live}: {first_line(exc)}") from None
        if c.how == "cast":
            try:
                with live.transaction():
                    live.execute(pgsql.SQL("SELECT CAST(NULL::{} AS {})").format(
                        pgsql.SQL(c.stage_type), pgsql.SQL(c.live_type)))
            except psycopg.Error:
                raise BadInput(f"column {c.backup} was {c.backup_type} in the backup and "
                               f"{c.live} is {c.live_type} now: there is no cast between them"
                               ) from None
        c.note = ((c.note + "; ") if c.note else "") + (
            f"type {c.backup_type} -> {c.live_type}"
            + (" (explicit cast)" if c.how == "cast" else ""))
        m.notes.append(f"column {c.live}: {c.backup_type} in the backup, {c.live_type} now: "
                       + ("converted by an explicit CAST" if c.how == "cast" else
                          "converted as an INSERT converts it"))



# ---------------------------------------------------------------------------- SQL pieces
def _value_sql(c: ColumnMap, source: pgsql.Composable) -> pgsql.Composable:
    if c.how == "cast":
        return pgsql.SQL("CAST({} AS {})").format(source, pgsql.SQL(c.live_type))
    return source


def _conflict_sql(m: Mapping, on_conflict: str, alias: str = "t") -> pgsql.Composable:
    q = pgsql.Identifier
    if on_conflict == "fail":
        return pgsql.SQL("")
    if on_conflict == "skip":
        return pgsql.SQL(" ON CONFLICT DO NOTHING")
    rest = [c.live for c in m.columns if c.live not in m.key]
    keys = pgsql.SQL(", ").join(q(k) for k in m.key)
    if not rest:
        return pgsql.SQL(" ON CONFLICT ({}) DO NOTHING").format(keys)
    sets = pgsql.SQL(", ").join(pgsql.SQL("{} = EXCLUDED.{}").format(q(c), q(c)) for c in rest)
    mine = pgsql.SQL(", ").join(pgsql.SQL("{}.{}::text").format(q(alias), q(c)) for c in rest)
    theirs = pgsql.SQL(", ").join(pgsql.SQL("EXCLUDED.{}::text").format(q(c)) for c in rest)
    return pgsql.SQL(" ON CONFLICT ({}) DO UPDATE SET {} WHERE ROW({}) IS DISTINCT FROM "
                     "ROW({})").format(keys, sets, mine, theirs)


def _insert_head(m: Mapping) -> pgsql.Composable:
    q = pgsql.Identifier
    cols = pgsql.SQL(", ").join(q(c.live) for c in m.columns)
    over = pgsql.SQL(" OVERRIDING SYSTEM VALUE") if m.overriding else pgsql.SQL("")
    return pgsql.SQL("INSERT INTO {} AS t ({}){}").format(q(m.schema, m.table), cols, over)


def _select_backup(m: Mapping, where: str | None, numbered: bool) -> pgsql.Composable:
    q = pgsql.Identifier
    order = pgsql.SQL(", ").join(q(m.column(k).backup) for k in m.key)
    cols = pgsql.SQL(", ").join(q(c.backup) for c in m.columns)
    head = pgsql.SQL("row_number() OVER (ORDER BY {}), ").format(order) if numbered \
        else pgsql.SQL("")
    cond = pgsql.SQL(" WHERE ({}\n)").format(pgsql.SQL(where)) if where else pgsql.SQL("")  # type: ignore[arg-type]
    return pgsql.SQL("SELECT {}{} FROM {}{} ORDER BY {}").format(
        head, cols, q(m.backup_schema, m.backup_table), cond, order)


# ---------------------------------------------------------------------------- sessions
def _session(dsn: str, name: str) -> psycopg.Connection:
    try:
        conn = psycopg.connect(dsn, autocommit=True, connect_timeout=10,
                               application_name=name)
    except psycopg.OperationalError as exc:
        reason = connect_failure(exc, dsn)
        raise BadInput(f"cannot connect to {redact(dsn)}: {reason}") from None
    except psycopg.ProgrammingError as exc:
        raise BadInput(f"bad PostgreSQL URL {redact(dsn)}: {redact_for(str(exc), dsn)}") from None
    conn.execute(SESSION)
    return conn


def _check_inputs(live_dsn: str, table: str, where: str | None, on_conflict: str
                  ) -> str | None:
    check_conflict_mode(on_conflict)
    split_table(table)
    return check_where(where)


def _where_on_copy(backup: psycopg.Connection, copy_dsn: str, m: Mapping,
                   where: str | None) -> None:
    """The condition runs on the backup's table (its column names): plan it there, and
    judge what it calls before it runs. The copy is writable, made with the server's
    credentials (often a superuser's), and holds the backup's functions: on 0717b2c
    '--where "exec_sql(\'COPY ... TO PROGRAM ...\') = 1"' (a function of the backup
    running its argument) ran the program, and a failing cast of a value read from
    pg_authid or pg_show_all_file_settings() printed password hashes or the server's
    configuration in the error."""
    if not where:
        return
    try:
        with backup.transaction():
            backup.execute(pgsql.SQL("EXPLAIN SELECT 1 FROM {} WHERE ({}\n)").format(
                pgsql.Identifier(m.backup_schema, m.backup_table), pgsql.SQL(where)))  # type: ignore[arg-type]
    except psycopg.Error as exc:
        raise BadInput(f"--where {where!r} on the backup's {m.backup_display}: "
                       f"{first_line(exc)}") from None
    from . import PostgresDialect

    runs = [f"SELECT 1 FROM {pgsql.Identifier(m.backup_schema, m.backup_table).as_string(backup)}"
            f" WHERE ({where}\n)"]
    with PostgresDialect().connect(copy_dsn) as db:
        calls = db.privileged_calls(runs)
        if calls:
            raise SafetyRefusal(
                f"--where {where!r} calls or reads {', '.join(calls)}, which the server lets "
                "no ordinary user run or read (its files, programs, settings or secrets): "
                "refused")
        effects = db.function_effects(runs, [])
        if effects:
            raise SafetyRefusal(f"--where {where!r} evaluates {effects[0]}: refused")


@contextlib.contextmanager
def _restored_rows(storage: Storage, manifest: Manifest, live: psycopg.Connection, table: str,
                   server_dsn: str, jobs: int, report: Reporter,
                   ) -> Iterator[tuple[RestoredCopy, psycopg.Connection, Mapping]]:
    """The backup restored into a temporary copy, a session on it, and the mapping of its
    ``table`` onto the live one. Unknown tables are refused first."""
    renames = recorded_renames(live)
    resolve_live_table(live, table, renames)  # unknown table: before any restore
    with restored_copy(storage, manifest, server_dsn, jobs=jobs, report=report) as copy:
        backup = _session(copy.dsn, "lockplane backup extract")
        try:
            yield copy, backup, build_mapping(backup, live, table, renames)
        finally:
            backup.close()


# ---------------------------------------------------------------------------- extract
def _literal(v: str | None) -> str:
    if v is None:
        return "NULL"
    return "'" + v.replace("'", "''") + "'"


def _file_value(c: ColumnMap, v: str | None) -> str:
    if v is None:
        return "NULL"
    lit = _literal(v)
    if c.how == "same":
        return lit
    typed = f"{lit}::{c.stage_type}"
    return f"CAST({typed} AS {c.live_type})" if c.how == "cast" else typed


def extract_rows(storage: Storage, manifest: Manifest, live_dsn: str, table: str, out: IO[str], *,
                 where: str | None = None, on_conflict: str = "skip",
                 server_dsn: str | None = None, jobs: int = 1,
                 report: Reporter | None = None) -> ExtractResult:
    """Write the backup's rows of ``table`` as upserts fitting the live schema to ``out``."""
    report = report or (lambda _m: None)
    started = time.monotonic()
    cond = _check_inputs(live_dsn, table, where, on_conflict)
    live = _session(live_dsn, "lockplane backup extract")
    with contextlib.closing(live), _restored_rows(storage, manifest, live, table,
                                                  server_dsn or live_dsn, jobs, report) as (
            copy, backup, m):
        _where_on_copy(backup, copy.dsn, m, cond)
        if m.required:
            raise BadInput(f"{m.display}.{m.required[0]} is NOT NULL without a default and "
                           "not in the backup: its rows cannot be inserted")
        head = _insert_head(m).as_string(live)
        tail = _conflict_sql(m, on_conflict).as_string(live)
        # (names and notes come from databases: sql_comment keeps them in their comment)
        out.write(sql_comment(f"Rows of {m.backup_display} from backup {copy.manifest.id} "
                              f"({copy.manifest.created_at}), as upserts into {m.display}") + "\n")
        if cond:
            out.write(sql_comment(f"where: {' '.join(cond.split())}") + "\n")
        out.write(sql_comment(f"on conflict: {on_conflict}") + "\n")
        for note in m.notes:
            out.write(sql_comment(note) + "\n")
        out.write("SET standard_conforming_strings = on;\nSET TimeZone = 'UTC';\n"
                  "SET DateStyle = 'ISO, MDY';\nSET IntervalStyle = 'postgres';\nBEGIN;\n")
        query = pgsql.SQL("SELECT {} FROM ({}) AS b").format(
            pgsql.SQL(", ").join(pgsql.SQL("{}::text").format(pgsql.Identifier(c.backup))
                                 for c in m.columns), _select_backup(m, cond, False))
        rows = statements = 0
        batch: list[str] = []

        def flush() -> None:
            nonlocal statements
            if batch:
                out.write(f"{head} VALUES\n  " + ",\n  ".join(batch) + f"{tail};\n")
                statements += 1
                batch.clear()

        try:
            with backup.transaction(), backup.cursor(name="lockplane_extract") as cur:
                cur.itersize = 2000
                cur.execute(query)
                for r in cur:
                    batch.append("(" + ", ".join(_file_value(c, v) for c, v in
                                                 zip(m.columns, r, strict=True)) + ")")
                    rows += 1
                    if len(batch) >= ROWS_PER_STATEMENT:
                        flush()
        except psycopg.Error as exc:  # (the condition failed on a row: bad input)
            raise BadInput(f"reading the backup's rows of {m.backup_display}"
                           f"{' where ' + cond if cond else ''}: {first_line(exc)}") from None
        flush()
        out.write("COMMIT;\n")
        return ExtractResult(copy.manifest.id, m.display, rows, statements, m,
                             time.monotonic() - started)


# ---------------------------------------------------------------------------- merge
class RowMerge(RowMergeBase):
    """Backup rows staged in a temporary table on a live session, ready to merge."""

    def __init__(self, live: psycopg.Connection, live_dsn: str, m: Mapping, backup_id: str,
                 where: str | None, on_conflict: str, rows: int, digest: str) -> None:
        from ...backfill import KEY_PRIMARY, ResolvedBackfill

        self.live, self.live_dsn, self.m = live, live_dsn, m
        self.on_conflict, self.rows, self.digest = on_conflict, rows, digest
        body = json.dumps(["merge", backup_id, m.display, [asdict(c) for c in m.columns],
                           where, on_conflict, digest])
        self.id = hashlib.sha256(body.encode()).hexdigest()[:16]
        self.backup_id, self.where = backup_id, where
        # The checkpoint row's spec, as a backfill's (lockplane backfill status lists it).
        self.spec = ResolvedBackfill(
            id=self.id, dialect="postgres", schema=m.schema, table=m.table,
            columns=[c.live for c in m.columns],
            expressions=[f"backup {backup_id}.{c.backup}" for c in m.columns],
            types=[c.live_type for c in m.columns], not_null=[False for _ in m.columns],
            where=(f"restore rows ({on_conflict})" + (f" where {where}" if where else "")),
            key_kind=KEY_PRIMARY, key_name=None, key_columns=list(m.key),
            key_types=[m.column(k).live_type for k in m.key])
        self.preview = self._preview()

    # -- checkpoint
    def _db(self) -> Any:
        """A lockplane Database over the same session (for the checkpoint table)."""
        from .. import get_dialect
        from . import PostgresDatabase

        db = PostgresDatabase.__new__(PostgresDatabase)
        db.dialect = get_dialect("postgres")  # type: ignore[assignment]
        db.dsn, db.dsn_display, db.conn = self.live_dsn, redact(self.live_dsn), self.live
        return db

    def _checkpoint(self) -> tuple[str | None, int]:
        from ...backfill import Checkpoints

        chunks = Checkpoints(self._db()).chunks(self.id)
        if not chunks:
            return None, 0
        c = chunks[0]
        return c.status, int(c.cursor or 0)

    # -- preview
    def _join(self) -> pgsql.Composable:
        q = pgsql.Identifier
        on = pgsql.SQL(" AND ").join(
            pgsql.SQL("l.{} = {}").format(q(k), _value_sql(self.m.column(k), pgsql.SQL(
                "s.{}").format(q(k)))) for k in self.m.key)
        return pgsql.SQL("FROM pg_temp.{} s LEFT JOIN {} l ON {}").format(
            q(STAGE), q(self.m.schema, self.m.table), on)

    def _same(self) -> pgsql.Composable:
        q = pgsql.Identifier
        cols = [c for c in self.m.columns if c.live not in self.m.key]
        if not cols:
            return pgsql.SQL("true")
        live = pgsql.SQL(", ").join(pgsql.SQL("l.{}::text").format(q(c.live)) for c in cols)
        staged = pgsql.SQL(", ").join(
            pgsql.SQL("CAST({} AS {})::text").format(pgsql.SQL("s.{}").format(q(c.live)),
                                                    pgsql.SQL(c.live_type)) for c in cols)
        return pgsql.SQL("ROW({}) IS NOT DISTINCT FROM ROW({})").format(live, staged)

    def _preview(self) -> MergePreview:
        status, cursor = self._checkpoint()
        p = MergePreview(self.id, self.backup_id, self.m.display, self.on_conflict, self.where,
                         self.rows, cursor if status else 0,
                         "done" if status == "done" else ("resumable" if status else "new"),
                         mapping=self.m, digest=self.digest)
        if p.status == "done":
            return p
        q = pgsql.Identifier
        k0 = q(self.m.key[0])
        try:
            row = self.live.execute(pgsql.SQL(
                "SELECT count(*) FILTER (WHERE l.{k} IS NULL), "
                "count(*) FILTER (WHERE l.{k} IS NOT NULL AND {same}), "
                "count(*) FILTER (WHERE l.{k} IS NOT NULL AND NOT ({same})) "
                "{join} WHERE s.ord > %s").format(k=k0, same=self._same(), join=self._join()),
                (cursor,)).fetchone()
        except psycopg.Error as exc:
            raise BadInput(f"the backup's rows of {self.m.backup_display} do not fit "
                           f"{self.m.display}: {first_line(exc)}") from None
        assert row is not None
        new, same, changed = (int(x) for x in row)
        p.insert, p.unchanged, p.changed, p.conflicts = new, same, changed, same + changed
        if self.on_conflict == "update":
            p.update, p.skip = changed, same
        else:
            p.skip = same + changed
        p.sample_insert = self._sample("l.{} IS NULL", cursor)
        p.sample_changed = self._sample("l.{} IS NOT NULL AND NOT ({same})", cursor)
        if self.m.required and new:
            raise BadInput(f"{self.m.display}.{self.m.required[0]} is NOT NULL without a "
                           "default and not in the backup: its rows cannot be inserted")
        return p

    def _sample(self, cond: str, cursor: int) -> list[dict[str, Any]]:
        q = pgsql.Identifier
        cols = self.m.columns
        fields = pgsql.SQL(", ").join(
            [pgsql.SQL("s.{}::text").format(q(c.live)) for c in cols]
            + [pgsql.SQL("l.{}::text").format(q(c.live)) for c in cols])
        where = pgsql.SQL(cond).format(q(self.m.key[0]), same=self._same())
        rows = self.live.execute(pgsql.SQL("SELECT {} {} WHERE s.ord > %s AND {} "
                                           "ORDER BY s.ord LIMIT {}").format(
            fields, self._join(), where, pgsql.Literal(SAMPLE)), (cursor,)).fetchall()
        out = []
        n = len(cols)
        for r in rows:
            backup_vals, live_vals = r[:n], r[n:]
            key = {k: backup_vals[[c.live for c in cols].index(k)] for k in self.m.key}
            item: dict[str, Any] = {"key": key}
            diff = {c.live: {"backup": b, "live": lv} for c, b, lv in
                    zip(cols, backup_vals, live_vals, strict=True)
                    if c.live not in self.m.key and b != lv}
            if any(v is not None for v in live_vals):
                item["changed"] = diff
            else:
                item["row"] = {c.live: b for c, b in zip(cols, backup_vals, strict=True)}
            out.append(item)
        return out

    # -- run (RowMergeBase.run; the hooks)
    db_errors = (psycopg.Error,)

    @contextlib.contextmanager
    def _merging(self, opts: MergeOptions, who: str) -> Iterator[Any]:
        from ...backfill import Checkpoints, _runner_lock

        db = self._db()
        state = Checkpoints(db)
        state.ensure()
        self.live.execute("SET synchronous_commit = off")  # batch + checkpoint commit together
        with _runner_lock(db, self.id, 0, opts.wait_for_runner_s):
            self._record_start(state, who)
            yield state
        self.live.execute("SET synchronous_commit = on")

    @contextlib.contextmanager
    def _batch_transaction(self, opts: MergeOptions) -> Iterator[None]:
        with self.live.transaction():
            self.live.execute(pgsql.SQL("SET LOCAL lock_timeout = {}").format(
                pgsql.Literal(f"{int(opts.lock_timeout_ms)}ms")))
            yield

    def _is_lock_wait(self, exc: BaseException) -> bool:
        return isinstance(exc, psycopg.errors.LockNotAvailable)

    def _batch(self, after: int, upto: int) -> tuple[int, int]:
        q = pgsql.Identifier
        values = pgsql.SQL(", ").join(_value_sql(c, pgsql.SQL("s.{}").format(q(c.live)))
                                      for c in self.m.columns)
        stmt = pgsql.SQL("{} SELECT {} FROM pg_temp.{} s WHERE s.ord > %s AND s.ord <= %s "
                         "ORDER BY s.ord{} RETURNING (xmax = 0)").format(
            _insert_head(self.m), values, q(STAGE), _conflict_sql(self.m, self.on_conflict))
        rows = self.live.execute(stmt, (after, upto)).fetchall()
        inserted = sum(1 for (new,) in rows if new)
        return inserted, len(rows) - inserted


def _stage(backup: psycopg.Connection, live: psycopg.Connection, m: Mapping,
           where: str | None) -> tuple[int, str]:
    """COPY the backup's rows (numbered in key order) into pg_temp on the live session;
    (rows, sha256 of the stream)."""
    q = pgsql.Identifier
    cols = pgsql.SQL(", ").join(pgsql.SQL("{} {}").format(q(c.live), pgsql.SQL(c.stage_type))
                                for c in m.columns)
    live.execute(pgsql.SQL("DROP TABLE IF EXISTS pg_temp.{}").format(q(STAGE)))
    live.execute(pgsql.SQL("CREATE TEMPORARY TABLE {} (ord bigint PRIMARY KEY, {})").format(
        q(STAGE), cols))
    h = hashlib.sha256()
    src = pgsql.SQL("COPY ({}) TO STDOUT").format(_select_backup(m, where, True))
    dst = pgsql.SQL("COPY pg_temp.{} (ord, {}) FROM STDIN").format(
        q(STAGE), pgsql.SQL(", ").join(q(c.live) for c in m.columns))
    try:
        with backup.transaction(), backup.cursor().copy(src) as out, \
                live.cursor().copy(dst) as into:
            for chunk in out:
                h.update(chunk)
                into.write(chunk)
    except psycopg.Error as exc:
        raise BadInput(f"the backup's rows of {m.backup_display} do not fit {m.display}: "
                       f"{first_line(exc)}") from None
    live.execute(pgsql.SQL("ANALYZE pg_temp.{}").format(q(STAGE)))
    n = live.execute(pgsql.SQL("SELECT count(*) FROM pg_temp.{}").format(q(STAGE))).fetchone()
    return int(n[0]) if n else 0, h.hexdigest()


@contextlib.contextmanager
def open_merge(storage: Storage, manifest: Manifest, live_dsn: str, table: str, *,
               where: str | None = None, on_conflict: str = "skip",
               server_dsn: str | None = None, jobs: int = 1,
               report: Reporter | None = None) -> Iterator[RowMerge]:
    """Restore the backup, stage its rows of ``table`` on a live session, compare them
    with the live rows (``.preview``); ``.run()`` merges them. Nothing persistent is
    written before ``run``. The temporary copy is dropped once the rows are staged."""
    report = report or (lambda _m: None)
    cond = _check_inputs(live_dsn, table, where, on_conflict)
    live = _session(live_dsn, "lockplane backup merge")
    try:
        with _restored_rows(storage, manifest, live, table, server_dsn or live_dsn, jobs,
                            report) as (copy, backup, m):
            _where_on_copy(backup, copy.dsn, m, cond)
            t0 = time.monotonic()
            rows, digest = _stage(backup, live, m, cond)
            report(f"staged {rows:,} row(s) of {m.backup_display} in "
                   f"{time.monotonic() - t0:.1f} s")
            manifest_id = copy.manifest.id
        yield RowMerge(live, live_dsn, m, manifest_id, cond, on_conflict, rows, digest)
    finally:
        live.close()
