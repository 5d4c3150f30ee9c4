"""The scheduled drift check with memory (issue 14, item 4).

The drift-check flow runs on the session's real Prefect server against real databases
drifted by hand, and posts to a local Slack stand-in that records what slack-sdk sent:
one message when drift appears, none for the same drift on the next runs (in this
process or in a new one), one when it changes, one when it is resolved, none while it is
acknowledged (`lockplane drift ack`), one when the acknowledgement expires and the drift
is still there. The memory lives in each database (lockplane.drift_state /
_lockplane_drift_state), where the CLI reads it too. One test serves the flow on a
short interval schedule from a subprocess, as `lockplane serve` next to a lockplane.toml
serves it (each run its own process), and checks that scheduled runs complete and tell
the drift once.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import pg_exec
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    DeploymentFilter,
    DeploymentFilterId,
)
from prefect.client.schemas.objects import StateType
from prefect.exceptions import ObjectNotFound
from test_flows import _FakeSlack, fake_slack  # noqa: F401 - the fixture is used by name
from test_schedules import _stop

from blocks import DatabaseTarget, SlackNotifier
from flows.drift_check import drift_check
from lockplane.drift import DriftItem, EnvironmentReport, check_drift, targets_from_config
from lockplane.drift.memory import Acknowledgement, DriftState, Seen, decide, parse_until
from lockplane.errors import BadInput, LockplaneError
from lockplane.sources import load_schema
from tests.cli_inprocess import lockplane

ROOT = Path(__file__).resolve().parent.parent

PG_SCHEMA = """
CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL);
CREATE INDEX users_email_idx ON users (email);
"""
SQLITE_SCHEMA = "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);\n"


def _project(root: Path, envs: dict[str, str]) -> None:
    """lockplane.toml with one environment per DSN; the schema each dialect wants."""
    (root / "schema").mkdir(exist_ok=True)
    (root / "schema" / "schema.sql").write_text(PG_SCHEMA)
    (root / "lite.sql").write_text(SQLITE_SCHEMA)
    lines = []
    for name, dsn in envs.items():
        schema = "schema/" if dsn.startswith("postgres") else "lite.sql"
        lines += [f"[environments.{name}]", f"database_url = {json.dumps(dsn)}",
                  f"schema_path = {json.dumps(schema)}", ""]
    (root / "lockplane.toml").write_text("\n".join(lines))


def _slack(url: str) -> str:
    name = f"slack-{secrets.token_hex(4)}"
    SlackNotifier(bot_token="xoxb-test", channel="#db", base_url=url).save(name)
    return name


def _texts() -> list[str]:
    return [m["text"] for m in _FakeSlack.received]


def _messages_during(fn: Any) -> list[str]:
    before = len(_FakeSlack.received)
    fn()
    return _texts()[before:]


# ------------------------------------------------------------------ the decision, pure
def _report(fp_items: list[str], status: str = "drift") -> EnvironmentReport:
    r = EnvironmentReport("prod", status, "postgresql://db/app", "schema/")  # type: ignore[arg-type]
    r.items = [DriftItem(f"public.t.{c}", "column", "extra", f"extra column t.{c}",
                         f"prod has extra column t.{c}") for c in fp_items]
    return r


def test_decide_new_same_changed_resolved_acknowledged_expired() -> None:
    now = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    clean, one, two = _report([], "clean"), _report(["a"]), _report(["a", "b"])
    assert decide(clean, None, None, now).kind == "clean"
    first = decide(one, None, None, now)
    assert first.kind == "new" and first.notify and first.status == "drift"
    seen = Seen("prod", "drift", one.fingerprint, first.words, now)
    assert decide(one, seen, None, now).kind == "same"
    changed = decide(two, seen, None, now)
    assert changed.kind == "changed" and changed.new_and_gone() == (
        ["prod has extra column t.b"], [])
    assert changed.ended == [one.fingerprint]  # an ack of the old drift ends with it
    resolved = decide(clean, seen, None, now)
    assert resolved.kind == "resolved" and resolved.notify
    assert "prod has extra column t.a" in resolved.message()

    ack = Acknowledgement(one.fingerprint, "prod", "ana@host", now, now + timedelta(hours=1),
                          "column kept for the hotfix")
    silenced = decide(one, seen, ack, now)
    assert silenced.kind == "acknowledged" and not silenced.notify
    assert silenced.status == "acknowledged"
    acked_seen = Seen("prod", "acknowledged", one.fingerprint, [], now)
    later = now + timedelta(hours=2)
    expired = decide(one, acked_seen, ack, later)
    assert expired.kind == "ack_expired" and expired.notify
    assert "column kept for the hotfix" in expired.message()
    # Acknowledged before any check told it: never told; another drift is not silenced.
    assert decide(one, None, ack, now).kind == "acknowledged"
    assert decide(two, acked_seen, None, now).kind == "changed"
    # Unreachable: nothing decided, the memory is left alone.
    gone = _report([], "unreachable")
    assert decide(gone, seen, None, now).kind == "not_checked"


def test_parse_until() -> None:
    now = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    assert parse_until("2026-12-31", now) == datetime(2026, 12, 31, tzinfo=UTC)
    assert parse_until("7d", now) == now + timedelta(days=7)
    assert parse_until("2026-12-06T14:00:00+01:00", now) == datetime(2026, 12, 6, 13,
                                                                       tzinfo=UTC)
    for bad in ("yesterday", "2026-12-01", "0h"):
        with pytest.raises(BadInput):
            parse_until(bad, now)


# --------------------------------------------------------------- the memory, databases
@pytest.mark.parametrize("dialect", ["postgres", "sqlite"])
def test_memory_lives_in_the_database_and_is_never_drift(dialect: str, pg_dsn: str,
                                                         sqlite_dsn: str,
                                                         tmp_path: Path) -> None:
    dsn = pg_dsn if dialect == "postgres" else sqlite_dsn
    if dialect == "postgres":
        pg_exec(dsn, PG_SCHEMA)
    else:
        with sqlite3.connect(dsn.removeprefix("sqlite:///")) as conn:
            conn.executescript(SQLITE_SCHEMA)
    _project(tmp_path, {"env": dsn})
    (target,) = targets_from_config(None, tmp_path)
    from lockplane.dialects import get_dialect

    now = datetime.now(UTC).replace(microsecond=0)
    with get_dialect(dialect).connect(dsn) as db:
        state = DriftState(db)
        assert state.seen("env") is None and state.acknowledgements() == []
        state.record_seen("env", "drift", "f" * 64, ["env has extra column t.a"])
        state.add_acknowledgement(Acknowledgement("f" * 64, "env", "ana", now,
                                                  now + timedelta(days=1), "why"))
        state.record_seen("env", "acknowledged", "f" * 64, ["env has extra column t.a"])
    with get_dialect(dialect).connect(dsn) as db:
        state = DriftState(db)
        seen = state.seen("env")
        assert seen is not None and seen.status == "acknowledged"
        assert seen.items == ["env has extra column t.a"]
        (ack,) = state.acknowledgements()
        assert ack.until == now + timedelta(days=1) and ack.reason == "why"
        assert ack.active() and not ack.active(now + timedelta(days=2))
        assert state.end_acknowledgement("f" * 64) and state.acknowledgement("f" * 64) is None
    # The memory is Lockplane's state: introspection never reports it, so no drift.
    report = check_drift([target])
    assert report.environment("env").status == "clean", report.to_json()
    assert "drift_state" not in load_schema(dsn).to_json()


# --------------------------------------------------------------------------- the flow
def _run(project: Path, slack: str, **kw: Any) -> dict[str, Any]:
    return drift_check(project_dir=str(project), notify=slack, **kw)


def _run_in_new_process(project: Path, slack: str) -> None:
    """A flow run in a process of its own: nothing in memory but the databases'."""
    code = ("import sys; from flows.drift_check import drift_check; "
            "drift_check(project_dir=sys.argv[1], notify=sys.argv[2])")
    done = subprocess.run([sys.executable, "-c", code, str(project), slack], cwd=ROOT,
                          env={**os.environ}, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.mark.long
def test_flow_tells_drift_once_per_change(prefect_api: str, fake_slack: str,  # noqa: F811
                                          pg_dsn_factory: Any, sqlite_dsn: str,
                                          tmp_path: Path) -> None:
    prod = pg_dsn_factory()  # type: ignore[operator]
    pg_exec(prod, PG_SCHEMA)
    with sqlite3.connect(sqlite_dsn.removeprefix("sqlite:///")) as conn:
        conn.executescript(SQLITE_SCHEMA)
    _project(tmp_path, {"prod": prod, "lite": sqlite_dsn})
    slack = _slack(fake_slack)

    # Clean: nothing to tell.
    result = _run(tmp_path, slack)
    assert result["drift"] is False and _texts() == []
    assert result["environments"]["prod"]["event"] == "clean"

    # Someone adds a column by hand: one message, in words.
    pg_exec(prod, "ALTER TABLE users ADD COLUMN emergency_fix text")
    (msg,) = _messages_during(lambda: _run(tmp_path, slack))
    assert msg.startswith("⚠️ Drift found on prod: 1 difference from ")
    assert "prod has extra column users.emergency_fix, not in the desired schema" in msg
    assert "lockplane drift ack --environment prod --fingerprint " in msg

    # The same drift: not again, here or in a new process (a restart).
    state = drift_check(project_dir=str(tmp_path), notify=slack, return_state=True)
    result = state.result()
    assert result["environments"]["prod"]["event"] == "same" and len(_texts()) == 1
    assert result["environments"]["lite"]["event"] == "clean"
    _run_in_new_process(tmp_path, slack)
    assert len(_texts()) == 1, _texts()

    # The artifact: status, counts, the items in words, the fingerprint, the memory.
    fp = result["environments"]["prod"]["fingerprint"]
    with get_client(sync_client=True) as client:
        (art,) = [a for a in client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])))
            if a.key == "drift-prod"]
    assert art.type == "table"
    rows = json.loads(art.data) if isinstance(art.data, str) else art.data
    assert rows == [{"kind": "extra", "type": "column", "object": "public.users.emergency_fix",
                     "drift": "prod has extra column users.emergency_fix, not in the "
                              "desired schema"}]
    assert art.description is not None
    assert "**prod**: drift — 1 difference(s)" in art.description and fp in art.description
    assert "same drift as already reported" in art.description

    # It changes: one message saying what is new.
    pg_exec(prod, "DROP INDEX users_email_idx")
    (msg,) = _messages_during(lambda: _run(tmp_path, slack))
    assert msg.startswith("⚠️ Drift on prod changed: now 2 differences")
    assert "New:\n• prod is missing index users_email_idx" in msg
    assert _messages_during(lambda: _run(tmp_path, slack)) == []

    # Acknowledged: not told, and `drift check` lists it as acknowledged, exit 0.
    r = lockplane("drift", "check", "--all-environments", cwd=tmp_path)
    assert r.code == 4, r.output
    r = lockplane("drift", "ack", "--environment", "prod", "--fingerprint", "0" * 12,
                  cwd=tmp_path)
    assert r.code == 3 and "not the one acknowledged" in r.stderr, r.output
    r = lockplane("drift", "ack", "--environment", "lite", cwd=tmp_path)
    assert r.code == 2 and "no drift to acknowledge" in r.stderr, r.output
    r = lockplane("drift", "ack", "--environment", "prod", "--until", "7d", "--reason",
                  "index rebuilt on Friday", "--who", "ana", cwd=tmp_path)
    assert r.code == 0 and "acknowledged by ana" in r.stderr, r.output
    r = lockplane("drift", "check", "--all-environments", cwd=tmp_path)
    assert r.code == 0, r.output
    assert "acknowledged by ana" in r.stdout and "index rebuilt on Friday" in r.stdout
    assert "prod is missing index users_email_idx" in r.stdout  # still listed
    r = lockplane("drift", "check", "--all-environments", "--format", "json", cwd=tmp_path)
    out = json.loads(r.stdout)
    assert r.code == 0 and out["status"] == "acknowledged"
    assert out["environments"][0]["acknowledged"]["reason"] == "index rebuilt on Friday"
    r = lockplane("drift", "check", "--all-environments", "--format", "markdown", cwd=tmp_path)
    assert r.code == 0 and "| prod | 🔕 acknowledged | 2 |" in r.stdout, r.output
    assert _messages_during(lambda: _run(tmp_path, slack)) == []
    _run_in_new_process(tmp_path, slack)
    assert _messages_during(lambda: _run(tmp_path, slack)) == []

    # It changes while acknowledged: told, and the acknowledgement is over.
    pg_exec(prod, "ALTER TABLE users ADD COLUMN second_fix int")
    (msg,) = _messages_during(lambda: _run(tmp_path, slack))
    assert msg.startswith("⚠️ Drift on prod changed: now 3 differences")
    assert "The acknowledgement of the earlier drift has ended." in msg
    r = lockplane("drift", "check", "--all-environments", cwd=tmp_path)
    assert r.code == 4 and "acknowledged" not in r.stdout, r.output

    # Resolved: one message, then silence.
    pg_exec(prod, "ALTER TABLE users DROP COLUMN emergency_fix, DROP COLUMN second_fix; "
                  "CREATE INDEX users_email_idx ON users (email)")
    (msg,) = _messages_during(lambda: _run(tmp_path, slack))
    assert msg.startswith("✅ Drift on prod resolved")
    assert _messages_during(lambda: _run(tmp_path, slack)) == []
    # The same drift coming back is new again.
    pg_exec(prod, "ALTER TABLE users ADD COLUMN emergency_fix text")
    (msg,) = _messages_during(lambda: _run(tmp_path, slack))
    assert msg.startswith("⚠️ Drift found on prod")
    assert not any("password" in t.lower() for t in _texts())


