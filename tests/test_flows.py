"""The Prefect layer: real flows on a real temporary Prefect server (session fixture
``prefect_api``) against real PostgreSQL and SQLite databases."""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
import yaml
from conftest import pg_exec
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.flow_runs import resume_flow_run
from prefect.states import State

from blocks import DatabaseTarget, SlackNotifier, register_blocks
from deployments.serve import build_deployments
from flows.apply_migration import apply_migration
from flows.drift_check import drift_check
from lockplane.errors import SafetyRefusal

PASSWORD = "s3cret-pw-4-tests"  # trust auth ignores it; it must never show anywhere

PG_DESIRED = """
CREATE TABLE users (
    id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL,
    nickname text
);
CREATE INDEX users_nickname_idx ON users (nickname);
"""

SQLITE_DESIRED = """
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL);
CREATE TABLE audit_log (id INTEGER PRIMARY KEY, user_id INTEGER, note TEXT);
CREATE INDEX audit_log_user_idx ON audit_log (user_id);
"""


def _with_password(dsn: str) -> str:
    return dsn.replace("postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@", 1)


def _flow_run_id(state: State) -> UUID:
    run_id = state.state_details.flow_run_id
    assert run_id is not None
    return run_id


def _artifacts(run_id: UUID) -> dict[str, str]:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])))
    return {a.key or "": str(a.data) for a in found}


def _logs(run_id: UUID) -> str:
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()  # send queued run logs to the server now
    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(
            any_=[run_id])))
    return "\n".join(log.message for log in logs)


def _pg_columns(dsn: str, table: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT column_name FROM information_schema.columns "
                            "WHERE table_name = %s ORDER BY ordinal_position", (table,))
        return [r[0] for r in rows]


