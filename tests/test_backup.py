"""Backups: real pg_dump/pg_restore on the local server, S3 through moto's server mode,
SQLite files; bad input and corrupted backups exit 2 or 3 with one line, touching nothing."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from lockplane.backup import (
    S3Storage,
    create_backup,
    list_backups,
    open_storage,
    read_status,
    restored_copy,
    validate_backup,
)
from lockplane.dialects.postgres.pgtools import parse_tool_version, tool_version
from lockplane.errors import BadInput
from tests.cli_inprocess import lockplane
from tests.conftest import PG_ADMIN_DSN, pg_exec

SEED = """
CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL, born date,
                    seen timestamptz DEFAULT now(), score float8, blob bytea);
INSERT INTO users SELECT g, 'u' || g || '@x.org', DATE '2000-01-01' + g, now(), g / 7.0,
                         decode(md5(g::text), 'hex')
  FROM generate_series(1, 2000) g;
CREATE TABLE orders (id serial PRIMARY KEY, user_id bigint REFERENCES users, total numeric);
INSERT INTO orders (user_id, total) SELECT 1 + g % 2000, g * 1.5 FROM generate_series(1, 500) g;
CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 100;
"""


def _one_line(text: str) -> str:
    """The one error line (progress lines before it are fine; no traceback)."""
    assert "Traceback" not in text, text
    lines = [ln for ln in text.strip().splitlines() if ln.startswith(("error:", "usage:"))]
    assert len(lines) == 1, text
    return lines[0]


def _db_exists(name: str) -> bool:
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as c:
        return c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() \
            is not None


def _count(dsn: str, table: str) -> int:
    with psycopg.connect(dsn) as c:
        return c.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]


@pytest.fixture
def seeded(pg_dsn: str) -> str:
    pg_exec(pg_dsn, SEED)
    return pg_dsn


@pytest.fixture
def store(tmp_path: Path) -> str:
    return str(tmp_path / "backups")


# ---------------------------------------------------------------------------- PostgreSQL
def test_create_list_validate_restore(seeded: str, store: str, pg_dsn_factory) -> None:
    r = lockplane("backup", "create", "--target", seeded, "--storage", store, "-j", "2",
                  "--json")
    assert r.code == 0, r.output
    m = json.loads(r.stdout)
    assert m["dialect"] == "postgres" and m["format"] == "pg_dump-directory"
    assert m["server_version"].startswith("15")
    tables = {t["name"]: t for t in m["tables"]}
    assert tables["users"]["rows"] == 2000 and tables["orders"]["rows"] == 500
    assert all(f["sha256"] and f["size"] >= 0 for f in m["files"])
    assert any(f["path"] == "toc.dat" for f in m["files"])
    assert m["history"] is None and len(m["schema_hash"]) == 64

    listed = lockplane("backup", "list", "--storage", store, "--json")
    assert [b["id"] for b in json.loads(listed.stdout)] == [m["id"]]
    human = lockplane("backup", "list", "--storage", store)
    assert m["id"] in human.stderr

    v = lockplane("backup", "validate", m["id"], "--storage", store, "--server", seeded,
                  "--target", seeded)
    assert v.code == 0, v.output
    assert "passed" in v.stderr and "RTO" in v.stderr and "same migration" in v.stderr

    # Restore into a database that does not exist yet: created.
    new = pg_dsn_factory()
    fresh = new.rsplit("/", 1)[0] + "/" + new.rsplit("/", 1)[1] + "_r"
    try:
        r = lockplane("backup", "restore", "--from", m["id"], "--to", fresh, "--storage", store)
        assert r.code == 0, r.output
        assert "(created)" in r.stderr
        assert _count(fresh, "users") == 2000 and _count(fresh, "big_orders") > 0
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{fresh.rsplit("/", 1)[1]}" WITH (FORCE)')

    # A database with tables is refused (exit 3), untouched; --force restores into it.
    pg_exec(seeded, "DELETE FROM orders; INSERT INTO users (id, email) VALUES (9999, 'x')")
    r = lockplane("backup", "restore", "--from", m["id"], "--to", seeded, "--storage", store)
    assert r.code == 3 and "--force" in _one_line(r.stderr)
    assert _count(seeded, "orders") == 0 and _count(seeded, "users") == 2001
    r = lockplane("backup", "restore", "--from", "latest", "--to", seeded, "--storage", store,
                  "--force")
    assert r.code == 0, r.output
    assert _count(seeded, "orders") == 500 and _count(seeded, "users") == 2000


def test_query_is_read_only_and_dropped(seeded: str, store: str) -> None:
    m = create_backup(seeded, open_storage(store))
    r = lockplane("backup", "query", "--from", m.id, "--storage", store, "--server", seeded,
                  "--sql", "SELECT count(*) AS n FROM users", "--json")
    assert r.code == 0, r.output
    assert json.loads(r.stdout) == [{"n": 2000}]
    r = lockplane("backup", "query", "--from", m.id, "--storage", store, "--server", seeded,
                  "--sql", "DELETE FROM users")
    assert r.code == 2 and "read-only" in _one_line(r.stderr)
    # Without --sql: prints where to connect (no password) and waits for Enter.
    r = lockplane("backup", "query", "--from", m.id, "--storage", store, "--server", seeded,
                  stdin="\n")
    assert r.code == 0, r.output
    name = r.stdout.strip().rsplit("/", 1)[1]
    assert name.startswith("lockplane_backup_") and not _db_exists(name)


def test_leftover_temporary_databases_are_dropped(seeded: str, store: str) -> None:
    m = create_backup(seeded, open_storage(store))
    left = "lockplane_backup_0badc0ffee00"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{left}"')
    with restored_copy(open_storage(store), m.id, seeded) as copy:
        assert not _db_exists(left)  # its owner session is gone: dropped by this run
        assert _db_exists(copy.dsn.rsplit("/", 1)[1])  # ours lives while we use it
    assert not _db_exists(copy.dsn.rsplit("/", 1)[1])


def test_a_query_killed_mid_run_leaves_nothing_for_long(seeded: str, store: str,
                                                        tmp_path: Path) -> None:
    """kill -9 while the query runs: the server ends the orphaned query within seconds
    (not when the query would have ended), and the next run drops the copy."""
    m = create_backup(seeded, open_storage(store))
    err = tmp_path / "stderr"
    with err.open("w") as f:
        proc = subprocess.Popen([sys.executable, "-m", "lockplane", "backup", "query", "--from",
                                 m.id, "--storage", store, "--server", seeded,
                                 "--sql", "SELECT pg_sleep(300)"],
                                stdout=subprocess.DEVNULL, stderr=f)
    sleeping = ("SELECT 1 FROM pg_stat_activity WHERE datname = %s "
                "AND query = 'SELECT pg_sleep(300)'")
    left = None
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if left is None and "temporary database " in err.read_text():
                left = err.read_text().split("temporary database ", 1)[1].split()[0]
            if left:
                with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as c:
                    if c.execute(sleeping, (left,)).fetchone():
                        break
            time.sleep(0.2)
        else:
            pytest.fail(f"the query never started: {err.read_text()}")
    finally:
        proc.kill()
        proc.wait()
    assert left and _db_exists(left)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as c:
            if not c.execute(sleeping, (left,)).fetchone():
                break
        time.sleep(0.2)
    r = lockplane("backup", "query", "--from", m.id, "--storage", store, "--server", seeded,
                  "--sql", "SELECT 1")
    assert r.code == 0, r.output
    assert f"left by killed runs: {left}" in r.stderr, r.output
    assert not _db_exists(left)


def test_a_restore_killed_half_way_leaves_no_database_that_looks_restored(
        seeded: str, store: str, tmp_path: Path) -> None:
    """kill -9 during pg_restore (recover and rollback --via-backup restore the same way):
    the database it created carries a 'restore not finished' comment, so the next restore
    on the server drops it and says so (a restore into the same name then works) instead
    of finding a half-filled database it refuses as non-empty, or one that reads as
    recovered."""
    # A materialized view whose refresh (the end of pg_restore) waits while the test
    # holds a session named 'lockplane test: slow': the source database is not slowed.
    pg_exec(seeded, """
        CREATE FUNCTION wait_for_test() RETURNS int LANGUAGE plpgsql AS $$
        BEGIN
          -- (at most 2 minutes; the activity snapshot is cleared each time round)
          FOR i IN 1..1200 LOOP
            PERFORM pg_catalog.pg_stat_clear_snapshot();
            EXIT WHEN NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity
                                  WHERE application_name = 'lockplane test: slow');
            PERFORM pg_catalog.pg_sleep(0.1);
          END LOOP;
          RETURN 1;
        END $$;
        CREATE MATERIALIZED VIEW waits AS SELECT wait_for_test() AS one;""")
    m = create_backup(seeded, open_storage(store))
    name = f"{seeded.rsplit('/', 1)[1]}_restored"
    into = seeded.rsplit("/", 1)[0] + "/" + name
    err = tmp_path / "stderr"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True,
                         application_name="lockplane test: slow") as slow:
        with err.open("w") as f:
            proc = subprocess.Popen([sys.executable, "-m", "lockplane", "backup", "restore",
                                     "--from", m.id, "--storage", store, "--to", into],
                                    stdout=subprocess.DEVNULL, stderr=f)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and proc.poll() is None:
                if slow.execute("SELECT 1 FROM pg_stat_activity WHERE datname = %s AND "
                                "query ILIKE 'REFRESH MATERIALIZED VIEW%%'",
                                (name,)).fetchone():
                    break
                time.sleep(0.2)
            else:
                pytest.fail(f"the restore never reached its last step: {err.read_text()}")
        finally:
            proc.kill()
            proc.wait()
        comment = slow.execute("SELECT shobj_description(oid, 'pg_database') FROM "
                               "pg_database WHERE datname = %s", (name,)).fetchone()
        assert comment and comment[0].startswith(f"lockplane: restore not finished: backup "
                                                 f"{m.id} "), comment
    # A refused restore (a non-empty target) drops nothing, not even that leftover.
    r = lockplane("backup", "restore", "--from", m.id, "--storage", store, "--to", seeded)
    assert r.code == 3 and "already has" in r.stderr and _db_exists(name), r.output
    # (the orphaned pg_restore's sessions end with the drop)
    r = lockplane("backup", "restore", "--from", m.id, "--storage", store, "--to", into)
    assert r.code == 0, r.output
    assert f"dropped database {name}, left unfinished by a killed restore of backup {m.id}" \
        in r.stderr, r.output
    assert _count(into, "users") == 2000 and _count(into, "waits") == 1
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as c:
        assert c.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                         "WHERE datname = %s", (name,)).fetchone() == (None,)
    # finished: the next restore elsewhere leaves it alone
    r = lockplane("backup", "restore", "--from", m.id, "--storage", store, "--to", into + "2")
    assert r.code == 0 and "left unfinished" not in r.stderr, r.output
    assert _db_exists(name)
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as c:
        for db in (name, f"{name}2"):
            c.execute(f'DROP DATABASE "{db}" WITH (FORCE)')


def test_password_never_printed_or_stored(seeded: str, store: str) -> None:
    # The local server trusts 127.0.0.1: any password connects, and must show nowhere.
    with_pw = seeded.replace("postgres@", "postgres:Sup3rSecret@")
    r = lockplane("backup", "create", "--target", with_pw, "--storage", store, "--json")
    assert r.code == 0, r.output
    assert "Sup3rSecret" not in r.output
    for p in Path(store).rglob("*.json"):
        assert "Sup3rSecret" not in p.read_text()
    assert "***" in json.loads(r.stdout)["database"]
    # The temporary database's server must then be given: the manifest has no password.
    r = lockplane("backup", "validate", "latest", "--storage", store)
    assert r.code == 2 and "--server" in _one_line(r.stderr)
    r = lockplane("backup", "validate", "latest", "--storage", store, "--server", with_pw)
    assert r.code == 0, r.output
    assert "Sup3rSecret" not in r.output


# ---------------------------------------------------------------------------- bad input
def test_unknown_backup_and_unreachable_storage(seeded: str, store: str,
                                                tmp_path: Path) -> None:
    create_backup(seeded, open_storage(store))
    r = lockplane("backup", "restore", "--from", "20990101T000000Z-ffffff", "--to", seeded,
                  "--storage", store)
    assert r.code == 2 and "unknown backup" in _one_line(r.stderr)
    r = lockplane("backup", "validate", "../etc", "--storage", store)
    assert r.code == 2 and _one_line(r.stderr)
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    r = lockplane("backup", "list", "--storage", str(not_a_dir))
    assert r.code == 2 and "not a directory" in _one_line(r.stderr)
    r = lockplane("backup", "list", "--storage", "ftp://host/x")
    assert r.code == 2 and _one_line(r.stderr)
    # a mistyped --storage is not 'no backups' (exit 0 before)
    r = lockplane("backup", "list", "--storage", str(tmp_path / "no-such-dir"))
    assert r.code == 2 and "no such directory" in _one_line(r.stderr)
    # An unreachable server: the line says which server and why, not only libpq's hint.
    down = seeded.replace(":5432/", f":{_free_port()}/", 1)
    for args in (["backup", "create", "--target", down, "--storage", store],
                 ["backup", "restore", "--from", "latest", "--to", down, "--storage", store],
                 ["backup", "query", "--from", "latest", "--server", down, "--storage", store,
                  "--sql", "SELECT 1"]):
        r = lockplane(*args)
        line = _one_line(r.stderr)
        assert r.code == 2 and "Connection refused" in line and "port" in line, line


def test_version_mismatch(seeded: str, store: str, tmp_path: Path, monkeypatch) -> None:
    out = subprocess.run(["pg_dump", "--version"], capture_output=True, text=True).stdout
    major, full = parse_tool_version(out)
    assert major == 15 and full.startswith("15.")
    assert tool_version(shutil.which("pg_dump") or "pg_dump").version == full
    fake = tmp_path / "bin"
    fake.mkdir()
    for tool in ("pg_dump", "pg_restore"):
        script = fake / tool
        script.write_text("#!/bin/sh\necho '" + tool + " (PostgreSQL) 16.4'\n")
        script.chmod(0o755)
    monkeypatch.setenv("LOCKPLANE_PG_BINDIR", str(fake))
    r = lockplane("backup", "create", "--target", seeded, "--storage", store)
    assert r.code == 2, r.output
    line = _one_line(r.stderr)
    assert "15.20" in line or "PostgreSQL 15" in line
    assert "16.4" in line
    assert not Path(store).exists() or not list_backups(open_storage(store))


@pytest.mark.parametrize("damage", ["flip", "truncate", "missing"])
def test_corrupted_backup_is_refused(seeded: str, store: str, damage: str,
                                     pg_dsn_factory) -> None:
    m = create_backup(seeded, open_storage(store))
    # It validated once (the last good backup); then its files rot.
    assert validate_backup(open_storage(store), m.id, server_dsn=seeded).ok
    assert read_status(open_storage(store), m.database).last_good_backup.id == m.id  # type: ignore[union-attr]
    data = max((f for f in m.files if f.path.endswith(".gz")), key=lambda f: f.size)
    path = Path(store) / m.id / "data" / data.path
    raw = bytearray(path.read_bytes())
    if damage == "flip":
        raw[len(raw) // 2] ^= 0x01
        path.write_bytes(raw)
    elif damage == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    else:
        path.unlink()
    r = lockplane("backup", "validate", m.id, "--storage", store, "--server", seeded)
    assert r.code == 3, r.output
    line = _one_line(r.stderr)
    assert data.path in line
    assert {"flip": "sha256", "truncate": "truncated", "missing": "missing"}[damage] in line
    # restore refuses before creating or touching its target
    target = pg_dsn_factory()
    gone = target + "_never"
    r = lockplane("backup", "restore", "--from", m.id, "--to", gone, "--storage", store)
    assert r.code == 3 and data.path in _one_line(r.stderr)
    assert not _db_exists(gone.rsplit("/", 1)[1])
    status = read_status(open_storage(store), m.database)
    assert not status.last_validation.ok  # type: ignore[union-attr]
    assert status.last_good_backup is None  # no longer good, and no older one was checked
    r = lockplane("backup", "status", "--storage", store)
    assert r.code == 0 and "last good none" in r.output and "FAILED" in r.output, r.output


def test_manifest_mismatch_fails_validation(seeded: str, store: str) -> None:
    m = create_backup(seeded, open_storage(store))
    mpath = Path(store) / m.id / "manifest.json"
    doc = json.loads(mpath.read_text())
    for t in doc["tables"]:
        if t["name"] == "users":
            t["rows"] += 1
    mpath.write_text(json.dumps(doc))
    r = lockplane("backup", "validate", m.id, "--storage", store, "--server", seeded)
    assert r.code == 1
    assert "public.users: 2000 rows, manifest says 2001" in r.stderr.splitlines()[-1]


# ---------------------------------------------------------------------------- SQLite
def test_sqlite_backup_restore_query_validate(sqlite_dsn: str, store: str,
                                              tmp_path: Path) -> None:
    import sqlite3

    path = sqlite_dsn.split(":///", 1)[1]
    with sqlite3.connect(path) as c:
        c.executescript("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, v REAL);"
                        "INSERT INTO t (name, v) VALUES ('a', 1.5), ('b', NULL), ('c', 3);")
    r = lockplane("backup", "create", "--target", sqlite_dsn, "--storage", store, "--json")
    assert r.code == 0, r.output
    m = json.loads(r.stdout)
    assert m["format"] == "sqlite-file" and m["tables"][0]["rows"] == 3
    v = lockplane("backup", "validate", m["id"], "--storage", store)
    assert v.code == 0, v.output
    q = lockplane("backup", "query", "--from", m["id"], "--storage", store,
                  "--sql", "SELECT name FROM t ORDER BY id", "--json")
    assert q.code == 0 and [x["name"] for x in json.loads(q.stdout)] == ["a", "b", "c"]
    out = tmp_path / "restored.db"
    r = lockplane("backup", "restore", "--from", m["id"], "--to", f"sqlite:///{out}",
                  "--storage", store)
    assert r.code == 0, r.output
    with sqlite3.connect(out) as c:
        assert c.execute("SELECT count(*) FROM t").fetchone()[0] == 3
    r = lockplane("backup", "restore", "--from", m["id"], "--to", sqlite_dsn, "--storage", store)
    assert r.code == 3 and "--force" in _one_line(r.stderr)


# ---------------------------------------------------------------------------- S3 (moto)
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def moto_server() -> str:
    port = _free_port()
    exe = Path(sys.executable).parent / "moto_server"
    proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def s3(moto_server: str, monkeypatch) -> str:
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    bucket = f"lp-{os.urandom(4).hex()}"
    boto3.client("s3", endpoint_url=moto_server).create_bucket(Bucket=bucket)
    return f"s3://{bucket}/nightly"


def test_s3_storage_round_trip(seeded: str, s3: str, pg_dsn_factory) -> None:
    r = lockplane("backup", "create", "--target", seeded, "--storage", s3, "-j", "2", "--json")
    assert r.code == 0, r.output
    m = json.loads(r.stdout)
    assert [b.id for b in list_backups(open_storage(s3))] == [m["id"]]
    report = validate_backup(open_storage(s3), m["id"], server_dsn=seeded, jobs=2)
    assert report.ok, report
    target = pg_dsn_factory()
    r = lockplane("backup", "restore", "--from", m["id"], "--to", target, "--storage", s3)
    assert r.code == 0, r.output
    assert _count(target, "users") == 2000
    status = read_status(open_storage(s3), m["database"])
    assert status.last_good_backup and status.last_good_backup.id == m["id"]
    # A flipped byte in S3 is caught after download.
    storage = open_storage(s3)
    assert isinstance(storage, S3Storage)
    key = f"{storage.prefix}/{m['id']}/data/toc.dat"
    body = bytearray(storage.client.get_object(Bucket=storage.bucket, Key=key)["Body"].read())
    body[10] ^= 0xFF
    storage.client.put_object(Bucket=storage.bucket, Key=key, Body=bytes(body))
    r = lockplane("backup", "validate", m["id"], "--storage", s3, "--server", seeded)
    assert r.code == 3 and "toc.dat: sha256 mismatch" in _one_line(r.stderr)


def test_s3_unreachable_and_missing_bucket(seeded: str, s3: str, monkeypatch) -> None:
    r = lockplane("backup", "list", "--storage", "s3://no-such-bucket-lp/x")
    assert r.code == 2 and "no-such-bucket-lp" in _one_line(r.stderr)
    assert "no such bucket" in _one_line(r.stderr)  # not a bare '404'
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_free_port()}")
    r = lockplane("backup", "create", "--target", seeded, "--storage", s3)
    assert r.code == 2 and "cannot reach the bucket" in _one_line(r.stderr)


# ---------------------------------------------------------------------------- apply hook
def test_apply_takes_a_backup_before_a_dangerous_plan(seeded: str, tmp_path: Path) -> None:
    (tmp_path / "schema.sql").write_text(
        "CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL, born date, "
        "seen timestamptz DEFAULT now(), score float8, blob bytea);\n"
        "CREATE TABLE orders (id serial PRIMARY KEY, user_id bigint REFERENCES users, "
        "total numeric);\n")  # the view is gone: not dangerous
    (tmp_path / "lockplane.toml").write_text(
        "[environments.staging]\n"
        f'database_url = "{seeded}"\n'
        'schema_path = "schema.sql"\n'
        'backup_before = "dangerous"\n'
        'backup_storage = "backups"\n')
    r = lockplane("apply", "--target-environment", "staging", "--auto-approve",
                  "--skip-shadow", cwd=tmp_path)
    assert r.code == 0, r.output
    assert not list_backups(open_storage(str(tmp_path / "backups")))  # nothing dangerous

    (tmp_path / "schema.sql").write_text(
        "CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL, born date, "
        "seen timestamptz DEFAULT now(), score float8, blob bytea);\n")  # drops orders
    r = lockplane("apply", "--target-environment", "staging", "--auto-approve",
                  "--safety", "permissive", "--skip-shadow", cwd=tmp_path)
    assert r.code == 0, r.output
    (b,) = list_backups(open_storage(str(tmp_path / "backups")))
    assert b.reason and b.reason.startswith("before apply of plan")
    assert b.table("public.orders") and b.table("public.orders").rows == 500  # type: ignore[union-attr]
    assert b.history and b.history.migrations_applied == 1
    assert "taking a backup" in r.stderr

    # One migration later, validation says the backup is behind the live database.
    v = lockplane("backup", "validate", b.id, "--target-environment", "staging",
                  "--server", seeded, cwd=tmp_path)
    assert v.code == 0, v.output
    assert "1 migration(s) behind" in v.stderr
    assert "differs from the desired schema" in v.stderr

    # lockplane.toml's URL gets require_auth (a repository file names it), which the
    # client tools of PostgreSQL 15 (libpq 15) reject: backup create still runs, and the
    # database is the same one whether named there or on the command line.
    r = lockplane("backup", "create", "--target-environment", "staging", cwd=tmp_path)
    assert r.code == 0, r.output
    store = open_storage(str(tmp_path / "backups"))
    made = list_backups(store)
    assert len(made) == 2 and all("require_auth" not in m.database for m in made)
    assert [m.id for m in list_backups(store, seeded)] == [m.id for m in made]
    r = lockplane("recover", "--target", seeded, "--to", "now", "--storage",
                  str(tmp_path / "backups"), "--dry-run", cwd=tmp_path)
    assert r.code == 0 and made[0].id in r.stderr, r.output
    assert read_status(store, seeded).last_backup.id == made[0].id  # type: ignore[union-attr]


def test_tools_get_require_auth_or_no_ambient_password(monkeypatch) -> None:
    """A URL with require_auth and no password: a tool whose libpq takes the option gets
    it; one whose libpq is older (this machine's PostgreSQL 15 tools) gets neither the
    option nor an ambient password to send."""
    from lockplane.dialects.postgres.pgtools import conninfo_and_env, takes_require_auth

    monkeypatch.setenv("PGPASSWORD", "ambient-pw")
    url = "postgresql://u@127.0.0.1:5432/db?require_auth=!password,!md5"
    tool = shutil.which("pg_dump") or "pg_dump"
    conninfo, env = conninfo_and_env(url, tool=tool)
    if takes_require_auth(tool):
        assert "require_auth" in conninfo and env["PGPASSWORD"] == "ambient-pw"
    else:
        assert "require_auth" not in conninfo
        assert "PGPASSWORD" not in env and env["PGPASSFILE"] == os.devnull
    # A URL with its own password: that password, whatever the environment holds.
    _, env = conninfo_and_env("postgresql://u:own@127.0.0.1/db", tool=tool)
    assert env["PGPASSWORD"] == "own"


def test_engine_rejects_bad_jobs(seeded: str, store: str) -> None:
    with pytest.raises(BadInput):
        create_backup(seeded, open_storage(store), jobs=0)


# ---------------------------------------------------------------------------- flows
def test_backup_flows(prefect_api: str, seeded: str, store: str) -> None:
    from blocks.backup_storage import BackupStorage
    from flows.backup import backup_create, backup_validate
    from lockplane.backup import BackupCorrupt

    name = f"bk-{os.urandom(4).hex()}"
    BackupStorage(url=store).save(name)
    made = backup_create(target=seeded, storage=name, jobs=2)
    assert made["rows"] == 2500
    checked = backup_validate(target=seeded, storage=name)  # the newest, by default
    assert checked["ok"] and checked["backup_id"] == made["backup_id"] and checked["rto_s"] > 0
    status = read_status(open_storage(store), seeded)
    assert status.last_good_backup and status.last_good_backup.id == made["backup_id"]
    assert status.last_validation and status.last_validation.ok
    # A damaged backup fails the run, and the failure is what the state remembers.
    toc = Path(store) / made["backup_id"] / "data" / "toc.dat"
    toc.write_bytes(toc.read_bytes()[:-10])
    with pytest.raises(BackupCorrupt):
        backup_validate(target=seeded, storage=name, backup_id=made["backup_id"])
    status = read_status(open_storage(store), seeded)
    assert status.last_validation and not status.last_validation.ok
    assert status.last_good_backup is None  # it passed before, but is not good any more
