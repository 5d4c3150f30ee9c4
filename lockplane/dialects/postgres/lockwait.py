"""PostgreSQL lock waits: which errors they are, who blocks a waiting session, cancelling.

A step's session cannot say who blocks it while it waits, and once its ``lock_timeout``
fires it no longer waits (``pg_blocking_pids`` is then empty). So a second session polls
``pg_blocking_pids()`` of the step's session while an attempt runs, keeping what it saw
last; with ``--cancel-blockers-after`` it also cancels (``pg_cancel_backend``) the
blockers' running statements while the step still waits in the queue, so the step is
granted the lock the moment they abort.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import TYPE_CHECKING

import psycopg

from ...lockwait import Blocker, clean_query

if TYPE_CHECKING:
    from . import PostgresDatabase

# lock_not_available (lock_timeout, NOWAIT), deadlock_detected
LOCK_WAIT_SQLSTATES = {"55P03": "lock timeout", "40P01": "deadlock"}
WATCH_APPLICATION = "lockplane-lockwatch"
# Poll often while an attempt is young (its lock wait is short), then rarely: a long
# statement (CONCURRENTLY, VALIDATE) is not worth a pg_blocking_pids() call 20 times a
# second, which takes the lock manager's partition locks.
FAST_POLL_S = 0.04
SLOW_POLL_S = 0.5
FAST_FOR_S = 2.0

# Only when the step's session waits on a lock is pg_blocking_pids() called at all.
_BLOCKERS = """
WITH w AS (
    SELECT pg_blocking_pids(pid) AS pids FROM pg_stat_activity
    WHERE pid = %(pid)s AND wait_event_type = 'Lock')
SELECT b.pid, coalesce(b.application_name, ''), coalesce(b.usename::text, ''),
       coalesce(b.state, ''), coalesce(b.backend_type, ''),
       extract(epoch FROM clock_timestamp() - b.xact_start)::float8,
       extract(epoch FROM clock_timestamp() - b.query_start)::float8,
       left(b.query, 400)
FROM w CROSS JOIN LATERAL unnest(w.pids) AS p(pid)
JOIN pg_stat_activity b ON b.pid = p.pid
ORDER BY b.xact_start NULLS LAST, b.pid
"""


def sqlstate(exc: BaseException) -> str | None:
    return getattr(getattr(exc, "diag", None), "sqlstate", None) or getattr(
        exc, "sqlstate", None)


def lock_wait_failure(exc: BaseException) -> str | None:
    return LOCK_WAIT_SQLSTATES.get(sqlstate(exc) or "")


def is_lockplane(application_name: str) -> bool:
    return application_name.startswith("lockplane")


class PostgresLockWatch:
    """A thread with its own session, watching one session's lock waits."""

    def __init__(self, db: PostgresDatabase) -> None:
        self.pid = db.conn.info.backend_pid
        self.conn = psycopg.connect(db.dsn, autocommit=True, connect_timeout=10,
                                    application_name=WATCH_APPLICATION)
        self.own = {self.pid, self.conn.info.backend_pid}
        self._mutex = threading.Lock()
        self._armed = threading.Event()
        self._stop = threading.Event()
        self._attempt_started = 0.0
        self._seen: list[Blocker] = []
        self._cancel_at: float | None = None
        self._cancelled: list[Blocker] = []
        self._refused: list[Blocker] = []
        self._refused_pids: set[int] = set()  # reported once each
        self._thread = threading.Thread(target=self._run, name="lockplane-lockwatch",
                                        daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ called by the executor
    def start_attempt(self) -> None:
        with self._mutex:
            self._seen = []
            self._attempt_started = time.monotonic()
        self._armed.set()

    def end_attempt(self) -> None:
        self._armed.clear()

    def blockers(self) -> list[Blocker]:
        with self._mutex:
            return list(self._seen)

    def cancel_from(self, deadline: float | None) -> None:
        with self._mutex:
            self._cancel_at = deadline

    def take_cancelled(self) -> tuple[list[Blocker], list[Blocker]]:
        with self._mutex:
            done, refused = self._cancelled, self._refused
            self._cancelled, self._refused = [], []
            return done, refused

    def close(self) -> None:
        self._stop.set()
        self._armed.set()
        self._thread.join(timeout=5)
        with contextlib.suppress(psycopg.Error):
            self.conn.close()

    # ------------------------------------------------------------ the watching thread
    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._armed.wait(timeout=0.2) or self._stop.is_set():
                continue
            try:
                seen = self._poll()
            except psycopg.Error:
                return  # the watch is a help: without it, blockers are just unknown
            if seen:
                with self._mutex:
                    self._seen = seen
                    cancel_at = self._cancel_at
                if cancel_at is not None and time.monotonic() >= cancel_at:
                    try:
                        self._cancel(seen)
                    except psycopg.Error:
                        return
            young = time.monotonic() - self._attempt_started < FAST_FOR_S
            self._stop.wait(FAST_POLL_S if young else SLOW_POLL_S)

    def _poll(self) -> list[Blocker]:
        rows = self.conn.execute(_BLOCKERS, {"pid": self.pid}).fetchall()
        return [Blocker(pid=r[0], application_name=r[1], user=r[2], state=r[3],
                        backend_type=r[4], transaction_s=r[5], query_s=r[6],
                        query=clean_query(r[7]),
                        lockplane=r[0] in self.own or is_lockplane(r[1]))
                for r in rows]

    def _cancel(self, seen: list[Blocker]) -> None:
        for b in seen:
            if b.cancellable:
                ok = self.conn.execute("SELECT pg_catalog.pg_cancel_backend(%s)",
                                       (b.pid,)).fetchone()
                if ok and ok[0]:
                    with self._mutex:
                        self._cancelled.append(b)
            elif not b.lockplane and b.pid not in self._refused_pids:
                self._refused_pids.add(b.pid)
                with self._mutex:
                    self._refused.append(b)
