"""Hostile schema files: a desired schema changes nothing outside its scratch database.

Every attack file under tests/data/attacks runs through ``plan``, ``validate``,
``convert`` and ``apply --schema`` with a superuser DSN. After each command a victim
database's rows, the target's rows, the server's roles, settings and replication slots,
the target database's settings, grants and comment, and a canary directory the server
could write to are all unchanged, and no output holds the canary file's contents.

An attack's first line says what must happen:
- ``refused``: the screen (PostgreSQL's parser) refuses it before anything runs (exit 2);
- ``failed``: it passes the screen, and the code it runs as a side effect of DDL fails as
  the sandbox role (exit 2, the server's own "permission denied");
- ``loads``: it is a legitimate schema once neutralised (exit 0). A second line
  ``-- apply exits: 3`` says that applying it is refused for safety (what it would make
  the target's server run).

More header lines (``-- key: value``, before the first line that is not a comment):
- ``-- target: SQL`` runs on the target first (the state a plan starts from: a function
  an index already calls); its objects are part of the target database. Such a file is
  about what ``apply`` checks on that target, so only ``plan`` and ``apply`` run it;
- ``-- apply with: OPTIONS`` are added to ``apply`` (``--safety permissive``: a refusal
  must not come from the step's own safety class);
- ``-- apply says: TEXT`` must be in apply's output (which check answered).
"""

from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.cli_inprocess import lockplane
from tests.conftest import PG_ADMIN_DSN, pg_exec
from tests.test_cli import run

ATTACKS = sorted((Path(__file__).parent / "data" / "attacks").iterdir())


@dataclass
class Arena:
    target: str
    victim: str
    target_db: str
    victim_db: str
    canary_dir: Path
    canary_file: Path
    secret: str

    def render(self, text: str) -> str:
        return (text.replace("@TARGET_DB@", self.target_db)
                .replace("@VICTIM_DB@", self.victim_db)
                .replace("@CANARY_DIR@", str(self.canary_dir))
                .replace("@CANARY_FILE@", str(self.canary_file)))


@pytest.fixture
def arena(pg_dsn_factory) -> Iterator[Arena]:
    target, victim = pg_dsn_factory(), pg_dsn_factory()
    pg_exec(target, "CREATE TABLE accounts (id int PRIMARY KEY, owner text);"
                    "INSERT INTO accounts VALUES (1, 'alice'), (2, 'bob');")
    pg_exec(victim, "CREATE TABLE secrets (id int PRIMARY KEY, value text);"
                    "INSERT INTO secrets VALUES (1, 'keep me');")
    # Somewhere the server's own OS user can read and write: an attack that reached the
    # server's filesystem would leave a trace here.
    canary_dir = Path(tempfile.mkdtemp(prefix="lockplane_canary_", dir="/tmp"))
    canary_dir.chmod(0o777)
    secret = f"LOCKPLANE-CANARY-{secrets.token_hex(8)}"
    canary_file = canary_dir / "secret.txt"
    canary_file.write_text(secret + "\n")
    canary_file.chmod(0o644)
    try:
        yield Arena(target, victim, target.rsplit("/", 1)[1], victim.rsplit("/", 1)[1],
                    canary_dir, canary_file, secret)
    finally:
        shutil.rmtree(canary_dir, ignore_errors=True)
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            for (role,) in conn.execute("SELECT rolname FROM pg_roles "
                                        "WHERE rolname LIKE 'lockplane\\_attack%'").fetchall():
                conn.execute(f'DROP ROLE "{role}"')
            conn.execute("ALTER SYSTEM RESET log_min_duration_statement")
            conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                         "WHERE slot_name LIKE 'lockplane\\_attack%' AND NOT active")


# Roles other tests (and Lockplane's own sandboxes) make and drop while these run, by
# name: their coming and going is not an attack's doing, unless a role comes with power.
OTHERS_ROLES = ("lp_", 'lp "', "lockplane_reader_", "lockplane_sandbox_")


@dataclass(frozen=True)
class Roles:
    """The server's roles (name -> superuser, createrole, createdb, login, replication,
    bypassrls) and the memberships of its predefined and superuser roles. ``after ==
    before`` holds when nothing an attack could have done shows: a role that did not
    exist before (other tests' roles, named as OTHERS_ROLES, only when they hold none of
    those powers but CREATEDB and LOGIN), any change to a role that did (to other tests'
    roles: superuser, replication or bypassrls given or taken), a role gone (other
    tests' aside), a membership given or taken."""

    roles: dict[str, tuple[bool, ...]]
    memberships: frozenset[tuple[str, str]]

    def changes_since(self, before: Roles) -> list[str]:
        out = []
        for name, attrs in sorted(self.roles.items()):
            was = before.roles.get(name)
            if was is None:
                mighty = _mighty(attrs) or attrs[1]
                if mighty or not name.startswith(OTHERS_ROLES):
                    out.append(f"new role {name!r} {attrs}")
            elif was != attrs and (not name.startswith(OTHERS_ROLES) or _mighty(attrs)
                                   != _mighty(was)):
                # (another test's role may gain CREATEROLE: test_security_definer_... does)
                out.append(f"role {name!r} changed: {was} -> {attrs}")
        out += [f"role {n!r} gone" for n in sorted(before.roles.keys() - self.roles.keys())
                if not n.startswith(OTHERS_ROLES)]
        out += [f"new membership {m}" for m in sorted(self.memberships - before.memberships)]
        out += [f"membership {m} gone" for m in sorted(before.memberships - self.memberships)
                if m[1] in self.roles]
        return out

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Roles) and not self.changes_since(other)

    __hash__ = None  # type: ignore[assignment]


def _mighty(attrs: tuple[bool, ...]) -> bool:
    """Superuser, replication or bypassrls (see Roles)."""
    return attrs[0] or attrs[4] or attrs[5]


def server_roles(conn: psycopg.Connection) -> Roles:  # type: ignore[type-arg]
    return Roles(
        {r[0]: tuple(r[1:]) for r in conn.execute(
            "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolcanlogin, "
            "rolreplication, rolbypassrls FROM pg_roles")},
        frozenset((r[0], r[1]) for r in conn.execute(
            "SELECT m.roleid::regrole::text, m.member::regrole::text "
            "FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid "
            "WHERE r.rolname LIKE 'pg\\_%' OR r.rolsuper")))


def snapshot(a: Arena) -> dict[str, object]:
    with psycopg.connect(a.victim) as conn:
        victim_rows = conn.execute("SELECT * FROM secrets ORDER BY 1").fetchall()
    with psycopg.connect(a.target) as conn:
        target_rows = conn.execute("SELECT * FROM accounts ORDER BY 1").fetchall()
    with psycopg.connect(PG_ADMIN_DSN) as conn:
        roles = server_roles(conn)  # (other tests make and drop roles meanwhile: see Roles)
        file_settings = conn.execute(
            "SELECT sourcefile, name, setting FROM pg_file_settings ORDER BY 1, 2").fetchall()
        databases = conn.execute(
            "SELECT d.datname, d.datacl::text, shobj_description(d.oid, 'pg_database'), "
            "(SELECT array_agg(s.setconfig::text) FROM pg_db_role_setting s "
            " WHERE s.setdatabase = d.oid) FROM pg_database d "
            "WHERE d.datname IN (%s, %s) ORDER BY 1", (a.target_db, a.victim_db)).fetchall()
        extensions = conn.execute("SELECT extname FROM pg_extension ORDER BY 1").fetchall()
        # (server-wide: a slot an attack made keeps every WAL segment from then on)
        slots = conn.execute("SELECT slot_name FROM pg_replication_slots "
                             "WHERE slot_name LIKE 'lockplane\\_attack%' ORDER BY 1").fetchall()
    return {"victim rows": victim_rows, "target rows": target_rows, "roles": roles,
            "server settings": file_settings,
            "databases": databases, "admin database extensions": extensions,
            "replication slots": slots,
            "canary dir": sorted(p.name for p in a.canary_dir.iterdir())}


