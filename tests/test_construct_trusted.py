"""model.construct_trusted (the introspector's validation-free path) builds exactly what
model_validate builds: same fields, same validator effects, same canonical form and hash."""

from __future__ import annotations

import copy
from typing import Any

import psycopg
import pytest
from conftest import pg_exec
from pydantic import BaseModel
from test_introspect_postgres import build, roles  # noqa: F401  (roles: a fixture)

import lockplane.dialects.postgres.introspect as pg_introspect
from lockplane.model import Schema, _canonical_bytes, construct_trusted

# Objects the main introspection script has not got: INHERITS, extended statistics,
# range types, collations, aggregates, rules, revoked defaults, ON DELETE SET NULL (col).
_EXTRA = """
CREATE TABLE app.base (id int PRIMARY KEY, note text DEFAULT 'n', at timestamptz);
CREATE TABLE app.child (extra int) INHERITS (app.base);
CREATE TABLE app.logged (a int, b int, c int, CONSTRAINT logged_pk PRIMARY KEY (a, b))
    WITH (fillfactor = 70);
ALTER TABLE app.logged ALTER COLUMN c SET STATISTICS 300;
CREATE STATISTICS app.logged_ab (dependencies) ON a, b FROM app.logged;
CREATE TABLE app.refs (id int PRIMARY KEY, a int, b int,
    FOREIGN KEY (a, b) REFERENCES app.logged (a, b) ON DELETE SET NULL (b) ON UPDATE CASCADE);
ALTER TABLE app.refs REPLICA IDENTITY FULL;
CREATE UNLOGGED TABLE app.scratch (k text COLLATE "C", v jsonb);
CREATE INDEX scratch_k ON app.scratch (k DESC NULLS LAST, lower(k)) WHERE v IS NOT NULL;
CREATE RULE no_delete AS ON DELETE TO app.scratch DO INSTEAD NOTHING;
CREATE TYPE app.floatrange AS RANGE (subtype = float8, subtype_diff = float8mi);
CREATE COLLATION app.nocase (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE FUNCTION app.plus(a int, b int) RETURNS int LANGUAGE sql AS 'SELECT a + b';
REVOKE EXECUTE ON FUNCTION app.plus(int, int) FROM PUBLIC;
CREATE AGGREGATE app.total(int) (SFUNC = int4pl, STYPE = int, INITCOND = '0');
"""


def _same_tree(a: Any, b: Any, where: str = "schema") -> None:
    """Field values, fields_set and private state equal, recursively (== skips fields_set)."""
    assert type(a) is type(b), where
    if isinstance(a, BaseModel):
        assert a.__pydantic_fields_set__ == b.__pydantic_fields_set__, where
        assert a.__pydantic_private__ == b.__pydantic_private__, where
        assert a.__pydantic_extra__ == b.__pydantic_extra__, where
        assert list(a.__dict__) == list(b.__dict__), where
        for key, value in a.__dict__.items():
            _same_tree(value, b.__dict__[key], f"{where}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same_tree(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def _assert_identical(validated: Schema, constructed: Schema) -> None:
    assert constructed.hash() == validated.hash()
    assert _canonical_bytes(constructed.canonical()) == _canonical_bytes(validated.canonical())
    assert constructed.to_json() == validated.to_json()
    assert constructed == validated
    _same_tree(validated, constructed)


def test_introspection_matches_validation(pg_dsn: str, roles: tuple[str, str],  # noqa: F811
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    build(pg_dsn, *roles)
    pg_exec(pg_dsn, _EXTRA)
    pairs: list[tuple[Schema, Schema]] = []

    def both(cls: type[Schema], data: dict[str, Any]) -> Schema:
        validated = cls.model_validate(copy.deepcopy(data))
        constructed = construct_trusted(cls, data)
        pairs.append((validated, constructed))
        return constructed

    monkeypatch.setattr(pg_introspect, "construct_trusted", both)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        pg_introspect.introspect(conn)
    [(validated, constructed)] = pairs
    # The script's objects all arrived (the comparison is not of two empty schemas).
    assert {t.name for t in constructed.tables} >= {"accounts", "events_2024", "child", "refs"}
    assert constructed.range_types and constructed.collations and constructed.aggregates
    _assert_identical(validated, constructed)


def test_validators_run_on_original_format_input() -> None:
    # Legacy shapes that only the model's validators normalize.
    data: dict[str, Any] = {
        "dialect": "postgres",
        "tables": [
            {"name": "parent", "columns": [
                {"name": "id", "type": "integer", "is_primary_key": True, "nullable": True},
                {"name": "label", "type": "text"}],
             "indexes": [{"name": "parent_label", "columns": ["label"]}],
             "foreign_keys": [{"name": "fk", "columns": ["id"], "referenced_table": "other",
                               "referenced_columns": ["id"], "on_delete": "set_null",
                               "on_update": None, "match": "full"}]},
            {"name": "kid", "schema": "app", "partition_of": "public.parent",
             "partition_bound": "DEFAULT", "columns": []},
            {"name": "other", "columns": [{"name": "id", "type": "integer"}],
             "primary_key": {"columns": ["id"]}},
        ],
        "functions": [{"name": "f", "definition": "CREATE FUNCTION f() ...", "grants": [
            {"grantee": "public", "privilege": "execute"},
            {"grantee": "bob", "privilege": "EXECUTE"}]}],
        "views": [{"name": "v", "definition": "SELECT 1", "indexes": []}],
    }
    validated = Schema.model_validate(copy.deepcopy(data))
    constructed = construct_trusted(Schema, data)
    _assert_identical(validated, constructed)
    kid = constructed.table("app", "kid")
    assert kid is not None and [c.name for c in kid.columns] == ["id", "label"]
    assert constructed.tables[0].foreign_keys[0].on_delete == "SET NULL"


def test_unknown_or_missing_keys_are_errors() -> None:
    with pytest.raises(KeyError, match="unknown keys"):
        construct_trusted(Schema, {"tables": [], "tabels": []})
    with pytest.raises(KeyError, match="required"):
        construct_trusted(Schema, {"tables": [{"columns": []}]})
