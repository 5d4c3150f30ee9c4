"""Migration history across environments, from each database's ``lockplane.migrations``.

Read-only: one SELECT per database (``lockplane.state.History.list``); a database where
Lockplane never ran (no ``lockplane`` schema, no ``_lockplane_migrations`` table) has no
history and is left out of the comparison, rather than reported as missing everything.

Two runs are the same migration when they share a plan_id or, for plans made separately
per environment, the state they lead to (target_hash). Findings:

- ``missing``: migrations applied in other environments and not in this one
  ("staging is missing 3 migrations that prod has");
- ``out_of_order``: two migrations applied in one order here and the other order there;
- ``failed`` (failed after committing some steps: the schema is half-way), ``interrupted``
  (its process died) and ``running`` (in progress, or died without anyone noticing yet):
  the latest run of a plan that never finished. A run that failed having changed nothing
  is not drift.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..dialects.base import Database
from ..state import History, MigrationRecord

FindingKind = Literal["missing", "out_of_order", "failed", "interrupted", "running",
                      "diverged"]
HISTORY_LIMIT = 100_000


@dataclass
class EnvironmentHistory:
    """What one database's history table holds (``available``: the table exists)."""

    environment: str
    available: bool
    records: list[MigrationRecord] = field(default_factory=list)  # oldest first
    note: str | None = None

    @property
    def applied(self) -> list[MigrationRecord]:
        return [r for r in self.records if r.result == "applied"]

    def to_json(self) -> dict[str, Any]:
        last = self.applied[-1] if self.applied else None
        return {"available": self.available, "runs": len(self.records),
                "applied": len(self.applied),
                "last_applied": None if last is None else {
                    "plan_id": last.plan_id, "finished_at": _when(last.finished_at),
                    "target_hash": last.target_hash},
                "note": self.note}


@dataclass(frozen=True)
class HistoryFinding:
    environment: str
    kind: FindingKind
    migrations: tuple[str, ...]  # plan ids
    detail: str  # without the environment's name
    message: str
    others: tuple[str, ...] = ()  # the environments it was compared with

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "migrations": list(self.migrations),
                "detail": self.detail, "message": self.message, "others": list(self.others)}

    def sort_key(self) -> tuple[str, str]:
        return (self.kind, self.detail)


def read_history(db: Database, environment: str) -> EnvironmentHistory:
    """The history of the database ``db`` is connected to; only reads."""
    history = History(db)
    try:
        if not history.exists():
            return EnvironmentHistory(environment, False,
                                      note="no Lockplane migration history in this database")
        records = history.list(limit=HISTORY_LIMIT)
    except db.dialect.error_types() as exc:  # an older or damaged table
        first = (str(exc).splitlines() or [""])[0]
        return EnvironmentHistory(environment, False,
                                  note=f"migration history unreadable: {first}")
    return EnvironmentHistory(environment, True, sorted(records, key=lambda r: r.id))


def _when(value: object) -> str | None:
    return None if value is None else str(value)[:19]


def _short(plan_id: str) -> str:
    return plan_id[:12]


def _label(rec: MigrationRecord) -> str:
    return f"{_short(rec.plan_id)} ({_when(rec.finished_at or rec.started_at)})"


class _Identity:
    """Runs that are the same migration share one identity (union of plan_id and
    target_hash matches)."""

    def __init__(self) -> None:
        self.parent: dict[tuple[str, str], tuple[str, str]] = {}

    def _find(self, k: tuple[str, str]) -> tuple[str, str]:
        self.parent.setdefault(k, k)
        while self.parent[k] != k:
            self.parent[k] = self.parent[self.parent[k]]
            k = self.parent[k]
        return k

    def add(self, rec: MigrationRecord) -> None:
        a = self._find(("plan", rec.plan_id))
        if rec.target_hash:
            b = self._find(("target", rec.target_hash))
            if a != b:
                self.parent[b] = a

    def of(self, rec: MigrationRecord) -> tuple[str, str]:
        return self._find(("plan", rec.plan_id))


