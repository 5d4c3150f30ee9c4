"""What changed since a backup: the schema in words, and per table the rows added,
deleted and changed, by primary key.

The backup is restored into a temporary read-only database (``restored_copy``). The
schema side is the planner's own diff (``diff(backup, live)``) told in words by the
drift module, as ``lockplane drift`` tells it. The rows side compares each table that
has the same primary key on both sides by streaming ``(key, md5(row text))`` pairs in
key order from both databases at once (``COPY ... TO STDOUT``, one pass each, nothing
held in memory but a sample) and merging the two streams client-side: a key only live
is newer than the backup, a key only in the backup was deleted since, a key on both
sides whose hash differs was changed. Rows are hashed over the columns both sides have
(renames recorded by multi-phase migrations followed), their text read with the same
pinned settings on both sessions. Integer keys are ordered as integers, others by
their text in the "C" collation, so both servers order exactly as Python compares.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
from psycopg import sql as pgsql

from ...backup.manifest import Manifest
from ...backup.rows import SAMPLE, CompareReport, Rename, TableComparison, pair_tables
from ...backup.storage import Storage
from ...dsn import redact
from .backup import restored_copy
from .backup_extract import _session, columns_of, primary_key, recorded_renames

Reporter = Callable[[str], None]
_INT_TYPES = ("smallint", "integer", "bigint")
_TABLES = """
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema',
  'lockplane') AND n.nspname NOT LIKE 'pg\\_%%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1, 2
