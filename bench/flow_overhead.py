"""Benchmark: what Prefect orchestration adds to a 3-phase multi-phase migration (SQLite).

The data is the demo's (``deployments/demo.py``): a SQLite ``users`` table of 1,000 rows
whose ``email`` column is renamed to ``email_address`` in three phases (expand, migrate,
contract), with a code deploy, so an approval, after phases 1 and 2. The multi-phase plan
is built once; every run gets a fresh copy of the same database file.

  engine    the engine calls the flow makes, in the same order, in this process without
            Prefect: migration state, approval record, verification, apply_phase (shadow
            validation included, safety moderate), for the three phases.
  CLI       for reference: three ``lockplane apply-phase --next [--approver]`` child
            processes (each pays Python start-up and imports).
  flow      the ``multiphase-migration`` flow, called in this process against a temporary
            local Prefect server (``prefect server start`` on a free port with its own
            PREFECT_HOME; its database SQLite by default, as in scripts/demo.sh). A thread
            polls the run every 0.1 s and approves through the API (``approve_run``, what
            ``lockplane approve`` calls) as soon as the run pauses. Outside a deployment
            the run pauses in place and polls for its approval every APPROVAL_POLL_S.

Server start-up is not timed. Overhead = flow time - engine time (medians over
``--repeat`` runs; the first run of each also shown, cold). The flow's time is split into
the engine calls inside it (the runner functions its tasks call, timed in process), the
approval pick-up (approval sent -> the next engine call starts) and the rest: Prefect.

Target: orchestration adds < 5 s.

Usage: ``.venv/bin/python bench/flow_overhead.py [--repeat 2] [--prefect-db sqlite|postgres]
[--server DSN] [--keep]``  (``--server``: the PostgreSQL server for ``--prefect-db
postgres``). Prefect's own run logs go to stderr, the figures to stdout.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _load import DEFAULT_SERVER, create_database, drop_database

ROOT = Path(__file__).resolve().parent.parent

TARGET_OVERHEAD_S = 5.0
POLL_S = 0.1  # how often the approver looks at the run: adds up to this per approval
SERVER_START_TIMEOUT_S = 180  # a cold start is ~15-30 s on 2 busy cores


# ------------------------------------------------------------------ data
def make_plan(work: Path) -> tuple[Path, Path]:
    """The demo's database (the pristine copy every run starts from) and its plan."""
    from deployments.demo import DESIRED, make_database
    from lockplane.multiphase import plan_multiphase
    from lockplane.sources import SourceContext, load_schema

    db = work / "pristine.db"
    dsn = make_database(db)
    desired = work / "schema.sql"
    desired.write_text(DESIRED)
    ctx = SourceContext(dialect="sqlite")
    mp = plan_multiphase(load_schema(dsn, ctx), load_schema(str(desired), ctx))
    if mp.total_phases != 3:
        sys.exit(f"expected a 3-phase plan, got {mp.total_phases} ({mp.pattern})")
    plan = work / "plan.json"
    plan.write_text(mp.to_json() + "\n")
    return db, plan


def fresh_copy(pristine: Path, work: Path, label: str) -> str:
    path = work / f"{label}-{secrets.token_hex(3)}.db"
    shutil.copyfile(pristine, path)
    return f"sqlite:///{path}"


# ------------------------------------------------------------------ engine
def engine_run(plan: Path, dsn: str) -> float:
    """The flow's engine calls without Prefect (the approval recorded directly)."""
    from lockplane.execute import ApplyOptions
    from lockplane.multiphase import runner
    from lockplane.multiphase.model import read_multiphase_plan

    t0 = time.perf_counter()
    mp = read_multiphase_plan(str(plan))
    opts = ApplyOptions(safety="moderate", applied_by="bench")
    state = runner.migration_state(mp, dsn)
    while state.next_phase is not None:
        last = state.completed_phases
        if last:
            done = mp.phase(last)
            if done.requires_code_deploy and not state.approvals(last):
                runner.approve(mp, dsn, last, "bench")
            failed = [r for r in runner.verify(mp, dsn, last, actor="bench") if not r.passed]
            if failed:
                sys.exit(f"engine run: verification of phase {last} failed")
        runner.apply_phase(mp, dsn, last + 1, options=opts, actor="bench")
        state = runner.migration_state(mp, dsn)
    final = mp.phase(mp.total_phases)
    if final.verification:
        runner.verify(mp, dsn, final.phase_number, actor="bench")
    return time.perf_counter() - t0


def cli_run(plan: Path, dsn: str) -> float:
    t0 = time.perf_counter()
    for n in (1, 2, 3):
        cmd = [sys.executable, "-m", "lockplane", "apply-phase", str(plan), "--target", dsn,
               "--next", "--auto-approve"] + (["--approver", "bench"] if n > 1 else [])
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
        if proc.returncode != 0:
            sys.exit(f"lockplane apply-phase (phase {n}) failed ({proc.returncode}):\n"
                     + proc.stderr[-2000:])
    return time.perf_counter() - t0


