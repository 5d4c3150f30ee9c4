"""Rows back from a backup: compare, extract and merge (CLI and the restore-rows flow).

The story: a table with rows, a backup, a bad migration that deletes rows, a column
renamed by a recorded multi-phase rename, a column dropped, one added with a default, a
type widened, while the database keeps taking writes; then the lost rows come back."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from lockplane.backup import create_backup, open_storage
from lockplane.backup.extract import MergeOptions, open_merge
from lockplane.execute import ApplyOptions
from lockplane.multiphase import plan_multiphase, runner
from lockplane.multiphase.explicit import explicit_target
from lockplane.sources import SourceContext, canonicalize, load_schema
from tests.cli_inprocess import lockplane
from tests.conftest import (
    _create_pg_database,
    _drop_later,
    _new_pg_database,
    _pg_dsn_for,
    pg_exec,
)

SEED = """
CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL, name text, legacy text,
                    score integer);
INSERT INTO users SELECT g, 'u' || g || '@x.org', 'name ' || g, 'old ' || g, g
  FROM generate_series(1, 200) g;
"""
LOST = [i for i in range(10, 201, 10)]  # deleted by the bad migration
NO_SHADOW = ApplyOptions(skip_shadow=True)


def _q(dsn: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as c:
        return c.execute(sql).fetchall()


def _one_line(text: str) -> str:
    assert "Traceback" not in text, text
    lines = [ln for ln in text.strip().splitlines() if ln.startswith(("error:", "usage:"))]
    assert len(lines) == 1, text
    return lines[0]


def _rename_email(dsn: str, dialect: str = "postgres") -> str:
    """email -> email_address through every phase of a multi-phase migration."""
    ctx = SourceContext(dialect=dialect, server_dsn=dsn)
    before = load_schema(dsn, ctx)
    after = canonicalize(explicit_target(before, "rename_column", "users", "email",
                                         "email_address", None), ctx, where="test")
    mp = plan_multiphase(before, after, server_dsn=dsn, table="users")
    for phase in mp.phases:
        n = phase.phase_number
        if n > 1 and mp.phase(n - 1).requires_code_deploy:
            runner.approve(mp, dsn, n - 1, "tester", "deployed")
        runner.apply_phase(mp, dsn, n, actor="tester", options=NO_SHADOW)
    return mp.id


def _tell_story(pg_dsn: str, store: str) -> dict[str, Any]:
    m = create_backup(pg_dsn, open_storage(store))
    # The bad migration, and the schema moving on.
    pg_exec(pg_dsn, "DELETE FROM users WHERE id % 10 = 0")
    migration = _rename_email(pg_dsn)
    pg_exec(pg_dsn, """
        ALTER TABLE users DROP COLUMN legacy;
        ALTER TABLE users ADD COLUMN tier text NOT NULL DEFAULT 'free';
        ALTER TABLE users ALTER COLUMN score TYPE bigint;
    """)
    # The application keeps writing: new rows, changed rows, a lost key reused.
    pg_exec(pg_dsn, """
        INSERT INTO users (id, email_address, name, score, tier)
          SELECT g, 'new' || g || '@x.org', 'new', g, 'pro' FROM generate_series(1001, 1010) g;
        UPDATE users SET name = 'changed' WHERE id IN (1, 2, 3);
        INSERT INTO users (id, email_address, name, score) VALUES (20, 'reused@x.org', 'reused', 0);
    """)
    return {"dsn": pg_dsn, "store": store, "backup": m.id, "migration": migration}


@pytest.fixture(scope="module")
def told(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The story, told once (~4 s: a backup, a multi-phase rename, writes) on a database
    no test uses: each test gets a copy of it (CREATE DATABASE ... TEMPLATE) and of the
    backup storage, so the tests still cannot see each other's merges."""
    name = _new_pg_database()
    dsn = _pg_dsn_for(name)
    try:
        pg_exec(dsn, SEED)
        store = str(tmp_path_factory.mktemp("story") / "backups")
        yield {**_tell_story(dsn, store), "template": name}
    finally:
        _drop_later(name)


@pytest.fixture
def story(told: dict[str, Any], tmp_path: Path) -> Iterator[dict[str, Any]]:
    name = _create_pg_database(template=told["template"])
    store = str(tmp_path / "backups")
    shutil.copytree(told["store"], store)
    try:
        yield {**told, "dsn": _pg_dsn_for(name), "store": store}
    finally:
        _drop_later(name)


