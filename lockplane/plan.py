"""Plans: ordered steps with SQL, lock facts, safety and rollback, as reviewable JSON.

A plan is made for one database state (``source_hash``) and leads to another
(``target_hash``). It is a superset of the original format
``{"source_hash", "steps": [{"description", "sql": [...]}]}``, which still loads.
"""

from __future__ import annotations

import heapq
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from . import __version__
from .changes.base import Assessment, Change, Finding, Lock, RewriteContext, Safety
from .dialects import get_dialect
from .dialects.base import Dialect
from .diff import diff
from .divergence import target_digests
from .errors import BadInput
from .model import HASH_FORMAT, Column, ObjectKey, Schema, Table, comparing, hashes, qualified

# The integrity fields of plan files, single and multi-phase (lockplane.integrity).
PLAN_ID_DESCRIPTION = ("SHA-256 (hex) of everything in the plan that executes or decides what "
                       "executes; apply refuses a plan whose content does not match it")
SIGNATURE_PATTERN = r"^hmac-sha256:[0-9a-f]{12}:[0-9a-f]{64}$"
SIGNATURE_DESCRIPTION = ("hmac-sha256:KEYID:HEX, an HMAC-SHA256 of plan_id with "
                         "LOCKPLANE_PLAN_KEY (KEYID: a fingerprint of the key)")
SIGNED_FOR_DESCRIPTION = ("the environments (lockplane.toml names) the signature lets the plan "
                          "run in, or [\"*\"] for any; covered by the signature. Absent on a "
                          "signed plan: signed before signatures named environments (apply "
                          "refuses it until signed again)")


class PlanModel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _one_line(text: str) -> str:
    """Prose as one line: line breaks (and the other separators a terminal or renderer
    breaks lines at) shown as escapes."""
    for ch in ("\r\n", "\r", "\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85",
               "\u2028", "\u2029"):
        text = text.replace(ch, repr(ch)[1:-1])
    return text


OneLine = Annotated[str, AfterValidator(_one_line)]


class StepLock(PlanModel):
    mode: str
    blocks_reads: bool
    blocks_writes: bool
    rewrites_table: bool = False
    scans_table: bool = False
    # MySQL / MariaDB: the ALGORITHM the server takes (INSTANT, NOCOPY, INPLACE, COPY;
    # ``mode`` is then the LOCK= level NONE, SHARED or EXCLUSIVE), the rules that decided
    # it, and what the server said when the step was tried on an empty copy.
    algorithm: str | None = None
    reasons: list[str] | None = None
    server: str | None = None


class StepRollback(PlanModel):
    sql: list[str] = Field(default_factory=list)
    safety: str = "safe"
    note: OneLine | None = None
    # What the rollback destroys (Change.rollback_stake), for lockplane.stake to count on
    # a live database: {"what": "column" | "columns" | "table" | "narrowing", ...}.
    at_stake: dict[str, Any] | None = None
    # How the rollback itself runs, which need not be how its step runs (ADD VALUE runs
    # outside a transaction, the type recreate that undoes it in one; the undo of a DROP
    # INDEX CONCURRENTLY is a build that leaves an INVALID index if it fails). Absent in
    # older plans: the step's own flag, no clean-up.
    transactional: bool | None = None
    cleanup: list[str] = Field(default_factory=list)
    # The rollback's own lock facts (a narrowing undo rewrites the table although the
    # widening it undoes did not); absent in older plans: the step's own are used.
    lock: StepLock | None = None
    # Further steps of the undo, each run on its own terms after ``sql`` (a refill from
    # an archive, NOT NULL only where every row has a value: each has a ``condition``).
    then: list[Step] = Field(default_factory=list)


class StepCondition(PlanModel):
    """The step runs only where ``query`` (one row, one number) gives 0 on the database it
    runs on (the target, or a shadow copy); elsewhere it is skipped, ``warning`` said with
    ``{n}`` the number. A skip may leave one column nullable that the plan's target has
    NOT NULL (``leaves_nullable``: schema, table, column): the end-state check allows it."""

    query: str
    warning: str | None = None
    leaves_nullable: dict[str, str] | None = None


class StepAlter(PlanModel):
    """The step as the clauses of one ALTER TABLE (MySQL), as its change kind renders
    them: what an online schema change tool runs on its copy of the table (``lockplane
    export --to gh-ost|pt-osc``)."""

    schema_: str = Field("", alias="schema")  # "": the database the plan runs on
    table: str
    clauses: list[str]
    # Foreign keys of the table or referencing it (before or after the plan), which an
    # online schema change tool must be told about (gh-ost refuses such tables); None:
    # not known (a plan made without both schemas).
    foreign_keys: list[str] | None = None


class StepFinding(PlanModel):
    rule: str  # a stable id from lockplane.rules
    safety: str
    message: OneLine
    safer: OneLine | None = None


class Step(PlanModel):
    # One line: a description is prose the plan_id does not cover, so a signed plan's can
    # be edited; it is quoted in confirmations and refusals ("step 2 'DESCRIPTION' ..."),
    # where an edited one with line breaks drew lines that looked like the step's SQL.
    # (A name with a line break, in a description Lockplane writes, reads the same.)
    description: OneLine
    sql: list[str]
    kind: str | None = None
    table: str | None = None
    safety: str = "review"
    lock: StepLock | None = None
    transactional: bool = True
    rollback: StepRollback | None = None
    messages: list[OneLine] = Field(default_factory=list)
    findings: list[StepFinding] = Field(default_factory=list)
    # The step as one ALTER TABLE's clauses, for online schema change tools (MySQL).
    alter: StepAlter | None = None
    # Non-transactional steps: run before each attempt and after a failure (e.g. drop the
    # INVALID index a failed CREATE INDEX CONCURRENTLY leaves), so the step can run again.
    cleanup: list[str] = Field(default_factory=list)
    # The clean-up also undoes the step before (the helper check a failed VALIDATE
    # leaves): run only after a failure, and progress goes back one step.
    cleanup_reverts_previous: bool = False
    # Data moves the executor runs in committed batches: {schema, table, column, expression}
    backfill: dict[str, Any] | None = None
    # Lock impact measured on a shadow copy (plan --analyze-locks); not part of plan_id.
    measured: dict[str, Any] | None = None
    # Runs only when this says so (see StepCondition); absent: always.
    condition: StepCondition | None = None


StepRollback.model_rebuild()


class Plan(PlanModel):
    schema_url: str | None = Field(None, alias="$schema")
    source_hash: str
    target_hash: str | None = None
    dialect: str | None = None
    lockplane_version: str | None = None
    # model.HASH_FORMAT of the Lockplane that computed the hashes (absent: 1).
    hash_format: int | None = None
    server_major: int | None = Field(
        None, description="the major version of the server the plan was made for (its "
        "starting schema was read from it): its SQL may use what that version has "
        "(PostgreSQL 17's SET EXPRESSION), and apply refuses a server of another major; "
        "absent: SQL every supported version runs. Covered by plan_id")
    # lockplane.integrity.plan_id of this content, written with the file and checked
    # before an apply (absent: a plan of the original format, or computed in-process).
    plan_id: str | None = Field(None, description=PLAN_ID_DESCRIPTION)
    # With LOCKPLANE_PLAN_KEY: "hmac-sha256:KEYID:HEX", the HMAC of the plan_id.
    signature: str | None = Field(None, pattern=SIGNATURE_PATTERN,
                                  description=SIGNATURE_DESCRIPTION)
    signed_for: list[str] | None = Field(None, description=SIGNED_FOR_DESCRIPTION)
    steps: list[Step] = Field(default_factory=list)
    # Short digests of what the plan changes in the target (divergence.py): an
    # apply that ends elsewhere than target_hash names what differs. Covered by plan_id.
    # lockplane/frozen.py: objects declared with a time value the server freezes,
    # compared without it (target_hash too); covered by plan_id when present.
    frozen_literals: list[list[str]] | None = None
    target_objects: dict[str, str] | None = Field(
        None, description="digest of each object the plan changes (and of its parts) as "
        "in the target schema, \"\" for one it drops, to say what differs when an apply "
        "ends at another hash; covered by plan_id")

    @property
    def empty(self) -> bool:
        return not self.steps

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json", by_alias=True, exclude_none=True),
                          indent=2, ensure_ascii=False)

    def worst_safety(self) -> Safety:
        ranks = [Safety(s.safety) for s in self.steps]
        return max(ranks, key=lambda s: s.rank, default=Safety.SAFE)


