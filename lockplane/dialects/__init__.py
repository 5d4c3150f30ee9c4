"""Dialect plug-ins, looked up by name."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from ..errors import BadInput
from .base import Database, Dialect

__all__ = ["Database", "Dialect", "get_dialect", "connect", "catalog_prefetcher",
           "prefetches_catalog", "dialect_names"]

# The registered dialects: name -> (module, class), imported on first use (a command
# pays for the drivers of the dialects it uses only).
_REGISTRY = {
    "postgres": ("lockplane.dialects.postgres", "PostgresDialect"),
    "sqlite": ("lockplane.dialects.sqlite", "SQLiteDialect"),
    "mysql": ("lockplane.dialects.mysql", "MySQLDialect"),
}


def dialect_names() -> tuple[str, ...]:
    """The registered dialects' names (what ``--dialect`` and a schema's ``dialect`` take)."""
    return tuple(_REGISTRY)

# Dialects whose catalog the launcher starts reading in a thread while the command line
# imports (lockplane/launch.py), found without importing the dialect: that costs the time
# the prefetch saves.
_CATALOG_PREFETCH = {"postgres": "lockplane.dialects.postgres.catalog"}


def prefetches_catalog(name: str) -> bool:
    return name in _CATALOG_PREFETCH


def catalog_prefetcher(name: str) -> Callable[[str], None] | None:
    """``prefetch(dsn)`` of a dialect that reads its catalog ahead, else None."""
    module = _CATALOG_PREFETCH.get(name)
    if module is None:
        return None
    from importlib import import_module

    prefetch: Callable[[str], None] = import_module(module).prefetch
    return prefetch


@cache
def get_dialect(name: str) -> Dialect:
    try:
        module, cls = _REGISTRY[name]
    except KeyError:
        raise BadInput(f"dialect {name!r} is not supported yet "
                       f"({', '.join(_REGISTRY)})") from None
    from importlib import import_module

    dialect: Dialect = getattr(import_module(module), cls)()
    return dialect


def connect(dsn: str, *, create: bool = False) -> Database:
    from ..dsn import dialect_of

    return get_dialect(dialect_of(dsn)).connect(dsn, create=create)
