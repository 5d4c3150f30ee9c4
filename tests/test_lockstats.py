"""Measured lock impact (plan --analyze-locks) on real PostgreSQL: locks, scaling, failures.

The lock modes asserted are what PostgreSQL itself takes for the step's SQL, so the tests
hold whether the planner emits CREATE INDEX or CREATE INDEX CONCURRENTLY.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from lockplane.errors import BadInput, SafetyRefusal
from lockplane.execute import plan_id
from lockplane.lockstats import (
    LockAnalysis,
    StepMeasurement,
    _own_wal,
    _page_images_missing,
    _sorts_rows,
    _summary,
    _user_relation_pages,
    _writes_rows,
    analyze_locks,
    format_duration,
    pg_mode_name,
)
from lockplane.model import Schema
from lockplane.plan import Plan, Step, StepLock, build_plan
from lockplane.sources import load_schema
from tests.conftest import PG_ADMIN_DSN, pg_exec
from tests.test_cli import assert_one_line_error, run

# A 1 ms poll: the tests assert locks a 5 ms poll could miss on a fast machine.
POLL_MS = 1.0

USERS = """
CREATE TABLE users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text,
                    n integer, doubled integer GENERATED ALWAYS AS (n * 2) STORED);
INSERT INTO users (email, n) SELECT 'user' || i || '@example.com', i
FROM generate_series(1, {rows}) i;
"""


def desired(before: Schema, change: Callable[[dict[str, Any]], None]) -> Schema:
    data = json.loads(before.to_json())
    change(data)
    return Schema.model_validate(data)


def table_of(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in data["tables"] if t["name"] == name)


def add_email_index(data: dict[str, Any]) -> None:
    table_of(data, "users")["indexes"].append({"name": "users_email_idx", "columns": ["email"]})


def widen_n(data: dict[str, Any]) -> None:
    for col in table_of(data, "users")["columns"]:
        if col["name"] == "n":
            col["type"] = "bigint"


def database_exists(name: str | None) -> bool:
    """Whether ``name`` exists, once Lockplane's background drops of scratch databases
    (lockplane.background; the command line waits for them before it exits) are done."""
    from lockplane import background

    background.finish()
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                            (name,)).fetchone() is not None


def expected_index_lock(step: Step) -> str:
    """What PostgreSQL takes on the table for this index build."""
    return "SHARE UPDATE EXCLUSIVE" if any("CONCURRENTLY" in s for s in step.sql) else "SHARE"


def table_modes(m: StepMeasurement, table: str) -> set[str]:
    return {lk.mode for lk in m.locks if lk.relation == table}


def own_wal(dsn: str) -> bool:
    """Whether the server can tell a database's WAL from the rest (pg_walinspect, 15+):
    without it, the WAL figures that need it are None."""
    with psycopg.connect(dsn) as conn:
        return bool(conn.execute("SELECT count(*) FROM pg_available_extensions "
                                 "WHERE name = 'pg_walinspect'").fetchone()[0])


def index_step(plan: Plan) -> tuple[int, Step]:
    return next((i, s) for i, s in enumerate(plan.steps) if s.kind == "create_index")


# ------------------------------------------------------------------------ engine
def test_index_build_on_a_sample_scales_to_the_target(pg_dsn: str) -> None:
    # Analyzed: the target's rows come from the planner's statistics, as in production.
    # Big enough that the build outlasts many polls even on a loaded CI machine (at 2,000
    # sampled rows it took 5 ms, and once no poll landed in it).
    pg_exec(pg_dsn, USERS.format(rows=100000) + "ANALYZE users;")
    before = load_schema(pg_dsn)
    plan = build_plan(before, desired(before, add_email_index))
    untouched = plan.to_json()
    i, step = index_step(plan)
    lines: list[str] = []

    analysis = analyze_locks(plan, pg_dsn, None, sample_rows=20000, report=lines.append,
                             poll_interval_ms=POLL_MS)

    rows = analysis.tables["public.users"]
    assert rows.target == pytest.approx(100000, rel=0.05) and rows.target_is_estimate
    assert 0 < rows.shadow <= 20000
    m = analysis.steps[i]
    assert m.status == "ok", m.error
    mode = expected_index_lock(step)
    assert m.predicted_lock == mode  # the plan's prediction is listed either way
    assert mode in table_modes(m, "public.users"), m.locks
    # Nothing stronger than the build's own lock on the table itself.
    assert max(table_modes(m, "public.users"), key=["SHARE UPDATE EXCLUSIVE", "SHARE"].index) \
        == mode
    assert m.predicted_lock_observed is True
    assert m.scale == pytest.approx(rows.target / rows.shadow)
    # Scaled: the build on an empty copy once (capped at half the sample's time), the
    # rest as a sort grows, n log n.
    took = m.fastest_ms
    assert took is not None and 0 < took <= m.duration_ms
    fixed = m.fixed_duration_ms
    assert fixed is not None and 0 < fixed <= took / 2
    assert m.growth == "n log n"
    growth = m.scale * math.log(rows.target) / math.log(rows.shadow)
    assert m.estimated_duration_ms == pytest.approx(fixed + (took - fixed) * growth)
    assert took * m.scale / 2 < m.estimated_duration_ms < took * growth
    main = m.main_lock()
    assert main is not None and main.mode == mode
    assert main.estimated_held_ms == pytest.approx(
        main.held_ms * m.estimated_duration_ms / m.duration_ms)
    assert main.held_ms <= m.duration_ms
    assert m.rows_touched == rows.shadow and m.rows_touched_source == "table_size"
    assert m.wal_bytes is not None and m.wal_bytes > 0
    # The index's WAL is linear in its rows; the empty copy's is paid once.
    fixed_wal = m.fixed_wal_bytes
    if own_wal(pg_dsn):
        assert fixed_wal is not None and 0 < fixed_wal <= m.wal_bytes // 2
        assert m.estimated_wal_bytes == int(fixed_wal + (m.wal_bytes - fixed_wal) * m.scale)
    assert re.fullmatch(rf"will hold {mode} on public\.users for ~\S+ (ms|s|min) "
                        rf"\(measured \S+ m?s on {rows.shadow:,} of ~?{rows.target:,} rows\).*",
                        m.summary), m.summary
    # Catalog locks are not the user's concern; the new index is grouped under its table.
    assert all(not lk.relation.startswith(("pg_catalog.", "pg_toast")) for lk in m.locks)
    assert {lk.table for lk in m.locks} == {"public.users"}
    assert any("measuring step" in line for line in lines)

    assert not database_exists(analysis.shadow_database)
    # The annotation adds "measured" and changes nothing else.
    before_id = plan_id(plan)
    analysis.annotate(plan)
    assert plan_id(plan) == before_id
    annotated = json.loads(plan.to_json())
    assert annotated["steps"][i]["measured"]["predicted_lock"] == mode
    for s in annotated["steps"]:
        del s["measured"]
    assert annotated == json.loads(untouched)
    # And it loads back as a plan.
    assert Plan.model_validate_json(plan.to_json()).steps[i].measured is not None


def test_rewrite_with_full_data_holds_access_exclusive(pg_dsn: str) -> None:
    pg_exec(pg_dsn, USERS.format(rows=5000))
    before = load_schema(pg_dsn)
    plan = build_plan(before, desired(before, widen_n))
    [step] = [s for s in plan.steps if s.kind == "alter_column"]
    assert step.lock is not None and step.lock.rewrites_table

    analysis = analyze_locks(plan, pg_dsn, None, with_data=True, poll_interval_ms=POLL_MS)

    assert analysis.tables["public.users"].shadow == analysis.tables["public.users"].target \
        == 5000
    m = analysis.steps[plan.steps.index(step)]
    assert m.status == "ok", m.error
    assert "ACCESS EXCLUSIVE" in table_modes(m, "public.users")
    main = m.main_lock()
    assert main is not None and main.mode == "ACCESS EXCLUSIVE"
    assert m.scale == 1.0  # the whole table was there: nothing to scale
    assert m.rows_touched == 5000
    assert m.summary.startswith("will hold ACCESS EXCLUSIVE on public.users for ~")
    assert "(measured on all 5,000 rows)" in m.summary
    assert analysis.to_json()["with_data"] is True
    assert not database_exists(analysis.shadow_database)


def test_a_sampled_rewrite_is_timed_at_its_fastest_and_scales_linearly(pg_dsn: str) -> None:
    pg_exec(pg_dsn, USERS.format(rows=40000) + "ANALYZE users;")
    lock = StepLock(mode="ACCESS EXCLUSIVE", blocks_reads=True, blocks_writes=True,
                    rewrites_table=True)
    plan = Plan(source_hash=load_schema(pg_dsn).hash(), dialect="postgres", steps=[
        Step(description="Add r with a volatile default", table="public.users", lock=lock,
             sql=['ALTER TABLE "public"."users" ADD COLUMN "r" float8 DEFAULT random()'])])

    analysis = analyze_locks(plan, pg_dsn, None, sample_rows=10000, poll_interval_ms=POLL_MS)

    [m] = analysis.steps
    assert m.status == "ok", m.error
    rows = analysis.tables["public.users"]
    assert 0 < rows.shadow < rows.target
    # Run twice rolled back, then for real: the fastest of the three is scaled.
    assert m.fastest_ms is not None and m.fastest_ms <= m.duration_ms
    assert m.growth == "n" and m.fixed_duration_ms is not None
    assert m.estimated_duration_ms == pytest.approx(
        m.fixed_duration_ms + (m.fastest_ms - m.fixed_duration_ms) * m.scale)
    # The rewrite ran for real once: the shadow reached the plan's target.
    assert "ACCESS EXCLUSIVE" in table_modes(m, "public.users")
    assert m.rows_touched == rows.shadow
    assert m.to_json()["growth"] == "n" and "fastest_ms" in m.to_json()
    # A rewrite writes new files: none of the table's old pages is changed.
    assert m.page_images_missing == (0 if own_wal(pg_dsn) else None)


def test_pages_changed_without_an_image_are_counted(pg_dsn: str) -> None:
    if not own_wal(pg_dsn):
        pytest.skip("pg_walinspect: PostgreSQL 15 and later")
    pg_exec(pg_dsn, "CREATE EXTENSION IF NOT EXISTS pg_walinspect; "
                    "CREATE TABLE t (id int PRIMARY KEY, v text); "
                    "INSERT INTO t SELECT g, 'x' FROM generate_series(1, 2000) g;")
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        if conn.execute("SHOW full_page_writes").fetchone()[0] == "off":
            pytest.skip("the server writes no page images (a private test server's setting)")
        oid = conn.execute("SELECT oid FROM pg_database WHERE datname = current_database()"
                           ).fetchone()[0]
        pages = _user_relation_pages(conn)
        heap = conn.execute("SELECT pg_relation_filenode('t')").fetchone()[0]
        assert pages[heap] > 1

        def redo() -> Any:
            return conn.execute("SELECT redo_lsn FROM pg_control_checkpoint()").fetchone()[0]

        def update() -> int | None:
            start = conn.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0]
            conn.execute("UPDATE t SET v = v || 'y'")
            end = conn.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0]
            assert _own_wal(conn, start, end, oid)  # waits until it can be read
            return _page_images_missing(conn, start, end, oid, pages)

        # The first change of each page after a checkpoint carries its image.
        conn.execute("CHECKPOINT")
        checkpointed = redo()
        assert update() == 0
        # Changed again with no checkpoint since the first change: no images, each page
        # counted. The other tests' databases make this server checkpoint on its own at
        # any moment (max_wal_size); then the pages carry images again and none is missing.
        missing = update()
        if redo() == checkpointed:
            assert missing is not None and missing > 0
        # Pages of relations that did not exist before the step are not counted.
        assert update() is not None
        start = conn.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0]
        conn.execute("UPDATE t SET v = 'z'")
        end = conn.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0]
        assert _own_wal(conn, start, end, oid)
        assert _page_images_missing(conn, start, end, oid, {}) == 0


def test_what_a_step_sorts_and_writes() -> None:
    def step(*sql: str, backfill: dict[str, Any] | None = None) -> Step:
        return Step(description="s", sql=list(sql), backfill=backfill)

    assert _sorts_rows(step("SET lock_timeout = '150ms'",
                            'CREATE INDEX CONCURRENTLY "i" ON "t" ("a")'))
    assert _sorts_rows(step('ALTER TABLE "t" ADD CONSTRAINT "u" UNIQUE ("a")'))
    assert _sorts_rows(step('ALTER TABLE "t" ADD PRIMARY KEY ("a")'))
    assert not _sorts_rows(step('ALTER TABLE "t" ADD CONSTRAINT "u" UNIQUE USING INDEX "i"'))
    assert not _sorts_rows(step('ALTER TABLE "t" ALTER COLUMN "a" TYPE bigint'))
    assert not _sorts_rows(step("not SQL at all ("))
    assert _writes_rows(step('UPDATE "t" SET "a" = 1'))
    assert _writes_rows(step("SELECT 1", backfill={"table": "t"}))
    assert not _writes_rows(step('ALTER TABLE "t" ADD COLUMN "b" int'))


def test_sampled_children_keep_their_foreign_keys(pg_dsn: str) -> None:
    pg_exec(pg_dsn, USERS.format(rows=3000) + """
        CREATE TABLE orders (id serial PRIMARY KEY, user_id bigint REFERENCES users,
                             amount integer);
        INSERT INTO orders (user_id, amount)
        SELECT (i * 7) % 3000 + 1, i FROM generate_series(1, 3000) i;""")
    before = load_schema(pg_dsn)

    def validate_again(data: dict[str, Any]) -> None:
        # Changing the referencing column's type makes PostgreSQL re-check the key.
        for col in table_of(data, "orders")["columns"]:
            if col["name"] == "amount":
                col["type"] = "bigint"
        table_of(data, "orders")["foreign_keys"][0]["on_delete"] = "CASCADE"

    plan = build_plan(before, desired(before, validate_again))
    analysis = analyze_locks(plan, pg_dsn, None, sample_rows=500, poll_interval_ms=POLL_MS)

    assert all(s.status == "ok" for s in analysis.steps), [s.summary for s in analysis.steps]
    # Orders are sampled among those of the sampled users (parents first): a full
    # sample, every foreign key satisfied, nothing pruned.
    assert analysis.tables["public.orders"].shadow == 500
    assert not any("parent row was not sampled" in w for w in analysis.warnings)


def test_a_failing_step_is_reported_and_the_rest_not_run(pg_dsn: str) -> None:
    pg_exec(pg_dsn, USERS.format(rows=100))
    live = load_schema(pg_dsn)
    lock = StepLock(mode="ACCESS EXCLUSIVE", blocks_reads=True, blocks_writes=True,
                    scans_table=True)
    plan = Plan(source_hash=live.hash(), dialect="postgres", steps=[
        Step(description="Add check n < 0", table="public.users", lock=lock,
             sql=['ALTER TABLE "public"."users" ADD CONSTRAINT "neg" CHECK ("n" < 0)']),
        Step(description="Never reached", sql=['SELECT 1']),
    ])

    analysis = analyze_locks(plan, pg_dsn, None, sample_rows=50, poll_interval_ms=POLL_MS)

    first, second = analysis.steps
    assert first.status == "failed" and analysis.failed is first
    assert first.error is not None and "violated" in first.error
    assert first.summary.startswith("failed on the shadow database: ")
    assert second.status == "not_run"
    assert json.loads(json.dumps(analysis.to_json()))["steps"][0]["status"] == "failed"
    assert not database_exists(analysis.shadow_database)
    with psycopg.connect(pg_dsn) as conn:  # the target itself was never touched
        assert conn.execute("SELECT count(*) FROM pg_constraint WHERE conname = 'neg'"
                            ).fetchone() == (0,)


def test_refuses_a_plan_made_for_another_state(pg_dsn: str) -> None:
    pg_exec(pg_dsn, USERS.format(rows=10))
    before = load_schema(pg_dsn)
    plan = build_plan(before, desired(before, add_email_index))
    pg_exec(pg_dsn, "ALTER TABLE users ADD COLUMN extra text")
    with pytest.raises(SafetyRefusal, match="re-plan"):
        analyze_locks(plan, pg_dsn, None)


def test_needs_postgresql(sqlite_dsn: str) -> None:
    plan = Plan(source_hash="x", dialect="sqlite", steps=[])
    with pytest.raises(BadInput, match="--analyze-locks needs PostgreSQL .* target is sqlite"):
        analyze_locks(plan, sqlite_dsn, None)


def test_needs_postgresql_on_mysql(mysql_dsn: str, pg_dsn: str) -> None:
    with pytest.raises(BadInput, match="--analyze-locks needs PostgreSQL .* target is mysql"):
        analyze_locks(Plan(source_hash="x", dialect="mysql", steps=[]), mysql_dsn, None)
    # A MySQL plan is refused on a PostgreSQL target too, before anything connects.
    with pytest.raises(BadInput, match="the plan is mysql"):
        analyze_locks(Plan(source_hash="x", dialect="mysql", steps=[]), pg_dsn, None)


def test_wording() -> None:
    assert pg_mode_name("ShareUpdateExclusiveLock") == "SHARE UPDATE EXCLUSIVE"
    assert pg_mode_name("AccessExclusiveLock") == "ACCESS EXCLUSIVE"
    assert [format_duration(x) for x in (0.4, 12, 1500, 30_000, 300_000, 9_000_000)] == \
        ["<1 ms", "12 ms", "1.5 s", "30 s", "5.0 min", "2.5 h"]
    m = StepMeasurement(1, "Create index", "ok", table="public.users",
                        predicted_lock="SHARE", duration_ms=2.0)
    assert _summary(m).startswith("predicted SHARE on public.users: not observed (a lock "
                                  "held for less than ~5 ms can be missed)")
    m.polls = 0  # the monitor was not scheduled while the step ran: say so, not "missed"
    assert _summary(m).startswith("predicted SHARE on public.users: not observed (the step "
                                  "ended before the lock monitor could poll)")
    assert LockAnalysis("t", "s", None, False, 10).failed is None


# --------------------------------------------------------------------------- CLI
def test_cli_plan_with_analyze_locks(pg_dsn: str, tmp_path: Path) -> None:
    pg_exec(pg_dsn, USERS.format(rows=4000))
    before = load_schema(pg_dsn)
    to = tmp_path / "desired.json"
    to.write_text(desired(before, add_email_index).to_json())
    proc = run("plan", "--from", pg_dsn, "--to", str(to), "--analyze-locks",
               "--sample-rows", "1000")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["source_hash"] == before.hash()
    assert out["steps"] and all("measured" in s for s in out["steps"])
    idx = next(s for s in out["steps"] if s["kind"] == "create_index")
    assert idx["measured"]["status"] == "ok"
    rows = idx["measured"]["table_rows"]
    assert rows["target"] == pytest.approx(4000, rel=0.05) and 0 < rows["shadow"] <= 1000
    text = " ".join(proc.stderr.split())
    assert "Measured lock impact" in text and "plan predicts" in text
    assert idx["measured"]["summary"].split(" (")[0] in text

    plain = run("plan", "--from", pg_dsn, "--to", str(to))
    assert plain.returncode == 0, plain.stderr
    for s in out["steps"]:
        del s["measured"]
    assert out == json.loads(plain.stdout)  # same SQL, same hashes


def test_cli_analyze_locks_needs_a_live_postgresql(sqlite_dsn: str, tmp_path: Path) -> None:
    schema = tmp_path / "s.json"
    schema.write_text(Schema(dialect="sqlite").to_json())
    proc = run("plan", "--from", sqlite_dsn, "--to", str(schema), "--analyze-locks")
    assert_one_line_error(proc, 2, "--analyze-locks needs PostgreSQL")
    proc = run("plan", "--from", str(schema), "--to", str(schema), "--analyze-locks")
    assert_one_line_error(proc, 2, "--analyze-locks needs PostgreSQL")
    proc = run("plan", "--from", str(schema), "--to", str(schema), "--with-data")
    assert_one_line_error(proc, 2, "--analyze-locks")


def test_cli_with_data_needs_an_explicit_shadow_server(pg_dsn: str, tmp_path: Path) -> None:
    # A full copy made on the target's own server (the primary) would load it and hold a
    # snapshot on the target for the whole copy: it must be asked for by name.
    pg_exec(pg_dsn, USERS.format(rows=10))
    to = tmp_path / "desired.json"
    to.write_text(load_schema(pg_dsn).to_json())
    proc = run("plan", "--from", pg_dsn, "--to", str(to), "--analyze-locks", "--with-data")
    assert_one_line_error(proc, 2, "--with-data", "--shadow-db", "target's own server")
    assert proc.stdout == ""

    given = run("plan", "--from", pg_dsn, "--to", str(to), "--analyze-locks", "--with-data",
                "--shadow-db", PG_ADMIN_DSN)
    assert given.returncode == 0, given.stderr
    assert "own server" not in given.stderr

    (tmp_path / "lockplane.toml").write_text(
        f'[environments.prod]\ndatabase_url = "{pg_dsn}"\n'
        f'shadow_database_url = "{PG_ADMIN_DSN}"\n')
    env = run("plan", "--from-environment", "prod", "--to", str(to), "--analyze-locks",
              "--with-data", cwd=tmp_path)
    assert env.returncode == 0, env.stderr

    # a sample keeps the default server, with a note saying where the shadow goes
    sample = run("plan", "--from", pg_dsn, "--to", str(to), "--analyze-locks")
    assert sample.returncode == 0, sample.stderr
    notes = [ln for ln in sample.stderr.splitlines() if "note:" in ln]
    assert len(notes) == 1 and "--from's own server" in notes[0], sample.stderr


# As apply and rollback do (exit 3): a plan for another major is measured neither on its
# target nor on a shadow server of another major (its SQL may use what only one has, and
# another server's locks are not the target's).
def test_refuses_a_plan_for_another_major(pg_dsn: str, pg_servers, tmp_path: Path) -> None:
    pg_exec(pg_dsn, USERS.format(rows=10))
    before = load_schema(pg_dsn)
    plan = build_plan(before, desired(before, add_email_index))
    major = plan.server_major
    assert major is not None
    other = plan.model_copy(update={"server_major": major - 1})
    with pytest.raises(SafetyRefusal, match=f"^--analyze-locks: the target: plan was made "
                                            f"for a server of major version {major - 1}"):
        analyze_locks(other, pg_dsn, None)
    shadow = pg_servers.admin_dsn(18) if major != 18 else PG_ADMIN_DSN
    with pytest.raises(SafetyRefusal, match="^--analyze-locks: the shadow server: .* runs"):
        analyze_locks(plan, pg_dsn, shadow)
    to = tmp_path / "desired.json"
    to.write_text(desired(before, add_email_index).to_json())
    proc = run("plan", "--from", pg_dsn, "--to", str(to), "--analyze-locks",
               "--shadow-db", shadow)
    assert_one_line_error(proc, 3, "--analyze-locks: the shadow server", "re-plan")
    assert proc.stdout == ""
