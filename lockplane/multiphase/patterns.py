"""The multi-phase patterns. Each returns the phase specs for one breaking change.

- expand/contract rename of a column (sync trigger + backfill) and of a table (a
  compatibility view under the old name);
- dual-write type change (a shadow column of the new type, kept in sync both ways,
  backfilled, then swapped in by two renames: no table rewrite under lock);
- deprecation of a column or table (code stops using it first; optional archive);
- validation for NOT NULL, CHECK, UNIQUE and FK on existing data (report violations,
  add without validating, validate without blocking writes, enforce).
"""

from __future__ import annotations

import re

from ..changes.add_column import AddColumn
from ..changes.alter_column import compare_type
from ..changes.backfill_column import BackfillColumn
from ..changes.base import Change
from ..changes.create_view import CreateView
from ..changes.pg_common import TEMP_SUFFIX, temp_name
from ..changes.rename_constraint import RenameConstraint
from ..changes.rename_index import RenameIndex
from ..dialects.base import Dialect
from ..diff import diff
from ..model import CheckConstraint, Column, Index, Schema, Table, View
from .build import ChangeSource, PhaseSpec, remaining
from .model import Verification
from .sync import SyncPair, sync_changes

ADDITIVE = {"create_index", "add_constraint", "add_foreign_key", "alter_column", "set_comment",
            "add_column", "create_table", "grant"}




def sql_mentions(expression: str | None, column: str) -> bool:
    """Whether a SQL expression names ``column`` (as a whole identifier, quoted or not)."""
    if not expression:
        return False
    bare = rf"(?<![\w$\"']){re.escape(column)}(?![\w$\"'])"
    quoted = re.escape('"' + column.replace('"', '""') + '"')
    return re.search(f"{quoted}|{bare}", expression) is not None


def index_uses(ix: Index, column: str) -> bool:
    """Whether an index is built on ``column``: a key, an expression, INCLUDE or WHERE."""
    return (any(k.column == column or sql_mentions(k.expression, column) for k in ix.keys)
            or column in ix.include or sql_mentions(ix.where, column))


def _mentions(change: Change, column: str) -> bool:
    """Whether a change is about ``column`` (by the columns it names)."""
    for attr in ("column", "before", "after"):
        c = getattr(change, attr, None)
        if isinstance(c, Column) and c.name == column:
            return True
    b, a = getattr(change, "before", None), getattr(change, "after", None)
    if isinstance(b, Table) and isinstance(a, Table):  # a SQLite table rebuild
        return b.column(column) != a.column(column)
    for attr in ("constraint", "fk"):
        c = getattr(change, attr, None)
        if c is not None and column in (getattr(c, "columns", None) or []):
            return True
    if isinstance(c := getattr(change, "constraint", None), CheckConstraint):
        return sql_mentions(c.expression, column)
    ix = getattr(change, "index", None)
    return isinstance(ix, Index) and index_uses(ix, column)


