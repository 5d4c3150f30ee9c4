"""SQLite: compare a backup with the live file, extract its rows, merge them back.

The backup is copied into a temporary read-only file (``restored_copy``). **compare**
opens the live file read-only and ATTACHes that copy read-only (``file:...?mode=ro``) as
``lockplane_backup``: per table, rows added, deleted and changed are counted in SQL by
primary key, or by rowid for a rowid table without one (said in the report: a VACUUM
may renumber such rowids). Rows are compared over the columns both sides have (renames
recorded by multi-phase migrations in ``_lockplane_phases`` followed) with ``IS``, so
NULLs and SQLite's storage classes count: ``1`` and ``'1'`` differ.

**extract** and **merge** read the backup's table on a read-only connection whose main
database is the copy, so a ``--where`` (checked with PostgreSQL's parser in the lexical
subset both lexers agree on, then prepared by SQLite on the copy) sees only the
backup's tables. Rows are mapped onto the live table as on PostgreSQL: columns dropped
since are left out, columns added since get their defaults (a NOT NULL one without a
default refuses), generated columns are left to the database, renamed ones are written
under their new name; a changed declared type needs no conversion (SQLite applies the
live column's affinity, as any INSERT does) and is noted.

**merge** stages the rows, numbered in key order, in a TEMP table of a session on the
live file (nothing persistent is written before ``run``), compares them with the live
rows (would insert / update / skip, with a sample), then writes them in short batches
through the backfill engine's checkpoints (``_lockplane_backfills``): each batch and its
checkpoint commit in one ``BEGIN IMMEDIATE`` transaction, so a crash loses at most the
batch in flight and a re-run resumes after the last committed batch; a finished merge
is never applied twice. Other writers keep writing between batches (a batch waits for
the write lock up to the lock timeout, then is retried smaller).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from ...backup.manifest import Manifest
from ...backup.rows import (
    ROWS_PER_STATEMENT,
    SAMPLE,
    ColumnMap,
    CompareReport,
    ExtractResult,
    Mapping,
    MergeOptions,
    MergePreview,
    Rename,
    RowMergeBase,
    TableComparison,
    added_note,
    check_where,
    first_line,
    live_column,
    pair_tables,
    same_table,
    split_table,
)
from ...backup.storage import Storage
from ...dsn import redact, sqlite_path
from ...errors import BadInput, ExecutionFailed
from ...report import sql_comment
from .backup import open_existing, read_only, restored_copy, ro_uri

Reporter = Callable[[str], None]
BACKUP = "lockplane_backup"  # the attached copy's schema name
STAGE = "lockplane_merge_rows"  # the TEMP table holding staged rows
ROWID_ALIASES = ("rowid", "_rowid_", "oid")


def _q(name: str) -> str:
    if "\x00" in name:
        raise BadInput(f"identifier {name!r} contains a NUL byte")
    return '"' + name.replace('"', '""') + '"'



# ---------------------------------------------------------------------------- catalog
@dataclass
class _Col:
    name: str
    type: str
    not_null: bool
    has_default: bool
    pk: int  # position in the primary key, 0 if not in it
    generated: bool


def _tables(conn: sqlite3.Connection, schema: str = "main") -> list[str]:
    rows = conn.execute(
        f"SELECT name FROM {_q(schema)}.sqlite_master WHERE type = 'table' "  # noqa: S608
        "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_lockplane\\_%' "
        "ESCAPE '\\' AND coalesce(sql, '') NOT LIKE 'CREATE VIRTUAL%' ORDER BY name"
    ).fetchall()
    return [r[0] for r in rows]


def _columns(conn: sqlite3.Connection, table: str, schema: str = "main") -> list[_Col]:
    rows = conn.execute('SELECT name, type, "notnull", dflt_value, pk, hidden '
                        "FROM pragma_table_xinfo(?, ?) ORDER BY cid", (table, schema)).fetchall()
    return [_Col(r[0], r[1] or "", bool(r[2]), r[3] is not None, int(r[4]), r[5] in (2, 3))
            for r in rows if r[5] != 1]


def _find(conn: sqlite3.Connection, table: str, schema: str = "main") -> str | None:
    """The table's name as stored (SQLite's names are case-insensitive)."""
    row = conn.execute(f"SELECT name FROM {_q(schema)}.sqlite_master WHERE type = 'table' "  # noqa: S608
                       "AND name = ? COLLATE NOCASE ORDER BY name = ? DESC LIMIT 1",
                       (table, table)).fetchone()
    return str(row[0]) if row else None


def _key(cols: Sequence[_Col]) -> tuple[list[str], bool]:
    """``(key columns, by rowid)``: the primary key, else a rowid alias no column uses."""
    pk = sorted((c for c in cols if c.pk), key=lambda c: c.pk)
    if pk:
        return [c.name for c in pk], False
    names = {c.name.lower() for c in cols}
    alias = next((a for a in ROWID_ALIASES if a not in names), None)
    if alias is None:
        return [], True
    return [alias], True


def recorded_renames(conn: sqlite3.Connection, schema: str = "main") -> list[Rename]:
    """Column and table renames of multi-phase migrations not rolled back, oldest first."""
    if not conn.execute(f"SELECT 1 FROM {_q(schema)}.sqlite_master "  # noqa: S608
                        "WHERE name = '_lockplane_phases'").fetchone():
        return []
    rows = conn.execute(
        "SELECT migration_id, table_key, operation, json_extract(plan, '$.column'), "
        f"json_extract(plan, '$.new_name') FROM {_q(schema)}._lockplane_phases "  # noqa: S608
        "WHERE operation IN ('rename_column', 'rename_table') AND status <> 'rolled_back' "
        "AND completed_phases > 0 ORDER BY started_at").fetchall()
    out = []
    for mid, table, op, column, new in rows:
        if not new or (op == "rename_column" and not column):
            continue
        out.append(Rename(str(mid), str(table), column if op == "rename_column" else None,
                          str(new)))
    return out


def _bare(table_key: str) -> str:
    return table_key.split(".")[-1]


def _live_table(live: sqlite3.Connection, name: str, renames: list[Rename]
                ) -> tuple[str, list[Rename]]:
    """The live table ``--table`` names (directly, or by the old name of a recorded
    table rename), and the table renames that lead to it."""
    schema, table = split_table(name)
    if schema not in (None, "main"):
        raise BadInput(f"--table {name!r}: a SQLite database has one schema (main)")
    found = _find(live, table)
    if found is not None:
        return found, []
    chain: list[Rename] = []
    current = table
    for r in renames:
        if r.column is None and _bare(r.table).lower() == current.lower():
            chain.append(r)
            current = r.new_name
    if chain and (found := _find(live, current)) is not None:
        return found, chain
    raise BadInput(f"table {name!r} does not exist in the live database (rows are merged "
                   "into an existing table: recreate it first)")


# ---------------------------------------------------------------------------- mapping
def build_mapping(backup: sqlite3.Connection, live: sqlite3.Connection, name: str,
                  renames: list[Rename]) -> tuple[Mapping, bool]:
    """How the backup's table maps onto the live one, and whether rows are matched by
    rowid (a rowid table without a primary key)."""
    table, table_renames = _live_table(live, name, renames)
    _, given = split_table(name)
    old_names = [_bare(r.table) for r in renames if r.column is None
                 and r.new_name.lower() in (given.lower(), table.lower())]
    btable = None
    for candidate in dict.fromkeys([given, table, *old_names]):
        btable = _find(backup, candidate)
        if btable:
            break
    if btable is None:
        raise BadInput(f"table {name!r} is not in the backup")
    bcols = _columns(backup, btable)
    lcols_list = _columns(live, table)
    lcols = {c.name: c for c in lcols_list}
    key, by_rowid = _key(lcols_list)
    if not key:
        raise BadInput(f"{table} has no primary key and every rowid alias is a column: rows "
                       "cannot be matched with the live ones")
    col_renames = [r for r in renames if r.column is not None and any(
        same_table(r.table, "main", t) for t in [table, btable, *old_names])]
    if old_names and not table_renames:
        table_renames = [r for r in renames if r.column is None and r.new_name == table]
    m = Mapping("main", btable, "main", table, [], key)
    if table_renames:
        m.notes.append(f"table {btable} is now {table} (multi-phase migration "
                       f"{table_renames[-1].migration_id})")
    if by_rowid:
        bkey, b_by_rowid = _key(bcols)
        if not b_by_rowid:
            raise BadInput(f"{table} has no primary key now; the backup's {btable} had one "
                           f"({', '.join(bkey)}): rows cannot be matched")
        m.columns.append(ColumnMap(bkey[0], key[0], "rowid", "rowid", "", "same"))
        m.notes.append(f"{table} has no primary key: rows are matched by rowid (a VACUUM "
                       "may have renumbered them since the backup)")
    used: set[str] = set()
    for c in bcols:
        target, note = live_column(c.name, col_renames, lcols)
        lc = lcols.get(target)
        if lc is None:
            m.left_out.append(c.name)
            m.notes.append(f"column {c.name} was dropped since the backup: left out")
            continue
        if lc.generated or c.generated:
            m.notes.append(f"column {target} is generated: left to the database")
            continue
        used.add(target)
        how = "same" if c.type.lower() == lc.type.lower() else "assign"
        cm = ColumnMap(c.name, target, c.type, lc.type, "", how, note)
        if how == "assign":
            cm.note = ((note + "; ") if note else "") + f"type {c.type} -> {lc.type}"
            m.notes.append(f"column {target}: {c.type or 'no type'} in the backup, "
                           f"{lc.type or 'no type'} now: stored with the column's affinity, "
                           "as an INSERT stores it")
        m.columns.append(cm)
        if note:
            m.notes.append(f"column {c.name} {note}")
    for lc in lcols_list:
        if lc.name in used or lc.generated:
            continue
        if lc.not_null and not lc.has_default and not (lc.pk and lc.type.upper() == "INTEGER"):
            m.required.append(lc.name)
        else:
            m.defaulted.append(lc.name)
            m.notes.append(added_note(lc.name, bool(lc.has_default), col_renames, used))
    missing = [k for k in key if k not in used and not by_rowid]
    if missing:
        raise BadInput(f"{m.display}'s primary key ({', '.join(key)}) is not in the backup's "
                       f"{m.backup_display} (no {', '.join(missing)})")
    return m, by_rowid


# ---------------------------------------------------------------------------- sessions
def _where_on_copy(backup: sqlite3.Connection, m: Mapping, where: str | None) -> None:
    """The condition runs on the backup's table (its column names): prepare it there."""
    if not where:
        return
    try:
        backup.execute(f"EXPLAIN SELECT 1 FROM {_q(m.backup_table)} WHERE ({where}\n)")  # noqa: S608
    except sqlite3.Error as exc:
        raise BadInput(f"--where {where!r} on the backup's {m.backup_table}: "
                       f"{first_line(exc)}") from None