def header(path: Path, key: str) -> list[str]:
    """The values of the ``-- key:`` lines at the top of an attack file."""
    if path.suffix != ".sql":
        return []
    out = []
    for line in path.read_text().splitlines():
        if not line.startswith("--"):
            break
        if line.startswith(f"-- {key}:"):
            out.append(line.split(":", 1)[1].strip())
    return out


def expectation(path: Path) -> str:
    first = path.read_text().splitlines()[0] if path.suffix == ".sql" else ""
    if path.suffix == ".json":
        return "refused" if "smuggles" in path.name or "c_function" in path.name else "failed"
    return first.removeprefix("-- expect:").strip()


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda p: p.stem)
def test_attack_changes_nothing_outside_its_scratch_database(attack: Path, arena: Arena,
                                                             tmp_path: Path) -> None:
    path = tmp_path / attack.name
    path.write_text(arena.render(attack.read_text()))
    expect = expectation(attack)
    for sql in header(attack, "target"):
        pg_exec(arena.target, arena.render(sql))
    before = snapshot(arena)
    commands = [
        ("plan", "--from", arena.target, "--to", str(path), "-q"),
        ("validate", str(path), "--shadow-db", PG_ADMIN_DSN),
        ("convert", "-i", str(path), "--shadow-db", PG_ADMIN_DSN),
        ("apply", "--schema", str(path), "--target", arena.target, "--auto-approve",
         *" ".join(header(attack, "apply with")).split()),
    ]
    if header(attack, "target"):
        # What the file is about happens on its target, which validate and convert
        # never see: for them it is one more legitimate file, loaded as plan loads it.
        commands = [c for c in commands if c[0] not in ("validate", "convert")]
    apply_exits = next((int(v.split()[0]) for v in header(attack, "apply exits")), None)
    for args in commands:
        # In this process, through the console script's own entry point (cli._main):
        # the same error mapping as a subprocess, without ~1 s of start-up per command.
        proc = lockplane(*args)
        output = proc.output
        assert arena.secret not in output, (args[0], output)
        assert "Traceback" not in output and "internal error" not in output, (args[0], output)
        assert "\x1b" not in output and "\x07" not in output, (args[0], "terminal escape")
        if args[0] == "apply" and apply_exits is not None:
            assert proc.code == apply_exits, (args[0], proc.stderr)
            for said in header(attack, "apply says"):
                assert said in " ".join(output.split()), (args[0], said, proc.stderr)
        elif expect == "loads":
            assert proc.code == 0, (args[0], proc.stderr)
        else:
            assert proc.code == 2, (args[0], proc.code, proc.stderr)
            lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
            assert len(lines) == 1, (args[0], proc.stderr)
            if expect == "refused":
                assert "not allowed" in proc.stderr, (args[0], proc.stderr)
            assert path.name in proc.stderr, (args[0], proc.stderr)
        assert snapshot(arena) == before, args[0]


def test_the_role_snapshot_sees_an_attack_s_roles_not_other_tests_roles() -> None:
    """The attack tests compare the server's roles before and after each command, while
    other tests make and drop roles of their own: those (named as OTHERS_ROLES, without
    power) are not an attack's doing; any other new role, a new role with power whatever
    its name, a changed role and a new membership of a predefined role are."""
    # On copies of a real snapshot, never on the server: the attack tests running beside
    # this one compare the server's roles, and would see a role made here as an attack.
    token = secrets.token_hex(4)
    other, gone = f"lp_other_{token}", f"lp_gone_{token}"
    evil, mighty = f"lockplane_attack_r{token}", f"lp_mighty_{token}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        real = server_roles(conn)
    plain = (False, False, False, False, False, False)  # NOLOGIN, no power
    owner = (False, False, True, True, False, False)  # LOGIN CREATEDB, as conftest's

    def roles(extra: dict[str, tuple[bool, ...]], drop: tuple[str, ...] = (),
              members: frozenset[tuple[str, str]] = frozenset()) -> Roles:
        have = {n: a for n, a in real.roles.items() if n not in drop} | extra
        return Roles(have, real.memberships | members)

    before = roles({gone: plain})
    # another test's: made and dropped
    assert roles({other: owner}) == before
    # another test's role given CREATEROLE (test_security_definer_is_judged_...)
    assert roles({gone: (False, True, *plain[2:])}) == before
    for attack in (roles({gone: plain, evil: plain}),
                   roles({gone: plain, mighty: (True, *plain[1:])}),
                   roles({gone: plain, "postgres": plain}),
                   roles({gone: (True, *plain[1:])}),
                   roles({gone: plain}, members=frozenset({("pg_read_server_files", gone)}))):
        assert attack != before, attack.changes_since(before)


def test_refusal_names_file_line_and_why(tmp_path: Path) -> None:
    path = tmp_path / "schema.sql"
    path.write_text("CREATE TABLE t (a int);\n\n-- data\nINSERT INTO t VALUES (1);\n")
    proc = run("validate", str(path))
    assert proc.returncode == 2
    assert f"{path}:4: INSERT INTO is not allowed in a schema file: it changes rows (DML)" \
        in " ".join(proc.stderr.split())


def test_no_scratch_database_or_sandbox_role_is_left_behind(tmp_path: Path) -> None:
    path = tmp_path / "schema.sql"
    path.write_text("CREATE TABLE t (a int);\nALTER TABLE t ADD COLUMN b int "
                    "DEFAULT (pg_read_file('/etc/hostname'))::int;\n")
    token = secrets.token_hex(4)
    # A run that was killed left these behind; the next run drops them.
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE lockplane_scratch_dead{token}")
        conn.execute(f"CREATE ROLE lockplane_sandbox_dead{token}")
    proc = run("validate", str(path))
    assert proc.returncode == 2, proc.stderr
    with psycopg.connect(PG_ADMIN_DSN) as conn:
        left = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s UNION ALL "
            "SELECT rolname FROM pg_roles WHERE rolname LIKE %s",
            (f"%dead{token}", f"%dead{token}")).fetchall()
    assert left == []


def test_pg_dump_schema_with_extensions_and_default_privileges_loads(
        pg_dsn_factory, tmp_path: Path) -> None:
    """What the sandbox does differently (a role runs the file, extensions and default
    privileges run privileged, event triggers last) reads back as the original."""
    src = pg_dsn_factory()
    pg_exec(src, """
        CREATE EXTENSION citext;
        CREATE SCHEMA app;
        ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT ON TABLES TO PUBLIC;
        CREATE TABLE app.users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                                email citext NOT NULL UNIQUE, bio text);
        CREATE VIEW app.emails AS SELECT email FROM app.users;
        CREATE MATERIALIZED VIEW app.counts AS SELECT count(*) AS n FROM app.users;
        CREATE FUNCTION app.touch() RETURNS event_trigger LANGUAGE plpgsql
            AS $$ BEGIN NULL; END $$;
        CREATE EVENT TRIGGER audit ON ddl_command_end EXECUTE FUNCTION app.touch();
        COMMENT ON TABLE app.users IS 'people';
        GRANT SELECT ON app.users TO pg_monitor;
    """)
    dump = tmp_path / "dump.sql"
    pg_dump = shutil.which("pg_dump") or "/usr/lib/postgresql/15/bin/pg_dump"
    import subprocess

    subprocess.run([pg_dump, "--schema-only", "-f", str(dump), src], check=True)
    proc = run("plan", "--from", src, "--to", str(dump), "-q")
    assert proc.returncode == 0, proc.stderr
    import json

    assert json.loads(proc.stdout)["steps"] == []


