"""The safety engine on real PostgreSQL: lint agrees with the plan, rewrites are told apart
from metadata-only changes, lock-safe plans apply, safety levels refuse what they should.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import psycopg
import pytest

from lockplane.changes.rename_column import RenameColumn
from lockplane.changes.rename_table import RenameTable
from lockplane.dialects import get_dialect
from lockplane.execute import ApplyOptions, apply_plan
from lockplane.lint import lint_sql
from lockplane.model import Schema
from lockplane.plan import Plan, build_plan, step_for
from lockplane.rules import RULES
from lockplane.sources import SCRATCH_URL_ENV
from lockplane.sqlscript import plan_sql
from tests.conftest import PG_ADMIN_DSN, pg_exec
from tests.test_cli import assert_one_line_error, run

BASE = """
CREATE TABLE owners (id bigint PRIMARY KEY);
CREATE TABLE accounts (id bigint PRIMARY KEY, email text, owner_id bigint, balance int,
                       status text, note varchar(20), score int, tier int DEFAULT 1,
                       nick text NOT NULL, legacy text);
CREATE INDEX accounts_note_idx ON accounts (note);
ALTER TABLE accounts ADD CONSTRAINT accounts_balance_check CHECK (balance > -100);
"""


def _schema(sql: str) -> Schema:
    # (on the server under test: conftest's scratch_on_the_server_under_test)
    with get_dialect("postgres").scratch(os.environ.get(SCRATCH_URL_ENV, PG_ADMIN_DSN)) as db:
        db.execute(sql)
        return db.introspect()


# (name, desired SQL, the Lockplane rules of the plain plan)
CASES = [
    ("index", BASE + "CREATE INDEX accounts_email_idx ON accounts (email);",
     {"create-index-blocking"}),
    ("unique index", BASE + "CREATE UNIQUE INDEX accounts_email_key ON accounts (email);",
     {"create-index-blocking", "unique-on-existing-data"}),
    ("drop index", BASE.replace("CREATE INDEX accounts_note_idx ON accounts (note);", ""),
     {"drop-index-blocking", "drop-index"}),
    ("unique constraint", BASE + "ALTER TABLE accounts ADD UNIQUE (email);",
     {"add-unique-constraint", "unique-on-existing-data"}),
    ("foreign key", BASE + "ALTER TABLE accounts ADD FOREIGN KEY (owner_id) "
     "REFERENCES owners (id);", {"add-foreign-key"}),
    ("check", BASE + "ALTER TABLE accounts ADD CHECK (balance >= 0);",
     {"add-check-constraint"}),
    ("set not null", BASE.replace("status text", "status text NOT NULL"), {"set-not-null"}),
    ("drop not null", BASE.replace("nick text NOT NULL", "nick text"), {"drop-not-null"}),
    ("drop default", BASE.replace("tier int DEFAULT 1", "tier int"), {"drop-default"}),
    ("drop check", BASE.replace(
        "ALTER TABLE accounts ADD CONSTRAINT accounts_balance_check CHECK (balance > -100);",
        ""), {"drop-constraint"}),
    ("volatile default", BASE + "ALTER TABLE accounts ADD COLUMN token uuid "
     "DEFAULT gen_random_uuid();", {"volatile-default"}),
    ("not null without default", BASE + "ALTER TABLE accounts ADD COLUMN code text NOT NULL;",
     {"add-not-null-column-without-default"}),
    ("generated column", BASE + "ALTER TABLE accounts ADD COLUMN b2 int GENERATED ALWAYS AS "
     "(balance * 2) STORED;", {"add-generated-column"}),
    ("identity column", BASE + "ALTER TABLE accounts ADD COLUMN seq bigint GENERATED ALWAYS "
     "AS IDENTITY;", {"add-identity-column"}),
    ("drop column", BASE.replace(", legacy text", ""), {"drop-column"}),
    ("drop table", BASE + "DROP TABLE owners;", {"drop-table"}),
    ("int to bigint", BASE.replace("score int", "score bigint"), {"type-change-rewrite"}),
]


@pytest.fixture(scope="module")
def base_schema() -> Schema:
    return _schema(BASE)


def _lint_rules(plan: Plan) -> set[str]:
    return {f.rule for f in lint_sql(plan_sql(plan))} - {"require-lock-timeout"}


def _plan_rules(plan: Plan) -> set[str]:
    return {f.rule for s in plan.steps for f in s.findings if RULES[f.rule].lintable}


@pytest.mark.parametrize("name, desired, expected", CASES, ids=[c[0] for c in CASES])
def test_lint_agrees_with_the_plan(base_schema: Schema, name: str, desired: str,
                                   expected: set[str]) -> None:
    after = _schema(desired)
    plain = build_plan(base_schema, after, lock_safe=False)
    assert _plan_rules(plain) == expected
    assert _lint_rules(plain) == expected, plan_sql(plain)
    # The default (lock-safe) plan: no lock finding left on either side, and both still
    # agree on what remains (data and code risks).
    safe = build_plan(base_schema, after)
    remaining = {r for r in expected if not RULES[r].lock or r in (
        "type-change-rewrite", "add-generated-column", "add-identity-column")}
    assert _plan_rules(safe) == remaining
    assert _lint_rules(safe) == remaining, plan_sql(safe)


def test_lint_and_plan_agree_on_renames(base_schema: Schema) -> None:
    # Renames are planned by the multi-phase patterns (a single-run plan sees a drop and
    # an add): check the kinds' own steps.
    d = get_dialect("postgres")
    accounts = base_schema.table("public", "accounts")
    assert accounts is not None
    for change, rule in ((RenameColumn(accounts, "email", "email_address"), "rename-column"),
                         (RenameTable(accounts, "clients"), "rename-table")):
        plan = Plan(source_hash="x", dialect="postgres", steps=[step_for(change, d)])
        assert _plan_rules(plan) == {rule} == _lint_rules(plan)


# ------------------------------------------------------------ rewrites, measured
def _relfilenode(dsn: str, table: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT relfilenode FROM pg_class WHERE oid = %s::regclass",
                            (table,)).fetchone()[0]


@pytest.mark.parametrize("change, rewrites", [
    ("note varchar(20) -> varchar(200)", False),
    ("note varchar(20) -> text", False),
    ("note varchar(20) -> varchar", False),
    ("amount numeric(10,2) -> numeric(14,2)", False),
    ("amount numeric(10,2) -> numeric", False),
    ("score int -> bigint", True),
    ("note varchar(20) -> varchar(10)", True),
])
def test_rewrite_facts_match_postgres(pg_dsn: str, change: str, rewrites: bool) -> None:
    """A type change PostgreSQL does without a rewrite keeps the table's file."""
    col, types = change.split(" ", 1)
    old, new = types.split(" -> ")
    before = f"CREATE TABLE t (id int PRIMARY KEY, {col} {old});"
    pg_exec(pg_dsn, before + "INSERT INTO t SELECT g, 1 FROM generate_series(1, 100) g;")
    plan = build_plan(_schema(before), _schema(before.replace(f"{col} {old}", f"{col} {new}")))
    (step,) = plan.steps
    assert step.lock is not None and step.lock.rewrites_table is rewrites
    assert ("type-change-rewrite" in {f.rule for f in step.findings}) is rewrites
    node = _relfilenode(pg_dsn, "t")
    apply_plan(plan, pg_dsn, ApplyOptions(safety="permissive", skip_shadow=True))
    assert (_relfilenode(pg_dsn, "t") != node) is rewrites


