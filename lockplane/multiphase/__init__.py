"""Multi-phase migrations: detect breaking changes and plan them as expand/contract phases.

``plan_multiphase(before, after)`` finds the breaking change (declared rename, rewriting
type change, dropped column or table, new NOT NULL on existing data, new CHECK, foreign key
or UNIQUE on an existing table), picks its pattern,
and builds the phases with exact hashes on a scratch database.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..changes.base import Change
from ..dialects import get_dialect
from ..dialects.base import Dialect
from ..errors import BadInput
from ..model import Schema, Table, qualified
from . import patterns
from .build import PhaseSpec, build_multiphase
from .model import MultiPhasePlan, load_multiphase_plan

__all__ = ["BreakingChange", "MultiPhasePlan", "detect", "load_multiphase_plan",
           "plan_multiphase"]


@dataclass(frozen=True)
class BreakingChange:
    operation: str  # rename_column | rename_table | change_type | drop_column | drop_table
    #                 | add_not_null | add_check | add_foreign_key | add_unique
    #   (for add_check / add_foreign_key / add_unique, ``column`` is the constraint's name)
    table: Table  # as it is before
    column: str | None = None
    new_name: str | None = None

    @property
    def label(self) -> str:
        where = qualified(self.table.schema_, self.table.name)
        if self.column:
            where += f".{self.column}"
        extra = f" -> {self.new_name}" if self.new_name else ""
        return f"{self.operation} {where}{extra}"


def detect(before: Schema, after: Schema) -> list[BreakingChange]:
    """Breaking changes between two schemas, most specific first."""
    out: list[BreakingChange] = []
    d = get_dialect(after.dialect)
    for t in after.tables:
        key = (t.schema_ or "", t.name)
        old_t = before.table(*key)
        if old_t is None and t.renamed_from:
            src = before.table(t.schema_ or "", t.renamed_from)
            if src is not None:
                out.append(BreakingChange("rename_table", src, new_name=t.name))
            continue
        if old_t is None:
            continue
        renamed_away = set()
        for c in t.columns:
            prev = old_t.column(c.name)
            if prev is None and c.renamed_from and old_t.column(c.renamed_from):
                out.append(BreakingChange("rename_column", old_t, c.renamed_from, c.name))
                renamed_away.add(c.renamed_from)
            elif prev is not None:
                if prev.type != c.type and d.type_change_rewrites(prev.type, c.type):
                    out.append(BreakingChange("change_type", old_t, c.name))
                elif prev.nullable and not c.nullable:
                    out.append(BreakingChange("add_not_null", old_t, c.name))
            elif not c.nullable and c.fill_with is not None:
                # A new NOT NULL column whose existing rows are filled (lockplane.fill):
                # code that inserts without it breaks once the constraint is enforced.
                out.append(BreakingChange("add_not_null", old_t, c.name))
        names = {c.name for c in t.columns}
        for c in old_t.columns:
            if c.name not in names and c.name not in renamed_away:
                out.append(BreakingChange("drop_column", old_t, c.name))
    renamed_tables = {(t.schema_ or "", t.renamed_from) for t in after.tables if t.renamed_from}
    for t in before.tables:
        key = (t.schema_ or "", t.name)
        if after.table(*key) is None and key not in renamed_tables:
            out.append(BreakingChange("drop_table", t))
    out += _new_constraints(before, after)
    return out


def _labels_first(spec: PhaseSpec, labels: list[Change]) -> PhaseSpec:
    """``spec`` with the enum-value renames ``labels`` run first."""
    from dataclasses import replace

    from ..changes.rename_enum_value import RenameEnumValue

    own = spec.changes
    if not callable(own):
        return replace(spec, changes=[*labels, *own])

    def changes(state: Schema, d: Dialect) -> list[Change]:
        rest = own(state, d)  # (a diff from the first state renames them itself)
        return [*labels, *(c for c in rest if not isinstance(c, RenameEnumValue))]

    return replace(spec, changes=changes)


def _new_constraints(before: Schema, after: Schema) -> list[BreakingChange]:
    """New CHECK, foreign key and UNIQUE constraints (and unique indexes), by name, on
    tables that exist on both sides and built only on columns that already exist: running
    code may write rows that violate them, and existing rows may already."""
    out: list[BreakingChange] = []
    for t in after.tables:
        old_t = before.table(t.schema_ or "", t.name)
        if old_t is None:
            continue
        old_cols = {c.name for c in old_t.columns}
        new_cols = [c.name for c in t.columns if c.name not in old_cols]

        def on_old(columns: list[str], expressions: list[str | None],
                   new_cols: list[str] = new_cols, old_cols: set[str] = old_cols) -> bool:
            return (all(c in old_cols for c in columns)
                    and not any(patterns.sql_mentions(e, c)
                                for e in expressions for c in new_cols))

        checks = {c.name for c in old_t.check_constraints}
        for ck in t.check_constraints:
            if ck.name and ck.name not in checks and on_old([], [ck.expression]):
                out.append(BreakingChange("add_check", old_t, ck.name))
        fks = {f.name for f in old_t.foreign_keys}
        for fk in t.foreign_keys:
            if fk.name and fk.name not in fks and on_old(fk.columns, []):
                out.append(BreakingChange("add_foreign_key", old_t, fk.name))
        uniques = {u.name for u in old_t.unique_constraints} | {
            i.name for i in old_t.indexes}
        for uc in t.unique_constraints:
            if uc.name and uc.name not in uniques and on_old(uc.columns, []):
                out.append(BreakingChange("add_unique", old_t, uc.name))
        for ix in t.indexes:
            if ix.unique and ix.name not in uniques and on_old(
                    [k.column for k in ix.keys if k.column],
                    [k.expression for k in ix.keys] + [ix.where]):
                out.append(BreakingChange("add_unique", old_t, ix.name))
    return out


PATTERN = {"rename_column": "expand_contract", "rename_table": "expand_contract",
           "change_type": "dual_write", "drop_column": "deprecation",
           "drop_table": "deprecation", "add_not_null": "validation",
           "add_check": "validation", "add_foreign_key": "validation",
           "add_unique": "validation"}
CONSTRAINT_OPERATIONS = ("add_check", "add_foreign_key", "add_unique")


def plan_multiphase(before: Schema, after: Schema, *, server_dsn: str | None = None,
                    table: str | None = None, archive: bool = False) -> MultiPhasePlan:
    """The multi-phase plan for the (first, or ``table``'s) breaking change."""
    from ..renames import declared_value_renames

    # Declared enum-value renames have no phases of their own: they run first, in the
    # first phase, and the pattern is planned against the relabeled schema.
    start = before
    before, labels = declared_value_renames(before, after)
    found = detect(before, after)
    if table:
        found = [b for b in found if b.table.name == table
                 or qualified(b.table.schema_, b.table.name) == table]
    if not found:
        raise BadInput("no change here needs phases (rename, rewriting type change, drop, "
                       "new NOT NULL, new CHECK, foreign key or UNIQUE on an existing "
                       "table): use 'lockplane plan' for a single-phase plan")
    chosen = found[0]
    d = get_dialect(after.dialect)
    if d.multiphase_operations is not None and chosen.operation not in d.multiphase_operations:
        raise BadInput(f"multi-phase {chosen.operation} is not supported on {d.name} yet "
                       f"(only {', '.join(d.multiphase_operations)}); plan it in one phase "
                       "with 'lockplane plan', or split the change by hand")
    t = chosen.table
    if chosen.operation == "rename_column":
        specs = patterns.rename_column(before, after, t, chosen.column or "",
                                       chosen.new_name or "", d)
        what = f"Rename {qualified(t.schema_, t.name)}.{chosen.column} to {chosen.new_name}"
    elif chosen.operation == "rename_table":
        specs = patterns.rename_table(before, after, t, chosen.new_name or "", d)
        what = f"Rename table {qualified(t.schema_, t.name)} to {chosen.new_name}"
    elif chosen.operation == "change_type":
        specs = patterns.change_type(before, after, t, chosen.column or "", d)
        what = f"Change the type of {qualified(t.schema_, t.name)}.{chosen.column}"
    elif chosen.operation == "drop_column":
        specs = patterns.drop_column(before, after, t, chosen.column or "", d, archive)
        what = f"Drop {qualified(t.schema_, t.name)}.{chosen.column}"
    elif chosen.operation == "drop_table":
        specs = patterns.drop_table(before, after, t, d, archive)
        what = f"Drop table {qualified(t.schema_, t.name)}"
    elif chosen.operation in ("add_check", "add_foreign_key", "add_unique"):
        # The constraint's name travels in ``column``.
        build, kind = {"add_check": (patterns.add_check, "check"),
                       "add_foreign_key": (patterns.add_foreign_key, "foreign key"),
                       "add_unique": (patterns.add_unique, "unique index")}[chosen.operation]
        specs = build(before, after, t, chosen.column or "", d)
        target = after.table(t.schema_ or "", t.name)
        if target and any(u.name == chosen.column for u in target.unique_constraints):
            kind = "unique constraint"
        what = f"Add the {kind} {chosen.column} to {qualified(t.schema_, t.name)}"
    else:
        specs = patterns.add_not_null(before, after, t, chosen.column or "", d)
        what = f"Make {qualified(t.schema_, t.name)}.{chosen.column} NOT NULL"
    notes = [
        "Each phase is backward compatible with the code running before it.",
        "Deploy the listed code changes between phases; the flow waits for approval.",
        "Any phase can be rolled back; later phases are rolled back first.",
    ]
    if chosen.operation == "change_type":
        notes.append("The swap changes the column's type under running code, with no "
                     "approval before it: code that uses server-side prepared statements "
                     "on this column (JDBC, asyncpg, pgx, psycopg after 5 runs) fails after "
                     "the swap until it reconnects. Run it without them for this table, or "
                     "restart it right after the swap.")
    if len(found) > 1:
        others = ", ".join(b.label for b in found[1:])
        notes.append(f"Other changes in this diff are planned in the last phase, with their "
                     f"own safety classes: {others}. Plan them one at a time with --table.")
    if labels:
        specs[0] = _labels_first(specs[0], labels)
        notes.append("Enum values are renamed at the start of phase 1 ("
                     + ", ".join(c.describe() for c in labels) + "): code that writes or "
                     "compares the old labels breaks then.")
    mp = build_multiphase(start, after, specs, operation=chosen.operation,
                          description=what, pattern=PATTERN[chosen.operation],
                          table=qualified(t.schema_, t.name), safety_notes=notes,
                          server_dsn=server_dsn)
    # For a new constraint, chosen.column is the constraint's name (it is in the
    # description): mp.column names a column only.
    column = None if chosen.operation in CONSTRAINT_OPERATIONS else chosen.column
    old_col = t.column(column) if column else None
    new_t = after.table(t.schema_ or "", t.name)
    new_col = new_t.column(column) if new_t and column else None
    mp.column, mp.new_name = column, chosen.new_name
    if chosen.operation == "change_type" and old_col and new_col:
        mp.old_type, mp.new_type = old_col.type, new_col.type
    if chosen.operation == "add_not_null" and new_col:
        mp.default = new_col.default
    return mp
