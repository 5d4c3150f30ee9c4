"""Round trips on real PostgreSQL and SQLite over many schema pairs.

For each pair: plan from -> to, apply, the catalog equals ``to`` loaded fresh (column
order aside), rows of surviving tables survive, re-planning is empty, and rolling back
gives a catalog equal to ``from``.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tests.conftest import pg_exec
from tests.roundtrip import roundtrip, sqlite_db

BASE_PG = """
CREATE TABLE users (id integer PRIMARY KEY, email text NOT NULL, nick varchar(20),
                    score numeric(10,2) DEFAULT 0);
CREATE TABLE posts (id integer PRIMARY KEY, user_id integer REFERENCES users (id),
                    title text NOT NULL, body text);
CREATE INDEX posts_user ON posts (user_id);
"""
DATA_PG = """
INSERT INTO users VALUES (1, 'a@x', 'a', 1.5), (2, 'b@x', NULL, 2), (3, 'c@x', 'c', NULL);
INSERT INTO posts VALUES (10, 1, 't1', 'b1'), (11, 2, 't2', NULL), (12, NULL, 't3', 'b3');
"""

ENUM_HOLDERS = """CREATE TYPE job_state AS ENUM ({values});
CREATE TABLE jobs (id int PRIMARY KEY, state job_state NOT NULL DEFAULT 'queued',
  CONSTRAINT not_running_forever CHECK (state <> 'running' OR id > 0));
CREATE INDEX jobs_fetch ON jobs (id) WHERE state = 'queued';
CREATE INDEX jobs_open ON jobs ((state IN ('queued', 'running')));
CREATE TABLE other (id int, CHECK ('queued'::job_state IS NOT NULL));
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER jobs_touch BEFORE UPDATE ON jobs FOR EACH ROW
  WHEN (NEW.state = 'queued') EXECUTE FUNCTION touch();
ALTER TABLE jobs ENABLE ROW LEVEL SECURITY;
CREATE POLICY jobs_queued ON jobs USING (state IN ('queued'));
CREATE VIEW job_counts AS SELECT state, count(*) AS n FROM jobs GROUP BY state;
CREATE VIEW queued_jobs AS SELECT id FROM jobs WHERE state = 'queued';
CREATE VIEW queued_count AS SELECT count(*) AS n FROM queued_jobs;
CREATE FUNCTION running_count() RETURNS bigint LANGUAGE sql STABLE
  BEGIN ATOMIC SELECT count(*) FROM jobs WHERE state = 'running'; END;
CREATE FUNCTION is_open(s job_state) RETURNS boolean LANGUAGE sql IMMUTABLE
  RETURN s IN ('queued', 'running');
CREATE MATERIALIZED VIEW open_jobs AS SELECT id FROM jobs WHERE is_open(state);
CREATE FUNCTION first_open() RETURNS SETOF open_jobs LANGUAGE sql AS
  $$ SELECT * FROM open_jobs ORDER BY id LIMIT 1 $$;
