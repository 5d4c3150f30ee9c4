"""Applying plans: hash check, shadow validation, locks, retries, history, resume.

The order of an apply, and why:
1. take an advisory lock (two applies on one database never interleave);
2. introspect and compare with the plan's ``source_hash`` (refuse a plan made for
   another state; notice a plan already applied; resume a plan that crashed halfway);
3. validate on a shadow database built from the target's own schema;
4. run consecutive transactional steps in one transaction, with ``lock_timeout`` and
   bounded retries on lock timeouts and deadlocks; run each non-transactional step
   alone, recording progress after it so a crash resumes after the last finished step;
5. record the migration in the history table, in the same transaction as the DDL.
"""

from __future__ import annotations

import getpass
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from .config import SAFETY_LEVELS
from .crash import (
    DEFAULT_ORPHAN_WAIT_S,
    TaggedSession,
    drop_scratch_leftovers,
    hash_before_on_scratch,
    mark_interrupted,
    resume_point,
    settle_orphans,
)
from .dialects import get_dialect
from .dialects.base import Database, Dialect
from .divergence import diverged_message
from .dsn import dialect_of, redact
from .errors import BadInput, Diverged, ExecutionFailed, SafetyRefusal
from .frozen import reached
from .integrity import check_plan, legacy_plan_id
from .integrity import plan_id as plan_id  # (re-exported: callers and tests use it here)
from .lockwait import (
    DEFAULT_BACKOFF_BASE_S,
    DEFAULT_BACKOFF_CAP_S,
    DEFAULT_LOCK_WAIT_BUDGET_S,
    PROGRESS_EVERY_S,
    Backoff,
    Blocker,
    LockWatch,
    check_seconds,
    describe_blockers,
)
from .model import Schema
from .plan import DEFAULT_LOCK_TIMEOUT_MS, Plan, Step, build_plan, check_lock_timeout
from .state import History, MigrationRecord

# A cap on --retries; the lock-wait budget is what normally ends a step's retries.
MAX_RETRIES = 100_000


@dataclass
class ApplyOptions:
    safety: str = "moderate"
    shadow_dsn: str | None = None
    skip_shadow: bool = False
    # The session's lock_timeout, for steps whose SQL sets none (the plan's SET wins).
    lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS
    # Lock waits (lockplane.lockwait): a step that cannot get its lock retries, pausing
    # with exponential backoff and jitter from retry_backoff_s up to retry_backoff_cap_s,
    # until lock_wait_budget_s has passed since its first attempt (or ``retries`` retries,
    # when set). cancel_blockers_after_s: once the step has failed that long, cancel the
    # statements of the sessions that block it (None: never).
    retries: int | None = None
    retry_backoff_s: float = DEFAULT_BACKOFF_BASE_S
    retry_backoff_cap_s: float = DEFAULT_BACKOFF_CAP_S
    lock_wait_budget_s: float = DEFAULT_LOCK_WAIT_BUDGET_S
    cancel_blockers_after_s: float | None = None
    applied_by: str | None = None
    # Steps allowed anyway at level moderate: step numbers (1-based) or rule ids.
    acknowledged: set[int | str] = field(default_factory=set)
    # The file the plan was read from (named in refusals). A plan from a file must be
    # signed when LOCKPLANE_PLAN_KEY is set; None: computed in this process (or checked
    # by the caller, as a phase of a signed multi-phase plan is). A stored plan_id is
    # checked either way.
    plan_file: str | None = None
    # A killed apply's statement the server still runs (crash.py): wait this long for it
    # to end, then cancel it.
    orphan_wait_s: float = DEFAULT_ORPHAN_WAIT_S

    def __post_init__(self) -> None:
        check_lock_timeout(self.lock_timeout_ms)
        if self.retries is not None and (
                isinstance(self.retries, bool) or not isinstance(self.retries, int)
                or not 0 <= self.retries <= MAX_RETRIES):
            raise BadInput(f"--retries must be from 0 to {MAX_RETRIES}, not {self.retries!r}")
        check_seconds(self.lock_wait_budget_s, "--lock-wait-budget")
        if self.cancel_blockers_after_s is not None:
            check_seconds(self.cancel_blockers_after_s, "--cancel-blockers-after")
        for value, name in ((self.retry_backoff_s, "retry_backoff_s"),
                            (self.retry_backoff_cap_s, "retry_backoff_cap_s")):
            check_seconds(value, name)


@dataclass
class ApplyResult:
    status: str  # applied | already_applied | resumed | empty
    migration_id: int | None
    steps_run: int
    hash_after: str
    warnings: list[str] = field(default_factory=list)
    # The schema the database has at the end, as this apply read it (callers that look
    # next need not read the catalog again).
    schema_after: Schema | None = field(default=None, repr=False, compare=False)


Reporter = Callable[[str], None]


def who(explicit: str | None = None) -> str:
    if explicit:
        return explicit
    try:
        return f"{getpass.getuser()}@{socket.gethostname()}"
    except Exception:  # noqa: BLE001 - no user name is not worth failing an apply
        return "unknown"


@dataclass(frozen=True)
class Refusal:
    number: int  # 1-based
    step: Step
    why: str


