"""MySQL / MariaDB lock facts: which ALGORITHM and LOCK the server takes for a step, why,
and what the server itself said when the step was tried on an empty copy of its table.

The API change kinds call (everything a MySQL change kind needs is here)::

    def mysql_alter(self, d) -> MySQLAlter:        # what the ALTER TABLE does
        return MySQLAlter(self.table, ["ADD COLUMN ..."], (AlterOp("add_column", column=c),))

    def sql_mysql(self, d):  return [alter_sql(d, self.mysql_alter(d))]
    def lock_mysql(self, d): return alter_lock(d, self.mysql_alter(d))

``alter_sql`` appends the explicit clauses as decided (``ALGORITHM=INSTANT``, or
``ALGORITHM=INPLACE, LOCK=NONE`` ...): should the server not manage that on the day, it
fails at once instead of silently copying the table under a lock. ``alter_lock`` gives
the step's ``Lock`` with ``algorithm``, the rules that decided it (``reasons``) and the
server's word (``server``). Statements that are no ALTER use ``create_table_lock()`` /
``drop_table_lock()``. Which ``AlterOp.what`` the rules know: see ``_RULES``.

How a decision is made. The rules (:func:`predict`, keyed by the server's flavour and
version) are the explanation; the server is the judge. :func:`decided`, entered once per
plan by ``MySQLDialect.decide_locks`` (lockplane.plan.build_plan), copies the tables the
plan touches (their definitions only, no rows) into a sandbox database on the plan's
server (the schema files' throwaway user and statement screen) and runs the plan's steps
there in order, then its rollback, each ALTER tried with the most lenient clauses first
(``ALGORITHM=INSTANT``; MariaDB's ``NOCOPY``; ``INPLACE, LOCK=NONE``; ... ``COPY``): the
first the server takes is the decision, and the refusals it gave on the way
(ER_ALTER_OPERATION_NOT_SUPPORTED_REASON 1846 says why) go in the step. Where the rules
and the server disagree, the server wins and the step says so. Without a server to ask
the rules alone decide, and the step says it was not checked.

Every DDL statement takes an exclusive metadata lock on its table at its start and at
its end, however briefly: it waits for every open transaction that has touched the table
and every later statement on the table queues behind it meanwhile. Each step says so;
the apply bounds that wait with a short ``lock_wait_timeout`` and retries
(:meth:`MySQLDatabase.apply_session`, lockplane.lockwait).
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ...changes.base import Finding, Lock
from ...errors import BadInput
from ...model import Column, Table, qualified

if TYPE_CHECKING:
    from ...changes.base import Change
    from ...model import Schema
    from ..base import Dialect
    from . import MySQLDatabase

log = logging.getLogger("lockplane")

INSTANT, NOCOPY, INPLACE, COPY = "INSTANT", "NOCOPY", "INPLACE", "COPY"
NONE, SHARED, EXCLUSIVE = "NONE", "SHARED", "EXCLUSIVE"
_ALG_RANK = {INSTANT: 0, NOCOPY: 1, INPLACE: 2, COPY: 3}
_LOCK_RANK = {NONE: 0, SHARED: 1, EXCLUSIVE: 2}
# ER_ALTER_OPERATION_NOT_SUPPORTED, ER_ALTER_OPERATION_NOT_SUPPORTED_REASON: the server
# refuses the clause (not the change).
_REFUSED = {1845, 1846}
# MySQL 8.0.29+: a table takes at most this many instant ADD/DROP COLUMNs (row versions)
# before the next one must rebuild it.
MAX_ROW_VERSIONS = 64
# Up to this many tables, the scratch copy holds every table of the database (empty);
# beyond, those the plan touches and those their foreign keys reference.
COPY_ALL_TABLES = 60

METADATA_LOCK = ("Takes an exclusive metadata lock on the table briefly at its start and "
                 "its end: it waits for every open transaction that has touched the table, "
                 "and statements on the table queue behind it while it waits (the apply "
                 "waits lock_wait_timeout, then retries)")
LONG_DDL = ("Reads or rebuilds the whole table, then needs the exclusive metadata lock "
            "again to finish: a transaction that reads the table meanwhile and is still "
            "open then makes it wait lock_wait_timeout, fail and start over, its work lost "
            "(busy tables with long transactions: an online schema change tool)")


@dataclass(frozen=True)
class Server:
    """The flavour and version of the server the plan is for, as read from it."""

    mariadb: bool
    version: tuple[int, int, int]
    text: str = ""

    @classmethod
    def parse(cls, version: str) -> Server:
        """From SELECT VERSION(): '10.11.19-MariaDB-0+deb12u1', '8.0.35', and MariaDB's
        replication-compatible '5.5.5-10.11.19-MariaDB'."""
        if version.startswith("5.5.5-") and "mariadb" in version.lower():
            version = version[len("5.5.5-"):]
        nums = [int(n) for n in re.findall(r"\d+", version.split("-", 1)[0])[:3]]
        nums += [0] * (3 - len(nums))
        return cls("mariadb" in version.lower(), (nums[0], nums[1], nums[2]), version)

    @property
    def name(self) -> str:
        flavour = "MariaDB" if self.mariadb else "MySQL"
        return f"{flavour} {'.'.join(str(n) for n in self.version)}"

    def at_least(self, mariadb: tuple[int, ...] | None, mysql: tuple[int, ...] | None,
                 ) -> bool:
        """Whether this server is at least the given version of its flavour (None: no
        version of that flavour)."""
        wanted = mariadb if self.mariadb else mysql
        return wanted is not None and self.version >= tuple(wanted)


# What the rules assume when no server says what it is: MySQL 8.0.0 (no instant column
# changes). MariaDB 10.3+ and MySQL 8.0.12+ can do better; MariaDB takes the named
# ALGORITHM "or better" (checked on 10.11: ADD COLUMN ..., ALGORITHM=INPLACE keeps the
# table's id, i.e. no rebuild), MySQL 8 does what it is told.
ASSUMED = Server(False, (8, 0, 0), "unknown (rules of MySQL 8.0.0 assumed)")


@dataclass(frozen=True)
class AlterOp:
    """What one clause of an ALTER TABLE does, in the rules' terms.

    ``what``: add_column, drop_column, modify_column (``old`` -> ``column``),
    set_default, drop_default, rename_column, add_index (``method``: btree, hash,
    fulltext, spatial), drop_index, add_primary_key, drop_primary_key, add_foreign_key
    (``foreign_key_checks``), drop_foreign_key, add_check, drop_check, table_options
    (``options``: the names of the options set, lower case), engine, rename_table.
    ``last``: an added column goes at the end (no FIRST / AFTER).
    """

    what: str
    column: Column | None = None
    old: Column | None = None
    last: bool = True
    method: str | None = None
    foreign_key_checks: bool = True
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class MySQLAlter:
    """One ALTER TABLE of a step: the table as it is before it, its clauses (SQL, without
    ALGORITHM / LOCK) and what they do."""

    table: Table
    clauses: Sequence[str]
    ops: Sequence[AlterOp]

    def key(self) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
        # What the clauses do too: one MODIFY COLUMN text can come from two states (a
        # fill's forward "NULL -> DEFAULT 'x'" and the undo "NOT NULL -> NULL DEFAULT
        # 'x'"), which the server decides differently.
        return (qualified(self.table.schema_, self.table.name), tuple(self.clauses),
                tuple(repr(op) for op in self.ops))


@dataclass(frozen=True)
class Decision:
    algorithm: str
    level: str  # LOCK=: NONE | SHARED | EXCLUSIVE
    rebuild: bool  # the table is rewritten (COPY, or INPLACE rebuilding it)
    scans: bool = False  # reads every row (an index build)
    reasons: tuple[str, ...] = ()
    server: str | None = None  # what the server said, when asked
    # What the statement's metadata lock holds up (a view's: statements on the view).
    metadata_lock: str = METADATA_LOCK

    @property
    def clause(self) -> str:
        # LOCK= with INSTANT means nothing more, and MySQL 8 takes only LOCK=DEFAULT there.
        if self.algorithm == INSTANT:
            return "ALGORITHM=INSTANT"
        return f"ALGORITHM={self.algorithm}, LOCK={self.level}"

    def lock(self) -> Lock:
        return Lock(self.level, blocks_reads=self.level == EXCLUSIVE,
                    blocks_writes=self.level != NONE, rewrites_table=self.rebuild,
                    scans_table=self.rebuild or self.scans, algorithm=self.algorithm,
                    reasons=(*self.reasons, self.metadata_lock,
                             *((LONG_DDL,) if self.rebuild or self.scans else ())),
                    server=self.server)


def _worse(a: Decision, b: Decision) -> Decision:
    """Two clauses in one statement: the server takes the worst of each."""
    alg = max(a.algorithm, b.algorithm, key=_ALG_RANK.__getitem__)
    return Decision(alg, max(a.level, b.level, key=_LOCK_RANK.__getitem__),
                    a.rebuild or b.rebuild, a.scans or b.scans, a.reasons + b.reasons)


# ---------------------------------------------------------------- the rules

def _no_rebuild(s: Server) -> str:
    """In-place without rebuilding the table: MariaDB 10.3+ can demand it (NOCOPY)."""
    return NOCOPY if s.at_least((10, 3), None) else INPLACE


def _row_format(t: Table) -> str:
    for option in t.options:
        key, _, value = option.partition("=")
        if key.lower() == "row_format":
            return value.upper()
    return ""


def _has_fulltext(t: Table) -> bool:
    return any(ix.method.lower() == "fulltext" for ix in t.indexes)


def _indexed(t: Table, column: str) -> bool:
    keys = [ix.keys for ix in t.indexes]
    if t.primary_key is not None and column in t.primary_key.columns:
        return True
    return any(k.column == column for ks in keys for k in ks) \
        or any(column in u.columns for u in t.unique_constraints)


def _add_column(s: Server, t: Table, op: AlterOp, versions: int | None) -> Decision:
    c = op.column
    assert c is not None
    rebuild = Decision(INPLACE, NONE, True)
    if c.generated is not None and c.generated_kind == "stored":
        return Decision(COPY, SHARED, True, reasons=(
            "a STORED generated column is computed for every row: the table is copied",))
    if c.auto_increment:
        return Decision(INPLACE, SHARED, True, reasons=(
            "an AUTO_INCREMENT column numbers every row: the table is rebuilt under "
            "LOCK=SHARED (writes wait)",))
    if c.generated is not None:
        return Decision(INSTANT, NONE, False, reasons=(
            "a VIRTUAL generated column is computed on read: metadata only",))
    if _row_format(t) == "COMPRESSED":
        return replace(rebuild, reasons=(
            "ROW_FORMAT=COMPRESSED tables have no instant ADD COLUMN: rebuilt in place",))
    if _has_fulltext(t):
        return Decision(INPLACE, SHARED, True, reasons=(
            "the table has a FULLTEXT index: no instant ADD COLUMN, and the rebuild "
            "re-creates the full-text index under LOCK=SHARED (writes wait)",))
    if s.mariadb:
        if s.at_least((10, 4), None) or (s.at_least((10, 3), None) and op.last):
            return Decision(INSTANT, NONE, False, reasons=(
                f"{s.name}: instant ADD COLUMN (MariaDB 10.3+ at the end, 10.4+ anywhere)",))
        return replace(rebuild, reasons=(
            f"{s.name}: instant ADD COLUMN needs MariaDB 10.3 (at the end) or 10.4",))
    if s.at_least(None, (8, 0, 29)):
        if versions is not None and versions >= MAX_ROW_VERSIONS:
            return replace(rebuild, reasons=(
                f"the table has used its {MAX_ROW_VERSIONS} row versions "
                f"(INNODB_TABLES.TOTAL_ROW_VERSIONS = {versions}): the next column change "
                "rebuilds it",))
        left = f"; {MAX_ROW_VERSIONS - versions} row versions left" if versions is not None \
            else f"; at most {MAX_ROW_VERSIONS} row versions per table (not read)"
        return Decision(INSTANT, NONE, False, reasons=(
            f"{s.name}: instant ADD COLUMN anywhere (8.0.29+){left}",))
    if s.at_least(None, (8, 0, 12)) and op.last:
        return Decision(INSTANT, NONE, False, reasons=(
            f"{s.name}: instant ADD COLUMN at the end (8.0.12+)",))
    return replace(rebuild, reasons=(
        f"{s.name}: no instant ADD COLUMN here (MySQL 8.0.12+ at the end, 8.0.29+ "
        "anywhere): rebuilt in place",))


def _drop_column(s: Server, t: Table, op: AlterOp, versions: int | None) -> Decision:
    c = op.column
    assert c is not None
    if t.primary_key is not None and c.name in t.primary_key.columns:
        return Decision(INPLACE, NONE, True, reasons=(
            "the column is in the primary key: the table is rebuilt",))
    if _row_format(t) == "COMPRESSED":
        return Decision(INPLACE, NONE, True, reasons=(
            "ROW_FORMAT=COMPRESSED tables have no instant DROP COLUMN: rebuilt in place",))
    if _indexed(t, c.name):
        return Decision(_no_rebuild(s), NONE, False, reasons=(
            "the column is in an index, which is dropped too: no instant DROP COLUMN",))
    if s.at_least((10, 4), (8, 0, 29)):
        if not s.mariadb and versions is not None and versions >= MAX_ROW_VERSIONS:
            return Decision(INPLACE, NONE, True, reasons=(
                f"the table has used its {MAX_ROW_VERSIONS} row versions: rebuilt",))
        return Decision(INSTANT, NONE, False, reasons=(
            f"{s.name}: instant DROP COLUMN (MariaDB 10.4+, MySQL 8.0.29+)",))
    return Decision(INPLACE, NONE, True, reasons=(
        f"{s.name}: no instant DROP COLUMN (MariaDB 10.4+, MySQL 8.0.29+): rebuilt in "
        "place",))


_BASE_TYPE = re.compile(r"^\s*(\w+)\s*(?:\((\d+)\))?\s*(.*)$")


def _bytes_per_char(collation: str | None) -> int:
    name = (collation or "utf8mb4").lower()
    for prefix, n in (("utf8mb4", 4), ("utf16", 4), ("utf32", 4), ("utf8", 3), ("ucs2", 2),
                      ("binary", 1), ("latin", 1), ("ascii", 1), ("cp125", 1)):
        if name.startswith(prefix):
            return n
    return 4  # unknown: the widest, the cautious side


def _modify_column(s: Server, t: Table, op: AlterOp, versions: int | None) -> Decision:
    old, new = op.old, op.column
    assert old is not None and new is not None
    a, b = _BASE_TYPE.match(old.type.lower()), _BASE_TYPE.match(new.type.lower())
    if old.type.lower() == new.type.lower() and old.collation == new.collation:
        if old.nullable and not new.nullable:
            return Decision(INPLACE, NONE, True, reasons=(
                "NULL to NOT NULL: every row is checked while the table is rebuilt in "
                "place",))
        if not old.nullable and new.nullable:
            # InnoDB keeps a row's NULL flags in its header (COMPACT, DYNAMIC,
            # COMPRESSED): a column that may become NULL rebuilds the table; MariaDB 10.4+
            # changes only the metadata of a REDUNDANT table (checked on 10.11, which
            # refuses INSTANT and NOCOPY with error 1845 otherwise, even on an empty table).
            if s.mariadb and s.at_least((10, 4), None) and _row_format(t) == "REDUNDANT":
                return Decision(INSTANT, NONE, False, reasons=(
                    f"{s.name}: NOT NULL to NULL is metadata only in a ROW_FORMAT=REDUNDANT "
                    "table",))
            return Decision(INPLACE, NONE, True, reasons=(
                "NOT NULL to NULL: the row format's NULL flags change, so the table is "
                "rebuilt in place (reads and writes go on)",))
        return Decision(INSTANT if s.at_least((10, 4), (8, 0)) else INPLACE, NONE, False,
                        reasons=("same type: metadata only",))
    if a and b and a.group(1) == b.group(1) == "varchar" and a.group(3) == b.group(3) \
            and old.collation == new.collation and a.group(2) and b.group(2) \
            and int(b.group(2)) >= int(a.group(2)):
        per = _bytes_per_char(new.collation or t.collation)
        before, after = int(a.group(2)) * per, int(b.group(2)) * per
        if (before < 256) == (after < 256):
            return Decision(INSTANT if s.mariadb and s.at_least((10, 4), None) else INPLACE,
                            NONE, False, reasons=(
                                f"VARCHAR({a.group(2)}) to VARCHAR({b.group(2)}) keeps its "
                                f"{'1-byte' if after < 256 else '2-byte'} length prefix "
                                f"({per} byte(s) per character): metadata only",))
        return Decision(COPY, SHARED, True, reasons=(
            f"VARCHAR({a.group(2)}) to VARCHAR({b.group(2)}) crosses 255 bytes ({per} "
            "byte(s) per character): the length prefix grows, so every row is copied",))
    return Decision(COPY, SHARED, True, reasons=(
        f"type {old.type} to {new.type}: every row is converted into a copy of the table "
        "(LOCK=SHARED: writes wait)",))


def _metadata(reason: str) -> Any:
    def rule(s: Server, t: Table, op: AlterOp, versions: int | None) -> Decision:
        return Decision(INSTANT, NONE, False, reasons=(reason,))
    return rule


def _rename_column(s: Server, t: Table, op: AlterOp, versions: int | None) -> Decision:
    if s.at_least((10, 5), (8, 0, 28)):
        return Decision(INSTANT, NONE, False, reasons=(f"{s.name}: instant RENAME COLUMN",))
    return Decision(_no_rebuild(s), NONE, False, reasons=("RENAME COLUMN: metadata only",))


def _add_index(s: Server, t: Table, op: AlterOp, versions: int | None) -> Decision:
    method = (op.method or "btree").lower()
    if method == "fulltext":
        first = not _has_fulltext(t)
        return Decision(INPLACE, SHARED, first, True, reasons=(
            "a FULLTEXT index is built under LOCK=SHARED (writes wait)"
            + ("; the first one adds the hidden FTS_DOC_ID column and rebuilds the table"
               if first else ""),))
    if method == "spatial":
        return Decision(_no_rebuild(s), SHARED, False, True, reasons=(
            "a SPATIAL index is built under LOCK=SHARED (writes wait)",))
    return Decision(_no_rebuild(s), NONE, False, True, reasons=(
        "a secondary index is built in place, reading every row, with reads and writes "
        "going on (LOCK=NONE)",))


def _drop_index(s: Server, t: Table, op: AlterOp, versions: int | None) -> Decision:
    return Decision(_no_rebuild(s), NONE, False, reasons=(
        "dropping a secondary index: in place, metadata only (not INSTANT)",))


def _add_primary_key(s: Server, t: Table, op: AlterOp, versions: int | None) -> Decision:
    return Decision(INPLACE, NONE, True, reasons=(
        "a new primary key reorders the clustered index: the table is rebuilt in place",))


def _drop_primary_key(s: Server, t: Table, op: AlterOp, versions: int | None) -> Decision:
    return Decision(COPY, SHARED, True, reasons=(
        "dropping the primary key without adding another copies the table",))


def _add_foreign_key(s: Server, t: Table, op: AlterOp, versions: int | None) -> Decision:
    if op.foreign_key_checks:
        return Decision(COPY, SHARED, True, reasons=(
            "with foreign_key_checks=1 the server checks existing rows by copying the "
            "table (LOCK=SHARED); INPLACE needs foreign_key_checks=0, which leaves existing "
            "rows unchecked",))
    return Decision(_no_rebuild(s), NONE, False, reasons=(
        "foreign_key_checks=0: added in place without checking existing rows",))


def _add_check(s: Server, t: Table, op: AlterOp, versions: int | None) -> Decision:
    return Decision(COPY, SHARED, True, reasons=(
        "an added CHECK constraint is checked against every row while the table is "
        "copied",))


# Table options that change how InnoDB stores the rows: the table is rebuilt (checked on
# MariaDB 10.11, where the table gets a new id). The others (COMMENT, AUTO_INCREMENT,
# STATS_*, CHECKSUM, MAX_ROWS, a default collation ...) are metadata only.
_REBUILDING_OPTIONS = {"row_format", "key_block_size", "page_compressed",
                       "page_compression_level", "encrypted", "encryption_key_id",
                       "compression", "encryption"}


def _table_options(s: Server, t: Table, op: AlterOp, versions: int | None) -> Decision:
    rebuilt = sorted(o for o in op.options if o.lower() in _REBUILDING_OPTIONS)
    if rebuilt or not op.options:
        return Decision(INPLACE, NONE, True, reasons=(
            f"table option {', '.join(rebuilt or ['(unknown)']).upper()}: how the rows are "
            "stored changes, so the table is rebuilt in place",))
    return Decision(INSTANT, NONE, False, reasons=(
        f"table option {', '.join(sorted(op.options)).upper()}: metadata only",))


def _rename_table(s: Server, t: Table, op: AlterOp, versions: int | None) -> Decision:
    return Decision(INSTANT, NONE, False, reasons=(
        "RENAME TO: metadata only; code that still uses the old name fails from then on",))


def _engine(s: Server, t: Table, op: AlterOp, versions: int | None) -> Decision:
    return Decision(COPY, SHARED, True, reasons=("another storage engine: copied",))


_RULES = {
    "add_column": _add_column,
    "drop_column": _drop_column,
    "modify_column": _modify_column,
    "set_default": _metadata("a column default is metadata only"),
    "drop_default": _metadata("a column default is metadata only"),
    "rename_column": _rename_column,
    "add_index": _add_index,
    "drop_index": _drop_index,
    "add_primary_key": _add_primary_key,
    "drop_primary_key": _drop_primary_key,
    "add_foreign_key": _add_foreign_key,
    "drop_foreign_key": _metadata("dropping a foreign key is metadata only"),
    "add_check": _add_check,
    "drop_check": _metadata("dropping a CHECK constraint is metadata only"),
    "table_options": _table_options,
    "engine": _engine,
    "rename_table": _rename_table,
}


def predict(alter: MySQLAlter, server: Server | None = None,
            row_versions: int | None = None) -> Decision:
    """What the rules say the server takes for ``alter`` (``server`` None: unknown)."""
    s = server or ASSUMED
    out: Decision | None = None
    ops = list(alter.ops)
    if {"drop_primary_key", "add_primary_key"} <= {op.what for op in ops}:
        # A primary key replaced in one statement is a rebuild, not the copy that
        # dropping it alone takes.
        ops = [op for op in ops if op.what != "drop_primary_key"]
    for op in ops:
        rule = _RULES.get(op.what)
        one = rule(s, alter.table, op, row_versions) if rule else Decision(
            COPY, SHARED, True, reasons=(f"no rule for {op.what}: assumed a copy",))
        if one.algorithm == NOCOPY and not s.mariadb:
            one = replace(one, algorithm=INPLACE)
        out = one if out is None else _worse(out, one)
    if out is None:
        out = Decision(INSTANT, NONE, False)
    if server is None:
        out = replace(out, reasons=(*out.reasons, f"server {ASSUMED.text}"))
    return out


# ---------------------------------------------------------------- what the plan decided

@dataclass
class _Decided:
    server: Server | None
    decisions: dict[tuple[str, tuple[str, ...]], Decision] = field(default_factory=dict)
    row_versions: dict[str, int] = field(default_factory=dict)


_DECIDED: ContextVar[_Decided | None] = ContextVar("mysql_alter_decisions", default=None)


def decision(alter: MySQLAlter) -> Decision:
    """The plan's decision for ``alter`` (checked on the server while the plan is made),
    else the rules' (rollback steps and plans made without a server)."""
    state = _DECIDED.get()
    if state is not None and alter.key() in state.decisions:
        return state.decisions[alter.key()]
    server = state.server if state is not None else None
    versions = state.row_versions.get(alter.key()[0]) if state is not None else None
    made = predict(alter, server, versions)
    if state is not None and server is not None:
        made = replace(made, server="not checked on the server (a step the plan did not "
                                    "try)")
    return made