def order_changes(changes: list[Change], before: Schema | None = None,
                  after: Schema | None = None) -> list[Change]:
    """Dependency order, as the server records it (pg_dump's anchor): an object is created
    after what it depends on in ``after``, dropped before what it depended on in
    ``before``, and a name is dropped before it is taken again. Each kind's plan slot,
    then its rank, then diff order decide the rest (and inside a cycle)."""
    slot = [(int(c.order), c.rank, i) for i, c in enumerate(changes)]
    first_then = _dependency_edges(changes, before, after)
    if not first_then:
        return [changes[i] for *_, i in sorted(slot)]
    waits = [0] * len(changes)
    then: dict[int, list[int]] = defaultdict(list)
    for a, b in first_then:
        then[a].append(b)
        waits[b] += 1
    ready = [slot[i] for i in range(len(changes)) if not waits[i]]
    heapq.heapify(ready)
    done: set[int] = set()
    out: list[Change] = []
    while len(out) < len(changes):
        if not ready:
            # A cycle: the earliest slot among what is left goes first.
            heapq.heappush(ready, min(slot[i] for i in range(len(changes)) if i not in done))
        *_, i = heapq.heappop(ready)
        if i in done:
            continue
        done.add(i)
        out.append(changes[i])
        for j in then[i]:
            waits[j] -= 1
            if waits[j] == 0 and j not in done:
                heapq.heappush(ready, slot[j])
    return out


def _dependency_edges(changes: list[Change], before: Schema | None,
                      after: Schema | None) -> set[tuple[int, int]]:
    """(i, j): change i must run before change j."""
    made: dict[ObjectKey, list[int]] = defaultdict(list)
    gone: dict[ObjectKey, list[int]] = defaultdict(list)
    for i, c in enumerate(changes):
        for k in c.objects_created():
            made[k].append(i)
        for k in c.objects_dropped():
            gone[k].append(i)
    # (a change that both drops and makes an object, such as a column's new type
    # remaking its table's row, is ordered by the graph alone, not against its like)
    edges = {(d, c) for k, ds in gone.items() for d in ds for c in made.get(k, ())
             if d != c and not (d in made[k] and c in ds)}
    if after is not None:
        for obj, dep in after.dependencies:
            if obj in made and dep in made:
                edges |= {(x, y) for x in made[dep] for y in made[obj] if x != y}
    if before is not None:
        for obj, dep in before.dependencies:
            if obj in gone and dep in gone:
                edges |= {(y, x) for x in gone[dep] for y in gone[obj] if x != y}
    return edges


def recreate_dependents(changes: list[Change], before: Schema,
                        after: Schema) -> list[Change]:
    """``changes`` plus what PostgreSQL would refuse to drop otherwise: a view or routine
    that stays but depends (in ``before``'s graph) on something the plan drops, such as a
    function whose signature changes or a table created again, is dropped before it and
    created again after it. A routine that itself is recreated in one step (DROP +
    CREATE) while others depend on it, or it on another dropped object, is split into a
    drop and a create, so that the others fit in between."""
    from .changes.create_function import CreateFunction, function_key
    from .changes.create_view import CreateView
    from .changes.drop_function import DropFunction
    from .changes.drop_view import DropView
    from .renames import declared_renames

    if not before.dependencies:  # (an index's call of a routine is not in the graph)
        return changes + _table_parts_calling_recreated(changes, before, after)
    # (as the diff saw it: under the declared renames, its graph's columns too)
    before = declared_renames(before, after)[0]
    dependents: dict[ObjectKey, set[ObjectKey]] = defaultdict(set)
    for obj, dep in before.dependencies:
        dependents[dep].add(obj)
    old_fns = {function_key(f): f for f in before.functions}
    new_fns = {function_key(f): f for f in after.functions}
    old_views = {("relation", v.schema_ or "", v.name, ""): v for v in before.views}
    new_views = {("relation", v.schema_ or "", v.name, ""): v for v in after.views}

    # (a routine recreated in one step can be neither before nor after another dropped
    # object it depends on, or that depends on it)
    dropped = {k for c in changes for k in c.objects_dropped()}
    linked = set(dependents) | {obj for obj, dep in before.dependencies if dep in dropped}
    out: list[Change] = []
    for c in changes:
        if isinstance(c, CreateFunction) and c.recreate and c.before is not None \
                and function_key(c.before) in linked:
            out += [DropFunction(c.before, recreated=True),
                    replace(CreateFunction(c.function, after_tables=c.after_tables),
                            context_findings=c.context_findings)]
        else:
            out.append(c)
    dropped = {k for c in out for k in c.objects_dropped()}
    # Kept in place by the plan (CREATE OR REPLACE, ALTER): replaced by drop + create.
    kept = {k for c in out for k in c.objects_created()} - dropped
    stack = list(dropped)
    while stack:
        for obj in sorted(dependents.get(stack.pop(), ())):
            if obj in dropped:
                continue
            if obj in old_views and obj in new_views:
                redo: list[Change] = [DropView(old_views[obj], recreated=True),
                                      CreateView(new_views[obj], recreated=True)]
            elif obj in old_fns and obj in new_fns:
                redo = [DropFunction(old_fns[obj], recreated=True),
                        CreateFunction(new_fns[obj])]
            else:
                continue  # a table, domain ...: the server says what is in the way
            if obj in kept:
                out = [c for c in out if obj not in c.objects_created()]
            out += redo
            dropped.add(obj)
            stack.append(obj)
    _readers_left_to_the_plan(out, dropped)
    return out + _table_parts_calling_recreated(out, before, after)


def _readers_left_to_the_plan(changes: list[Change], dropped: set[ObjectKey]) -> None:
    """An enum recreated (or the undo of a value added) drops and makes again the views
    and routines that read it; those the plan drops and makes again itself (over a
    column that changes type, say) are left to the plan's own steps: the enum's step
    would drop one already gone, or its undo one not yet made again ("function ... does
    not exist")."""
    from .changes.add_enum_value import AddEnumValue
    from .changes.create_function import function_key
    from .changes.recreate_enum import RecreateEnum
    from .model import View

    def key(r: Any) -> ObjectKey:
        return ("relation", r.schema_ or "", r.name, "") if isinstance(r, View) \
            else function_key(r)

    for c in changes:
        if isinstance(c, AddEnumValue | RecreateEnum) and c.readers:
            c.readers = [r for r in c.readers if key(r) not in dropped]