# --------------------------------------------------------------------- rename column
def rename_column(before: Schema, after: Schema, table: Table, old: str, new: str,
                  d: Dialect) -> list[PhaseSpec]:
    col = table.column(old)
    assert col is not None
    t = d.qname(table.schema_, table.name)
    qo, qn = d.quote(old), d.quote(new)
    shadow = Column(name=new, type=col.type, collation=col.collation, nullable=True)
    key = (table.schema_ or "", table.name)
    expand: list[Change] = [AddColumn(table, shadow)]
    if not d.before_triggers_fill_new_row and not col.nullable:
        # SQLite triggers cannot fill NEW before the NOT NULL check, so new code inserting
        # only the new column would fail: the old column becomes nullable meanwhile.
        from ..changes.rebuild_table import RebuildTable

        relaxed = table.model_copy(deep=True)
        relaxed_col = relaxed.column(old)
        assert relaxed_col is not None
        relaxed_col.nullable = True
        relaxed.columns.append(shadow)
        expand = [RebuildTable(table, relaxed)]
    same = compare_type(before, col.type)  # (both columns' type)
    expand += [*sync_changes(SyncPair(table, old, new, old_as=same, new_as=same), d),
               BackfillColumn(table, new, qo, compare_as=same)]

    return [
        PhaseSpec(
            name="expand",
            description=f"Add {new} next to {old}, keep both in sync on every write, and "
                        f"copy existing values in batches",
            changes=expand,
            requires_code_deploy=True,
            code_changes_required=[
                f"Deploy code that reads and writes {new} instead of {old}.",
                f"Instances still on the old code keep using {old}: the sync trigger copies "
                "every write between the two columns, so both versions can run side by side.",
            ],
            verification=[Verification(
                description=f"every row has {new} equal to {old}",
                sql=f"SELECT 1 FROM {t} WHERE {d.distinct_sql(qn, qo, same)} LIMIT 1")],
            rollback_description=f"Drop the sync trigger and {new}",
            rollback_note=f"values written only to {new} are kept in {old} by the trigger, "
                          "so nothing is lost",
        ),
        PhaseSpec(
            name="migrate",
            description=f"Give {new} the constraints, indexes and default that {old} had",
            changes=_towards_keeping(after, key, old, new),
            requires_code_deploy=True,
            code_changes_required=[
                f"Make sure no running code reads or writes {old} any more (every "
                "instance runs the new code), then approve the contract phase.",
            ],
            verification=[Verification(
                description=f"{new} is still in sync with {old}",
                sql=f"SELECT 1 FROM {t} WHERE {d.distinct_sql(qn, qo, same)} LIMIT 1")],
            rollback_description=f"Drop the constraints and indexes added on {new}",
        ),
        PhaseSpec(
            name="contract",
            description=f"Drop the sync trigger and the old column {old}",
            changes=_contract(after, key),
            sanctioned=lambda c: (f"its values live on in {new}, kept in sync until now"
                                  if _mentions(c, old) and c.table_key() == key else None),
            rollback_description=f"Re-add {old}, copy values back from {new}, restore "
                                 "its constraints and the sync trigger",
            rollback_fill={old: qn},
            rollback_requires_code_deploy=False,
            rollback_note=f"{old} comes back with the values of {new}",
        ),
    ]


def _towards_keeping(after: Schema, key: tuple[str, str], old: str,
                     new: str | None = None) -> ChangeSource:
    """Changes to ``key``'s table towards ``after``, but keeping the old column, what is
    built on it, and the sync machinery: everything additive, nothing the old code needs
    removed. (One target for both dialects: on SQLite this is one rebuild.)"""

    def source(state: Schema, d: Dialect) -> list[Change]:
        target = after.model_copy(deep=True)
        t, cur = target.table(*key), state.table(*key)
        assert t is not None and cur is not None
        kept = cur.column(old)
        if kept is not None and t.column(old) is None:
            t.columns.append(kept)
        fresh = t.column(new) if new else None
        if not d.before_triggers_fill_new_row and fresh is not None and not fresh.nullable:
            # SQLite's sync triggers run AFTER the NOT NULL check: old code inserting only
            # the old column would be refused. NOT NULL waits for the contract phase.
            fresh.nullable = True
        on_old = {
            "indexes": [ix for ix in cur.indexes if index_uses(ix, old)],
            "unique_constraints": [c for c in cur.unique_constraints if old in c.columns],
            "foreign_keys": [c for c in cur.foreign_keys if old in c.columns],
            "check_constraints": [c for c in cur.check_constraints
                                  if sql_mentions(c.expression, old)],
        }
        # An object of the new column named like one the old column keeps (a declared
        # name, or an explicit rename) is built under a temporary name on PostgreSQL and
        # renamed by the contract phase; SQLite cannot rename, so there the contract
        # phase builds it.
        taken = {o.name for objs in on_old.values() for o in objs if o.name}
        for group, objs in on_old.items():
            mine = []
            for o in getattr(t, group):
                if o in objs or not o.name or o.name not in taken:
                    mine.append(o)
                elif d.renames_constraints:
                    mine.append(o.model_copy(update={"name": temp_name(o.name)}))
            mine += [o for o in objs if o not in mine]
            setattr(t, group, mine)
        t.triggers += [tr for tr in cur.triggers if tr.name.startswith("_lp_sync_")]
        target.functions += [f for f in state.functions if f.name.startswith("_lp_sync_")]
        target._table_index = None
        return [c for c in diff(state, target, d) if c.table_key() == key]

    return source


def _named_change(change: Change) -> tuple[str | None, bool]:
    """The constraint or index a change adds (True) or drops (False), by name."""
    for attr in ("constraint", "fk", "index"):
        obj = getattr(change, attr, None)
        name = getattr(obj, "name", None)
        if isinstance(name, str):
            return name, change.kind in ("add_constraint", "add_foreign_key", "create_index")
    return None, False


