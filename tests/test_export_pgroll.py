"""``lockplane export --to pgroll``: plans (single- and multi-phase) as pgroll migrations.

pgroll itself cannot run here; the output is checked against the shape pgroll documents
for each operation (required fields, one operation per object, allowed values)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from conftest import PG_ADMIN_DSN, pg_exec
from test_cli import assert_one_line_error, run

from lockplane.errors import BadInput
from lockplane.export.pgroll import export_multiphase, export_plan
from lockplane.multiphase import plan_multiphase
from lockplane.multiphase.explicit import explicit_target
from lockplane.plan import Plan, Step, StepRollback, build_plan
from lockplane.sources import SourceContext, canonicalize, load_schema


def _op(name: str, required: list[str], **props: Any) -> dict[str, Any]:
    return {"type": "object", "required": [name], "additionalProperties": False,
            "properties": {name: {"type": "object", "required": required,
                                  "properties": props}}}


_COLUMN = {"type": "object", "required": ["name", "type"], "additionalProperties": False,
           "properties": {"name": {"type": "string"}, "type": {"type": "string"},
                          "nullable": {"type": "boolean"}, "pk": {"type": "boolean"},
                          "unique": {"type": "boolean"}, "default": {"type": "string"},
                          "comment": {"type": "string"}, "check": {"type": "object"},
                          "references": {"type": "object"}}}
_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
# The operations Lockplane emits, with the fields pgroll's docs require of each.
PGROLL_SHAPE = {
    "type": "object", "required": ["operations"], "additionalProperties": False,
    "properties": {"name": {"type": "string"}, "operations": {"type": "array", "items": {
        "oneOf": [
            _op("add_column", ["table", "column"], column=_COLUMN),
            _op("drop_column", ["table", "column"]),
            _op("create_table", ["name", "columns"],
                columns={"type": "array", "items": _COLUMN}),
            _op("drop_table", ["name"]),
            _op("rename_table", ["from", "to"]),
            _op("create_index", ["name", "table", "columns"],
                method={"enum": ["btree", "hash", "gist", "spgist", "gin", "brin"]}),
            _op("drop_index", ["name"]),
            {**_op("alter_column", ["table", "column"]), "properties": {"alter_column": {
                "type": "object", "required": ["table", "column"],
                "oneOf": [{"required": ["name"],
                           "not": {"anyOf": [{"required": [k]} for k in
                                             ("type", "nullable", "default", "up", "down")]}},
                          {"required": ["up", "down"],
                           "anyOf": [{"required": [k]} for k in
                                     ("type", "nullable", "default")]}]}}},
            _op("create_constraint", ["name", "table", "type", "up", "down"],
                type={"enum": ["unique", "check", "foreign_key"]}, up=_MAP, down=_MAP),
            {**_op("sql", ["up"]), "properties": {"sql": {
                "type": "object", "required": ["up"],
                "not": {"required": ["down", "onComplete"]}}}},
        ]}}},
}


def _check(migration: dict[str, Any]) -> list[str]:
    jsonschema.validate(migration, PGROLL_SHAPE)
    json.dumps(migration)  # plain JSON
    return [next(iter(op)) for op in migration["operations"]]


CTX = SourceContext(dialect="postgres", server_dsn=PG_ADMIN_DSN)

BEFORE = """
CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL, age text,
                    nick varchar(20) DEFAULT 'x', CONSTRAINT users_email_key UNIQUE (email));
CREATE INDEX users_nick_idx ON users (nick);
CREATE TABLE old (id int);
"""
AFTER = """
CREATE TABLE users (id int PRIMARY KEY, email text, age integer,
                    nick varchar(20) DEFAULT 'y' NOT NULL, bio text,
                    CONSTRAINT users_email_key UNIQUE (email));