# ---------------------------------------------------------------------------- PostgreSQL
def test_apply_migration_postgres_via_block(prefect_api: str, pg_dsn: str,
                                            tmp_path: Path) -> None:
    pg_exec(pg_dsn, "CREATE TABLE users (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
                    "email text NOT NULL)")
    desired = tmp_path / "schema.sql"
    desired.write_text(PG_DESIRED)
    block_name = f"pg-{secrets.token_hex(4)}"
    DatabaseTarget(dialect="postgres", dsn=_with_password(pg_dsn), safety="moderate",
                   lock_timeout_ms=2000).save(block_name)

    state = apply_migration(target=block_name, desired_schema=str(desired),
                            return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    assert result["status"] == "applied"
    assert result["steps_run"] == 2
    assert _pg_columns(pg_dsn, "users") == ["id", "email", "nickname"]

    run_id = _flow_run_id(state)
    artifacts = _artifacts(run_id)
    plan_md = artifacts[f"plan-{block_name}"]
    assert 'ADD COLUMN "nickname" text' in plan_md
    # An index on an existing table is built CONCURRENTLY (no lock_timeout: it blocks
    # nobody), and every locking step waits no longer than the target's lock_timeout_ms.
    assert 'CREATE INDEX CONCURRENTLY "users_nickname_idx"' in plan_md
    assert "SET lock_timeout = '2000ms'" in plan_md and "3000ms" not in plan_md
    assert "Rollback" in plan_md and "Lock" in plan_md and "Safety" in plan_md
    assert "applied" in artifacts[f"result-{block_name}"]
    everything = "\n".join(artifacts.values()) + _logs(run_id)
    with get_client(sync_client=True) as client:
        everything += json.dumps(client.read_flow_run(run_id).parameters)
    assert PASSWORD not in everything

    # Now the database matches: no drift. Then a new desired column is drift.
    assert drift_check(target=block_name, desired_schema=str(desired))["drift"] is False
    drifted = tmp_path / "drifted.sql"
    drifted.write_text(PG_DESIRED.replace("nickname text", "nickname text,\n    bio text"))
    result = drift_check(target=block_name, desired_schema=str(drifted))
    assert result["drift"] is True  # drift completes the run: Slack is the alert
    assert result["environments"][block_name]["differences"] == 1


def test_apply_migration_refused_by_target_safety(prefect_api: str, pg_dsn: str,
                                                  tmp_path: Path) -> None:
    """A strict target refuses a lossy step even when the run asks for permissive."""
    pg_exec(pg_dsn, "CREATE TABLE t (id int PRIMARY KEY, old text)")
    desired = tmp_path / "schema.sql"
    desired.write_text("CREATE TABLE t (id int PRIMARY KEY);")
    target = DatabaseTarget(dialect="postgres", dsn=_with_password(pg_dsn), safety="strict")
    state = apply_migration(target=target, desired_schema=str(desired), safety="permissive",
                            return_state=True)
    assert state.is_failed()
    with pytest.raises(SafetyRefusal, match="strict"):
        state.result()
    assert _pg_columns(pg_dsn, "t") == ["id", "old"]
    # An unsaved block given as a parameter reaches the server with its secrets masked.
    with get_client(sync_client=True) as client:
        stored = client.read_flow_run(_flow_run_id(state))
    assert PASSWORD not in json.dumps(stored.parameters) + str(stored.state.message)


def test_apply_migration_waits_for_approval(prefect_api: str, pg_dsn: str, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import flows.apply_migration as apply_module

    # The paused run asks every 0.1 s whether it was resumed (2 s by default).
    monkeypatch.setattr(apply_module, "APPROVAL_POLL_S", 0.1)
    pg_exec(pg_dsn, "CREATE TABLE t (id int PRIMARY KEY)")
    desired = tmp_path / "schema.sql"
    desired.write_text("CREATE TABLE t (id int PRIMARY KEY, note text);")
    box: dict[str, Any] = {}

    def run() -> None:
        box["state"] = apply_migration(target=pg_dsn, desired_schema=str(desired),
                                       auto_approve=False, approval_timeout_s=60,
                                       return_state=True)

    worker = threading.Thread(target=run)
    worker.start()
    run_id = _wait_for_paused_run("apply-migration")
    assert _pg_columns(pg_dsn, "t") == ["id"]  # nothing applied before approval
    resume_flow_run(run_id)
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert box["state"].is_completed(), box["state"].message
    assert _pg_columns(pg_dsn, "t") == ["id", "note"]


def _wait_for_paused_run(flow_name: str, timeout_s: float = 30) -> UUID:
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    deadline = time.monotonic() + timeout_s
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            runs = client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
                flow_run_filter=FlowRunFilter(state=FlowRunFilterState(
                    type=FlowRunFilterStateType(any_=[StateType.PAUSED]))))
            if runs:
                return runs[0].id
            time.sleep(0.2)
    raise AssertionError(f"no paused {flow_name} run within {timeout_s}s")


# ---------------------------------------------------------------------------- SQLite
def test_apply_migration_and_drift_sqlite(prefect_api: str, sqlite_dsn: str,
                                          tmp_path: Path) -> None:
    db_path = sqlite_dsn.removeprefix("sqlite:///")
    with sqlite3.connect(db_path) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL)")
    desired = tmp_path / "schema.sql"
    desired.write_text(SQLITE_DESIRED)

    state = apply_migration(target=sqlite_dsn, desired_schema=str(desired),
                            return_state=True)
    assert state.is_completed(), state.message
    assert state.result()["status"] == "applied"
    with sqlite3.connect(db_path) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert {"audit_log", "audit_log_user_idx"} <= names
    artifacts = _artifacts(_flow_run_id(state))
    assert any("CREATE TABLE" in md and "audit_log" in md for k, md in artifacts.items()
               if k.startswith("plan-"))

    assert drift_check(target=sqlite_dsn, desired_schema=str(desired))["drift"] is False
    drifted = tmp_path / "drifted.sql"
    drifted.write_text(SQLITE_DESIRED + "CREATE TABLE extra (id INTEGER PRIMARY KEY);\n")
    state = drift_check(target=sqlite_dsn, desired_schema=str(drifted), return_state=True)
    assert state.is_completed() and state.result()["drift"] is True
    drift_table = next(data for k, data in _artifacts(_flow_run_id(state)).items()
                       if k.startswith("drift-") and k != "drift-report")
    assert "is missing table extra" in drift_table


def test_target_without_archive(prefect_api: str, sqlite_dsn: str, tmp_path: Path) -> None:
    """A target block with archive_dropped off: its plans copy no dropped rows, and the
    plan says the rollback brings the table back empty (lockplane plan --no-archive)."""
    db_path = sqlite_dsn.removeprefix("sqlite:///")
    with sqlite3.connect(db_path) as conn:
        conn.executescript("CREATE TABLE t (id INTEGER PRIMARY KEY); CREATE TABLE logs "
                           "(id INTEGER PRIMARY KEY, line TEXT); INSERT INTO logs (line) "
                           "VALUES ('a'), ('b');")
    desired = tmp_path / "schema.sql"
    desired.write_text("CREATE TABLE t (id INTEGER PRIMARY KEY);")
    block_name = f"nolog-{secrets.token_hex(4)}"
    DatabaseTarget(dialect="sqlite", dsn=sqlite_dsn, safety="permissive",
                   archive_dropped=False).save(block_name)
    state = apply_migration(target=block_name, desired_schema=str(desired),
                            safety="permissive", return_state=True)
    assert state.is_completed(), state.message
    # (the artifact's prose is inert Markdown text: every punctuation mark escaped)
    plan_md = re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", " ".join(
        _artifacts(_flow_run_id(state))[f"plan-{block_name}"].split()))
    assert "Keeps no copy of the rows of main.logs" in plan_md
    assert "recreates the table empty: archiving was turned off" in plan_md
    with sqlite3.connect(db_path) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "logs" not in names and not any(n.startswith("_lockplane_table_") for n in names)


