"""Load a Schema from any source: DSN, environment, schema JSON, .sql file or directory,
or SQLAlchemy MetaData given as ``module:attribute``.

SQL and SQLAlchemy sources (and JSON, when a server of the dialect is at hand) are
loaded the exact way: executed into a scratch database of the same dialect and
introspected. No hand-written SQL parser can match the server's own.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from .dialects import dialect_names, get_dialect
from .dsn import dialect_of, looks_like_dsn, redact
from .errors import BadInput
from .inputs import load_json, read_text
from .model import Schema

if TYPE_CHECKING:
    from .config import Environment

_SQLALCHEMY_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
DEFAULT_PG_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
# A server for scratch databases when none is configured (scratch_database_url).
SCRATCH_URL_ENV = "LOCKPLANE_SCRATCH_DATABASE_URL"
# SQLAlchemy metadata (module:attribute) is imported, which runs the module. The source
# can come from what a pull request changes (lockplane.toml's schema_path, .env.NAME,
# options a pipeline passes on): on 0717b2c one line, schema_path = "evil:metadata",
# ran a module of the pull request in the pipeline's process, with its credentials.
# Whoever runs Lockplane opts in through the process environment, which no file of
# the repository sets.
PYTHON_SCHEMA_ENV = "LOCKPLANE_ALLOW_PYTHON_SCHEMA"


@dataclass
class SourceContext:
    """What a loader may need besides the source itself."""

    dialect: str | None = None  # known dialect (from the other side, config, or flag)
    server_dsn: str | None = None  # a server where scratch databases may be created
    # Extensions a desired schema may install in its scratch database, beyond those the
    # server marks trusted (lockplane.toml: allowed_extensions).
    allowed_extensions: tuple[str, ...] = ()
    # A database whose server version a private scratch server ("private") should match.
    version_of: str | None = None
    canonicalize_json: bool = True


def source_context(sources: list[str], dialect: str | None, server: str | None,
                   envs: list[Environment | None] | None = None) -> SourceContext:
    """How to load ``sources``. Scratch databases (where schema files run) are made on:
    ``server`` (--shadow-db); an environment's scratch_database_url, then its
    shadow_database_url; LOCKPLANE_SCRATCH_DATABASE_URL; the server of a live source whose
    dialect makes scratch databases on a server (the target's own, where the file runs as
    a throwaway unprivileged role or user)."""
    known = _normalize_dialect(dialect, "--dialect") if dialect else None
    for src in sources:
        found = dialect_of_source(src)
        if found:
            if known and found != known:
                raise BadInput(f"{redact(src)} is {found} but the other side is {known}")
            known = found
    configured = [e for e in envs or [] if e is not None]
    live = next((s for s in sources if looks_like_dsn(s)
                 and get_dialect(dialect_of(s)).scratch_needs_server), None)
    server = (server
              or next((e.scratch_database_url for e in configured if e.scratch_database_url),
                      None)
              or next((e.shadow_database_url for e in configured if e.shadow_database_url),
                      None)
              or os.environ.get(SCRATCH_URL_ENV)
              or live)
    extensions = tuple(dict.fromkeys(x for e in configured for x in e.allowed_extensions))
    return SourceContext(dialect=known, server_dsn=server, allowed_extensions=extensions,
                         version_of=live)


def source_kind(src: str) -> str:
    if looks_like_dsn(src):
        return "dsn"
    p = Path(src)
    if p.is_dir():
        return "sql_dir"
    if p.suffix == ".json":
        return "json"
    if p.suffix == ".sql":
        return "sql"
    if not p.exists() and _SQLALCHEMY_REF.match(src):
        return "sqlalchemy"
    if not p.exists():
        raise BadInput(f"source not found: {src} (expected a database URL, a schema .json, "
                       "a .sql file or directory, or module:metadata)")
    raise BadInput(f"unsupported source {src}: expected .json, .sql, a directory, "
                   "a database URL or module:metadata")


def dialect_of_source(src: str) -> str | None:
    """The dialect a source declares by itself, if any."""
    kind = source_kind(src)
    if kind == "dsn":
        return dialect_of(src)
    if kind == "json":
        try:
            data = load_json(src, "schema JSON")
        except BadInput:  # load_json_schema reports it, naming the file
            return None
        if isinstance(data, dict) and isinstance(data.get("dialect"), str):
            return _normalize_dialect(data["dialect"], src)
    return None


def _normalize_dialect(name: str, where: str) -> str:
    aliases = {"postgres": "postgres", "postgresql": "postgres", "pg": "postgres",
               "sqlite": "sqlite", "sqlite3": "sqlite", "libsql": "sqlite", "mysql": "mysql",
               "mariadb": "mysql"}
    try:
        return aliases[name.lower()]
    except KeyError:
        raise BadInput(f"{where}: unknown dialect {name!r} (known: "
                       f"{', '.join(dialect_names())})") from None


def load_schema(src: str, ctx: SourceContext | None = None) -> Schema:
    ctx = ctx or SourceContext()
    kind = source_kind(src)
    if kind == "dsn":
        with get_dialect(dialect_of(src)).connect(src) as db:
            return db.introspect()
    if kind == "json":
        from .fill import check_schema_fills

        schema = check_schema_fills(load_json_schema(src, ctx.dialect), src)
        if ctx.canonicalize_json:
            return canonicalize(schema, ctx, where=src)
        return schema
    dialect = ctx.dialect or "postgres"
    if kind == "sqlalchemy":
        return _load_sqlalchemy(src, dialect, ctx)
    files = sql_files(src)
    scripts = [(str(f), _script_text(f)) for f in files]
    from .fill import apply_fill_annotations, read_annotations

    fills = [dec for f, text in scripts
             for dec in read_annotations(Path(f), text, dialect)]
    schema = get_dialect(dialect).load_untrusted(
        scripts, _scratch_server(dialect, ctx), allowed_extensions=ctx.allowed_extensions,
        version_of=ctx.version_of)
    # Declared renames and fills live in comments the server never sees.
    from .multiphase.annotations import apply_rename_annotations

    schema = apply_rename_annotations(schema, files)
    return apply_fill_annotations(schema, fills, get_dialect(dialect).default_schema)


def sql_files(src: str) -> list[Path]:
    """The schema's .sql files: ``src`` itself, or a directory's (any depth, in name
    order). None may be reached through a link out of its directory (inputs.no_link_out):
    ``src`` if it is one, out of the directory holding it; a file of a directory, out of
    that directory."""
    from .inputs import no_link_out

    p = Path(src)
    if p.is_symlink():
        no_link_out(p, p.absolute().parent, src)
    if p.is_file():
        return [p]
    files = sorted(no_link_out(f, p, str(f)) for f in p.rglob("*.sql") if f.is_file())
    if not files:
        raise BadInput(f"no .sql files in directory {src}")
    return files


def load_json_schema(path: str, dialect: str | None = None) -> Schema:
    data: Any = load_json(path, "schema JSON")
    if not isinstance(data, dict):
        raise BadInput(f"{path}: a schema is a JSON object with a 'tables' list")
    data.pop("$schema", None)
    if "dialect" in data:
        data["dialect"] = _normalize_dialect(str(data["dialect"]), path)
    elif dialect:
        data["dialect"] = dialect
    try:
        return Schema.model_validate(data)
    except ValidationError as exc:
        raise BadInput(f"{path}: {_validation_message(exc, data)}") from None


def _validation_message(exc: ValidationError, data: Any) -> str:
    err = exc.errors()[0]
    loc = list(err["loc"])
    # Name the object, not just its index: tables[3] -> tables[3] (orders)
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(item, int) and isinstance(node, list) and item < len(node):
            node = node[item]
            label = f"[{item}]"
            if isinstance(node, dict) and isinstance(node.get("name"), str):
                label += f" ({node['name']})"
            parts.append(label)
        else:
            node = node.get(item) if isinstance(node, dict) else None
            parts.append(f".{item}" if parts else str(item))
    where = "".join(parts) or "top level"
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown field"
    return f"{where}: {msg}"


def canonicalize(schema: Schema, ctx: SourceContext, where: str) -> Schema:
    """The schema as the server itself renders it (types, defaults, expressions).

    Hand-written JSON says ``varchar(20)`` or ``'x'``; the server says
    ``character varying(20)`` and ``'x'::text``. Materializing into a scratch database and
    reading it back makes re-planning after apply come out empty, and rejects types and
    expressions the server does not know, naming the file. The JSON is as untrusted as a
    SQL file (its expressions and function bodies become SQL), so its statements go
    through the same sandbox.
    """
    from .plan import build_plan

    plan = build_plan(Schema(dialect=schema.dialect), schema, lock_safe=False,
                      lock_timeout_ms=None)
    scripts = [(f"{where}: {step.description}", ";\n".join(step.sql)) for step in plan.steps]
    try:
        loaded = get_dialect(schema.dialect).load_untrusted(
            scripts, _scratch_server(schema.dialect, ctx),
            allowed_extensions=ctx.allowed_extensions, lines=False, version_of=ctx.version_of)
    except BadInput as exc:
        if exc.message.startswith(f"{where}:") \
                or not get_dialect(schema.dialect).scratch_needs_server \
                or ctx.server_dsn is not None:
            raise
        # No server of the dialect at hand: use the JSON as written.
        return schema
    return _carry_renames(schema, loaded)


def _carry_renames(declared: Schema, loaded: Schema) -> Schema:
    """Declared renames are intent, not state: the server cannot give them back."""
    for t in declared.tables:
        live = loaded.table(t.schema_ or "", t.name)
        if live is None:
            continue
        live.renamed_from = t.renamed_from
        for c in t.columns:
            lc = live.column(c.name)
            if lc is not None:
                lc.renamed_from = c.renamed_from
    enums = {(e.schema_ or "", e.name): e for e in loaded.enums}
    for e in declared.enums:
        le = enums.get((e.schema_ or "", e.name))
        if le is not None:
            le.values_renamed_from = dict(e.values_renamed_from)
    from .fill import carry_fills

    carry_fills(declared, loaded)
    return loaded


def _scratch_server(dialect: str, ctx: SourceContext) -> str | None:
    """Where scratch databases for ``dialect`` are made (None: the dialect needs none)."""
    if not get_dialect(dialect).scratch_needs_server:
        return None
    for server in (ctx.server_dsn, os.environ.get(SCRATCH_URL_ENV)):
        # A server of another dialect cannot hold this one's scratch databases.
        if server and not (looks_like_dsn(server) and dialect_of(server) != dialect):
            return server
    return None  # the dialect's own default server


def _script_text(path: Path) -> str:
    """A schema file's text, psql meta-commands that pg_dump writes blanked out."""
    return _strip_psql_meta(path, read_text(path, "schema file"))


