"""Refill a dropped table from its archive: the data half of undoing a table drop.

A plan that drops a table (not one it creates again) first copies its rows into an
archive table of Lockplane's own (``Dialect.archive_table``: the ``lockplane`` schema on
PostgreSQL, a ``_lockplane_`` table beside the user's on SQLite), in the drop's own step
(``archive_sql_<family>``). The copy is bounded: a table with more than
``ARCHIVE_MAX_TABLE_ROWS`` rows is not copied at all (counting stops at the bound) rather
than copied for hours inside the drop's transaction, and the plan says so; a plan made
from the live database says how many rows and bytes the copy takes. A plan told not to
archive (``plan --no-archive``) copies nothing, and says the table comes back empty.

PostgreSQL keeps each column as text (the archive depends on nothing the plan may drop
afterwards: an enum, a domain). SQLite keeps each value as stored (archive columns
without a type have no affinity: an integer in a TEXT column, a blob, stay what they
are), with the rowid and an AUTOINCREMENT table's ``sqlite_sequence`` counter.

Undoing the drop creates the table again, then this step puts the rows back (identity
values and rowids as they were; the sequences of identity and serial columns, or the
AUTOINCREMENT counter, where they stood) and drops the archive, before the indexes,
constraints and triggers come back (a trigger does not fire for the refill; constraints
are checked against the rows once). It runs only where the archive exists (a shadow copy
has none; neither has a PostgreSQL table over the bound): elsewhere it is skipped with a
warning, and the table comes back empty. SQLite cannot create a table on a condition, so
there a table over the bound leaves an empty archive, and the refill puts back no rows
(the plan has said so).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Column, Table, qualified
from .base import Assessment, Change, Condition, Lock, Order, Safety, register
from .pg_common import dollar_quoted
from .rebuild_table import autoincrement
from .render import table_name

if TYPE_CHECKING:
    from ..dialects.base import Dialect

# The most rows a table drop copies (all or none): the copy runs inside the drop's step.
ARCHIVE_MAX_TABLE_ROWS = 1_000_000
_ALIAS = "lockplane_archived"


def table_archive_name(table: Table) -> str:
    """The archive table's name (unquoted, without prefix) of a dropped table."""
    digest = hashlib.sha256(json.dumps(
        [table.schema_ or "", table.name]).encode()).hexdigest()[:10]
    return f"table_{table.name.encode()[:40].decode(errors='ignore')}_{digest}"


def archived_columns(table: Table) -> list[Column]:
    """The columns whose values are kept (a generated column is computed again)."""
    return [c for c in table.columns if c.generated is None]


def archive_sql_postgres(d: Dialect, table: Table) -> list[str]:
    """Copy every row of ``table`` into its archive if it has at most
    ``ARCHIVE_MAX_TABLE_ROWS`` (counting stops there); else no archive (one an earlier
    apply of the same drop left is dropped: it says nothing of the rows now)."""
    name = d.archive_table(table_archive_name(table))
    src = table_name(d, table)
    picked = ", ".join(f"{d.archived_text(d.quote(c.name))} AS {d.quote(c.name)}"
                       for c in archived_columns(table))
    body = (f"BEGIN IF (SELECT count(*) FROM (SELECT FROM {src} LIMIT "
            f"{ARCHIVE_MAX_TABLE_ROWS + 1}) AS lockplane_rows) <= {ARCHIVE_MAX_TABLE_ROWS} "
            f"THEN CREATE TABLE IF NOT EXISTS {name} AS SELECT {picked} FROM {src} LIMIT 0; "
            f"DELETE FROM {name}; INSERT INTO {name} SELECT {picked} FROM {src}; "
            f"ELSE DROP TABLE IF EXISTS {name}; END IF; END")
    return [*d.archive_setup_sql(), f"DO {dollar_quoted(body)}"]


