"""What a batched backfill asks MySQL / MariaDB: the table's walkable key (the primary
key, else a unique key on NOT NULL columns without prefix or expression parts; InnoDB
has no stable physical row position to walk instead), its size (a count up to a GiB of
data, else information_schema's estimate), and a trial of the batch statement on a
scratch database holding the table (``SHOW CREATE TABLE``), its triggers, and a random
sample of its rows.

Batches run in InnoDB transactions: the checkpoint row is read ``FOR UPDATE``, the key
range updated and the checkpoint moved in one transaction, so a killed runner's batch
rolls back together with its checkpoint (the server ends its session, which also frees
its ``GET_LOCK`` runner lock). A batch that waits longer than
``innodb_lock_wait_timeout`` (set per batch from ``--lock-timeout-ms``, whole seconds)
or loses a deadlock is retried smaller, later.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pymysql

from ...backfill import (
    KEY_PRIMARY,
    KEY_UNIQUE,
    BackfillOptions,
    BackfillSpec,
    BatchSql,
    Reporter,
    ResolvedBackfill,
    TableStats,
    Trial,
    backfill_id,
    explain_on_shadow,
    pick_columns,
    runnable,
    trial_run,
)
from ...errors import BadInput

if TYPE_CHECKING:
    from . import MySQLDatabase

_COUNT_BELOW_BYTES = 1024**3  # count(*) tables smaller than this: exact and cheap enough


def _unquote(part: str) -> str:
    part = part.strip()
    if len(part) >= 2 and part[0] == part[-1] == "`":
        return part[1:-1].replace("``", "`")
    return part


def _split_name(text: str) -> tuple[str | None, str]:
    """``db.table``, ```db`.`table```, ``table``: (database or None, table)."""
    text = text.strip()
    parts: list[str] = []
    cur, quoted, i = "", False, 0
    while i < len(text):
        ch = text[i]
        if ch == "`":
            if quoted and i + 1 < len(text) and text[i + 1] == "`":
                cur += "``"
                i += 2
                continue
            quoted = not quoted
            cur += ch
        elif ch == "." and not quoted:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
        i += 1
    parts.append(cur)
    if quoted or len(parts) > 2 or any(not p.strip() for p in parts):
        raise BadInput(f"--table {text!r}: expected table or database.table")
    if len(parts) == 2:
        return _unquote(parts[0]), _unquote(parts[1])
    return None, _unquote(parts[0])


def resolve(db: MySQLDatabase, spec: BackfillSpec) -> ResolvedBackfill:
    database, name = _split_name(spec.table)
    here = db.database
    if not here:
        raise BadInput(f"{db.dsn_display} names no database: put one in the URL's path")
    if database is not None and database != here:
        raise BadInput(f"--table {spec.table!r} names database {database!r}; the target is "
                       f"{here!r} (one database per target)")
    rows = db.query("SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES "
                    "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s", (name,))
    if not rows:
        raise BadInput(f"unknown table {spec.table!r} in {db.dsn_display}")
    table, kind = str(rows[0][0]), str(rows[0][1])
    if kind != "BASE TABLE":
        raise BadInput(f"{table} is not a table ({kind.lower()})")
    if table.startswith("_lockplane_"):
        raise BadInput(f"{table} is Lockplane's own state: not a backfill target")
    cols = db.query(
        "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, EXTRA, "
        "COALESCE(GENERATION_EXPRESSION, '') FROM information_schema.COLUMNS "
        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
        (table,))
    columns: dict[str, tuple[str, bool, str]] = {}
    for cname, ctype, nullable, extra, gen in cols:
        generated = "GENERATED" in str(extra).upper() or bool(str(gen))
        columns[str(cname)] = (str(ctype), nullable == "NO",
                               "a generated column" if generated else "")
    # Column names are case-insensitive on MySQL, backquoted or not.
    by_lower = {c.lower(): c for c in columns}
    spec = replace(spec, sets=tuple(
        replace(s, column=by_lower.get(s.column.lower(), s.column), quoted=True)
        for s in spec.sets))
    names = pick_columns(spec, table, columns, str)
    stats = db.query(
        "SELECT INDEX_NAME, COLUMN_NAME, SUB_PART FROM information_schema.STATISTICS "
        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s AND NON_UNIQUE = 0 "
        "ORDER BY INDEX_NAME, SEQ_IN_INDEX", (table,))
    keys: dict[str, list[tuple[Any, Any]]] = {}
    for index, column, sub_part in stats:
        keys.setdefault(str(index), []).append((column, sub_part))
    candidates: list[tuple[str, str | None, list[str]]] = []
    for index, parts in keys.items():
        if any(c is None or s is not None for c, s in parts):  # expression / prefix part
            continue
        kcols = [str(c) for c, _ in parts]
        if not all(columns.get(c, ("", False, ""))[1] for c in kcols):
            continue  # a unique key with NULLs may hold many rows with one key value
        primary = index == "PRIMARY"
        candidates.append((KEY_PRIMARY if primary else KEY_UNIQUE,
                           None if primary else index, kcols))
    if not candidates:
        raise BadInput(f"table {table} has no primary key and no unique key on NOT NULL "
                       "columns: a resumable backfill walks one (add a key)")
    candidates.sort(key=lambda c: (c[0] != KEY_PRIMARY, len(c[2]), c[1] or ""))
    key_kind, key_name, kcols = candidates[0]
    for n in names:
        if n in kcols:
            raise BadInput(f"column {table}.{n} is part of the key the backfill walks "
                           f"({', '.join(kcols)}): it cannot be set by a backfill")
    exprs, where = runnable(spec, "mysql")
    return ResolvedBackfill(
        id=backfill_id("mysql", None, table, names, exprs, where),
        dialect="mysql", schema=None, table=table, columns=names, expressions=exprs,
        types=[columns[n][0] for n in names], not_null=[columns[n][1] for n in names],
        where=where, key_kind=key_kind, key_name=key_name, key_columns=kcols,
        key_types=[columns[c][0] for c in kcols])


def table_stats(db: MySQLDatabase, rb: ResolvedBackfill) -> TableStats:
    rows = db.query("SELECT COALESCE(TABLE_ROWS, 0), COALESCE(DATA_LENGTH, 0), "
                    "COALESCE(INDEX_LENGTH, 0) FROM information_schema.TABLES "
                    "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s", (rb.table,))
    estimate, heap, index = (int(v) for v in rows[0]) if rows else (0, 0, 0)
    page = 16384  # InnoDB's default page size
    if heap < _COUNT_BELOW_BYTES:
        n = int(db.query(f"SELECT count(*) FROM {db.dialect.quote(rb.table)}")[0][0])
        return TableStats(n, True, heap // page, heap, index, page)
    return TableStats(estimate, False, heap // page, heap, index, page)


def shadow_trial(db: MySQLDatabase, rb: ResolvedBackfill, stats: TableStats,
                 opts: BackfillOptions, report: Reporter | None) -> Trial:
    d = db.dialect
    qt = d.quote(rb.table)
    create = str(db.query(f"SHOW CREATE TABLE {qt}")[0][1])
    triggers = [str(r[0]) for r in db.query(
        "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS "
        "WHERE EVENT_OBJECT_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE = %s "
        "ORDER BY ACTION_ORDER", (rb.table,))]
    trigger_sql = [str(db.query(f"SHOW CREATE TRIGGER {d.quote(t)}")[0][2])
                   for t in triggers]
    cols = [str(r[0]) for r in db.query(
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
        "AND TABLE_NAME = %s AND EXTRA NOT LIKE '%%GENERATED%%' "
        "AND COALESCE(GENERATION_EXPRESSION, '') = '' ORDER BY ORDINAL_POSITION",
        (rb.table,))]
    qcols = ", ".join(d.quote(c) for c in cols)
    n = max(1, int(opts.sample_rows))
    if stats.rows <= n:
        sample_sql = f"SELECT {qcols} FROM {qt}"
    else:
        # Rows at random over the whole table (a LIMIT alone would keep the first pages).
        fraction = min(1.0, 2.0 * n / max(stats.rows, 1))
        sample_sql = f"SELECT {qcols} FROM {qt} WHERE RAND(7) < {fraction!r} LIMIT {n}"
    with db.read_only():
        rows = db.query(sample_sql)
    with d.scratch(opts.shadow_dsn or db.dsn) as shadow:
        # The sample's parents are not copied: keys to other tables are not checked there.
        shadow.execute("SET SESSION foreign_key_checks = 0")
        try:
            shadow.execute(create)
        except pymysql.Error as exc:
            raise BadInput(f"could not build a shadow copy of {rb.display}: "
                           f"{exc.args[-1] if exc.args else exc}") from None
        marks = ", ".join(["%s"] * len(cols))
        esc = d.escape_for_params
        if rows:
            with shadow.transaction(), shadow.conn.cursor() as cur:
                cur.executemany(f"INSERT INTO {esc(qt)} ({esc(qcols)}) VALUES ({marks})", rows)
        for sql in trigger_sql:
            # A trigger that names tables the copy lacks fails when it fires, not here;
            # one the server cannot create at all is left out of the trial.
            with contextlib.suppress(pymysql.Error):
                shadow.execute(sql)
        if report:
            report(f"shadow: copied a sample of {len(rows):,} row(s) of {rb.display}")
        batch = BatchSql(shadow, rb)
        explain_on_shadow(shadow, batch, rb)
        updated, seconds = trial_run(shadow, batch, rb, len(rows))
    return Trial(len(rows), updated, seconds, None)