def alter_sql(d: Dialect, alter: MySQLAlter) -> str:
    """``ALTER TABLE t <clauses>, ALGORITHM=..., LOCK=...`` as decided."""
    name = d.qname(alter.table.schema_, alter.table.name)
    return f"ALTER TABLE {name} {', '.join(alter.clauses)}, {decision(alter).clause}"


def alter_lock(d: Dialect, alter: MySQLAlter) -> Lock:
    return decision(alter).lock()


def alters_lock(d: Dialect, alters: Sequence[MySQLAlter]) -> Lock:
    """The lock facts of a step of several ALTER TABLEs run one after the other: the worst
    of each, every reason, what the server said of each."""
    made = [decision(a) for a in alters]
    if len(made) == 1:
        return made[0].lock()
    out = made[0]
    for one in made[1:]:
        out = _worse(out, one)
    said = [m.server for m in made if m.server]
    return replace(out, server="; then ".join(said) if said else None).lock()


@dataclass(frozen=True)
class MySQLStatement:
    """A DDL statement that takes no ALGORITHM or LOCK clause (CREATE / DROP TRIGGER,
    CREATE / DROP VIEW, CREATE OR REPLACE VIEW): it changes metadata only, as an
    ``ALGORITHM=INSTANT`` ALTER does, under the brief exclusive metadata lock of every
    DDL. ``table``: what it locks (the table a trigger is on, or the view itself);
    ``view``: that is a view."""

    table: Table
    sql: Sequence[str]
    what: str
    view: bool = False

    def key(self) -> tuple[str, tuple[str, ...]]:
        return (f"statement on {qualified(self.table.schema_, self.table.name)}",
                tuple(self.sql))


