"""The operator's view in the Prefect UI, in a real browser (Debian's chromium driven by
Playwright) against the session's Prefect server (conftest ``prefect_server``).

A multi-phase rename runs to its first approval; the paused run's page, its approval
artifact and the Resume form are opened and photographed (under the test's tmp dir), and
what they show is asserted: the run is Paused, the artifact gives the approve command,
the form's ``approved`` choice starts empty, and no API error appears anywhere. The
commands the artifact prints are then run exactly as printed, in a shell that knows
nothing of the test's Prefect settings. A second test rejects a run of the served
deployment (the demo's path) and checks it ends Cancelled with no ERROR in its logs.

The browser is Debian's (``scripts/setup.sh`` installs it as root); Playwright's own
download is not used. Where chromium is missing the test is skipped, except under
CI=true, where it fails: the browser test must run in CI.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
from conftest import PrefectServer
from phase_support import Db, wait_for_pause
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.client.schemas.objects import StateType
from test_multiphase_flow import SQLITE_DESIRED, SQLITE_SETUP, FlowThread, _name, _plan

import flows.multiphase_migration as mpflow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking"]
IN_CI = os.environ.get("CI", "").lower() == "true"
BIN = Path(sys.executable).parent  # the venv's bin: where the `lockplane` script is

# What an API failure looks like in the UI: its toasts and the browser's own message.
API_ERRORS = re.compile(r"Failed to fetch|NetworkError|Network Error|Internal Server Error"
                        r"|Something went wrong|Failed to load", re.IGNORECASE)


def _browser_missing() -> str | None:
    if not os.path.exists(CHROMIUM):
        return f"chromium is not installed ({CHROMIUM}; scripts/setup.sh installs it as root)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install -e '.[test]')"
    return None


_missing = _browser_missing()
if _missing and IN_CI:
    raise RuntimeError(f"CI=true and the browser test cannot run: {_missing}")
pytestmark = pytest.mark.skipif(_missing is not None, reason=_missing or "")


@pytest.fixture
def page(tmp_path: Path) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            pg = browser.new_page(viewport={"width": 1400, "height": 1000})
            pg.set_default_timeout(30_000)
            pg.api_failures = []  # type: ignore[attr-defined]
            # (ERR_ABORTED: a request the page itself dropped on navigating away.)
            pg.on("requestfailed", lambda r: pg.api_failures.append(  # type: ignore
                f"{r.method} {r.url}: {r.failure}")
                if "/api/" in r.url and "ERR_ABORTED" not in str(r.failure) else None)
            pg.on("response", lambda r: pg.api_failures.append(  # type: ignore
                f"{r.request.method} {r.url}: HTTP {r.status}")
                if "/api/" in r.url and r.status >= 400 else None)
            yield pg
        finally:
            browser.close()


def _no_api_error(pg: object, where: str) -> None:
    text = pg.locator("body").inner_text()  # type: ignore[attr-defined]
    toasts = pg.locator(".p-toast, [role=alert]").all_inner_texts()  # type: ignore
    assert not API_ERRORS.search(text), f"{where}: an error is shown: {text[:2000]}"
    assert not [t for t in toasts if t.strip()], f"{where}: notifications: {toasts}"
    assert not pg.api_failures, f"{where}: API requests failed: {pg.api_failures}"  # type: ignore


def _artifacts(run_id: UUID) -> list[tuple[str, str]]:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])))
    return [(a.key or "", str(a.data)) for a in found]


def _logs(run_id: UUID, until: str | None = None,
          timeout_s: float = 15.0) -> list[tuple[int, str]]:
    """The run's logs; ``until``: read again until one holds it (log records reach the
    server in batches, after the pause the test waited for), at most ``timeout_s``."""
    from prefect.logging.handlers import APILogHandler

    deadline = time.monotonic() + timeout_s
    while True:
        APILogHandler().flush()
        with get_client(sync_client=True) as client:
            logs = [(log.level, log.message) for log in client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))]
        if until is None or any(until in m for _, m in logs) or time.monotonic() > deadline:
            return logs
        time.sleep(0.25)


def _printed_commands(md: str, run_id: UUID) -> tuple[str, str]:
    """The approve and the reject command, exactly as the artifact prints them."""
    lines = [ln for ln in md.splitlines() if f"lockplane approve {run_id}" in ln]
    approve = [ln for ln in lines if "--reject" not in ln]
    reject = [ln for ln in lines if "--reject" in ln]
    assert len(approve) == 1 and len(reject) == 1, md
    return approve[0], reject[0]


def _run_as_printed(command: str) -> subprocess.CompletedProcess[str]:
    """A shell with `lockplane` on its PATH and no Prefect settings: only what the
    command itself says reaches the Prefect API."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PREFECT_HOME"] = os.environ.get("PREFECT_HOME", "")  # no ~/.prefect profiles
    return subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mpflow, "APPROVAL_POLL_S", 0.1)  # 0.5 s by default