def _table_parts_calling_recreated(changes: list[Change], before: Schema,
                                   after: Schema) -> list[Change]:
    """The CHECKs, EXCLUDE constraints, indexes, column defaults, policies, triggers and
    extended statistics of a table that stays which call a routine the plan drops and
    creates again (a new return type): the server refuses the drop under them ("cannot
    drop function ... because other objects depend on it"), so each is dropped before it
    and made again after it, as the desired schema has it. (Those the plan drops or
    changes anyway are left to their own steps.)"""
    from .changes.add_constraint import AddConstraint
    from .changes.create_index import CreateIndex
    from .changes.drop_constraint import DropConstraint
    from .changes.drop_index import DropIndex
    from .changes.drop_table import DropTable

    made = {k for c in changes for k in c.objects_created()}
    redone = [k for c in changes for k in c.objects_dropped()
              if k[0] == "function" and k in made]
    if not redone:
        return []
    touched = {(c.table.schema_ or "", c.table.name, c.constraint.name) for c in changes
               if isinstance(c, DropConstraint)}
    touched |= {(c.schema, c.relation, c.index.name) for c in changes
                if isinstance(c, DropIndex)}
    gone = {(c.table.schema_ or "", c.table.name) for c in changes if isinstance(c, DropTable)}
    from .changes.hold_generated_column import HoldGeneratedColumn

    def calls(text: str | None) -> bool:
        return _calls_any(redone, text)

    out: list[Change] = []
    for tb in before.tables:
        s = tb.schema_ or ""
        ta = after.table(s, tb.name)
        if ta is None or (s, tb.name) in gone:
            continue
        # Generated columns calling one go and come back: what is over them too.
        held = _hold_generated(changes, tb, ta, calls)
        out += held
        over = {c.column.name for c in held if isinstance(c, HoldGeneratedColumn)}
        for ck in tb.check_constraints:
            new = next((x for x in ta.check_constraints if x.name == ck.name), None)
            if new is not None and (s, tb.name, ck.name) not in touched \
                    and (calls(ck.expression) or _uses(ck, over)):
                out += [DropConstraint(tb, ck), AddConstraint(tb, new)]
        for ix in tb.indexes:
            twin = next((x for x in ta.indexes if x.name == ix.name), None)
            if twin is not None and (s, tb.name, ix.name) not in touched and (
                    calls(ix.where) or any(calls(k.expression) for k in ix.keys)
                    or _uses(ix, over)):
                out += [DropIndex(s, tb.name, ix), CreateIndex(s, ta.name, twin)]
        for ex in tb.exclusion_constraints:
            new_ex = next((x for x in ta.exclusion_constraints if x.name == ex.name), None)
            if new_ex is not None and (s, tb.name, ex.name) not in touched \
                    and (calls(ex.definition) or _uses(ex, over)):
                out += [DropConstraint(tb, ex), AddConstraint(tb, new_ex)]
        for key in (tb.primary_key, *tb.unique_constraints):
            new_key = ta.primary_key if key is tb.primary_key else next(
                (x for x in ta.unique_constraints if key is not None and x.name == key.name),
                None)
            if key is not None and new_key is not None and key.name and (
                    s, tb.name, key.name) not in touched and _uses(key, over):
                out += [DropConstraint(tb, key), AddConstraint(tb, new_key)]
        for col in tb.columns:
            if col.default is not None and col.generated is None and calls(col.default):
                out += _hold_default(changes, tb, col, ta.column(col.name))
        out += _other_parts_calling(changes, tb, ta, calls, over)
    return out + _domain_parts_calling(changes, before, after, redone)


def _hold_generated(changes: list[Change], tb: Table, ta: Table,
                    calls: Callable[[str | None], bool]) -> list[Change]:
    """The generated columns of ``tb`` whose expression calls a routine the plan drops and
    creates again: dropped before it (HoldGeneratedColumn) and added back after it as
    ``ta`` has them (an AddColumn), or only dropped where the plan drops them (its own
    DropColumn, after the routine's drop, is gone from ``changes``); so is the plan's own
    step that gives it a new expression (or type), which dropped and added it back (or
    set the expression) after the routine's drop. One the plan makes plain keeps its
    step (DROP EXPRESSION: the values stay), moved before the routine's drop (its undo,
    which adds the column back generated, then comes after the rollback has made the old
    routine again). One altered with other generated columns is left to its step."""
    from .changes.add_column import AddColumn
    from .changes.alter_column import AlterColumn
    from .changes.drop_column import DropColumn
    from .changes.hold_generated_column import HoldGeneratedColumn
    from .changes.set_comment import SetComment

    key = (tb.schema_ or "", tb.name)
    out: list[Change] = []
    for col in tb.columns:
        if col.generated is None or col.inherited or not calls(col.generated):
            continue
        mine = [c for c in changes if c.table_key() == key and (
            isinstance(c, AlterColumn) and c.before.name == col.name
            or isinstance(c, DropColumn) and c.column.name == col.name)]
        plain = [c for c in mine if isinstance(c, AlterColumn) and c.after.generated is None
                 and not (c.drops or c.adds)]
        for c in plain:
            c.order = HoldGeneratedColumn(tb, col).order  # type: ignore[misc]  # per instance
        if plain or any(isinstance(c, AlterColumn) and (c.after.generated is None or c.drops
                                                        or c.adds) for c in mine):
            continue
        changes[:] = [c for c in changes if c not in mine]
        out.append(HoldGeneratedColumn(tb, col))
        new = ta.column(col.name)
        if new is not None:
            out.append(AddColumn(tb, new.model_copy(update={"comment": None}), rank=1))
            if new.comment is not None:
                out.append(SetComment("COLUMN", (*key, new.name), None, new.comment))
    return out


def _other_parts_calling(changes: list[Change], tb: Table, ta: Table,
                         calls: Callable[[str | None], bool],
                         over: set[str] | None = None) -> list[Change]:
    """The policies, triggers (WHEN) and extended statistics of ``tb`` that call a
    routine the plan drops and creates again, and that the plan neither drops nor makes
    anyway: dropped before it, made again after it (as ``ta`` has them)."""
    from .changes.create_policy import CreatePolicy
    from .changes.create_statistics import CreateStatistics
    from .changes.create_trigger import CreateTrigger
    from .changes.drop_policy import DropPolicy
    from .changes.drop_statistics import DropStatistics
    from .changes.drop_trigger import DropTrigger

    s = tb.schema_ or ""
    own: set[tuple[str, str]] = set()
    for c in changes:
        if c.table_key() == (s, tb.name):
            for kind, attr in (("policy", "policy"), ("trigger", "trigger"),
                               ("statistics", "statistics")):
                obj = getattr(c, attr, None)
                if obj is not None and hasattr(obj, "name"):
                    own.add((kind, obj.name))
    out: list[Change] = []
    for p in tb.policies:
        twin = next((x for x in ta.policies if x.name == p.name), None)
        if twin is not None and ("policy", p.name) not in own and (
                calls(p.using) or calls(p.with_check)):
            out += [DropPolicy(s, tb.name, p), CreatePolicy(s, ta.name, twin)]
    for t in tb.triggers:
        twin_t = next((x for x in ta.triggers if x.name == t.name), None)
        if twin_t is not None and ("trigger", t.name) not in own and calls(t.definition):
            out += [DropTrigger(s, tb.name, t), CreateTrigger(s, ta.name, twin_t)]
    for st in tb.statistics:
        twin_s = next((x for x in ta.statistics if (x.schema_, x.name) == (
            st.schema_, st.name)), None)
        if twin_s is not None and ("statistics", st.name) not in own \
                and (calls(st.definition) or _uses(st, over or set())):
            out += [DropStatistics(s, tb.name, st), CreateStatistics(s, ta.name, twin_s)]
    return out