VIEW_METADATA_LOCK = ("Takes an exclusive metadata lock on the view's name briefly: it "
                      "waits for open transactions that have used the view, and statements "
                      "on the view queue behind it meanwhile; the view's tables are only "
                      "read (the apply waits lock_wait_timeout, then retries)")


def _existing(before: Schema, stmt: MySQLStatement) -> bool:
    """Whether the table or view the statement locks exists before the plan."""
    t = stmt.table
    return before.table(t.schema_ or "", t.name) is not None or any(
        v.name == t.name and (v.schema_ or "") == (t.schema_ or "") for v in before.views)


def _statement_rule(stmt: MySQLStatement) -> Decision:
    return Decision(INSTANT, NONE, False, reasons=(
        f"{stmt.what} takes no ALGORITHM clause: it changes metadata only (no row is read "
        "or copied), as ALGORITHM=INSTANT does",),
        metadata_lock=VIEW_METADATA_LOCK if stmt.view else METADATA_LOCK)


def statement_lock(d: Dialect, stmt: MySQLStatement) -> Lock:
    """The lock facts of ``stmt``: metadata only, as the plan's trial on the scratch copy
    saw it (else the rule, which says it was not checked)."""
    state = _DECIDED.get()
    if state is not None and stmt.key() in state.decisions:
        return state.decisions[stmt.key()].lock()
    made = _statement_rule(stmt)
    if state is not None and state.server is not None:
        made = replace(made, server="not checked on the server (a step the plan did not "
                                    "try)")
    return made.lock()