def _needs_multi_phase(step: Step) -> str | None:
    from .rules import RULES

    for f in step.findings:
        rule = RULES.get(f.rule)
        if rule is not None and rule.multi_phase_pattern and f.safety == "multi_phase":
            return f.rule
    return None


def refused_steps(plan: Plan, level: str, acknowledged: set[int | str] | None = None,
                  ) -> list[Refusal]:
    """The steps ``level`` refuses.

    strict: dangerous and lossy steps, and breaking changes that have a multi-phase form;
    moderate: dangerous steps not acknowledged (by step number or rule id);
    permissive: none (the risks are printed with the plan).
    """
    if level not in SAFETY_LEVELS:
        raise BadInput(f"unknown safety level {level!r} (strict, moderate, permissive)")
    ack = acknowledged or set()
    out = []
    for i, step in enumerate(plan.steps, 1):
        if level == "strict":
            if step.safety in ("dangerous", "lossy"):
                rules = sorted({f.rule for f in step.findings if f.safety == step.safety}
                               or {f.rule for f in step.findings})
                why = f" ({', '.join(rules)})" if rules else ""
                how = "--safety moderate with --acknowledge" if step.safety == "dangerous" \
                    else "--safety moderate"
                out.append(Refusal(i, step, f"it is {step.safety}{why}; strict refuses it "
                                   f"({how} runs it)"))
            elif (rule := _needs_multi_phase(step)) is not None:
                out.append(Refusal(i, step, f"{rule} breaks running code: strict requires "
                                   "the multi-phase form (lockplane plan --multi-phase)"))
        elif level == "moderate" and step.safety == "dangerous" \
                and not _acknowledged(i, step, ack):
            needed = sorted(_dangerous_rules(step))
            target = ",".join(f"{r}@{step.table}" if step.table else r
                              for r in needed) or str(i)
            out.append(Refusal(i, step, f"it is dangerous; acknowledge it with "
                               f"--acknowledge {target} (or {i}, with a plan file)"))
    return out


def parse_acknowledgements(values: list[str] | None, *, allow_numbers: bool = True,
                           ) -> set[int | str]:
    """``--acknowledge`` values, repeated or comma-separated: ``rule@schema.table`` (that
    risk on that table), a rule id (that risk anywhere: broad), or a step number (only
    for a plan file someone reviewed: a plan computed at apply time may number its steps
    differently)."""
    from .rules import RULES

    out: set[int | str] = set()
    for v in values or []:
        for item in (x.strip() for x in v.split(",") if x.strip()):
            if item.isdigit():
                if not allow_numbers:
                    raise BadInput(f"--acknowledge {item}: a step number needs a reviewed "
                                   "plan file; here use rule@schema.table")
                out.add(int(item))
            elif item.split("@", 1)[0] in RULES:
                out.add(item)
            else:
                raise BadInput(f"--acknowledge {item!r}: not a step number, a rule id or "
                               "rule@schema.table (lockplane lint --list-rules)")
    return out


def _dangerous_rules(step: Step) -> set[str]:
    """The rules that make a step dangerous (all of its rules if none says so itself)."""
    rules = {f.rule for f in step.findings if f.safety == "dangerous"}
    return rules or {f.rule for f in step.findings}


def _acknowledged(i: int, step: Step, ack: set[int | str]) -> bool:
    """Acknowledged by its number, or every risk that makes it dangerous by id (a step
    that drops a primary key *and* breaks a publication's updates needs both)."""
    if i in ack:
        return True
    needed = _dangerous_rules(step)
    return bool(needed) and all(r in ack or f"{r}@{step.table}" in ack for r in needed)


def check_safety(plan: Plan, level: str, acknowledged: set[int | str] | None = None) -> None:
    bad = refused_steps(plan, level, acknowledged)
    if bad:
        first = bad[0]
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        rule = f" [{first.step.findings[0].rule}]" if first.step.findings else ""
        what = first.step.messages[0] if first.step.messages else ""
        raise SafetyRefusal(f"refused at safety level {level}: step {first.number} "
                            f"'{first.step.description}'{rule}: {first.why}"
                            f"{': ' + what if what else ''}{more}")