def test_empty_plan_applies_nothing(prefect_api: str, sqlite_dsn: str, tmp_path: Path) -> None:
    db_path = sqlite_dsn.removeprefix("sqlite:///")
    with sqlite3.connect(db_path) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    desired = tmp_path / "schema.sql"
    desired.write_text("CREATE TABLE t (id INTEGER PRIMARY KEY);")
    assert apply_migration(target=sqlite_dsn, desired_schema=str(desired))["status"] == "empty"


# ---------------------------------------------------------------------------- blocks
def test_database_target_hides_password() -> None:
    target = DatabaseTarget(dialect="postgres", dsn=f"postgresql://u:{PASSWORD}@db/app",
                            shadow_dsn=f"postgresql://u:{PASSWORD}@shadow/postgres")
    assert PASSWORD not in repr(target) and PASSWORD not in str(target)
    assert target.display_dsn == "postgresql://u:***@db/app"
    with pytest.raises(ValueError) as exc:
        DatabaseTarget(dialect="sqlite", dsn=f"postgresql://u:{PASSWORD}@db/app")
    assert PASSWORD not in str(exc.value)


def test_blocks_register_save_and_load(prefect_api: str) -> None:
    assert register_blocks() == ["lockplane-database-target", "lockplane-slack-notifier"]
    name = f"t-{secrets.token_hex(4)}"
    DatabaseTarget(dialect="sqlite", dsn="sqlite:///x.db", safety="strict").save(name)
    loaded = DatabaseTarget.load(name)
    assert loaded.target_dsn() == "sqlite:///x.db" and loaded.safety == "strict"