"""
ENUM_HOLDER_ROWS = "INSERT INTO jobs VALUES (1, 'queued'), (2, 'running');"

# (name, from-script, to-script). Data is DATA_PG when the from-script is BASE_PG.
PG_CASES: list[tuple[str, str, str]] = [
    ("identical", BASE_PG, BASE_PG),
    ("add nullable column", BASE_PG, BASE_PG.replace("body text)", "body text, tags text[])")),
    ("add column with default", BASE_PG,
     BASE_PG.replace("body text)", "body text, published boolean NOT NULL DEFAULT false)")),
    ("drop column", BASE_PG, BASE_PG.replace(", body text)", ")")),
    ("widen varchar", BASE_PG, BASE_PG.replace("varchar(20)", "varchar(200)")),
    ("varchar to text", BASE_PG, BASE_PG.replace("varchar(20)", "text")),
    ("numeric precision", BASE_PG, BASE_PG.replace("numeric(10,2)", "numeric(14,2)")),
    ("int to bigint", BASE_PG, BASE_PG.replace("user_id integer", "user_id bigint")),
    ("set not null", BASE_PG, BASE_PG.replace("title text NOT NULL", "title text NOT NULL")
     .replace("email text NOT NULL", "email text NOT NULL")),
    ("drop not null", BASE_PG, BASE_PG.replace("email text NOT NULL", "email text")),
    ("change default", BASE_PG, BASE_PG.replace("DEFAULT 0", "DEFAULT 42")),
    ("drop default", BASE_PG, BASE_PG.replace(" DEFAULT 0", "")),
    ("add unique", BASE_PG, BASE_PG.replace("email text NOT NULL", "email text NOT NULL UNIQUE")),
    ("add check", BASE_PG, BASE_PG.replace("title text NOT NULL", "title text NOT NULL "
                                           "CHECK (length(title) > 0)")),
    ("named check", BASE_PG, BASE_PG + "ALTER TABLE users ADD CONSTRAINT score_positive "
     "CHECK (score >= 0);"),
    ("drop fk", BASE_PG, BASE_PG.replace(" REFERENCES users (id)", "")),
    ("fk actions", BASE_PG, BASE_PG.replace("REFERENCES users (id)",
                                            "REFERENCES users (id) ON DELETE SET NULL "
                                            "ON UPDATE CASCADE DEFERRABLE INITIALLY DEFERRED")),
    ("drop index", BASE_PG, BASE_PG.replace("CREATE INDEX posts_user ON posts (user_id);", "")),
    ("change index", BASE_PG, BASE_PG.replace("posts (user_id)", "posts (user_id, id DESC)")),
    ("partial expression index", BASE_PG, BASE_PG + "CREATE UNIQUE INDEX users_lower_email "
     "ON users (lower(email)) WHERE nick IS NOT NULL;"),
    ("index include + method", BASE_PG, BASE_PG + "CREATE INDEX posts_cover ON posts "
     "(user_id) INCLUDE (title); CREATE INDEX users_hash ON users USING hash (email);"),
    ("new table with fk cycle", BASE_PG, BASE_PG + """
     CREATE TABLE a (id int PRIMARY KEY, b_id int);
     CREATE TABLE b (id int PRIMARY KEY, a_id int REFERENCES a (id));
     ALTER TABLE a ADD CONSTRAINT a_b FOREIGN KEY (b_id) REFERENCES b (id);"""),
    ("drop table", BASE_PG + "CREATE TABLE old_stuff (id int PRIMARY KEY, x text);", BASE_PG),
    ("change primary key", BASE_PG, BASE_PG.replace(
        "CREATE TABLE posts (id integer PRIMARY KEY,", "CREATE TABLE posts (id integer,")
     .replace("body text)", "body text, PRIMARY KEY (id, title))")),
    ("comments", BASE_PG, BASE_PG + "COMMENT ON TABLE users IS 'people'; "
     "COMMENT ON COLUMN users.email IS 'login; unique'; COMMENT ON INDEX posts_user IS 'hot';"),
    ("identity and generated", BASE_PG, BASE_PG + """
     CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
       a int, b int, total int GENERATED ALWAYS AS (a + b) STORED);"""),
    ("collation", BASE_PG, BASE_PG.replace("nick varchar(20)", 'nick varchar(20) COLLATE "C"')),
    ("hostile identifiers", BASE_PG, BASE_PG + '''
     CREATE TABLE "Weird ""Name""" ("select" int PRIMARY KEY, "semi;colon" text,
        "with space" text DEFAULT 'it''s', "MixedCase" int UNIQUE);
     CREATE INDEX "idx; DROP TABLE users; --" ON "Weird ""Name""" ("semi;colon");
     COMMENT ON COLUMN "Weird ""Name"""."semi;colon" IS 'a ''quoted'' comment';'''),
    ("multiple schemas", BASE_PG, BASE_PG + """
     CREATE SCHEMA billing; CREATE SCHEMA "Other Schema";
     CREATE TABLE billing.invoices (id int PRIMARY KEY, user_id int REFERENCES users (id));
     CREATE TABLE "Other Schema".users (id int PRIMARY KEY,
        inv int REFERENCES billing.invoices (id));"""),
    ("exclusion constraint", BASE_PG, BASE_PG + """
     CREATE TABLE rooms (id int PRIMARY KEY, during tsrange,
        EXCLUDE USING gist (during WITH &&));"""),
    ("unique nulls not distinct", BASE_PG, BASE_PG.replace(
        "email text NOT NULL", "email text NOT NULL, UNIQUE NULLS NOT DISTINCT (nick)")),
    # Found by test_roundtrip_hypothesis: the default must go before ADD GENERATED.
    ("identity on a column with a default",
     BASE_PG + "CREATE TABLE counters (n smallint DEFAULT 42 NOT NULL, label text);"
               "INSERT INTO counters VALUES (5, 'five');",
     BASE_PG + "CREATE TABLE counters (n smallint GENERATED BY DEFAULT AS IDENTITY, "
               "label text);"),
    # Found by test_roundtrip_hypothesis: types without a direct cast convert through
    # their text form (date -> bigint failed even on an empty table).
    ("type change without a direct cast",
     BASE_PG + "CREATE TYPE ab AS ENUM ('a', 'b'); CREATE TYPE bc AS ENUM ('b', 'c');"
               "CREATE TABLE casts (id int PRIMARY KEY, d date, s smallint, n numeric(12,4),"
               " e ab, j jsonb); INSERT INTO casts VALUES (1, NULL, NULL, NULL, 'b', NULL);",
     BASE_PG + "CREATE TYPE ab AS ENUM ('a', 'b'); CREATE TYPE bc AS ENUM ('b', 'c');"
               "CREATE TABLE casts (id int PRIMARY KEY, d bigint, s boolean, n boolean,"
               " e bc, j uuid);"),
    # Found by test_roundtrip_hypothesis: a key and the foreign key referencing it change
    # type together; between the two ALTERs the constraint compared text with uuid.
    ("retype a key and its reference",
     BASE_PG + "CREATE TABLE p (id text PRIMARY KEY); CREATE TABLE c (id int PRIMARY KEY,"
               " pid text REFERENCES p (id));"
               "INSERT INTO p VALUES ('00000000-0000-4000-8000-000000000001');"
               "INSERT INTO c VALUES (1, '00000000-0000-4000-8000-000000000001');",
     BASE_PG + "CREATE TABLE p (id uuid PRIMARY KEY); CREATE TABLE c (id int PRIMARY KEY,"
               " pid uuid REFERENCES p (id));"),
    # Found by test_roundtrip_hypothesis: recreating an enum (values removed, reordered,
    # or a value added, whose rollback recreates) converts a key and its references one
    # column at a time: the foreign keys over them are dropped around the conversion.
    ("recreate an enum used by keys",
     BASE_PG + "CREATE TYPE e AS ENUM ('a', 'b', 'c'); CREATE TABLE t (id e PRIMARY KEY,"
               " parent e REFERENCES t (id)); CREATE TABLE u (o e REFERENCES t (id));"
               "INSERT INTO t VALUES ('a', 'a'), ('c', 'a'); INSERT INTO u VALUES ('c');",
     BASE_PG + "CREATE TYPE e AS ENUM ('c', 'a'); CREATE TABLE t (id e PRIMARY KEY,"
               " parent e REFERENCES t (id)); CREATE TABLE u (o e REFERENCES t (id));"),
    # Found by a 300-example hypothesis run: a primary key that loses a column must go
    # before that column's DROP NOT NULL (no gap-free swap then).
    ("column leaves the primary key and becomes nullable",
     'CREATE TABLE "public"."users" (\n'
     '  "users" integer NOT NULL,\n'
     '  "users2" date DEFAULT \'2024-01-01\',\n'
     '  "users3" integer NOT NULL,\n'
     '  "users4" integer NOT NULL,\n'
     '  "users5" integer NOT NULL,\n'
     '  "users6" date NOT NULL,\n'
     '  PRIMARY KEY ("users", "users2")\n'
     ');\n'
     'ALTER TABLE "public"."users" ADD FOREIGN KEY ("users5", "users6") REFERENCES "pu'
     'blic"."users" ("users", "users2") DEFERRABLE INITIALLY DEFERRED;\n'
     'CREATE UNIQUE INDEX "users2" ON "public"."users" ((("users" + 1))) INCLUDE ("use'
     'rs2") WHERE "users2" IS NOT NULL;\n'
     'CREATE UNIQUE INDEX "users3" ON "public"."users" ((("users4" + 1))) INCLUDE ("us'
     'ers") WHERE "users2" IS NOT NULL;',
     'CREATE TABLE "public"."users" (\n'
     '  "users" integer NOT NULL,\n'
     '  "users2" date DEFAULT \'2024-01-01\',\n'
     '  "users3" integer NOT NULL,\n'
     '  "users4" integer NOT NULL,\n'
     '  "users5" integer NOT NULL,\n'
     '  "users6" date NOT NULL,\n'
     '  "users7" bigint GENERATED ALWAYS AS ("users" + 1) STORED,\n'
     '  PRIMARY KEY ("users")\n'
     ');\n'
     'CREATE UNIQUE INDEX "users2" ON "public"."users" ((("users" + 1))) INCLUDE ("use'
     'rs2") WHERE "users2" IS NOT NULL;\n'
     'CREATE UNIQUE INDEX "users3" ON "public"."users" ((("users4" + 1))) INCLUDE ("us'
     'ers") WHERE "users2" IS NOT NULL;'),
    # ... and a dropped generated column goes before its base column's type change.
    ("drop a generated column whose base changes type",
     'CREATE TABLE "public"."group" (\n'
     '  "users" integer NOT NULL,\n'
     '  "t1" date DEFAULT \'2024-01-01\',\n'
     '  "users2" jsonb DEFAULT \'{"a": 1}\',\n'
     '  "from" text[] COLLATE "C" NOT NULL,\n'
     '  "MixedCase" bigint GENERATED ALWAYS AS ("users" * 2) STORED,\n'
     '  CONSTRAINT "id" PRIMARY KEY ("users2"),\n'
     '  UNIQUE ("from", "t1"),\n'
     '  UNIQUE ("from", "users"),\n'
     '  CHECK (("users" >= 0) AND (cardinality("from") < 10)),\n'
     '  CHECK (("t1" > \'2000-01-01\') AND (jsonb_typeof("users2") = \'object\'))\n'
     ');\n'
     'INSERT INTO "public"."group" ("users", "t1", "users2", "from") VALUES (\'6\', \'202'
     '4-07-01\', \'{"k": 0}\', \'{a0,b}\'), (\'16\', \'2024-07-02\', '
     '\'{"k": 1}\', \'{a1,b}\'), (\'2'
     '6\', \'2024-07-03\', \'{"k": 2}\', \'{a2,b}\');',
     'CREATE TABLE "public"."group" (\n'
     '  "users" varchar(8) NOT NULL,\n'
     '  "t1" date DEFAULT \'2024-01-01\',\n'
     '  "users2" jsonb DEFAULT \'{"a": 1}\',\n'
     '  "from" text[] COLLATE "C" NOT NULL,\n'
     '  "select" bigint,\n'
     '  CONSTRAINT "id" PRIMARY KEY ("users2"),\n'
     '  UNIQUE ("from", "t1"),\n'
     '  UNIQUE ("from", "users"),\n'
     '  CHECK (("t1" > \'2000-01-01\') AND (jsonb_typeof("users2") = \'object\'))\n'
     ');\n'
     'COMMENT ON TABLE "public"."group" IS \'a \\ backslash\';\n'
     'COMMENT ON COLUMN "public"."group"."select" IS \'multi\n'
     "line';"),
    # Found by test_roundtrip_hypothesis: PostgreSQL cannot ALTER the type of a column a
    # generated column uses, nor change an expression: the generated column is dropped
    # and added back, with its index, constraints and comment; a generated column is
    # dropped before, and added after, the columns it is computed from.
    ("generated column over a retyped column",
     BASE_PG + "CREATE TABLE g (a int, b bigint GENERATED ALWAYS AS (a + 1) STORED UNIQUE,"
               " c int, CHECK (b > 0)); CREATE INDEX gi ON g (b);"
               "CREATE VIEW gv AS SELECT b FROM g; COMMENT ON COLUMN g.b IS 'bee';"
               "INSERT INTO g (a, c) VALUES (1, 1), (2, 2);",
     BASE_PG + "CREATE TABLE g (a bigint, b bigint GENERATED ALWAYS AS (a + 1) STORED UNIQUE,"
               " c int, CHECK (b > 0)); CREATE INDEX gi ON g (b);"
               "CREATE VIEW gv AS SELECT b FROM g; COMMENT ON COLUMN g.b IS 'bee';"),
    ("generated expression change keeps its index",
     BASE_PG + "CREATE TABLE g (a int, b int GENERATED ALWAYS AS (a + 1) STORED);"
               "CREATE INDEX gi ON g (b); COMMENT ON COLUMN g.b IS 'bee';"
               "INSERT INTO g (a) VALUES (1);",
     BASE_PG + "CREATE TABLE g (a int, b int GENERATED ALWAYS AS (a + 2) STORED);"
               "CREATE INDEX gi ON g (b); COMMENT ON COLUMN g.b IS 'bee';"),
    ("drop and add generated with its base",
     BASE_PG + "CREATE TABLE g (a int, b int GENERATED ALWAYS AS (a + 1) STORED, c int);"
               "CREATE TABLE h (c int); INSERT INTO g (a, c) VALUES (1, 2);",
     BASE_PG + "CREATE TABLE g (c int);"
               "CREATE TABLE h (b int GENERATED ALWAYS AS (a + 1) STORED, a int, c int);"),
    # Logical replication: a publication follows its tables (created after them; out of
    # the way before a column of its column list is dropped) and is ALTERed, not
    # recreated, when its tables change.
    ("publication with column list and row filter", BASE_PG,
     BASE_PG + "CREATE PUBLICATION pub FOR TABLE users (id, email) WHERE (id > 1), posts;"),
    ("publication loses a dropped column",
     BASE_PG + "CREATE PUBLICATION pub FOR TABLE posts (id, title, body), users;",
     BASE_PG.replace(", body text)", ")") + "CREATE PUBLICATION pub FOR TABLE posts (id, "
     "title) WITH (publish = 'insert');"),
    ("event trigger",
     BASE_PG, BASE_PG + "CREATE FUNCTION note() RETURNS event_trigger LANGUAGE plpgsql AS "
     "$$ BEGIN RAISE NOTICE '%', tg_tag; END $$; CREATE EVENT TRIGGER note ON "
     "ddl_command_end EXECUTE FUNCTION note();"),
    ("add an enum value used by keys",
     BASE_PG + "CREATE TYPE e AS ENUM ('a', 'b'); CREATE TABLE t (id e PRIMARY KEY);"
               " CREATE TABLE u (o e REFERENCES t (id));"
               "INSERT INTO t VALUES ('a'); INSERT INTO u VALUES ('a');",
     BASE_PG + "CREATE TYPE e AS ENUM ('a', 'b', 'c'); CREATE TABLE t (id e PRIMARY KEY);"
               " CREATE TABLE u (o e REFERENCES t (id));"),
    # Found by test_histories (a job queue): recreating an enum (the rollback of an added
    # value, or values removed) where a partial index, CHECK, trigger WHEN or policy holds
    # a value of the type (converting the column re-read them against the old type), or
    # views and SQL-standard routines read the columns or the type (the server refuses to
    # convert the columns under them).
    ("add an enum value held by indexes, checks, triggers and policies",
     BASE_PG + ENUM_HOLDERS.replace("{values}", "'queued', 'running'") + ENUM_HOLDER_ROWS,
     BASE_PG + ENUM_HOLDERS.replace("{values}", "'queued', 'failed', 'running'")),
    ("remove an enum value held by indexes, checks, triggers and policies",
     BASE_PG + ENUM_HOLDERS.replace("{values}", "'queued', 'running', 'gone'")
     + ENUM_HOLDER_ROWS, BASE_PG + ENUM_HOLDERS.replace("{values}", "'queued', 'running'")),
    # Options whose value is 0 are values (0 == False in Python: they were dropped).
    ("sequence and identity options of 0", BASE_PG,
     BASE_PG + "CREATE SEQUENCE down INCREMENT BY -1 MINVALUE -100 MAXVALUE 0 START WITH 0;"
               " CREATE SEQUENCE up MINVALUE 0 START WITH 0;"
               " CREATE TABLE countdown (id int GENERATED ALWAYS AS IDENTITY"
               " (INCREMENT BY -1 MINVALUE -1000 MAXVALUE 0 START WITH 0), x int);"
               " CREATE TABLE from_zero (id int GENERATED BY DEFAULT AS IDENTITY"
               " (MINVALUE 0 START WITH 0), x int);"),
    # Found by test_roundtrip_hypothesis: the undo of DROP EXPRESSION adds the column back
    # generated, and must set its comment again (it came back without one).
    ("generated column made plain, with a comment",
     BASE_PG + "CREATE TABLE g (id int, twice int GENERATED ALWAYS AS (id * 2) STORED);"
               " COMMENT ON COLUMN g.twice IS 'kept';",
     BASE_PG + "CREATE TABLE g (id int, twice int); COMMENT ON COLUMN g.twice IS 'kept';"),
    # ---- Classes found by running external schema-diff corpora (helper-c) ----
    # A dropped table with no column to archive (none at all, or generated ones only)
    # still has rows; its undo wrote an empty column list (a syntax error).
    ("dropped tables without archivable columns",
     BASE_PG + "CREATE TABLE bare (); INSERT INTO bare DEFAULT VALUES;"
               " INSERT INTO bare DEFAULT VALUES;"
               " CREATE TABLE only_gen (one int GENERATED ALWAYS AS (1) STORED);"
               " INSERT INTO only_gen DEFAULT VALUES;",
     BASE_PG),
    # A parent's column dropped while its INHERITS children keep it as their own: the
    # recursing DROP COLUMN took it (and its values) from the children too.
    ("parent drops a column its inheritors keep",
     BASE_PG + "CREATE TABLE stamped (at timestamptz DEFAULT now(), note text);"
               " CREATE TABLE shelf (label text) INHERITS (stamped);"
               " CREATE TABLE crate (n int) INHERITS (stamped);"
               " INSERT INTO shelf (note, label) VALUES ('kept', 'x');"
               " INSERT INTO crate (note, n) VALUES ('also', 1);",
     BASE_PG + "CREATE TABLE stamped (at timestamptz DEFAULT now());"
               " CREATE TABLE shelf (label text, note text) INHERITS (stamped);"
               " CREATE TABLE crate (n int, note text) INHERITS (stamped);"),
    # An enum recreated (a value removed) under routines in any language that take or
    # return it: they held the old type, renamed aside, from being dropped.
    ("enum value removed under routines of its type",
     BASE_PG + "CREATE TYPE tint AS ENUM ('red', 'green', 'blue');"
               " CREATE TABLE paint (id int PRIMARY KEY, c tint);"
               " INSERT INTO paint VALUES (1, 'red'), (2, 'green');"
               " CREATE FUNCTION shout(c tint) RETURNS text LANGUAGE plpgsql AS"
               " $$BEGIN RETURN upper(c::text); END$$;"
               " CREATE FUNCTION palette() RETURNS tint[] LANGUAGE sql STABLE AS"
               " $$SELECT array_agg(c) FROM paint$$;",
     BASE_PG + "CREATE TYPE tint AS ENUM ('red', 'green');"
               " CREATE TABLE paint (id int PRIMARY KEY, c tint);"
               " CREATE FUNCTION shout(c tint) RETURNS text LANGUAGE plpgsql AS"
               " $$BEGIN RETURN upper(c::text); END$$;"
               " CREATE FUNCTION palette() RETURNS tint[] LANGUAGE sql STABLE AS"
               " $$SELECT array_agg(c) FROM paint$$;"),
    # An extension taken to a version it ships no update script to (most ship none
    # downwards): ALTER EXTENSION UPDATE TO failed, 'no update path'.
    ("extension version with no update path",
     BASE_PG + "CREATE EXTENSION citext VERSION '1.6'; COMMENT ON EXTENSION citext IS 'ours';",
     BASE_PG + "CREATE EXTENSION citext VERSION '1.5'; COMMENT ON EXTENSION citext IS 'ours';"),
    # A domain's base type changed while columns, routines and views use it: it was
    # dropped and created again, which the server refuses under any of them.
    ("domain base type changed under its users",
     BASE_PG + "CREATE DOMAIN money2 AS integer DEFAULT 0 CHECK (VALUE >= 0);"
               " CREATE TABLE ledger (id int PRIMARY KEY, amount money2 DEFAULT 1,"
               " parts money2[], CONSTRAINT small CHECK (amount < 1000));"
               " CREATE INDEX ledger_amount ON ledger (amount);"
               " INSERT INTO ledger VALUES (1, 25, '{1,2}'), (2, 3, NULL);"
               " CREATE FUNCTION doubled(m money2) RETURNS money2 LANGUAGE sql IMMUTABLE"
               " AS $$SELECT (m * 2)::money2$$;"
               " CREATE VIEW big_entries AS SELECT id, amount FROM ledger WHERE amount > 2;",
     BASE_PG + "CREATE DOMAIN money2 AS bigint DEFAULT 0 CHECK (VALUE >= 0);"
               " CREATE TABLE ledger (id int PRIMARY KEY, amount money2 DEFAULT 1,"
               " parts money2[], CONSTRAINT small CHECK (amount < 1000));"
               " CREATE INDEX ledger_amount ON ledger (amount);"
               " CREATE FUNCTION doubled(m money2) RETURNS money2 LANGUAGE sql IMMUTABLE"
               " AS $$SELECT (m * 2)::money2$$;"
               " CREATE VIEW big_entries AS SELECT id, amount FROM ledger WHERE amount > 2;"),
    # A table made again (now partitioned) whose serial's sequence the plan drops or
    # hands to another column: DROP TABLE took the sequence along, and the plan's own
    # step on it failed ('relation ..._seq does not exist').
    ("recreated table releases the sequences it stops owning",
     BASE_PG + "CREATE TABLE tick (id serial, at date NOT NULL);"
               " CREATE TABLE tock (n serial, at date NOT NULL);"
               " CREATE TABLE keeper (k bigint);",
     BASE_PG + "CREATE TABLE tick (id int NOT NULL, at date NOT NULL) PARTITION BY RANGE (at);"
               " CREATE TABLE tick_rest PARTITION OF tick DEFAULT;"
               " CREATE SEQUENCE tock_n_seq;"
               " CREATE TABLE tock (n int NOT NULL, at date NOT NULL) PARTITION BY RANGE (at);"
               " CREATE TABLE keeper (k bigint); ALTER SEQUENCE tock_n_seq OWNED BY keeper.k;"),
    # An enum recreated (a value removed, values reordered) while its columns' defaults
    # change: the recreate set the old default back (a removed value: 'invalid input
    # value for enum'), and a new default can name a value only the new type has.
    ("enum recreated while its columns' defaults change",
     BASE_PG + "CREATE TYPE lvl AS ENUM ('low', 'mid', 'high');"
               " CREATE TABLE job (id int PRIMARY KEY, a lvl DEFAULT 'mid',"
               " b lvl DEFAULT 'low', c lvl, d lvl DEFAULT 'high');"
               " INSERT INTO job VALUES (1, 'low', 'high', NULL, 'high');",
     BASE_PG + "CREATE TYPE lvl AS ENUM ('urgent', 'high', 'low');"
               " CREATE TABLE job (id int PRIMARY KEY, a lvl DEFAULT 'low',"
               " b lvl DEFAULT 'urgent', c lvl DEFAULT 'high', d lvl DEFAULT 'high');"),
    # A partitioned table's index to which the server attached a partition's own UNIQUE
    # constraint index: 'cannot drop index ... because other objects depend on it'.
    ("partitioned index over a partition's own constraint dropped",
     BASE_PG + "CREATE TABLE shelf (zone text, code text) PARTITION BY LIST (zone);"
               " CREATE TABLE shelf_a PARTITION OF shelf (UNIQUE (zone, code))"
               " FOR VALUES IN ('a');"
               " CREATE TABLE shelf_b PARTITION OF shelf FOR VALUES IN ('b');"
               " CREATE UNIQUE INDEX shelf_code ON shelf (zone, code);"
               " CREATE TABLE pick (zone text, code text,"
               " FOREIGN KEY (zone, code) REFERENCES shelf_a (zone, code));"
               " INSERT INTO shelf VALUES ('a', 'x'), ('b', 'y'); INSERT INTO pick VALUES"
               " ('a', 'x');",
     BASE_PG + "CREATE TABLE shelf (zone text, code text) PARTITION BY LIST (zone);"
               " CREATE TABLE shelf_a PARTITION OF shelf (UNIQUE (zone, code))"
               " FOR VALUES IN ('a');"
               " CREATE TABLE shelf_b PARTITION OF shelf FOR VALUES IN ('b');"
               " CREATE TABLE pick (zone text, code text,"
               " FOREIGN KEY (zone, code) REFERENCES shelf_a (zone, code));"),
    # An INVALID index of a partitioned table (made ON ONLY, its partitions' copies not
    # attached) was made again across the partitions: valid, and holding a partition's
    # own equal index as its copy, so the catalog diverged.
    ("partitioned index made on the parent only",
     BASE_PG + "CREATE TABLE meter (site text NOT NULL, n int NOT NULL) PARTITION BY LIST (site);"
               " CREATE TABLE meter_a PARTITION OF meter FOR VALUES IN ('a');"
               " CREATE UNIQUE INDEX meter_pkey ON ONLY meter (site, n);"
               " ALTER TABLE meter_a ADD CONSTRAINT meter_a_pkey PRIMARY KEY (site, n);"
               " INSERT INTO meter VALUES ('a', 1), ('a', 2);",
     BASE_PG + "CREATE TABLE meter (site text NOT NULL, n int NOT NULL) PARTITION BY LIST (site);"
               " CREATE TABLE meter_a PARTITION OF meter FOR VALUES IN ('a');"
               " ALTER TABLE meter ADD CONSTRAINT meter_pkey PRIMARY KEY (site, n);"),
]


# Found by test_roundtrip_hypothesis (sharded): the undo of DROP EXPRESSION drops the
# column and adds it back generated. What the server drops with the column (an index over
# it) is made again by the undo; what it refuses to drop it under (a routine whose
# SQL-standard body reads the table) is dropped before and made again after.
GENERATED_UNDO_CASES = [
    ("generated column made plain under an index",
     BASE_PG + "CREATE TABLE g (id int, twice int GENERATED ALWAYS AS (id * 2) STORED);"
               " CREATE INDEX g_twice ON g ((twice + 1));",
     BASE_PG + "CREATE TABLE g (id int, twice int); CREATE INDEX g_twice ON g ((twice + 1));"),
    ("generated column made plain under a routine reading its table",
     BASE_PG + "CREATE TABLE g (id int, twice int GENERATED ALWAYS AS (id * 2) STORED);"
               " CREATE FUNCTION all_g() RETURNS SETOF g LANGUAGE sql STABLE"
               " BEGIN ATOMIC SELECT * FROM g; END;",
     BASE_PG + "CREATE TABLE g (id int, twice int);"
               " CREATE FUNCTION all_g() RETURNS SETOF g LANGUAGE sql STABLE"
               " BEGIN ATOMIC SELECT * FROM g; END;"),
]
PG_CASES += GENERATED_UNDO_CASES

# A generated column changed every way (made plain, made generated, a new expression)
# under each kind of object that uses it: what DROP COLUMN takes with it (indexes,
# constraints, statistics, privileges) and what it is refused under (triggers, policies,
# views, SQL-standard routines), forward and back.
GEN_TABLES = {
    "generated": "CREATE TABLE g (id int, twice int GENERATED ALWAYS AS (id * 2) STORED, z int);",
    "other expression":
        "CREATE TABLE g (id int, twice int GENERATED ALWAYS AS (id * 3) STORED, z int);",
    "plain": "CREATE TABLE g (id int, twice int, z int);"}
GEN_PAIRS = [("generated", "plain"), ("plain", "generated"), ("generated", "other expression")]
GEN_USERS = {
    "index": "CREATE INDEX g_twice ON g ((twice + 1));",
    "check": "ALTER TABLE g ADD CONSTRAINT g_chk CHECK (twice >= 0);",
    "check NOT VALID": "ALTER TABLE g ADD CONSTRAINT g_chk CHECK (twice >= 0) NOT VALID;",
    "unique": "ALTER TABLE g ADD CONSTRAINT g_uq UNIQUE (twice);",
    "foreign key": "CREATE TABLE nums (n int PRIMARY KEY);"
                   " INSERT INTO nums SELECT generate_series(0, 9);"
                   " ALTER TABLE g ADD CONSTRAINT g_fk FOREIGN KEY (twice) REFERENCES nums;",
    "statistics": "CREATE STATISTICS g_st ON id, twice, z FROM g;",
    "trigger": "CREATE FUNCTION tf() RETURNS trigger LANGUAGE plpgsql AS"
               " $$BEGIN RETURN NEW; END$$; CREATE TRIGGER t1 BEFORE UPDATE OF twice ON g"
               " FOR EACH ROW EXECUTE FUNCTION tf();",
    "policy": "ALTER TABLE g ENABLE ROW LEVEL SECURITY; CREATE POLICY p ON g USING (twice > 0);",
    "view": "CREATE VIEW gv AS SELECT id, twice FROM g;",
    "routine reading the column": "CREATE FUNCTION sum_g() RETURNS bigint LANGUAGE sql"
                                  " STABLE BEGIN ATOMIC SELECT sum(twice) FROM g; END;",
    "comment, privilege and statistics target":
        "COMMENT ON COLUMN g.twice IS 'kept'; GRANT SELECT (twice) ON g TO PUBLIC;"
        " ALTER TABLE g ALTER COLUMN twice SET STATISTICS 500;",
}


@pytest.mark.parametrize("user", list(GEN_USERS))
@pytest.mark.parametrize("pair", GEN_PAIRS, ids=[f"{f} to {t}" for f, t in GEN_PAIRS])
def test_postgres_generated_column_users(pg_dsn_factory, pair: tuple[str, str],
                                         user: str) -> None:
    a, b = pg_dsn_factory(), pg_dsn_factory()
    rows = "INSERT INTO g (id, z) VALUES (1, 1), (2, 2);"
    pg_exec(a, GEN_TABLES[pair[0]] + rows + GEN_USERS[user])
    pg_exec(b, GEN_TABLES[pair[1]] + GEN_USERS[user])
    roundtrip(a, b)


def test_postgres_generated_column_change_keeps_what_only_names_it(pg_dsn_factory) -> None:
    """What names the regenerated column only in a string, or holds it among others in a
    set, is left alone: a CHECK of another column comparing with the text 'twice' (read
    with PostgreSQL's lexer, not a pattern) stays; extended statistics are read with
    their columns in name order, so the column added back last (the server prints them in
    column order) does not make them differ."""
    from lockplane.dialects import connect
    from lockplane.plan import build_plan

    a, b = pg_dsn_factory(), pg_dsn_factory()
    users = ("ALTER TABLE g ADD CONSTRAINT g_label CHECK (label <> 'twice' AND z > -1);"
             ' CREATE STATISTICS g_st ON z, id, "twice" FROM g;')
    pg_exec(a, GEN_TABLES["plain"].replace("z int", "z int, label text") + users)
    pg_exec(b, GEN_TABLES["generated"].replace("z int", "z int, label text") + users)
    with connect(a) as db:
        before = db.introspect()
    with connect(b) as db:
        after = db.introspect()
    stats = after.table("public", "g").statistics[0].definition  # type: ignore[union-attr]
    assert "ON id, twice, z FROM" in stats, stats
    plan = build_plan(before, after)
    kinds = [s.kind for s in plan.steps]
    assert "drop_constraint" not in kinds and "add_constraint" not in kinds, kinds
    roundtrip(a, b)


# Cases whose SQL PostgreSQL 14 does not have (run with --pg-major 14, they are skipped).
SINCE_15 = {"unique nulls not distinct": "UNIQUE NULLS NOT DISTINCT",
            "publication with column list and row filter": "publication column lists",
            "publication loses a dropped column": "publication column lists"}


# Found by test_roundtrip_hypothesis's generator (helper-b), each as its smallest pair.
# A foreign key over columns whose type changes, made NOT VALID or valid in the same
# plan: dropped before the ALTER TYPEs and added back as wanted (its validity step on
# its own ran after them, and the first ALTER failed under the old key: "cannot be
# implemented").
RETYPED_FK = """CREATE TABLE t (id int PRIMARY KEY, s {t}, r {t}, UNIQUE (s, id));
CREATE TABLE p (k {t} PRIMARY KEY); CREATE TABLE c (k {t});
ALTER TABLE t ADD CONSTRAINT t_self FOREIGN KEY (r, id) REFERENCES t (s, id){v};
ALTER TABLE c ADD CONSTRAINT c_k FOREIGN KEY (k) REFERENCES p{v};
"""
RETYPED_FK_ROWS = """INSERT INTO t VALUES (1, '2024-01-01', NULL), (2, '2024-01-02', '2024-01-02');
INSERT INTO p VALUES ('2024-01-01'); INSERT INTO c VALUES ('2024-01-01'), (NULL);"""
CALLED_FN = """CREATE SCHEMA "s x";
CREATE FUNCTION "s x"."Next id"(x integer) RETURNS {t} LANGUAGE sql IMMUTABLE
  RETURN (x + 1)::{t};
CREATE TABLE held (id int PRIMARY KEY, n int DEFAULT "s x"."Next id"(7),
  m int CONSTRAINT m_ok CHECK ("s x"."Next id"(m) >= 0));
CREATE INDEX held_next ON held (("s x"."Next id"(m))) WHERE "s x"."Next id"(id) > 1;
"""
CALLED_FN_ROWS = "INSERT INTO held (id, m) VALUES (1, 1), (2, NULL);"
ENUM_READ = """CREATE TYPE mood AS ENUM ('new'{v});
CREATE TABLE "check" (n {t}, m mood DEFAULT 'new');
CREATE FUNCTION all_checks(r "check") RETURNS SETOF "check" LANGUAGE sql STABLE
  BEGIN ATOMIC SELECT * FROM "check"; END;
"""
PARTED_REFERRER = """CREATE TABLE c2 (g int PRIMARY KEY{d});
CREATE TABLE u (k int NOT NULL, g int REFERENCES c2) PARTITION BY RANGE (k);
CREATE TABLE u1 PARTITION OF u FOR VALUES FROM (MINVALUE) TO (10);
CREATE TABLE u2 PARTITION OF u FOR VALUES FROM (10) TO (MAXVALUE);
"""
PROPERTY_FOUND_CASES: list[tuple[str, str, str]] = [
    ("retyped foreign keys made NOT VALID",
     RETYPED_FK.format(t="timestamptz", v="") + RETYPED_FK_ROWS,
     RETYPED_FK.format(t="text", v=" NOT VALID")),
    ("retyped NOT VALID foreign keys made valid",
     RETYPED_FK.format(t="timestamptz", v=" NOT VALID") + RETYPED_FK_ROWS,
     RETYPED_FK.format(t="text", v="")),
    # A generated column made plain while a column it is computed from changes type:
    # DROP EXPRESSION first (the server refuses the ALTER TYPE under the expression), and
    # the undo adds it back generated after the type is back.
    ("generated column made plain as its base changes type",
     "CREATE TABLE g (id int, s text NOT NULL DEFAULT 'a',"
     " low text GENERATED ALWAYS AS (lower(s)) STORED);"
     " INSERT INTO g (id, s) VALUES (1, '1'), (2, '22');",
     "CREATE TABLE g (id int, s integer NOT NULL, low text);"),
    ("plain column made generated as its base changes type",
     "CREATE TABLE g (id int, s integer NOT NULL, low text); CREATE INDEX g_low ON g (low);"
     " INSERT INTO g (id, s, low) VALUES (1, 1, '1'), (2, 22, '22');",
     "CREATE TABLE g (id int, s text NOT NULL DEFAULT 'a',"
     " low text GENERATED ALWAYS AS (lower(s)) STORED); CREATE INDEX g_low ON g (low);"),
    # A function whose return type changes (dropped and created again: CREATE OR REPLACE
    # cannot) while a CHECK, an index and a column default call it: each is dropped
    # before it and made again after it (the drop was refused: "cannot drop function
    # ... because other objects depend on it"), on a table that keeps its rows.
    ("a function called by a CHECK, an index and a default changes its return type",
     CALLED_FN.format(t="bigint") + CALLED_FN_ROWS, CALLED_FN.format(t="integer")),
    ("a function called by a CHECK, an index and a default changes its return type back",
     CALLED_FN.format(t="integer") + CALLED_FN_ROWS,
     CALLED_FN.format(t="bigint")),
    # A column filled in batches (a new serial) on a table that a partitioned table's
    # foreign key references: the backfill's shadow trial dropped the key and then each
    # partition's clone of it, gone with it ('constraint ... of relation "u1" does not
    # exist').
    ("a backfill on a table a partitioned table's foreign key references",
     PARTED_REFERRER.format(d="") + "INSERT INTO c2 VALUES (1), (2);"
     " INSERT INTO u VALUES (1, 1), (20, 2);", PARTED_REFERRER.format(d=", d bigserial")),
    # An enum value added (or removed) while another column of a table holding the type
    # changes type under a routine that reads the table: the plan drops and makes the
    # routine again around the ALTER TYPE, and the enum's step (or its undo, the enum
    # recreated) did too, once too many ("function ... does not exist").
    ("an enum value added as a routine over its table is recreated",
     ENUM_READ.format(v="", t="integer") + "INSERT INTO \"check\" VALUES (1, 'new');",
     ENUM_READ.format(v=", 'active'", t="bigint")),
    ("an enum value removed as a routine over its table is recreated",
     ENUM_READ.format(v=", 'active'", t="integer") + "INSERT INTO \"check\" VALUES (1, 'new');",
     ENUM_READ.format(v="", t="bigint")),
    # ALTER COLUMN ... TYPE rebuilds the table's indexes over the column from their
    # printed text, which may read back otherwise: a key's COLLATE equal to the column's
    # new collation is not printed (the rollback's ALTER then gave the key the old
    # default collation), an IN list over varchar in the predicate becomes a cast
    # ARRAY. Such an index is dropped before the ALTER and built after it, both ways.
    ("a column takes the collation of an index key that names it",
     'CREATE TABLE ix (id int, s text NOT NULL); CREATE UNIQUE INDEX ix_s ON ix (s COLLATE "C");'
     " INSERT INTO ix VALUES (1, 'a'), (2, 'b');",
     'CREATE TABLE ix (id int, s text COLLATE "C" NOT NULL);'
     ' CREATE UNIQUE INDEX ix_s ON ix (s COLLATE "C");'),
    ("a retyped column under an index with an IN list over varchar",
     "CREATE TABLE ix (at timestamptz, v varchar(40));"
     " CREATE INDEX ix_at ON ix (at DESC) WHERE v IN ('a', 'b');"
     " INSERT INTO ix VALUES ('2024-01-01', 'a'), (NULL, 'c');",
     "CREATE TABLE ix (at text, v varchar(40));"
     " CREATE INDEX ix_at ON ix (at DESC) WHERE v IN ('a', 'b');"),
    # A new generated column over a column whose type changes in the same plan comes
    # after the ALTER TYPE (it was added first: "operator does not exist: text + integer").
    ("a new generated column over a column that changes type",
     "CREATE TABLE gx (id int, s text NOT NULL DEFAULT '1');"
     " INSERT INTO gx (id, s) VALUES (1, '1'), (2, '22');",
     "CREATE TABLE gx (id int, s integer NOT NULL DEFAULT 1,"
     " n bigint GENERATED ALWAYS AS (s + 1) STORED);"),
    # A column made an identity of another type: its undo dropped the identity and
    # changed the type in one ALTER TABLE, which the server refuses ("identity column
    # type must be smallint, integer, or bigint"); DROP IDENTITY now goes first.
    ("a boolean column becomes a bigint identity", "CREATE TABLE idt (id int, f boolean);",
     "CREATE TABLE idt (id int, f bigint GENERATED BY DEFAULT AS IDENTITY);"),
]
PG_CASES += PROPERTY_FOUND_CASES

# A key that foreign keys reference, replaced (found by the generator: a UNIQUE NULLS NOT
# DISTINCT made plain under the same name): the server refused its drop while they
# depended on it ("cannot drop constraint ... because other objects depend on it"). They
# are dropped and added back around it (NOT VALID, then validated), both ways.
REFERENCED = """CREATE TABLE u (id int, e text NOT NULL, f int NOT NULL, {k});
CREATE TABLE r (id int, a int, b text, CONSTRAINT r_fk FOREIGN KEY (a, b) REFERENCES u (f, e));
"""
REFERENCED_ROWS = ("INSERT INTO u VALUES (1, 'a', 1), (2, 'b', 2);"
                   " INSERT INTO r VALUES (1, 1, 'a'), (2, NULL, 'b');")
REPLACED_KEYS = [
    ("nnd", "CONSTRAINT u_k UNIQUE NULLS NOT DISTINCT (e, f)", "CONSTRAINT u_k UNIQUE (e, f)"),
    ("renamed", "CONSTRAINT u_k UNIQUE (e, f)", "CONSTRAINT u_k2 UNIQUE (f, e)"),
    ("include", "CONSTRAINT u_pk PRIMARY KEY (e, f)",
     "CONSTRAINT u_pk PRIMARY KEY (e, f) INCLUDE (id)"),
    ("index", "id2 int); CREATE UNIQUE INDEX u_ix ON u (e, f",
     "id2 int); CREATE UNIQUE INDEX u_ix ON u (e, f) WITH (fillfactor = 70"),
]
REFERENCED_KEY_CASES: list[tuple[str, str, str]] = [
    (f"a referenced key replaced ({n}{back})", REFERENCED.format(k=x) + REFERENCED_ROWS,
     REFERENCED.format(k=y))
    for n, a, b in REPLACED_KEYS for back, x, y in (("", a, b), (", back", b, a))]
PG_CASES += REFERENCED_KEY_CASES

# Type changes to and from domains cast as the domain's base type (found by the
# generator: numeric(10,2) to a domain over integer went through text, and '7.00' is no
# integer); the undo too (a domain over boolean back to integer), and a domain recreated
# with a new base type (there is no cast from integer back to jsonb: through text).
DOMAINS = ('CREATE DOMAIN dint AS integer CHECK (VALUE > -1000); CREATE DOMAIN "D 2" AS dint;'
           " CREATE DOMAIN db AS boolean;")
PG_CASES += [
    ("columns retyped to and from domains",
     DOMAINS + "CREATE TABLE dn (id int, v numeric(10,2), w numeric(10,2)[], b integer);"
     " INSERT INTO dn VALUES (1, 7.00, '{7.00,2}', 1), (2, NULL, NULL, 0);",
     DOMAINS + 'CREATE TABLE dn (id int, v dint, w "D 2"[], b db);'),
    ("a domain's base type changes from jsonb to integer",
     "CREATE DOMAIN dj AS jsonb; CREATE TABLE dn (id int, v dj, w dj[]);"
     " INSERT INTO dn VALUES (1, '7', '{7}'), (2, NULL, NULL);",
     "CREATE DOMAIN dj AS integer; CREATE TABLE dn (id int, v dj, w dj[]);"),
]

# Column defaults calling a function whose return type changes (dropped and created
# again), where the plan changes the column too: a new default (argument), a new type
# under the same default, the default dropped, the column dropped. hold_default skipped
# them and left them to the column's own steps, which ran after the function's drop
# ("cannot drop function ... because other objects depend on it"), and whose undo set
# the old default before the function was back.
HELD = """CREATE SCHEMA "s x";
CREATE FUNCTION "s x"."Next id"(x integer) RETURNS {t} LANGUAGE sql IMMUTABLE
  RETURN (x + 1)::{t};
CREATE TABLE held (id int PRIMARY KEY, {cols});
"""
HELD_OLD = HELD.format(t="bigint", cols='a int DEFAULT "s x"."Next id"(7),'
                       ' b int DEFAULT "s x"."Next id"(7),'
                       ' c int NOT NULL DEFAULT "s x"."Next id"(1),'
                       ' d int DEFAULT "s x"."Next id"(2)')
HELD_NEW = HELD.format(t="integer", cols='a int DEFAULT "s x"."Next id"(8),'
                       ' b bigint DEFAULT "s x"."Next id"(7), d int')
HELD_ROWS = "INSERT INTO held (id) VALUES (1), (2);"
PG_CASES += [
    ("defaults the plan changes calling a function whose return type changes",
     HELD_OLD + HELD_ROWS, HELD_NEW),
    # (back without c: a column added with a function default is another matter, which
    # Squawk flags; the forward case's rollback adds c back)
    ("defaults the plan changes calling a function whose return type changes, back",
     HELD_NEW + HELD_ROWS,
     HELD_OLD.replace(' c int NOT NULL DEFAULT "s x"."Next id"(1),', "")),
]

# A domain's CHECK and default calling a function whose return type changes, as a
# table's CHECK: dropped before the function (hold_domain_checks) and made again after
# it ("cannot drop function ... because other objects depend on it"); a domain over
# it, a table CHECK over a column of it, and the CHECK changed by the plan too.
CHECKED_DOMAIN = """CREATE FUNCTION f(x integer) RETURNS {t} LANGUAGE sql IMMUTABLE
  RETURN (x + 1)::{t};
CREATE DOMAIN pos AS integer CONSTRAINT pos_ok CHECK (f(VALUE) > {m}) DEFAULT f(1);
CREATE DOMAIN pos2 AS pos CHECK (VALUE < 100);
CREATE TABLE dh (id int, n pos, k pos2 CHECK (f(k) < 50));
"""
CHECKED_DOMAIN_ROWS = "INSERT INTO dh (id, k) VALUES (1, 1), (2, NULL);"
PG_CASES += [
    ("a domain CHECK and default calling a function whose return type changes",
     CHECKED_DOMAIN.format(t="bigint", m=0) + CHECKED_DOMAIN_ROWS,
     CHECKED_DOMAIN.format(t="integer", m=0)),
    ("a domain CHECK and default calling a function whose return type changes, back",
     CHECKED_DOMAIN.format(t="integer", m=0) + CHECKED_DOMAIN_ROWS,
     CHECKED_DOMAIN.format(t="bigint", m=0)),
    ("a domain CHECK calling a function whose return type changes, changed too",
     CHECKED_DOMAIN.format(t="bigint", m=0) + CHECKED_DOMAIN_ROWS,
     CHECKED_DOMAIN.format(t="integer", m=-5)),
]


# ... but not where a column holds an array (or a composite) of the domain: PostgreSQL
# refuses to add the CHECK back, or to VALIDATE one added NOT VALID ("cannot alter type
# ... because column ... uses it"), so the plan refuses in one line, naming the column.
@pytest.mark.parametrize("holder", [
    "CREATE TABLE da (id int, ks pos[]);",
    "CREATE TABLE da (id int, ks pos2[][]);",
    "CREATE TYPE pair AS (a pos2, b int); CREATE TABLE da (id int, p pair);",
], ids=["array", "array of a domain over it", "composite"])
def test_postgres_domain_check_held_under_an_array_of_it_is_refused(
        pg_dsn_factory, holder: str) -> None:
    from lockplane.dialects import connect
    from lockplane.errors import BadInput
    from lockplane.plan import build_plan

    a, b = pg_dsn_factory(), pg_dsn_factory()
    pg_exec(a, CHECKED_DOMAIN.format(t="bigint", m=0) + holder)
    pg_exec(b, CHECKED_DOMAIN.format(t="integer", m=0) + holder)
    with connect(a) as db:
        before = db.introspect()
    with connect(b) as db:
        after = db.introspect()
    with pytest.raises(BadInput, match=r"^cannot plan: domain public\.pos's CHECK pos_ok "
                                       r"calls public\.f, .* while public\.da\.(ks|p) "
                                       r"holds an array or composite"):
        build_plan(before, after)
    # (a domain without such a column is held as before: the corpus cases above)


# ... and a table's policy, trigger WHEN, extended statistics and EXCLUDE constraint.
CALLING_PARTS = """CREATE FUNCTION f(x integer) RETURNS {t} LANGUAGE sql IMMUTABLE
  RETURN (x + 1)::{t};
CREATE FUNCTION tg() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TABLE cp (id int, k int, EXCLUDE USING btree ((f(id)) WITH =));
ALTER TABLE cp ENABLE ROW LEVEL SECURITY; CREATE POLICY cp_p ON cp USING (f(id) > 0);
CREATE TRIGGER cp_t BEFORE UPDATE ON cp FOR EACH ROW WHEN (f(NEW.id) > 0)
  EXECUTE FUNCTION tg();
CREATE STATISTICS cp_s ON (f(id)), k FROM cp;
"""
PG_CASES += [
    ("table parts calling a function whose return type changes",
     CALLING_PARTS.format(t="bigint") + "INSERT INTO cp VALUES (1, 1), (2, NULL);",
     CALLING_PARTS.format(t="integer")),
    ("table parts calling a function whose return type changes, back",
     CALLING_PARTS.format(t="integer") + "INSERT INTO cp VALUES (1, 1), (2, NULL);",
     CALLING_PARTS.format(t="bigint")),
]
# ... and a generated column's expression: the column is dropped before the function and
# added back after it (no column loses and regains its expression in place), with what
# is over it (an index, a CHECK, a UNIQUE, statistics, its comment); or only dropped.
CALLING_GENERATED = """CREATE FUNCTION f(x integer) RETURNS {t} LANGUAGE sql IMMUTABLE
  RETURN (x + 1)::{t};
CREATE TABLE cg (id int, k int{g});
"""
GENERATED_G = (", g bigint GENERATED ALWAYS AS (f(id)) STORED CHECK (g > 0),"
               " CONSTRAINT cg_g_key UNIQUE (g)")
OVER_G = ("CREATE INDEX cg_g ON cg (g); CREATE STATISTICS cg_s ON g, k FROM cg;"
          " COMMENT ON COLUMN cg.g IS 'gee'; ALTER TABLE cg ALTER COLUMN g SET STATISTICS 300;")
CALLING_GENERATED_ROWS = "INSERT INTO cg (id, k) VALUES (1, 1), (2, NULL);"
PG_CASES += [
    ("a generated column calling a function whose return type changes",
     CALLING_GENERATED.format(t="bigint", g=GENERATED_G) + OVER_G + CALLING_GENERATED_ROWS,
     CALLING_GENERATED.format(t="integer", g=GENERATED_G) + OVER_G),
    ("a generated column calling a function whose return type changes, back",
     CALLING_GENERATED.format(t="integer", g=GENERATED_G) + OVER_G + CALLING_GENERATED_ROWS,
     CALLING_GENERATED.format(t="bigint", g=GENERATED_G) + OVER_G),
    ("a generated column calling a function whose return type changes, dropped",
     CALLING_GENERATED.format(t="bigint", g=GENERATED_G) + OVER_G + CALLING_GENERATED_ROWS,
     CALLING_GENERATED.format(t="integer", g="")),
    # (and one the plan makes plain, or gives a new expression and type: its own step ran
    # after the drop)
    ("a generated column calling a function whose return type changes, made plain",
     CALLING_GENERATED.format(t="bigint", g=GENERATED_G) + OVER_G + CALLING_GENERATED_ROWS,
     CALLING_GENERATED.format(t="integer", g=GENERATED_G.replace(
         " GENERATED ALWAYS AS (f(id)) STORED", "")) + OVER_G),
    ("a generated column calling a function whose return type changes, altered too",
     CALLING_GENERATED.format(t="bigint", g=GENERATED_G) + OVER_G + CALLING_GENERATED_ROWS,
     CALLING_GENERATED.format(t="integer", g=GENERATED_G.replace(
         "g bigint GENERATED ALWAYS AS (f(id))", "g integer GENERATED ALWAYS AS (f(id) + 1)"))
     + OVER_G),
]
# A column's statistics target and compression have no ADD COLUMN clause: the column's own
# ADD sets them, so a new column has them and a dropped one's rollback brings them back.
PG_CASES += [
    ("columns with statistics and compression added and dropped",
     BASE_PG + "ALTER TABLE posts ALTER COLUMN body SET STATISTICS 200,"
               " ALTER COLUMN body SET COMPRESSION pglz;",
     BASE_PG.replace(", body text)", ", extra text)") + "ALTER TABLE posts ALTER COLUMN"
     " extra SET STATISTICS 50, ALTER COLUMN extra SET COMPRESSION pglz;"),
]
# PostgreSQL 18 gives a partition made PARTITION OF its parent's NOT NULL constraint
# names, and an attached table keeps its own; detached, each keeps the name it had (the
# jobqueue and registry histories detach partitions). Before 18 the names are ignored.
DETACHED_NN = """CREATE TABLE dl (id int NOT NULL, at int CONSTRAINT "at set" NOT NULL, v int)
  PARTITION BY RANGE (at);
{p1};
CREATE TABLE dl_2025 (id int NOT NULL, at int NOT NULL, v int);
{p2}"""
PG_CASES += [
    ("partitions detached keep their NOT NULL constraints' names",
     DETACHED_NN.format(p1="CREATE TABLE dl_2024 PARTITION OF dl FOR VALUES FROM (0) TO (10)",
                        p2="ALTER TABLE dl ATTACH PARTITION dl_2025 FOR VALUES FROM (10) TO "
                        "(20); INSERT INTO dl VALUES (1, 1, 1), (2, 12, 2);"),
     DETACHED_NN.format(p1='CREATE TABLE dl_2024 (id int CONSTRAINT dl_id_not_null NOT NULL, '
                        'at int CONSTRAINT "at set" NOT NULL, v int)', p2="")),
    ("an INHERITS child let go keeps its NOT NULL constraints' names",
     "CREATE TABLE base (id int NOT NULL, n int CONSTRAINT nn NOT NULL);"
     " CREATE TABLE kid (x int) INHERITS (base); INSERT INTO kid VALUES (1, 2, 3);",
     "CREATE TABLE base (id int NOT NULL, n int CONSTRAINT nn NOT NULL); CREATE TABLE kid"
     " (id int CONSTRAINT base_id_not_null NOT NULL, n int CONSTRAINT nn NOT NULL, x int);"),
]
SINCE_15.update({c[0]: "UNIQUE NULLS NOT DISTINCT" for c in REFERENCED_KEY_CASES
                 if "(nnd" in c[0]})

# Found by the generator: a partition's own index equal to an index of its parent
# (ASC/DESC and NULLS aside: the server does not compare them), which the desired schema
# keeps besides the parent's copy. CREATE INDEX on the parent took the own index in as
# its copy (Diverged: "tables public.a p: indexes differ"); the index is now made ON ONLY
# the parent, and each partition's copy built and attached by name, as pg_dump does
# (create_index.clones_to_attach).
OWN_AND_CLONE = """CREATE TABLE p (k text NOT NULL) PARTITION BY LIST (k);
CREATE TABLE p_y PARTITION OF p FOR VALUES IN ('y');
CREATE TABLE "a p" PARTITION OF p DEFAULT;
"""
PARTITION_OWN_INDEX_CASES: list[tuple[str, str, str]] = [
    ("a parent's new index beside a partition's equal own index",
     OWN_AND_CLONE + 'CREATE INDEX "own" ON "a p" (k); INSERT INTO p VALUES (\'y\'), (\'a\');',
     OWN_AND_CLONE + 'CREATE INDEX p_k ON p (k); CREATE INDEX "own" ON "a p" (k);'),
    ("a new partitioned table with a partition's own index equal to the parent's",
     "CREATE TABLE u (id int);",
     "CREATE TABLE u (id int); CREATE SCHEMA z;"
     + OWN_AND_CLONE.replace(" p (", " z.p (").replace("OF p ", "OF z.p ")
     + 'CREATE INDEX p_k ON z.p (k); CREATE INDEX "own" ON "a p" (k);'),
    # (and the undo of its drop builds it so again)
    ("a parent's index dropped beside a partition's equal own index",
     OWN_AND_CLONE + 'CREATE INDEX p_k ON p (k); CREATE INDEX "own" ON "a p" (k);'
                     " INSERT INTO p VALUES ('y'), ('a');",
     OWN_AND_CLONE + 'CREATE INDEX "own" ON "a p" (k);'),
]
PG_CASES += PARTITION_OWN_INDEX_CASES

# A partitioned table's index made ON ONLY the parent (invalid) where a partition keeps
# an own index under the name its attached copy had (pg-schema-diff's "attach an
# unattached, invalid index", backwards): PostgreSQL detaches no index from its parent,
# so the parent's index is dropped and made ON ONLY again, the copies of the partitions
# the desired schema keeps attached built CONCURRENTLY under their names and attached,
# and the partition's own index built CONCURRENTLY; and back.
ATTACHED = """CREATE SCHEMA "p s"; CREATE TABLE "p s"."Ev" (id int, k text) PARTITION BY LIST (k);
CREATE TABLE "p s".ev_a PARTITION OF "p s"."Ev" FOR VALUES IN ('a');
CREATE TABLE "p s"."Ev B" PARTITION OF "p s"."Ev" FOR VALUES IN ('b');
CREATE TABLE "p s".ev_c PARTITION OF "p s"."Ev" FOR VALUES IN ('c');
CREATE INDEX "Ev k" ON ONLY "p s"."Ev" (k, id);
CREATE INDEX ev_a_k ON "p s".ev_a (k, id); ALTER INDEX "p s"."Ev k" ATTACH PARTITION "p s".ev_a_k;
CREATE INDEX "Ev B k" ON "p s"."Ev B" (k, id);
CREATE INDEX ev_c_k ON "p s".ev_c (k, id);
INSERT INTO "p s"."Ev" VALUES (1, 'a'), (2, 'b'), (3, 'c');
"""
ALL_ATTACHED = ATTACHED + """ALTER INDEX "p s"."Ev k" ATTACH PARTITION "p s"."Ev B k";
ALTER INDEX "p s"."Ev k" ATTACH PARTITION "p s".ev_c_k;"""
PARTITION_DETACH_CASES: list[tuple[str, str, str]] = [
    ("a partition's index the desired schema wants unattached", ALL_ATTACHED, ATTACHED),
    ("a partition's own index attached to its parent's", ATTACHED, ALL_ATTACHED),
    ("a partition's index dropped, its parent's made on the parent only", ALL_ATTACHED,
     ATTACHED.replace('CREATE INDEX "Ev B k" ON "p s"."Ev B" (k, id);\n', "")
     + 'ALTER INDEX "p s"."Ev k" ATTACH PARTITION "p s".ev_c_k;'),
]
# The same of a PRIMARY KEY and a UNIQUE constraint (pg-schema-diff's "add primary key /
# unique constraint to partition using existing index", both ways): the key dropped and
# added again ON ONLY the parent, the copies kept attached added under their names.
KEYS_ON_ONLY = """CREATE SCHEMA "p s"; CREATE TABLE "p s"."Kv" (id int NOT NULL, k text NOT NULL)
  PARTITION BY LIST (k);
CREATE TABLE "p s".kv_a PARTITION OF "p s"."Kv" FOR VALUES IN ('a');
CREATE TABLE "p s"."Kv B" PARTITION OF "p s"."Kv" FOR VALUES IN ('b');
ALTER TABLE ONLY "p s"."Kv" ADD CONSTRAINT "Kv pk" PRIMARY KEY (k, id);
ALTER TABLE ONLY "p s"."Kv" ADD CONSTRAINT kv_u UNIQUE (id, k);
ALTER TABLE "p s".kv_a ADD CONSTRAINT kv_a_pk PRIMARY KEY (k, id);
ALTER INDEX "p s"."Kv pk" ATTACH PARTITION "p s".kv_a_pk;
ALTER TABLE "p s".kv_a ADD CONSTRAINT "kv a u" UNIQUE (id, k);
ALTER INDEX "p s".kv_u ATTACH PARTITION "p s"."kv a u";
CREATE UNIQUE INDEX "Kv B pk" ON "p s"."Kv B" (k, id);
CREATE UNIQUE INDEX "Kv B u" ON "p s"."Kv B" (id, k);
INSERT INTO "p s"."Kv" VALUES (1, 'a'), (2, 'b');
"""
KEYS_ATTACHED = KEYS_ON_ONLY + """ALTER TABLE "p s"."Kv B" ADD CONSTRAINT "Kv B pk"
  PRIMARY KEY USING INDEX "Kv B pk"; ALTER INDEX "p s"."Kv pk" ATTACH PARTITION "p s"."Kv B pk";
ALTER TABLE "p s"."Kv B" ADD CONSTRAINT "Kv B u" UNIQUE USING INDEX "Kv B u";
ALTER INDEX "p s".kv_u ATTACH PARTITION "p s"."Kv B u";"""
PARTITION_DETACH_CASES += [
    ("a partition's keys the desired schema wants unattached", KEYS_ATTACHED, KEYS_ON_ONLY),
    ("a partition's own unique indexes attached as its parent's keys", KEYS_ON_ONLY,
     KEYS_ATTACHED),
]
PG_CASES += PARTITION_DETACH_CASES


@pytest.mark.parametrize("name, from_sql, to_sql", PARTITION_DETACH_CASES,
                         ids=[c[0] for c in PARTITION_DETACH_CASES])
def test_postgres_partition_index_attachments(pg_dsn_factory, name: str, from_sql: str,
                                              to_sql: str) -> None:
    """Which partitions' indexes are attached to their parent's, under which names, is
    not part of the state (Table.clone_names): the apply must still end with the
    desired schema's."""
    from lockplane.dialects import connect

    a, b = pg_dsn_factory(), pg_dsn_factory()
    pg_exec(a, from_sql)
    pg_exec(b, to_sql)
    with connect(b) as db:
        desired = db.introspect()
    from tests.roundtrip import roundtrip_to

    _, result = roundtrip_to(a, desired)
    got = {t.name: t.clone_names for t in result.schema_after.tables}
    assert got == {t.name: t.clone_names for t in desired.tables}

# A partition's own unique index under the name PostgreSQL gives a copy of its parent's
# key (p_2025_pkey), the key added ON ONLY: built from nothing (a shadow copy, a scratch
# load), the parent is created with its key, so the partition made PARTITION OF it gets
# a copy of that name and the own index cannot be created ("relation ... already
# exists"). Known, not fixed yet (issue 16): the key would have to come after the
# partitions' own indexes, or the copy be renamed out of the way.
@pytest.mark.xfail(strict=True, reason="shadow of an ON ONLY key with a partition's own "
                   "index under the copy's default name: 'relation ... already exists'")
def test_postgres_shadow_of_an_on_only_key_beside_a_copy_named_index(pg_dsn_factory) -> None:
    from lockplane.dialects import connect, get_dialect
    from lockplane.execute import materialize

    a = pg_dsn_factory()
    pg_exec(a, """CREATE TABLE p (id int NOT NULL, at int NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE p_2025 PARTITION OF p FOR VALUES FROM (0) TO (100);
CREATE UNIQUE INDEX p_2025_pkey ON p_2025 (id, at);
ALTER TABLE ONLY p ADD CONSTRAINT p_pkey PRIMARY KEY (id, at);""")
    with connect(a) as db:
        live = db.introspect()
    server = a.rsplit("/", 1)[0] + "/postgres"
    with get_dialect("postgres").scratch(server) as shadow:
        materialize(shadow, live)
        assert shadow.introspect().hash() == live.hash()


# An index over a column whose type change rewrites the table, that the plan drops and
# builds again as declared (an expression or a predicate, or a key with its own
# collation, which the server would rebuild from its printed text), is dropped and
# built inside the ALTER's own step: one transaction, never absent (a UNIQUE one never
# unenforced), both ways. One over a binary-coercible change (varchar widened: rx_low in
# the first case) or over two retyped columns (rx_ab) keeps its own steps.
RETYPE_INDEX = """CREATE TABLE rx (id int, u {u}, s {s}, a {a}, b {a});
CREATE UNIQUE INDEX "rx u+1" ON rx ((u + 1)) WHERE u > 0;
CREATE INDEX rx_low ON rx (lower(s)) WHERE s <> '';
CREATE INDEX rx_ab ON rx ((a + b));
"""
RETYPE_INDEX_ROWS = "INSERT INTO rx VALUES (1, 1, 'A', 1, 2), (2, -1, '', 3, 4);"
RETYPE_INDEX_CASES: list[tuple[str, str, str]] = [
    ("indexes with expressions and predicates over retyped columns",
     RETYPE_INDEX.format(u="int", s="varchar(10)", a="int") + RETYPE_INDEX_ROWS,
     RETYPE_INDEX.format(u="bigint", s="varchar(20)", a="bigint")),
    ("indexes with expressions and predicates over retyped columns, back",
     RETYPE_INDEX.format(u="bigint", s="varchar(20)", a="bigint") + RETYPE_INDEX_ROWS,
     RETYPE_INDEX.format(u="int", s="varchar(10)", a="int")),
    ("an expression index over a text column made varchar(10)",
     RETYPE_INDEX.format(u="int", s="text", a="int") + RETYPE_INDEX_ROWS,
     RETYPE_INDEX.format(u="int", s="varchar(10)", a="int")),
    ("a unique expression index over a retyped column changes with it",
     RETYPE_INDEX.format(u="int", s="text", a="int") + RETYPE_INDEX_ROWS,
     RETYPE_INDEX.format(u="bigint", s="text", a="int").replace("(u + 1)", "(u * 2)")),
]
PG_CASES += RETYPE_INDEX_CASES


NEVER_ABSENT = [*RETYPE_INDEX_CASES, *(c for c in PROPERTY_FOUND_CASES if c[0] in (
    "a column takes the collation of an index key that names it",
    "a retyped column under an index with an IN list over varchar"))]


@pytest.mark.parametrize("name, from_sql, to_sql", NEVER_ABSENT,
                         ids=[c[0] for c in NEVER_ABSENT])
def test_postgres_retyped_index_is_never_absent(pg_dsn_factory, name: str, from_sql: str,
                                                to_sql: str) -> None:
    """No step of the lock-safe plan (nor of its rollback) drops an index over one
    retyped column that it builds again: the ALTER's own step does both."""
    from lockplane.dialects import connect
    from lockplane.plan import build_plan, rollback_plan

    a, b = pg_dsn_factory(), pg_dsn_factory()
    pg_exec(a, from_sql)
    pg_exec(b, to_sql)
    with connect(a) as db:
        before = db.introspect()
    with connect(b) as db:
        after = db.introspect()
    plan = build_plan(before, after)
    own_steps = ("rx_ab", "rx_low") if name == RETYPE_INDEX_CASES[0][0] else ("rx_ab",)
    for p in (plan, rollback_plan(plan)):
        alone = [s.description for s in p.steps if s.kind in (
            "drop_index", "create_index", "undo_drop_index", "undo_create_index")
            and not any(f" {ix} " in s.description for ix in own_steps)]
        assert not alone, alone
        retypes = [s for s in p.steps if s.kind in ("alter_column", "undo_alter_column")]
        assert retypes and all(s.transactional for s in retypes)


@pytest.mark.parametrize("name, from_sql, to_sql", PG_CASES, ids=[c[0] for c in PG_CASES])
def test_postgres_roundtrip(pg_dsn_factory, name: str, from_sql: str, to_sql: str) -> None:
    a, b = pg_dsn_factory(), pg_dsn_factory()
    if name in SINCE_15:
        with psycopg.connect(a) as conn:
            if conn.info.server_version < 150000:
                pytest.skip(f"{SINCE_15[name]}: PostgreSQL 15 and later")
    pg_exec(a, from_sql + (DATA_PG if from_sql.startswith(BASE_PG) else ""))
    pg_exec(b, to_sql)
    roundtrip(a, b, shadow=name in ("identical", "hostile identifiers", "multiple schemas"))


# ----------------------------------------------------------------------------------------
# What the server stores equals what was declared (issue 16, item 3). Each desired
# expression is the server's own text (the "to" database is loaded fresh); the plan must
# write it so that the server stores that text again. BASE_PG's rows come along.
STORED_LIB = """CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN short_code AS varchar(8); CREATE DOMAIN label AS text;
CREATE SCHEMA "Util"; CREATE FUNCTION "Util"."Norm"(t text) RETURNS text
  LANGUAGE sql IMMUTABLE RETURN lower(trim(t));
"""
STORED_TABLE = """CREATE TABLE items (id int PRIMARY KEY, status varchar(10), code char(2),
  m mood, sc short_code, lb label, tags varchar(5)[], price numeric(10,2), seen timestamptz,
  name text, doc jsonb{extra});
"""
ITEMS_ROWS = """
INSERT INTO items VALUES (1, 'a', 'x', 'ok', 'k1', 'l', '{t}', 1.5, '2024-01-01', 'n', '{}');
"""


def _items(extra: str = "") -> str:
    return STORED_LIB + STORED_TABLE.replace("{extra}", extra)


STORED_CASES: list[tuple[str, str, str]] = [
    ("IN list over varchar", _items(), _items(", CHECK (status IN ('a', 'b'))")),
    ("NOT IN list over varchar", _items(), _items(", CHECK (status NOT IN ('x', 'y'))")),
    ("IN list over char", _items(), _items(", CHECK (code IN ('x', 'yz'))")),
    ("IN list over an enum", _items(), _items(", CHECK (m IN ('ok', 'happy'))")),
    ("IN list over a varchar domain", _items(), _items(", CHECK (sc IN ('k1', 'k2'))")),
    ("IN list over a text domain", _items(), _items(", CHECK (lb IN ('l', 'm'))")),
    ("IN list replaces another", _items(", CONSTRAINT st CHECK (status IN ('a', 'b'))"),
     _items(", CONSTRAINT st CHECK (status IN ('a', 'b', 'c'))")),
    ("ALL over a cast varchar array", _items(),
     _items(", CHECK (status <> ALL (ARRAY['q', 'r']::varchar[]))")),
    ("casts", _items(), _items(", CHECK (price::int >= 0 AND seen::date > '2000-01-01'"
                               " AND status::varchar(3) <> 'zzz')")),
    ("schema-qualified function", _items(), _items(
        ', CHECK ("Util"."Norm"(name) <> \'\'), CHECK (pg_catalog.length(name) < 50)')),
    ("operators", _items(), _items(", CHECK (doc ? 'k' OR doc @> '{}'), CHECK (name ~* '^n'),"
                                   " CHECK (tags && ARRAY['t']::varchar[])")),
    ("COLLATE", _items(), _items(""", CHECK (status COLLATE "C" > 'A')""")),
    ("default IN-like array", _items(), _items(
        ", other text[] DEFAULT ARRAY['a', 'b']::varchar[]")),
    ("defaults", _items(), _items(", d1 varchar(10) DEFAULT 'x'::text, d2 date DEFAULT"
                                  " (now() AT TIME ZONE 'UTC')::date, d3 text DEFAULT"
                                  ' "Util"."Norm"(\'A\')')),
    ("default changes to an array cast", _items(", other text[] DEFAULT '{}'"),
     _items(", other text[] DEFAULT ARRAY['a']::varchar[]")),
    ("index expressions", _items(), _items() + """
     CREATE INDEX items_norm ON items ("Util"."Norm"(name));
     CREATE INDEX items_low ON items (lower(status::text) COLLATE "C", (price * 2));
     CREATE INDEX items_any ON items ((status = ANY (ARRAY['a', 'b']::varchar[])));"""),
    ("partial index predicates", _items(), _items() + """
     CREATE INDEX items_open ON items (id) WHERE status IN ('a', 'b');
     CREATE UNIQUE INDEX items_m ON items (name) WHERE m IN ('ok') AND sc NOT IN ('z');"""),
    ("generated columns", _items(), _items(
        ", is_open boolean GENERATED ALWAYS AS (status IN ('a', 'b')) STORED,"
        ' norm text GENERATED ALWAYS AS ("Util"."Norm"(name)) STORED')),
    ("view, policy, exclusion and trigger with IN lists", _items(), _items(
        ", during tsrange, EXCLUDE USING gist (during WITH &&) WHERE (status IN ('a', 'b'))")
     + """CREATE VIEW open_items AS SELECT id, status FROM items WHERE status IN ('a', 'b');
     CREATE MATERIALIZED VIEW open_codes AS SELECT id FROM items WHERE sc IN ('k1', 'k2');
     ALTER TABLE items ENABLE ROW LEVEL SECURITY;
     CREATE POLICY only_open ON items USING (status IN ('a', 'b'));
     CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
     CREATE TRIGGER touch_open BEFORE UPDATE ON items FOR EACH ROW
       WHEN (NEW.status IN ('a', 'b')) EXECUTE FUNCTION touch();"""),
    ("domain check with an IN list", _items(), _items().replace(
        "CREATE DOMAIN short_code AS varchar(8);",
        "CREATE DOMAIN short_code AS varchar(8) CHECK (VALUE IN ('k1', 'k2'))"
        " DEFAULT 'k1';")),
]


@pytest.mark.parametrize("name, from_sql, to_sql", STORED_CASES,
                         ids=[c[0] for c in STORED_CASES])
def test_postgres_stored_as_declared(pg_dsn_factory, name: str, from_sql: str,
                                     to_sql: str) -> None:
    a, b = pg_dsn_factory(), pg_dsn_factory()
    pg_exec(a, from_sql + ITEMS_ROWS)
    pg_exec(b, to_sql)
    roundtrip(a, b)


# Indexes on partitions carry the names PostgreSQL gives them; tables a plan creates end
# with exactly their declared privileges; identity bounds and serial-to-identity.
PARTS = """CREATE TABLE events (id bigint NOT NULL, at date NOT NULL, kind text)
  PARTITION BY RANGE (at);
CREATE TABLE "Events 2024" PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
"""
PARTS_ROWS = "INSERT INTO events VALUES (1, '2024-05-01', 'a'), (2, '2025-05-01', NULL);"
GRANTS = """DO $$ BEGIN CREATE ROLE lp_reader NOLOGIN; EXCEPTION WHEN duplicate_object
  OR unique_violation THEN NULL; END $$;
DO $$ BEGIN CREATE ROLE lp_writer NOLOGIN; EXCEPTION WHEN duplicate_object
  OR unique_violation THEN NULL; END $$;
"""
DEFAULT_GRANTS = "ALTER DEFAULT PRIVILEGES GRANT SELECT, INSERT ON TABLES TO lp_reader;"
SERIAL = "CREATE TABLE counters (id serial PRIMARY KEY, label text);"
SERIAL_ROWS = "INSERT INTO counters (label) VALUES ('a'), ('b'), ('c');"
IDENT = ("CREATE TABLE tickets (id int GENERATED BY DEFAULT AS IDENTITY (START WITH 100)"
         " PRIMARY KEY, label text);")
IDENT_ROWS = "INSERT INTO tickets (label) SELECT 'x' FROM generate_series(1, 5);"

SERVER_NAMED_CASES: list[tuple[str, str, str]] = [
    ("index on a partitioned table", PARTS + PARTS_ROWS,
     PARTS + "CREATE INDEX events_kind ON events (kind); CREATE UNIQUE INDEX ON events"
             " (id, at); CREATE INDEX ON events ((lower(kind))) WHERE kind IN ('a', 'b');"),
    ("partitioned table with indexes created", "",
     PARTS + "CREATE INDEX events_kind ON events (kind);"
             " ALTER TABLE events ADD PRIMARY KEY (id, at);"),
    ("partition indexes named by hand, then attached by the parent's", PARTS + PARTS_ROWS,
     PARTS + 'CREATE INDEX "2024 kind" ON "Events 2024" (kind);'
             " CREATE INDEX events_2025_by_kind ON events_2025 (kind);"
             " CREATE INDEX events_kind ON events (kind);"
             ' CREATE UNIQUE INDEX "2024 key" ON "Events 2024" (id, at);'
             " ALTER TABLE events ADD CONSTRAINT events_key PRIMARY KEY (id, at);"),
    ("partition attached under an indexed table",
     PARTS.split('CREATE TABLE "Events 2024"')[0] + "CREATE INDEX events_kind ON events (kind);",
     PARTS + "CREATE INDEX events_kind ON events (kind);"),
    ("created table keeps only declared grants",
     GRANTS + DEFAULT_GRANTS,
     GRANTS + DEFAULT_GRANTS + "CREATE TABLE audit (id int PRIMARY KEY, note text);"
     " REVOKE INSERT ON audit FROM lp_reader; GRANT UPDATE ON audit TO lp_writer;"),
    ("created table without default grants the desired schema dropped",
     GRANTS + DEFAULT_GRANTS,
     GRANTS + "CREATE TABLE audit (id int PRIMARY KEY, note text);"),
    ("created table revokes everything default privileges gave",
     GRANTS + DEFAULT_GRANTS,
     GRANTS + DEFAULT_GRANTS + "CREATE TABLE audit (id int PRIMARY KEY, note text);"
     " REVOKE ALL ON audit FROM lp_reader; CREATE SEQUENCE audit_seq;"
     " REVOKE ALL ON audit_seq FROM lp_reader;"),
    ("created sequence and view keep only declared grants",
     GRANTS + DEFAULT_GRANTS + "ALTER DEFAULT PRIVILEGES GRANT USAGE, SELECT ON SEQUENCES"
     " TO lp_writer WITH GRANT OPTION;",
     GRANTS + DEFAULT_GRANTS + "ALTER DEFAULT PRIVILEGES GRANT USAGE, SELECT ON SEQUENCES"
     " TO lp_writer WITH GRANT OPTION; CREATE SEQUENCE tickets_seq;"
     " REVOKE SELECT ON tickets_seq FROM lp_writer;"
     " REVOKE GRANT OPTION FOR USAGE ON tickets_seq FROM lp_writer;"
     " CREATE VIEW seen AS SELECT 1 AS one; REVOKE INSERT ON seen FROM lp_reader;"),
    ("serial to identity keeps the sequence's name", SERIAL + SERIAL_ROWS,
     "CREATE TABLE counters (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
     " label text);"),
    ("identity bounds tightened below the last value", IDENT + IDENT_ROWS,
     IDENT.replace("(START WITH 100)", "(START WITH 1 MAXVALUE 50)")),
    ("identity bounds raised above the last value", IDENT + IDENT_ROWS,
     IDENT.replace("(START WITH 100)", "(START WITH 1000 MINVALUE 1000)")),
]


@pytest.mark.parametrize("serial_first", [True, False], ids=["serial to identity",
                                                           "identity to serial"])
def test_postgres_serial_identity_keeps_sequence(pg_dsn_factory, serial_first: bool) -> None:
    """The sequence's name and value survive serial <-> identity, both ways (the catalog
    comparison cannot see either: the model keeps no identity sequence name or value)."""
    from lockplane.dialects import connect
    from lockplane.execute import ApplyOptions, apply_plan
    from lockplane.plan import build_plan, rollback_plan

    # (rows change no hash: the rollback applies after the inserts)
    serial = "CREATE TABLE counters (id serial PRIMARY KEY, label text);"
    ident = ("CREATE TABLE counters (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
             " label text);")
    a, b = pg_dsn_factory(), pg_dsn_factory()
    pg_exec(a, (serial if serial_first else ident)
            + "INSERT INTO counters (label) VALUES ('a'), ('b'), ('c');")
    pg_exec(b, ident if serial_first else serial)

    def next_row(label: str) -> tuple[str, int]:
        with psycopg.connect(a, autocommit=True) as conn:
            seq = conn.execute("SELECT pg_get_serial_sequence('counters', 'id')").fetchone()
            row = conn.execute("INSERT INTO counters (label) VALUES (%s) RETURNING id",
                               (label,)).fetchone()
        assert seq is not None and row is not None
        return seq[0], row[0]

    with connect(a) as db:
        before = db.introspect()
    with connect(b) as db:
        plan = build_plan(before, db.introspect())
    opts = ApplyOptions(safety="permissive", skip_shadow=True)
    apply_plan(plan, a, opts)
    assert next_row("d") == ("public.counters_id_seq", 4)
    apply_plan(rollback_plan(plan), a, opts)
    assert next_row("e") == ("public.counters_id_seq", 5)
    with connect(a) as db:
        assert db.introspect().hash() == before.hash()


@pytest.mark.parametrize("name, from_sql, to_sql", SERVER_NAMED_CASES,
                         ids=[c[0] for c in SERVER_NAMED_CASES])
def test_postgres_server_named_and_granted(pg_dsn_factory, name: str, from_sql: str,
                                           to_sql: str) -> None:
    a, b = pg_dsn_factory(), pg_dsn_factory()
    if from_sql:
        pg_exec(a, from_sql)
    pg_exec(b, to_sql)
    roundtrip(a, b)


BASE_SQLITE = """
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL, nick VARCHAR(20),
                    score REAL DEFAULT 0);
CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users (id),
                    title TEXT NOT NULL, body TEXT);
CREATE INDEX posts_user ON posts (user_id);
"""
DATA_SQLITE = """
INSERT INTO users VALUES (1, 'a@x', 'a', 1.5), (2, 'b@x', NULL, 2), (3, 'c@x', 'c', NULL);
INSERT INTO posts VALUES (10, 1, 't1', 'b1'), (11, 2, 't2', NULL), (12, NULL, 't3', 'b3');
"""

SQLITE_CASES: list[tuple[str, str]] = [
    ("identical", BASE_SQLITE),
    ("add column", BASE_SQLITE.replace("body TEXT)", "body TEXT, tags TEXT)")),
    ("add not null default", BASE_SQLITE.replace("body TEXT)",
                                                 "body TEXT, pub INTEGER NOT NULL DEFAULT 0)")),
    ("drop column", BASE_SQLITE.replace(", body TEXT)", ")")),
    ("change type", BASE_SQLITE.replace("nick VARCHAR(20)", "nick TEXT")),
    ("add unique", BASE_SQLITE.replace("email TEXT NOT NULL", "email TEXT NOT NULL UNIQUE")),
    ("add check", BASE_SQLITE.replace("title TEXT NOT NULL",
                                      "title TEXT NOT NULL CHECK (length(title) > 0)")),
    ("fk on delete", BASE_SQLITE.replace("REFERENCES users (id)",
                                         "REFERENCES users (id) ON DELETE CASCADE")),
    ("partial index", BASE_SQLITE + "CREATE INDEX users_nick ON users (nick) "
     "WHERE nick IS NOT NULL; CREATE INDEX users_lower ON users (lower(email));"),
    ("hostile", BASE_SQLITE + '''CREATE TABLE "Weird ""Name""" ("select" INTEGER PRIMARY KEY,
       "semi;colon" TEXT, "with space" TEXT DEFAULT 'it''s');
       CREATE INDEX "idx; DROP" ON "Weird ""Name""" ("semi;colon");'''),
    ("view and trigger", BASE_SQLITE + """CREATE VIEW user_emails AS SELECT id, email FROM users;
       CREATE TRIGGER posts_touch AFTER INSERT ON posts BEGIN
         UPDATE users SET score = coalesce(score, 0) + 1 WHERE id = NEW.user_id; END;"""),
    # Found by test_roundtrip_hypothesis: ADD COLUMN refuses CURRENT_TIMESTAMP on a table
    # with rows ("non-constant default"), like a parenthesized expression: rebuild.
    ("add column default current_timestamp", BASE_SQLITE.replace(
        "body TEXT)", "body TEXT, created TEXT DEFAULT CURRENT_TIMESTAMP)")),
    # ... and an expression default, which the pragma reports without its parentheses.
    ("add column expression default", BASE_SQLITE.replace(
        "body TEXT)", "body TEXT, n INTEGER DEFAULT (1 + 2) NOT NULL)")),
    # Table options and generated-column kinds a rebuild used to lose. The rollback of
    # each case is the opposite change (drop AUTOINCREMENT, ...).
    ("add autoincrement", BASE_SQLITE.replace("users (id INTEGER PRIMARY KEY,",
                                              "users (id INTEGER PRIMARY KEY AUTOINCREMENT,")),
    ("add virtual generated column", BASE_SQLITE.replace(
        "body TEXT)", "body TEXT, title_len INT GENERATED ALWAYS AS (length(title)) VIRTUAL)")),
]

COUNTERS = ("CREATE TABLE counters (id INTEGER PRIMARY KEY AUTOINCREMENT, label TEXT NOT NULL, "
            "n INT);")
COUNTERS_DATA = """INSERT INTO counters (label, n) VALUES ('a', 1), ('b', 2), ('c', NULL), ('d', 4);
DELETE FROM counters WHERE id = 4;"""
KV = "CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL, n INTEGER) WITHOUT ROWID;"
KV_DATA = "INSERT INTO kv VALUES ('a', 'x', 1), ('b', 'y', NULL), ('c', 'z', 3);"
TYPED = "CREATE TABLE typed (id INTEGER PRIMARY KEY, n INTEGER NOT NULL, t TEXT, r REAL) STRICT;"
TYPED_DATA = "INSERT INTO typed VALUES (1, 10, 'a', 1.5), (2, 20, NULL, NULL), (5, 50, 'e', 2);"
GEN = """CREATE TABLE gen (id INTEGER PRIMARY KEY, b INT NOT NULL, t TEXT,
  v INT GENERATED ALWAYS AS (b * 2) VIRTUAL, s INT GENERATED ALWAYS AS (b * 3) STORED);"""
GEN_DATA = "INSERT INTO gen (id, b, t) VALUES (1, 1, 'a'), (2, 2, NULL), (7, 7, 'g');"

# (name, from-script with its rows, to-script): cases that start from another table.
STACKED_VIEWS = """CREATE TABLE t (a INTEGER); CREATE TABLE u (x INTEGER);
CREATE VIEW v1 AS SELECT a FROM t;
CREATE VIEW "V 2" AS SELECT a FROM "v1" WHERE a > 0;
"""

SQLITE_PAIR_CASES: list[tuple[str, str, str]] = [
    ("drop autoincrement", COUNTERS + COUNTERS_DATA, COUNTERS.replace(" AUTOINCREMENT", "")),
    ("rebuild keeps autoincrement", COUNTERS + COUNTERS_DATA,
     COUNTERS.replace("label TEXT NOT NULL", "label TEXT")),
    ("rebuild keeps without rowid", KV + KV_DATA, KV.replace("v TEXT NOT NULL", "v TEXT")),
    ("add without rowid", KV.replace(" WITHOUT ROWID", "") + KV_DATA, KV),
    # From a table whose rowid is its only identity (copied by a plain rebuild) to one
    # without any: the rowid must not be copied there.
    ("add key and without rowid", KV.replace(" PRIMARY KEY", "").replace(" WITHOUT ROWID", "")
     + KV_DATA, KV),
    ("rebuild keeps strict", TYPED + TYPED_DATA, TYPED.replace("n INTEGER NOT NULL",
                                                              "n INTEGER")),
    ("add strict", TYPED.replace(" STRICT", "") + TYPED_DATA, TYPED),
    ("strict and without rowid", TYPED + TYPED_DATA,
     TYPED.replace(" STRICT", " WITHOUT ROWID, STRICT")),
    ("rebuild keeps virtual generated column", GEN + GEN_DATA,
     GEN.replace("b INT NOT NULL", "b INT")),
    ("virtual to stored", GEN + GEN_DATA,
     GEN.replace("(b * 2) VIRTUAL", "(b * 2) STORED")),
    ("stored to virtual and back", GEN + GEN_DATA,
     GEN.replace("(b * 3) STORED", "(b * 3)")),  # SQLite's default kind is VIRTUAL
    # A view recreated under a view that reads it: SQLite keeps no dependencies, and the
    # rollback's DROP COLUMN re-checks every view ("error in view v2: no such table:
    # main.v1") unless v2 went and came back with v1 (found by hypothesis).
    ("view under a view",
     STACKED_VIEWS + "INSERT INTO t VALUES (1), (NULL); INSERT INTO u VALUES (5);",
     STACKED_VIEWS.replace(
        "CREATE TABLE u (x INTEGER);", "CREATE TABLE u (x INTEGER, y INTEGER);").replace(
        "SELECT a FROM t;", "SELECT a FROM t WHERE a IS NOT NULL;")),
]


@pytest.mark.parametrize("name, to_sql", SQLITE_CASES, ids=[c[0] for c in SQLITE_CASES])
def test_sqlite_roundtrip(tmp_path: Path, name: str, to_sql: str) -> None:
    a = sqlite_db(tmp_path, "a", BASE_SQLITE + DATA_SQLITE)
    b = sqlite_db(tmp_path, "b", to_sql)
    roundtrip(a, b, shadow=name == "hostile")


@pytest.mark.parametrize("name, from_sql, to_sql", SQLITE_PAIR_CASES,
                         ids=[c[0] for c in SQLITE_PAIR_CASES])
def test_sqlite_roundtrip_pairs(tmp_path: Path, name: str, from_sql: str, to_sql: str) -> None:
    a = sqlite_db(tmp_path, "a", from_sql)
    b = sqlite_db(tmp_path, "b", to_sql)
    roundtrip(a, b, shadow=name == "strict and without rowid")


# ----------------------------------------------------------------------------------------
# Dependency order from the server (issue 16, item 1): creations follow the desired
# schema's pg_depend, drops the live one's (reversed), the kind order only breaks ties.
# Names sort so that the kind-and-name order alone would get each case wrong.
DEP_LIB = 'CREATE SCHEMA "Z Lib";'
FUNCTION_CHAIN = '''
CREATE FUNCTION "Z Lib".z_base(x int) RETURNS int LANGUAGE sql IMMUTABLE RETURN x * 2;
CREATE FUNCTION public.a_top(x int) RETURNS int LANGUAGE sql IMMUTABLE
  BEGIN ATOMIC SELECT "Z Lib".z_base(x) + public.b_mid(x); END;