CREATE TABLE posts (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    user_id int NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                    title text NOT NULL DEFAULT '', UNIQUE (user_id, title));
CREATE INDEX posts_user_idx ON posts (user_id) WHERE title <> '';
COMMENT ON TABLE posts IS 'what users write';
"""


def test_single_phase_plan(tmp_path: Path) -> None:
    (tmp_path / "before.sql").write_text(BEFORE)
    (tmp_path / "after.sql").write_text(AFTER)
    plan = build_plan(load_schema(str(tmp_path / "before.sql"), CTX),
                      load_schema(str(tmp_path / "after.sql"), CTX))
    migration, warnings = export_plan(plan, name="002_posts")
    kinds = _check(migration)
    assert migration["name"] == "002_posts"
    ops = migration["operations"]
    by = {k: [o[k] for o in ops if k in o] for k in set(kinds)}
    assert by["drop_index"] == [{"name": "users_nick_idx"}]
    assert by["drop_table"] == [{"name": "old"}]
    assert by["add_column"] == [{"table": "users", "column": {
        "name": "bio", "type": "text", "nullable": True}}]
    (posts,) = by["create_table"]
    cols = {c["name"]: c for c in posts["columns"]}
    assert posts["name"] == "posts" and cols["id"]["pk"] is True
    assert cols["user_id"] == {"name": "user_id", "type": "integer", "nullable": False}
    # Expressions are written as pglast deparses them (casts as CAST(... AS ...)).
    assert cols["title"]["default"] == "CAST('' AS text)"
    index = by["create_index"][0]
    assert index["columns"] == ["user_id"] and "title" in index["predicate"]
    alters = {a["column"]: a for a in by["alter_column"]}
    assert alters["age"]["type"] == "integer" and alters["age"]["down"] == "CAST(age AS text)"
    assert alters["email"]["nullable"] is True
    assert alters["nick"]["nullable"] is False
    assert alters["nick"]["default"] == "CAST('y' AS varchar)"
    constraints = {c["type"]: c for c in by["create_constraint"]}
    assert constraints["foreign_key"]["references"] == {
        "table": "users", "columns": ["id"], "on_delete": "CASCADE"}
    assert constraints["unique"]["columns"] == ["user_id", "title"]
    # The table comment has no pgroll operation: raw SQL, at complete, with a warning.
    assert "COMMENT ON TABLE" in ops[-1]["sql"]["up"] and ops[-1]["sql"]["onComplete"]
    assert any("raw SQL" in w for w in warnings)
    assert any("nick IS NULL" in w for w in warnings)


def test_lock_safe_forms_read_as_their_changes(tmp_path: Path) -> None:
    # The lock-safe plan spells changes pgroll makes safe itself in several steps: each
    # is exported as the one operation it stands for, without SET lock_timeout.
    (tmp_path / "before.sql").write_text(
        "CREATE TABLE orgs (id int PRIMARY KEY);\n"
        "CREATE TABLE users (id int NOT NULL, email text, org int);")
    (tmp_path / "after.sql").write_text(
        "CREATE TABLE orgs (id int PRIMARY KEY);\n"
        "CREATE TABLE users (id int NOT NULL, email text UNIQUE,\n"
        "  org int REFERENCES orgs (id), token uuid NOT NULL DEFAULT gen_random_uuid());")
    before = load_schema(str(tmp_path / "before.sql"), CTX)
    after = load_schema(str(tmp_path / "after.sql"), CTX)
    plan = build_plan(before, after)
    assert {"backfill_column", "validate_constraint"} <= {s.kind for s in plan.steps}
    assert any("USING INDEX" in q for s in plan.steps for q in s.sql)
    migration, warnings = export_plan(plan)
    assert _check(migration) == ["add_column", "create_constraint", "create_constraint"]
    assert "lock_timeout" not in json.dumps(migration)
    add, unique, fk = (next(iter(o.values())) for o in migration["operations"])
    assert add == {"table": "users", "up": "gen_random_uuid()", "column": {
        "name": "token", "type": "uuid", "nullable": False, "default": "gen_random_uuid()"}}
    assert (unique["type"], unique["name"], unique["columns"]) == (
        "unique", "users_email_key", ["email"])
    assert (fk["type"], fk["name"], fk["references"]) == (
        "foreign_key", "users_org_fkey", {"table": "orgs", "columns": ["id"]})
    assert not warnings
    # The plain plan exports to the same operations.
    plain, _ = export_plan(build_plan(before, after, lock_safe=False))
    assert _check(plain) == ["add_column", "create_constraint", "create_constraint"]
    assert plain["operations"][1:] == migration["operations"][1:]


def test_raw_sql_alone_keeps_its_way_back() -> None:
    plan = Plan(source_hash="a", target_hash="b", dialect="postgres", steps=[
        Step(description="Enable RLS", kind="alter_rls", sql=[
            'ALTER TABLE "public"."t" ENABLE ROW LEVEL SECURITY'],
            rollback=StepRollback(sql=['ALTER TABLE "public"."t" DISABLE ROW LEVEL SECURITY']))])
    migration, _ = export_plan(plan)
    assert _check(migration) == ["sql"]
    assert migration["operations"][0]["sql"] == {
        "up": 'ALTER TABLE "public"."t" ENABLE ROW LEVEL SECURITY',
        "down": 'ALTER TABLE "public"."t" DISABLE ROW LEVEL SECURITY'}
    with pytest.raises(BadInput, match="PostgreSQL"):
        export_plan(plan.model_copy(update={"dialect": "sqlite"}))


def test_multiphase_plans(pg_dsn: str, tmp_path: Path) -> None:
    pg_exec(pg_dsn, """
CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL UNIQUE, age text, nick text,
                    score int);
CREATE TABLE legacy (id int PRIMARY KEY);
INSERT INTO users VALUES (1, 'a@x', '7', 'a', NULL);
""")
    ctx = SourceContext(dialect="postgres", server_dsn=pg_dsn)
    before = load_schema(pg_dsn, ctx)

    def exported(pattern: str, table: str = "users", archive: bool = False,
                 **kw: Any) -> tuple[dict[str, Any], list[str]]:
        after = explicit_target(before, pattern, table, kw.get("column"), kw.get("to_name"),
                                kw.get("to_type"))
        if kw.get("default"):
            col = after.table("public", table).column(kw["column"])  # type: ignore[union-attr]
            col.default = kw["default"]  # type: ignore[union-attr]
        mp = plan_multiphase(before, canonicalize(after, ctx, "test"), server_dsn=pg_dsn,
                             table=table, archive=archive)
        migration, warnings = export_multiphase(mp)
        assert _check(migration)
        return migration, warnings

    m, _ = exported("rename_column", column="email", to_name="email_address")
    assert m["operations"] == [{"alter_column": {"table": "users", "column": "email",
                                                 "name": "email_address"}}]
    m, _ = exported("change_type", column="age", to_type="integer")
    assert m["operations"] == [{"alter_column": {
        "table": "users", "column": "age", "type": "integer",
        "up": 'CAST("age" AS integer)', "down": 'CAST("age" AS text)'}}]
    m, _ = exported("add_not_null", column="score", default="0")
    assert m["operations"] == [{"alter_column": {
        "table": "users", "column": "score", "nullable": False,
        "up": 'COALESCE("score", 0)', "down": '"score"'}}]
    m, warnings = exported("drop_column", column="nick", archive=True)
    assert m["operations"] == [{"drop_column": {"table": "users", "column": "nick"}}]
    assert any("archive" in w and "CREATE TABLE" in w for w in warnings)
    m, _ = exported("rename_table", to_name="members")
    assert m["operations"] == [{"rename_table": {"from": "users", "to": "members"}}]
    m, _ = exported("drop_table", table="legacy")
    assert m["operations"] == [{"drop_table": {"name": "legacy"}}]


def test_cli_export(pg_dsn: str, tmp_path: Path) -> None:
    pg_exec(pg_dsn, "CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL)")
    desired = tmp_path / "schema.sql"
    desired.write_text("CREATE TABLE users (\n  id int PRIMARY KEY,\n"
                       "  email_address text NOT NULL -- lockplane:renamed-from email\n);")
    mp = tmp_path / "mp.json"
    assert run("plan", "--from", pg_dsn, "--to", str(desired), "--multi-phase", "-q",
               "-o", str(mp)).returncode == 0
    out = tmp_path / "pgroll.json"
    proc = run("export", "--to", "pgroll", str(mp), "-o", str(out), "--name", "03_rename")
    assert proc.returncode == 0, proc.stderr
    migration = json.loads(out.read_text())
    assert _check(migration) == ["alter_column"]
    assert migration["name"] == "03_rename"
    assert_one_line_error(run("export", "--to", "flyway", str(mp)), 2,
                          "pgroll, gh-ost or pt-osc")
    # (gh-ost and pt-osc: tests/test_export_osc.py)
    assert_one_line_error(run("export", "--to", "gh-ost", str(mp)), 2, "single-phase plan")
    assert_one_line_error(run("export", str(tmp_path / "nope.json")), 2, "nope.json")


def test_names_that_need_quoting() -> None:
    # Read with PostgreSQL's parser: quotes, dots, spaces and commas in names are names.
    t, c = '"public"."we""ird, t.x"', '"co, l""1"'
    plan = Plan(source_hash="a", target_hash="b", dialect="postgres", steps=[
        Step(description="Add column", kind="add_column",
             sql=[f"ALTER TABLE {t} ADD COLUMN {c} text DEFAULT 'a, b' NOT NULL"]),
        Step(description="Index", kind="create_index",
             sql=[f'CREATE INDEX CONCURRENTLY "i ""x" ON {t} ({c}, "id")']),
        Step(description="Rename", kind="rename_column",
             sql=[f'ALTER TABLE {t} RENAME COLUMN {c} TO "new"" name"']),
    ])
    migration, _ = export_plan(plan)
    assert _check(migration) == ["add_column", "create_index", "alter_column"]
    add, index, rename = (next(iter(o.values())) for o in migration["operations"])
    assert add == {"table": 'we"ird, t.x', "column": {
        "name": 'co, l"1', "type": "text", "nullable": False, "default": "'a, b'"}}
    assert (index["name"], index["columns"]) == ('i "x', ['co, l"1', "id"])
    assert rename == {"table": 'we"ird, t.x', "column": 'co, l"1', "name": 'new" name'}


def test_shapes_pgroll_cannot_say_stay_raw_sql() -> None:
    # An expression index, an ON UPDATE action and a collation have no pgroll field: the
    # step runs as raw SQL rather than as an operation that says less than the plan.
    plan = Plan(source_hash="a", target_hash="b", dialect="postgres", steps=[
        Step(description="Index", kind="create_index",
             sql=['CREATE INDEX "i" ON "t" (lower("email"))']),
        Step(description="FK", kind="add_foreign_key",
             sql=['ALTER TABLE "t" ADD CONSTRAINT "f" FOREIGN KEY ("o") REFERENCES "o" ("id") '
                  "ON UPDATE CASCADE"]),
        Step(description="Add column", kind="add_column",
             sql=['ALTER TABLE "t" ADD COLUMN "n" text COLLATE "C"']),
    ])
    migration, warnings = export_plan(plan)
    assert _check(migration) == ["sql"]
    assert "lower" in migration["operations"][0]["sql"]["up"]
    assert sum("raw SQL without a way back" in w for w in warnings) == 3
    broken = plan.model_copy(update={"steps": [Step(description="Odd", kind="add_column",
                                                    sql=["ALTER TABLE t ADD COLUMN ("])]})
    with pytest.raises(BadInput, match="Odd: its SQL does not parse"):
        export_plan(broken)


def test_cli_export_checks_the_plan_like_apply(pg_dsn: str, tmp_path: Path) -> None:
    pg_exec(pg_dsn, "CREATE TABLE users (id int PRIMARY KEY)")
    desired = tmp_path / "schema.sql"
    desired.write_text("CREATE TABLE users (id int PRIMARY KEY, email text);")
    plan_file = tmp_path / "plan.json"
    assert run("plan", "--from", pg_dsn, "--to", str(desired), "-q",
               "-o", str(plan_file)).returncode == 0
    assert run("export", str(plan_file)).returncode == 0
    # Edited after review: the exported migration would run what no one reviewed.
    data = json.loads(plan_file.read_text())
    data["steps"][0]["sql"] = [s.replace('"email" text', '"email" text DEFAULT pg_sleep(1)')
                               for s in data["steps"][0]["sql"]]
    plan_file.write_text(json.dumps(data))
    assert_one_line_error(run("export", str(plan_file)), 3, "does not match its content")
