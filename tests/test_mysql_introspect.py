"""MariaDB/MySQL dialect: DSNs, sessions and introspection on the real MariaDB server."""

from __future__ import annotations

import pymysql
import pytest

from lockplane.dialects import connect, get_dialect
from lockplane.dialects.mysql import parse_dsn, with_database
from lockplane.dsn import dialect_of, redact
from lockplane.errors import BadInput
from lockplane.model import Schema

HOSTILE = 'we`ird "name"; DROP'


def run(dsn: str, *statements: str) -> None:
    params = parse_dsn(dsn).kwargs()
    with pymysql.connect(**params, autocommit=True) as conn, conn.cursor() as cur:
        for s in statements:
            cur.execute(s)


def test_dsn_schemes_and_redaction() -> None:
    assert dialect_of("mysql://u:p@h:3306/db") == "mysql"
    assert dialect_of("mariadb://u:p@h/db") == "mysql"
    assert dialect_of("mysql+pymysql://u@h/db") == "mysql"
    assert "s3cret" not in redact("mysql://app:s3cret@db.internal:3306/shop")
    params = parse_dsn("mariadb://app:p%40ss@db:3307/sh%60op?connect_timeout=3")
    assert (params.user, params.password, params.host, params.port, params.database,
            params.connect_timeout) == ("app", "p@ss", "db", 3307, "sh`op", 3)
    with pytest.raises(BadInput, match="unknown parameter"):
        parse_dsn("mysql://u:pw@h/db?sslmode=x")


def test_connect_failure_never_shows_the_password(mysql_dsn: str) -> None:
    bad = mysql_dsn.replace("root@", "root:TopSecret99@")
    with pytest.raises(BadInput) as exc:
        connect(bad)
    assert "TopSecret99" not in str(exc.value)
    assert "cannot connect" in str(exc.value)


def test_execute_query_transaction(mysql_dsn: str) -> None:
    d = get_dialect("mysql")
    with connect(mysql_dsn) as db:
        t = d.quote(HOSTILE)
        db.execute(f"CREATE TABLE {t} (id int PRIMARY KEY, v varchar(20))")
        db.execute(f"INSERT INTO {t} VALUES (%s, %s)", (1, "100% 'quoted' \\ back"))
        assert db.query(f"SELECT v FROM {t}") == [("100% 'quoted' \\ back",)]
        assert db.query(f"SELECT v FROM {t} WHERE v = {d.literal(chr(92) + 'x')}") == []
        with pytest.raises(RuntimeError), db.transaction():
            db.execute(f"INSERT INTO {t} VALUES (2, 'b')")
            raise RuntimeError("roll back")
        with db.transaction():
            db.execute(f"INSERT INTO {t} VALUES (3, 'c')")
        assert [r[0] for r in db.query(f"SELECT id FROM {t} ORDER BY id")] == [1, 3]
        assert d.literal("a'b\\c") == "'a''b\\\\c'"
        assert db.query(f"SELECT {d.literal(chr(39) + chr(92) + 'z')}") == [("'\\z",)]


FULL = [
    "CREATE TABLE `p``x` (id int unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY, "
    "code char(3) NOT NULL, UNIQUE KEY uq (code))",
    f"CREATE TABLE {get_dialect('mysql').quote(HOSTILE)} ("
    "id bigint NOT NULL AUTO_INCREMENT, "
    "v varchar(100) CHARACTER SET latin1 COLLATE latin1_bin DEFAULT 'x''y' COMMENT 'c', "
    "n int DEFAULT NULL, nn int NOT NULL, d decimal(10,2) DEFAULT 1.50, "
    "ts timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3), "
    "u char(36) DEFAULT (uuid()), g int AS (n + 1) VIRTUAL, "
    "s int GENERATED ALWAYS AS (nn * 2) STORED, pid int unsigned, "
    "e enum('a','b') DEFAULT 'a', body text, geo geometry NOT NULL, "
    "PRIMARY KEY (id), KEY k (v(5), n DESC), UNIQUE KEY un (nn), FULLTEXT KEY ft (body), "
    "SPATIAL KEY sp (geo), CONSTRAINT ck CHECK (n > 0), CONSTRAINT fk FOREIGN KEY (pid) "
    "REFERENCES `p``x` (id) ON DELETE CASCADE ON UPDATE SET NULL) ENGINE=InnoDB "
    "ROW_FORMAT=COMPRESSED DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='tab'",
    f"CREATE VIEW v AS SELECT id, v FROM {get_dialect('mysql').quote(HOSTILE)} WHERE n > 1 "
    "WITH CHECK OPTION",
    f"CREATE TRIGGER trg BEFORE INSERT ON {get_dialect('mysql').quote(HOSTILE)} "
    "FOR EACH ROW SET NEW.n = 1",
    "CREATE TABLE _lockplane_migrations (id int)",
    "CREATE PROCEDURE proc() SELECT 1",
]


