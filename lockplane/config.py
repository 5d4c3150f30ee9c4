"""Environments from ``lockplane.toml`` with secrets from ``.env.NAME`` (as in the original).

    [environments.production]
    database_url = "postgresql://app@db/app"     # or DATABASE_URL in .env.production
    shadow_database_url = "postgresql://app@db/app_shadow"
    scratch_database_url = "postgresql://lockplane@scratch-db/postgres"
    allowed_extensions = ["postgis"]
    schema_path = "schema/"
    ignore = ["public.users.emergency_*"]   # drift accepted here (lockplane.drift.ignore)
    safety = "strict"
    archive_dropped = false   # plans keep no copy of dropped rows (plan --no-archive)

``shadow_database_url``: where the target's rows go for shadow checks and backfill
trials; given in a file (this one, ``.env.NAME``), on the server of ``database_url`` only
(see _shadow_beside_target). ``scratch_database_url``: the server where desired schemas
(SQL and JSON files, which arrive in pull requests) are loaded, away from the target's
credentials;
``allowed_extensions``: extensions such files may install there beyond those the server
marks trusted; ``ignore``: ``lockplane drift check`` patterns of drift this environment
accepts (see lockplane.drift.ignore); ``archive_dropped``: whether plans against it copy
dropped tables' rows and columns' values for a rollback (default true; ``plan
--archive``/``--no-archive`` decide over it); ``safety``: this environment's level, which
this file may make stricter than the default but not looser (see default_safety).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import BadInput
from .inputs import parse_toml, read_text

CONFIG_FILE = "lockplane.toml"
SAFETY_LEVELS = ("strict", "moderate", "permissive")
BACKUP_BEFORE = ("always", "dangerous", "never")
_PRODUCTION_LIKE = re.compile(r"(?i)^(prod|production|live)([-_].*)?$")


@dataclass
class Environment:
    name: str
    database_url: str | None = None
    shadow_database_url: str | None = None
    schema_path: str | None = None
    safety: str | None = None
    scratch_database_url: str | None = None
    allowed_extensions: tuple[str, ...] = ()
    backup_before: str = "never"
    backup_storage: str | None = None
    ignore: tuple[str, ...] = ()  # drift patterns accepted (lockplane.drift.ignore)
    archive_dropped: bool = True  # plans archive dropped rows and values for a rollback
    safety_from_pipeline: bool = False  # safety came from LOCKPLANE_<ENV>_SAFETY

    @property
    def default_safety(self) -> str:
        """The level when no --safety is given: ``safety`` if set, else strict for a
        production-like name and moderate otherwise. lockplane.toml is a file of the
        repository, which a pull request can change: from there the level may only be
        tightened; a looser one is named where the pipeline runs Lockplane."""
        floor = "strict" if _PRODUCTION_LIKE.match(self.name) else "moderate"
        level = self.safety or floor
        if self.safety_from_pipeline or SAFETY_LEVELS.index(level) <= SAFETY_LEVELS.index(floor):
            return level
        raise BadInput(
            f"environment {self.name!r}: {CONFIG_FILE} sets safety = {level!r}, looser than "
            f"its default {floor!r}, and a file of the repository may tighten the level, not "
            f"loosen it: pass --safety {level} or set {_env_prefix(self.name)}SAFETY where "
            f"the pipeline runs Lockplane")


def _env_prefix(name: str) -> str:
    """Where the process environment names an environment's settings."""
    return f"LOCKPLANE_{re.sub(r'[^A-Za-z0-9]', '_', name).upper()}_"


