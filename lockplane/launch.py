"""The ``lockplane`` console entry point.

Before importing the command line (typer, pydantic, the model, every change kind: about
half a second of CPU), it looks at the arguments for live PostgreSQL databases that
``plan`` is going to read, and starts reading their catalogs in background threads, so
the server works while this process imports. Nothing else is decided here: typer still
parses the arguments, and a prefetch that fails is dropped without a word (the normal
path connects again and reports the error properly).
"""

from __future__ import annotations

import gc
import os
import sys

from .dialects import catalog_prefetcher, prefetches_catalog
from .dsn import dialect_of, looks_like_dsn

# Commands that only read the databases their options name (not ``apply`` and the
# like: they read the database under their own lock), and how to find them: options
# given a URL, and options naming an environment whose ``database_url`` is read when
# the matching URL option is absent (``plan --to-environment`` means its schema files).
_READ_SOURCES: dict[str, dict[str, str | None]] = {
    "plan": {"--from": "--from-environment", "--to": None},
}


def catalog_sources(argv: list[str]) -> list[str]:
    """The live database URLs the command in ``argv`` will read (of a dialect that reads
    its catalog ahead)."""
    if not argv or argv[0] not in _READ_SOURCES:
        return []
    wanted = _READ_SOURCES[argv[0]]
    names = set(wanted) | {env for env in wanted.values() if env}
    given: dict[str, str] = {}
    for i, arg in enumerate(argv[1:], start=1):
        name, eq, value = arg.partition("=")
        if name in names:  # the last one wins, as in click
            given[name] = value if eq else (argv[i + 1] if i + 1 < len(argv) else "")
    found: list[str] = []
    for option, env_option in wanted.items():
        try:
            value = given.get(option) or (_database_url(given[env_option])
                                          if env_option in given else "")
            if looks_like_dsn(value) and prefetches_catalog(dialect_of(value)):
                found.append(value)
        except Exception:  # noqa: BLE001 - not ours to report: the command itself will
            continue
    return found


def _database_url(environment: str) -> str:
    from .config import get_environment

    return get_environment(environment).database_url or ""


def main() -> None:
    # Importing makes a few hundred thousand long-lived objects (modules, classes,
    # pydantic's validators) and no garbage: the cyclic collector would scan them again
    # and again while they are made (~25 ms), and at every later collection.
    gc.disable()
    # pydantic looks for plugins by reading the entry points of every installed
    # distribution (~15 ms beside prefect's dependencies); Lockplane's models need none.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    sources = catalog_sources(sys.argv[1:])
    for dsn in sources:
        prefetch = catalog_prefetcher(dialect_of(dsn))
        if prefetch:
            prefetch(dsn)
    from .cli import main as cli_main

    gc.freeze()
    gc.enable()
    cli_main()