def test_compare_says_what_changed(story: dict[str, Any]) -> None:
    r = lockplane("backup", "compare", "--target", story["dsn"], story["backup"],
                  "--storage", story["store"], "--json")
    assert r.code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["format"] == "lockplane-backup-compare/1"
    (users,) = [t for t in doc["tables"] if t["table"] == "public.users"]
    # 19 lost rows deleted (20 came back as a new row with other values: changed),
    # 10 new rows, rows 1-3 renamed, row 20 reused: 4 changed.
    assert users["deleted"] == 19 and users["added"] == 10 and users["changed"] == 4, users
    assert users["words"] == ("public.users: 10 rows newer than the backup, 19 deleted "
                              "since, 4 changed")
    assert "email_address" in users["columns_compared"]  # followed the recorded rename
    messages = " ".join(c["message"] for c in doc["schema"]["changes"])
    assert "tier" in messages and "legacy" in messages
    human = lockplane("backup", "compare", "--target", story["dsn"], story["backup"],
                      "--storage", story["store"])
    assert human.code == 0 and "19 deleted since" in human.stderr


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
    psql_like = psycopg.connect(story["dsn"], autocommit=True)
    with psql_like:
        psql_like.execute(text)
    assert _q(story["dsn"], "SELECT count(*) FROM users")[0][0] == 200 - 20 + 10 + 20
    assert _q(story["dsn"], "SELECT email_address, tier, score FROM users WHERE id = 30") == [
        ("u30@x.org", "free", 30)]
    assert _q(story["dsn"], "SELECT name FROM users WHERE id = 20")[0][0] == "reused"
    # update mode writes ON CONFLICT (id) DO UPDATE, only where values differ
    r = lockplane("backup", "extract", "--from", story["backup"], "--table", "public.users",
                  "--on-conflict", "update", "--where", "id <= 3", "--target", story["dsn"],
                  "--storage", story["store"])
    assert r.code == 0, r.output
    assert 'ON CONFLICT ("id") DO UPDATE SET' in r.stdout and "IS DISTINCT FROM" in r.stdout


def test_merge_skip_update_fail(story: dict[str, Any]) -> None:
    dsn, store, b = story["dsn"], story["store"], story["backup"]
    args = ("--from", b, "--table", "users", "--target", dsn, "--storage", store)
    # Without --auto-approve on a non-tty stdin: exit 2, nothing touched.
    r = lockplane("backup", "merge", *args)
    assert r.code == 2 and "--auto-approve" in _one_line(r.stderr)
    assert _q(dsn, "SELECT count(*) FROM users")[0][0] == 191
    assert "would insert 19, update 0, skip 181" in r.stderr
    # fail mode refuses: rows of the backup exist live
    r = lockplane("backup", "merge", *args, "--on-conflict", "fail", "--auto-approve")
    assert r.code == 3 and "already exist" in _one_line(r.stderr)
    assert _q(dsn, "SELECT count(*) FROM users")[0][0] == 191
    # skip: the lost rows come back; rows written since are untouched
    r = lockplane("backup", "merge", *args, "--auto-approve", "--json")
    assert r.code == 0, r.output
    res = json.loads(r.stdout)["result"]
    assert (res["inserted"], res["updated"], res["skipped"]) == (19, 0, 181)
    assert _q(dsn, "SELECT count(*) FROM users")[0][0] == 210
    assert _q(dsn, "SELECT email_address, tier, score FROM users WHERE id = 100") == [
        ("u100@x.org", "free", 100)]
    assert [r[0] for r in _q(dsn, "SELECT name FROM users WHERE id IN (1, 2, 3, 20) "
                                  "ORDER BY id")] == ["changed"] * 3 + ["reused"]
    assert _q(dsn, "SELECT count(*) FROM users WHERE id > 1000 AND tier = 'pro'")[0][0] == 10
    # Running it again applies nothing: the checkpoint says done.
    r = lockplane("backup", "merge", *args, "--auto-approve")
    assert r.code == 0 and "already done" in r.stderr, r.output
    # update: changed values go back to the backup's (only rows that differ are written)
    r = lockplane("backup", "merge", *args, "--on-conflict", "update", "--where", "id <= 20",
                  "--auto-approve", "--json")
    assert r.code == 0, r.output
    res = json.loads(r.stdout)["result"]
    assert (res["inserted"], res["updated"]) == (0, 4), res
    assert [r[0] for r in _q(dsn, "SELECT name FROM users WHERE id IN (1, 2, 3, 20) "
                                  "ORDER BY id")] == ["name 1", "name 2", "name 3", "name 20"]
    assert _q(dsn, "SELECT email_address FROM users WHERE id = 20")[0][0] == "u20@x.org"
    assert _q(dsn, "SELECT count(*) FROM users")[0][0] == 210
    # the merges show up among the backfills' checkpoints
    st = lockplane("backfill", "status", "--target", dsn, "--json")
    assert st.code == 0 and "restore rows" in st.stdout