def _domain_parts_calling(changes: list[Change], before: Schema, after: Schema,
                          redone: list[ObjectKey]) -> list[Change]:
    """A domain's CHECKs and default that call a routine the plan drops and creates
    again, as a table's CHECK: dropped before it (HoldDomainChecks) and made again after
    it, by an ALTER DOMAIN from what is left to the desired domain (the plan's own step
    for the domain, if any, rebased: ``changes`` edited in place), which the server's
    graph puts after the routine. (A domain the plan recreates is left as it is.)"""
    from .changes.alter_domain import AlterDomain
    from .changes.hold_domain_checks import HoldDomainChecks

    out: list[Change] = []
    for dom in before.domains:
        key = (dom.schema_ or "", dom.name)
        new = next((x for x in after.domains if (x.schema_ or "", x.name) == key), None)
        checks = [c for c in dom.checks if c.name and _calls_any(redone, c.expression)]
        default = _calls_any(redone, dom.default)
        if new is None or not (checks or default):
            continue
        own = next((c for c in changes if isinstance(c, AlterDomain)
                    and (c.before.schema_ or "", c.before.name) == key), None)
        if own is not None and own.recreate():
            continue
        if checks and (held := _containers_of(dom, before, after)):
            # ALTER DOMAIN ... ADD CONSTRAINT (and VALIDATE of one added NOT VALID) checks
            # the domain's columns, and the server refuses where one is an array or a
            # composite holding the domain ("cannot alter type ... because column ...
            # uses it"): the CHECK could not come back, forward or on rollback.
            fn = ", ".join(sorted({qualified(k[1] or None, k[2]) for k in redone
                                   if _calls_any([k], *(c.expression for c in checks))}))
            raise BadInput(
                f"cannot plan: domain {qualified(dom.schema_, dom.name)}'s CHECK "
                f"{', '.join(c.name or '' for c in checks)} calls {fn}, which the plan drops "
                "and creates again (a new return type), so the CHECK must be dropped and "
                f"added back, and PostgreSQL refuses to add it back while {held[0]} holds "
                "an array or composite of the domain: create the new routine under another "
                "name and point the CHECK at it, or change that column first")
        kept = dom.model_copy(update={"checks": [c for c in dom.checks if c not in checks],
                                      "default": None if default else dom.default})
        if own is not None:
            changes.remove(own)
        again = AlterDomain(kept, new)
        out += [HoldDomainChecks(dom, checks, default),
                *([again] if again.statements_needed() else [])]
    return out


def _containers_of(dom: Any, *schemas: Schema) -> list[str]:
    """The table columns of ``schemas`` whose type is an array of ``dom`` (or of a domain
    over it), or a composite type with an attribute of one: those PostgreSQL refuses
    to check when a CHECK is added to ``dom`` (tablecmds.c, get_rels_with_domain)."""
    from .changes.pg_common import type_ref

    family = {(dom.schema_ or "public", dom.name)}
    grew = True
    while grew:  # (the domains over it, at any depth: their columns are checked too)
        grew = False
        for s in schemas:
            for x in s.domains:
                ref, k = type_ref(x.base_type), (x.schema_ or "public", x.name)
                if ref is not None and ref[:2] in family and not ref[2] and k not in family:
                    family.add(k)
                    grew = True
    out: set[str] = set()
    for s in schemas:
        comps = {(c.schema_ or "public", c.name) for c in s.composite_types
                 if any((r := type_ref(a.type)) is not None and r[:2] in family
                        for a in c.attributes)}
        for t in s.tables:
            for col in t.columns:
                ref = type_ref(col.type)
                if ref is not None and (ref[:2] in family and ref[2] or ref[:2] in comps):
                    out.add(f"{qualified(t.schema_, t.name)}.{col.name}")
    return sorted(out)


def _hold_default(changes: list[Change], table: Table, col: Column,
                  new: Column | None) -> list[Change]:
    """A default of ``col`` that calls a routine the plan drops and creates again: dropped
    before the routine, set again (``new``'s) after it and after the column's own steps,
    which no longer touch the default (``changes`` edited in place): their default steps
    ran after the routine's drop, their undo set the old default before the routine was
    back. The column dropped by the plan, or its default, drops it early the same way."""
    from .changes.alter_column import AlterColumn
    from .changes.drop_column import DropColumn
    from .changes.hold_default import HoldDefault

    key = (table.schema_ or "", table.name)
    rank = 0
    for i, c in enumerate(changes):
        if isinstance(c, AlterColumn) and c.table_key() == key and c.before.name == col.name:
            rank = max(rank, c.rank)
            changes[i] = replace(c, before=c.before.model_copy(update={"default": None}),
                                 after=c.after.model_copy(update={"default": None}))
        elif isinstance(c, DropColumn) and c.table_key() == key and c.column.name == col.name:
            changes[i] = replace(c, column=c.column.model_copy(update={"default": None}))
    # (a step left with nothing to do is gone)
    changes[:] = [c for c in changes if not (
        isinstance(c, AlterColumn) and c.table_key() == key and c.before.name == col.name
        and c.before == c.after and not (c.drops or c.adds or c.checks_dropped
                                         or c.checks_added))]
    out: list[Change] = [HoldDefault(table, col.name, col.default or "")]
    if new is not None and new.default is not None and new.generated is None \
            and new.identity is None:
        out.append(HoldDefault(table, col.name, new.default, release=True, rank=rank))
    return out


def _calls_any(routines: list[ObjectKey], *texts: str | None) -> bool:
    """Whether one of ``texts`` calls one of the routines (function keys)."""
    return any(_calls_routine(t, k[1], k[2]) for k in routines for t in texts)


def _calls_routine(text: str | None, schema: str, name: str) -> bool:
    """Whether server-printed text (search_path '': routines outside pg_catalog are
    qualified) calls schema.name(...), read with PostgreSQL's lexer."""
    from pglast.parser import ParseError, scan

    if not text:
        return False
    try:
        tokens = scan(text)
    except ParseError:
        return True  # (unreadable: taken as a caller, which costs a rebuild at most)

    def word(i: int) -> str:
        t = text[tokens[i].start:tokens[i].end + 1]
        return t[1:-1].replace('""', '"') if t.startswith('"') else t.lower()

    return any(tokens[i + 1].name == "ASCII_40" and word(i) == name
               and tokens[i - 1].name == "ASCII_46" and word(i - 2) == schema
               for i in range(2, len(tokens) - 1))


def _table_label(change: Change) -> str | None:
    key = change.table_key()
    if key is None:
        return None
    return f"{key[0]}.{key[1]}" if key[0] else key[1]


def _alter_of(change: Change, d: Dialect) -> StepAlter | None:
    found = d.alter_clauses(change)
    if found is None:
        return None
    schema, table, clauses = found
    return StepAlter(schema=schema, table=table, clauses=clauses)


