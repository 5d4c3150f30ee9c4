"""Squawk, an independent linter, over the PostgreSQL plans Lockplane emits by default.

The corpus is every PostgreSQL schema pair of the round-trip suite plus the lock-safety
cases below, planned with the defaults (lock-safe forms, lock_timeout in each locking
step), and the multi-phase plans of the breaking changes. None of Squawk's lock findings
may appear, with one exception, by rule: a change that has no lock-safe form at all (a
type change that rewrites the table, a stored generated column, rebuilding an enum) may
be flagged by Squawk only where Lockplane flags the same risk itself (a rule whose Squawk
equivalents include Squawk's). Those steps are multi_phase or review: strict refuses the
type change and points to the multi-phase plan, which Squawk checks too.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lockplane.dialects import get_dialect
from lockplane.model import Schema
from lockplane.multiphase import plan_multiphase
from lockplane.plan import Plan, build_plan
from lockplane.rules import RULES
from lockplane.sqlscript import plan_sql
from tests.conftest import PG_ADMIN_DSN
from tests.test_constraint_changes import PG_CASES as CONSTRAINT_CASES
from tests.test_roundtrip import PG_CASES

SQUAWK = shutil.which("squawk", path=str(Path(sys.executable).parent)) or shutil.which("squawk")

# Squawk's rules about locks (the list; adding-required-field and
# adding-field-with-default are the same facts for ADD COLUMN).
LOCK_RULES = {
    "require-concurrent-index-creation", "require-concurrent-index-deletion",
    "constraint-missing-not-valid", "adding-foreign-key-constraint",
    "adding-not-nullable-field", "disallowed-unique-constraint", "changing-column-type",
    "require-lock-timeout", "adding-field-with-default", "adding-serial-primary-key-field",
}

BASE = """
CREATE TABLE owners (id bigint PRIMARY KEY);
CREATE TABLE accounts (id bigint PRIMARY KEY, email text, owner_id bigint, balance int,
                       status text, note varchar(20), score int);
