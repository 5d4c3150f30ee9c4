"""Resolving a flow's ``target`` parameter: a DatabaseTarget block (by name or
instance) or, for local use, a raw DSN."""

from __future__ import annotations

import re
from dataclasses import dataclass

from prefect import get_run_logger

from blocks.database_target import DatabaseTarget
from lockplane.config import SAFETY_LEVELS
from lockplane.dsn import dialect_of, looks_like_dsn, redact
from lockplane.errors import BadInput

# strictest first: the effective level of a run is the stricter of the run's and the
# target's, so a run parameter can tighten a production target's policy, never loosen it.
_STRICTNESS = ["strict", "moderate", "permissive"]


@dataclass(frozen=True)
class ResolvedTarget:
    dsn: str
    dialect: str
    label: str  # safe to show: block name or redacted DSN
    shadow_dsn: str | None = None
    safety: str | None = None  # the target's own policy, if it has one
    lock_timeout_ms: int = 3000

    @property
    def scratch_server(self) -> str | None:
        """Where scratch databases for loading .sql schemas go (PostgreSQL only)."""
        if self.dialect != "postgres":
            return None
        return self.shadow_dsn or self.dsn

    @property
    def slug(self) -> str:
        """Artifact-key form of the label (lowercase letters, digits and dashes)."""
        slug = re.sub(r"[^a-z0-9]+", "-", self.label.lower()).strip("-")
        return slug[-48:].strip("-") or "target"  # the tail holds the database name

    def effective_safety(self, requested: str) -> str:
        if requested not in SAFETY_LEVELS:
            raise BadInput(f"safety must be one of {', '.join(SAFETY_LEVELS)}, "
                           f"not {requested!r}")
        levels = [requested] + ([self.safety] if self.safety else [])
        return min(levels, key=_STRICTNESS.index)


def resolve_target(target: str | DatabaseTarget) -> ResolvedTarget:
    """A DatabaseTarget block (instance or saved name), or a raw DSN."""
    if isinstance(target, DatabaseTarget):
        return _from_block(target, getattr(target, "_block_document_name", None)
                           or target.display_dsn)
    if looks_like_dsn(target):
        if redact(target) != target:
            # Flow parameters are stored in plain text by the Prefect server.
            get_run_logger().warning(
                "target is a DSN with a password: the Prefect server stores flow parameters "
                "as given; use a DatabaseTarget block for real databases")
        return ResolvedTarget(dsn=target, dialect=dialect_of(target), label=redact(target))
    try:
        block = DatabaseTarget.load(target)
    except ValueError:
        raise BadInput(f"target {target!r} is neither a database URL nor the name of a "
                       "saved DatabaseTarget block") from None
    return _from_block(block, target)


def _from_block(block: DatabaseTarget, label: str) -> ResolvedTarget:
    return ResolvedTarget(dsn=block.target_dsn(), dialect=block.dialect, label=label,
                          shadow_dsn=block.shadow_server_dsn(), safety=block.safety,
                          lock_timeout_ms=block.lock_timeout_ms)
