"""After a crash: what a killed apply (or backfill) left behind, found and settled by the
next one.

PostgreSQL goes on running the statement of a client that died: a ``CREATE INDEX
CONCURRENTLY`` or ``VALIDATE CONSTRAINT`` sent by a Lockplane process killed with
SIGKILL runs to its end (and commits: both run outside a transaction), and its session
keeps Lockplane's advisory lock until then. So the next apply

1. finds those orphaned sessions: every apply tags its session's ``application_name``
   with a token (and, once it has one, its migration id), and keeps a second, idle
   session tagged "alive" with the same token for as long as the process lives. An idle
   session ends as soon as its client dies, a busy one only when its statement ends: a
   tagged session without its "alive" twin belongs to a dead process. Backfill runners
   tag theirs the same way (``lockplane backfill <token> b=<backfill id>``);
2. waits for them (bounded, reporting what they run and how far they are), then cancels
   what still runs (a cancelled build leaves an INVALID index: the step's clean-up drops
   it before the step runs again). A backfill batch is cancelled at once: it cannot
   commit without its client, it only holds its rows and its chunk until it rolls back;
3. marks the history rows of dead processes ``interrupted`` (at which step, noticed when,
   what became of the statement they left running) and continues under a new record;
4. compares the live schema with the state before the step that was in flight and with
   the state after it (the step completed on the server after its client died), and
   resumes at that step or after it: never a refusal that reads like drift. Where the
   live schema cannot say what was there before the step (a finished DROP INDEX
   CONCURRENTLY leaves no trace of the index), the step's rollback SQL is run on a
   scratch copy of the live schema to rebuild that state;
5. drops scratch (shadow) databases of killed processes, also when it needs none itself.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .dialects.base import Database
from .model import Schema
from .plan import Plan, Step

if TYPE_CHECKING:
    from .state import History, MigrationRecord

log = logging.getLogger("lockplane")

APPLY_MARK = "lockplane apply "  # + token [+ " m=<migration id>"]
BACKFILL_MARK = "lockplane backfill "  # + token [+ " b=<backfill id>:<chunk>"]
ALIVE_MARK = "lockplane alive "  # + token: the idle twin that lives as long as the process
_ROLES = {"apply": APPLY_MARK, "backfill": BACKFILL_MARK}
DEFAULT_ORPHAN_WAIT_S = 300.0
_CANCEL_GRACE_S = 15.0  # after pg_cancel_backend, before pg_terminate_backend

Reporter = Callable[[str], None]


@dataclass
class Orphan:
    """A session of a dead Lockplane process that the server still runs."""
    pid: int
    migration_id: int | None
    query: str
    started: str  # query_start, as the server says it
    outcome: str = "running"  # finished | cancelled | terminated
    role: str = "apply"  # apply | backfill (whose batch cannot commit without its client)

    def statement(self, width: int = 80) -> str:
        text = " ".join(self.query.split())
        return text if len(text) <= width else text[:width - 1] + "…"


@dataclass
class Aftermath:
    """What this apply found of earlier, killed ones (empty where the dialect has none)."""
    orphans: list[Orphan] = field(default_factory=list)
    interrupted: list[int] = field(default_factory=list)  # migration ids marked
    scratch_dropped: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------- sessions
class TaggedSession:
    """Tags a session of an apply or of a backfill runner so that a later run can tell it
    from an orphan's: ``lockplane <role> <token> [<label>]``, with the idle twin."""

    def __init__(self, db: Database, role: str = "apply") -> None:
        self.db = db
        self.tags = db.dialect.settles_orphaned_sessions
        self.mark = _ROLES[role]
        self.token = secrets.token_hex(6)
        self.twin: Database | None = None
        self.label = ""
        self.untagged = "lockplane"

    def __enter__(self) -> TaggedSession:
        if not self.tags:
            return self
        from .dialects.postgres import PostgresDatabase

        # The twin first: a tagged session must never be seen without it while we live.
        twin = PostgresDatabase(self.db.dialect, self.db.dsn,  # type: ignore[arg-type]
                                application_name=ALIVE_MARK + self.token)
        self.twin = twin
        # It idles for the whole run: a server's idle_session_timeout must not end it.
        with contextlib.suppress(Exception):
            twin.execute("SET idle_session_timeout = 0")
        self.untagged = str(self.db.query("SELECT current_setting('application_name')")[0][0])
        self.tag(None)
        return self

    def tag(self, label: str | int | None) -> None:
        """Tag with ``label`` (an apply's migration id; a backfill's ``id:chunk``)."""
        if not self.tags:
            return
        if isinstance(label, int):
            label = f"m={label}"
        self.label = label or ""
        name = self.mark + self.token + (f" {self.label}" if self.label else "")
        self.db.execute("SELECT set_config('application_name', %s, false)", (name,))

    def move_to(self, db: Database) -> None:
        """The run reconnected: tag its new session as the old one was."""
        self.db = db
        self.tag(self.label or None)

    def __exit__(self, *exc: object) -> None:
        if not self.tags:
            return
        with contextlib.suppress(Exception):  # the session may be the thing that broke
            self.db.execute("SELECT set_config('application_name', %s, false)",
                            (self.untagged,))
        if self.twin is not None:
            with contextlib.suppress(Exception):
                self.twin.close()