CREATE INDEX accounts_note_idx ON accounts (note);
"""

# (name, from, to): each lock-safety rewrite, alone and together.
LOCK_CASES = [
    ("index", BASE, BASE + "CREATE INDEX accounts_email_idx ON accounts (email);"),
    ("unique index", BASE, BASE + "CREATE UNIQUE INDEX accounts_email_key ON accounts (email);"),
    ("drop index", BASE, BASE.replace("CREATE INDEX accounts_note_idx ON accounts (note);", "")),
    ("unique constraint", BASE, BASE + "ALTER TABLE accounts ADD UNIQUE (email);"),
    ("primary key", "CREATE TABLE t (id int NOT NULL, v text);",
     "CREATE TABLE t (id int PRIMARY KEY, v text);"),
    ("primary key on nullable", "CREATE TABLE t (id int, v text);",
     "CREATE TABLE t (id int PRIMARY KEY, v text);"),
    ("foreign key", BASE, BASE + "ALTER TABLE accounts ADD FOREIGN KEY (owner_id) "
     "REFERENCES owners (id);"),
    ("check", BASE, BASE + "ALTER TABLE accounts ADD CHECK (balance >= 0);"),
    ("set not null", BASE, BASE + "ALTER TABLE accounts ALTER status SET NOT NULL;"),
    ("volatile default", BASE, BASE + "ALTER TABLE accounts ADD COLUMN token uuid "
     "DEFAULT gen_random_uuid();"),
    ("volatile default not null", BASE, BASE + "ALTER TABLE accounts ADD COLUMN token uuid "
     "NOT NULL DEFAULT gen_random_uuid();"),
    ("constant default not null", BASE, BASE + "ALTER TABLE accounts ADD COLUMN flag "
     "boolean NOT NULL DEFAULT false;"),
    ("varchar widen", BASE, BASE.replace("varchar(20)", "varchar(200)")),
    ("varchar to text", BASE, BASE.replace("varchar(20)", "text")),
    ("int to bigint (rewrite)", BASE, BASE.replace("score int", "score bigint")),
    ("all at once", BASE, BASE + """
        CREATE INDEX accounts_email_idx ON accounts (email);
        ALTER TABLE accounts ADD UNIQUE (id, email);
        ALTER TABLE accounts ADD FOREIGN KEY (owner_id) REFERENCES owners (id);
        ALTER TABLE accounts ADD CHECK (balance >= 0);
        ALTER TABLE accounts ALTER status SET NOT NULL;"""),
]

pytestmark = pytest.mark.skipif(SQUAWK is None, reason="squawk-cli is a test dependency")


def _schema(sql: str) -> Schema:
    with get_dialect("postgres").scratch(PG_ADMIN_DSN) as db:
        if sql.strip():
            db.execute(sql)
        return db.introspect()


def squawk(script: str, tmp_path: Path, name: str) -> list[dict]:
    path = tmp_path / f"{name}.sql"
    path.write_text(script)
    proc = subprocess.run([str(SQUAWK), "--reporter", "json", "--pg-version", "15", str(path)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout or "[]")


# Lockplane rules for changes PostgreSQL cannot do without the lock Squawk warns about.
# (an EXCLUDE constraint has neither NOT VALID nor ADD ... USING INDEX: one added to a
# table with rows, or added back around a routine it calls, is built under the lock)
NO_LOCK_SAFE_FORM = {"type-change-rewrite", "add-generated-column", "enum-value-removed",
                     "enum-value-reordered", "table-rewrite", "add-exclusion-constraint"}


def _flagged_by_lockplane(step, squawk_rule: str) -> bool:
    return any(f.rule in NO_LOCK_SAFE_FORM and squawk_rule in RULES[f.rule].squawk
               for f in step.findings)


def _inside_flagged_rewrite(step) -> bool:
    """A statement of a step that rewrites its table under ACCESS EXCLUSIVE for a change
    Lockplane flags as having no lock-safe form (an enum recreated, say): the indexes and
    CHECKs it drops and makes again around the rewrite are built under that same lock,
    where CONCURRENTLY cannot run and NOT VALID would save nothing."""
    lock = step.lock
    return (lock is not None and lock.rewrites_table and lock.mode == "ACCESS EXCLUSIVE"
            and any(f.rule in NO_LOCK_SAFE_FORM for f in step.findings))


def lock_findings(plan: Plan, tmp_path: Path, name: str) -> list[str]:
    """Squawk's lock findings on the plan's script, minus those Lockplane flags itself on
    changes that have no lock-safe form."""
    script = plan_sql(plan)
    lines = script.splitlines()
    bad = []
    for f in squawk(script, tmp_path, name):
        if f["rule_name"] not in LOCK_RULES:
            continue
        text = lines[f["line"]].strip().rstrip(";")
        steps = [s for s in plan.steps if any(text in stmt for stmt in s.sql)]
        if steps and all(_flagged_by_lockplane(s, f["rule_name"])
                         or _inside_flagged_rewrite(s) for s in steps):
            continue
        if f["rule_name"] == "require-concurrent-index-creation" and " ON ONLY " in text:
            # An index ON ONLY a partitioned table builds nothing (its partitions' copies
            # are built concurrently and attached); PostgreSQL refuses CONCURRENTLY there.
            continue
        if f["rule_name"] == "changing-column-type" and steps and all(
                s.lock is not None and not s.lock.rewrites_table for s in steps):
            # varchar widening, varchar -> text, numeric precision up: no rewrite (tested
            # in test_safety.py by the table's relfilenode); Squawk cannot know the old type.
            continue
        bad.append(f"{f['rule_name']} at: {text}")
    return bad


ALL_CASES = [(f"roundtrip: {n}", a, b) for n, a, b in PG_CASES] + LOCK_CASES + [
    (f"constraint change: {n}", a, b) for n, a, b, _ in CONSTRAINT_CASES]


@pytest.mark.parametrize("name, from_sql, to_sql", ALL_CASES, ids=[c[0] for c in ALL_CASES])
def test_default_plan_has_no_squawk_lock_findings(tmp_path: Path, name: str, from_sql: str,
                                                  to_sql: str) -> None:
    plan = build_plan(_schema(from_sql), _schema(to_sql))
    found = lock_findings(plan, tmp_path, "plan")
    expected = PARTITIONED_KEYS.get(name)
    if expected is not None:  # (what PostgreSQL has no lock-safe form for; the plan says so)
        assert all(f.split(" at: ", 1)[1].startswith(expected) for f in found), found
        assert any(f.rule == "add-primary-key" for s in plan.steps for f in s.findings)
        return
    assert found == []


# A PRIMARY KEY added to a partitioned table is built under ACCESS EXCLUSIVE: PostgreSQL
# has no ADD ... USING INDEX there (the lock-safe form of a plain table's key); the plan
# classifies it (add-primary-key, review) and Squawk flags the same statement.
# A partitioned table's key detached from a partition is dropped and added again ON ONLY
# the parent, the kept partitions' copies added and attached in the same step
# (add_constraint.detach_partition_keys: the copies are built under that lock; attaching
# adopts the partitions' own indexes, with no finding).
PARTITIONED_KEYS: dict[str, str | tuple[str, ...]] = {
    "roundtrip: partitioned index made on the parent only":
        'ALTER TABLE "public"."meter" ADD CONSTRAINT "meter_pkey" PRIMARY KEY',
    "roundtrip: a partition's keys the desired schema wants unattached": (
        'ALTER TABLE ONLY "p s"."Kv" ADD CONSTRAINT', 'ALTER TABLE "p s"."kv_a" ADD CONSTRAINT'),
}


def test_no_rewrite_plan_is_what_squawk_flags(tmp_path: Path) -> None:
    # The control: the plain DDL of the same change is flagged by Squawk, rule by rule.
    to_sql = LOCK_CASES[-1][2]
    plain = build_plan(_schema(BASE), _schema(to_sql), lock_safe=False)
    rules = {f["rule_name"] for f in squawk(plan_sql(plain), tmp_path, "plain")}
    assert {"require-concurrent-index-creation", "constraint-missing-not-valid",
            "adding-foreign-key-constraint", "disallowed-unique-constraint",
            "adding-not-nullable-field"} <= rules


@pytest.mark.parametrize("name, to_sql", [
    ("type change", BASE.replace("score int", "score bigint")),
    ("rename column", BASE.replace("email text", "email_address text")),
    ("add not null", BASE.replace("status text", "status text NOT NULL")),
])
def test_multi_phase_plans_have_no_squawk_lock_findings(tmp_path: Path, name: str,
                                                        to_sql: str) -> None:
    mp = plan_multiphase(_schema(BASE), _schema(to_sql), server_dsn=PG_ADMIN_DSN)
    for phase in mp.phases:
        found = lock_findings(phase.plan, tmp_path, f"phase{phase.phase_number}")
        assert found == [], (phase.name, found)