def _contract(after: Schema, key: tuple[str, str]) -> ChangeSource:
    """The rest of the diff, where objects built under a temporary name by the migrate
    phase get their real name by a rename instead of a drop and a rebuild."""

    def source(state: Schema, d: Dialect) -> list[Change]:
        changes = remaining(after)(state, d)
        cur = state.table(*key)
        if not d.renames_constraints or cur is None:
            return changes
        temps = {o.name for group in (cur.indexes, cur.unique_constraints, cur.foreign_keys,
                                      cur.check_constraints, cur.exclusion_constraints)
                 for o in group if o.name and o.name.endswith(TEMP_SUFFIX)}
        kept: list[Change] = []
        renames: list[Change] = []
        for c in changes:
            name, adds = _named_change(c)
            if name is None or c.table_key() != key:
                kept.append(c)
            elif not adds and name in temps:
                continue  # renamed below, not dropped
            elif adds and temp_name(name) in temps:
                if c.kind == "create_index":
                    renames.append(RenameIndex(key[0], key[1], temp_name(name), name))
                else:
                    renames.append(RenameConstraint(cur, temp_name(name), name))
            else:
                kept.append(c)
        return kept + renames

    return source


# ---------------------------------------------------------------------- rename table
def rename_table(before: Schema, after: Schema, table: Table, new: str,
                 d: Dialect) -> list[PhaseSpec]:
    if not d.renames_table_behind_view:
        raise NotImplementedError("table renames with a compatibility view need PostgreSQL's "
                                  "updatable views")
    schema = table.schema_ or "public"
    old_name = table.name

    def expand(state: Schema, dd: Dialect) -> list[Change]:
        from ..changes.rename_table import RenameTable

        view = View(name=old_name, schema=schema,
                    definition=f"SELECT * FROM {dd.qname(schema, new)}")
        return [RenameTable(table, new), CreateView(view)]

    return [
        PhaseSpec(
            name="expand",
            description=f"Rename {old_name} to {new} and leave an updatable view named "
                        f"{old_name} so old code keeps reading and writing",
            changes=expand,
            requires_code_deploy=True,
            code_changes_required=[f"Deploy code that uses {new} instead of {old_name}.",
                                   f"Old instances keep working through the view {old_name}."],
            verification=[Verification(
                description=f"the view {old_name} still shows every row of {new}",
                sql=(f"SELECT 1 WHERE (SELECT count(*) FROM {d.qname(schema, old_name)}) <> "
                     f"(SELECT count(*) FROM {d.qname(schema, new)})"))],
            rollback_description=f"Drop the view and rename {new} back to {old_name}",
        ),
        PhaseSpec(
            name="contract",
            description=f"Drop the compatibility view {old_name}",
            changes=remaining(after),
            rollback_description=f"Recreate the view {old_name}",
        ),
    ]


# ------------------------------------------------------------------------ type change
def _cast(frm: Schema, to: Schema, old: str, new: str) -> str:
    """The conversion of ``{}`` from ``old`` (a type of ``frm``) to ``new`` (of ``to``),
    as the plain ALTER COLUMN ... TYPE writes it (changes.alter_column.cast_sql): a direct
    cast where the types, a domain read as its base type, have one, else through text
    (one enum to another, a domain over jsonb to integer: no direct cast)."""
    from ..changes.alter_column import base_type, has_direct_cast

    if has_direct_cast(base_type(frm, old), base_type(to, new)):
        return f"CAST({{}} AS {new})"
    return f"CAST(CAST({{}} AS text) AS {new})"


