"""Publications, event triggers, and the objects Lockplane does not manage, on a real
PostgreSQL server.

Round trips use the harness of tests/roundtrip.py through the executor: plan A -> B,
apply, the catalog equals B, rows survive, re-planning is empty, the rollback gives A.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Callable

import psycopg
from conftest import pg_exec
from roundtrip import roundtrip

from lockplane.checks import check_schema
from lockplane.dialects import connect
from lockplane.execute import refused_steps
from lockplane.model import Schema
from lockplane.plan import Plan, Step

DsnFactory = Callable[[], str]

BASE = """
CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL, region text, secret text);
CREATE TABLE orders (id int PRIMARY KEY, user_id int, total numeric(10,2), note text);
CREATE SCHEMA audit;
CREATE TABLE audit.events (id bigint PRIMARY KEY, what text);
"""
DATA = """
INSERT INTO users VALUES (1, 'a@x', 'eu', 's'), (2, 'b@x', 'us', NULL);
INSERT INTO orders VALUES (10, 1, 9.50, 'n'), (11, 2, 1.25, NULL);
INSERT INTO audit.events VALUES (1, 'x');
"""


def load(dsn: str) -> Schema:
    with connect(dsn) as db:
        return db.introspect()


def rt(make: DsnFactory, a_sql: str, b_sql: str, *, data: str = DATA) -> Plan:
    """Round trip from a database built by ``a_sql`` (plus rows) to one built by ``b_sql``."""
    a, b = make(), make()
    pg_exec(a, a_sql + data)
    pg_exec(b, b_sql)
    plan: Plan = roundtrip(a, b)["plan"]
    assert plan.steps, "the two scripts should differ"
    return plan


def kinds(plan: Plan) -> list[str]:
    return [s.kind or "" for s in plan.steps]


def only(plan: Plan, kind: str) -> Step:
    found = [s for s in plan.steps if s.kind == kind]
    assert len(found) == 1, kinds(plan)
    return found[0]


def ddl(statements: list[str]) -> list[str]:
    """A step's SQL without the timeouts every PostgreSQL step sets around its DDL."""
    return [s for s in statements if not s.startswith((
        "SET lock_timeout", "SET statement_timeout", "RESET statement_timeout"))]


def rules(step: Step) -> list[str]:
    return [f.rule for f in step.findings]


# -------------------------------------------------------------------- publications
PUB_FILTERED = BASE + """
CREATE PUBLICATION "Orders Pub" FOR TABLE users (region, id, email) WHERE (region = 'eu'),
    orders;
COMMENT ON PUBLICATION "Orders Pub" IS 'to the warehouse';
"""


def test_publication_is_introspected(pg_dsn: str) -> None:
    pg_exec(pg_dsn, PUB_FILTERED + "CREATE PUBLICATION quiet WITH (publish = 'insert');")
    s = load(pg_dsn)
    p = next(p for p in s.publications if p.name == "Orders Pub")
    assert p.comment == "to the warehouse" and not p.all_tables and p.schemas == []
    users, orders = sorted(p.tables, key=lambda t: t.name, reverse=True)
    assert (users.schema_, users.name, users.columns) == ("public", "users",
                                                          ["email", "id", "region"])
    assert users.where == "(region = 'eu'::text)"
    assert (orders.columns, orders.where) == ([], None)
    assert p.publish == ["insert", "update", "delete", "truncate"]
    quiet = next(p for p in s.publications if p.name == "quiet")
    assert quiet.publish == ["insert"] and quiet.tables == []
    # New sparse fields: a schema without publications keeps the hash it always had.
    assert "publications" not in Schema().canonical()


def test_new_publication_with_column_list_and_row_filter(pg_dsn_factory: DsnFactory) -> None:
    plan = rt(pg_dsn_factory, BASE, PUB_FILTERED)
    assert kinds(plan) == ["create_publication"]
    step = plan.steps[0]
    assert ddl(step.sql) == [
        'CREATE PUBLICATION "Orders Pub" FOR TABLE ONLY "public"."orders", '
        'TABLE ONLY "public"."users" ("email", "id", "region") '
        "WHERE ((region = 'eu'::text))",
        "COMMENT ON PUBLICATION \"Orders Pub\" IS 'to the warehouse'"]
    # Its row filter uses region, outside the replica identity of users (id): PostgreSQL
    # refuses UPDATE and DELETE on users from then on (orders is fine).
    assert step.safety == "dangerous" and rules(step) == ["publication-no-replica-identity"]
    assert "public.users (the row filter uses region, outside the replica identity (id))" \
        in step.messages[0] and "orders" not in step.messages[0]
    assert step.lock is not None
    assert step.lock.mode == "SHARE UPDATE EXCLUSIVE" and not step.lock.blocks_writes
    assert step.rollback is not None
    assert ddl(step.rollback.sql) == ['DROP PUBLICATION "Orders Pub"']


