"""Formats: the original Lockplane JSON still loads; shipped JSON Schemas are current."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lockplane.jsonschema import SCHEMAS_DIR, generated, render
from lockplane.model import Schema
from lockplane.plan import Plan

ORIGINAL_SCHEMA = {
    "dialect": "postgres",
    "tables": [{
        "name": "users",
        "schema": "public",
        "columns": [
            {"name": "id", "type": "integer", "nullable": False, "default": None,
             "is_primary_key": True},
            {"name": "email", "type": "text", "nullable": False, "default": None,
             "is_primary_key": False},
        ],
        "indexes": [{"name": "users_email_key", "columns": ["email"], "unique": True}],
        "foreign_keys": [],
    }, {
        "name": "posts",
        "columns": [{"name": "id", "type": "integer", "nullable": False, "is_primary_key": True},
                    {"name": "user_id", "type": "integer", "nullable": True}],
        "indexes": [],
        "foreign_keys": [{"name": "posts_user_id_fkey", "columns": ["user_id"],
                          "referenced_table": "users", "referenced_columns": ["id"],
                          "on_delete": "CASCADE", "on_update": None}],
    }],
}

ORIGINAL_PLAN = {"source_hash": "abc", "steps": [
    {"description": "Add column", "sql": ["ALTER TABLE users ADD COLUMN x int"]}]}


def test_original_schema_format_loads() -> None:
    s = Schema.model_validate(ORIGINAL_SCHEMA)
    users = s.table("public", "users")
    assert users is not None and users.primary_key is not None
    assert users.primary_key.columns == ["id"]
    assert users.indexes[0].keys[0].column == "email"
    fk = s.table("public", "posts").foreign_keys[0]  # type: ignore[union-attr]
    assert fk.on_delete == "CASCADE" and fk.on_update == "NO ACTION"
    assert fk.referenced_schema == "public"
    # Round trip through our JSON is lossless and hash-stable.
    again = Schema.model_validate_json(s.to_json())
    assert again.hash() == s.hash()


def test_hash_ignores_column_and_table_order() -> None:
    s = Schema.model_validate(ORIGINAL_SCHEMA)
    data = json.loads(s.to_json())
    data["tables"].reverse()
    data["tables"][1]["columns"].reverse()
    assert Schema.model_validate(data).hash() == s.hash()


# Schema hashes are stored: in plan files (source_hash / target_hash), in the history
# table and in multi-phase state. A new Lockplane that hashed the same schema differently
# would refuse every plan made before the upgrade, so the hash of these schemas is fixed.
# golden_postgres.json is the introspection fixture of test_introspect_postgres.py (every
# object kind, hostile names); golden_sqlite.json a SQLite database with views, triggers,
# partial and expression indexes. A field added later must be sparse (see model.py).
GOLDEN = Path(__file__).parent / "data"
GOLDEN_HASHES = {
    "golden_postgres.json": "c3ac347f6966de5d2f6c96fb8f414412e8152d31efb0e4490461180b2d1d7463",
    "golden_sqlite.json": "3005383ea76f3066d30a7ae7b8a02127b769a1e2cd2c69321451cde9959987f3",
}


@pytest.mark.parametrize("name", sorted(GOLDEN_HASHES))
def test_schema_hash_is_stable_across_versions(name: str) -> None:
    s = Schema.model_validate_json((GOLDEN / name).read_text())
    assert s.hash() == GOLDEN_HASHES[name]
    assert Schema.model_validate_json(s.to_json()).hash() == GOLDEN_HASHES[name]


@pytest.mark.parametrize("name", sorted(GOLDEN_HASHES))
def test_hash_pair_is_each_hash(name: str) -> None:
    """hashes() splices per-table JSON and reuses equal tables' bytes: it must give the
    bytes of serializing the whole canonical form, whatever is equal or not."""
    import hashlib

    import orjson

    from lockplane.model import hashes

    a = Schema.model_validate_json((GOLDEN / name).read_text())
    whole = hashlib.sha256(orjson.dumps(a.canonical(), option=orjson.OPT_SORT_KEYS)).hexdigest()
    assert whole == a.hash() == GOLDEN_HASHES[name]
    b = a.model_copy(deep=True)
    b.tables[0].comment = "changed"
    b.tables.reverse()
    b.tables.append(b.tables[-1].model_copy(update={"name": "zz new"}))
    assert hashes(a, b) == (a.hash(), b.hash())
    assert hashes(b, a) == (b.hash(), a.hash())
    assert hashes(a, a.model_copy(deep=True)) == (a.hash(), a.hash())
    assert a.hash() != b.hash()


def test_original_plan_format_loads() -> None:
    p = Plan.model_validate(ORIGINAL_PLAN)
    assert p.steps[0].sql == ["ALTER TABLE users ADD COLUMN x int"]


def test_shipped_json_schemas_are_current() -> None:
    for name, doc in generated().items():
        assert (SCHEMAS_DIR / name).read_text() == render(doc), (
            f"{name} is stale: run python -m lockplane.jsonschema")


def test_sqlite_table_options_in_schema_json() -> None:
    from pydantic import ValidationError

    def sqlite_schema(pk_type: str = "INTEGER", **table: object) -> Schema:
        return Schema.model_validate({"dialect": "sqlite", "tables": [{
            "name": "t", "columns": [
                {"name": "id", "type": pk_type, "is_primary_key": True},
                {"name": "v", "type": "INT", "generated": "id * 2", "generated_kind": "virtual"},
                {"name": "plain", "type": "TEXT", "generated_kind": "virtual"}],
            **table}]})

    plain = sqlite_schema()
    s = sqlite_schema(primary_key={"columns": ["id"], "autoincrement": True}, strict=True)
    t = s.tables[0]
    assert t.primary_key is not None and t.primary_key.autoincrement and t.strict
    assert [c.generated_kind for c in t.columns] == ["stored", "virtual", "stored"]
    assert s.hash() != plain.hash()
    assert Schema.model_validate_json(s.to_json()).hash() == s.hash()
    # AUTOINCREMENT only where SQLite takes it: bad input, not a failed migration.
    auto = {"columns": ["id"], "autoincrement": True}
    with pytest.raises(ValidationError, match="autoincrement needs"):
        sqlite_schema("INT", primary_key=auto)
    with pytest.raises(ValidationError, match="autoincrement needs"):
        sqlite_schema(primary_key=auto, without_rowid=True)
    with pytest.raises(ValidationError, match="WITHOUT ROWID needs a primary key"):
        Schema.model_validate({"dialect": "sqlite", "tables": [
            {"name": "t", "columns": [{"name": "a", "type": "TEXT"}], "without_rowid": True}]})


@pytest.mark.parametrize("table", [
    {"strict": True},
    {"without_rowid": True, "primary_key": {"columns": ["id"]}},
    {"primary_key": {"columns": ["id"], "autoincrement": True}},
], ids=["strict", "without_rowid", "autoincrement"])
def test_sqlite_only_fields_are_refused_in_a_postgres_schema(table: dict[str, object]) -> None:
    from pydantic import ValidationError

    data = {"dialect": "postgres", "tables": [
        {"name": "t", "columns": [{"name": "id", "type": "INTEGER", "nullable": False}]
         } | table]}
    with pytest.raises(ValidationError, match="SQLite-only"):
        Schema.model_validate(data)
    assert Schema.model_validate(data | {"dialect": "sqlite"}).tables[0].name == "t"


def test_virtual_generated_columns_are_postgres_18s_too() -> None:
    s = Schema.model_validate({"dialect": "postgres", "tables": [{"name": "t", "columns": [
        {"name": "id", "type": "integer"},
        {"name": "v", "type": "integer", "generated": "(id * 2)", "generated_kind": "virtual"}]}]})
    assert s.tables[0].columns[1].generated_kind == "virtual"
