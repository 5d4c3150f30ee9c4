"""Which built-in functions a plan's SQL calls that PUBLIC may not run.

PostgreSQL revokes EXECUTE from PUBLIC on the functions that reach outside the database
(``pg_read_file``, ``pg_ls_dir``, ``lo_import``, ``pg_reload_conf`` ...). A schema that
calls one (a materialized view's query, a default evaluated for existing rows) runs it
with the applying user's privileges, often a superuser's. Which functions those are is
asked of the server (their ACLs), not kept in a list here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pglast
from pglast import ast
from pglast.parser import ParseError
from pglast.visitors import Visitor

if TYPE_CHECKING:
    from . import PostgresDatabase


class _Calls(Visitor):
    def __init__(self) -> None:
        self.names: set[str] = set()

    def visit_FuncCall(self, ancestors: object, node: ast.FuncCall) -> None:  # noqa: N802
        names = [n.sval for n in node.funcname]
        if len(names) == 1 or names[0] == "pg_catalog":
            self.names.add(names[-1])


def called_builtins(statements: Sequence[str]) -> set[str]:
    """Names of the functions these statements call that may resolve to built-ins
    (unqualified, or qualified with pg_catalog)."""
    calls = _Calls()
    for sql in statements:
        try:
            calls(pglast.parse_sql(sql))
        except ParseError:
            continue  # not ours to judge: the server reports it when the step runs
    return calls.names


def privileged_calls(db: PostgresDatabase, statements: Sequence[str]) -> list[str]:
    names = called_builtins(statements)
    if not names:
        return []
    rows = db.query(
        "SELECT DISTINCT p.proname FROM pg_proc p "
        "WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.proname = ANY(%s) "
        "AND NOT EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, "
        "  acldefault('f', p.proowner))) a "
        "  WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE') ORDER BY 1",
        (sorted(names),))
    return [r[0] for r in rows]