def test_dropping_a_publication_is_dangerous(pg_dsn_factory: DsnFactory) -> None:
    plan = rt(pg_dsn_factory, PUB_FILTERED, BASE)
    assert kinds(plan) == ["drop_publication"]
    step = plan.steps[0]
    assert step.safety == "dangerous" and rules(step) == ["drop-publication"]
    assert step.findings[0].safer and "SUBSCRIPTION" in step.findings[0].safer
    assert ddl(step.sql) == ['DROP PUBLICATION "Orders Pub"']
    # Its rollback creates it again: subscribers may still fail on the gap.
    assert step.rollback is not None and step.rollback.safety == "review"
    assert step.rollback.note and 'publication "Orders Pub" does not exist' in \
        step.rollback.note and "REFRESH PUBLICATION" in step.rollback.note


def test_publication_for_tables_in_schema(pg_dsn_factory: DsnFactory) -> None:
    b = BASE + "CREATE PUBLICATION feed FOR TABLES IN SCHEMA audit, TABLE orders;"
    plan = rt(pg_dsn_factory, BASE, b)
    assert ddl(only(plan, "create_publication").sql) == [
        'CREATE PUBLICATION "feed" FOR TABLE ONLY "public"."orders", '
        'TABLES IN SCHEMA "audit"']
    # From nothing: the schema and its tables first.
    plan = rt(pg_dsn_factory, "", b, data="")
    k = kinds(plan)
    assert k.index("create_schema") < k.index("create_table") < k.index("create_publication")
    # The schema goes away: the publication lets go of it before it is dropped.
    c = BASE.replace("CREATE SCHEMA audit;", "").replace(
        "CREATE TABLE audit.events (id bigint PRIMARY KEY, what text);", "") + \
        "CREATE PUBLICATION feed FOR TABLE orders;"
    plan = rt(pg_dsn_factory, b, c)
    k = kinds(plan)
    assert k.index("alter_publication") < k.index("drop_table") < k.index("drop_schema")
    step = only(plan, "alter_publication")
    assert ddl(step.sql) == ['ALTER PUBLICATION "feed" DROP TABLES IN SCHEMA "audit"']
    assert rules(step) == ["publication-remove-table"] and step.safety == "dangerous"


def test_publication_for_all_tables(pg_dsn_factory: DsnFactory) -> None:
    b = BASE + "CREATE PUBLICATION everything FOR ALL TABLES WITH (publish = 'insert, update');"
    plan = rt(pg_dsn_factory, BASE, b)
    assert ddl(only(plan, "create_publication").sql) == [
        "CREATE PUBLICATION \"everything\" FOR ALL TABLES WITH (publish = 'insert, update')"]
    # ALTER cannot switch FOR ALL TABLES on or off: dropped first, created last.
    a = BASE + "CREATE PUBLICATION everything FOR TABLE users;"
    plan = rt(pg_dsn_factory, a, b)
    assert kinds(plan) == ["drop_publication", "create_publication"]
    assert plan.steps[0].safety == "dangerous"
    assert "created again" in plan.steps[0].description
    assert plan.steps[1].safety == "review" and rules(plan.steps[1]) == ["review-required"]
    assert "does not exist" in plan.steps[1].messages[0]


def test_changing_tables_is_an_alter(pg_dsn_factory: DsnFactory) -> None:
    a = BASE + "CREATE PUBLICATION p FOR TABLE users (id, email) WHERE (id > 0), orders;"
    # A row filter and column list change, a table leaves and another comes: one SET.
    b = BASE + ("CREATE PUBLICATION p FOR TABLE users (id, email, region) WHERE (id > 1), "
                "audit.events;")
    plan = rt(pg_dsn_factory, a, b)
    assert kinds(plan) == ["alter_publication"]
    step = plan.steps[0]
    assert ddl(step.sql) == [
        'ALTER PUBLICATION "p" SET TABLE ONLY "audit"."events", '
        'TABLE ONLY "public"."users" ("email", "id", "region") WHERE ((id > 1))']
    assert "publication-remove-table" in rules(step) and step.safety == "dangerous"
    assert step.rollback is not None and ddl(step.rollback.sql) == [
        'ALTER PUBLICATION "p" SET TABLE ONLY "public"."orders", '
        'TABLE ONLY "public"."users" ("email", "id") WHERE ((id > 0))']
    # Only additions: ADD, safe; only removals: DROP, dangerous.
    c = a.replace("orders;", "orders, audit.events;")
    plan = rt(pg_dsn_factory, a, c)
    assert kinds(plan) == ["alter_publication"] and plan.steps[0].safety == "safe"
    assert ddl(plan.steps[0].sql) == [
        'ALTER PUBLICATION "p" ADD TABLE ONLY "audit"."events"']
    assert any("REFRESH PUBLICATION" in m for m in plan.steps[0].messages)
    plan = rt(pg_dsn_factory, c, a)
    assert kinds(plan) == ["alter_publication"] and plan.steps[0].safety == "dangerous"
    assert ddl(plan.steps[0].sql) == [
        'ALTER PUBLICATION "p" DROP TABLE ONLY "audit"."events"']


