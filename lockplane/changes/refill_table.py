"""Refill a dropped table from its archive: the data half of undoing a table drop.

A plan that drops a table (not one it creates again) first copies its rows into an
archive table of Lockplane's own (``Dialect.archive_table``: the ``lockplane`` schema),
each column as text (the archive depends on nothing the plan may drop afterwards: an
enum, a domain), in the drop's own step (``archive_sql``). The copy is bounded: a table
with more than ``ARCHIVE_MAX_TABLE_ROWS`` rows is not copied at all (counting stops at
the bound) rather than copied for hours inside the drop's transaction, and the plan says
so; a plan made from the live database says how many rows and bytes the copy takes.

Undoing the drop creates the table again, then this step puts the rows back (identity
values as they were; the sequences of identity and serial columns moved past them) and
drops the archive, before the indexes, constraints and triggers come back (a trigger does
not fire for the refill; constraints are checked against the rows once). It runs only
where the archive exists (a shadow copy has none; neither has a table over the bound):
elsewhere it is skipped with a warning, and the table comes back empty.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Column, Table, qualified
from .base import Assessment, Change, Condition, Lock, Order, Safety, register
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


def _dollar(body: str) -> str:
    tag = "$lockplane$"
    while tag in body:
        tag = tag[:-1] + "_$"
    return f"{tag} {body} {tag}"


def archive_sql(d: Dialect, table: Table) -> list[str]:
    """PostgreSQL: copy every row of ``table`` into its archive if it has at most
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
    return [*d.archive_setup_sql(), f"DO {_dollar(body)}"]


def archive_message(d: Dialect, table: Table) -> str:
    return (f"Keeps a copy of its rows in {d.archive_table(table_archive_name(table))} "
            f"before the drop, if it has at most {ARCHIVE_MAX_TABLE_ROWS:,} rows (a bigger "
            "table is not copied, and a rollback brings it back empty: back it up first), "
            "for a rollback to put back; rows written while the step runs are not kept.")


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class RefillTable(Change):
    kind = "refill_table"
    order = Order.CREATE_TABLE
    table: Table  # as it comes back

    def describe(self) -> str:
        return (f"Refill {qualified(self.table.schema_, self.table.name)} from its "
                "archive")

    def _archive(self, d: Dialect) -> str:
        return d.archive_table(table_archive_name(self.table))

    def sql_postgres(self, d: Dialect) -> list[str]:
        t, a = table_name(d, self.table), d.quote(_ALIAS)
        cols = archived_columns(self.table)
        names = ", ".join(d.quote(c.name) for c in cols)
        values = ", ".join(d.cast_to_column(f"{a}.{d.quote(c.name)}", c.type) for c in cols)
        out = [f"INSERT INTO {t} ({names}) OVERRIDING SYSTEM VALUE SELECT {values} "
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
        out.append(f"DO {_dollar(body)}")
        return [*out, f"DROP TABLE {self._archive(d)}"]

    def condition(self, d: Dialect) -> Condition:
        name = qualified(self.table.schema_, self.table.name)
        return Condition(
            d.archive_missing_sql(table_archive_name(self.table)),
            warning=(f"{name} comes back empty: its rows were not archived (more than "
                     f"{ARCHIVE_MAX_TABLE_ROWS:,}, or the archive is gone); restore them "
                     "from a backup"))

    def inverse(self) -> list[Change]:
        return []  # the table's own undo (dropping it again) takes the rows

    def lock(self, d: Dialect) -> Lock:
        return Lock("ROW EXCLUSIVE", False, False, scans_table=False)

    def assess(self, d: Dialect) -> Assessment:
        return Assessment(Safety.SAFE, (
            f"Inserts the archived rows (at most {ARCHIVE_MAX_TABLE_ROWS:,}) into the "
            "table it creates again, before its indexes, constraints and triggers; skipped "
            "where the archive does not exist.",))

    def table_key(self) -> tuple[str, str]:
        return (self.table.schema_ or "", self.table.name)
