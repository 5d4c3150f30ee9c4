"""What every change kind provides, and the registry that finds them.

A change is one typed difference between two schemas. Its module owns, per dialect:
its forward SQL (``sql_<dialect>``), its inverse (computed from the before-state it
carries, never from SQL text), the lock it takes, and its safety class.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import BadInput

if TYPE_CHECKING:
    from ..dialects.base import Dialect
    from ..model import ObjectKey, Schema, Table


class Safety(enum.StrEnum):
    SAFE = "safe"  # no data at risk, brief or no lock
    REVIEW = "review"  # worth a human look (takes a strong lock, scans, may fail on data)
    LOSSY = "lossy"  # can lose data (narrowing, dropped default, ...)
    DANGEROUS = "dangerous"  # destroys data (drop table / column)
    MULTI_PHASE = "multi_phase"  # breaks running code unless done in phases

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Safety.SAFE: 0, Safety.REVIEW: 1, Safety.MULTI_PHASE: 2, Safety.LOSSY: 3,
         Safety.DANGEROUS: 4}


@dataclass(frozen=True)
class Lock:
    """Lock facts of a step (PostgreSQL lock modes; SQLite takes a database write lock;
    MySQL: the LOCK= level, with the ALGORITHM, the rules that decided them and what the
    server said when asked; see lockplane/dialects/mysql/alter_facts.py)."""

    mode: str
    blocks_reads: bool
    blocks_writes: bool
    rewrites_table: bool = False
    scans_table: bool = False
    algorithm: str | None = None
    reasons: tuple[str, ...] = ()
    server: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mode": self.mode, "blocks_reads": self.blocks_reads,
            "blocks_writes": self.blocks_writes, "rewrites_table": self.rewrites_table,
            "scans_table": self.scans_table}
        if self.algorithm is not None:
            out["algorithm"] = self.algorithm
        if self.reasons:
            out["reasons"] = list(self.reasons)
        if self.server is not None:
            out["server"] = self.server
        return out


NO_LOCK = Lock("NONE", False, False)
ACCESS_EXCLUSIVE = Lock("ACCESS EXCLUSIVE", True, True)
SHARE_UPDATE_EXCLUSIVE = Lock("SHARE UPDATE EXCLUSIVE", False, False)
SHARE_ROW_EXCLUSIVE = Lock("SHARE ROW EXCLUSIVE", False, True)
SQLITE_WRITE = Lock("DATABASE WRITE", False, True)


@dataclass(frozen=True)
class Condition:
    """When a step runs: only where ``query`` (one row, one number) gives 0 on the database
    it runs on; elsewhere it is skipped and ``warning`` is said, its ``{n}`` the number
    (None: skipped silently). ``leaves_nullable``: the (schema, table, column) a skip leaves
    nullable although the plan's target has it NOT NULL (the apply's end-state check
    allows that, and only that)."""

    query: str
    warning: str | None = None
    leaves_nullable: tuple[str, str, str] | None = None


@dataclass(frozen=True)
class Finding:
    """One risk a step carries, by stable rule id (see lockplane.rules for the catalogue)."""

    rule: str
    message: str
    safety: Safety | None = None  # None: the rule's default class

    @property
    def effective_safety(self) -> Safety:
        if self.safety is not None:
            return self.safety
        from ..rules import RULES

        return RULES[self.rule].safety

    def to_json(self) -> dict[str, str]:
        from ..rules import RULES

        out = {"rule": self.rule, "safety": self.effective_safety.value,
               "message": self.message}
        if RULES[self.rule].safer:
            out["safer"] = RULES[self.rule].safer
        return out


@dataclass(frozen=True)
class Assessment:
    safety: Safety
    messages: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = ()

    @classmethod
    def of(cls, *findings: Finding, notes: tuple[str, ...] = ()) -> Assessment:
        """The assessment of a step with these findings (safe when there are none)."""
        worst = max((f.effective_safety for f in findings), key=lambda s: s.rank,
                    default=Safety.SAFE)
        return cls(worst, tuple(f.message for f in findings) + notes, findings)


# Plan order: lower runs first. Drops of dependents come first, then creates of what
# tables depend on, then tables and columns, then drops of what tables depended on,
# then constraints, indexes, FKs, and last what depends on tables (views, triggers...).
class Order(enum.IntEnum):
    DROP_POLICY = 100
    DROP_TRIGGER = 105
    DROP_VIEW = 110
    DROP_FOREIGN_KEY = 120
    DROP_INDEX = 130
    DROP_CONSTRAINT = 140
    # Default privileges that new objects of this plan must not get (alter_default_privileges)
    DEFAULT_PRIVILEGES_FIRST = 190
    CREATE_SCHEMA = 200
    CREATE_EXTENSION = 210
    CREATE_TYPE = 220
    ALTER_TYPE = 225
    CREATE_SEQUENCE = 230
    CREATE_FUNCTION = 240
    CREATE_TABLE = 300
    ALTER_TABLE = 310
    ALTER_COLUMN = 320
    DROP_COLUMN = 330
    REBUILD_TABLE = 340
    DROP_TABLE = 400
    ALTER_SEQUENCE = 410
    DROP_SEQUENCE = 420
    DROP_FUNCTION = 430
    DROP_TYPE = 440
    DROP_EXTENSION = 450
    DROP_SCHEMA = 460
    ADD_CONSTRAINT = 500
    CREATE_INDEX = 510
    ADD_FOREIGN_KEY = 520
    CREATE_VIEW = 600
    CREATE_TRIGGER = 610
    ALTER_RLS = 620
    CREATE_POLICY = 630
    COMMENT = 700
    GRANT = 710


@dataclass(frozen=True)
class RewriteContext:
    """What a kind's lock-safe rewrite may look at: both schemas and the dialect."""

    before: Schema
    after: Schema
    dialect: Dialect

    def existing_table(self, schema: str | None, name: str) -> Table | None:
        """The table as it is before the plan (None: the plan creates it)."""
        return self.before.table(schema or "", name)

    def plain_table(self, schema: str | None, name: str) -> bool:
        """An existing table that is not partitioned: CONCURRENTLY and NOT VALID work on
        it (a partitioned parent refuses both; its partitions take them one by one)."""
        t = self.existing_table(schema, name)
        return t is not None and t.partition_by is None


