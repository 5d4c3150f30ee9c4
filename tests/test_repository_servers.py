"""A server named by a file of the repository (lockplane.toml, .env.NAME: a pull request
can change both) gets none of the pipeline's ambient passwords. libpq answers a server's
password request with PGPASSWORD (or a '*' line of ~/.pgpass) when the URL has none, so
a pull request pointing database_url at its own server received it. Such a URL now gets
require_auth=!password,!md5, as a scratch server's did (fca162c).

The other server is a real listener on another loopback port that speaks enough of the
PostgreSQL protocol to ask for a cleartext password and records what it receives."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_inprocess import lockplane
from tests.password_listener import ask_for_password

PW = "ambient-Secret-77"


@pytest.fixture
def fake_server() -> Iterator[tuple[int, list[bytes]]]:
    got: list[bytes] = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.5)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            ask_for_password(conn, got)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], got
    finally:
        stop.set()
        thread.join(5)
        server.close()


def leaked(got: list[bytes]) -> bool:
    return any(PW.encode() in g for g in got)


@pytest.mark.parametrize("where", ["lockplane.toml", ".env.ci"])
def test_a_target_a_repository_file_names_gets_no_ambient_password(
        fake_server: tuple[int, list[bytes]], tmp_path: Path, where: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    port, got = fake_server
    url = f"postgresql://anyone@127.0.0.1:{port}/x"
    if where == "lockplane.toml":
        (tmp_path / "lockplane.toml").write_text(f'[environments.ci]\ndatabase_url = "{url}"\n')
    else:
        (tmp_path / ".env.ci").write_text(f"DATABASE_URL={url}\n")
    (tmp_path / "s.sql").write_text("CREATE TABLE q (id int);\n")
    monkeypatch.setenv("PGPASSWORD", PW)
    monkeypatch.delenv("LOCKPLANE_CI_DATABASE_URL", raising=False)
    for args in (("introspect", "--target-environment", "ci"),
                 ("plan", "--from-environment", "ci", "--to", "s.sql", "-q"),
                 ("apply", "--target-environment", "ci", "--schema", "s.sql",
                  "--auto-approve")):
        r = lockplane(*args, cwd=tmp_path)
        assert not leaked(got), (args, got)
        # (the URL is shown as written; the reason says where the refusal comes from)
        assert r.code == 2 and 'requirement "!password,!md5" failed' in r.stderr \
            and "may not ask for one in clear or as MD5" in r.stderr, (args, r)
        assert "require_auth" not in r.stderr, r
        assert PW not in r.output and "Traceback" not in r.output, r
    # The pipeline's own choice, in the process environment, is left as it is: the same
    # server then asked for the password and got it (what the check above would see).
    monkeypatch.setenv("LOCKPLANE_CI_DATABASE_URL", url)
    r = lockplane("introspect", "--target-environment", "ci", cwd=tmp_path)
    assert r.code != 0 and leaked(got), (r, got)


def test_a_schema_path_a_repository_file_names_stays_in_the_repository(
        fake_server: tuple[int, list[bytes]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """schema_path in lockplane.toml: a database URL is read like a target (no ambient
    password); a path outside the project directory is refused, and nothing of the file
    is shown (a syntax error quoted its first word)."""
    port, got = fake_server
    secret = tmp_path / "home" / "secret"
    secret.parent.mkdir()
    secret.write_text("TOPSECRETWORD x\n")
    project = tmp_path / "repo"
    project.mkdir()
    monkeypatch.setenv("PGPASSWORD", PW)
    for schema_path, needle in ((f"postgresql://anyone@127.0.0.1:{port}/x", "is postgres"),
                                (str(secret), "outside the project directory"),
                                ("../home/secret", "outside the project directory")):
        (project / "lockplane.toml").write_text(
            f'[environments.ci]\ndatabase_url = "sqlite:///ci.db"\n'
            f'schema_path = "{schema_path}"\n')
        r = lockplane("plan", "--from-environment", "ci", cwd=project)
        assert not leaked(got), (schema_path, got)
        assert r.code == 2 and needle in r.stderr, (schema_path, r)
        assert "TOPSECRETWORD" not in r.output and PW not in r.output, r
    (project / "s.sql").write_text("CREATE TABLE q (id INTEGER);\n")
    (project / "lockplane.toml").write_text(
        '[environments.ci]\ndatabase_url = "sqlite:///ci.db"\nschema_path = "s.sql"\n')
    (project / "ci.db").touch()
    r = lockplane("plan", "--from-environment", "ci", "-q", cwd=project)
    assert r.code == 0, r


def test_the_guard_is_not_shown() -> None:
    """The require_auth Lockplane adds is not the user's words: messages, Slack texts and
    artifacts show the URL as lockplane.toml has it (the guard read like a password in
    them: test_drift_schedule's check that no Slack text says 'password')."""
    from lockplane.config import _no_ambient_password
    from lockplane.dsn import redact

    for url in ("postgresql://app@db.internal/prod", "postgresql://app@h/db?sslmode=require"):
        guarded = _no_ambient_password(url)
        assert guarded != url and redact(guarded) == url
        assert redact(f"cannot connect to {guarded}: refused.") == \
            f"cannot connect to {url}: refused."
    assert redact("postgresql://a@h/d?require_auth=scram-sha-256") == \
        "postgresql://a@h/d?require_auth=scram-sha-256"  # a user's own is shown