'''.replace("CREATE FUNCTION public.a_top", """CREATE FUNCTION public.b_mid(x int) RETURNS int
  LANGUAGE sql IMMUTABLE RETURN "Z Lib".z_base(x) + 1;
CREATE FUNCTION public.a_top""")
DEP_CASES: list[tuple[str, str, str]] = [
    ("function calls function (SQL-standard and plpgsql)", BASE_PG, BASE_PG + DEP_LIB + '''
     CREATE FUNCTION "Z Lib"."Add One"(x int) RETURNS int LANGUAGE sql IMMUTABLE
       RETURN x + 1;
     CREATE FUNCTION public."a Two"(x int) RETURNS int LANGUAGE sql IMMUTABLE
       BEGIN ATOMIC SELECT "Z Lib"."Add One"("Z Lib"."Add One"(x)); END;
     CREATE FUNCTION public.a_three(x int) RETURNS int LANGUAGE plpgsql
       AS $$ BEGIN RETURN "a Two"(x) + 1; END $$;
     CREATE FUNCTION public.a_four(x int) RETURNS int LANGUAGE sql
       AS $$ SELECT public.a_three(x) + 1 $$;'''),
    ("domain check calls a function", BASE_PG, BASE_PG + DEP_LIB + '''
     CREATE FUNCTION "Z Lib".is_positive(n int) RETURNS boolean LANGUAGE sql IMMUTABLE
       RETURN n > 0;
     CREATE DOMAIN "A Pos" AS int CHECK ("Z Lib".is_positive(VALUE));
     CREATE TABLE amounts (id int PRIMARY KEY, v "A Pos");'''),
    ("function over row and composite types", BASE_PG, BASE_PG + DEP_LIB + '''
     CREATE TYPE "Z Lib"."Pair" AS (a int, b int);
     CREATE FUNCTION public.a_swap(p "Z Lib"."Pair") RETURNS "Z Lib"."Pair"
       LANGUAGE sql IMMUTABLE RETURN ROW(p.b, p.a)::"Z Lib"."Pair";
     CREATE FUNCTION public.a_first() RETURNS users LANGUAGE sql STABLE
       BEGIN ATOMIC SELECT * FROM users ORDER BY id LIMIT 1; END;
     CREATE TABLE "Z Lib".zz (id int PRIMARY KEY, n int);
     CREATE FUNCTION public.a_n(r "Z Lib".zz) RETURNS int LANGUAGE sql RETURN r.n;
     CREATE VIEW "Z Lib"."V" AS SELECT id, n FROM "Z Lib".zz;
     CREATE FUNCTION public.a_from_view() RETURNS SETOF "Z Lib"."V" LANGUAGE sql
       BEGIN ATOMIC SELECT * FROM "Z Lib"."V"; END;'''),
    ("view over a function", BASE_PG, BASE_PG + DEP_LIB + '''
     CREATE FUNCTION "Z Lib"."Label"(u users) RETURNS text LANGUAGE sql STABLE
       RETURN u.email || '!';
     CREATE VIEW public."A Labels" AS SELECT "Z Lib"."Label"(u) AS l FROM users u;
     CREATE MATERIALIZED VIEW public.a_mat AS SELECT l FROM public."A Labels";'''),
    ("change a function others depend on", BASE_PG + DEP_LIB + '''
     CREATE FUNCTION "Z Lib".zf(x int) RETURNS int LANGUAGE sql IMMUTABLE RETURN x + 1;
     CREATE FUNCTION public.a_g(x int) RETURNS int LANGUAGE sql IMMUTABLE
       BEGIN ATOMIC SELECT "Z Lib".zf(x) * 2; END;
     CREATE VIEW public.a_v AS SELECT "Z Lib".zf(id) AS f FROM users;''',
     BASE_PG + DEP_LIB + '''
     CREATE FUNCTION "Z Lib".zf(x int) RETURNS bigint LANGUAGE sql IMMUTABLE RETURN x + 2;
     CREATE FUNCTION public.a_g(x int) RETURNS bigint LANGUAGE sql IMMUTABLE
       BEGIN ATOMIC SELECT "Z Lib".zf(x) * 2; END;
     CREATE VIEW public.a_v AS SELECT "Z Lib".zf(id) AS f FROM users;'''),
    ("drop functions others no longer need", BASE_PG + DEP_LIB + '''
     CREATE FUNCTION public.a_base(x int) RETURNS int LANGUAGE sql IMMUTABLE RETURN x;
     CREATE FUNCTION "Z Lib".z_mid(x int) RETURNS int LANGUAGE sql IMMUTABLE
       RETURN public.a_base(x);
     CREATE FUNCTION public.b_top(x int) RETURNS int LANGUAGE sql IMMUTABLE
       BEGIN ATOMIC SELECT "Z Lib".z_mid(x); END;
     CREATE FUNCTION public.c_keep(x int) RETURNS int LANGUAGE sql IMMUTABLE
       RETURN public.a_base(x) + 1;''',
     BASE_PG + DEP_LIB + '''
     CREATE FUNCTION public.c_keep(x int) RETURNS int LANGUAGE sql IMMUTABLE
       RETURN x + 1;'''),
    # The shadow copy of the target is built from its own schema: before dependency order
    # it could not be (a_top before the functions it calls), whatever the change.
    ("unrelated change to a target whose functions call each other",
     BASE_PG + DEP_LIB + FUNCTION_CHAIN, BASE_PG.replace("body text)", "body text, n int)")
     + DEP_LIB + FUNCTION_CHAIN),
    ("materialized view over a recreated table",
     BASE_PG + '''CREATE TABLE m (id int NOT NULL, at date NOT NULL);
     CREATE MATERIALIZED VIEW m_count AS SELECT count(*) AS n FROM m;''',
     BASE_PG + '''CREATE TABLE m (id int NOT NULL, at date NOT NULL) PARTITION BY RANGE (at);
     CREATE TABLE m_2024 PARTITION OF m FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
     CREATE MATERIALIZED VIEW m_count AS SELECT count(*) AS n FROM m;'''),
    ("partitioned primary key over existing partition indexes",
     BASE_PG + '''CREATE TABLE pt (id int NOT NULL, at date NOT NULL) PARTITION BY RANGE (at);
     CREATE TABLE pt_2024 PARTITION OF pt FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
     CREATE UNIQUE INDEX pt_2024_id_at ON pt_2024 (id, at);
     INSERT INTO pt VALUES (1, '2024-02-02');''',
     BASE_PG + '''CREATE TABLE pt (id int NOT NULL, at date NOT NULL, PRIMARY KEY (id, at))
       PARTITION BY RANGE (at);
     CREATE TABLE pt_2024 PARTITION OF pt FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
     CREATE UNIQUE INDEX pt_2024_id_at ON pt_2024 (id, at);'''),
    ("recreated table keeps its serial sequence",
     BASE_PG + "CREATE TABLE s (id serial, at date NOT NULL);",
     BASE_PG + '''CREATE TABLE s (id serial, at date NOT NULL) PARTITION BY RANGE (at);
     CREATE TABLE s_2024 PARTITION OF s FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');'''),
    ("renamed table keeps its constraint and index names",
     BASE_PG + '''CREATE TABLE old_t (id int CONSTRAINT keep_pk PRIMARY KEY,
       code text CONSTRAINT keep_code UNIQUE, CONSTRAINT keep_ck CHECK (id > 0));
     CREATE INDEX keep_ix ON old_t (code, id);''',
     BASE_PG + '''CREATE TABLE new_t (id int CONSTRAINT keep_pk PRIMARY KEY,
       code text CONSTRAINT keep_code UNIQUE, CONSTRAINT keep_ck CHECK (id > 0));
     CREATE INDEX keep_ix ON new_t (code, id);'''),
]


