"""Runbook: do the databases still match their desired schemas? Tell the channel when
that changes, once.

1. Check every environment of lockplane.toml (in ``project_dir``, default: the run's
   working directory), or the DatabaseTarget blocks (or DSNs) given as ``target``
   against ``desired_schema``: `lockplane drift check`'s engine, all databases at once.
2. Publish a table artifact per environment: status, counts, the drift in words, its
   fingerprint, and what the memory made of it.
3. Compare with the memory kept in each database (``lockplane.drift_state``: what the
   last run reported, and operators' `lockplane drift ack`) and post to Slack only when
   drift appears, changes (another fingerprint), is resolved, or is still there when its
   acknowledgement expires; never the same drift again on the next runs.
4. Record what was reported (after the message went out: a Slack outage means it is
   tried again next run).

A run completes whether or not there is drift (the channel is the alert); it fails when
an environment could not be checked, or its memory could not be read or written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.utilities.annotations import quote

from blocks.database_target import DatabaseTarget
from flows.targets import NoPasswordStr, no_passwords, resolve_target
from lockplane.dsn import redact
from lockplane.errors import BadInput, LockplaneError
from lockplane.sources import SourceContext
from tasks.drift_tasks import check_drift_task, recall_task, remember_task
from tasks.notify_tasks import notify_task

MEMORY_FAILED = "memory"


@dataclass(frozen=True)
class Checked:
    """One target of the run: what to check, the name its memory is kept under, and the
    command that acknowledges its drift."""

    target: Any  # lockplane.drift.Target
    checker: str
    ack_command: str


def _slug(name: str) -> str:
    import re

    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[-48:].strip("-") or "environment"


def _from_environments(names: list[str] | None, project_dir: str | None) -> list[Checked]:
    from lockplane.drift import targets_from_config

    directory = project_dir or os.getcwd()
    targets = targets_from_config(names or None, directory)
    return [Checked(t, t.name, f"lockplane drift ack --environment {t.name} "
                               f"--fingerprint {{fp}} [--until DATE] [--reason TEXT]")
            for t in targets]


def _from_targets(targets: list[str | DatabaseTarget], desired_schema: str | None
                  ) -> list[Checked]:
    from lockplane.drift import Target

    if not desired_schema:
        raise BadInput("drift-check: give desired_schema with target (or no target, to "
                       "check the environments of lockplane.toml)")
    out = []
    for t in targets:
        db = resolve_target(t)
        ctx = SourceContext(dialect=db.dialect, server_dsn=db.scratch_server,
                            allowed_extensions=db.allowed_extensions)
        out.append(Checked(Target(db.label, db.dsn, desired_schema, ctx), db.label,
                           f"lockplane drift ack --target <the database URL of {db.label}> "
                           f"--schema {redact(desired_schema)} --fingerprint {{fp}} "
                           "[--until DATE] [--reason TEXT]"))
    names = [c.checker for c in out]
    if len(set(names)) != len(names):
        raise BadInput(f"drift-check: target names the same database twice: {names}")
    return out


def _artifact_rows(env: Any) -> list[dict[str, str]]:
    rows = [{"kind": i.kind, "type": i.type, "object": i.object, "drift": i.message}
            for i in env.items]
    rows += [{"kind": f.kind.replace("_", " "), "type": "migration history",
              "object": ", ".join(m[:12] for m in f.migrations), "drift": f.message}
             for f in env.history_findings]
    if not rows:
        what = ("no drift" if env.status == "clean" else f"{env.status}: {env.error}")
        rows = [{"kind": env.status, "type": "", "object": "", "drift": what}]
    return rows


def _artifact_description(env: Any, memory: str) -> str:
    counts = (f"{len(env.items)} difference(s) from `{env.desired_schema}`, "
              f"{len(env.history_findings)} migration history finding(s), "
              f"{len(env.ignored)} ignored")
    return (f"**{env.name}**: {env.status} — {counts}\n\n"
            f"database: {env.database}\n\nfingerprint: `{env.fingerprint}`\n\n"
            f"memory: {memory}")


@no_passwords
@flow(name="drift-check", description=__doc__)
def drift_check(
    target: NoPasswordStr | DatabaseTarget | list[NoPasswordStr | DatabaseTarget] | None = None,
    desired_schema: NoPasswordStr | None = None,
    environments: list[str] | None = None,
    project_dir: str | None = None,
    ignore: list[str] | None = None,
    notify: str | None = None,
) -> dict[str, Any]:
    """Check for drift and tell ``notify`` (a SlackNotifier block) only what is new.

    ``target``: DatabaseTarget block name(s) (or DSNs without a password), each checked
    against ``desired_schema``; without it, the ``environments`` of lockplane.toml in
    ``project_dir`` (default: all, in the run's working directory). ``ignore``:
    ``[TYPE:]GLOB`` patterns of accepted drift, on top of lockplane.toml's.
    """
    from lockplane.drift import render

    logger = get_run_logger()
    if target:
        checked = _from_targets(target if isinstance(target, list) else [target],
                                desired_schema)
    else:
        checked = _from_environments(environments, project_dir)
    report = check_drift_task([c.target for c in checked], list(ignore or []))

    results: dict[str, dict[str, Any]] = {}
    failures: list[str] = []
    for c, env in zip(checked, report.environments, strict=True):
        event = None
        notified = False
        try:
            event = recall_task(c.target, quote(env), c.checker)
            if event.notify:
                text = event.message(c.ack_command.format(fp=env.fingerprint))
                notified = notify_task(notify, text)
            if not event.notify or notified or not notify:
                remember_task(c.target, quote(event), c.checker)
            memory = event.summary()
            if event.notify and notify and not notified:
                memory += " (Slack failed: it is tried again next run)"
            elif event.notify and not notify:
                memory = memory.replace(": notified", " (no notifier configured)")
        except LockplaneError as exc:
            memory = f"could not read or write the drift memory: {redact(exc.message)}"
            failures.append(f"{env.name}: {memory}")
        except Exception as exc:  # noqa: BLE001 - a driver error in this database only
            first = (str(exc).splitlines() or [""])[0]
            memory = (f"could not read or write the drift memory: "
                      f"{redact(f'{type(exc).__name__}: {first}')}")
            failures.append(f"{env.name}: {memory}")
        if env.status in ("unreachable", "error"):
            failures.append(f"{env.name}: {env.status}: {env.error}")
        logger.info("%s: %s (fingerprint %s): %s", env.name, env.status,
                    env.fingerprint[:12], memory)
        create_table_artifact(_artifact_rows(env), key=f"drift-{_slug(env.name)}",
                              description=_artifact_description(env, memory))
        results[env.name] = {
            "status": env.status, "fingerprint": env.fingerprint,
            "differences": len(env.items), "history_findings": len(env.history_findings),
            "event": event.kind if event is not None else MEMORY_FAILED,
            "notified": notified,
            "acknowledged": env.acknowledged is not None,
        }
    create_markdown_artifact(render(report, "markdown"), key="drift-report",
                             description="Drift check of every environment")
    if failures:
        raise LockplaneError("drift check incomplete: " + "; ".join(failures))
    return {"drift": any(r["status"] == "drift" for r in results.values()),
            "status": report.status, "environments": results}