# To and from a domain, the server converts as between the base types, and rewrites
# where the new type is a domain with a CHECK or NOT NULL (each row is coerced to it
# as the table is rewritten) or an array of domains (converted element by element).
RETYPE_DOMAINS = """CREATE DOMAIN dplain AS int; CREATE DOMAIN dpos AS int CHECK (VALUE > 0);
CREATE DOMAIN dnn AS int NOT NULL; CREATE DOMAIN dpos2 AS dpos;
CREATE DOMAIN dvc AS varchar(200); CREATE DOMAIN dtext AS text CHECK (VALUE <> '');
"""


@pytest.mark.parametrize("change, rewrites", [
    ("v int -> dplain", False),
    ("v dplain -> int", False),
    ("v int -> dpos", True),
    ("v dpos -> int", False),
    ("v dplain -> dpos", True),
    ("v int -> dnn", True),
    ("v int -> dpos2", True),
    ("v dpos2 -> dplain", False),
    ("v varchar(20) -> dvc", False),
    ("v dvc -> text", False),
    ("v varchar(20) -> dtext", True),
    ("v int -> bigint", True),
    ("v int[] -> dplain[]", True),
], ids=lambda v: v if isinstance(v, str) else None)
def test_domain_retype_facts_match_postgres(pg_dsn_factory, change: str,
                                            rewrites: bool) -> None:
    col, types = change.split(" ", 1)
    old, new = types.split(" -> ")
    pg_dsn, desired = pg_dsn_factory(), pg_dsn_factory()  # (on the server under test)
    before = RETYPE_DOMAINS + f"CREATE TABLE t (id int PRIMARY KEY, {col} {old});"
    value = "'{1}'" if old.endswith("]") else "1"
    pg_exec(pg_dsn, before + f"INSERT INTO t SELECT g, {value} FROM generate_series(1, 100) g;")
    pg_exec(desired, before.replace(f"{col} {old}", f"{col} {new}"))
    with get_dialect("postgres").connect(pg_dsn) as db:
        start = db.introspect()
    with get_dialect("postgres").connect(desired) as db:
        plan = build_plan(start, db.introspect())
    (step,) = plan.steps
    assert step.lock is not None and step.lock.rewrites_table is rewrites
    assert ("type-change-rewrite" in {f.rule for f in step.findings}) is rewrites
    node = _relfilenode(pg_dsn, "t")
    apply_plan(plan, pg_dsn, ApplyOptions(safety="permissive", skip_shadow=True))
    assert (_relfilenode(pg_dsn, "t") != node) is rewrites