def create_table_lock() -> Lock:
    return Lock(NONE, False, False, reasons=(
        "a new table: nobody uses it yet (a FOREIGN KEY in it takes a brief metadata lock "
        "on the table it references)",))


def drop_table_lock() -> Lock:
    return Lock(EXCLUSIVE, True, True, reasons=(
        "DROP TABLE takes an exclusive metadata lock: it waits for every open transaction "
        "that has touched the table, and statements on it queue behind it meanwhile; "
        "removing a big table's file can stall the server's I/O",))


def copy_finding(change: Change, lock: Lock, before: Schema) -> Finding | None:
    """A step that copies an existing table (or blocks its writes for the whole
    operation) is worth a review: an online schema change tool does it without."""
    key = change.table_key()
    if key is None or before.table(key[0], key[1]) is None or lock.algorithm is None:
        return None  # a table the plan creates holds no rows yet
    name = qualified(key[0] or None, key[1])
    if lock.algorithm == COPY:
        return Finding("mysql-copy-alter", (
            f"{change.describe()}: the server copies {name} row by row (ALGORITHM=COPY, "
            f"LOCK={lock.mode}): writes wait for the whole copy, which on a big table is an "
            "outage; an online schema change tool (gh-ost, pt-online-schema-change) does "
            "it without blocking writes"))
    if lock.mode != NONE:
        return Finding("mysql-blocking-alter", (
            f"{change.describe()}: ALGORITHM={lock.algorithm}, LOCK={lock.mode}: writes to "
            f"{name} wait for the whole operation"))
    return None