def _read_dotenv(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for lineno, raw in enumerate(read_text(path, "dotenv file").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):]
        if "=" not in line:
            raise BadInput(f"{path}:{lineno}: expected KEY=value")
        key, value = line.split("=", 1)
        if not key.strip():
            raise BadInput(f"{path}:{lineno}: expected KEY=value (no key before '=')")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def load_config(directory: str | Path = ".") -> dict[str, Environment]:
    path = Path(directory) / CONFIG_FILE
    if not path.exists():
        return {}
    data = parse_toml(read_text(path, CONFIG_FILE), str(path))
    envs: dict[str, Environment] = {}
    strings = {"database_url", "shadow_database_url", "scratch_database_url", "schema_path",
               "safety", "description", "backup_before", "backup_storage"}
    allowed = strings | {"allowed_extensions", "ignore", "archive_dropped"}
    environments = data.get("environments") or {}
    if not isinstance(environments, dict):
        raise BadInput(f"{path}: environments must be a table ([environments.NAME]), "
                       f"not {_toml_type(environments)}")
    for name, table in environments.items():
        if not isinstance(table, dict):
            raise BadInput(f"{path}: [environments.{name}] must be a table")
        unknown = set(table) - allowed
        if unknown:
            raise BadInput(f"{path}: [environments.{name}] has unknown key(s): "
                           f"{', '.join(sorted(unknown))}")
        for key in sorted(strings & set(table)):
            if not isinstance(table[key], str):
                # The value itself is not shown: it may be half a secret.
                raise BadInput(f"{path}: [environments.{name}] {key} must be a string, not "
                               f"{_toml_type(table[key])}")
        extensions = table.get("allowed_extensions", [])
        if not isinstance(extensions, list) or not all(isinstance(e, str) for e in extensions):
            raise BadInput(f"{path}: [environments.{name}] allowed_extensions must be an array "
                           "of extension names")
        ignore = table.get("ignore", [])
        if not isinstance(ignore, list) or not all(isinstance(p, str) for p in ignore):
            raise BadInput(f"{path}: [environments.{name}] ignore must be an array of drift "
                           "patterns (strings)")
        safety = table.get("safety")
        if safety is not None and safety not in SAFETY_LEVELS:
            raise BadInput(f"{path}: [environments.{name}] safety must be one of "
                           f"{', '.join(SAFETY_LEVELS)}")
        archive_dropped = table.get("archive_dropped", True)
        if not isinstance(archive_dropped, bool):
            raise BadInput(f"{path}: [environments.{name}] archive_dropped must be true or "
                           f"false, not {_toml_type(archive_dropped)}")
        backup_before = table.get("backup_before", "never")
        if backup_before not in BACKUP_BEFORE:
            raise BadInput(f"{path}: [environments.{name}] backup_before must be one of "
                           f"{', '.join(BACKUP_BEFORE)}")
        envs[name] = Environment(name=name, database_url=table.get("database_url"),
                                 shadow_database_url=table.get("shadow_database_url"),
                                 schema_path=table.get("schema_path"), safety=safety,
                                 scratch_database_url=table.get("scratch_database_url"),
                                 allowed_extensions=tuple(extensions),
                                 backup_before=backup_before,
                                 backup_storage=table.get("backup_storage"),
                                 ignore=tuple(ignore), archive_dropped=archive_dropped)
    return envs


def _toml_type(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a float", str: "a string",
             list: "an array", dict: "a table"}
    return names.get(type(value), "a date or time")


def get_environment(name: str, directory: str | Path = ".") -> Environment:
    """The named environment, with ``.env.NAME`` (DATABASE_URL, SHADOW_DATABASE_URL) applied."""
    envs = load_config(directory)
    dotenv = Path(directory) / f".env.{name}"
    if name not in envs and not dotenv.exists():
        known = ", ".join(sorted(envs)) or "none"
        raise BadInput(f"unknown environment {name!r} (in {CONFIG_FILE}: {known})")
    env = envs.get(name) or Environment(name=name)
    if dotenv.exists():  # a directory or an unreadable file is bad input
        values = _read_dotenv(dotenv)
        env.database_url = values.get("DATABASE_URL", env.database_url)
        env.shadow_database_url = values.get("SHADOW_DATABASE_URL", env.shadow_database_url)
        env.schema_path = values.get("SCHEMA_PATH", env.schema_path)
        env.scratch_database_url = values.get("SCRATCH_DATABASE_URL",
                                              env.scratch_database_url)
    # Process environment wins, so CI can inject secrets without files.
    prefix = _env_prefix(name)
    target_from_file = prefix + "DATABASE_URL" not in os.environ
    env.database_url = os.environ.get(prefix + "DATABASE_URL", env.database_url)
    env.backup_storage = os.environ.get(prefix + "BACKUP_STORAGE", env.backup_storage)
    from_file = prefix + "SHADOW_DATABASE_URL" not in os.environ
    env.shadow_database_url = os.environ.get(prefix + "SHADOW_DATABASE_URL",
                                             env.shadow_database_url)
    scratch_from_file = prefix + "SCRATCH_DATABASE_URL" not in os.environ
    env.scratch_database_url = os.environ.get(prefix + "SCRATCH_DATABASE_URL",
                                              env.scratch_database_url)
    if from_file:
        _shadow_beside_target(env, prefix)
    if scratch_from_file and env.scratch_database_url:
        env.scratch_database_url = _no_ambient_password(env.scratch_database_url)
    if target_from_file and env.database_url:
        # The same for the target itself: a pull request that points database_url at its
        # own server would receive PGPASSWORD (on ce33a04, a fake server did). A shadow
        # named by a file is on the target's server (_shadow_beside_target): the same.
        env.database_url = _no_ambient_password(env.database_url)
        if from_file and env.shadow_database_url:
            env.shadow_database_url = _no_ambient_password(env.shadow_database_url)
    if env.schema_path:  # (only files name it: lockplane.toml, .env.NAME)
        env.schema_path = _repository_schema_path(env, Path(directory))
    if (safety := os.environ.get(prefix + "SAFETY")) is not None:
        if safety not in SAFETY_LEVELS:
            raise BadInput(f"{prefix}SAFETY must be one of {', '.join(SAFETY_LEVELS)}, "
                           f"not {safety!r}")
        env.safety, env.safety_from_pipeline = safety, True
    return env


