"""Histories, not only pairs (issue 16, item 5).

Each directory under tests/data/histories/ is an application's migration history, as its
team wrote it: ``NNN_name.sql`` files applied in order. State k is a scratch database
where migrations 1..k ran. A live database walks the history through Lockplane (in two
halves, see HALVES): for each k it is planned from state k-1 (with the rows of
``rows/NNN.sql`` inserted at the states they name) to state k introspected from the
scratch database, and
``tests.roundtrip.roundtrip_to`` checks the catalog equals state k exactly, rows are
kept, a re-plan is empty and the plan's rollback returns to state k-1 exactly; the plan
is then applied again to go on.

What the migrations state that a catalog cannot: a ``RENAME`` of a table or column is a
declared rename of the desired schema (``renamed_from``), so data moves with it, and so is
an enum's ``RENAME VALUE`` (``values_renamed_from``); a
``-- lockplane:fill-with table.column EXPR`` line declares a fill (``fill_with``); the
data statements of a migration (UPDATE, INSERT, DELETE) run on the live database before
Lockplane's plan for that step when they fit state k-1 (rows filled before a constraint),
else after it, as a team runs its data migration around the schema change.

Every failing step is reported at once (the live database is then rebuilt at state k from
the migrations themselves, and the walk goes on); steps listed in KNOWN_FAILURES must fail.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pglast
import psycopg
import pytest
from pglast import ast
from pglast.enums.parsenodes import ObjectType

from lockplane.dialects import connect
from lockplane.execute import ApplyOptions, apply_plan
from lockplane.model import Schema
from tests.conftest import pg_exec
from tests.roundtrip import _explain, roundtrip_to

# LOCKPLANE_HISTORIES: another folder of histories (one per subfolder, laid out as ours),
# such as a public project's migrations copied into NNN_name.sql files, run instead.
HISTORIES = Path(os.environ.get("LOCKPLANE_HISTORIES")
                 or Path(__file__).parent / "data" / "histories")
APPS = sorted(p.name for p in HISTORIES.iterdir() if p.is_dir())

# (app, step number): why Lockplane does not reproduce that step yet. The harness expects
# the step to fail, rebuilds the live database at state k from the migrations themselves,
# and goes on; a known failure that passes fails the test (remove it from here).
KNOWN_FAILURES: dict[tuple[str, int], str] = {}

DATA_STATEMENTS = (ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt)
FILL = re.compile(r"\s*--\s*lockplane:fill-with\s+(?:(?P<schema>\w+)\.)?(?P<table>\w+)\."
                  r"(?P<column>\w+)\s+(?P<expr>.+?)\s*$")


@dataclass
class Migration:
    number: int
    name: str
    sql: str
    # ((schema, old table), new table) and ((schema, table as renamed), old column, new)
    table_renames: list[tuple[tuple[str, str], str]] = field(default_factory=list)
    column_renames: list[tuple[tuple[str, str], str, str]] = field(default_factory=list)
    # ((schema, enum type), old label, new label): ALTER TYPE ... RENAME VALUE
    value_renames: list[tuple[tuple[str, str], str, str]] = field(default_factory=list)
    data: list[str] = field(default_factory=list)
    # ((schema, table), column, expression): ``-- lockplane:fill-with table.column EXPR``
    fills: list[tuple[tuple[str, str], str, str]] = field(default_factory=list)


def _statements(sql: str) -> list[tuple[ast.Node, str]]:
    raw = sql.encode()
    out = []
    for stmt in pglast.parse_sql(sql):
        start = stmt.stmt_location or 0
        end = start + stmt.stmt_len if stmt.stmt_len else len(raw)
        out.append((stmt.stmt, raw[start:end].decode().strip()))
    return out


def load_history(app: str) -> tuple[list[Migration], dict[int, str]]:
    """The migrations of ``app`` in order, and its rows (by the state they are inserted at)."""
    folder = HISTORIES / app
    migrations = []
    for path in sorted(folder.glob("*.sql")):
        m = re.fullmatch(r"(\d+)_(.+)\.sql", path.name)
        assert m, f"{path.name}: migrations are named NNN_name.sql"
        mig = Migration(int(m[1]), m[2], path.read_text())
        tables: dict[tuple[str, str], str] = {}
        for node, text in _statements(mig.sql):
            if isinstance(node, DATA_STATEMENTS):
                mig.data.append(text)
            elif isinstance(node, ast.RenameStmt) and node.relation is not None:
                rel = node.relation
                key = (rel.schemaname or "public", rel.relname)
                if node.renameType == ObjectType.OBJECT_TABLE:
                    mig.table_renames.append((key, node.newname))
                    tables[key] = node.newname
                elif node.renameType == ObjectType.OBJECT_COLUMN:
                    key = (key[0], tables.get(key, key[1]))
                    mig.column_renames.append((key, node.subname, node.newname))
            elif isinstance(node, ast.AlterEnumStmt) and node.oldVal is not None:
                *qual, name = [n.sval for n in node.typeName]
                mig.value_renames.append(((qual[-1] if qual else "public", name),
                                          node.oldVal, node.newVal))
        for line in mig.sql.splitlines():
            f = FILL.match(line)
            if f:
                mig.fills.append(((f["schema"] or "public", f["table"]), f["column"], f["expr"]))
        migrations.append(mig)
    numbers = [m.number for m in migrations]
    assert numbers == list(range(1, len(numbers) + 1)), f"{app}: steps numbered 1..N"
    rows = {int(p.stem): p.read_text() for p in sorted((folder / "rows").glob("*.sql"))}
    return migrations, rows


def _with_renames(state: Schema, mig: Migration) -> Schema:
    """State k as the desired schema of step k: the migration's renames declared."""
    if not mig.table_renames and not mig.column_renames and not mig.fills \
            and not mig.value_renames:
        return state
    desired = state.model_copy(deep=True)
    for (schema, table), column, expr in mig.fills:
        t = desired.table(schema, table)
        col = t.column(column) if t is not None else None
        assert col is not None, f"{mig.name}: fill-with names no column {table}.{column}"
        col.fill_with = expr
    for (schema, old), new in mig.table_renames:
        t = desired.table(schema, new)
        if t is not None:  # (renamed aside and dropped in the same migration: no rename)
            t.renamed_from = old
    for (schema, name), old, new in mig.value_renames:
        enum = next(e for e in desired.enums if (e.schema_, e.name) == (schema, name))
        enum.values_renamed_from[new] = old
    for (schema, table), old, new in mig.column_renames:
        t = desired.table(schema, table)
        col = t.column(new) if t is not None else None
        if col is not None:  # (a column of a view, a type...: nothing to carry)
            col.renamed_from = old
    return desired