# ---------------------------------------------------------------- asking the server

_LADDER = [(INSTANT, None), (NOCOPY, NONE), (INPLACE, NONE), (NOCOPY, SHARED),
           (INPLACE, SHARED), (COPY, SHARED), (NOCOPY, EXCLUSIVE), (INPLACE, EXCLUSIVE),
           (COPY, EXCLUSIVE)]


def _rungs(server: Server) -> list[tuple[str, str | None]]:
    return [r for r in _LADDER if server.mariadb and server.at_least((10, 3), None)
            or r[0] != NOCOPY]


def _clause(algorithm: str, level: str | None) -> str:
    return f"ALGORITHM={algorithm}" + (f", LOCK={level}" if level else "")


def _rebuilds(algorithm: str, predicted: Decision) -> bool:
    if algorithm == COPY:
        return True
    if algorithm in (INSTANT, NOCOPY):
        return False
    return predicted.rebuild  # INPLACE: MariaDB would have taken NOCOPY without a rebuild


@contextlib.contextmanager
def decided(d: Dialect, changes: Sequence[Change], before: Schema,
            near_dsn: str) -> Iterator[None]:
    """Decide every MySQL ALTER of ``changes`` (rules, then the server on empty copies of
    their tables) and every statement that takes no ALGORITHM clause (run on the copies
    too, the table's id watched), and keep the decisions while the plan's steps are
    built."""
    alters = [(c, a) for c in changes for a in _alters_of(d, c)]
    statements = [s for c in changes if (s := _statement_of(d, c)) is not None]
    if not alters and not any(_existing(before, s) for s in statements):
        # (a trigger on a new table, a new view: nobody uses them yet, and the plan
        # opens no sandbox for them alone)
        yield
        return
    try:
        state = _ask(d, changes, before, near_dsn)
    except BadInput as exc:
        log.warning("could not try the plan's ALTERs on a scratch copy (%s): ALGORITHM and "
                    "LOCK are the rules' alone", exc)
        state = _Decided(None)
        for _, alter in alters:
            made = predict(alter)
            state.decisions[alter.key()] = replace(
                made, server=f"not checked: no scratch server ({exc})")
        for stmt in statements:
            state.decisions[stmt.key()] = replace(
                _statement_rule(stmt), server=f"not checked: no scratch server ({exc})")
    for change, alter in alters:
        found = copy_finding(change, state.decisions[alter.key()].lock(), before)
        if found is not None and all(f.rule != found.rule for f in change.context_findings):
            change.context_findings = (*change.context_findings, found)
    token = _DECIDED.set(state)
    try:
        yield
    finally:
        _DECIDED.reset(token)