def _select_backup(m: Mapping, where: str | None) -> str:
    """The backup's mapped columns in key order (on a connection whose main is the copy)."""
    cols = ", ".join(_q(c.backup) for c in m.columns)
    order = ", ".join(_q(m.column(k).backup) for k in m.key)
    cond = f" WHERE ({where}\n)" if where else ""
    return f"SELECT {cols} FROM {_q(m.backup_table)}{cond} ORDER BY {order}"  # noqa: S608


@contextlib.contextmanager
def _copy_and_mapping(storage: Storage, manifest: Manifest, live: sqlite3.Connection,
                      table: str, where: str | None, report: Reporter,
                      ) -> Iterator[tuple[sqlite3.Connection, Mapping, bool]]:
    renames = recorded_renames(live)
    _live_table(live, table, renames)  # unknown table: before the copy is made
    with restored_copy(storage, manifest) as copy:
        report(f"backup {manifest.id} copied to a temporary read-only file")
        backup = read_only(sqlite_path(copy.dsn))
        try:
            m, by_rowid = build_mapping(backup, live, table, renames)
            _where_on_copy(backup, m, where)
            yield backup, m, by_rowid
        finally:
            backup.close()


# ---------------------------------------------------------------------------- compare
def _schema_words(copy_dsn: str, live_dsn: str) -> list[dict[str, Any]]:
    from ...diff import diff
    from ...drift.items import Wording, describe_changes
    from .. import connect, get_dialect

    with connect(copy_dsn) as b:
        before = b.introspect()
    with connect(live_dsn) as live:
        after = live.introspect()
    if before.hash() == after.hash():
        return []
    changes = diff(before, after, get_dialect("sqlite"))
    items = describe_changes(changes, Wording(subject="the live database",
                                              reference="the backup"), "sqlite")
    return [i.to_json() for i in items]