def test_sqlite_schema_cannot_touch_files_or_rows(tmp_path: Path) -> None:
    victim = tmp_path / "victim.db"
    with sqlite3.connect(victim) as conn:
        conn.execute("CREATE TABLE secrets (v text)")
        conn.execute("INSERT INTO secrets VALUES ('keep me')")
    written = tmp_path / "written.db"
    attacks = {
        "attach": f"CREATE TABLE t (a int);\nATTACH DATABASE '{victim}' AS v;\n"
                  "DELETE FROM v.secrets;\n",
        "vacuum_into": f"CREATE TABLE t (a int);\nVACUUM INTO '{written}';\n",
        "dml": "CREATE TABLE t (a int);\nINSERT INTO t VALUES (1);\n",
        "writable_schema": "PRAGMA writable_schema = 1;\nCREATE TABLE t (a int);\n",
        "create_as": "CREATE TABLE t AS SELECT 1 AS a;\n",
        "load_extension": "CREATE TABLE t (a int);\nSELECT load_extension('/tmp/evil');\n",
    }
    for name, text in attacks.items():
        path = tmp_path / f"{name}.sql"
        path.write_text(text)
        proc = run("validate", str(path), "--dialect", "sqlite")
        assert proc.returncode == 2, (name, proc.stderr)
        assert "not allowed in a schema file" in proc.stderr, (name, proc.stderr)
    assert not written.exists()
    with sqlite3.connect(victim) as conn:
        assert conn.execute("SELECT v FROM secrets").fetchall() == [("keep me",)]
    assert sorted(os.listdir(tmp_path)) == sorted(
        [f"{n}.sql" for n in attacks] + ["victim.db"])


def test_scratch_server_and_allowed_extensions_come_from_the_environment(
        pg_dsn: str, tmp_path: Path) -> None:
    schema = tmp_path / "schema.sql"
    schema.write_text("CREATE EXTENSION pg_stat_statements;\nCREATE TABLE t (a int);\n")
    (tmp_path / "lockplane.toml").write_text(
        f'[environments.dev]\ndatabase_url = "{pg_dsn}"\nschema_path = "schema.sql"\n')
    proc = run("plan", "--from-environment", "dev", "-q", cwd=tmp_path)
    assert proc.returncode == 2
    assert "extension 'pg_stat_statements' is not allowed in a schema file" in proc.stderr

    (tmp_path / "lockplane.toml").write_text(
        f'[environments.dev]\ndatabase_url = "{pg_dsn}"\nschema_path = "schema.sql"\n'
        'allowed_extensions = ["pg_stat_statements"]\n')
    proc = run("plan", "--from-environment", "dev", "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr

    # The scratch server is where the file runs, never the target when one is configured:
    # an unreachable one fails the load instead of falling back to the target.
    nowhere = "postgresql://postgres@127.0.0.1:9/postgres"
    (tmp_path / "lockplane.toml").write_text(
        f'[environments.dev]\ndatabase_url = "{pg_dsn}"\nschema_path = "schema.sql"\n'
        f'scratch_database_url = "{nowhere}"\n')
    proc = run("plan", "--from-environment", "dev", "-q", cwd=tmp_path)
    assert proc.returncode == 2 and "127.0.0.1:9" in proc.stderr, proc.stderr
    (tmp_path / "lockplane.toml").write_text(
        f'[environments.dev]\ndatabase_url = "{pg_dsn}"\nschema_path = "schema.sql"\n')
    proc = run("plan", "--from-environment", "dev", "-q", cwd=tmp_path,
               env={"LOCKPLANE_SCRATCH_DATABASE_URL": nowhere})
    assert proc.returncode == 2 and "127.0.0.1:9" in proc.stderr, proc.stderr


def test_apply_refuses_a_backfill_that_calls_a_privileged_function(pg_dsn: str,
                                                                    tmp_path: Path) -> None:
    pg_exec(pg_dsn, "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);")
    schema = tmp_path / "schema.sql"
    # A volatile default on a table with rows becomes a batched backfill of existing rows.
    schema.write_text("CREATE TABLE t (id int PRIMARY KEY, "
                      "host text DEFAULT pg_read_file('/etc/hostname'));\n")
    proc = run("apply", "--schema", str(schema), "--target", pg_dsn, "--auto-approve")
    assert proc.returncode == 3, proc.stderr
    assert "pg_read_file" in proc.stderr and "privileged-function" in proc.stderr
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM information_schema.columns "
                            "WHERE table_name = 't'").fetchone() == (1,)


def test_an_allowed_extension_s_reach_is_judged_at_apply(arena: Arena, tmp_path: Path) -> None:
    """An extension lockplane.toml allows (dblink) loads in the sandbox, where its calls
    fail as the sandbox role; the same call in a default runs on the target as the
    applying user. On 0717b2c this apply exited 0 and emptied the victim's table."""
    pg_exec(arena.target, "CREATE EXTENSION dblink")
    schema = tmp_path / "schema.sql"
    schema.write_text(
        "CREATE EXTENSION dblink;\nCREATE TABLE accounts (id int PRIMARY KEY, owner text, "
        f"note text DEFAULT dblink_exec('dbname={arena.victim_db} user=postgres "
        "host=127.0.0.1', 'DELETE FROM secrets'));\n")
    (tmp_path / "lockplane.toml").write_text(
        f'[environments.ci]\ndatabase_url = "{arena.target}"\n'
        'allowed_extensions = ["dblink"]\n')
    before = snapshot(arena)
    proc = run("apply", "--schema", str(schema), "--target-environment", "ci",
               "--auto-approve", cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert "dblink_exec (it runs a query given as text" in " ".join(proc.stderr.split())
    assert snapshot(arena) == before


def test_a_statement_reaches_the_server_alone(tmp_path: Path, arena: Arena) -> None:
    """Were the server to read a statement differently from the screen (a setting it was
    configured with, a version's lexer), the sandbox sends each statement on its own in
    the extended protocol, where a second command is refused outright."""
    from lockplane.dialects import get_dialect
    from lockplane.dialects.postgres.screen import Runs, Screened, Statement
    from lockplane.errors import BadInput

    hidden = (f"COMMENT ON TABLE t IS 'x\\''; COPY (SELECT 1) TO PROGRAM "
              f"$$touch {arena.canary_dir}/hidden$$; -- '")
    text = "CREATE TABLE t (a int);\n" + hidden
    screened = Screened("hidden.sql", text, [
        Statement("CREATE TABLE t (a int)", 1, 0, Runs.SANDBOX),
        # What a lexer that disagrees with the screen would pass on as one statement.
        Statement("SET standard_conforming_strings = off; " + hidden, 2, 24, Runs.SANDBOX),
    ])
    with get_dialect("postgres").sandbox(PG_ADMIN_DSN) as box, \
            pytest.raises(BadInput, match="cannot insert multiple commands"):
        box.run([screened])
    assert sorted(p.name for p in arena.canary_dir.iterdir()) == ["secret.txt"]


def test_private_scratch_server(pg_dsn: str, tmp_path: Path, arena: Arena) -> None:
    """scratch_database_url = "private": Lockplane starts a throwaway server of the target's
    major version; the roles the file names exist there (without login), and the file
    still runs as the sandbox role."""
    env = {"LOCKPLANE_SCRATCH_DATABASE_URL": "private"}
    schema = tmp_path / "schema.sql"
    schema.write_text("CREATE TABLE t (id int PRIMARY KEY, note text);\n"
                      "GRANT SELECT ON t TO lp_private_reader;\n")
    proc = run("plan", "--from", pg_dsn, "--to", str(schema), "-q", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "lp_private_reader" in proc.stdout  # the grant is in the plan
    with psycopg.connect(PG_ADMIN_DSN) as conn:  # and the role was made only over there
        assert conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'lp_private_reader'"
                            ).fetchone() is None
    attack = tmp_path / "attack.sql"
    attack.write_text(arena.render(
        (Path(__file__).parent / "data" / "attacks" / "04_default_runs_program.sql"
         ).read_text()))
    proc = run("plan", "--from", pg_dsn, "--to", str(attack), "-q", env=env)
    assert proc.returncode == 2 and "must be superuser" in proc.stderr, proc.stderr
    assert sorted(p.name for p in arena.canary_dir.iterdir()) == ["secret.txt"]


def test_functions_a_step_evaluates_are_read_not_trusted(pg_dsn: str, tmp_path: Path) -> None:
    """A default or index expression that calls the schema's own functions applies when
    they only compute a value; one whose function (through another) changes rows is
    refused before anything runs, unless acknowledged; so is one whose function calls a
    name the check cannot resolve."""
    pg_exec(pg_dsn, "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2);")
    pure = tmp_path / "pure.sql"
    pure.write_text(
        "CREATE FUNCTION twice(int) RETURNS int IMMUTABLE LANGUAGE sql AS $$ SELECT $1 * 2 $$;\n"
        "CREATE FUNCTION three() RETURNS int IMMUTABLE LANGUAGE plpgsql AS $$\n"
        # (keywords the expression scan sees before "(" are syntax, not unknown calls)
        "DECLARE x int; BEGIN x := coalesce(twice(1), 0) + greatest(1, 2) + nullif(1, 2)\n"
        "  + length(lower(left('Ab', 1))) + 1;\n"
        "IF exists(SELECT 1) AND x IN (1, 2) THEN x := 3; END IF; RETURN x; END $$;\n"
        "CREATE TABLE t (id int PRIMARY KEY, b int DEFAULT three());\n"
        "CREATE INDEX t_twice ON t (twice(id));\n")
    proc = run("apply", "--schema", str(pure), "--target", pg_dsn, "--auto-approve")
    assert proc.returncode == 0, proc.stderr
    hostile = tmp_path / "hostile.sql"
    # Harmless in the sandbox; on the target it empties the table (an immutable function
    # may call a volatile one; the body in BEGIN ATOMIC form is read too).
    hostile.write_text("CREATE FUNCTION wipe_v() RETURNS int LANGUAGE plpgsql AS $$\n"
                       "BEGIN IF current_database() NOT LIKE 'lockplane%' THEN DELETE FROM t; "
                       "END IF; RETURN 1; END $$;\n"
                       "CREATE FUNCTION wipe() RETURNS int IMMUTABLE LANGUAGE sql "
                       "BEGIN ATOMIC SELECT wipe_v(); END;\n" +
                       pure.read_text().replace("b int DEFAULT three()", "b int DEFAULT three(), "
                                                "c int DEFAULT wipe()"))
    proc = run("apply", "--schema", str(hostile), "--target", pg_dsn, "--auto-approve")
    assert proc.returncode == 3, proc.stderr
    assert "public.wipe (through public.wipe_v): DELETE" in " ".join(proc.stderr.split())
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (2,)
    unknown = tmp_path / "unknown.sql"
    unknown.write_text(pure.read_text().replace("x := 3;", "x := nowhere.helper(x);")
                       .replace("DEFAULT three()", "DEFAULT three(), d int DEFAULT three()"))
    proc = run("apply", "--schema", str(unknown), "--target", pg_dsn, "--auto-approve")
    assert proc.returncode == 3, proc.stderr
    assert ("public.three: calls nowhere.helper(), which is neither in the plan nor a "
            "function of the database") in " ".join(proc.stderr.split())
    proc = run("apply", "--schema", str(hostile), "--target", pg_dsn, "--auto-approve",
               "--acknowledge", "privileged-function")
    assert proc.returncode == 0, proc.stderr
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)