def _note_foreign_keys(steps: list[Step], before: Schema, after: Schema) -> None:
    """Each ALTER step's ``foreign_keys``: those of its table and those referencing it,
    in either schema."""
    for step in steps:
        if step.alter is None:
            continue
        key = (step.alter.schema_, step.alter.table)
        names: set[str] = set()
        for schema in (before, after):
            for t in schema.tables:
                mine = (t.schema_ or "", t.name) == key
                for fk in t.foreign_keys:
                    ref = (fk.referenced_schema or t.schema_ or "", fk.referenced_table)
                    if mine or ref == key:
                        names.add(qualified(t.schema_, f"{t.name}.{fk.name or '?'}"))
        step.alter.foreign_keys = sorted(names)


def _findings(change: Change, assessment: Assessment) -> list[StepFinding]:
    found = list(assessment.findings)
    if not found and assessment.safety is not Safety.SAFE:
        # A kind that names no rule still gets one, so every risk has an id to ignore.
        rule = change.risk_rule or (
            "drop-object" if change.kind.startswith("drop_") else "review-required")
        found = [Finding(rule, m, assessment.safety) for m in assessment.messages[:1]] \
            or [Finding(rule, change.describe(), assessment.safety)]
    return [StepFinding(**f.to_json()) for f in found]


# Every PostgreSQL step says how long it may wait for a lock: a DDL statement queued
# behind a long transaction blocks every query queued behind it. (Even steps on objects
# the plan creates: they lock what they reference, and the script may run step by step.)
# Short, so that no query stalls longer than this behind a waiting step; the executor
# retries the step with backoff within its lock-wait budget (lockplane.lockwait).
DEFAULT_LOCK_TIMEOUT_MS = 150
# A day: far above any sane lock wait, and (with BRIEF_STEP_MS added for a step's
# statement_timeout) well inside PostgreSQL's int4 milliseconds.
MAX_LOCK_TIMEOUT_MS = 86_400_000
# How long a step that holds its strong lock only briefly may run after waiting for it.
BRIEF_STEP_MS = 10_000


def check_lock_timeout(ms: int, name: str = "--lock-timeout-ms") -> int:
    """``ms`` if it is a usable lock_timeout (0: none), else bad input naming ``name``."""
    if isinstance(ms, bool) or not isinstance(ms, int) or not 0 <= ms <= MAX_LOCK_TIMEOUT_MS:
        raise BadInput(f"{name} must be a whole number of milliseconds from 0 to "
                       f"{MAX_LOCK_TIMEOUT_MS} (24 h), not {ms!r}")
    return ms


def lock_timeout_sql(ms: int) -> str:
    return f"SET lock_timeout = '{int(ms)}ms'"


def step_for(change: Change, d: Dialect,
             lock_timeout_ms: int | None = DEFAULT_LOCK_TIMEOUT_MS) -> Step:
    assessment = change.assess(d)
    findings = _findings(change, assessment)
    if change.context_findings:
        extra = change.context_findings
        worst = max([assessment.safety, *(f.effective_safety for f in extra)],
                    key=lambda s: s.rank)
        more = [StepFinding(**f.to_json()) for f in extra]
        texts = tuple(f.message for f in extra)
        if worst.rank > assessment.safety.rank:
            # The worst first, so that a refusal names it (and its message).
            findings, texts_first = more + findings, texts + assessment.messages
        else:
            findings, texts_first = findings + more, assessment.messages + texts
        assessment = Assessment(worst, texts_first, assessment.findings + extra)
    lock = change.lock(d)
    sql = change.sql(d)
    if lock_timeout_ms and d.step_sql_sets_timeouts and sql and not change.transactional(d) \
            and not (lock.blocks_reads or lock.blocks_writes) and not hasattr(
                change, "backfill_spec"):
        # CONCURRENTLY and VALIDATE wait for every older transaction, on any table: a
        # short lock_timeout would fail them behind any long report. Their lock blocks
        # no reads or writes, so waiting queues no query behind them.
        sql = ["SET lock_timeout = 0", *sql]
    elif lock_timeout_ms and d.step_sql_sets_timeouts and sql:
        if lock.blocks_writes and not (lock.scans_table or lock.rewrites_table):
            # Meant to be brief once its lock is granted: a statement_timeout turns a
            # surprise (a scan nobody expected) into a failed step instead of an outage.
            sql = [f"SET statement_timeout = '{int(lock_timeout_ms) + BRIEF_STEP_MS}ms'",
                   *sql, "RESET statement_timeout"]
        sql = [lock_timeout_sql(lock_timeout_ms), *sql]
    inverse = change.inverse()
    # An inverse with a condition, and whatever follows it, runs as steps of its own.
    alone = next((i for i, inv in enumerate(inverse) if inv.condition(d) is not None),
                 len(inverse))
    inverse, then = inverse[:alone], inverse[alone:]
    rb_sql: list[str] = []
    rb_worst = Safety.SAFE
    rb_lock: Lock | None = None
    rb_cleanup: list[str] = []
    for inv in inverse:
        rb_sql += inv.sql(d)
        if not inv.cleanup_reverts_previous():  # (what precedes an undo is another step)
            rb_cleanup += inv.cleanup_sql(d)
        s = inv.assess(d).safety
        if s.rank > rb_worst.rank:
            rb_worst = s
        rb_lock = _stronger(rb_lock, inv.lock(d))
    rb_transactional = all(inv.transactional(d) for inv in inverse)
    if lock_timeout_ms and d.step_sql_sets_timeouts and rb_sql:
        # As for the forward SQL above: a build that blocks nobody waits without limit.
        quiet = not rb_transactional and rb_lock is not None \
            and not (rb_lock.blocks_reads or rb_lock.blocks_writes)
        rb_sql = ["SET lock_timeout = 0" if quiet else lock_timeout_sql(lock_timeout_ms),
                  *rb_sql]
    return Step(
        description=change.describe(),
        sql=sql,
        kind=change.kind,
        table=_table_label(change),
        alter=_alter_of(change, d),
        safety=assessment.safety.value,
        lock=StepLock(**lock.to_json()),
        transactional=change.transactional(d),
        rollback=StepRollback(sql=rb_sql, safety=rb_worst.value, note=change.rollback_note(),
                              at_stake=change.rollback_stake() if rb_sql else None,
                              lock=StepLock(**rb_lock.to_json()) if rb_sql and rb_lock
                              else None,
                              transactional=rb_transactional if rb_sql else None,
                              cleanup=rb_cleanup if rb_sql else [],
                              then=[step_for(c, d, lock_timeout_ms) for c in then]),
        messages=list(assessment.messages),
        findings=findings,
        backfill=change.backfill_spec(d) if hasattr(change, "backfill_spec") else None,
        cleanup=change.cleanup_sql(d),
        cleanup_reverts_previous=change.cleanup_reverts_previous(),
        condition=_condition(change, d),
    )


def _condition(change: Change, d: Dialect) -> StepCondition | None:
    cond = change.condition(d)
    if cond is None:
        return None
    where = cond.leaves_nullable
    return StepCondition(query=cond.query, warning=cond.warning, leaves_nullable=None
                         if where is None else dict(zip(("schema", "table", "column"), where,
                                                        strict=True)))


def _stronger(a: Lock | None, b: Lock) -> Lock:
    """The lock facts of two statements run one after the other in one step."""
    if a is None:
        return b
    from .lockstats import LOCK_MODES

    ranks = {m: i for i, m in enumerate(LOCK_MODES)}
    mode = max((a.mode, b.mode), key=lambda m: ranks.get(m, -1))
    return Lock(mode, a.blocks_reads or b.blocks_reads, a.blocks_writes or b.blocks_writes,
                a.rewrites_table or b.rewrites_table, a.scans_table or b.scans_table)