def _copy_sql(d: Dialect, t: Table) -> str:
    """CREATE TABLE of an empty copy of ``t``: columns, keys, indexes, foreign keys (to
    tables in the same database), options."""
    from ...changes.mysql_common import create_table_sql

    q = d.quote
    items = []
    for ix in t.indexes:
        keys = []
        for k in ix.keys:
            if k.column is not None:
                keys.append(q(k.column) + (f"({int(k.length)})" if k.length else ""))
            else:
                keys.append(f"({k.expression})")
            if k.descending:
                keys[-1] += " DESC"
        method = ix.method.lower()
        head = {"fulltext": "FULLTEXT KEY", "spatial": "SPATIAL KEY"}.get(
            method, "UNIQUE KEY" if ix.unique else "KEY")
        items.append(f"{head} {q(ix.name)} ({', '.join(keys)})")
    for fk in t.foreign_keys:
        if fk.referenced_schema:
            continue
        name = f"CONSTRAINT {q(fk.name)} " if fk.name else ""
        items.append(f"{name}FOREIGN KEY ({', '.join(q(c) for c in fk.columns)}) "
                     f"REFERENCES {q(fk.referenced_table)} "
                     f"({', '.join(q(c) for c in fk.referenced_columns)})")
    sql = create_table_sql(d, t)
    if not items:
        return sql
    head, sep, tail = sql.rpartition("\n)")
    return head + ",\n  " + ",\n  ".join(items) + sep + tail


