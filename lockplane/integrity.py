"""Plans are tamper-evident: an id over everything that runs, and optional signatures.

A plan file is reviewed in a pull request and applied later, maybe by someone else: it
can be edited in between. Like Atlas's ``atlas.sum`` (a hash over the migration
directory that ``atlas migrate apply`` refuses to run without), every plan file carries
its ``plan_id``, a SHA-256 over everything in it that executes or decides what executes,
and ``apply``, ``rollback`` and ``apply-phase`` recompute it and refuse a plan whose
content no longer matches (exit 3) before they connect to anything.

An id alone proves only that the file is consistent: whoever edits the SQL can write
the new id too. With ``LOCKPLANE_PLAN_KEY`` set, plan files are also signed (an
HMAC-SHA256 of the id, ``"hmac-sha256:KEYID:HEX"``) when written (``lockplane plan``) or
after review (``lockplane sign``), and the commands that apply a plan file refuse an
unsigned or wrongly signed one. The key never appears in any output; KEYID is a short
fingerprint of it, so that "signed with another key" can be told apart from "changed".

A signature also names where the plan may run (``signed_for``: environments of
``lockplane.toml``, or ``*`` for any), and covers that list. Without it, a plan reviewed
and signed for staging would apply to production as soon as the two schemas were equal
(the plan is bound to its ``source_hash`` only). Terraform binds a saved plan to the
state it was made against (its lineage); Lockplane binds the signature to the
environment it was reviewed for: ``apply --target-environment prod`` refuses (exit 3) a
plan signed for staging only, and ``apply --target URL``, which names no environment,
refuses one signed for named environments only. A team that means one plan for several
environments signs it for each (``lockplane sign -e staging -e prod``) or for any
(``--any-environment``). A signature written before this (no ``signed_for``) still
verifies, but nothing applies it until it is signed again.

The id is a function of the parsed content only: re-indenting the JSON, reordering its
keys or writing defaults out does not change it. Plans of the original format (no
``plan_id``) still load and apply, unless a key is set: then they must be signed first.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from typing import TYPE_CHECKING, Any

from .errors import BadInput, SafetyRefusal
from .plan import Plan, Step

if TYPE_CHECKING:
    from .multiphase.model import MultiPhasePlan

PLAN_KEY_ENV = "LOCKPLANE_PLAN_KEY"
ALGORITHM = "hmac-sha256"
_SIGNATURE = re.compile(r"hmac-sha256:([0-9a-f]{12}):([0-9a-f]{64})")
ANY_ENVIRONMENT = "*"
# An environment a signature names: a TOML bare key (what a refusal line can show as is).
_ENVIRONMENT_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


# --------------------------------------------------------------------------- the ids
def _digest(content: Any) -> str:
    body = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(body.encode()).hexdigest()


def _step_content(step: Step) -> dict[str, Any]:
    """What of a step the id covers, and why.

    In, because it runs: ``sql``; ``cleanup`` (runs before a retry and after a failure);
    ``backfill`` (on PostgreSQL the executor runs *this* in batches, not ``sql``).
    In, because an exported form of it runs: ``alter`` (the clauses ``export --to
    gh-ost|pt-osc`` hands the tool).
    In, because it decides how or whether it runs: ``transactional`` (grouping, retries),
    ``cleanup_reverts_previous`` (when the clean-up runs, how progress is rewound),
    ``safety`` and each finding's ``rule`` and ``safety`` (what ``--safety`` refuses and
    what ``--acknowledge`` matches), ``table`` (``--acknowledge rule@table``), ``kind``
    (how ``export`` translates the step), ``lock`` (the facts a reviewer and a CI policy
    gate on before approving or signing), ``rollback.sql`` and ``rollback.safety`` (what
    ``rollback`` runs and refuses), ``rollback.transactional``, ``rollback.cleanup`` and
    ``rollback.lock`` (how it runs and what it locks, as for the step),
    ``rollback.at_stake`` (what it counts on the live database before asking) and
    ``rollback.then`` (further undo steps, covered as steps);
    ``condition`` (whether the step runs, and what a skip may leave).
    Out: ``description``, ``messages``, a finding's ``message`` and ``safer``, and
    ``rollback.note``: prose for the reader that cannot execute (what it says is shown
    next to the SQL, which is covered), and some of it is counted live (the rows a
    rollback destroys), so covering it would give one plan a new id on each run and
    break resuming it. ``measured``: observations from a shadow copy (``--analyze-locks``)
    that differ on each run and change nothing that runs.
    """
    rb = step.rollback
    return {
        "sql": step.sql,
        "cleanup": step.cleanup,
        "cleanup_reverts_previous": step.cleanup_reverts_previous,
        "transactional": step.transactional,
        "backfill": step.backfill,
        "safety": step.safety,
        "findings": [[f.rule, f.safety] for f in step.findings],
        "table": step.table,
        # What export --to gh-ost|pt-osc hands the tool (plans without it keep their id).
        **({"alter": step.alter.model_dump(mode="json", by_alias=True)}
           if step.alter is not None else {}),
        "kind": step.kind,
        # (exclude_none: plans written before the MySQL fields keep their id)
        "lock": step.lock.model_dump(mode="json", exclude_none=True)
        if step.lock is not None else None,
        "rollback": None if rb is None else {
            "sql": rb.sql, "safety": rb.safety, "at_stake": rb.at_stake,
            # How the rollback runs (plans written without these keep their id).
            **({"transactional": rb.transactional} if rb.transactional is not None else {}),
            **({"cleanup": rb.cleanup} if rb.cleanup else {}),
            # The rollback step's lock facts: shown to whoever confirms the rollback, and
            # what its apply check reads to know the undo rewrites a table (plan.py's
            # rollback_plan). Plans written without one keep their id.
            **({"lock": rb.lock.model_dump(mode="json", exclude_none=True)}
               if rb.lock is not None else {}),
            # Further steps of the undo (they run, and decide when they run).
            **({"then": [_step_content(s) for s in rb.then]} if rb.then else {})},
        # When the step runs (plans without one keep their id).
        **({"condition": step.condition.model_dump(mode="json")} if step.condition else {}),
    }


def plan_id(plan: Plan) -> str:
    """The id of a plan's content (SHA-256, hex).

    Covered besides the steps (see ``_step_content``): ``source_hash`` and
    ``target_hash`` (the state it may run on; where it leads), ``dialect`` (which SQL
    runs where) and ``hash_format`` (how those hashes were read); ``target_objects``
    when the plan has them (what a diverged apply is said to differ in: an edited list
    could hide a difference from the operator; plans written without them keep their
    id); ``server_major`` when the plan has one (the servers apply accepts it for, and
    its SQL may need that version). Not covered: ``plan_id`` and ``signature`` themselves,
    ``lockplane_version``
    and ``$schema`` (labels that decide nothing).
    """
    content: dict[str, Any] = {
        "source_hash": plan.source_hash,
        "target_hash": plan.target_hash,
        "dialect": plan.dialect,
        "hash_format": plan.hash_format,
        "steps": [_step_content(s) for s in plan.steps],
    }
    if plan.target_objects is not None:
        content["target_objects"] = plan.target_objects
    if plan.frozen_literals:  # (how the target is compared: plans without keep their id)
        content["frozen_literals"] = plan.frozen_literals
    if plan.server_major is not None:  # (where it may run: plans without keep their id)
        content["server_major"] = plan.server_major
    return _digest(["lockplane.plan/1", content])


def legacy_plan_id(plan: Plan) -> str:
    """The id Lockplane used before plans carried one (hashes and SQL, 16 hex digits):
    only to find, in the history, a run of this plan that an older version left."""
    body = json.dumps([plan.source_hash, plan.target_hash, [s.sql for s in plan.steps]],
                      sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def multiphase_plan_id(mp: MultiPhasePlan) -> str:
    """The id of a multi-phase plan's content.

    In: each phase's plan (by its ``plan_id``), its rollback plan and rollback SQL, its
    verification queries (they run on the target, and gate the next phase), its number,
    ``requires_code_deploy`` and ``depends_on_phase`` (which gates apply); the hashes,
    dialect, operation, table and pattern (``table`` and ``operation`` key the migration
    in ``lockplane.phases``); and what ``export`` builds its operations from (column,
    new name, types, default). Out: names, descriptions, code changes to deploy, notes
    and warnings: prose for the operator.
    """
    phases = []
    for p in mp.phases:
        rb = p.rollback
        phases.append({
            "phase_number": p.phase_number,
            "requires_code_deploy": p.requires_code_deploy,
            "depends_on_phase": p.depends_on_phase,
            "plan": plan_id(p.plan),
            "verification": [[v.sql, v.expect] for v in p.verification],
            "rollback": {"sql": rb.sql, "requires_code_deploy": rb.requires_code_deploy,
                         "plan": plan_id(rb.plan) if rb.plan is not None else None},
        })
    return _digest(["lockplane.multiphase/1", {
        "operation": mp.operation, "pattern": mp.pattern, "dialect": mp.dialect,
        "table": mp.table, "column": mp.column, "new_name": mp.new_name,
        "old_type": mp.old_type, "new_type": mp.new_type, "default": mp.default,
        "total_phases": mp.total_phases, "source_hash": mp.source_hash,
        "target_hash": mp.target_hash, "phases": phases,
    }])


# --------------------------------------------------------------------------- signing
def plan_key() -> bytes | None:
    """The signing key from ``LOCKPLANE_PLAN_KEY`` (None: signing is off)."""
    value = os.environ.get(PLAN_KEY_ENV)
    if value is None:
        return None
    if not value.strip():
        # An empty secret (a CI variable that did not resolve) must not turn checks off.
        raise BadInput(f"{PLAN_KEY_ENV} is set but empty: set the signing key, or unset it")
    return value.encode()


def key_id(key: bytes) -> str:
    """A short fingerprint of the key, to tell "another key" from "changed"."""
    return hashlib.sha256(b"lockplane plan key id\0" + key).hexdigest()[:12]


def _mac(pid: str, key: bytes, scope: list[str] | None = None) -> str:
    message = b"lockplane plan\0" + pid.encode()
    if scope is not None:  # (None: a signature made before signatures named environments)
        message += b"\0signed for\0" + "\0".join(sorted(set(scope))).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def signature_for(pid: str, key: bytes, scope: list[str] | None = None) -> str:
    return f"{ALGORITHM}:{key_id(key)}:{_mac(pid, key, scope)}"


def signing_scope(environments: list[str] | None, any_environment: bool = False) -> list[str]:
    """The ``signed_for`` list of a new signature: the environments named (each a
    lockplane.toml name), or ``["*"]``; bad input if it is neither or both."""
    names = sorted(set(environments or []))
    if any_environment and names:
        raise BadInput("give --environment NAME(s) or --any-environment, not both")
    if any_environment:
        return [ANY_ENVIRONMENT]
    if not names:
        raise BadInput("say where the signed plan may run: --environment NAME (repeatable: "
                       "the environments it was reviewed for) or --any-environment")
    for name in names:
        if not _ENVIRONMENT_NAME.fullmatch(name):
            raise BadInput(f"--environment {name[:64]!r}: an environment name is letters, "
                           "digits, '_' and '-' (at most 64)")
    return names


def _check_scope_field(scope: object, where: str) -> None:
    if scope is None:
        return
    if not isinstance(scope, list) or not scope or not all(
            isinstance(n, str) and (n == ANY_ENVIRONMENT or _ENVIRONMENT_NAME.fullmatch(n))
            for n in scope):
        raise BadInput(f"{where}: malformed signed_for field (expected a list of environment "
                       f"names, or [\"{ANY_ENVIRONMENT}\"])")


def _parse_signature(signature: object, where: str) -> tuple[str, str]:
    m = _SIGNATURE.fullmatch(signature) if isinstance(signature, str) else None
    if m is None:
        raise BadInput(f"{where}: malformed signature field (expected "
                       f"'{ALGORITHM}:KEYID:' and 64 hex digits)")
    return m.group(1), m.group(2)


def _short(pid: str) -> str:
    """An id in a refusal: 16 hex digits tell two plans apart and keep it one line."""
    return pid if len(pid) <= 16 else pid[:16] + "…"


def verify(stored_id: str | None, actual_id: str, signature: str | None, where: str, *,
           require_signature: bool, key: bytes | None = None,
           scope: list[str] | None = None) -> None:
    """Refuse (exit 3) content that does not match its stored id, and, with a key, a
    signature that is missing (when ``require_signature``) or wrong. A malformed
    signature field is bad input (exit 2)."""
    if stored_id is not None and not hmac.compare_digest(stored_id.encode(),
                                                         actual_id.encode()):
        raise SafetyRefusal(f"{where}: stored plan_id {_short(stored_id)} does not match "
                            f"its content (plan_id {_short(actual_id)}): changed after it "
                            "was written; review it again or re-plan")
    parsed = _parse_signature(signature, where) if signature is not None else None
    _check_scope_field(scope, where)
    if key is None:
        return  # signing is off: a signature cannot be checked, and none is required
    if parsed is None:
        if require_signature:
            raise SafetyRefusal(f"{where} (plan_id {_short(actual_id)}) is not signed, and "
                                f"{PLAN_KEY_ENV} is set: only signed plans run (sign it "
                                "after review: lockplane sign)")
        return
    kid, mac = parsed
    if not hmac.compare_digest(kid, key_id(key)):
        raise SafetyRefusal(f"{where}: signed with another key (key id {kid}; "
                            f"{PLAN_KEY_ENV} has key id {key_id(key)})")
    if not hmac.compare_digest(mac, _mac(actual_id, key, scope)):
        raise SafetyRefusal(f"{where}: signature does not match its content (plan_id "
                            f"{_short(actual_id)}) or the environments it names: changed "
                            "after it was signed")


def check_environment(signed_for: list[str] | None, signature: str | None, where: str,
                      environment: str | None) -> None:
    """Refuse (exit 3) to run a signed plan where its signature does not let it run.

    ``environment``: the lockplane.toml environment applied to (``--target-environment``),
    None for a URL (``--target``), which only a signature for any environment covers.
    With signing off, or an unsigned plan (refused elsewhere when a key is set), there is
    nothing to check. Call after ``check_plan``/``check_multiphase``, which verified the
    signature over ``signed_for``."""
    if plan_key() is None or signature is None:
        return
    if signed_for is None:
        raise SafetyRefusal(f"{where}: its signature names no environment (signed before "
                            "signatures did): sign it again for where it was reviewed to "
                            "run (lockplane sign --environment NAME)")
    if ANY_ENVIRONMENT in signed_for:
        return
    names = ", ".join(signed_for)
    if environment is None:
        raise SafetyRefusal(f"{where} is signed for environment {names} only, and --target "
                            "names no environment: apply with --target-environment NAME, "
                            "or sign it for any environment (lockplane sign "
                            "--any-environment)")
    if environment not in signed_for:
        shown = environment if _ENVIRONMENT_NAME.fullmatch(environment) else repr(environment[:64])
        raise SafetyRefusal(f"{where} is signed for environment {names}, not {shown}: "
                            f"review it for {shown} and sign it for it too (lockplane sign "
                            f"--environment {shown})")


def check_plan(plan: Plan, where: str = "plan", *, require_signature: bool = True) -> str:
    """Check a plan read from outside this process; its id.

    ``require_signature``: with ``LOCKPLANE_PLAN_KEY`` set, an unsigned plan is refused
    (False for plans whose signature was checked elsewhere, e.g. a phase of a signed
    multi-phase plan; a signature that is there is checked all the same).
    """
    actual = plan_id(plan)
    verify(plan.plan_id, actual, plan.signature, where,
           require_signature=require_signature, key=plan_key(), scope=plan.signed_for)
    return actual


def check_multiphase(mp: MultiPhasePlan, where: str = "multi-phase plan", *,
                     require_signature: bool = True) -> str:
    """Check a multi-phase plan and every plan in it (each phase's, each rollback's);
    its id."""
    key = plan_key()
    for p in mp.phases:
        verify(p.plan.plan_id, plan_id(p.plan), p.plan.signature,
               f"{where}, phase {p.phase_number}", require_signature=False, key=key,
               scope=p.plan.signed_for)
        rb = p.rollback.plan
        if rb is not None:
            verify(rb.plan_id, plan_id(rb), rb.signature,
                   f"{where}, rollback of phase {p.phase_number}", require_signature=False,
                   key=key, scope=rb.signed_for)
    actual = multiphase_plan_id(mp)
    verify(mp.plan_id, actual, mp.signature, where, require_signature=require_signature,
           key=key, scope=mp.signed_for)
    return actual


# --------------------------------------------------------------------------- writing
def seal_plan(plan: Plan, key: bytes | None = None,
              scope: list[str] | None = None) -> Plan:
    """A copy of ``plan`` carrying its ``plan_id`` and, with ``key``, its signature for
    ``scope`` (``signed_for``; default: any environment)."""
    pid = plan_id(plan)
    scope = (scope or [ANY_ENVIRONMENT]) if key else None
    return plan.model_copy(update={
        "plan_id": pid, "signature": signature_for(pid, key, scope) if key else None,
        "signed_for": scope})


def seal_multiphase(mp: MultiPhasePlan, key: bytes | None = None,
                    scope: list[str] | None = None) -> MultiPhasePlan:
    """A copy with every phase plan and rollback plan carrying its ``plan_id``, and the
    whole its ``plan_id`` and, with ``key``, its signature (which covers the phases)."""
    phases = []
    for p in mp.phases:
        rb = p.rollback
        phases.append(p.model_copy(update={
            "plan": seal_plan(p.plan),
            "rollback": rb.model_copy(update={
                "plan": seal_plan(rb.plan) if rb.plan is not None else None}),
        }))
    sealed = mp.model_copy(update={"phases": phases})
    pid = multiphase_plan_id(sealed)
    scope = (scope or [ANY_ENVIRONMENT]) if key else None
    return sealed.model_copy(update={
        "plan_id": pid, "signature": signature_for(pid, key, scope) if key else None,
        "signed_for": scope})