def test_a_function_of_the_schema_is_judged_by_its_body_not_its_name(
        pg_dsn: str, tmp_path: Path) -> None:
    """The functions refused by name (dblink*, lo_*, pg_read_* ...) are the server's and
    its extensions': a function of the schema that shares a prefix (lo_total) is read like
    any other, so one that computes a value applies and one that writes is refused for
    what it does, not for its name (it was refused as 'reaches outside the database')."""
    pg_exec(pg_dsn, "CREATE TABLE t (id int); INSERT INTO t VALUES (1);")
    code, err = _apply_permissive(pg_dsn, tmp_path / "pure.sql", (
        "CREATE FUNCTION lo_total() RETURNS int LANGUAGE sql IMMUTABLE RETURN 7;\n"
        "CREATE TABLE t (id int, n int DEFAULT lo_total());\n"))
    assert code == 0, err
    code, err = _apply_permissive(pg_dsn, tmp_path / "writes.sql", (
        "CREATE FUNCTION lo_total() RETURNS int LANGUAGE sql IMMUTABLE RETURN 7;\n"
        "CREATE FUNCTION lo_wipe() RETURNS int LANGUAGE plpgsql AS $$ BEGIN DELETE FROM t;"
        " RETURN 1; END $$;\n"
        "CREATE TABLE t (id int, n int DEFAULT lo_total(), m int DEFAULT lo_wipe());\n"))
    assert code == 3 and "public.lo_wipe: DELETE" in err, err
    assert "outside the database" not in err, err
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (1,)


def _apply_permissive(dsn: str, schema: Path, text: str) -> tuple[int, str]:
    """``apply --schema`` of ``text`` at --safety permissive: (exit code, stderr on one
    line)."""
    schema.write_text(text)
    proc = lockplane("apply", "--schema", str(schema), "--target", dsn, "--auto-approve",
                     "--safety", "permissive")
    return proc.code, " ".join(proc.stderr.split())


def test_what_a_table_already_holds_is_read_too(pg_dsn: str, tmp_path: Path) -> None:
    """A step that rewrites, validates or writes to a table evaluates expressions already
    stored on it (asked of the server: pg_depend), through the bodies the plan gives their
    functions: a harmless IMMUTABLE function in an index still lets a rewrite apply at
    once; a trigger function the plan rewrites is refused for a backfill's batches; an
    operator in a CHECK's function leads to the operator's function."""
    pg_exec(pg_dsn, """
        CREATE FUNCTION twice(int) RETURNS int IMMUTABLE LANGUAGE sql AS $$ SELECT $1 * 2 $$;
        CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql
            AS $$ BEGIN NEW.seen := true; RETURN NEW; END $$;
        CREATE FUNCTION same(text, text) RETURNS boolean IMMUTABLE LANGUAGE sql
            AS $$ SELECT $1 = $2 $$;
        CREATE OPERATOR ~=~ (LEFTARG = text, RIGHTARG = text, FUNCTION = same);
        CREATE FUNCTION ok(text) RETURNS boolean IMMUTABLE LANGUAGE sql
            AS $$ SELECT NOT ($1 ~=~ 'nobody') $$;
        CREATE TABLE t (id int PRIMARY KEY, a int, seen boolean);
        CREATE INDEX t_twice ON t (twice(id));
        CREATE TRIGGER t_touch BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION touch();
        INSERT INTO t VALUES (1, 1), (2, 2);
        CREATE TABLE u (id int PRIMARY KEY, owner text);
        INSERT INTO u VALUES (1, 'alice');
        ALTER TABLE u ADD CONSTRAINT u_ok CHECK (ok(owner)) NOT VALID;
    """)
    base = (
        "CREATE FUNCTION twice(int) RETURNS int IMMUTABLE LANGUAGE sql AS $$ SELECT $1 * 2 $$;\n"
        "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql\n"
        "    AS $$ BEGIN NEW.seen := true; RETURN NEW; END $$;\n"
        "CREATE FUNCTION same(text, text) RETURNS boolean IMMUTABLE LANGUAGE sql\n"
        "    AS $$ SELECT $1 = $2 $$;\n"
        "CREATE OPERATOR ~=~ (LEFTARG = text, RIGHTARG = text, FUNCTION = same);\n"
        "CREATE FUNCTION ok(text) RETURNS boolean IMMUTABLE LANGUAGE sql\n"
        "    AS $$ SELECT NOT ($1 ~=~ 'nobody') $$;\n"
        "CREATE TABLE t (id int PRIMARY KEY, a bigint, seen boolean);\n"
        "CREATE INDEX t_twice ON t (twice(id));\n"
        "CREATE TRIGGER t_touch BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION touch();\n"
        "CREATE TABLE u (id int PRIMARY KEY, owner text);\n"
        "ALTER TABLE u ADD CONSTRAINT u_ok CHECK (ok(owner)) NOT VALID;\n")
    def apply(text: str) -> tuple[int, str]:
        return _apply_permissive(pg_dsn, tmp_path / "schema.sql", text)

    # No false refusal: the rewrite (a int -> bigint) builds t_twice again; twice computes.
    code, said = apply(base)
    assert code == 0, said
    # The backfill of a volatile default updates every row: t_touch fires, with the body
    # the plan gives touch(), before the step's SQL ever names it.
    code, said = apply(base.replace("BEGIN NEW.seen", "BEGIN DELETE FROM u; NEW.seen")
                       .replace("seen boolean);", "seen boolean, r float DEFAULT random());"))
    assert code == 3, said
    assert "public.touch: DELETE, which trigger t_touch on table t runs for each row" in said
    # VALIDATE CONSTRAINT u_ok evaluates ok(), whose ~=~ calls the new body of same().
    code, said = apply(base.replace("IMMUTABLE LANGUAGE sql\n    AS $$ SELECT $1 = $2 $$",
                                    "LANGUAGE plpgsql\n"
                                    "    AS $$ BEGIN DELETE FROM t; RETURN $1 = $2; END $$")
                       .replace("CHECK (ok(owner)) NOT VALID", "CHECK (ok(owner))"))
    assert code == 3, said
    assert "public.ok (through public.same): DELETE, which constraint u_ok on table u" in said
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT (SELECT count(*) FROM t), (SELECT count(*) FROM u), "
                            "(SELECT prosrc FROM pg_proc WHERE proname = 'same')"
                            ).fetchone() == (2, 1, " SELECT $1 = $2 ")