def _count(conn: sqlite3.Connection, schema: str, table: str) -> int:
    return int(conn.execute(f"SELECT count(*) FROM {_q(schema)}.{_q(table)}"  # noqa: S608
                            ).fetchone()[0])


def _compare_table(conn: sqlite3.Connection, bname: str | None, lname: str | None,
                   renames: list[Rename], report: Reporter) -> TableComparison:
    if lname is None:
        assert bname is not None
        return TableComparison(bname, bname, "dropped", backup_rows=_count(conn, BACKUP, bname))
    if bname is None:
        return TableComparison(lname, None, "new", live_rows=_count(conn, "main", lname))
    t = TableComparison(lname, bname, "compared")
    started = time.monotonic()
    lcols = _columns(conn, lname)
    bcols = _columns(conn, bname, BACKUP)
    lkey, l_rowid = _key(lcols)
    bkey, b_rowid = _key(bcols)
    live_names = {c.name for c in lcols if not c.generated}
    pairs: list[tuple[str, str]] = []
    for c in bcols:
        if c.generated:
            continue
        target = c.name
        for r in renames:
            if r.column == target and target not in live_names and any(
                    same_table(r.table, "main", x) for x in (lname, bname)):
                target = r.new_name
        if target in live_names:
            pairs.append((c.name, target))
    to_live = dict(pairs)
    if not lkey or not bkey:
        t.status, t.note = "no_key", "no primary key and no free rowid alias: rows compared " \
                                     "by count only"
    elif l_rowid != b_rowid or (not l_rowid and [to_live.get(k) for k in bkey] != lkey):
        t.status, t.note = "key_differs", "the primary key changed since the backup"
    if t.status != "compared":
        t.backup_rows, t.live_rows = _count(conn, BACKUP, bname), _count(conn, "main", lname)
        return t
    t.key = lkey
    if l_rowid:
        t.note = "no primary key: rows compared by rowid (a VACUUM may renumber them)"
    rest = [(b, lv) for b, lv in pairs if lv not in lkey]
    t.columns_compared = [lv for _, lv in rest]
    report(f"comparing {lname} by " + ("rowid" if l_rowid else f"({', '.join(lkey)})"))
    lt, bt = f"main.{_q(lname)}", f"{_q(BACKUP)}.{_q(bname)}"
    on = " AND ".join(f"l.{_q(lk)} IS b.{_q(bk)}" for lk, bk in zip(lkey, bkey, strict=True))
    same = " AND ".join(f"l.{_q(lv)} IS b.{_q(b)}" for b, lv in rest) or "1"
    keys_l = ", ".join(f"l.{_q(k)}" for k in lkey)
    keys_b = ", ".join(f"b.{_q(k)}" for k in bkey)
    t.live_rows = _count(conn, "main", lname)
    t.backup_rows = _count(conn, BACKUP, bname)
    added = f"FROM {lt} AS l WHERE NOT EXISTS (SELECT 1 FROM {bt} AS b WHERE {on})"
    deleted = f"FROM {bt} AS b WHERE NOT EXISTS (SELECT 1 FROM {lt} AS l WHERE {on})"
    changed = f"FROM {lt} AS l JOIN {bt} AS b ON {on} WHERE NOT ({same})"
    t.added = int(conn.execute(f"SELECT count(*) {added}").fetchone()[0])  # noqa: S608
    t.deleted = int(conn.execute(f"SELECT count(*) {deleted}").fetchone()[0])  # noqa: S608
    t.changed = int(conn.execute(f"SELECT count(*) {changed}").fetchone()[0])  # noqa: S608
    t.unchanged = t.live_rows - t.added - t.changed
    order_l = f" ORDER BY {keys_l} LIMIT {SAMPLE}"
    t.sample_added = [[str(x) for x in r] for r in conn.execute(
        f"SELECT {keys_l} {added}{order_l}")]  # noqa: S608
    t.sample_deleted = [[str(x) for x in r] for r in conn.execute(
        f"SELECT {keys_b} {deleted} ORDER BY {keys_b} LIMIT {SAMPLE}")]  # noqa: S608
    t.sample_changed = [[str(x) for x in r] for r in conn.execute(
        f"SELECT {keys_l} {changed}{order_l}")]  # noqa: S608
    t.seconds = round(time.monotonic() - started, 3)
    return t


