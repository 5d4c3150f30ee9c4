"""Views, defaults and CHECKs declared with a time value the server freezes (issue 16
item 6): 'now'::timestamp is stored as the moment of the CREATE, so the desired schema
loaded a second later differs from the live one. Such objects are compared without the
frozen values (no plan recreates them), an apply that creates them reaches its target,
and plan and lint say the value is frozen (almost always a bug)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from lockplane.dialects.postgres.frozen import frozen_marks, thawed
from tests.cli_inprocess import Result, lockplane
from tests.conftest import pg_exec

FROZEN = """CREATE TABLE t (
  id int,
  at timestamp DEFAULT 'now'::timestamp,
  d date DEFAULT 'today',
  CHECK (d > 'yesterday'::date)
);
CREATE VIEW v AS SELECT id, 'now'::timestamp AS loaded, 'today'::date AS day
  FROM t WHERE at < 'tomorrow'::timestamptz;
"""


def _ok(res: Result) -> Result:
    assert res.code == 0, res.output
    return res


def _plan(src: str, to: Path, out: Path) -> dict:
    _ok(lockplane("plan", "--from", src, "--to", str(to), "-o", str(out)))
    return json.loads(out.read_text())


def test_marks_found_by_the_parser() -> None:
    sql = FROZEN + """
        CREATE TABLE s.u (x date, y timestamp, e timestamp DEFAULT 'epoch',
                          i date DEFAULT 'infinity', n text DEFAULT 'now',
                          c timestamptz DEFAULT now(), cd date DEFAULT CURRENT_DATE);
        ALTER TABLE s.u ALTER COLUMN y SET DEFAULT 'now'::timestamp;
        ALTER TABLE s.u ADD COLUMN z date DEFAULT CAST('Today' AS date),
            ADD CONSTRAINT k CHECK (y > timestamp 'now');
        CREATE VIEW fine AS SELECT 'epoch'::timestamp, 'infinity'::date, 'now'::text,
            now(), CURRENT_DATE;
        CREATE MATERIALIZED VIEW m AS SELECT 'yesterday'::date AS a;
    """
    assert frozen_marks([sql]) == {
        ("check", "public", "t"), ("default", "public", "t", "at"),
        ("default", "public", "t", "d"), ("view", "public", "v"), ("view", "public", "m"),
        ("default", "s", "u", "y"), ("default", "s", "u", "z"), ("check", "s", "u")}
    one = " SELECT t.id, '2026-12-06 20:00:56.5'::timestamp without time zone AS a FROM t"
    assert thawed(one, "") == thawed(one.replace("56.5", "57.9"), "")
    assert thawed(one, "") != thawed(one.replace("AS a", "AS b"), "")


def test_frozen_objects_plan_once_and_converge(pg_dsn: str, pg_dsn_factory,
                                               tmp_path: Path) -> None:
    schema = tmp_path / "s.sql"
    schema.write_text(FROZEN)
    plan = _plan(pg_dsn, schema, tmp_path / "p.json")
    assert sorted(map(tuple, plan["frozen_literals"])) == [
        ("check", "public", "t"), ("default", "public", "t", "at"),
        ("default", "public", "t", "d"), ("view", "public", "v")]
    for step in plan["steps"]:
        assert [f["rule"] for f in step["findings"]] == ["frozen-time-literal"]
        assert step["safety"] == "review"
    # Created a moment later than the plan loaded it: still the plan's target.
    res = _ok(lockplane("apply", str(tmp_path / "p.json"), "--target", pg_dsn,
                        "--auto-approve"))
    assert "shadow validation passed" in res.output and "diverged" not in res.output
    time.sleep(0.05)
    assert _plan(pg_dsn, schema, tmp_path / "again.json")["steps"] == []

    # A database whose objects were created on another day, from the same declaration.
    other = pg_dsn_factory()
    pg_exec(other, FROZEN.replace("'now'::timestamp", "'2001-02-03 04:05:06'::timestamp")
            .replace("'today'", "'2001-02-03'").replace("'yesterday'", "'2001-02-02'")
            .replace("'tomorrow'", "'2001-02-04'"))
    assert _plan(other, schema, tmp_path / "other.json")["steps"] == []

    # A real change to the view is still a change.
    schema.write_text(FROZEN.replace("AS day", "AS day, 1 AS one"))
    kinds = [s["kind"] for s in _plan(pg_dsn, schema, tmp_path / "changed.json")["steps"]]
    assert kinds and all("view" in k for k in kinds), kinds


def test_unmarked_date_literals_still_differ(pg_dsn: str, tmp_path: Path) -> None:
    pg_exec(pg_dsn, "CREATE VIEW w AS SELECT '2020-01-01'::date AS since;")
    schema = tmp_path / "s.sql"
    schema.write_text("CREATE VIEW w AS SELECT '2021-01-01'::date AS since;")
    plan = _plan(pg_dsn, schema, tmp_path / "p.json")
    assert plan["steps"] and "frozen_literals" not in plan


def test_lint_says_the_value_is_frozen(tmp_path: Path) -> None:
    (tmp_path / "m.sql").write_text(
        "CREATE VIEW ok AS SELECT now(), CURRENT_DATE, 'epoch'::timestamp;\n"
        "CREATE VIEW bad AS SELECT 'now'::timestamp AS at;\n")
    res = lockplane("lint", str(tmp_path / "m.sql"), "--format", "json")
    found = [f for f in json.loads(res.stdout) if f["rule"] == "frozen-time-literal"]
    assert len(found) == 1 and found[0]["line"] == 2 and "bad" in found[0]["message"]


def test_drift_check_sees_no_drift_in_a_frozen_view(pg_dsn: str, tmp_path: Path) -> None:
    from lockplane.drift.check import Target, check_drift
    from lockplane.sources import SourceContext
    from tests.conftest import PG_ADMIN_DSN

    pg_exec(pg_dsn, FROZEN)
    time.sleep(0.05)
    schema = tmp_path / "s.sql"
    schema.write_text(FROZEN)
    ctx = SourceContext(dialect="postgres", server_dsn=PG_ADMIN_DSN)
    report = check_drift([Target("prod", pg_dsn, str(schema), ctx)], history=False)
    (env,) = report.environments
    assert env.status == "clean" and not env.items, env.to_json()