def test_an_existing_trigger_is_followed_into_what_the_plan_redefines(
        pg_dsn: str, tmp_path: Path) -> None:
    """A trigger already on a table is the application's code, and runs for every write
    the application makes: a backfill that fires it applies. But what it calls that the
    plan redefines is new code the step runs, and so is its dynamic SQL when the plan
    defines any function (an EXECUTE may reach one); so is what a table it writes to runs."""
    pg_exec(pg_dsn, """
        CREATE FUNCTION mark() RETURNS boolean LANGUAGE sql AS $$ SELECT true $$;
        CREATE TABLE log (n int);
        CREATE FUNCTION note() RETURNS trigger LANGUAGE plpgsql
            AS $$ BEGIN RETURN NULL; END $$;
        CREATE TRIGGER log_note AFTER INSERT ON log FOR EACH ROW EXECUTE FUNCTION note();
        CREATE FUNCTION audit() RETURNS trigger LANGUAGE plpgsql
            AS $$ BEGIN NEW.seen := mark(); INSERT INTO log VALUES (1); RETURN NEW; END $$;
        CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql
            AS $$ BEGIN EXECUTE 'SELECT 1'; RETURN NEW; END $$;
        CREATE TABLE t (id int PRIMARY KEY, seen boolean);
        CREATE TRIGGER t_audit BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION audit();
        CREATE TABLE w (id int PRIMARY KEY);
        CREATE TRIGGER w_stamp BEFORE UPDATE ON w FOR EACH ROW EXECUTE FUNCTION stamp();
        CREATE TABLE u (id int PRIMARY KEY);
        INSERT INTO t VALUES (1), (2); INSERT INTO w VALUES (1); INSERT INTO u VALUES (1);
    """)
    base = (
        "CREATE TABLE u (id int PRIMARY KEY);\n"
        "CREATE FUNCTION mark() RETURNS boolean LANGUAGE sql AS $$ SELECT true $$;\n"
        "CREATE TABLE log (n int);\n"
        "CREATE FUNCTION note() RETURNS trigger LANGUAGE plpgsql\n"
        "    AS $$ BEGIN RETURN NULL; END $$;\n"
        "CREATE TRIGGER log_note AFTER INSERT ON log FOR EACH ROW EXECUTE FUNCTION note();\n"
        "CREATE FUNCTION audit() RETURNS trigger LANGUAGE plpgsql\n"
        "    AS $$ BEGIN NEW.seen := mark(); INSERT INTO log VALUES (1); RETURN NEW; END $$;\n"
        "CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql\n"
        "    AS $$ BEGIN EXECUTE 'SELECT 1'; RETURN NEW; END $$;\n"
        "CREATE TABLE t (id int PRIMARY KEY, seen boolean);\n"
        "CREATE TRIGGER t_audit BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION audit();\n"
        "CREATE TABLE w (id int PRIMARY KEY);\n"
        "CREATE TRIGGER w_stamp BEFORE UPDATE ON w FOR EACH ROW EXECUTE FUNCTION stamp();\n")
    def apply(text: str) -> tuple[int, str]:
        return _apply_permissive(pg_dsn, tmp_path / "schema.sql", text)

    filled = base.replace("seen boolean);", "seen boolean, r float DEFAULT random());")
    # mark() gets a body that deletes: the backfill's UPDATEs fire t_audit, which calls it.
    code, said = apply(filled.replace("AS $$ SELECT true $$",
                                      "AS $$ DELETE FROM u; SELECT true $$"))
    assert code == 3, said
    assert ("public.audit (through public.mark): DELETE, which trigger t_audit on table t "
            "runs for each row") in said
    # note() gets a body that deletes: t_audit's INSERT INTO log fires log_note.
    code, said = apply(filled.replace("BEGIN RETURN NULL;", "BEGIN DELETE FROM u; RETURN NULL;"))
    assert code == 3, said
    assert "public.audit (through public.note): DELETE, which trigger t_audit on table t" in said
    # The plan defines a function, and a backfill of w fires stamp()'s EXECUTE.
    stamped = base.replace("w (id int PRIMARY KEY);", "w (id int PRIMARY KEY, "
                           "r float DEFAULT random());")
    code, said = apply(stamped + "CREATE FUNCTION helper() RETURNS int LANGUAGE sql "
                                 "AS $$ SELECT 1 $$;\n")
    assert code == 3, said
    assert "public.stamp: dynamic SQL (EXECUTE), which trigger w_stamp on table w" in said
    # No false refusal: the same backfills, with the triggers' code as it is, apply.
    code, said = apply(filled.replace("w (id int PRIMARY KEY);", "w (id int PRIMARY KEY, "
                                      "r float DEFAULT random());"))
    assert code == 0, said
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT (SELECT count(*) FROM u), (SELECT count(*) FROM t "
                            "WHERE r IS NOT NULL)").fetchone() == (1, 2)


def test_a_role_that_may_not_create_databases_is_told_so(pg_dsn: str, tmp_path: Path) -> None:
    """The sandbox is a database on the target's server unless a scratch server is given:
    a role without CREATEDB gets one line saying so (exit 2), not an internal error."""
    role = f"lp_nocreatedb_{secrets.token_hex(4)}"  # (arena drops lockplane_attack*)
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        schema = tmp_path / "schema.sql"
        schema.write_text("CREATE TABLE t (a int);\n")
        as_role = pg_dsn.replace("postgres@", f"{role}@", 1)
        proc = lockplane("plan", "--from", as_role, "--to", str(schema), "-q")
        assert proc.code == 2, proc.stderr
        assert "lacks CREATEDB" in proc.stderr and "internal error" not in proc.stderr
        assert len([ln for ln in proc.stderr.splitlines() if ln.strip()]) == 1
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP ROLE "{role}"')


def test_plan_runs_no_schema_code_on_its_shadow_copies(arena: Arena, tmp_path: Path) -> None:
    """plan --analyze-locks runs the plan's steps on a shadow copy, plan --multi-phase its
    phases on a scratch copy: with the target's credentials, on the target's server by
    default. What apply would refuse to run is refused there before it runs (on 50bfd8f
    both ran this file's program during plan, exit 0 and exit 2)."""
    schema = tmp_path / "sleeper.sql"
    schema.write_text(arena.render("""
        CREATE FUNCTION sleeper_v() RETURNS int VOLATILE LANGUAGE plpgsql AS $$
        BEGIN
          IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
            EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch @CANARY_DIR@/plan_shadow''';
          END IF;
          RETURN 1;
        END $$;
        CREATE FUNCTION sleeper() RETURNS int IMMUTABLE LANGUAGE sql AS $$ SELECT sleeper_v() $$;
        CREATE TABLE accounts (id int PRIMARY KEY, owner varchar(40), b int DEFAULT sleeper());
        """))
    before = snapshot(arena)
    for extra, said in ((["--analyze-locks"], "--analyze-locks:"),
                        (["--multi-phase"], "multi-phase planning:")):
        proc = lockplane("plan", "--from", arena.target, "--to", str(schema), "-q", *extra)
        assert proc.code == 3, (extra, proc.stderr)
        text = " ".join(proc.stderr.split())
        assert said in text and "public.sleeper (through public.sleeper_v)" in text, text
        assert "Traceback" not in proc.stderr
        assert snapshot(arena) == before, extra


