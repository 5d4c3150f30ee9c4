"""DatabaseTarget: where a flow applies migrations, with its secrets kept secret.

A flow parameter is stored in plain text by the Prefect server and shown in its UI, so
production DSNs belong in this block (saved encrypted, shown obfuscated) and flows are
given the block's name.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from prefect.blocks.core import Block
from pydantic import ConfigDict, Field, SecretStr, model_validator

from lockplane.dsn import dialect_of, redact
from lockplane.errors import BadInput
from lockplane.plan import DEFAULT_LOCK_TIMEOUT_MS, MAX_LOCK_TIMEOUT_MS

SafetyLevel = Literal["strict", "moderate", "permissive"]


class DatabaseTarget(Block):
    """A database Lockplane migrates: its DSN, its shadow server and its safety policy."""

    # Pydantic puts the raw input in validation errors, DSN and password included:
    # hide it (the messages below name the DSN redacted).
    model_config: ClassVar[ConfigDict] = ConfigDict(**Block.model_config,
                                                    hide_input_in_errors=True)

    _block_type_name = "Lockplane Database Target"
    _block_type_slug = "lockplane-database-target"
    _description = ("A database Lockplane plans and applies migrations to: DSN, shadow "
                    "database server, safety level, lock timeout and whether dropped data "
                    "is archived for a rollback.")

    dialect: Literal["postgres", "sqlite"] = Field(
        description="postgres or sqlite; must agree with the DSN's scheme.")
    dsn: SecretStr = Field(description="Database URL, e.g. postgresql://user:pw@host/db.")
    shadow_dsn: SecretStr | None = Field(
        default=None,
        description="Server (PostgreSQL) where shadow databases are created for validation; "
                    "defaults to the target's own server.")
    scratch_dsn: SecretStr | None = Field(
        default=None,
        description="Server (PostgreSQL) where desired schemas are loaded, away from the "
                    "target's credentials; defaults to the shadow server, then the target's "
                    "own (where schema files run as a throwaway unprivileged role).")
    allowed_extensions: list[str] = Field(
        default_factory=list,
        description="Extensions a desired schema may install in its scratch database, "
                    "beyond those the server marks trusted.")
    safety: SafetyLevel = Field(
        default="moderate",
        description="Steps refused at this level are never applied to this target: "
                    "strict refuses lossy and dangerous steps, moderate dangerous ones.")
    lock_timeout_ms: int = Field(default=DEFAULT_LOCK_TIMEOUT_MS, ge=0, le=MAX_LOCK_TIMEOUT_MS,
                                 description="PostgreSQL lock_timeout for each DDL statement "
                                             "(each attempt; a step that cannot get its lock "
                                             "retries with backoff within its lock-wait "
                                             "budget).")
    archive_dropped: bool = Field(
        default=True,
        description="Plans copy dropped tables' rows and dropped columns' values into an "
                    "archive for a rollback to put back (bounded); off: a rollback brings "
                    "them back empty (lockplane plan --no-archive).")

    @model_validator(mode="after")
    def _dialect_matches_dsn(self) -> DatabaseTarget:
        try:
            found = dialect_of(self.dsn.get_secret_value())
        except BadInput as exc:
            raise ValueError(exc.message) from None
        if found != self.dialect:
            raise ValueError(f"dialect is {self.dialect!r} but the DSN "
                             f"{self.display_dsn} is {found}")
        return self

    @property
    def display_dsn(self) -> str:
        """The DSN with its password replaced by ***: safe for logs and artifacts."""
        return redact(self.dsn.get_secret_value())

    def target_dsn(self) -> str:
        """The real DSN, for the engine only: never log it."""
        return self.dsn.get_secret_value()

    def shadow_server_dsn(self) -> str | None:
        return self.shadow_dsn.get_secret_value() if self.shadow_dsn else None

    def scratch_server_dsn(self) -> str | None:
        return self.scratch_dsn.get_secret_value() if self.scratch_dsn else None
