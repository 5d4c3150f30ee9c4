"""The data a rollback would destroy, counted on a live database.

A plan classifies each step's rollback (safe / lossy / dangerous) when it is made; what
that means in rows depends on the data written since, so it is counted on the database
as it is now: "rollback will discard values in 1,243 rows of public.users.nickname".

What each rollback destroys comes from the plan itself (``rollback.at_stake``, filled
from ``Change.rollback_stake`` at plan time): plan files outlive the change objects.
Counting is read-only (plain SELECTs; a READ ONLY transaction where the server has one)
and bounded: each count gets ``timeout_s`` and reports "could not count (timed out)"
instead of failing. Every identifier in the SQL is quoted by the dialect; numbers (a
varchar length) are parsed as integers first; catalog look-ups take names as parameters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .dialects.base import Database, StatementTimedOut
from .dsn import redact
from .errors import BadInput
from .plan import Plan

STATEMENT_TIMEOUT_S = 30.0

# Status of a stake: how far counting got.
COUNTED = "counted"
MISSING = "missing"  # the object does not exist (yet): the plan is not applied
NOT_APPLIED = "not_applied"  # the column still has its old type
TIMED_OUT = "timed_out"
FAILED = "failed"

_INT_RANGES = {"smallint": (-32768, 32767), "integer": (-2147483648, 2147483647),
               "bigint": (-9223372036854775808, 9223372036854775807)}
_NUMERIC_TYPES = {"smallint", "integer", "bigint", "numeric", "decimal", "real",
                  "double precision"}
_BOUNDED_STRING = re.compile(
    r"^(character varying|varchar|character|char|bpchar)\s*\(\s*(\d+)\s*\)$", re.IGNORECASE)


@dataclass(frozen=True)
class Stake:
    """What one step's rollback would destroy on the database it was counted on."""

    what: str  # column | columns | table | narrowing (as in rollback.at_stake)
    target: str  # for people: public.users.nickname
    status: str  # counted | missing | not_applied | timed_out | failed
    rows: int | None  # rows at stake when counted
    message: str

    @property
    def counted(self) -> bool:
        return self.status == COUNTED

    def to_json(self) -> dict[str, Any]:
        return {"what": self.what, "target": self.target, "status": self.status,
                "rows": self.rows, "message": self.message}


def count_rollback_stakes(plan: Plan, db: Database, *,
                          timeout_s: float = STATEMENT_TIMEOUT_S) -> list[Stake | None]:
    """One entry per step of ``plan`` (the forward plan): what undoing it destroys on
    ``db`` now, or None when its rollback destroys nothing countable."""
    out: list[Stake | None] = []
    for i, step in enumerate(plan.steps):
        at = step.rollback.at_stake if step.rollback is not None else None
        out.append(_stake(db, _checked(at, i), timeout_s) if at else None)
    return out


def stake_notes(stakes: list[Stake | None]) -> list[list[str]]:
    """Per step, the messages to carry onto its undo step (see plan.rollback_plan)."""
    return [[s.message] if s is not None else [] for s in stakes]


# ------------------------------------------------------------------------- internals
def _checked(at: dict[str, Any], i: int) -> dict[str, Any]:
    """at_stake comes from a plan file: refuse a malformed one in one clear line."""
    what = at.get("what")
    need = {"column": ("table", "column"), "columns": ("table", "columns"),
            "table": ("table",), "narrowing": ("table", "column", "type_from", "type_to")}
    if what not in need:
        raise BadInput(f"step {i + 1}: rollback.at_stake.what must be one of "
                       f"{', '.join(need)}, not {what!r}")
    for key in need[what]:
        value = at.get(key)
        ok = (isinstance(value, list) and value and all(isinstance(v, str) for v in value)) \
            if key == "columns" else isinstance(value, str) and value != ""
        if not ok:
            raise BadInput(f"step {i + 1}: rollback.at_stake.{key} is missing or malformed")
    if not isinstance(at.get("schema", ""), str):
        raise BadInput(f"step {i + 1}: rollback.at_stake.schema must be a string")
    return at


def _rows(n: int) -> str:
    return f"{n:,} row" + ("" if n == 1 else "s")


def _label(at: dict[str, Any], column: str | None = None) -> str:
    name = f"{at['schema']}.{at['table']}" if at.get("schema") else at["table"]
    return f"{name}.{column}" if column else name


