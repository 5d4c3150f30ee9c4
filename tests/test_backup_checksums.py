"""The manifest's per-table checksums (format 2, copy-crc32): read from pg_dump's own data
files when a backup is made, recomputed from COPY when it is validated or compared with
the live database; format 1 manifests (row-hash-sum) still validate."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import psycopg
import pytest

from lockplane.backup import create_backup, open_storage, validate_backup
from lockplane.backup.pitr import restore_loss
from lockplane.dialects.postgres.checksums import (
    COPY_CRC32,
    CopyReader,
    data_file_figure,
    pg_copy_stats,
    pg_table_stats,
)
from lockplane.dialects.postgres.pgtools import find_tool, list_archive
from tests.cli_inprocess import lockplane
from tests.conftest import pg_exec

# Types whose text depends on session settings, names that need quoting, a generated
# column (not in COPY), a table without columns, an empty one, partitions.
TRICKY = """
CREATE SCHEMA "we""ird sch";
CREATE TABLE "we""ird sch"."my table" (
    id int PRIMARY KEY, at timestamptz, d date, span interval, f float8, r real,
    m money, b bytea, t text, j jsonb, a int[], doubled int GENERATED ALWAYS AS (id * 2) STORED);
INSERT INTO "we""ird sch"."my table" (id, at, d, span, f, r, m, b, t, j, a)
SELECT g, timestamptz '2024-03-01 12:00:00+00' + g * interval '1 hour 7 seconds',
       date '2024-01-01' + g, g * interval '1 day 3 minutes', g / 3.0, g / 7.0, g * 1.25,
       decode(md5(g::text), 'hex'), E'tab\\there\\nnew line \\\\ back ' || g || ' é',
       jsonb_build_object('g', g), ARRAY[g, NULL, -g]
