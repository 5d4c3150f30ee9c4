"""Helpers for the multi-phase tests: a database of either dialect, a simulated
application that keeps reading and writing through old and new code, and waits on the
Prefect API for a flow run's approval checkpoints."""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections import Counter
from typing import Any
from uuid import UUID

import psycopg
from conftest import pg_exec
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterName,
)
from prefect.client.schemas.objects import FlowRun

from lockplane.model import Schema
from lockplane.sources import SourceContext, load_schema


class Db:
    """One test database of either dialect, with the few helpers the tests need."""

    def __init__(self, dialect: str, dsn: str) -> None:
        self.dialect, self.dsn = dialect, dsn
        self.ctx = SourceContext(dialect=dialect,
                                 server_dsn=dsn if dialect == "postgres" else None)

    @property
    def path(self) -> str:
        return self.dsn.removeprefix("sqlite:///")

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        if self.dialect == "postgres":
            with psycopg.connect(self.dsn) as conn:
                return conn.execute(sql).fetchall()
        with sqlite3.connect(self.path) as conn:
            return conn.execute(sql).fetchall()

    def execute(self, sql: str) -> None:
        if self.dialect == "postgres":
            pg_exec(self.dsn, sql)
        else:
            with sqlite3.connect(self.path) as conn:
                conn.executescript(sql)

    def schema(self) -> Schema:
        return load_schema(self.dsn, self.ctx)

    def columns(self, table: str) -> list[str]:
        if self.dialect == "postgres":
            return [r[0] for r in self.query(
                "SELECT column_name FROM information_schema.columns WHERE table_name = "
                f"'{table}' AND table_schema = 'public' ORDER BY ordinal_position")]
        return [r[1] for r in self.query(f"PRAGMA table_info({table})")]


class AppBase(threading.Thread):
    """A simulated application: old ("v1") and new ("v2") code against one database.

    ``versions`` says which code runs. Each round, every running version does
    ``_round(conn, version, n)`` on the app's own connection (autocommit), holding
    ``round_lock`` (hold it to change rows between rounds). Any error is recorded in
    ``errors``, never raised; ``ops`` counts the rounds of each version, ``both`` those run
    while v1 and v2 ran side by side. With ``fail_fast``, waiting on the app fails as soon
    as it recorded an error.
    """

    fail_fast = False

    def __init__(self, db: Db) -> None:
        super().__init__(daemon=True)
        self.db = db
        self.versions: set[str] = {"v1"}
        self.errors: list[str] = []
        self.ops: Counter[str] = Counter()
        self.both: Counter[str] = Counter()  # ops while v1 and v2 ran side by side
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.round_lock = threading.Lock()
        self.iterations = 0

    def _connect(self) -> Any:
        if self.db.dialect == "postgres":
            return psycopg.connect(self.db.dsn, autocommit=True)
        return sqlite3.connect(self.db.path, timeout=30, isolation_level=None,
                               check_same_thread=False)

    def _p(self, sql: str) -> str:
        return sql if self.db.dialect == "postgres" else sql.replace("%s", "?")

    def _one(self, conn: Any, sql: str, args: tuple[Any, ...]) -> Any:
        row = conn.execute(self._p(sql), args).fetchone()
        return row[0] if row else None

    def _round(self, conn: Any, version: str, n: int) -> None:
        raise NotImplementedError

    def run(self) -> None:
        conn = self._connect()
        n = 0
        try:
            while not self.stop.is_set():
                versions = sorted(self.versions)
                for version in versions:
                    n += 1
                    try:
                        with self.round_lock:
                            self._round(conn, version, n)
                        self.ops[version] += 1
                        if len(versions) == 2:
                            self.both[version] += 1
                    except Exception as exc:  # noqa: BLE001 - recorded, asserted on
                        self.errors.append(f"{version}: {type(exc).__name__}: {exc}")
                self.iterations += 1
                time.sleep(0.01)
        finally:
            conn.close()

    def run_until(self, version: str, ops: int, timeout_s: float = 60) -> None:
        """Wait until ``version`` has done ``ops`` more rounds."""
        goal = self.ops[version] + ops
        deadline = time.monotonic() + timeout_s
        while self.ops[version] < goal:
            self._alive(deadline)
            time.sleep(0.05)

    def _alive(self, deadline: float) -> None:
        assert time.monotonic() < deadline, f"app stalled: {self.ops}, {self.errors[:3]}"
        assert self.is_alive(), self.errors[:3]
        assert not (self.fail_fast and self.errors), self.errors[:3]

    def switch(self, *versions: str, timeout_s: float = 60) -> None:
        """Run ``versions`` from now on; returns once no round of another version is
        under way any more (the round in progress when called has ended)."""
        self.versions = set(versions)
        goal = self.iterations + 2
        deadline = time.monotonic() + timeout_s
        while self.iterations < goal:
            self._alive(deadline)
            time.sleep(0.02)

    def finish(self, timeout_s: float = 30) -> None:
        self.stop.set()
        self.join(timeout_s)
        assert not self.is_alive(), "the app did not stop"