def compare_backup(storage: Storage, manifest: Manifest, live_dsn: str, *,
                   tables: list[str] | None = None,
                   report: Reporter | None = None) -> CompareReport:
    """Compare the backup with the live file: the schema in words, rows per table."""
    from ...backup.core import migrations_since

    report = report or (lambda _m: None)
    started = time.monotonic()
    live_path, live = open_existing(live_dsn)
    try:
        renames = recorded_renames(live)
        with restored_copy(storage, manifest) as copy:
            live.execute("ATTACH DATABASE ? AS lockplane_backup", (ro_uri(sqlite_path(copy.dsn)),))
            try:
                schema_items = _schema_words(copy.dsn, f"sqlite:///{Path(live_path).resolve()}")
                out: list[TableComparison] = []
                wanted = {x.split(".")[-1].lower() for x in tables or []}
                for bname, lname in pair_tables([("main", t) for t in _tables(live, BACKUP)],
                                                [("main", t) for t in _tables(live)], renames):
                    label = (lname or bname)[1]  # type: ignore[index]
                    if wanted and label.lower() not in wanted:
                        continue
                    out.append(_compare_table(live, bname[1] if bname else None,
                                              lname[1] if lname else None, renames, report))
            finally:
                live.execute("DETACH DATABASE lockplane_backup")
            restore_s = copy.restore_s
    except sqlite3.Error as exc:
        raise ExecutionFailed(f"comparing backup {manifest.id} with {redact(live_dsn)} "
                              f"failed: {first_line(exc)}") from None
    finally:
        live.close()
    try:
        since: int | None = migrations_since(live_dsn, manifest.history)
    except Exception:  # noqa: BLE001 - a note, never a failure
        since = None
    return CompareReport(manifest.id, manifest.created_at, redact(live_dsn), schema_items, out,
                         since, restore_s, time.monotonic() - started)