def test_a_file_s_event_trigger_does_not_fire_on_the_multi_phase_scratch_copy(
        arena: Arena, tmp_path: Path) -> None:
    """plan --multi-phase and plan-multiphase build their scratch copy from --from, which
    may be a file: its event trigger was created there (last) and fired on the phases'
    DDL as the planning superuser, where it counted as the database's own code (on
    d434a2e the static COPY ... TO PROGRAM below ran, exit 0). The copy's event triggers
    are paused while the phases run; the plan is the same."""
    trigger = arena.render("""
        CREATE FUNCTION on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
            COPY (SELECT 1) TO PROGRAM 'touch @CANARY_DIR@/multi_phase_scratch';
          END IF;
        END $$;
        CREATE EVENT TRIGGER on_ddl ON ddl_command_end EXECUTE FUNCTION on_ddl();
        """)
    a, b = tmp_path / "a.sql", tmp_path / "b.sql"
    a.write_text("CREATE TABLE accounts (id int PRIMARY KEY, owner text);\n" + trigger)
    b.write_text("CREATE TABLE accounts (id int PRIMARY KEY, holder text);\n" + trigger)
    before = snapshot(arena)
    for args in (("plan", "--from", str(a), "--to", str(b), "--multi-phase", "-q"),
                 ("plan-multiphase", "--pattern", "rename_column", "--table", "accounts",
                  "--column", "owner", "--to-name", "holder", "--from", str(a))):
        proc = lockplane(*args)
        assert proc.code == 0, (args[0], proc.stderr)
        assert snapshot(arena) == before, args[0]


def test_security_definer_is_judged_by_what_its_owner_may_do(
        owner_dsn: tuple[str, str], tmp_path: Path) -> None:
    """A SECURITY DEFINER function that writes lends its owner's rights to its callers:
    owned by a role with nothing beyond its own objects (and CREATEDB, for the sandbox),
    that is the application's design and applies; owned by a superuser (attack 73) or a
    role with CREATEROLE, it is refused unless acknowledged."""
    role, as_role = owner_dsn
    schema = tmp_path / "schema.sql"
    schema.write_text(
        "CREATE TABLE profiles (id int PRIMARY KEY);\n"
        "CREATE TABLE users (id int PRIMARY KEY);\n"
        "CREATE FUNCTION add_profile() RETURNS trigger SECURITY DEFINER LANGUAGE plpgsql\n"
        "  AS $$ BEGIN INSERT INTO profiles VALUES (NEW.id); RETURN NEW; END $$;\n"
        "CREATE TRIGGER users_profile AFTER INSERT ON users\n"
        "  FOR EACH ROW EXECUTE FUNCTION add_profile();\n")
    proc = lockplane("apply", "--schema", str(schema), "--target", as_role, "--auto-approve")
    assert proc.code == 0, proc.stderr
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'ALTER ROLE "{role}" CREATEROLE')
    schema.write_text(schema.read_text().replace("VALUES (NEW.id)", "VALUES (NEW.id + 0)"))
    proc = lockplane("apply", "--schema", str(schema), "--target", as_role, "--auto-approve")
    assert proc.code == 3, proc.stderr
    assert "public.add_profile: INSERT, a SECURITY DEFINER function" in " ".join(
        proc.stderr.split())


def test_row_security_policies_a_backfill_evaluates_are_judged(
        owner_dsn: tuple[str, str], tmp_path: Path) -> None:
    """A non-superuser owner under FORCE ROW LEVEL SECURITY is subject to its table's
    policies: a backfill's UPDATE (and every read of the table) runs their expressions
    as the applying role. A policy already there is the database's own code, like a
    trigger; what it calls that the plan gives a new body is judged. On 0717b2c this
    apply replaced watch() with a writing body, then failed in the fill's planning with
    'internal error: ReadOnlySqlTransaction' (its count of the rows ran the policy),
    leaving the new body applied. A standalone backfill over such a policy is bad input,
    one line."""
    _, as_role = owner_dsn
    pg_exec(as_role, """
        CREATE TABLE accounts (id int PRIMARY KEY, owner text);
        INSERT INTO accounts SELECT g, 'o' || g FROM generate_series(1, 5) g;
        CREATE TABLE audit (who text);
        CREATE FUNCTION watch() RETURNS boolean LANGUAGE plpgsql
          AS $$ BEGIN RETURN true; END $$;
        ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
        ALTER TABLE accounts FORCE ROW LEVEL SECURITY;
        CREATE POLICY everyone ON accounts USING (watch());""")
    schema = tmp_path / "schema.sql"
    schema.write_text("""
        CREATE TABLE audit (who text);
        CREATE FUNCTION watch() RETURNS boolean LANGUAGE plpgsql
          AS $$ BEGIN INSERT INTO audit VALUES (current_user); RETURN true; END $$;
        CREATE TABLE accounts (
          id int PRIMARY KEY,
          owner text,
          note text NOT NULL -- lockplane:fill-with 'x' || id
        );
        ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
        ALTER TABLE accounts FORCE ROW LEVEL SECURITY;
        CREATE POLICY everyone ON accounts USING (watch());
        """)
    proc = lockplane("apply", "--schema", str(schema), "--target", as_role, "--auto-approve")
    assert proc.code == 3, proc.stderr
    assert "public.watch: INSERT, which policy everyone on table accounts evaluates" in \
        " ".join(proc.stderr.split())
    with psycopg.connect(as_role) as conn:
        assert "INSERT" not in conn.execute(
            "SELECT prosrc FROM pg_proc WHERE proname = 'watch'").fetchone()[0]
        assert conn.execute("SELECT count(*) FROM audit").fetchone() == (0,)
    # The database's own writing policy: a backfill's planning only reads, and says so.
    pg_exec(as_role, "CREATE OR REPLACE FUNCTION watch() RETURNS boolean LANGUAGE plpgsql "
                     "AS $$ BEGIN INSERT INTO audit VALUES (current_user); RETURN true; "
                     "END $$")
    proc = lockplane("backfill", "--target", as_role, "--table", "accounts",
                     "--set", "owner = upper(owner)", "--dry-run")
    assert proc.code == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "reading it ran code that writes" in lines[0], proc.stderr
    assert "internal error" not in proc.output


