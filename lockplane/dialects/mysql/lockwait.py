"""MySQL / MariaDB lock waits: who blocks a DDL statement waiting for its metadata lock.

A DDL statement waits for its table's exclusive metadata lock behind every open
transaction that has touched the table (``Waiting for table metadata lock`` in the
process list). The server names no holder without the optional metadata-lock
instrumentation, so while the step's session waits, a second session lists the
sessions with an open InnoDB transaction older than the attempt (INNODB_TRX joined with
PROCESSLIST): the holders are among them. ``--cancel-blockers-after`` ends their running
statements (``KILL QUERY``); one idle in its transaction keeps its locks, and is named.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import TYPE_CHECKING, Any

import pymysql

from ...lockwait import Blocker, clean_query

if TYPE_CHECKING:
    from . import MySQLDatabase

POLL_S = 0.05
# What a session waiting for a metadata lock shows as its state.
_WAITING = "%metadata lock%"
_WAITS = """
SELECT 1 FROM information_schema.PROCESSLIST WHERE ID = %s AND STATE LIKE %s
"""
_OPEN_TRANSACTIONS = """
SELECT p.ID, p.USER, p.COMMAND, TIMESTAMPDIFF(MICROSECOND, t.trx_started, NOW(6)) / 1e6,
       p.TIME, LEFT(p.INFO, 400)
FROM information_schema.INNODB_TRX t
JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id
WHERE p.ID NOT IN (%s, %s)
ORDER BY t.trx_started, p.ID
"""


class MySQLLockWatch:
    """A thread with its own session, watching one session's metadata-lock waits."""

    def __init__(self, db: MySQLDatabase) -> None:
        from . import MySQLDatabase

        self.session_id = int(db.query("SELECT CONNECTION_ID()")[0][0])
        self.watch = MySQLDatabase(db.dialect, db.dsn, params=db.params)
        self.own = {self.session_id, int(self.watch.query("SELECT CONNECTION_ID()")[0][0])}
        self._mutex = threading.Lock()
        self._armed = threading.Event()
        self._stop = threading.Event()
        self._seen: list[Blocker] = []
        self._cancel_at: float | None = None
        self._cancelled: list[Blocker] = []
        self._refused: list[Blocker] = []
        self._refused_ids: set[int] = set()
        self._thread = threading.Thread(target=self._run, name="lockplane-lockwatch",
                                        daemon=True)
        self._thread.start()

    def start_attempt(self) -> None:
        with self._mutex:
            self._seen = []
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
        self.watch.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._armed.wait(timeout=0.2) or self._stop.is_set():
                continue
            try:
                seen = self._poll()
                if seen:
                    with self._mutex:
                        self._seen = seen
                        cancel_at = self._cancel_at
                    if cancel_at is not None and time.monotonic() >= cancel_at:
                        self._cancel(seen)
            except pymysql.Error:
                return  # the watch is a help: without it, blockers are just unknown
            self._stop.wait(POLL_S)

    def _poll(self) -> list[Blocker]:
        if not self.watch.query(_WAITS, (self.session_id, _WAITING)):
            return []
        rows: list[Any] = self.watch.query(_OPEN_TRANSACTIONS, tuple(sorted(self.own)))
        return [Blocker(pid=int(r[0]), application_name="", user=str(r[1] or ""),
                        state="idle in transaction" if r[2] == "Sleep" else "active",
                        transaction_s=float(r[3]) if r[3] is not None else None,
                        query_s=float(r[4]) if r[2] != "Sleep" and r[4] is not None
                        else None, query=clean_query(r[5]))
                for r in rows]

    def _cancel(self, seen: list[Blocker]) -> None:
        for b in seen:
            if b.cancellable:
                with contextlib.suppress(pymysql.Error):
                    self.watch.execute(f"KILL QUERY {int(b.pid)}")
                    with self._mutex:
                        self._cancelled.append(b)
            elif b.pid not in self._refused_ids:
                self._refused_ids.add(b.pid)
                with self._mutex:
                    self._refused.append(b)
