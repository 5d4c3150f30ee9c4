"""No password in any output, on any path: usage errors, libpq's messages about malformed
URLs and conninfo strings, lockplane.toml and .env files, Prefect flow-run parameters.
And operator text (approver names, history's "who") reaches a terminal without control
characters.

Every CLI run here has LOCKPLANE_DEBUG unset (tests.cli_inprocess removes it)."""

from __future__ import annotations

import io
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from lockplane.dsn import holds_password, redact
from lockplane.errors import BadInput
from tests.cli_inprocess import Result, lockplane
from tests.password_listener import ask_for_password

PW = "s3cretPW42"  # distinctive: found wherever it leaks


def no_password(result: Result) -> Result:
    assert PW not in result.output, result.output
    assert "Traceback" not in result.output, result.output
    return result


# ---------------------------------------------------------------------------- redact
@pytest.mark.parametrize("text", [
    f"postgresql://u:{PW}@host:5432/db",
    f"postgresql://u:{PW}@host:notaport/db",
    f"postgresql://u:{PW}@[bad/db",
    f"postgres://u:p@{PW}@host/db",                 # an unencoded @ in the password
    f"postgresql://u:%73{PW}%40x@host/db",          # URL-encoded
    f"postgresql://host/db?sslmode=require&password={PW}&x=1",
    f"postgresql://host/db?PASSWORD={PW}",
    f"password={PW} host=127.0.0.1 port=5432",
    f"host=h password = '{PW} with spaces' user=u",
    f"host=h password='{PW}\\' quoted' user=u",
    f"host=h password={PW}\\ escaped user=u",
    f"libsql://db.example?authToken={PW}",
    f'{{"password": "{PW}", "host": "h"}}',
    f"{{'password': '{PW}'}}",
    f'cannot connect to "postgresql://u:{PW}@h/db": refused',
])
def test_redact_hides_every_form(text: str) -> None:
    assert PW not in redact(text)


