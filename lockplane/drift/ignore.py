"""Drift a team accepts: ``--ignore`` patterns and ``ignore = [...]`` in lockplane.toml.

A pattern is ``[TYPE:]GLOB``:

- ``GLOB`` is a shell glob (``*``, ``?``, ``[abc]``; case-sensitive) matched against an
  item's object key, with or without its schema (``public.users.emergency_*`` and
  ``users.emergency_*`` both match the column ``public.users.emergency_fix_2024_01``),
  and against each dotted prefix of the key, so a pattern naming a table also covers its
  columns, indexes, constraints, policies, triggers, grants and comments
  (``public.audit_log`` ignores everything on that table).
- ``TYPE:`` limits the pattern to one object type: ``column``, ``table``, ``index``,
  ``constraint``, ``foreign_key``, ``function``, ``view``, ``sequence``, ``type``,
  ``grant``, ``comment``, ``policy``, ``trigger``, ``default_privileges``, ``schema``,
  ``extension``, ``migration`` ... ``table:GLOB`` matches tables and everything on a
  matching table (``table:audit_*``); any other type matches only items of that type
  (``grant:public.*``, ``comment:*``). ``migration:GLOB`` matches migration-history
  findings by plan id.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import BadInput
from .items import DriftItem


@dataclass(frozen=True)
class IgnoreRule:
    pattern: str  # as written
    type: str | None
    glob: str

    @classmethod
    def parse(cls, text: str) -> IgnoreRule:
        raw = text.strip()
        if not raw:
            raise BadInput("an ignore pattern is empty")
        typ, sep, glob = raw.partition(":")
        if sep and typ and all(ch.isalnum() or ch == "_" for ch in typ) and glob:
            return cls(raw, typ.lower(), glob)
        return cls(raw, None, raw)

    def _names(self, key: str) -> list[str]:
        """The key, its schema-less form, and their dotted prefixes."""
        parts = _split_key(key)
        names = [".".join(parts[:i]) for i in range(len(parts), 0, -1)]
        names += [".".join(parts[1:i]) for i in range(len(parts), 1, -1)]
        return names

    def matches(self, item: DriftItem) -> bool:
        if self.type is None:
            return any(fnmatch.fnmatchcase(n, self.glob) for n in self._names(item.object))
        if self.type == "table":
            keys = [k for k in (item.table, item.object if item.type == "table" else None) if k]
            names = [n for k in keys for n in (k, ".".join(_split_key(k)[1:])) if n]
            return any(fnmatch.fnmatchcase(n, self.glob) for n in names)
        if item.type != self.type:
            return False
        return any(fnmatch.fnmatchcase(n, self.glob) for n in self._names(item.object))

    def matches_migration(self, plan_id: str) -> bool:
        return self.type in (None, "migration") and fnmatch.fnmatchcase(plan_id, self.glob)


def _split_key(key: str) -> list[str]:
    """Dotted parts, a function's argument list kept whole (``public.f(a.b)``)."""
    head, paren, args = key.partition("(")
    parts = head.split(".")
    if paren:
        parts[-1] += paren + args
    return parts


def parse_rules(patterns: Iterable[str]) -> tuple[IgnoreRule, ...]:
    return tuple(IgnoreRule.parse(p) for p in patterns)


def split_ignored(items: Iterable[DriftItem], rules: Iterable[IgnoreRule],
                  ) -> tuple[list[DriftItem], list[DriftItem]]:
    """(kept, ignored)."""
    rules = tuple(rules)
    kept: list[DriftItem] = []
    ignored: list[DriftItem] = []
    for item in items:
        (ignored if any(r.matches(item) for r in rules) else kept).append(item)
    return kept, ignored
