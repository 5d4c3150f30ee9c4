"""Drift tasks: thin wrappers around lockplane.drift and its memory."""

from __future__ import annotations

from collections.abc import Sequence

from prefect import task
from prefect.cache_policies import NO_CACHE

from lockplane.drift import DriftReport, EnvironmentReport, Target, check_drift
from lockplane.drift.memory import Event, observe, remember


@task(name="check-drift", cache_policy=NO_CACHE)
def check_drift_task(targets: Sequence[Target], ignore: Sequence[str] = ()) -> DriftReport:
    """Every target against its desired schema (one thread each); environments are
    compared with each other in the report, histories across environments too."""
    return check_drift(targets, ignore=ignore)


@task(name="recall-drift", cache_policy=NO_CACHE)
def recall_task(target: Target, report: EnvironmentReport, checker: str) -> Event:
    """What the check means given the database's memory: new, changed, resolved, the same
    drift as already reported, acknowledged ... (reads only)."""
    return observe(target, report, checker)


@task(name="remember-drift", cache_policy=NO_CACHE)
def remember_task(target: Target, event: Event, checker: str) -> None:
    """Record in the database what this run reported."""
    remember(target, event, checker)