# ------------------------------------------------------------ lock-safe plans apply
def test_volatile_default_is_backfilled_in_batches(pg_dsn: str) -> None:
    pg_exec(pg_dsn, BASE + "INSERT INTO accounts (id, nick) SELECT g, 'n' FROM "
            "generate_series(1, 5000) g;")
    desired = BASE + ("ALTER TABLE accounts ADD COLUMN token uuid NOT NULL "
                      "DEFAULT gen_random_uuid();")
    with get_dialect("postgres").connect(pg_dsn) as db:
        before = db.introspect()
    plan = build_plan(before, _schema(desired))
    kinds = [s.kind for s in plan.steps]
    assert kinds[:3] == ["add_column", "alter_column", "backfill_column"]
    assert plan.steps[2].backfill and plan.steps[2].backfill["where"] == '"token" IS NULL'
    result = apply_plan(plan, pg_dsn, ApplyOptions(safety="permissive"))
    assert result.status == "applied" and result.hash_after == plan.target_hash
    with psycopg.connect(pg_dsn) as conn:
        n, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT token) FROM accounts").fetchone()
        batches = conn.execute("SELECT count(*) FROM lockplane.backfills").fetchone()[0]
    assert n == distinct == 5000
    assert batches >= 1  # the engine's checkpoint: batches, not one UPDATE


def test_resume_after_a_crash_leaves_an_invalid_index(pg_dsn: str, tmp_path: Path) -> None:
    """A unique build that fails (or dies) leaves an INVALID index: the step's clean-up
    drops it, and a resumed apply accepts it and builds the index again."""
    pg_exec(pg_dsn, BASE + "INSERT INTO accounts (id, nick, email) VALUES "
            "(1, 'a', 'same'), (2, 'b', 'same');")
    desired = BASE + ("ALTER TABLE accounts ADD COLUMN extra int; "
                      "CREATE UNIQUE INDEX accounts_email_key ON accounts (email);")
    (tmp_path / "desired.sql").write_text(desired)
    proc = run("plan", "--from", pg_dsn, "--to", "desired.sql", "-o", "plan.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    # --skip-shadow: the shadow's sample of rows would catch the duplicates first.
    proc = run("apply", "plan.json", "--target", pg_dsn, "--auto-approve", "--skip-shadow",
               cwd=tmp_path)
    assert_one_line_error(proc, 1, "accounts_email_key", "cleaned up", "steps 1-1 stay applied")
    # As if the process had died mid-build: the INVALID index is there on resume.
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("CREATE UNIQUE INDEX CONCURRENTLY accounts_email_key "
                         "ON accounts (email)")
        assert conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = "
                            "'accounts_email_key'::regclass").fetchone() == (False,)
        conn.execute("UPDATE accounts SET email = 'other' WHERE id = 2")
    proc = run("apply", "plan.json", "--target", pg_dsn, "--auto-approve", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "resuming" in proc.stderr
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = "
                            "'accounts_email_key'::regclass").fetchone() == (True,)
    target = json.loads((tmp_path / "plan.json").read_text())["target_hash"]
    with get_dialect("postgres").connect(pg_dsn) as db:
        assert db.introspect().hash() == target