def find_orphans(db: Database, label: str | None = None) -> list[Orphan]:
    """Sessions in this database tagged by a run whose process is gone (only those
    tagged ``label``, when given)."""
    rows = db.query(
        "SELECT a.pid, a.application_name, coalesce(a.query, ''), "
        "       coalesce(to_char(a.query_start, 'YYYY-MM-DD HH24:MI:SS TZ'), '?') "
        "FROM pg_stat_activity a "
        "WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() "
        "  AND a.backend_type = 'client backend' "  # (not a build's parallel workers)
        "  AND split_part(a.application_name, ' ', 1) = 'lockplane' "
        "  AND split_part(a.application_name, ' ', 2) = ANY(%s) "
        "  AND split_part(a.application_name, ' ', 3) <> '' "  # (untagged: nothing to tell)
        "  AND (%s::text IS NULL OR split_part(a.application_name, ' ', 4) = %s) "
        "  AND NOT EXISTS (SELECT 1 FROM pg_stat_activity b WHERE b.application_name = "
        "      %s || split_part(a.application_name, ' ', 3)) "
        "ORDER BY a.pid", (list(_ROLES), label, label, ALIVE_MARK))
    found = []
    for pid, name, query, started in rows:
        role = name.split(" ")[1]
        mark = name.split(" m=", 1)
        mid = int(mark[1]) if len(mark) == 2 and mark[1].isdigit() else None
        found.append(Orphan(int(pid), mid, query, started, role=role))
    return found


def _progress(db: Database, pid: int) -> str:
    """How far an orphaned CREATE INDEX CONCURRENTLY is, if it is one."""
    rows = db.query("SELECT phase, blocks_done, blocks_total, tuples_done, tuples_total "
                    "FROM pg_stat_progress_create_index WHERE pid = %s", (pid,))
    if not rows:
        return ""
    phase, bd, bt, td, tt = rows[0]
    if bt:
        return f" ({phase}, {100 * bd // bt}% of blocks)"
    if tt:
        return f" ({phase}, {100 * td // tt}% of rows)"
    return f" ({phase})"


