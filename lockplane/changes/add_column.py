"""ALTER TABLE ... ADD COLUMN."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import BadInput
from ..model import Column, Table, qualified
from .base import (
    ACCESS_EXCLUSIVE,
    Assessment,
    Change,
    Finding,
    Lock,
    Order,
    RewriteContext,
    register,
)
from .render import column_def, table_name

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..dialects.base import Dialect
    from ..dialects.mysql.alter_facts import MySQLAlter
    from ..model import ObjectKey, Schema

log = logging.getLogger("lockplane")

# The server's answers for columns a plan's rollbacks re-add (a dropped column's inverse,
# made afresh by each step_for): set while the plan's steps are built.
_REVERSE_ANSWERS: ContextVar[dict[tuple[str, str | None], bool | None] | None] = ContextVar(
    "reverse_default_answers", default=None)


def _worth_asking(changes: Iterable[Change], schema: Schema) -> list[AddColumn]:
    domains = {dom.name.lower() for dom in schema.domains}
    return [c for c in changes if isinstance(c, AddColumn)
            and c.column.generated is None and c.column.identity is None
            and (c.column.default is not None
                 or c.column.type.strip('"').lower() in domains)]  # a domain's own default


def ask_default_rewrites(changes: Sequence[Change], before: Schema, after: Schema,
                         d: Dialect, near_dsn: str | None = None,
                         ) -> contextlib.AbstractContextManager[None]:
    """Put every added column's "does this default rewrite the table?" to the dialect's
    server at once, and keep each answer on its change (None: no server answered). The
    columns rollbacks re-add are asked too (of ``before``'s functions): their answers
    hold inside the returned context, where the steps are built."""
    adds = _worth_asking(changes, after)
    if adds:
        answers = _asked(d, [a.default_question() for a in adds], after, near_dsn)
        for a in adds:
            a.server_rewrites = answers.get(a.default_question())
    readds = _worth_asking((inv for c in changes if c.kind == "drop_column"
                            for inv in c.inverse()), before)
    if not readds:
        return contextlib.nullcontext()
    return _answering(_asked(d, [a.default_question() for a in readds], before, near_dsn))


def _asked(d: Dialect, questions: list[tuple[str, str | None]], schema: Schema,
           near_dsn: str | None) -> dict[tuple[str, str | None], bool | None]:
    """The server's answers; none (unknown) where the server cannot be asked. A plan's
    server is the target's own unless one is configured, and a user who may not create
    a sandbox there still gets a plan: its steps then say the default "may be computed
    per row (no server was asked)", the conservative side."""
    try:
        return d.default_rewrites(questions, schema, near_dsn)
    except BadInput as exc:
        log.warning("could not ask whether defaults rewrite tables (%s): treated as "
                    "unknown", exc)
        return {}


@contextlib.contextmanager
def _answering(answers: dict[tuple[str, str | None], bool | None]) -> Iterator[None]:
    token = _REVERSE_ANSWERS.set(answers)
    try:
        yield
    finally:
        _REVERSE_ANSWERS.reset(token)


def column_options_sql(d: Dialect, table: Table, col: Column) -> list[str]:
    """What a new column declares that ADD COLUMN has no clause for (PostgreSQL): its
    statistics target and compression method, set right after the ADD. The column's
    own step does it, so a column added back (a rollback's re-add of a dropped column, a
    generated column held across its routine's re-creation) keeps them too."""
    if col.statistics is None and col.compression is None:
        return []
    from .set_column_options import SetColumnOptions

    return SetColumnOptions(
        table.schema_ or "", table.name, col.name,
        None if col.statistics is None else (None, col.statistics),
        None if col.compression is None else (None, col.compression),
        new_column=True).sql_postgres(d)


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class AddColumn(Change):
    kind = "add_column"
    order = Order.ALTER_TABLE
    table: Table  # the table as it is before the change
    column: Column
    # Whether the server says its default rewrites the table (ask_default_rewrites);
    # None: not asked or no server answered.
    server_rewrites: bool | None = None
    # A generated column computed from columns whose type changes in the same plan: its
    # expression is read against their new types, so it comes after their ALTERs.
    after_retypes: bool = False

    def __post_init__(self) -> None:
        if self.after_retypes:
            self.order = Order.ALTER_COLUMN + 1  # type: ignore[misc]

    def describe(self) -> str:
        return (f"Add column {self.column.name} {self.column.type} to "
                f"{qualified(self.table.schema_, self.table.name)}")

    def sql_postgres(self, d: Dialect) -> list[str]:
        from .pg_common import grants_sql

        t, c = self.table, self.column
        return ([f"ALTER TABLE {table_name(d, t)} ADD COLUMN {column_def(d, c)}"]
                + grants_sql(d, "COLUMN", (t.schema_ or "", t.name, c.name), c.grants)
                + column_options_sql(d, t, c))

    def sql_sqlite(self, d: Dialect) -> list[str]:
        return [f"ALTER TABLE {table_name(d, self.table)} ADD COLUMN {column_def(d, self.column)}"]

    def mysql_alter(self, d: Dialect) -> MySQLAlter:
        from ..dialects.mysql.alter_facts import AlterOp, MySQLAlter
        from .mysql_common import column_sql

        return MySQLAlter(self.table, [f"ADD COLUMN {column_sql(d, self.table, self.column)}"],
                          (AlterOp("add_column", column=self.column),))

    def sql_mysql(self, d: Dialect) -> list[str]:
        from ..dialects.mysql.alter_facts import alter_sql

        return [alter_sql(d, self.mysql_alter(d))]

    def lock_mysql(self, d: Dialect) -> Lock:
        from ..dialects.mysql.alter_facts import alter_lock

        return alter_lock(d, self.mysql_alter(d))

    def transactional(self, d: Dialect) -> bool:
        # Where DDL commits by itself (MySQL), the step cannot share a transaction that
        # a later step's failure would roll back: it runs alone, its progress recorded.
        return d.transactional_ddl

    def inverse(self) -> list[Change]:
        from .drop_column import DropColumn

        return [DropColumn(self.table, self.column)]

    def rollback_stake(self) -> dict[str, str] | None:
        if self.column.generated is not None:
            return None  # computed from other columns: nothing of its own is lost
        return {"what": "column", "schema": self.table.schema_ or "", "table": self.table.name,
                "column": self.column.name}

    def default_question(self) -> tuple[str, str | None]:
        return (self.column.type, self.column.default)

    def server_answer(self) -> bool | None:
        if self.server_rewrites is not None:
            return self.server_rewrites
        return (_REVERSE_ANSWERS.get() or {}).get(self.default_question())

    def default_rewrites(self) -> bool:
        """Whether the default is computed per row: the server's answer, else (no server)
        anything but a constant, conservatively."""
        answer = self.server_answer()
        if answer is not None:
            return answer
        from ..dialects.postgres.default_rewrites import constant_default

        return constant_default(self.column.default) is not True

    def rewrites(self) -> bool:
        c = self.column
        # A VIRTUAL generated column (PostgreSQL 18) is computed on read: no rewrite.
        return ((c.generated is not None and c.generated_kind == "stored")
                or c.identity is not None or self.default_rewrites())

    def lock_postgres(self, d: Dialect) -> Lock:
        rw = self.rewrites()
        return Lock(ACCESS_EXCLUSIVE.mode, True, True, rewrites_table=rw, scans_table=rw)

    def assess(self, d: Dialect) -> Assessment:
        c = self.column
        name = f"{qualified(self.table.schema_, self.table.name)}.{c.name}"
        if not c.nullable and c.default is None and c.generated is None and c.identity is None:
            return Assessment.of(Finding("add-not-null-column-without-default", (
                f"Adding NOT NULL column {name} without a default fails if the table has "
                "rows.")))
        rewrite = self.for_dialect("rewrite_finding", d)
        found = rewrite() if rewrite is not None else None
        return Assessment.of(found) if found is not None else Assessment.of()

    def rewrite_finding_postgres(self) -> Finding | None:
        """What PostgreSQL's table rewrite for this column costs (None: it rewrites
        nothing)."""
        c = self.column
        name = f"{qualified(self.table.schema_, self.table.name)}.{c.name}"
        if not self.rewrites():
            return None
        if c.generated is not None:
            rule, what = "add-generated-column", "its generation expression"
        elif c.identity is not None:
            rule, what = "add-identity-column", "its identity"
        else:
            rule, what = "volatile-default", f"its default {c.default}"
            if self.server_answer() is None:  # nobody asked the server: say so
                return Finding(rule, (
                    f"Adding {name}: {what} may be computed per row (no server was asked), "
                    "in which case PostgreSQL rewrites the whole table under an ACCESS "
                    "EXCLUSIVE lock."))
        return Finding(rule, (
            f"Adding {name}: {what} is computed per row, so PostgreSQL rewrites the whole "
            "table under an ACCESS EXCLUSIVE lock."))

    def lock_safe(self, ctx: RewriteContext) -> list[Change]:
        """A volatile default without the rewrite: add the column bare, set the default
        (new rows get it), fill existing rows in committed batches, then NOT NULL."""
        c = self.column
        if (c.generated is not None or c.identity is not None or not self.default_rewrites()
                or not ctx.plain_table(self.table.schema_, self.table.name)):
            return [self]
        from .alter_column import AlterColumn, not_null_via_check
        from .backfill_column import BackfillColumn

        bare = c.model_copy(update={"default": None, "nullable": True})
        with_default = bare.model_copy(update={"default": c.default})
        out: list[Change] = [
            AddColumn(self.table, bare, rank=self.rank),
            AlterColumn(self.table, bare, with_default, rank=self.rank),
            BackfillColumn(self.table, c.name, c.default, only_null=True, rank=self.rank),
        ]
        if not c.nullable:
            out += not_null_via_check(self.table, AlterColumn(
                self.table, with_default, c, rank=self.rank), ctx)
        return out

    def table_key(self) -> tuple[str, str]:
        return (self.table.schema_ or "", self.table.name)

    def objects_created(self) -> tuple[ObjectKey, ...]:
        # Part of its table's row: a function or view that reads the column (SELECT *
        # of a SQL-standard body, a whole-row value) is created after it.
        from .base import object_key

        return (object_key("relation", self.table.schema_, self.table.name),)