REGISTRY: dict[str, type[Change]] = {}

# Differs that change modules register (see lockplane.diff, which re-exports these lists).
# Object differs get (before, after, dialect) schemas; table-part differs get the two
# versions of a table that exists on both sides.
ObjectDiffer = Callable[["Schema", "Schema", "Dialect"], list["Change"]]
TablePartDiffer = Callable[["Table", "Table", "Dialect"], list["Change"]]
OBJECT_DIFFERS: list[ObjectDiffer] = []
TABLE_PART_DIFFERS: list[TablePartDiffer] = []
# Run on the whole change list once every differ is done: they may set what a change
# needs to know about other changes or the rest of the schema (e.g. context_findings).
ChangeAnnotator = Callable[[list["Change"], "Schema", "Schema", "Dialect"], None]
CHANGE_ANNOTATORS: list[ChangeAnnotator] = []


def _compared(change: Change) -> tuple[Any, ...]:
    return tuple(getattr(change, f.name) for f in fields(change) if f.compare)


def register(cls: type[Change]) -> type[Change]:
    REGISTRY[cls.kind] = cls
    return cls


@dataclass(repr=False, eq=False)
class Change:
    """Base of every change kind. Subclasses are dataclasses holding before/after facts."""

    kind: ClassVar[str] = "change"
    # The rule (lockplane.rules) of the risk assess() describes, for kinds whose
    # assessment names no Finding itself.
    risk_rule: ClassVar[str | None] = None
    order: ClassVar[int] = Order.ALTER_TABLE
    # A rollback step of this kind puts back data a forward step archived before it
    # destroyed it (the runbook's SQL path then does not count that data as lost).
    puts_back_archived: ClassVar[bool] = False
    # Tie-breaker inside one order slot (views use it for dependency order).
    rank: int = field(default=0, kw_only=True, compare=False)
    # Risks a differ sees in the rest of the schema that the step's own fields cannot
    # show (a table that loses its replica identity while a publication publishes it);
    # the plan adds them to what assess() finds.
    context_findings: tuple[Finding, ...] = field(default=(), kw_only=True, compare=False)

    # Change kinds are declared ``@dataclass(repr=False, eq=False)`` and share these two,
    # which do what the generated ones would: on Python 3.11 each generated method is
    # compiled from source when the class is made, and with ~75 kinds that was a
    # tenth of a second of every start-up.
    def __repr__(self) -> str:
        body = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.repr)
        return f"{type(self).__qualname__}({body})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return _compared(self) == _compared(other)

    __hash__ = None  # type: ignore[assignment]  # mutable, as a dataclass with eq is

    # -- what a human reads
    def describe(self) -> str:
        raise NotImplementedError

    # -- per dialect: a kind writes ``sql_<family>`` (and may write ``lock_<family>``,
    # ``assess_<family>`` ...) for each family of SQL it supports (Dialect.sql_family).
    def for_dialect(self, stem: str, d: Dialect) -> Callable[..., Any] | None:
        """This kind's ``<stem>_<family>`` method for the dialect, if it has one."""
        return getattr(self, f"{stem}_{d.sql_family}", None)

    @classmethod
    def speaks(cls, d: Dialect) -> bool:
        """Whether this kind has SQL for the dialect (its differ skips it otherwise)."""
        return hasattr(cls, f"sql_{d.sql_family}")

    # -- SQL
    def sql(self, d: Dialect) -> list[str]:
        render = self.for_dialect("sql", d)
        if render is None:
            raise BadInput(f"{self.describe()}: not supported on {d.name}")
        return render(d)

    def transactional(self, d: Dialect) -> bool:
        # Where DDL commits by itself (MySQL), a step cannot share a transaction that a
        # later step's failure would roll back: it runs alone, its progress recorded.
        return d.transactional_ddl

    def cleanup_sql(self, d: Dialect) -> list[str]:
        """SQL that undoes a half-done step after it failed outside a transaction."""
        return []

    def condition(self, d: Dialect) -> Condition | None:
        """When the step runs (None: always). A step with one runs on its own terms: in a
        rollback it is a step of its own, after the undo it belongs to."""
        return None

    def cleanup_reverts_previous(self) -> bool:
        """Whether the clean-up also undoes the step before this one (it then runs only
        after a failure, never before an attempt)."""
        return False

    # -- rollback, computed from the before-state this change carries
    def inverse(self) -> list[Change]:
        raise NotImplementedError

    def rollback_note(self) -> str | None:
        return None

    def turn_archive_off(self) -> None:
        """The plan keeps no copy of what it drops (``plan --no-archive``): a kind that
        archives dropped rows or values for its rollback stops, and says the rollback
        brings them back empty."""

    def rollback_stake(self) -> dict[str, Any] | None:
        """What the rollback destroys, machine-readable, so lockplane.stake can count it
        on a live database later (plans are files: the change objects are gone by then).

        ``{"what": "column" | "columns" | "table" | "narrowing", "schema", "table", ...}``;
        None when the rollback loses no data worth counting.
        """
        return None

    # -- facts for the safety engine
    def lock(self, d: Dialect) -> Lock:
        own = self.for_dialect("lock", d)
        return own(d) if own is not None else d.ddl_lock()

    def assess(self, d: Dialect) -> Assessment:
        return Assessment(Safety.SAFE)

    # -- the lock-safe form (PostgreSQL): the same end state without long strong locks.
    # A kind that can do better returns several steps; the default is itself.
    def lock_safe(self, ctx: RewriteContext) -> list[Change]:
        return [self]

    # -- which table it touches (for grouping, multi-phase and per-table locks)
    def table_key(self) -> tuple[str, str] | None:
        return None

    # -- what it creates (or puts in its wanted form) and drops, as objects of the
    # server's dependency graph (model.ObjectKey; "name" keys: names in a schema's
    # relation namespace). plan.order_changes orders steps by them.
    def objects_created(self) -> tuple[ObjectKey, ...]:
        return ()

    def objects_dropped(self) -> tuple[ObjectKey, ...]:
        return ()


