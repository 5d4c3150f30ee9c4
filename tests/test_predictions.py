"""Predictions that match the database (issue 12 item 4), on real PostgreSQL databases."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg

from lockplane.lockstats import analyze_locks
from lockplane.plan import Plan
from tests.conftest import pg_exec
from tests.test_cli import run


def _plan(src: str, schema: Path, out: Path, *extra: str):
    proc = run("plan", "--from", src, "--to", str(schema), "--output", str(out), *extra)
    return proc, (json.loads(out.read_text()) if out.exists() else None)


def test_not_null_without_default_on_rows_is_a_certain_failure(pg_dsn: str,
                                                               tmp_path: Path) -> None:
    pg_exec(pg_dsn, "CREATE TABLE users (id integer PRIMARY KEY);"
                    "INSERT INTO users SELECT generate_series(1, 1243);")
    schema = tmp_path / "s.sql"
    schema.write_text("CREATE TABLE users (id integer PRIMARY KEY, email text NOT NULL);")
    proc, plan = _plan(pg_dsn, schema, tmp_path / "p.json")
    assert proc.returncode == 0, proc.stderr
    step = plan["steps"][0]
    assert step["safety"] == "dangerous"
    f = step["findings"][0]
    assert f["rule"] == "add-not-null-column-without-default" and f["safety"] == "dangerous"
    assert "public.users has 1,243 rows" in f["message"] and "will fail" in f["message"]
    # The shadow holds a sample of the rows: validation fails there, not on the target.
    proc = run("apply", str(tmp_path / "p.json"), "--target", pg_dsn, "--auto-approve",
               "--safety", "permissive")
    assert proc.returncode == 1, proc.stderr
    assert "shadow validation" in " ".join(proc.stderr.split()), proc.stderr
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM information_schema.columns "
                            "WHERE table_name = 'users' AND column_name = 'email'"
                            ).fetchone() == (0,)


def test_empty_table_keeps_the_review_class(pg_dsn: str, tmp_path: Path) -> None:
    pg_exec(pg_dsn, "CREATE TABLE users (id integer PRIMARY KEY);")
    schema = tmp_path / "s.sql"
    schema.write_text("CREATE TABLE users (id integer PRIMARY KEY, email text NOT NULL);")
    proc, plan = _plan(pg_dsn, schema, tmp_path / "p.json")
    assert proc.returncode == 0 and plan["steps"][0]["safety"] == "review"


def test_failed_analyze_locks_step_exits_1_naming_it(pg_dsn: str, tmp_path: Path) -> None:
    pg_exec(pg_dsn, "CREATE TABLE users (id integer PRIMARY KEY);"
                    "INSERT INTO users SELECT generate_series(1, 50);")
    schema = tmp_path / "s.sql"
    schema.write_text("CREATE TABLE users (id integer PRIMARY KEY, email text NOT NULL);")
    proc, _ = _plan(pg_dsn, schema, tmp_path / "p.json", "--analyze-locks")
    assert proc.returncode == 1, proc.stderr
    text = " ".join(proc.stderr.split())
    assert "step 1 (Add column email text to public.users) failed" in text, proc.stderr
    assert "Traceback" not in proc.stderr


def test_narrowing_rollback_says_it_rewrites_and_counts(pg_dsn: str, tmp_path: Path) -> None:
    pg_exec(pg_dsn, "CREATE TABLE t (id integer PRIMARY KEY, name varchar(10));"
                    "INSERT INTO t SELECT g, 'x' FROM generate_series(1, 20) g;")
    schema = tmp_path / "s.sql"
    schema.write_text("CREATE TABLE t (id integer PRIMARY KEY, name varchar(50));")
    plan_file = tmp_path / "p.json"
    proc, plan = _plan(pg_dsn, schema, plan_file)
    assert proc.returncode == 0, proc.stderr
    rb = plan["steps"][0]["rollback"]
    assert not plan["steps"][0]["lock"]["rewrites_table"]
    assert rb["lock"]["rewrites_table"] and rb["lock"]["mode"] == "ACCESS EXCLUSIVE"
    assert run("apply", str(plan_file), "--target", pg_dsn, "--auto-approve",
               "--safety", "permissive").returncode == 0
    pg_exec(pg_dsn, "UPDATE t SET name = repeat('y', 30) WHERE id <= 4")
    back = tmp_path / "back.json"
    proc = run("plan-rollback", "--plan", str(plan_file), "--from", pg_dsn, "--output",
               str(back))
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stderr.split())
    assert "rewrites table" in text and "Rewrites public.t" in text, proc.stderr
    assert "rollback will truncate values in 4 rows of public.t.name" in text, proc.stderr
    undo = Plan.model_validate_json(back.read_text()).steps[0]
    assert undo.lock is not None and undo.lock.rewrites_table


def test_estimates_sample_fk_consistently_and_scale_only_row_work(pg_dsn: str) -> None:
    pg_exec(pg_dsn, """
        CREATE TABLE items (id bigint PRIMARY KEY, label text NOT NULL);
        CREATE TABLE events (id bigint PRIMARY KEY, item_id bigint REFERENCES items (id));
        INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, 20000) g;
        INSERT INTO events SELECT g, (g + 1) / 2 FROM generate_series(1, 40000) g;
        ANALYZE;""")
    from lockplane.dialects import get_dialect
    from lockplane.plan import build_plan

    db = get_dialect("postgres").connect(pg_dsn)
    try:
        before = db.introspect()
    finally:
        db.close()
    after = before.model_copy(deep=True)
    t = after.table("public", "items")
    from lockplane.model import Column, Index

    t.indexes.append(Index(name="items_label", columns=["label"]))
    t.columns.append(Column(name="note", type="text", nullable=True))
    plan = build_plan(before, after, lock_safe=False, lock_timeout_ms=None)
    sample = analyze_locks(plan, pg_dsn, None, sample_rows=1000)
    full = analyze_locks(plan, pg_dsn, None, with_data=True)
    # Children of the sampled parents, not an independent sample pruned to nearly nothing.
    assert sample.tables["public.events"].shadow >= 900, sample.tables
    assert not any("parent row was not sampled" in w for w in sample.warnings)
    by_kind = {s.kind: i for i, s in enumerate(plan.steps)}
    add, index = sample.steps[by_kind["add_column"]], sample.steps[by_kind["create_index"]]
    assert add.scale is None and add.estimated_wal_bytes is None  # catalog only
    est = index.estimated_wal_bytes
    actual = full.steps[by_kind["create_index"]].wal_bytes
    assert est and actual and 1 / 3 <= est / actual <= 3, (est, actual)
