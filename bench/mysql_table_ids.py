"""What watching InnoDB table ids costs a MySQL plan (lockplane/dialects/mysql/alter_facts.py).

While a plan's steps are tried on the scratch copy, the scratch tables' InnoDB ids are
read before and after each ALTER or trigger/view statement (``INNODB_SYS_TABLES`` on
MariaDB, ``INNODB_TABLES`` on MySQL 8), to see whether the server rebuilt the table. The
server builds that view from its whole data dictionary, so the read costs more on a
server with many tables. This makes a throwaway database with ``--tables`` empty InnoDB
tables on the server and prints the median time of one read (a plan step pays two),
next to one plain ``ALTER TABLE ... ALGORITHM=INSTANT`` on an empty table for scale.

    .venv/bin/python bench/mysql_table_ids.py [--server mysql://root@127.0.0.1:3306/]
        [--tables 2000] [--repeat 20]
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import time

import pymysql

from lockplane.dialects.mysql import parse_dsn


def _median_ms(cur: pymysql.cursors.Cursor, sql: str, params: tuple[str, ...] | None,
               repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        cur.execute(sql, params)
        cur.fetchall()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--server", default="mysql://root@127.0.0.1:3306/")
    ap.add_argument("--tables", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    name = f"lp_bench_ids_{secrets.token_hex(4)}"
    conn = pymysql.connect(**parse_dsn(args.server).kwargs(), autocommit=True)
    cur = conn.cursor()
    cur.execute("SELECT VERSION()")
    version = str(cur.fetchone()[0])
    view = "INNODB_SYS_TABLES" if "mariadb" in version.lower() else "INNODB_TABLES"
    cur.execute(f"CREATE DATABASE `{name}`")
    try:
        cur.execute(f"USE `{name}`")
        for i in range(args.tables):
            cur.execute(f"CREATE TABLE t{i} (id int PRIMARY KEY, v int) ENGINE=InnoDB")
        cur.execute(f"SELECT COUNT(*) FROM information_schema.{view}")
        total = int(cur.fetchone()[0])
        read = _median_ms(cur, f"SELECT NAME, TABLE_ID FROM information_schema.{view} "
                               "WHERE NAME LIKE %s", (name.replace("_", "\\_") + "/%",),
                          args.repeat)
        alters = []
        for i in range(args.repeat):
            started = time.perf_counter()
            cur.execute(f"ALTER TABLE t{i} ALTER COLUMN v SET DEFAULT {i}, "
                        "ALGORITHM=INSTANT")
            alters.append((time.perf_counter() - started) * 1000)
        print(f"server: {version}; {total} InnoDB tables in {view} "
              f"({args.tables} made for this run)")
        print(f"one read of the scratch database's table ids: {read:.1f} ms (median of "
              f"{args.repeat}); a plan step pays two: {2 * read:.1f} ms")
        print(f"one ALTER ... ALGORITHM=INSTANT on an empty table: "
              f"{statistics.median(alters):.1f} ms (median of {args.repeat})")
    finally:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


if __name__ == "__main__":
    main()