# --------------------------------------------------------------------------- running
def check_privileged_calls(db: Database, plan: Plan, opts: ApplyOptions) -> None:
    """Refuse (before the shadow, which runs the plan too) a step that calls a function
    the server lets no ordinary user run: applied, it runs with this session's privileges.
    A desired schema is untrusted; what it makes the target's server do is not."""
    # Not even at --safety permissive: that level runs the risks the plan shows, and what
    # a schema's code would do on the target is in no step's findings.
    # A step's condition runs in the apply's own writable transaction, before the step,
    # on the shadow copy and on the target, and no acknowledgement covers it: Lockplane
    # writes only counting queries there, so anything else came from an edited file.
    for i, step in enumerate(plan.steps, 1):
        if step.condition is not None and (why := db.not_one_query(step.condition.query)):
            raise SafetyRefusal(f"step {i} ({step.description}): its condition must be one "
                                f"query that only reads, and {why}")
        if step.backfill is not None:
            where = f"step {i} ({step.description})"
            _check_backfill_spec(step.backfill, db.dialect.name, where)
            if step.transactional and db.dialect.batches_backfill_steps:
                # (apply runs a spec as batches only on a step outside a transaction, and
                # the confirmation would show batches that do not run)
                raise BadInput(f"{where}: a step with a backfill spec runs outside a "
                               "transaction (its batches commit one by one); this one "
                               "says transactional")
    if "privileged-function" in opts.acknowledged:
        return
    defined = [sql for step in plan.steps for sql in step.sql]
    for i, step in enumerate(plan.steps, 1):
        runs = [*step.sql, *step.cleanup, *([step.condition.query] if step.condition else [])]
        if step.backfill:  # run by the backfill engine, not as the step's SQL
            spec = step.backfill
            # (from the table: the server resolves them for its columns' types)
            table = db.dialect.qname(spec.get("schema"), spec["table"])
            runs += [f"SELECT {spec['expression']} FROM {table}"] + (
                [f"SELECT 1 FROM {table} WHERE {spec['where']}"] if spec.get("where") else [])
        calls = db.privileged_calls(runs, defined)
        if calls and i not in opts.acknowledged:
            raise SafetyRefusal(
                f"step {i} ({step.description}) calls or reads {', '.join(calls)}, which "
                "the server lets no ordinary user run or read (its files, programs, settings "
                "or secrets): applied, it "
                "would run with this connection's privileges; if that is really meant, "
                "acknowledge it with --acknowledge privileged-function")
        # A function of the desired schema that the step evaluates (a default, an index
        # expression, a CHECK, a view's rows) runs with this session's privileges too.
        # So does what is already stored on a table the step rewrites, validates or
        # writes to (an index expression, a CHECK, a partition key, a trigger).
        writes = [(step.backfill.get("schema"), step.backfill["table"])] \
            if step.backfill and step.backfill.get("table") else []
        effects = db.function_effects(
            runs, defined, rewrites=bool(step.lock and step.lock.rewrites_table),
            writes=writes) if i not in opts.acknowledged else []
        if effects:
            raise SafetyRefusal(
                f"step {i} ({step.description}) evaluates {effects[0]}: applied, that code "
                "would run with this connection's privileges, not just compute a value; if "
                "that is really meant, acknowledge it with --acknowledge privileged-function")


def _check_backfill_spec(spec: dict[str, Any], dialect: str, where: str) -> None:
    """A step's backfill spec (from the plan file) before anything runs: its keys, and its
    expression and condition as the backfill engine will check them (one expression, one
    condition). A spec that failed those checks (a WHERE '"x" IS NULL) OR (true') failed
    only when its step came to run, after the steps before it had run; one without its
    'column' was 'internal error: KeyError'."""
    from .backfill import BackfillSpec, SetClause, runnable

    for key in ("table", "column", "expression"):
        if not isinstance(spec.get(key), str) or not spec[key]:
            raise BadInput(f"{where}: its backfill spec has no {key!r}")
    for key in ("schema", "where"):
        if spec.get(key) is not None and not isinstance(spec[key], str):
            raise BadInput(f"{where}: its backfill spec's {key!r} must be a string")
    d = get_dialect(dialect)
    try:
        runnable(BackfillSpec(d.qname(spec.get("schema"), spec["table"]),
                              (SetClause(spec["column"], spec["expression"], quoted=True),),
                              spec.get("where")), dialect)
    except BadInput as exc:
        raise BadInput(f"{where}: its backfill spec: {exc.message}") from None


def _error_line(exc: BaseException) -> str:
    diag = getattr(exc, "diag", None)
    msg = getattr(diag, "message_primary", None) or str(exc).strip().splitlines()[0]
    return redact(msg)


def group_steps(steps: list[Step]) -> list[list[tuple[int, Step]]]:
    """Consecutive transactional steps share one transaction; others run alone."""
    groups: list[list[tuple[int, Step]]] = []
    for i, step in enumerate(steps):
        if step.transactional and groups and groups[-1][0][1].transactional:
            groups[-1].append((i, step))
        else:
            groups.append([(i, step)])
    return groups


@contextmanager
def session_settings(db: Database, opts: ApplyOptions,
                     report: Reporter | None = None) -> Iterator[None]:
    said = db.lock_wait_setting(int(opts.lock_timeout_ms))
    if said and report:
        report(said)
    with db.apply_session(int(opts.lock_timeout_ms)):
        yield


@dataclass(frozen=True)
class Skipped:
    """A step whose condition held it back (StepCondition): the number it counted."""

    number: int  # 1-based
    step: Step
    count: int

    def warning(self) -> str | None:
        cond = self.step.condition
        if cond is None or cond.warning is None:
            return None
        return cond.warning.replace("{n}", f"{self.count:,}")


def _held_back(db: Database, step: Step) -> int:
    """What the step's condition counts (0: it runs)."""
    if step.condition is None:
        return 0
    rows = db.query(step.condition.query)
    return int(rows[0][0] or 0) if rows else 0