def test_paused_run_in_the_browser(prefect_server: PrefectServer, tmp_path: Path,
                                   page: object) -> None:
    pg = page
    shots = tmp_path / "screenshots"
    shots.mkdir()
    db = Db("sqlite", f"sqlite:///{tmp_path / 'app.db'}")
    db.execute(SQLITE_SETUP)
    mp, plan = _plan(db, tmp_path, SQLITE_DESIRED)
    name = _name("ui")
    flow = FlowThread(name, plan=str(plan), target=db.dsn, approval_timeout_s=3600)
    flow.start()
    run_id = wait_for_pause(name, "approve-phase-1", worker=flow)

    # One approval artifact for this wait; the log speaks the operator's language.
    arts = _artifacts(run_id)
    approvals = [md for key, md in arts if key == f"mp-{mp.id}-approve-phase-1"]
    assert len(approvals) == 1, [k for k, _ in arts]
    approve_cmd, reject_cmd = _printed_commands(approvals[0], run_id)
    assert approve_cmd.startswith(f"PREFECT_API_URL={prefect_server.api_url} lockplane ")
    logs = [m for _, m in _logs(run_id, until="waiting for an operator's approval")]
    assert any("waiting for an operator's approval (up to 1 hour)" in m for m in logs), logs
    assert not any(re.search(r"\d+s\b", m) and "waiting" in m for m in logs), logs

    # The run's page: Paused, with Resume.
    pg.goto(f"{prefect_server.ui_url}/runs/flow-run/{run_id}")  # type: ignore[attr-defined]
    badge = pg.get_by_text("Paused", exact=True).first  # type: ignore[attr-defined]
    badge.wait_for()
    pg.get_by_text("waiting for an operator's approval").first.wait_for()  # type: ignore
    pg.screenshot(path=str(shots / "1-paused-run.png"), full_page=True)  # type: ignore
    assert badge.is_visible()
    _no_api_error(pg, "the flow run page")

    # The artifact, from the run's Artifacts tab.
    pg.get_by_text("Artifacts", exact=True).first.click()  # type: ignore[attr-defined]
    card = pg.locator(".artifact-card", has_text=f"mp-{mp.id}-approve-phase-1")  # type: ignore
    card.first.wait_for()
    pg.screenshot(path=str(shots / "2-artifacts-tab.png"), full_page=True)  # type: ignore
    assert card.count() == 1
    card.first.click()
    pg.get_by_text("Waiting for approval").first.wait_for()  # type: ignore
    pg.get_by_text(approve_cmd).first.wait_for()  # type: ignore
    pg.screenshot(path=str(shots / "3-approval-artifact.png"), full_page=True)  # type: ignore
    artifact_text = pg.locator("body").inner_text()  # type: ignore[attr-defined]
    assert approve_cmd in artifact_text and reject_cmd in artifact_text
    _no_api_error(pg, "the artifact page")

    # The Resume form: `approved` is shown with nothing chosen.
    pg.goto(f"{prefect_server.ui_url}/runs/flow-run/{run_id}")  # type: ignore[attr-defined]
    pg.get_by_role("button", name="Resume").click()  # type: ignore[attr-defined]
    modal = pg.locator(".p-modal__card")  # type: ignore[attr-defined]
    field = modal.locator(".schema-form-property").filter(
        has=pg.locator(".schema-form-property__label", has_text=re.compile("^Approved")))  # type: ignore
    field.wait_for()
    field.scroll_into_view_if_needed()
    pg.screenshot(path=str(shots / "4-resume-form.png"))  # type: ignore[attr-defined]
    assert field.locator("[role=switch][aria-checked=true], input:checked").count() == 0
    # A select with nothing chosen (a bool would be a toggle that starts off = "no").
    shown = field.locator(".p-select-button__value")
    assert shown.count() == 1, field.inner_html()
    assert shown.inner_text().strip() == "", shown.inner_text()
    # Submitting without a choice is refused by the form: the run stays paused.
    modal.locator("textarea").first.fill("nobody")
    modal.get_by_role("button", name="Submit").click()
    refusal = field.get_by_text("'approved' is a required property")
    refusal.wait_for()  # the form's own check answered (no fixed wait)
    pg.screenshot(path=str(shots / "5-submit-without-choice.png"))  # type: ignore
    assert refusal.is_visible()
    with get_client(sync_client=True) as client:
        assert client.read_flow_run(run_id).state.is_paused()  # type: ignore[union-attr]
    assert not pg.api_failures, pg.api_failures  # type: ignore[attr-defined]

    # The printed commands work as printed: approve, then reject at the next wait.
    done = _run_as_printed(approve_cmd)
    assert done.returncode == 0, done.stderr
    wait_for_pause(name, "approve-phase-2", worker=flow)
    assert len([k for k, _ in _artifacts(run_id)
                if k == f"mp-{mp.id}-approve-phase-2"]) == 1
    md2 = dict(_artifacts(run_id))[f"mp-{mp.id}-approve-phase-2"]
    done = _run_as_printed(_printed_commands(md2, run_id)[1])
    assert done.returncode == 0, done.stderr
    state = flow.finish()
    assert state.type == StateType.CANCELLED and "rejected by" in str(state.message)
    assert not [m for level, m in _logs(run_id) if level >= 40]