class _FakeSlack(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        payload = json.loads(body) if body.startswith(b"{") else {}
        _FakeSlack.received.append({"path": self.path, "auth": self.headers["Authorization"],
                                    **payload})
        answer = json.dumps({"ok": True, "channel": "C1", "ts": "1.0"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_slack() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeSlack)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _FakeSlack.received = []
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api"
    finally:
        server.shutdown()
        server.server_close()


def test_slack_notifier_posts(fake_slack: str) -> None:
    notifier = SlackNotifier(bot_token="xoxb-test", channel="#db", base_url=fake_slack)
    answer = notifier.notify("hello", blocks=[{"type": "section",
                                               "text": {"type": "mrkdwn", "text": "hi"}}])
    assert answer["ok"] is True
    (msg,) = _FakeSlack.received
    assert msg["path"] == "/api/chat.postMessage"
    assert msg["auth"] == "Bearer xoxb-test"
    assert msg["channel"] == "#db" and msg["text"] == "hello" and msg["blocks"]
    assert "xoxb-test" not in repr(notifier)


def test_slack_text_is_plain_text(fake_slack: str) -> None:
    """What a message quotes (a plan's descriptions, a schema's names, an approver's name
    and comment from a form) cannot make Slack control sequences: on 6572c0c '<!channel>'
    in a rejection comment pinged the whole channel, '<https://x|approve>' was a link."""
    notifier = SlackNotifier(bot_token="xoxb-test", channel="#db", base_url=fake_slack)
    notifier.notify("phase 1 rejected by <!channel> (<https://evil.example|approve> & go)")
    (msg,) = _FakeSlack.received
    assert "<" not in msg["text"] and ">" not in msg["text"], msg["text"]
    assert msg["text"] == ("phase 1 rejected by &lt;!channel&gt; (&lt;https://evil.example|"
                           "approve&gt; &amp; go)")


def test_drift_check_notifies(prefect_api: str, fake_slack: str, sqlite_dsn: str,
                              tmp_path: Path) -> None:
    name = f"slack-{secrets.token_hex(4)}"
    SlackNotifier(bot_token="xoxb-test", channel="#db", base_url=fake_slack).save(name)
    with sqlite3.connect(sqlite_dsn.removeprefix("sqlite:///")) as conn:
        conn.execute("CREATE TABLE keep (id INTEGER PRIMARY KEY)")
    desired = tmp_path / "schema.sql"
    desired.write_text("CREATE TABLE keep (id INTEGER PRIMARY KEY);\n"
                       "CREATE TABLE t (id INTEGER PRIMARY KEY);")
    drift_check(target=sqlite_dsn, desired_schema=str(desired), notify=name)
    (msg,) = _FakeSlack.received
    assert "Drift found" in msg["text"] and "is missing table t " in msg["text"]


def test_backup_flows_artifacts_and_slack_on_every_failure(prefect_api: str, fake_slack: str,
                                                           pg_dsn: str, tmp_path: Path) -> None:
    """backup-create and backup-validate publish their figures (counts, checksums, RTO)
    and post to Slack however they fail: a corrupt backup, but also an unreachable
    target, an unreachable server for the temporary copy, none to validate; never a
    password."""
    from blocks.backup_storage import BackupStorage
    from flows.backup import backup_create, backup_validate
    from lockplane.backup import open_storage, read_status
    from lockplane.dsn import redact

    pg_exec(pg_dsn, "CREATE TABLE t (id int PRIMARY KEY, v text);"
                    "INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 321) g")
    slack = f"slack-{secrets.token_hex(4)}"
    SlackNotifier(bot_token="xoxb-test", channel="#db", base_url=fake_slack).save(slack)
    store = str(tmp_path / "backups")
    name = f"bk-{secrets.token_hex(4)}"
    BackupStorage(url=store).save(name)
    target = f"t-{secrets.token_hex(4)}"
    DatabaseTarget(dialect="postgres", dsn=_with_password(pg_dsn)).save(target)

    state = backup_create(target=target, storage=name, notify=slack, return_state=True)
    assert state.is_completed(), state.message
    made = state.result()
    md = "\n".join(_artifacts(_flow_run_id(state)).values())
    assert "321" in md and "public.t" in md.replace("\\", "") and "checksum" in md, md
    state = backup_validate(target=target, storage=name, notify=slack, return_state=True)
    assert state.is_completed(), state.message
    md = "\n".join(_artifacts(_flow_run_id(state)).values())
    assert "Measured RTO" in md and "passed" in md, md
    assert not _FakeSlack.received  # nothing to say when all is well

    # A fresh process reads the same state from the storage (it survives restarts).
    assert read_status(open_storage(store), redact(_with_password(pg_dsn))).last_good_backup.id \
        == made["backup_id"]  # type: ignore[union-attr]

    down = f"down-{secrets.token_hex(4)}"
    DatabaseTarget(dialect="postgres",
                   dsn=_with_password(pg_dsn).replace(":5432/", ":1/", 1)).save(down)
    empty = f"bk-{secrets.token_hex(4)}"
    BackupStorage(url=str(tmp_path / "empty")).save(empty)
    failing = [
        (backup_create, dict(target=down, storage=name), "backup of"),
        (backup_validate, dict(target=down, storage=name, backup_id=made["backup_id"]),
         "backup validation of"),
        (backup_validate, dict(target=target, storage=empty), "no backup of"),
    ]
    for run, params, said in failing:
        _FakeSlack.received = []
        state = run(**params, notify=slack, return_state=True)
        assert state.is_failed(), (params, state)
        (msg,) = _FakeSlack.received
        assert said in msg["text"] and "failed" in msg["text"], msg["text"]
        assert PASSWORD not in msg["text"] and "Traceback" not in msg["text"]
        assert len(msg["text"].splitlines()) == 1, msg["text"]


# ---------------------------------------------------------------------------- deployments
def test_prefect_yaml_matches_served_deployments() -> None:
    spec = yaml.safe_load((Path(__file__).parent.parent / "prefect.yaml").read_text())
    declared = {d["name"]: d for d in spec["deployments"]}
    served = {d.name: d for d in build_deployments()}
    assert declared.keys() == served.keys() == {"apply-migration", "drift-check", "drift-fix",
                                                 "backfill",
                                                 "backfill-chunk", "multiphase-migration",
                                                 "backup-create", "backup-validate",
                                                 "recovery", "restore-rows"}
    for name, dep in served.items():
        decl = declared[name]
        module, _, func = dep.entrypoint.rpartition(".")
        assert decl["entrypoint"] == f"{module.replace('.', '/')}.py:{func}"
        assert decl["parameters"] == dep.parameters
        assert decl.get("concurrency_limit") == dep.concurrency_limit
        crons = [s.schedule.cron for s in dep.schedules]
        assert [s["cron"] for s in decl.get("schedules", [])] == crons
    assert [s.schedule.cron for s in served["drift-check"].schedules] == ["0 6 * * *"]
