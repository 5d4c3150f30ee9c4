"""``lockplane lint``: catalogue rule ids found in hand-written PostgreSQL migrations.

No database needed: lint only parses. Each rule has a case that fires and, where the
rule has a lock-safe or same-file form, a case that does not.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lockplane.changes.base import Safety
from lockplane.errors import BadInput
from lockplane.lint import LintFinding, lint_sql
from lockplane.rules import RULES

LOCKPLANE = [sys.executable, "-m", "lockplane"]
TIMEOUT = "SET lock_timeout = '3s';\n"


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("LOCKPLANE_DEBUG", None)
    return subprocess.run([*LOCKPLANE, *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=120)


def rules(sql: str, *, timeout: bool = True) -> list[str]:
    """Rule ids found in ``sql`` (with a lock_timeout set first unless told otherwise)."""
    return [f.rule for f in lint_sql((TIMEOUT if timeout else "") + sql)]


# ---------------------------------------------------------------- one case per rule
@pytest.mark.parametrize(("sql", "rule"), [
    ("DROP TABLE users;", "drop-table"),
    ("ALTER TABLE users DROP COLUMN email;", "drop-column"),
    ("DROP SCHEMA app CASCADE;", "drop-schema"),
    ("DROP DATABASE app;", "drop-database"),
    ("TRUNCATE users;", "truncate-table"),
    ("DROP SEQUENCE users_id_seq;", "drop-sequence"),
    ("DROP MATERIALIZED VIEW totals;", "drop-materialized-view"),
    ("DROP VIEW active_users;", "drop-object"),
    ("DROP FUNCTION f(integer);", "drop-object"),
    ("DROP TYPE mood;", "drop-object"),
    ("DROP TRIGGER tr ON users;", "drop-object"),
    ("DROP POLICY p ON users;", "drop-object"),
    ("DROP PUBLICATION feed;", "drop-publication"),
    ("ALTER PUBLICATION feed DROP TABLE users;", "publication-remove-table"),
    ("ALTER PUBLICATION feed SET TABLE users, orders;", "publication-remove-table"),
    ("ALTER PUBLICATION feed SET (publish = 'insert');", "publication-narrow-publish"),
    ("ALTER PUBLICATION feed SET (publish = 'insert, update', "
     "publish_via_partition_root = true);", "publication-narrow-publish"),
    ("DROP EVENT TRIGGER guard_ddl;", "drop-event-trigger"),
    ("ALTER TABLE users RENAME COLUMN email TO email_address;", "rename-column"),
    ("ALTER TABLE users RENAME TO people;", "rename-table"),
    ("ALTER TYPE job_state RENAME VALUE 'done' TO 'succeeded';", "enum-value-renamed"),
    ("ALTER TABLE users ALTER COLUMN nick TYPE varchar(10);", "type-change-rewrite"),
    ("ALTER TABLE users ALTER COLUMN id TYPE bigint;", "type-change-rewrite"),
    ("ALTER TABLE users ALTER COLUMN id SET DATA TYPE text USING id::text;",
     "type-change-rewrite"),
    ("CREATE INDEX users_email ON users (email);", "create-index-blocking"),
    ("CREATE UNIQUE INDEX users_email ON users (email);", "create-index-blocking"),
    ("DROP INDEX users_email;", "drop-index-blocking"),
    ("ALTER TABLE users ADD CONSTRAINT u UNIQUE (email);", "add-unique-constraint"),
    ("ALTER TABLE users ADD PRIMARY KEY (id);", "add-primary-key"),
    ("ALTER TABLE r ADD CONSTRAINT e EXCLUDE USING gist (during WITH &&);",
     "add-exclusion-constraint"),
    ("ALTER TABLE users ADD CONSTRAINT c CHECK (age > 0);", "add-check-constraint"),
    ("ALTER TABLE users ADD COLUMN age int CHECK (age > 0);", "add-check-constraint"),
    ("ALTER TABLE orders ADD CONSTRAINT f FOREIGN KEY (user_id) REFERENCES users (id);",
     "add-foreign-key"),
    ("ALTER TABLE orders ADD COLUMN user_id int REFERENCES users (id);", "add-foreign-key"),
    ("ALTER TABLE users ALTER COLUMN email SET NOT NULL;", "set-not-null"),
    ("ALTER TABLE users ALTER COLUMN email DROP NOT NULL;", "drop-not-null"),
    ("ALTER TABLE users ADD COLUMN tier int NOT NULL;", "add-not-null-column-without-default"),
    ("ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid();", "volatile-default"),
    ("ALTER TABLE users ADD COLUMN r float DEFAULT random();", "volatile-default"),
    ("ALTER TABLE users ADD COLUMN u uuid DEFAULT uuid_generate_v4();", "volatile-default"),
    ("ALTER TABLE users ADD COLUMN t timestamptz DEFAULT clock_timestamp();",
     "volatile-default"),
    ("ALTER TABLE users ADD COLUMN n bigint DEFAULT nextval('s');", "volatile-default"),
    ("ALTER TABLE users ADD COLUMN t text DEFAULT timeofday();", "volatile-default"),
    ("ALTER TABLE users ADD COLUMN x bigint DEFAULT txid_current();", "volatile-default"),
    ("ALTER TABLE users ADD COLUMN lower_email text GENERATED ALWAYS AS (lower(email)) "
     "STORED;", "add-generated-column"),
    ("ALTER TABLE users ADD COLUMN n bigint GENERATED ALWAYS AS IDENTITY;",
     "add-identity-column"),
    ("ALTER TABLE users ADD COLUMN n bigserial;", "add-identity-column"),
    ("ALTER TABLE users ADD COLUMN n serial;", "add-identity-column"),
    ("ALTER TABLE users DROP CONSTRAINT users_email_key;", "drop-constraint"),
    ("ALTER TABLE users ALTER COLUMN email DROP DEFAULT;", "drop-default"),
    ("ALTER TABLE users SET LOGGED;", "table-rewrite"),
    ("ALTER TABLE users SET UNLOGGED;", "table-rewrite"),
    ("VACUUM FULL users;", "table-rewrite"),
    ("VACUUM (FULL, ANALYZE) users;", "table-rewrite"),
    ("CLUSTER users USING users_pkey;", "table-rewrite"),
    ("ALTER TABLE events ATTACH PARTITION events_2024 FOR VALUES FROM ('2024-01-01') "
     "TO ('2025-01-01');", "attach-partition-scan"),
    ("BEGIN;\nCREATE INDEX CONCURRENTLY ix ON users (email);\nCOMMIT;",
     "concurrently-in-transaction"),
    ("BEGIN;\nDROP INDEX CONCURRENTLY ix;\nCOMMIT;", "concurrently-in-transaction"),
])
def test_rule_fires(sql: str, rule: str) -> None:
    assert rule in rules(sql), rules(sql)


def test_publication_and_event_trigger_messages_quote_names() -> None:
    found = lint_sql('ALTER PUBLICATION "Weird Pub" DROP TABLE users;\n'
                     "ALTER PUBLICATION \"Weird Pub\" SET (publish = 'insert');\n"
                     'DROP PUBLICATION "Weird Pub", feed;\n'
                     'DROP EVENT TRIGGER "Guard DDL";\n', "m.sql")
    assert [(f.line, f.rule, f.safety) for f in found] == [
        (1, "publication-remove-table", Safety.DANGEROUS),
        (2, "publication-narrow-publish", Safety.REVIEW),
        (3, "drop-publication", Safety.DANGEROUS),
        (3, "drop-publication", Safety.DANGEROUS),
        (4, "drop-event-trigger", Safety.DANGEROUS)]
    messages = [f.message for f in found]
    assert messages[0].startswith('ALTER PUBLICATION "Weird Pub" DROP: ')
    assert messages[1].startswith('ALTER PUBLICATION "Weird Pub" SET (publish = \'insert\') '
                                  "leaves out UPDATE, DELETE, TRUNCATE")
    assert messages[2].startswith('DROP PUBLICATION "Weird Pub" ')
    assert messages[3].startswith("DROP PUBLICATION feed ")
    assert messages[4].startswith('DROP EVENT TRIGGER "Guard DDL": ')


def test_every_finding_uses_a_catalogue_id_and_its_class() -> None:
    sql = "\n".join([
        "DROP TABLE a;", "ALTER TABLE b DROP COLUMN c;", "ALTER TABLE b RENAME TO d;",
        "CREATE INDEX ON b (x);", "ALTER TABLE b ADD COLUMN y int NOT NULL;"])
    found = lint_sql(sql, "m.sql")
    assert found
    for f in found:
        assert f.rule in RULES and RULES[f.rule].lintable
        assert f.safety == RULES[f.rule].safety
        assert f.safer == RULES[f.rule].safer
        assert f.file == "m.sql"


# ---------------------------------------------------------------- what does not fire
@pytest.mark.parametrize("sql", [
    "ALTER TABLE users ALTER COLUMN nick TYPE text;",
    "ALTER TABLE users ALTER COLUMN nick TYPE varchar;",
    "ALTER TABLE users ALTER COLUMN nick TYPE character varying;",
    # (now() and current_timestamp: lint asks a server, tests/test_default_rewrites.py)
    "ALTER TABLE users ADD COLUMN tier int NOT NULL DEFAULT 0;",
    "ALTER TABLE users ADD COLUMN nick2 text;",
    "ALTER TABLE users ADD COLUMN g int GENERATED ALWAYS AS (id * 2) VIRTUAL;",
    "ALTER TABLE users ALTER COLUMN email SET DEFAULT 'x';",
    "CREATE INDEX CONCURRENTLY users_email ON users (email);",
    "ALTER TABLE users ADD CONSTRAINT u UNIQUE USING INDEX users_email;",
    "ALTER TABLE users ADD CONSTRAINT pk PRIMARY KEY USING INDEX users_id;",
    "ALTER TABLE users ADD CONSTRAINT c CHECK (age > 0) NOT VALID;",
    "ALTER TABLE users VALIDATE CONSTRAINT c;",
    "ALTER PUBLICATION feed ADD TABLE users;",
    "ALTER TYPE job_state ADD VALUE 'archived' AFTER 'done';",
    "ALTER PUBLICATION feed SET (publish = 'insert, update, delete, truncate');",
    "ALTER PUBLICATION feed SET (publish_via_partition_root = true);",
    "SELECT 1;",
])
def test_lock_safe_forms_are_clean(sql: str) -> None:
    assert rules(sql) == []


def test_lock_safe_index_forms_keep_only_their_data_findings() -> None:
    # No lock finding; what stays is true of any form: a unique build may meet
    # duplicates, a dropped index slows its queries.
    assert rules("DROP INDEX CONCURRENTLY IF EXISTS users_email;") == ["drop-index"]
    assert rules("CREATE UNIQUE INDEX CONCURRENTLY u ON users (email);") == [
        "unique-on-existing-data"]


def test_the_lock_safe_migration_has_no_lock_finding() -> None:
    sql = """
    SET lock_timeout = '3s';
    CREATE INDEX CONCURRENTLY u ON t (a);
    ALTER TABLE t ADD CONSTRAINT u UNIQUE USING INDEX u;
    ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID;
    ALTER TABLE t VALIDATE CONSTRAINT c;
    ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES p(id) NOT VALID;
    ALTER TABLE t VALIDATE CONSTRAINT f;
    ALTER TABLE t ADD CONSTRAINT nn CHECK (b IS NOT NULL) NOT VALID;
    ALTER TABLE t VALIDATE CONSTRAINT nn;
    ALTER TABLE t ALTER COLUMN b SET NOT NULL;
    ALTER TABLE t DROP CONSTRAINT nn;
    DROP INDEX CONCURRENTLY IF EXISTS ix;
    """
    assert [f.rule for f in lint_sql(sql)] == ["drop-index"]


def test_set_not_null_needs_the_check_validated_on_that_column() -> None:
    base = "ALTER TABLE t ADD CONSTRAINT nn CHECK (b IS NOT NULL) NOT VALID;\n"
    # not validated yet: the scan still happens
    assert "set-not-null" in rules(base + "ALTER TABLE t ALTER COLUMN b SET NOT NULL;")
    # validated, but for another column
    assert "set-not-null" in rules(base + "ALTER TABLE t VALIDATE CONSTRAINT nn;\n"
                                   "ALTER TABLE t ALTER COLUMN c SET NOT NULL;")
    # on another table
    assert "set-not-null" in rules(base + "ALTER TABLE t VALIDATE CONSTRAINT nn;\n"
                                   "ALTER TABLE u ALTER COLUMN b SET NOT NULL;")


def test_new_tables_are_exempt_from_lock_and_existing_row_rules() -> None:
    # The FK references a table also created here: one referencing an existing table
    # locks that table (test_foreign_key_from_a_new_table_locks_the_referenced_table).
    sql = """
    CREATE TABLE plans (id bigint PRIMARY KEY);
    CREATE TABLE accounts (id bigint PRIMARY KEY, email text);
    ALTER TABLE accounts ADD COLUMN tier int NOT NULL;
    ALTER TABLE accounts ADD COLUMN token uuid DEFAULT gen_random_uuid();
    ALTER TABLE accounts ALTER COLUMN email SET NOT NULL;
    ALTER TABLE accounts ALTER COLUMN email TYPE varchar(200);
    ALTER TABLE accounts ADD CONSTRAINT u UNIQUE (email);
    ALTER TABLE accounts ADD CONSTRAINT c CHECK (tier > 0);
    ALTER TABLE accounts ADD CONSTRAINT f FOREIGN KEY (id) REFERENCES plans (id);
    CREATE INDEX accounts_email ON accounts (email);
    ALTER TABLE accounts DROP CONSTRAINT c;
    ALTER TABLE accounts DROP COLUMN tier;
    DROP INDEX accounts_email;
    DROP TABLE accounts;
    """
    assert rules(sql, timeout=False) == []


@pytest.mark.parametrize("sql", [
    "CREATE TABLE child (id int, o int REFERENCES orders (id));",
    "CREATE TABLE child (id int, o int, FOREIGN KEY (o) REFERENCES app.orders (id));",
    "CREATE TABLE child (id int);\n"
    "ALTER TABLE child ADD CONSTRAINT f FOREIGN KEY (id) REFERENCES orders (id) NOT VALID;",
    "CREATE TABLE child (id int);\nALTER TABLE child ADD COLUMN o int REFERENCES orders;",
])
def test_foreign_key_from_a_new_table_locks_the_referenced_table(sql: str) -> None:
    # PostgreSQL adds the RI triggers to orders under SHARE ROW EXCLUSIVE: writes to the
    # existing table queue behind the waiting CREATE/ALTER.
    found = lint_sql(sql)
    assert [f.rule for f in found] == ["require-lock-timeout"]
    assert "SHARE ROW EXCLUSIVE on" in found[0].message and "orders" in found[0].message
    assert rules(sql) == []  # a lock_timeout set first is all it needs


def test_foreign_key_to_a_table_created_in_the_file_needs_no_timeout() -> None:
    sql = ("CREATE TABLE orders (id int PRIMARY KEY);\n"
           "CREATE TABLE child (id int, o int REFERENCES orders (id));\n"
           "CREATE TABLE tree (id int PRIMARY KEY, parent int REFERENCES tree);\n"
           "ALTER TABLE child ADD CONSTRAINT f FOREIGN KEY (id) REFERENCES orders (id);")
    assert rules(sql, timeout=False) == []


def test_drop_default_of_a_column_added_in_the_file_is_clean() -> None:
    # Django's AddField: the default only fills the existing rows, then goes.
    django = ("ALTER TABLE t ADD COLUMN c integer DEFAULT 0 NOT NULL;\n"
              "ALTER TABLE t ALTER COLUMN c DROP DEFAULT;")
    assert rules(django) == []
    assert rules("ALTER TABLE t ADD COLUMN c integer DEFAULT 0 NOT NULL, "
                 "ALTER COLUMN c DROP DEFAULT;") == []
    # another column, or the same name on another table, existed before the file
    assert rules(django + "\nALTER TABLE t ALTER COLUMN d DROP DEFAULT;") == ["drop-default"]
    assert rules(django + "\nALTER TABLE u ALTER COLUMN c DROP DEFAULT;") == ["drop-default"]
    assert rules("ALTER TABLE t ALTER COLUMN c DROP DEFAULT;") == ["drop-default"]


def test_a_table_created_in_another_file_is_not_new(tmp_path: Path) -> None:
    (tmp_path / "001.sql").write_text("CREATE TABLE a (id int);\n")
    (tmp_path / "002.sql").write_text(TIMEOUT + "CREATE INDEX ON a (id);\n")
    proc = run("lint", str(tmp_path), "--format", "json")
    found = json.loads(proc.stdout)
    assert [(Path(f["file"]).name, f["rule"]) for f in found] == [
        ("002.sql", "create-index-blocking")]


def test_constraints_and_indexes_created_in_the_file_drop_freely() -> None:
    sql = """
    CREATE INDEX CONCURRENTLY ix ON users (email);
    DROP INDEX ix;
    ALTER TABLE users ADD CONSTRAINT c CHECK (age > 0) NOT VALID;
    ALTER TABLE users DROP CONSTRAINT c;
    """
    assert rules(sql) == []
    assert rules("DROP INDEX other;") == ["drop-index", "drop-index-blocking"]


def test_validate_in_the_same_transaction_as_not_valid_add() -> None:
    sql = """
    BEGIN;
    ALTER TABLE users ADD CONSTRAINT c CHECK (age > 0) NOT VALID;
    ALTER TABLE users VALIDATE CONSTRAINT c;
    ALTER TABLE orders ADD CONSTRAINT f FOREIGN KEY (uid) REFERENCES users (id) NOT VALID;
    ALTER TABLE orders VALIDATE CONSTRAINT f;
    COMMIT;
    """
    found = lint_sql(TIMEOUT + sql)
    assert [f.rule for f in found] == ["add-check-constraint", "add-foreign-key"]
    assert all("same transaction" in f.message for f in found)
    # committed in between: fine
    split = """
    BEGIN;
    ALTER TABLE users ADD CONSTRAINT c CHECK (age > 0) NOT VALID;
    COMMIT;
    BEGIN;
    ALTER TABLE users VALIDATE CONSTRAINT c;
    COMMIT;
    """
    assert rules(split) == []


def test_concurrently_outside_a_transaction_is_fine() -> None:
    assert rules("BEGIN;\nCOMMIT;\nCREATE INDEX CONCURRENTLY ix ON users (email);") == []


def test_type_change_message_says_may_rewrite() -> None:
    (f,) = lint_sql(TIMEOUT + "ALTER TABLE users ALTER COLUMN id TYPE bigint;")
    assert "may rewrite" in f.message and "bigint" in f.message
    assert f.safety == Safety.MULTI_PHASE


def test_add_column_primary_key_and_unique() -> None:
    found = rules("ALTER TABLE users ADD COLUMN code text UNIQUE;")
    assert found == ["add-unique-constraint"]
    found = rules("ALTER TABLE users ADD COLUMN code int PRIMARY KEY;")
    assert set(found) == {"add-primary-key", "add-not-null-column-without-default"}


def test_attach_partition_after_a_validated_check_is_clean() -> None:
    sql = """
    ALTER TABLE events_2024 ADD CONSTRAINT b CHECK (at >= '2024-01-01') NOT VALID;
    ALTER TABLE events_2024 VALIDATE CONSTRAINT b;
    ALTER TABLE events ATTACH PARTITION events_2024 FOR VALUES FROM ('2024-01-01')
        TO ('2025-01-01');
    """
    assert rules(sql) == []


# ---------------------------------------------------------------- lock_timeout
def test_require_lock_timeout() -> None:
    assert rules("ALTER TABLE users ADD COLUMN nick2 text;", timeout=False) == [
        "require-lock-timeout"]
    for stmt in ["DROP TABLE users;", "TRUNCATE users;", "CREATE INDEX ON users (a);",
                 "DROP INDEX ix;", "ALTER TABLE users RENAME TO u;", "LOCK TABLE users;",
                 "ALTER TABLE users DROP CONSTRAINT c;"]:
        assert "require-lock-timeout" in rules(stmt, timeout=False), stmt


@pytest.mark.parametrize("setting", [
    "SET lock_timeout = '3s';", "SET lock_timeout TO 3000;", "SET SESSION lock_timeout = '2s';",
    "SELECT set_config('lock_timeout', '3s', false);",
])
def test_lock_timeout_settings_count(setting: str) -> None:
    assert rules(setting + "\nALTER TABLE users ADD COLUMN n text;", timeout=False) == []


@pytest.mark.parametrize("sql", [
    "SET lock_timeout = 0;\nALTER TABLE users ADD COLUMN n text;",
    "SET lock_timeout = '0';\nALTER TABLE users ADD COLUMN n text;",
    "SET lock_timeout = '3s';\nRESET lock_timeout;\nALTER TABLE users ADD COLUMN n text;",
    "SET lock_timeout = '3s';\nSET lock_timeout TO DEFAULT;\n"
    "ALTER TABLE users ADD COLUMN n text;",
    # SET LOCAL lasts until the end of its transaction
    "BEGIN;\nSET LOCAL lock_timeout = '3s';\nCOMMIT;\nALTER TABLE users ADD COLUMN n text;",
    # a statement before the SET is not covered
    "ALTER TABLE users ADD COLUMN n text;\nSET lock_timeout = '3s';",
])
def test_lock_timeout_not_in_effect(sql: str) -> None:
    assert rules(sql, timeout=False) == ["require-lock-timeout"]


@pytest.mark.parametrize("setting", [
    "SET LOCAL lock_timeout = '3s';", "SELECT set_config('lock_timeout', '3s', true);",
])
def test_set_local_outside_a_transaction_does_not_count(setting: str) -> None:
    # Outside BEGIN ... COMMIT it lasts only for its own statement (PostgreSQL warns).
    found = lint_sql(setting + "\nALTER TABLE users ADD COLUMN n text;")
    assert [f.rule for f in found] == ["require-lock-timeout"]
    assert "outside BEGIN ... COMMIT" in found[0].message and "line 1" in found[0].message
    # a later SET LOCAL inside a transaction still counts
    assert rules(setting + "\nBEGIN;\nSET LOCAL lock_timeout = '3s';\n"
                 "ALTER TABLE users ADD COLUMN n text;\nCOMMIT;", timeout=False) == []


def test_set_local_inside_the_transaction_counts() -> None:
    sql = "BEGIN;\nSET LOCAL lock_timeout = '3s';\nALTER TABLE users ADD COLUMN n text;\nCOMMIT;"
    assert rules(sql, timeout=False) == []


def test_lock_timeout_reported_once_per_file() -> None:
    sql = "ALTER TABLE a ADD COLUMN n text;\nALTER TABLE b ADD COLUMN n text;"
    found = lint_sql(sql)
    assert [(f.rule, f.line) for f in found] == [("require-lock-timeout", 1)]


def test_weak_locks_need_no_timeout() -> None:
    sql = ("ALTER TABLE users VALIDATE CONSTRAINT c;\n"
           "CREATE INDEX CONCURRENTLY ix ON users (a);\n"
           "CREATE TABLE fresh (id int);\nALTER TABLE fresh ADD COLUMN n text;")
    assert rules(sql, timeout=False) == []


# ---------------------------------------------------------------- positions
def test_line_and_column() -> None:
    sql = "-- header\n\nSET lock_timeout = '1s';\n  ALTER TABLE users\n    DROP COLUMN email;\n"
    (f,) = lint_sql(sql, "x.sql")
    assert (f.file, f.line, f.column, f.rule) == ("x.sql", 4, 3, "drop-column")


def test_positions_count_characters_not_bytes() -> None:
    sql = "-- héllo wörld ✓\nSELECT 'é';\nSET lock_timeout = '1s'; DROP TABLE t;"
    (f,) = lint_sql(sql)
    assert (f.line, f.column) == (3, 26)


def test_constraint_position_points_at_the_constraint() -> None:
    sql = "ALTER TABLE users ADD COLUMN x int,\n  ADD CONSTRAINT u UNIQUE (x);"
    found = lint_sql(TIMEOUT + sql)
    assert [(f.rule, f.line, f.column) for f in found] == [
        ("unique-on-existing-data", 3, 7), ("add-unique-constraint", 3, 7)]


# ---------------------------------------------------------------- ignore comments
def test_ignore_on_the_line_before() -> None:
    sql = ("-- lockplane-ignore: drop-column\nALTER TABLE users DROP COLUMN email;\n"
           "ALTER TABLE users DROP COLUMN nick;\n")
    found = lint_sql(TIMEOUT + sql)
    assert [(f.rule, f.line) for f in found] == [("drop-column", 4)]


def test_ignore_on_the_same_line() -> None:
    sql = ("ALTER TABLE users DROP COLUMN email; -- lockplane-ignore: drop-column\n"
           "ALTER TABLE users DROP COLUMN nick;\n")
    found = lint_sql(TIMEOUT + sql)
    assert [(f.rule, f.line) for f in found] == [("drop-column", 3)]


def test_trailing_ignore_is_about_the_last_statement_on_the_line() -> None:
    sql = "DROP TABLE a; DROP TABLE b; -- lockplane-ignore: drop-table\n"
    found = lint_sql(TIMEOUT + sql)
    assert [(f.rule, f.column) for f in found] == [("drop-table", 1)]


def test_ignore_inside_a_multiline_statement_and_in_a_comment_block() -> None:
    sql = ("ALTER TABLE users\n  DROP COLUMN email -- lockplane-ignore: drop-column\n;\n"
           "-- lockplane-ignore: drop-table\n-- (archived in s3://bucket/users)\n"
           "DROP TABLE users;\n")
    assert rules(sql) == []


def test_ignore_several_ids_and_a_reason() -> None:
    sql = ("-- lockplane-ignore: drop-column, require-lock-timeout  because archived\n"
           "ALTER TABLE users DROP COLUMN email;\n")
    assert rules(sql, timeout=False) == []


def test_ignore_does_not_reach_past_a_blank_line_or_other_rules() -> None:
    sql = "-- lockplane-ignore: drop-column\n\nALTER TABLE users DROP COLUMN email;\n"
    assert rules(sql) == ["drop-column"]
    sql = "-- lockplane-ignore: drop-table\nALTER TABLE users DROP COLUMN email;\n"
    assert rules(sql) == ["drop-column"]


def test_block_comment_ignore() -> None:
    sql = "/* lockplane-ignore: drop-table */ DROP TABLE users;"
    assert rules(sql) == []


def test_file_level_ignore() -> None:
    sql = ("ALTER TABLE users DROP COLUMN a;\nALTER TABLE users DROP COLUMN b;\n"
           "-- lockplane-ignore-file: drop-column, require-lock-timeout\n")
    assert rules(sql, timeout=False) == []


def test_ignored_lock_timeout_is_reported_at_the_next_statement() -> None:
    sql = ("-- lockplane-ignore: require-lock-timeout\nALTER TABLE a ADD COLUMN n text;\n"
           "ALTER TABLE b ADD COLUMN n text;\n")
    found = lint_sql(sql)
    assert [(f.rule, f.line) for f in found] == [("require-lock-timeout", 3)]


@pytest.mark.parametrize("comment", [
    "-- lockplane-ignore: drop-colum",
    "-- lockplane-ignore-file: drop-column, nope",
    "-- lockplane-ignore:",
])
def test_unknown_ignore_id_is_bad_input(comment: str) -> None:
    with pytest.raises(BadInput, match=r"m\.sql:2: "):
        lint_sql("SELECT 1;\n" + comment + "\nDROP TABLE t;", "m.sql")


def test_exclude() -> None:
    found = lint_sql("DROP TABLE t;", exclude={"drop-table", "require-lock-timeout"})
    assert found == []


def test_syntax_error_is_bad_input_with_line() -> None:
    with pytest.raises(BadInput, match=r"^m\.sql:3: syntax error: at or near \"TABLEE\"$"):
        lint_sql("SELECT 1;\n\nALTER TABLEE t;", "m.sql")


def test_empty_and_comment_only_files() -> None:
    assert lint_sql("") == []
    assert lint_sql("-- nothing here\n") == []


def test_finding_json() -> None:
    f = LintFinding("m.sql", 1, 2, "drop-table", Safety.DANGEROUS, "msg", "safer")
    assert f.to_json() == {"file": "m.sql", "line": 1, "column": 2, "rule": "drop-table",
                           "safety": "dangerous", "message": "msg", "safer": "safer"}


def test_lint_does_not_import_prefect() -> None:
    code = ("import sys, lockplane.lint; "
            "sys.exit(1 if any(m.split('.')[0] == 'prefect' for m in sys.modules) else 0)")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


# ---------------------------------------------------------------- CLI
@pytest.fixture
def migration(tmp_path: Path) -> Path:
    path = tmp_path / "0042_users.sql"
    path.write_text("SET lock_timeout = '3s';\n"
                    "ALTER TABLE users DROP COLUMN email;\n"
                    "CREATE INDEX users_nick ON users (nick);\n")
    return path


def test_cli_text(migration: Path) -> None:
    proc = run("lint", str(migration))
    assert proc.returncode == 3, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == (f"{migration}:2:1: dangerous drop-column: DROP COLUMN users.email "
                        "deletes its values")
    assert lines[1].startswith("    safer: Multi-phase drop")
    assert lines[2].startswith(f"{migration}:3:1: review create-index-blocking: ")
    assert "Traceback" not in proc.stderr


def test_cli_json(migration: Path) -> None:
    proc = run("lint", str(migration), "--format", "json")
    assert proc.returncode == 3
    data = json.loads(proc.stdout)
    assert [(d["rule"], d["line"], d["safety"]) for d in data] == [
        ("drop-column", 2, "dangerous"), ("create-index-blocking", 3, "review")]
    assert set(data[0]) == {"file", "line", "column", "rule", "safety", "message", "safer"}


def test_cli_github(migration: Path) -> None:
    proc = run("lint", str(migration), "--format", "github")
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"::error file={migration},line=2,col=1,"
                               "title=lockplane drop-column::DROP COLUMN users.email")
    assert "%0ASafer: " in lines[0]
    assert lines[1].startswith(f"::warning file={migration},line=3,col=1,"
                               "title=lockplane create-index-blocking::")


def test_cli_levels_and_exclude(migration: Path) -> None:
    assert run("lint", str(migration), "--level", "dangerous").returncode == 3
    assert run("lint", str(migration), "--level", "dangerous",
               "--exclude", "drop-column").returncode == 0
    assert run("lint", str(migration), "--level", "lossy",
               "--exclude", "drop-column,create-index-blocking").returncode == 0
    proc = run("lint", str(migration), "--exclude", "drop-column", "--exclude",
               "create-index-blocking")
    assert proc.returncode == 0 and proc.stdout == ""
    assert "No findings" in proc.stderr


def test_cli_clean_file_exits_0(tmp_path: Path) -> None:
    path = tmp_path / "ok.sql"
    path.write_text("SET lock_timeout = '3s';\nCREATE INDEX CONCURRENTLY ix ON t (a);\n")
    proc = run("lint", str(path))
    assert proc.returncode == 0 and proc.stdout == ""
    proc = run("lint", str(path), "--format", "json")
    assert proc.returncode == 0 and json.loads(proc.stdout) == []
    # a finding below --level is printed but does not fail
    path.write_text("SET lock_timeout = '3s';\nCREATE INDEX ix ON t (a);\n")
    proc = run("lint", str(path), "--level", "lossy")
    assert proc.returncode == 0 and "create-index-blocking" in proc.stdout
    assert run("lint", str(path), "--level", "safe").returncode == 3


def assert_one_line(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    for n in needles:
        assert n in lines[0], (n, proc.stderr)


def test_cli_syntax_error_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.sql"
    path.write_text("SELECT 1;\nALTER TABLEE users ADD COLUMN x int;\n")
    assert_one_line(run("lint", str(path)), 2, f"{path}:2: syntax error:")


def test_cli_bad_input_exits_2(tmp_path: Path) -> None:
    assert_one_line(run("lint", str(tmp_path / "missing.sql")), 2, "missing.sql: no such file")
    path = tmp_path / "m.sql"
    path.write_text("DROP TABLE t;\n\n-- lockplane-ignore: no-such-rule\nSELECT 1;\n")
    assert_one_line(run("lint", str(path)), 2, f"{path}:3:", "no-such-rule")
    path.write_text("SELECT 1;\n")
    assert_one_line(run("lint", str(path), "--exclude", "nope"), 2, "nope")
    assert_one_line(run("lint", str(path), "--level", "bogus"), 2, "--level")
    assert_one_line(run("lint", str(path), "--format", "xml"), 2, "--format")
    assert_one_line(run("lint"), 2, ".sql")


def test_cli_list_rules() -> None:
    proc = run("lint", "--list-rules")
    assert proc.returncode == 0
    for rid in ("drop-table", "concurrently-in-transaction", "require-lock-timeout"):
        assert any(ln.startswith(rid + " ") for ln in proc.stdout.splitlines()), rid
    assert "squawk: require-concurrent-index-creation" in proc.stdout
    data = json.loads(run("lint", "--list-rules", "--format", "json").stdout)
    assert {d["id"] for d in data} == set(RULES)
    assert all({"id", "safety", "title", "safer", "squawk"} <= set(d) for d in data)


def test_text_output_is_one_line_per_finding_without_terminal_controls(
        tmp_path: Path) -> None:
    """The text format printed names from the linted file (a pull request's) as they
    were: an escape sequence cleared the terminal and retitled it, and a name holding a
    line break printed a made-up 'file:line:col: ...' finding of its own."""
    sql = tmp_path / "m.sql"
    sql.write_text('ALTER TABLE "t\x1b[2J\x1b]0;pwned\x07" ADD COLUMN x int NOT NULL;\n'
                   'CREATE INDEX "i\nm.sql:9:9: safe fake: all good" ON t (a);\n')
    r = run("lint", "m.sql", "--format", "text", cwd=tmp_path)
    assert r.stdout.strip(), r
    assert "\x1b" not in r.stdout and "\x07" not in r.stdout, r.stdout
    lines = r.stdout.splitlines()
    assert all(ln.startswith(("m.sql:1:", "m.sql:2:", "    safer: ")) for ln in lines), lines