@pytest.mark.parametrize("name, from_sql, to_sql", DEP_CASES, ids=[c[0] for c in DEP_CASES])
def test_postgres_dependency_order(pg_dsn_factory, name: str, from_sql: str,
                                   to_sql: str) -> None:
    a, b = pg_dsn_factory(), pg_dsn_factory()
    pg_exec(a, from_sql + (DATA_PG if from_sql.startswith(BASE_PG) else ""))
    pg_exec(b, to_sql)
    # The shadow copy of the target is built too: it must follow the same order.
    roundtrip(a, b, shadow=True)


def test_dependency_graph_is_read_and_left_out_of_the_hash(pg_dsn) -> None:
    """The graph orders steps only: a schema without it (from its JSON) hashes the same."""
    from lockplane.dialects import connect
    from lockplane.model import Schema

    pg_exec(pg_dsn, BASE_PG + DEP_LIB + FUNCTION_CHAIN)
    with connect(pg_dsn) as db:
        live = db.introspect()
    assert (("function", "public", "a_top", "x integer"),
            ("function", "public", "b_mid", "x integer")) in live.dependencies
    assert (("function", "public", "b_mid", "x integer"),
            ("function", "Z Lib", "z_base", "x integer")) in live.dependencies
    assert (("relation", "public", "posts", ""),
            ("relation", "public", "users", "")) not in live.dependencies  # (FKs: steps)
    again = Schema.model_validate_json(live.to_json())
    assert not again.dependencies and again.hash() == live.hash()
    assert "dependencies" not in live.to_json()