def at_target(after: Schema, plan: Plan, skipped: list[Skipped], d: Dialect,
              hash_now: str | None = None) -> bool:
    """Whether ``after`` is the plan's target: as it is; or with the columns that skipped
    steps leave nullable made NOT NULL (all the target may differ in because of a skip);
    objects declared with a time value the server freezes compared without it
    (lockplane/frozen.py). ``hash_now``: ``after.hash()``, when known."""
    if not plan.target_hash or (hash_now or after.hash()) == plan.target_hash:
        return True
    if not skipped and not plan.frozen_literals:
        return False
    cols = [c.step.condition.leaves_nullable for c in skipped
            if c.step.condition is not None and c.step.condition.leaves_nullable]
    strict = after
    if cols:
        strict = after.model_copy(deep=True)
        for where in cols:
            table = strict.table(where.get("schema", ""), where.get("table", ""))
            col = table.column(where.get("column", "")) if table is not None else None
            if col is not None:
                col.nullable = False
    return strict.hash() == plan.target_hash or reached(strict, plan.target_hash,
                                                        plan.frozen_literals, d)


def run_statements(db: Database, statements: list[str]) -> None:
    """A step's statements, each followed by putting back the session settings that code
    it fired may have changed (Database.restore_session_settings): the next statement
    and Lockplane's own SQL after it mean what they say, not what a trigger that put its
    schema first on the search_path makes of them."""
    for stmt in statements:
        db.execute(stmt)
        db.restore_session_settings(after=stmt)


def run_group(db: Database, group: list[tuple[int, Step]], opts: ApplyOptions,
              on_committed: Callable[[int], None] | None = None,
              report: Reporter | None = None,
              skipped: list[Skipped] | None = None) -> None:
    """Run one group; ``on_committed`` runs inside the same transaction. A step whose
    condition holds it back is skipped (and added to ``skipped``); a step outside a
    transaction that fails once its condition holds it back (rows without a value
    written meanwhile) is cleaned up and skipped too.

    A lock wait that runs out (the plan's short ``lock_timeout``) or a lost deadlock rolls
    the attempt back and retries it (lockplane.lockwait), until the lock-wait budget is
    spent; then the error names the sessions that blocked it.
    """
    errors = db.dialect.error_types()
    waits = _LockWaits(db, opts, report)
    try:
        while True:
            current: tuple[int, Step] | None = None
            held: list[Skipped] = []
            waits.start_attempt()
            try:
                if group[0][1].transactional:
                    with db.transaction():
                        for current in group:
                            if n := _held_back(db, current[1]):
                                held.append(Skipped(current[0] + 1, current[1], n))
                                continue
                            run_statements(db, current[1].sql)
                        db.after_transactional_group()
                        if on_committed:
                            on_committed(group[-1][0] + 1)
                else:
                    current = group[0]
                    if n := _held_back(db, current[1]):
                        held.append(Skipped(current[0] + 1, current[1], n))
                    else:
                        if not current[1].cleanup_reverts_previous:
                            # leftovers of an earlier attempt
                            run_statements(db, current[1].cleanup)
                        run_statements(db, current[1].sql)
                    if on_committed:
                        on_committed(current[0] + 1)
                if skipped is not None:
                    skipped += held
                return
            except errors as exc:
                waits.end_attempt()
                # A statement outside a transaction that failed after one that committed
                # (and fired code) left no rollback to undo what that code set.
                with suppress(*errors):
                    db.restore_session_settings()
                where = (f"step {current[0] + 1} '{current[1].description}'" if current
                         else "a step")
                if waits.retry(exc, where):
                    continue
                if current is not None and not current[1].transactional \
                        and current[1].condition is not None:
                    late = _skip_after_failure(db, current, errors)
                    if late is not None:
                        if on_committed:
                            on_committed(current[0] + 1)
                        if skipped is not None:
                            skipped.append(late)
                        return
                rolled = ("rolled back" if group[0][1].transactional
                          else "not rolled back (it ran outside a transaction)")
                cleaned = False
                if current is not None and current[1].cleanup:
                    cleaned, rolled = _clean_up(db, current[1], errors)
                why = waits.gave_up or _error_line(exc)
                failure = ExecutionFailed(f"{where} failed: {why}; {rolled}{waits.advice}")
                failure.cleaned_up = cleaned
                raise failure from None
            finally:
                waits.end_attempt()
    finally:
        waits.close()