def test_publish_options(pg_dsn_factory: DsnFactory) -> None:
    a = BASE + "CREATE PUBLICATION p FOR TABLE orders;"
    b = BASE + ("CREATE PUBLICATION p FOR TABLE orders "
                "WITH (publish = 'insert, truncate', publish_via_partition_root = true);")
    plan = rt(pg_dsn_factory, a, b)
    assert kinds(plan) == ["alter_publication"]
    step = plan.steps[0]
    assert ddl(step.sql) == ["ALTER PUBLICATION \"p\" SET (publish = 'insert, truncate', "
                             "publish_via_partition_root = true)"]
    assert step.safety == "review" and "UPDATE, DELETE" in " ".join(step.messages)
    assert rules(step) == ["publication-narrow-publish"]
    assert step.lock is not None and step.lock.mode == "NONE"
    # A partitioned table's row filter needs publish_via_partition_root, in that order
    # (and the other way round in the rollback).
    parted = ("CREATE TABLE m (id int, r text) PARTITION BY LIST (r);"
              "CREATE TABLE m_eu PARTITION OF m FOR VALUES IN ('eu');")
    plan = rt(pg_dsn_factory, parted + "CREATE PUBLICATION p FOR TABLE m;",
              parted + "CREATE PUBLICATION p FOR TABLE m WHERE (r = 'eu') "
                       "WITH (publish_via_partition_root = true);", data="")
    assert ddl(plan.steps[0].sql) == [
        'ALTER PUBLICATION "p" SET (publish_via_partition_root = true)',
        'ALTER PUBLICATION "p" SET TABLE ONLY "public"."m" WHERE ((r = \'eu\'::text))']


def test_publication_comment_only(pg_dsn_factory: DsnFactory) -> None:
    plan = rt(pg_dsn_factory, PUB_FILTERED, PUB_FILTERED.replace("warehouse", "lake"))
    assert kinds(plan) == ["set_comment"]


def test_publication_lets_go_before_columns_and_tables_are_dropped(
        pg_dsn_factory: DsnFactory) -> None:
    a = BASE + ("CREATE PUBLICATION p FOR TABLE orders (id, user_id, note), "
                "users WHERE (region <> 'x');")
    # A column of the column list is dropped, a column of the row filter retyped:
    # PostgreSQL refuses both while the publication uses them.
    b = BASE.replace(", note text", "").replace("region text", "region varchar(10)") + (
        "CREATE PUBLICATION p FOR TABLE orders (id, user_id), users WHERE (region <> 'x');")
    plan = rt(pg_dsn_factory, a, b)
    k = kinds(plan)
    assert k.count("alter_publication") == 2, k
    first = k.index("alter_publication")
    assert first < k.index("drop_column") and first < k.index("alter_column")
    assert max(k.index("drop_column"), k.index("alter_column")) < \
        len(k) - 1 - k[::-1].index("alter_publication")
    # A table the publication names is dropped: the publication lets go of it first.
    c = BASE.replace(
        "CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL, region text, "
        "secret text);", "") + "CREATE PUBLICATION p FOR TABLE orders (id, user_id, note);"
    plan = rt(pg_dsn_factory, a, c)
    k = kinds(plan)
    assert k.index("alter_publication") < k.index("drop_table")
    assert "publication-remove-table" in rules(only(plan, "alter_publication"))
    # Both tables leave early and come back late: only a review (no acknowledgement), and
    # the note says changes in between are not published.
    plan = rt(pg_dsn_factory, a, b)
    early, late = [s for s in plan.steps if s.kind == "alter_publication"]
    assert early.safety == "review" and rules(early) == ["review-required"]
    assert "until a later step" in early.messages[0] and "not published" in early.messages[0]
    assert late.safety == "safe" and any("come back into" in m for m in late.messages)
    assert not any("REFRESH PUBLICATION" in m for m in late.messages)
    assert late.rollback is not None and late.rollback.safety == "review"
    # The publication does not change, but a listed column is retyped: out and back in.
    d = BASE + "CREATE PUBLICATION p FOR TABLE orders (id, note);"
    plan = rt(pg_dsn_factory, d, d.replace("note text", "note varchar(50)"))
    assert kinds(plan) == ["alter_publication", "alter_column", "alter_publication"]
    assert ddl(plan.steps[0].sql) == ['ALTER PUBLICATION "p" DROP TABLE ONLY "public"."orders"']
    assert plan.steps[0].safety == "review" and "public.orders" in plan.steps[0].messages[0]
    assert ddl(plan.steps[2].sql) == [
        'ALTER PUBLICATION "p" ADD TABLE ONLY "public"."orders" ("id", "note")']
    # A table dropped and created again (a new partitioning) is published again.
    parted = ("CREATE TABLE m (id int, r text) PARTITION BY LIST (r);"
              "CREATE TABLE m_eu PARTITION OF m FOR VALUES IN ('eu');"
              "CREATE PUBLICATION p FOR TABLE m, orders;")
    plan = rt(pg_dsn_factory, BASE + parted,
              BASE + parted.replace("LIST (r)", "LIST (lower(r))"), data="")
    k = kinds(plan)
    assert k[0] == "alter_publication" and k[-1] == "alter_publication", k