def test_merge_resumes_after_a_crash(story: dict[str, Any]) -> None:
    dsn, store, b = story["dsn"], story["store"], story["backup"]
    opts = MergeOptions(batch_size=3, max_batch_size=3)
    seen: list[int] = []

    def crash(done: int, total: int) -> None:
        seen.append(done)
        if len(seen) == 4:
            raise KeyboardInterrupt  # the process dies between two batches

    with open_merge(open_storage(store), b, dsn, "users", where="id % 10 = 0",
                    on_conflict="update") as rm:
        assert rm.preview.status == "new" and rm.preview.insert == 19
        with pytest.raises(KeyboardInterrupt):
            rm.run(opts, on_batch=crash)
        merge_id = rm.id
    assert _q(dsn, "SELECT count(*) FROM users")[0][0] == 191 + 12 - 1  # 20 was there
    pg_exec(dsn, "UPDATE users SET name = 'touched after' WHERE id = 10")  # merged already
    with open_merge(open_storage(store), b, dsn, "users", where="id % 10 = 0",
                    on_conflict="update") as rm:
        assert rm.id == merge_id and rm.preview.status == "resumable"
        assert rm.preview.done_before == 12 and rm.preview.insert == 8
        r = rm.run(opts)
    assert r.status == "done" and r.inserted == 8 and r.rows_done == 20
    assert _q(dsn, "SELECT count(*) FROM users")[0][0] == 210
    # A batch already merged is not applied again (row 10 keeps its later change).
    assert _q(dsn, "SELECT name FROM users WHERE id = 10")[0][0] == "touched after"


def test_merge_in_the_middle_of_a_rename(pg_dsn: str, tmp_path: Path) -> None:
    """Mid-migration (phase 1 of email -> email_address applied: both columns exist, a sync
    trigger copies one into the other) the rows go in under the old name, and the note
    says the trigger fills the new one: it does not call it a column added since."""
    pg_exec(pg_dsn, SEED)
    store = str(tmp_path / "backups")
    m = create_backup(pg_dsn, open_storage(store))
    pg_exec(pg_dsn, "DELETE FROM users WHERE id IN (10, 20)")
    ctx = SourceContext(dialect="postgres", server_dsn=pg_dsn)
    before = load_schema(pg_dsn, ctx)
    after = canonicalize(explicit_target(before, "rename_column", "users", "email",
                                         "email_address", None), ctx, where="test")
    mp = plan_multiphase(before, after, server_dsn=pg_dsn, table="users")
    runner.apply_phase(mp, pg_dsn, 1, actor="tester", options=NO_SHADOW)
    assert _q(pg_dsn, "SELECT count(*) FROM information_schema.columns WHERE table_name = "
                      "'users' AND column_name IN ('email', 'email_address')")[0][0] == 2
    r = lockplane("backup", "extract", "--from", m.id, "--table", "users", "--where",
                  "id <= 20", "--target", pg_dsn, "--storage", store)
    assert r.code == 0, r.output
    assert '"email"' in r.stdout and '"email_address"' not in r.stdout.split("INSERT", 1)[1]
    assert "email_address was added since the backup" not in r.output, r.output
    assert "its sync trigger fills it from email" in r.output, r.output
    r = lockplane("backup", "merge", "--from", m.id, "--table", "users", "--where", "id <= 20",
                  "--target", pg_dsn, "--storage", store, "--auto-approve")
    assert r.code == 0, r.output
    assert _q(pg_dsn, "SELECT id, email, email_address FROM users WHERE id IN (10, 20) "
                      "ORDER BY id") == [(10, "u10@x.org", "u10@x.org"),
                                         (20, "u20@x.org", "u20@x.org")]


