"""Resolving a flow's ``target`` parameter: a DatabaseTarget block (by name or
instance) or, for local use, a DSN without a password.

The Prefect server stores flow-run parameters in plain text and shows them in its UI: a
DSN that carries a password is refused before the run is created (``no_passwords``), and
again by ``resolve_target`` for a run created some other way (a deployment run).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from prefect import Flow
from pydantic import WithJsonSchema

from blocks.database_target import DatabaseTarget
from lockplane.config import SAFETY_LEVELS
from lockplane.dialects import get_dialect
from lockplane.dsn import dialect_of, holds_password, looks_like_dsn, redact
from lockplane.errors import BadInput
from lockplane.plan import DEFAULT_LOCK_TIMEOUT_MS
from lockplane.sources import SCRATCH_URL_ENV

# strictest first: the effective level of a run is the stricter of the run's and the
# target's, so a run parameter can tighten a production target's policy, never loosen it.
_STRICTNESS = ["strict", "moderate", "permissive"]


@dataclass(frozen=True)
class ResolvedTarget:
    dsn: str
    dialect: str
    label: str  # safe to show: block name or redacted DSN
    shadow_dsn: str | None = None
    scratch_dsn: str | None = None
    allowed_extensions: tuple[str, ...] = ()
    safety: str | None = None  # the target's own policy, if it has one
    lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS
    archive_dropped: bool = True  # plans archive dropped rows and values for a rollback
    # The saved block's name: the environment a signed plan must be signed for (None for a
    # raw DSN or an unsaved block, where only a plan signed for any environment runs).
    environment: str | None = None

    @property
    def scratch_server(self) -> str | None:
        """Where desired schemas (.sql, .json) are loaded, for a dialect whose scratch
        databases live on a server: the block's scratch server, its shadow server,
        LOCKPLANE_SCRATCH_DATABASE_URL, or the target's own server (as a throwaway
        unprivileged role)."""
        if not get_dialect(self.dialect).scratch_needs_server:
            return None
        return (self.scratch_dsn or self.shadow_dsn or os.environ.get(SCRATCH_URL_ENV)
                or self.dsn)

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
        name = getattr(target, "_block_document_name", None)
        return _from_block(target, name or target.display_dsn, name)
    if holds_password(target):
        raise BadInput(_password_refusal("target", target))
    if looks_like_dsn(target):
        return ResolvedTarget(dsn=target, dialect=dialect_of(target), label=redact(target))
    try:
        block = DatabaseTarget.load(target)
    except ValueError:
        raise BadInput(f"target {redact(target)!r} is neither a database URL nor the name of "
                       "a saved DatabaseTarget block") from None
    return _from_block(block, target, target)


def _password_refusal(name: str, value: str) -> str:
    return (f"flow parameter {name!r} is a DSN with a password ({redact(value)}): the Prefect "
            "server would store it in plain text; save it in a DatabaseTarget block and pass "
            "the block's name (or use a DSN without a password)")


_F = TypeVar("_F", bound=Flow[Any, Any])

# A DSN carrying a password (URL user:password@, or a password= key), as a JSON Schema
# pattern: Prefect's server checks a deployment run's parameters against the flow's schema
# when the run is created, before it stores them, and its UI checks the form with it too
# (so no inline flags: JavaScript's RegExp has none).
PASSWORD_IN_DSN = r"://[^/@?#\s]*:[^/@?#\s]*@|(^|[\s?&;])[Pp][Aa][Ss][Ss][Ww][Oo][Rr][Dd]\s*="
NoPasswordStr = Annotated[str, WithJsonSchema({
    "type": "string", "not": {"pattern": PASSWORD_IN_DSN},
    "description": "A DatabaseTarget block's name, or a database URL without a password "
                   "(the server would store a password in plain text)."})]


def no_passwords(flow: _F) -> _F:
    """``flow``, refusing (BadInput, before Prefect creates the run and stores its
    parameters) any parameter that is a DSN carrying a password."""
    serialize: Callable[[dict[str, Any]], dict[str, Any]] = flow.serialize_parameters

    def checked(parameters: dict[str, Any]) -> dict[str, Any]:
        for name, value in parameters.items():
            for item in value if isinstance(value, list | tuple) else [value]:
                if isinstance(item, str) and holds_password(item):
                    raise BadInput(_password_refusal(name, item))
        return serialize(parameters)

    flow.serialize_parameters = checked  # type: ignore[method-assign]
    return flow


def _from_block(block: DatabaseTarget, label: str, name: str | None = None) -> ResolvedTarget:
    return ResolvedTarget(dsn=block.target_dsn(), dialect=block.dialect, label=label,
                          environment=name,
                          shadow_dsn=block.shadow_server_dsn(),
                          scratch_dsn=block.scratch_server_dsn(),
                          allowed_extensions=tuple(block.allowed_extensions), safety=block.safety,
                          lock_timeout_ms=block.lock_timeout_ms,
                          archive_dropped=block.archive_dropped)