# ------------------------------------------------------------ replica identity
def refused(dsn: str, statement: str) -> str | None:
    """The error PostgreSQL gives ``statement`` (rolled back either way), or None."""
    with psycopg.connect(dsn) as conn:
        try:
            conn.execute(statement)
        except psycopg.Error as exc:
            return str(exc)
        finally:
            conn.rollback()
    return None


def plan_to(make: DsnFactory, a_sql: str, b_sql: str) -> tuple[Plan, str]:
    """The plan from ``a_sql`` to ``b_sql`` (round-tripped), and the database at B."""
    a, b = make(), make()
    pg_exec(a, a_sql + DATA)
    pg_exec(b, b_sql + DATA)
    plan: Plan = roundtrip(a, b)["plan"]
    return plan, b


NO_PK = BASE + "CREATE TABLE logs (msg text); INSERT INTO logs VALUES ('a');"


def test_publishing_a_table_without_replica_identity_is_dangerous(
        pg_dsn_factory: DsnFactory) -> None:
    # The review's repro: PostgreSQL refuses UPDATE and DELETE on logs from then on.
    plan, b = plan_to(pg_dsn_factory, NO_PK, NO_PK + "CREATE PUBLICATION p1 FOR TABLE logs;")
    step = only(plan, "create_publication")
    assert step.safety == "dangerous" and rules(step) == ["publication-no-replica-identity"]
    assert step.messages[0].startswith(
        "From this step on, PostgreSQL refuses UPDATE and DELETE on public.logs (no primary "
        "key, and REPLICA IDENTITY DEFAULT)")
    assert "primary key" in (step.findings[0].safer or "")
    assert 'because it does not have a replica identity' in (
        refused(b, "UPDATE logs SET msg = 'x'") or "")
    assert refused(b, "DELETE FROM logs") is not None
    # Moderate safety refuses it until acknowledged.
    assert [r.number for r in refused_steps(plan, "moderate")] == [1]
    assert refused_steps(plan, "moderate", {"publication-no-replica-identity"}) == []


def test_column_lists_and_row_filters_must_cover_the_replica_identity(
        pg_dsn_factory: DsnFactory) -> None:
    # (desired publication, dangerous?, the statement PostgreSQL refuses or accepts)
    cases = [
        ("FOR TABLE users (email, region)", "the column list leaves out replica identity "
         "column(s) id", "UPDATE users SET region = 'x'"),
        ("FOR TABLE users WHERE (region = 'eu')", "the row filter uses region, outside the "
         "replica identity (id)", "DELETE FROM users"),
        ("FOR TABLE users (id, email) WHERE (id > 0 OR 'region' = 'x')", None,
         "UPDATE users SET region = 'x'"),
        # Only INSERT published: nothing to refuse.
        ("FOR TABLE logs WITH (publish = 'insert')", None, "UPDATE logs SET msg = 'x'"),
        # DELETE only: UPDATE still works, DELETE does not.
        ("FOR TABLE logs WITH (publish = 'insert, delete')", "no primary key",
         "DELETE FROM logs"),
        # FULL: every column is the identity; a row filter may use any of them, a column
        # list must name every one.
        ("FOR TABLE full_t WHERE (a = 'a')", None, "UPDATE full_t SET b = 'y'"),
        ("FOR TABLE full_t (id, a)", "REPLICA IDENTITY FULL needs every column in the column "
         "list, which leaves out b", "UPDATE full_t SET a = 'y'"),
        # USING INDEX: the index's columns.
        ("FOR TABLE ix_t (code, b) WHERE (code <> 'z')", None, "UPDATE ix_t SET b = 'y'"),
        ("FOR TABLE ix_t (id, b)", "leaves out replica identity column(s) code",
         "UPDATE ix_t SET b = 'y'"),
    ]
    base = NO_PK + """
        CREATE TABLE full_t (id int, a text, b text); ALTER TABLE full_t REPLICA IDENTITY FULL;
        INSERT INTO full_t VALUES (1, 'a', 'b');
        CREATE TABLE ix_t (id int, code text NOT NULL, b text);
        CREATE UNIQUE INDEX ix_t_code ON ix_t (code);
        ALTER TABLE ix_t REPLICA IDENTITY USING INDEX ix_t_code;
        INSERT INTO ix_t VALUES (1, 'c', 'b');"""
    for pub, why, statement in cases:
        plan, b = plan_to(pg_dsn_factory, base, base + f"CREATE PUBLICATION p {pub};")
        step = only(plan, "create_publication")
        error = refused(b, statement)
        if why is None:
            assert step.safety == "safe" and step.findings == [], (pub, step.messages)
            assert error is None, (pub, error)
        else:
            assert step.safety == "dangerous", pub
            assert rules(step) == ["publication-no-replica-identity"]
            assert why in step.messages[0], (pub, step.messages)
            assert error is not None, pub
    # The UPDATE-and-DELETE text follows what the publication publishes (and so does
    # the server: UPDATE still works).
    plan, b = plan_to(pg_dsn_factory, base,
                      base + "CREATE PUBLICATION p FOR TABLE logs WITH (publish = 'delete');")
    assert "refuses DELETE on public.logs" in only(plan, "create_publication").messages[0]
    assert refused(b, "UPDATE logs SET msg = 'y'") is None
    assert refused(b, "DELETE FROM logs") is not None


