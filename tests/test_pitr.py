"""Point-in-time recovery and `lockplane recover` on real PostgreSQL clusters.

A second cluster, made by the test (initdb on a free port, as ``nobody`` when the tests
run as root), archives its WAL into a directory (wal_level=replica, archive_mode=on,
archive_command cp). Rows are written, the time noted, rows deleted; recovery to that
time brings up a NEW instance holding the rows as they were. Every process and directory
the test makes is removed, even when it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from lockplane.backup import create_backup, open_storage
from lockplane.backup.pitr import (
    create_base_backup,
    detect_wal_archive,
    parse_time,
    plan_recovery,
)
from lockplane.dialects.postgres.cluster import Cluster, free_port, own_tree, server_user
from lockplane.dialects.postgres.pitr import restore_command_for
from lockplane.errors import BadInput
from tests.cli_inprocess import lockplane
from tests.conftest import pg_exec


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A directory the server's OS user (nobody, when the tests run as root) can reach:
    pytest's own tmp_path is private to root. Removed at the end."""
    home = Path(tempfile.mkdtemp(prefix="lockplane_pitr_test_"))
    home.chmod(0o755)
    try:
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def archived(scratch: Path) -> Iterator[tuple[str, Path]]:
    """A throwaway cluster archiving WAL into a directory: (DSN of its database, archive)."""
    home = scratch / "src"
    home.mkdir()
    archive = scratch / "archive"
    archive.mkdir()
    for p in (home, archive):
        p.chmod(0o755)
    own_tree(archive)
    src = Cluster(home / "data", port=free_port(), major=15, log=home / "server.log")
    started: list[Cluster] = []
    try:
        src.initdb()
        src.configure({"wal_level": "replica", "archive_mode": "on",
                       "archive_command": f"test ! -f {archive}/%f && cp %p {archive}/%f",
                       "max_wal_senders": "4", "fsync": "off", "shared_buffers": "32MB",
                       "max_connections": "20"})
        src.start()
        started.append(src)
        pg_exec(src.dsn(), "CREATE DATABASE app")
        yield src.dsn(dbname="app"), archive
    finally:
        for c in started:
            c.stop("immediate")


@pytest.fixture
def recovered_dirs() -> Iterator[list[Path]]:
    """Data directories of recovered instances: stopped at the end, whatever happened."""
    made: list[Path] = []
    yield made
    for d in made:
        if d.is_dir():
            Cluster(d, port=0, major=15).stop("immediate")


def _rows(dsn: str, sql: str = "SELECT count(*) FROM items") -> int:
    with psycopg.connect(dsn, connect_timeout=5) as c:
        return int(c.execute(sql).fetchone()[0])  # type: ignore[index]


def test_recover_to_a_time_into_a_new_instance(archived: tuple[str, Path], tmp_path: Path,
                                               scratch: Path,
                                               recovered_dirs: list[Path]) -> None:
    started = time.monotonic()
    dsn, archive = archived
    store = open_storage(str(tmp_path / "backups"))
    pg_exec(dsn, "CREATE TABLE items (id int PRIMARY KEY, name text);"
                 "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 100) g")
    w = detect_wal_archive(dsn)
    assert w.usable and w.method == "directory" and w.archive_dir == str(archive), w.problems
    base = create_base_backup(dsn, store)
    logical = create_backup(dsn, store)
    pg_exec(dsn, "INSERT INTO items SELECT g, 'late ' || g FROM generate_series(101, 150) g")
    time.sleep(1.1)
    with psycopg.connect(dsn) as c:
        noted = c.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    time.sleep(1.1)
    pg_exec(dsn, "DELETE FROM items WHERE id % 2 = 0")
    assert _rows(dsn) == 75

    # What the CLI shows without --into... and without a terminal: the plan, then no.
    when = noted.astimezone(UTC).isoformat()
    plan = plan_recovery(store, dsn, parse_time(when))
    assert plan.exact and plan.base_backup and plan.base_backup.id == base.id
    assert plan.backup and plan.backup.id == logical.id
    assert plan.loss and plan.loss.tables[0].table == "public.items"
    assert "deleted since the backup" in plan.loss.tables[0].message  # 100 then, 75 now

    into = scratch / "recovered"
    recovered_dirs.append(into)
    r = lockplane("recover", "--target", dsn, "--to", when, "--storage", store.url,
                  "--into", str(into), "--auto-approve", "--json")
    assert r.code == 0, r.output
    out = json.loads(r.stdout)
    assert out["recovered"]["base_backup"] == base.id
    got = out["recovered"]["dsn"]
    assert "Timeline" in r.stderr or "→" in r.stderr
    # The rows as of that time: all 150, none of the deletes.
    assert _rows(got) == 150
    assert _rows(got, "SELECT count(*) FROM items WHERE name LIKE 'late %'") == 50
    with psycopg.connect(got) as c:  # promoted: writable, on its own
        assert c.execute("SELECT pg_is_in_recovery()").fetchone()[0] is False  # type: ignore[index]
        assert c.execute("SHOW archive_mode").fetchone()[0] == "off"  # type: ignore[index]
    assert _rows(dsn) == 75  # the live database untouched
    assert time.monotonic() - started < 60