def change_type(before: Schema, after: Schema, table: Table, column: str, d: Dialect,
                using: str | None = None) -> list[PhaseSpec]:
    from ..changes.rename_column import RenameColumn

    old_col = table.column(column)
    new_table = after.table(table.schema_ or "", table.name)
    assert old_col is not None and new_table is not None
    new_col = new_table.column(column)
    assert new_col is not None
    tmp = f"{column}__lp_new"[:63]
    old_tmp = f"{column}__lp_old"[:63]
    t = d.qname(table.schema_, table.name)
    qc, qt = d.quote(column), d.quote(tmp)
    to_new = using or _cast(before, after, old_col.type, new_col.type)
    to_old = _cast(after, before, new_col.type, old_col.type)
    shadow = Column(name=tmp, type=new_col.type, collation=new_col.collation, nullable=True)
    key = (table.schema_ or "", table.name)

    def swap(state: Schema, dd: Dialect) -> list[Change]:
        current = state.table(*key)
        assert current is not None
        drop_sync = [c for c in remaining(_without_sync(state, key, tmp))(state, dd)
                     if c.kind in ("drop_trigger", "drop_function")]
        renamed = current.model_copy()
        return [*drop_sync, RenameColumn(renamed, column, old_tmp),
                RenameColumn(renamed, tmp, column)]

    conv = to_new.format(qc)
    new_as = compare_type(after, new_col.type)
    return [
        PhaseSpec(
            name="expand",
            description=f"Add {tmp} ({new_col.type}) kept in sync with {column} "
                        f"({old_col.type}) in both directions, backfill it in batches, "
                        f"and build its indexes (concurrently, under temporary names)",
            changes=[AddColumn(table, shadow),
                     *sync_changes(SyncPair(table, column, tmp, to_new, to_old,
                                            compare_type(before, old_col.type), new_as), d),
                     BackfillColumn(table, tmp, conv, compare_as=new_as),
                     *_prebuilt(table, new_table, column, tmp, d)],
            verification=[Verification(
                description=f"every row has {tmp} = {conv}",
                sql=f"SELECT 1 FROM {t} WHERE {d.distinct_sql(qt, conv, new_as)} LIMIT 1")],
            rollback_description=f"Drop the sync trigger and {tmp}",
        ),
        PhaseSpec(
            name="swap",
            description=f"In one short transaction: drop the sync, rename {column} to "
                        f"{old_tmp} and {tmp} to {column} (no table rewrite). Running code "
                        f"that bound {column} as {old_col.type} in a server-side prepared "
                        "statement (JDBC, asyncpg, pgx; psycopg after 5 runs) fails until "
                        "it reconnects or re-prepares",
            changes=swap,
            requires_code_deploy=True,
            code_changes_required=[
                f"{column} now has type {new_col.type}: deploy code that expects it "
                "(code that does not care about the type needs no change).",
            ],
            rollback_description=f"Swap the names back ({column} returns to "
                                 f"{old_col.type})",
        ),
        PhaseSpec(
            name="contract",
            description=f"Drop the old column {old_tmp}; the indexes built in the expand "
                        f"phase take their real names, the rest is added",
            changes=_contract(after, key),
            sanctioned=lambda c: (f"{old_tmp} is the pre-change copy of {column}"
                                  if _mentions(c, old_tmp) and c.table_key() == key else None),
            rollback_description=f"Re-add {old_tmp} converted back from {column}",
            rollback_fill={old_tmp: to_old.format(qc)},
        ),
    ]


def _prebuilt(table: Table, target: Table, column: str, tmp: str, d: Dialect,
              ) -> list[Change]:
    """The target's indexes and unique constraints on ``column``, built on ``tmp`` under
    temporary names while the old column still serves (CONCURRENTLY, by the lock-safe
    form): after the swap they are already there, and the contract phase only renames
    them. Expression and partial indexes, checks and foreign keys are left to the
    contract phase (their SQL text would have to be rewritten)."""
    if not d.has_lock_safe_forms:
        return []
    from ..changes.add_constraint import AddConstraint
    from ..changes.create_index import CreateIndex

    def on(names: list[str]) -> list[str]:
        return [tmp if n == column else n for n in names]

    out: list[Change] = []
    for ix in target.indexes:
        plain = all(k.column is not None for k in ix.keys) and ix.where is None
        if plain and column in ix.columns + ix.include:
            keys = [k.model_copy(update={"column": tmp}) if k.column == column else k
                    for k in ix.keys]
            out.append(CreateIndex(table.schema_ or "", table.name, ix.model_copy(update={
                "name": temp_name(ix.name), "keys": keys, "columns": on(ix.columns),
                "include": on(ix.include), "comment": None})))
    for uc in target.unique_constraints:
        if uc.name and column in uc.columns + uc.include:
            out.append(AddConstraint(table, uc.model_copy(update={
                "name": temp_name(uc.name), "columns": on(uc.columns),
                "include": on(uc.include), "comment": None})))
    return out


def _without_sync(state: Schema, key: tuple[str, str], tmp: str) -> Schema:
    """``state`` minus the sync trigger and function (what the swap removes)."""
    copy = state.model_copy(deep=True)
    t = copy.table(*key)
    assert t is not None
    t.triggers = [tr for tr in t.triggers if not tr.name.startswith("_lp_sync_")]
    copy.functions = [f for f in copy.functions if not f.name.startswith("_lp_sync_")]
    return copy