def test_publication_changes_that_break_replica_identity(pg_dsn_factory: DsnFactory) -> None:
    a = NO_PK + "CREATE PUBLICATION p FOR TABLE users WITH (publish = 'insert');"
    # Publishing UPDATE and DELETE from now on, and taking logs in: both on the ALTER.
    plan, b = plan_to(pg_dsn_factory, a, NO_PK + "CREATE PUBLICATION p FOR TABLE users, logs;")
    step = only(plan, "alter_publication")
    assert step.safety == "dangerous" and "publication-no-replica-identity" in rules(step)
    finding = next(f for f in step.findings if f.rule == "publication-no-replica-identity")
    assert "public.logs" in finding.message and "public.users" not in finding.message
    assert refused(b, "UPDATE logs SET msg = 'x'") is not None
    assert refused(b, "UPDATE users SET region = 'x'") is None
    # A table whose problem was there before is not reported again.
    plan, _ = plan_to(pg_dsn_factory, NO_PK + "CREATE PUBLICATION p FOR TABLE logs;",
                      NO_PK + "CREATE PUBLICATION p FOR TABLE logs, orders;")
    assert only(plan, "alter_publication").safety == "safe"


def test_tables_that_lose_their_replica_identity_in_a_publication(
        pg_dsn_factory: DsnFactory) -> None:
    # The publication does not change: the step on the table carries the finding.
    # A table created in a FOR ALL TABLES publication ...
    everything = BASE + "CREATE PUBLICATION everything FOR ALL TABLES;"
    plan, b = plan_to(pg_dsn_factory, everything,
                      everything + "CREATE TABLE logs (msg text); INSERT INTO logs VALUES ('a');")
    step = only(plan, "create_table")
    assert step.safety == "dangerous" and rules(step) == ["publication-no-replica-identity"]
    assert "public.logs" in step.messages[0] and "publication everything" in step.messages[0]
    assert refused(b, "UPDATE logs SET msg = 'x'") is not None
    assert refused_steps(plan, "moderate", {"publication-no-replica-identity@public.logs"}) \
        == []
    # ... or in a TABLES IN SCHEMA one.
    feed = BASE + "CREATE PUBLICATION feed FOR TABLES IN SCHEMA audit;"
    plan, _ = plan_to(pg_dsn_factory, feed, feed + "CREATE TABLE audit.raw (what text);")
    assert rules(only(plan, "create_table")) == ["publication-no-replica-identity"]
    assert "audit.raw" in only(plan, "create_table").messages[0]
    # A published table loses its primary key.
    pub = BASE + "CREATE PUBLICATION p FOR TABLE orders;"
    plan, b = plan_to(pg_dsn_factory, pub, pub.replace(
        "CREATE TABLE orders (id int PRIMARY KEY,", "CREATE TABLE orders (id int NOT NULL,"))
    step = only(plan, "drop_constraint")
    assert step.safety == "dangerous" and step.table == "public.orders"
    # The worst finding first (a refusal names it), then the step's own.
    assert rules(step) == ["publication-no-replica-identity", "change-primary-key"]
    assert "public.orders (no primary key" in step.messages[0]
    assert refused(b, "DELETE FROM orders") is not None
    # ... or gets REPLICA IDENTITY NOTHING.
    plan, b = plan_to(pg_dsn_factory, pub, pub + "ALTER TABLE orders REPLICA IDENTITY NOTHING;")
    step = only(plan, "set_replica_identity")
    assert step.safety == "dangerous" and rules(step)[0] == "publication-no-replica-identity"
    assert "public.orders (REPLICA IDENTITY NOTHING)" in step.messages[0]
    assert refused(b, "UPDATE orders SET note = 'x'") is not None
    # A partition takes its parent's primary key; without one, the partitions are refused.
    parted = """CREATE TABLE m (id int, r text, PRIMARY KEY (id, r)) PARTITION BY LIST (r);
                CREATE TABLE m_eu PARTITION OF m FOR VALUES IN ('eu');
                CREATE TABLE n (id int, r text) PARTITION BY LIST (r);
                CREATE TABLE n_eu PARTITION OF n FOR VALUES IN ('eu');
                INSERT INTO m VALUES (1, 'eu'); INSERT INTO n VALUES (1, 'eu');"""
    plan, b = plan_to(pg_dsn_factory, BASE + parted,
                      BASE + parted + "CREATE PUBLICATION p FOR TABLE m, n;")
    step = only(plan, "create_publication")
    assert step.safety == "dangerous" and "public.n_eu" in step.messages[0]
    assert "public.m_eu" not in step.messages[0]
    assert refused(b, "UPDATE m SET id = 2") is None
    assert "n_eu" in (refused(b, "UPDATE n SET id = 2") or "")


