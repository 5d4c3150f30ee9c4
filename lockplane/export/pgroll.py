"""``lockplane export --to pgroll``: a plan as a pgroll migration (its JSON operations).

pgroll (https://github.com/xataio/pgroll) runs expand/contract itself: ``pgroll start``
builds the new version next to the old (views per version, triggers that keep both in
sync), ``pgroll complete`` removes the old. So a multi-phase plan becomes *one* pgroll
operation for its breaking change (``alter_column`` with ``name`` for a rename, with
``type`` and up/down SQL for a type change, ``nullable: false`` for a new NOT NULL,
``drop_column``, ``rename_table``, ``drop_table``), plus the plan's other changes.

A single-phase plan's steps map one by one: Lockplane renders its SQL in a fixed shape,
and each step's kind says which shape to read (add_column, drop_column, create_table,
drop_table, create_index, drop_index, alter_column, add_constraint, add_foreign_key,
rename_table, rename_column). A step that has no pgroll operation is kept as raw SQL
(``sql`` with ``up`` and ``down``); pgroll runs raw SQL alone, or at ``complete`` when
other operations share the migration, which the warnings say.

Lock-safe plans (the PostgreSQL default) read as the changes they stand for, since pgroll
does the same itself: ``SET lock_timeout`` is left out (pgroll has ``--lock-timeout``); an
index built CONCURRENTLY is a ``create_index``; a UNIQUE adopted from such an index
(``USING INDEX``) is one ``create_constraint``; a foreign key added NOT VALID needs no
separate VALIDATE (pgroll validates at ``complete``); and the temporary
``CHECK (col IS NOT NULL)`` around a SET NOT NULL disappears into the ``alter_column``
with ``nullable: false`` (pgroll adds and validates its own).

pgroll names tables without their schema (``pgroll --schema`` picks it): the export
refuses a plan that spans several schemas.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import BadInput
from ..multiphase.model import MultiPhasePlan
from ..plan import Plan, Step

Op = dict[str, Any]

_QI = r'"(?:[^"]|"")+"'  # a quoted identifier as Lockplane renders it
_QN = rf"(?:{_QI}\.)?{_QI}"  # optionally schema-qualified
_TIMEOUTS = re.compile(r"(SET lock_timeout|SET statement_timeout|RESET statement_timeout)\b",
                       re.IGNORECASE)
_NOT_NULL_CHECK = re.compile(rf"ALTER TABLE ({_QN}) ADD CONSTRAINT ({_QI}) "
                             rf"CHECK \(\(?{_QI} IS NOT NULL\)?\) NOT VALID")
_VALIDATE = re.compile(rf"ALTER TABLE ({_QN}) VALIDATE CONSTRAINT ({_QI})")


def _statements(sql: list[str]) -> list[str]:
    """A step's statements without the timeouts every PostgreSQL step sets around its DDL
    (pgroll waits for locks as its own ``--lock-timeout`` says)."""
    return [s.strip().rstrip(";") for s in sql if not _TIMEOUTS.match(s.strip())]


def _temporary_checks(plan_steps: list[Step]) -> set[tuple[str, str]]:
    """(table, name) of each ``CHECK (col IS NOT NULL) NOT VALID`` the plan adds and drops
    again: the helper of a lock-safe SET NOT NULL."""
    added: set[tuple[str, str]] = set()
    temporary: set[tuple[str, str]] = set()
    for step in plan_steps:
        for stmt in _statements(step.sql):
            if step.kind == "add_constraint" and (m := _NOT_NULL_CHECK.fullmatch(stmt)):
                added.add((m.group(1), m.group(2)))
            elif step.kind == "drop_constraint" and (m := re.fullmatch(
                    rf"ALTER TABLE ({_QN}) DROP CONSTRAINT ({_QI})", stmt)):
                if (m.group(1), m.group(2)) in added:
                    temporary.add((m.group(1), m.group(2)))
    return temporary


def _unquote(ident: str) -> str:
    ident = ident.strip()
    if ident.startswith('"') and ident.endswith('"'):
        return ident[1:-1].replace('""', '"')
    return ident


def _split_qn(qn: str) -> tuple[str | None, str]:
    parts = re.findall(_QI, qn)
    if len(parts) == 2:
        return _unquote(parts[0]), _unquote(parts[1])
    return None, _unquote(parts[-1])


def _ident_list(text: str) -> list[str] | None:
    """``"a", "b"`` as names; None when an item is not a plain quoted identifier."""
    items = [i.strip() for i in _split_top(text)]
    if not items or not all(re.fullmatch(_QI, i) for i in items):
        return None
    return [_unquote(i) for i in items]


def _split_top(text: str, sep: str = ",") -> list[str]:
    """Split on ``sep`` outside parentheses and quotes."""
    out, depth, cur, quote = [], 0, [], ""
    for ch in text:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = ""
            continue
        if ch in ("'", '"'):
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == sep and depth == 0:
            out.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    if "".join(cur).strip():
        out.append("".join(cur))
    return out


_COLUMN = re.compile(rf"^(?P<name>{_QI}) (?P<type>.+?)"
                     r"(?: DEFAULT (?P<default>.+?))?(?P<notnull> NOT NULL)?$", re.DOTALL)


def _column(defn: str) -> dict[str, Any] | None:
    """A pgroll column from Lockplane's ``"name" type [DEFAULT e] [NOT NULL]``."""
    m = _COLUMN.match(defn.strip())
    if m is None or " COLLATE " in m.group("type") or " GENERATED ALWAYS AS (" in defn:
        return None
    col: dict[str, Any] = {"name": _unquote(m.group("name")), "type": m.group("type"),
                           "nullable": not m.group("notnull")}
    if m.group("default") is not None:
        col["default"] = m.group("default")
    return col


