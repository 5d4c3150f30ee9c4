"""Clean-up a command need not wait for before going on, finished before it ends.

Dropping a scratch database is the case: PostgreSQL's DROP DATABASE waits for a
checkpoint (every dirty buffer of the server written and fsynced), a tenth of a second
to seconds on a busy server, while the command still has a target to read, a plan to
make or steps to run. Such work runs in a thread; :func:`finish` waits for all of it
(the command line calls it before it exits, and the interpreter waits for these
threads anyway)."""

from __future__ import annotations

import threading
from collections.abc import Callable

_pending: list[threading.Thread] = []
_lock = threading.Lock()


def start(work: Callable[[], None], name: str) -> None:
    """Run ``work`` in a thread of its own; ``work`` reports its own failures."""
    thread = threading.Thread(target=work, name=name)
    with _lock:
        # (a long-lived process, a flow worker, may never call finish; started under the
        # lock, so that no thread is pruned before it runs)
        _pending[:] = [t for t in _pending if t.is_alive()]
        thread.start()
        _pending.append(thread)


def finish() -> None:
    """Wait until everything started here is done."""
    while True:
        with _lock:
            if not _pending:
                return
            thread = _pending.pop()
        thread.join()