# Found by test_histories: a declared rename changes how the server prints what names the
# renamed table or column (a trigger's UPDATE OF and WHEN, a policy, a view, which keeps
# a renamed column's old name as its output name, an SQL-standard function body). The
# server does that itself: no step may redo it, or its undo runs before the rename's undo
# and names what is not there yet.
RENAMED_DEPENDENTS = """CREATE TABLE {t} (id int PRIMARY KEY, {c} text);
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER touch BEFORE UPDATE OF {c} ON {t} FOR EACH ROW
  WHEN (NEW.{c} IS DISTINCT FROM OLD.{c}) EXECUTE FUNCTION touch();
ALTER TABLE {t} ENABLE ROW LEVEL SECURITY;
CREATE POLICY visible ON {t} USING ({c} <> 'hidden');
CREATE VIEW shown AS SELECT id FROM {t} WHERE id > 0;
CREATE VIEW texts AS SELECT x.id, x.{c} AS body FROM {t} x WHERE x.{c} IS NOT NULL;
CREATE FUNCTION longest() RETURNS int LANGUAGE sql STABLE
  BEGIN ATOMIC SELECT max(length({c})) FROM {t}; END;
"""


def test_postgres_rename_with_dependents(pg_dsn_factory) -> None:
    from lockplane.dialects import connect
    from tests.roundtrip import roundtrip_to

    a, b = pg_dsn_factory(), pg_dsn_factory()
    pg_exec(a, RENAMED_DEPENDENTS.format(t="steps", c="body")
            + "INSERT INTO steps VALUES (1, 'x'), (2, NULL);")
    pg_exec(b, RENAMED_DEPENDENTS.format(t="run_steps", c="content"))
    with connect(b) as db:
        desired = db.introspect()
    t = desired.table("public", "run_steps")
    assert t is not None
    t.renamed_from = "steps"
    col = t.column("content")
    assert col is not None
    col.renamed_from = "body"
    plan, _ = roundtrip_to(a, desired)
    # renames only (the table, its column, its primary key named after it)
    assert all(s.description.startswith("Rename ") for s in plan.steps), plan.steps