def object_key(kind: str, schema: str | None, name: str, arguments: str = "") -> ObjectKey:
    """A model.ObjectKey ("function", "relation", "type"; "name": a relation-namespace
    name, which a table, view, sequence, index or key constraint's index takes;
    "column": see column_key)."""
    return (kind, schema or "", name, arguments)


def column_key(schema: str | None, table: str, column: str) -> ObjectKey:
    """The key of one column of a relation in the server's graph: what a view's rule or
    an SQL-standard routine body reads (pg_depend's refobjsubid)."""
    return ("column", schema or "", table, column)


def relation_keys(schema: str | None, name: str) -> tuple[ObjectKey, ...]:
    return (object_key("relation", schema, name), object_key("name", schema, name))


def table_name_keys(table: Table, *, with_indexes: bool) -> tuple[ObjectKey, ...]:
    """The relation and every relation-namespace name a table's CREATE TABLE takes (its
    key constraints' indexes); ``with_indexes``: its other indexes too (a DROP TABLE)."""
    s = table.schema_
    names = [c.name for c in (table.primary_key, *table.unique_constraints,
                              *table.exclusion_constraints) if c is not None and c.name]
    if with_indexes:
        names += [ix.name for ix in table.indexes if ix.name]
    return relation_keys(s, table.name) + tuple(object_key("name", s, n) for n in names)
