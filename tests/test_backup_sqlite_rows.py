"""SQLite: compare a backup with the live file, extract its rows, merge them back.

The story of test_backup_merge.py on a SQLite file, end to end through the CLI: rows and
a backup, a bad migration that deletes rows, a column renamed by a recorded multi-phase
rename, a column dropped, one added with a default, while the file keeps taking writes
(also during the merge); then the lost rows come back, a conflict in each mode. A table
without a primary key is compared and merged by rowid."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from lockplane.backup import open_storage
from lockplane.backup.extract import MergeOptions, open_merge
from tests.cli_inprocess import lockplane
from tests.test_backup_merge import _one_line, _rename_email

SEED = """
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL, name TEXT, legacy TEXT,
                    score INTEGER);
WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 200)
INSERT INTO users SELECT n, 'u' || n || '@x.org', 'name ' || n, 'old ' || n, n FROM g;
CREATE TABLE events (kind TEXT, n INTEGER);
INSERT INTO events VALUES ('a', 1), ('b', 2), ('c', 3), ('d', 4);
"""


def _q(path: str, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as c:
        return c.execute(sql).fetchall()


def _exec(path: str, script: str) -> None:
    c = sqlite3.connect(path)
    try:
        c.executescript(script)
    finally:
        c.close()


def _merges(path: str) -> list[tuple[Any, ...]]:
    """The merges recorded among the backfills' checkpoints."""
    if not _q(path, "SELECT 1 FROM sqlite_master WHERE name = '_lockplane_backfills'"):
        return []
    return _q(path, "SELECT id FROM _lockplane_backfills WHERE spec LIKE '%restore rows%'")


@pytest.fixture
def story(sqlite_dsn: str, tmp_path: Path) -> dict[str, Any]:
    path = sqlite_dsn.split(":///", 1)[1]
    _exec(path, SEED)
    store = str(tmp_path / "backups")
    r = lockplane("backup", "create", "--target", sqlite_dsn, "--storage", store, "--json")
    assert r.code == 0, r.output
    backup = json.loads(r.stdout)["id"]
    # The bad migration, and the schema moving on.
    _exec(path, "DELETE FROM users WHERE id % 10 = 0; DELETE FROM events WHERE n >= 3;")
    migration = _rename_email(sqlite_dsn, "sqlite")
    _exec(path, """
        ALTER TABLE users DROP COLUMN legacy;
        ALTER TABLE users ADD COLUMN tier TEXT NOT NULL DEFAULT 'free';
    """)
    # The application keeps writing: new rows, changed rows, a lost key reused.
    _exec(path, """
        WITH RECURSIVE g(n) AS (SELECT 1001 UNION ALL SELECT n + 1 FROM g WHERE n < 1010)
        INSERT INTO users (id, email_address, name, score, tier)
          SELECT n, 'new' || n || '@x.org', 'new', n, 'pro' FROM g;
        UPDATE users SET name = 'changed' WHERE id IN (1, 2, 3);
        INSERT INTO users (id, email_address, name, score) VALUES (20, 'reused@x.org', 'reused', 0);
        INSERT INTO events VALUES ('e', 5);
    """)
    return {"dsn": sqlite_dsn, "path": path, "store": store, "backup": backup,
            "migration": migration}


def test_compare_by_key_and_by_rowid(story: dict[str, Any]) -> None:
    r = lockplane("backup", "compare", "--target", story["dsn"], story["backup"],
                  "--storage", story["store"], "--json")
    assert r.code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["format"] == "lockplane-backup-compare/1" and doc["migrations_since"] >= 1
    tables = {t["table"]: t for t in doc["tables"]}
    users = tables["users"]
    assert (users["added"], users["deleted"], users["changed"]) == (10, 19, 4), users
    assert users["words"] == "users: 10 rows newer than the backup, 19 deleted since, 4 changed"
    assert users["key"] == ["id"] and "email_address" in users["columns_compared"]
    assert users["sample_deleted"][0] == ["10"]
    # No primary key: by rowid, and the report says so. SQLite gave the row inserted
    # since rowid 3 again (max + 1): by rowid, row 3 changed and row 4 was deleted.
    events = tables["events"]
    assert events["key"] == ["rowid"] and "rowid" in events["note"]
    assert (events["added"], events["deleted"], events["changed"]) == (0, 1, 1)
    messages = " ".join(c["message"] for c in doc["schema"]["changes"])
    assert "tier" in messages and "legacy" in messages
    human = lockplane("backup", "compare", "--target", story["dsn"], story["backup"],
                      "--storage", story["store"])
    assert human.code == 0 and "users: 10 rows newer than the backup, 19 deleted since" \
        in human.stderr
    # One row is a row.
    assert events["words"] == "events: 0 rows newer than the backup, 1 deleted since, 1 changed"