def _unfinished(env: str, hist: EnvironmentHistory) -> list[HistoryFinding]:
    latest: dict[str, MigrationRecord] = {}
    for rec in hist.records:
        latest[rec.plan_id] = rec
    out = []
    for rec in latest.values():
        steps = f"{rec.steps_done} of {rec.steps_total} steps"
        why = f": {rec.error}" if rec.error else ""
        if rec.result == "failed" and rec.steps_done > 0:
            detail = (f"migration {_label(rec)} failed after {steps} were committed, so "
                      f"the schema is part-way{why}")
        elif rec.result == "interrupted":
            detail = f"migration {_label(rec)} was interrupted after {steps}{why}"
        elif rec.result == "diverged":
            # Every step ran, and the server holds something other than the plan declared.
            detail = (f"migration {_label(rec)} ran all {rec.steps_total} steps but ended at "
                      f"hash {(rec.hash_after or '?')[:12]}, not its target "
                      f"{(rec.target_hash or '?')[:12]}")
        elif rec.result == "running":
            detail = (f"migration {_short(rec.plan_id)} (started {_when(rec.started_at)}) is "
                      f"still marked running after {steps}: in progress, or its process "
                      "died")
        else:
            continue
        kind: FindingKind = rec.result if rec.result != "failed" else "failed"  # type: ignore[assignment]
        out.append(HistoryFinding(env, kind, (rec.plan_id,), detail, f"{env}'s {detail}"))
    return out


def _names(envs: Sequence[str]) -> str:
    return envs[0] if len(envs) == 1 else ", ".join(envs[:-1]) + " and " + envs[-1]


def compare_histories(histories: Mapping[str, EnvironmentHistory],
                      ) -> dict[str, list[HistoryFinding]]:
    """Findings per environment (in the order of ``histories``)."""
    out: dict[str, list[HistoryFinding]] = {name: [] for name in histories}
    for name, hist in histories.items():
        out[name] += _unfinished(name, hist)
    known = {n: h for n, h in histories.items() if h.available}
    ident = _Identity()
    for h in known.values():
        for rec in h.applied:
            ident.add(rec)
    applied = {n: {ident.of(r): r for r in h.applied} for n, h in known.items()}
    order = list(known)
    for name in order:
        mine = applied[name]
        # migration identity -> (a record of it, environments that have it)
        lacking: dict[tuple[str, str], tuple[MigrationRecord, list[str]]] = {}
        for other in order:
            if other == name:
                continue
            for key, rec in applied[other].items():
                if key not in mine:
                    lacking.setdefault(key, (rec, []))[1].append(other)
        groups: dict[tuple[str, ...], list[MigrationRecord]] = {}
        for rec, having in lacking.values():
            groups.setdefault(tuple(having), []).append(rec)
        for having, recs in groups.items():
            recs.sort(key=lambda r: str(r.finished_at or r.started_at))
            n = len(recs)
            noun = "migration" if n == 1 else "migrations"
            verb = "has" if len(having) == 1 else "have"
            detail = (f"missing {n} {noun} that {_names(list(having))} {verb}: "
                      + ", ".join(_label(r) for r in recs))
            out[name].append(HistoryFinding(name, "missing", tuple(r.plan_id for r in recs),
                                            detail, f"{name} is {detail}", having))
    for i, a in enumerate(order):
        for b in order[i + 1:]:
            found = _first_inversion(applied[a], applied[b])
            if found is None:
                continue
            x, y = found
            for me, other in ((a, b), (b, a)):
                first, second = (x, y) if me == a else (y, x)
                detail = (f"applied migration {_short(first.plan_id)} before "
                          f"{_short(second.plan_id)}; {other} applied them the other way round")
                out[me].append(HistoryFinding(me, "out_of_order",
                                              (first.plan_id, second.plan_id), detail,
                                              f"{me} {detail}", (other,)))
    for name in out:
        out[name].sort(key=HistoryFinding.sort_key)
    return out


def _first_inversion(a: dict[tuple[str, str], MigrationRecord],
                     b: dict[tuple[str, str], MigrationRecord],
                     ) -> tuple[MigrationRecord, MigrationRecord] | None:
    """Two migrations both have, applied in opposite orders (as recorded in ``a``)."""
    common = [k for k in a if k in b]  # a's order (records are read oldest first)
    pos_b = {k: i for i, k in enumerate(k for k in b if k in a)}
    for i, k in enumerate(common):
        for k2 in common[i + 1:]:
            if pos_b[k2] < pos_b[k]:
                return a[k], a[k2]
    return None