def _hash(dsn: str) -> tuple[str, Schema]:
    with connect(dsn) as db:
        s = db.introspect()
    return s.hash(), s


# Each history is walked as two tests: the second half starts from the state the first
# half ends at, built by the migrations themselves (as after a failing step), so that the
# two CI workers share the suite's longest tests instead of one running them last.
HALVES = 2


@pytest.mark.long
@pytest.mark.parametrize("half", range(HALVES))
@pytest.mark.parametrize("app", APPS)
def test_history(app: str, half: int, pg_dsn_factory) -> None:
    migrations, rows = load_history(app)
    # (ours are written 30+ steps long; another folder's are as long as they are)
    assert len(migrations) >= 30 or "LOCKPLANE_HISTORIES" in os.environ, \
        f"{app}: a history has 30+ steps"
    size = -(-len(migrations) // HALVES)
    first, last = half * size, min(len(migrations), (half + 1) * size)
    scratch = pg_dsn_factory()

    states: list[Schema] = []
    with connect(scratch) as db:
        states.append(db.introspect())
    for mig in migrations[:last]:
        pg_exec(scratch, mig.sql)
        with connect(scratch) as db:
            states.append(db.introspect())

    def live_at(k: int) -> tuple[str, Schema]:
        """A new live database at state k, from the migrations themselves (rows too)."""
        live = pg_dsn_factory()
        now = states[0]
        for j in range(k + 1):
            if j:
                pg_exec(live, migrations[j - 1].sql)
            if j == k:
                got, now = _hash(live)
                assert got == states[k].hash(), _explain(now, states[k])
            if j in rows:
                pg_exec(live, rows[j])
        return live, now

    # The live schema as the last apply read it after its last commit (its end-state
    # check); what runs between two steps (data statements, rows) leaves it as it is.
    live, now = live_at(first)
    unexpected_passes: list[str] = []
    failures: list[str] = []
    for mig in migrations[first:last]:
        k = mig.number
        got = now.hash()
        assert got == states[k - 1].hash(), (f"{app} before step {k}:\n"
                                             + _explain(now, states[k - 1]))
        desired = _with_renames(states[k], mig)
        known = KNOWN_FAILURES.get((app, k))
        # The migration's data statements that fit state k-1 prepare the change (fill
        # rows before a constraint); the others run after it.
        later = [stmt for stmt in mig.data if not _try(live, stmt)]
        try:
            plan, _ = roundtrip_to(live, desired, before=now)
            # back at k-1: forward again to go on (apply checks it reaches state k)
            now = apply_plan(plan, live, ApplyOptions(safety="permissive", skip_shadow=True,
                                                      lock_timeout_ms=5000)).schema_after
        except Exception as exc:
            if known is None:
                failures.append(f"{k:03d}_{mig.name}: {str(exc)[:3000]}")
            # Go on from state k as the team would have it: the migrations themselves,
            # on a new live database (a failed rollback may stop between states).
            live, now = live_at(k)
            continue
        else:
            if known is not None:
                unexpected_passes.append(f"{k:03d}_{mig.name} ({known})")
        for stmt in later:
            # One that fits neither state is what a declared fill-with does instead.
            if not _try(live, stmt) and not mig.fills:
                failures.append(f"{k:03d}_{mig.name}: data statement fits neither state "
                                f"k-1 nor k: {stmt}")
        if k in rows:
            pg_exec(live, rows[k])
    assert not failures, f"{app}: steps Lockplane does not reproduce:\n" + "\n".join(failures)
    assert not unexpected_passes, f"{app}: known failures that now pass: {unexpected_passes}"


def _try(dsn: str, stmt: str) -> bool:
    """Run one data statement; False (and nothing changed) when it does not fit the
    schema the database has (a column or table it names is not there)."""
    try:
        pg_exec(dsn, stmt)
    except (psycopg.errors.UndefinedColumn, psycopg.errors.UndefinedTable):
        return False
    return True


def test_histories_are_hand_written_sql() -> None:
    """Every history parses (PostgreSQL's parser) and carries its rows where it says."""
    for app in APPS:
        migrations, rows = load_history(app)
        for mig in migrations:
            assert _statements(mig.sql), mig.name
        assert set(rows) <= {0} | {m.number for m in migrations}, app


