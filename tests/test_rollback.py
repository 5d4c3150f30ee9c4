"""Rollback is computed from the before-schema: what a step destroyed comes back whole."""

from __future__ import annotations

from lockplane.dialects import connect
from lockplane.plan import build_plan, rollback_plan
from tests.conftest import pg_exec
from tests.roundtrip import roundtrip

FROM = """
CREATE TABLE parents (id int PRIMARY KEY, code varchar(12), UNIQUE (id, code));
CREATE TABLE t (
  id int PRIMARY KEY,
  code varchar(12) COLLATE "C" NOT NULL DEFAULT 'none',
  parent_id int,
  CONSTRAINT t_code_check CHECK (code <> ''),
  CONSTRAINT t_code_key UNIQUE (code),
  CONSTRAINT t_parent_fk FOREIGN KEY (parent_id, code) REFERENCES parents (id, code)
);
CREATE INDEX t_code_lower ON t (lower(code)) WHERE code <> 'none';
COMMENT ON COLUMN t.code IS 'external code';
COMMENT ON CONSTRAINT t_code_check ON t IS 'never empty';
INSERT INTO parents VALUES (1, 'a');
-- Rows with values of their own: refilled from the archive, so UNIQUE comes back.
INSERT INTO t VALUES (1, 'a', NULL), (2, 'b', NULL);
"""
TO = """
CREATE TABLE parents (id int PRIMARY KEY, code varchar(12), UNIQUE (id, code));
CREATE TABLE t (id int PRIMARY KEY, parent_id int);
"""


def test_dropped_column_comes_back_with_everything(pg_dsn_factory) -> None:
    a, b = pg_dsn_factory(), pg_dsn_factory()
    pg_exec(a, FROM)
    pg_exec(b, TO)
    with connect(a) as db:
        before = db.introspect()
    with connect(b) as db:
        after = db.introspect()
    plan = build_plan(before, after)
    kinds = [s.kind for s in plan.steps]
    assert "drop_column" in kinds
    drop = next(s for s in plan.steps if s.kind == "drop_column")
    assert drop.safety == "dangerous"
    # Its values are archived by the drop and refilled by its undo (test_rollback_data).
    assert drop.rollback is not None and "refills" in (drop.rollback.note or "")
    back = rollback_plan(plan)
    text = "\n".join(sql for s in back.steps for sql in s.sql)
    for fragment in ('ADD COLUMN "code" character varying(12) COLLATE "C"',
                     "DEFAULT 'none'", "NOT NULL", "t_code_check", "t_code_key", "t_parent_fk",
                     "t_code_lower", "external code", "never empty"):
        assert fragment in text, fragment
    # And the whole thing round-trips on the real server (catalog equal after rollback).
    c = pg_dsn_factory()
    pg_exec(c, TO)
    roundtrip(a, c, rows_survive=True)


def test_rollback_of_added_objects_is_classified(pg_dsn_factory) -> None:
    a, b = pg_dsn_factory(), pg_dsn_factory()
    pg_exec(a, TO)
    pg_exec(b, TO + "ALTER TABLE t ADD COLUMN note text; CREATE TABLE extra (id int);")
    with connect(a) as db:
        before = db.introspect()
    with connect(b) as db:
        after = db.introspect()
    plan = build_plan(before, after)
    by_kind = {s.kind: s for s in plan.steps}
    # Undoing an added column or table discards whatever was written there.
    assert by_kind["add_column"].rollback.safety == "dangerous"
    assert by_kind["create_table"].rollback.safety == "dangerous"
    assert by_kind["add_column"].safety == "safe"
