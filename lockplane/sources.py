"""Load a Schema from any source: DSN, environment, schema JSON, .sql file or directory,
or SQLAlchemy MetaData given as ``module:attribute``.

SQL and SQLAlchemy sources (and JSON, when a server of the dialect is at hand) are
loaded the exact way: executed into a scratch database of the same dialect and
introspected. No hand-written SQL parser can match the server's own.
"""

from __future__ import annotations

import importlib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .dialects import get_dialect
from .dialects.base import Database
from .dsn import dialect_of, looks_like_dsn, redact
from .errors import BadInput, LockplaneError
from .model import Schema

_SQLALCHEMY_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
DEFAULT_PG_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass
class SourceContext:
    """What a loader may need besides the source itself."""

    dialect: str | None = None  # known dialect (from the other side, config, or flag)
    server_dsn: str | None = None  # a server where scratch databases may be created
    canonicalize_json: bool = True


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
            data = json.loads(Path(src).read_text())
        except (OSError, json.JSONDecodeError):
            return None
        if isinstance(data, dict) and isinstance(data.get("dialect"), str):
            return _normalize_dialect(data["dialect"], src)
    return None


def _normalize_dialect(name: str, where: str) -> str:
    aliases = {"postgres": "postgres", "postgresql": "postgres", "pg": "postgres",
               "sqlite": "sqlite", "sqlite3": "sqlite", "libsql": "sqlite", "mysql": "mysql"}
    try:
        return aliases[name.lower()]
    except KeyError:
        raise BadInput(f"{where}: unknown dialect {name!r}") from None


def load_schema(src: str, ctx: SourceContext | None = None) -> Schema:
    ctx = ctx or SourceContext()
    kind = source_kind(src)
    if kind == "dsn":
        with get_dialect(dialect_of(src)).connect(src) as db:
            return db.introspect()
    if kind == "json":
        schema = load_json_schema(src, ctx.dialect)
        if ctx.canonicalize_json:
            return canonicalize(schema, ctx, where=src)
        return schema
    dialect = ctx.dialect or "postgres"
    if kind == "sqlalchemy":
        return _load_sqlalchemy(src, dialect, ctx)
    files = sql_files(src)
    with _scratch(dialect, ctx) as db:
        for f in files:
            run_sql_file(db, f)
        schema = db.introspect()
    # Declared renames live in comments the server never sees.
    from .multiphase.annotations import apply_rename_annotations

    return apply_rename_annotations(schema, files)


def sql_files(src: str) -> list[Path]:
    p = Path(src)
    if p.is_file():
        return [p]
    files = sorted(f for f in p.rglob("*.sql") if f.is_file())
    if not files:
        raise BadInput(f"no .sql files in directory {src}")
    return files


def load_json_schema(path: str, dialect: str | None = None) -> Schema:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror}") from None
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
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
    expressions the server does not know, naming the file.
    """
    from .execute import materialize

    if schema.dialect == "mysql":
        return schema
    try:
        with _scratch(schema.dialect, ctx) as db:
            try:
                materialize(db, schema)
            except LockplaneError as exc:
                raise BadInput(f"{where}: {exc.message}") from None
            return _carry_renames(schema, db.introspect())
    except BadInput as exc:
        if exc.message.startswith(f"{where}:") or schema.dialect != "postgres" \
                or ctx.server_dsn is not None:
            raise
        # No PostgreSQL server at hand: use the JSON as written.
        return schema


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
    return loaded


def _scratch(dialect: str, ctx: SourceContext) -> Any:
    d = get_dialect(dialect)
    if dialect == "postgres":
        return d.scratch(ctx.server_dsn or DEFAULT_PG_SERVER)
    return d.scratch()


def run_sql_file(db: Database, path: Path) -> None:
    """Execute a schema file; a failing statement is bad input reported as file:line."""
    text = path.read_text()
    if db.dialect.name == "postgres":
        _run_pg_script(db, path, text)
    else:
        _run_sqlite_script(db, path, text)


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, max(offset, 0)) + 1


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


def _run_pg_script(db: Database, path: Path, text: str) -> None:
    import psycopg

    text = _strip_psql_meta(path, text)
    try:
        try:
            # One transaction: a thousand CREATEs commit (and fsync) once, not a thousand
            # times. Statements that refuse a transaction block get a second, plain run.
            with db.transaction():
                db.execute(text)
        except psycopg.errors.ActiveSqlTransaction:
            db.execute(text)
    except psycopg.Error as exc:
        diag = exc.diag
        pos = int(diag.statement_position) if diag.statement_position else None
        line = f":{_line_of(text, pos - 1)}" if pos else ""
        msg = diag.message_primary or str(exc).splitlines()[0]
        raise BadInput(f"{path}{line}: {redact(msg)}") from None


def _run_sqlite_script(db: Database, path: Path, text: str) -> None:
    import sqlite3

    buf: list[str] = []
    start = 1
    for lineno, line in enumerate(text.splitlines(keepends=True), 1):
        if not buf:
            start = lineno
            if not line.strip():
                continue
        buf.append(line)
        stmt = "".join(buf)
        if sqlite3.complete_statement(stmt):
            buf = []
            try:
                db.conn.execute(stmt)  # type: ignore[attr-defined]
            except sqlite3.Error as exc:
                raise BadInput(f"{path}:{start}: {exc}") from None
    rest = "".join(buf).strip()
    if rest and not all(x.strip().startswith("--") for x in rest.splitlines() if x.strip()):
        try:
            db.conn.execute(rest)  # type: ignore[attr-defined]
        except sqlite3.Error as exc:
            raise BadInput(f"{path}:{start}: {exc}") from None


def _load_sqlalchemy(ref: str, dialect: str, ctx: SourceContext) -> Schema:
    from sqlalchemy import MetaData, create_engine

    module_name, _, attr_path = ref.partition(":")
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
    if dialect == "sqlite":
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "metadata.db"
            engine = create_engine(f"sqlite:///{path}")
            _create_all(metadata, engine, ref)
            with get_dialect("sqlite").connect(f"sqlite:///{path}") as db:
                return db.introspect()
    with _scratch(dialect, ctx) as db:
        import psycopg

        dsn = db.dsn  # type: ignore[attr-defined]
        engine = create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(dsn))
        _create_all(metadata, engine, ref)
        return db.introspect()


def _create_all(metadata: Any, engine: Any, ref: str) -> None:
    from sqlalchemy.exc import SQLAlchemyError

    try:
        metadata.create_all(engine)
    except SQLAlchemyError as exc:
        reason = getattr(exc, "orig", None) or exc
        raise BadInput(f"{ref}: {redact(str(reason).splitlines()[0])}") from None
    finally:
        engine.dispose()
