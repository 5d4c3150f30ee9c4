"""SQLite's table rebuild on real database files: data, indexes, triggers, views and
foreign keys survive every change SQLite cannot ALTER, and the rollback returns.

Each case builds a database from a script with rows in it, loads the desired schema by
executing another script into an in-memory database, plans, applies the plan the way an
executor must (foreign keys off outside the transaction, the checks before COMMIT), and
then checks structure (hashes, empty re-plan), rows, foreign keys, the view and the
triggers; then it applies the rollback and checks the original hash.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import require_sqlite_modules

from lockplane.changes.base import Change, Safety
from lockplane.changes.rebuild_table import RebuildTable
from lockplane.dialects import connect, get_dialect
from lockplane.dialects.sqlite.introspect import introspect
from lockplane.diff import diff
from lockplane.model import Schema
from lockplane.plan import Plan, build_plan, order_changes, rollback_plan

D = get_dialect("sqlite")
W = '"Weird ""Name"""'  # the rebuilt table: quotes and a space in its name

PARENT = f"""
CREATE TABLE {W} (
  id INTEGER PRIMARY KEY,
  "select" TEXT NOT NULL,
  "first name" TEXT,
  amount INTEGER,
  code TEXT,
  owner_id INTEGER REFERENCES owner (id),
  note TEXT DEFAULT 'none',
  CONSTRAINT "uq code" UNIQUE (code),
  CONSTRAINT "amount ok" CHECK (amount >= 0)
);
CREATE INDEX "ix select" ON {W} ("select" DESC);
CREATE INDEX "ix first" ON {W} (lower("first name"));
CREATE INDEX "ix amount" ON {W} (amount) WHERE amount > 0;
"""

OTHERS = f"""
CREATE TABLE owner (id INTEGER PRIMARY KEY, name TEXT);
CREATE TABLE child (
  id INTEGER PRIMARY KEY,
  parent_id INTEGER REFERENCES {W} (id) ON DELETE CASCADE,
  label TEXT
);
CREATE TABLE audit (id INTEGER PRIMARY KEY, what TEXT);
CREATE VIEW "weird view" AS SELECT id, "select" AS s FROM {W};
CREATE VIEW "view of view" AS SELECT count(*) AS n FROM "weird view";
CREATE TRIGGER child_trg AFTER INSERT ON child
BEGIN UPDATE {W} SET note = 'has child ' || new.id WHERE id = new.parent_id; END;
"""

# The rebuilt table's own trigger: recreated by the rebuild.
PARENT_TRIGGER = f"""
CREATE TRIGGER "weird trg" AFTER INSERT ON {W}
BEGIN INSERT INTO audit (what) VALUES ('ins ' || new.id); END;
"""

ROWS = f"""
INSERT INTO owner VALUES (1, 'ann'), (2, 'bob');
INSERT INTO {W} (id, "select", "first name", amount, code, owner_id, note) VALUES
  (1, 'a', 'Ann', 10, 'c1', 1, 'n1'),
  (2, 'b', NULL, 0, 'c2', 2, NULL),
  (5, 'c', 'Cy', 7, NULL, NULL, 'n5'),
  (9, 'it''s', 'Dee "D"', 3, 'c9', 1, 'n9');
INSERT INTO child VALUES (1, 1, 'x'), (2, 5, 'y'), (3, NULL, 'z');
"""

BASE = PARENT + OTHERS + PARENT_TRIGGER


def edit(script: str, *pairs: tuple[str, str]) -> str:
    """Replace the first occurrence of each ``old`` (the parent table comes first)."""
    for old, new in pairs:
        assert old in script, old
        script = script.replace(old, new, 1)
    return script


# ------------------------------------------------------------------------- helpers
def build_db(path: Path, script: str) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.executescript(script)
    finally:
        conn.close()