def test_introspect_everything(mysql_dsn: str) -> None:
    run(mysql_dsn, *FULL)
    with connect(mysql_dsn) as db:
        schema = db.introspect()
    assert schema.dialect == "mysql"
    assert sorted(t.name for t in schema.tables) == sorted(["p`x", HOSTILE])
    parent = schema.table("", "p`x")
    assert parent is not None and parent.primary_key is not None
    assert parent.primary_key.columns == ["id"]
    assert parent.columns[0].type == "int(10) unsigned" and parent.columns[0].auto_increment
    assert [(i.name, i.unique) for i in parent.indexes] == [("uq", True)]
    t = schema.table("", HOSTILE)
    assert t is not None
    assert (t.engine, t.collation, t.comment, t.options) == (
        "InnoDB", "utf8mb4_unicode_ci", "tab", ["row_format=COMPRESSED"])
    cols = {c.name: c for c in t.columns}
    assert cols["v"].collation == "latin1_bin" and cols["v"].default == "'x''y'"
    assert cols["v"].comment == "c"
    assert cols["n"].default is None and cols["n"].nullable
    assert not cols["nn"].nullable and cols["d"].default == "1.50"
    assert cols["ts"].default == "current_timestamp(3)"
    assert cols["ts"].on_update == "current_timestamp(3)"
    assert cols["u"].default == "uuid()" and cols["u"].collation is None
    assert (cols["g"].generated, cols["g"].generated_kind) == ("`n` + 1", "virtual")
    assert (cols["s"].generated, cols["s"].generated_kind) == ("`nn` * 2", "stored")
    assert cols["s"].default is None
    assert cols["e"].type == "enum('a','b')" and cols["e"].default == "'a'"
    assert cols["id"].auto_increment and not cols["id"].nullable
    assert t.primary_key is not None and t.primary_key.columns == ["id"]
    idx = {i.name: i for i in t.indexes}
    assert [(k.column, k.length, k.descending) for k in idx["k"].keys] == [
        ("v", 5, False), ("n", None, True)]
    assert idx["un"].unique and not idx["k"].unique
    assert idx["ft"].method == "fulltext" and idx["sp"].method == "spatial"
    assert idx["sp"].keys[0].length is None
    assert "fk" in idx  # the index InnoDB made for the foreign key
    (fk,) = t.foreign_keys
    assert (fk.name, fk.columns, fk.referenced_table, fk.referenced_columns, fk.on_delete,
            fk.on_update, fk.referenced_schema) == (
        "fk", ["pid"], "p`x", ["id"], "CASCADE", "SET NULL", "")
    assert [(c.name, c.expression) for c in t.check_constraints] == [("ck", "`n` > 0")]
    (trg,) = t.triggers
    assert trg.name == "trg" and "BEFORE INSERT ON" in trg.definition
    assert trg.definition.endswith("FOR EACH ROW SET NEW.n = 1")
    (view,) = schema.views
    assert view.check_option == "CASCADED"
    assert mysql_dsn.rsplit("/", 1)[1] not in view.definition  # no database qualifier
    assert "`we``ird \"name\"; DROP`" in view.definition
    assert schema.unmanaged == ["procedure proc"]
    # The model round-trips through its JSON, and the hash is stable.
    again = Schema.model_validate_json(schema.to_json())
    assert again.hash() == schema.hash()


def test_same_schema_in_another_database_hashes_the_same(mysql_dsn: str) -> None:
    other = with_database(mysql_dsn, mysql_dsn.rsplit("/", 1)[1] + "_b")
    run(mysql_dsn, f"CREATE DATABASE `{other.rsplit('/', 1)[1]}`")
    try:
        run(mysql_dsn, *FULL[:3])
        run(other, *FULL[:3])
        with connect(mysql_dsn) as a, connect(other) as b:
            assert a.introspect().hash() == b.introspect().hash()
    finally:
        run(mysql_dsn, f"DROP DATABASE `{other.rsplit('/', 1)[1]}`")