def test_row_security_policies_of_a_table_a_fill_reads_are_judged(
        owner_dsn: tuple[str, str], tmp_path: Path) -> None:
    """A fill that reads another table under FORCE ROW LEVEL SECURITY runs that table's
    policies for the rows it reads. On b97d181 (policies of the written table only) this
    apply replaced watch() with its writing body before the fill failed."""
    _, as_role = owner_dsn
    pg_exec(as_role, """
        CREATE TABLE accounts (id int PRIMARY KEY, owner text);
        INSERT INTO accounts SELECT g, 'o' || g FROM generate_series(1, 5) g;
        CREATE TABLE plans (id int PRIMARY KEY, name text);
        INSERT INTO plans VALUES (1, 'free');
        CREATE TABLE audit (who text);
        CREATE FUNCTION watch() RETURNS boolean LANGUAGE plpgsql
          AS $$ BEGIN RETURN true; END $$;
        ALTER TABLE plans ENABLE ROW LEVEL SECURITY;
        ALTER TABLE plans FORCE ROW LEVEL SECURITY;
        CREATE POLICY everyone ON plans USING (watch());""")
    schema = tmp_path / "schema.sql"
    schema.write_text("""
        CREATE TABLE audit (who text);
        CREATE FUNCTION watch() RETURNS boolean LANGUAGE plpgsql
          AS $$ BEGIN INSERT INTO audit VALUES (current_user); RETURN true; END $$;
        CREATE TABLE plans (id int PRIMARY KEY, name text);
        ALTER TABLE plans ENABLE ROW LEVEL SECURITY;
        ALTER TABLE plans FORCE ROW LEVEL SECURITY;
        CREATE POLICY everyone ON plans USING (watch());
        CREATE TABLE accounts (
          id int PRIMARY KEY,
          owner text,
          plan text NOT NULL -- lockplane:fill-with (SELECT name FROM plans WHERE id = 1)
        );
        """)
    proc = lockplane("apply", "--schema", str(schema), "--target", as_role, "--auto-approve")
    assert proc.code == 3, proc.stderr
    assert "public.watch: INSERT, which policy everyone on table plans evaluates" in \
        " ".join(proc.stderr.split())
    with psycopg.connect(as_role) as conn:
        assert "INSERT" not in conn.execute(
            "SELECT prosrc FROM pg_proc WHERE proname = 'watch'").fetchone()[0]
        assert conn.execute("SELECT count(*) FROM audit").fetchone() == (0,)


def test_what_only_a_privileged_reader_sees_is_not_copied(arena: Arena, tmp_path: Path) -> None:
    """pg_stat_activity, pg_user_mappings, pg_settings: PUBLIC may read them, and a
    superuser sees more (every session's query text, user mappings' passwords). A fill
    runs as the applying superuser; on d434a2e this one applied (exit 0) and another
    role's last query, with the secret in it, was in every row of accounts."""
    # (not lockplane_attack_*: the attack tests running alongside watch those roles)
    role = f"lockplane_reader_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
    schema = tmp_path / "schema.sql"
    schema.write_text(
        "CREATE TABLE accounts (id int PRIMARY KEY, owner text,\n"
        "  note text NOT NULL -- lockplane:fill-with (SELECT string_agg(query, ' | ') "
        f"FROM pg_stat_activity WHERE usename = '{role}')\n);\n")
    other = psycopg.connect(arena.victim.replace("postgres@", f"{role}@", 1), autocommit=True)
    try:
        other.execute(f"SELECT '{arena.secret}'")  # (its last query: shown while idle)
        before = snapshot(arena)
        proc = lockplane("apply", "--schema", str(schema), "--target", arena.target,
                         "--auto-approve")
        assert proc.code == 3, proc.stderr
        assert "pg_stat_activity" in proc.stderr and arena.secret not in proc.output
        assert snapshot(arena) == before
    finally:
        other.close()
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')


_HIJACK = """
    CREATE SCHEMA evil;
    CREATE TABLE public.canary (what text);
    -- Operators and functions Lockplane's own SQL could resolve once evil comes first.
    CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE sql AS
        $$ INSERT INTO public.canary VALUES ('now()'); SELECT pg_catalog.statement_timestamp() $$;
    CREATE FUNCTION evil.count(anyelement) RETURNS bigint LANGUAGE sql AS
        $$ INSERT INTO public.canary VALUES ('count()'); SELECT 1::bigint $$;
    CREATE FUNCTION evil.pg_wal_lsn_diff(pg_lsn, pg_lsn) RETURNS numeric LANGUAGE sql AS
        $$ INSERT INTO public.canary VALUES ('pg_wal_lsn_diff()');
           SELECT 1 OPERATOR(pg_catalog./) pg_catalog.starts_with(
               pg_catalog.current_database(), 'lp_test_')::pg_catalog.int4::numeric $$;
"""
_HIJACK_OPS = ["=", "<>", "<", ">", "<=", ">="]
_HIJACK_TYPES = ["int4", "int8", "int2", "text"]


def _hijack_sql(count: bool = True) -> str:
    # (count(anyelement) beside pg_catalog's count("any") makes count(x) ambiguous, an
    # error, whatever comes first on the search_path: left out where that would answer)
    out = [_HIJACK if count else "\n".join(
        ln for ln in _HIJACK.splitlines() if "evil.count" not in ln and "'count()'" not in ln)]
    for i, op in enumerate(_HIJACK_OPS):
        for a in _HIJACK_TYPES:
            for b in _HIJACK_TYPES:
                if (a == "text") != (b == "text"):
                    continue
                fn = f"evil.op{i}_{a}_{b}"
                out.append(
                    f"CREATE FUNCTION {fn}(x {a}, y {b}) RETURNS boolean LANGUAGE sql AS "
                    f"$$ INSERT INTO public.canary VALUES ('{op}'); "
                    # (on a copy Lockplane makes, the canary table is not the target's:
                    # there the call fails, and so does the apply)
                    f"SELECT 1 OPERATOR(pg_catalog./) pg_catalog.starts_with("
                    f"pg_catalog.current_database(), 'lp_test_')::pg_catalog.int4 "
                    f"OPERATOR(pg_catalog.=) 1 AND x OPERATOR(pg_catalog.{op}) y $$;\n"
                    f"CREATE OPERATOR evil.{op} (LEFTARG = {a}, RIGHTARG = {b}, "
                    f"FUNCTION = {fn});")
    return "\n".join(out)


def test_code_a_step_fires_cannot_change_what_lockplane_s_own_sql_means(
        pg_dsn: str, tmp_path: Path) -> None:
    """A trigger the database already holds (its own code, not judged) puts a schema of its
    own first on the search_path of the session that fires it: set_config(..., false),
    and SET in a PL/pgSQL body. A backfill's batches fire it on their session, a step's
    UPDATE on apply's: Lockplane's own SQL after them (progress and history rows, the next
    batch's key query, the next step) must still mean pg_catalog's operators and
    functions, not the schema's, which record each call in a canary table."""
    pg_exec(pg_dsn, _hijack_sql() + """
        CREATE FUNCTION hook() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
            PERFORM pg_catalog.set_config('search_path', 'evil, pg_catalog, public', false);
            PERFORM pg_catalog.set_config('lock_timeout', '0', false);
            RETURN NEW; END $$;
        CREATE FUNCTION hook2() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
            SET search_path = evil, pg_catalog, public; RETURN NEW; END $$;
        CREATE TABLE t (id int PRIMARY KEY, n int);
        CREATE TRIGGER t_hook BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION hook();
        CREATE TABLE u (id int PRIMARY KEY, n int);
        CREATE TRIGGER u_hook BEFORE UPDATE ON u FOR EACH ROW EXECUTE FUNCTION hook2();
        INSERT INTO t SELECT g, g FROM generate_series(1, 50) g;
        INSERT INTO u SELECT g, g FROM generate_series(1, 50) g;
    """)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM public.canary")
    schema = (_hijack_sql() + """
        CREATE FUNCTION hook() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
            PERFORM pg_catalog.set_config('search_path', 'evil, pg_catalog, public', false);
            PERFORM pg_catalog.set_config('lock_timeout', '0', false);
            RETURN NEW; END $$;
        CREATE FUNCTION hook2() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
            SET search_path = evil, pg_catalog, public; RETURN NEW; END $$;
        CREATE TABLE t (id int PRIMARY KEY, n int, r float DEFAULT random());
        CREATE TRIGGER t_hook BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION hook();
        CREATE TABLE u (id int PRIMARY KEY, n int, r float DEFAULT random());
        CREATE TRIGGER u_hook BEFORE UPDATE ON u FOR EACH ROW EXECUTE FUNCTION hook2();
    """)
    code, said = _apply_permissive(pg_dsn, tmp_path / "schema.sql", schema)
    assert code == 0, said
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT (SELECT count(*) FROM t WHERE r IS NOT NULL), "
                            "(SELECT count(*) FROM u WHERE r IS NOT NULL)").fetchone() == (50, 50)
        assert conn.execute("SELECT what, count(*) FROM public.canary GROUP BY what "
                            "ORDER BY what").fetchall() == []
    # A standalone backfill: its trial on a shadow copy (which holds the trigger and the
    # operators; called there, they fail the run) and its batches on the target.
    proc = lockplane("backfill", "--target", pg_dsn, "--table", "t", "--set", "n = n + 1",
                     "--auto-approve")
    assert proc.code == 0, proc.stderr
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT sum(n) FROM t").fetchone() == (1325,)
        assert conn.execute("SELECT what, count(*) FROM public.canary GROUP BY what "
                            "ORDER BY what").fetchall() == []