# ----------------------------------------------------------------------- deprecation
def drop_column(before: Schema, after: Schema, table: Table, column: str, d: Dialect,
                archive: bool = False) -> list[PhaseSpec]:
    col = table.column(column)
    assert col is not None
    specs: list[PhaseSpec] = [PhaseSpec(
        name="deprecate",
        description=f"Stop using {column}: code no longer reads or writes it",
        changes=[],
        requires_code_deploy=True,
        code_changes_required=[f"Deploy code that neither reads nor writes {column} "
                               f"(ORMs: remove it from the model, or mark it ignored)."],
        rollback_description="Nothing to undo in the database",
    )]
    if not col.nullable and col.default is None:
        specs[0].changes = [_relax_not_null(table, col, d)]
        specs[0].description += f"; {column} becomes nullable so inserts without it work"
        specs[0].rollback_description = f"Make {column} NOT NULL again"
    if archive:
        specs.append(PhaseSpec(
            name="archive",
            description=f"Copy {column} with the primary key into an archive table in "
                        "Lockplane's own schema (kept after the drop)",
            changes=[_archive_column(table, column, d)],
            rollback_description="Drop the archive table",
        ))
    key = (table.schema_ or "", table.name)
    specs.append(PhaseSpec(
        name="drop",
        description=f"Drop {column}",
        changes=remaining(after),
        sanctioned=lambda c: (f"code stopped using {column} in phase 1"
                              + (" and its values were archived" if archive else "")
                              if _mentions(c, column) and c.table_key() == key else None),
        rollback_description=f"Re-add {column} (empty unless archived)",
        rollback_note=f"the values of {column} are gone unless the archive phase ran",
    ))
    return specs


def _relax_not_null(table: Table, col: Column, d: Dialect) -> Change:
    from ..changes.alter_column import AlterColumn

    if d.alters_by_rebuild:
        # SQLite cannot drop a NOT NULL in place: rebuild the table with it relaxed.
        from ..changes.rebuild_table import RebuildTable

        relaxed = table.model_copy(deep=True)
        relaxed.columns = [c.model_copy(update={"nullable": True}) if c.name == col.name
                           else c for c in relaxed.columns]
        return RebuildTable(table, relaxed)
    return AlterColumn(table, col, col.model_copy(update={"nullable": True}))


def _archive_column(table: Table, column: str, d: Dialect) -> Change:
    from ..changes.create_table_as import CreateTableAs

    pk = table.primary_key.columns if table.primary_key else []
    return CreateTableAs(table, f"{column}", [*pk, column])


def drop_table(before: Schema, after: Schema, table: Table, d: Dialect,
               archive: bool = False) -> list[PhaseSpec]:
    specs = [PhaseSpec(
        name="deprecate",
        description=f"Stop using {table.name}: code no longer reads or writes it",
        changes=[],
        requires_code_deploy=True,
        code_changes_required=[f"Deploy code that no longer touches {table.name}."],
        rollback_description="Nothing to undo in the database",
    )]
    if archive:
        from ..changes.create_table_as import CreateTableAs

        specs.append(PhaseSpec(
            name="archive",
            description=f"Copy {table.name} into an archive table in Lockplane's own schema",
            changes=[CreateTableAs(table, "all", [c.name for c in table.columns])],
            rollback_description="Drop the archive table",
        ))
    key = (table.schema_ or "", table.name)
    specs.append(PhaseSpec(
        name="drop", description=f"Drop {table.name}", changes=remaining(after),
        sanctioned=lambda c: (f"code stopped using {table.name} in phase 1"
                              + (" and its rows were archived" if archive else "")
                              if c.table_key() == key else None),
        rollback_description=f"Recreate {table.name} (empty unless archived)",
        rollback_note="rows are gone unless the archive phase ran"))
    return specs


