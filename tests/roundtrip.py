"""Round-trip harness: plan from -> to, apply, compare catalogs, keep rows, re-plan, roll back.

Used by the hand-written cases and by the hypothesis-generated ones, on real PostgreSQL
and SQLite. "Catalog equal" is ``Schema.hash()`` equality, which ignores column order.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql as pgsql

from lockplane.dialects import connect
from lockplane.execute import ApplyOptions, apply_plan
from lockplane.model import Schema, Table
from lockplane.plan import build_plan, rollback_plan


def _pg_rows(dsn: str, schema: Schema) -> dict[tuple[str, str], dict[str, list[Any]]]:
    out: dict[tuple[str, str], dict[str, list[Any]]] = {}
    with psycopg.connect(dsn) as conn:
        for t in schema.tables:
            cols = [c.name for c in t.columns]
            if not cols:
                continue
            order = t.primary_key.columns if t.primary_key else cols
            q = pgsql.SQL("SELECT {} FROM {} ORDER BY {}").format(
                pgsql.SQL(", ").join(pgsql.SQL("{}::text").format(pgsql.Identifier(c))
                                     for c in cols),
                pgsql.Identifier(t.schema_ or "public", t.name),
                pgsql.SQL(", ").join(pgsql.Identifier(c) for c in order))
            rows = conn.execute(q).fetchall()
            out[(t.schema_ or "", t.name)] = {c: [r[i] for r in rows] for i, c in enumerate(cols)}
    return out


ROWID = "\x00rowid"  # the rows' rowid, under a name no column has


def _rowid_name(t: Table) -> str | None:
    """A name that reads the rowid of ``t`` (None: WITHOUT ROWID, or every one shadowed)."""
    if t.without_rowid:
        return None
    taken = {c.name.lower() for c in t.columns}
    return next((a for a in ("rowid", "_rowid_", "oid") if a not in taken), None)


def _integer_pk(t: Table) -> str | None:
    pk = t.primary_key
    if t.without_rowid or pk is None or len(pk.columns) != 1:
        return None
    col = t.column(pk.columns[0])
    return col.name if col is not None and col.type.strip().upper() == "INTEGER" else None


def rowids_kept(old: Table, new: Table) -> bool:
    """Whether a migration must keep the rows' rowids: both are rowid tables, and the new
    one's rowid is not a column carried over that was not the old rowid."""
    if _rowid_name(old) is None or _rowid_name(new) is None:
        return False
    ipk = _integer_pk(new)
    return ipk is None or ipk == _integer_pk(old) or old.column(ipk) is None


def _sqlite_rows(path: str, schema: Schema) -> dict[tuple[str, str], dict[str, list[Any]]]:
    out: dict[tuple[str, str], dict[str, list[Any]]] = {}
    conn = sqlite3.connect(path)
    try:
        for t in schema.tables:
            cols = [c.name for c in t.columns]
            q = '"' + t.name.replace('"', '""') + '"'
            sel = ", ".join('"' + c.replace('"', '""') + '"' for c in cols)
            rowid = _rowid_name(t)
            if rowid is not None:
                sel += f", {rowid}"
                cols.append(ROWID)
            order = f" ORDER BY {rowid}" if rowid else ""  # WITHOUT ROWID: it has none
            rows = conn.execute(f"SELECT {sel} FROM {q}{order}").fetchall()
            out[("main", t.name)] = {c: [r[i] for r in rows] for i, c in enumerate(cols)}
    finally:
        conn.close()
    return out


def roundtrip(from_dsn: str, to_dsn: str, *, shadow: bool = False,
              rows_survive: bool = True) -> dict[str, Any]:
    """Plan from the database at ``from_dsn`` to the one at ``to_dsn`` and check everything."""
    with connect(from_dsn) as db:
        before = db.introspect()
    with connect(to_dsn) as db:
        desired = db.introspect()
    is_pg = from_dsn.startswith("postgres")
    rows_of: Callable[[Schema], Any] = (
        (lambda s: _pg_rows(from_dsn, s)) if is_pg
        else (lambda s: _sqlite_rows(from_dsn.split(":///", 1)[1], s)))
    rows_before = rows_of(before)

    plan = build_plan(before, desired)
    result = apply_plan(plan, from_dsn, ApplyOptions(safety="permissive", skip_shadow=not shadow,
                                                    lock_timeout_ms=5000))
    with connect(from_dsn) as db:
        after = db.introspect()
    assert after.hash() == desired.hash(), _explain(after, desired)
    again = build_plan(after, desired)
    assert not again.steps, [s.description for s in again.steps]

    if rows_survive:
        rows_after = rows_of(after)
        for key, cols in rows_before.items():
            if key not in rows_after:
                continue
            old_t = before.table(*key)
            new_t = desired.table(*key)
            assert old_t is not None and new_t is not None
            keep = []
            for col, values in cols.items():
                if col == ROWID:
                    # a rebuilt SQLite table keeps them (FTS indexes and code use them)
                    if ROWID in rows_after[key] and rowids_kept(old_t, new_t):
                        keep.append(col)
                    continue
                oc, nc = old_t.column(col), new_t.column(col)
                if nc is None or oc is None or oc.type != nc.type or nc.generated:
                    continue
                if oc.default != nc.default and any(v is None for v in values):
                    continue
                keep.append(col)
            # Rows as a multiset: the order they are read in may change with the table
            # (a new primary key, a rebuilt SQLite table).
            want = sorted(zip(*(cols[c] for c in keep), strict=True), key=repr)
            got = sorted(zip(*(rows_after[key][c] for c in keep), strict=True), key=repr)
            assert got == want, (key, keep)

    back = rollback_plan(plan)
    apply_plan(back, from_dsn, ApplyOptions(safety="permissive", skip_shadow=True,
                                           lock_timeout_ms=5000))
    with connect(from_dsn) as db:
        restored = db.introspect()
    assert restored.hash() == before.hash(), _explain(restored, before)
    return {"plan": plan, "result": result}


def _explain(got: Schema, want: Schema) -> str:
    """A short description of how two schemas differ, for assertion messages."""
    import json

    g, w = got.canonical(), want.canonical()
    lines = []
    for key in sorted(set(g) | set(w)):
        if g.get(key) != w.get(key):
            lines.append(f"{key}: got {json.dumps(g.get(key))[:1500]}\n   want "
                         f"{json.dumps(w.get(key))[:1500]}")
    return "\n".join(lines)


def sqlite_db(tmp: Path, name: str, script: str) -> str:
    path = tmp / f"{name}.db"
    conn = sqlite3.connect(path)
    conn.executescript(script)
    conn.close()
    return f"sqlite:///{path}"