# ---------------------------------------------------------------------------- extract
def _literal(v: Any) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v != v:  # NaN: SQLite stores it as NULL
            return "NULL"
        if v in (float("inf"), float("-inf")):
            return "9e999" if v > 0 else "-9e999"
        return repr(v)
    if isinstance(v, bytes):
        return "X'" + v.hex() + "'"
    return "'" + str(v).replace("'", "''") + "'"


def _conflict_clause(m: Mapping, on_conflict: str) -> str:
    if on_conflict == "fail":
        return ""
    if on_conflict == "skip":
        return " ON CONFLICT DO NOTHING"
    rest = [c.live for c in m.columns if c.live not in m.key]
    keys = ", ".join(_q(k) for k in m.key)
    if not rest:
        return f" ON CONFLICT ({keys}) DO NOTHING"
    sets = ", ".join(f"{_q(c)} = excluded.{_q(c)}" for c in rest)
    mine = ", ".join(f"{_q(m.table)}.{_q(c)}" for c in rest)
    theirs = ", ".join(f"excluded.{_q(c)}" for c in rest)
    return (f" ON CONFLICT ({keys}) DO UPDATE SET {sets} WHERE ({mine}) IS NOT ({theirs})"
            if len(rest) > 1 else
            f" ON CONFLICT ({keys}) DO UPDATE SET {sets} WHERE {mine} IS NOT {theirs}")