# Issue 16: after declared renames, the server prints a view over a renamed column with
# the column's new name and its old name kept as the output name ("bytes AS size"). A
# view the plan changes anyway is dropped before the renames, so that its undo (created
# as it was, in the server's own printed form) comes after the renames are undone; so
# are an SQL-standard routine, a policy and a trigger.
# (name, from, to, renames as {table: old table or None, "table.column": old column})
RENAME_VIEW_BASE = "CREATE TABLE {t} (id int PRIMARY KEY, {c} {ty});\n"
RENAME_POLICIES = """ALTER TABLE {t} ENABLE ROW LEVEL SECURITY;
CREATE POLICY "big; only" ON {t} USING ({c} > {n});
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER "Touch" BEFORE UPDATE OF {c} ON {t} FOR EACH ROW
  WHEN (NEW.{c} > {n}) EXECUTE FUNCTION touch();
CREATE TABLE notes (id int, file_id int);
ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY seen ON notes USING (EXISTS (SELECT FROM {t} f WHERE f.id = file_id
  AND f.{c} > {n}));
"""
RENAMED_PARTS = """CREATE TABLE ev (id int NOT NULL, at int NOT NULL, {c} {t})
  PARTITION BY RANGE (at);
CREATE TABLE ev_lo PARTITION OF ev FOR VALUES FROM (MINVALUE) TO (10);
CREATE TABLE "ev hi" PARTITION OF ev FOR VALUES FROM (10) TO (MAXVALUE);
CREATE INDEX ON "ev hi" ({c}) WHERE {c} > 0;
CREATE TABLE base (id int, {c} {t} CHECK ({c} > 0));
CREATE TABLE kid () INHERITS (base);
CREATE INDEX ON kid ({c});
CREATE FUNCTION lo_total() RETURNS numeric LANGUAGE sql STABLE
  BEGIN ATOMIC SELECT sum({c}) FROM ev_lo; END;
CREATE FUNCTION kid_max() RETURNS {t} LANGUAGE sql STABLE RETURN (SELECT max({c}) FROM kid);
CREATE VIEW hi AS SELECT id, {c} FROM "ev hi";
"""
RENAME_VIEW_CASES: list[tuple[str, str, str, dict[str, str]]] = [
    ("a view selecting a renamed column under its new name",
     RENAME_VIEW_BASE.format(t="files", c="size", ty="bigint")
     + "CREATE VIEW big AS SELECT id, size FROM files WHERE size > 10;",
     RENAME_VIEW_BASE.format(t="files", c="bytes", ty="bigint")
     + "CREATE VIEW big AS SELECT id, bytes FROM files WHERE bytes > 10;",
     {"files.bytes": "size"}),
    ("a view keeping the old output name with another filter",
     RENAME_VIEW_BASE.format(t="files", c="size", ty="bigint")
     + "CREATE VIEW big AS SELECT id, size FROM files WHERE size > 10;",
     RENAME_VIEW_BASE.format(t="files", c="bytes", ty="bigint")
     + "CREATE VIEW big AS SELECT id, bytes AS size FROM files WHERE bytes > 20;",
     {"files.bytes": "size"}),
    ("renamed table and column under a view, a view over it and a materialized view",
     RENAME_VIEW_BASE.format(t="files", c="size", ty="bigint")
     + """CREATE VIEW big AS SELECT id, size FROM files WHERE size > 10;
     CREATE VIEW "Big Count" AS SELECT count(*) AS n, max(size) FROM big;
     CREATE MATERIALIZED VIEW sizes AS SELECT size FROM files;
     CREATE VIEW everything AS SELECT * FROM files;""",
     RENAME_VIEW_BASE.format(t="docs", c="bytes", ty="bigint")
     + """CREATE VIEW big AS SELECT id, bytes FROM docs WHERE bytes > 10;
     CREATE VIEW "Big Count" AS SELECT count(*) AS n, max(bytes) FROM big;
     CREATE MATERIALIZED VIEW sizes AS SELECT bytes FROM docs;
     CREATE VIEW everything AS SELECT * FROM docs;""",
     {"docs": "files", "docs.bytes": "size"}),
    ("a renamed and retyped column under a view that keeps its output name",
     RENAME_VIEW_BASE.format(t="files", c="size", ty="int")
     + "CREATE VIEW big AS SELECT id, size FROM files WHERE size > 10;",
     RENAME_VIEW_BASE.format(t="files", c="bytes", ty="bigint")
     + "CREATE VIEW big AS SELECT id, bytes AS size FROM files WHERE bytes > 10;",
     {"files.bytes": "size"}),
    ("a renamed table under a changed view",
     RENAME_VIEW_BASE.format(t="files", c="size", ty="bigint")
     + "CREATE VIEW n AS SELECT count(*) AS n FROM files;",
     RENAME_VIEW_BASE.format(t="docs", c="size", ty="bigint")
     + "CREATE VIEW n AS SELECT count(*) AS n FROM docs WHERE id > 0;",
     {"docs": "files"}),
    ("a renamed column under a changed SQL-standard function and a view over it",
     RENAME_VIEW_BASE.format(t="files", c="size", ty="bigint")
     + """CREATE FUNCTION total() RETURNS bigint LANGUAGE sql STABLE
       BEGIN ATOMIC SELECT sum(size) FROM files; END;
     CREATE FUNCTION "Big"(n int) RETURNS SETOF files LANGUAGE sql STABLE
       RETURN (SELECT f FROM files f WHERE size > n);
     CREATE VIEW t AS SELECT total() AS total;""",
     RENAME_VIEW_BASE.format(t="files", c="bytes", ty="bigint")
     + """CREATE FUNCTION total() RETURNS bigint LANGUAGE sql STABLE
       BEGIN ATOMIC SELECT sum(bytes) FROM files WHERE bytes > 0; END;
     CREATE FUNCTION "Big"(n bigint) RETURNS SETOF files LANGUAGE sql STABLE
       RETURN (SELECT f FROM files f WHERE bytes > n);
     CREATE VIEW t AS SELECT total() AS total;""",
     {"files.bytes": "size"}),
    ("changed policies and trigger over a renamed table and column",
     RENAME_VIEW_BASE.format(t="files", c="size", ty="bigint") + RENAME_POLICIES.format(
         t="files", c="size", n=0),
     RENAME_VIEW_BASE.format(t="docs", c="bytes", ty="bigint") + RENAME_POLICIES.format(
         t="docs", c="bytes", n=10),
     {"docs": "files", "docs.bytes": "size"}),
    # The server renames a parent's column in every partition and INHERITS child too:
    # what reads a child's column reads a renamed one (and a retype goes under it too).
    ("a column renamed under readers of its partitions",
     RENAME_VIEW_BASE.format(t="files", c="size", ty="bigint")
     + RENAMED_PARTS.format(c="v", t="int"),
     RENAME_VIEW_BASE.format(t="files", c="size", ty="bigint")
     + RENAMED_PARTS.format(c="w", t="int"), {"ev.w": "v", "base.w": "v"}),
    ("a column renamed and retyped under readers of its partitions",
     RENAME_VIEW_BASE.format(t="files", c="size", ty="bigint")
     + RENAMED_PARTS.format(c="v", t="int"),
     RENAME_VIEW_BASE.format(t="files", c="size", ty="bigint")
     + RENAMED_PARTS.format(c="w", t="bigint"), {"ev.w": "v", "base.w": "v"}),
    # PostgreSQL 18 names NOT NULL constraints (<table>_<column>_not_null) and renames
    # none of them with their table or column: a history that renames both keeps the old
    # names (graphile-worker's jobs -> _private_jobs). Before 18 the names are ignored.
    ("a renamed table and column that keep their NOT NULL constraints' names",
     RENAME_VIEW_BASE.format(t="files", c="size", ty="bigint NOT NULL")
     + "CREATE TABLE other (n int NOT NULL, m int NOT NULL);",
     """CREATE TABLE docs (id int CONSTRAINT files_id_not_null NOT NULL PRIMARY KEY,
       bytes bigint CONSTRAINT files_size_not_null NOT NULL);
     CREATE TABLE other (n int NOT NULL, k int CONSTRAINT other_m_not_null NOT NULL);""",
     {"docs": "files", "docs.bytes": "size", "other.k": "m"}),
]


