"""Same rows in another order? An order-independent check of tables whose copy-crc32
figure differs from the backup's while their row counts are equal.

copy-crc32 (lockplane/dialects/postgres/checksums.py) is the CRC of a table's COPY text, so it
depends on row order: ``VACUUM FULL``, ``CLUSTER`` or a ``pg_repack`` rewrite change it
although no row changed. For such a table the backup's data file (its COPY text as
pg_dump wrote it, fetched and checked against the manifest's sha256) and the live
table's ``COPY ... TO STDOUT`` (under the manifest's text settings, the same columns)
are each reduced to an order-independent digest: the number of lines and the sum,
modulo 2**128, of a keyed BLAKE2b-128 hash of every line (the key is random per run, so
no crafted rows can cancel out). Equal digests: the same multiset of rows. Nothing is
restored; each side is read once, tables in parallel on ``jobs`` sessions.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import secrets
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

import psycopg
from psycopg import sql as pgsql

from ...backup.core import BackupCorrupt, _sha256
from ...backup.manifest import DATA_DIR, Manifest, TableStats
from ...backup.storage import Storage
from . import checksums

_MOD = 1 << 128


class _Digest:
    """Lines fed in chunks: their count and the sum of their keyed hashes."""

    def __init__(self, key: bytes) -> None:
        self.key, self.rows, self.total, self.tail = key, 0, 0, b""

    def feed(self, chunk: bytes) -> None:
        lines = (self.tail + chunk).split(b"\n")
        self.tail = lines.pop()
        key = self.key
        total = self.total
        for line in lines:
            total += int.from_bytes(hashlib.blake2b(line, digest_size=16, key=key).digest(),
                                    "big")
        self.total = total % _MOD
        self.rows += len(lines)

    def result(self) -> tuple[int, int]:
        if self.tail:  # a last line without its newline: not COPY text as expected
            self.feed(b"\n")
        return self.rows, self.total


def _chunks(f: BinaryIO) -> Iterator[bytes]:
    while chunk := f.read(1 << 20):
        yield chunk


def _backup_digest(path: Path, marker: bytes, key: bytes) -> tuple[int, int]:
    """The digest of a data file's rows (pg_dump's end-of-data marker left out)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    d = _Digest(key)
    keep = len(marker)
    held = b""
    with opener(path, "rb") as f:  # type: ignore[operator]
        for chunk in _chunks(f):
            data = held + chunk
            if len(data) > keep:
                d.feed(data[:len(data) - keep])
                held = data[len(data) - keep:]
            else:
                held = data
    if held != marker:
        raise ValueError("the data file does not end with the manifest's end marker")
    return d.result()


def _live_digest(conn: psycopg.Connection, schema: str, table: str,
                 key: bytes) -> tuple[int, int]:
    oid = conn.execute("SELECT %s::regclass::oid::bigint",
                       (pgsql.Identifier(schema, table).as_string(conn),)).fetchone()
    assert oid is not None
    d = _Digest(key)
    with conn.cursor().copy(checksums._copy_target(conn, int(oid[0]), schema, table)) as cp:
        for data in cp:
            d.feed(bytes(data))
    return d.result()


def _verified(local: Path, manifest: Manifest, names: Iterable[str]) -> None:
    files = {f.path: f for f in manifest.files}
    for name in names:
        f = files.get(name)
        p = local / name
        if f is None or not p.is_file() or p.stat().st_size != f.size or _sha256(p) != f.sha256:
            raise BackupCorrupt(f"backup {manifest.id} is corrupt: {name} does not match "
                                "its manifest")


def same_rows(storage: Storage, manifest: Manifest, live_dsn: str, tables: list[str],
              jobs: int = 2) -> set[str]:
    """Of ``tables`` (qualified names), those whose live rows are the backup's rows,
    whatever their order. Tables the check cannot read (no data file recorded, a table
    gone) are left out: they stay 'changed'."""
    if manifest.checksum_method != checksums.COPY_CRC32 or not tables:
        return set()
    stats: dict[str, TableStats] = {t.qualified: t for t in manifest.tables}
    todo = [stats[t] for t in tables if t in stats and stats[t].data_file]
    if not todo:
        return set()
    from .backup import pg_connect

    key = secrets.token_bytes(16)
    marker = manifest.copy_end_marker.encode()
    names = [t.data_file for t in todo if t.data_file]
    same: set[str] = set()
    with storage.fetched(f"{manifest.id}/{DATA_DIR}", names, jobs=max(1, jobs)) as local:
        _verified(local, manifest, names)

        def one(t: TableStats) -> str | None:
            try:
                with contextlib.closing(pg_connect(
                        live_dsn, autocommit=True, application_name="lockplane recover")) as conn:
                    for name, value in {**manifest.copy_settings, "statement_timeout": "0",
                                        "default_transaction_read_only": "on"}.items():
                        conn.execute("SELECT set_config(%s, %s, false)", (name, value))
                    live = _live_digest(conn, t.schema_name, t.name, key)
            except psycopg.Error:
                return None
            try:
                backup = _backup_digest(local / str(t.data_file), marker, key)
            except (OSError, ValueError, EOFError):
                return None
            return t.qualified if backup == live and backup[0] == t.rows else None

        with ThreadPoolExecutor(max(1, min(jobs, len(todo)))) as pool:
            for found in pool.map(one, todo):
                if found:
                    same.add(found)
    return same
