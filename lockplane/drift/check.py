"""Check environments for drift, all at once.

Every environment's live database is introspected (and its migration history read) in
a thread of its own, each distinct desired schema is loaded once (in the sandbox, on the
scratch server the CLI would pick) while the databases are read, and each live schema is
then diffed against its desired schema: schemas are compared, never stored hashes, so a
database at the desired state is never drift, whatever Lockplane version made its plans.
Environments of the same dialect whose live schemas differ are also compared with each
other.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..config import Environment, get_environment, load_config
from ..dsn import dialect_of, looks_like_dsn, redact
from ..errors import BadInput, LockplaneError
from ..model import Schema
from ..sources import SourceContext, source_context
from .history import EnvironmentHistory, HistoryFinding, compare_histories, read_history
from .ignore import IgnoreRule, parse_rules, split_ignored
from .items import DriftItem, Wording, describe_changes

if TYPE_CHECKING:
    from .memory import Acknowledgement

Status = Literal["clean", "drift", "unreachable", "error"]
REPORT_FORMAT = "lockplane-drift/1"
MAX_THREADS = 32  # sessions open at once (each reads one database, mostly waiting on it)

# Exit codes of ``lockplane drift check`` (DESIGN.md).
EXIT_CLEAN, EXIT_NOT_CHECKED, EXIT_DRIFT = 0, 1, 4


@dataclass(frozen=True)
class Target:
    """One environment to check: where its database is and what it should look like."""

    name: str
    database_url: str
    schema_path: str
    context: SourceContext  # how its desired schema is loaded (dialect, scratch server)
    ignore: tuple[str, ...] = ()  # lockplane.toml's accepted drift for this environment

    @property
    def dialect(self) -> str:
        return dialect_of(self.database_url)


@dataclass
class EnvironmentReport:
    """The drift of one environment. ``items``: what differs from its desired schema
    (after ignore patterns; ``ignored`` holds the rest); ``history``: findings from the
    migration histories; ``fingerprint``: see :func:`fingerprint`."""

    name: str
    status: Status
    database: str  # redacted
    desired_schema: str
    dialect: str | None = None
    error: str | None = None
    items: list[DriftItem] = field(default_factory=list)
    ignored: list[DriftItem] = field(default_factory=list)
    history: EnvironmentHistory | None = None
    history_findings: list[HistoryFinding] = field(default_factory=list)
    live_hash: str | None = None
    desired_hash: str | None = None
    seconds: float = 0.0
    # An operator acknowledged this drift (lockplane.drift.memory); still drift, listed.
    acknowledged: Acknowledgement | None = None

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.items, self.history_findings)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "status": self.status, "database": self.database,
            "desired_schema": self.desired_schema, "dialect": self.dialect,
            "error": self.error, "fingerprint": self.fingerprint,
            "items": [i.to_json() for i in self.items],
            "ignored": [i.to_json() for i in self.ignored],
            "history": None if self.history is None else {
                **self.history.to_json(),
                "findings": [f.to_json() for f in self.history_findings]},
            "live_hash": self.live_hash, "desired_hash": self.desired_hash,
            "acknowledged": None if self.acknowledged is None else self.acknowledged.to_json(),
            "seconds": round(self.seconds, 3),
        }


@dataclass
class Comparison:
    """Two environments' live schemas compared (items from ``a``'s side: "a has extra
    column ..., not in b")."""

    a: str
    b: str
    items: list[DriftItem]

    @property
    def same(self) -> bool:
        return not self.items

    def to_json(self) -> dict[str, Any]:
        return {"environments": [self.a, self.b], "same": self.same,
                "items": [i.to_json() for i in self.items]}


@dataclass
class DriftReport:
    environments: list[EnvironmentReport]
    comparisons: list[Comparison] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        """1 when an environment could not be checked, else 4 on drift, else 0 (drift
        that is acknowledged, and not expired, counts as no drift here)."""
        if any(e.status in ("unreachable", "error") for e in self.environments):
            return EXIT_NOT_CHECKED
        if any(e.status == "drift" and e.acknowledged is None for e in self.environments):
            return EXIT_DRIFT
        return EXIT_CLEAN

    @property
    def status(self) -> str:
        """clean, drift, acknowledged (all drift acknowledged) or incomplete."""
        if self.exit_code == EXIT_CLEAN and any(e.acknowledged for e in self.environments):
            return "acknowledged"
        return {EXIT_CLEAN: "clean", EXIT_DRIFT: "drift"}.get(self.exit_code, "incomplete")

    def environment(self, name: str) -> EnvironmentReport:
        return next(e for e in self.environments if e.name == name)

    def to_json(self) -> dict[str, Any]:
        return {"format": REPORT_FORMAT, "status": self.status, "exit_code": self.exit_code,
                "environments": [e.to_json() for e in self.environments],
                "comparisons": [c.to_json() for c in self.comparisons],
                "seconds": round(self.seconds, 3)}