# ------------------------------------------------------------ safety levels
@pytest.fixture
def project(tmp_path: Path) -> Path:
    return tmp_path


def _apply(pg_dsn: str, project: Path, desired: str, *extra: str):
    (project / "desired.sql").write_text(desired)
    return run("apply", "--schema", "desired.sql", "--target", pg_dsn, "--auto-approve",
               "--skip-shadow", *extra, cwd=project)


def test_strict_refuses_dangerous_lossy_and_breaking(pg_dsn: str, project: Path) -> None:
    pg_exec(pg_dsn, BASE)
    proc = _apply(pg_dsn, project, BASE.replace(", legacy text", ""), "--safety", "strict")
    assert_one_line_error(proc, 3, "step 1", "drop-column", "dangerous")
    proc = _apply(pg_dsn, project, BASE.replace("score int", "score bigint"),
                  "--safety", "strict")
    assert_one_line_error(proc, 3, "type-change-rewrite", "--multi-phase")
    proc = _apply(pg_dsn, project, BASE.replace("note varchar(20)", "note varchar(5)"),
                  "--safety", "strict")
    assert_one_line_error(proc, 3, "type-change-narrowing", "lossy")
    # a lock-safe index build passes strict
    proc = _apply(pg_dsn, project, BASE + "CREATE INDEX e_idx ON accounts (email);",
                  "--safety", "strict")
    assert proc.returncode == 0, proc.stderr


def test_moderate_needs_an_acknowledgement_for_dangerous_steps(pg_dsn: str,
                                                               project: Path) -> None:
    pg_exec(pg_dsn, BASE)
    desired = BASE.replace(", legacy text", "")
    proc = _apply(pg_dsn, project, desired, "--safety", "moderate")
    assert_one_line_error(proc, 3, "--acknowledge drop-column@public.accounts")
    with psycopg.connect(pg_dsn) as conn:  # nothing changed
        assert conn.execute("SELECT count(*) FROM information_schema.columns WHERE "
                            "column_name = 'legacy'").fetchone() == (1,)
    proc = _apply(pg_dsn, project, desired, "--safety", "moderate", "--acknowledge", "nope")
    assert_one_line_error(proc, 2, "--acknowledge", "nope")
    # a step number means nothing for a plan computed now
    proc = _apply(pg_dsn, project, desired, "--safety", "moderate", "--acknowledge", "1")
    assert_one_line_error(proc, 2, "needs a reviewed plan file")
    # acknowledging the risk on another table does not cover this one
    proc = _apply(pg_dsn, project, desired, "--safety", "moderate",
                  "--acknowledge", "drop-column@public.owners")
    assert_one_line_error(proc, 3, "drop-column")
    proc = _apply(pg_dsn, project, desired, "--safety", "moderate",
                  "--acknowledge", "drop-column@public.accounts")
    assert proc.returncode == 0, proc.stderr


def test_permissive_runs_and_writes_the_risks_out(pg_dsn: str, project: Path) -> None:
    pg_exec(pg_dsn, BASE)
    proc = _apply(pg_dsn, project, BASE.replace(", legacy text", ""), "--safety", "permissive")
    assert proc.returncode == 0, proc.stderr
    assert "drop-column" in proc.stderr and "safer:" in proc.stderr


def test_plan_format_sql_and_no_rewrite(pg_dsn: str, project: Path) -> None:
    pg_exec(pg_dsn, BASE)
    (project / "d.sql").write_text(BASE + "CREATE INDEX e_idx ON accounts (email);")
    safe = run("plan", "--from", pg_dsn, "--to", "d.sql", "--format", "sql", cwd=project)
    assert safe.returncode == 0, safe.stderr
    assert "CREATE INDEX CONCURRENTLY" in safe.stdout and "BEGIN;" not in safe.stdout
    # CONCURRENTLY waits for older transactions and blocks nobody: no lock_timeout
    assert "SET lock_timeout = 0;" in safe.stdout
    plain = run("plan", "--from", pg_dsn, "--to", "d.sql", "--format", "sql", "--no-rewrite",
                "--lock-timeout-ms", "500", cwd=project)
    assert "BEGIN;" in plain.stdout and "CONCURRENTLY" not in plain.stdout
    assert "SET lock_timeout = '500ms';" in plain.stdout
    assert "create-index-blocking" in plain.stdout  # the findings, as comments
    bad = run("plan", "--from", pg_dsn, "--to", "d.sql", "--format", "yaml", cwd=project)
    assert_one_line_error(bad, 2, "--format")


