"""An apply that ends at a hash other than its plan's target is a failure (issue 16,
item 3): non-zero exit, the history row marked ``diverged``, and what differs listed.

The server here stores something other than the plan declared because an event trigger
(part of both schemas) comments every table it sees altered: every step succeeds, and
the database still ends elsewhere.
"""

from __future__ import annotations

import json
from pathlib import Path

import psycopg

from lockplane.dialects import connect
from lockplane.drift.history import EnvironmentHistory, compare_histories
from lockplane.state import History
from tests.conftest import pg_exec
from tests.test_cli import run

STAMPER = """
CREATE FUNCTION stamp() RETURNS event_trigger LANGUAGE plpgsql AS $$
DECLARE r record;
BEGIN
  FOR r IN SELECT * FROM pg_event_trigger_ddl_commands() WHERE command_tag = 'ALTER TABLE'
  LOOP EXECUTE format('COMMENT ON TABLE %s IS %L', r.object_identity, 'stamped'); END LOOP;
END $$;
CREATE EVENT TRIGGER stamp ON ddl_command_end EXECUTE FUNCTION stamp();
CREATE TABLE users (id int PRIMARY KEY, email text);
"""
WANTED = STAMPER + """
CREATE TABLE "Audit Log" (id int PRIMARY KEY, note text);
COMMENT ON TABLE "Audit Log" IS 'declared';
ALTER TABLE users ADD COLUMN nick text;
COMMENT ON TABLE users IS NULL;
"""


def test_apply_that_ends_elsewhere_fails_and_says_what_differs(pg_dsn_factory,
                                                               tmp_path: Path) -> None:
    live, wanted = pg_dsn_factory(), pg_dsn_factory()
    pg_exec(live, STAMPER)
    pg_exec(wanted, WANTED)
    plan_file = tmp_path / "plan.json"
    planned = run("plan", "--from", live, "--to", wanted, "--output", str(plan_file))
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(plan_file.read_text())
    assert plan["target_objects"]["tables public.Audit Log / comment"]

    applied = run("apply", str(plan_file), "--target", live, "--auto-approve",
                  "--skip-shadow")
    assert applied.returncode == 1, (applied.stdout, applied.stderr)
    assert "Traceback" not in applied.stderr
    text = applied.stderr
    assert "not the plan's target" in text and "Applied" not in text
    # The table the trigger commented differs, by its comment alone; the rest is as planned.
    assert "tables public.users: comment differ(s)" in text, text
    assert "Audit Log" not in text.split("what differs:", 1)[1], text

    with psycopg.connect(live) as conn:
        result, error, hash_after = conn.execute(
            "SELECT result, error, hash_after FROM lockplane.migrations "
            "ORDER BY id DESC LIMIT 1").fetchone()
        comment = conn.execute("SELECT obj_description('users'::regclass)").fetchone()[0]
    assert result == "diverged"
    assert "tables public.users: comment differ(s)" in error
    assert hash_after and hash_after != plan["target_hash"]
    assert comment == "stamped"  # the steps stay applied; the trigger ran after them

    # Applying the same plan again is refused: the database is at neither of its hashes.
    again = run("apply", str(plan_file), "--target", live, "--auto-approve", "--skip-shadow")
    assert again.returncode == 3, (again.stdout, again.stderr)

    # The history says so, and so does drift's reading of it.
    shown = run("history", "--target", live)
    assert shown.returncode == 0 and "diverged" in shown.stderr, shown.stderr
    assert "tables public.users: comment differ(s)" in shown.stderr
    with connect(live) as db:
        records = History(db).list(10)
    found = compare_histories({"prod": EnvironmentHistory("prod", True, records)})
    (finding,) = found["prod"]
    assert finding.kind == "diverged"
    assert f"ended at hash {hash_after[:12]}, not its target {plan['target_hash'][:12]}" in \
        finding.message


def test_apply_that_reaches_its_target_is_applied(pg_dsn_factory, tmp_path: Path) -> None:
    live, wanted = pg_dsn_factory(), pg_dsn_factory()
    pg_exec(live, "CREATE TABLE users (id int PRIMARY KEY);")
    pg_exec(wanted, "CREATE TABLE users (id int PRIMARY KEY, email text);")
    plan_file = tmp_path / "plan.json"
    assert run("plan", "--from", live, "--to", wanted, "--output",
               str(plan_file)).returncode == 0
    applied = run("apply", str(plan_file), "--target", live, "--auto-approve",
                  "--skip-shadow")
    assert applied.returncode == 0, applied.stderr
    with psycopg.connect(live) as conn:
        assert conn.execute("SELECT result FROM lockplane.migrations").fetchone()[0] == \
            "applied"
