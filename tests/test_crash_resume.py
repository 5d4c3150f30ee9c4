"""Crash, then run the same plan again: it finishes (issue 12, item 1).

PostgreSQL goes on running a statement whose client was killed: a CREATE INDEX
CONCURRENTLY or a VALIDATE CONSTRAINT completes (and commits) after the Lockplane process
that sent it is gone. Here a lock-safe plan (a batched backfill, NOT VALID + VALIDATE
checks and a foreign key, CONCURRENTLY builds) over 200k rows is applied by the console
script and SIGKILLed 20 times, at every kind of moment: while it validates on its shadow
database, right after each server-side statement starts (the server runs on without its
client), right after one ends (before the process could record it), mid-backfill. Each
kill is followed by a run of the same plan file, which must carry on; the last finishes.
Rows are intact, no INVALID index and no scratch database is left, and the history shows
every interrupted attempt.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from lockplane.crash import before_step, resume_point
from lockplane.dialects import connect
from lockplane.plan import build_plan
from lockplane.state import MigrationRecord
from tests.cli_inprocess import lockplane
from tests.conftest import pg_exec

LOCKPLANE = [sys.executable, "-m", "lockplane"]
ROWS = 200_000

FROM = """
CREATE TABLE owners (id bigint PRIMARY KEY);
CREATE TABLE items (id bigint PRIMARY KEY, owner_id bigint, name text, qty int);
"""
TO = """
CREATE TABLE owners (id bigint PRIMARY KEY);
CREATE TABLE items (id bigint PRIMARY KEY, owner_id bigint REFERENCES owners (id), name text,
                    qty int NOT NULL CHECK (qty >= 0),
                    token uuid NOT NULL DEFAULT gen_random_uuid());
CREATE INDEX items_name ON items (name);
CREATE INDEX items_owner ON items (owner_id, qty);
"""
DATA = f"""
INSERT INTO owners SELECT generate_series(1, 1000);
INSERT INTO items SELECT i, 1 + i % 1000, md5(i::text), i % 100
    FROM generate_series(1, {ROWS}) i;