def test_redact_keeps_what_is_not_a_secret() -> None:
    assert redact("postgresql://u@h:5432/db") == "postgresql://u@h:5432/db"
    assert redact(f"postgresql://u:{PW}@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact("sqlite:///tmp/x.db") == "sqlite:///tmp/x.db"


def test_holds_password() -> None:
    assert holds_password(f"postgresql://u:{PW}@h/db")
    assert holds_password(f"host=h password={PW}")
    assert holds_password(f"postgresql://h/db?password={PW}")
    assert not holds_password("postgresql://u@h/db")
    assert not holds_password("production")  # a block or environment name
    assert not holds_password("password = NULL")  # SQL, not conninfo
    assert not holds_password("schema/")


# ---------------------------------------------------------------------------- usage errors
@pytest.mark.parametrize("args", [
    ("plan", "--from", f"postgresql://u:{PW}@host:5432/db", "--bogus"),
    (f"postgresql://u:{PW}@host:5432/db",),                        # No such command '...'
    ("plan", f"postgresql://u:{PW}@host:5432/db"),                 # unexpected extra argument
    ("plan", "--lock-timeout-ms", f"postgresql://u:{PW}@h/db"),    # Invalid value for ...
    ("apply", "p.json", "--retries", f"password={PW} host=h"),
    ("plan", f"--bogus=postgresql://u:{PW}@h/db"),
    ("history", "--target", f"postgresql://u:{PW}@h/db", "--limit", "x"),
    ("introspect", "--target"),                                    # option needs a value
])
def test_usage_errors_never_echo_a_password(args: tuple[str, ...]) -> None:
    r = no_password(lockplane(*args))
    assert r.code == 2, r


# ---------------------------------------------------------------------------- libpq
BAD_URLS = [
    f"postgresql://u:{PW}@127.0.0.1:notaport/db",
    f"postgresql://u:{PW}@[bad/db",
    f"postgresql://u:{PW}@127.0.0.1:1/db",                          # nothing listens there
    f"postgresql://u:p%40{PW}@127.0.0.1:1/db",
    f"postgresql://127.0.0.1:5432/db?password={PW}&port=x",
    f"postgresql://127.0.0.1:5432/db?password={PW}&bogus_option=1",
    f"postgresql://u:{PW}@127.0.0.1:5432/db?sslmode=nonsense",
    f"password={PW} host=127.0.0.1 port=5432",                     # conninfo, not a URL
    # libpq quotes the token it cannot decode: the password itself (audit)
    f"postgresql://u:{PW}%ZZ@127.0.0.1:5432/db",
    f"postgresql://127.0.0.1:5432/db?password={PW}%ZZ",
    f"mysql://u:{PW}%ZZ@127.0.0.1:1/db",
    # PyMySQL's own range check was an exit-1 "internal error: ValueError"
    f"mysql://u:{PW}@127.0.0.1:1/db?connect_timeout=-1",
    f"mysql://u:{PW}@127.0.0.1:1/db?connect_timeout=99999999999",
]


@pytest.mark.parametrize("url", BAD_URLS)
def test_malformed_urls_in_every_command(url: str, tmp_path: Path) -> None:
    schema = tmp_path / "s.json"
    schema.write_text('{"dialect": "postgres", "tables": []}')
    plan = tmp_path / "p.json"
    plan.write_text('{"source_hash": "x", "steps": []}')
    for args in (("introspect", "--target", url),
                 ("plan", "--from", url, "--to", str(schema)),
                 ("apply", str(plan), "--target", url, "--auto-approve"),
                 ("history", "--target", url),
                 ("plan-rollback", "--plan", str(plan), "--from", url)):
        r = no_password(lockplane(*args, cwd=tmp_path))
        assert r.code in (2, 3), (args, r)
        assert "internal error" not in r.output, (args, r)


# A password holding an unencoded '@' or '/' is split by the driver elsewhere than by
# urlsplit, and the driver quotes the part it took for something else: on 6d5a97c libpq
# said "failed to resolve host 'tPW42@127.0.0.1'", PyMySQL "Port could not be cast to
# integer value as 's3cre'", and a SQLite URL's "user:password@" showed in the path of
# "directory ... does not exist".
SPLIT_URLS = [
    (f"postgresql://u:{PW[:5]}@{PW[5:]}@127.0.0.1:1/db", (PW[:5], PW[5:])),
    (f"postgresql://u:{PW}@zq@127.0.0.1:1/db", (PW, "zq@")),
    (f"mysql://u:{PW[:5]}/{PW[5:]}@127.0.0.1:1/x", (PW[:5], PW[5:])),
    (f"mysql://u:ab/{PW}@127.0.0.1:1/x", (PW, "'ab'")),
    (f"sqlite://u:{PW}@/x.db", (PW,)),
]


@pytest.mark.parametrize(("url", "pieces"), SPLIT_URLS)
def test_a_password_the_driver_splits_elsewhere(url: str, pieces: tuple[str, ...],
                                                tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text('{"dialect": "postgres", "tables": []}')
    for args in (("introspect", "--target", url), ("introspect", f"--target={url}"),
                 ("plan", "--from", url, "--to", "s.json")):
        r = lockplane(*args, cwd=tmp_path)
        assert r.code == 2 and "Traceback" not in r.output, (args, r)
        for piece in pieces:
            assert piece not in r.output, (args, piece, r.output)


def test_console_script_redacts_too(tmp_path: Path) -> None:
    """The real entry point (catalog prefetch in lockplane.launch, then the CLI)."""
    env = {k: v for k, v in os.environ.items() if k != "LOCKPLANE_DEBUG"}
    for args in (["plan", "--from", f"postgresql://u:{PW}@127.0.0.1:notaport/db",
                  "--to", "nothing.json"],
                 ["plan", "--from", f"postgresql://u:{PW}@127.0.0.1:1/db", "--bogus"]):
        proc = subprocess.run([sys.executable, "-m", "lockplane", *args], cwd=tmp_path,
                              capture_output=True, text=True, env=env, timeout=60)
        assert proc.returncode == 2, proc
        assert PW not in proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr


# ---------------------------------------------------------------------------- config files
@pytest.mark.parametrize("toml", [
    f'[environments.prod]\ndatabase_url = "postgresql://u:{PW}@127.0.0.1:notaport/db"\n',
    f'[environments.prod]\ndatabase_url = "postgresql://u:{PW}@127.0.0.1:1/db\n',  # unterminated
    f'[environments.prod]\ndatabase_url = postgresql://u:{PW}@h/db\n',             # unquoted
    f'[environments.prod]\ndatabase_url = ["postgresql://u:{PW}@h/db"]\n',         # wrong type
    f'[environments.prod]\ndatabase_url = "password={PW} host=h"\n',
    f'[environments.prod]\ndatabase_url = "x"\npasword = "{PW}"\n',                 # unknown key
    f'environments = "postgresql://u:{PW}@h/db"\n',
])
def test_lockplane_toml_errors(toml: str, tmp_path: Path) -> None:
    (tmp_path / "lockplane.toml").write_text(toml)
    r = no_password(lockplane("introspect", "--target-environment", "prod", cwd=tmp_path))
    assert r.code == 2, r


@pytest.mark.parametrize("dotenv", [
    f"DATABASE_URL=postgresql://u:{PW}@127.0.0.1:notaport/db\n",
    f"DATABASE_URL='postgresql://u:{PW}@[bad/db'\n",
    f"postgresql://u:{PW}@h/db\n",                     # no KEY=
    f"={PW}\n",
    f"DATABASE_URL=password={PW} host=127.0.0.1 port=1\n",
])
def test_dotenv_errors(dotenv: str, tmp_path: Path) -> None:
    (tmp_path / ".env.prod").write_text(dotenv)
    r = no_password(lockplane("introspect", "--target-environment", "prod", cwd=tmp_path))
    assert r.code == 2, r


# ---------------------------------------------------------------------------- Prefect
def test_resolve_target_refuses_a_password() -> None:
    from flows.targets import resolve_target

    for target in (f"postgresql://u:{PW}@h/db", f"host=h password={PW}",
                   f"postgresql://h/db?password={PW}"):
        with pytest.raises(BadInput) as exc:
            resolve_target(target)
        assert PW not in str(exc.value)
        assert "DatabaseTarget" in str(exc.value)
    assert resolve_target("sqlite:///x.db").label == "sqlite:///x.db"


def test_flows_refuse_a_password_before_the_server_stores_it(
        prefect_api: str, pg_dsn: str, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client

    from flows.apply_migration import apply_migration
    from flows.backfill import backfill
    from flows.drift_check import drift_check

    desired = tmp_path / "schema.json"
    desired.write_text('{"dialect": "postgres", "tables": []}')
    with_pw = pg_dsn.replace("postgresql://postgres@", f"postgresql://postgres:{PW}@", 1)
    calls = [
        lambda: apply_migration(target=with_pw, desired_schema=str(desired)),
        lambda: drift_check(target=with_pw, desired_schema=str(desired)),
        lambda: drift_check(target="production-block", desired_schema=with_pw),
        lambda: backfill(target=f"host=127.0.0.1 password={PW}", table="t", set=["a = 1"]),
    ]
    for call in calls:
        with pytest.raises(BadInput) as exc:
            call()
        assert PW not in str(exc.value)
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(limit=200)
    assert PW not in repr([r.parameters for r in runs])
    # Without a password a DSN is still fine for local use.
    assert drift_check(target=pg_dsn, desired_schema=str(desired))["drift"] is False


# ---------------------------------------------------------------------------- terminal text
def test_printed_text_carries_no_control_characters() -> None:
    from rich.console import Console
    from rich.text import Text

    from lockplane import report

    buf = io.StringIO()
    # No colours of its own: any escape sequence in the output came from the text.
    saved, report._console = report._console, Console(file=buf, color_system=None,
                                                      highlight=False, width=200)
    try:
        report.err.print("who: evil\x1b]0;pwned\x07\x1b[2J\r\b\x9b31m [bold]ok[/]")
        styled = Text("step \x1b[31mred")
        styled.stylize("bold", 0, 4)
        report.err.print(styled)
        report.err.print("[red]x[/] " + report.escape("[not markup] \x1b[1m"))
    finally:
        report._console = saved
    out = buf.getvalue()
    for raw in ("\x1b", "\x07", "\r", "\b", "\x9b"):
        assert raw not in out, (raw, out)
    assert "\\x1b[2J" in out and "[not markup]" in out


def test_history_who_is_shown_without_escape_sequences(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    sqlite3.connect(db).close()
    dsn = f"sqlite:///{db}"
    schema = tmp_path / "s.json"
    schema.write_text('{"dialect": "sqlite", "tables": [{"name": "t", "columns": '
                      '[{"name": "id", "type": "integer", "is_primary_key": true}]}]}')
    evil = "mallory\x1b]0;owned\x07\x1b[2K\r[red]admin[/]"
    r = lockplane("apply", "--schema", str(schema), "--target", dsn, "--auto-approve",
                  "--who", evil, cwd=tmp_path)
    assert r.code == 0, r
    r = lockplane("history", "--target", dsn, cwd=tmp_path)
    assert r.code == 0, r
    assert "\x1b" not in r.stderr and "\x07" not in r.stderr and "\r" not in r.stderr
    assert "mallory\\x1b]0;owned" in r.stderr and "[red]admin[/]" in r.stderr


def test_error_messages_escape_control_characters(tmp_path: Path) -> None:
    (tmp_path / "y.json").write_text('{"dialect": "sqlite", "tables": []}')
    r = lockplane("plan", "--from", "y.json", "--to", "x\x1b[2J\x1b]0;t\x07.json",
                  cwd=tmp_path)
    assert r.code == 2, r
    assert "\x1b" not in r.stderr and "\x07" not in r.stderr
    assert "\\x1b[2J" in r.stderr


def test_a_deployment_run_with_a_password_is_refused_by_the_server(
        prefect_api: str, tmp_path: Path) -> None:
    """A run started from a deployment (UI, API, `prefect deployment run`) is created by
    the server from its parameters before any flow code runs: the flows' parameter schema
    makes the server refuse a DSN with a password, so it is never stored."""
    import uuid

    from prefect.client.orchestration import get_client

    from flows.drift_check import drift_check

    name = f"pw-check-{uuid.uuid4().hex[:8]}"
    deployment = drift_check.to_deployment(name=name)
    deployment_id = deployment.apply()
    try:
        with get_client(sync_client=True) as client:
            for value in (f"postgresql://u:{PW}@h/db", f"host=h password={PW} dbname=x"):
                # The refusal (409) quotes the value back to whoever sent it; what matters
                # is that no run holding it is stored.
                with pytest.raises(Exception, match="409|not valid"):
                    client.create_flow_run_from_deployment(
                        deployment_id, parameters={"target": value,
                                                   "desired_schema": "schema/"})
            runs = client.read_flow_runs(limit=200)
            assert PW not in repr([r.parameters for r in runs])
            # A block name or a DSN without a password is fine.
            run = client.create_flow_run_from_deployment(
                deployment_id, parameters={"target": "postgresql://u@h/db",
                                           "desired_schema": "schema/"})
            client.delete_flow_run(run.id)
    finally:
        with get_client(sync_client=True) as client:
            client.delete_deployment(deployment_id)


def test_a_scratch_server_a_repository_file_names_gets_no_ambient_password(
        pg_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """lockplane.toml (a pull request can change it) names a scratch server without a
    password: libpq answered that server's cleartext-password request with the process's
    PGPASSWORD (on 3a248e7 a fake server received it). Such a URL now gets
    require_auth=!password,!md5."""
    import socket
    import threading

    got: list[bytes] = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    server.settimeout(20)

    def serve() -> None:
        for _ in range(4):
            try:
                conn, _ = server.accept()
            except OSError:
                return
            ask_for_password(conn, got)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    port = server.getsockname()[1]
    (tmp_path / "lockplane.toml").write_text(
        "[environments.ci]\n"
        f'scratch_database_url = "postgresql://anyone@127.0.0.1:{port}/x"\n')
    (tmp_path / "s.sql").write_text("CREATE TABLE q (id int);\n")
    monkeypatch.setenv("PGPASSWORD", PW)
    monkeypatch.setenv("LOCKPLANE_CI_DATABASE_URL", pg_dsn)
    try:
        r = lockplane("plan", "--from-environment", "ci", "--to", "s.sql", "-q", cwd=tmp_path)
    finally:
        server.close()
        thread.join(5)
    assert not any(PW.encode() in g for g in got), got
    no_password(r)
    assert r.code == 2 and "may not ask for one in clear or as MD5" in r.stderr, r