class _LockWaits:
    """One group's lock-wait retries: backoff within the budget, the watch on who blocks
    it (opened at the first lock wait that runs out), cancelling blockers on request."""

    def __init__(self, db: Database, opts: ApplyOptions, report: Reporter | None) -> None:
        self.db, self.opts, self.report = db, opts, report
        self.backoff = Backoff(opts.retry_backoff_s, opts.retry_backoff_cap_s)
        self.first: float | None = None
        self.retries = 0
        self.watch: LockWatch | None = None
        self.watch_tried = False
        self.blockers: list[Blocker] = []
        self.refused: dict[int, Blocker] = {}
        self.noted = 0.0
        self.gave_up: str | None = None
        self.advice = ""
        self.where = "the step"

    def start_attempt(self) -> None:
        if self.first is None:
            self.first = time.monotonic()
        if self.watch is not None:
            self.watch.start_attempt()

    def end_attempt(self) -> None:
        if self.watch is not None:
            self.watch.end_attempt()

    def retry(self, exc: BaseException, where: str) -> bool:
        """Whether to run the group again (after a pause); else ``gave_up`` says why, when
        it was a lock wait."""
        what = self.db.dialect.lock_wait_failure(exc)
        if what is None:
            return False
        assert self.first is not None
        opts, self.where = self.opts, where
        cancelled = self._take_cancelled(where)
        if self.watch is not None:
            self.blockers = self.watch.blockers() or self.blockers
        elif not self.watch_tried:
            self.watch_tried = True
            self.watch = self.db.lock_watch()
            if self.watch is not None and opts.cancel_blockers_after_s is not None:
                self.watch.cancel_from(self.first + opts.cancel_blockers_after_s)
        self.retries += 1
        elapsed = time.monotonic() - self.first
        # Just cancelled a blocker: its locks are gone now, before another session's.
        pause = 0.0 if cancelled else self.backoff.pause(self.retries)
        if opts.retries is not None and self.retries > opts.retries:
            limit = f"within {opts.retries} retr{'y' if opts.retries == 1 else 'ies'}"
        elif elapsed + pause > opts.lock_wait_budget_s:
            limit = f"within the {opts.lock_wait_budget_s:g} s lock-wait budget"
        else:
            limit = None
        if limit is not None:
            self._give_up(what, exc, limit, elapsed)
            return False
        now = time.monotonic()
        if self.report and (self.retries == 1 or now - self.noted >= PROGRESS_EVERY_S):
            self.noted = now
            who_ = f"; blocked by {describe_blockers(self.blockers)}" if self.blockers else ""
            self.report(f"{where}: lock not available ({what}); retry {self.retries} in "
                        f"{pause:.2f} s, {elapsed:.1f} s of the {opts.lock_wait_budget_s:g} s "
                        f"lock-wait budget spent{who_}")
        time.sleep(pause)
        return True

    def _give_up(self, what: str, exc: BaseException, limit: str, elapsed: float) -> None:
        attempts = self.retries
        self.gave_up = (f"could not get its lock {limit} ({attempts} attempt"
                        f"{'s' if attempts != 1 else ''} over {elapsed:.1f} s, the last ended "
                        f"by a {what}: {_error_line(exc)}); blocked by "
                        f"{describe_blockers(self.blockers)}")
        if self.refused:
            self.gave_up += ("; not cancelled, being idle in a transaction (a cancel ends "
                             "only a running statement): pid "
                             + ", ".join(str(p) for p in self.refused))
        self.advice = (". Wait for those sessions or end them, give the step longer with "
                       "--lock-wait-budget, or let --cancel-blockers-after S cancel their "
                       "statements" if self.opts.cancel_blockers_after_s is None else "")

    def _take_cancelled(self, where: str) -> bool:
        if self.watch is None:
            return False
        done, refused = self.watch.take_cancelled()
        for b in done:
            if self.report:
                self.report(f"cancelled the statement of {b.describe()}, which blocked "
                            f"{where} (--cancel-blockers-after "
                            f"{self.opts.cancel_blockers_after_s:g})")
        for b in refused:
            self.refused[b.pid] = b
            if self.report:
                self.report(f"cannot cancel {b.describe()}, which blocks {where}: it is idle "
                            "in its transaction, and a cancel ends only a running statement")
        return bool(done)

    def close(self) -> None:
        if self.watch is not None:
            self._take_cancelled(self.where)
            self.watch.close()
            self.watch = None


def _skip_after_failure(db: Database, current: tuple[int, Step],
                        errors: tuple[type[BaseException], ...]) -> Skipped | None:
    """A conditional step outside a transaction that failed: if its condition now holds
    it back (a row without a value written after it counted), its clean-up runs and it
    is skipped after all. None: it failed for another reason."""
    try:
        n = _held_back(db, current[1])
        if not n:
            return None
        for stmt in current[1].cleanup:
            db.execute(stmt)
    except errors:
        return None
    return Skipped(current[0] + 1, current[1], n)


def _clean_up(db: Database, step: Step, errors: tuple[type[BaseException], ...],
              ) -> tuple[bool, str]:
    """Undo what a failed non-transactional step left (an INVALID index); say so."""
    try:
        for stmt in step.cleanup:
            db.execute(stmt)
    except errors as exc:
        return False, (f"and its clean-up failed too ({_error_line(exc)}): "
                       f"run {step.cleanup!r}")
    return True, "cleaned up (nothing of it is left)"