def test_the_same_inputs_give_the_same_plan_whatever_the_hash_seed(pg_dsn: str,
                                                                 tmp_path: Path) -> None:
    """Steps on independent tables came out in set order (PYTHONHASHSEED) once: a plan
    must be reproducible byte for byte."""
    pg_exec(pg_dsn, "".join(f"CREATE TABLE t{i} (id int PRIMARY KEY, a int, b int); "
                            f"CREATE INDEX t{i}_a ON t{i} (a);" for i in range(8)))
    (tmp_path / "d.sql").write_text("".join(
        f"CREATE TABLE t{i} (id int PRIMARY KEY, a int, b int, c int); "
        f"CREATE INDEX t{i}_c ON t{i} (c);" for i in range(8)))
    plans = set()
    for seed in ("1", "2", "3"):
        proc = run("plan", "--from", pg_dsn, "--to", "d.sql", "-q", cwd=tmp_path,
                   env={"PYTHONHASHSEED": seed})
        assert proc.returncode == 0, proc.stderr
        plans.add(proc.stdout)
    assert len(plans) == 1


# ------------------------------------------------------------ review findings, pinned
def _live(dsn: str) -> Schema:
    with get_dialect("postgres").connect(dsn) as db:
        return db.introspect()


def test_replaced_unique_and_primary_key_never_leave_the_table_without(pg_dsn: str) -> None:
    """A constraint or index replaced by one of the same name: the new one is built
    concurrently under a temporary name before the old one goes, and the swap of a
    constraint is one transaction."""
    pg_exec(pg_dsn, "CREATE TABLE t (id int PRIMARY KEY, a int, b int, "
                    "CONSTRAINT t_a_uq UNIQUE (a)); CREATE INDEX t_b_idx ON t (b);"
                    "INSERT INTO t SELECT g, g, g FROM generate_series(1, 500) g;")
    after = _schema("CREATE TABLE t (id int, a int NOT NULL, b int, "
                    "CONSTRAINT t_pkey PRIMARY KEY (id, a), "
                    "CONSTRAINT t_a_uq UNIQUE NULLS NOT DISTINCT (a));"
                    "CREATE INDEX t_b_idx ON t (b) WHERE b > 0;")
    plan = build_plan(_live(pg_dsn), after)
    names = [s.description for s in plan.steps]
    for old, new in (("Drop primary key t_pkey", "Create unique index t_pkey__lp_new"),
                     ("Drop unique constraint t_a_uq", "Create unique index t_a_uq__lp_new"),
                     ("Drop index t_b_idx", "Create index t_b_idx__lp_new")):
        built = next(i for i, n in enumerate(names) if n.startswith(new))
        dropped = next(i for i, n in enumerate(names) if n.startswith(old))
        assert built < dropped, names
    for i, n in enumerate(names):
        if n.startswith(("Drop primary key", "Drop unique constraint")):
            # the drop and the adoption share one transaction
            assert plan.steps[i].transactional and plan.steps[i + 1].transactional
            assert "using index" in names[i + 1]
    apply_plan(plan, pg_dsn, ApplyOptions(safety="permissive", skip_shadow=True))
    assert _live(pg_dsn).hash() == after.hash()


def test_a_failed_validate_leaves_no_helper_check_behind(pg_dsn: str) -> None:
    pg_exec(pg_dsn, "CREATE TABLE t (id int PRIMARY KEY, email text);"
                    "INSERT INTO t VALUES (1, 'a'), (2, NULL);")
    after = _schema("CREATE TABLE t (id int PRIMARY KEY, email text NOT NULL);")
    plan = build_plan(_live(pg_dsn), after)
    with pytest.raises(Exception, match="cleaned up"):
        apply_plan(plan, pg_dsn, ApplyOptions(safety="permissive", skip_shadow=True))
    pg_exec(pg_dsn, "INSERT INTO t VALUES (3, NULL);")  # no helper check enforcing NOT NULL
    pg_exec(pg_dsn, "DELETE FROM t WHERE email IS NULL;")
    result = apply_plan(plan, pg_dsn, ApplyOptions(safety="permissive", skip_shadow=True))
    assert result.hash_after == after.hash()


