"""Bringing a drifted environment back to its desired schema: ``lockplane drift fix``.

Every difference :func:`~lockplane.drift.check_drift` reports is settled one of two ways:

- **adopt**: the desired schema takes the database's version. The schema files are
  edited (a ``.sql`` directory gets the planner's own DDL for the change appended in a
  file that runs last, ``adopted_<date>.sql``; a single ``.sql`` file gets it appended;
  a SQLite table that changed in place has its ``CREATE TABLE`` statement replaced; schema
  JSON is rewritten), then loaded again the way ``drift check`` loads them, and every
  adopted object is checked to be no drift any more before anything is written;
- **revert**: the plan brings the database back to the desired schema (an extra object
  is dropped, a missing one created, a different one changed back). Dangerous steps keep
  their safety class: ``apply`` asks for the usual ``--acknowledge``.

Objects only in the database (``extra``) need a choice (``adopt`` / ``drop`` patterns,
``adopt_all`` / ``drop_all``, or ``ask``); missing and different objects are reverted
unless adopted. Accepted drift (the environment's ``ignore`` patterns) is left as it is:
neither written to the files nor touched by the plan.

The plan goes from the live database to the edited desired schema, so after it is
applied ``drift check`` reports no drift. No Prefect here: ``lockplane drift fix`` and
the ``drift-fix`` flow call :func:`propose_fix`.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..changes.base import Change
from ..dsn import redact
from ..errors import BadInput, LockplaneError
from ..model import Schema
from ..plan import DEFAULT_LOCK_TIMEOUT_MS, Plan
from .check import Target
from .ignore import IgnoreRule, parse_rules, split_ignored
from .items import DriftItem, Wording, describe_changes

Action = Literal["adopt", "revert"]
ADOPT: Action = "adopt"
REVERT: Action = "revert"
# Object keys listed in one error line at most.
_LISTED = 8


@dataclass(frozen=True)
class Decision:
    """What happens to one drifted object: ``adopt`` (the schema files take the
    database's version) or ``revert`` (the plan brings back the desired one; for an
    object only in the database: drops it)."""

    item: DriftItem
    action: Action

    def to_json(self) -> dict[str, Any]:
        return {**self.item.to_json(), "action": self.action}


@dataclass
class SchemaEdit:
    """One schema file as ``drift fix`` leaves it (``before`` None: a new file)."""

    path: str
    before: str | None
    after: str

    def diff(self) -> str:
        return "".join(difflib.unified_diff(
            (self.before or "").splitlines(keepends=True), self.after.splitlines(keepends=True),
            fromfile="/dev/null" if self.before is None else self.path, tofile=self.path))

    def write(self) -> None:
        path = Path(self.path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(self.after)
        except OSError as exc:
            raise BadInput(f"cannot write {self.path}: {exc.strerror or exc}") from None


@dataclass
class FixProposal:
    """What ``drift fix`` would do to one environment: the decisions, the schema file
    edits (for adopted objects), and the plan (for reverted ones)."""

    environment: str
    database: str  # redacted
    dialect: str
    schema_path: str
    decisions: list[Decision]
    edits: list[SchemaEdit]
    plan: Plan
    ignored: list[DriftItem] = field(default_factory=list)

    @property
    def adopted(self) -> list[DriftItem]:
        return [d.item for d in self.decisions if d.action == ADOPT]

    @property
    def reverted(self) -> list[DriftItem]:
        return [d.item for d in self.decisions if d.action == REVERT]

    @property
    def clean(self) -> bool:
        return not self.decisions

    def write_schema(self) -> list[str]:
        """Write the edited schema files; their paths."""
        for e in self.edits:
            e.write()
        return [e.path for e in self.edits]

    def to_json(self) -> dict[str, Any]:
        return {"environment": self.environment, "database": self.database,
                "dialect": self.dialect, "schema_path": self.schema_path,
                "decisions": [d.to_json() for d in self.decisions],
                "ignored": [i.to_json() for i in self.ignored],
                "schema_edits": [{"path": e.path, "new_file": e.before is None}
                                 for e in self.edits],
                "plan_steps": len(self.plan.steps)}

    def markdown(self, safety: str | None = None) -> str:
        """For review (the drift-fix flow's artifact): decisions, file diffs, the plan."""
        from ..markdown import plan_markdown

        lines = [f"## Drift fix of {self.environment}", "",
                 f"Database {self.database}, desired schema `{self.schema_path}`.", ""]
        if self.clean:
            lines.append("No drift: nothing to adopt or revert.")
        for title, items in (("Adopted into the schema files", self.adopted),
                             ("Reverted by the plan", self.reverted),
                             ("Accepted drift (ignore patterns), left as it is",
                              self.ignored)):
            if items:
                lines += [f"### {title}", ""]
                lines += [f"- `{i.object}` ({i.type}, {i.kind}): {_md(i.detail)}" for i in items]
                lines.append("")
        for e in self.edits:
            lines += [f"### {'New file' if e.before is None else 'Edited'} `{e.path}`", "",
                      "```diff", e.diff().rstrip("\n"), "```", ""]
        lines.append(plan_markdown(self.plan, self.environment, safety))
        return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# ------------------------------------------------------------------------------ choices
def decide(items: Sequence[DriftItem], *, adopt: Iterable[str] = (), drop: Iterable[str] = (),
           adopt_all: bool = False, drop_all: bool = False,
           ask: Callable[[DriftItem], Action] | None = None,
           environment: str = "the environment") -> list[Decision]:
    """A decision per drifted item.

    ``adopt`` / ``drop``: ``[TYPE:]GLOB`` patterns on object keys (as ``--ignore``: a
    table's key covers what is on it); each must match a drifted object. ``--drop`` on a
    missing or different object means revert (what happens anyway). ``adopt_all``:
    everything not named otherwise is adopted; ``drop_all``: every extra object not named
    otherwise is dropped. Extra objects still undecided are put to ``ask``; without it,
    BadInput names them. Missing and different objects default to revert.
    """
    check_choices(adopt, drop, adopt_all, drop_all)
    adopt_rules, drop_rules = parse_rules(adopt), parse_rules(drop)
    for rule in (*adopt_rules, *drop_rules):
        if not any(rule.matches(i) for i in items):
            raise BadInput(_unknown(rule, items, environment))
    decisions: list[Decision] = []
    undecided: list[DriftItem] = []
    for item in items:
        a = _first(adopt_rules, item)
        d = _first(drop_rules, item)
        if a and d:
            raise BadInput(f"{item.object} ({item.type}) is named by --adopt {a.pattern} and "
                           f"by --drop {d.pattern}: name it in one of them")
        if a or (adopt_all and not d):
            decisions.append(Decision(item, ADOPT))
        elif d or drop_all or item.kind != "extra":
            decisions.append(Decision(item, REVERT))
        else:
            undecided.append(item)
    if undecided and ask is None:
        raise BadInput(
            f"{len(undecided)} object(s) of {environment} are only in the database and need a "
            f"choice: {_listed(undecided)}; pass --adopt OBJECT or --drop OBJECT for each "
            "(or --adopt-all / --drop-all), or run it in a terminal to be asked")
    for item in undecided:
        action = ask(item)  # type: ignore[misc]
        if action not in (ADOPT, REVERT):
            raise BadInput(f"no choice made for {item.object} ({item.type})")
        decisions.append(Decision(item, action))
    order = {i: n for n, i in enumerate(items)}
    return sorted(decisions, key=lambda d: order[d.item])


def check_choices(adopt: Iterable[str], drop: Iterable[str], adopt_all: bool,
                  drop_all: bool) -> None:
    """Bad choices are bad input before anything connects."""
    if adopt_all and drop_all:
        raise BadInput("give --adopt-all or --drop-all, not both")
    parse_rules(adopt)
    parse_rules(drop)


def _first(rules: Sequence[IgnoreRule], item: DriftItem) -> IgnoreRule | None:
    return next((r for r in rules if r.matches(item)), None)


def _listed(items: Sequence[DriftItem]) -> str:
    shown = [f"{i.object} ({i.type})" for i in items[:_LISTED]]
    more = f" and {len(items) - _LISTED} more" if len(items) > _LISTED else ""
    return ", ".join(shown) + more


def _unknown(rule: IgnoreRule, items: Sequence[DriftItem], environment: str) -> str:
    if not items:
        return (f"no drift matches {rule.pattern!r}: {environment} has no drift to adopt or "
                "drop")
    return (f"no drift matches {rule.pattern!r} in {environment}; drifted objects: "
            f"{_listed(items)}")


# ----------------------------------------------------------------------------- proposal
def propose_fix(target: Target, *, adopt: Iterable[str] = (), drop: Iterable[str] = (),
                adopt_all: bool = False, drop_all: bool = False,
                ask: Callable[[DriftItem], Action] | None = None,
                lock_timeout_ms: int | None = DEFAULT_LOCK_TIMEOUT_MS,
                today: _dt.date | None = None,
                report: Callable[[str], None] | None = None) -> FixProposal:
    """What ``drift fix`` does to ``target``: nothing is written and nothing runs on the
    database (the caller writes ``edits`` and applies ``plan``).

    BadInput (nothing written) for bad patterns, a pattern matching no drift, extra objects
    without a choice, an adoption the desired schema's format cannot hold.
    """
    from ..dialects import get_dialect
    from ..diff import diff
    from ..plan import build_plan
    from ..sources import _scratch_server
    from .check import _load_desired

    check_choices(adopt, drop, adopt_all, drop_all)
    say = report or (lambda _m: None)
    d = get_dialect(target.dialect)
    with ThreadPoolExecutor(max_workers=1) as pool:
        reading = pool.submit(_introspect, target)
        desired = _load_desired(target)
        live = reading.result()
    changes = diff(desired, live, d)
    items = describe_changes(changes, Wording(target.name), target.dialect)
    items, ignored = split_ignored(items, parse_rules(target.ignore))
    decisions = decide(items, adopt=adopt, drop=drop, adopt_all=adopt_all, drop_all=drop_all,
                       ask=ask, environment=target.name)
    adopted = {x.item for x in decisions if x.action == ADOPT}
    kept = set(ignored)
    owners = _owners(changes, [*items, *ignored], target)
    for c, owned in owners:
        if owned and any(i in adopted for i in owned) and not all(i in adopted for i in owned):
            rest = [i for i in owned if i not in adopted]
            raise BadInput(
                f"{c.describe()} settles {len(owned)} differences together ({d.name} changes "
                f"the table as a whole): adopt all of them or none; not adopted: "
                f"{_listed(rest)}")
    to_files = [c for c, owned in owners if owned and all(i in adopted for i in owned)]
    to_keep = [c for c, owned in owners
               if owned and all(i in adopted or i in kept for i in owned)
               and any(i in kept for i in owned)]
    edits: list[SchemaEdit] = []
    want = desired
    if to_files:
        say(f"adopting {len(adopted)} object(s) into {target.schema_path}")
        edits, want = _adopt(target, desired, to_files, decisions, today or _dt.date.today())
        # What drift check will say once the files are written: only what is reverted
        # (or accepted) may be left, every adopted object is no drift any more.
        still = describe_changes(diff(want, live, d), Wording(target.name), target.dialect)
        others = [x.item for x in decisions if x.action == REVERT] + list(ignored)
        for left in still:
            if not any(_same(left, o) for o in others):
                raise LockplaneError(
                    f"adopting into {target.schema_path} does not round-trip: the edited "
                    f"schema would still differ from the database: {left.detail}")
    if to_keep:  # accepted drift: the plan leaves it as it is
        want = _with_changes(want, to_keep, target)
    plan = build_plan(live, want, lock_timeout_ms=lock_timeout_ms,
                      server_dsn=_scratch_server(target.dialect, target.context))
    return FixProposal(target.name, redact(target.database_url), target.dialect,
                       target.schema_path, decisions, edits, plan, list(ignored))


def _introspect(target: Target) -> Schema:
    from ..sources import load_schema

    return load_schema(target.database_url)


def _same(a: DriftItem, b: DriftItem) -> bool:
    """The same object (grants on one table are told apart by their words)."""
    return a.type == b.type and a.object == b.object and (a.type != "grant"
                                                          or a.detail == b.detail)


def _owners(changes: Sequence[Change], items: Sequence[DriftItem],
            target: Target) -> list[tuple[Change, list[DriftItem]]]:
    """Each change of ``diff(desired, live)`` with the drift items it settles."""
    out = []
    for c in changes:
        told = describe_changes([c], Wording(target.name), target.dialect)
        owned = [i for i in items if any(_same(i, t) for t in told)]
        if not told and c.table_key() is not None:
            # Part of a table that is itself the difference (a new table's foreign keys,
            # comments, grants): settled with that table.
            key = ".".join(p for p in c.table_key() or () if p)
            owned = [i for i in items if i.type == "table" and i.object == key]
        out.append((c, owned))
    return out


# ------------------------------------------------------------------------------ adopting
def _ddl(changes: Sequence[Change], base: Schema, target: Target) -> list[str]:
    """The planner's plain DDL for ``changes`` made to ``base`` (no lock-safe rewrites, no
    timeouts), by the path every plan takes (plan.steps_for): kinds the server refuses
    apart joined, MySQL's ALGORITHM and LOCK decided on the environment's scratch server
    as a plan's are."""
    from ..dialects import get_dialect
    from ..plan import order_changes, steps_for
    from ..sources import _scratch_server

    d = get_dialect(target.dialect)
    out: list[str] = []
    steps = steps_for(order_changes(list(changes)), base, d, lock_timeout_ms=None,
                      server_dsn=_scratch_server(target.dialect, target.context))
    for step in steps:
        out += [s for s in step.sql
                if not re.match(r"(?i)\s*SET\s+check_function_bodies\b", s)]
    return out


def _is_rebuild(c: Change) -> bool:
    return type(c).__name__ == "RebuildTable"


def _create_table_sql(table: Any, dialect: str) -> str:
    from ..changes.create_table import CreateTable
    from ..dialects import get_dialect

    return ";\n".join(CreateTable(table=table).sql(get_dialect(dialect)))


def _block(statements: Sequence[str], decisions: Sequence[Decision], environment: str,
           today: _dt.date) -> str:
    lines = [f"-- Adopted from environment {environment} by `lockplane drift fix` on "
             f"{today.isoformat()}:"]
    lines += [f"--   {_one_line(x.item.detail)}" for x in decisions if x.action == ADOPT]
    return "\n".join(lines) + "\n" + "".join(f"{s.rstrip().rstrip(';')};\n" for s in statements)


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def _adopt(target: Target, desired: Schema, changes: Sequence[Change],
           decisions: Sequence[Decision], today: _dt.date) -> tuple[list[SchemaEdit], Schema]:
    """The schema file edits that adopt ``changes`` (of diff(desired, live)), and the
    desired schema they give, loaded as ``drift check`` loads it."""
    from ..sources import source_kind

    kind = source_kind(target.schema_path)
    if kind in ("sql", "sql_dir"):
        edits = _sql_edits(target, desired, changes, decisions, today)
    elif kind == "json":
        wanted = _with_changes(desired, changes, target)
        text = wanted.to_json() + "\n"
        edits = [SchemaEdit(target.schema_path, Path(target.schema_path).read_text(), text)]
    else:
        raise BadInput(f"{target.schema_path}: drift fix adopts objects into .sql files, a "
                       f"directory of them or schema JSON, not a {kind} source; drop them "
                       "instead, or change the desired schema by hand")
    return edits, _load_edited(target, edits)


def _sql_edits(target: Target, desired: Schema, changes: Sequence[Change],
               decisions: Sequence[Decision], today: _dt.date) -> list[SchemaEdit]:
    from ..sources import sql_files

    root = Path(target.schema_path)
    files = sql_files(target.schema_path)
    texts: dict[Path, str] = {}
    originals: dict[Path, str | None] = {}

    def text_of(f: Path) -> str:
        if f not in texts:
            originals[f] = f.read_text() if f.exists() else None
            texts[f] = originals[f] or ""
        return texts[f]

    # A SQLite table changed in place (a rebuild): its CREATE TABLE takes the new form.
    for c in changes:
        if not _is_rebuild(c):
            continue
        table = c.after  # type: ignore[attr-defined]
        for f in files:
            edited = _replace_create_table(text_of(f), table.name,
                                           _create_table_sql(table, target.dialect))
            if edited is not None:
                texts[f] = edited
                break
        else:
            raise BadInput(f"{target.schema_path}: no CREATE TABLE statement for "
                           f"{table.name} to adopt its changes into")
    statements = _ddl([c for c in changes if not _is_rebuild(c)], desired, target)
    if statements:
        dest = root if root.is_file() else _adopted_file(root, files, today)
        current = text_of(dest)
        sep = "" if not current or current.endswith("\n\n") else (
            "\n" if current.endswith("\n") else "\n\n")
        texts[dest] = current + sep + _block(statements, decisions, target.name, today)
    return [SchemaEdit(str(f), originals[f], t) for f, t in texts.items()
            if t != originals[f]]


def _adopted_file(root: Path, files: Sequence[Path], today: _dt.date) -> Path:
    """``adopted_<date>.sql`` in the schema directory, or ``zz_adopted_<date>.sql`` when
    that would not run last (the directory's files run in sorted order, and what is
    adopted may refer to anything they define). A file of that name is appended to."""
    prefix = ""
    while True:
        candidate = root / f"{prefix}adopted_{today.isoformat()}.sql"
        if sorted({*files, candidate})[-1] == candidate:
            return candidate
        prefix = "zz_" if not prefix else "z" + prefix


_LEADING = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*", re.S)
_CREATE_TABLE = re.compile(
    r"CREATE\s+(?:TEMP(?:ORARY)?\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?"
    r"(?:(?:\"(?:[^\"]|\"\")+\"|`[^`]+`|\[[^\]]+\]|\w+)\s*\.\s*)?"
    r"(\"(?:[^\"]|\"\")+\"|`[^`]+`|\[[^\]]+\]|\w+)", re.I)


def _unquote(name: str) -> str:
    if name[:1] in "\"`[":
        return name[1:-1].replace('""', '"')
    return name


def _replace_create_table(text: str, name: str, create_sql: str) -> str | None:
    """``text`` with its ``CREATE TABLE name`` statement replaced by ``create_sql``;
    None when it has none. Statements are split the way SQLite itself ends them."""
    start = 0
    for pos, ch in enumerate(text):
        if ch != ";" or not sqlite3.complete_statement(text[start:pos + 1]):
            continue
        head = _LEADING.match(text, start)
        body = head.end() if head else start
        m = _CREATE_TABLE.match(text, body)
        if m and _unquote(m.group(1)).lower() == name.lower():
            return text[:body] + create_sql + text[pos:]
        start = pos + 1
    return None


def _with_changes(base: Schema, changes: Sequence[Change], target: Target) -> Schema:
    """``base`` with ``changes`` (of diff(base-like desired, live)) made to it: its
    create script plus their DDL, loaded in the sandbox like any desired schema."""
    from ..dialects import get_dialect
    from ..plan import build_plan
    from ..sources import _scratch_server

    create = build_plan(Schema(dialect=base.dialect), base, lock_safe=False,
                        lock_timeout_ms=None)
    script = "".join(f"{s.rstrip().rstrip(';')};\n" for step in create.steps for s in step.sql)
    for c in changes:
        if _is_rebuild(c):
            table = c.after  # type: ignore[attr-defined]
            edited = _replace_create_table(script, table.name,
                                           _create_table_sql(table, target.dialect))
            if edited is None:
                raise BadInput(f"{target.schema_path}: no table {table.name} to adopt into")
            script = edited
    script += "".join(f"{s.rstrip().rstrip(';')};\n"
                      for s in _ddl([c for c in changes if not _is_rebuild(c)], base,
                                    target))
    ctx = target.context
    return get_dialect(target.dialect).load_untrusted(
        [(f"{target.schema_path} (with adopted objects)", script)],
        _scratch_server(target.dialect, ctx), allowed_extensions=ctx.allowed_extensions,
        lines=False, version_of=ctx.version_of)


def _load_edited(target: Target, edits: Sequence[SchemaEdit]) -> Schema:
    """The desired schema as ``drift check`` will load it once ``edits`` are written: a
    copy of the schema path, edited, loaded the same way."""
    from .check import _load_desired

    src = Path(target.schema_path)
    with tempfile.TemporaryDirectory(prefix="lockplane-drift-fix-") as tmp:
        copy = Path(tmp) / (src.name or "schema")
        if src.is_dir():
            shutil.copytree(src, copy)
        else:
            shutil.copy2(src, copy)
        for e in edits:
            rel = Path(e.path).relative_to(src) if src.is_dir() else Path()
            dest = copy / rel if src.is_dir() else copy
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(e.after)
        shown = Target(target.name, target.database_url, str(copy), target.context,
                       target.ignore)
        try:
            return _load_desired(shown)
        except LockplaneError as exc:
            exc.message = exc.message.replace(str(copy), str(src))
            raise