def run_backfill_step(dsn: str, step: Step, opts: ApplyOptions,
                      report: Reporter | None = None, resume: bool = False) -> None:
    """A data step with a backfill spec runs in small committed batches (resumable, paced),
    never as one long UPDATE that would hold every row lock until it ends.

    A backfill's checkpoint is keyed by its table, SET and WHERE, not by the apply: one
    left by an earlier apply of the same step (finished, then rolled back; or abandoned)
    says nothing about the rows now. Only ``resume`` (this apply continues the run that
    stopped in this very step) picks it up; otherwise the backfill starts over.
    """
    from .backfill import BackfillOptions, BackfillSpec, SetClause, plan_backfill, run_backfill

    spec = step.backfill or {}
    d = get_dialect(dialect_of(dsn))
    kept = spec.get("archive")
    archive = None
    if kept:
        # The fill records the rows it changes for its undo (changes/unfill_column.py):
        # its archive is made here, emptied when the fill starts over (what an earlier
        # apply left says nothing about the rows now), kept when it resumes.
        archive = _fill_archive(dsn, spec, kept, resume)
    target = BackfillSpec(d.qname(spec.get("schema"), spec["table"]),
                          (SetClause(spec["column"], spec["expression"], quoted=True),),
                          spec.get("where"),
                          not_null=(spec["column"],) if spec.get("not_null") else (),
                          archive=archive,
                          archive_key=tuple(kept["key"]) if kept else ())
    # (check_privileged_calls judged the step's expressions before anything ran)
    bopts = BackfillOptions(shadow_dsn=opts.shadow_dsn, started_by=who(opts.applied_by),
                            restart=not resume, calls_checked=True)
    try:
        result = run_backfill(dsn, plan_backfill(dsn, target, bopts), bopts)
    except (BadInput, ExecutionFailed) as exc:
        raise ExecutionFailed(f"step '{step.description}' failed: {exc.message}") from None
    if result.status == "cancelled":
        raise ExecutionFailed(f"step '{step.description}': the backfill was cancelled; "
                              "apply again to resume it")
    if report:
        report(f"backfilled {result.rows_updated} row(s) of {spec['table']}.{spec['column']} "
               "in batches")


def _fill_archive(dsn: str, spec: dict[str, Any], kept: dict[str, Any],
                  resume: bool) -> str:
    """Create (or, starting over, empty) a fill's archive; its quoted name."""
    from .changes.unfill_column import archive_create_sql

    d = get_dialect(dialect_of(dsn))
    name = d.archive_table(kept["name"])
    with d.connect(dsn) as db, db.transaction():
        for stmt in archive_create_sql(d, d.qname(spec.get("schema"), spec["table"]), name,
                                       list(kept["key"]), spec["column"]):
            db.execute(stmt)
        if not resume:
            db.execute(f"DELETE FROM {name}")
    return name


def materialize(db: Database, schema: Schema) -> None:
    """Create ``schema`` in an empty database (scratch and shadow databases)."""
    empty = Schema(dialect=schema.dialect)
    plan = build_plan(empty, schema, lock_safe=False, lock_timeout_ms=None)
    opts = ApplyOptions(lock_timeout_ms=0, retries=0)
    with session_settings(db, opts):
        for group in group_steps(plan.steps):
            run_group(db, group, opts)


def build_shadow(shadow: Database, live: Schema, source_hash: str) -> bool:
    """Create the target's schema in an empty scratch database; whether it is exact."""
    try:
        materialize(shadow, live)
    except (ExecutionFailed, BadInput) as exc:
        raise ExecutionFailed(f"could not build the shadow database from the target's "
                              f"schema: {exc.message}") from None
    return shadow.introspect().hash() == source_hash


def validate_on_shadow(plan: Plan, live: Schema, target_dsn: str, opts: ApplyOptions,
                       report: Reporter | None = None, *, judged: bool = False) -> list[str]:
    """Run the plan on a scratch copy of the target's schema; return warnings.

    The copy runs every step with the target's credentials (on the target's own server
    unless ``opts.shadow_dsn`` says otherwise), rows of a sample included: what apply
    refuses to run (check_privileged_calls) is refused here first, unless the caller
    ``judged`` the plan on the target already (apply_plan)."""
    d = get_dialect(plan.dialect or live.dialect)
    if not judged:
        with d.connect(target_dsn) as target:
            check_privileged_calls(target, plan, opts)
    server = opts.shadow_dsn or (target_dsn if d.scratch_needs_server else None)
    warnings: list[str] = []
    with d.scratch(server) as shadow:
        shadow_major = shadow.server_major()
        if plan.server_major is not None and shadow_major not in (None, plan.server_major):
            # (the plan's SQL may not run there, or run otherwise than on the target)
            raise BadInput(f"the shadow database {shadow.dsn_display} runs major version "
                           f"{shadow_major}, the plan is for {plan.server_major}: give a "
                           "shadow server of that version (--shadow-db) or --skip-shadow")
        if not build_shadow(shadow, live, plan.source_hash):
            warnings.append("the shadow copy of the target differs slightly from the target; "
                            "validation is approximate")
        # A sample of rows: steps that fail on data fail here.
        warnings += d.copy_sample(shadow, target_dsn, live)
        # (what a condition holds back on the copy says nothing about the target)
        held: list[Skipped] = []
        with session_settings(shadow, opts):
            for group in group_steps(plan.steps):
                try:
                    run_group(shadow, group, opts, skipped=held)
                except ExecutionFailed as exc:
                    raise ExecutionFailed(f"shadow validation: {exc.message}; the target "
                                          "was not touched") from None
        reached_schema = shadow.introspect()
        after = reached_schema.hash()
        if not at_target(reached_schema, plan, held, d, after):
            warnings.append("on the shadow database the plan did not reach exactly its "
                            f"target_hash (got {after[:12]}, expected {plan.target_hash[:12]})")
    if report:
        report("shadow validation passed")
    return warnings