"""


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
    changes = diff(before, after, get_dialect("postgres"))
    items = describe_changes(changes, Wording(subject="the live database",
                                              reference="the backup"), "postgres")
    return [i.to_json() for i in items]


def _tables(conn: psycopg.Connection) -> list[tuple[str, str]]:
    return [(s, t) for s, t in conn.execute(_TABLES).fetchall()]


def _key_order(conn: psycopg.Connection, schema: str, table: str,
               key: list[str]) -> list[tuple[str, bool]]:
    types = {c.name: c.type for c in columns_of(conn, schema, table)}
    return [(k, types.get(k) in _INT_TYPES) for k in key]


def _stream(conn: psycopg.Connection, schema: str, table: str,
            key: list[tuple[str, bool]], cols: list[str]) -> Iterator[tuple[Any, ...]]:
    """(key..., md5 of the row text) in key order, streamed with COPY."""
    q = pgsql.Identifier
    keys = pgsql.SQL(", ").join(
        pgsql.SQL("{}").format(q(k)) if is_int else pgsql.SQL("{}::text").format(q(k))
        for k, is_int in key)
    order = pgsql.SQL(", ").join(
        pgsql.SQL("{}").format(q(k)) if is_int else
        pgsql.SQL('{}::text COLLATE "C"').format(q(k)) for k, is_int in key)
    row = pgsql.SQL(", ").join(pgsql.SQL("{}::text").format(q(c)) for c in cols) if cols \
        else pgsql.SQL("''")
    stmt = pgsql.SQL("COPY (SELECT {}, md5(ROW({}, NULL)::text) FROM {} ORDER BY {}) TO STDOUT"
                     ).format(keys, row, q(schema, table), order)
    ints = [is_int for _, is_int in key]
    with conn.transaction(), conn.cursor().copy(stmt) as copy:
        for r in copy.rows():
            yield tuple(int(v) if is_int else v for v, is_int in
                        zip(r[:-1], ints, strict=True)) + (r[-1],)


def _compare_rows(backup: psycopg.Connection, live: psycopg.Connection, t: TableComparison,
                  bname: tuple[str, str], lname: tuple[str, str],
                  key: list[tuple[str, bool]], bkey: list[tuple[str, bool]],
                  bcols: list[str], lcols: list[str]) -> None:
    """Merge the two key-ordered streams, counting as it goes."""
    started = time.monotonic()
    b_iter = _stream(backup, bname[0], bname[1], bkey, bcols)
    l_iter = _stream(live, lname[0], lname[1], key, lcols)
    b = next(b_iter, None)
    lv = next(l_iter, None)
    while b is not None or lv is not None:
        if lv is None or (b is not None and b[:-1] < lv[:-1]):
            t.deleted += 1
            t.backup_rows += 1
            if len(t.sample_deleted) < SAMPLE:
                t.sample_deleted.append([str(x) for x in b[:-1]])  # type: ignore[index]
            b = next(b_iter, None)
        elif b is None or lv[:-1] < b[:-1]:
            t.added += 1
            t.live_rows += 1
            if len(t.sample_added) < SAMPLE:
                t.sample_added.append([str(x) for x in lv[:-1]])
            lv = next(l_iter, None)
        else:
            t.backup_rows += 1
            t.live_rows += 1
            if b[-1] == lv[-1]:
                t.unchanged += 1
            else:
                t.changed += 1
                if len(t.sample_changed) < SAMPLE:
                    t.sample_changed.append([str(x) for x in lv[:-1]])
            b = next(b_iter, None)
            lv = next(l_iter, None)
    t.seconds = round(time.monotonic() - started, 3)


def _count(conn: psycopg.Connection, schema: str, table: str) -> int:
    row = conn.execute(pgsql.SQL("SELECT count(*) FROM {}").format(
        pgsql.Identifier(schema, table))).fetchone()
    return int(row[0]) if row else 0


def _column_pairs(backup: psycopg.Connection, live: psycopg.Connection,
                  bname: tuple[str, str], lname: tuple[str, str],
                  renames: list[Rename]) -> list[tuple[str, str]]:
    bcols = [c.name for c in columns_of(backup, *bname)]
    lcols = {c.name for c in columns_of(live, *lname)}
    keys = {f"{lname[0]}.{lname[1]}", lname[1], f"{bname[0]}.{bname[1]}", bname[1]}
    out = []
    for c in bcols:
        target = c
        for r in renames:
            if r.column == target and r.table in keys and target not in lcols:
                target = r.new_name
        if target in lcols:
            out.append((c, target))
    return out


def compare_backup(storage: Storage, manifest: Manifest, live_dsn: str, *,
                   server_dsn: str | None = None, jobs: int = 1,
                   tables: list[str] | None = None,
                   report: Reporter | None = None) -> CompareReport:
    """Compare the backup ``backup_id`` with the live database at ``live_dsn``."""
    from ...backup.core import migrations_since

    report = report or (lambda _m: None)
    started = time.monotonic()
    live = _session(live_dsn, "lockplane backup compare")
    try:
        renames = recorded_renames(live)
        live_tables = _tables(live)
        with restored_copy(storage, manifest, server_dsn or live_dsn, jobs=jobs,
                           report=report) as copy:
            backup = _session(copy.dsn, "lockplane backup compare")
            try:
                schema_items: list[dict[str, Any]] = []
                failure: list[BaseException] = []

                def schema_side() -> None:
                    try:
                        schema_items.extend(_schema_words(copy.dsn, live_dsn))
                    except BaseException as exc:  # noqa: BLE001 - re-raised below
                        failure.append(exc)

                worker = threading.Thread(target=schema_side, daemon=True)
                worker.start()
                out: list[TableComparison] = []
                for bname, lname in pair_tables(_tables(backup), live_tables, renames):
                    label = f"{(lname or bname)[0]}.{(lname or bname)[1]}"  # type: ignore[index]
                    if tables and label not in tables and label.split(".", 1)[1] not in tables:
                        continue
                    out.append(_compare_table(backup, live, bname, lname, renames, report))
                worker.join()
                if failure:
                    raise failure[0]
            finally:
                backup.close()
            restore_s = copy.restore_s
        since = None
        try:
            since = migrations_since(live_dsn, manifest.history)
        except Exception:  # noqa: BLE001 - a note, never a failure
            since = None
    finally:
        live.close()
    return CompareReport(manifest.id, manifest.created_at, redact(live_dsn), schema_items,
                         out, since, restore_s, time.monotonic() - started)


def _compare_table(backup: psycopg.Connection, live: psycopg.Connection,
                   bname: tuple[str, str] | None, lname: tuple[str, str] | None,
                   renames: list[Rename], report: Reporter) -> TableComparison:
    if lname is None:
        assert bname is not None
        return TableComparison(f"{bname[0]}.{bname[1]}", f"{bname[0]}.{bname[1]}", "dropped",
                               backup_rows=_count(backup, *bname))
    label = f"{lname[0]}.{lname[1]}"
    if bname is None:
        return TableComparison(label, None, "new", live_rows=_count(live, *lname))
    t = TableComparison(label, f"{bname[0]}.{bname[1]}", "compared")
    lkey = primary_key(live, *lname)
    bkey = primary_key(backup, *bname)
    pairs = _column_pairs(backup, live, bname, lname, renames)
    to_live = dict(pairs)
    if not lkey or not bkey:
        t.status, t.note = "no_key", "no primary key: rows compared by count only"
    elif [to_live.get(k) for k in bkey] != lkey:
        t.status, t.note = "key_differs", "the primary key changed since the backup"
    if t.status != "compared":
        t.backup_rows, t.live_rows = _count(backup, *bname), _count(live, *lname)
        return t
    t.key = lkey
    rest = [(b, lv) for b, lv in pairs if lv not in lkey]
    t.columns_compared = [lv for _, lv in rest]
    report(f"comparing {label} by ({', '.join(lkey)})")
    live_order = _key_order(live, lname[0], lname[1], lkey)
    backup_order = _key_order(backup, bname[0], bname[1], bkey)
    # Both sides must order the same way: integers only if integers on both sides.
    same = [(k, li and bi) for (k, li), (_, bi) in zip(live_order, backup_order, strict=True)]
    bsame = [(k, is_int) for (k, _), (_, is_int) in zip(backup_order, same, strict=True)]
    _compare_rows(backup, live, t, bname, lname, same, bsame, [b for b, _ in rest],
                  [lv for _, lv in rest])
    return t


__all__ = ["compare_backup"]