def fingerprint(items: Iterable[DriftItem], findings: Iterable[HistoryFinding] = ()) -> str:
    """sha256 of the normalised, sorted drift: the same drift always gives the same
    fingerprint (whatever the order found, whichever run), so a scheduled check can tell
    "same drift as last time". Clean gives the fingerprint of nothing."""
    rows = sorted([["item", i.object, i.type, i.kind, i.detail] for i in items]
                  + [["history", f.kind, *f.migrations, f.detail] for f in findings])
    text = json.dumps(rows, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


# ------------------------------------------------------------------------- environments
def default_context(env: Environment) -> SourceContext:
    """How the CLI would load ``env``'s desired schema (its scratch server choice)."""
    assert env.database_url and env.schema_path
    return source_context([env.database_url, env.schema_path], None, None, [env])


def targets_from_config(names: Sequence[str] | None = None, directory: str | Path = ".",
                        context_for: Callable[[Environment], SourceContext] | None = None,
                        ) -> list[Target]:
    """The environments of ``lockplane.toml`` (all of them when ``names`` is None), with
    their ``.env.NAME`` secrets. BadInput, before anything connects, when one has no
    database_url or schema_path."""
    if names is None:
        names = list(load_config(directory))
        if not names:
            raise BadInput(f"no environments in {Path(directory) / 'lockplane.toml'}")
    context_for = context_for or default_context
    targets = []
    for name in dict.fromkeys(names):
        env = get_environment(name, directory)
        for key in ("database_url", "schema_path"):
            if not getattr(env, key):
                raise BadInput(f"environment {name!r} has no {key} (lockplane.toml or "
                               f".env.{name})")
        assert env.database_url and env.schema_path
        if not looks_like_dsn(env.database_url):
            raise BadInput(f"environment {name!r}: database_url is not a database URL")
        schema_path = env.schema_path
        if not Path(schema_path).is_absolute() and (Path(directory) / schema_path).exists():
            schema_path = str(Path(directory) / schema_path)
            env.schema_path = schema_path
        targets.append(Target(name, env.database_url, schema_path, context_for(env),
                              tuple(env.ignore)))
    return targets


# ----------------------------------------------------------------------------- checking
@dataclass
class _Live:
    schema: Schema | None = None
    history: EnvironmentHistory | None = None
    error: str | None = None
    seconds: float = 0.0


def _read_live(target: Target, with_history: bool) -> _Live:
    from ..dialects import get_dialect

    start = time.perf_counter()
    try:
        with get_dialect(target.dialect).connect(target.database_url) as db:
            _read_only(db)
            schema = db.introspect()
            history = read_history(db, target.name) if with_history else None
    except LockplaneError as exc:
        return _Live(error=redact(exc.message), seconds=time.perf_counter() - start)
    except Exception as exc:  # noqa: BLE001 - a driver error reading one database
        first = (str(exc).splitlines() or [""])[0]
        return _Live(error=redact(f"{type(exc).__name__}: {first}"),
                     seconds=time.perf_counter() - start)
    return _Live(schema, history, seconds=time.perf_counter() - start)


def _read_only(db: Any) -> None:
    """Nothing this session runs can write (the check only reads)."""
    with contextlib.suppress(NotImplementedError):  # a dialect without: it only reads
        db.read_only_session()


def _schema_key(t: Target) -> tuple[str, str]:
    """Environments with the same key share a desired schema (one application's track)."""
    path = Path(t.schema_path)
    return (str(path.resolve()) if path.exists() else t.schema_path, t.dialect)


def _server_key(dsn: str | None) -> str | None:
    """A scratch server, whichever of its databases the DSN names: environments on one
    server (each DSN naming its own database) load a shared desired schema once."""
    if dsn is None or not looks_like_dsn(dsn):
        return dsn
    from ..dialects import get_dialect

    return get_dialect(dialect_of(dsn)).server_key(dsn)


def _desired_key(t: Target) -> tuple[Any, ...]:
    c = t.context
    return (*_schema_key(t), _server_key(c.server_dsn), c.allowed_extensions)


def _load_desired(t: Target) -> Schema:
    from ..sources import load_schema

    ctx = SourceContext(dialect=t.dialect, server_dsn=t.context.server_dsn,
                        allowed_extensions=t.context.allowed_extensions)
    return load_schema(t.schema_path, ctx)


def check_drift(targets: Sequence[Target], *, ignore: Iterable[str] = (),
                compare_environments: bool = True, history: bool = True,
                max_workers: int | None = None) -> DriftReport:
    """Check every target against its desired schema (and against each other).

    ``ignore``: patterns (see lockplane.drift.ignore) applied to every environment, on
    top of each target's own. Never raises for one environment's failure: an
    unreachable database or a desired schema that does not load is that environment's
    status, and the others are still checked. ``max_workers``: threads (default: one per
    database plus one per distinct desired schema, at most MAX_THREADS).
    """
    start = time.perf_counter()
    common = parse_rules(ignore)
    desired_for = {t.name: _desired_key(t) for t in targets}
    distinct = {k: t for t in targets for k in [desired_for[t.name]]}
    workers = max_workers or max(1, min(MAX_THREADS, len(targets) + len(distinct)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="drift") as pool:
        # Desired schemas first: the slowest to load (a scratch database each).
        desired: dict[tuple[Any, ...], Future[Schema]] = {
            k: pool.submit(_load_desired, t) for k, t in distinct.items()}
        live = {t.name: pool.submit(_read_live, t, history) for t in targets}
        reports = [_check_one(t, live[t.name].result(), desired[desired_for[t.name]],
                              common + parse_rules(t.ignore)) for t in targets]
        live_schemas = {t.name: live[t.name].result().schema for t in targets}
    if history:
        # Histories are compared among environments that share a desired schema (the
        # same application's track); each one's unfinished runs are its own.
        findings: dict[str, list[HistoryFinding]] = {}
        tracks = {t.name: _schema_key(t) for t in targets}
        for track in dict.fromkeys(tracks.values()):
            findings.update(compare_histories({
                r.name: r.history for r in reports
                if r.history is not None and tracks[r.name] == track}))
        rules = {t.name: common + parse_rules(t.ignore) for t in targets}
        for r in reports:
            kept = [f for f in findings.get(r.name, [])
                    if not any(rule.matches_migration(m) for rule in rules[r.name]
                               for m in f.migrations)]
            r.history_findings = kept
            if kept and r.status == "clean":
                r.status = "drift"
    comparisons = (_compare_environments(targets, reports, live_schemas, common)
                   if compare_environments else [])
    return DriftReport(reports, comparisons, time.perf_counter() - start)


def _check_one(t: Target, live: _Live, desired: Future[Schema],
               rules: tuple[IgnoreRule, ...]) -> EnvironmentReport:
    from ..dialects import get_dialect
    from ..diff import diff

    report = EnvironmentReport(t.name, "clean", redact(t.database_url), t.schema_path,
                               dialect=t.dialect, history=live.history, seconds=live.seconds)
    if live.schema is None:
        report.status = "unreachable"
        report.error = live.error
        return report
    began = time.perf_counter()
    try:
        want = desired.result()
    except LockplaneError as exc:
        report.status, report.error = "error", redact(exc.message)
        return report
    except Exception as exc:  # noqa: BLE001 - reported for this environment only
        report.status = "error"
        report.error = redact(f"desired schema {t.schema_path}: {type(exc).__name__}: {exc}")
        return report
    from ..frozen import align

    # (a view declared with 'now'::timestamp is not drift for having frozen another moment)
    d = get_dialect(t.dialect)
    changes = diff(want, align(live.schema, want, d), d)
    items = describe_changes(changes, Wording(t.name), t.dialect)
    report.items, report.ignored = split_ignored(items, rules)
    report.live_hash = live.schema.hash()
    report.desired_hash = want.hash()
    report.status = "drift" if report.items else "clean"
    report.seconds += time.perf_counter() - began
    return report


def _compare_environments(targets: Sequence[Target], reports: Sequence[EnvironmentReport],
                          schemas: dict[str, Schema | None],
                          rules: tuple[IgnoreRule, ...]) -> list[Comparison]:
    """Environments of one dialect compared pairwise; identical live schemas (same hash)
    are not diffed again."""
    from ..dialects import get_dialect
    from ..diff import diff

    by_name = {r.name: r for r in reports}
    checked = [t for t in targets if schemas.get(t.name) is not None
               and by_name[t.name].live_hash is not None]
    out = []
    for i, a in enumerate(checked):
        for b in checked[i + 1:]:
            if a.dialect != b.dialect:
                continue
            if by_name[a.name].live_hash == by_name[b.name].live_hash:
                out.append(Comparison(a.name, b.name, []))
                continue
            changes = diff(schemas[b.name], schemas[a.name], get_dialect(a.dialect))  # type: ignore[arg-type]
            items = describe_changes(changes, Wording.against_environment(a.name, b.name),
                                     a.dialect)
            kept, _ = split_ignored(items, rules + parse_rules(a.ignore)
                                    + parse_rules(b.ignore))
            out.append(Comparison(a.name, b.name, kept))
    return out
