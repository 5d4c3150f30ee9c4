"""Thin Prefect tasks around the engine: each is one engine call, observable and retryable.

No logic lives here: what a task does is what the engine function it wraps does. Tasks
take DSNs as arguments, so none of them caches (a cache key would be derived from the
DSN) and none logs a DSN except through ``redact``.
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from lockplane.dsn import redact
from lockplane.execute import (
    ApplyOptions,
    apply_plan,
    check_safety,
    parse_acknowledgements,
    validate_on_shadow,
)
from lockplane.integrity import seal_plan
from lockplane.model import Schema
from lockplane.plan import DEFAULT_LOCK_TIMEOUT_MS, Plan, build_plan
from lockplane.sources import SourceContext, load_schema


def _report(message: str) -> None:
    get_run_logger().info(redact(message))


@task(name="load-schema", cache_policy=NO_CACHE)
def load_schema_task(src: str, dialect: str | None = None, server_dsn: str | None = None,
                     allowed_extensions: tuple[str, ...] = (),
                     version_of: str | None = None) -> Schema:
    """Introspect a database (DSN) or load a desired schema (.sql, dir, .json, metadata);
    a desired schema is untrusted and loads in a sandbox on ``server_dsn`` ("private": a
    server started for it, of ``version_of``'s major version)."""
    schema = load_schema(src, SourceContext(dialect=dialect, server_dsn=server_dsn,
                                            allowed_extensions=tuple(allowed_extensions),
                                            version_of=version_of))
    get_run_logger().info("loaded %s: %d table(s), hash %s", redact(src), len(schema.tables),
                          schema.hash()[:12])
    return schema


@task(name="build-plan", cache_policy=NO_CACHE)
def build_plan_task(before: Schema, after: Schema,
                    lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS,
                    archive_dropped: bool = True) -> Plan:
    """The plan from ``before`` to ``after`` (ordered steps, SQL, locks, rollback).

    ``lock_timeout_ms``: the ``SET lock_timeout`` each PostgreSQL step starts with (the
    target's setting; 0: none). ``archive_dropped`` False: dropped rows and values are not
    archived for a rollback (the target's setting; ``plan --no-archive``)."""
    # Sealed with its plan_id: the review artifact shows it, and the apply after the
    # approval refuses a plan whose content changed in between (persisted, resumed).
    plan = seal_plan(build_plan(before, after, lock_timeout_ms=lock_timeout_ms or None,
                                archive_dropped=archive_dropped))
    get_run_logger().info("plan %s: %d step(s), worst %s", plan.plan_id, len(plan.steps),
                          plan.worst_safety().value)
    return plan


@task(name="check-safety", cache_policy=NO_CACHE)
def check_safety_task(plan: Plan, safety: str, acknowledge: list[str] | None = None) -> None:
    """Refuse (SafetyRefusal) a plan with a step the safety level forbids."""
    check_safety(plan, safety, parse_acknowledgements(acknowledge, allow_numbers=False))


@task(name="validate-on-shadow", cache_policy=NO_CACHE)
def validate_on_shadow_task(plan: Plan, live: Schema, target_dsn: str,
                            shadow_dsn: str | None = None,
                            lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS,
                            acknowledge: list[str] | None = None) -> list[str]:
    """Run the plan on a scratch copy of the target's schema (after the check apply makes
    of the functions its steps evaluate; ``acknowledge`` as apply's); return warnings."""
    opts = ApplyOptions(shadow_dsn=shadow_dsn, lock_timeout_ms=lock_timeout_ms,
                        acknowledged=parse_acknowledgements(acknowledge, allow_numbers=False))
    return validate_on_shadow(plan, live, target_dsn, opts, report=_report)


@task(name="apply-plan", cache_policy=NO_CACHE)
def apply_plan_task(plan: Plan, target_dsn: str, safety: str = "moderate",
                    shadow_dsn: str | None = None, skip_shadow: bool = False,
                    lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS, applied_by: str | None = None,
                    acknowledge: list[str] | None = None,
                    cancel_blockers_after_s: float | None = None) -> dict[str, Any]:
    """Apply the plan (hash check, locks, retries, history); a plain-dict summary.

    ``cancel_blockers_after_s``: once a step has waited that long for its lock, cancel
    the statements of the sessions blocking it (None: never; the CLI's
    ``--cancel-blockers-after``)."""
    opts = ApplyOptions(safety=safety, shadow_dsn=shadow_dsn, skip_shadow=skip_shadow,
                        lock_timeout_ms=lock_timeout_ms, applied_by=applied_by,
                        acknowledged=parse_acknowledgements(acknowledge,
                                                                     allow_numbers=False),
                        cancel_blockers_after_s=cancel_blockers_after_s)
    result = apply_plan(plan, target_dsn, opts, report=_report)
    # A plain dict: it is the flow's return value and the result artifact's source, and
    # must serialize anywhere without the engine's classes.
    return {"status": result.status, "migration_id": result.migration_id,
            "steps_run": result.steps_run, "hash_after": result.hash_after,
            "warnings": list(result.warnings)}
