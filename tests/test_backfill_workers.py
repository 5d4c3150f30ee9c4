"""Backfill chunks on Prefect workers: several machines share one table, and a chunk whose
worker died is finished by another.

A `process` work pool on the session's Prefect server, the `backfill-chunk` deployment on
it (as `lockplane serve --work-pool` puts it there) and two `prefect worker start`
subprocesses, each running one flow run at a time; the `backfill` flow (run here) splits
a 40k-row table into 2 chunks (one per worker) paced to take several seconds each. While
a chunk runs, its worker is SIGKILLed together with every process it started (the
chunk's flow-run subprocess runs in its own process group). The flow must notice (no
live runner holds the chunk), mark that run Crashed, run the chunk again on the other
worker from its checkpoint, and complete; the SET expression increments a counter, so
every row must end at exactly 1.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from conftest import pg_exec
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from prefect.client.schemas.objects import FlowRun, StateType

from blocks import DatabaseTarget
from deployments.serve import chunk_deployment, ensure_work_pool
from flows.backfill import backfill
from lockplane.backfill import backfill_status

ROWS = 40_000
CHUNKS = 2
RUN_TIMEOUT_S = 150  # the whole flow; typically ~40 s on 2 cores
KILL_TIMEOUT_S = 100  # for a chunk to be running on a worker with rows done


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (from /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _kill_tree(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    """``sig`` to the worker's process group and to every process it started, in
    whatever group (flow-run subprocesses get their own)."""
    mine = os.getpgid(0)
    pids = _children(proc.pid)
    groups = {proc.pid}
    for pid in pids:
        with contextlib.suppress(OSError):
            groups.add(os.getpgid(pid))
    for group in groups - {mine}:
        with contextlib.suppress(OSError):
            os.killpg(group, sig)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, sig)


@pytest.fixture
def workers(prefect_api: str,
            tmp_path: Path) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """A fresh process work pool with two workers polling it every second, each running
    one flow run at a time (so that each takes a chunk)."""
    pool = f"lp-bfw-{secrets.token_hex(4)}"
    ensure_work_pool(pool)
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PREFECT_WORKER_QUERY_SECONDS": "1",
           "PREFECT_WORKER_PREFETCH_SECONDS": "5"}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for i in range(2):
            with (tmp_path / f"worker{i}.log").open("wb") as out:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool,
                     "--type", "process", "--name", f"{pool}-w{i}", "--limit", "1"],
                    env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True))
        yield pool, procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                _kill_tree(proc, signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
            _kill_tree(proc)
            proc.wait()
        with get_client(sync_client=True) as client, contextlib.suppress(Exception):
            client.delete_work_pool(pool)


def _runs(tag: str) -> list[FlowRun]:
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(flow_run_filter=FlowRunFilter(
            tags=FlowRunFilterTags(all_=[tag])))


def _worker_of(run: FlowRun,
               procs: list[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes] | None:
    pid = (run.infrastructure_pid or "").rsplit(":", 1)[-1]
    if not pid.isdigit():
        return None
    return next((p for p in procs if p.poll() is None and int(pid) in _children(p.pid)), None)


@pytest.mark.long
def test_chunks_run_on_workers_and_a_dead_workers_chunk_is_finished(
        workers: tuple[str, list[subprocess.Popen[bytes]]], pg_dsn: str,
        tmp_path: Path) -> None:
    pool, procs = workers
    pg_exec(pg_dsn, f"""
        CREATE TABLE items (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);
        INSERT INTO items (id) SELECT g FROM generate_series(1, {ROWS}) g;""")
    block = f"bfw-{secrets.token_hex(4)}"
    DatabaseTarget(dialect="postgres", dsn=pg_dsn).save(block)
    name = f"chunk-{secrets.token_hex(4)}"
    chunk_deployment(name).apply(work_pool_name=pool)

    killed: dict[str, object] = {}
    stop = threading.Event()

    def kill_a_busy_worker() -> None:
        """SIGKILL the worker (and its flow-run subprocess) of a chunk with rows done.

        Preferably once every chunk run on that worker has had a runner for a while: a
        chunk run on the killed worker that was still starting (no runner seen yet) is
        only judged dead after ``chunk_start_s`` (45 s here), one with a runner after
        ``chunk_stale_s``. A chunk about to leave the window is killed regardless."""
        deadline = time.monotonic() + KILL_TIMEOUT_S
        while not stop.is_set() and time.monotonic() < deadline:
            time.sleep(0.3)
            status = backfill_status(pg_dsn)
            if not status:
                continue
            tag = f"backfill:{status[0].id}"
            with psycopg.connect(pg_dsn) as conn:
                rows = conn.execute(
                    "SELECT chunk, status, rows_scanned, rows_estimate "
                    "FROM lockplane.backfills").fetchall()
            going = {c: n for c, st, n, _ in rows if st == "running"}
            busy = {c: n >= (est or 0) - 5000 for c, st, n, est in rows
                    if st == "running" and 2500 <= n <= (est or 0) - 2500}
            runs = [r for r in _runs(tag) if r.state_type in (
                StateType.RUNNING, StateType.PENDING, StateType.SCHEDULED)]
            for run in runs:
                chunk = int(run.name.split("-chunk-")[1].split("-")[0])
                if run.state_type != StateType.RUNNING or chunk not in busy:
                    continue
                proc = _worker_of(run, procs)
                if proc is None:
                    continue
                # Every run is on a worker and this one's have runners, or it is about to
                # be too late.
                placed = [(_worker_of(r, procs), r.name.split("-chunk-")[1].split("-")[0])
                           for r in runs]
                if not busy[chunk] and any(
                        w is None or (w is proc and going.get(int(c), 0) < 2500)
                        for w, c in placed):
                    continue
                _kill_tree(proc)
                proc.wait(timeout=10)
                killed.update(chunk=chunk, run=run.id, worker=proc.pid, tag=tag)
                return
        killed["error"] = "no chunk was seen running on a worker with rows done"

    killer = threading.Thread(target=kill_a_busy_worker, daemon=True)
    killer.start()
    try:
        state = backfill.with_options(timeout_seconds=RUN_TIMEOUT_S)(
            target=block, table="items", set="n = n + 1", batch_size=250,
            max_rows_per_second=5000, chunks=CHUNKS,
            chunk_deployment=f"backfill-chunk/{name}", chunk_stale_s=3, chunk_start_s=45,
            return_state=True)
    finally:
        stop.set()
        killer.join(timeout=10)

    logs = "\n".join(f"--- {p.name}\n{p.read_text()[-2500:]}"
                     for p in sorted(tmp_path.glob("worker*.log")))
    assert "error" not in killed and "chunk" in killed, f"{killed}\n{logs}"
    assert state.is_completed(), f"{state}\n{logs}"
    result = state.result()
    assert result["status"] == "done" and result["chunks"] == CHUNKS
    assert result["rows_updated"] == ROWS, result
    with psycopg.connect(pg_dsn) as conn:
        # Every row updated exactly once, though a chunk died mid-way and ran again.
        assert conn.execute("SELECT count(*), min(n), max(n) FROM items").fetchone() == (
            ROWS, 1, 1)
        assert conn.execute("SELECT count(*) FROM lockplane.backfills "
                            "WHERE status = 'done'").fetchone() == (CHUNKS,)

    # The killed chunk's run was marked Crashed and a later run of it completed, on the
    # worker that was left (the other one is dead).
    runs = _runs(str(killed["tag"]))
    chunk = killed["chunk"]
    of_chunk = sorted((r for r in runs if f"-chunk-{chunk}" in (r.name or "")),
                      key=lambda r: r.created or 0)
    first = next(r for r in of_chunk if r.id == killed["run"])
    assert first.state_type == StateType.CRASHED, first.state
    assert first.state and "no longer has a live runner" in (first.state.message or "")
    later = of_chunk[of_chunk.index(first) + 1:]
    assert any(r.state_type == StateType.COMPLETED for r in later), [
        (r.name, r.state_type) for r in of_chunk]
    assert sum(p.poll() is None for p in procs) == 1  # the killed one stays dead