def settle_orphans(db: Database, wait_s: float, report: Reporter | None = None,
                   poll_s: float = 0.1, report_every_s: float = 10.0,
                   label: str | None = None) -> list[Orphan]:
    """Wait up to ``wait_s`` for statements orphaned by killed runs to end, then cancel
    (and, if need be, terminate) what still runs. A backfill batch's is cancelled at
    once: its transaction cannot commit without its client, it only holds row locks
    (and its chunk) until it rolls back. ``label``: only orphans tagged so. Returns them,
    with outcomes."""
    if not db.dialect.settles_orphaned_sessions:
        return []
    orphans = {o.pid: o for o in find_orphans(db, label)}
    if not orphans:
        return []
    say = report or (lambda m: log.info("%s", m))
    waits = {pid: 0.0 if o.role == "backfill" else wait_s for pid, o in orphans.items()}
    for o in orphans.values():
        whose = (f"migration {o.migration_id}" if o.migration_id
                 else "a backfill" if o.role == "backfill" else "an apply")
        how = ("cancelling it: its batch rolls back anyway" if o.role == "backfill"
               else f"waiting up to {wait_s:g}s for it to end")
        say(f"the process running {whose} died, but the server still runs its session "
            f"{o.pid}: {o.statement()} (since {o.started}); {how}")
    start = time.monotonic()
    last_report = start
    escalated: dict[int, str] = {}

    def alive() -> set[int]:
        pids = list(orphans)
        rows = db.query("SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,))
        return {int(r[0]) for r in rows}

    while True:
        running = alive()
        for pid in set(orphans) - running:
            if orphans[pid].outcome == "running":
                orphans[pid].outcome = "finished"
        if not running:
            break
        elapsed = time.monotonic() - start
        stuck = []
        for pid in sorted(running):
            done, wait = escalated.get(pid, ""), waits[pid]
            if not done and elapsed >= wait:
                escalated[pid] = "cancel"
                db.query("SELECT pg_catalog.pg_cancel_backend(%s)", (pid,))
                orphans[pid].outcome = "cancelled"
                say(f"cancelled session {pid} after {elapsed:.0f}s: "
                    f"{orphans[pid].statement()}")
            elif done == "cancel" and elapsed >= wait + _CANCEL_GRACE_S:
                escalated[pid] = "terminate"
                db.query("SELECT pg_catalog.pg_terminate_backend(%s)", (pid,))
                orphans[pid].outcome = "terminated"
                say(f"terminated session {pid}: it did not stop when cancelled")
            elif done == "terminate" and elapsed >= wait + 2 * _CANCEL_GRACE_S:
                stuck.append(pid)
        if stuck:
            from .errors import ExecutionFailed

            raise ExecutionFailed(
                f"session(s) {', '.join(map(str, stuck))} of a killed Lockplane run "
                "neither ended nor could be cancelled; nothing was changed")
        if time.monotonic() - last_report >= report_every_s:
            last_report = time.monotonic()
            for pid in running:
                say(f"still waiting for session {pid} ({elapsed:.0f}s): "
                    f"{orphans[pid].statement(60)}{_progress(db, pid)}")
        time.sleep(poll_s)
    return list(orphans.values())


def drop_scratch_leftovers(db: Database, *servers: str | None) -> list[str]:
    """Scratch/shadow databases left by killed processes, on the target's server and on
    any other server given; dropped (see Database.drop_scratch_leftovers)."""
    return db.drop_scratch_leftovers(*(s for s in servers if s))


# ---------------------------------------------------------------------------- history
def mark_interrupted(history: History, orphans: list[Orphan]) -> list[int]:
    """Under the apply lock, a 'running' record is one whose process died (every apply
    holds the lock while it runs): say so, at which step, when it was noticed, and what
    became of the statement it left running."""
    # Only the apply lock makes 'running' mean 'dead': without one (SQLite) a running
    # record may be another live apply's.
    if not history.db.dialect.has_advisory_locks or not history.exists():
        return []
    marked = []
    for rec in history.running():
        step = _step_text(history, rec)
        notes = []
        for o in orphans:
            if o.migration_id == rec.id:
                notes.append(f"its statement {o.statement(60)} went on running on the "
                             f"server and was {o.outcome}")
        note = (f"interrupted: the process applying it stopped during {step} "
                f"({rec.steps_done} of {rec.steps_total} steps recorded as done)"
                + ("; " + "; ".join(notes) if notes else ""))
        history.interrupt(rec.id, note)
        marked.append(rec.id)
    return marked


def _step_text(history: History, rec: MigrationRecord) -> str:
    if rec.steps_done >= rec.steps_total:
        return "its last bookkeeping"
    try:
        desc = history.plan_of(rec.id).steps[rec.steps_done].description
    except Exception:  # a plan of an unreadable older format: the number says enough
        return f"step {rec.steps_done + 1}"
    return f"step {rec.steps_done + 1} ({desc})"


# ---------------------------------------------------------------------------- resume
def hash_without_leftovers(live: Schema, plan: Plan, done: int) -> str:
    """The live hash, as the next step's leftovers of an earlier attempt aside.

    A crash in CREATE INDEX CONCURRENTLY leaves an INVALID index that did not exist
    before the step (its clean-up drops it first); a crash in DROP INDEX CONCURRENTLY
    leaves the index it was dropping INVALID (the step drops it anyway). Neither may stop
    the migration from resuming.
    """
    step = plan.steps[done] if done < len(plan.steps) else None
    if step is None:
        return live.hash()
    created = _created_indexes(step)
    dropped = " ".join(s for s in step.sql if s.startswith("DROP INDEX CONCURRENTLY"))
    if not (created or dropped):
        return live.hash()
    from .dialects import get_dialect

    d = get_dialect(live.dialect)
    trimmed = live.model_copy(deep=True)
    for table in trimmed.tables:
        kept = []
        for ix in table.indexes:
            name = d.qname(table.schema_, ix.name)
            if not ix.valid and name in created:
                continue
            kept.append(ix.model_copy(update={"valid": True})
                        if not ix.valid and name in dropped else ix)
        table.indexes = kept
    return trimmed.hash()


def _created_indexes(step: Step) -> set[str]:
    """Indexes a CREATE INDEX CONCURRENTLY step makes: its clean-up drops them by name."""
    prefix = "DROP INDEX CONCURRENTLY IF EXISTS "
    return {s[len(prefix):] for s in step.cleanup if s.startswith(prefix)}


def _invalidated(step: Step) -> set[tuple[str | None, str, str]]:
    """(schema, table, constraint) that an ``ALTER TABLE ... DROP CONSTRAINT c, ADD
    CONSTRAINT c ... NOT VALID`` step makes NOT VALID (the undo of a VALIDATE)."""
    import pglast
    from pglast.enums import AlterTableType as AT

    out = set()
    for text in step.sql:
        try:
            stmts = pglast.parse_sql(text)
        except pglast.parser.ParseError:
            continue
        for raw in stmts:
            stmt = raw.stmt
            if not isinstance(stmt, pglast.ast.AlterTableStmt) or not stmt.cmds:
                continue
            dropped = {c.name for c in stmt.cmds if c.subtype == AT.AT_DropConstraint}
            for c in stmt.cmds:
                con = c.def_ if c.subtype == AT.AT_AddConstraint else None
                if isinstance(con, pglast.ast.Constraint) and con.skip_validation \
                        and con.conname in dropped:
                    out.add((stmt.relation.schemaname, stmt.relation.relname, con.conname))
    return out


def _alter_commands(statements: list[str]) -> list[tuple[str | None, str, Any]]:
    """(schema, table, command) of every ALTER TABLE command in ``statements``."""
    import pglast

    out = []
    for text in statements:
        try:
            stmts = pglast.parse_sql(text)
        except pglast.parser.ParseError:
            continue
        for raw in stmts:
            stmt = raw.stmt
            if isinstance(stmt, pglast.ast.AlterTableStmt) and stmt.cmds:
                out += [(stmt.relation.schemaname, stmt.relation.relname, c)
                        for c in stmt.cmds]
    return out


def partial_states(live: Schema, step: Step) -> list[Schema]:
    """``live`` as it may have been before ``step``, when a killed run left the step half
    done in a way its own clean-up and re-run settle: a step outside a transaction whose
    clean-up drops a constraint (``DROP CONSTRAINT IF EXISTS``: the helper CHECK of a
    lock-safe NOT NULL, left NOT VALID or validated) is taken back without it, and then
    also with the NOT NULL it sets (``SET NOT NULL``, committed before the check was
    dropped) not yet set. Re-running such a step from its clean-up is what it was made
    for (changes.enforce_not_null, the lock-safe SET NOT NULL)."""
    if step.transactional or step.backfill or not step.cleanup:
        return []
    from pglast.enums import AlterTableType as AT

    from .dialects import get_dialect

    d = get_dialect(live.dialect)
    dropped = {(d.qname(s, t), c.name) for s, t, c in _alter_commands(step.cleanup)
               if c.subtype == AT.AT_DropConstraint and c.missing_ok}
    if not dropped:
        return []
    tightened = {(d.qname(s, t), c.name) for s, t, c in _alter_commands(step.sql)
                 if c.subtype == AT.AT_SetNotNull}
    trimmed = live.model_copy(deep=True)
    for table in trimmed.tables:
        tname = d.qname(table.schema_, table.name)
        table.check_constraints = [k for k in table.check_constraints
                                   if (tname, k.name) not in dropped]
    out = [trimmed]
    if tightened:
        loose = trimmed.model_copy(deep=True)
        for table in loose.tables:
            tname = d.qname(table.schema_, table.name)
            for col in table.columns:
                if (tname, col.name) in tightened:
                    col.nullable = True
        out.append(loose)
    return out


def before_step(live: Schema, step: Step) -> Schema | None:
    """``live`` as it was before ``step``, if ``step`` is complete in it: the index it
    builds valid, the constraint it validates validated, the constraint it made NOT VALID
    again (a rollback's undo of a VALIDATE) NOT VALID. None: not a step whose effect can
    be taken back here, or not complete."""
    if step.transactional or step.backfill:
        return None  # these commit with their progress, or change no schema
    from .dialects import get_dialect

    d = get_dialect(live.dialect)
    created = _created_indexes(step) if any(
        s.startswith("CREATE INDEX CONCURRENTLY") or s.startswith("CREATE UNIQUE INDEX "
                                                                  "CONCURRENTLY")
        for s in step.sql) else set()
    validates = [s for s in step.sql if " VALIDATE CONSTRAINT " in s]
    invalidated = {(d.qname(s, t), c) for s, t, c in _invalidated(step)} \
        if d.has_not_valid_constraints else set()
    if not (created or validates or invalidated):
        return None
    undone = live.model_copy(deep=True)
    found = 0
    for table in undone.tables:
        tname = d.qname(table.schema_, table.name)
        if created:
            kept = []
            for ix in table.indexes:
                if d.qname(table.schema_, ix.name) in created:
                    if not ix.valid:
                        return None  # still building, or a failed build: not complete
                    found += 1
                    continue
                kept.append(ix)
            table.indexes = kept
        for cons in [*table.check_constraints, *table.foreign_keys]:
            if cons.name and f"ALTER TABLE {tname} VALIDATE CONSTRAINT " \
                    f"{d.quote(cons.name)}" in validates:
                if not cons.valid:
                    return None
                cons.valid = False
                found += 1
            elif cons.name and (tname, cons.name) in invalidated:
                if cons.valid:
                    return None
                cons.valid = True
                found += 1
    return undone if found == len(created) + len(validates) + len(invalidated) else None


def hash_before_on_scratch(db: Database, live: Schema, step: Step,
                           near_dsn: str | None) -> str | None:
    """The hash of ``live`` before ``step``, rebuilt by undoing the step on a scratch copy
    of ``live``: for a step whose effect the live schema cannot take back by itself (a
    DROP INDEX CONCURRENTLY leaves no trace of the index it dropped; an enum value added
    outside a transaction). Its rollback SQL (covered by the plan's id) runs on the copy,
    never on the target. None: no rollback, a copy that is not exact, or a rollback that
    fails there or calls what only a superuser may."""
    if step.transactional or step.backfill or step.rollback is None \
            or not step.rollback.sql or db.privileged_calls(step.rollback.sql):
        return None
    from .errors import BadInput, ExecutionFailed
    from .execute import build_shadow

    d = db.dialect
    try:
        with d.scratch(near_dsn) as scratch:
            if not build_shadow(scratch, live, live.hash()):
                return None
            for stmt in step.rollback.sql:
                scratch.execute(stmt)
            return scratch.introspect().hash()
    except (BadInput, ExecutionFailed, *d.error_types()) as exc:
        log.info("could not rebuild the state before %r on a scratch copy: %s",
                 step.description, exc)
        return None


@dataclass
class ResumePoint:
    step: int  # the number of steps done: resume at plan.steps[step]
    completed_after_death: bool = False  # the step in flight completed on the server
    live_hash: str = ""


def resume_point(live: Schema, plan: Plan, rec: MigrationRecord,
                 rebuild_before: Callable[[Step], str | None] | None = None,
                 ) -> ResumePoint | None:
    """Where a run recorded as ``rec`` can go on from, judged by the live schema: at the
    step it was in (nothing of it, or only leftovers its clean-up removes, is there), or
    after it (it completed on the server after its client died). None: the database is
    in neither state (changed by someone else).

    ``rebuild_before``: the hash before a step, rebuilt some costlier way (a scratch
    copy: hash_before_on_scratch), asked only when the live schema alone cannot tell."""
    done = rec.steps_done
    live_hash = live.hash()
    if rec.intermediate_hash is None:
        return None
    if live_hash == rec.intermediate_hash \
            or hash_without_leftovers(live, plan, done) == rec.intermediate_hash:
        return ResumePoint(done, False, live_hash)
    if done < len(plan.steps) and any(s.hash() == rec.intermediate_hash
                                      for s in partial_states(live, plan.steps[done])):
        # Killed inside the step, which its clean-up and re-run finish: resume at it.
        return ResumePoint(done, False, live_hash)
    if done < len(plan.steps):
        step = plan.steps[done]
        undone = before_step(live, step)
        if undone is not None and undone.hash() == rec.intermediate_hash:
            return ResumePoint(done + 1, True, live_hash)
        if undone is None and rebuild_before is not None \
                and rebuild_before(step) == rec.intermediate_hash:
            return ResumePoint(done + 1, True, live_hash)
    return None