def test_ignored_indexes(mysql_dsn: str) -> None:
    run(mysql_dsn, "CREATE TABLE t (a int, b int, KEY seen (a), KEY hidden (b) IGNORED)")
    with connect(mysql_dsn) as db:
        t = db.introspect().tables[0]
    # The server's own word (MySQL 8: invisible): a plan writes it back as it is.
    assert {i.name: i.options for i in t.indexes} == {"seen": [], "hidden": ["ignored"]}


def test_partitions(mysql_dsn: str) -> None:
    run(mysql_dsn,
        "CREATE TABLE r (id int, d date) PARTITION BY RANGE (year(d)) "
        "(PARTITION `p``0` VALUES LESS THAN (2020), PARTITION p1 VALUES LESS THAN MAXVALUE)",
        "CREATE TABLE l (id int, c char(2)) PARTITION BY LIST COLUMNS (c) "
        "(PARTITION pa VALUES IN ('a','b'), PARTITION pz VALUES IN ('z'))",
        "CREATE TABLE h (id int) PARTITION BY HASH (id) PARTITIONS 2")
    with connect(mysql_dsn) as db:
        got = {t.name: t.partition_by for t in db.introspect().tables}
    assert got == {
        "r": "RANGE (year(`d`)) (PARTITION `p``0` VALUES LESS THAN (2020), "
             "PARTITION `p1` VALUES LESS THAN MAXVALUE)",
        "l": "LIST COLUMNS (`c`) (PARTITION `pa` VALUES IN ('a','b'), "
             "PARTITION `pz` VALUES IN ('z'))",
        "h": "HASH (`id`) (PARTITION `p0`, PARTITION `p1`)"}
    # Written as SQL, the same table again.
    other = with_database(mysql_dsn, mysql_dsn.rsplit("/", 1)[1] + "_p")
    run(mysql_dsn, f"CREATE DATABASE `{other.rsplit('/', 1)[1]}`")
    try:
        run(other, *(f"CREATE TABLE `{n}` (id int, d date, c char(2)) PARTITION BY {p}"
                     for n, p in got.items() if n == "r"))
        with connect(other) as db:
            assert db.introspect().tables[0].partition_by == got["r"]
    finally:
        run(mysql_dsn, f"DROP DATABASE `{other.rsplit('/', 1)[1]}`")


def test_introspect_needs_a_database() -> None:
    from tests.conftest import MYSQL_SERVER

    with connect(MYSQL_SERVER) as db, pytest.raises(BadInput, match="names no database"):
        db.introspect()


def test_virtual_generated_columns_are_mysqls_too() -> None:
    cols = [{"name": "a", "type": "int"},
            {"name": "b", "type": "int", "generated": "a + 1", "generated_kind": "virtual"}]
    schema = Schema.model_validate({"dialect": "mysql",
                                    "tables": [{"name": "t", "columns": cols}]})
    assert schema.tables[0].columns[1].generated_kind == "virtual"


def test_views_in_a_database_with_a_hostile_name(mysql_dsn: str) -> None:
    """The view's database qualifier is taken off by name, even when the database, a
    table and an alias share a name that needs quoting."""
    odd = 'lp_`odd" db'
    run(mysql_dsn, f"CREATE DATABASE `{odd.replace('`', '``')}`")
    dsn = with_database(mysql_dsn, odd)
    try:
        q = get_dialect("mysql").quote
        run(dsn, f"CREATE TABLE {q(odd)} (id int, n int)",
            "CREATE TABLE b (id int)",
            f"CREATE VIEW v AS SELECT {q(odd)}.id, {q(odd + '2')}.id AS i2 FROM {q(odd)} "
            f"JOIN b {q(odd + '2')} ON {q(odd)}.id = {q(odd + '2')}.id "
            f"WHERE {q(odd)}.n <> '{odd}.x'")
        with connect(dsn) as db:
            (view,) = db.introspect().views
        assert f"{q(odd)}.{q(odd)}." not in view.definition
        assert f"from ({q(odd)} join `b`" in view.definition
        assert f"'{odd}.x'" in view.definition  # a string is left alone
    finally:
        run(mysql_dsn, f"DROP DATABASE `{odd.replace('`', '``')}`")
