"""Read a SQLite database's structure into a Schema.

Pragmas are the source of truth for what SQLite tracks (columns, PK order, indexes, FK
actions); the stored CREATE text supplies what it does not expose (constraint names,
CHECK and generated expressions, DEFERRABLE, index expressions and predicates).
Pragmas are called as table-valued functions with bound parameters, so no SQL is ever
built from a table name.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from typing import Any, Literal, cast, get_args

from ...model import (
    CheckConstraint,
    Column,
    FkAction,
    ForeignKey,
    Index,
    IndexKey,
    PrimaryKey,
    Schema,
    Table,
    Trigger,
    UniqueConstraint,
    View,
)
from . import sqltext
from .sqltext import TableDef, fold

SCHEMA = "main"
STATE_PREFIX = "_lockplane_"  # Lockplane's own state tables (DESIGN.md, "State")
_FK_ACTIONS: tuple[str, ...] = get_args(FkAction)


def introspect(conn: sqlite3.Connection) -> Schema:
    """The structure of the ``main`` database of ``conn``, minus internal/Lockplane objects."""
    # One read transaction, so every pragma sees the same snapshot of the schema.
    own_txn = not conn.in_transaction
    if own_txn:
        conn.execute("BEGIN")
    try:
        return _introspect(conn)
    finally:
        if own_txn and conn.in_transaction:
            conn.execute("COMMIT")


def is_excluded(name: str) -> bool:
    """SQLite's reserved names (case-insensitive, as SQLite checks) and Lockplane's own."""
    folded = fold(name)
    return folded.startswith("sqlite_") or folded.startswith(STATE_PREFIX)


def _rows(conn: sqlite3.Connection, sql: str,
          params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    cur = conn.cursor()
    cur.row_factory = None  # plain tuples whatever the connection's row factory is
    try:
        return list(cur.execute(sql, params).fetchall())
    finally:
        cur.close()


def _introspect(conn: sqlite3.Connection) -> Schema:
    objects = _rows(conn, "SELECT type, name, tbl_name, sql FROM main.sqlite_schema "
                          "ORDER BY type, name")
    table_list = _table_list(conn)
    virtual = {fold(name) for type_, name, _, sql in objects
               if type_ == "table" and (sql or "").lstrip()[:14].upper() == "CREATE VIRTUAL"}

    table_sql: dict[str, str] = {}
    unmanaged: list[str] = []
    for type_, name, _, sql in objects:
        if type_ != "table" or is_excluded(name) or not sql:
            continue
        kind = table_list[name][0] if name in table_list else None
        if fold(name) in virtual or kind == "virtual":
            # The model cannot express virtual tables: reported, left as they are (their
            # shadow tables, below, go with them).
            unmanaged.append(f"virtual table {name} ({_module(sql)})")
            continue
        if kind == "shadow":
            continue
        if kind is None and any(fold(name).startswith(v + "_") for v in virtual):
            continue  # table_list was unavailable: SQLite's own shadow-name rule
        table_sql[name] = sql
    index_sql = {name: sql for type_, name, _, sql in objects if type_ == "index" and sql}

    parsed = {name: sqltext.parse_create_table(sql) for name, sql in table_sql.items()}
    tables = {name: _table(conn, name, parsed[name], index_sql, table_list.get(name))
              for name in table_sql}
    by_folded = {fold(name): t for name, t in tables.items()}
    for name, table in tables.items():
        table.foreign_keys = _foreign_keys(conn, name, parsed[name], by_folded)

    for type_, name, tbl_name, sql in objects:
        if type_ == "trigger" and sql and (table := by_folded.get(fold(tbl_name))):
            table.triggers.append(Trigger(name=name, definition=sql))

    views = [View(name=name, schema_=SCHEMA, definition=sqltext.view_select(sql))
             for type_, name, _, sql in objects
             if type_ == "view" and sql and not is_excluded(name)]
    return Schema(dialect="sqlite", tables=list(tables.values()), views=views,
                  unmanaged=sorted(unmanaged))


def _module(sql: str) -> str:
    """The module of a CREATE VIRTUAL TABLE ... USING module(...) (fts5, rtree, ...)."""
    toks = sqltext.tokenize(sql)
    for i, tok in enumerate(toks[:-1]):
        if tok.is_kw("USING"):  # a bare word: a quoted table name cannot match
            return sqltext.unquote(toks[i + 1].text).lower()
    return "unknown module"


_TableListRow = tuple[str, bool, bool]  # type, WITHOUT ROWID, STRICT


def _table_list(conn: sqlite3.Connection) -> dict[str, _TableListRow]:
    """name -> (table | view | virtual | shadow, without rowid, strict): PRAGMA table_list,
    SQLite 3.37+; empty where it is unavailable."""
    try:
        rows = _rows(conn, "SELECT name, type, wr, strict FROM pragma_table_list "
                           "WHERE schema = ?", (SCHEMA,))
    except sqlite3.Error:
        # Old SQLite, or a virtual table whose module this build lacks.
        return {}
    return {name: (type_, bool(wr), bool(strict)) for name, type_, wr, strict in rows}


def _table(conn: sqlite3.Connection, name: str, tdef: TableDef,
           index_sql: dict[str, str], listed: _TableListRow | None) -> Table:
    columns: list[Column] = []
    pk: list[tuple[int, str]] = []
    for _cid, col_name, type_, notnull, dflt, pk_pos, hidden in _rows(
            conn, "SELECT cid, name, type, \"notnull\", dflt_value, pk, hidden "
                  "FROM pragma_table_xinfo(?, ?) ORDER BY cid", (name, SCHEMA)):
        if hidden == 1:
            continue  # a virtual table's hidden column
        cdef = tdef.column(col_name)
        collation = generated = None
        if cdef is not None:
            collation = cdef.collation
            if hidden in (2, 3) and (gen := cdef.first("GENERATED")) is not None:
                generated = gen.expression
        columns.append(Column(name=col_name, type=type_ or "", nullable=not notnull,
                              default=dflt, generated=generated, collation=collation,
                              generated_kind="virtual" if hidden == 2 else "stored",
                              key_not_null=bool(pk_pos and notnull)))
        if pk_pos:
            pk.append((pk_pos, col_name))

    if listed is not None:
        without_rowid, strict = listed[1], listed[2]
    else:
        # No table_list (SQLite before 3.37, which cannot open a STRICT table anyway): the
        # options as the CREATE text writes them.
        without_rowid, strict = "WITHOUT ROWID" in tdef.options, "STRICT" in tdef.options
    table = Table(name=name, schema_=SCHEMA, columns=columns,
                  primary_key=PrimaryKey(name=_pk_name(tdef), columns=[c for _, c in sorted(pk)],
                                         autoincrement=_autoincrement(tdef))
                  if pk else None,
                  check_constraints=_checks(tdef), without_rowid=without_rowid, strict=strict)

    uniques = _declared_uniques(tdef)
    # sqlite_autoindex_<table>_<N> numbers constraints in the order written: walking them
    # in that order pairs each with its declaration.
    for _seq, idx_name, unique, origin, partial in sorted(_rows(
            conn, "SELECT seq, name, \"unique\", origin, partial "
                  "FROM pragma_index_list(?, ?)", (name, SCHEMA)), key=_index_order):
        keys = _rows(conn, "SELECT seqno, cid, name, \"desc\", coll FROM "
                           "pragma_index_xinfo(?, ?) WHERE key = 1 ORDER BY seqno",
                     (idx_name, SCHEMA))
        if origin == "u":
            cols = [k[2] for k in keys]
            table.unique_constraints.append(
                UniqueConstraint(name=_take_unique_name(uniques, keys), columns=cols))
        elif origin == "c" and idx_name in index_sql:
            table.indexes.append(_index(idx_name, index_sql[idx_name], bool(unique),
                                        bool(partial), keys, table))
        # origin 'pk' is the primary key's own index
    return table


def _index_order(row: tuple[Any, ...]) -> tuple[int, str]:
    suffix = str(row[1]).rsplit("_", 1)[-1]
    return (int(suffix) if row[3] != "c" and suffix.isdigit() else 0, str(row[1]))


def _pk_name(tdef: TableDef) -> str | None:
    for con in tdef.constraints:
        if con.kind == "PRIMARY KEY":
            return con.name
    for col in tdef.columns:
        if (con := col.first("PRIMARY KEY")) is not None:
            return con.name
    return None


def _autoincrement(tdef: TableDef) -> bool:
    # Not in any pragma: only the CREATE text says it (column or table PRIMARY KEY).
    return any(c.kind == "PRIMARY KEY" and c.autoincrement
               for c in [*tdef.constraints, *(c for col in tdef.columns for c in col.constraints)])


def _checks(tdef: TableDef) -> list[CheckConstraint]:
    # Column-level checks are table checks in all but placement; the model has one list.
    out = [CheckConstraint(name=c.name, expression=c.expression or "")
           for col in tdef.columns for c in col.constraints if c.kind == "CHECK"]
    out += [CheckConstraint(name=c.name, expression=c.expression or "")
            for c in tdef.constraints if c.kind == "CHECK"]
    return out


_UniqueSig = list[tuple[str, str, bool]]  # per key: folded column, collation, descending


def _declared_uniques(tdef: TableDef) -> list[tuple[str | None, _UniqueSig] | None]:
    """(name, signature) of every UNIQUE written, in order; None once claimed."""
    out: list[tuple[str | None, _UniqueSig] | None] = []
    for con in [c for col in tdef.columns for c in col.constraints] + tdef.constraints:
        if con.kind != "UNIQUE":
            continue
        sig = []
        for key in con.keys:
            col = tdef.column(sqltext.unquote(key.expression))
            coll = key.collation or (col.collation if col else None) or "BINARY"
            sig.append((fold(sqltext.unquote(key.expression)), fold(coll), key.descending))
        out.append((con.name, sig))
    return out


def _take_unique_name(declared: list[tuple[str | None, _UniqueSig] | None],
                      keys: list[tuple[Any, ...]]) -> str | None:
    # SQLite builds one index for identical UNIQUEs (same columns, collations and order):
    # the first one written owns it, later twins are dropped.
    want = [(fold(k[2]), fold(k[4] or "BINARY"), bool(k[3])) for k in keys]
    for i, entry in enumerate(declared):
        if entry is not None and entry[1] == want:
            declared[i] = None
            return entry[0]
    return None


def _index(name: str, sql: str, unique: bool, partial: bool,
           keys: list[tuple[Any, ...]], table: Table) -> Index:
    idef = sqltext.parse_create_index(sql)
    out: list[IndexKey] = []
    for pos, (_seqno, cid, col_name, desc, coll) in enumerate(keys):
        item = idef.items[pos] if pos < len(idef.items) else None
        if cid is not None and cid >= 0 and col_name is not None:
            # Record a collation only where it differs from what the column implies, so
            # "ON t(a)" and "ON t(a COLLATE NOCASE)" on a NOCASE column read the same.
            col = table.column(col_name)
            implied = (col.collation if col and col.collation else "BINARY")
            collation = coll if coll and coll.upper() != implied.upper() else None
            out.append(IndexKey(column=col_name, descending=bool(desc), collation=collation))
        else:
            # Expression key (cid -2), or rowid (-1): the text is only in the CREATE INDEX.
            expr = item.expression if item is not None else (col_name or "rowid")
            out.append(IndexKey(expression=expr, descending=bool(desc),
                                collation=item.collation if item is not None else None))
    return Index(name=name, keys=out, unique=unique,
                 where=idef.where if partial else None)


def _foreign_keys(conn: sqlite3.Connection, name: str, tdef: TableDef,
                  tables: dict[str, Table]) -> list[ForeignKey]:
    groups: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    for row in _rows(conn, "SELECT id, seq, \"table\", \"from\", \"to\", on_update, "
                           "on_delete, \"match\" FROM pragma_foreign_key_list(?, ?) "
                           "ORDER BY id, seq", (name, SCHEMA)):
        groups[row[0]].append(row)

    # What the CREATE text declares, in the order written (names, DEFERRABLE).
    declared: list[sqltext.Constraint | None] = [
        c for col in tdef.columns for c in col.constraints if c.kind == "FOREIGN KEY"]
    declared += [c for c in tdef.constraints if c.kind == "FOREIGN KEY"]

    out: list[ForeignKey] = []
    # SQLite numbers FKs newest first; walk them in declaration order to pair duplicates.
    for fk_id in sorted(groups, reverse=True):
        rows = groups[fk_id]
        ref_name = rows[0][2]
        target = tables.get(fold(ref_name))
        local = [r[3] for r in rows]
        written_to = [r[4] for r in rows]
        if all(t is None for t in written_to):
            # Implicit reference to the parent's primary key.
            ref_cols = list(target.primary_key.columns) if target and target.primary_key else []
        else:
            ref_cols = [_resolve_column(target, t) for t in written_to]
        con = _take_declared_fk(declared, local, ref_name, written_to)
        refs = con.references if con is not None else None
        out.append(ForeignKey(
            name=con.name if con is not None else None,
            columns=local,
            referenced_schema=SCHEMA,
            referenced_table=target.name if target else ref_name,
            referenced_columns=ref_cols,
            on_update=_action(rows[0][5]),
            on_delete=_action(rows[0][6]),
            match=_match(rows[0][7]),
            deferrable=refs.deferrable if refs else False,
            initially_deferred=refs.initially_deferred if refs else False,
        ))
    return out


def _resolve_column(table: Table | None, name: str | None) -> str:
    """The parent column as the parent table spells it (FK text may differ in case)."""
    if name is None:
        return ""
    if table is not None:
        for col in table.columns:
            if fold(col.name) == fold(name):
                return col.name
    return name


def _take_declared_fk(declared: list[sqltext.Constraint | None], local: list[str],
                      ref_table: str, ref_cols: list[str | None]) -> sqltext.Constraint | None:
    want = ([fold(c) for c in local], fold(ref_table),
            [fold(c) for c in ref_cols if c is not None])
    for i, con in enumerate(declared):
        if con is None or con.references is None:
            continue
        have = ([fold(c) for c in con.columns], fold(con.references.table),
                [fold(c) for c in con.references.columns])
        if have == want:
            declared[i] = None
            return con
    return None


def _action(value: str | None) -> FkAction:
    value = (value or "NO ACTION").upper()
    return cast(FkAction, value) if value in _FK_ACTIONS else "NO ACTION"


def _match(value: str | None) -> Literal["SIMPLE", "FULL", "PARTIAL"]:
    # SQLite parses MATCH but ignores it: the pragma always says "NONE", i.e. SIMPLE.
    value = (value or "NONE").upper()
    if value in ("FULL", "PARTIAL"):
        return cast(Literal["FULL", "PARTIAL"], value)
    return "SIMPLE"
