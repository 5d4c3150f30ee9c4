"""What a dialect plug-in provides: everything true of a server and not of a change kind.

Quoting, connecting, introspecting, scratch databases, the driver's error classes and
which of them are worth retrying, advisory locks, read-only transactions, the SQL of
Lockplane's state tables, and the SQL forms the engine builds statements from
(placeholders, casts). Change kinds own their SQL per dialect (see ``lockplane/changes``).

Engine code asks these questions instead of testing a dialect's name. Methods a dialect
may lack have a default (a no-op, or ``NotImplementedError`` behind a capability flag
such as :attr:`Dialect.has_advisory_locks` that callers check first). See the
README ("Adding a dialect") for what a new dialect folder provides.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import BadInput

if TYPE_CHECKING:  # the model is heavy to import; a dialect needs it only to introspect
    from ..backfill import (
        BackfillOptions,
        BackfillSpec,
        Reporter,
        ResolvedBackfill,
        TableStats,
        Trial,
    )
    from ..changes.base import Change, Lock
    from ..lockwait import LockWatch
    from ..model import Schema


class StatementTimedOut(Exception):
    """A statement ran past the deadline its caller gave it, and was cancelled."""


class BackfillCatalog(Protocol):
    """What a batched backfill asks a server's catalog (``dialects/<name>/backfill.py``)."""

    def resolve(self, db: Any, spec: BackfillSpec) -> ResolvedBackfill:
        """The table, its SET columns' types and the key the batches walk; BadInput if
        the table cannot be backfilled."""

    def table_stats(self, db: Any, rb: ResolvedBackfill) -> TableStats:
        """Rows (estimated or counted) and size of the table."""

    def shadow_trial(self, db: Any, rb: ResolvedBackfill, stats: TableStats,
                     opts: BackfillOptions, report: Reporter | None) -> Trial:
        """Run the batch statement on a shadow copy holding a sample of the rows."""


