"""SQLite: a table Lockplane creates or rebuilds reads back through the pragmas exactly as
the declared table does (issue 16, item 3).

``PRAGMA table_info``, ``index_list`` and ``foreign_key_list`` are what tools and ORMs read.
Before Lockplane.model.HASH_FORMAT 4, every table it created or rebuilt had NOT NULL on its
primary key columns (``id INTEGER PRIMARY KEY`` read notnull 1 instead of 0, and a
``k TEXT PRIMARY KEY`` of a rowid table stopped accepting NULLs, which SQLite allows).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from lockplane.dialects import connect
from lockplane.execute import ApplyOptions, apply_plan
from lockplane.model import Schema
from lockplane.plan import build_plan
from tests.roundtrip import roundtrip, sqlite_db

DECLARED = [
    ("integer primary key", "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE,"
     " p INTEGER REFERENCES t (id));"),
    ("integer primary key declared NOT NULL",
     "CREATE TABLE t (id INTEGER NOT NULL PRIMARY KEY, name TEXT);"),
    ("autoincrement", "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT);"),
    ("autoincrement NOT NULL",
     "CREATE TABLE t (id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, name TEXT);"),
    ("text key accepts NULL", "CREATE TABLE t (k TEXT PRIMARY KEY, name TEXT);"),
    ("composite key, one NOT NULL",
     'CREATE TABLE t (a TEXT NOT NULL, "b c" INTEGER, name TEXT, PRIMARY KEY (a, "b c"));'),
    ("table constraint key", "CREATE TABLE t (id INTEGER, name TEXT, PRIMARY KEY (id));"),
    ("without rowid", "CREATE TABLE t (k TEXT PRIMARY KEY, name TEXT) WITHOUT ROWID;"),
    ("sqlalchemy style", "CREATE TABLE t (id INTEGER NOT NULL, name VARCHAR(20),"
     " PRIMARY KEY (id), UNIQUE (name));"),
]
OTHER = "CREATE TABLE other (x INTEGER);"


def _pragmas(path: str) -> dict[str, list[tuple[object, ...]]]:
    conn = sqlite3.connect(path)
    try:
        return {p: conn.execute(f"SELECT * FROM pragma_{p}('t')").fetchall()
                for p in ("table_info", "index_list", "foreign_key_list")}
    finally:
        conn.close()


def _apply(src: str, desired: Schema) -> None:
    with connect(src) as db:
        before = db.introspect()
    apply_plan(build_plan(before, desired), src,
               ApplyOptions(safety="permissive", skip_shadow=True))


def _load(url: str) -> Schema:
    with connect(url) as db:
        return db.introspect()


@pytest.mark.parametrize("name, script", DECLARED, ids=[c[0] for c in DECLARED])
def test_created_and_rebuilt_tables_read_back_as_declared(tmp_path: Path, name: str,
                                                           script: str) -> None:
    declared = sqlite_db(tmp_path, "declared", script + OTHER)
    want = _pragmas(declared.split(":///", 1)[1])
    desired = _load(declared)

    created = sqlite_db(tmp_path, "created", OTHER)  # the plan creates t
    _apply(created, desired)
    assert _pragmas(created.split(":///", 1)[1]) == want

    # A rebuild (a column's type changes) from a table that differs: back to t as declared.
    rebuilt = sqlite_db(tmp_path, "rebuilt", script.replace("name TEXT", "name BLOB")
                        .replace("name VARCHAR(20)", "name BLOB") + OTHER)
    _apply(rebuilt, desired)
    assert _pragmas(rebuilt.split(":///", 1)[1]) == want
    assert _load(rebuilt).hash() == desired.hash()


def test_key_not_null_is_a_change_of_its_own(tmp_path: Path) -> None:
    """NOT NULL added to or taken from a rowid table's key: a rebuild, both ways, rows kept
    (a text key accepts NULL without it)."""
    a = sqlite_db(tmp_path, "a", "CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER);"
                  "INSERT INTO t VALUES ('a', 1), ('b', NULL);")
    b = sqlite_db(tmp_path, "b", "CREATE TABLE t (k TEXT NOT NULL PRIMARY KEY, v INTEGER);")
    roundtrip(a, b, shadow=True)


def test_key_not_null_is_sqlite_only() -> None:
    doc = {"dialect": "postgres", "tables": [{"name": "t", "schema": "public", "columns": [
        {"name": "id", "type": "integer", "key_not_null": True}],
        "primary_key": {"columns": ["id"]}}]}
    with pytest.raises(ValueError, match="key_not_null"):
        Schema.model_validate(doc)
    doc["dialect"] = "sqlite"
    doc["tables"][0]["schema"] = "main"
    doc["tables"][0]["columns"][0]["type"] = "text"
    assert Schema.model_validate(doc).tables[0].columns[0].key_not_null


def test_not_null_on_the_rowid_alias_is_no_change(tmp_path: Path) -> None:
    """``id INTEGER PRIMARY KEY`` is the rowid with or without NOT NULL: a table Lockplane
    created before hash format 4 (NOT NULL on every key) does not drift from a schema that
    does not say it, and is not rebuilt for it."""
    old = sqlite_db(tmp_path, "old", "CREATE TABLE t (id INTEGER PRIMARY KEY NOT NULL, v TEXT);")
    new = sqlite_db(tmp_path, "new", "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);")
    assert _load(old).hash() == _load(new).hash()
    assert not build_plan(_load(old), _load(new)).steps
    assert not build_plan(_load(new), _load(old)).steps