def extract_rows(storage: Storage, manifest: Manifest, live_dsn: str, table: str,
                 out: IO[str], *, where: str | None = None, on_conflict: str = "skip",
                 report: Reporter | None = None) -> ExtractResult:
    """Write the backup's rows of ``table`` as upserts fitting the live schema to ``out``
    (``sqlite3 live.db < file``: one transaction)."""
    report = report or (lambda _m: None)
    started = time.monotonic()
    cond = check_where(where, "sqlite")
    _, live = open_existing(live_dsn)
    with contextlib.closing(live), _copy_and_mapping(storage, manifest, live, table, cond,
                                                     report) as (backup, m, by_rowid):
        if m.required:
            raise BadInput(f"{m.display}.{m.required[0]} is NOT NULL without a default and "
                           "not in the backup: its rows cannot be inserted")
        tail = _conflict_clause(m, on_conflict)  # a rowid is a conflict target too
        cols = ", ".join(_q(c.live) for c in m.columns)
        head = f"INSERT INTO {_q(m.table)} ({cols}) VALUES"
        # (names and notes come from databases: sql_comment keeps them in their comment)
        out.write(sql_comment(f"Rows of {m.backup_table} from backup {manifest.id} "
                              f"({manifest.created_at}), as upserts into {m.table}") + "\n")
        if cond:
            out.write(sql_comment(f"where: {' '.join(cond.split())}") + "\n")
        out.write(sql_comment(f"on conflict: {on_conflict}") + "\n")
        for note in m.notes:
            out.write(sql_comment(note) + "\n")
        out.write("BEGIN;\n")
        rows = statements = 0
        batch: list[str] = []

        def flush() -> None:
            nonlocal statements
            if batch:
                out.write(f"{head}\n  " + ",\n  ".join(batch) + f"{tail};\n")
                statements += 1
                batch.clear()

        try:
            for r in backup.execute(_select_backup(m, cond)):
                batch.append("(" + ", ".join(_literal(v) for v in r) + ")")
                rows += 1
                if len(batch) >= ROWS_PER_STATEMENT:
                    flush()
        except sqlite3.Error as exc:
            raise ExecutionFailed(f"reading {m.backup_table} from backup {manifest.id} "
                                  f"failed: {first_line(exc)}") from None
        flush()
        out.write("COMMIT;\n")
        return ExtractResult(manifest.id, m.table, rows, statements, m,
                             time.monotonic() - started)


# ---------------------------------------------------------------------------- merge
def _stage(backup: sqlite3.Connection, live: sqlite3.Connection, m: Mapping,
           where: str | None) -> tuple[int, str]:
    """The backup's rows, numbered in key order, into a TEMP table on the live session;
    (rows, sha256 of what was staged). Staged columns have no type: values stay as the
    backup holds them until they are written."""
    cols = ", ".join(_q(c.live) for c in m.columns)
    live.execute(f"DROP TABLE IF EXISTS temp.{_q(STAGE)}")
    live.execute(f"CREATE TEMP TABLE {_q(STAGE)} (ord INTEGER PRIMARY KEY, {cols})")
    marks = ", ".join("?" for _ in range(len(m.columns) + 1))
    insert = f"INSERT INTO temp.{_q(STAGE)} (ord, {cols}) VALUES ({marks})"  # noqa: S608
    h = hashlib.sha256()
    n = 0
    cur = backup.execute(_select_backup(m, where))
    live.execute("BEGIN")
    try:
        while chunk := cur.fetchmany(5000):
            rows = [(n + i + 1, *r) for i, r in enumerate(chunk)]
            for r in chunk:
                h.update(repr(r).encode())
            live.executemany(insert, rows)
            n += len(chunk)
        live.execute("COMMIT")
    except BaseException:
        live.execute("ROLLBACK")
        raise
    key_cols = ", ".join(_q(k) for k in m.key)
    live.execute(f"CREATE INDEX temp.{_q(STAGE + '_key')} ON {_q(STAGE)} ({key_cols})")
    return n, h.hexdigest()