def apply_plan(plan: Plan, target_dsn: str, opts: ApplyOptions | None = None,
               report: Reporter | None = None,
               confirm: Callable[[Plan], bool] | None = None,
               before_first_step: Callable[[Plan], None] | None = None) -> ApplyResult:
    """Apply ``plan`` to the database at ``target_dsn``. See the module docstring.

    ``confirm`` is asked before anything of the plan runs anywhere (the shadow included);
    ``before_first_step`` (a backup) runs once the shadow has passed."""
    opts = opts or ApplyOptions()
    # First of all: a plan edited since it was written (or unsigned, with a key) is
    # refused before anything connects, and before its own safety classes are believed.
    pid = check_plan(plan, opts.plan_file or "plan",
                     require_signature=opts.plan_file is not None)
    dialect = dialect_of(target_dsn)
    if plan.dialect and plan.dialect != dialect:
        raise BadInput(f"plan is for {plan.dialect}, target {redact(target_dsn)} is {dialect}")
    check_safety(plan, opts.safety, opts.acknowledged)
    d = get_dialect(dialect)
    with d.connect(target_dsn, create=True) as db, TaggedSession(db, "apply") as session:
        check_server_major(plan, db)
        check_privileged_calls(db, plan, opts)
        history = History(db)
        # What a killed apply left running on the server ends before we look (crash.py).
        orphans = settle_orphans(db, opts.orphan_wait_s, report)
        with history.exclusive_lock():
            interrupted = mark_interrupted(history, orphans)
            if interrupted and report:
                report(f"migration(s) {', '.join(map(str, interrupted))} marked interrupted: "
                       "the process running them died")
            left = drop_scratch_leftovers(db, opts.shadow_dsn)
            if left and report:
                report(f"dropped {len(left)} scratch database(s) left by killed runs")
            live = db.introspect()
            live_hash = live.hash()
            resume_from = 0
            migration_id: int | None = None
            # An earlier run of this plan stopped (crashed, or failed after committing).
            carried: MigrationRecord | None = None
            if live_hash != plan.source_hash:
                running = _unfinished(history, plan, pid)
                # Data steps (backfills) do not change the schema: a run that stopped in
                # one has reached the target hash and still has work to do.
                if plan.target_hash and at_target(live, plan, [], d, live_hash) and not (
                        running and running.steps_done < len(plan.steps)):
                    if running is None:
                        return ApplyResult("already_applied", None, 0, live_hash,
                                           schema_after=live)
                    # Its run committed every step and stopped before the end-state
                    # check (record keeps no hash after the last step); this is that
                    # check. Carried on under a new record, as a resumed run is.
                    with db.transaction():
                        migration_id = history.start(pid, plan, who(opts.applied_by))
                        history.progress(migration_id, len(plan.steps), None)
                        history.finish(migration_id, "applied", live_hash,
                                       f"every step was committed by migration {running.id}, "
                                       "whose process stopped before checking the end state")
                    return ApplyResult("already_applied", migration_id, 0, live_hash,
                                       schema_after=live)
                # (a scratch copy only when the live schema alone cannot tell)
                point = resume_point(live, plan, running, lambda step: hash_before_on_scratch(
                    db, live, step, opts.shadow_dsn or target_dsn)) if running else None
                if running and point is not None:
                    carried, resume_from = running, point.step
                    # The state the steps done so far left (leftovers of the next aside).
                    live_hash = point.live_hash if point.completed_after_death \
                        else running.intermediate_hash or live_hash
                    if report:
                        if point.completed_after_death:
                            done_step = plan.steps[resume_from - 1].description
                            report(f"step {resume_from} ({done_step}) completed on the "
                                   f"server after the process running migration "
                                   f"{running.id} died")
                        report(f"resuming migration {running.id} after step {resume_from}")
                    if point.completed_after_death:
                        history.add_note(running.id, f"step {resume_from} completed on the "
                                         "server after the process died")
                elif running and running.steps_done >= len(plan.steps):
                    # (stopped after its last commit: no state is recorded after the last
                    # step, see record below)
                    raise SafetyRefusal(
                        f"migration {running.id} committed every step of this plan, then "
                        "stopped before checking the end state, and "
                        f"{redact(target_dsn)} is not at the plan's target (hash "
                        f"{live_hash[:12]}…, expected {plan.target_hash[:12]}…): changed "
                        "since, or the plan does not reach it; re-plan against its current "
                        "state")
                else:
                    raise SafetyRefusal(
                        f"plan was made for a database with hash {plan.source_hash[:12]}…, "
                        f"but {redact(target_dsn)} has hash {live_hash[:12]}… "
                        "(re-plan against its current state)" + _older_format(plan))
            else:
                # A crash before the first commit leaves a record and an untouched
                # database: carry on from it.
                running = _unfinished(history, plan, pid)
                if running and running.steps_done == 0:
                    carried = running
            if carried is not None and carried.result != "interrupted":
                migration_id = carried.id  # (failed, or SQLite's running: the same record)
                if resume_from != carried.steps_done:
                    history.progress(migration_id, resume_from, live_hash)
            if not plan.steps:
                return ApplyResult("empty", None, 0, live_hash, schema_after=live)
            # Confirmed before the shadow: the shadow runs the plan's SQL with these
            # credentials, on the target's own server unless told otherwise, so an edited
            # plan file would have run there before the operator saw it.
            if confirm is not None and not confirm(plan):
                raise SafetyRefusal("apply cancelled: not confirmed")
            warnings: list[str] = []
            if not opts.skip_shadow and resume_from == 0:
                warnings += validate_on_shadow(plan, live, target_dsn, opts, report,
                                               judged=True)
            if before_first_step is not None:
                before_first_step(plan)
            continuing = carried is not None  # an earlier run of this plan stopped
            if migration_id is None:
                # An interrupted run is carried on under a new record (the old one stays,
                # marked): started at the step it reached, in one transaction.
                with db.transaction():
                    migration_id = history.start(pid, plan, who(opts.applied_by))
                    if resume_from:
                        history.progress(migration_id, resume_from, live_hash)
            session.tag(migration_id)
            steps_run = 0
            committed = [resume_from]
            held: list[Skipped] = []

            def record(done: int) -> None:
                # Inside a transactional group's transaction: progress commits with the
                # DDL it describes. With it, the hash of the state it left: what a resume
                # checks the database against (crash.resume_point). Not after the last
                # group: no step is left to resume, and the end-state check below reads
                # that state anyway (a run that dies before it is judged by it on the next
                # run: already applied, or refused with a re-plan when the database is not
                # at the plan's target). That spares one catalog read per apply, held
                # inside the transaction with the locks of its DDL.
                last = done == len(plan.steps)
                history.progress(migration_id, done, None if last else db.introspect().hash())
                committed[0] = done

            try:
                with session_settings(db, opts, report):
                    for group in group_steps(plan.steps):
                        if group[-1][0] < resume_from:
                            continue
                        transactional = group[0][1].transactional
                        if group[0][1].backfill and d.batches_backfill_steps:
                            run_backfill_step(target_dsn, group[0][1], opts, report,
                                              resume=continuing and group[0][0] == resume_from)
                        else:
                            run_group(db, group, opts, on_committed=record if transactional
                                      else None, report=report, skipped=held)
                        if not transactional:
                            record(group[0][0] + 1)
                        steps_run += len(group)
            except ExecutionFailed as exc:
                failed = plan.steps[committed[0]] if committed[0] < len(plan.steps) else None
                if failed is not None and failed.cleanup_reverts_previous and committed[0] \
                        and exc.cleaned_up:
                    # Its clean-up undid the step before it too: progress goes back one.
                    committed[0] -= 1
                    history.progress(migration_id, committed[0], db.introspect().hash())
                history.finish(migration_id, "failed", None, exc.message)
                if committed[0]:
                    raise ExecutionFailed(
                        f"{exc.message}; steps 1-{committed[0]} stay applied: fix the cause "
                        f"and apply the same plan again to resume at step {committed[0] + 1}"
                    ) from None
                raise
            after = db.introspect()
            hash_after = after.hash()
            warnings += [w for s in held if (w := s.warning())]
            if not at_target(after, plan, held, d, hash_after):
                # Every step ran, and the server stores something else than the plan
                # declared: a failure to look into, not a success with a footnote.
                message = diverged_message(plan, live, after, hash_after)
                history.finish(migration_id, "diverged", hash_after, message)
                raise Diverged(message)
            notes = [f"step {s.number} skipped: {w}" for s in held if (w := s.warning())]
            history.finish(migration_id, "applied", hash_after, "; ".join(notes) or None)
            status = "resumed" if resume_from else "applied"
            return ApplyResult(status, migration_id, steps_run, hash_after, warnings, after)