def _ask(d: Dialect, changes: Sequence[Change], before: Schema, near_dsn: str) -> _Decided:
    from .sandbox import Sandbox
    from .screen import screen

    if len(before.tables) <= COPY_ALL_TABLES:
        wanted = list(before.tables)  # (a foreign key the plan adds finds its table)
    else:
        touched = {c.table_key() for c in changes if c.table_key() is not None}
        wanted = [t for t in before.tables if (t.schema_ or "", t.name) in touched]
        referenced = {fk.referenced_table for t in wanted for fk in t.foreign_keys
                      if not fk.referenced_schema}
        wanted += [t for t in before.tables if t.name in referenced and t not in wanted
                   and not t.schema_]
    box = Sandbox(d, near_dsn)  # type: ignore[arg-type]
    try:
        box.open()
        session = box.session
        assert session is not None
        server = Server.parse(session.server_version)
        state = _Decided(server)
        state.row_versions = _row_versions(d, near_dsn, server, wanted)

        def run(sql: str) -> None:
            for s in screen(sql + ";", "a plan step", lines=False):
                session.execute(s.sql)

        session.execute("SET SESSION foreign_key_checks = 0")
        for t in wanted:
            if t.schema_:
                continue  # another database: not copied (its steps stay the rules')
            try:
                run(_copy_sql(d, t))
            except (BadInput, *d.error_types()) as exc:
                log.info("could not copy %s to try its ALTERs: %s", t.name, exc)
        session.execute("SET SESSION foreign_key_checks = 1")
        _copy_triggers_and_views(d, run, before, wanted)
        # The plan's steps in order, then its rollback (each step's undo, last step
        # first), as a full rollback runs them.
        undos = [inv for c in reversed(changes) for inv in _inverse(c)]
        ids = _TableIds(box, server)
        for change in [*changes, *undos]:
            alters = _alters_of(d, change)
            if alters and any(a.key() not in state.decisions for a in alters):
                for alter in alters:
                    if alter.key() not in state.decisions:
                        state.decisions[alter.key()] = _try(d, session, run, alter, server,
                                                            state.row_versions, ids)
                    else:
                        _run_decided(d, run, state, change, alter)
                continue
            stmt = _statement_of(d, change)
            if stmt is not None and stmt.key() not in state.decisions:
                state.decisions[stmt.key()] = _run_statement(run, stmt, server, ids,
                                                             d.error_types())
                continue
            token = _DECIDED.set(state)
            try:
                for sql in change.sql(d):  # (no ALTER of its own, or decided: as it is)
                    run(sql)
            except (BadInput, *d.error_types()) as exc:
                log.info("scratch copy: %s did not run: %s", change.describe(), exc)
            finally:
                _DECIDED.reset(token)
        return state
    finally:
        box.close()


def _copy_triggers_and_views(d: Dialect, run: Any, before: Schema,
                             tables: Sequence[Table]) -> None:
    """The copied tables' triggers and the database's views, on the copy: a step that
    drops or replaces one is tried as it will run (a view on another view: in as many
    rounds as it takes)."""
    from ...changes.create_view import CreateView

    todo = [t.definition for table in tables if not table.schema_
            for t in table.triggers]
    todo += [CreateView(v).sql(d)[0] for v in before.views if not v.schema_]
    while todo:
        failed = []
        for sql in todo:
            try:
                run(sql)
            except (BadInput, *d.error_types()) as exc:
                failed.append(sql)
                why = exc
        if len(failed) == len(todo):
            log.info("could not copy %d trigger(s) or view(s) to try the plan's steps: %s",
                     len(failed), why)
            return
        todo = failed


def _alters_of(d: Dialect, change: Change) -> list[MySQLAlter]:
    """The change's ALTER TABLEs: ``mysql_alters`` (several, run in order) or
    ``mysql_alter`` (one; None: it is no ALTER, or not one alone)."""
    several = getattr(change, "mysql_alters", None)
    if several is not None:
        return list(several(d))
    render = getattr(change, "mysql_alter", None)
    one = render(d) if render is not None else None
    return [one] if one is not None else []


def _statement_of(d: Dialect, change: Change) -> MySQLStatement | None:
    render = getattr(change, "mysql_statement", None)
    return render(d) if render is not None else None


def _run_decided(d: Dialect, run: Any, state: _Decided, change: Change,
                 alter: MySQLAlter) -> None:
    """An ALTER already decided (the same clauses met again): run as decided, so the
    copy stays as the plan leaves its table."""
    token = _DECIDED.set(state)
    try:
        run(alter_sql(d, alter))
    except (BadInput, *d.error_types()) as exc:
        log.info("scratch copy: %s did not run: %s", change.describe(), exc)
    finally:
        _DECIDED.reset(token)


_FTS_AUX = re.compile(r"/FTS_[0-9a-f]{16}_", re.I)


# The server builds INNODB_SYS_TABLES / INNODB_TABLES from its whole data dictionary: on
# MariaDB 10.11 one read took 3 ms with 200 tables, 90 ms with 3,000 (bench/
# mysql_table_ids.py). A read slower than this and the plan stops watching (two reads a
# step would make a plan on a server with many tables slow).
SLOW_ID_READ_MS = 250.0


class _TableIds:
    """The InnoDB ids of the scratch database's tables, read before and after a statement
    as the DSN's user (the sandbox user may not read them: PROCESS privilege): a table
    the statement rebuilt or copied has a new id, or none (it left InnoDB)."""

    def __init__(self, box: Any, server: Server) -> None:
        self.box = box
        self.view = "INNODB_SYS_TABLES" if server.mariadb else "INNODB_TABLES"
        self.why_not: str | None = None

    def read(self) -> dict[str, int] | None:
        if self.why_not is not None:
            return None
        started = time.monotonic()
        try:
            rows = self.box.admin.query(
                f"SELECT NAME, TABLE_ID FROM information_schema.{self.view} WHERE NAME LIKE "
                "%s", (self.box.name.replace("_", "\\_") + "/%",))
        except Exception as exc:  # (no PROCESS privilege: not observed)
            log.info("cannot read InnoDB table ids (%s): rebuilds are not observed", exc)
            self.why_not = f"{self.view} not readable by the plan's user (PROCESS)"
            return None
        took = (time.monotonic() - started) * 1000
        if took > SLOW_ID_READ_MS:
            self.why_not = (f"reading {self.view} took {took:.0f} ms on this server: not "
                            "watched for the rest of the plan")
        return {str(n): int(i) for n, i in rows if not _FTS_AUX.search(str(n))}


def _rebuilt(before: dict[str, int] | None, after: dict[str, int] | None) -> bool | None:
    """Whether a table got a new InnoDB id, or lost it (None: not observed)."""
    if before is None or after is None:
        return None
    return bool(set(after.values()) - set(before.values())) or len(after) < len(before)


