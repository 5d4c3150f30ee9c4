"""SQLite introspection against real database files: every fact the model can hold."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from conftest import require_sqlite_modules

from lockplane.dialects import connect
from lockplane.dialects.sqlite import sqltext
from lockplane.dialects.sqlite.introspect import introspect
from lockplane.dsn import sqlite_path
from lockplane.model import Schema, Table


def load(path: str | Path, script: str) -> Schema:
    """Create a database file from ``script`` and introspect it on a fresh connection."""
    setup = sqlite3.connect(path)
    setup.executescript(script)
    setup.close()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        return introspect(conn)
    finally:
        conn.close()


@pytest.fixture
def db(sqlite_dsn: str) -> str:
    return sqlite_path(sqlite_dsn)


def table(schema: Schema, name: str) -> Table:
    found = schema.table("main", name)
    assert found is not None, f"{name!r} not in {[t.name for t in schema.tables]}"
    return found


HOSTILE = '''
CREATE TABLE "Weird ""Name""" (
    "id ""x""" INTEGER PRIMARY KEY,
    "select" TEXT NOT NULL DEFAULT 'a, (b)' CHECK ("select" <> ')'),  -- a comment, with (
    "semi;colon" INT /* block, ( comment */ DEFAULT (1 + 2)
);
CREATE TABLE "select" ("from" INT, [to] TEXT, `group` REAL,
    CONSTRAINT "uq ""from""" UNIQUE ("from", [to]));
CREATE TABLE "semi;colon" ("a b" TEXT COLLATE NOCASE, "Mixed Case" INT);
CREATE TABLE MixedCase (Id INT PRIMARY KEY, ParentId INT REFERENCES mixedcase (id));
CREATE TABLE [bracketed] ([col one] INT, `back``tick` INT, "weird" INT
    REFERENCES "Weird ""Name""" ("id ""x""") ON DELETE CASCADE);
CREATE INDEX "ix;""odd""" ON "select" ("from" DESC, `group`);
CREATE INDEX [ix bracket] ON [bracketed] (`back``tick`) WHERE [col one] > 0;
CREATE VIEW "my view" AS SELECT "select", "semi;colon" FROM "Weird ""Name""";
CREATE TRIGGER "trg;x" AFTER INSERT ON "select" BEGIN SELECT 1; END;
'''


def test_hostile_identifiers(db: str) -> None:
    schema = load(db, HOSTILE)
    names = {t.name for t in schema.tables}
    assert names == {'Weird "Name"', "select", "semi;colon", "MixedCase", "bracketed"}

    weird = table(schema, 'Weird "Name"')
    assert [c.name for c in weird.columns] == ['id "x"', "select", "semi;colon"]
    assert weird.primary_key is not None and weird.primary_key.columns == ['id "x"']
    sel = weird.column("select")
    assert sel is not None and sel.nullable is False and sel.default == "'a, (b)'"
    assert [c.expression for c in weird.check_constraints] == ['"select" <> \')\'']
    semi = weird.column("semi;colon")
    assert semi is not None and semi.type == "INT" and semi.default == "1 + 2"

    select = table(schema, "select")
    assert [(u.name, u.columns) for u in select.unique_constraints] == [
        ('uq "from"', ["from", "to"])]
    (ix,) = select.indexes
    assert ix.name == 'ix;"odd"'
    assert [(k.column, k.descending) for k in ix.keys] == [("from", True), ("group", False)]
    assert [t.name for t in select.triggers] == ["trg;x"]

    assert table(schema, "semi;colon").column("a b").collation == "NOCASE"  # type: ignore[union-attr]

    mixed = table(schema, "MixedCase")
    (fk,) = mixed.foreign_keys
    # Written "mixedcase (id)": resolved to the names the parent table declares.
    assert (fk.referenced_table, fk.referenced_columns) == ("MixedCase", ["Id"])

    br = table(schema, "bracketed")
    assert [c.name for c in br.columns] == ["col one", "back`tick", "weird"]
    (fk,) = br.foreign_keys
    assert fk.referenced_table == 'Weird "Name"' and fk.referenced_columns == ['id "x"']
    assert fk.on_delete == "CASCADE"
    (ix,) = br.indexes
    assert ix.name == "ix bracket" and ix.columns == ["back`tick"] and ix.where == "[col one] > 0"

    (view,) = schema.views
    assert view.name == "my view" and view.schema_ == "main"
    assert view.definition == 'SELECT "select", "semi;colon" FROM "Weird ""Name"""'


def test_primary_keys(db: str) -> None:
    schema = load(db, """
        CREATE TABLE composite (a INT, b TEXT, c INT, CONSTRAINT pk_comp PRIMARY KEY (b, a));
        CREATE TABLE colnamed (id INTEGER CONSTRAINT pk_col PRIMARY KEY AUTOINCREMENT, x);
        CREATE TABLE unnamed (id TEXT PRIMARY KEY, y);
        CREATE TABLE norowid (k TEXT, v INT, PRIMARY KEY (k, v)) WITHOUT ROWID;
        CREATE TABLE nopk (x INT);
    """)
    comp = table(schema, "composite")
    assert comp.primary_key is not None
    assert (comp.primary_key.name, comp.primary_key.columns) == ("pk_comp", ["b", "a"])
    assert [c.nullable for c in comp.columns] == [False, False, True]
    assert comp.indexes == [] and comp.unique_constraints == []  # the PK index is not an index
    assert table(schema, "colnamed").primary_key.name == "pk_col"  # type: ignore[union-attr]
    assert table(schema, "unnamed").primary_key.name is None  # type: ignore[union-attr]
    norowid = table(schema, "norowid")
    assert norowid.primary_key.columns == ["k", "v"] and norowid.indexes == []  # type: ignore[union-attr]
    assert table(schema, "nopk").primary_key is None


def test_unique_constraints(db: str) -> None:
    schema = load(db, """
        CREATE TABLE u (
            a INT UNIQUE,
            b INT CONSTRAINT uq_b UNIQUE,
            c INT, d INT, e INT,
            CONSTRAINT uq_cd UNIQUE (c, D),
            UNIQUE (d, e) CONSTRAINT ck_e CHECK (e > 0)
        );
    """)
    u = table(schema, "u")
    assert sorted((x.columns, x.name or "") for x in u.unique_constraints) == [
        (["a"], ""), (["b"], "uq_b"), (["c", "d"], "uq_cd"), (["d", "e"], "")]
    assert u.indexes == []  # sqlite_autoindex_* belong to the constraints
    assert [(c.name, c.expression) for c in u.check_constraints] == [("ck_e", "e > 0")]


def test_twin_unique_constraints_keep_the_right_names(db: str) -> None:
    # SQLite drops the second UNIQUE (a) (same index); the NOCASE one is a separate index.
    schema = load(db, """
        CREATE TABLE t (a TEXT, b TEXT COLLATE NOCASE UNIQUE,
            CONSTRAINT u1 UNIQUE (a), CONSTRAINT u2 UNIQUE ("A"),
            CONSTRAINT u3 UNIQUE (a COLLATE NOCASE), CONSTRAINT u4 UNIQUE (b COLLATE NOCASE));
    """)
    assert sorted((u.name or "", u.columns) for u in table(schema, "t").unique_constraints) == [
        ("", ["b"]), ("u1", ["a"]), ("u3", ["a"])]


def test_check_constraints(db: str) -> None:
    schema = load(db, """
        CREATE TABLE c (
            a INT CHECK (a > 0) CONSTRAINT a_small CHECK ( a <  100 ),
            b TEXT CHECK (b IN ('x)', 'y,z', "a")),
            CONSTRAINT "both ok" CHECK ((a > 0 AND length(b) > 1)
                                        OR b IS NULL),
            CHECK (a /* not ) here */ <> 7) -- trailing, comment (
        );
    """)
    checks = [(x.name, x.expression) for x in table(schema, "c").check_constraints]
    assert checks == [
        (None, "a > 0"),
        ("a_small", "a <  100"),
        (None, "b IN ('x)', 'y,z', \"a\")"),
        ("both ok", "(a > 0 AND length(b) > 1)\n" + " " * 40 + "OR b IS NULL"),
        (None, "a /* not ) here */ <> 7"),
    ]


def test_foreign_keys(db: str) -> None:
    schema = load(db, """
        CREATE TABLE parent (a INT, b INT, id INTEGER, PRIMARY KEY (a, b), UNIQUE (id));
        CREATE TABLE child (
            id INTEGER PRIMARY KEY,
            p1 INT CONSTRAINT fk_col REFERENCES parent (id) ON DELETE SET NULL,
            p2 INT REFERENCES Parent(ID) ON UPDATE CASCADE ON DELETE RESTRICT
                DEFERRABLE INITIALLY DEFERRED,
            pa INT, pb INT,
            self INT REFERENCES child,
            ghost INT REFERENCES nowhere (x) ON DELETE SET DEFAULT
                NOT DEFERRABLE INITIALLY DEFERRED,
            CONSTRAINT fk_composite FOREIGN KEY (pa, pb) REFERENCES parent
                ON DELETE CASCADE DEFERRABLE,
            FOREIGN KEY (pa) REFERENCES parent (id) MATCH FULL
                DEFERRABLE INITIALLY IMMEDIATE,
            CONSTRAINT fk_dup FOREIGN KEY (pa) REFERENCES parent (id)
        );
    """)
    fks = {(tuple(f.columns), f.name or ""): f for f in table(schema, "child").foreign_keys}
    assert len(fks) == 7

    f = fks[("p1",), "fk_col"]
    assert (f.referenced_schema, f.referenced_table, f.referenced_columns) == (
        "main", "parent", ["id"])
    assert (f.on_delete, f.on_update, f.match, f.deferrable) == (
        "SET NULL", "NO ACTION", "SIMPLE", False)

    f = fks[("p2",), ""]
    assert (f.referenced_table, f.referenced_columns) == ("parent", ["id"])
    assert (f.on_update, f.on_delete) == ("CASCADE", "RESTRICT")
    assert f.deferrable and f.initially_deferred

    f = fks[("self",), ""]  # implicit reference to the table's own rowid-alias PK
    assert (f.referenced_table, f.referenced_columns) == ("child", ["id"])

    f = fks[("ghost",), ""]  # parent missing: kept as written
    assert (f.referenced_table, f.referenced_columns, f.on_delete) == (
        "nowhere", ["x"], "SET DEFAULT")
    assert not f.deferrable and not f.initially_deferred

    f = fks[("pa", "pb"), "fk_composite"]  # implicit composite PK, in PK order
    assert f.referenced_columns == ["a", "b"] and f.on_delete == "CASCADE"
    assert f.deferrable and not f.initially_deferred

    # Two identical FKs: declaration order decides which one carries which name.
    f = fks[("pa",), ""]
    assert f.deferrable and not f.initially_deferred and f.match == "SIMPLE"
    assert not fks[("pa",), "fk_dup"].deferrable


def test_indexes(db: str) -> None:
    schema = load(db, """
        CREATE TABLE t (a INT, b TEXT COLLATE NOCASE, c TEXT, d REAL);
        CREATE INDEX ix_plain ON t (a);
        CREATE UNIQUE INDEX ix_multi ON t (a DESC, c COLLATE nocase ASC, b, d);
        CREATE INDEX ix_b_binary ON t (b COLLATE BINARY);
        CREATE INDEX ix_expr ON t (lower(c), substr(c, 1, (a + 2)) COLLATE RTRIM DESC, a);
        CREATE INDEX ix_partial ON t (c)
            WHERE d > 0.5 AND c NOT IN ('x, y', ')');
        CREATE UNIQUE INDEX IF NOT EXISTS main.ix_qualified ON t (d);
    """)
    ix = {i.name: i for i in table(schema, "t").indexes}
    assert set(ix) == {"ix_plain", "ix_multi", "ix_b_binary", "ix_expr", "ix_partial",
                       "ix_qualified"}
    assert ix["ix_plain"].columns == ["a"] and not ix["ix_plain"].unique
    assert ix["ix_plain"].where is None

    multi = ix["ix_multi"]
    assert multi.unique and multi.columns == ["a", "c", "b", "d"]
    assert [(k.descending, k.collation) for k in multi.keys] == [
        (True, None), (False, "nocase"), (False, None), (False, None)]
    # The column's own collation is implied, so only an override is recorded.
    assert ix["ix_b_binary"].keys[0].collation == "BINARY"

    expr = ix["ix_expr"]
    assert expr.columns == []
    assert [(k.expression, k.column, k.descending, k.collation) for k in expr.keys] == [
        ("lower(c)", None, False, None),
        ("substr(c, 1, (a + 2))", None, True, "RTRIM"),
        (None, "a", False, None),
    ]
    assert ix["ix_partial"].where == "d > 0.5 AND c NOT IN ('x, y', ')')"
    assert ix["ix_qualified"].unique and ix["ix_qualified"].columns == ["d"]


def test_columns_types_defaults_generated(db: str) -> None:
    schema = load(db, """
        CREATE TABLE d (
            i INT DEFAULT 42,
            n INTEGER DEFAULT -7 NOT NULL,
            f REAL DEFAULT +1.5e3,
            h INT DEFAULT 0x1F,
            s TEXT DEFAULT 'it''s, (really)',
            ts TEXT DEFAULT CURRENT_TIMESTAMP,
            e INT DEFAULT ((1 + 2) * 3),
            j TEXT DEFAULT (json_object('a', 1, 'b', 'c,d')),
            z TEXT DEFAULT NULL,
            bl BLOB DEFAULT X'00FF',
            bo BOOLEAN DEFAULT TRUE,
            dec decimal(10, 2),
            vc VarChar (20) COLLATE RTRIM,
            untyped,
            g1 INT GENERATED ALWAYS AS (i * 2) STORED,
            g2 text GENERATED ALWAYS AS (upper(s)) VIRTUAL,
            g3 AS (i + n)
        );
    """)
    cols = {c.name: c for c in table(schema, "d").columns}
    assert [c.name for c in table(schema, "d").columns] == list(cols)  # table order kept
    assert {k: c.default for k, c in cols.items() if c.default is not None} == {
        "i": "42", "n": "-7", "f": "+1.5e3", "h": "0x1F", "s": "'it''s, (really)'",
        "ts": "CURRENT_TIMESTAMP", "e": "(1 + 2) * 3",
        "j": "json_object('a', 1, 'b', 'c,d')", "z": "NULL", "bl": "X'00FF'", "bo": "TRUE"}
    assert cols["n"].nullable is False and cols["i"].nullable is True
    # Declared types keep their spelling; SQLite itself upper-cases its six STRICT names.
    assert (cols["dec"].type, cols["vc"].type, cols["untyped"].type) == (
        "decimal(10, 2)", "VarChar (20)", "")
    assert (cols["bo"].type, cols["g2"].type) == ("BOOLEAN", "TEXT")
    assert cols["vc"].collation == "RTRIM" and cols["s"].collation is None
    assert {k: c.generated for k, c in cols.items() if c.generated} == {
        "g1": "i * 2", "g2": "upper(s)", "g3": "i + n"}
    assert cols["g1"].type == "INT" and cols["g3"].type == ""
    # hidden = 3 in pragma_table_xinfo: STORED; 2: VIRTUAL, SQLite's default kind.
    assert {k: c.generated_kind for k, c in cols.items() if c.generated} == {
        "g1": "stored", "g2": "virtual", "g3": "virtual"}


OPTIONS = '''
    CREATE TABLE plain (id INTEGER PRIMARY KEY, a TEXT, g INT GENERATED ALWAYS AS (1) STORED);
    CREATE TABLE auto (id INTEGER CONSTRAINT "auto pk" PRIMARY KEY AUTOINCREMENT, a TEXT);
    CREATE TABLE "auto ""t""" ("my id" INTEGER, a TEXT, PRIMARY KEY ("my id" AUTOINCREMENT));
    CREATE TABLE nr (k TEXT PRIMARY KEY, v BLOB) without rowid;
    CREATE TABLE st (id INTEGER PRIMARY KEY, n INT, t TEXT, x ANY) Strict;
    CREATE TABLE both_ (k INTEGER PRIMARY KEY, v TEXT) STRICT, WITHOUT ROWID;
'''


def test_autoincrement_without_rowid_strict(db: str) -> None:
    schema = load(db, OPTIONS)
    got = {t.name: (t.primary_key.autoincrement if t.primary_key else None, t.without_rowid,
                    t.strict) for t in schema.tables}
    assert got == {"plain": (False, False, False), "auto": (True, False, False),
                   'auto "t"': (True, False, False), "nr": (False, True, False),
                   "st": (False, False, True), "both_": (False, True, True)}
    assert table(schema, "auto").primary_key.name == "auto pk"  # type: ignore[union-attr]
    assert table(schema, 'auto "t"').primary_key.columns == ["my id"]  # type: ignore[union-attr]

    # Sparse: a table that uses none of them has none of them in its canonical form (its
    # hash is what it was before they existed); one that does, has them.
    canon = {t["name"]: t for t in schema.canonical()["tables"]}
    assert not {"without_rowid", "strict"} & set(canon["plain"])
    assert "autoincrement" not in canon["plain"]["primary_key"]
    assert not [c for c in canon["plain"]["columns"] if "generated_kind" in c]
    assert canon["auto"]["primary_key"]["autoincrement"] is True
    assert (canon["both_"]["without_rowid"], canon["both_"]["strict"]) == (True, True)


def test_table_options_without_table_list(db: str) -> None:
    # SQLite before 3.37 has no pragma_table_list: the options come from the CREATE text.
    from lockplane.dialects.sqlite import introspect as sqlite_introspect

    live = {t.name: t for t in load(db, OPTIONS).tables}
    conn = sqlite3.connect(db)
    try:
        for name, sql in conn.execute("SELECT name, sql FROM sqlite_schema WHERE type = "
                                      "'table' AND name NOT LIKE 'sqlite%'"):
            t = sqlite_introspect._table(conn, name, sqltext.parse_create_table(sql), {}, None)
            assert (t.without_rowid, t.strict) == (live[name].without_rowid,
                                                   live[name].strict), name
    finally:
        conn.close()


def test_views_and_triggers(db: str) -> None:
    schema = load(db, """
        CREATE TABLE t (a INT, b INT);
        CREATE TABLE log (msg TEXT);
        CREATE VIEW v1 AS SELECT a, b FROM t WHERE a > 0;
        CREATE VIEW IF NOT EXISTS v2 (x, "as") AS
            WITH w AS (SELECT a AS q FROM t) SELECT q, q + 1 FROM w;
        CREATE TRIGGER t_ins AFTER INSERT ON t
        BEGIN
            INSERT INTO log VALUES ('inserted; ' || NEW.a);
        END;
        CREATE TRIGGER t_upd BEFORE UPDATE OF a ON T WHEN NEW.a < 0
        BEGIN SELECT RAISE(ABORT, 'negative'); END;
    """)
    views = {v.name: v for v in schema.views}
    assert views["v1"].definition == "SELECT a, b FROM t WHERE a > 0"
    assert views["v2"].definition == "WITH w AS (SELECT a AS q FROM t) SELECT q, q + 1 FROM w"
    assert all(v.depends_on == [] and not v.materialized for v in views.values())
    t = table(schema, "t")
    trig = {x.name: x for x in t.triggers}
    assert set(trig) == {"t_ins", "t_upd"}  # ON T: matched case-insensitively
    assert trig["t_ins"].definition.startswith("CREATE TRIGGER t_ins AFTER INSERT ON t\n")
    assert trig["t_ins"].definition.endswith("END")
    assert "RAISE(ABORT, 'negative')" in trig["t_upd"].definition
    assert table(schema, "log").triggers == []


def test_internal_and_lockplane_objects_excluded(db: str) -> None:
    schema = load(db, """
        CREATE TABLE _lockplane_migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, plan TEXT);
        CREATE INDEX _lockplane_ix ON _lockplane_migrations (plan);
        CREATE TRIGGER _lockplane_trg AFTER INSERT ON _lockplane_migrations
            BEGIN SELECT 1; END;
        CREATE TABLE _LOCKPLANE_phases (id INT);
        CREATE TABLE xlockplane_kept (id INT);  -- '_' is a LIKE wildcard: must not match
        CREATE TABLE sqlitexkept (id INT);
        CREATE TABLE counter (id INTEGER PRIMARY KEY AUTOINCREMENT, v INT);
        CREATE INDEX counter_v ON counter (v);
        INSERT INTO counter (v) VALUES (1), (2);
        ANALYZE;
    """)
    assert {t.name for t in schema.tables} == {"xlockplane_kept", "sqlitexkept", "counter"}
    conn = sqlite3.connect(db)
    internal = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema")}
    conn.close()
    assert {"sqlite_sequence", "sqlite_stat1"} <= internal  # they exist, and are skipped


def test_virtual_tables_and_shadows_excluded(db: str) -> None:
    require_sqlite_modules("fts5")
    schema = load(db, """
        CREATE VIRTUAL TABLE docs USING fts5(title, body);
        CREATE TABLE docs_kept_plain (id INT);
        CREATE TABLE real_one (id INT);
    """)
    # docs_kept_plain is a regular table: SQLite's table_list knows it is no shadow.
    assert {t.name for t in schema.tables} == {"real_one", "docs_kept_plain"}
    # Not silently: reported as objects Lockplane leaves alone (shadow tables go with
    # their virtual table), and not part of the state.
    assert schema.unmanaged == ["virtual table docs (fts5)"]
    assert schema.hash() == load(str(db) + "2", """
        CREATE TABLE docs_kept_plain (id INT);
        CREATE TABLE real_one (id INT);""").hash()


def test_virtual_tables_are_reported_with_their_module(db: str) -> None:
    require_sqlite_modules("rtree", "fts5")
    schema = load(db, """
        CREATE TABLE doc (slug TEXT PRIMARY KEY, body TEXT);
        CREATE VIRTUAL TABLE "doc USING x" USING FTS5(body, content='doc',
                                                      content_rowid='rowid');
        CREATE VIRTUAL TABLE boxes USING rtree(id, x0, x1);
    """)
    assert [t.name for t in schema.tables] == ["doc"]
    # The module follows the bare USING, not a quoted name that contains the word.
    assert schema.unmanaged == ["virtual table boxes (rtree)",
                                "virtual table doc USING x (fts5)"]


def test_same_script_same_hash(tmp_path: Path) -> None:
    first = load(tmp_path / "a.db", HOSTILE)
    second = load(tmp_path / "b.db", HOSTILE)
    assert first.hash() == second.hash()
    assert first.canonical() == second.canonical()
    third = load(tmp_path / "c.db", HOSTILE + "CREATE INDEX extra ON MixedCase (ParentId);")
    assert third.hash() != first.hash()
    # The canonical JSON round-trips through the model unchanged.
    assert Schema.model_validate_json(first.to_json()).hash() == first.hash()


def test_through_database_session(sqlite_dsn: str) -> None:
    db = connect(sqlite_dsn, create=True)
    try:
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        db.conn.row_factory = sqlite3.Row  # type: ignore[attr-defined]
        schema = db.introspect()
        assert schema.dialect == "sqlite"
        assert all(t.schema_ == "main" for t in schema.tables)
        assert table(schema, "t").primary_key.columns == ["id"]  # type: ignore[union-attr]
        assert not db.conn.in_transaction  # type: ignore[attr-defined]
        # Inside the caller's transaction: read there, leave it open.
        with db.transaction():
            db.execute("CREATE TABLE u (x INT)")
            assert {t.name for t in db.introspect().tables} == {"t", "u"}
            assert db.conn.in_transaction  # type: ignore[attr-defined]
    finally:
        db.close()


def test_empty_database(db: str) -> None:
    schema = load(db, "")
    assert schema.tables == [] and schema.views == [] and schema.dialect == "sqlite"


# ------------------------------------------------------------------- sqltext directly

def test_tokenizer_respects_quotes_and_comments() -> None:
    sql = """a 'x''y' "q""r" `b``c` [s t] x'0A' -- c (
    /* ( */ 1.5e-3 0x1F ("""
    kinds = [(t.kind, t.text) for t in sqltext.tokenize(sql)]
    assert kinds == [("word", "a"), ("str", "'x''y'"), ("id", '"q""r"'), ("id", "`b``c`"),
                     ("id", "[s t]"), ("blob", "x'0A'"), ("num", "1.5e-3"), ("num", "0x1F"),
                     ("op", "(")]
    assert [sqltext.unquote(t) for t in ('"q""r"', "`b``c`", "[s t]", "'x''y'", "bare")] == [
        'q"r', "b`c", "s t", "x'y", "bare"]
    assert "".join(t.text for t in sqltext.tokenize(sql, trivia=True)) == sql


def test_split_table_body_and_constraints() -> None:
    sql = ('CREATE TABLE "t(" (a INT DEFAULT \'1,2\', b DECIMAL(10, 2), '
           "PRIMARY KEY (a) UNIQUE (b) CONSTRAINT c1 CHECK (a, b), "
           "FOREIGN KEY (b) REFERENCES p ON DELETE SET NULL NOT DEFERRABLE) "
           "WITHOUT ROWID, STRICT")
    items = sqltext.split_table_body(sql)
    assert items == ["a INT DEFAULT '1,2'", "b DECIMAL(10, 2)",
                     "PRIMARY KEY (a) UNIQUE (b) CONSTRAINT c1 CHECK (a, b)",
                     "FOREIGN KEY (b) REFERENCES p ON DELETE SET NULL NOT DEFERRABLE"]
    assert sqltext.table_options(sql) == ["WITHOUT ROWID", "STRICT"]
    cons = sqltext.table_constraints(items[2])
    assert [(c.kind, c.name, c.columns, c.expression) for c in cons] == [
        ("PRIMARY KEY", None, ["a"], None), ("UNIQUE", None, ["b"], None),
        ("CHECK", "c1", [], "a, b")]
    assert cons[2].text == "CONSTRAINT c1 CHECK (a, b)"
    (fk,) = sqltext.table_constraints(items[3])
    assert fk.references is not None
    assert (fk.references.table, fk.references.on_delete, fk.references.deferrable) == (
        "p", "SET NULL", False)

    col = sqltext.column_def(
        "id INTEGER CONSTRAINT pk PRIMARY KEY DESC ON CONFLICT REPLACE AUTOINCREMENT "
        "NOT NULL ON CONFLICT IGNORE COLLATE \"nocase\" DEFAULT (-1)")
    assert (col.name, col.type) == ("id", "INTEGER")
    pk, nn, coll, default = col.constraints
    assert (pk.kind, pk.name, pk.descending, pk.on_conflict, pk.autoincrement) == (
        "PRIMARY KEY", "pk", True, "REPLACE", True)
    assert (nn.kind, nn.on_conflict, coll.collation) == ("NOT NULL", "IGNORE", "nocase")
    assert (default.kind, default.expression) == ("DEFAULT", "(-1)")

    # SQLite's grammar also takes AUTOINCREMENT at the end of a table PRIMARY KEY list.
    pk, = sqltext.table_constraints('PRIMARY KEY ("a b" DESC AUTOINCREMENT)')
    assert (pk.columns, pk.keys[0].descending, pk.autoincrement) == (["a b"], True, True)
    pk, = sqltext.table_constraints("PRIMARY KEY (a, b)")
    assert (pk.columns, pk.autoincrement) == (["a", "b"], False)
    assert sqltext.table_options("CREATE TABLE t (a) strict, without rowid") == [
        "STRICT", "WITHOUT ROWID"]


def test_parse_create_index_and_view() -> None:
    idx = sqltext.parse_create_index(
        'CREATE UNIQUE INDEX IF NOT EXISTS "s"."i x" ON "t y" '
        "(a COLLATE NOCASE DESC, (b + c), f(d, ',')) WHERE a IS NOT NULL")
    assert (idx.name, idx.table, idx.unique, idx.where) == ("i x", "t y", True, "a IS NOT NULL")
    assert [(i.expression, i.collation, i.descending) for i in idx.items] == [
        ("a", "NOCASE", True), ("(b + c)", None, False), ("f(d, ',')", None, False)]
    assert sqltext.view_select('CREATE VIEW "AS" (x) AS\n  SELECT 1 AS x') == "SELECT 1 AS x"
    assert sqltext.view_columns('CREATE VIEW "AS" (x, [y z]) AS SELECT 1, 2') == ["x", "y z"]
