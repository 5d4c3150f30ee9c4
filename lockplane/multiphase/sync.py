"""Compatibility machinery shared by the patterns: triggers that keep two columns in sync
while old and new code run side by side, and the batched backfill step.

The sync objects are ordinary functions and triggers of the table's schema (named
``_lp_sync_…``), so they are introspected like anything else: every intermediate state has
an exact hash, and the final diff to the desired schema drops them by itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..changes.base import Change
from ..changes.create_function import CreateFunction
from ..changes.create_trigger import CreateTrigger
from ..dialects.base import Dialect
from ..model import Function, Table, Trigger


@dataclass(frozen=True)
class SyncPair:
    """Keep ``old`` and ``new`` of one table equal (through conversions) on every write.

    ``to_new``/``to_old`` are SQL expressions over the placeholder ``{}`` (the other
    column's value), e.g. ``CAST({} AS bigint)``; plain copies use ``{}``.
    """

    table: Table
    old: str
    new: str
    to_new: str = "{}"
    to_old: str = "{}"
    # The types each column's values are compared as (alter_column.compare_type)
    old_as: str | None = None
    new_as: str | None = None

    @property
    def base_name(self) -> str:
        # Identifiers are at most 63 bytes in PostgreSQL: keep the name short and stable.
        raw = f"_lp_sync_{self.table.name}_{self.new}"
        return raw[:55]


def sync_changes(pair: SyncPair, d: Dialect) -> list[Change]:
    """The function + trigger(s) that mirror writes between the two columns."""
    if d.triggers_call_functions:
        return _postgres(pair, d)
    if d.before_triggers_fill_new_row:
        return _set_new(pair, d)
    return _sqlite(pair, d)


def _postgres(p: SyncPair, d: Dialect) -> list[Change]:
    schema = p.table.schema_ or "public"
    old, new = d.quote(p.old), d.quote(p.new)
    to_new = p.to_new.format(f"NEW.{old}")
    to_old = p.to_old.format(f"NEW.{new}")
    fn_name = p.base_name
    # BEFORE trigger: NOT NULL and CHECK constraints see the synced values.
    # On INSERT the column the writer set wins; on UPDATE the column that changed wins.
    body = (
        f"CREATE OR REPLACE FUNCTION {d.qname(schema, fn_name)}()\n"
        " RETURNS trigger\n"
        " LANGUAGE plpgsql\n"
        "AS $lp_sync$\n"
        "BEGIN\n"
        "  IF TG_OP = 'INSERT' THEN\n"
        f"    IF NEW.{new} IS NULL THEN NEW.{new} := {to_new};\n"
        f"    ELSE NEW.{old} := {to_old};\n"
        "    END IF;\n"
        f"  ELSIF {d.distinct_sql(f'NEW.{new}', f'OLD.{new}', p.new_as)} THEN\n"
        f"    NEW.{old} := {to_old};\n"
        f"  ELSIF {d.distinct_sql(f'NEW.{old}', f'OLD.{old}', p.old_as)} THEN\n"
        f"    NEW.{new} := {to_new};\n"
        "  END IF;\n"
        "  RETURN NEW;\n"
        "END\n"
        "$lp_sync$\n")
    fn = Function(name=fn_name, schema=schema, identity_arguments="", kind="function",
                  definition=body)
    trig = Trigger(name=fn_name, definition=(
        f"CREATE TRIGGER {d.quote(fn_name)} BEFORE INSERT OR UPDATE ON "
        f"{d.qname(schema, p.table.name)} FOR EACH ROW EXECUTE FUNCTION "
        f"{d.qname(schema, fn_name)}()"))
    return [CreateFunction(fn), CreateTrigger(schema, p.table.name, trig)]


def _sqlite(p: SyncPair, d: Dialect) -> list[Change]:
    t = d.quote(p.table.name)
    old, new = d.quote(p.old), d.quote(p.new)
    name = p.base_name
    # AFTER triggers updating the row by rowid; SQLite does not re-fire triggers from a
    # trigger's own UPDATE (recursive_triggers is off), so the pair cannot loop.
    ins = (f"CREATE TRIGGER {d.quote(name + '_ins')} AFTER INSERT ON {t} BEGIN "
           f"UPDATE {t} SET {new} = {p.to_new.format('NEW.' + old)} "
           f"WHERE rowid = NEW.rowid AND NEW.{new} IS NULL; "
           f"UPDATE {t} SET {old} = {p.to_old.format('NEW.' + new)} "
           f"WHERE rowid = NEW.rowid AND NEW.{new} IS NOT NULL; END")
    upd_new = (f"CREATE TRIGGER {d.quote(name + '_upd_new')} AFTER UPDATE OF {new} ON {t} "
               f"WHEN NEW.{new} IS NOT OLD.{new} BEGIN "
               f"UPDATE {t} SET {old} = {p.to_old.format('NEW.' + new)} "
               f"WHERE rowid = NEW.rowid; END")
    upd_old = (f"CREATE TRIGGER {d.quote(name + '_upd_old')} AFTER UPDATE OF {old} ON {t} "
               f"WHEN NEW.{old} IS NOT OLD.{old} AND NEW.{new} IS OLD.{new} BEGIN "
               f"UPDATE {t} SET {new} = {p.to_new.format('NEW.' + old)} "
               f"WHERE rowid = NEW.rowid; END")
    schema = p.table.schema_ or "main"
    return [CreateTrigger(schema, p.table.name, Trigger(name=name + sfx, definition=sql))
            for sfx, sql in (("_ins", ins), ("_upd_new", upd_new), ("_upd_old", upd_old))]


def _set_new(p: SyncPair, d: Dialect) -> list[Change]:
    """Triggers whose body is their own statements and that may set the new row before
    the server checks it (MySQL / MariaDB): BEFORE INSERT and BEFORE UPDATE triggers with
    ``SET NEW.col = ...`` in a BEGIN ... END block. A trigger cannot write its own table
    there, so the row is given both values before it is stored. The definitions are
    written as introspection prints them (``... FOR EACH ROW <body>``), so every
    intermediate state has the hash the plan expects."""
    t = d.qname(p.table.schema_, p.table.name)
    old, new = d.quote(p.old), d.quote(p.new)
    to_new = p.to_new.format(f"NEW.{old}")
    to_old = p.to_old.format(f"NEW.{new}")
    name = p.base_name
    # On INSERT the column the writer set wins; on UPDATE the column that changed wins.
    ins = (f"CREATE TRIGGER {d.quote(name + '_ins')} BEFORE INSERT ON {t} FOR EACH ROW "
           f"BEGIN IF NEW.{new} IS NULL THEN SET NEW.{new} = {to_new}; "
           f"ELSE SET NEW.{old} = {to_old}; END IF; END")
    upd = (f"CREATE TRIGGER {d.quote(name + '_upd')} BEFORE UPDATE ON {t} FOR EACH ROW "
           f"BEGIN IF {d.distinct_sql(f'NEW.{new}', f'OLD.{new}')} THEN "
           f"SET NEW.{old} = {to_old}; "
           f"ELSEIF {d.distinct_sql(f'NEW.{old}', f'OLD.{old}')} THEN "
           f"SET NEW.{new} = {to_new}; END IF; END")
    schema = p.table.schema_ or ""
    return [CreateTrigger(schema, p.table.name, Trigger(name=name + sfx, definition=sql))
            for sfx, sql in (("_ins", ins), ("_upd", upd))]