@pytest.mark.parametrize("name, from_sql, to_sql, renames", RENAME_VIEW_CASES,
                         ids=[c[0] for c in RENAME_VIEW_CASES])
def test_postgres_rename_under_changed_views(pg_dsn_factory, name: str, from_sql: str,
                                             to_sql: str, renames: dict[str, str]) -> None:
    from lockplane.dialects import connect
    from tests.roundtrip import roundtrip_to

    a, b = pg_dsn_factory(), pg_dsn_factory()
    pg_exec(a, from_sql + "INSERT INTO files VALUES (1, 5), (2, 50);")
    pg_exec(b, to_sql)
    with connect(b) as db:
        desired = db.introspect()
    for new, old in renames.items():
        table, _, column = new.partition(".")
        t = desired.table("public", table)
        assert t is not None
        if not column:
            t.renamed_from = old
            continue
        col = t.column(column)
        assert col is not None
        col.renamed_from = old
    roundtrip_to(a, desired, shadow=True)


def test_postgres_renamed_table_s_not_null_name_that_the_new_name_derives(
        pg_dsn_factory) -> None:
    """(PostgreSQL 18) A NOT NULL constraint named what the renamed table derives is no
    change: no step for it, and the round trip is exact. Before 18 the names are ignored."""
    from lockplane.dialects import connect
    from tests.roundtrip import roundtrip_to

    a, b = pg_dsn_factory(), pg_dsn_factory()
    pg_exec(a, "CREATE TABLE files (id int PRIMARY KEY, size bigint CONSTRAINT"
               " docs_size_not_null NOT NULL); INSERT INTO files VALUES (1, 5);")
    pg_exec(b, "CREATE TABLE docs (id int PRIMARY KEY, size bigint NOT NULL);")
    with connect(b) as db:
        desired = db.introspect()
    t = desired.table("public", "docs")
    assert t is not None
    t.renamed_from = "files"
    plan, _ = roundtrip_to(a, desired, shadow=True)
    assert "alter_column" not in [s.kind for s in plan.steps], plan.steps


