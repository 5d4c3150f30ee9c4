"""DSNs: which dialect a URL speaks, and how to show one without its password."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from .errors import BadInput

_SCHEMES = {
    "postgres": "postgres",
    "postgresql": "postgres",
    "sqlite": "sqlite",
    "libsql": "sqlite",
    "file": "sqlite",
    "mysql": "mysql",
    "mariadb": "mysql",
}

_PASSWORD_IN_URL = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@\s]*(?=@)")
_PASSWORD_KV = re.compile(r"(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)")
_PASSWORD_QUERY = re.compile(r"(?i)([?&](?:password|authToken|auth_token)=)[^&\s]*")


def looks_like_dsn(text: str) -> bool:
    scheme = text.split("://", 1)[0].split("+", 1)[0].lower() if "://" in text else ""
    return scheme in _SCHEMES


def dialect_of(dsn: str) -> str:
    """The dialect a DSN speaks; bad input if the scheme is unknown."""
    if "://" not in dsn:
        raise BadInput(f"not a database URL: {redact(dsn)!r} (expected postgresql://, "
                       "sqlite:///path, libsql://, mysql://)")
    scheme = dsn.split("://", 1)[0].split("+", 1)[0].lower()
    try:
        return _SCHEMES[scheme]
    except KeyError:
        raise BadInput(f"unknown database URL scheme {scheme!r} in {redact(dsn)!r}") from None


def redact(text: str) -> str:
    """Text with every password it may contain replaced by ***."""
    text = _PASSWORD_IN_URL.sub(lambda m: m.group("head") + "***", text)
    text = _PASSWORD_KV.sub(lambda m: m.group(1) + "***", text)
    return _PASSWORD_QUERY.sub(lambda m: m.group(1) + "***", text)


def sqlite_path(dsn: str) -> str:
    """Filesystem path (or ':memory:') of a sqlite:/// or file: URL."""
    if dsn.startswith("file:") and "://" not in dsn:
        return dsn[len("file:"):]
    parts = urlsplit(dsn)
    if parts.scheme.split("+", 1)[0] == "libsql":
        # libsql://host needs a remote client; a local libSQL file is a SQLite file.
        raise BadInput(f"remote libSQL ({redact(dsn)}) needs the libsql client; "
                       "use sqlite:///path for a local libSQL file")
    path = dsn.split("://", 1)[1]
    if path in ("", "/", "/:memory:", ":memory:"):
        return ":memory:"
    # sqlite:///relative.db -> relative.db ; sqlite:////abs/x.db -> /abs/x.db
    if path.startswith("/"):
        path = path[1:]
    return path.split("?", 1)[0]
