"""A backfill's spec read back from its checkpoint row (``lockplane.backfills``) is the
one that started, or nothing runs: a row edited between a crash and the resume (a wider
WHERE, another SET, a type or archive name spliced into the batch statement) is refused,
exit 3, before a batch. Real PostgreSQL; "nothing ran" is read from the table itself."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from lockplane.backfill import (
    BackfillOptions,
    make_spec,
    plan_backfill,
    run_backfill,
    run_chunk,
    start_backfill,
)
from lockplane.errors import SafetyRefusal
from tests.cli_inprocess import completed
from tests.conftest import pg_exec

FAST = BackfillOptions(batch_size=16, adaptive=False)
SET, WHERE = "v = 'x'", "flag"


def rows(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT id, v FROM t ORDER BY id").fetchall()


def edit(dsn: str, change: dict[str, Any] | str) -> None:
    """Rewrite the checkpoint rows' spec as someone with write access to the table would."""
    with psycopg.connect(dsn) as conn:
        (spec,) = conn.execute("SELECT spec FROM lockplane.backfills LIMIT 1").fetchone()
        new = change if isinstance(change, str) else json.dumps({**spec, **change})
        conn.execute("UPDATE lockplane.backfills SET spec = %s::jsonb", (new,))


EDITS: dict[str, Any] = {
    "wider where": {"where": "true"},
    "where dropped": {"where": None},
    "other set": {"expressions": ["'pwned'"]},
    # (not part of the id: the catalog, asked again, says otherwise)
    "type": {"types": ["text) || (SELECT 'pwned'"]},
    "key": {"key_columns": ["v"]},
    # (stricter, and not read from the catalog: only a run that planned the backfill
    # itself can tell; a worker given only the id runs it, refusing NULLs)
    "not null": {"not_null": [True]},
    "archive": {"archive": 'public.t; DROP TABLE t; --'},
    "unknown field": {"extra": 1},
    "not a spec": '"text"',
}


@pytest.mark.parametrize("what", list(EDITS))
def test_an_edited_checkpoint_is_refused(pg_dsn: str, what: str) -> None:
    pg_exec(pg_dsn, "CREATE TABLE t (id int PRIMARY KEY, v text, flag bool);"
                    "INSERT INTO t SELECT g, NULL, g % 2 = 0 FROM generate_series(1, 100) g")
    spec = make_spec("t", [SET], WHERE)
    plan = plan_backfill(pg_dsn, spec, FAST)
    chunks = start_backfill(pg_dsn, plan, FAST)  # (as a run killed before its first batch)
    assert chunks == [0]
    before = rows(pg_dsn)
    edit(pg_dsn, EDITS[what])
    # A worker of the backfill-chunk deployment: the id and chunk only.
    if what != "not null":
        with pytest.raises(SafetyRefusal, match=plan.resolved.id):
            run_chunk(pg_dsn, plan.resolved.id, 0, FAST)
        assert rows(pg_dsn) == before
    # The same backfill run again (it resumes from the checkpoint): exit 3, one line.
    r = completed("backfill", "--target", pg_dsn, "--table", "t", "--set", SET, "--where",
                  WHERE, "--auto-approve", "--skip-row-check")
    assert r.returncode == 3, (r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in r.stderr and lines[-1].startswith("error:"), r.stderr
    assert "lockplane.backfills" in lines[-1], r.stderr
    assert rows(pg_dsn) == before


def test_an_untouched_checkpoint_resumes(pg_dsn: str) -> None:
    pg_exec(pg_dsn, "CREATE TABLE t (id int PRIMARY KEY, v text, flag bool);"
                    "INSERT INTO t SELECT g, NULL, g % 2 = 0 FROM generate_series(1, 100) g")
    plan = plan_backfill(pg_dsn, make_spec("t", [SET], WHERE), FAST)
    start_backfill(pg_dsn, plan, FAST)
    assert run_chunk(pg_dsn, plan.resolved.id, 0, FAST).status == "done"
    assert run_backfill(pg_dsn, plan_backfill(pg_dsn, make_spec("t", [SET], WHERE), FAST),
                        FAST).status in ("done", "already_done")
    assert [v for i, v in rows(pg_dsn)] == ["x" if i % 2 == 0 else None
                                            for i in range(1, 101)]