class _Exporter:
    def __init__(self) -> None:
        self.ops: list[Op] = []
        self.raw_up: list[str] = []
        self.raw_down: list[str] = []
        self.warnings: list[str] = []
        self.schemas: set[str] = set()
        # (table, name) of the helper checks to leave out (see _temporary_checks)
        self.temporary: set[tuple[str, str]] = set()
        # (table, name) of constraints added NOT VALID as a pgroll operation: pgroll
        # validates them itself, so the plan's VALIDATE step has nothing left to do.
        self.validated_by_pgroll: set[tuple[str, str]] = set()
        # unique indexes exported as create_index, by (table, name): a later
        # ADD CONSTRAINT ... USING INDEX turns that operation into create_constraint
        self.unique_indexes: dict[tuple[str, str], Op] = {}
        # add_column operations by (table, column): a lock-safe volatile default comes as
        # add bare + SET DEFAULT + backfill (+ NOT NULL), which pgroll does in that one
        # operation (its column's default and nullable, and ``up`` for existing rows)
        self.added_columns: dict[tuple[str, str], Op] = {}

    # -- names
    def _table(self, qn: str) -> str:
        schema, name = _split_qn(qn)
        self.schemas.add(schema or "public")
        return name

    # -- steps
    def step(self, step: Step) -> None:
        ops = self._convert(step)
        if ops is None:
            self.raw_up += _statements(step.sql)
            back = _statements(step.rollback.sql) if step.rollback else []
            self.raw_down = back + self.raw_down
            # (validating a constraint needs no way back: undoing its ADD drops it)
            if not back and step.kind != "validate_constraint":
                self.warnings.append(f"raw SQL without a way back: {step.description}")
            return
        self.ops += ops

    def _convert(self, step: Step) -> list[Op] | None:
        sql = _statements(step.sql)
        kind = step.kind or ""
        if kind in ("add_constraint", "drop_constraint", "validate_constraint") and sql:
            m = re.match(rf"ALTER TABLE ({_QN}) (?:ADD|DROP|VALIDATE) CONSTRAINT ({_QI})",
                         sql[0])
            if m and (m.group(1), m.group(2)) in self.temporary and len(sql) == 1:
                return []  # pgroll's alter_column (nullable: false) has its own check
        handler = getattr(self, f"_{kind}", None)
        if handler is None or not sql:
            return None
        try:
            result: list[Op] | None = handler(sql, step)
        except (IndexError, ValueError):
            return None
        return result

    def _add_column(self, sql: list[str], step: Step) -> list[Op] | None:
        m = re.fullmatch(rf"ALTER TABLE ({_QN}) ADD COLUMN (.+)", sql[0], re.DOTALL)
        col = _column(m.group(2)) if m else None
        if m is None or col is None or len(sql) > 1:
            return None
        op: dict[str, Any] = {"table": self._table(m.group(1)), "column": col}
        if not col["nullable"] and "default" not in col:
            op["up"] = "NULL"
            self.warnings.append(f"{step.description}: NOT NULL without a default; set "
                                 "add_column.up to the value existing rows get")
        self.added_columns[(op["table"], col["name"])] = op
        return [{"add_column": op}]

    def _backfill_column(self, sql: list[str], step: Step) -> list[Op] | None:
        m = re.fullmatch(rf"UPDATE ({_QN}) SET ({_QI}) = (.+) WHERE ({_QI}) IS NULL",
                         sql[0], re.DOTALL)
        if m is None or len(sql) > 1 or m.group(2) != m.group(4):
            return None
        added = self.added_columns.get((self._table(m.group(1)), _unquote(m.group(2))))
        if added is None:
            return None
        added.setdefault("up", m.group(3))  # pgroll fills existing rows with it
        return []

    def _drop_column(self, sql: list[str], step: Step) -> list[Op] | None:
        m = re.fullmatch(rf"ALTER TABLE ({_QN}) DROP COLUMN ({_QI})", sql[0])
        if m is None or len(sql) > 1:
            return None
        return [{"drop_column": {"table": self._table(m.group(1)),
                                 "column": _unquote(m.group(2))}}]

    def _drop_table(self, sql: list[str], step: Step) -> list[Op] | None:
        m = re.fullmatch(rf"DROP TABLE ({_QN})", sql[0])
        if m is None or len(sql) > 1:
            return None
        return [{"drop_table": {"name": self._table(m.group(1))}}]

    def _rename_table(self, sql: list[str], step: Step) -> list[Op] | None:
        m = re.fullmatch(rf"ALTER TABLE ({_QN}) RENAME TO ({_QI})", sql[0])
        if m is None or len(sql) > 1:
            return None
        return [{"rename_table": {"from": self._table(m.group(1)),
                                  "to": _unquote(m.group(2))}}]

    def _rename_column(self, sql: list[str], step: Step) -> list[Op] | None:
        m = re.fullmatch(rf"ALTER TABLE ({_QN}) RENAME COLUMN ({_QI}) TO ({_QI})", sql[0])
        if m is None or len(sql) > 1:
            return None
        return [{"alter_column": {"table": self._table(m.group(1)),
                                  "column": _unquote(m.group(2)),
                                  "name": _unquote(m.group(3))}}]

    def _validate_constraint(self, sql: list[str], step: Step) -> list[Op] | None:
        m = _VALIDATE.fullmatch(sql[0])
        if m is None or len(sql) > 1 or (m.group(1), m.group(2)) not in \
                self.validated_by_pgroll:
            return None
        return []  # pgroll validates the constraint it added at 'pgroll complete'

    def _create_index(self, sql: list[str], step: Step) -> list[Op] | None:
        if len(sql) == 2 and re.fullmatch(rf"DROP INDEX CONCURRENTLY IF EXISTS {_QN}",
                                          sql[0]):
            sql = sql[1:]  # (older plans) clearing an INVALID index a failed build left
        m = re.fullmatch(rf"CREATE (UNIQUE )?INDEX (?:CONCURRENTLY )?({_QI}) ON ({_QN})"
                         r"(?: USING (\w+))? \((.+?)\)(?: WHERE (.+))?", sql[0], re.DOTALL)
        cols = _ident_list(m.group(5)) if m else None
        if m is None or cols is None or len(sql) > 1:
            return None
        op: dict[str, Any] = {"name": _unquote(m.group(2)), "table": self._table(m.group(3)),
                              "columns": cols}
        if m.group(1):
            op["unique"] = True
        if m.group(4):
            op["method"] = m.group(4)
        if m.group(6):
            op["predicate"] = m.group(6)
        if m.group(1) and not m.group(4) and not m.group(6):
            self.unique_indexes[(m.group(3), m.group(2))] = op
        return [{"create_index": op}]

    def _drop_index(self, sql: list[str], step: Step) -> list[Op] | None:
        m = re.fullmatch(rf"DROP INDEX (?:CONCURRENTLY )?(?:IF EXISTS )?({_QN})", sql[0])
        if m is None or len(sql) > 1:
            return None
        self._table(m.group(1))
        return [{"drop_index": {"name": _split_qn(m.group(1))[1]}}]

    def _alter_column(self, sql: list[str], step: Step) -> list[Op] | None:
        """Every clause on one column merges into one alter_column (pgroll changes
        several properties of a column in one operation)."""
        merged: dict[tuple[str, str], dict[str, Any]] = {}
        back = " ".join(step.rollback.sql) if step.rollback else ""
        for stmt in sql:
            m = re.fullmatch(rf"ALTER TABLE ({_QN}) (ALTER COLUMN .+)", stmt, re.DOTALL)
            if m is None:
                return None
            table = self._table(m.group(1))
            for clause in re.split(r", (?=ALTER COLUMN )", m.group(2)):
                c = re.fullmatch(rf"ALTER COLUMN ({_QI}) (.+)", clause, re.DOTALL)
                if c is None:
                    return None
                qcol = c.group(1)
                op = merged.setdefault((table, qcol), {
                    "table": table, "column": _unquote(qcol), "up": qcol, "down": qcol})
                if not self._alter_clause(op, qcol, c.group(2), back):
                    return None
        for key, op in list(merged.items()):
            added = self.added_columns.get((op["table"], op["column"]))
            if added is not None and "type" not in op:
                # a column this migration adds: its add_column carries the end state
                col = added["column"]
                if "default" in op:
                    if op["default"] is None:
                        col.pop("default", None)
                    else:
                        col["default"] = op["default"]
                if "nullable" in op:
                    col["nullable"] = op["nullable"]
                del merged[key]
        for op in merged.values():
            if op.get("nullable") is False:
                self.warnings.append(f"{step.description}: rows where {op['column']} IS NULL "
                                     "must be fixed before 'pgroll start' (the up expression "
                                     "copies values as they are)")
        return [{"alter_column": op} for op in merged.values()]

    @staticmethod
    def _alter_clause(op: dict[str, Any], qcol: str, rest: str, back: str) -> bool:
        if rest in ("SET NOT NULL", "DROP NOT NULL"):
            op["nullable"] = rest == "DROP NOT NULL"
        elif rest == "DROP DEFAULT":
            op.setdefault("default", None)  # a SET DEFAULT after it replaces this
        elif rest.startswith("SET DEFAULT "):
            op["default"] = rest.removeprefix("SET DEFAULT ")
        elif t := re.fullmatch(r"TYPE (.+?)(?: USING (.+))?", rest, re.DOTALL):
            old = re.search(rf"ALTER COLUMN {re.escape(qcol)} TYPE (.+?)"
                            r"(?: USING (.+?))?(?:, ALTER COLUMN |$)", back, re.DOTALL)
            op["type"] = t.group(1)
            op["up"] = t.group(2) or f"CAST({qcol} AS {t.group(1)})"
            if old is not None:
                op["down"] = old.group(2) or f"CAST({qcol} AS {old.group(1)})"
        else:
            return False
        return True

    def _add_constraint(self, sql: list[str], step: Step) -> list[Op] | None:
        if len(sql) == 1 and (u := re.fullmatch(
                rf"ALTER TABLE ({_QN}) ADD CONSTRAINT ({_QI}) UNIQUE USING INDEX ({_QI})",
                sql[0])):
            # The unique index was built CONCURRENTLY by an earlier step: the two are one
            # create_constraint (pgroll builds the index concurrently itself).
            index = self.unique_indexes.pop((u.group(1), u.group(3)), None)
            if index is None or u.group(2) != u.group(3):
                return None
            self.ops = [o for o in self.ops if o.get("create_index") is not index]
            cols = list(index["columns"])
            return [{"create_constraint": {
                "table": index["table"], "name": _unquote(u.group(2)), "type": "unique",
                "columns": cols, "up": {c: f'"{c}"' for c in cols},
                "down": {c: f'"{c}"' for c in cols}}}]
        m = re.fullmatch(rf"ALTER TABLE ({_QN}) ADD CONSTRAINT ({_QI}) UNIQUE \((.+)\)",
                         sql[0], re.DOTALL)
        cols = _ident_list(m.group(3)) if m else None
        if m is None or cols is None or len(sql) > 1:
            return None
        return [{"create_constraint": {
            "table": self._table(m.group(1)), "name": _unquote(m.group(2)), "type": "unique",
            "columns": cols, "up": {c: f'"{c}"' for c in cols},
            "down": {c: f'"{c}"' for c in cols}}}]

    def _add_foreign_key(self, sql: list[str], step: Step) -> list[Op] | None:
        m = re.fullmatch(rf"ALTER TABLE ({_QN}) ADD CONSTRAINT ({_QI}) FOREIGN KEY \((.+?)\) "
                         rf"REFERENCES ({_QN}) \((.+?)\)(?: ON DELETE "
                         r"(NO ACTION|RESTRICT|CASCADE|SET NULL|SET DEFAULT))?"
                         r"( NOT VALID)?", sql[0])
        cols = _ident_list(m.group(3)) if m else None
        refs = _ident_list(m.group(5)) if m else None
        if m is None or cols is None or refs is None or len(sql) > 1:
            return None
        if m.group(7):
            self.validated_by_pgroll.add((m.group(1), m.group(2)))
        references: dict[str, Any] = {"table": self._table(m.group(4)), "columns": refs}
        if m.group(6):
            references["on_delete"] = m.group(6)
        return [{"create_constraint": {
            "table": self._table(m.group(1)), "name": _unquote(m.group(2)),
            "type": "foreign_key", "columns": cols, "references": references,
            "up": {c: f'"{c}"' for c in cols}, "down": {c: f'"{c}"' for c in cols}}}]

    def _create_table(self, sql: list[str], step: Step) -> list[Op] | None:
        m = re.fullmatch(rf"CREATE TABLE ({_QN}) \((.*)\)", sql[0], re.DOTALL)
        if m is None or len(sql) > 1:
            return None
        name = self._table(m.group(1))
        columns: list[dict[str, Any]] = []
        after: list[Op] = []
        for item in (i.strip() for i in _split_top(m.group(2))):
            c = re.fullmatch(rf"(?:CONSTRAINT ({_QI}) )?(PRIMARY KEY|UNIQUE) \((.+)\)", item)
            if c is not None:
                cols = _ident_list(c.group(3))
                if cols is None:
                    return None
                if c.group(2) == "PRIMARY KEY":
                    for col in columns:
                        if col["name"] in cols:
                            col["pk"] = True
                            col.pop("nullable", None)
                elif len(cols) == 1:
                    for col in columns:
                        if col["name"] == cols[0]:
                            col["unique"] = True
                else:
                    uname = _unquote(c.group(1)) if c.group(1) else f"{name}_{'_'.join(cols)}_key"
                    after.append({"create_constraint": {
                        "table": name, "name": uname, "type": "unique", "columns": cols,
                        "up": {}, "down": {}}})
                continue
            col = _column(item)
            if col is None:
                return None
            columns.append(col)
        return [{"create_table": {"name": name, "columns": columns}}, *after]

    # -- result
    def migration(self, name: str | None) -> dict[str, Any]:
        if len(self.schemas) > 1:
            raise BadInput(f"this plan changes several schemas ({', '.join(sorted(self.schemas))}"
                           "); pgroll migrates one schema at a time (pgroll --schema)")
        ops = list(self.ops)
        if self.raw_up:
            raw: dict[str, Any] = {"up": ";\n".join(self.raw_up)}
            if ops:
                # pgroll runs raw SQL with other operations only at `complete`.
                raw["onComplete"] = True
                self.warnings.append("steps without a pgroll operation run as raw SQL at "
                                     "'pgroll complete' (pgroll runs raw SQL alongside other "
                                     "operations only then), and pgroll cannot roll them back")
            else:
                raw["down"] = ";\n".join(self.raw_down)
            ops.append({"sql": raw})
        out: dict[str, Any] = {}
        if name:
            out["name"] = name
        out["operations"] = ops
        schema = next(iter(self.schemas), "public")
        if schema != "public":
            self.warnings.append(f"run it with: pgroll start --schema {schema} ...")
        return out