def test_check_schema_names_published_tables_without_replica_identity() -> None:
    s = Schema.model_validate({
        "tables": [{"name": "logs", "columns": [{"name": "msg", "type": "text"}]},
                   {"name": "users", "columns": [{"name": "id", "type": "integer",
                                                  "is_primary_key": True}]}],
        "publications": [{"name": "everything", "all_tables": True},
                         {"name": "inserts", "all_tables": True, "publish": ["insert"]}]})
    found = [str(f) for f in check_schema(s) if f.where.startswith("publication")]
    assert found == [
        "warning: publication everything: PostgreSQL refuses UPDATE and DELETE on "
        "public.logs, which it publishes: no primary key, and REPLICA IDENTITY DEFAULT "
        "(add a primary key or set REPLICA IDENTITY)"]


# ------------------------------------------------------------------- event triggers
FN = """
CREATE SCHEMA ops;
CREATE FUNCTION ops.note_ddl() RETURNS event_trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE NOTICE 'ddl: %', tg_tag; END $$;
CREATE FUNCTION ops.refuse_ddl() RETURNS event_trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'no % here', tg_tag; END $$;
"""
ET = FN + """
CREATE EVENT TRIGGER "Note DDL" ON ddl_command_end WHEN TAG IN ('create table', 'ALTER TABLE')
    EXECUTE FUNCTION ops.note_ddl();
COMMENT ON EVENT TRIGGER "Note DDL" IS 'logs';
CREATE EVENT TRIGGER no_new_types ON ddl_command_start WHEN TAG IN ('CREATE TYPE')
    EXECUTE FUNCTION ops.refuse_ddl();
"""


def test_event_triggers_are_introspected(pg_dsn: str) -> None:
    pg_exec(pg_dsn, ET + 'ALTER EVENT TRIGGER "Note DDL" ENABLE ALWAYS;')
    triggers = {t.name: t for t in load(pg_dsn).event_triggers}
    note = triggers["Note DDL"]
    assert (note.event, note.tags, note.function, note.enabled, note.comment) == (
        "ddl_command_end", ["ALTER TABLE", "CREATE TABLE"], '"ops"."note_ddl"', "A", "logs")
    assert triggers["no_new_types"].enabled == "O"


def test_event_trigger_create_and_drop(pg_dsn_factory: DsnFactory) -> None:
    # The plan also creates a type: had the trigger that refuses CREATE TYPE been
    # created first, the plan would fail. Event triggers come last, and go first.
    b = "CREATE TYPE mood AS ENUM ('ok');" + ET
    plan = rt(pg_dsn_factory, "", b, data="")
    k = kinds(plan)
    assert k[-2:] == ["create_event_trigger", "create_event_trigger"], k
    assert k.index("create_function") < k.index("create_event_trigger")
    create = next(s for s in plan.steps if "Note DDL" in s.description)
    assert ddl(create.sql) == [
        'CREATE EVENT TRIGGER "Note DDL" ON ddl_command_end WHEN TAG IN '
        "('ALTER TABLE', 'CREATE TABLE') EXECUTE FUNCTION \"ops\".\"note_ddl\"()",
        "COMMENT ON EVENT TRIGGER \"Note DDL\" IS 'logs'"]
    assert create.safety == "safe" and "superuser" in create.messages[0]
    plan = rt(pg_dsn_factory, b, "", data="")
    k = kinds(plan)
    assert k[:2] == ["drop_event_trigger", "drop_event_trigger"], k
    assert k.index("drop_event_trigger") < k.index("drop_function")
    # A desired schema that leaves event triggers out must not drop DDL guards quietly:
    # moderate safety refuses these steps unless they are acknowledged.
    assert all(s.safety == "dangerous" and rules(s) == ["drop-event-trigger"]
               for s in plan.steps[:2])
    assert [r.number for r in refused_steps(plan, "moderate")] == [1, 2]
    assert refused_steps(plan, "moderate", {"drop-event-trigger"}) == []


def test_event_trigger_disable_and_enable(pg_dsn_factory: DsnFactory) -> None:
    b = ET + "ALTER EVENT TRIGGER no_new_types DISABLE;"
    # Disabled: the plan may create a type again (the step runs first).
    plan = rt(pg_dsn_factory, ET, b + "CREATE TYPE mood AS ENUM ('ok');", data="")
    assert kinds(plan) == ["alter_event_trigger", "create_enum"]
    assert ddl(plan.steps[0].sql) == ['ALTER EVENT TRIGGER "no_new_types" DISABLE']
    assert plan.steps[0].safety == "review"
    plan = rt(pg_dsn_factory, b, ET.replace("COMMENT ON EVENT TRIGGER", "ALTER EVENT TRIGGER "
                                            '"Note DDL" ENABLE REPLICA; COMMENT ON EVENT '
                                            "TRIGGER"), data="")
    assert sorted(kinds(plan)) == ["alter_event_trigger", "alter_event_trigger"]
    assert {tuple(ddl(s.sql)) for s in plan.steps} == {
        ('ALTER EVENT TRIGGER "no_new_types" ENABLE',),
        ('ALTER EVENT TRIGGER "Note DDL" ENABLE REPLICA',)}