def test_compare_says_one_row(sqlite_dsn: str, tmp_path: Path) -> None:
    path = sqlite_dsn.removeprefix("sqlite:///")
    with sqlite3.connect(path) as c:
        c.executescript("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);"
                        "CREATE TABLE gone (id INTEGER PRIMARY KEY);"
                        "INSERT INTO t VALUES (1, 'a'); INSERT INTO gone VALUES (1);")
    store = str(tmp_path / "backups")
    assert lockplane("backup", "create", "--target", sqlite_dsn, "--storage", store).code == 0
    with sqlite3.connect(path) as c:
        c.executescript("INSERT INTO t VALUES (2, 'b'); DROP TABLE gone;")
    r = lockplane("backup", "compare", "--target", sqlite_dsn, "latest", "--storage", store)
    assert r.code == 0, r.output
    assert "t: 1 row newer than the backup, 0 deleted since, 0 changed" in r.stderr, r.output
    assert "gone: dropped since the backup (1 row in the backup)" in r.stderr, r.output


def test_extract_writes_upserts_that_fit_today(story: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "rows.sql"
    r = lockplane("backup", "extract", "--from", story["backup"], "--table", "users",
                  "--where", "id % 10 = 0", "--target", story["dsn"], "--storage",
                  story["store"], "-o", str(out))
    assert r.code == 0, r.output
    text = out.read_text()
    assert '"email_address"' in text and '"legacy"' not in text and '"tier"' not in text
    assert "ON CONFLICT DO NOTHING" in text and text.count("'u") == 20
    assert "renamed to email_address" in text
    _exec(story["path"], text)
    assert _q(story["path"], "SELECT count(*) FROM users")[0][0] == 200 - 20 + 10 + 20
    assert _q(story["path"], "SELECT email_address, tier, score FROM users WHERE id = 30") == [
        ("u30@x.org", "free", 30)]
    assert _q(story["path"], "SELECT name FROM users WHERE id = 20")[0][0] == "reused"
    r = lockplane("backup", "extract", "--from", story["backup"], "--table", "users",
                  "--on-conflict", "update", "--where", "id <= 3", "--target", story["dsn"],
                  "--storage", story["store"])
    assert r.code == 0, r.output
    assert 'ON CONFLICT ("id") DO UPDATE SET' in r.stdout and "IS NOT" in r.stdout
    _exec(story["path"], r.stdout)
    assert [x[0] for x in _q(story["path"], "SELECT name FROM users WHERE id <= 3")] == [
        "name 1", "name 2", "name 3"]


def test_merge_each_mode_while_the_file_takes_writes(story: dict[str, Any]) -> None:
    dsn, path, store, b = story["dsn"], story["path"], story["store"], story["backup"]
    args = ("--from", b, "--table", "users", "--target", dsn, "--storage", store)
    r = lockplane("backup", "merge", *args)  # not a tty, no --auto-approve: nothing done
    assert r.code == 2 and "--auto-approve" in _one_line(r.stderr)
    assert "would insert 19, update 0, skip 181" in r.stderr
    # fail: refused (exit 3), nothing written
    r = lockplane("backup", "merge", *args, "--on-conflict", "fail", "--auto-approve")
    assert r.code == 3 and "already exist" in _one_line(r.stderr)
    assert _q(path, "SELECT count(*) FROM users")[0][0] == 191
    assert not _merges(path)
    # skip, in small batches, while another connection keeps inserting
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:
        c = sqlite3.connect(path, timeout=10)
        n = 5000
        while not stop.is_set():
            c.execute("INSERT INTO users (id, email_address, name) VALUES (?, ?, 'live')",
                      (n, f"w{n}@x.org"))
            c.commit()
            written.append(n)
            n += 1
            time.sleep(0.002)  # an application's pace, not a loop that starves readers
        c.close()

    w = threading.Thread(target=writer, daemon=True)
    w.start()
    try:
        r = lockplane("backup", "merge", *args, "--auto-approve", "--batch-size", "2", "--json")
    finally:
        stop.set()
        w.join(10)
    assert r.code == 0, r.output
    res = json.loads(r.stdout)["result"]
    assert (res["inserted"], res["updated"], res["skipped"]) == (19, 0, 181), res
    assert written and _q(path, "SELECT count(*) FROM users WHERE name = 'live'")[0][0] \
        == len(written)
    assert _q(path, "SELECT count(*) FROM users")[0][0] == 210 + len(written)
    assert _q(path, "SELECT email_address, tier, score FROM users WHERE id = 100") == [
        ("u100@x.org", "free", 100)]
    assert [x[0] for x in _q(path, "SELECT name FROM users WHERE id IN (1, 2, 3, 20) "
                                   "ORDER BY id")] == ["changed"] * 3 + ["reused"]
    r = lockplane("backup", "merge", *args, "--auto-approve")  # again: nothing to apply
    assert r.code == 0 and "already done" in r.stderr, r.output
    # update: values changed since go back to the backup's
    r = lockplane("backup", "merge", *args, "--on-conflict", "update", "--where", "id <= 20",
                  "--auto-approve", "--json")
    assert r.code == 0, r.output
    res = json.loads(r.stdout)["result"]
    assert (res["inserted"], res["updated"]) == (0, 4), res
    assert [x[0] for x in _q(path, "SELECT name FROM users WHERE id IN (1, 2, 3, 20) "
                                   "ORDER BY id")] == ["name 1", "name 2", "name 3", "name 20"]
    # the table without a primary key: its lost rows come back by rowid
    r = lockplane("backup", "merge", "--from", b, "--table", "events", "--target", dsn,
                  "--storage", store, "--auto-approve", "--json")
    assert r.code == 0, r.output
    assert json.loads(r.stdout)["result"]["inserted"] == 1  # rowid 3 is taken: skipped
    assert _q(path, "SELECT rowid, kind FROM events ORDER BY rowid") == [
        (1, "a"), (2, "b"), (3, "e"), (4, "d")]
    st = lockplane("backfill", "status", "--target", dsn, "--json")
    assert st.code == 0 and "restore rows" in st.stdout


def test_merge_resumes_after_a_crash(story: dict[str, Any]) -> None:
    path, store, b = story["path"], story["store"], story["backup"]
    opts = MergeOptions(batch_size=3, max_batch_size=3)
    seen: list[int] = []

    def crash(done: int, total: int) -> None:
        seen.append(done)
        if len(seen) == 4:
            raise KeyboardInterrupt  # the process dies between two batches

    with open_merge(open_storage(store), b, story["dsn"], "users", where="id % 10 = 0",
                    on_conflict="update") as rm:
        assert rm.preview.status == "new" and rm.preview.insert == 19
        with pytest.raises(KeyboardInterrupt):
            rm.run(opts, on_batch=crash)
        merge_id = rm.id
    assert _q(path, "SELECT count(*) FROM users")[0][0] == 191 + 12 - 1  # 20 was there
    _exec(path, "UPDATE users SET name = 'touched after' WHERE id = 10")  # merged already
    with open_merge(open_storage(store), b, story["dsn"], "users", where="id % 10 = 0",
                    on_conflict="update") as rm:
        assert rm.id == merge_id and rm.preview.status == "resumable"
        assert rm.preview.done_before == 12 and rm.preview.insert == 8
        r = rm.run(opts)
    assert r.status == "done" and r.inserted == 8 and r.rows_done == 20
    assert _q(path, "SELECT count(*) FROM users")[0][0] == 210
    assert _q(path, "SELECT name FROM users WHERE id = 10")[0][0] == "touched after"


def test_bad_input_touches_nothing(story: dict[str, Any], tmp_path: Path) -> None:
    dsn, path, store, b = story["dsn"], story["path"], story["store"], story["backup"]
    base = ("--target", dsn, "--storage", store)
    before = _q(path, "SELECT count(*), sum(length(name)) FROM users")
    cases = [
        (("--from", b, "--table", "nosuch"), "does not exist"),
        (("--from", b, "--table", "users", "--where", "id = 1; DROP TABLE users"), "--where"),
        (("--from", b, "--table", "users", "--where", "nosuchcol > 1"), "nosuchcol"),
        (("--from", b, "--table", "users", "--where", "id = 1 /* c */"), "comment"),
        (("--from", "20990101T000000Z-ffffff", "--table", "users"), "unknown backup"),
        (("--from", b, "--table", "users", "--on-conflict", "replace"), "--on-conflict"),
        (("--from", b, "--table", "other.users"), "one schema"),
    ]
    for extra, words in cases:
        for cmd in ("merge", "extract"):
            argv = [cmd, *extra, *base, *(["--auto-approve"] if cmd == "merge" else [])]
            r = lockplane("backup", *argv)
            assert r.code == 2, (argv, r.output)
            assert words in _one_line(r.stderr), (argv, r.stderr)
    missing = f"sqlite:///{tmp_path / 'nosuch.db'}"
    r = lockplane("backup", "merge", "--from", b, "--table", "users", "--target", missing,
                  "--storage", store, "--auto-approve")
    assert r.code == 2 and "not found" in _one_line(r.stderr)
    assert not (tmp_path / "nosuch.db").exists()
    assert _q(path, "SELECT count(*), sum(length(name)) FROM users") == before
    assert not _merges(path)


def test_mysql_has_no_backups_yet(mysql_dsn: str, tmp_path: Path) -> None:
    for argv in (("backup", "create", "--target", mysql_dsn),
                 ("backup", "compare", "--target", mysql_dsn, "latest")):
        r = lockplane(*argv, "--storage", str(tmp_path / "b"))
        assert r.code == 2, r.output
        line = _one_line(r.stderr)
        assert "backups of mysql databases are not supported yet" in line, line


def test_restore_rows_flow_on_sqlite(prefect_api: str, story: dict[str, Any]) -> None:
    """The restore-rows flow's engine path on a SQLite file: stage, diff, approval, merge."""
    import os
    import secrets

    import flows.restore_rows as rr
    from blocks.backup_storage import BackupStorage
    from tests.phase_support import artifacts, wait_for_pause

    dsn, path, b = story["dsn"], story["path"], story["backup"]
    block = f"bk-{os.urandom(4).hex()}"
    BackupStorage(url=story["store"]).save(block)
    name = f"restore-{secrets.token_hex(4)}"
    state: dict[str, Any] = {}

    def run() -> None:
        state["s"] = rr.restore_rows.with_options(flow_run_name=name)(
            target=dsn, storage=block, table="users", backup_id=b, approval_timeout_s=120,
            return_state=True)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    with open_merge(open_storage(story["store"]), b, dsn, "users") as rm:
        key = f"approve-restore-{rm.id}"
    run_id = wait_for_pause(name, key, worker=worker)
    preview = next(v for k, v in artifacts(run_id).items() if k.startswith("restore-rows-"))
    assert "would insert" in preview and "19" in preview
    assert _q(path, "SELECT count(*) FROM users")[0][0] == 191  # nothing before approval
    r = lockplane("approve", str(run_id), "--approver", "alice")
    assert r.code == 0, r.output
    worker.join(120)
    assert not worker.is_alive()
    out = state["s"].result()
    assert out["inserted"] == 19 and out["updated"] == 0
    assert _q(path, "SELECT count(*) FROM users")[0][0] == 210
