"""Where backups live: a local directory or an S3 bucket/prefix, behind one interface.

Layout under a storage root (both kinds)::

    <root>/<backup id>/manifest.json      written last: a backup without one is incomplete
    <root>/<backup id>/data/...           the dump (pg_dump -Fd files, or database.sqlite)
    <root>/_state/<database slug>.json    last good backup and last validation (see state.py)

Keys are '/'-separated paths relative to the root. A storage never holds a password: the
manifest names the database redacted, and S3 credentials come from boto3's own chain
(environment, profile, instance role) or from the BackupStorage Prefect block.
"""

from __future__ import annotations

import os
import shutil
from abc import ABC, abstractmethod
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import BadInput

DEFAULT_STORAGE = ".lockplane/backups"
STORAGE_ENV = "LOCKPLANE_BACKUP_STORAGE"


class StorageError(BadInput):
    """Storage unreachable or a key missing: bad input (exit 2), one line."""


def _check_key(key: str) -> str:
    parts = PurePosixPath(key).parts
    if not parts or key.startswith("/") or any(p in ("..", ".", "") for p in parts):
        raise BadInput(f"bad storage key {key!r}")
    return key


class Storage(ABC):
    """A place to put and fetch backup files by key (relative '/'-separated path)."""

    url: str  # how to show it (no secrets)

    @abstractmethod
    def put_file(self, key: str, path: Path) -> None:
        """Store the local file ``path`` under ``key`` (replacing it)."""

    @abstractmethod
    def get_file(self, key: str, path: Path) -> None:
        """Fetch ``key`` into the local file ``path``; StorageError if missing."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """The content of ``key``; StorageError if it is missing."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def list_dirs(self, prefix: str = "") -> list[str]:
        """Names of the immediate 'directories' under ``prefix`` (sorted)."""

    @abstractmethod
    def list_files(self, prefix: str) -> list[str]:
        """Names of the files directly under ``prefix`` (sorted)."""

    @abstractmethod
    def delete_prefix(self, prefix: str) -> None:
        """Delete every key under ``prefix`` (a backup's directory)."""

    def local_dir(self, prefix: str) -> Path | None:
        """A local directory holding ``prefix``'s files directly, when the storage is one
        (no copy needed); None for remote storages."""
        return None

    @abstractmethod
    def check(self) -> None:
        """Raise StorageError (one line) if the storage cannot be reached."""

    # -- directories, for dump files --------------------------------------------
    def put_dir(self, prefix: str, local: Path, jobs: int = 4) -> None:
        """Upload every file under ``local`` to ``prefix/<relative path>``."""
        files = [p for p in sorted(local.rglob("*")) if p.is_file()]
        with ThreadPoolExecutor(max(1, jobs)) as pool:
            list(pool.map(lambda p: self.put_file(f"{prefix}/{p.relative_to(local).as_posix()}",
                                                  p), files))

    def get_files(self, prefix: str, names: list[str], local: Path, jobs: int = 4) -> None:
        """Download ``prefix/<name>`` for each of ``names`` into ``local/<name>``."""
        def one(name: str) -> None:
            dest = local / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            self.get_file(f"{prefix}/{name}", dest)

        with ThreadPoolExecutor(max(1, jobs)) as pool:
            list(pool.map(one, names))

    @contextmanager
    def fetched(self, prefix: str, names: list[str], jobs: int = 4) -> Iterator[Path]:
        """A local directory with ``prefix``'s files ``names``: the storage's own when it
        is local, else a temporary download removed afterwards."""
        here = self.local_dir(prefix)
        if here is not None:
            yield here
            return
        import tempfile

        with tempfile.TemporaryDirectory(prefix="lockplane-backup-") as tmp:
            self.get_files(prefix, names, Path(tmp), jobs)
            yield Path(tmp)