"""
# What each row holds before the apply, and must hold after it.
FINGERPRINT = ("SELECT count(*), sum(id), sum(owner_id), sum(qty), "
               "md5(string_agg(name, ',' ORDER BY id)) FROM items")

# The statements the kills aim at, in plan order (each matched in pg_stat_activity).
BACKFILL = 'UPDATE "public"."items" SET "token"'
V_TOKEN = 'VALIDATE CONSTRAINT "token_not_null_lp"'
V_QTY = 'VALIDATE CONSTRAINT "qty_not_null_lp"'
V_CHECK = 'VALIDATE CONSTRAINT "items_qty_check"'
CIC_NAME = 'CREATE INDEX CONCURRENTLY "items_name"'
CIC_OWNER = 'CREATE INDEX CONCURRENTLY "items_owner"'
V_FK = 'VALIDATE CONSTRAINT "items_owner_id_fkey"'
SHADOW = "shadow"  # while it validates on a scratch database


@dataclass(frozen=True)
class Kill:
    at: str  # one of the statements above, or SHADOW
    when: str = "start"  # start: as soon as it runs | end: as soon as it has ended
    delay: float = 0.0  # then wait this long
    # Hold a writer's lock on the table from before the build starts until ``release``
    # seconds after the next run has connected: a CONCURRENTLY build waits for it, so the killed
    # process's build is still running on the server when the re-run looks.
    hold: bool = False
    release: float = 1.5
    then_wait: float | None = None  # the next run's --orphan-wait (None: its default)


@pytest.fixture
def planned(pg_dsn_factory) -> tuple[str, Any]:
    """A database at FROM (no rows) and the plan that takes it to TO."""
    source, desired = pg_dsn_factory(), pg_dsn_factory()
    pg_exec(source, FROM)
    pg_exec(desired, TO)
    with connect(source) as db:
        before = db.introspect()
    with connect(desired) as db:
        after = db.introspect()
    return source, build_plan(before, after)


@pytest.fixture
def target(planned: tuple[str, Any]) -> tuple[str, Any]:
    """The same with 200k rows."""
    pg_exec(planned[0], DATA)
    return planned


def _rows(dsn: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def _admin(dsn: str) -> str:
    return dsn.rsplit("/", 1)[0] + "/postgres"


class Watcher:
    """Polls the server for the moment a kill aims at.

    Under load a short statement can run between two polls: then its effect (a validated
    constraint, a valid index) is seen, before the process could record the step, and
    the kill lands there; and once the process has recorded the step, the kill lands
    wherever it is. Every kill is a kill; ``missed`` counts the moments not hit exactly.
    """

    def __init__(self, dsn: str, plan: Any) -> None:
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.dsn = dsn
        self.plan = plan
        self.held: psycopg.Connection[Any] | None = None
        self.gone: set[int] = set()  # sessions of killed processes (their orphans)
        self.missed: list[Kill] = []

    def q(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, params).fetchall()

    def sessions(self, text: str) -> list[tuple[int, str]]:
        # (client backends: a build's parallel workers show its query and name too)
        rows = self.q("SELECT pid, state FROM pg_stat_activity "
                      "WHERE datname = current_database() AND backend_type = 'client backend' "
                      "AND application_name LIKE "
                      "'lockplane %%' AND position(%s in query) > 0 AND NOT (pid = ANY(%s))",
                      (text, list(self.gone)))
        return [(int(p), s) for p, s in rows]

    def ours(self) -> set[int]:
        return {int(r[0]) for r in self.q(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name LIKE 'lockplane %%'")}

    def scratch(self) -> set[str]:
        return {r[0] for r in self.q("SELECT datname FROM pg_database "
                                     "WHERE datname LIKE 'lockplane\\_scratch\\_%%'")}

    def recorded(self) -> int:
        """Steps the running record has done (-1: none yet)."""
        if self.q("SELECT to_regclass('lockplane.migrations')")[0][0] is None:
            return -1
        return int(self.q("SELECT coalesce(max(steps_done), -1) FROM lockplane.migrations "
                          "WHERE result = 'running'")[0][0])

    def done(self, text: str) -> bool:
        """The statement's effect is there (committed)."""
        name = text.split('"')[1]
        if text.startswith("VALIDATE"):
            rows = self.q("SELECT convalidated FROM pg_constraint WHERE conname = %s", (name,))
        elif text.startswith("CREATE INDEX"):
            rows = self.q("SELECT indisvalid FROM pg_index "
                          "WHERE indexrelid = to_regclass(%s)", (name,))
        else:
            return False
        return bool(rows and rows[0][0])

    def wait_for(self, kill: Kill, proc: subprocess.Popen[str], seen_scratch: set[str],
                 ) -> set[str]:
        """Return when the moment has come (the scratch databases made since, for a
        SHADOW kill); fail if the process ends first."""
        deadline = time.monotonic() + 60
        step = next((i + 1 for i, st in enumerate(self.plan.steps)
                     if any(kill.at in sql for sql in st.sql)), 0)
        pid = None
        if kill.hold:
            # Once the orphans of the kills before have ended (they must not wait for it):
            # the build waits for this writer before it starts.
            while self.q("SELECT 1 FROM pg_stat_activity WHERE pid = ANY(%s)",
                         (list(self.gone),)):
                assert time.monotonic() < deadline, f"orphans never ended before {kill}"
                time.sleep(0.01)
            self.held = _writer(self.dsn)
        already = kill.at != SHADOW and self.done(kill.at)  # (before this run did anything)
        while time.monotonic() < deadline:
            assert proc.poll() is None, (f"ended before {kill}: exit {proc.returncode}\n"
                                         f"{proc.stderr.read() if proc.stderr else ''}")
            if kill.at == SHADOW:
                made = self.scratch() - seen_scratch
                if made:
                    return made
                if self.recorded() >= 0:
                    self.missed.append(kill)
                    return made
                time.sleep(0.003)
                continue
            found = self.sessions(kill.at)
            if kill.when == "start" and any(s == "active" for _, s in found):
                return set()
            if kill.when == "end" and kill.at == BACKFILL:
                if pid is None and found:
                    pid = found[0][0]
                elif pid is not None and not any(p == pid and s == "active"
                                                 for p, s in found):
                    return set()  # between two batches
            if self.done(kill.at):  # ended, not yet recorded: "end", or a missed start
                if kill.when != "end" or already:
                    self.missed.append(kill)
                return set()
            if self.recorded() >= step:
                self.missed.append(kill)
                return set()
            time.sleep(0.003)
        raise AssertionError(f"{kill} never came")