def test_a_step_s_statements_and_progress_run_with_the_session_s_own_settings(
        pg_dsn: str) -> None:
    """The same trigger fired by a step's UPDATE on apply's own session (run_group): the
    step's next statement, the next step of its transaction and the progress written in
    it, and a step outside a transaction that fails after firing it, all run with the
    search_path, role and timeouts the session was given, not those the trigger set."""
    from lockplane.dialects import connect
    from lockplane.execute import ApplyOptions, ExecutionFailed, run_group, session_settings
    from lockplane.plan import Step

    # (a predefined role: one made here would show in the attack tests' snapshots of
    # the server's roles, which run alongside)
    pg_exec(pg_dsn, _hijack_sql() + """
        CREATE FUNCTION hook() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
            PERFORM pg_catalog.set_config('search_path', 'evil, pg_catalog, public', false);
            PERFORM pg_catalog.set_config('lock_timeout', '0', false);
            PERFORM pg_catalog.set_config('session_replication_role', 'replica', false);
            PERFORM pg_catalog.set_config('role', 'pg_monitor', false);
            RETURN NEW; END $$;
        CREATE TABLE t (id int PRIMARY KEY, n int);
        CREATE TRIGGER t_hook BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION hook();
        CREATE TABLE seen (at timestamptz);
        INSERT INTO t VALUES (1, 1), (2, 2);
    """)
    opts = ApplyOptions(lock_timeout_ms=1500)
    settings: list[tuple[str, ...]] = []
    with connect(pg_dsn) as db, session_settings(db, opts):
        def progress(done: int) -> None:
            settings.append(db.query(
                "SELECT pg_catalog.current_setting('search_path'), current_user, "
                "pg_catalog.current_setting('lock_timeout'), "
                "pg_catalog.current_setting('session_replication_role')")[0])
            db.query("SELECT count(*) FROM t WHERE id = 1")

        run_group(db, [(0, Step(description="touch", sql=[
            "UPDATE t SET n = n + 1", "INSERT INTO seen SELECT now()"])),
            (1, Step(description="again", sql=["INSERT INTO seen SELECT now()"]))],
            opts, on_committed=progress)
        with pytest.raises(ExecutionFailed):
            run_group(db, [(2, Step(description="outside", transactional=False, sql=[
                "UPDATE t SET n = n + 1", "SELECT 1 / 0"]))], opts)
        progress(3)
    assert settings == [('"$user", public', "postgres", "1500ms", "origin")] * 2
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM seen").fetchone() == (2,)
        assert conn.execute("SELECT what, count(*) FROM public.canary GROUP BY what "
                            "ORDER BY what").fetchall() == []


def test_a_function_that_locks_rows_is_not_only_reading(pg_dsn: str, tmp_path: Path) -> None:
    """SELECT ... FOR UPDATE (or SHARE) in a function a step evaluates is a side effect:
    every row it reads stays locked until the step's transaction ends. It was read as a
    plain query (function_effects let it through); in SQL and in PL/pgSQL, in a subquery
    too, it is refused now; the same function without the clause applies."""
    pg_exec(pg_dsn, "CREATE TABLE acct (id int PRIMARY KEY); INSERT INTO acct VALUES (1);"
                    "CREATE TABLE t (id int); INSERT INTO t VALUES (1);")
    base = "CREATE TABLE acct (id int PRIMARY KEY);\n"
    for body, words in (
            ("LANGUAGE sql AS $$ SELECT id FROM acct ORDER BY id LIMIT 1 FOR UPDATE $$",
             "UPDATE"),
            ("LANGUAGE sql AS $$ SELECT count(*)::int FROM (SELECT id FROM acct "
             "FOR KEY SHARE) s $$", "KEY SHARE"),
            ("LANGUAGE plpgsql AS $$ DECLARE n int; BEGIN PERFORM id FROM acct FOR SHARE; "
             "SELECT id INTO n FROM acct FOR NO KEY UPDATE; RETURN 1; END $$", "NO KEY UPDATE")):
        code, err = _apply_permissive(pg_dsn, tmp_path / "locks.sql", (
            base + f"CREATE FUNCTION held() RETURNS int {body};\n"
            "CREATE TABLE t (id int, n int DEFAULT held());\n"))
        assert code == 3, err
        assert f"public.held: SELECT ... FOR {words}" in err, err
    code, err = _apply_permissive(pg_dsn, tmp_path / "reads.sql", (
        base + "CREATE FUNCTION held() RETURNS int LANGUAGE sql AS "
               "$$ SELECT count(*)::int FROM acct $$;\n"
               "CREATE TABLE t (id int, n int DEFAULT held());\n"))
    assert code == 0, err


def test_a_default_search_path_that_puts_a_schema_first_is_not_followed(
        pg_dsn: str, tmp_path: Path) -> None:
    """The sessions' starting search_path is the database's (or role's) default, which
    code run earlier as the applying role may have set (ALTER DATABASE ... SET
    search_path = evil, pg_catalog, public). Lockplane's sessions put pg_catalog first,
    where it is when the search_path does not name it: an apply with backfills, whose
    own SQL runs before and between the steps, calls none of the schema's operators."""
    pg_exec(pg_dsn, _hijack_sql(count=False) + """
        CREATE TABLE t (id int PRIMARY KEY, n int);
        INSERT INTO t SELECT g, g FROM generate_series(1, 50) g;
    """)
    dbname = psycopg.conninfo.conninfo_to_dict(pg_dsn)["dbname"]
    pg_exec(pg_dsn, f'ALTER DATABASE "{dbname}" SET search_path = evil, pg_catalog, public')
    code, said = _apply_permissive(pg_dsn, tmp_path / "schema.sql", _hijack_sql(False) + (
        "CREATE TABLE t (id int PRIMARY KEY, n int, r float DEFAULT random());\n"))
    assert code == 0, said
    with psycopg.connect(pg_dsn) as conn:
        conn.execute("SET search_path = pg_catalog, public")
        assert conn.execute("SELECT count(*) FROM t WHERE r IS NOT NULL").fetchone() == (50,)
        assert conn.execute("SELECT what, count(*) FROM public.canary GROUP BY what "
                            "ORDER BY what").fetchall() == []


def test_the_backfill_s_own_counts_call_the_server_s_count(pg_dsn: str) -> None:
    """A function of the database named count, of the expression's own type, is a closer
    match than the built-in count("any") wherever pg_catalog stands on the search_path:
    the backfill's read-only check (count(expr) per batch) ran that aggregate, as the
    applying role (here its step function raises). Lockplane's own SQL names
    pg_catalog.count."""
    pg_exec(pg_dsn, """
        CREATE FUNCTION boom(bigint, double precision) RETURNS bigint LANGUAGE plpgsql
            AS $$ BEGIN RAISE EXCEPTION 'public.count ran'; END $$;
        CREATE AGGREGATE public.count(double precision) (SFUNC = boom, STYPE = bigint,
                                                         INITCOND = '0');
        CREATE TABLE t (id int PRIMARY KEY, r float);
        INSERT INTO t SELECT g, NULL FROM generate_series(1, 20) g;
    """)
    proc = lockplane("backfill", "--target", pg_dsn, "--table", "t", "--set", "r = id * 0.5",
                     "--auto-approve")
    assert proc.code == 0, proc.stderr
    assert "public.count ran" not in proc.output
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT pg_catalog.count(r) FROM t").fetchone() == (20,)