class RowMerge(RowMergeBase):
    """Backup rows staged in a TEMP table on a session of the live file."""

    def __init__(self, db: Any, m: Mapping, by_rowid: bool, backup_id: str,
                 where: str | None, on_conflict: str, rows: int, digest: str) -> None:
        from ...backfill import KEY_PRIMARY, KEY_UNIQUE, ResolvedBackfill

        self.db, self.m, self.by_rowid = db, m, by_rowid
        self.live: sqlite3.Connection = db.conn
        self.on_conflict, self.rows, self.digest = on_conflict, rows, digest
        self.backup_id, self.where = backup_id, where
        body = json.dumps(["merge", backup_id, m.display, [asdict(c) for c in m.columns],
                           where, on_conflict, digest])
        self.id = hashlib.sha256(body.encode()).hexdigest()[:16]
        self.spec = ResolvedBackfill(
            id=self.id, dialect="sqlite", schema=None, table=m.table,
            columns=[c.live for c in m.columns],
            expressions=[f"backup {backup_id}.{c.backup}" for c in m.columns],
            types=[c.live_type for c in m.columns], not_null=[False for _ in m.columns],
            where=(f"restore rows ({on_conflict})" + (f" where {where}" if where else "")),
            key_kind=KEY_UNIQUE if by_rowid else KEY_PRIMARY,
            key_name="rowid" if by_rowid else None, key_columns=list(m.key),
            key_types=[m.column(k).live_type for k in m.key])
        self.preview = self._preview()

    # -- SQL pieces
    @property
    def _on(self) -> str:
        return " AND ".join(f"l.{_q(k)} IS s.{_q(k)}" for k in self.m.key)

    @property
    def _same(self) -> str:
        cols = [c.live for c in self.m.columns if c.live not in self.m.key]
        return " AND ".join(f"l.{_q(c)} IS s.{_q(c)}" for c in cols) or "1"

    @property
    def _join(self) -> str:
        return (f"FROM temp.{_q(STAGE)} AS s LEFT JOIN main.{_q(self.m.table)} AS l "
                f"ON {self._on}")

    def _checkpoint(self) -> tuple[str | None, int]:
        from ...backfill import Checkpoints

        chunks = Checkpoints(self.db).chunks(self.id)
        if not chunks:
            return None, 0
        return chunks[0].status, int(chunks[0].cursor or 0)

    # -- preview
    def _preview(self) -> MergePreview:
        status, cursor = self._checkpoint()
        p = MergePreview(self.id, self.backup_id, self.m.display, self.on_conflict, self.where,
                         self.rows, cursor if status else 0,
                         "done" if status == "done" else ("resumable" if status else "new"),
                         mapping=self.m, digest=self.digest)
        if p.status == "done":
            return p
        k0 = f"l.{_q(self.m.key[0])}"
        row = self.live.execute(
            f"SELECT coalesce(sum({k0} IS NULL), 0), "
            f"coalesce(sum({k0} IS NOT NULL AND ({self._same})), 0), "
            f"coalesce(sum({k0} IS NOT NULL AND NOT ({self._same})), 0) "
            f"{self._join} WHERE s.ord > ?", (cursor,)).fetchone()
        new, same, changed = (int(x) for x in row)
        p.insert, p.unchanged, p.changed, p.conflicts = new, same, changed, same + changed
        if self.on_conflict == "update":
            p.update, p.skip = changed, same
        else:
            p.skip = same + changed
        p.sample_insert = self._sample(f"{k0} IS NULL", cursor)
        p.sample_changed = self._sample(f"{k0} IS NOT NULL AND NOT ({self._same})", cursor)
        if self.m.required and new:
            raise BadInput(f"{self.m.display}.{self.m.required[0]} is NOT NULL without a "
                           "default and not in the backup: its rows cannot be inserted")
        return p

    def _sample(self, cond: str, cursor: int) -> list[dict[str, Any]]:
        cols = self.m.columns
        fields = ", ".join([f"s.{_q(c.live)}" for c in cols] + [f"l.{_q(c.live)}" for c in cols])
        rows = self.live.execute(f"SELECT {fields} {self._join} WHERE s.ord > ? AND {cond} "
                                 f"ORDER BY s.ord LIMIT {SAMPLE}", (cursor,)).fetchall()

        def text(v: Any) -> str | None:
            return None if v is None else (v.hex() if isinstance(v, bytes) else str(v))

        out = []
        n = len(cols)
        names = [c.live for c in cols]
        for r in rows:
            backup_vals = [text(v) for v in r[:n]]
            live_vals = [text(v) for v in r[n:]]
            item: dict[str, Any] = {"key": {k: backup_vals[names.index(k)] for k in self.m.key}}
            if any(v is not None for v in live_vals):
                item["changed"] = {c: {"backup": b, "live": lv} for c, b, lv in
                                   zip(names, backup_vals, live_vals, strict=True)
                                   if c not in self.m.key and b != lv}
            else:
                item["row"] = dict(zip(names, backup_vals, strict=True))
            out.append(item)
        return out

    # -- run
    def _batch(self, after: int, upto: int) -> tuple[int, int]:
        """Write staged rows ``after < ord <= upto``: (inserted, updated)."""
        m = self.m
        cols = [c.live for c in m.columns]
        collist = ", ".join(_q(c) for c in cols)
        updated = 0
        if self.on_conflict == "update":
            rest = [c for c in cols if c not in m.key]
            if rest:
                sets = ", ".join(f"{_q(c)} = s.{_q(c)}" for c in rest)
                on = " AND ".join(f"{_q(m.table)}.{_q(k)} IS s.{_q(k)}" for k in m.key)
                same = " AND ".join(f"{_q(m.table)}.{_q(c)} IS s.{_q(c)}" for c in rest)
                updated = self.live.execute(
                    f"UPDATE main.{_q(m.table)} SET {sets} FROM temp.{_q(STAGE)} AS s "  # noqa: S608
                    f"WHERE s.ord > ? AND s.ord <= ? AND {on} AND NOT ({same})",
                    (after, upto)).rowcount
        values = ", ".join(f"s.{_q(c)}" for c in cols)
        missing = f"NOT EXISTS (SELECT 1 FROM main.{_q(m.table)} AS l WHERE {self._on})"
        tail = " ON CONFLICT DO NOTHING" if self.on_conflict == "skip" else ""
        inserted = self.live.execute(
            f"INSERT INTO main.{_q(m.table)} ({collist}) SELECT {values} "  # noqa: S608
            f"FROM temp.{_q(STAGE)} AS s WHERE s.ord > ? AND s.ord <= ? AND {missing} "
            f"ORDER BY s.ord{tail}", (after, upto)).rowcount
        return max(0, inserted), max(0, updated)

    # -- run (RowMergeBase.run; the hooks)
    db_errors = (sqlite3.Error,)
    lock_wait_words = "the write lock was busy"

    @contextlib.contextmanager
    def _merging(self, opts: MergeOptions, who: str) -> Iterator[Any]:
        from ...backfill import Checkpoints

        state = Checkpoints(self.db)
        # Setting up waits for the other writers as a runner waits for another runner;
        # each batch then waits for the write lock up to the lock timeout.
        self.db.set_writer_wait(int(opts.wait_for_runner_s * 1000))
        try:
            state.ensure()
            self._record_start(state, who)
        except sqlite3.Error as exc:
            raise ExecutionFailed(f"merge {self.id}: cannot record its checkpoint in "
                                  f"{self.db.dsn_display}: {first_line(exc)}") from None
        self.db.set_writer_wait(opts.lock_timeout_ms)
        yield state

    def _batch_transaction(self, opts: MergeOptions) -> Any:
        return self.db.transaction()

    def _is_lock_wait(self, exc: BaseException) -> bool:
        return (isinstance(exc, sqlite3.OperationalError)
                and self.db.dialect.retry_reason(exc) is not None)


