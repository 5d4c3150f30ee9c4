"""What the backup and recovery commands share: the target and the backup storage they
name, from options or an environment of lockplane.toml."""

from __future__ import annotations

from typing import Any

from .config import Environment, get_environment
from .errors import BadInput


def _env(name: str | None) -> Environment | None:
    return get_environment(name) if name else None


def _storage(flag: str | None, env: Environment | None) -> Any:
    from .backup import open_storage

    return open_storage(flag or (env.backup_storage if env else None))


def _target(target: str | None, env: Environment | None) -> str:
    """The database URL of --target or --target-environment (one is required)."""
    if target:
        return target
    if env is not None:
        if env.database_url:
            return env.database_url
        raise BadInput(f"environment {env.name!r} has no database_url "
                       f"(lockplane.toml or .env.{env.name})")
    raise BadInput("missing --target: pass a database URL or --target-environment")


def _target_if_given(target: str | None, env: Environment | None) -> str | None:
    """The same, where neither is required (None when neither is given)."""
    return _target(target, env) if (target or env) else None