def export_plan(plan: Plan, name: str | None = None) -> tuple[dict[str, Any], list[str]]:
    """A single-phase plan as a pgroll migration; the second value lists caveats."""
    if plan.dialect not in (None, "postgres"):
        raise BadInput(f"pgroll migrates PostgreSQL; this plan is for {plan.dialect}")
    ex = _Exporter()
    ex.temporary = _temporary_checks(plan.steps)
    for step in plan.steps:
        ex.step(step)
    return ex.migration(name), ex.warnings


def export_multiphase(mp: MultiPhasePlan, name: str | None = None
                      ) -> tuple[dict[str, Any], list[str]]:
    """A multi-phase plan as one pgroll migration: pgroll's own expand/contract does the
    phases (``pgroll start``, deploy, ``pgroll complete``)."""
    if mp.dialect != "postgres":
        raise BadInput(f"pgroll migrates PostgreSQL; this plan is for {mp.dialect}")
    ex = _Exporter()
    schema, _, table = mp.table.rpartition(".")
    ex.schemas.add(schema or "public")
    col, q = mp.column or "", f'"{(mp.column or "").replace(chr(34), chr(34) * 2)}"'
    op: Op
    if mp.operation == "rename_column" and mp.column and mp.new_name:
        op = {"alter_column": {"table": table, "column": col, "name": mp.new_name}}
    elif mp.operation == "rename_table" and mp.new_name:
        op = {"rename_table": {"from": table, "to": mp.new_name}}
    elif mp.operation == "change_type" and mp.column and mp.new_type and mp.old_type:
        op = {"alter_column": {"table": table, "column": col, "type": mp.new_type,
                               "up": f"CAST({q} AS {mp.new_type})",
                               "down": f"CAST({q} AS {mp.old_type})"}}
    elif mp.operation == "drop_column" and mp.column:
        op = {"drop_column": {"table": table, "column": col}}
    elif mp.operation == "drop_table":
        op = {"drop_table": {"name": table}}
    elif mp.operation == "add_not_null" and mp.column:
        fill = f"COALESCE({q}, {mp.default})" if mp.default else q
        op = {"alter_column": {"table": table, "column": col, "nullable": False,
                               "up": fill, "down": q}}
        if not mp.default:
            ex.warnings.append(f"rows where {col} IS NULL must be fixed before 'pgroll start' "
                               "(the up expression copies the value as it is)")
    else:
        raise BadInput(f"{mp.operation}: this multi-phase plan lacks the details pgroll "
                       "needs (made by an older Lockplane?): plan it again")
    ex.ops.append(op)
    if any(p.name == "archive" for p in mp.phases):
        sql = [s for p in mp.phases if p.name == "archive" for st in p.plan.steps
               for s in st.sql]
        ex.warnings.append("pgroll does not archive data: run this before 'pgroll start': "
                           + "; ".join(sql))
    # The plan's other changes (other tables) follow as their own operations.
    ex.temporary = _temporary_checks([st for p in mp.phases for st in p.plan.steps])
    for phase in mp.phases:
        for step in phase.plan.steps:
            other = step.table and step.table not in (mp.table, table)
            if other and not any("_lp_sync_" in s for s in step.sql):
                ex.step(step)
    return ex.migration(name), ex.warnings