def test_constraints_the_schema_keeps_not_valid_are_not_validated(pg_dsn: str) -> None:
    pg_exec(pg_dsn, "CREATE TABLE u (id int PRIMARY KEY); CREATE TABLE o (id int, uid int, "
                    "n int); INSERT INTO o VALUES (1, 99, -1);")
    desired = ("CREATE TABLE u (id int PRIMARY KEY); CREATE TABLE o (id int, uid int, n int);"
               "ALTER TABLE o ADD CONSTRAINT o_uid_fk FOREIGN KEY (uid) REFERENCES u (id) "
               "NOT VALID; ALTER TABLE o ADD CONSTRAINT o_n_pos CHECK (n > 0) NOT VALID;")
    after = _schema(desired)
    for lock_safe in (True, False):
        plan = build_plan(_live(pg_dsn), after, lock_safe=lock_safe)
        assert "validate_constraint" not in [s.kind for s in plan.steps]
        assert all("NOT VALID" in " ".join(s.sql) for s in plan.steps)
    apply_plan(plan, pg_dsn, ApplyOptions(safety="permissive", skip_shadow=True))
    assert _live(pg_dsn).hash() == after.hash()


def test_type_change_and_not_null_in_one_column_do_not_scan_under_the_lock(
        base_schema: Schema) -> None:
    after = _schema(BASE.replace("note varchar(20)", "note varchar(40) NOT NULL"))
    plan = build_plan(base_schema, after)
    kinds = [s.kind for s in plan.steps]
    assert kinds == ["alter_column", "add_constraint", "validate_constraint", "alter_column",
                     "drop_constraint"]
    assert "TYPE character varying(40)" in " ".join(plan.steps[0].sql)
    assert "SET NOT NULL" not in " ".join(plan.steps[0].sql)
    assert plan.steps[3].lock is not None and not plan.steps[3].lock.scans_table


def test_concurrent_builds_wait_for_old_transactions_without_a_lock_timeout(
        base_schema: Schema) -> None:
    plan = build_plan(base_schema, _schema(BASE + "CREATE INDEX e ON accounts (email);"))
    (step,) = plan.steps
    assert step.sql[0] == "SET lock_timeout = 0" and "CONCURRENTLY" in step.sql[1]


def test_a_backfill_cut_short_is_resumed_not_reported_applied(pg_dsn: str) -> None:
    """The schema reaches the target before the backfill ends: a re-apply after a crash
    must finish the data, not say 'already applied'."""
    from lockplane.state import History

    pg_exec(pg_dsn, BASE + "INSERT INTO accounts (id, nick) SELECT g, 'n' FROM "
            "generate_series(1, 300) g;")
    after = _schema(BASE + "ALTER TABLE accounts ADD COLUMN token uuid "
                           "DEFAULT gen_random_uuid();")
    plan = build_plan(_live(pg_dsn), after)
    assert plan.steps[-1].kind == "backfill_column"
    head = plan.model_copy(update={"steps": plan.steps[:-1]})
    # As if the process died right before the backfill: schema done, record unfinished.
    from lockplane.execute import plan_id, who

    with get_dialect("postgres").connect(pg_dsn) as db:
        for step in head.steps:
            for stmt in step.sql:
                db.execute(stmt)
        history = History(db)
        mid = history.start(plan_id(plan), plan, who("test"))
        history.progress(mid, len(head.steps), db.introspect().hash())
    result = apply_plan(plan, pg_dsn, ApplyOptions(safety="permissive", skip_shadow=True))
    assert result.status == "resumed"
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM accounts WHERE token IS NULL"
                            ).fetchone() == (0,)