class LocalStorage(Storage):
    """A directory on this machine (or a mounted volume)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        self.url = str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def check(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise StorageError(f"backup storage {self.url} is not a directory")

    def put_file(self, key: str, path: Path) -> None:
        dest = self._path(key)
        try:
            if dest.resolve() == path.resolve():
                return
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
        except OSError as exc:  # (a full disk, a read-only mount: not 'internal error')
            raise StorageError(f"cannot write {key} in backup storage {self.url}: "
                               f"{exc.strerror or exc}") from None

    def get_file(self, key: str, path: Path) -> None:
        src = self._path(key)
        if not src.is_file():
            raise StorageError(f"{key} not found in backup storage {self.url}")
        try:
            shutil.copyfile(src, path)
        except OSError as exc:
            raise StorageError(f"cannot read {key} in backup storage {self.url}: "
                               f"{exc.strerror or exc}") from None

    def put_bytes(self, key: str, data: bytes) -> None:
        dest = self._path(key)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(dest.name + ".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, dest)  # readers never see half a manifest
        except OSError as exc:
            raise StorageError(f"cannot write {key} in backup storage {self.url}: "
                               f"{exc.strerror or exc}") from None

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise StorageError(f"{key} not found in backup storage {self.url}") from None
        except OSError as exc:
            raise StorageError(f"cannot read {key} in backup storage {self.url}: "
                               f"{exc.strerror or exc}") from None

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def list_dirs(self, prefix: str = "") -> list[str]:
        base = self._path(prefix) if prefix else self.root
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if p.is_dir())

    def list_files(self, prefix: str) -> list[str]:
        base = self._path(prefix)
        return sorted(p.name for p in base.iterdir() if p.is_file()) if base.is_dir() else []

    def delete_prefix(self, prefix: str) -> None:
        shutil.rmtree(self._path(prefix), ignore_errors=True)

    def local_dir(self, prefix: str) -> Path | None:
        return self._path(prefix)


class S3Storage(Storage):
    """An S3 (or S3-compatible) bucket and key prefix, through boto3.

    ``client`` may be given (a configured boto3 S3 client); otherwise one is made from
    boto3's default credential chain, ``endpoint_url`` (or AWS_ENDPOINT_URL) and
    ``region``.
    """

    def __init__(self, bucket: str, prefix: str = "", *, client: Any = None,
                 endpoint_url: str | None = None, region: str | None = None,
                 aws_access_key_id: str | None = None,
                 aws_secret_access_key: str | None = None) -> None:
        if not bucket:
            raise BadInput("S3 backup storage needs a bucket: s3://bucket/prefix")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")
        if client is None:
            try:
                import boto3
            except ImportError:
                raise BadInput("S3 backup storage needs boto3 (pip install boto3)") from None
            from botocore.config import Config

            client = boto3.client(
                "s3", endpoint_url=endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None,
                region_name=region, aws_access_key_id=aws_access_key_id,
                aws_secret_access_key=aws_secret_access_key,
                config=Config(connect_timeout=5, read_timeout=60,
                              retries={"max_attempts": 3, "mode": "standard"},
                              max_pool_connections=16))
        self.client = client

    def _key(self, key: str) -> str:
        _check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _fail(self, what: str, exc: Exception) -> StorageError:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "") if hasattr(
            exc, "response") else ""
        reason = code or (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        # HEAD answers with a bare status, no error code: say what it means.
        reason = {"404": "no such bucket (404)", "403": "access denied (403)",
                  "301": "the bucket is in another region (301)"}.get(reason, reason)
        return StorageError(f"backup storage {self.url}: cannot {what}: {reason}")

    def check(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except Exception as exc:  # noqa: BLE001 - botocore raises many kinds
            raise self._fail("reach the bucket", exc) from None

    def put_file(self, key: str, path: Path) -> None:
        try:
            self.client.upload_file(str(path), self.bucket, self._key(key))
        except Exception as exc:  # noqa: BLE001
            raise self._fail(f"upload {key}", exc) from None

    def get_file(self, key: str, path: Path) -> None:
        try:
            self.client.download_file(self.bucket, self._key(key), str(path))
        except Exception as exc:  # noqa: BLE001
            raise self._fail(f"download {key}", exc) from None

    def put_bytes(self, key: str, data: bytes) -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
        except Exception as exc:  # noqa: BLE001
            raise self._fail(f"write {key}", exc) from None

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except Exception as exc:  # noqa: BLE001
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404"):
                raise StorageError(f"{key} not found in backup storage {self.url}") from None
            raise self._fail(f"read {key}", exc) from None

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except Exception as exc:  # noqa: BLE001
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
            if code in ("404", "NoSuchKey", "NotFound"):
                return False
            raise self._fail(f"look up {key}", exc) from None

    def list_dirs(self, prefix: str = "") -> list[str]:
        base = self._key(prefix) + "/" if prefix else (f"{self.prefix}/" if self.prefix else "")
        names: list[str] = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=base, Delimiter="/")
            for page in pages:
                for cp in page.get("CommonPrefixes", []):
                    names.append(cp["Prefix"][len(base):].rstrip("/"))
        except Exception as exc:  # noqa: BLE001
            raise self._fail("list backups", exc) from None
        return sorted(names)

    def list_files(self, prefix: str) -> list[str]:
        base = self._key(prefix) + "/"
        names: list[str] = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=base, Delimiter="/")
            for page in pages:
                names += [o["Key"][len(base):] for o in page.get("Contents", [])]
        except Exception as exc:  # noqa: BLE001
            raise self._fail(f"list {prefix}", exc) from None
        return sorted(names)

    def delete_prefix(self, prefix: str) -> None:
        base = self._key(prefix) + "/"
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=base)
            for page in pages:
                keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if keys:
                    self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})
        except Exception as exc:  # noqa: BLE001
            raise self._fail(f"delete {prefix}", exc) from None


def open_storage(url: str | None = None) -> Storage:
    """The storage at ``url``: ``s3://bucket/prefix`` or a local directory path
    (``file://`` accepted). Default: $LOCKPLANE_BACKUP_STORAGE, else ./.lockplane/backups."""
    url = url or os.environ.get(STORAGE_ENV) or DEFAULT_STORAGE
    if url.startswith("s3://"):
        bucket, _, prefix = url[len("s3://"):].partition("/")
        return S3Storage(bucket, prefix)
    if "://" in url and not url.startswith("file://"):
        raise BadInput(f"unknown backup storage {url!r}: give a directory or s3://bucket/prefix")
    return LocalStorage(url[len("file://"):] if url.startswith("file://") else url)