def load(script: str) -> Schema:
    """The desired schema, the exact way: executed into an in-memory SQLite."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        conn.executescript(script)
        return introspect(conn)
    finally:
        conn.close()


def live(path: Path) -> Schema:
    with connect(f"sqlite:///{path}") as db:
        return db.introspect()


class CheckFailed(Exception):
    pass


def apply(path: Path, statements: list[str], checks: list[str], *,
          foreign_keys_off: bool = True) -> None:
    """What an executor does: FKs off outside the transaction, checks before COMMIT."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        if foreign_keys_off:
            conn.execute("PRAGMA foreign_keys = OFF")
        else:
            conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("BEGIN IMMEDIATE")
        try:
            for stmt in statements:
                conn.execute(stmt)
            for query in checks:
                rows = conn.execute(query).fetchall()
                if rows:
                    raise CheckFailed(f"{query}: {rows}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.close()


def checks_of(changes: list[Change]) -> list[str]:
    out: list[str] = []
    for c in changes:
        check = getattr(c, f"checks_{D.name}", None)
        if check is not None:
            out += check(D)
    return out


def rows(path: Path, table: str = W) -> list[dict[str, Any]]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY id")]
    finally:
        conn.close()


def query(path: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def forward(path: Path, before: Schema, after: Schema) -> tuple[Plan, list[Change]]:
    plan = build_plan(before, after)
    changes = order_changes(diff(before, after, D))
    statements = [s for step in plan.steps for s in step.sql]
    assert statements == [s for c in changes for s in c.sql(D)]
    assert any(isinstance(c, RebuildTable) for c in changes), plan.to_json()
    for c in changes:
        if isinstance(c, RebuildTable):
            assert c.requires_foreign_keys_off
    apply(path, statements, checks_of(changes))
    return plan, changes


def backward(path: Path, plan: Plan, changes: list[Change]) -> None:
    rb = rollback_plan(plan)
    statements = [s for step in rb.steps for s in step.sql]
    inverses = [inv for c in reversed(changes) for inv in c.inverse()]
    assert statements == [s for inv in inverses for s in inv.sql(D)]
    apply(path, statements, checks_of(inverses))


def behaviour(path: Path, parent_cols: dict[str, Any]) -> None:
    """FK actions, the view and both triggers work; changes are rolled back after."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("BEGIN")
        names = ", ".join(D.quote(k) for k in parent_cols)
        marks = ", ".join("?" for _ in parent_cols)
        conn.execute(f"INSERT INTO {W} ({names}) VALUES ({marks})", list(parent_cols.values()))
        new_id = parent_cols["id"]
        # the rebuilt table's own trigger
        assert conn.execute("SELECT what FROM audit ORDER BY id DESC LIMIT 1").fetchall() == [
            (f"ins {new_id}",)]
        # a trigger on another table that writes to the rebuilt one
        conn.execute("INSERT INTO child VALUES (100, ?, 'new')", (new_id,))
        assert conn.execute(f"SELECT note FROM {W} WHERE id = ?", (new_id,)).fetchone() == (
            "has child 100",)
        # the views read the rebuilt table
        assert (new_id, parent_cols["select"]) in conn.execute(
            'SELECT id, s FROM "weird view"').fetchall()
        n = conn.execute(f"SELECT count(*) FROM {W}").fetchone()[0]
        assert conn.execute('SELECT n FROM "view of view"').fetchone() == (n,)
        # the child's FK still enforces and cascades
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("INSERT INTO child VALUES (101, 12345, 'orphan')")
        conn.execute(f"DELETE FROM {W} WHERE id = 1")
        assert conn.execute("SELECT id FROM child WHERE parent_id = 1").fetchall() == []
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def assert_sound(path: Path) -> None:
    assert query(path, "PRAGMA foreign_key_check") == []
    assert query(path, "PRAGMA integrity_check") == [("ok",)]
    names = [r[0] for r in query(path, "SELECT name FROM sqlite_schema")]
    assert not [n for n in names if n.startswith("_lockplane_new_")]


Transform = Callable[[dict[str, Any]], dict[str, Any]]


def run_case(tmp_path: Path, after_script: str, *, expect: Transform | None = None,
             new_row: dict[str, Any] | None = None,
             before_script: str = BASE, rows_script: str = ROWS,
             ) -> tuple[Plan, list[Change]]:
    """Plan, apply, verify, roll back, verify. ``expect`` maps an old row to the new one
    (restricted to the surviving columns)."""
    path = tmp_path / "db.sqlite"
    build_db(path, before_script + rows_script)
    before = live(path)
    after = load(after_script)
    assert before.hash() != after.hash()
    old_rows = rows(path)
    old_children = query(path, "SELECT * FROM child ORDER BY id")
    old_audit = query(path, "SELECT * FROM audit ORDER BY id")

    plan, changes = forward(path, before, after)

    migrated = live(path)
    assert migrated.hash() == after.hash(), (migrated.to_json(), after.to_json())
    assert build_plan(migrated, after).empty
    assert_sound(path)
    new_rows = rows(path)
    assert len(new_rows) == len(old_rows)
    for old, new in zip(old_rows, new_rows, strict=True):
        want = expect(dict(old)) if expect else dict(old)
        got = {k: new[k] for k in want if k in new}
        assert got == {k: v for k, v in want.items() if k in new}, (old, new)
    assert query(path, "SELECT * FROM child ORDER BY id") == old_children
    assert query(path, "SELECT * FROM audit ORDER BY id") == old_audit  # no trigger fired
    row = new_row or {"id": 50, "select": "new", "amount": 1, "code": "c50", "owner_id": 2}
    behaviour(path, {k: v for k, v in row.items() if k in new_rows[0]})

    backward(path, plan, changes)
    assert live(path).hash() == before.hash()
    assert build_plan(live(path), before).empty
    assert_sound(path)
    assert [r["id"] for r in rows(path)] == [r["id"] for r in old_rows]
    assert query(path, "SELECT * FROM child ORDER BY id") == old_children
    return plan, changes


def rebuild_step(plan: Plan) -> Any:
    steps = [s for s in plan.steps if s.kind == "rebuild_table"]
    assert len(steps) == 1, plan.to_json()
    return steps[0]


# --------------------------------------------------------------------------- cases
def test_change_column_type(tmp_path: Path) -> None:
    after = edit(BASE, ("  amount INTEGER,", "  amount REAL,"))
    plan, _ = run_case(tmp_path, after)
    step = rebuild_step(plan)
    assert step.safety == Safety.LOSSY.value
    assert "type INTEGER -> REAL" in step.description
    assert step.lock is not None and step.lock.rewrites_table and step.lock.scans_table
    assert step.lock.mode == "DATABASE WRITE" and step.lock.blocks_writes
    assert not step.lock.blocks_reads
    assert step.transactional
    assert step.rollback is not None and "affinity" in (step.rollback.note or "")
    assert isinstance(query(tmp_path / "db.sqlite", f"SELECT amount FROM {W}")[0][0], int)


def test_not_null_with_default_fills_nulls(tmp_path: Path) -> None:
    after = edit(BASE, ('  "first name" TEXT,', '''  "first name" TEXT NOT NULL DEFAULT 'anon','''))

    def expect(r: dict[str, Any]) -> dict[str, Any]:
        return {**r, "first name": r["first name"] if r["first name"] is not None else "anon"}

    plan, _ = run_case(tmp_path, after, expect=expect,
                       new_row={"id": 50, "select": "new", "first name": "Nu", "code": "c50"})
    assert "COALESCE" in "\n".join(rebuild_step(plan).sql)
    assert rebuild_step(plan).safety == Safety.REVIEW.value


def test_not_null_without_default(tmp_path: Path) -> None:
    # amount has no NULLs: the rebuild succeeds.
    after = edit(BASE, ("  amount INTEGER,", "  amount INTEGER NOT NULL,"))
    plan, _ = run_case(tmp_path, after)
    assert any("becomes NOT NULL" in m for m in rebuild_step(plan).messages)


def test_not_null_without_default_fails_on_nulls_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    build_db(path, BASE + ROWS)
    before = live(path)
    after = load(edit(BASE, ('  "first name" TEXT,', '  "first name" TEXT NOT NULL,')))
    old_rows = rows(path)
    with pytest.raises(sqlite3.IntegrityError, match="NOT NULL"):
        forward(path, before, after)
    assert live(path).hash() == before.hash()
    assert rows(path) == old_rows
    assert_sound(path)


def test_drop_indexed_column(tmp_path: Path) -> None:
    after = edit(BASE, ('  "first name" TEXT,\n', ""),
                 (f'CREATE INDEX "ix first" ON {W} (lower("first name"));\n', ""))
    plan, _ = run_case(tmp_path, after)
    step = rebuild_step(plan)
    assert step.safety == Safety.DANGEROUS.value
    assert "drop column first name" in step.description
    # The dropped column's values are archived by the step and refilled by its undo
    # (tests/test_rollback_data.py); the rest survived.
    assert step.rollback is not None and "refilled" in (step.rollback.note or "")
    assert [r["first name"] for r in rows(tmp_path / "db.sqlite")] != [None] * 4


def test_drop_column_in_unique_constraint(tmp_path: Path) -> None:
    after = edit(BASE, ("  code TEXT,\n", ""), ('  CONSTRAINT "uq code" UNIQUE (code),\n', ""))
    plan, _ = run_case(tmp_path, after)
    assert rebuild_step(plan).safety == Safety.DANGEROUS.value


def test_drop_column_in_foreign_key(tmp_path: Path) -> None:
    after = edit(BASE, ("  owner_id INTEGER REFERENCES owner (id),\n", ""))
    plan, _ = run_case(tmp_path, after)
    assert "drop column owner_id" in rebuild_step(plan).description


def test_add_and_drop_check(tmp_path: Path) -> None:
    after = edit(BASE, ('  CONSTRAINT "amount ok" CHECK (amount >= 0)',
                        '''  CONSTRAINT "select set" CHECK (length("select") > 0)'''))
    plan, _ = run_case(tmp_path, after)
    step = rebuild_step(plan)
    assert "add check select set" in step.description
    assert "drop check amount ok" in step.description


def test_added_check_that_rows_violate_fails(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    build_db(path, BASE + ROWS)
    before = live(path)
    after = load(edit(BASE, ('CHECK (amount >= 0)', 'CHECK (amount > 5)')))
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        forward(path, before, after)
    assert live(path).hash() == before.hash()


def test_add_and_drop_unique(tmp_path: Path) -> None:
    after = edit(BASE, ('  CONSTRAINT "uq code" UNIQUE (code),',
                        '  UNIQUE ("select", note),'))
    plan, _ = run_case(tmp_path, after)
    step = rebuild_step(plan)
    assert "drop unique uq code" in step.description
    assert "add unique" in step.description


def test_change_primary_key(tmp_path: Path) -> None:
    # id stays unique, so the child's FK still has a parent key to point at.
    after = edit(BASE, ("  id INTEGER PRIMARY KEY,", "  id INTEGER NOT NULL UNIQUE,"),
                 ("  note TEXT DEFAULT 'none',",
                  "  note TEXT DEFAULT 'none',\n  PRIMARY KEY (\"select\", id),"))
    plan, _ = run_case(tmp_path, after)
    assert "primary key (id) -> (select, id)" in rebuild_step(plan).description


def test_primary_key_change_that_breaks_child_fk_fails(tmp_path: Path) -> None:
    # id no longer unique: the child's FK has no parent key ("foreign key mismatch").
    path = tmp_path / "db.sqlite"
    build_db(path, BASE + ROWS)
    before = live(path)
    after = load(edit(BASE, ("  id INTEGER PRIMARY KEY,", "  id INTEGER NOT NULL,"),
                      ("  note TEXT DEFAULT 'none',",
                       "  note TEXT DEFAULT 'none',\n  PRIMARY KEY (\"select\", id),")))
    with pytest.raises(sqlite3.DatabaseError, match="foreign key mismatch"):
        forward(path, before, after)
    assert live(path).hash() == before.hash()


def test_add_foreign_key_to_existing_column(tmp_path: Path) -> None:
    before = edit(BASE, ("  owner_id INTEGER REFERENCES owner (id),", "  owner_id INTEGER,"))
    plan, changes = run_case(tmp_path, BASE, before_script=before)
    assert "add foreign key (owner_id) -> owner" in rebuild_step(plan).description
    rebuild = next(c for c in changes if isinstance(c, RebuildTable))
    assert rebuild.referencing_tables == ["child"]
    assert rebuild.checks_sqlite(D) == [f"PRAGMA foreign_key_check({W})",
                                        'PRAGMA foreign_key_check("child")']


def test_added_foreign_key_with_dangling_rows_fails_its_check(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    before_script = edit(BASE, ("  owner_id INTEGER REFERENCES owner (id),", "  owner_id INTEGER,"))
    build_db(path, before_script + ROWS + f"UPDATE {W} SET owner_id = 77 WHERE id = 5;")
    before = live(path)
    with pytest.raises(CheckFailed, match="foreign_key_check"):
        forward(path, before, load(BASE))
    assert live(path).hash() == before.hash()


def test_change_default_and_add_generated_column(tmp_path: Path) -> None:
    after = edit(BASE, ("  note TEXT DEFAULT 'none',",
                        "  note TEXT DEFAULT (upper('x')),\n"
                        "  doubled INTEGER GENERATED ALWAYS AS (amount * 2) STORED,"))
    plan, _ = run_case(tmp_path, after)
    step = rebuild_step(plan)
    assert "add column doubled" in step.description
    assert "doubled" not in step.sql[4].split("SELECT")[0]  # never inserted into
    assert query(tmp_path / "db.sqlite", f"SELECT count(*) FROM {W}") == [(4,)]


def test_rebuild_the_child_keeps_its_rows_and_references(tmp_path: Path) -> None:
    after = edit(BASE, ("ON DELETE CASCADE", "ON DELETE CASCADE ON UPDATE CASCADE"),
                 ("  label TEXT\n", "  label TEXT NOT NULL DEFAULT ''\n"))
    path = tmp_path / "db.sqlite"
    build_db(path, BASE + ROWS)
    before = live(path)
    children = query(path, "SELECT * FROM child ORDER BY id")
    plan, changes = forward(path, before, load(after))
    assert [s.table for s in plan.steps] == ["main.child"]
    assert live(path).hash() == load(after).hash()
    assert query(path, "SELECT * FROM child ORDER BY id") == children
    assert_sound(path)
    behaviour(path, {"id": 50, "select": "new", "amount": 1})
    backward(path, plan, changes)
    assert live(path).hash() == before.hash()


def test_parent_and_child_rebuilt_in_one_plan(tmp_path: Path) -> None:
    after = edit(BASE, ("  amount INTEGER,", "  amount NUMERIC,"),
                 ("  label TEXT\n", "  label TEXT COLLATE NOCASE\n"))
    plan, _ = run_case(tmp_path, after)
    assert sorted(s.table or "" for s in plan.steps) == ['main.Weird "Name"', "main.child"]


def test_hostile_column_names_in_every_clause(tmp_path: Path) -> None:
    before = BASE.replace('"first name"', '"first ""quoted"" name"')
    data = ROWS.replace('"first name"', '"first ""quoted"" name"')
    after = edit(before, ('  "first ""quoted"" name" TEXT,',
                          '  "first ""quoted"" name" TEXT NOT NULL DEFAULT \'it\'\'s\','))

    def expect(r: dict[str, Any]) -> dict[str, Any]:
        col = 'first "quoted" name'
        return {**r, col: r[col] if r[col] is not None else "it's"}

    run_case(tmp_path, after, before_script=before, rows_script=data, expect=expect)


def test_nothing_to_rebuild(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    build_db(path, BASE + ROWS)
    assert build_plan(live(path), load(BASE)).empty
    # Column order is not state: reordering columns plans nothing (no rebuild, no rename).
    reordered = edit(BASE, ('  "first name" TEXT,\n', ""),
                     ("  note TEXT DEFAULT 'none',", "  note TEXT DEFAULT 'none',\n"
                      '  "first name" TEXT,'))
    assert build_plan(live(path), load(reordered)).empty


# ------------------------------------------------------------------- the procedure
def test_refuses_to_run_with_foreign_keys_on(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    build_db(path, BASE + ROWS)
    before = live(path)
    after = load(edit(BASE, ("  amount INTEGER,", "  amount REAL,")))
    changes = order_changes(diff(before, after, D))
    statements = [s for c in changes for s in c.sql(D)]
    # With foreign keys on, DROP TABLE would delete the children through ON DELETE CASCADE.
    with pytest.raises(sqlite3.IntegrityError, match="foreign_keys=OFF"):
        apply(path, statements, checks_of(changes), foreign_keys_off=False)
    assert query(path, "SELECT count(*) FROM child") == [(3,)]
    assert live(path).hash() == before.hash()


def test_legacy_alter_table_is_what_keeps_views_and_triggers_valid(tmp_path: Path) -> None:
    # Without it, the rename re-checks the schema, and the views and the other table's
    # trigger that name the (just dropped) table fail that check.
    path = tmp_path / "db.sqlite"
    build_db(path, BASE + ROWS)
    before = live(path)
    after = load(edit(BASE, ("  amount INTEGER,", "  amount REAL,")))
    changes = order_changes(diff(before, after, D))
    statements = [s for c in changes for s in c.sql(D) if "legacy_alter_table" not in s]
    with pytest.raises(sqlite3.OperationalError, match="error in (view|trigger)"):
        apply(path, statements, [])
    assert live(path).hash() == before.hash()
    # The connection-wide pragma is switched back off inside the step.
    rebuild = next(c for c in changes if isinstance(c, RebuildTable))
    sql = rebuild.sql(D)
    on = sql.index("PRAGMA legacy_alter_table = ON")
    assert sql[on + 1].startswith("ALTER TABLE")
    assert sql[on + 2] == "PRAGMA legacy_alter_table = OFF"


def test_rebuild_is_sqlite_only() -> None:
    from lockplane.errors import BadInput

    t = load(BASE).tables[0]
    with pytest.raises(BadInput, match="not supported on postgres"):
        RebuildTable(t, t).sql(get_dialect("postgres"))


def test_rowids_of_a_table_without_primary_key_survive(tmp_path: Path) -> None:
    # Without a primary key the rowid is the rows' only identity; a plain copy would
    # renumber them (5, 9 -> 1, 2). A column named "rowid" shadows it: another alias.
    path = tmp_path / "db.sqlite"
    script = 'CREATE TABLE "log entries" ("rowid" TEXT, msg TEXT);\n'
    build_db(path, script + """
        INSERT INTO "log entries" (_rowid_, "rowid", msg) VALUES
          (2, 'r2', 'a'), (5, 'r5', 'b'), (9, 'r9', NULL);
    """)
    before = live(path)
    after = load(script.replace("msg TEXT", "msg TEXT NOT NULL DEFAULT ''"))
    plan, changes = forward(path, before, after)
    assert "_rowid_, " in "\n".join(plan.steps[0].sql)
    got = query(path, 'SELECT _rowid_, "rowid", msg FROM "log entries" ORDER BY 1')
    assert got == [(2, "r2", "a"), (5, "r5", "b"), (9, "r9", "")]
    assert live(path).hash() == after.hash()
    backward(path, plan, changes)
    assert query(path, 'SELECT _rowid_ FROM "log entries" ORDER BY 1') == [(2,), (5,), (9,)]
    assert live(path).hash() == before.hash()


# ------------------------------------------------------------ table options survive
AUTO = '"it\'s ""auto"""'  # a quote of each kind: the name is also a string literal
AUTO_SCRIPT = f"CREATE TABLE {AUTO} (id INTEGER PRIMARY KEY AUTOINCREMENT, label TEXT NOT NULL);\n"


def sequence(path: Path) -> list[tuple[Any, ...]]:
    return query(path, "SELECT name, seq FROM sqlite_sequence ORDER BY name")


def insert_label(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        with conn:
            cur = conn.execute(f"INSERT INTO {AUTO} (label) VALUES ('new')")
        assert cur.lastrowid is not None
        return cur.lastrowid
    finally:
        conn.close()


@pytest.mark.parametrize("emptied", [False, True], ids=["rows", "emptied"])
def test_autoincrement_counter_survives_the_rebuild(tmp_path: Path, emptied: bool) -> None:
    # AUTOINCREMENT promises an id is never handed out twice. The copy alone leaves the
    # new table's counter at its highest remaining id (or none at all when the table is
    # empty): the id of a deleted row at the top would come back.
    path = tmp_path / "db.sqlite"
    gone = "id >= 1" if emptied else "id = 3"
    build_db(path, AUTO_SCRIPT + f"""
        INSERT INTO {AUTO} (label) VALUES ('a'), ('b'), ('c');
        DELETE FROM {AUTO} WHERE {gone};""")
    assert sequence(path) == [('it\'s "auto"', 3)]
    before = live(path)
    after = load(AUTO_SCRIPT.replace("label TEXT NOT NULL", "label TEXT"))
    plan, changes = forward(path, before, after)
    assert rebuild_step(plan).description.endswith("alter column label (NULL allowed)")
    assert live(path).hash() == after.hash()
    assert after.tables[0].primary_key.autoincrement  # type: ignore[union-attr]
    assert sequence(path) == [('it\'s "auto"', 3)]  # one row, under the final name
    assert insert_label(path) == 4

    backward(path, plan, changes)  # the rebuild back keeps it too
    assert live(path).hash() == before.hash()
    assert sequence(path) == [('it\'s "auto"', 4)]
    assert insert_label(path) == 5


def test_table_options_changes_are_rebuilds_that_say_so() -> None:
    base = "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, g INT AS (n * 2));"
    # desired script: (end of the description, warning, text only the new CREATE has)
    cases = {
        base.replace("PRIMARY KEY", "PRIMARY KEY AUTOINCREMENT"):
            ("add AUTOINCREMENT", None, "PRIMARY KEY AUTOINCREMENT"),
        base.replace(");", ") STRICT;"): ("add STRICT", "becomes STRICT", ") STRICT"),
        base.replace(");", ") WITHOUT ROWID;"):
            ("add WITHOUT ROWID", "becomes WITHOUT ROWID", ") WITHOUT ROWID"),
        base.replace("(n * 2)", "(n * 2) STORED"):
            ("alter column g (STORED)", None, "(n * 2) STORED"),
    }
    for script, (what, warning, created) in cases.items():
        plan = build_plan(load(base), load(script))
        step = rebuild_step(plan)
        assert step.description.endswith(what), step.description
        assert "primary key" not in step.description  # AUTOINCREMENT is not a new key
        assert step.safety == Safety.REVIEW.value
        assert warning is None or warning in " ".join(step.messages), step.messages
        assert created in step.sql[3]
        # The rollback is a rebuild back to the old definition, options included.
        back = rollback_plan(plan)
        assert len(back.steps) == 1 and created not in back.steps[0].sql[3]
        if "STORED" in created:
            assert "(n * 2) VIRTUAL" in back.steps[0].sql[3]


def test_virtual_generated_column_is_added_without_a_rebuild(tmp_path: Path) -> None:
    # ADD COLUMN takes a VIRTUAL generated column (not a STORED one): no copy of the table.
    path = tmp_path / "db.sqlite"
    script = "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER) STRICT;\n"
    build_db(path, script + "INSERT INTO t VALUES (1, 2), (2, NULL);")
    after = load(script.replace("n INTEGER)", "n INTEGER, g INTEGER AS (n * 2) VIRTUAL)"))
    plan = build_plan(live(path), after)
    assert [s.kind for s in plan.steps] == ["add_column"]
    assert plan.steps[0].sql == [
        'ALTER TABLE "t" ADD COLUMN "g" INTEGER GENERATED ALWAYS AS (n * 2) VIRTUAL']
    apply(path, plan.steps[0].sql, [])
    assert live(path).hash() == after.hash()
    assert query(path, "SELECT id, g FROM t ORDER BY id") == [(1, 4), (2, None)]
    stored = load(script.replace("n INTEGER)", "n INTEGER, g INTEGER AS (n * 2) STORED)"))
    assert [s.kind for s in build_plan(live(path), stored).steps] == ["rebuild_table"]


# ------------------------------------------- table options a schema file leaves out
# A schema file written before Lockplane modelled these (introspect --format sql or
# JSON) does not state them: planning from it drops them, and each drop says what it
# changes for the application.
OPTIONS = """
CREATE TABLE auto (id INTEGER PRIMARY KEY AUTOINCREMENT, label TEXT);
CREATE TABLE norowid (k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID;
CREATE TABLE typed (id INTEGER PRIMARY KEY, n INTEGER, anything ANY) STRICT;
CREATE TABLE gen (id INTEGER PRIMARY KEY, n INTEGER, v INT AS (n * 2) VIRTUAL,
                  s INT AS (n * 3) STORED);
"""
OPTION_DROPS = {
    # desired script -> (table, rules beyond the rebuild, safety, words of the messages)
    "auto": (OPTIONS.replace(" AUTOINCREMENT", ""), {"sqlite-drop-autoincrement"},
             Safety.DANGEROUS, ["loses AUTOINCREMENT", "handed out again"]),
    "norowid": (OPTIONS.replace(" WITHOUT ROWID", ""), {"sqlite-drop-without-rowid"},
                Safety.REVIEW, ["stops being WITHOUT ROWID", "hidden rowid"]),
    "typed": (OPTIONS.replace(" STRICT", ""), {"sqlite-drop-strict"}, Safety.REVIEW,
              ["stops being STRICT", "no longer refuses", "anything (type ANY) then has "
               "NUMERIC affinity"]),
    "gen": (OPTIONS.replace("(n * 2) VIRTUAL", "(n * 2) STORED")
            .replace("(n * 3) STORED", "(n * 3) VIRTUAL"), {"sqlite-generated-kind-change"},
            Safety.REVIEW, ["column v of main.gen becomes STORED", "table grows",
                            "column s of main.gen becomes VIRTUAL", "computed on every read"]),
}


@pytest.mark.parametrize("table", list(OPTION_DROPS))
def test_dropping_a_table_option_is_a_finding_of_its_own(table: str) -> None:
    script, extra, safety, words = OPTION_DROPS[table]
    plan = build_plan(load(OPTIONS), load(script))
    step = rebuild_step(plan)
    assert step.table == f"main.{table}"
    rules = [f.rule for f in step.findings]
    assert set(rules) == {"sqlite-table-rebuild"} | extra, rules
    assert step.safety == safety.value
    assert rules[0] == (next(iter(extra)) if safety is Safety.DANGEROUS
                        else "sqlite-table-rebuild")  # the worst first: refusals name it
    text = " ".join(f.message for f in step.findings)
    assert all(w in text for w in words), (words, text)
    assert all(w in " ".join(step.messages) for w in words)
    # The other way adds the option again: only the rebuild's own finding (generated
    # columns switch kinds both ways).
    back = rebuild_step(build_plan(load(script), load(OPTIONS)))
    assert {f.rule for f in back.findings} == (set(rules) if table == "gen"
                                               else {"sqlite-table-rebuild"})


def test_an_integer_key_leaving_without_rowid_becomes_the_rowid() -> None:
    script = "CREATE TABLE w (k INTEGER PRIMARY KEY, v TEXT) WITHOUT ROWID;"
    step = rebuild_step(build_plan(load(script), load(script.replace(" WITHOUT ROWID", ""))))
    found = {f.rule: f.message for f in step.findings}
    assert "becomes the rowid: the rebuild fails if a key is not an integer" in found[
        "sqlite-drop-without-rowid"]


def _strip(data: object, keys: set[str]) -> object:
    if isinstance(data, dict):
        return {k: _strip(v, keys) for k, v in data.items() if k not in keys}
    if isinstance(data, list):
        return [_strip(v, keys) for v in data]
    return data


def test_a_schema_file_from_before_the_options_drops_each_one_loudly(tmp_path: Path) -> None:
    # JSON as the previous Lockplane wrote it: none of the four fields. Every option
    # drop is found, and the AUTOINCREMENT one makes the plan dangerous.
    import json

    path = tmp_path / "db.sqlite"
    build_db(path, OPTIONS)
    before = live(path)
    old_json = _strip(json.loads(before.to_json()),
                      {"autoincrement", "without_rowid", "strict", "generated_kind"})
    desired = Schema.model_validate(old_json)
    plan = build_plan(before, desired)
    found = {s.table: {f.rule for f in s.findings} - {"sqlite-table-rebuild"}
             for s in plan.steps}
    assert found == {"main.auto": {"sqlite-drop-autoincrement"},
                     "main.norowid": {"sqlite-drop-without-rowid"},
                     "main.typed": {"sqlite-drop-strict"},
                     "main.gen": {"sqlite-generated-kind-change"}}
    # Unstated generated_kind reads as STORED (one reading per file: the hash of a
    # schema file never depends on the database it is compared with), so only v moves.
    gen = [s for s in plan.steps if s.table == "main.gen"][0]
    assert "alter column v (STORED)" in gen.description and " s " not in gen.description


def test_dropping_autoincrement_reuses_ids_as_the_finding_says(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    build_db(path, AUTO_SCRIPT + f"""
        INSERT INTO {AUTO} (label) VALUES ('a'), ('b'), ('c');
        DELETE FROM {AUTO} WHERE id = 3;""")
    plan, _ = forward(path, live(path), load(AUTO_SCRIPT.replace(" AUTOINCREMENT", "")))
    assert rebuild_step(plan).findings[0].rule == "sqlite-drop-autoincrement"
    assert sequence(path) == []
    assert insert_label(path) == 3  # the id of the deleted row, handed out again


# ---------------------------------------------------------- rowids survive the copy
def _delete_first(table: str) -> str:
    return f"DELETE FROM {table} WHERE rowid = 1;\n"


ROWID_CASES = {
    # (script, rows, desired script)
    "text key": (
        "CREATE TABLE doc (slug TEXT PRIMARY KEY, body TEXT);\n",
        "INSERT INTO doc VALUES ('a', 'x'), ('b', 'y'), ('c', NULL);\n",
        "CREATE TABLE doc (slug TEXT PRIMARY KEY, body TEXT NOT NULL DEFAULT '');\n"),
    "composite key": (
        "CREATE TABLE doc (a TEXT, b INTEGER, body TEXT, PRIMARY KEY (a, b));\n",
        "INSERT INTO doc VALUES ('a', 1, 'x'), ('b', 2, 'y'), ('c', 3, NULL);\n",
        "CREATE TABLE doc (a TEXT, b INTEGER, body TEXT NOT NULL DEFAULT '', "
        "PRIMARY KEY (a, b));\n"),
    # INT is not INTEGER: not a rowid alias
    "INT key": (
        "CREATE TABLE doc (id INT PRIMARY KEY, body TEXT);\n",
        "INSERT INTO doc VALUES (10, 'x'), (20, 'y'), (30, NULL);\n",
        "CREATE TABLE doc (id INT PRIMARY KEY, body TEXT NOT NULL DEFAULT '');\n"),
    # a new INTEGER PRIMARY KEY column takes the rowids it becomes
    "new rowid alias": (
        "CREATE TABLE doc (slug TEXT PRIMARY KEY, body TEXT);\n",
        "INSERT INTO doc VALUES ('a', 'x'), ('b', 'y'), ('c', NULL);\n",
        "CREATE TABLE doc (id INTEGER PRIMARY KEY, slug TEXT NOT NULL UNIQUE, body TEXT);\n"),
    # the old key was the rowid, the new one is not
    "rowid alias dropped": (
        "CREATE TABLE doc (id INTEGER PRIMARY KEY, slug TEXT NOT NULL, body TEXT);\n",
        "INSERT INTO doc VALUES (1, 'a', 'x'), (2, 'b', 'y'), (3, 'c', NULL);\n",
        "CREATE TABLE doc (id INTEGER, slug TEXT PRIMARY KEY, body TEXT);\n"),
}


@pytest.mark.parametrize("case", list(ROWID_CASES))
def test_rowids_survive_when_the_key_is_not_the_rowid(tmp_path: Path, case: str) -> None:
    script, data, desired = ROWID_CASES[case]
    path = tmp_path / "db.sqlite"
    build_db(path, script + data + _delete_first("doc"))
    old = query(path, "SELECT rowid, body FROM doc ORDER BY rowid")
    assert [r[0] for r in old] == [2, 3]
    before = live(path)
    after = load(desired)
    plan, changes = forward(path, before, after)
    assert live(path).hash() == after.hash()
    got = query(path, "SELECT rowid, body FROM doc ORDER BY rowid")
    assert [r[0] for r in got] == [2, 3] and [r[1] for r in got][0] == "y"
    if "id INTEGER PRIMARY KEY" in desired:
        assert query(path, "SELECT id, slug FROM doc ORDER BY id") == [(2, "b"), (3, "c")]
    backward(path, plan, changes)
    assert live(path).hash() == before.hash()
    assert query(path, "SELECT rowid FROM doc ORDER BY rowid") == [(2,), (3,)]
    assert_sound(path)


def test_without_rowid_on_either_side_copies_no_rowid(tmp_path: Path) -> None:
    script = "CREATE TABLE doc (slug TEXT PRIMARY KEY, body TEXT);\n"
    path = tmp_path / "db.sqlite"
    build_db(path, script + "INSERT INTO doc VALUES ('a', 'x'), ('b', NULL);\n")
    before = live(path)
    after = load(script.replace(");", ") WITHOUT ROWID;"))
    plan, changes = forward(path, before, after)
    copy = next(s for s in plan.steps[0].sql if s.startswith("INSERT INTO \"_lockplane_new"))
    assert "rowid" not in copy
    assert query(path, "SELECT slug, body FROM doc ORDER BY slug") == [("a", "x"), ("b", None)]
    backward(path, plan, changes)  # and back: the old table had no rowid to keep
    assert live(path).hash() == before.hash()
    assert query(path, "SELECT rowid, slug FROM doc ORDER BY rowid") == [(1, "a"), (2, "b")]


def test_fts5_external_content_index_survives_the_rebuild(tmp_path: Path) -> None:
    # An external-content FTS5 index stores the content table's rowids: renumbered rows
    # would make MATCH read other rows, or fail ("database disk image is malformed").
    require_sqlite_modules("fts5")
    script = "CREATE TABLE doc (slug TEXT PRIMARY KEY, body TEXT);\n"
    fts = ("CREATE VIRTUAL TABLE doc_fts USING fts5(body, content='doc', "
           "content_rowid='rowid');\n")
    path = tmp_path / "db.sqlite"
    build_db(path, script + fts + """
        INSERT INTO doc VALUES ('a', 'alpha one'), ('b', 'bravo two'), ('c', 'charlie three');
        DELETE FROM doc WHERE slug = 'a';
        INSERT INTO doc_fts (doc_fts) VALUES ('rebuild');""")
    before = live(path)
    assert before.unmanaged == ["virtual table doc_fts (fts5)"]
    after = load(script.replace("body TEXT", "body TEXT NOT NULL DEFAULT ''") + fts)
    plan, changes = forward(path, before, after)
    assert [s.kind for s in plan.steps] == ["rebuild_table"]  # the index is left alone
    match = ("SELECT doc.slug, doc_fts.body FROM doc_fts JOIN doc ON doc.rowid = "
             "doc_fts.rowid WHERE doc_fts MATCH ? ORDER BY doc.slug")

    def searches() -> None:
        conn = sqlite3.connect(path)
        try:
            assert conn.execute(match, ("bravo",)).fetchall() == [("b", "bravo two")]
            assert conn.execute(match, ("three",)).fetchall() == [("c", "charlie three")]
            # rank = 1: the index is also checked against the content table
            conn.execute("INSERT INTO doc_fts (doc_fts, rank) VALUES ('integrity-check', 1)")
        finally:
            conn.close()

    searches()
    backward(path, plan, changes)  # the rebuild back keeps them too
    assert live(path).hash() == before.hash()
    searches()