def build_plan(before: Schema, after: Schema, dialect: str | None = None, *,
               lock_safe: bool = True,
               lock_timeout_ms: int | None = DEFAULT_LOCK_TIMEOUT_MS,
               server_dsn: str | None = None, archive_dropped: bool = True) -> Plan:
    """The plan that turns ``before`` into ``after``.

    ``lock_safe`` (PostgreSQL): each change in the form that holds no long strong lock
    (CONCURRENTLY, NOT VALID + VALIDATE, ...); False gives the plain DDL
    (``--no-rewrite``). ``lock_timeout_ms``: written into every locking step's SQL.
    ``server_dsn``: the server that answers questions such as "does this default rewrite
    the table?" (the dialect's default scratch server when None). ``archive_dropped``
    False (``--no-archive``): dropped tables' rows and columns' values are not copied for
    a rollback, and the plan says the rollback brings them back empty.
    """
    name = dialect or after.dialect or before.dialect
    if lock_timeout_ms is not None:
        check_lock_timeout(lock_timeout_ms)
    if before.dialect != after.dialect:
        raise BadInput(f"cannot plan from a {before.dialect} schema to a {after.dialect} schema")
    # The server the plan is for, as its starting schema was read from it (a schema
    # from a file: not known, and the plan's SQL is what every supported version runs).
    d = get_dialect(name).for_server(before.server_version)
    # Objects declared with a time the server freezes ('now'::timestamp) are compared
    # without it (lockplane/frozen.py): the differ sees the live one as declared.
    from .frozen import align, neutral

    raw, before = before, align(before, after, d)
    with comparing(before, after):
        from .renames import readers_as_they_were, split_renamed_readers

        changes = split_renamed_readers(diff(before, after, d), before)
        changes = order_changes(readers_as_they_were(
            recreate_dependents(changes, before, after), before), before, after)
        from .changes.add_column import ask_default_rewrites

        answered = ask_default_rewrites(changes, before, after, d, server_dsn)
        if lock_safe and d.has_lock_safe_forms:
            from .renames import declared_renames

            # (the rewrites look tables up as they are once declared renames are done)
            changes = lock_safe_changes(changes, declared_renames(before, after)[0],
                                        after, d)
        if not archive_dropped:
            for change in changes:
                change.turn_archive_off()
        source_hash, target_hash = hashes(before, after)
    if before is not raw:
        source_hash = raw.hash()
    marks = after.frozen_literals
    if marks:
        target_hash = neutral(after, marks, d).hash()
    with answered:
        steps = steps_for(changes, before, d, lock_timeout_ms=lock_timeout_ms,
                          server_dsn=server_dsn)
    _note_foreign_keys(steps, before, after)
    _note_frozen(steps, changes, after)
    return Plan(source_hash=source_hash, target_hash=target_hash, dialect=name,
                lockplane_version=__version__, hash_format=HASH_FORMAT,
                server_major=d.server_major, steps=steps,
                target_objects=target_digests(raw, after),
                frozen_literals=sorted(list(m) for m in marks) or None)


def steps_for(changes: list[Change], before: Schema, d: Dialect, *,
              lock_timeout_ms: int | None = DEFAULT_LOCK_TIMEOUT_MS,
              server_dsn: str | None = None) -> list[Step]:
    """The steps of ``changes`` (in order) made to ``before``, as every plan makes them:
    kinds the server refuses apart joined (MySQL: an AUTO_INCREMENT column and its key in
    one ALTER), each step's locks decided with the server (Dialect.decide_locks: MySQL's
    ALGORITHM and LOCK tried on an empty copy). ``changes`` may be joined in place."""
    from .changes.add_keyed_column import keep_keys_with_auto_columns

    changes[:] = keep_keys_with_auto_columns(changes, d)
    with d.decide_locks(changes, before, server_dsn):
        return [step_for(c, d, lock_timeout_ms) for c in changes]


def _note_frozen(steps: list[Step], changes: list[Change], after: Schema) -> None:
    """A step that creates a view, default or CHECK declared with a time value the server
    freezes says so (lockplane.rules: frozen-time-literal)."""
    from .rules import RULES

    marks = after.frozen_literals
    if not marks:
        return
    views = {(m[1], m[2]) for m in marks if m[0] == "view"}
    tables = {(m[1], m[2]): m for m in marks if m[0] != "view"}
    for step, change in zip(steps, changes, strict=True):
        keys = {(k[1], k[2]) for k in change.objects_created() if k[0] == "relation"}
        what = None
        if keys & views:
            what = "the view's definition"
        elif change.table_key() in tables and change.kind in (
                "create_table", "add_column", "alter_column", "add_constraint"):
            what = "a default or CHECK of this table"
        if what is None:
            continue
        text = (f"{what} holds a time value the server freezes when the step runs "
                "('now'::timestamp, 'today'::date ...): it stays that moment, not the "
                "current time; use now(), CURRENT_DATE or CURRENT_TIMESTAMP")
        step.messages.append(text)
        step.findings.append(StepFinding(rule="frozen-time-literal", safety="review",
                                         message=text,
                                         safer=RULES["frozen-time-literal"].safer))
        if Safety(step.safety).rank < Safety.REVIEW.rank:
            step.safety = Safety.REVIEW.value


def lock_safe_changes(changes: list[Change], before: Schema, after: Schema,
                      d: Dialect) -> list[Change]:
    """Each change replaced, in place, by its kind's lock-safe form."""
    ctx = RewriteContext(before, after, d)
    changes = _replace_without_gap(changes, ctx)
    out: list[Change] = []
    for change in changes:
        safe = change.lock_safe(ctx)
        if change.context_findings and safe and not any(s.context_findings for s in safe):
            # (a rewrite builds new changes: what the differ found stays with the first)
            safe[0] = replace(safe[0], context_findings=change.context_findings)
        out += safe
    return out


