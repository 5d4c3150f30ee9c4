"""Views, defaults and CHECKs whose stored form holds a time the server froze.

A desired schema that declares ``'now'::timestamp`` (or ``'today'``, ``'tomorrow'``,
``'yesterday'``) in a view, a column default or a CHECK is stored with the moment it was
loaded (dialects/postgres/frozen.py): loaded again a second later, it differs, and every
plan would recreate the view or reset the default. Loading marks such objects
(``Schema.frozen_literals``); here they are compared without the frozen values:

- ``align``: the live schema with each marked object that equals the desired one but
  for its date/time literals given the desired one's text, so the differ sees no change;
- ``neutral``: a schema with the marked objects' date/time literals left out, for the
  plan's ``target_hash``: an apply creates the view at another moment than the plan
  loaded it, and still reaches the target (the plan carries the marks,
  ``Plan.frozen_literals``, and apply checks the state it reached the same way).

Only the marked objects are compared so: a change of a date literal elsewhere is a
change. Inside a marked object, a change of another date/time literal alone is not seen.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .dialects.base import Dialect
    from .model import Schema

Mark = tuple[str, ...]


def marks_of(plan_marks: Iterable[Iterable[str]] | None) -> frozenset[Mark]:
    return frozenset(tuple(m) for m in plan_marks or ())


def _objects(schema: Schema, mark: Mark) -> list[tuple[object, str, str]]:
    """(model object, attribute, head) of what ``mark`` names in ``schema``."""
    kind, *where = mark
    if kind == "view" and len(where) == 2:
        view = next((v for v in schema.views
                     if (v.schema_ or "", v.name) == (where[0], where[1])), None)
        return [(view, "definition", "")] if view is not None else []
    table = schema.table(where[0], where[1]) if len(where) >= 2 else None
    if table is None:
        return []
    if kind == "default" and len(where) == 3:
        col = table.column(where[2])
        return [(col, "default", "SELECT ")] if col is not None and col.default else []
    if kind == "check":
        return [(c, "expression", "SELECT ") for c in table.check_constraints]
    return []


def _key(obj: object) -> str:
    return str(getattr(obj, "name", ""))


def align(before: Schema, after: Schema, d: Dialect) -> Schema:
    """``before`` with every object ``after`` marks that equals it but for frozen time
    values given ``after``'s text (``before`` itself when nothing is marked or differs)."""
    marks = after.frozen_literals
    if not marks:
        return before
    out: Schema | None = None
    for mark in sorted(marks):
        wanted = {_key(o): (o, attr, head) for o, attr, head in _objects(after, mark)}
        for obj, attr, head in _objects(before, mark):
            match = wanted.get(_key(obj))
            if match is None:
                continue
            text, new = getattr(obj, attr), getattr(match[0], attr)
            if text == new or d.thawed(text, head) != d.thawed(new, head):
                continue
            if out is None:
                out = before.model_copy(deep=True)
                out.set_dependencies(before.dependencies)
                return _aligned(out, after, d, marks)
    return before


def _aligned(out: Schema, after: Schema, d: Dialect, marks: frozenset[Mark]) -> Schema:
    for mark in marks:
        wanted = {_key(o): (o, attr) for o, attr, _ in _objects(after, mark)}
        for obj, attr, head in _objects(out, mark):
            match = wanted.get(_key(obj))
            if match is None:
                continue
            text, new = getattr(obj, attr), getattr(match[0], attr)
            if text != new and d.thawed(text, head) == d.thawed(new, head):
                setattr(obj, attr, new)
    return out


def neutral(schema: Schema, marks: frozenset[Mark], d: Dialect) -> Schema:
    """``schema`` with the marked objects' date/time literals left out (for hashing)."""
    if not marks:
        return schema
    out = schema.model_copy(deep=True)
    for mark in marks:
        for obj, attr, head in _objects(out, mark):
            setattr(obj, attr, d.thawed(getattr(obj, attr), head))
    return out


def reached(after: Schema, target_hash: str, plan_marks: Iterable[Iterable[str]] | None,
            d: Dialect) -> bool:
    """Whether ``after`` is the plan's target, its marked objects compared without the
    time values frozen when the apply created them."""
    marks = marks_of(plan_marks)
    return bool(marks) and neutral(after, marks, d).hash() == target_hash