class App(AppBase):
    """The application during a rename of users.email to users.email_address.

    ``versions`` says which code runs: "v1" reads and writes ``email``, "v2"
    ``email_address``. Each round, every running version inserts a row, reads it back,
    updates a random row and reads that back, and reads a random row the *other* version
    wrote, through its own column. Any error or wrong value is recorded, never raised.
    """

    def __init__(self, db: Db) -> None:
        super().__init__(db)
        self.written: dict[int, str] = {}  # row id -> the email it must have
        self.by: dict[int, str] = {}  # row id -> version that last wrote it

    def _round(self, conn: Any, version: str, n: int) -> None:
        col = "email" if version == "v1" else "email_address"
        value = f"{version}-{n}@app"
        if self.db.dialect == "postgres":
            new_id = self._one(conn, f"INSERT INTO users ({col}, name) VALUES (%s, %s) "
                                     "RETURNING id", (value, version))
        else:
            new_id = conn.execute(f"INSERT INTO users ({col}, name) VALUES (?, ?)",
                                  (value, version)).lastrowid
        self._check(conn, col, new_id, value, f"{version} insert")
        with self.lock:
            self.written[new_id], self.by[new_id] = value, version
            ids = list(self.written)
        target = random.choice(ids)
        value = f"{version}-{n}-upd@app"
        conn.execute(self._p(f"UPDATE users SET {col} = %s WHERE id = %s"), (value, target))
        self._check(conn, col, target, value, f"{version} update")
        with self.lock:
            self.written[target], self.by[target] = value, version
            others = [i for i, v in self.by.items() if v != version]
        if others:  # what the other code version wrote, read through this version's column
            other = random.choice(others)
            self._check(conn, col, other, self.written[other], f"{version} reads other")

    def _check(self, conn: Any, col: str, row_id: int, expected: str, what: str) -> None:
        got = self._one(conn, f"SELECT {col} FROM users WHERE id = %s", (row_id,))
        if got != expected:
            self.errors.append(f"{what}: row {row_id} has {got!r}, expected {expected!r}")


# ---------------------------------------------------------------------------- Prefect
def read_run(name: str) -> FlowRun | None:
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            name=FlowRunFilterName(any_=[name])))
    return runs[0] if runs else None


def wait_for_pause(name: str, key: str, timeout_s: float = 90,
                   worker: threading.Thread | None = None) -> UUID:
    """The id of flow run ``name`` once it waits for the approval ``key``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run = read_run(name)
        if run is not None and run.state is not None:
            if run.state.is_paused() and run.state.state_details.pause_key == key:
                return run.id
            if run.state.is_final():
                raise AssertionError(f"{name} ended {run.state.name}: {run.state.message}")
        if worker is not None and not worker.is_alive():
            raise AssertionError(f"{name}: the flow returned before pausing at {key}")
        time.sleep(0.2)
    raise AssertionError(f"{name} not paused at {key} within {timeout_s}s")


def artifacts(run_id: UUID) -> dict[str, str]:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])))
    return {a.key or "": str(a.data) for a in found}