@contextlib.contextmanager
def open_merge(storage: Storage, manifest: Manifest, live_dsn: str, table: str, *,
               where: str | None = None, on_conflict: str = "skip",
               report: Reporter | None = None) -> Iterator[RowMerge]:
    """Copy the backup, stage its rows of ``table`` on a session of the live file and
    compare them with the live rows (``.preview``); ``.run()`` merges them. Nothing
    persistent is written before ``run``; the copy is deleted once the rows are staged."""
    from .. import get_dialect

    report = report or (lambda _m: None)
    cond = check_where(where, "sqlite")
    open_existing(live_dsn)[1].close()  # a missing file: exit 2, never created
    db = get_dialect("sqlite").connect(live_dsn)
    try:
        with _copy_and_mapping(storage, manifest, db.conn, table, cond, report) as (
                backup, m, by_rowid):
            t0 = time.monotonic()
            try:
                rows, digest = _stage(backup, db.conn, m, cond)
            except sqlite3.Error as exc:
                raise BadInput(f"the backup's rows of {m.backup_table} cannot be staged: "
                               f"{first_line(exc)}") from None
            report(f"staged {rows:,} row(s) of {m.backup_table} in "
                   f"{time.monotonic() - t0:.1f} s")
        yield RowMerge(db, m, by_rowid, manifest.id, cond, on_conflict, rows, digest)
    finally:
        db.close()