def _apply(path: Path, dsn: str, wait: float | None) -> list[str]:
    return [*LOCKPLANE, "apply", str(path), "--target", dsn, "--auto-approve",
            *(["--orphan-wait", str(wait)] if wait is not None else [])]


def _writer(dsn: str) -> psycopg.Connection[Any]:
    """A transaction that could write to items: a CONCURRENTLY build waits for it before
    it validates (a held snapshot would not do: when a long transaction elsewhere on the
    server holds every xmin back, the build sees no snapshot older than its own)."""
    conn = psycopg.connect(dsn, autocommit=False)
    conn.execute("LOCK TABLE items IN ROW EXCLUSIVE MODE")
    return conn


def _crash_and_resume(target: tuple[str, Any], tmp_path: Path, kills: list[Kill],
                      ) -> dict[str, Any]:
    dsn, plan = target
    path = tmp_path / "plan.json"
    path.write_text(plan.to_json())
    before = _rows(dsn, FINGERPRINT)
    watcher = Watcher(dsn, plan)
    left_scratch: set[str] = set()
    outputs: list[str] = []
    started = time.monotonic()
    env = {**os.environ, "COLUMNS": "200"}
    held: psycopg.Connection[Any] | None = None
    timers: list[threading.Thread] = []
    previous: Kill | None = None

    def release_later(kill: Kill | None) -> None:
        """``kill.release`` seconds after the next run has connected, let the build go."""
        if held is None or kill is None or not kill.hold:
            return
        conn, gone = held, list(watcher.gone)

        def release() -> None:
            try:
                with psycopg.connect(dsn, autocommit=True) as look:
                    deadline = time.monotonic() + 60
                    while time.monotonic() < deadline and not look.execute(
                            "SELECT 1 FROM pg_stat_activity WHERE application_name LIKE "
                            "'lockplane apply %%' AND NOT (pid = ANY(%s))",
                            (gone,)).fetchall():
                        time.sleep(0.01)
                time.sleep(kill.release)
            finally:
                conn.close()

        timer = threading.Thread(target=release)
        timer.start()
        timers.append(timer)

    try:
        for kill in kills:
            seen = watcher.scratch()
            proc = subprocess.Popen(_apply(path, dsn, previous and previous.then_wait),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    text=True, env=env)
            release_later(previous)
            made = watcher.wait_for(kill, proc, seen)
            held, watcher.held = watcher.held, None
            if kill.delay:
                time.sleep(kill.delay)
            sessions = watcher.ours()
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            assert proc.stderr is not None
            outputs.append(proc.stderr.read())
            watcher.gone |= sessions
            left_scratch |= made
            previous = kill
        # The last run is not killed: it runs in this process (the console script's
        # entry point), while the thread started here lets a held build go.
        release_later(previous)
        final = lockplane(*_apply(path, dsn, previous and previous.then_wait)[len(LOCKPLANE):])
        outputs.append(final.stderr)
    finally:
        for timer in timers:
            timer.join()
        if held is not None:
            held.close()
        watcher.conn.close()
    assert final.code == 0, "\n----\n".join(outputs)
    took = time.monotonic() - started

    # Every re-run carried on: none refused, none failed (each one but the last was
    # killed at a later point than the one before, so each got past its predecessor's).
    # What the runs said, without the plan each one prints first.
    text = "\n----\n".join("\n".join(
        line for line in o.splitlines()
        if line.strip() and not line.startswith((" ", "Plan:", "plan_id", "Summary")))
        for o in outputs)
    assert "hash mismatch" not in text and "re-plan" not in text, text
    # Rows intact; the plan reached its target; nothing INVALID, no scratch left behind.
    after = _rows(dsn, FINGERPRINT)
    assert after == before
    assert _rows(dsn, "SELECT count(*) FILTER (WHERE token IS NULL), "
                      "count(DISTINCT token) FROM items") == [(0, ROWS)]
    assert _rows(dsn, "SELECT count(*) FROM pg_index WHERE NOT indisvalid") == [(0,)]
    with connect(dsn) as db:
        assert db.introspect().hash() == plan.target_hash
    assert left_scratch, "no kill landed in a shadow validation"
    still = {r[0] for r in _rows(_admin(dsn), "SELECT datname FROM pg_database")}
    assert not (left_scratch & still), left_scratch & still

    # The history: every attempt whose record had started is marked interrupted (at which
    # step, noticed when), then the one that finished; `lockplane history` shows them all.
    records = [MigrationRecord(*r) for r in _rows(
        dsn, "SELECT id, plan_id, started_at, finished_at, source_hash, target_hash, "
             "hash_after, intermediate_hash, steps_total, steps_done, result, error, "
             "applied_by FROM lockplane.migrations ORDER BY id")]
    results = [r.result for r in records]
    assert results[-1] == "applied" and set(results[:-1]) == {"interrupted"}, results
    # Each run marked the record of the one killed before it, if that one had started
    # one (a kill in a shadow validation, or while waiting for an orphan, comes first).
    marked = sum(o.count(" marked interrupted: ") for o in outputs)
    why = [f"{k.at} {k.when}" for k in kills], [(r.steps_done, r.result) for r in records]
    assert marked == len(records) - 1 >= len(kills) - 3, (why, watcher.missed)
    for r in records[:-1]:
        assert r.finished_at is not None and r.error and "interrupted: the process" in r.error
        assert f"during step {r.steps_done + 1} " in r.error or (
            r.steps_done == r.steps_total and "during its last bookkeeping" in r.error), r.error
    shown = lockplane("history", "--target", dsn, "--json")
    assert shown.code == 0, shown.stderr
    assert [r["result"] for r in json.loads(shown.stdout)][::-1] == results
    listed = lockplane("history", "--target", dsn)
    assert listed.stderr.count("interrupted: the process") == len(records) - 1, listed.stderr
    return {"took": took, "text": text, "records": records, "missed": watcher.missed}