# ------------------------------------------------------------------------ validation
def add_not_null(before: Schema, after: Schema, table: Table, column: str,
                 d: Dialect) -> list[PhaseSpec]:
    from ..changes.add_constraint import AddConstraint
    from ..changes.alter_column import AlterColumn
    from ..changes.unfill_column import FillKeepingRows
    from ..changes.validate_constraint import ValidateConstraint
    from ..fill import recorded_key
    from ..model import CheckConstraint

    declared = _target_table(after, table).column(column)
    if declared is not None and declared.fill_with is not None:
        return add_not_null_filled(after, table, declared, d)
    col = table.column(column)
    target_table = after.table(table.schema_ or "", table.name)
    assert col is not None and target_table is not None
    wanted = target_table.column(column)
    assert wanted is not None
    t = d.qname(table.schema_, table.name)
    qc = d.quote(column)
    nulls = Verification(description=f"no row has {column} NULL",
                         sql=f"SELECT 1 FROM {t} WHERE {qc} IS NULL LIMIT 1")
    first: PhaseSpec
    if wanted.default is not None:
        with_default = col.model_copy(update={"default": wanted.default})
        set_default: Change = AlterColumn(table, col, with_default)
        if d.alters_by_rebuild:
            # SQLite cannot ALTER a column's default in place: rebuild with it.
            from ..changes.rebuild_table import RebuildTable

            rebuilt = table.model_copy(deep=True)
            rebuilt.columns = [with_default if c.name == column else c
                               for c in rebuilt.columns]
            set_default = RebuildTable(table, rebuilt)
        # The rows it fills are recorded (by the primary key the table keeps), for the
        # phase's rollback to make them NULL again.
        keep_by = recorded_key(table, target_table, column, d)
        fill: Change = (
            FillKeepingRows(table, column, wanted.default, only_null=True, archive_key=keep_by)
            if keep_by else
            BackfillColumn(table, column, f"COALESCE({qc}, {wanted.default})",
                           undo_expression=None))
        first = PhaseSpec(
            name="backfill",
            description=f"Set {column}'s default to {wanted.default} and fill existing NULLs "
                        "with it in batches",
            changes=[set_default, fill],
            verification=[nulls],
            rollback_description=(
                f"Make the rows the fill gave the default NULL again (by "
                f"{', '.join(keep_by)}) and restore {column}'s previous default" if keep_by
                else f"Restore {column}'s previous default (filled values stay)"),
            rollback_note=(None if keep_by else
                           "rows that were NULL keep the default value they were given"),
        )
    else:
        first = PhaseSpec(
            name="backfill",
            description=f"Code must always write {column}; existing NULLs must be fixed",
            changes=[],
            requires_code_deploy=True,
            code_changes_required=[
                f"Deploy code that always writes a value to {column}.",
                f"Fix the existing rows where {column} IS NULL (the verification query "
                "finds them), e.g. with 'lockplane backfill'.",
            ],
            verification=[nulls],
            rollback_description="Nothing to undo in the database",
        )
    if not d.has_not_valid_constraints:
        # SQLite has no NOT VALID constraints: one rebuild enforces it (after the check).
        return [first, PhaseSpec(name="enforce", description=f"Make {column} NOT NULL",
                                 changes=remaining(after), verification=[nulls],
                                 rollback_description=f"Make {column} nullable again")]
    check_name = f"{table.name}_{column}_not_null"[:63]
    check = CheckConstraint(name=check_name, expression=f"{qc} IS NOT NULL")
    return [
        first,
        PhaseSpec(
            name="validate",
            description=f"Add CHECK ({column} IS NOT NULL) without scanning, then validate "
                        "it while reads and writes go on",
            changes=[AddConstraint(table, check, not_valid=True),
                     ValidateConstraint(table, check_name)],
            verification=[nulls],
            rollback_description=f"Drop the check {check_name}",
        ),
        PhaseSpec(
            name="enforce",
            description=f"SET NOT NULL on {column} (PostgreSQL uses the validated check: no "
                        "scan), then drop the check",
            changes=remaining(after),
            rollback_description=f"Make {column} nullable again and restore the check",
        ),
    ]