def _replace_without_gap(changes: list[Change], ctx: RewriteContext) -> list[Change]:
    """An index, UNIQUE or PRIMARY KEY replaced by one of the same name: build the new one
    concurrently under a temporary name first, then swap. Dropping the old one first and
    building the new one CONCURRENTLY would leave the table without it (no uniqueness, no
    primary key) for the whole build.

    A CHECK or foreign key likewise: the new one added NOT VALID under a temporary name,
    validated, then the old one dropped and the new one renamed in one transaction
    (changes.swap_constraint), so the rule is enforced at every moment."""
    from .changes.add_constraint import AddConstraint, backing_index
    from .changes.add_foreign_key import AddForeignKey
    from .changes.alter_column import AlterColumn
    from .changes.create_index import CreateIndex
    from .changes.drop_constraint import DropConstraint
    from .changes.drop_foreign_key import DropForeignKey
    from .changes.drop_index import DropIndex
    from .changes.pg_common import temp_name
    from .changes.rename_index import RenameIndex
    from .model import CheckConstraint, ForeignKey, PrimaryKey, UniqueConstraint

    def key(c: Change, name: str | None) -> tuple[Any, ...]:
        return (c.table_key(), name)

    # Columns an earlier step drops, regenerates or makes nullable: what is built on them
    # is gone with them, or must go before them, so no swap can wait for the new one.
    # Nor can an index or CHECK calling a routine the plan drops (or drops and creates
    # again): the drop is refused while it stands.
    lost = _columns_dropped(changes)
    # An index over a column that changes type is dropped before the ALTER and built
    # after it, as diff.py asks: built under a temporary name and swapped in, its undo
    # would come before the rollback's ALTER, which rebuilds it from its printed text.
    retyped: dict[tuple[str, str], set[str]] = {}
    for c in changes:
        if isinstance(c, AlterColumn) and c.table_key() is not None and (
                c.before.type, c.before.collation) != (c.after.type, c.after.collation):
            retyped.setdefault(c.table_key(), set()).add(c.after.name)  # type: ignore[arg-type]
    routines = [k for c in changes for k in c.objects_dropped() if k[0] == "function"]
    drops: dict[tuple[Any, ...], Change] = {}
    for c in changes:
        if isinstance(c, DropIndex) and c.index.valid and not _uses(
                c.index, lost.get(c.table_key() or ("", ""), set())
                | retyped.get(c.table_key() or ("", ""), set())) \
                and not _calls_any(routines, c.index.where,
                                   *(k.expression for k in c.index.keys)):
            drops[key(c, c.index.name)] = c
        elif isinstance(c, DropConstraint) and isinstance(
                c.constraint, PrimaryKey | UniqueConstraint) and c.constraint.name \
                and not _uses(c.constraint, lost.get(c.table_key() or ("", ""), set())):
            drops[key(c, c.constraint.name)] = c
        elif isinstance(c, DropConstraint | DropForeignKey) and _rule_kept_until_swap(
                c, changes, ctx) and not (isinstance(c, DropConstraint) and _calls_any(
                    routines, getattr(c.constraint, "expression", None))):
            rule = c.fk if isinstance(c, DropForeignKey) else c.constraint
            drops[key(c, ("rule", rule.name))] = c
    if not drops:
        return changes
    around = _keys_readded_around(changes, lost, retyped)
    out: list[Change] = []
    moved: set[int] = set()
    for c in changes:
        if isinstance(c, CreateIndex) and not c.new_relation and ctx.plain_table(
                c.schema, c.relation) and isinstance(
                    old := drops.get(key(c, c.index.name)), DropIndex):
            tmp = temp_name(c.index.name)
            # (its comment goes on with it: a rename keeps the comment)
            out += [CreateIndex(c.schema, c.relation, c.index.model_copy(
                        update={"name": tmp}), concurrently=True, rank=c.rank),
                    replace(old, concurrently=True, rank=c.rank),
                    RenameIndex(c.schema, c.relation, tmp, c.index.name, rank=c.rank)]
            moved.add(id(old))
        elif isinstance(c, AddConstraint) and isinstance(
                c.constraint, PrimaryKey | UniqueConstraint) and c.constraint.name \
                and ctx.plain_table(c.table.schema_, c.table.name) and isinstance(
                    old := drops.get(key(c, c.constraint.name)), DropConstraint):
            con = c.constraint
            tmp = temp_name(con.name)
            index = backing_index(con, tmp)
            # Foreign keys referencing the old one are dropped and added back around it
            # (add_foreign_key.readd_keys_over_replaced_keys): next to it, once the new
            # index is built, so that the drops, the adoption and the keys added back
            # NOT VALID are consecutive transactional steps too, one transaction. (Not
            # so around a unique index built anew under a temporary name: the keys
            # added back by the undo would take that index, which its undo then drops.)
            keys = around.get((c.table_key(), frozenset(con.columns)), [])
            # The drop and the adoption are consecutive transactional steps: one
            # transaction, so the table is never without the constraint.
            out += [CreateIndex(c.table.schema_ or "", c.table.name, index, concurrently=True,
                                rank=c.rank),
                    *(replace(drop, rank=c.rank) for drop, _ in keys),
                    replace(old, rank=c.rank),
                    replace(c, using_index=True, index_name=tmp),
                    *(replace(add, rank=c.rank) for _, add in keys)]
            moved.add(id(old))
            moved.update(id(k) for pair in keys for k in pair)
        elif isinstance(c, AddConstraint | AddForeignKey) and (new := (
                c.fk if isinstance(c, AddForeignKey) else c.constraint)) is not None \
                and isinstance(new, CheckConstraint | ForeignKey) and new.name \
                and not c.not_valid and isinstance(
                    old := drops.get(key(c, ("rule", new.name))), DropConstraint
                    | DropForeignKey) and _swappable_add(c, ctx, old):
            out += _swap_rule(c, old, new, temp_name(new.name))
            moved.add(id(old))
        else:
            out.append(c)
    # The original drops (earlier in the plan) are gone: each now runs after its twin.
    return [c for c in out if id(c) not in moved]


def _keys_readded_around(changes: list[Change], lost: dict[tuple[str, str], set[str]],
                         retyped: dict[tuple[str, str], set[str]],
                         ) -> dict[tuple[Any, frozenset[str]], list[tuple[Change, Change]]]:
    """Foreign keys the plan drops and adds back unchanged (add_foreign_key), by what they
    reference: ((schema, table), column set) -> [(drop, add)]. Not those over columns the
    plan drops or changes the type of on either side: those go before the ALTERs."""
    from .changes.add_foreign_key import AddForeignKey, references
    from .changes.drop_foreign_key import DropForeignKey
    from .diff import same

    adds = {(c.table_key(), c.fk.name): c for c in changes if isinstance(c, AddForeignKey)}
    out: dict[tuple[Any, frozenset[str]], list[tuple[Change, Change]]] = {}
    for c in changes:
        if not isinstance(c, DropForeignKey) or c.table_dropped:
            continue
        add = adds.get((c.table_key(), c.fk.name))
        ref = references(c.table, c.fk)
        if add is None or not same(c.fk, add.fk, "comment", "valid") or set(c.fk.columns) & (
                lost.get(c.table_key(), set()) | retyped.get(c.table_key(), set())) or set(
                c.fk.referenced_columns) & (lost.get(ref, set()) | retyped.get(ref, set())):
            continue
        out.setdefault((ref, frozenset(c.fk.referenced_columns)), []).append((c, add))
    return out


def _swap_rule(add: Change, old_drop: Change, new: Any, temp: str) -> list[Change]:
    """The three steps of changes.swap_constraint for ``add`` replacing what ``old_drop``
    dropped: add the new one NOT VALID under ``temp``, validate it, swap."""
    from .changes.swap_constraint import SwapConstraint, add_change
    from .changes.validate_constraint import ValidateConstraint

    table = add.table  # type: ignore[attr-defined]
    old = getattr(old_drop, "fk", None) or old_drop.constraint  # type: ignore[attr-defined]
    staged = add_change(table, new.model_copy(update={"name": temp}), not_valid=True,
                        rank=add.rank)
    validates_old = bool(new.valid and old.valid)
    out = [replace(staged, context_findings=add.context_findings)]
    if new.valid:
        # If validating fails, its clean-up drops the new one (the old one is untouched)
        # and progress goes back to the add. Undone, it validates the old one brought back.
        out.append(ValidateConstraint(
            table, temp, temporary=True, rank=add.rank,
            undo=[ValidateConstraint(table, old.name)] if validates_old else []))
    out.append(SwapConstraint(table, old, new, temp, old_validated_by_undo=validates_old
                              or not old.valid, rank=add.rank))
    return out