def test_a_replaced_index_keeps_its_comment(pg_dsn: str) -> None:
    """Found by the long hypothesis run: the index built under a temporary name lost the
    comment the desired schema gives it."""
    pg_exec(pg_dsn, "CREATE TABLE t (id int PRIMARY KEY, a int); CREATE INDEX t_a ON t (a);")
    after = _schema("CREATE TABLE t (id int PRIMARY KEY, a int);"
                    "CREATE INDEX t_a ON t USING hash (a); COMMENT ON INDEX t_a IS 'people';")
    plan = build_plan(_live(pg_dsn), after)
    assert "rename_index" in [s.kind for s in plan.steps]
    apply_plan(plan, pg_dsn, ApplyOptions(safety="permissive", skip_shadow=True))
    assert _live(pg_dsn).hash() == after.hash()


def test_sqlite_dropping_autoincrement_needs_an_acknowledgement(tmp_path: Path) -> None:
    """A schema file from before Lockplane modelled AUTOINCREMENT drops it; that drops the
    sqlite_sequence counter and ids of deleted rows come back: dangerous, so the default
    (moderate) safety refuses it until that risk is acknowledged on that table."""
    import sqlite3

    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(
            "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT);"
            "INSERT INTO t (name) VALUES ('a'), ('b'), ('c'); DELETE FROM t WHERE id = 3;")
    conn.close()
    (tmp_path / "desired.sql").write_text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT);\n")
    dsn = f"sqlite:///{db}"

    def apply(*extra: str):
        return run("apply", "--schema", "desired.sql", "--target", dsn, "--auto-approve",
                   *extra, cwd=tmp_path)

    def counter() -> list[tuple]:
        conn = sqlite3.connect(db)
        try:
            return conn.execute("SELECT name, seq FROM sqlite_sequence WHERE name = 't'"
                                ).fetchall()
        finally:
            conn.close()

    for extra in ((), ("--safety", "moderate")):
        proc = apply(*extra)
        assert_one_line_error(proc, 3, "[sqlite-drop-autoincrement]", "dangerous",
                              "--acknowledge sqlite-drop-autoincrement@main.t",
                              "handed out again")
        assert counter() == [("t", 3)]  # nothing changed
    proc = run("plan", "--from", dsn, "--to", "desired.sql", cwd=tmp_path)
    text = " ".join((proc.stdout + proc.stderr).split())
    assert "sqlite-drop-autoincrement" in text and "dangerous" in text, text
    # strict refuses it whatever is acknowledged
    proc = apply("--safety", "strict", "--acknowledge", "sqlite-drop-autoincrement@main.t")
    assert_one_line_error(proc, 3, "sqlite-drop-autoincrement", "dangerous")
    # another table's acknowledgement does not cover it, nor does the rebuild's own one
    for other in ("sqlite-drop-autoincrement@main.other", "sqlite-table-rebuild@main.t"):
        proc = apply("--acknowledge", other)
        assert_one_line_error(proc, 3, "sqlite-drop-autoincrement")
    proc = apply("--acknowledge", "sqlite-drop-autoincrement@main.t")
    assert proc.returncode == 0, proc.stderr
    assert counter() == []
    with sqlite3.connect(db) as conn:
        assert conn.execute("INSERT INTO t (name) VALUES ('new')").lastrowid == 3  # reused
    conn.close()


def test_moderate_needs_every_dangerous_risk_of_a_step_acknowledged() -> None:
    """Dropping a primary key that a publication's UPDATEs rely on carries two risks:
    acknowledging one of them must not wave the other through."""
    from lockplane.execute import refused_steps
    from lockplane.plan import Step, StepFinding

    step = Step(description="Drop primary key on public.orders", sql=["ALTER TABLE ..."],
                table="public.orders", safety="dangerous", findings=[
                    StepFinding(rule="change-primary-key", safety="dangerous", message="a"),
                    StepFinding(rule="publication-no-replica-identity", safety="dangerous",
                                message="b"),
                    StepFinding(rule="require-lock-timeout", safety="review", message="c")])
    plan = Plan(source_hash="x", steps=[step])
    refused = refused_steps(plan, "moderate", {"change-primary-key@public.orders"})
    assert len(refused) == 1
    assert ("--acknowledge change-primary-key@public.orders,"
            "publication-no-replica-identity@public.orders") in refused[0].why
    both = {"change-primary-key@public.orders", "publication-no-replica-identity"}
    assert refused_steps(plan, "moderate", both) == []
    assert refused_steps(plan, "moderate", {1}) == []  # a reviewed plan file's step number