def add_not_null_filled(after: Schema, table: Table, wanted: Column,
                        d: Dialect) -> list[PhaseSpec]:
    """NOT NULL on a column whose desired schema says how existing rows are filled
    (``-- lockplane:fill-with``, lockplane.fill), new or existing: added nullable (new),
    given its default, filled in batches; then (where the server has NOT VALID checks)
    a CHECK NOT VALID, validated, and SET NOT NULL; else the rebuild that enforces it.

    Without a default, running code must write the column before the constraint: the
    first phase asks for that deploy, and the next one fills again the rows old code
    wrote as NULL meanwhile before anything checks them."""
    from ..changes.add_constraint import AddConstraint
    from ..changes.alter_column import AlterColumn
    from ..changes.base import Order
    from ..changes.validate_constraint import ValidateConstraint
    from ..fill import declared_fill, recorded_key

    column = wanted.name
    t, qc = d.qname(table.schema_, table.name), d.quote(column)
    nulls = Verification(description=f"no row has {column} NULL",
                         sql=f"SELECT 1 FROM {t} WHERE {qc} IS NULL LIMIT 1")
    col = table.column(column)
    first: list[Change] = []
    if col is None:  # a new column: added bare first
        col = wanted.model_copy(update={"nullable": True, "default": None, "fill_with": None})
        first.append(AddColumn(table, col))
    validates = d.has_not_valid_constraints
    if wanted.default is not None and validates and col.default != wanted.default:
        first.append(AlterColumn(table, col, col.model_copy(
            update={"default": wanted.default})))
    defaulted = wanted.default is not None and validates
    new = table.column(column) is None
    # An existing column's fill records the rows it changes (where the table keeps a
    # primary key), for the first phase's rollback to put their values back.
    keep_by = None if new else recorded_key(table, after.table(table.schema_ or "", table.name),
                                        column, d)
    fill = declared_fill(table, wanted, new=new, keep_by=keep_by)
    deploy = [f"Deploy code that always writes a value to {column}."] if not defaulted else []
    specs = [PhaseSpec(
        name="backfill",
        description=(f"Add {column} (nullable) and fill" if new else "Fill")
        + f" existing rows with {wanted.fill_with} in batches",
        changes=[*first, fill],
        requires_code_deploy=bool(deploy),
        code_changes_required=deploy,
        verification=[nulls] if defaulted else [],
        rollback_description=(f"Drop {column}" if new else
                              f"Put back the values the fill replaced, by "
                              f"{', '.join(keep_by)}, and {column}'s previous default"
                              if keep_by else
                              f"Restore {column}'s previous default (filled values stay)"),
    )]
    if not validates:
        # No NOT VALID constraints (SQLite): the rebuild that enforces it, after filling
        # the rows written as NULL meanwhile (the rest of the diff keeps the fill).
        return [*specs, PhaseSpec(name="enforce", description=f"Make {column} NOT NULL",
                                  changes=remaining(after), verification=[nulls],
                                  rollback_description=f"Make {column} nullable again")]
    check_name = f"{table.name}_{column}_not_null"[:63]
    check = CheckConstraint(name=check_name, expression=f"{qc} IS NOT NULL")
    refill = [] if defaulted else [declared_fill(table, wanted, new=False)]
    for f in refill:  # before the check it makes pass
        f.order, f.rank = Order.ADD_CONSTRAINT, -1  # type: ignore[misc]
    settled = after.model_copy(deep=True)  # the fills are done: the last phase enforces
    target = settled.table(table.schema_ or "", table.name)
    assert target is not None
    for c in target.columns:
        c.fill_with = None
    return [*specs,
            PhaseSpec(
                name="validate",
                description=(("Fill the rows written as NULL meanwhile, add" if refill
                              else "Add") + f" CHECK ({column} IS NOT NULL) without "
                             "scanning, then validate it while reads and writes go on"),
                changes=[*refill, AddConstraint(table, check, not_valid=True),
                         ValidateConstraint(table, check_name)],
                verification=[nulls],
                rollback_description=f"Drop the check {check_name}"),
            PhaseSpec(
                name="enforce",
                description=f"SET NOT NULL on {column} (PostgreSQL uses the validated check: "
                            "no scan), then drop the check",
                changes=_enforce_with_check(settled, table, column, check_name),
                sanctioned=lambda c: (f"column {column} is NOT NULL now, which this check "
                                      "stood in for" if c.kind == "drop_constraint"
                                      and getattr(getattr(c, "constraint", None), "name",
                                                  None) == check_name else None),
                rollback_description=f"Make {column} nullable again and restore the check")]


def _enforce_with_check(after: Schema, table: Table, column: str,
                        check_name: str) -> ChangeSource:
    """The rest of the diff, with SET NOT NULL on ``column`` trusting the validated
    ``check_name`` (no scan, no second helper check) and that check dropped after it."""
    from dataclasses import replace

    from ..changes.alter_column import AlterColumn
    from ..changes.base import Order
    from ..changes.drop_constraint import DropConstraint

    key = (table.schema_ or "", table.name)

    def source(state: Schema, d: Dialect) -> list[Change]:
        out: list[Change] = []
        for c in diff(state, after, d):
            if isinstance(c, AlterColumn) and c.table_key() == key \
                    and c.after.name == column and c.aspects() == ["set not null"]:
                c = replace(c, not_null_check=check_name)
            elif isinstance(c, DropConstraint) and c.table_key() == key \
                    and getattr(c.constraint, "name", None) == check_name:
                c.order, c.rank = Order.ALTER_COLUMN, 1  # type: ignore[misc]  # after it
            out.append(c)
        return out

    return source


