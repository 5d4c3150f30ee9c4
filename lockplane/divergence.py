"""What differs when an apply ends at a hash other than its plan's target.

A plan records, next to ``target_hash``, a short digest of each object the plan changes
and of each of that object's parts (``target_objects``; an object the plan drops has an
empty digest). Every other object is, in the target, as it was in the source, which is
the database the apply starts from. Together they name, after the apply, which objects
and parts the database holds differently, without the whole target in the plan. The
digests decide nothing (``target_hash``, which the plan id covers, says whether the
apply diverged); they only label what differs.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from .model import Schema, unchanged_tables

if TYPE_CHECKING:
    from .plan import Plan

__all__ = ["diverged_message", "object_digests", "target_digests", "what_differs"]

_DIGEST_CHARS = 16
_PART = " / "  # between an object's label and the name of one of its parts


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:_DIGEST_CHARS]


def _label(kind: str, item: Any, index: int) -> str:
    if isinstance(item, dict) and isinstance(item.get("name"), str):
        schema = item.get("schema")
        name = f"{schema}.{item['name']}" if schema else item["name"]
        if isinstance(item.get("signature"), str):
            name += f"({item['signature']})"
        return f"{kind} {name}"
    return f"{kind} #{index + 1}"


def _objects(schema: Schema) -> dict[str, Any]:
    """The canonical form's objects by a readable label (``tables public.users``)."""
    out: dict[str, Any] = {}
    for kind, value in schema.canonical().items():
        if not isinstance(value, list):
            out[kind] = value
            continue
        for i, item in enumerate(value):
            label = _label(kind, item, i)
            while label in out:  # (unnamed objects of one kind share a label)
                label += "'"
            out[label] = item
    return out


def _digests(label: str, item: Any) -> dict[str, str]:
    out = {label: _digest(item)}
    if isinstance(item, dict):
        out.update({f"{label}{_PART}{part}": _digest(sub) for part, sub in item.items()
                    if part not in ("name", "schema")})
    return out


def object_digests(schema: Schema) -> dict[str, str]:
    """Digests of every object of ``schema`` and of each of its parts."""
    out: dict[str, str] = {}
    for label, item in _objects(schema).items():
        out.update(_digests(label, item))
    return out


def target_digests(before: Schema, after: Schema) -> dict[str, str]:
    """Digests of what a plan from ``before`` to ``after`` changes, for its
    ``target_objects``: objects (with their parts) that differ, "" for dropped ones."""
    # Tables equal on both sides are most of a large schema: left out before the
    # canonical forms are built.
    same = unchanged_tables(before, after)
    old, new = (_objects(s.model_copy(update={"tables": [
        t for t in s.tables if (t.schema_ or "", t.name) not in same]}))
        for s in (before, after))
    out: dict[str, str] = {}
    for label, item in new.items():
        if old.get(label) != item:
            out.update(_digests(label, item))
    out.update({label: "" for label in old if label not in new})
    return out


def what_differs(expected: dict[str, str], got: Schema, limit: int = 20) -> list[str]:
    """The objects (and their parts) of ``got`` that differ from the digests
    ``expected`` ("" or absent: no such object), as short lines; at most ``limit`` of
    them, and how many more."""
    actual = object_digests(got)
    objects = {k for k in expected.keys() | actual.keys() if _PART not in k}
    lines: list[str] = []
    for key in sorted(objects):
        if not expected.get(key) and key in actual:
            lines.append(f"{key}: not in the plan's target")
        elif key not in actual and expected.get(key):
            lines.append(f"{key}: missing")
        elif key in actual and expected[key] != actual[key]:
            parts = sorted(k.split(_PART, 1)[1] for k in expected.keys() | actual.keys()
                           if k.startswith(key + _PART) and expected.get(k) != actual.get(k))
            lines.append(f"{key}: {', '.join(parts) or 'definition'} differ(s)")
    if len(lines) > limit:
        lines = lines[:limit] + [f"... and {len(lines) - limit} more"]
    return lines


def diverged_message(plan: Plan, start: Schema, got: Schema, hash_after: str) -> str:
    """One message: the hashes, and what differs (one per line) where the plan says.

    ``start``: the database as the apply found it; what the plan does not change is in
    the target as it is there."""
    head = (f"the plan's steps all ran, but the database reached hash {hash_after[:12]}, "
            f"not the plan's target {str(plan.target_hash)[:12]}: the server stores "
            "something other than the plan declared; the steps stay applied")
    if plan.target_objects is None:
        return head + " (run 'lockplane plan' against the desired schema to see what differs)"
    changed = {k.split(_PART, 1)[0] for k in plan.target_objects}
    expected = {k: v for k, v in object_digests(start).items()
                if k.split(_PART, 1)[0] not in changed}
    expected.update(plan.target_objects)
    lines = what_differs(expected, got)
    return head + "; what differs:\n" + "\n".join(f"  {line}" for line in lines)