def test_acknowledgement_expires(prefect_api: str, fake_slack: str,  # noqa: F811
                                 sqlite_dsn: str, tmp_path: Path) -> None:
    with sqlite3.connect(sqlite_dsn.removeprefix("sqlite:///")) as conn:
        conn.executescript(SQLITE_SCHEMA + "CREATE TABLE scratch (id INTEGER PRIMARY KEY);")
    _project(tmp_path, {"lite": sqlite_dsn})
    slack = _slack(fake_slack)
    (msg,) = _messages_during(lambda: _run(tmp_path, slack))
    assert "lite has extra table scratch" in msg
    until = (datetime.now(UTC) + timedelta(seconds=4)).isoformat()
    r = lockplane("drift", "ack", "-e", "lite", "--until", until, "--reason", "cleanup "
                  "ticket 42", cwd=tmp_path)
    assert r.code == 0, r.output
    result = _run(tmp_path, slack)
    assert result["environments"]["lite"]["event"] == "acknowledged"
    assert result["environments"]["lite"]["acknowledged"] is True and len(_texts()) == 1
    time.sleep(max(0.0, (datetime.fromisoformat(until) - datetime.now(UTC)).total_seconds())
               + 0.5)
    (msg,) = _messages_during(lambda: _run(tmp_path, slack))
    assert msg.startswith("⏰ Drift on lite is no longer acknowledged")
    assert "cleanup ticket 42" in msg and "lite has extra table scratch" in msg
    assert _messages_during(lambda: _run(tmp_path, slack)) == []
    r = lockplane("drift", "check", "--all-environments", cwd=tmp_path)
    assert r.code == 4, r.output


