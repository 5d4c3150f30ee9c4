"""Property-based round trips: random schema pairs on real PostgreSQL and SQLite.

tests/schemagen.py draws a "from" schema with rows and a "to" schema derived from it by
random mutations (on PostgreSQL also function / domain / composite-type dependency
chains, constraint changes and partitioned tables); tests.roundtrip.roundtrip checks that
the plan applies, reaches the target catalog, keeps the rows, re-plans empty and rolls
back to the source.

By default (CI) the examples are derandomized (a fixed sequence) and few enough for about
a minute on two cores. For a long run, pick the registered profile (tests/conftest.py)
``--hypothesis-profile lockplane-long`` (1,000 random examples per test) and/or set
LOCKPLANE_HYPOTHESIS_EXAMPLES (the example count of each test, spread over its shards), e.g.
``LOCKPLANE_HYPOTHESIS_EXAMPLES=3000 python -m pytest -n 2 --hypothesis-profile
lockplane-long tests/test_roundtrip_hypothesis.py``; ``--hypothesis-seed N`` replays one.
A failing example prints both SQL scripts (``note``): paste them into a hand-written
case in tests/test_roundtrip.py once the cause is found.

Each test runs as a few shards (parametrized: each draws its own sequence), so that the
two CI workers share the examples instead of one of them running all of them last.
``--hypothesis-seed N`` gives every shard the same seed, hence the same examples: use it
to replay a failure (``-k`` its shard), not to explore.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
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
PG_SHARDS, SQLITE_SHARDS = 5, 2

_SETTINGS = dict(deadline=None, derandomize=settings().derandomize if _CUSTOM else not _SCALE,
                 print_blob=True,
                 suppress_health_check=[HealthCheck.function_scoped_fixture,
                                        HealthCheck.too_slow, HealthCheck.data_too_large,
                                        HealthCheck.filter_too_much])

# Hypothesis blames a strategy for any change of the global random state during a draw,
# whoever made it. In a test process that has run a Prefect flow, Prefect's events client
# keeps a websocket to the API server, and its keepalive pings (websockets: a
# random.getrandbits(32) payload, from Prefect's GlobalEventLoopThread) may land inside a
# draw: "pairs('postgres') uses the random module". The generator does not; the draws come
# from Hypothesis's own seeded Random, so the fixed sequence does not depend on it.
# test_pairs_are_repeatable checks that in a process of its own, where no such thread runs.
_OTHER_THREADS_RANDOM = pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies")

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
@_OTHER_THREADS_RANDOM
@pytest.mark.parametrize("shard", range(PG_SHARDS))
@settings(max_examples=-(-PG_EXAMPLES // PG_SHARDS), **_SETTINGS)
@given(pair=pairs("postgres"), shadow=st.integers(0, 9))
def test_postgres_roundtrip_hypothesis(pg_dsn_factory, shard: int, pair: Pair,
                                       shadow: int) -> None:
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
@_OTHER_THREADS_RANDOM
@pytest.mark.parametrize("shard", range(SQLITE_SHARDS))
@settings(max_examples=-(-SQLITE_EXAMPLES // SQLITE_SHARDS), **_SETTINGS)
@given(pair=pairs("sqlite"), shadow=st.integers(0, 4))
def test_sqlite_roundtrip_hypothesis(shard: int, pair: Pair, shadow: int) -> None:
    _note(pair)
    with tempfile.TemporaryDirectory(prefix="lp-hyp-") as tmp:
        a = _sqlite_build(Path(tmp) / "from.db", pair.from_sql, "from")
        b = _sqlite_build(Path(tmp) / "to.db", pair.to_sql, "to")
        roundtrip(a, b, shadow=shadow == 0)


# Draws 30 derandomized pairs of each dialect with every warning an error (the global
# random module used inside the strategy is one) and prints a digest of their SQL.
_DRAW_SCRIPT = """
import hashlib, warnings
from hypothesis import HealthCheck, Phase, given, settings
from tests.schemagen import pairs
warnings.simplefilter("error")
digest = hashlib.sha256()
for dialect in ("postgres", "sqlite"):
    @settings(max_examples=30, derandomize=True, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(pair=pairs(dialect))
    def draw(pair):
        digest.update((pair.from_sql + "\\0" + pair.to_sql + "\\0").encode())
    draw()
print(digest.hexdigest())
"""


def test_pairs_are_repeatable() -> None:
    """The generator draws only from Hypothesis (never the global random module, nor the
    order of a set of strings, which PYTHONHASHSEED changes): a derandomized sequence is
    the same in two processes. Each runs alone, so no other thread touches random."""
    root = Path(__file__).resolve().parent.parent
    digests = set()
    for hash_seed in ("0", "1"):
        done = subprocess.run([sys.executable, "-c", _DRAW_SCRIPT], cwd=root, text=True,
                              capture_output=True, timeout=120,
                              env={**os.environ, "PYTHONHASHSEED": hash_seed})
        assert done.returncode == 0, done.stderr[-3000:]
        digests.add(done.stdout.strip())
    assert len(digests) == 1, digests