# psql meta-commands that pg_dump writes and that change nothing in the schema.
_HARMLESS_PSQL = ("\\restrict", "\\unrestrict", "\\connect", "\\c ", "\\set ", "\\echo")


def _strip_psql_meta(path: Path, text: str) -> str:
    """Blank out psql meta-command lines (keeping line numbers); refuse ones that matter."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.startswith("\\"):
            if line.startswith(_HARMLESS_PSQL) or line.strip() == "\\.":
                lines[i] = ""
            else:
                cmd = line.split()[0]
                raise BadInput(f"{path}:{i + 1}: psql meta-command {cmd} is not SQL; "
                               "Lockplane runs schema files on the server, not through psql")
    return "\n".join(lines)


def _load_sqlalchemy(ref: str, dialect: str, ctx: SourceContext) -> Schema:
    from sqlalchemy import MetaData

    module_name, _, attr_path = ref.partition(":")
    if os.environ.get(PYTHON_SCHEMA_ENV) != "1":
        raise BadInput(f"{ref} is Python code (SQLAlchemy metadata): importing it would run "
                       "it in this process, with its credentials; a schema source can come "
                       f"from a pull request, so Python schemas load only where "
                       f"{PYTHON_SCHEMA_ENV}=1 is set in the environment")
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure is the user's module
        raise BadInput(f"cannot import {module_name} for {ref}: {exc}") from None
    for part in attr_path.split("."):
        if not hasattr(obj, part):
            raise BadInput(f"{ref}: {module_name} has no attribute {attr_path}")
        obj = getattr(obj, part)
    metadata = getattr(obj, "metadata", obj)  # accept a declarative Base too
    if not isinstance(metadata, MetaData):
        raise BadInput(f"{ref} is not a SQLAlchemy MetaData (or declarative base)")
    # The module is the user's own Python code and runs as such (as Alembic's env.py
    # does); what it emits is not sandboxed.
    d = get_dialect(dialect)
    try:
        return d.schema_from_sqlalchemy(lambda engine: _create_all(metadata, engine, ref),
                                        _scratch_server(dialect, ctx))
    except NotImplementedError:
        raise BadInput(f"{ref}: SQLAlchemy sources are not supported on {dialect} "
                       "yet") from None


def _create_all(metadata: Any, engine: Any, ref: str) -> None:
    from sqlalchemy.exc import SQLAlchemyError

    try:
        metadata.create_all(engine)
    except SQLAlchemyError as exc:
        reason = getattr(exc, "orig", None) or exc
        raise BadInput(f"{ref}: {redact(str(reason).splitlines()[0])}") from None
    finally:
        engine.dispose()
