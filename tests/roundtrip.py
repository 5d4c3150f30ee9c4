"""Round-trip harness: plan from -> to, apply, compare catalogs, keep rows, re-plan, roll back.

Used by the hand-written cases and by the hypothesis-generated ones, on real PostgreSQL,
SQLite and MariaDB. "Catalog equal" is ``Schema.hash()`` equality, which ignores column order.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql as pgsql

from lockplane.changes.alter_column import base_type
from lockplane.dialects import connect
from lockplane.execute import ApplyOptions, apply_plan
from lockplane.model import Column, Schema, Table
from lockplane.plan import Plan, build_plan, rollback_plan


def _pg_rows(dsn: str, schema: Schema) -> dict[tuple[str, str], dict[str, list[Any]]]:
    out: dict[tuple[str, str], dict[str, list[Any]]] = {}
    with psycopg.connect(dsn) as conn:
        for t in schema.tables:
            cols = [c.name for c in t.columns]
            if not cols or t.partition_by:
                continue  # (a partitioned table's rows are its partitions', read there)
            order = t.primary_key.columns if t.primary_key else cols
            q = pgsql.SQL("SELECT {} FROM ONLY {} ORDER BY {}").format(
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


def _mysql_rows(dsn: str, schema: Schema) -> dict[tuple[str, str], dict[str, list[Any]]]:
    out: dict[tuple[str, str], dict[str, list[Any]]] = {}
    with connect(dsn) as db:
        q = db.dialect.quote
        for t in schema.tables:
            cols = [c.name for c in t.columns]
            order = t.primary_key.columns if t.primary_key else cols
            rows = db.query(f"SELECT {', '.join(q(c) for c in cols)} FROM {q(t.name)} "
                            f"ORDER BY {', '.join(q(c) for c in order)}")
            out[(t.schema_ or "", t.name)] = {c: [r[i] for r in rows]
                                              for i, c in enumerate(cols)}
    return out


def _rows_reader(dsn: str) -> Callable[[Schema], Any]:
    if dsn.startswith("postgres"):
        return lambda s: _pg_rows(dsn, s)
    if dsn.startswith(("mysql", "mariadb")):
        return lambda s: _mysql_rows(dsn, s)
    return lambda s: _sqlite_rows(dsn.split(":///", 1)[1], s)


def roundtrip(from_dsn: str, to_dsn: str, *, shadow: bool = False,
              rows_survive: bool = True) -> dict[str, Any]:
    """Plan from the database at ``from_dsn`` to the one at ``to_dsn`` and check everything."""
    with connect(to_dsn) as db:
        desired = db.introspect()
    plan, result = roundtrip_to(from_dsn, desired, shadow=shadow, rows_survive=rows_survive)
    return {"plan": plan, "result": result}


def roundtrip_to(from_dsn: str, desired: Schema, *, shadow: bool = False,
                 rows_survive: bool = True, before: Schema | None = None) -> tuple[Plan, Any]:
    """Plan from the database at ``from_dsn`` to ``desired``, apply, check that the catalog
    is ``desired`` exactly, that rows survive (a declared rename carries them to the new
    name), that a re-plan is empty, then roll back and check the catalog is back.
    ``before``: the database's schema, when the caller has just read it.
    Returns (the plan, apply's result); the database ends where it started."""
    if before is None:
        with connect(from_dsn) as db:
            before = db.introspect()
    rows_of = _rows_reader(from_dsn)
    rows_before = rows_of(before)

    plan = build_plan(before, desired)
    result = apply_plan(plan, from_dsn, ApplyOptions(safety="permissive", skip_shadow=not shadow,
                                                    lock_timeout_ms=5000))
    # The catalog as the apply read it after its last commit (its end-state check).
    after = result.schema_after
    assert after is not None
    assert after.hash() == desired.hash(), _explain(after, desired)
    again = build_plan(after, desired)
    assert not again.steps, [s.description for s in again.steps]

    if rows_survive:
        rows_after = rows_of(after)
        relabeled = _value_renames(before, desired)
        for key, cols in rows_before.items():
            old_t = before.table(*key)
            new_t = _renamed_table(desired, *key)
            if new_t is None or old_t is None:
                continue
            new_key = (key[0], new_t.name)
            if new_key not in rows_after:
                continue
            keep = []
            for col, values in cols.items():
                if col == ROWID:
                    # a rebuilt SQLite table keeps them (FTS indexes and code use them)
                    if ROWID in rows_after[new_key] and rowids_kept(old_t, new_t):
                        keep.append((col, col))
                    continue
                oc, nc = old_t.column(col), _renamed_column(new_t, col)
                if nc is None or oc is None or oc.type != nc.type or nc.generated:
                    continue
                if base_type(before, oc.type) != base_type(desired, nc.type):
                    continue  # (a domain with a new base type: its values are converted)
                if oc.default != nc.default and any(v is None for v in values):
                    continue
                if nc.fill_with is not None and any(v is None for v in values):
                    continue  # its NULLs were filled (a declared fill, lockplane.fill)
                keep.append((col, nc.name))
                if nc.type.rstrip("[]") in relabeled:  # a renamed enum value
                    cols[col] = [_relabel(v, relabeled[nc.type.rstrip("[]")])
                                 for v in values]
            # Rows as a multiset: the order they are read in may change with the table
            # (a new primary key, a rebuilt SQLite table).
            want = sorted(zip(*(cols[c] for c, _ in keep), strict=True), key=repr)
            got = sorted(zip(*(rows_after[new_key][n] for _, n in keep), strict=True), key=repr)
            assert got == want, (key, keep)

    back = rollback_plan(plan)
    restored = apply_plan(back, from_dsn, ApplyOptions(safety="permissive", skip_shadow=True,
                                                       lock_timeout_ms=5000)).schema_after
    assert restored is not None
    assert restored.hash() == before.hash(), _explain(restored, before)
    return plan, result


def _value_renames(before: Schema, desired: Schema) -> dict[str, dict[str, str]]:
    """Per enum type (as a column type names it): {old label: new label} of the value
    renames ``desired`` declares and ``before`` has to make."""
    had = {(e.schema_, e.name): set(e.values) for e in before.enums}
    out: dict[str, dict[str, str]] = {}
    for e in desired.enums:
        renames = {old: new for new, old in e.values_renamed_from.items()
                   if old in had.get((e.schema_, e.name), ()) and
                   new not in had.get((e.schema_, e.name), ())}
        if renames:
            for name in (e.name, f"{e.schema_}.{e.name}"):
                out[name] = renames
    return out


def _relabel(value: Any, renames: dict[str, str]) -> Any:
    """A value read as text, with its labels renamed (a label, or an array of them)."""
    from lockplane.changes.rename_enum_value import _relabel_array

    if not isinstance(value, str):
        return value
    if value.startswith("{"):
        for old, new in renames.items():
            value = _relabel_array(value, old, new) or value
        return value
    return renames.get(value, value)


def _renamed_table(schema: Schema, schema_name: str, name: str) -> Table | None:
    """The table ``name`` of ``schema_name`` is in ``schema``: itself, or the one declared
    renamed from it."""
    t = schema.table(schema_name, name)
    if t is not None:
        return t
    return next((t for t in schema.tables if t.renamed_from == name
                 and (t.schema_ or "") == schema_name), None)


def _renamed_column(t: Table, name: str) -> Column | None:
    return t.column(name) or next((c for c in t.columns if c.renamed_from == name), None)


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