# ------------------------------------------------------------------ Prefect server
@dataclass
class Server:
    """``prefect server start`` in its own process group, on a free port."""

    home: Path
    db_url: str | None  # None: SQLite under PREFECT_HOME
    proc: subprocess.Popen[bytes] | None = None
    url: str = ""
    started_s: float = 0.0

    def start(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/api"
        env = {**os.environ, **client_env(self.home, self.url),
               "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
               "PREFECT_SERVER_UI_ENABLED": "false",
               # The built-in block types take seconds to register and the flow needs none.
               "PREFECT_SERVER_REGISTER_BLOCKS_ON_START": "false"}
        if self.db_url:
            env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = self.db_url
        log = self.home / "server.log"
        t0 = time.perf_counter()
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                 "--port", str(port), "--no-ui", "--analytics-off"],
                env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)  # its own group: the CLI runs uvicorn as a child
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"Prefect server exited {self.proc.returncode}:\n"
                         + log.read_text()[-2000:])
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as resp:
                    if resp.status == 200:
                        self.started_s = time.perf_counter() - t0
                        return
            except OSError:
                pass
            time.sleep(0.25)
        sys.exit(f"Prefect server not healthy after {SERVER_START_TIMEOUT_S}s:\n"
                 + log.read_text()[-2000:])

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def client_env(home: Path, url: str) -> dict[str, str]:
    return {"PREFECT_HOME": str(home), "PREFECT_API_URL": url}


def drain_prefect() -> None:
    """Send queued run logs and events while the server still takes them."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    EventsWorker.drain_all(timeout=10)


# ------------------------------------------------------------------ flow
class EngineClock:
    """Times the engine inside the flow: wraps the runner functions its tasks call (this
    process only, nothing edited). Spans nest (apply_phase calls verify): only their union
    counts."""

    NAMES = ("migration_state", "verify", "approve", "apply_phase")

    def __init__(self) -> None:
        self.spans: list[tuple[float, float]] = []
        self.saved: dict[str, Callable[..., Any]] = {}

    def install(self) -> None:
        from lockplane.multiphase import runner

        for name in self.NAMES:
            self.saved[name] = getattr(runner, name)
            setattr(runner, name, self._wrap(self.saved[name]))

    def uninstall(self) -> None:
        from lockplane.multiphase import runner

        for name, fn in self.saved.items():
            setattr(runner, name, fn)

    def _wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.spans.append((t0, time.perf_counter()))
        return timed

    def busy(self, t0: float, t1: float) -> float:
        """Seconds within [t0, t1] when some engine call ran."""
        total, end = 0.0, t0
        for a, b in sorted(self.spans):
            a, b = max(a, end), min(b, t1)
            if b > a:
                total += b - a
                end = b
        return total

    def next_start(self, after: float) -> float | None:
        return min((a for a, _ in self.spans if a >= after), default=None)


@dataclass
class FlowTiming:
    seconds: float
    engine_s: float = 0.0  # engine calls inside the flow
    pickups: list[float] = field(default_factory=list)  # approval sent -> next engine call


def flow_run(plan: Path, dsn: str) -> FlowTiming:
    """Call the flow in a thread; approve each pause through the API as soon as it is seen."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    from flows.approvals import approve_run
    from flows.multiphase_migration import multiphase_migration

    name = f"bench-{secrets.token_hex(4)}"
    box: dict[str, Any] = {}

    def call() -> None:
        flow = multiphase_migration.with_options(flow_run_name=name)
        box["state"] = flow(plan=str(plan), target=dsn, return_state=True)
        box["t1"] = time.perf_counter()

    clock = EngineClock()
    clock.install()
    worker = threading.Thread(target=call, daemon=True)
    approved: dict[str, float] = {}  # pause key -> when the approval was sent
    t0 = time.perf_counter()
    try:
        worker.start()
        with get_client(sync_client=True) as client:
            flt = FlowRunFilter(name=FlowRunFilterName(any_=[name]))
            while worker.is_alive():
                runs = client.read_flow_runs(flow_run_filter=flt)
                state = runs[0].state if runs else None
                if state is not None and state.is_paused():
                    key = state.state_details.pause_key or ""
                    if key not in approved:
                        approve_run(str(runs[0].id), approver="bench")
                        approved[key] = time.perf_counter()
                time.sleep(POLL_S)
        worker.join()
    finally:
        clock.uninstall()
    state = box.get("state")
    if state is None or not state.is_completed():
        sys.exit(f"flow run {name} did not complete: "
                 f"{state.name if state else 'no state'} {state.message if state else ''}")
    t1 = box["t1"]
    timing = FlowTiming(t1 - t0, clock.busy(t0, t1))
    for sent in approved.values():
        nxt = clock.next_start(sent)
        if nxt is not None:
            timing.pickups.append(nxt - sent)
    return timing


# ------------------------------------------------------------------ main
def timed(label: str, repeat: int, fn: Callable[[int], float]) -> list[float]:
    out = []
    for i in range(repeat):
        out.append(fn(i))
        print(f"{label} run {i + 1}: {out[-1]:.2f} s", file=sys.stderr)
    return out