def test_unreachable_fails_the_run_and_keeps_the_memory(
        prefect_api: str, fake_slack: str, pg_dsn: str, tmp_path: Path) -> None:  # noqa: F811
    pg_exec(pg_dsn, PG_SCHEMA + "ALTER TABLE users ADD COLUMN hotfix int;")
    gone = pg_dsn.rsplit("/", 1)[0] + "/lp_no_such_database"
    _project(tmp_path, {"prod": pg_dsn})
    slack = _slack(fake_slack)
    assert len(_messages_during(lambda: _run(tmp_path, slack))) == 1
    _project(tmp_path, {"prod": pg_dsn, "gone": gone})
    with pytest.raises(LockplaneError, match="gone: unreachable"):
        _run(tmp_path, slack)
    assert len(_texts()) == 1  # prod's drift was already told; gone is the run's failure


def test_blocks_and_bad_parameters(prefect_api: str, fake_slack: str,  # noqa: F811
                                   pg_dsn: str, tmp_path: Path) -> None:
    pg_exec(pg_dsn, PG_SCHEMA + "ALTER TABLE users ADD COLUMN hotfix int;")
    (tmp_path / "schema.sql").write_text(PG_SCHEMA)
    secret = f"pw-{secrets.token_hex(6)}"  # trust auth ignores it; it must show nowhere
    with_pw = pg_dsn.replace("postgresql://postgres@", f"postgresql://postgres:{secret}@", 1)
    block = f"drift-{secrets.token_hex(4)}"
    DatabaseTarget(dialect="postgres", dsn=with_pw).save(block)
    slack = _slack(fake_slack)
    kw = {"target": [block], "desired_schema": str(tmp_path / "schema.sql"), "notify": slack}
    (msg,) = _messages_during(lambda: drift_check(**kw))
    assert msg.startswith(f"⚠️ Drift found on {block}")
    # (Slack's plain text: <, > and & are written as entities, which Slack shows as such)
    assert "lockplane drift ack --target &lt;the database URL of" in msg
    state = drift_check(**kw, return_state=True)
    assert state.result()["environments"][block]["event"] == "same" and len(_texts()) == 1
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])))
    assert {a.key for a in artifacts} == {f"drift-{block}", "drift-report"}
    # The CLI reaches the same memory with the database's URL.
    fp = state.result()["environments"][block]["fingerprint"]
    ack = ("drift", "ack", "--target", with_pw, "--schema", str(tmp_path / "schema.sql"))
    r = lockplane(*ack, "--fingerprint", fp[:12], "--reason", "hotfix stays a week")
    assert r.code == 0 and "hotfix stays a week" in r.stderr, r.output
    outputs = [r.output]
    assert drift_check(**kw)["environments"][block]["event"] == "acknowledged"
    # Removed: the next run says once that it is no longer acknowledged.
    r = lockplane(*ack, "--remove")
    assert r.code == 0 and "no longer acknowledged" in r.stderr, r.output
    outputs.append(r.output)
    r = lockplane(*ack, "--remove")
    assert r.code == 2 and "is not acknowledged" in r.stderr, r.output
    (msg,) = _messages_during(lambda: drift_check(**kw))
    assert msg.startswith(f"⏰ Drift on {block} is no longer acknowledged (its "
                          "acknowledgement was removed)")
    assert _messages_during(lambda: drift_check(**kw)) == []
    everything = "\n".join(_texts() + outputs + [str(a.data) + str(a.description)
                                                  for a in artifacts])
    assert secret not in everything and "***" in everything
    with pytest.raises(BadInput, match="desired_schema"):
        drift_check(target=block)