def test_event_trigger_whose_function_changes(pg_dsn_factory: DsnFactory) -> None:
    # The function's body changes: replaced in place, the trigger is left alone.
    plan = rt(pg_dsn_factory, ET, ET.replace("'ddl: %'", "'DDL: %'"), data="")
    assert kinds(plan) == ["create_function"]
    # The trigger moves to another function (and the old one goes): dropped first,
    # created last, after the new function exists and the old one is gone.
    moved = ET.replace("ops.note_ddl()", "ops.log_ddl()").replace(
        "CREATE FUNCTION ops.note_ddl()", "CREATE FUNCTION ops.log_ddl()")
    plan = rt(pg_dsn_factory, ET, moved, data="")
    k = kinds(plan)
    assert k[0] == "drop_event_trigger" and k[-1] == "create_event_trigger", k
    assert "created again" in plan.steps[0].description
    assert plan.steps[0].safety == "review"  # replaced in the same plan: not a removal
    assert k.index("create_function") < k.index("create_event_trigger")
    assert k.index("drop_event_trigger") < k.index("drop_function")
    # Tags change: the same.
    plan = rt(pg_dsn_factory, ET, ET.replace("'create table', ", ""), data="")
    assert kinds(plan) == ["drop_event_trigger", "create_event_trigger"]


# -------------------------------------------------------------------- not managed
UNMANAGED = """
CREATE EXTENSION postgres_fdw;
CREATE EXTENSION citext;
CREATE SERVER remote FOREIGN DATA WRAPPER postgres_fdw OPTIONS (dbname 'elsewhere');
CREATE USER MAPPING FOR CURRENT_USER SERVER remote OPTIONS (user 'someone');
CREATE FOREIGN TABLE remote_users (id int) SERVER remote;
CREATE FOREIGN DATA WRAPPER dummy_wrapper;
CREATE TEXT SEARCH CONFIGURATION my_english (COPY = english);
CREATE TEXT SEARCH DICTIONARY my_simple (TEMPLATE = simple);
CREATE TYPE pair AS (a int, b int);
CREATE FUNCTION pair_text(pair) RETURNS text LANGUAGE sql AS 'SELECT $1.a || '','' || $1.b';
CREATE CAST (pair AS text) WITH FUNCTION pair_text(pair);
CREATE FUNCTION int_is_text(int, text) RETURNS bool LANGUAGE sql AS 'SELECT $1::text = $2';
CREATE OPERATOR === (LEFTARG = int, RIGHTARG = text, FUNCTION = int_is_text);
CREATE OPERATOR CLASS rev_ops FOR TYPE int USING btree AS
    OPERATOR 1 <, FUNCTION 1 btint4cmp(int, int);
CREATE CONVERSION my_latin FOR 'LATIN1' TO 'UTF8' FROM iso8859_1_to_utf8;
"""
EXPECTED_UNMANAGED = [
    "cast (public.pair AS text)",
    "conversion public.my_latin",
    "foreign data wrapper dummy_wrapper",
    "foreign table public.remote_users",
    "operator class public.rev_ops USING btree",
    "operator family public.rev_ops USING btree",
    "operator public.=== (integer, text)",
    "server remote",
    "text search configuration public.my_english",
    "text search dictionary public.my_simple",
    "user mapping for postgres server remote",
]


def lockplane(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "1000"}
    env.pop("LOCKPLANE_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "lockplane", *args], capture_output=True,
                          text=True, env=env, timeout=180)


def test_unmanaged_objects_are_listed_not_hashed(pg_dsn: str) -> None:
    pg_exec(pg_dsn, UNMANAGED)
    s = load(pg_dsn)
    # citext's casts and operators and postgres_fdw's wrapper are the extensions' own.
    assert s.unmanaged == EXPECTED_UNMANAGED
    assert s.model_copy(update={"unmanaged": []}).hash() == s.hash()
    assert "unmanaged" not in s.canonical()


def test_tablespaces_are_listed_by_count(pg_dsn: str, pg_admin_dsn: str) -> None:
    # A tablespace may hold thousands of relations: a count and the first three names.
    # (In-place tablespaces, PostgreSQL 15: no directory on the server needed.)
    name = f"lp_ts_{secrets.token_hex(4)}"
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute("SET allow_in_place_tablespaces = true")
        conn.execute(f"CREATE TABLESPACE {name} LOCATION ''")
    try:
        pg_exec(pg_dsn, "".join(f"CREATE TABLE t{i} (id int) TABLESPACE {name};"
                                for i in range(1, 6)) + "CREATE SCHEMA a;"
                f"CREATE TABLE a.one (id int PRIMARY KEY USING INDEX TABLESPACE {name});")
        assert load(pg_dsn).unmanaged == [
            f"tablespace {name}: 6 relations (a.one_pkey, public.t1, public.t2, ...)"]
        pg_exec(pg_dsn, "DROP TABLE t1, t2, t3, t4, t5; DROP SCHEMA a CASCADE;"
                f"CREATE TABLE solo (id int) TABLESPACE {name};")
        assert load(pg_dsn).unmanaged == [f"tablespace {name}: 1 relation (public.solo)"]
        pg_exec(pg_dsn, "DROP TABLE solo;")
    finally:
        with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
            conn.execute(f"DROP TABLESPACE IF EXISTS {name}")


