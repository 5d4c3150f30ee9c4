"""Shared fixtures: every test gets its own throwaway database on the real servers."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

PG_ADMIN_DSN = os.environ.get("LOCKPLANE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_dsn_for(dbname: str) -> str:
    base = PG_ADMIN_DSN.rsplit("/", 1)[0]
    return f"{base}/{dbname}"


def _create_pg_database() -> str:
    name = f"lp_test_{secrets.token_hex(5)}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


def _drop_pg_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))


@pytest.fixture
def pg_dsn() -> Iterator[str]:
    """DSN of a new, empty PostgreSQL database, dropped after the test."""
    name = _create_pg_database()
    try:
        yield _pg_dsn_for(name)
    finally:
        _drop_pg_database(name)


@pytest.fixture
def pg_dsn_factory() -> Iterator[object]:
    """Call it to get as many throwaway PostgreSQL databases as a test needs."""
    made: list[str] = []

    def make() -> str:
        name = _create_pg_database()
        made.append(name)
        return _pg_dsn_for(name)

    yield make
    for name in made:
        _drop_pg_database(name)


@pytest.fixture
def sqlite_dsn(tmp_path) -> str:
    """DSN of a new SQLite file in the test's temporary directory."""
    return f"sqlite:///{tmp_path / 'test.db'}"


def pg_exec(dsn: str, script: str) -> None:
    """Run a SQL script on a test database (setup helper for tests)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(script)