def _rowid(table: Table) -> str | None:
    """How a SQLite table's rowid is read (None: a WITHOUT ROWID table, or a column
    shadows each of rowid, _rowid_ and oid; an INTEGER PRIMARY KEY column still carries
    it then)."""
    if table.without_rowid:
        return None
    taken = {c.name.lower() for c in table.columns}
    return next((a for a in ("rowid", "_rowid_", "oid") if a not in taken), None)


def _archive_key(table: Table) -> str:
    """The archive's column holding the rowid: a name none of the table's columns has."""
    taken = {c.name.lower() for c in table.columns}
    name = "lockplane_rowid"
    while name in taken:
        name = "_" + name
    return name


def archive_sql_sqlite(d: Dialect, table: Table) -> list[str]:
    """Copy every row of ``table`` (with its rowid) into its archive if it has at most
    ``ARCHIVE_MAX_TABLE_ROWS``; and an AUTOINCREMENT table's counter, as the archive's own
    (DROP TABLE deletes the table's, and ids of rows deleted at the top must not be handed
    out again after a rollback). SQLite has no conditional DDL: over the bound the archive
    is left empty (one an earlier apply left is emptied)."""
    ident = d.archive_ident(table_archive_name(table))
    name, src = d.quote(ident), table_name(d, table)
    cols = [d.quote(c.name) for c in archived_columns(table)]
    auto = autoincrement(table)
    key = f"{d.quote(_archive_key(table))} INTEGER PRIMARY KEY" + (" AUTOINCREMENT" if auto
                                                                    else "")
    # (columns without a type: no affinity converts a value on the way in)
    out = [f"CREATE TABLE IF NOT EXISTS {name} ({', '.join([key, *cols])})",
           f"DELETE FROM {name}",
           f"INSERT INTO {name} SELECT {', '.join([_rowid(table) or 'NULL', *cols])} "
           f"FROM {src} WHERE (SELECT count(*) FROM (SELECT 1 FROM {src} LIMIT "
           f"{ARCHIVE_MAX_TABLE_ROWS + 1})) <= {ARCHIVE_MAX_TABLE_ROWS}"]
    if auto:
        out += _move_counter(d, table.name, ident)
    return out


def _move_counter(d: Dialect, src: str, dst: str) -> list[str]:
    """Give table ``dst`` the sqlite_sequence counter of ``src`` (none if it has none)."""
    return [f"DELETE FROM sqlite_sequence WHERE name = {d.literal(dst)}",
            f"INSERT INTO sqlite_sequence (name, seq) SELECT {d.literal(dst)}, seq FROM "
            f"sqlite_sequence WHERE name = {d.literal(src)}"]


def archive_message(d: Dialect, table: Table) -> str:
    return (f"Keeps a copy of its rows in {d.archive_table(table_archive_name(table))} "
            f"before the drop, if it has at most {ARCHIVE_MAX_TABLE_ROWS:,} rows (a bigger "
            "table is not copied, and a rollback brings it back empty: back it up first), "
            "for a rollback to put back; rows written while the step runs are not kept.")


