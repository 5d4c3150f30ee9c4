"""DSNs: which dialect a URL speaks, and how to show one without its password."""

from __future__ import annotations

import contextlib
import re
from urllib.parse import unquote, urlsplit

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

# user:password@ in a URL. The password runs to the last @ of the token: an unencoded @
# in it (a malformed URL that libpq quotes back) must not leave its tail showing.
_PASSWORD_IN_URL = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)\S*(?=@)")
# password=... in conninfo (quoted, or unquoted with backslash escapes) and query strings
_PASSWORD_KV = re.compile(r"(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'?|(?:\\.|[^\s\\])+\\?)")
_PASSWORD_QUERY = re.compile(r"(?i)([?&](?:password|authToken|auth_token)=)[^&\s]*")
# "password": "..." (a DSN's parts echoed as JSON or a Python dict)
_PASSWORD_JSON = re.compile(r"""(?i)(["']password["']\s*:\s*)"""
                            r"""("(?:[^"\\]|\\.)*"?|'(?:[^'\\]|\\.)*'?)""")


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


# What Lockplane adds to a URL that a repository file names without a password
# (config._no_ambient_password): not the user's words, so not shown (it also reads as if
# a password were in the text).
NO_AMBIENT_PASSWORD = "require_auth=!password,!md5"
_NO_AMBIENT_SHOWN = re.compile(r"\?require_auth=!password,!md5&|[?&]require_auth=!password,!md5"
                               r"(?![\w!,=%&-])")


def redact(text: str) -> str:
    """Text with every password it may contain replaced by *** (and without the
    require_auth Lockplane adds to some URLs)."""
    text = _NO_AMBIENT_SHOWN.sub(lambda m: "?" if m.group(0).endswith("&") else "", text)
    text = _PASSWORD_IN_URL.sub(lambda m: m.group("head") + "***", text)
    text = _PASSWORD_KV.sub(lambda m: m.group(1) + "***", text)
    text = _PASSWORD_JSON.sub(lambda m: m.group(1) + "'***'", text)
    return _PASSWORD_QUERY.sub(lambda m: m.group(1) + "***", text)


def redact_for(text: str, dsn: str) -> str:
    """``text`` (an error about ``dsn``) redacted, and with ``dsn``'s password taken out
    wherever it appears: a driver that cannot parse a URL quotes the token it choked on
    ('invalid percent-encoded token: "secret%ZZ"'), which no pattern recognises."""
    out = redact(text)
    secrets: set[str] = set()
    with contextlib.suppress(ValueError):
        raw = urlsplit(dsn.strip()).password if "://" in dsn else None
        if raw:
            secrets |= {raw, unquote(raw)}
    for m in _PASSWORD_KV.finditer(dsn):
        secrets.add(m.group(2).strip("'"))
    for m in _PASSWORD_QUERY.finditer(dsn):
        value = m.group(0)[len(m.group(1)):]
        secrets |= {value, unquote(value)}
    # A password holding an unencoded '@', '/', '?', '#' or ':' is split by the driver
    # elsewhere than by urlsplit: libpq took 'u:S3C@RET@host' as password 'S3C' and host
    # 'RET@host', and said "failed to resolve host 'RET@host'"; PyMySQL took
    # 'u:S3C/RET@host' as port 'S3C'. So also what runs from 'user:' to the token's last
    # '@' (as redact reads it), and each piece of it between those characters; a piece of
    # one or two characters only where a driver quotes it (before an '@', in quotes):
    # alone it would blank out ordinary words.
    quoted: dict[str, str] = {}
    for m in _PASSWORD_IN_URL.finditer(dsn):
        greedy = m.group(0)[len(m.group("head")):]
        secrets |= {greedy, unquote(greedy)}
        for piece in re.split(r"[@/?#:]", greedy):
            if len(piece) >= 3:
                secrets.add(piece)
            elif piece:
                quoted |= {piece + "@": "***@", f"'{piece}'": "'***'", f'"{piece}"': '"***"'}
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        out = out.replace(secret, "***")
    for needle, instead in quoted.items():
        out = out.replace(needle, instead)
    return out


def holds_password(text: str) -> bool:
    """Whether ``text`` is a DSN (URL or libpq conninfo) that carries a password."""
    stripped = text.strip()
    if looks_like_dsn(stripped):
        return redact(stripped) != stripped
    # conninfo: key=value pairs only (SQL such as "WHERE password = ''" is not one)
    return (bool(_CONNINFO.match(stripped)) and bool(_CONNINFO_KEY.search(stripped))
            and redact(stripped) != stripped)


_CONNINFO = re.compile(r"^(?:\w+\s*=\s*(?:'(?:[^'\\]|\\.)*'|(?:\\.|[^\s'\\])+)\s*)+$")
_CONNINFO_KEY = re.compile(r"(?i)(?:^|\s)(?:host|hostaddr|dbname|user|port|service)\s*=")


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
