"""Environments from ``lockplane.toml`` with secrets from ``.env.NAME`` (as in the original).

    [environments.production]
    database_url = "postgresql://app@db/app"     # or DATABASE_URL in .env.production
    shadow_database_url = "postgresql://app@db/app_shadow"
    schema_path = "schema/"
    safety = "strict"
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .errors import BadInput

CONFIG_FILE = "lockplane.toml"
SAFETY_LEVELS = ("strict", "moderate", "permissive")
_PRODUCTION_LIKE = re.compile(r"(?i)^(prod|production|live)([-_].*)?$")


@dataclass
class Environment:
    name: str
    database_url: str | None = None
    shadow_database_url: str | None = None
    schema_path: str | None = None
    safety: str | None = None

    @property
    def default_safety(self) -> str:
        if self.safety:
            return self.safety
        return "strict" if _PRODUCTION_LIKE.match(self.name) else "moderate"


def _read_dotenv(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for lineno, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):]
        if "=" not in line:
            raise BadInput(f"{path}:{lineno}: expected KEY=value")
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def load_config(directory: str | Path = ".") -> dict[str, Environment]:
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{path}: {exc}") from None
    envs: dict[str, Environment] = {}
    allowed = {"database_url", "shadow_database_url", "schema_path", "safety", "description"}
    for name, table in (data.get("environments") or {}).items():
        if not isinstance(table, dict):
            raise BadInput(f"{path}: [environments.{name}] must be a table")
        unknown = set(table) - allowed
        if unknown:
            raise BadInput(f"{path}: [environments.{name}] has unknown key(s): "
                           f"{', '.join(sorted(unknown))}")
        safety = table.get("safety")
        if safety is not None and safety not in SAFETY_LEVELS:
            raise BadInput(f"{path}: [environments.{name}] safety must be one of "
                           f"{', '.join(SAFETY_LEVELS)}")
        envs[name] = Environment(name=name, database_url=table.get("database_url"),
                                 shadow_database_url=table.get("shadow_database_url"),
                                 schema_path=table.get("schema_path"), safety=safety)
    return envs


def get_environment(name: str, directory: str | Path = ".") -> Environment:
    """The named environment, with ``.env.NAME`` (DATABASE_URL, SHADOW_DATABASE_URL) applied."""
    envs = load_config(directory)
    dotenv = Path(directory) / f".env.{name}"
    if name not in envs and not dotenv.is_file():
        known = ", ".join(sorted(envs)) or "none"
        raise BadInput(f"unknown environment {name!r} (in {CONFIG_FILE}: {known})")
    env = envs.get(name) or Environment(name=name)
    if dotenv.is_file():
        values = _read_dotenv(dotenv)
        env.database_url = values.get("DATABASE_URL", env.database_url)
        env.shadow_database_url = values.get("SHADOW_DATABASE_URL", env.shadow_database_url)
        env.schema_path = values.get("SCHEMA_PATH", env.schema_path)
    # Process environment wins, so CI can inject secrets without files.
    prefix = f"LOCKPLANE_{re.sub(r'[^A-Za-z0-9]', '_', name).upper()}_"
    env.database_url = os.environ.get(prefix + "DATABASE_URL", env.database_url)
    env.shadow_database_url = os.environ.get(prefix + "SHADOW_DATABASE_URL",
                                             env.shadow_database_url)
    return env
