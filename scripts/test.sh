#!/usr/bin/env bash
# Set up and run the whole test suite against the real PostgreSQL on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PG=${LOCKPLANE_TEST_PG:-postgresql://postgres@127.0.0.1:5432/postgres}
# PostgreSQL is required: its tests must run, never be skipped.
if ! .venv/bin/python -c "import psycopg,sys; psycopg.connect(sys.argv[1], connect_timeout=5).close()" "$PG" 2>/dev/null; then
  echo "PostgreSQL is not reachable at $PG: start it (or set LOCKPLANE_TEST_PG)" >&2
  exit 1
fi
# MariaDB (or MySQL) too: the MySQL dialect's tests run on the real server.
MY=${LOCKPLANE_TEST_MYSQL:-mysql://root@127.0.0.1:3306/}
if ! .venv/bin/python -c "import sys; from lockplane.dialects.mysql import MySQLDatabase, MySQLDialect; MySQLDatabase(MySQLDialect(), sys.argv[1]).close()" "$MY" 2>/dev/null; then
  echo "MariaDB/MySQL is not reachable at $MY: start it (or set LOCKPLANE_TEST_MYSQL)" >&2
  exit 1
fi
.venv/bin/ruff check lockplane flows tasks blocks deployments tests bench
exec .venv/bin/python -m pytest -n "${LOCKPLANE_TEST_WORKERS:-2}" "$@"
