"""Property-based round trips: random schema pairs on real PostgreSQL and SQLite.

tests/schemagen.py draws a "from" schema with rows and a "to" schema derived from it by
random mutations (on PostgreSQL also function / domain / composite-type dependency
chains, constraint changes and partitioned tables); tests.roundtrip.roundtrip checks that
the plan applies, reaches the target catalog, keeps the rows, re-plans empty and rolls
back to the source.

By default (CI) the examples are derandomized (a fixed sequence) and few enough for about
a minute on two cores. For a long run, pick the registered profile (tests/conftest.py)
``--hypothesis-profile lockplane-long`` (1,000 random examples per test) and/or set
LOCKPLANE_HYPOTHESIS_EXAMPLES (the example count of each test), e.g.
``LOCKPLANE_HYPOTHESIS_EXAMPLES=3000 python -m pytest -n 2 --hypothesis-profile
lockplane-long tests/test_roundtrip_hypothesis.py``; ``--hypothesis-seed N`` replays one.
A failing example prints both SQL scripts (``note``): paste them into a hand-written
case in tests/test_roundtrip.py once the cause is found.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from tests.roundtrip import roundtrip
from tests.schemagen import Pair, pairs

# A profile chosen with --hypothesis-profile (loaded before this module is imported)
# decides the counts and the randomness; without one, CI's fixed sequence.
_PROFILE = settings.get_current_profile_name()
_CUSTOM = _PROFILE != "default"
_SCALE = os.environ.get("LOCKPLANE_HYPOTHESIS_EXAMPLES")
PG_EXAMPLES = int(_SCALE) if _SCALE else settings().max_examples if _CUSTOM else 25
SQLITE_EXAMPLES = int(_SCALE) if _SCALE else settings().max_examples if _CUSTOM else 40

_SETTINGS = dict(deadline=None, derandomize=settings().derandomize if _CUSTOM else not _SCALE,
                 print_blob=True,
                 suppress_health_check=[HealthCheck.function_scoped_fixture,
                                        HealthCheck.too_slow, HealthCheck.data_too_large,
                                        HealthCheck.filter_too_much])

# Empties a test database between examples (cheaper than a new database each time):
# every user schema goes, Lockplane's state schema included, and public comes back.
_PG_RESET = """
DO $$DECLARE r record; BEGIN
  FOR r IN SELECT nspname FROM pg_namespace
            WHERE nspname !~ '^pg_' AND nspname <> 'information_schema' LOOP
    EXECUTE format('DROP SCHEMA %I CASCADE', r.nspname);
  END LOOP;
END$$;
CREATE SCHEMA public;
"""


def _pg_build(dsn: str, script: str, what: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(_PG_RESET)
        try:
            conn.execute(script)
        except psycopg.Error as exc:
            raise AssertionError(f"generator bug: the {what} script fails: {exc}") from exc


def _note(pair: Pair) -> None:
    note(f"-- from ({pair.dialect})\n{pair.from_sql}")
    note(f"-- to ({pair.dialect})\n{pair.to_sql}")


@pytest.mark.long
@settings(max_examples=PG_EXAMPLES, **_SETTINGS)
@given(pair=pairs("postgres"), shadow=st.integers(0, 9))
def test_postgres_roundtrip_hypothesis(pg_dsn_factory, pair: Pair, shadow: int) -> None:
    dbs = _pg_pair(pg_dsn_factory)
    _note(pair)
    _pg_build(dbs[0], pair.from_sql, "from")
    _pg_build(dbs[1], pair.to_sql, "to")
    roundtrip(dbs[0], dbs[1], shadow=shadow == 0)


_PG_DBS: dict[int, tuple[str, str]] = {}


def _pg_pair(factory) -> tuple[str, str]:
    """Two databases per test run (the factory drops them when the test ends)."""
    key = id(factory)
    if key not in _PG_DBS:
        _PG_DBS.clear()
        _PG_DBS[key] = (factory(), factory())
    return _PG_DBS[key]


def _sqlite_build(path: Path, script: str, what: str) -> str:
    conn = sqlite3.connect(path)
    try:
        conn.executescript(script)
    except sqlite3.Error as exc:
        raise AssertionError(f"generator bug: the {what} script fails: {exc}") from exc
    finally:
        conn.close()
    return f"sqlite:///{path}"


@pytest.mark.long
@settings(max_examples=SQLITE_EXAMPLES, **_SETTINGS)
@given(pair=pairs("sqlite"), shadow=st.integers(0, 4))
def test_sqlite_roundtrip_hypothesis(pair: Pair, shadow: int) -> None:
    _note(pair)
    with tempfile.TemporaryDirectory(prefix="lp-hyp-") as tmp:
        a = _sqlite_build(Path(tmp) / "from.db", pair.from_sql, "from")
        b = _sqlite_build(Path(tmp) / "to.db", pair.to_sql, "to")
        roundtrip(a, b, shadow=shadow == 0)