def _no_ambient_password(url: str) -> str:
    """A server named by a file of the repository (lockplane.toml, .env.NAME): scratch,
    target or shadow,
    which a pull request can change, may be anyone's. A URL without a password lets libpq
    answer the server's password request with the process's own: PGPASSWORD, or a
    ~/.pgpass line for '*'. On 3a248e7 a lockplane.toml naming a server that asked for a
    cleartext password received the pipeline's PGPASSWORD. So such a URL gets
    require_auth=!password,!md5: the server may use SCRAM (which never shows the password
    to it), trust, certificates or GSSAPI, not ask for the password itself or its MD5. A
    URL with its own password, a name ('private'), another dialect or a URL already
    saying require_auth is left as it is; a server that asks for md5 is named where the
    pipeline runs Lockplane instead (--shadow-db, LOCKPLANE_<ENV>_SCRATCH_DATABASE_URL)."""
    from urllib.parse import parse_qs, urlsplit

    from .dsn import NO_AMBIENT_PASSWORD, holds_password

    try:
        parts = urlsplit(url)
    except ValueError:  # (malformed: said, redacted, where the URL is used)
        return url
    if parts.scheme.split("+", 1)[0].lower() not in ("postgres", "postgresql") \
            or holds_password(url) or "require_auth" in parse_qs(parts.query):
        return url
    return url + ("&" if parts.query else "?") + NO_AMBIENT_PASSWORD


def _repository_schema_path(env: Environment, directory: Path) -> str:
    """``schema_path`` as a file of the repository may name it: a database URL gets no
    ambient password (it is read like a target), and a path must lead to a file or
    directory inside the project directory: a syntax error quotes the first word of
    what it reads, and ``schema_path = "/home/ci/.pgpass"`` is one line of a pull
    request. (``module:attribute`` is guarded by LOCKPLANE_ALLOW_PYTHON_SCHEMA.)"""
    from .dsn import looks_like_dsn

    path = env.schema_path or ""
    if looks_like_dsn(path):
        return _no_ambient_password(path)
    if ":" in path and not os.path.exists(os.path.join(directory, path)):
        return path  # module:attribute (or a path that does not exist: said where used)
    real, base = os.path.realpath(os.path.join(directory, path)), os.path.realpath(directory)
    if real != base and not real.startswith(base.rstrip(os.sep) + os.sep):
        raise BadInput(f"environment {env.name!r}: schema_path leads outside the project "
                       f"directory ({directory}), and a file of the repository may name "
                       f"its own files only: pass the schema with --to or --schema")
    return path


def _shadow_beside_target(env: Environment, prefix: str) -> None:
    """A shadow database receives the target's rows (apply's shadow check copies up to
    1,000 per table, a backfill's trial 5,000, a backup is restored there). Named by a
    file of the repository (lockplane.toml, .env.NAME), which a pull request can change,
    it must be on the target's own server: another server is named where the pipeline
    runs Lockplane (--shadow-db, or the process environment)."""
    from .dialects import get_dialect
    from .dsn import dialect_of, looks_like_dsn, redact

    shadow, target = env.shadow_database_url, env.database_url
    if not shadow or not target or not looks_like_dsn(shadow) or not looks_like_dsn(target):
        return
    try:
        kind = dialect_of(target)
        same = dialect_of(shadow) == kind and get_dialect(kind).same_server(shadow, target)
    except BadInput:
        return  # (an unknown scheme is said where the URL is used)
    if not same:
        raise BadInput(
            f"environment {env.name!r}: shadow_database_url {redact(shadow)} is not on the "
            f"server of its database_url, and the target's rows are copied there; a file of "
            f"the repository cannot send them elsewhere: give that server with --shadow-db "
            f"or {prefix}SHADOW_DATABASE_URL in the process environment")