def check_end(dsn: str, plan: Path) -> bool:
    from lockplane.multiphase.model import read_multiphase_plan
    from lockplane.sources import load_schema

    return load_schema(dsn).hash() == read_multiphase_plan(str(plan)).target_hash


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2, help="runs of each kind")
    ap.add_argument("--prefect-db", choices=["sqlite", "postgres"], default="sqlite",
                    help="the Prefect server's own database")
    ap.add_argument("--server", default=DEFAULT_SERVER,
                    help="PostgreSQL server for --prefect-db postgres")
    ap.add_argument("--no-cli", action="store_true", help="skip the CLI reference row")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lp_bench_flow_"))
    pg_name = f"lp_bench_prefect_{os.getpid()}"
    server: Server | None = None
    try:
        pristine, plan = make_plan(work)
        ends: list[str] = []

        def engine(i: int) -> float:
            dsn = fresh_copy(pristine, work, "engine")
            ends.append(dsn)
            return engine_run(plan, dsn)

        def cli(i: int) -> float:
            dsn = fresh_copy(pristine, work, "cli")
            ends.append(dsn)
            return cli_run(plan, dsn)

        engine_s = timed("engine", args.repeat, engine)
        cli_s = [] if args.no_cli else timed("CLI", 1, cli)

        # Point this process at the temporary server before Prefect reads its settings.
        db_url = None
        if args.prefect_db == "postgres":
            url = create_database(args.server, pg_name)
            from psycopg.conninfo import conninfo_to_dict

            p = conninfo_to_dict(url)
            db_url = (f"postgresql+asyncpg://{p.get('user', 'postgres')}"
                      f"{':' + p['password'] if p.get('password') else ''}@"
                      f"{p.get('host', '127.0.0.1')}:{p.get('port', 5432)}/{pg_name}")
        home = work / "prefect-home"
        home.mkdir()
        server = Server(home, db_url)
        server.start()
        print(f"Prefect server ({args.prefect_db}) healthy after {server.started_s:.0f} s "
              "(not timed)", file=sys.stderr)
        os.environ.update(client_env(home, server.url))
        import prefect.context

        prefect.context.refresh_global_settings_context()
        import flows.multiphase_migration as mpflow

        flows_: list[FlowTiming] = []

        def flow(i: int) -> float:
            dsn = fresh_copy(pristine, work, "flow")
            ends.append(dsn)
            flows_.append(flow_run(plan, dsn))
            return flows_[-1].seconds

        flow_s = timed("flow", args.repeat, flow)
        drain_prefect()
        ok = all(check_end(dsn, plan) for dsn in ends)

        med_e, med_f = statistics.median(engine_s), statistics.median(flow_s)
        overhead = med_f - med_e
        print(f"\nMulti-phase rename users.email -> email_address (SQLite, demo data: 1,000 "
              f"rows), 3 phases, 2 approvals; {args.repeat} run(s) each, Prefect server DB "
              f"{args.prefect_db}\n")
        head = f"{'':34} {'median':>8} {'first':>8} {'all runs'}"
        print(head)
        print("-" * 70)
        for label, vals in (("engine (in process, no Prefect)", engine_s),
                            ("flow (Prefect, approvals by API)", flow_s),
                            ("CLI (3 apply-phase processes)", cli_s)):
            if vals:
                print(f"{label:34} {statistics.median(vals):>6.2f} s {vals[0]:>6.2f} s "
                      + "  ".join(f"{v:.2f}" for v in vals))
        print(f"\noverhead (flow - engine, medians)   {overhead:.2f} s")
        n = len(flows_)
        inside = sum(f.engine_s for f in flows_) / n
        pickup = sum(sum(f.pickups) for f in flows_) / n
        rest = sum(f.seconds for f in flows_) / n - inside - pickup
        print(f"flow run, mean of {n}:  engine calls {inside:.2f} s, approval pick-up "
              f"{pickup:.2f} s, Prefect itself {rest:.2f} s")
        # pause_flow_run sleeps a whole poll interval before it first looks, so even an
        # approval sent at once costs about APPROVAL_POLL_S.
        print(f"  approval pick-up: {len(flows_[0].pickups)} approvals, each waits for the "
              f"paused run's next poll (every {mpflow.APPROVAL_POLL_S} s, the first one a "
              "full interval after pausing)")
        print("  Prefect itself: flow and task run states, artifacts, pause set-up")
        print(f"overhead without the approval pick-up {overhead - pickup:.2f} s")
        print(f"end state: {'every run ended in the desired schema' if ok else 'MISMATCH'}")
        print(f"\ntarget: orchestration adds < {TARGET_OVERHEAD_S:.0f} s: {overhead:.2f} s "
              f"{'OK' if overhead < TARGET_OVERHEAD_S else 'MISSED'}")
    finally:
        if server is not None:
            server.stop()
        if args.prefect_db == "postgres":
            drop_database(args.server, pg_name)
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