# ------------------------------------------------------ validation of new constraints
def _validation(after: Schema, table: Table, what: str, rule: str,
                check: Verification, d: Dialect) -> list[PhaseSpec]:
    """Phase 1: code stops writing violating rows and existing ones are fixed (the
    verification finds them); phase 2: the constraint, added lock-safe (NOT VALID +
    VALIDATE, or a concurrently built unique index) by the plan builder; on SQLite, the
    table rebuild that adds it (after the same check)."""
    return [
        PhaseSpec(
            name="fix_data",
            description=f"Code must never write rows that break {what}; existing ones "
                        "must be fixed",
            changes=[],
            requires_code_deploy=True,
            code_changes_required=[
                f"Deploy code that never writes rows violating {rule}.",
                f"Fix the existing rows of {table.name} that violate it (the verification "
                "query finds them).",
            ],
            verification=[check],
            rollback_description="Nothing to undo in the database",
        ),
        PhaseSpec(
            name="enforce",
            description=f"Add {what} without blocking writes, then validate it",
            changes=remaining(after),
            verification=[check],
            rollback_description=f"Drop {what}",
        ),
    ]


def _target_table(after: Schema, table: Table) -> Table:
    t = after.table(table.schema_ or "", table.name)
    assert t is not None
    return t


def add_check(before: Schema, after: Schema, table: Table, name: str,
              d: Dialect) -> list[PhaseSpec]:
    """A new CHECK constraint on an existing table."""
    ck = next(c for c in _target_table(after, table).check_constraints if c.name == name)
    t = d.qname(table.schema_, table.name)
    check = Verification(description=f"no row violates the check {name}",
                         sql=f"SELECT 1 FROM {t} WHERE NOT ({ck.expression}) LIMIT 1")
    return _validation(after, table, f"the check {name}", f"CHECK ({ck.expression})",
                       check, d)


def add_foreign_key(before: Schema, after: Schema, table: Table, name: str,
                    d: Dialect) -> list[PhaseSpec]:
    """A new foreign key on an existing table (MATCH SIMPLE: a row with any NULL key
    column is not checked; MATCH FULL: only rows with all of them NULL are skipped)."""
    fk = next(f for f in _target_table(after, table).foreign_keys if f.name == name)
    child = d.qname(table.schema_, table.name)
    parent = d.qname(fk.referenced_schema or table.schema_, fk.referenced_table)
    cols = [f"c.{d.quote(c)}" for c in fk.columns]
    if fk.match == "FULL":
        skip = " OR ".join(f"{c} IS NOT NULL" for c in cols)
        present = f"({skip})"
    else:
        present = " AND ".join(f"{c} IS NOT NULL" for c in cols)
    joined = " AND ".join(f"p.{d.quote(r)} = {c}"
                          for r, c in zip(fk.referenced_columns, cols, strict=True))
    check = Verification(
        description=f"no row of {table.name} references a missing {fk.referenced_table} "
                    f"row ({name})",
        sql=(f"SELECT 1 FROM {child} c WHERE {present} AND NOT EXISTS "
             f"(SELECT 1 FROM {parent} p WHERE {joined}) LIMIT 1"))
    refs = ", ".join(fk.referenced_columns)
    return _validation(after, table, f"the foreign key {name}",
                       f"{name} ({', '.join(fk.columns)} references "
                       f"{fk.referenced_table} ({refs}))", check, d)


def add_unique(before: Schema, after: Schema, table: Table, name: str,
               d: Dialect) -> list[PhaseSpec]:
    """A new UNIQUE constraint, or unique index, on an existing table."""
    target = _target_table(after, table)
    t = d.qname(table.schema_, table.name)
    uc = next((u for u in target.unique_constraints if u.name == name), None)
    where: list[str] = []
    if uc is not None:
        keys = [d.quote(c) for c in uc.columns]
        nulls_not_distinct = uc.nulls_not_distinct
        what = f"the unique constraint {name}"
    else:
        ix = next(i for i in target.indexes if i.name == name and i.unique)
        keys = [d.quote(k.column) if k.column else f"({k.expression})" for k in ix.keys]
        nulls_not_distinct = ix.nulls_not_distinct
        if ix.where:
            where.append(f"({ix.where})")
        what = f"the unique index {name}"
    if not nulls_not_distinct:
        where += [f"{k} IS NOT NULL" for k in keys]
    cond = f" WHERE {' AND '.join(where)}" if where else ""
    group = ", ".join(keys)
    check = Verification(
        description=f"no two rows of {table.name} share a value of {what}",
        sql=f"SELECT 1 FROM {t}{cond} GROUP BY {group} HAVING count(*) > 1 LIMIT 1")
    return _validation(after, table, what, f"{what} ({group})", check, d)