RENAMED_ALL = """CREATE TYPE st AS ENUM ('queued', '{done}');
CREATE TABLE {t} (id int PRIMARY KEY, {c} st NOT NULL DEFAULT 'queued');
CREATE VIEW finished AS SELECT id, {c} FROM {t} WHERE {c} = '{done}'{extra};
CREATE MATERIALIZED VIEW counts AS SELECT {c}, count(*) FROM {t} GROUP BY {c};
CREATE FUNCTION n_done() RETURNS bigint LANGUAGE sql STABLE
  BEGIN ATOMIC SELECT count(*) FROM {t} WHERE {c} = '{done}'{extra}; END;
"""


def test_postgres_renamed_table_column_and_enum_value_under_views(pg_dsn_factory) -> None:
    """Every kind of declared rename at once (a table, its column, an enum value), under
    changed views and routines and a materialized view the server prints anew."""
    from lockplane.dialects import connect
    from tests.roundtrip import roundtrip_to

    a, b = pg_dsn_factory(), pg_dsn_factory()
    pg_exec(a, RENAMED_ALL.format(t="jobs", c="state", done="done", extra="")
            + "INSERT INTO jobs VALUES (1, 'done'), (2, 'queued');")
    pg_exec(b, RENAMED_ALL.format(t="tasks", c="status", done="succeeded",
                                  extra=" AND id > 0"))
    with connect(b) as db:
        desired = db.introspect()
    t = desired.table("public", "tasks")
    col = t.column("status") if t is not None else None
    assert t is not None and col is not None
    t.renamed_from, col.renamed_from = "jobs", "state"
    desired.enums[0].values_renamed_from = {"succeeded": "done"}
    plan, _ = roundtrip_to(a, desired, shadow=True)
    # (on 18 the NOT NULL constraints of id and status, named after the old table and
    # column, are renamed too)
    nn = 2 if (plan.server_major or 0) >= 18 else 0
    assert [s.kind for s in plan.steps if s.kind.startswith("rename")] == [
        "rename_enum_value", "rename_table", "rename_column", "rename_constraint"] + [
        "rename_constraint"] * nn

def test_postgres_rename_under_a_routine_a_default_uses(pg_dsn_factory) -> None:
    """A routine reading a renamed column that a column default and a CHECK use cannot be
    dropped before the renames (no step drops those first): it is written again as it
    is before them (the undo of that puts its old text back once they are undone) and
    replaced after them."""
    from lockplane.dialects import connect
    from tests.roundtrip import roundtrip_to

    held = """CREATE TABLE files (id int PRIMARY KEY, {c} bigint);
CREATE FUNCTION total() RETURNS bigint LANGUAGE sql STABLE
  BEGIN ATOMIC SELECT coalesce(sum({c}), 0) FROM files{w}; END;
CREATE TABLE other (id int, t bigint DEFAULT total(), CHECK (total() > -1));"""
    a, b = pg_dsn_factory(), pg_dsn_factory()
    pg_exec(a, held.format(c="size", w="") + "INSERT INTO files VALUES (1, 50);")
    pg_exec(b, held.format(c="bytes", w=" WHERE bytes > 0"))
    with connect(b) as db:
        desired = db.introspect()
    col = desired.table("public", "files").column("bytes")  # type: ignore[union-attr]
    assert col is not None
    col.renamed_from = "size"
    plan, _ = roundtrip_to(a, desired, shadow=True)
    assert [s.kind for s in plan.steps] == ["create_function", "rename_column",
                                            "create_function"]


# ----------------------------------------------------------------------------------------
# Classes found by the hypothesis generator (tests/schemagen.py: functions, domains and
# composite types, constraint changes, partitions), each as its smallest pair.
REFERENCED_PARTS = '''
CREATE TABLE ev (id int NOT NULL, at int NOT NULL, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE ev_lo PARTITION OF ev FOR VALUES FROM (MINVALUE) TO (10);
CREATE TABLE ev_hi PARTITION OF ev FOR VALUES FROM (10) TO (MAXVALUE);
CREATE TABLE refs (id int PRIMARY KEY, ev_id int, ev_at int,
  FOREIGN KEY (ev_id, ev_at) REFERENCES ev (id, at));
INSERT INTO ev VALUES (1, 20), (2, 30);
INSERT INTO refs VALUES (1, 1, 20), (2, NULL, NULL);
'''
ROWS_FN_TABLE = 'CREATE SCHEMA "s x"; CREATE TABLE "s x"."T" (a int);'
ROWS_FN = '''
CREATE FUNCTION public."all rows"(r "s x"."T") RETURNS SETOF "s x"."T" LANGUAGE sql STABLE
  BEGIN ATOMIC SELECT * FROM "s x"."T"; END;'''
ENUM_FK = '''CREATE TYPE mood AS ENUM ('sad', 'ok', 'meh');
CREATE TABLE moods (k {t} PRIMARY KEY, "r e" {t} REFERENCES moods (k) ON DELETE SET NULL);
'''
ENUM_FK_ROWS = "INSERT INTO moods VALUES ('sad', NULL), ('ok', 'sad');"
COMP_FN = '''CREATE SCHEMA "s x"; CREATE TYPE "s x"."P" AS (a int{a});
CREATE FUNCTION public."make P"(x integer) RETURNS "s x"."P" LANGUAGE sql IMMUTABLE
  RETURN ROW(x{v})::"s x"."P";
CREATE VIEW "s x".v AS SELECT public."make P"(1) AS p;'''
COLL_CK = '''CREATE TABLE ck (id int PRIMARY KEY, s varchar(8){c},
  CHECK (length(s) > 0 AND s NOT IN ('forbidden;', 'nope')));
INSERT INTO ck VALUES (1, 'a'), (2, NULL);'''
GENERATED_CASES: list[tuple[str, str, str]] = [
    # A partition of a table that foreign keys reference: DROP TABLE refuses ("other
    # objects depend on it") until it is detached.
    ("drop a partition of a referenced table", REFERENCED_PARTS,
     REFERENCED_PARTS.split("INSERT")[0].replace(
         "CREATE TABLE ev_lo PARTITION OF ev FOR VALUES FROM (MINVALUE) TO (10);\n", "")),
    # A function whose SQL-standard body reads every column of a table (SELECT *, bound
    # to the columns when it is created) comes after the columns the plan adds: created,
    # or replaced because its body now lists one more.
    ("a new function reads a column the plan adds", ROWS_FN_TABLE,
     ROWS_FN_TABLE.replace("a int)", 'a int, "b c" text)') + ROWS_FN),
    ("a function reading every column of a table that gains one",
     ROWS_FN_TABLE + ROWS_FN, ROWS_FN_TABLE.replace("a int)", 'a int, "b c" text)') + ROWS_FN),
    # ... and one of whose columns changes type: refused while the function stands.
    ("a function reading every column of a table whose column changes type",
     ROWS_FN_TABLE + ROWS_FN, ROWS_FN_TABLE.replace("a int)", "a bigint)") + ROWS_FN),
    # CREATE TABLE cannot make a CHECK NOT VALID (it is silently valid): added after it.
    ("a new table with NOT VALID checks", ROWS_FN_TABLE, ROWS_FN_TABLE + '''
     CREATE TABLE "s x".nv (g jsonb PRIMARY KEY, n int);
     ALTER TABLE "s x".nv ADD CHECK (jsonb_typeof(g) = 'object') NOT VALID;
     ALTER TABLE "s x".nv ADD CONSTRAINT "n; ok" CHECK (n > 0) NOT VALID;'''),
    # An enum recreated (a value removed) while the columns of a foreign key over it
    # change type: the key is dropped and re-added once, around the type change.
    ("enum recreated under a retyped foreign key", ENUM_FK.format(t="mood") + ENUM_FK_ROWS,
     ENUM_FK.replace(", 'meh'", "").format(t="text")),
    # A composite type gains or loses an attribute under a function building it: the
    # function goes before the ALTER TYPE and comes back after, so the rollback (the
    # steps undone in reverse) never builds the old row over the new type.
    ("composite type gains an attribute under a function", COMP_FN.format(a="", v=""),
     COMP_FN.format(a=', "b c" text', v=", 'x'")),
    ("composite type loses an attribute under a function",
     COMP_FN.format(a=', "b c" text', v=", 'x'"), COMP_FN.format(a="", v="")),
    # The server rebuilds a CHECK over a column whose collation (or type) changes from
    # its printed text: an IN list over varchar then reads back as another expression.
    ("collation change under an IN check", COLL_CK.format(c=' COLLATE "POSIX"'),
     COLL_CK.format(c="")),
]


@pytest.mark.parametrize("name, from_sql, to_sql", GENERATED_CASES,
                         ids=[c[0] for c in GENERATED_CASES])
def test_postgres_generated_classes(pg_dsn_factory, name: str, from_sql: str,
                                    to_sql: str) -> None:
    a, b = pg_dsn_factory(), pg_dsn_factory()
    pg_exec(a, from_sql)
    pg_exec(b, to_sql)
    roundtrip(a, b, shadow=True)


# Issue 16: ALTER COLUMN ... TYPE on a parent recurses to its partitions and INHERITS
# children, and is refused while an SQL-standard routine body (or a view) reads the
# column of a child: the server records that on the child's column, not the parent's.
CHILD_READERS = """CREATE SCHEMA "s x";
CREATE TABLE "s x".ev (id int NOT NULL, at int NOT NULL, v {t}) PARTITION BY RANGE (at);
CREATE TABLE "s x"."ev lo" PARTITION OF "s x".ev FOR VALUES FROM (MINVALUE) TO (10)
  PARTITION BY RANGE (id);
CREATE TABLE "s x".ev_lo_a PARTITION OF "s x"."ev lo" FOR VALUES FROM (MINVALUE) TO (MAXVALUE);
CREATE TABLE "s x".ev_hi PARTITION OF "s x".ev FOR VALUES FROM (10) TO (MAXVALUE);
CREATE FUNCTION lo_total() RETURNS numeric LANGUAGE sql STABLE
  BEGIN ATOMIC SELECT sum(v) FROM "s x"."ev lo"; END;
CREATE FUNCTION "Hi max"() RETURNS {t} LANGUAGE sql STABLE
  RETURN (SELECT max(v) FROM "s x".ev_hi);
CREATE FUNCTION leaf(x int) RETURNS {t} LANGUAGE sql STABLE
  RETURN (SELECT v FROM "s x".ev_lo_a WHERE id = x);
CREATE VIEW leaf_total AS SELECT leaf(1) AS one, lo_total() AS total;
CREATE TABLE base (id int, v {t});
CREATE TABLE kid (extra text) INHERITS (base);
CREATE TABLE grandkid () INHERITS (kid);
CREATE FUNCTION kid_total() RETURNS numeric LANGUAGE sql STABLE
  BEGIN ATOMIC SELECT sum(v) FROM kid; END;
CREATE FUNCTION grandkid_max() RETURNS {t} LANGUAGE sql STABLE
  RETURN (SELECT max(v) FROM grandkid);
"""
CHILD_READER_ROWS = """INSERT INTO "s x".ev VALUES (1, 5, 1), (2, 20, 2);
INSERT INTO kid VALUES (1, 3, 'x'); INSERT INTO grandkid VALUES (2, 4, 'y');"""
RETYPED_PARENT_CASES: list[tuple[str, str, str]] = [
    ("a retyped parent's column read by routines over its children",
     CHILD_READERS.format(t="int") + CHILD_READER_ROWS, CHILD_READERS.format(t="bigint")),
    ("a parent's column retyped back under routines over its children",
     CHILD_READERS.format(t="bigint") + CHILD_READER_ROWS, CHILD_READERS.format(t="int")),
]


@pytest.mark.parametrize("name, from_sql, to_sql", RETYPED_PARENT_CASES,
                         ids=[c[0] for c in RETYPED_PARENT_CASES])
def test_postgres_retyped_parent_child_readers(pg_dsn_factory, name: str, from_sql: str,
                                               to_sql: str) -> None:
    a, b = pg_dsn_factory(), pg_dsn_factory()
    pg_exec(a, from_sql)
    pg_exec(b, to_sql)
    roundtrip(a, b, shadow=True)