def test_cli_warns_about_unmanaged_objects(pg_dsn_factory: DsnFactory) -> None:
    a, b = pg_dsn_factory(), pg_dsn_factory()
    pg_exec(a, UNMANAGED)
    pg_exec(b, "CREATE TABLE t (id int);")
    proc = lockplane("plan", "--from", a, "--to", b)
    assert proc.returncode == 0, proc.stderr
    warnings = [ln for ln in proc.stderr.splitlines() if ln.startswith("warning:")]
    assert warnings == ["warning: not managed by Lockplane (left as they are): "
                        + ", ".join(EXPECTED_UNMANAGED)]
    # The other way round: declared in the desired state, and no step creates them.
    proc = lockplane("plan", "--from", b, "--to", a)
    assert proc.returncode == 0, proc.stderr
    warnings = [ln for ln in proc.stderr.splitlines() if ln.startswith("warning:")]
    assert warnings == ["warning: not managed by Lockplane (in the desired schema, not "
                        "created): " + ", ".join(EXPECTED_UNMANAGED)]
    # apply --schema says so too, before it applies what it can.
    proc = lockplane("apply", "--schema", a, "--target", b, "--auto-approve", "--skip-shadow",
                     "--acknowledge", "drop-table@public.t")
    assert proc.returncode == 0, proc.stderr
    assert "not managed by Lockplane (in the desired schema, not created)" in proc.stderr
    proc = lockplane("introspect", "--target", a)
    assert proc.returncode == 0, proc.stderr
    assert "foreign table public.remote_users" in proc.stderr
    assert '"unmanaged": [' in proc.stdout  # the JSON says it too (outside the hash)
    # Nothing to say about a database without such objects.
    proc = lockplane("introspect", "--target", b)
    assert proc.returncode == 0 and "warning" not in proc.stderr



def test_schema_file_publications_are_checked() -> None:
    s = Schema.model_validate({
        "tables": [{"name": "users", "columns": [{"name": "id", "type": "integer",
                                                  "is_primary_key": True}]}],
        "publications": [{"name": "feed", "tables": [
            {"name": "users", "columns": ["id", "email"]}, {"name": "gone"}]}],
        "event_triggers": [{"name": "e", "event": "sql_drop", "function": "Audit.f",
                            "tags": ["drop table"]}]})
    assert [str(f) for f in check_schema(s)] == [
        "error: publication feed: column list names unknown column users.email",
        "error: publication feed: names unknown table public.gone"]
    # Names in a schema file are spelled as SQL would (unquoted folds to lower case).
    assert s.event_triggers[0].function == '"audit"."f"'
    assert s.event_triggers[0].tags == ["DROP TABLE"]


def test_applies_run_no_ddl_of_their_own_once_the_state_tables_exist(
        pg_dsn: str, tmp_path: object) -> None:
    """CREATE ... IF NOT EXISTS still runs the command and fires the database's event
    triggers (ddl_command_start, even when there is nothing to create): an audit trigger
    would log Lockplane's bookkeeping on every apply, and a DDL guard would refuse it.
    Once its tables exist, an apply runs only the plan's DDL."""
    from pathlib import Path

    pg_exec(pg_dsn, """
    CREATE TABLE audit (tag text);
    CREATE FUNCTION log_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO public.audit VALUES (tg_tag);
    END $$;
    CREATE EVENT TRIGGER log_ddl ON ddl_command_start EXECUTE FUNCTION log_ddl();
    CREATE TABLE t (id int);
    """)
    base = ("CREATE TABLE audit (tag text);\n" + "\n".join(
        ln for ln in """CREATE FUNCTION log_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO public.audit VALUES (tg_tag);
    END $$;
    CREATE EVENT TRIGGER log_ddl ON ddl_command_start EXECUTE FUNCTION log_ddl();""".splitlines()))
    desired = Path(str(tmp_path)) / "schema.sql"
    for n, cols in enumerate(("id int, a int", "id int, a int, b int")):
        desired.write_text(base + f"\nCREATE TABLE t ({cols});\n")
        proc = lockplane("apply", "--schema", str(desired), "--target", pg_dsn,
                         "--auto-approve", "--skip-shadow")
        assert proc.returncode == 0, proc.stderr
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            tags = [r[0] for r in conn.execute("SELECT tag FROM audit")]
            conn.execute("TRUNCATE audit")
        if n == 0:
            assert "CREATE TABLE" in tags  # the first apply creates lockplane.migrations
        else:
            assert tags == ["ALTER TABLE"], tags  # the plan's step, nothing of Lockplane's