# 10 kills each, in two tests (they run side by side under -n 2): 20 in all.
ON_START = [
    Kill(SHADOW),
    Kill(BACKFILL),  # the first batch
    Kill(BACKFILL, delay=0.4),  # somewhere later in the backfill
    Kill(V_TOKEN),  # each of these goes on running on the server after the kill ...
    Kill(V_QTY),
    Kill(V_CHECK),
    # ... and this one is still running when the re-run looks: it waits for it.
    Kill(CIC_NAME, hold=True, release=3.0),
    # This one too, but the re-run waits only 0.5 s: it cancels the build, drops the
    # INVALID index the build leaves (the step's clean-up) and builds it again ...
    Kill(CIC_OWNER, hold=True, release=2.5, then_wait=0.5),
    Kill(CIC_OWNER),  # ... and is killed in that build.
    Kill(V_FK),
]
ON_END = [
    Kill(SHADOW, delay=0.2),
    Kill(BACKFILL, delay=0.2),
    Kill(BACKFILL, "end"),  # between batches
    Kill(V_TOKEN, "end"),  # complete, but the process had no time to record it
    Kill(V_QTY, "end"),
    Kill(V_CHECK, "end"),
    Kill(CIC_NAME, "end"),
    Kill(CIC_OWNER, delay=0.05, hold=True, release=1.0, then_wait=0),  # waiting; cancelled
    Kill(CIC_OWNER, "end"),
    Kill(V_FK, "end"),
]


