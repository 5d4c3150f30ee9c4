"""Declared enum-value renames (issue 16: jobqueue step 029, ALTER TYPE ... RENAME VALUE).

``'succeeded',  -- lockplane:renamed-from done`` on a value's line in ``CREATE TYPE ... AS
ENUM (...)`` (``values_renamed_from`` in JSON) makes the plan rename the label in place
(``rename_enum_value``) instead of recreating the type, which rows holding the old value
refuse. PostgreSQL stores enum values by OID: rows, defaults, CHECKs, index predicates,
views, triggers' WHEN, policies, partition bounds and SQL-standard function bodies print
the new label right after the rename, and
the plan is exact about it (nothing else is planned for them, forward or back); a
PL/pgSQL body keeps its text. All on the real server.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import psycopg
import pytest

from lockplane.changes.rename_enum_value import relabel_schema
from lockplane.dialects import connect
from lockplane.jsonschema import SCHEMAS_DIR
from lockplane.model import Schema
from lockplane.plan import build_plan
from lockplane.sources import load_schema
from tests.cli_inprocess import lockplane
from tests.conftest import pg_exec
from tests.roundtrip import _explain, roundtrip_to

CURRENT = """
CREATE TYPE job_state AS ENUM ('queued', 'running', 'done', 'failed');
CREATE TABLE jobs (
  id bigint PRIMARY KEY,
  state job_state NOT NULL DEFAULT 'done',
  history job_state[] DEFAULT '{done,queued}',
  CONSTRAINT late_done CHECK (state <> 'done' OR id > 0),
  CONSTRAINT known CHECK (state IN ('queued', 'done', 'failed', 'running'))
);
CREATE INDEX jobs_done ON jobs (id) WHERE state = 'done';
CREATE VIEW done_jobs AS SELECT id FROM jobs WHERE state = 'done';
CREATE FUNCTION is_done(s job_state) RETURNS boolean LANGUAGE sql
  BEGIN ATOMIC SELECT s = 'done'; END;
CREATE FUNCTION is_done_pl(s job_state) RETURNS boolean LANGUAGE plpgsql
  AS $$ BEGIN RETURN s::text = 'done'; END $$;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER on_done BEFORE UPDATE ON jobs FOR EACH ROW
  WHEN (NEW.state = 'done') EXECUTE FUNCTION touch();
CREATE POLICY not_done ON jobs USING (state <> 'done');
CREATE TABLE events (state job_state NOT NULL, n int) PARTITION BY LIST (state);
CREATE TABLE events_done PARTITION OF events FOR VALUES IN ('done', 'failed');
CREATE TABLE events_other PARTITION OF events DEFAULT;
INSERT INTO jobs VALUES (1, 'done', '{done}'), (2, 'queued', DEFAULT), (3, 'failed', NULL);
INSERT INTO events VALUES ('done', 1), ('queued', 2);
"""

DESIRED = """
CREATE TYPE job_state AS ENUM (
  'queued',
  'running',
  'succeeded',  -- lockplane:renamed-from done
  'failed'
);
CREATE TABLE jobs (
  id bigint PRIMARY KEY,
  state job_state NOT NULL DEFAULT 'succeeded',
  history job_state[] DEFAULT '{succeeded,queued}',
  CONSTRAINT late_done CHECK (state <> 'succeeded' OR id > 0),
  CONSTRAINT known CHECK (state IN ('queued', 'succeeded', 'failed', 'running'))
);
CREATE INDEX jobs_done ON jobs (id) WHERE state = 'succeeded';
CREATE VIEW done_jobs AS SELECT id FROM jobs WHERE state = 'succeeded';
CREATE FUNCTION is_done(s job_state) RETURNS boolean LANGUAGE sql
  BEGIN ATOMIC SELECT s = 'succeeded'; END;
CREATE FUNCTION is_done_pl(s job_state) RETURNS boolean LANGUAGE plpgsql
  AS $$ BEGIN RETURN s::text = 'done'; END $$;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER on_done BEFORE UPDATE ON jobs FOR EACH ROW
  WHEN (NEW.state = 'succeeded') EXECUTE FUNCTION touch();
