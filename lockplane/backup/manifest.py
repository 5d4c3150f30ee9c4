"""The manifest of a backup: what it holds and how to check it (``manifest.json``).

A manifest is written after every file of its backup is stored, so a backup without one
is incomplete and is never listed. Nothing in it is secret: the database is named with
its password redacted.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, Field

from ..errors import BadInput


def database_identity(database: str) -> str:
    """The database a (redacted) DSN names, as backups and their state are filed under:
    without ``require_auth``, which Lockplane adds itself to a URL a repository file
    names (config.py), so one database is one database whether it was named in
    lockplane.toml or on the command line, before that option existed or after."""
    base, sep, query = database.partition("?")
    if not sep:
        return database
    kept = [p for p in query.split("&") if p and p.split("=", 1)[0] != "require_auth"]
    return base + ("?" + "&".join(kept) if kept else "")

# 1: PostgreSQL checksums are row-hash-sum; 2: they are copy-crc32 (checksum_method);
# 3: a copy-crc32 table's rows are its own (an inheritance parent's without its
# children's, as its COPY text and checksum are), not count(*) with its children.
MANIFEST_VERSION = 3
OWN_ROWS_FROM = 3
MANIFEST_FILE = "manifest.json"
DATA_DIR = "data"


class TableStats(BaseModel):
    """Row count and checksum of one table's rows (the manifest's checksum_method).

    ``copy-crc32`` (PostgreSQL, format 2): ``crc32:<hex>:<length>`` of the table's COPY
    text followed by the manifest's ``copy_end_marker``, as pg_dump's data file holds it
    (the length modulo 2**32), under the manifest's ``copy_settings``; it depends on row
    order, which a restore keeps. ``row-hash-sum`` (SQLite; PostgreSQL format 1):
    ``sum(hashtextextended(row::text, 0))`` over the table (a numeric, kept as a decimal
    string), read with fixed text settings (UTC, ISO dates, hex bytea); SQLite: the
    same sum over BLAKE2b-64 hashes of each row's repr. Order-independent. Either way a
    missing, added or changed row changes it.
    """

    schema_name: str = Field(alias="schema")
    name: str
    rows: int
    checksum: str
    # copy-crc32: the table's data file in the dump (its rows can then be read back in
    # any order, e.g. to tell a table rewritten by CLUSTER from a changed one)
    data_file: str | None = None

    model_config = {"populate_by_name": True}

    @property
    def qualified(self) -> str:
        return f"{self.schema_name}.{self.name}" if self.schema_name else self.name


class StoredFile(BaseModel):
    """One file of the dump: path relative to the backup's data directory."""

    path: str
    size: int
    sha256: str


class HistoryPosition(BaseModel):
    """Where the database stood in lockplane.migrations when the backup was taken."""

    last_migration_id: int
    target_hash: str | None = None
    migrations_applied: int = 0


class Manifest(BaseModel):
    """Everything Lockplane knows about one backup."""

    format_version: int = MANIFEST_VERSION
    id: str
    created_at: str  # ISO 8601, UTC
    dialect: Literal["postgres", "sqlite"]
    database: str  # redacted DSN
    database_name: str
    server_version: str
    tool: str  # "pg_dump 15.20 -Fd -j 4" or "sqlite3 backup API"
    format: Literal["pg_dump-directory", "sqlite-file"]
    schema_hash: str
    history: HistoryPosition | None = None
    tables: list[TableStats] = Field(default_factory=list)
    files: list[StoredFile] = Field(default_factory=list)
    size_bytes: int = 0
    duration_s: float = 0.0
    jobs: int = 1
    reason: str | None = None  # e.g. "before apply of plan <id>"
    checksum_method: Literal["row-hash-sum", "copy-crc32"] = "row-hash-sum"
    copy_settings: dict[str, str] = Field(default_factory=dict)  # copy-crc32's text
    copy_end_marker: str = ""  # copy-crc32: what follows the rows in a data file

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json", by_alias=True), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes, where: str) -> Manifest:
        try:
            version = json.loads(text).get("format_version", 1)
        except (ValueError, AttributeError):
            version = 1  # not JSON or not an object: model_validate_json says what
        if isinstance(version, int) and version > MANIFEST_VERSION:
            raise BadInput(f"{where}: manifest format {version} was written by a newer "
                           f"Lockplane; this one reads formats 1 to {MANIFEST_VERSION}")
        try:
            return cls.model_validate_json(text)
        except ValueError as exc:
            first = str(exc).splitlines()[0] if str(exc) else "invalid"
            raise BadInput(f"{where}: not a Lockplane backup manifest ({first})") from None

    def table(self, qualified: str) -> TableStats | None:
        return next((t for t in self.tables if t.qualified == qualified), None)

    @property
    def total_rows(self) -> int:
        return sum(t.rows for t in self.tables)