def _as_server_user(*cmd: str) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` as the clusters' OS user (as root: nobody), as the archiver does."""
    who = server_user()

    def drop() -> None:
        if who is not None:
            os.setgid(who[1])
            os.setuid(who[0])

    return subprocess.run(list(cmd), capture_output=True, text=True, preexec_fn=drop,
                          timeout=120, check=False)


@pytest.fixture
def pgbackrest_archived(scratch: Path) -> Iterator[tuple[str, Path]]:
    """A throwaway cluster whose WAL pgBackRest archives (stanza ``lp``, repository and
    config in the scratch directory): (DSN of its database, pgbackrest.conf)."""
    if shutil.which("pgbackrest") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("pgbackrest is not installed (scripts/setup.sh installs it)")
        pytest.skip("pgbackrest is not installed (apt-get install pgbackrest)")
    home = scratch / "src"
    data, sock, repo = home / "data", scratch / "sock", scratch / "repo"
    for p in (home, sock, repo, scratch / "log", scratch / "lock"):
        p.mkdir()
        p.chmod(0o755)
    port = free_port()
    conf = scratch / "pgbackrest.conf"
    conf.write_text(f"[global]\nrepo1-path={repo}\nlog-path={scratch / 'log'}\n"
                    f"lock-path={scratch / 'lock'}\nlog-level-file=off\n"
                    "start-fast=y\n\n"
                    f"[lp]\npg1-path={data}\npg1-port={port}\npg1-socket-path={sock}\n"
                    "pg1-user=postgres\n")
    conf.chmod(0o644)
    for p in (sock, repo, scratch / "log", scratch / "lock"):
        own_tree(p)
    src = Cluster(data, port=port, major=15, log=home / "server.log")
    try:
        src.initdb()
        src.configure({"wal_level": "replica", "archive_mode": "on",
                       "archive_command": f"pgbackrest --config={conf} --stanza=lp "
                                          "archive-push %p",
                       "max_wal_senders": "4", "fsync": "off", "shared_buffers": "32MB",
                       "max_connections": "20"})
        src.log.touch()
        own_tree(src.log)
        # pgBackRest reaches a local server through its Unix socket only.
        src.run("pg_ctl", "-D", str(data), "-l", str(src.log), "-w", "-t", "60", "-o",
                f"-c listen_addresses=127.0.0.1 -c port={port} "
                f"-c unix_socket_directories={sock}", "start")
        made = _as_server_user("pgbackrest", f"--config={conf}", "--stanza=lp",
                               "stanza-create")
        assert made.returncode == 0, made.stdout + made.stderr
        pg_exec(src.dsn(), "CREATE DATABASE app")
        yield src.dsn(dbname="app"), conf
    finally:
        src.stop("immediate")


def test_recover_to_a_time_from_a_pgbackrest_archive(
        pgbackrest_archived: tuple[str, Path], tmp_path: Path, scratch: Path,
        recovered_dirs: list[Path]) -> None:
    dsn, conf = pgbackrest_archived
    store = open_storage(str(tmp_path / "backups"))
    pg_exec(dsn, "CREATE TABLE items (id int PRIMARY KEY, name text);"
                 "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 100) g")
    w = detect_wal_archive(dsn)
    assert w.usable and w.method == "pgbackrest", w.problems
    assert f"--config={conf}" in (w.restore_command or "")
    base = create_base_backup(dsn, store)
    pg_exec(dsn, "INSERT INTO items SELECT g, 'late ' || g FROM generate_series(101, 150) g")
    time.sleep(1.1)
    with psycopg.connect(dsn) as c:
        noted = c.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    time.sleep(1.1)
    pg_exec(dsn, "DELETE FROM items WHERE id > 120; UPDATE items SET name = 'changed'")
    assert _rows(dsn) == 120
    with psycopg.connect(dsn, autocommit=True) as c:  # the deletes reach the archive too
        c.execute("SELECT pg_switch_wal()")

    when = noted.astimezone(UTC).isoformat()
    # archive-get left to the config's pg1-path (the source's data directory) refuses to
    # serve another instance: the error says what pgBackRest said, not just "ended early".
    wrong = scratch / "wrong"
    recovered_dirs.append(wrong)
    r = lockplane("recover", "--target", dsn, "--to", when, "--storage", store.url,
                  "--into", str(wrong), "--auto-approve", "--restore-command",
                  f'pgbackrest --config={conf} --stanza=lp archive-get %f "%p"')
    assert r.code in (1, 2), r.output
    (line,) = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert "restore_command (given) failed: ERROR: [032]" in line, line

    into = scratch / "recovered"
    recovered_dirs.append(into)
    r = lockplane("recover", "--target", dsn, "--to", when, "--storage", store.url,
                  "--into", str(into), "--auto-approve", "--json")
    assert r.code == 0, r.output
    out = json.loads(r.stdout)
    assert out["recovered"]["base_backup"] == base.id
    got = out["recovered"]["dsn"]
    # As of that time: all 150 rows, none of the later deletes or updates.
    assert _rows(got) == 150
    assert _rows(got, "SELECT count(*) FROM items WHERE name LIKE 'late %'") == 50
    assert _rows(got, "SELECT count(*) FROM items WHERE name = 'changed'") == 0
    with psycopg.connect(got) as c:
        assert c.execute("SELECT pg_is_in_recovery()").fetchone()[0] is False  # type: ignore[index]
    log = Path(out["recovered"]["log"]).read_text()
    assert "restored log file" in log and "from archive" in log, log[-2000:]
    assert _rows(dsn) == 120  # the live database untouched


def test_before_the_oldest_backup_and_no_archive(pg_dsn: str, tmp_path: Path) -> None:
    store = str(tmp_path / "backups")
    pg_exec(pg_dsn, "CREATE TABLE t (id int); INSERT INTO t VALUES (1)")
    r = lockplane("recover", "--target", pg_dsn, "--to", "2001-01-01T00:00:00Z",
                  "--storage", store)
    assert r.code == 2 and "no backup of" in r.stderr, r.output
    create_backup(pg_dsn, open_storage(store))
    r = lockplane("recover", "--target", pg_dsn, "--to", "2001-01-01T00:00:00Z",
                  "--storage", store)
    assert r.code == 2, r.output
    (line,) = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert "before the oldest backup" in line and "Traceback" not in r.output
    # The local server does not archive: asking for a new instance says so in one line.
    r = lockplane("recover", "--target", pg_dsn, "--to", "now", "--storage", store,
                  "--into", str(tmp_path / "pitr"), "--auto-approve")
    assert r.code == 2 and "WAL archiving is off" in r.stderr, r.output
    assert not (tmp_path / "pitr").exists()


def test_recover_restores_the_nearest_backup_into_a_new_database(
        pg_dsn: str, pg_dsn_factory, tmp_path: Path) -> None:
    store = str(tmp_path / "backups")
    pg_exec(pg_dsn, "CREATE TABLE users (id int PRIMARY KEY);"
                    "INSERT INTO users SELECT generate_series(1, 1000)")
    b = create_backup(pg_dsn, open_storage(store))
    pg_exec(pg_dsn, "INSERT INTO users SELECT generate_series(1001, 2243)")
    r = lockplane("recover", "--target", pg_dsn, "--to", "now", "--storage", store,
                  "--dry-run")
    assert r.code == 0, r.output
    assert "1,243 row(s) inserted after the backup" in r.stderr
    assert f"backup {b.id}" in r.stderr
    # The command it suggests can be copied: never a redacted password (*** would not
    # connect), the storage it was given.
    secret = pg_dsn.replace("postgresql://postgres@", "postgresql://postgres:pw-x9@", 1)
    r = lockplane("recover", "--target", secret, "--to", "now", "--storage", store,
                  "--dry-run")
    assert r.code == 0, r.output
    hint = next(ln for ln in r.stderr.splitlines() if ln.startswith("To restore:"))
    assert '--target "$DATABASE_URL"' in hint and f"--storage {store}" in hint, hint
    assert "***" not in hint and "pw-x9" not in r.output
    # Not a terminal, no --auto-approve: nothing restored, exit 2.
    into = pg_dsn_factory()
    r = lockplane("recover", "--target", pg_dsn, "--to", "now", "--storage", store,
                  "--into", into)
    assert r.code == 2 and "confirmation needed" in r.stderr, r.output
    r = lockplane("recover", "--target", pg_dsn, "--to", "now", "--storage", store,
                  "--into", into, "--auto-approve")
    assert r.code == 0, r.output
    assert _rows(into, "SELECT count(*) FROM users") == 1000
    # Over the live database: refused without --force, and without the name confirmed.
    r = lockplane("recover", "--target", pg_dsn, "--to", "now", "--storage", store,
                  "--into", pg_dsn, "--auto-approve")
    assert r.code == 3 and "--force" in r.stderr, r.output
    r = lockplane("recover", "--target", pg_dsn, "--to", "now", "--storage", store,
                  "--into", pg_dsn, "--force", "--auto-approve")
    assert r.code == 2 and "--confirm" in r.stderr, r.output
    assert _rows(pg_dsn, "SELECT count(*) FROM users") == 2243
    name = pg_dsn.rsplit("/", 1)[1]
    r = lockplane("recover", "--target", pg_dsn, "--to", "now", "--storage", store,
                  "--into", pg_dsn, "--force", "--confirm", name)
    assert r.code == 0, r.output
    assert _rows(pg_dsn, "SELECT count(*) FROM users") == 1000


def test_restore_command_for_known_archivers() -> None:
    assert restore_command_for("test ! -f /mnt/a/%f && cp %p /mnt/a/%f")[0] == \
        "cp /mnt/a/%f %p"
    assert restore_command_for("pgbackrest --stanza=main archive-push %p")[:2] == (
        'pgbackrest --stanza=main --pg1-path={pg1_path} archive-get %f "%p"', "pgbackrest")
    # archive-get gets what it needs from archive-push's line, not what it would refuse.
    assert restore_command_for("pgbackrest --config /etc/b.conf --stanza lp "
                               "--compress-type=zst archive-push --repo1-path=/r %p")[0] == (
        "pgbackrest --config=/etc/b.conf --stanza=lp --repo1-path=/r "
        '--pg1-path={pg1_path} archive-get %f "%p"')
    assert restore_command_for("/opt/pgbr/bin/pgbackrest --stanza=x archive-push %p")[0] == (
        '/opt/pgbr/bin/pgbackrest --stanza=x --pg1-path={pg1_path} archive-get %f "%p"')
    assert restore_command_for("wal-g wal-push %p")[1] == "wal-g"
    assert restore_command_for("/usr/local/bin/ship %p")[0] is None
    with pytest.raises(BadInput):
        parse_time("yesterday-ish")
    assert parse_time("2025-01-02 03:04:05") == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


# ---------------------------------------------------------------------------- the flow
def test_recovery_flow_waits_for_approval(prefect_api: str, pg_dsn: str, pg_dsn_factory,
                                          tmp_path: Path, monkeypatch) -> None:
    import secrets
    import threading

    from phase_support import artifacts, wait_for_pause

    import flows.recovery as rflow

    monkeypatch.setattr(rflow, "APPROVAL_POLL_S", 0.5)
    store = str(tmp_path / "backups")
    pg_exec(pg_dsn, "CREATE TABLE users (id int PRIMARY KEY);"
                    "INSERT INTO users SELECT generate_series(1, 1000)")
    b = create_backup(pg_dsn, open_storage(store))
    pg_exec(pg_dsn, "INSERT INTO users SELECT generate_series(1001, 2243)")

    def run(name: str, into: str, states: list) -> threading.Thread:
        flow = rflow.recovery.with_options(flow_run_name=name)
        t = threading.Thread(target=lambda: states.append(flow(
            target=pg_dsn, storage=store, into_database=into, approval_timeout_s=120,
            return_state=True)), daemon=True)
        t.start()
        return t

    into = pg_dsn_factory()
    into_name = into.rsplit("/", 1)[1]
    states: list = []
    name = f"recovery-{secrets.token_hex(4)}"
    worker = run(name, into_name, states)
    run_id = wait_for_pause(name, "approve-recovery", worker=worker)
    md = next(v for k, v in artifacts(run_id).items() if k.startswith("recovery-"))
    assert "1,243 row(s) inserted after the backup" in md and b.id in md
    assert "lockplane approve" in md and into_name in md
    assert _rows(into, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0
    r = lockplane("approve", str(run_id), "--approver", "alice")
    assert r.code == 0, r.output
    worker.join(120)
    (state,) = states
    assert state.is_completed(), state
    out = state.result()
    assert out["backup_id"] == b.id and out["approved_by"] == "alice"
    assert _rows(into, "SELECT count(*) FROM users") == 1000
    assert _rows(pg_dsn, "SELECT count(*) FROM users") == 2243

    # Rejected: the run ends Cancelled and nothing is restored.
    other = pg_dsn_factory()
    states = []
    name = f"recovery-{secrets.token_hex(4)}"
    worker = run(name, other.rsplit("/", 1)[1], states)
    run_id = wait_for_pause(name, "approve-recovery", worker=worker)
    r = lockplane("approve", str(run_id), "--approver", "bob", "--reject")
    assert r.code == 0, r.output
    worker.join(120)
    assert states[0].is_cancelled()
    assert _rows(other, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0