class Dialect(ABC):
    name: str
    default_schema: str
    # Whether DDL can run inside a transaction and roll back with it.
    transactional_ddl: bool = True
    # The driver's placeholder for a statement parameter.
    param: str = "?"
    # Session advisory locks (one apply per database, one runner per backfill chunk).
    # False: the database serializes writers itself; callers skip the lock.
    has_advisory_locks: bool = False
    # Scratch databases are made on a server (the target's, unless told another); False:
    # they need none (an in-memory database, say).
    scratch_needs_server: bool = False
    # A plan's backfill step runs as a batched, resumable backfill in its own sessions;
    # False: its UPDATE runs as a plain step of the apply.
    batches_backfill_steps: bool = False
    # Lint: what a table without a primary key cannot have on this server (None: no
    # warning), and whether a foreign key without an index on its columns is worth a
    # warning (the server does not index them itself; deletes on the parent scan).
    missing_primary_key_costs: str | None = None
    foreign_keys_need_index: bool = False
    # The server derives the default names of constraints and indexes from their table
    # and columns (t_pkey, t_col_fkey): a declared rename renames them too.
    derived_constraint_names: bool = False
    # Backups restore into a database on the server (new, or over the target), as the
    # recovery flow does; False: a backup is a file copied back (lockplane recover).
    server_side_restore: bool = False
    # The schema holding Lockplane's state tables; None: they share the user's namespace
    # under a ``_lockplane_`` prefix.
    state_schema: str | None = None
    # SQL for "now" in the state tables' timestamp columns.
    now_sql: str = "CURRENT_TIMESTAMP"
    # The aggregate that counts non-NULL values, as Lockplane's own SQL names it over a
    # user's expression (PostgreSQL: qualified, see PostgresDialect).
    count_sql: str = "count"
    max_sql: str = "max"
    # The server goes on running the statement of a client that died, and sessions carry
    # a name other sessions can see (PostgreSQL: application_name in pg_stat_activity):
    # a killed run's orphaned statements are found, waited for and cancelled
    # (lockplane/crash.py). False: nothing to settle.
    settles_orphaned_sessions: bool = False
    # Constraints can be added NOT VALID and validated later: a rollback's undo of a
    # VALIDATE makes one NOT VALID again, which crash resume recognises.
    has_not_valid_constraints: bool = False
    # ``plan --analyze-locks`` can measure a plan's locks on a shadow copy (lockstats.py
    # polls PostgreSQL's pg_locks); False: it is refused.
    measures_locks: bool = False
    # What a schema of this dialect may hold besides tables and the like: default
    # privileges (ALTER DEFAULT PRIVILEGES), SQLite's table options (WITHOUT ROWID,
    # STRICT, AUTOINCREMENT), VIRTUAL generated columns. A schema with what its dialect
    # lacks is refused as it is read.
    has_default_privileges: bool = False
    has_rowid_table_options: bool = False
    # NOT NULL constraints have names (PostgreSQL 18: Column.not_null_name), and
    # not_null_constraint_name says which one the server gives an unnamed one.
    has_not_null_constraint_names: bool = False
    # A primary key column is NOT NULL only where declared so (SQLite's rowid tables:
    # Column.key_not_null says whether CREATE TABLE writes it; elsewhere keys are NOT NULL).
    nullable_key_columns: bool = False
    has_virtual_generated_columns: bool = False
    # A plan that drops a column keeps its values in an archive table of Lockplane's own
    # (archive_table), so that a rollback refills them (changes/refill_column.py).
    archives_dropped_values: bool = False
    # A plan's fill of an existing column records the key and old value of each row it
    # changes (its batches: keeping_update), for its undo to put back
    # (changes/unfill_column.py).
    records_filled_rows: bool = False
    # A plan that drops a table copies its rows into an archive table first (bounded),
    # for a rollback to refill the table it creates again (changes/refill_table.py).
    archives_dropped_tables: bool = False
    # Rows per second that copy takes (the plan's "in about N s", lockplane/predict.py):
    # bench/archive_copy.py on the 2-core CI machine under load (load average 25;
    # PostgreSQL 15, 300,000 ~100-byte rows of five columns, 40 MB with its index) gave
    # 58,000-66,000 rows/s; rounded down, so that the estimate errs long.
    archive_rows_per_s: int = 50_000
    # How the server changes a table (what the differ plans): most ALTERs rebuild the
    # table (SQLite: a new table, rows copied, renamed); a new partitioning cannot be
    # ALTERed in (the table is dropped and created again); a generated column is dropped
    # and added back when its expression or the type of a column it reads changes
    # (PostgreSQL refuses to retype a column one reads).
    alters_by_rebuild: bool = False
    repartitions_by_recreating: bool = False
    regenerates_generated_columns: bool = False
    # The version of the server a plan is made for (as the server numbers it:
    # PostgreSQL's server_version_num, 170002), asked of it when the plan's starting
    # schema was read from it (Schema.server_version, plan.build_plan); None: not known,
    # and the plan's SQL is what every supported version runs. See for_server.
    server_version: int | None = None
    # Comments are statements of their own (COMMENT ON ...), indexes' comments too;
    # False: none, or clauses of the objects' definitions (MySQL).
    has_comment_statements: bool = False
    # Constraints and indexes can be renamed in place (a multi-phase plan builds them
    # under a temporary name and renames them at the end).
    renames_constraints: bool = False
    # Each locking step's SQL sets its own lock_timeout (and statement_timeout for brief
    # steps) as the plan says (``--lock-timeout-ms``); False: the apply session sets what
    # the server has (Database.apply_session).
    step_sql_sets_timeouts: bool = False
    # Changes have lock-safe forms (CONCURRENTLY, NOT VALID + VALIDATE, ...) that plans
    # use unless told ``--no-rewrite`` (``Change.lock_safe``).
    has_lock_safe_forms: bool = False
    # Triggers run a function (CREATE FUNCTION ... RETURNS trigger); False: a trigger's
    # body is its own statements (BEGIN ... END).
    triggers_call_functions: bool = False
    # A BEFORE trigger can give the new row a value before the server checks NOT NULL
    # (a multi-phase sync trigger fills the column new code leaves out).
    before_triggers_fill_new_row: bool = True
    # Unquoted identifiers fold to lower case (PostgreSQL); False: they keep their case.
    folds_unquoted_names: bool = False
    # A renamed table can go on answering under its old name as an updatable view while
    # old code runs (the multi-phase rename_table pattern).
    renames_table_behind_view: bool = False
    # Tools ``lockplane export --to`` writes a plan out for, on this server.
    export_tools: tuple[str, ...] = ()
    # Change kinds (lockplane/changes) write their SQL per family: ``sql_<family>``,
    # ``lock_<family>`` ... (a dialect that speaks another's SQL names that one).
    sql_family: str = ""
    # Comments are clauses of the objects' definitions (MySQL's COMMENT '...': a
    # column's is restated by MODIFY COLUMN): changes/set_comment.py diffs them.
    comment_clauses: bool = False
    # Constraints (foreign keys, CHECK, UNIQUE) are added and dropped by ALTER TABLE;
    # False: only with the table (SQLite: CREATE TABLE carries them, a change rebuilds
    # the table).
    alters_constraints: bool = True
    # CREATE OR REPLACE VIEW may change a view's query and options (MySQL); False: only
    # append columns (PostgreSQL), so a changed view is dropped and created again.
    replaces_views: bool = False
    # A changed primary key or index is dropped and added in one ALTER TABLE (MySQL: the
    # table is rebuilt once, an AUTO_INCREMENT column is never left without its key, a
    # foreign key never without the index it needs).
    swaps_in_one_alter: bool = False
    # A foreign key needs an index on its columns, and the server refuses to drop the
    # one it uses (MySQL): a plan builds the new index before dropping the old.
    foreign_keys_keep_their_index: bool = False
    # A view pins the columns it reads (their type cannot change, nor can they be
    # dropped, while it exists: PostgreSQL), and the catalog records what each view reads.
    views_pin_columns: bool = False
    # One ALTER TABLE drops a CHECK, changes a column's type and adds the CHECK back,
    # checked in the same pass as the rewrite (or re-check) the type change does
    # (PostgreSQL): a CHECK over a retyped column is re-added as declared in that step.
    retypes_with_checks: bool = False
    # ALTER COLUMN ... TYPE rebuilds an index over the column from its printed text,
    # which may read back otherwise than declared (PostgreSQL: diff drops and builds
    # such an index around the type change).
    retype_rebuilds_indexes_from_text: bool = False
    # A partitioned table's index or key is made ON ONLY the parent with each
    # partition's copy attached by name (PostgreSQL; add_constraint's partition keys).
    attaches_partition_indexes: bool = False

    # The multi-phase operations (lockplane/multiphase: rename_column, change_type, ...)
    # planned on this dialect; None: all of them. Others are refused as bad input.
    multiphase_operations: tuple[str, ...] | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("sql_family") and isinstance(cls.__dict__.get("name"), str):
            cls.sql_family = cls.__dict__["name"]

    def for_server(self, version: int | None) -> Dialect:
        """This dialect as it speaks to a server of ``version`` (None: any supported
        one). A copy: the registered instance (get_dialect) stays version-less."""
        if version == self.server_version:
            return self
        import copy

        out = copy.copy(self)
        out.server_version = version
        return out

    @property
    def server_major(self) -> int | None:
        """The major version of the server a plan is made for (None: not known)."""
        return None

    def sets_generation_in_place(self, kind: str) -> bool:
        """Whether a generated column of ``kind`` (stored, virtual) takes a new expression
        in place (PostgreSQL 17's SET EXPRESSION) on the server a plan is made for; else it
        is dropped and added back (regenerates_generated_columns)."""
        return False

    def ddl_lock(self) -> Lock:
        """The lock a DDL statement takes when its change kind says nothing finer."""
        from ..changes.base import ACCESS_EXCLUSIVE

        return ACCESS_EXCLUSIVE

    def distinct_sql(self, left: str, right: str, as_type: str | None = None) -> str:
        """``left IS DISTINCT FROM right``: NULL-safe inequality. ``as_type``: the type to
        compare both as, where theirs has no equality of its own (a domain's base type:
        see compare_type); a dialect without such types ignores it."""
        return f"{left} IS DISTINCT FROM {right}"

    def type_change_narrows(self, old: str, new: str) -> bool | None:
        """Whether a column going from type ``old`` to ``new`` may not keep every value
        (None: the change kind's own rules decide)."""
        return None

    @abstractmethod
    def quote(self, ident: str) -> str:
        """Quote an identifier so any name (quotes, spaces, reserved words) is safe."""

    def qname(self, schema: str | None, name: str) -> str:
        """Qualified, quoted name of a schema object."""
        if schema:
            return f"{self.quote(schema)}.{self.quote(name)}"
        return self.quote(name)

    def literal(self, value: str) -> str:
        """A string literal; standard SQL escaping of single quotes."""
        return "'" + value.replace("'", "''") + "'"

    # Identity columns (GENERATED ... AS IDENTITY) are written as such; False: their
    # defaults are (a schema of this dialect has none).
    has_identity_columns: bool = False

    def default_expression(self, expr: str) -> str:
        """A column default as DEFAULT takes it."""
        return self.stored_expression(expr)

    def index_expression(self, expr: str) -> str:
        """An index key that is an expression, as CREATE INDEX takes it."""
        return f"({self.stored_expression(expr)})"

    def stored_expression(self, printed: str, head: str = "SELECT ") -> str:
        """SQL for an expression the server printed (a CHECK, default, generated column,
        index key or predicate) that the server stores as printed again. ``head``: what
        makes the text a statement ("" for a view's query or a trigger's definition)."""
        return printed

    def not_null_constraint_name(self, table: str, column: str) -> str:
        """The name the server gives an unnamed NOT NULL constraint of ``table.column``
        (only where has_not_null_constraint_names)."""
        raise NotImplementedError

    def error_types(self) -> tuple[type[BaseException], ...]:
        """The exceptions the driver raises when a statement fails."""
        return ()

    def lock_wait_failure(self, exc: BaseException) -> str | None:
        """What ``exc`` is, if it is a statement that gave up waiting for a lock (or lost
        a deadlock): running it again later may succeed. None: any other error."""
        return None

    # ---------------------------------------------------------------- errors
    def retry_reason(self, exc: BaseException) -> str | None:
        """Why a write batch that failed with ``exc`` is worth retrying smaller and later
        (a lock timeout, a deadlock, a busy database), or None if it is not."""
        return self.lock_wait_failure(exc)

    def is_disconnect(self, exc: BaseException) -> bool:
        """Whether ``exc`` means the session is gone (reconnecting may help)."""
        return False

    def is_read_only_violation(self, exc: BaseException) -> bool:
        """Whether ``exc`` is a write refused by a read-only transaction."""
        return False

    # ---------------------------------------------------------------- SQL forms
    def escape_for_params(self, sql: str) -> str:
        """Text safe inside a statement that runs with parameters (psycopg reads ``%``
        as a placeholder then)."""
        return sql

    def typed_param(self, sql_type: str) -> str:
        """A placeholder whose value the server reads as ``sql_type``."""
        return self.param

    def as_text(self, expr: str) -> str:
        """``expr`` as the server's text form (key values travel between sessions so)."""
        return expr

    def archived_text(self, expr: str) -> str:
        """``expr`` as text in an archive table of Lockplane's own: depending on nothing of
        the schema (a column's collation, which the plan may drop)."""
        return self.as_text(expr)

    def row_lock_wait(self, lock_timeout_ms: int) -> str:
        """What a write batch's ``lock_timeout_ms`` becomes on this server, as an operator
        reads it (Database.set_local_settings sets it)."""
        return f"lock_timeout {lock_timeout_ms} ms"

    def row_compare(self, columns: Sequence[str], op: str, placeholders: Sequence[str],
                    values: Sequence[Any]) -> tuple[str, list[Any]]:
        """``(c1, c2, ...) op (p1, p2, ...)`` for a composite key (``op``: ``>``, ``<=``
        or ``=``), as SQL and its parameter values in order; where the server walks an
        index for a row comparison (PostgreSQL, SQLite), that comparison itself."""
        return (f"({', '.join(columns)}) {op} ({', '.join(placeholders)})", list(values))

    def cast_to_column(self, expr: str, sql_type: str) -> str:
        """``expr`` converted as storing it in a column of ``sql_type`` would; unchanged
        where columns take any value (SQLite)."""
        return expr

    def json_param(self, value: Any) -> Any:
        """A JSON document as a statement parameter for a JSON state column."""
        return None if value is None else json.dumps(value)

    # ---------------------------------------------------------------- state tables
    def state_table(self, name: str) -> str:
        """Where Lockplane's state table ``name`` (migrations, backfills, ...) lives."""
        if self.state_schema:
            return f"{self.state_schema}.{name}"
        return f"_lockplane_{name}"

    def _state_module(self) -> Any:
        """The dialect folder's ``state`` module: HISTORY_DDL, BACKFILLS_DDL and
        STATE_DDL (name: statements)."""
        package = sys.modules[type(self).__module__].__package__
        try:
            return importlib.import_module(f"{package}.state")
        except ModuleNotFoundError as exc:
            if exc.name != f"{package}.state":
                raise
            raise NotImplementedError(f"{self.name}: no state tables") from None

    def history_table_sql(self) -> str:
        """DDL of the ``migrations`` history table (idempotent, may hold several
        statements)."""
        return str(self._state_module().HISTORY_DDL)

    def backfills_table_sql(self) -> str:
        """DDL of the ``backfills`` checkpoint table (idempotent)."""
        return str(self._state_module().BACKFILLS_DDL)

    def state_table_ddl(self, name: str) -> list[str]:
        """DDL of another state table (``phases``: multi-phase progress, ``drift_state``:
        drift memory), statements run one by one (idempotent)."""
        ddl: dict[str, list[str]] = self._state_module().STATE_DDL
        if name not in ddl:
            raise NotImplementedError(f"{self.name}: no state table {name}")
        return ddl[name]

    def thawed(self, printed: str, head: str = "SELECT ") -> str:
        """A printed expression (``head``: as for stored_expression) with the values of
        the time literals the server froze left out, for comparing two loads of one
        declaration ('now'::timestamp, lockplane/frozen.py); unchanged where the server
        freezes none."""
        return printed

    def archive_table(self, name: str) -> str:
        """The quoted name of the archive table ``name`` (dropped values a rollback
        refills): in Lockplane's own schema, or under the ``_lockplane_`` prefix, where
        introspection never looks."""
        if self.state_schema:
            return self.qname(self.state_schema, name)
        return self.quote(self.archive_ident(name))

    def archive_ident(self, name: str) -> str:
        """The archive table's own name, unquoted, as the catalog holds it (in
        ``state_schema`` where there is one)."""
        return name if self.state_schema else f"_lockplane_{name}"

    def archive_setup_sql(self) -> list[str]:
        """What must run before an archive table is created (its schema)."""
        return [f"CREATE SCHEMA IF NOT EXISTS {self.quote(self.state_schema)}"] \
            if self.state_schema else []

    def keeping_update(self, table: str, sets: str, where: str, archive: str,
                       key: list[str], column: str) -> list[str]:
        """The statements (run in one transaction, each with the batch's parameters; the
        last is the UPDATE, whose row count is the batch's) that update the rows of
        ``table`` where ``where`` holds (``SET sets``) and first copy their ``key`` and
        the old value of ``column`` (quoted names) into ``archive``: a batch of a fill
        whose undo puts the old values back."""
        raise NotImplementedError(f"{self.name}: no batches that record the rows they change")

    def archive_missing_sql(self, name: str) -> str:
        """A query giving 1 when the archive table ``name`` does not exist, else 0."""
        raise NotImplementedError(f"{self.name}: no archive tables")

    def timestamp_param(self, value: datetime) -> Any:
        """An aware time as a parameter for a state table's timestamp column (ISO text,
        where columns hold text)."""
        return value.astimezone(UTC).isoformat()

    def upsert_sql(self, table: str, columns: Sequence[str], key: Sequence[str]) -> str:
        """INSERT of one row (``columns``, placeholders) into the state table ``table``
        that replaces the other columns of a row with the same ``key``."""
        values = ", ".join([self.param] * len(columns))
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
        return (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({values}) "
                f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}")

    # The catalog prints a column's type in one canonical spelling (so it can be compared
    # with the type a plan recorded); False: it keeps the type as declared.
    canonical_column_types: bool = False
    # Appended to a SELECT that must lock the rows it reads until the transaction ends
    # ("" where a write transaction locks the whole database anyway).
    lock_rows_clause: str = ""

    def type_change_rewrites(self, old: str, new: str) -> bool:
        """Whether changing a column's type from ``old`` to ``new`` rewrites the table (a
        breaking change a multi-phase plan spreads over phases); False where no rule
        says so."""
        return False

    def alter_clauses(self, change: Change) -> tuple[str, str, list[str]] | None:
        """``change`` as one ALTER TABLE: (schema, table, its clauses as the change kind
        renders them), what an online schema change tool runs on its copy of the table;
        None: it is not one (or the dialect has no such tools)."""
        return None

    def has_max(self, sql_type: str) -> bool:
        """Whether ``max()`` is defined on values of ``sql_type``."""
        return True

    def sample_of(self, table_sql: str, wanted: int, total: int, seed: int) -> str:
        """A FROM item reading about ``wanted`` of the ``total`` rows of a table (quoted
        ``table_sql``), spread over the whole table."""
        every = max(1, total // max(wanted, 1))
        return f"{table_sql} WHERE abs(random()) % {every} = 0"

    def concat(self, parts_sql: Sequence[str]) -> str:
        """SQL concatenating the strings ``parts_sql`` (NULL if any is NULL)."""
        return " || ".join(parts_sql)

    def concat_skipping_nulls(self, parts_sql: Sequence[str], separator: str) -> str:
        """SQL joining the values of ``parts_sql`` with ``separator``, NULL parts and
        their separators skipped (PostgreSQL's ``concat_ws``)."""
        cols = ", ".join(parts_sql)
        return f"concat_ws({self.literal(separator)}, {cols})"

    def option_text(self, what: str, text: str) -> str | None:
        """The SQL to run for an option expression (``--set``, ``--where``) that
        PostgreSQL's parser checked (lockplane/optsql.py); None: PostgreSQL's rendering
        of the checked tree. BadInput where the dialect would read the text otherwise."""
        raise BadInput(f"{what}: SQL options are not supported on {self.name} yet")

    def own_options(self) -> Any:
        """A module that checks option SQL (``--set``, ``--where``) with this server's
        own grammar, with ``expression(text, what, calls=)``, ``condition(...)`` and
        ``assignments(text, what)`` as in lockplane/optsql.py, and ``row_columns(text,
        what, table)``: the columns of the row a declared fill names (lockplane/fill.py);
        None: PostgreSQL's parser checks them, then :meth:`option_text`."""
        return None

    def check_type_name(self, text: str, what: str) -> str | None:
        """A type name option (``--to-type``) checked by the dialect itself, the text
        to put in DDL; None: PostgreSQL's parser checks it."""
        raise BadInput(f"{what}: type name options are not supported on {self.name} yet")

    def copy_reading_unlocked(self, insert_select: str) -> list[str]:
        """Statements that run ``insert_select`` (INSERT ... SELECT copying rows of a live
        table into one of Lockplane's own) without locking the rows it reads: writers go
        on while it copies. As it is where a plain read locks nothing (PostgreSQL,
        SQLite)."""
        return [insert_select]

    def walks_rows_of(self, table: Any) -> bool:
        """Whether batches have a way through the rows of ``table`` (lockplane.model.Table,
        as before the plan): a key, or the server's row positions (PostgreSQL's ctid,
        SQLite's rowid). False: a plan's backfill step on it carries no batch spec, and
        its UPDATE runs as a plain step even where batches_backfill_steps."""
        return True

    def backfill_catalog(self) -> BackfillCatalog | None:
        """What batched backfills ask this server; None: not supported on this dialect."""
        return None

    def backup_engine(self) -> Any:
        """This server's backup engine (lockplane.backup.engine.BackupEngine: dump,
        restore, temporary copies, compare, extract, merge); None: no backups yet."""
        return None

    def copy_sample(self, shadow: Database, source_dsn: str, schema: Schema) -> list[str]:
        """Copy a sample of the source's rows into a shadow built from ``schema`` (steps
        that fail on data fail there); warnings. Where the dialect cannot: no rows, no
        warnings."""
        return []

    # ---------------------------------------------------------------- DSNs
    def server_key(self, dsn: str) -> str:
        """What identifies the server a DSN names, whichever of its databases it names
        (scratch databases made on one server are shared)."""
        return dsn

    def same_database(self, a: str, b: str) -> bool:
        """Whether two DSNs of this dialect name the same database."""
        return a == b

    def same_server(self, a: str, b: str) -> bool:
        """Whether two DSNs of this dialect reach the same server (host and port; local
        spellings of this host are one host)."""
        from urllib.parse import urlsplit

        def key(dsn: str) -> tuple[str, int | None]:
            parts = urlsplit(dsn)
            host = parts.hostname or ""
            return ("local" if host in ("", "localhost", "127.0.0.1", "::1") else host,
                    parts.port)

        try:
            return key(a) == key(b)
        except ValueError:  # (a malformed URL fails later with its own message)
            return a == b

    def database_name(self, dsn: str) -> str:
        """The database's name as an operator knows it (database, file)."""
        return dsn

    def database_next_to(self, dsn: str, suffix: str) -> str:
        """A DSN for a new database beside ``dsn``'s, named after it plus ``suffix``."""
        raise NotImplementedError(f"{self.name}: no new databases beside a target")

    def with_database(self, dsn: str, name: str) -> str:
        """A DSN for the database ``name`` beside ``dsn``'s (the same server, the same
        directory), with its other parameters."""
        raise NotImplementedError(f"{self.name}: no other databases beside a target")

    @abstractmethod
    def connect(self, dsn: str, *, create: bool = False) -> Database:
        """Open a session; BadInput (with the password redacted) if it cannot.

        ``create``: for file databases, create a missing file (only apply may do that;
        reading a mistyped path must not leave an empty database behind).
        """

    @abstractmethod
    def scratch(self, near_dsn: str | None = None) -> contextlib.AbstractContextManager[Database]:
        """A throwaway empty database of this dialect, dropped on exit."""

    def decide_locks(self, changes: Sequence[Change], before: Schema,
                     near_dsn: str | None = None) -> contextlib.AbstractContextManager[None]:
        """While the plan's steps are built: lock facts (and the lock-safe clauses of
        their SQL) decided by this dialect's server for ``changes``, as they run one after
        the other from ``before`` (MySQL tries each ALTER's ALGORITHM and LOCK on empty
        copies of its tables). No-op where the kinds' own facts are the whole story."""
        return contextlib.nullcontext()

    def default_rewrites(self, questions: Sequence[tuple[str, str | None]],
                         schema: Schema | None = None, near_dsn: str | None = None,
                         setup_sql: Sequence[str] = (),
                         ) -> dict[tuple[str, str | None], bool | None]:
        """For each (column type, default expression or None): whether ``ADD COLUMN``
        with it rewrites the table, as this dialect's server decides; None: unknown (no
        server to ask). ``schema``: the desired schema, whose own functions, sequences
        and domains a default may name (or ``setup_sql``, statements that make them, as
        a migration file does). One call asks all the questions at once."""
        return {q: None for q in questions}

    def schema_from_sqlalchemy(self, create_all: Callable[[Any], None],
                               near_dsn: str | None = None) -> Schema:
        """The schema that ``create_all(engine)`` (SQLAlchemy ``MetaData.create_all``, the
        user's own Python code, run as such) creates in a throwaway database."""
        raise NotImplementedError(f"{self.name}: no SQLAlchemy sources")

    @abstractmethod
    def load_untrusted(self, scripts: Sequence[tuple[str, str]], near_dsn: str | None = None,
                       *, allowed_extensions: Sequence[str] = (), lines: bool = True,
                       version_of: str | None = None) -> Schema:
        """The schema that untrusted SQL scripts define, read back from a throwaway database.

        ``scripts``: (where, text) pairs, ``where`` naming the script in errors (with the
        line when ``lines``). Every statement is checked before anything runs, and the
        scripts run where they can reach nothing but that database. BadInput names the
        script, line and reason of a refused or failing statement. ``version_of``: a
        database whose server version a server started for the load should match.
        """


class Database(ABC):
    """One session on one database."""

    dialect: Dialect
    dsn_display: str  # redacted, for messages

    def server_major(self) -> int | None:
        """The server's major version, where plans depend on it (None: they do not)."""
        return None

    def privileged_calls(self, statements: Sequence[str],
                         defined: Sequence[str] = ()) -> list[str]:
        """Built-in functions these statements call that the server lets no ordinary user
        run (they reach its files, programs or settings). None where there are none.
        ``defined``: the plan's SQL, whose own routines are judged by their bodies."""
        return []

    def not_one_query(self, sql: str) -> str | None:
        """Why ``sql`` is not one query (a SELECT), in words; None when it is, or where
        the dialect cannot tell (the read-only transaction it runs in is the guard)."""
        return None

    def event_triggers_paused(self, statements: Sequence[str],
                              ) -> contextlib.AbstractContextManager[None]:
        """On a scratch copy Lockplane built: the copy's event triggers do not fire while
        these statements run (none where the dialect has none)."""
        return contextlib.nullcontext()

    def function_effects(self, statements: Sequence[str], defined: Sequence[str],
                         rewrites: bool = False,
                         writes: Sequence[tuple[str | None, str]] = ()) -> list[str]:
        """What the user-defined functions these statements evaluate when they run (a
        default, an index expression, a CHECK; and what is stored on the tables they
        rewrite, validate or write to: ``rewrites``, the step's lock facts say it rewrites
        its tables; ``writes``, (schema, table) it changes rows of outside its SQL) do
        beyond computing a value, in words; ``defined``: the plan's SQL, where the
        functions it creates are found. Empty where functions are not the server's
        concern."""
        return []

    def lock_watch(self) -> LockWatch | None:
        """A second session that watches this one's lock waits (who blocks them, and
        cancelling those on request); None where the dialect has none or it cannot
        connect."""
        return None

    @property
    def closed(self) -> bool:
        """Whether the session is gone (the server ended it, or it was closed)."""
        return False

    # ---------------------------------------------------------------- sessions
    def configure_worker_session(self, application_name: str) -> None:
        """Settings for a long-running worker session: values' text forms independent of
        user settings, and a dead peer noticed in seconds. No-op by default."""
        return None

    def stable_text_session(self) -> None:
        """Values' text forms and string literals independent of user settings."""
        return None

    def hold_session_settings(self) -> None:
        """Remember this session's settings that decide what Lockplane's own SQL means
        (where names resolve, whom it runs as, how literals and values read) and what
        guards a step (its timeouts), for restore_session_settings. No-op by default."""
        return None

    def restore_session_settings(self, after: str | None = None) -> None:
        """Put back what hold_session_settings remembered. Code a step fires (a trigger, a
        CHECK's or a default's function: the database's own, not judged) may have changed
        any of them for the rest of the session; called after every statement of a step
        and every batch, before Lockplane's own SQL. ``after``: the step's statement just
        run (one that only sets settings is left to take effect). No-op where nothing is
        held."""
        return None

    def release_session_settings(self) -> None:
        """Forget what hold_session_settings remembered (restore puts nothing back)."""
        return None

    @contextlib.contextmanager
    def settings_held(self) -> Iterator[None]:
        """This session's settings held for the block (hold_session_settings), put back
        when it ends, then forgotten."""
        self.hold_session_settings()
        try:
            yield
        finally:
            self.restore_session_settings()
            self.release_session_settings()

    def set_local_settings(self, lock_timeout_ms: int | None = None,
                           statement_timeout_ms: int | None = None,
                           synchronous_commit: bool | None = None) -> None:
        """Settings for the current transaction only, in one round trip (timeouts: 0 is
        none; None leaves a setting alone); no-op where the server has no such settings."""
        return None

    def set_writer_wait(self, ms: int) -> None:
        """How long a transaction waits for another writer, where the database has one
        writer at a time (SQLite's busy timeout); no-op elsewhere."""
        return None

    @contextlib.contextmanager
    def apply_session(self, lock_timeout_ms: int) -> Iterator[None]:
        """Session settings while a plan's steps run."""
        yield

    def lock_wait_setting(self, lock_timeout_ms: int) -> str | None:
        """What apply_session makes of ``lock_timeout_ms`` where the server cannot take
        it as it is (MySQL: whole seconds), to say at the start of an apply; None where
        it is taken as given (or set by the plan's own SQL)."""
        return None

    def after_transactional_group(self) -> None:
        """Checks to run at the end of each transaction of an apply, before it commits
        (integrity a dialect enforces itself, e.g. foreign keys turned off for a
        rebuild). Raises to roll back."""
        return None

    def read_only_session(self) -> None:
        """From now on this session cannot write."""
        raise NotImplementedError(f"{self.dialect.name}: no read-only sessions")

    def read_only(self) -> contextlib.AbstractContextManager[None]:
        """A transaction (or stretch) in which this session cannot write."""
        raise NotImplementedError(f"{self.dialect.name}: no read-only transactions")

    def rowcount(self, sql: str, params: Sequence[Any] | None = None) -> int:
        """Run a write; the number of rows it touched."""
        raise NotImplementedError(f"{self.dialect.name}: no row counts")

    # ---------------------------------------------------------------- advisory locks
    # Only when ``dialect.has_advisory_locks``. A key is one or two integers.
    def try_advisory_lock(self, *key: int) -> bool:
        """Take a session-level advisory lock without waiting; whether it was taken."""
        raise NotImplementedError(f"{self.dialect.name}: no advisory locks")

    def advisory_unlock(self, *key: int) -> None:
        raise NotImplementedError(f"{self.dialect.name}: no advisory locks")

    def advisory_xact_lock(self, *key: int) -> None:
        """Wait for an advisory lock held to the end of the current transaction."""
        raise NotImplementedError(f"{self.dialect.name}: no advisory locks")

    def held_advisory_locks(self, this_database: bool = True) -> set[tuple[int, int]]:
        """Two-integer advisory keys some session holds right now (unsigned 32-bit)."""
        raise NotImplementedError(f"{self.dialect.name}: no advisory locks")

    def table_size_bytes(self, schema: str | None, table: str) -> int | None:
        """About how many bytes a table and its indexes take (the server's estimate);
        None where the server does not say."""
        return None

    def replication_lag_ms(self) -> tuple[int, float | None] | None:
        """(replicas, worst lag in ms, None if not visible); None where the dialect
        cannot see its replicas."""
        return None

    # ---------------------------------------------------------------- catalog
    def table_exists(self, schema: str | None, table: str) -> bool:
        """Whether a table (not a view) of that name exists; ``schema`` None: the
        dialect's default schema."""
        raise NotImplementedError(f"{self.dialect.name}: no table look-up")

    def column_type(self, schema: str | None, table: str, column: str) -> str | None:
        """The column's type as the catalog prints it; None when there is no such
        column."""
        raise NotImplementedError(f"{self.dialect.name}: no column look-up")

    def table_blocks(self, table_sql: str) -> int:
        """Whole storage blocks of a table (quoted ``table_sql``), for keys that walk
        physical positions (PostgreSQL's ctid)."""
        raise NotImplementedError(f"{self.dialect.name}: no physical row positions")

    def query_with_deadline(self, sql: str, timeout_s: float) -> list[tuple[Any, ...]]:
        """Run a read-only query, cancelled after ``timeout_s`` (StatementTimedOut)."""
        raise NotImplementedError(f"{self.dialect.name}: no statement deadline")

    # ---------------------------------------------------------------- state tables
    def state_table_exists(self, table: str) -> bool:
        """Whether the state table ``table`` (as :meth:`Dialect.state_table` names it)
        exists."""
        raise NotImplementedError(f"{self.dialect.name}: no state tables")

    def drop_scratch_leftovers(self, *servers: str) -> list[str]:
        """Scratch (shadow) databases left by killed processes on this database's server
        and on ``servers``, dropped; their names (none where the dialect leaves none)."""
        return []

    def insert_returning_id(self, sql: str, params: Sequence[Any]) -> int:
        """Run an INSERT of one row into a table with a generated ``id``; that id."""
        return int(self.query(f"{sql} RETURNING id", params)[0][0])

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None: ...

    @abstractmethod
    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]: ...

    @abstractmethod
    def introspect(self) -> Schema:
        """The structure of this database, minus Lockplane's own state objects."""

    @abstractmethod
    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN ... COMMIT, or ROLLBACK if the block raises."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