def _stake(db: Database, at: dict[str, Any], timeout_s: float) -> Stake:
    d = db.dialect
    what = at["what"]
    table = d.qname(at.get("schema") or None, at["table"])
    target = _label(at, at.get("column"))
    try:
        exists = db.table_exists(at.get("schema") or None, at["table"])
    except NotImplementedError:
        return Stake(what, target, FAILED, None,
                     f"could not count what the rollback destroys in {target}: "
                     f"not supported on {d.name}")
    if not exists:
        return Stake(what, target, MISSING, None,
                     f"{_label(at)} does not exist yet: the rollback destroys nothing")
    if what == "table":
        sql = f"SELECT count(*) FROM {table}"
        head, tail = "rollback will delete ", f" of {target}"
    elif what in ("column", "columns"):
        names = [at["column"]] if what == "column" else list(at["columns"])
        types = {n: _column_type(db, at, n) for n in names}
        present = [n for n in names if types[n] is not None]
        if not present:
            return Stake(what, target, MISSING, None,
                         f"{target} does not exist yet: the rollback destroys nothing")
        where = " OR ".join(f"{d.quote(n)} IS NOT NULL" for n in present)
        sql = f"SELECT count(*) FROM {table} WHERE {where}"
        of = target if what == "column" else f"{target} (columns {', '.join(present)})"
        head, tail = "rollback will discard values in ", f" of {of}"
    else:
        current = _column_type(db, at, at["column"])
        if current is None:
            return Stake(what, target, MISSING, None,
                         f"{target} does not exist yet: the rollback destroys nothing")
        if d.canonical_column_types and _norm(current) != _norm(at["type_from"]):
            return Stake(what, target, NOT_APPLIED, None,
                         f"{target} is {current}, not {at['type_from']} yet: the rollback "
                         "converts nothing")
        sql, head, tail = _narrowing(db, at, table, target)
    try:
        n = _count(db, sql, timeout_s)
    except StatementTimedOut:
        return Stake(what, target, TIMED_OUT, None,
                     f"could not count what the rollback destroys in {target} "
                     f"(timed out after {timeout_s:g} s)")
    except Exception as exc:  # a count is advice: a failure must not stop the command
        reason = redact(str(exc).strip().splitlines()[0] if str(exc).strip() else
                        type(exc).__name__)
        return Stake(what, target, FAILED, None,
                     f"could not count what the rollback destroys in {target}: {reason}")
    return Stake(what, target, COUNTED, n, head + _rows(n) + tail)


def _narrowing(db: Database, at: dict[str, Any], table: str,
               target: str) -> tuple[str, str, str]:
    """For a rollback converting a column to a narrower type: the count query, and the
    words before and after the row count in the message."""
    d = db.dialect
    col = d.quote(at["column"])
    to, frm = at["type_to"].strip(), _base(at["type_from"])
    m = _BOUNDED_STRING.match(to)
    if m:
        # Rollbacks cast explicitly (USING col::varchar(n)), which truncates silently.
        limit = int(m.group(2))
        return (f"SELECT count(*) FROM {table} WHERE length(CAST({col} AS text)) > {limit}",
                "rollback will truncate values in ", f" of {target} (longer than {to})")
    if to.lower() in _INT_RANGES and frm in _NUMERIC_TYPES:
        lo, hi = _INT_RANGES[to.lower()]
        cond = f"{col} < {lo} OR {col} > {hi}"
        if frm in _INT_RANGES:
            return (f"SELECT count(*) FROM {table} WHERE {cond}",
                    "rollback will fail on ", f" of {target} (values outside {to})")
        # From a fractional type: out of range fails the cast, fractions are rounded.
        return (f"SELECT count(*) FROM {table} WHERE {cond} OR {col} <> round({col})",
                "rollback will fail on or round ", f" of {target} (values {to} cannot "
                "hold exactly)")
    return (f"SELECT count(*) FROM {table} WHERE {col} IS NOT NULL",
            "rollback will convert values in ", f" of {target} to {to} (values that do "
            "not fit fail the rollback or lose precision)")


def _base(t: str) -> str:
    return re.sub(r"\(.*?\)", "", t).strip().lower()


def _norm(t: str) -> str:
    return t.replace(", ", ",").strip().lower()


_TimedOut = StatementTimedOut  # (the name tests and older callers catch)


def _column_type(db: Database, at: dict[str, Any], column: str) -> str | None:
    """The column's type as the catalog prints it, or None when there is no such column."""
    return db.column_type(at.get("schema") or None, at["table"], column)


def _count(db: Database, sql: str, timeout_s: float) -> int:
    # Read-only and bounded: a count on a huge table must not hang the CLI.
    return int(db.query_with_deadline(sql, timeout_s)[0][0])
