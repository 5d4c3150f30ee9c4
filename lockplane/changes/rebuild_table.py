"""SQLite's table rebuild: the documented 12-step procedure for changes ALTER cannot make.

https://www.sqlite.org/lang_altertable.html#otheralter. The step carries the table as it
is and as it must be; its SQL, inside the plan's one transaction, is:

1. a guard that fails unless ``PRAGMA foreign_keys`` is OFF (it must be set *outside*
   the transaction: with it ON, ``DROP TABLE`` deletes every row first and fires the
   children's ON DELETE CASCADE / SET NULL actions);
2. ``CREATE TABLE "_lockplane_new_<name>"`` with the new definition, FKs inline;
3. ``INSERT INTO`` it the columns both definitions share, from the old table;
   and, for an AUTOINCREMENT table, carry its ``sqlite_sequence`` counter over;
4. ``DROP TABLE`` the old one (its indexes and triggers go with it);
5. ``ALTER TABLE`` the new one ``RENAME TO`` the old name, with
   ``PRAGMA legacy_alter_table=ON`` for that one statement: by default SQLite re-parses
   the whole schema on a rename, and every view or trigger (on any table) that names the
   dropped table fails that check ("error in view v: no such table: main.t"). The
   legacy mode skips the check; since the final name is the old one, those views and
   triggers are right again without being touched, so none has to be found, dropped
   and recreated;
6. the new definition's indexes and triggers.

``checks_sqlite`` returns queries that must return no rows before COMMIT
(``PRAGMA foreign_key_check`` of the table and of the tables that reference it); an
executor runs them and rolls back if any returns a row. ``requires_foreign_keys_off``
tells an executor to turn foreign keys off around the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from ..model import Column, Table, qualified
from .base import CHANGE_ANNOTATORS, Assessment, Change, Finding, Lock, Order, Safety, register
from .create_table import create_table_sql
from .render import index_sql

if TYPE_CHECKING:
    from ..dialects.base import Dialect
    from ..model import Schema

NEW_PREFIX = "_lockplane_new_"  # '_lockplane_' names are Lockplane's own (introspection skips them)
_GUARD = "_lockplane_fk_guard"
_GUARD_MESSAGE = "rebuilding a table needs PRAGMA foreign_keys=OFF, set outside the transaction"

REBUILD_LOCK = Lock("DATABASE WRITE", False, True, rewrites_table=True, scans_table=True)


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class RebuildTable(Change):
    kind = "rebuild_table"
    risk_rule = "sqlite-table-rebuild"  # the lockplane.rules id of what assess() reports
    order = Order.REBUILD_TABLE
    # The executor must run ``PRAGMA foreign_keys=OFF`` before BEGIN and restore it after
    # COMMIT (a foreign_keys pragma inside a transaction is silently ignored).
    requires_foreign_keys_off: ClassVar[bool] = True
    before: Table
    after: Table
    # Tables whose foreign keys reference this one (filled by the differ): checked after
    # the copy, since a type or key change can break their references.
    referencing_tables: list[str] = field(default_factory=list)
    # Set by keep_rebuilt_values (a plan's own rebuilds): the columns it drops keep their
    # values in an archive under ``archive_key`` (empty: not archived), and the inverse
    # refills them (changes.refill_column, changes.enforce_not_null).
    keep_data: bool = False
    archive_key: list[str] = field(default_factory=list)
    # The plan was told to keep no copy (turn_archive_off): it says the dropped columns
    # come back NULL.
    archive_turned_off: bool = False

    # ------------------------------------------------------------------ reading
    def _name(self) -> str:
        return qualified(self.after.schema_, self.after.name)

    def _dropped(self) -> list[Column]:
        keep = {c.name for c in self.after.columns}
        return [c for c in self.before.columns if c.name not in keep]

    def _added(self) -> list[Column]:
        had = {c.name for c in self.before.columns}
        return [c for c in self.after.columns if c.name not in had]

    def _altered(self) -> list[tuple[Column, Column]]:
        old = {c.name: c for c in self.before.columns}
        out = []
        for col in self.after.columns:
            prev = old.get(col.name)
            if prev is not None and _col_state(prev) != _col_state(col):
                out.append((prev, col))
        return out

    def _type_changes(self) -> list[tuple[Column, Column]]:
        return [(b, a) for b, a in self._altered() if b.type.upper() != a.type.upper()]

    def _constraint_changes(self) -> list[str]:
        from ..diff import match_named, same

        out: list[str] = []
        b, a = self.before, self.after
        bpk, apk = b.primary_key, a.primary_key
        # AUTOINCREMENT is a table option here (see _option_changes), not a new key.
        if not (same(bpk, apk, "autoincrement") if bpk and apk else bpk == apk):
            old = f"({', '.join(bpk.columns)})" if bpk else "none"
            new = f"({', '.join(apk.columns)})" if apk else "none"
            out.append(f"primary key {old} -> {new}")
        labels = {"unique_constraints": "unique", "check_constraints": "check",
                  "foreign_keys": "foreign key"}
        for group, label in labels.items():
            changed, dropped, added = match_named(getattr(b, group), getattr(a, group))
            out += [f"alter {label} {_con_label(new)}" for _, new in changed]
            out += [f"drop {label} {_con_label(c)}" for c in dropped]
            out += [f"add {label} {_con_label(c)}" for c in added]
        return out

    def _option_changes(self) -> list[str]:
        b, a = self.before, self.after
        out = []
        for label, was, now in (("AUTOINCREMENT", autoincrement(b), autoincrement(a)),
                                ("WITHOUT ROWID", b.without_rowid, a.without_rowid),
                                ("STRICT", b.strict, a.strict)):
            if was != now:
                out.append(f"{'add' if now else 'drop'} {label}")
        return out

    def describe(self) -> str:
        parts = [f"add column {c.name}" for c in self._added()]
        parts += [f"drop column {c.name}" for c in self._dropped()]
        for prev, col in self._altered():
            parts.append(f"alter column {col.name} ({', '.join(_aspects(prev, col))})")
        parts += self._constraint_changes()
        parts += self._option_changes()
        what = "; ".join(parts) or "recreate its definition"
        return f"Rebuild table {self._name()} (SQLite cannot ALTER it in place): {what}"

    # ---------------------------------------------------------------------- SQL
    def _copy_sql(self, d: Dialect, new_name: str) -> str | None:
        old = {c.name: c for c in self.before.columns}
        targets: list[str] = []
        sources: list[str] = []
        for col in self.after.columns:
            prev = old.get(col.name)
            if prev is None or col.generated is not None:
                continue  # new columns take their default; generated ones compute themselves
            expr = d.quote(col.name)
            if not col.nullable and prev.nullable and col.default is not None:
                # Becoming NOT NULL with a default: old NULLs take the default, not fail.
                expr = f"COALESCE({expr}, ({col.default}))"
            targets.append(col.name)
            sources.append(expr)
        names = [d.quote(t) for t in targets]
        rowid = self._rowid_alias(targets)
        if rowid is not None:
            # Keep rowids: see _rowid_alias.
            names.insert(0, rowid)
            sources.insert(0, rowid)
        if not names:
            return None  # nothing in common: no value can be carried over
        return (f"INSERT INTO {d.quote(new_name)} ({', '.join(names)})\n"
                f"  SELECT {', '.join(sources)} FROM {d.quote(self.before.name)}")

    def _rowid_alias(self, copied: list[str]) -> str | None:
        """A name for the rowid usable on both sides, when the rowid should be copied.

        Whenever both tables are rowid tables (not WITHOUT ROWID): a plain copy would
        renumber the rows, and whatever is keyed on rowid (an FTS5 external-content
        index, code that stored rowids, a table without a primary key whose rows have no
        other identity) would then point at other rows. Not when the new table's INTEGER
        PRIMARY KEY is a copied column: that column already carries the rowid. None too
        when a column shadows each of rowid, _rowid_ and oid.
        """
        if self.before.without_rowid or self.after.without_rowid:
            return None
        if (ipk := _integer_primary_key(self.after)) is not None and ipk in copied:
            return None
        taken = {c.name.lower() for t in (self.before, self.after) for c in t.columns}
        return next((a for a in ("rowid", "_rowid_", "oid") if a not in taken), None)

    def sql_sqlite(self, d: Dialect) -> list[str]:
        name = self.after.name
        new_name = NEW_PREFIX + name
        guard = d.quote(_GUARD)
        out = [
            # Fails with a CHECK error naming the requirement when foreign keys are on.
            f"CREATE TEMP TABLE {guard} (foreign_keys INTEGER CONSTRAINT "
            f"{d.quote(_GUARD_MESSAGE)} CHECK (foreign_keys = 0))",
            f"INSERT INTO temp.{guard} SELECT foreign_keys FROM pragma_foreign_keys",
            f"DROP TABLE temp.{guard}",
            *self._archive_sql(d),
            create_table_sql(d, self.after, inline_fks=True, name=new_name),
        ]
        copy = self._copy_sql(d, new_name)
        if copy is not None:
            out.append(copy)
        out += self._sequence_sql(d, new_name)
        out += [
            f"DROP TABLE {d.quote(self.before.name)}",
            "PRAGMA legacy_alter_table = ON",
            f"ALTER TABLE {d.quote(new_name)} RENAME TO {d.quote(name)}",
            "PRAGMA legacy_alter_table = OFF",
        ]
        out += [index_sql(d, self.after.schema_, name, ix) for ix in self.after.indexes]
        out += [t.definition for t in self.after.triggers]
        return out

    def _sequence_sql(self, d: Dialect, new_name: str) -> list[str]:
        """Keep an AUTOINCREMENT counter: the copy leaves the new table's at its highest
        copied id, so ids of rows deleted at the top would be handed out again. DROP TABLE
        deletes the old table's sqlite_sequence row; the rename renames the new one's."""
        if not (autoincrement(self.before) and autoincrement(self.after)):
            return []
        old, new = d.literal(self.before.name), d.literal(new_name)
        return [
            "UPDATE sqlite_sequence SET seq = (SELECT max(seq) FROM sqlite_sequence "
            f"WHERE name IN ({old}, {new})) WHERE name = {new}",
            # No row yet for the new table when nothing was copied (an emptied table).
            f"INSERT INTO sqlite_sequence (name, seq) SELECT {new}, seq FROM sqlite_sequence "
            f"WHERE name = {old} AND NOT EXISTS "
            f"(SELECT 1 FROM sqlite_sequence WHERE name = {new})",
        ]

    def checks_sqlite(self, d: Dialect) -> list[str]:
        """Queries that must return no rows before COMMIT (or the migration fails)."""
        names = [self.after.name]
        names += [n for n in dict.fromkeys(self.referencing_tables) if n not in names]
        return [f"PRAGMA foreign_key_check({d.quote(n)})" for n in names]

    def transactional(self, d: Dialect) -> bool:
        return True

    # ------------------------------------------------------------------ rollback
    def _archived(self) -> list[Column]:
        """The dropped columns whose values this step archives."""
        if not (self.keep_data and self.archive_key):
            return []
        return [c for c in self._dropped() if c.generated is None]

    def _archive_sql(self, d: Dialect) -> list[str]:
        kept = self._archived()
        if not kept:
            return []
        from .refill_column import archive_sql

        return archive_sql(d, self.before, self.archive_key, kept)

    def _strict_dropped(self) -> list[Column]:
        """Dropped NOT NULL columns with nothing to fill them: they come back nullable."""
        if not self.keep_data:
            return []
        return [c for c in self._dropped()
                if not c.nullable and c.default is None and c.generated is None]

    def inverse(self) -> list[Change]:
        strict = self._strict_dropped()
        kept = self._archived()
        if not (strict or kept):
            return [RebuildTable(self.after, self.before,
                                 referencing_tables=list(self.referencing_tables))]
        from .enforce_not_null import EnforceNotNull
        from .refill_column import RefillColumn

        loose = {c.name for c in strict}
        now = self.before.model_copy(deep=True)
        now.columns = [c.model_copy(update={"nullable": True}) if c.name in loose else c
                       for c in now.columns]
        out: list[Change] = [RebuildTable(self.after, now,
                                          referencing_tables=list(self.referencing_tables))]
        if kept:
            back = [now.column(c.name) for c in kept]
            out.append(RefillColumn(now, list(self.archive_key),
                                    [c for c in back if c is not None]))
        for col in strict:
            out.append(EnforceNotNull(now, col))
            now = now.model_copy(deep=True)
            now.columns = [col if c.name == col.name else c for c in now.columns]
        return out

    def turn_archive_off(self) -> None:
        if self._archived():
            self.archive_key, self.archive_turned_off = [], True

    def rollback_stake(self) -> dict[str, Any] | None:
        # Rebuilding back to the old definition drops the columns this step added.
        added = [c.name for c in self._added() if c.generated is None]
        if not added:
            return None
        return {"what": "columns", "schema": self.after.schema_ or "",
                "table": self.after.name, "columns": added}

    def rollback_note(self) -> str:
        notes = ["rebuilds the table back to its previous definition"]
        dropped = self._dropped()
        kept = self._archived()
        if kept:
            notes.append(f"{', '.join(c.name for c in kept)} (dropped by this step) are "
                         "refilled from the archive this step keeps")
        lost = [c for c in dropped if c not in kept]
        if lost:
            names = ", ".join(c.name for c in lost)
            off = (" (archiving was turned off for this plan: --no-archive, or "
                   "archive_dropped = false)"
                   if self.archive_turned_off else "")
            notes.append(f"the values of {names} (dropped by this step) are not "
                         f"restored{off}: they come back NULL or as their default")
        if self._strict_dropped():
            notes.append(f"{', '.join(c.name for c in self._strict_dropped())} get NOT NULL "
                         "back only if every row has a value, else stay nullable and the "
                         "rollback says how many rows have none")
        elif dropped:
            strict = [c.name for c in dropped
                      if not c.nullable and c.default is None and c.generated is None]
            if strict:
                notes.append(f"it fails if the table has rows, since {', '.join(strict)} "
                             "is NOT NULL without a default")
        if self._type_changes():
            notes.append("values converted to a new type are converted back by the old "
                         "type's affinity, not restored exactly")
        return "; ".join(notes)

    # ---------------------------------------------------------------- safety facts
    def lock(self, d: Dialect) -> Lock:
        return REBUILD_LOCK

    def assess(self, d: Dialect) -> Assessment:
        name = self._name()
        msgs = [f"SQLite cannot ALTER {name} this way: the table is rebuilt (new table, "
                "copy of every row, drop, rename) while holding the database write lock; "
                "how long depends on its row count, unknown at plan time."]
        safety = Safety.REVIEW
        dropped = self._dropped()
        if dropped:
            safety = Safety.DANGEROUS
            msgs.append(f"Dropping {', '.join(c.name for c in dropped)} permanently "
                        "deletes their values, and running code that uses them breaks.")
            if self._archived():
                from .refill_column import archive_message

                msgs.append(archive_message(d, self.before, self.archive_key,
                                            self._archived()))
            elif self.archive_turned_off:
                from .refill_column import archive_off_message

                msgs.append(archive_off_message(self.before, dropped))
        changes = self._type_changes()
        if changes:
            if safety.rank < Safety.LOSSY.rank:
                safety = Safety.LOSSY
            for b, a in changes:
                msgs.append(f"{a.name} changes type {b.type or '(none)'} -> "
                            f"{a.type or '(none)'}: SQLite converts each value by the new "
                            "type's affinity where it can and keeps it as is otherwise.")
        msgs += self._may_fail()
        # The rebuild's own finding (its class covers the dropped and retyped columns),
        # and one per table option or column kind the rebuild drops or switches; the
        # worst first, so a refusal names it (and its message) rather than the rebuild.
        findings = [Finding(self.risk_rule, msgs[0], safety), *self._option_findings()]
        findings.sort(key=lambda f: -f.effective_safety.rank)  # stable: ties keep order
        return Assessment(findings[0].effective_safety,
                          tuple(f.message for f in findings) + tuple(msgs[1:]),
                          tuple(findings))

    def _option_findings(self) -> list[Finding]:
        """What dropping AUTOINCREMENT, WITHOUT ROWID or STRICT, or switching a generated
        column's kind, changes for the application (a schema file written before Lockplane
        modelled these does not state them, so planning from it drops them)."""
        b, a = self.before, self.after
        name = self._name()
        out = []
        if autoincrement(b) and not autoincrement(a):
            key = b.primary_key.columns[0] if b.primary_key else "id"
            out.append(Finding("sqlite-drop-autoincrement", (
                f"{name} loses AUTOINCREMENT: the rebuild discards its sqlite_sequence "
                f"counter, and SQLite then gives a new row max({key}) + 1, so the ids of "
                "deleted rows (those above the highest remaining id) are handed out again: "
                "anything that kept an old id (another table or system, a cache, a URL, a "
                "log) then points at a different row.")))
        if b.without_rowid and not a.without_rowid:
            ipk = _integer_primary_key(a)
            if ipk is None:
                how = ("it gains a hidden rowid (SELECT rowid now works, and "
                       "last_insert_rowid() reports it), its rows are stored by rowid with "
                       "the primary key in a separate index (lookups by key take a second "
                       "search, and the file grows), and a SELECT without ORDER BY no "
                       "longer returns them in key order")
            else:
                how = (f"its INTEGER PRIMARY KEY {ipk} becomes the rowid: the rebuild fails "
                       "if a key is not an integer, and an insert that gives it NULL then "
                       "gets a new id instead of failing")
            out.append(Finding("sqlite-drop-without-rowid",
                               f"{name} stops being WITHOUT ROWID: {how}."))
        if b.strict and not a.strict:
            out.append(Finding("sqlite-drop-strict", (
                f"{name} stops being STRICT: SQLite no longer refuses a value that does not "
                "fit its column's type (text in an INTEGER column is stored as text), so "
                "code that relied on those errors stops getting them"
                + self._any_columns_note() + ".")))
        old = {c.name: c for c in b.columns}
        for col in a.columns:
            prev = old.get(col.name)
            if prev is None or prev.generated is None or col.generated is None \
                    or prev.generated_kind == col.generated_kind:
                continue
            if col.generated_kind == "stored":
                what = ("becomes STORED: its value is computed on every write and kept in "
                        "each row (the rebuild computes it for every existing row, and the "
                        "table grows)")
            else:
                what = ("becomes VIRTUAL: its value is no longer kept in the rows but "
                        "computed on every read (reads that use it cost more, the table "
                        "shrinks)")
            out.append(Finding("sqlite-generated-kind-change",
                               f"Generated column {col.name} of {name} {what}."))
        return out

    def _any_columns_note(self) -> str:
        anys = [c.name for c in self.after.columns if c.type.strip().upper() == "ANY"]
        if not anys:
            return ""
        return (f"; {', '.join(anys)} (type ANY) then has NUMERIC affinity: text that looks "
                "like a number is stored as a number")

    def _may_fail(self) -> list[str]:
        out = []
        old = {c.name: c for c in self.before.columns}
        for col in self.after.columns:
            prev = old.get(col.name)
            if col.nullable or col.generated is not None:
                continue
            if prev is None and col.default is None:
                out.append(f"New column {col.name} is NOT NULL without a default: the "
                           "rebuild fails if the table has rows.")
            elif prev is not None and prev.nullable and col.default is None:
                out.append(f"{col.name} becomes NOT NULL: the rebuild fails if any row "
                           "holds NULL in it.")
        added = [c for c in self._constraint_changes()
                 if c.startswith(("add", "alter"))
                 or (c.startswith("primary key") and not c.endswith("-> none"))]
        if added:
            out.append("New constraints (" + "; ".join(added) + ") are checked against "
                       "every existing row: the rebuild fails if one violates them.")
        b, a = self.before, self.after
        if a.strict and not b.strict:
            out.append("The table becomes STRICT: the rebuild fails if a value does not fit "
                       "its column's type (text in an INTEGER column, say).")
        if a.without_rowid and not b.without_rowid:
            out.append("The table becomes WITHOUT ROWID: the rebuild fails if a primary key "
                       "column holds NULL (a rowid table allows it), and code that reads "
                       "rowid breaks.")
        return out

    def table_key(self) -> tuple[str, str]:
        return (self.after.schema_ or "", self.after.name)


def _integer_primary_key(t: Table) -> str | None:
    """The column that is the rowid of a rowid table (its one-column INTEGER PRIMARY
    KEY), if it has one."""
    pk = t.primary_key
    if t.without_rowid or pk is None or len(pk.columns) != 1:
        return None
    col = t.column(pk.columns[0])
    return col.name if col is not None and col.type.strip().upper() == "INTEGER" else None


def autoincrement(t: Table) -> bool:
    return t.primary_key is not None and t.primary_key.autoincrement


def _col_state(c: Column) -> dict[str, object]:
    return c.model_dump(exclude={"comment", "renamed_from", "fill_with", "is_primary_key"})


def _aspects(b: Column, a: Column) -> list[str]:
    out = []
    if b.type != a.type:
        out.append(f"type {b.type or '(none)'} -> {a.type or '(none)'}")
    if b.nullable != a.nullable:
        out.append("NULL allowed" if a.nullable else "NOT NULL")
    if b.default != a.default:
        out.append(f"default {a.default}" if a.default is not None else "no default")
    if b.generated != a.generated:
        out.append(f"generated as {a.generated}" if a.generated is not None
                   else "no longer generated")
    elif a.generated is not None and b.generated_kind != a.generated_kind:
        out.append(a.generated_kind.upper())
    if b.collation != a.collation:
        out.append(f"collation {a.collation or 'default'}")
    return out or ["definition"]


def _con_label(c: object) -> str:
    name = getattr(c, "name", None)
    if name:
        return name
    expr = getattr(c, "expression", None)
    if expr is not None:
        return f"({expr})"
    columns = getattr(c, "columns", [])
    label = f"({', '.join(columns)})"
    ref = getattr(c, "referenced_table", None)
    return f"{label} -> {ref}" if ref else label


def keep_rebuilt_values(changes: list[Change], before: Schema, after: Schema,
                        d: Dialect) -> None:
    """A plan's own rebuilds that drop columns keep their values for a rollback."""
    if not d.archives_dropped_values:
        return
    from .drop_column import kept_key

    for c in changes:
        if isinstance(c, RebuildTable) and c._dropped():
            c.keep_data = True
            c.archive_key = kept_key(c.before, c.after, {x.name for x in c._dropped()})


CHANGE_ANNOTATORS.append(keep_rebuilt_values)
