"""Reading the files Lockplane is handed (schemas, plans, lockplane.toml, .env.NAME).

They are untrusted input: every way one can be unusable (missing, a directory, not
readable, not UTF-8, not valid JSON or TOML, nested past what a parser can follow) is
bad input (exit 2) with one line naming the file, never an internal error.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from .errors import BadInput


def read_text(path: str | Path, what: str = "file") -> str:
    """The UTF-8 text of ``path``; ``what`` says what the file was meant to be."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise BadInput(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise BadInput(f"{path}: is a directory, expected a {what}") from None
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror or exc}") from None
    return decode(data, str(path))


def no_link_out(path: Path, root: Path, shown: str) -> Path:
    """``path``, refused (exit 2) if it is reached through a symbolic link that leads
    out of ``root`` (a directory): a link in a pull request (``schema/x.sql`` ->
    ``~/.pgpass``, or a schema file replaced by one) would have Lockplane read a file
    that is not a schema, and a syntax error quotes its first word. Neither the link's
    target nor anything of its content is shown."""
    import os

    real, base = os.path.realpath(path), os.path.realpath(root)
    if real != base and not real.startswith(base.rstrip(os.sep) + os.sep):
        raise BadInput(f"{shown}: a symbolic link to a file outside {root}: refused (schema "
                       "files are read from their own directory only)")
    return path


def decode(data: bytes, where: str) -> str:
    """``data`` as UTF-8 text; the first undecodable byte named by line and offset. A NUL
    byte is refused too: no SQL, JSON, TOML or dotenv text holds one, and C libraries
    (libpq, SQLite) would cut the text short there. A byte order mark at the start (what
    editors on Windows write first) is not part of the text: it is dropped."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise BadInput(f"{where}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at "
                       f"offset {exc.start})") from None
    nul = data.find(b"\0")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise BadInput(f"{where}:{line}: not a text file (a NUL byte at offset {nul})")
    return text.removeprefix("\ufeff")


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose keys are all different: with one key twice, a reader of the file
    (a reviewer of a plan in a pull request) and the parser, which keeps the last, would
    see different content."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def parse_json(text: str, where: str) -> Any:
    """``text`` parsed as JSON; errors name ``where`` with line and column. An object that
    holds a key twice is refused."""
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        raise BadInput(f"{where}: key {str(exc.args[0])!r} appears twice in one object "
                       "(a reader and the parser would disagree on its value)") from None
    except json.JSONDecodeError as exc:
        raise BadInput(f"{where}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    except RecursionError:
        raise BadInput(f"{where}: not valid JSON: nested too deeply to parse") from None


def load_json(path: str | Path, what: str = "JSON file") -> Any:
    return parse_json(read_text(path, what), str(path))


def parse_toml(text: str, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{where}: {exc}") from None
    except RecursionError:
        raise BadInput(f"{where}: not valid TOML: nested too deeply to parse") from None


def make_dir(path: str | Path, what: str = "directory") -> Path:
    """``path`` as a directory, made (with its parents) if missing."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise BadInput(f"{path}: is a file, expected a {what}") from None
    except OSError as exc:
        raise BadInput(f"cannot create {what} {path}: {exc.strerror or exc}") from None
    return p