def archive_off_message(table: Table) -> str:
    return (f"Keeps no copy of the rows of {qualified(table.schema_, table.name)}: archiving "
            "was turned off for this plan (--no-archive, or archive_dropped = false), so a "
            "rollback brings the table back empty; back it up first if its rows may be "
            "needed.")


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class RefillTable(Change):
    kind = "refill_table"
    order = Order.CREATE_TABLE
    puts_back_archived = True
    table: Table  # as it comes back

    def describe(self) -> str:
        return (f"Refill {qualified(self.table.schema_, self.table.name)} from its "
                "archive")

    def _archive(self, d: Dialect) -> str:
        return d.archive_table(table_archive_name(self.table))

    def sql_postgres(self, d: Dialect) -> list[str]:
        t, a = table_name(d, self.table), d.quote(_ALIAS)
        cols = archived_columns(self.table)
        # (a table without columns, or with generated ones only, still has rows: they
        # come back as rows of no columns, and an empty column list is a syntax error)
        names = f" ({', '.join(d.quote(c.name) for c in cols)})" if cols else ""
        values = ", ".join(d.cast_to_column(f"{a}.{d.quote(c.name)}", c.type) for c in cols)
        out = [f"INSERT INTO {t}{names} OVERRIDING SYSTEM VALUE SELECT {values} "
               f"FROM {self._archive(d)} AS {a}"]
        # The sequences its columns draw from (identity; a default's nextval: the server
        # says which, through pg_depend) move past the rows put back, never backwards, or
        # the next insert collides with them.
        rel = f"{d.literal(t)}::regclass"
        body = (f"DECLARE r record; m bigint; BEGIN FOR r IN "
                f"SELECT a.attname AS col, pg_get_serial_sequence({d.literal(t)}, a.attname)"
                f"::regclass AS seq FROM pg_attribute a WHERE a.attrelid = {rel} AND "
                "a.attidentity <> '' UNION SELECT a.attname, dep.refobjid::regclass FROM "
                "pg_attrdef ad JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = "
                "ad.adnum JOIN pg_depend dep ON dep.classid = 'pg_attrdef'::regclass AND "
                "dep.objid = ad.oid AND dep.refclassid = 'pg_class'::regclass JOIN pg_class "
                f"sq ON sq.oid = dep.refobjid AND sq.relkind = 'S' WHERE ad.adrelid = {rel} "
                f"LOOP EXECUTE format('SELECT max(%I) FROM %s', r.col, {d.literal(t)}) INTO m; "
                "IF m > coalesce(pg_sequence_last_value(r.seq), (SELECT seqstart - 1 FROM "
                "pg_sequence WHERE seqrelid = r.seq)) THEN PERFORM setval(r.seq, m); END IF; "
                "END LOOP; END")
        out.append(f"DO {dollar_quoted(body)}")
        return [*out, f"DROP TABLE {self._archive(d)}"]

    def sql_sqlite(self, d: Dialect) -> list[str]:
        t, archive = table_name(d, self.table), self._archive(d)
        rowid, key = _rowid(self.table), d.quote(_archive_key(self.table))
        cols = [d.quote(c.name) for c in archived_columns(self.table)]
        # (an INTEGER PRIMARY KEY column is the rowid: both get the same value)
        names, values = ([rowid, *cols], [key, *cols]) if rowid else (cols, cols)
        out = [f"INSERT INTO {t} ({', '.join(names)}) SELECT {', '.join(values)} "
               f"FROM {archive} ORDER BY {key}"]
        if autoincrement(self.table):
            # (the counter the archive kept is at least the highest id put back)
            out += _move_counter(d, d.archive_ident(table_archive_name(self.table)),
                                 self.table.name)
        return [*out, f"DROP TABLE {archive}"]

    def condition(self, d: Dialect) -> Condition:
        name = qualified(self.table.schema_, self.table.name)
        return Condition(
            d.archive_missing_sql(table_archive_name(self.table)),
            warning=(f"{name} comes back empty: its rows were not archived (more than "
                     f"{ARCHIVE_MAX_TABLE_ROWS:,}, or the archive is gone); restore them "
                     "from a backup"))

    def inverse(self) -> list[Change]:
        return []  # the table's own undo (dropping it again) takes the rows

    def lock_postgres(self, d: Dialect) -> Lock:
        return Lock("ROW EXCLUSIVE", False, False, scans_table=False)

    def assess(self, d: Dialect) -> Assessment:
        return Assessment(Safety.SAFE, (
            f"Inserts the archived rows (at most {ARCHIVE_MAX_TABLE_ROWS:,}) into the "
            "table it creates again, before its indexes, constraints and triggers; skipped "
            "where the archive does not exist.",))

    def table_key(self) -> tuple[str, str]:
        return (self.table.schema_ or "", self.table.name)