def test_merge_killed_mid_run_resumes(pg_dsn: str, tmp_path: Path) -> None:
    """kill -9 of the CLI between batches (no finally, no cleanup), then the same merge:
    it resumes after the last committed batch and applies none twice."""
    import subprocess
    import sys
    import time

    pg_exec(pg_dsn, "CREATE TABLE items (id int PRIMARY KEY, v text);"
                    "INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, 3000) g")
    store = str(tmp_path / "backups")
    m = create_backup(pg_dsn, open_storage(store))
    # The bad migration; and inserts made slow (2 ms a row) so the run is still going
    # when it is killed.
    pg_exec(pg_dsn, """
        DELETE FROM items;
        CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS
          'BEGIN PERFORM pg_sleep(0.002); RETURN NEW; END';
        CREATE TRIGGER slow BEFORE INSERT ON items FOR EACH ROW EXECUTE FUNCTION slow();
    """)
    args = [sys.executable, "-m", "lockplane", "backup", "merge", "--from", m.id,
            "--table", "items", "--target", pg_dsn, "--storage", store, "--auto-approve",
            "--batch-size", "100"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if _q(pg_dsn, "SELECT count(*) FROM items")[0][0] >= 300:
                break
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
    done = _q(pg_dsn, "SELECT count(*) FROM items")[0][0]
    assert 300 <= done < 3000, done
    pg_exec(pg_dsn, "DROP TRIGGER slow ON items;"
                    "UPDATE items SET v = 'touched after the crash' WHERE id = 1")
    r = lockplane(*args[3:])
    assert r.code == 0, r.output
    assert "resuming" in r.stderr, r.output
    assert _q(pg_dsn, "SELECT count(*), count(DISTINCT id) FROM items")[0] == (3000, 3000)
    assert _q(pg_dsn, "SELECT v FROM items WHERE id = 1")[0][0] == "touched after the crash"
    r = lockplane(*args[3:])
    assert r.code == 0 and "already done" in r.stderr, r.output


def test_bad_input_touches_nothing(story: dict[str, Any]) -> None:
    dsn, store, b = story["dsn"], story["store"], story["backup"]
    base = ("--target", dsn, "--storage", store, "--auto-approve")
    before = _q(dsn, "SELECT count(*), sum(hashtext(u::text)) FROM users u")
    cases = [
        (("--from", b, "--table", "nosuch"), "does not exist"),
        (("--from", b, "--table", "users", "--where", "id = 1; DROP TABLE users"), "--where"),
        (("--from", b, "--table", "users", "--where", "nosuchcol > 1"), "nosuchcol"),
        (("--from", b, "--table", "users", "--where", "pg_sleep(1) IS NULL"), "--where"),
        (("--from", "20990101T000000Z-ffffff", "--table", "users"), "unknown backup"),
        (("--from", b, "--table", "users", "--on-conflict", "replace"), "--on-conflict"),
    ]
    for extra, words in cases:
        for cmd in ("merge", "extract"):
            argv = [cmd, *extra, *(base if cmd == "merge" else base[:-1])]
            r = lockplane("backup", *argv)
            assert r.code == 2, (argv, r.output)
            assert words in _one_line(r.stderr), (argv, r.stderr)
    assert _q(dsn, "SELECT count(*), sum(hashtext(u::text)) FROM users u") == before
    # (the rename's own backfill made the checkpoint table; no merge was recorded there)
    assert not _q(dsn, "SELECT 1 FROM lockplane.backfills WHERE spec->>'where' LIKE "
                       "'restore rows%'")
    r = lockplane("backup", "compare", "--target", dsn, "nosuch", "--storage", store)
    assert r.code == 2 and "unknown backup" in _one_line(r.stderr)


def test_a_where_runs_nothing_but_a_computation(pg_dsn: str, tmp_path: Path) -> None:
    """--where runs on a writable copy of the backup made with the server's credentials
    (here a superuser's), which holds the backup's own functions. On 0717b2c a function
    of the backup that runs its argument ran COPY ... TO PROGRAM, and a failing cast
    printed a role's password hash or the server's configuration (internal error)."""
    canary = Path(tempfile.mkdtemp(prefix="lockplane_canary_", dir="/tmp"))
    canary.chmod(0o777)
    role = f"lp_pw_{secrets.token_hex(4)}"
    pg_exec(pg_dsn, f"""
        CREATE TABLE users (id bigint PRIMARY KEY, email text);
        INSERT INTO users SELECT g, 'u' || g FROM generate_series(1, 20) g;
        CREATE FUNCTION exec_sql(q text) RETURNS int LANGUAGE plpgsql AS
          $$ BEGIN EXECUTE q; RETURN 1; END $$;
        CREATE ROLE {role} PASSWORD 'canary-password';""")
    store = str(tmp_path / "backups")
    backup = create_backup(pg_dsn, open_storage(store)).id
    before = _q(pg_dsn, "SELECT count(*), sum(hashtext(u::text)) FROM users u")
    program = f"COPY (SELECT 1) TO PROGRAM ''touch {canary}/ran''"
    try:
        for where, says in (
                (f"exec_sql('{program}') = 1", "public.exec_sql: dynamic SQL"),
                (f"(SELECT rolpassword FROM pg_authid WHERE rolname = '{role}')::int = 1",
                 "pg_authid (a system relation)"),
                ("(SELECT string_agg(setting, ',') FROM pg_show_all_file_settings())::int = 1",
                 "pg_show_all_file_settings")):
            for cmd in ("extract", "merge"):
                r = lockplane("backup", cmd, "--from", backup, "--table", "users",
                              "--where", where, "--target", pg_dsn, "--storage", store,
                              *(["--auto-approve"] if cmd == "merge" else []))
                assert r.code == 3, (cmd, where, r.output)
                assert says in _one_line(r.stderr), (cmd, r.stderr)
                assert "SCRAM" not in r.output and "data_directory" not in r.output
        assert list(canary.iterdir()) == []
        # A condition that fails on a row is bad input, not an internal error.
        r = lockplane("backup", "extract", "--from", backup, "--table", "users",
                      "--where", "email::int = 1", "--target", pg_dsn, "--storage", store)
        assert r.code == 2 and "invalid input syntax" in _one_line(r.stderr), r.output
    finally:
        shutil.rmtree(canary, ignore_errors=True)
        pg_exec(pg_dsn, f'DROP ROLE "{role}"')
    assert _q(pg_dsn, "SELECT count(*), sum(hashtext(u::text)) FROM users u") == before


def test_password_never_shown(story: dict[str, Any]) -> None:
    with_pw = story["dsn"].replace("postgres@", "postgres:S3cretPw@")
    r = lockplane("backup", "merge", "--from", story["backup"], "--table", "users",
                  "--target", with_pw, "--storage", story["store"], "--auto-approve",
                  "--server", with_pw)
    assert r.code == 0, r.output
    assert "S3cretPw" not in r.output


# ---------------------------------------------------------------------------- the flow
def test_restore_rows_flow(prefect_api: str, story: dict[str, Any], monkeypatch) -> None:
    from prefect.client.orchestration import get_client

    import flows.restore_rows as rr
    from blocks.backup_storage import BackupStorage
    from tests.phase_support import artifacts, wait_for_pause

    dsn, b = story["dsn"], story["backup"]
    monkeypatch.setattr(rr, "APPROVAL_POLL_S", 0.2)  # (the paused run only waits)
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
    md = artifacts(run_id)
    preview = next(v for k, v in md.items() if k.startswith("restore-rows-"))
    assert "would insert" in preview and "19" in preview
    assert _q(dsn, "SELECT count(*) FROM users")[0][0] == 191  # nothing before approval
    r = lockplane("approve", str(run_id), "--approver", "alice")
    assert r.code == 0, r.output
    worker.join(120)
    assert not worker.is_alive()
    final = state["s"]
    assert final.is_completed(), final
    out = final.result()
    assert out["inserted"] == 19 and out["updated"] == 0
    assert _q(dsn, "SELECT count(*) FROM users")[0][0] == 210
    with get_client(sync_client=True) as client:
        assert client.read_flow_run(run_id).state.is_completed()  # type: ignore[union-attr]