def check_server_major(plan: Plan, db: Database) -> None:
    """Refuse (exit 3) a plan made for a server of another major version: its SQL may
    use what that version has and this one lacks (PostgreSQL 17's SET EXPRESSION), or
    leave out what it has. Before anything runs."""
    if plan.server_major is None:
        return
    major = db.server_major()
    if major is not None and major != plan.server_major:
        raise SafetyRefusal(
            f"plan was made for a server of major version {plan.server_major}, but "
            f"{db.dsn_display} runs {major}: re-plan against it")


def _unfinished(history: History, plan: Plan, pid: str) -> MigrationRecord | None:
    """The unfinished run of this plan: under its id, or under the shorter id of a
    Lockplane from before plans carried one (a crash, then an upgrade, then the resume)."""
    return history.unfinished(pid) or history.unfinished(legacy_plan_id(plan))


def _older_format(plan: Plan) -> str:
    """Why a hash may differ although nobody changed the database: the plan was made by a
    Lockplane that read databases differently (model.HASH_FORMAT)."""
    from .model import HASH_FORMAT

    made_with = plan.hash_format or 1
    if made_with == HASH_FORMAT:
        return ""
    return (f"; this plan was made by a Lockplane that read databases differently (hash "
            f"format {made_with}, now {HASH_FORMAT}), so an unchanged database can differ: "
            "re-plan with this version")