def test_rejected_deployed_run_ends_cancelled_without_error(
        prefect_server: PrefectServer, tmp_path: Path) -> None:
    """The demo's path: a served deployment suspends; the operator rejects; the run ends
    Cancelled, with one approval artifact and no ERROR (no traceback) in its logs."""
    from prefect.deployments import run_deployment
    from test_multiphase_flow import _wait_for_deployment

    db = Db("sqlite", f"sqlite:///{tmp_path / 'app.db'}")
    db.execute(SQLITE_SETUP)
    mp, plan = _plan(db, tmp_path, SQLITE_DESIRED)
    log = tmp_path / "serve.log"
    code = "from deployments.serve import serve_all; serve_all()"
    with log.open("wb") as out:
        server = subprocess.Popen([sys.executable, "-c", code], stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True,
                                  env={**os.environ, "PREFECT_RUNNER_POLL_FREQUENCY": "1"})
    try:
        _wait_for_deployment("multiphase-migration/multiphase-migration", server, log)
        run = run_deployment("multiphase-migration/multiphase-migration", timeout=0,
                             parameters={"plan": str(plan), "target": db.dsn})
        run_id = wait_for_pause(run.name, "approve-phase-1", timeout_s=120)
        md = dict(_artifacts(run_id))[f"mp-{mp.id}-approve-phase-1"]
        done = _run_as_printed(_printed_commands(md, run_id)[1])
        assert done.returncode == 0, done.stderr
        deadline = time.monotonic() + 120
        while True:
            with get_client(sync_client=True) as client:
                final = client.read_flow_run(run_id)
            # The run is final; its process is done once the engine says so (serve keeps
            # running in real life: do not stop it under a run still finishing).
            if final.state and final.state.is_final() \
                    and f"Execution of flow run '{run_id}' aborted" in log.read_text():
                break
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    assert final.state.type == StateType.CANCELLED, (final.state, log.read_text()[-3000:])
    assert "rejected by" in str(final.state.message)
    keys = [k for k, _ in _artifacts(run_id)]
    assert keys.count(f"mp-{mp.id}-approve-phase-1") == 1, keys  # not again on resume
    logs = _logs(run_id)
    assert not [m for level, m in logs if level >= 40], logs
    assert "Traceback" not in log.read_text() and "ERROR" not in log.read_text()
    assert sum("Suspending flow run" in m for _, m in logs) == 1, logs
    with sqlite3.connect(db.path) as conn:  # stopped after phase 1, nothing lost
        assert conn.execute("SELECT count(*) FROM users").fetchone()[0] == 200