FROM generate_series(1, 300) g;
INSERT INTO "we""ird sch"."my table" (id) VALUES (0);
CREATE TABLE no_columns ();
INSERT INTO no_columns DEFAULT VALUES;
INSERT INTO no_columns DEFAULT VALUES;
CREATE TABLE empty (id int);
CREATE TABLE measures (id int, at date) PARTITION BY RANGE (at);
CREATE TABLE measures_2023 PARTITION OF measures FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE measures_2024 PARTITION OF measures FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
INSERT INTO measures SELECT g, date '2023-06-01' + g FROM generate_series(1, 400) g;
"""

# Session defaults unlike pg_dump's: the figures must not depend on them.
ODD_DEFAULTS = ("SET TimeZone = 'Asia/Kolkata'", "SET DateStyle = 'SQL, DMY'",
                "SET IntervalStyle = 'sql_standard'", "SET bytea_output = 'escape'",
                "SET extra_float_digits = 0")


@pytest.fixture
def tricky(pg_dsn: str) -> str:
    pg_exec(pg_dsn, TRICKY)
    name = pg_dsn.rsplit("/", 1)[1]
    with psycopg.connect(pg_dsn, autocommit=True) as c:
        for setting in ODD_DEFAULTS:
            c.execute(f'ALTER DATABASE "{name}" {setting}')
    return pg_dsn


def _manifest_path(store: str, backup_id: str) -> Path:
    return Path(store) / backup_id / "manifest.json"


def test_figures_come_from_the_dump_and_match_a_restore(tricky: str, tmp_path: Path) -> None:
    store = str(tmp_path / "backups")
    m = create_backup(tricky, open_storage(store), jobs=2)
    assert m.format_version == 3 and m.checksum_method == COPY_CRC32
    assert m.copy_end_marker == "\\.\n\n\n"
    assert m.copy_settings["TimeZone"] == "UTC" and m.copy_settings["client_encoding"]
    rows = {t.qualified: t.rows for t in m.tables}
    assert rows == {'we"ird sch.my table': 301, "public.no_columns": 2, "public.empty": 0,
                    "public.measures_2023": 213, "public.measures_2024": 187}

    # Each figure is its data file's (CRC-32 and length of the decompressed COPY text)
    data = Path(store) / m.id / "data"
    with psycopg.connect(tricky) as c:
        version = c.info.server_version
    listing = list_archive(find_tool("pg_restore", version), data, {})
    oids = {line.split()[2]: line.split()[0].rstrip(";") for line in listing.splitlines()
            if " TABLE DATA " in line}
    with psycopg.connect(tricky) as c:
        for t in m.tables:
            oid = c.execute("SELECT %s::regclass::oid", (
                psycopg.sql.Identifier(t.schema_name, t.name).as_string(c),)).fetchone()[0]  # type: ignore[index]
            path = data / f"{oids[str(oid)]}.dat.gz"
            assert data_file_figure(path) == t.checksum
            content = gzip.decompress(path.read_bytes())
            assert t.checksum.split(":")[2] == str(len(content))

    # The live database gives the same figures, through psql and through psycopg
    for psql in (find_tool("psql", version).path, None):
        reader = CopyReader(tricky, m.copy_settings, psql)
        live = pg_copy_stats(reader, m.copy_end_marker.encode(), jobs=2)
        assert [(t.qualified, t.rows, t.checksum) for t in live] == \
            [(t.qualified, t.rows, t.checksum) for t in m.tables]

    # and so does the restored copy (the schema hash is another check: with these
    # database defaults, partition bounds introspect differently after a restore)
    report = validate_backup(open_storage(store), m.id, server_dsn=tricky, jobs=2)
    tables = next(c for c in report.checks if c.name == "tables")
    assert tables.ok and "counts and checksums match" in tables.detail, tables.detail


def test_an_inheritance_parent_counts_its_own_rows(pg_dsn: str, tmp_path: Path) -> None:
    """A table's figures are of its own rows, as its COPY text holds them: an inheritance
    parent's count left out its children's (manifests before format 3 counted them, and
    a validate that loaded the parent before a child then failed: '200000 rows, manifest
    says 201000'). Such an older manifest still validates, its parents counted as it
    counted them; recover's live figures agree with the manifest."""
    pg_exec(pg_dsn, "CREATE TABLE p (id int, v text); CREATE TABLE c (extra int) INHERITS (p);"
                    "INSERT INTO p SELECT g, 'p' FROM generate_series(1, 3000) g;"
                    "INSERT INTO c SELECT g, 'c', 1 FROM generate_series(1, 20) g;")
    store = str(tmp_path / "backups")
    m = create_backup(pg_dsn, open_storage(store), jobs=1)
    assert {t.name: t.rows for t in m.tables} == {"p": 3000, "c": 20}
    # one session: the parent (larger) is loaded and counted before its child
    assert validate_backup(open_storage(store), m.id, server_dsn=pg_dsn, jobs=1).ok
    loss = restore_loss(m, pg_dsn, history=[])
    assert (loss.tables, loss.unchanged, loss.error) == ([], 2, None)

    doc = json.loads(_manifest_path(store, m.id).read_text())
    doc["format_version"] = 2
    for t in doc["tables"]:
        t["rows"] += 20 if t["name"] == "p" else 0  # count(*) with the child's rows
    _manifest_path(store, m.id).write_text(json.dumps(doc))
    assert validate_backup(open_storage(store), m.id, server_dsn=pg_dsn, jobs=1).ok
    doc["tables"] = [{**t, "rows": t["rows"] - 20} if t["name"] == "p" else t
                     for t in doc["tables"]]
    _manifest_path(store, m.id).write_text(json.dumps(doc))
    assert not validate_backup(open_storage(store), m.id, server_dsn=pg_dsn, jobs=1).ok


def test_altered_rows_fail_validation_even_with_rehashed_files(pg_dsn: str,
                                                               tmp_path: Path) -> None:
    """A data file changed and its sha256 recorded again: the file checks pass, the
    restored table's figure does not."""
    pg_exec(pg_dsn, "CREATE TABLE t (id int, name text);"
                    "INSERT INTO t SELECT g, 'name ' || g FROM generate_series(1, 1000) g;")
    store = str(tmp_path / "backups")
    m = create_backup(pg_dsn, open_storage(store))
    data = Path(store) / m.id / "data"
    target = max(data.glob("*.dat.gz"), key=lambda p: p.stat().st_size)
    text = gzip.decompress(target.read_bytes()).replace(b"\tname 500\n", b"\tname 5OO\n")
    target.write_bytes(gzip.compress(text))
    doc = json.loads(_manifest_path(store, m.id).read_text())
    for f in doc["files"]:
        if f["path"] == target.name:
            f["size"] = target.stat().st_size
            f["sha256"] = hashlib.sha256(target.read_bytes()).hexdigest()
    _manifest_path(store, m.id).write_text(json.dumps(doc))
    r = lockplane("backup", "validate", m.id, "--storage", store, "--server", pg_dsn)
    assert r.code == 1, r.output
    assert "public.t: checksum differs from the manifest" in r.stderr.splitlines()[-1]


def test_format_1_manifests_still_validate(pg_dsn: str, tmp_path: Path) -> None:
    """A manifest written before format 2 (row-hash-sum figures, no checksum_method)."""
    pg_exec(pg_dsn, "CREATE TABLE t (id int, at timestamptz, v float8);"
                    "INSERT INTO t SELECT g, now(), g / 3.0 FROM generate_series(1, 500) g;")
    store = str(tmp_path / "backups")
    m = create_backup(pg_dsn, open_storage(store))
    doc = json.loads(_manifest_path(store, m.id).read_text())
    for key in ("checksum_method", "copy_settings", "copy_end_marker"):
        del doc[key]
    doc["format_version"] = 1
    old = pg_table_stats(lambda: psycopg.connect(pg_dsn, autocommit=True))
    doc["tables"] = [t.model_dump(by_alias=True) for t in old]
    _manifest_path(store, m.id).write_text(json.dumps(doc))
    report = validate_backup(open_storage(store), m.id, server_dsn=pg_dsn)
    assert report.ok, report.checks

    doc["tables"][0]["checksum"] = "12345"
    _manifest_path(store, m.id).write_text(json.dumps(doc))
    assert not validate_backup(open_storage(store), m.id, server_dsn=pg_dsn).ok

    doc["format_version"] = 4
    _manifest_path(store, m.id).write_text(json.dumps(doc))
    r = lockplane("backup", "validate", m.id, "--storage", store, "--server", pg_dsn)
    assert r.code == 2, r.output
    assert "manifest format 4 was written by a newer Lockplane" in r.stderr


def test_restore_loss_compares_live_tables_by_the_manifest_method(pg_dsn: str,
                                                                  tmp_path: Path) -> None:
    pg_exec(pg_dsn, "CREATE TABLE kept (id int, v text); CREATE TABLE edited (id int, v text);"
                    "INSERT INTO kept SELECT g, 'v' || g FROM generate_series(1, 100) g;"
                    "INSERT INTO edited SELECT g, 'v' || g FROM generate_series(1, 100) g;")
    m = create_backup(pg_dsn, open_storage(str(tmp_path / "backups")))
    pg_exec(pg_dsn, "UPDATE edited SET v = 'changed' WHERE id = 7")
    loss = restore_loss(m, pg_dsn, history=[])
    assert loss.error is None, loss.error
    assert loss.unchanged == 1
    assert [(c.table, c.changed) for c in loss.tables] == [("public.edited", True)]


def test_marker_assumed_when_every_data_file_is_large(pg_dsn: str, tmp_path: Path,
                                                      monkeypatch) -> None:
    """No data file small enough to read: pg_dump's marker is taken as is, and a
    validation confirms it."""
    from lockplane.dialects.postgres import checksums

    monkeypatch.setattr(checksums, "MARKER_PROBE_BYTES", 0)
    pg_exec(pg_dsn, "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 50);")
    store = str(tmp_path / "backups")
    m = create_backup(pg_dsn, open_storage(store))
    assert m.checksum_method == COPY_CRC32 and m.copy_end_marker == "\\.\n\n\n"
    assert validate_backup(open_storage(store), m.id, server_dsn=pg_dsn).ok


def test_restore_loss_is_not_fooled_by_row_order(pg_dsn: str, tmp_path: Path) -> None:
    """CLUSTER and VACUUM FULL rewrite a table in another order: its copy-crc32 differs
    from the backup's, but no row changed. The order-independent check says so; a table
    whose rows did change (same count) stays changed."""
    pg_exec(pg_dsn, """
        CREATE TABLE clustered (id int PRIMARY KEY, v text);
        INSERT INTO clustered SELECT g, md5(g::text) FROM generate_series(1, 3000) g
          ORDER BY md5(g::text);
        CREATE INDEX clustered_v ON clustered (v);
        CREATE TABLE vacuumed (id int, v text);
        INSERT INTO vacuumed SELECT g, 'v' || g FROM generate_series(1, 500) g;
        CREATE TABLE edited (id int PRIMARY KEY, v text);
        INSERT INTO edited SELECT g, 'v' || g FROM generate_series(1, 500) g;
    """)
    store = open_storage(str(tmp_path / "backups"))
    m = create_backup(pg_dsn, store)
    assert m.checksum_method == COPY_CRC32 and all(t.data_file for t in m.tables)
    with psycopg.connect(pg_dsn, autocommit=True) as c:  # VACUUM: outside a transaction
        for stmt in ("CLUSTER clustered USING clustered_pkey",
                     "UPDATE vacuumed SET v = v WHERE id <= 250",  # same values, moved
                     "VACUUM FULL vacuumed",
                     "UPDATE edited SET v = 'changed' WHERE id = 7",
                     "UPDATE edited SET v = v WHERE id <= 100", "VACUUM FULL edited"):
            c.execute(stmt)
    blind = restore_loss(m, pg_dsn, history=[])
    assert {c.table for c in blind.tables} == {"public.clustered", "public.vacuumed",
                                               "public.edited"}  # the CRCs differ
    loss = restore_loss(m, pg_dsn, history=[], storage=store)
    assert loss.error is None, loss.error
    assert [(c.table, c.changed) for c in loss.tables] == [("public.edited", True)]
    assert loss.reordered == ["public.clustered", "public.vacuumed"]
    assert loss.unchanged == 2 and "undoes updates in 1 table(s)" in loss.summary()
    assert ("public.clustered, public.vacuumed: the same rows as in the backup, in another "
            "order (nothing lost there)") in loss.summary(), loss.summary()
    assert loss.to_json()["reordered_tables"] == ["public.clustered", "public.vacuumed"]
