"""What a batched backfill asks SQLite: the table's walkable key (primary or unique NOT
NULL; rowids can change on VACUUM), its size (a count), and a trial of the batch statement
on an in-memory copy holding a sample of its rows."""

from __future__ import annotations

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
from ..base import Database


def _ident(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"`":
        return text[1:-1].replace(text[0] * 2, text[0])
    if len(text) >= 2 and text[0] == "[" and text[-1] == "]":
        return text[1:-1]
    return text


def resolve(db: Database, spec: BackfillSpec) -> ResolvedBackfill:
    name = spec.table
    if name.lower().startswith(("main.", '"main".')):
        name = name.split(".", 1)[1]
    name = _ident(name)
    rows = db.query("SELECT name FROM sqlite_schema WHERE type = 'table' AND name = ? "
                    "COLLATE NOCASE", (name,))
    if not rows:
        raise BadInput(f"unknown table {spec.table!r} in {db.dsn_display}")
    table = rows[0][0]
    if table.startswith("_lockplane_") or table.startswith("sqlite_"):
        raise BadInput(f"{table} is an internal table: not a backfill target")
    qt = db.dialect.quote(table)
    info = db.query(f"PRAGMA table_xinfo({qt})")  # cid, name, type, notnull, dflt, pk, hidden
    columns = {r[1]: (r[2] or "", bool(r[3]), "a generated column" if r[6] in (2, 3) else "")
               for r in info if r[6] != 1}
    names = pick_columns(spec, table, columns, str)
    pk = [r for r in sorted(info, key=lambda r: r[5]) if r[5] > 0]
    without_rowid = bool(db.query(
        "SELECT 1 FROM sqlite_schema WHERE name = ? AND sql LIKE '%WITHOUT%ROWID%'", (table,)))
    candidates: list[tuple[str, str | None, list[str]]] = []
    if pk:
        kcols = [r[1] for r in pk]
        integer_pk = len(pk) == 1 and (pk[0][2] or "").upper() == "INTEGER"
        nullable = not (integer_pk or without_rowid) and not all(r[3] for r in pk)
        if not nullable or not _has_nulls(db, qt, kcols):
            candidates.append((KEY_PRIMARY, None, kcols))
    for idx in db.query(f"PRAGMA index_list({qt})"):  # seq, name, unique, origin, partial
        if not idx[2] or idx[4] or idx[3] == "pk":
            continue
        icols = db.query(f"PRAGMA index_xinfo({db.dialect.quote(idx[1])})")
        keycols = [r for r in icols if r[5]]  # key columns, not the trailing rowid
        if any(r[1] < 0 for r in keycols) or any(r[3] for r in keycols):  # expression / DESC
            continue
        kcols = [r[2] for r in keycols]
        if all(columns.get(c, ("", False, ""))[1] for c in kcols):
            candidates.append((KEY_UNIQUE, idx[1], kcols))
    if not candidates:
        raise BadInput(f"table {table} has no usable key: add a primary key or a unique "
                       "NOT NULL column (SQLite rowids can change on VACUUM, so a "
                       "resumable backfill cannot walk them)")
    candidates.sort(key=lambda c: (c[0] != KEY_PRIMARY, len(c[2])))
    kind, index, kcols = candidates[0]
    for n in names:
        if n in kcols:
            raise BadInput(f"column {table}.{n} is part of the key the backfill walks "
                           f"({', '.join(kcols)}): it cannot be set by a backfill")
    exprs, where = runnable(spec, "sqlite")
    return ResolvedBackfill(
        id=backfill_id("sqlite", None, table, names, exprs, where),
        dialect="sqlite", schema=None, table=table, columns=names, expressions=exprs,
        types=[columns[n][0] for n in names], not_null=[columns[n][1] for n in names],
        where=where, key_kind=kind, key_name=index, key_columns=kcols,
        key_types=["" for _ in kcols])


def _has_nulls(db: Database, qt: str, cols: list[str]) -> bool:
    cond = " OR ".join(f"{db.dialect.quote(c)} IS NULL" for c in cols)
    return bool(db.query(f"SELECT 1 FROM {qt} WHERE {cond} LIMIT 1"))


def table_stats(db: Database, rb: ResolvedBackfill) -> TableStats:
    # No catalog statistics worth trusting: count (SQLite tables are local files).
    n = int(db.query(f"SELECT count(*) FROM {db.dialect.quote(rb.table)}")[0][0])
    return TableStats(n, True, 0, 0, 0, 4096)


def shadow_trial(db: Database, rb: ResolvedBackfill, stats: TableStats,
                 opts: BackfillOptions, report: Reporter | None) -> Trial:
    d = db.dialect
    objects = db.query(
        "SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE sql IS NOT NULL "
        "AND name NOT LIKE 'sqlite^_%' ESCAPE '^' AND name NOT LIKE '^_lockplane^_%' ESCAPE '^' "
        "ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 WHEN 'view' THEN 2 "
        "ELSE 3 END, rowid")
    with d.scratch() as shadow:
        shadow.execute("PRAGMA foreign_keys = OFF")
        for kind, _name, _tbl, ddl in objects:
            if kind == "table":
                shadow.execute(ddl)
        qt = d.quote(rb.table)
        info = db.query(f"PRAGMA table_xinfo({qt})")
        cols = [r[1] for r in info if r[6] == 0]
        qcols = ", ".join(d.quote(c) for c in cols)
        n = max(1, int(opts.sample_rows))
        every = max(1, stats.rows // n)
        sample_where = f" WHERE abs(random()) % {every} = 0" if every > 1 else ""
        rows = db.query(f"SELECT {qcols} FROM {qt}{sample_where} LIMIT {n}")
        marks = ", ".join("?" for _ in cols)
        with shadow.transaction():
            getattr(shadow, "conn").executemany(  # noqa: B009
                f"INSERT INTO {qt} ({qcols}) VALUES ({marks})", rows)
        for kind, _name, _tbl, ddl in objects:
            if kind != "table":
                try:
                    shadow.execute(ddl)
                except Exception:  # noqa: BLE001 - a view or trigger the sample can't hold
                    pass
        sql = BatchSql(shadow, rb)
        explain_on_shadow(shadow, sql, rb)
        updated, seconds = trial_run(shadow, sql, rb, len(rows))
    return Trial(len(rows), updated, seconds, None)