@pytest.mark.long
def test_killed_as_statements_start(target, tmp_path: Path) -> None:
    out = _crash_and_resume(target, tmp_path, ON_START)
    # The server ran on after its client died: a re-run waited for the build to end, or
    # (on a loaded machine the build may end before the re-run looks) found the index
    # step complete.
    text = out["text"]
    assert "but the server still runs its session" in text or any(
        line.startswith("step ") and "(Create index " in line
        and "completed on the server after the process" in line
        for line in text.splitlines()), text
    print(f"{len(ON_START)} kills, all resumed, in {out['took']:.1f}s; "
          f"not exactly where aimed: {out['missed']}")


@pytest.mark.long
def test_killed_as_statements_end(target, tmp_path: Path) -> None:
    out = _crash_and_resume(target, tmp_path, ON_END)
    # Steps that completed after their process died are recognised as done.
    assert out["text"].count("completed on the server after the process") >= 2, out["text"]
    # The build left waiting is cancelled at once (--orphan-wait 0); the INVALID index it
    # leaves is dropped by the step's clean-up and the index built again. (Not asserted:
    # on a loaded machine the held build sometimes ends before the re-run looks, and the
    # re-run finds the step complete instead; either way it carries on.)
    print("cancelled an orphaned build:", "cancelled session" in out["text"])
    print(f"{len(ON_END)} kills, all resumed, in {out['took']:.1f}s; "
          f"not exactly where aimed: {out['missed']}")


# ------------------------------------------------------------------- the judgement alone
def test_resume_point_before_after_and_neither(planned) -> None:
    """The live schema is compared with the state before the step in flight and the state
    after it: at it, after it, or (changed by someone else) neither (rows play no part)."""
    dsn, plan = planned
    cic = next(i for i, s in enumerate(plan.steps) if s.kind == "create_index")
    val = next(i for i, s in enumerate(plan.steps) if s.kind == "validate_constraint"
               and "items_qty_check" in s.sql[-1])
    with connect(dsn) as db:
        base = db.introspect()
    # Pretend the run recorded everything before the CIC: its schema is what matters.
    pg_exec(dsn, 'ALTER TABLE items ADD CONSTRAINT "items_qty_check" CHECK ((qty >= 0)) '
                 "NOT VALID")

    def record(done: int, h: str) -> MigrationRecord:
        return MigrationRecord(1, "x", "", None, plan.source_hash, plan.target_hash, None, h,
                               len(plan.steps), done, "interrupted", None, None)

    def live() -> Any:
        with connect(dsn) as db:
            return db.introspect()

    at_val = live().hash()
    assert resume_point(live(), plan, record(val, at_val)).step == val
    pg_exec(dsn, 'ALTER TABLE items VALIDATE CONSTRAINT "items_qty_check"')
    point = resume_point(live(), plan, record(val, at_val))
    assert (point.step, point.completed_after_death) == (val + 1, True)
    # Someone else's change is neither before nor after the step.
    pg_exec(dsn, "ALTER TABLE owners ADD COLUMN note text")
    assert resume_point(live(), plan, record(val, at_val)) is None
    pg_exec(dsn, "ALTER TABLE owners DROP COLUMN note")

    at_cic = live().hash()
    pg_exec(dsn, 'CREATE INDEX CONCURRENTLY "items_name" ON items (name)')
    assert before_step(live(), plan.steps[cic]) is not None
    point = resume_point(live(), plan, record(cic, at_cic))
    assert (point.step, point.completed_after_death) == (cic + 1, True)
    # A build that failed (an INVALID index) is a leftover: resume at the step.
    pg_exec(dsn, 'UPDATE pg_index SET indisvalid = false '
                 "WHERE indexrelid = 'items_name'::regclass")
    assert before_step(live(), plan.steps[cic]) is None
    assert resume_point(live(), plan, record(cic, at_cic)).step == cic
    assert base.hash() == plan.source_hash