# ------------------------------------------------------------- served, on a schedule
SERVE_SCRIPT = """
import sys
from prefect import serve
from prefect.deployments.schedules import create_deployment_schedule_create
from prefect.schedules import Interval
from deployments.serve import build_deployments

name, project, slack, every = sys.argv[1:]
(drift,) = [d for d in build_deployments(drift_project_dir=project)
            if d.name == "drift-check"]
drift.name = name
drift.parameters = {**drift.parameters, "notify": slack}
drift.schedules = [create_deployment_schedule_create(Interval(float(every)))]
serve(drift)
"""
RUNS_TIMEOUT_S = 150


@pytest.mark.long
def test_served_schedule_tells_drift_once(prefect_api: str, fake_slack: str,  # noqa: F811
                                          pg_dsn: str, tmp_path: Path) -> None:
    pg_exec(pg_dsn, PG_SCHEMA + "ALTER TABLE users ADD COLUMN hotfix int;")
    project = tmp_path / "project"  # as `lockplane serve` started next to lockplane.toml
    project.mkdir()
    _project(project, {"prod": pg_dsn})
    slack = _slack(fake_slack)
    name = f"drift-memory-{secrets.token_hex(4)}"
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVE_SCRIPT, name, str(project), slack, "2"], cwd=ROOT,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + RUNS_TIMEOUT_S
    deployment_id = None
    completed: list[Any] = []
    try:
        while len(completed) < 3:
            assert time.monotonic() < deadline, (
                f"{len(completed)} scheduled run(s) completed in {RUNS_TIMEOUT_S} s\n"
                + log.read_text()[-3000:])
            assert proc.poll() is None, log.read_text()[-3000:]
            time.sleep(0.5)
            if deployment_id is None:
                try:
                    with get_client(sync_client=True) as client:
                        deployment_id = client.read_deployment_by_name(
                            f"drift-check/{name}").id
                except ObjectNotFound:
                    continue
            with get_client(sync_client=True) as client:
                runs = client.read_flow_runs(deployment_filter=DeploymentFilter(
                    id=DeploymentFilterId(any_=[deployment_id])))
            broken = [r for r in runs if r.state_type in (StateType.FAILED, StateType.CRASHED)]
            assert not broken, f"{broken[0].state}\n{log.read_text()[-3000:]}"
            completed = [r for r in runs if r.state_type == StateType.COMPLETED]
    finally:
        _stop(proc)
        if deployment_id is not None:
            with get_client(sync_client=True) as client:
                client.delete_deployment(deployment_id)
    assert all(r.auto_scheduled for r in completed)
    assert completed[0].parameters == {"project_dir": str(project), "notify": slack}
    # Three runs, each its own process: the drift was told once.
    (msg,) = _texts()
    assert msg.startswith("⚠️ Drift found on prod") and "hotfix" in msg