def _run_statement(run: Any, stmt: MySQLStatement, server: Server, ids: _TableIds,
                   errors: tuple[type[BaseException], ...]) -> Decision:
    made = _statement_rule(stmt)
    before = ids.read()
    try:
        for sql in stmt.sql:
            run(sql)
    except (BadInput, *errors) as exc:
        return replace(made, server=f"not checked: the statement failed on an empty copy "
                                    f"({_first_line(exc)})")
    rebuilt = _rebuilt(before, ids.read())
    said = f"{server.name} ran {stmt.what} on an empty copy"
    if rebuilt is None:
        return replace(made, server=said + " (whether it rebuilt a table was not observed: "
                                           f"{ids.why_not})")
    if rebuilt:
        return Decision(COPY, SHARED, True, reasons=(
            *made.reasons, f"but {server.name} rebuilt a table running it"),
            server=said + ": a table got a new id (rebuilt)",
            metadata_lock=made.metadata_lock)
    return replace(made, server=said + ": no table got a new id (metadata only)")


def _inverse(change: Change) -> list[Change]:
    try:
        return change.inverse()
    except NotImplementedError:
        return []


def _row_versions(d: Dialect, near_dsn: str, server: Server,
                  tables: Sequence[Table]) -> dict[str, int]:
    """MySQL 8.0.29+: each table's used row versions (INNODB_TABLES.TOTAL_ROW_VERSIONS),
    read on the plan's server when it is the target's (its DSN names the database)."""
    if server.mariadb or not server.at_least(None, (8, 0, 29)):
        return {}
    from . import parse_dsn

    if not parse_dsn(near_dsn).database:
        return {}
    out: dict[str, int] = {}
    try:
        with d.connect(near_dsn) as db:
            for t in tables:
                rows = db.query("SELECT TOTAL_ROW_VERSIONS FROM information_schema."
                                "INNODB_TABLES WHERE NAME = CONCAT(DATABASE(), '/', %s)",
                                (t.name,))
                if rows:
                    out[qualified(t.schema_, t.name)] = int(rows[0][0])
    except (BadInput, *d.error_types()) as exc:
        log.info("could not read row versions: %s", exc)
    return out


def _try(d: Dialect, session: MySQLDatabase, run: Any, alter: MySQLAlter,
         server: Server, row_versions: dict[str, int], ids: _TableIds | None = None,
         ) -> Decision:
    """The first rung of the ladder the server takes for ``alter`` on the empty copy.

    The table's InnoDB id is read before and after (where the DSN's user may): what the
    server says it took is checked against what it did. MariaDB 10.11 takes
    ``ALGORITHM=INSTANT`` for a new storage engine, then copies the table all the same:
    a table that got a new id was rebuilt, whatever the clause."""
    predicted = predict(alter, server, row_versions.get(alter.key()[0]))
    name = d.qname(alter.table.schema_, alter.table.name)
    refusals: list[str] = []
    ids_before = ids.read() if ids is not None else None
    for algorithm, level in _rungs(server):
        sql = f"ALTER TABLE {name} {', '.join(alter.clauses)}, {_clause(algorithm, level)}"
        try:
            run(sql)
        except d.error_types() as exc:
            code = exc.args[0] if exc.args else None
            if code in _REFUSED:
                reason = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
                m = re.search(r"Reason: (.*?)\. Try", reason)
                why = m.group(1) if m else "not supported for this operation"
                refusals.append(f"{_clause(algorithm, level)} ({why})")
                continue
            return replace(predicted, server=f"not checked: the statement failed on an "
                           f"empty copy ({_first_line(exc)})")
        except BadInput as exc:
            return replace(predicted, server=f"not checked: {exc}")
        level = level or NONE
        took = _clause(algorithm, level if algorithm != INSTANT else None)
        said = f"{server.name} took {took} on an empty copy of the table"
        if refusals:
            said += "; refused " + "; ".join(refusals)
        rebuilt = _rebuilt(ids_before, ids.read() if ids is not None else None)
        seen, seen_said = "it got a new InnoDB id", ", and rebuilt it"
        if rebuilt is None and any(op.what == "engine" for op in alter.ops):
            # (not observed: a new engine copies the table, whatever clause it took)
            rebuilt, seen, seen_said = True, "a new engine copies the table", ""
        if rebuilt and algorithm in (INSTANT, NOCOPY):
            # Not what the clause promises: the rules' rebuild, or a copy.
            made = predicted if predicted.rebuild and predicted.algorithm not in (
                INSTANT, NOCOPY) else Decision(COPY, SHARED, True)
            return replace(made, rebuild=True, reasons=(
                *predicted.reasons,
                f"{server.name} takes {took} for this change but rebuilds the table all "
                f"the same ({seen}): {made.clause} is asked instead, so "
                "the step says what it does"), server=said + seen_said)
        if rebuilt is not None and algorithm != COPY:
            said += ", and rebuilt it" if rebuilt else " (no rebuild: its id is kept)"
        if (algorithm, level) == (predicted.algorithm, predicted.level):
            made = replace(predicted, server=said)
        else:
            made = Decision(algorithm, level, _rebuilds(algorithm, predicted),
                            predicted.scans, reasons=(
                                *predicted.reasons,
                                f"the rules said {predicted.clause}; the server decides "
                                f"{took}"),
                            server=said)
        if rebuilt is not None and algorithm == INPLACE:
            made = replace(made, rebuild=rebuilt)
        return made
    return replace(predicted, server="not checked: the server refused every ALGORITHM and "
                   "LOCK on an empty copy: " + "; ".join(refusals))


def _first_line(exc: BaseException) -> str:
    from . import error_message

    return error_message(exc)