CREATE POLICY not_done ON jobs USING (state <> 'succeeded');
CREATE TABLE events (state job_state NOT NULL, n int) PARTITION BY LIST (state);
CREATE TABLE events_done PARTITION OF events FOR VALUES IN ('succeeded', 'failed');
CREATE TABLE events_other PARTITION OF events DEFAULT;
"""


@pytest.fixture(scope="module")
def db(pg_admin_dsn: str) -> object:
    """One database at CURRENT for the module (each test leaves it there)."""
    from tests.conftest import _create_pg_database, _drop_pg_database, _pg_dsn_for

    name = _create_pg_database(pg_admin_dsn)
    dsn = _pg_dsn_for(name, pg_admin_dsn)
    pg_exec(dsn, CURRENT)
    yield dsn
    _drop_pg_database(name, pg_admin_dsn)


@pytest.fixture(scope="module")
def desired(tmp_path_factory: pytest.TempPathFactory) -> Schema:
    """DESIRED loaded once (a scratch database); tests take copies."""
    return load_schema(str(_file(tmp_path_factory.mktemp("desired"), DESIRED)))


def _read(dsn: str) -> Schema:
    with connect(dsn) as c:
        return c.introspect()


def _file(tmp_path: Path, text: str, name: str = "schema.sql") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_what_postgres_prints_after_a_rename(db: str) -> None:
    """The server stores the value, not the label: every stored expression prints the new
    label (the PL/pgSQL body and text comparisons do not), and relabel_schema is exactly
    what introspection reads after a raw RENAME VALUE."""
    before = _read(db)
    expected = before.model_copy(deep=True)
    enum = expected.enums[0]
    enum.values = ["succeeded" if v == "done" else v for v in enum.values]
    relabel_schema(expected, enum, "done", "succeeded")
    with psycopg.connect(db) as conn:
        conn.execute("ALTER TYPE job_state RENAME VALUE 'done' TO 'succeeded'")
        # The same transaction can use the new label (unlike a value ADDed in it).
        conn.execute("INSERT INTO jobs VALUES (9, 'succeeded')")
        conn.execute("DELETE FROM jobs WHERE id = 9")
    try:
        with psycopg.connect(db) as conn:
            row = conn.execute(
                "SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d "
                "WHERE d.adrelid = 'jobs'::regclass AND d.adnum = 2").fetchone()
            assert row == ("'succeeded'::job_state",)
            defs = conn.execute("SELECT pg_get_viewdef('done_jobs'), "
                                "pg_get_functiondef('is_done'::regproc), "
                                "pg_get_functiondef('is_done_pl'::regproc), "
                                "pg_get_indexdef('jobs_done'::regclass)").fetchone()
            assert "'succeeded'::job_state" in defs[0] and "'succeeded'::job_state" in defs[1]
            assert "'done'" in defs[2] and "succeeded" not in defs[2]
            assert "'succeeded'::job_state" in defs[3]
            assert conn.execute("SELECT state::text FROM jobs WHERE id = 1").fetchone() == (
                "succeeded",)
        got = _read(db)
        assert got.hash() == expected.hash(), _explain(got, expected)
    finally:
        pg_exec(db, "ALTER TYPE job_state RENAME VALUE 'succeeded' TO 'done'")
    assert _read(db).hash() == before.hash()


def test_lock_facts(db: str) -> None:
    """RENAME VALUE locks the type object only: no table lock; a reader and a writer of
    the table go on while it is uncommitted."""
    with psycopg.connect(db) as conn:
        conn.execute("ALTER TYPE job_state RENAME VALUE 'done' TO 'succeeded'")
        pid = conn.info.backend_pid
        with psycopg.connect(db, autocommit=True) as other:
            other.execute("SET lock_timeout = '2s'")
            locks = other.execute(
                "SELECT locktype, coalesce(classid::regclass::text, ''), mode, "
                "coalesce(relation::regclass::text, '') FROM pg_locks "
                "WHERE pid = %s AND locktype IN ('relation', 'object') AND granted",
                (pid,)).fetchall()
            on_tables = [lk for lk in locks if lk[0] == "relation" and lk[3] == "jobs"]
            assert on_tables == [], locks
            assert ("object", "pg_type", "ExclusiveLock", "") in locks, locks
            assert other.execute("SELECT count(*) FROM jobs").fetchone() == (3,)
            other.execute("UPDATE jobs SET id = id WHERE id = 2")
        conn.rollback()


def test_plan_apply_replan_rollback(db: str, tmp_path: Path) -> None:
    """One step, exact: its SQL, lock facts and rollback; applied (shadow checked), the
    rows hold the new label, a re-plan is empty, the rollback is back at the hash."""
    desired = _file(tmp_path, DESIRED)
    before = _read(db)
    out = lockplane("plan", "--from", db, "--to", str(desired), "--output",
                    str(tmp_path / "plan.json"))
    assert out.code == 0, out.output
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert [s["kind"] for s in plan["steps"]] == ["rename_enum_value"]
    step = plan["steps"][0]
    assert step["sql"][-1] == ('ALTER TYPE "public"."job_state" RENAME VALUE \'done\' TO '
                               "'succeeded'")
    assert step["rollback"]["sql"][-1] == ('ALTER TYPE "public"."job_state" RENAME VALUE '
                                           "'succeeded' TO 'done'")
    assert step["lock"]["mode"] == "NONE" and not step["lock"]["rewrites_table"] \
        and not step["lock"]["scans_table"] and not step["lock"]["blocks_writes"]
    assert step["safety"] == "review" and step["transactional"] is True
    assert [f["rule"] for f in step["findings"]] == ["enum-value-renamed"]

    applied = lockplane("apply", str(tmp_path / "plan.json"), "--target", db,
                        "--auto-approve")
    assert applied.code == 0, applied.output
    assert "shadow validation passed" in applied.output
    with psycopg.connect(db) as conn:
        assert conn.execute("SELECT id, state::text, history::text FROM jobs ORDER BY id"
                            ).fetchall() == [(1, "succeeded", "{succeeded}"),
                                             (2, "queued", "{succeeded,queued}"),
                                             (3, "failed", None)]
    again = lockplane("plan", "--from", db, "--to", str(desired))
    assert again.code == 0 and json.loads(again.stdout)["steps"] == [], again.output
    back = lockplane("rollback", str(tmp_path / "plan.json"), "--target", db,
                     "--auto-approve")
    assert back.code == 0, back.output
    assert _read(db).hash() == before.hash()


def test_with_other_changes_of_the_type(db: str, desired: Schema, tmp_path: Path) -> None:
    """The rename runs first, the rest is planned against the relabeled type: a default
    and a CHECK naming the label changed in the same plan, round trip (catalog, rows,
    re-plan, rollback: the undone default and CHECK name the new label, since the label
    is renamed back last) exact; a value added after the new label is added AFTER it."""
    text = DESIRED.replace("DEFAULT 'succeeded'", "DEFAULT 'queued'").replace(
        "OR id > 0", "OR id > -1")
    plan, _ = roundtrip_to(db, load_schema(str(_file(tmp_path, text))))
    kinds = [s.kind for s in plan.steps]
    assert kinds[0] == "rename_enum_value" and "recreate_enum" not in kinds, kinds
    undo = [sql for s in plan.steps[1:] for sql in (s.rollback.sql if s.rollback else [])]
    assert any("'succeeded'::public.job_state" in sql for sql in undo), undo
    assert not any("'done'" in sql for sql in undo), undo

    added = desired.model_copy(deep=True)
    added.enums[0].values.insert(3, "archived")
    plan = build_plan(_read(db), added)
    assert [s.kind for s in plan.steps] == ["rename_enum_value", "add_enum_value"]
    assert plan.steps[1].sql[-1].endswith("ADD VALUE 'archived' AFTER 'succeeded'")


def test_without_the_annotation_the_type_is_recreated(db: str, desired: Schema) -> None:
    """Only a declared rename pairs the labels."""
    assert desired.enums[0].values_renamed_from == {"succeeded": "done"}
    bare = desired.model_copy(deep=True)
    bare.enums[0].values_renamed_from = {}
    plan = build_plan(_read(db), bare)
    assert "recreate_enum" in [s.kind for s in plan.steps]
    assert "rename_enum_value" not in [s.kind for s in plan.steps]


BAD = [
    ("'queued', 'running', 'succeeded', 'failed'  -- lockplane:renamed-from done\n",
     2, "the one value it renames"),
    ("'queued',\n'running',\n'succeeded',  -- lockplane:renamed-from\n'failed'\n",
     4, "names no old value"),
    ("'queued',\n'running',\n'succeeded',  -- lockplane:renamed-from running\n'failed'\n",
     4, "is still a value"),
    ("'queued',\n'running',\n'succeeded',  -- lockplane:renamed-from 'do' 'ne'\n'failed'\n",
     4, "one string literal"),
    ("'queued',\n'running',\n'succeeded',  /* lockplane:renamed-from 'done */\n'failed'\n",
     4, "one string literal"),
    ("'queued',\n'running', -- lockplane:renamed-from done\n"
     "'succeeded',  -- lockplane:renamed-from done\n'failed'\n", 4, "renamed from 'done'"),
    ("-- lockplane:renamed-from old_state\n'queued', 'running', 'succeeded', 'failed'\n",
     2, "the one value it renames"),
]


def test_bad_annotation_exits_2(db: str, tmp_path: Path) -> None:
    """Exit 2, one line naming file:line, no traceback; nothing changes in the database."""
    path = _file(tmp_path, f"CREATE TYPE job_state AS ENUM (\n{BAD[0][0]});\n")
    before = _read(db).hash()
    out = lockplane("plan", "--from", db, "--to", str(path))
    assert out.code == 2, out.output
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and f"{path}:2:" in lines[0] and BAD[0][2] in lines[0], out.stderr
    assert "Traceback" not in out.output
    assert _read(db).hash() == before


@pytest.mark.parametrize(("values", "line", "needle"), BAD)
def test_bad_annotation(tmp_path: Path, values: str, line: int, needle: str) -> None:
    """Each bad annotation names its file and line (read against the type as loaded)."""
    from lockplane.errors import BadInput
    from lockplane.model import EnumType
    from lockplane.multiphase.annotations import apply_rename_annotations

    path = _file(tmp_path, f"CREATE TYPE job_state AS ENUM (\n{values});\n")
    loaded = Schema(enums=[EnumType(name="job_state", schema="public", values=[
        "queued", "running", "succeeded", "failed"])])
    with pytest.raises(BadInput) as err:
        apply_rename_annotations(loaded, [path])
    assert err.value.message.startswith(f"{path}:{line}: ") and needle in err.value.message


def test_annotation_forms(tmp_path: Path) -> None:
    """The old label as a literal (quotes doubled) or a bare word; a block comment; a
    value closing the list; a quoted, schema-qualified type name."""
    from lockplane.model import EnumType
    from lockplane.multiphase.annotations import apply_rename_annotations

    path = _file(tmp_path, 'CREATE TYPE app."Job State" AS ENUM (\n'
                 "  'it''s',  -- lockplane:renamed-from 'it''s old'\n"
                 "  'b' /* lockplane:renamed-from Bee */,\n"
                 "  'c');  -- lockplane:renamed-from see\n"
                 "CREATE TABLE t (x int);  -- lockplane:renamed-from u\n")
    loaded = Schema(enums=[EnumType(name="Job State", schema="app",
                                    values=["it's", "b", "c"])])
    with pytest.raises(Exception, match="table t not found"):  # (the table line: its own)
        apply_rename_annotations(loaded, [path])
    assert loaded.enums[0].values_renamed_from == {"it's": "it's old", "b": "Bee", "c": "see"}


def test_json_round_trip(db: str, desired: Schema, tmp_path: Path) -> None:
    """``values_renamed_from`` in JSON: the shipped JSON Schema accepts it, it survives
    a dump and load without changing the hash, a plan from JSON renames; bad JSON is
    exit 2 naming the type."""
    schema = desired
    data = json.loads(schema.to_json())
    spec = json.loads((SCHEMAS_DIR / "schema.json").read_text())
    jsonschema.validate(data, spec)
    assert data["enums"][0]["values_renamed_from"] == {"succeeded": "done"}
    again = Schema.model_validate(data)
    assert again.enums[0].values_renamed_from == {"succeeded": "done"}
    plain = schema.model_copy(deep=True)
    plain.enums[0].values_renamed_from = {}
    assert again.hash() == plain.hash() == schema.hash()

    path = tmp_path / "schema.json"
    path.write_text(json.dumps(data))
    out = lockplane("plan", "--from", db, "--to", str(path))
    assert out.code == 0, out.output
    assert [s["kind"] for s in json.loads(out.stdout)["steps"]] == ["rename_enum_value"]

    data["enums"][0]["values_renamed_from"] = {"finished": "done"}
    path.write_text(json.dumps(data))
    out = lockplane("plan", "--from", db, "--to", str(path))
    assert out.code == 2 and "Traceback" not in out.output, out.output
    assert "schema.json: enums[0] (job_state)" in out.stderr \
        and "values_renamed_from: 'finished' is not a value" in out.stderr, out.stderr


def test_multi_phase_plan_renames_once(db: str, tmp_path: Path) -> None:
    """With a column rename (expand/contract), the value rename is one step of the
    phases, and the phases end at the desired schema."""
    text = DESIRED.replace("history job_state[] DEFAULT '{succeeded,queued}',",
                           "past job_state[] DEFAULT '{succeeded,queued}', "
                           "-- lockplane:renamed-from history")
    path = _file(tmp_path, text)
    out = lockplane("plan", "--multi-phase", "--from", db, "--to", str(path), "--output",
                    str(tmp_path / "mp.json"))
    assert out.code == 0, out.output
    mp = json.loads((tmp_path / "mp.json").read_text())
    kinds = [s["kind"] for ph in mp["phases"] for s in ph["plan"]["steps"]]
    assert kinds.count("rename_enum_value") == 1, kinds
    assert mp["phases"][-1]["plan"]["target_hash"] == load_schema(str(path)).hash()