def _swappable_add(add: Change, ctx: RewriteContext, old_drop: Change) -> bool:
    """Whether the new CHECK / foreign key can be added NOT VALID first (an existing plain
    table; a foreign key also referencing one). Not when either is NOT ENFORCED
    (PostgreSQL 18): it enforces nothing, so there is no gap to close, and it cannot be
    validated."""
    table = add.table  # type: ignore[attr-defined]
    fk = getattr(add, "fk", None)
    rules = (fk or getattr(add, "constraint", None),
             getattr(old_drop, "fk", None) or getattr(old_drop, "constraint", None))
    if not all(getattr(r, "enforced", True) for r in rules):
        return False
    if getattr(add, "new_table", False) or not ctx.plain_table(table.schema_, table.name):
        return False
    return fk is None or ctx.plain_table(fk.referenced_schema, fk.referenced_table)


def _rule_kept_until_swap(drop: Change, changes: list[Change], ctx: RewriteContext) -> bool:
    """Whether a dropped CHECK / foreign key may stay in place until the new one of its
    name is validated, instead of going first. Not when the plan changes what it is built
    on in between: its columns dropped, retyped or regenerated (PostgreSQL re-checks, or
    refuses to alter, what a constraint uses), or, for a foreign key, the referenced
    table's keys and indexes (a key a foreign key depends on cannot be dropped)."""
    from .changes.alter_column import AlterColumn
    from .changes.drop_column import DropColumn
    from .changes.drop_constraint import DropConstraint
    from .changes.drop_foreign_key import DropForeignKey
    from .changes.drop_index import DropIndex
    from .changes.drop_table import DropTable
    from .model import CheckConstraint

    if isinstance(drop, DropConstraint):
        rule: Any = drop.constraint
        if not isinstance(rule, CheckConstraint) or drop.temporary:
            return False
    elif isinstance(drop, DropForeignKey):
        rule = drop.fk
        if drop.table_dropped:
            return False
    else:
        return False
    table = drop.table  # type: ignore[attr-defined]
    if not rule.name or not ctx.plain_table(table.schema_, table.name):
        return False
    changed = _columns_dropped(changes)
    for c in changes:
        if isinstance(c, AlterColumn) and c.table_key() is not None and (
                c.before.type != c.after.type or c.before.collation != c.after.collation):
            changed.setdefault(c.table_key(), set()).add(c.after.name)  # type: ignore[arg-type]
        elif isinstance(c, DropColumn) and c.table_key() is not None:
            changed.setdefault(c.table_key(), set()).add(c.column.name)  # type: ignore[arg-type]
    if _uses(rule, changed.get((table.schema_ or "", table.name), set())):
        return False
    if isinstance(drop, DropForeignKey):
        ref = (rule.referenced_schema or "", rule.referenced_table)
        if not ctx.plain_table(*ref) or ctx.after.table(*ref) is None:
            return False
        if set(rule.referenced_columns) & changed.get(ref, set()):
            return False
        return not any(isinstance(c, DropIndex | DropConstraint | DropTable)
                       and c.table_key() == ref for c in changes)
    return True


def _columns_dropped(changes: list[Change]) -> dict[tuple[str, str], set[str]]:
    from .changes.alter_column import AlterColumn, generation
    from .changes.drop_column import DropColumn
    from .changes.hold_generated_column import HoldGeneratedColumn

    out: dict[tuple[str, str], set[str]] = {}
    for c in changes:
        names: set[str] = set()
        if isinstance(c, DropColumn) or (isinstance(c, HoldGeneratedColumn)
                                         and not c.restore):
            names = {c.column.name}
        elif isinstance(c, AlterColumn):
            # Regenerated columns; and DROP NOT NULL, which PostgreSQL refuses on a
            # primary key column: the old key must be gone first, as in the plain plan.
            names = {g.name for g, _ in c.drops}
            if c.after.nullable and not c.before.nullable or (
                    generation(c.before) != generation(c.after) and not c.in_place):
                names.add(c.after.name)
        if names and c.table_key() is not None:
            out.setdefault(c.table_key(), set()).update(names)  # type: ignore[arg-type]
    return out


def _uses(obj: Any, columns: set[str]) -> bool:
    from .changes.alter_column import mentions_any

    return bool(columns) and mentions_any(obj, columns)


def rollback_plan(plan: Plan, notes: list[list[str]] | None = None) -> Plan:
    """The plan that undoes ``plan``: each step's rollback, in reverse order.

    ``notes``: extra messages per step of ``plan`` (e.g. the data at stake counted by
    lockplane.stake), carried onto that step's undo.
    """
    from .rules import RULES

    if plan.target_hash is None:
        raise BadInput("this plan has no target_hash (original format): plan the rollback "
                       "with 'lockplane plan --from <current> --to <previous>' instead")
    steps = []
    for i, step in reversed(list(enumerate(plan.steps))):
        if step.rollback is None:
            raise BadInput(f"step {step.description!r} has no rollback")
        if not step.rollback.sql:
            # (an undo made only of steps of their own: a fill's, which runs where its
            # record of the rows it changed exists)
            steps += _then_steps(step)
            continue
        lock = step.rollback.lock or step.lock
        said = []
        if lock is not None and lock.rewrites_table and step.table and not (
                step.lock is not None and step.lock.rewrites_table):
            # (the forward step did not: a reviewer of the forward plan has not seen it)
            said = [f"Rewrites {step.table} under {lock.mode}: reads and writes wait for "
                    "the whole rewrite."]
        messages = ([step.rollback.note] if step.rollback.note else []) + said \
            + (notes[i] if notes else [])
        # A rollback that loses data carries a rule id, like any risky step: the safety
        # levels refuse it by that id and --acknowledge names it.
        findings = [StepFinding(
            rule="rollback-loses-data", safety=step.rollback.safety,
            message=(messages[-1] if messages else f"undoing {step.description!r} "
                     f"deletes data ({step.rollback.safety})"),
            safer=RULES["rollback-loses-data"].safer,
        )] if step.rollback.safety in ("dangerous", "lossy") else []
        steps.append(Step(
            description=f"Undo: {step.description}",
            sql=step.rollback.sql,
            kind=f"undo_{step.kind}" if step.kind else None,
            table=step.table,
            safety=step.rollback.safety,
            lock=lock,
            transactional=(step.transactional if step.rollback.transactional is None
                           else step.rollback.transactional),
            cleanup=step.rollback.cleanup,
            rollback=StepRollback(sql=step.sql, safety=step.safety,
                                  transactional=step.transactional, cleanup=step.cleanup),
            messages=messages,
            findings=findings,
        ))
        steps += _then_steps(step)
    return Plan(source_hash=plan.target_hash, target_hash=plan.source_hash,
                dialect=plan.dialect, lockplane_version=__version__,
                hash_format=plan.hash_format, server_major=plan.server_major, steps=steps)


def _then_steps(step: Step) -> list[Step]:
    """The further steps of ``step``'s undo (StepRollback.then), as rollback steps."""
    assert step.rollback is not None
    # (undone with the step's own redo: nothing of their own to undo)
    return [more.model_copy(update={
        "description": f"Undo: {step.description}: {more.description}",
        "kind": f"undo_{more.kind}" if more.kind else None,
        "rollback": StepRollback(sql=[], safety="safe")}) for more in step.rollback.then]


def load_plan(path: str) -> Plan:
    from .inputs import load_json

    data: Any = load_json(path, "plan file")
    if isinstance(data, dict) and data.get("multi_phase"):
        raise BadInput(f"{path} is a multi-phase plan: use 'lockplane apply-phase'")
    try:
        return Plan.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        raise BadInput(f"{path}: invalid plan at {where or 'top level'}: {err['msg']}") from None
