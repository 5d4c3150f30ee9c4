"""What differs when an apply ends at a hash other than its plan's target.

A plan records, next to ``target_hash``, a short digest of every object of the target
schema and of each of its parts (``target_objects``): enough to name, after the apply,
which objects and which of their parts the database holds differently, without carrying
the whole target schema in the plan. The digests decide nothing (``target_hash``, which
the plan id covers, says whether the apply diverged); they only label what differs.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from .model import Schema

if TYPE_CHECKING:
    from .plan import Plan

__all__ = ["diverged_message", "object_digests", "what_differs"]

_DIGEST_CHARS = 16


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


def object_digests(schema: Schema) -> dict[str, str]:
    """``{"tables public.users": digest, "tables public.users / columns": digest, ...}``:
    each object of the canonical form, and each part of it, by a readable key."""
    out: dict[str, str] = {}
    for kind, value in schema.canonical().items():
        if not isinstance(value, list):
            out[kind] = _digest(value)
            continue
        for i, item in enumerate(value):
            label = _label(kind, item, i)
            while label in out:  # (unnamed objects of one kind share a label)
                label += "'"
            out[label] = _digest(item)
            if isinstance(item, dict):
                for part, sub in item.items():
                    if part not in ("name", "schema"):
                        out[f"{label} / {part}"] = _digest(sub)
    return out


def what_differs(expected: dict[str, str], got: Schema, limit: int = 20) -> list[str]:
    """The objects (and their parts) of ``got`` that differ from the digests
    ``expected``, as short lines; at most ``limit`` of them, and how many more."""
    actual = object_digests(got)
    objects = {k for k in expected.keys() | actual.keys() if " / " not in k}
    lines: list[str] = []
    for key in sorted(objects):
        if key not in actual:
            lines.append(f"{key}: missing")
        elif key not in expected:
            lines.append(f"{key}: not in the plan's target")
        elif expected[key] != actual[key]:
            parts = sorted(k.split(" / ", 1)[1] for k in expected.keys() | actual.keys()
                           if k.startswith(key + " / ")
                           and expected.get(k) != actual.get(k))
            lines.append(f"{key}: {', '.join(parts) or 'definition'} differ(s)")
    if len(lines) > limit:
        lines = lines[:limit] + [f"... and {len(lines) - limit} more"]
    return lines


def diverged_message(plan: Plan, got: Schema, hash_after: str) -> str:
    """One message: the hashes, and what differs where the plan says (one per line)."""
    head = (f"the plan's steps all ran, but the database reached hash {hash_after[:12]}, "
            f"not the plan's target {str(plan.target_hash)[:12]}: the server stores "
            "something other than the plan declared; the steps stay applied")
    if not plan.target_objects:
        return head + " (run 'lockplane plan' against the desired schema to see what differs)"
    lines = what_differs(plan.target_objects, got)
    return head + "; what differs:\n" + "\n".join(f"  {line}" for line in lines)
