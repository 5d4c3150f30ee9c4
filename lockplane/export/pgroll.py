"""``lockplane export --to pgroll``: a plan as a pgroll migration (its JSON operations).

pgroll (https://github.com/xataio/pgroll) runs expand/contract itself: ``pgroll start``
builds the new version next to the old (views per version, triggers that keep both in
sync), ``pgroll complete`` removes the old. So a multi-phase plan becomes *one* pgroll
operation for its breaking change (``alter_column`` with ``name`` for a rename, with
``type`` and up/down SQL for a type change, ``nullable: false`` for a new NOT NULL,
``drop_column``, ``rename_table``, ``drop_table``), plus the plan's other changes.

A single-phase plan's steps map one by one: each step's SQL is read with PostgreSQL's own
parser (pglast), and each step's kind says which statement to expect (add_column,
drop_column, create_table, drop_table, create_index, drop_index, alter_column,
add_constraint, add_foreign_key, rename_table, rename_column); types and expressions are
written back as pglast deparses them. A step that has no pgroll operation is kept as raw SQL
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

from collections.abc import Sequence
from typing import Any

from pglast import ast, parse_sql
from pglast.enums import AlterTableType, ConstrType, NullTestType, ObjectType
from pglast.parser import ParseError
from pglast.stream import RawStream

from ..dialects import get_dialect
from ..errors import BadInput
from ..multiphase.model import MultiPhasePlan
from ..plan import Plan, Step

Op = dict[str, Any]
# (schema, table, name) of a constraint or index; schema None when unqualified
_Key = tuple[str | None, str, str]

_TIMEOUTS = ("lock_timeout", "statement_timeout")
# pg_constraint's confdeltype letters, as pgroll spells them ('a', NO ACTION, is the default)
_FK_ACTIONS = {"r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


def _sql(node: ast.Node) -> str:
    return str(RawStream()(node))


def _quote(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


def _parse(sql: Sequence[str], where: str) -> list[tuple[str, ast.Node]]:
    """A step's statements (text, parse tree) without the timeouts every PostgreSQL step
    sets around its DDL (pgroll waits for locks as its own ``--lock-timeout`` says)."""
    out: list[tuple[str, ast.Node]] = []
    for text in sql:
        try:
            parsed = parse_sql(text)
        except ParseError as exc:
            raise BadInput(f"{where}: its SQL does not parse ({exc})") from None
        for raw in parsed:
            node = raw.stmt
            if isinstance(node, ast.VariableSetStmt) and node.name in _TIMEOUTS:
                continue
            out.append((text.strip().rstrip(";") if len(parsed) == 1 else _sql(node), node))
    return out


def _names(items: Sequence[ast.Node] | None) -> list[str] | None:
    """A list of plain names (String nodes); None when an item is anything else."""
    if not items or not all(isinstance(i, ast.String) for i in items):
        return None
    return [i.sval for i in items]


def _column_ref(node: ast.Node | None) -> str | None:
    """The column a bare, unqualified column reference names."""
    if isinstance(node, ast.ColumnRef):
        names = _names(node.fields)
        if names is not None and len(names) == 1:
            return names[0]
    return None


def _alter(node: ast.Node, *subtypes: AlterTableType) -> tuple[ast.RangeVar,
                                                             list[ast.AlterTableCmd]] | None:
    """An ALTER TABLE whose commands are all of ``subtypes``: (table, commands)."""
    if not isinstance(node, ast.AlterTableStmt) or node.objtype != ObjectType.OBJECT_TABLE \
            or not node.cmds or node.missing_ok:
        return None
    cmds = list(node.cmds)
    if not all(isinstance(c, ast.AlterTableCmd) and c.subtype in subtypes for c in cmds):
        return None
    return node.relation, cmds


def _one_cmd(node: ast.Node, subtype: AlterTableType) -> tuple[ast.RangeVar,
                                                              ast.AlterTableCmd] | None:
    found = _alter(node, subtype)
    if found is None or len(found[1]) != 1:
        return None
    return found[0], found[1][0]


def _constraint_key(node: ast.Node, *subtypes: AlterTableType) -> _Key | None:
    """(schema, table, constraint) of an ALTER TABLE ... ADD/DROP/VALIDATE CONSTRAINT."""
    found = _alter(node, *subtypes)
    if found is None or len(found[1]) != 1:
        return None
    rel, (cmd,) = found
    name = cmd.def_.conname if isinstance(cmd.def_, ast.Constraint) else cmd.name
    return (rel.schemaname, rel.relname, name) if name else None


def _not_null_check(node: ast.Node) -> _Key | None:
    """The key of ``ADD CONSTRAINT c CHECK (col IS NOT NULL) NOT VALID``."""
    found = _one_cmd(node, AlterTableType.AT_AddConstraint)
    if found is None:
        return None
    rel, cmd = found
    con = cmd.def_
    if not isinstance(con, ast.Constraint) or con.contype != ConstrType.CONSTR_CHECK \
            or not con.skip_validation or not con.conname:
        return None
    test = con.raw_expr
    if not isinstance(test, ast.NullTest) or test.nulltesttype != NullTestType.IS_NOT_NULL \
            or _column_ref(test.arg) is None:
        return None
    return rel.schemaname, rel.relname, con.conname


def _temporary_checks(plan_steps: list[Step]) -> set[_Key]:
    """Each ``CHECK (col IS NOT NULL) NOT VALID`` the plan adds and drops again: the
    helper of a lock-safe SET NOT NULL."""
    added: set[_Key] = set()
    temporary: set[_Key] = set()
    for step in plan_steps:
        for _, node in _parse(step.sql, step.description):
            if step.kind == "add_constraint" and (key := _not_null_check(node)):
                added.add(key)
            elif step.kind == "drop_constraint" and (key := _constraint_key(
                    node, AlterTableType.AT_DropConstraint)) and key in added:
                temporary.add(key)
    return temporary


def _column(cd: ast.ColumnDef, *, in_table: bool = False) -> dict[str, Any] | None:
    """A pgroll column from a column definition: type, nullability, default (and, in a
    CREATE TABLE, an inline PRIMARY KEY or UNIQUE); None when it has more than pgroll's
    column can say (a collation, a generated expression, an inline CHECK or reference)."""
    if cd.collClause is not None or cd.typeName is None or not cd.colname:
        return None
    kind = _sql(cd.typeName)
    col: dict[str, Any] = {"name": cd.colname, "type": kind, "nullable": True}
    for con in cd.constraints or ():
        if not isinstance(con, ast.Constraint):
            return None
        if con.contype == ConstrType.CONSTR_NOTNULL:
            col["nullable"] = False
        elif con.contype == ConstrType.CONSTR_NULL:
            col["nullable"] = True
        elif con.contype == ConstrType.CONSTR_DEFAULT and con.raw_expr is not None:
            col["default"] = _sql(con.raw_expr)
        elif con.contype == ConstrType.CONSTR_IDENTITY:
            # pgroll has no identity field: its column type is written into the DDL as is
            col["type"] = f"{col['type']} {_sql(con)}"
        elif in_table and con.contype == ConstrType.CONSTR_PRIMARY and not con.conname:
            col["pk"] = True
        elif in_table and con.contype == ConstrType.CONSTR_UNIQUE and not con.conname:
            col["unique"] = True
        else:
            return None
    if col.get("pk"):
        col.pop("nullable", None)
    return col


def _index_columns(params: Sequence[ast.Node] | None) -> list[str] | None:
    """The columns of an index on plain columns (no expression, collation, operator
    class or ordering); None otherwise."""
    cols: list[str] = []
    for p in params or ():
        if not isinstance(p, ast.IndexElem) or not p.name or p.expr is not None \
                or p.collation or p.opclass or p.opclassopts \
                or int(p.ordering) or int(p.nulls_ordering):
            return None
        cols.append(p.name)
    return cols or None


class _Exporter:
    def __init__(self) -> None:
        self.ops: list[Op] = []
        self.raw_up: list[str] = []
        self.raw_down: list[str] = []
        self.warnings: list[str] = []
        self.schemas: set[str] = set()
        # the helper checks to leave out (see _temporary_checks)
        self.temporary: set[_Key] = set()
        # constraints added NOT VALID as a pgroll operation: pgroll validates them
        # itself, so the plan's VALIDATE step has nothing left to do
        self.validated_by_pgroll: set[_Key] = set()
        # unique indexes exported as create_index, by (schema, table, name): a later
        # ADD CONSTRAINT ... USING INDEX turns that operation into create_constraint
        self.unique_indexes: dict[_Key, Op] = {}
        # add_column operations by (table, column): a lock-safe volatile default comes as
        # add bare + SET DEFAULT + backfill (+ NOT NULL), which pgroll does in that one
        # operation (its column's default and nullable, and ``up`` for existing rows)
        self.added_columns: dict[tuple[str, str], Op] = {}

    # -- names
    def _table(self, rel: ast.RangeVar) -> str:
        self.schemas.add(rel.schemaname or "public")
        return str(rel.relname)

    def _object(self, node: ast.DropStmt) -> tuple[str | None, str] | None:
        """The one object a DROP names: (schema, name)."""
        if not node.objects or len(node.objects) != 1:
            return None
        names = _names(node.objects[0])
        if names is None or len(names) > 2:
            return None
        schema = names[0] if len(names) == 2 else None
        self.schemas.add(schema or "public")
        return schema, names[-1]

    # -- steps
    def step(self, step: Step) -> None:
        stmts = _parse(step.sql, step.description)
        ops = self._convert(step, stmts)
        if ops is None:
            self.raw_up += [text for text, _ in stmts]
            back = [text for text, _ in _parse(step.rollback.sql, step.description)] \
                if step.rollback else []
            self.raw_down = back + self.raw_down
            # (validating a constraint needs no way back: undoing its ADD drops it)
            if not back and step.kind != "validate_constraint":
                self.warnings.append(f"raw SQL without a way back: {step.description}")
            return
        self.ops += ops

    def _convert(self, step: Step, stmts: list[tuple[str, ast.Node]]) -> list[Op] | None:
        nodes = [node for _, node in stmts]
        kind = step.kind or ""
        if kind in ("add_constraint", "drop_constraint", "validate_constraint") \
                and len(nodes) == 1:
            key = _constraint_key(nodes[0], AlterTableType.AT_AddConstraint,
                                  AlterTableType.AT_DropConstraint,
                                  AlterTableType.AT_ValidateConstraint)
            if key is not None and key in self.temporary:
                return []  # pgroll's alter_column (nullable: false) has its own check
        handler = getattr(self, f"_{kind}", None)
        if handler is None or not nodes:
            return None
        result: list[Op] | None = handler(nodes, step)
        return result

    def _add_column(self, nodes: list[ast.Node], step: Step) -> list[Op] | None:
        found = _one_cmd(nodes[0], AlterTableType.AT_AddColumn)
        if found is None or len(nodes) > 1 or not isinstance(found[1].def_, ast.ColumnDef):
            return None
        col = _column(found[1].def_)
        if col is None:
            return None
        op: dict[str, Any] = {"table": self._table(found[0]), "column": col}
        if not col["nullable"] and "default" not in col:
            op["up"] = "NULL"
            self.warnings.append(f"{step.description}: NOT NULL without a default; set "
                                 "add_column.up to the value existing rows get")
        self.added_columns[(op["table"], col["name"])] = op
        return [{"add_column": op}]

    def _backfill_column(self, nodes: list[ast.Node], step: Step) -> list[Op] | None:
        """``UPDATE t SET c = e WHERE c IS NULL`` fills a column this migration adds."""
        node = nodes[0]
        if len(nodes) > 1 or not isinstance(node, ast.UpdateStmt) or node.fromClause \
                or node.returningClause or node.withClause or len(node.targetList or ()) != 1:
            return None
        target, where = node.targetList[0], node.whereClause
        if not isinstance(target, ast.ResTarget) or target.indirection \
                or not isinstance(where, ast.NullTest) \
                or where.nulltesttype != NullTestType.IS_NULL \
                or _column_ref(where.arg) != target.name:
            return None
        added = self.added_columns.get((self._table(node.relation), str(target.name)))
        if added is None:
            return None
        added.setdefault("up", _sql(target.val))  # pgroll fills existing rows with it
        return []

    def _drop_column(self, nodes: list[ast.Node], step: Step) -> list[Op] | None:
        found = _one_cmd(nodes[0], AlterTableType.AT_DropColumn)
        if found is None or len(nodes) > 1:
            return None
        return [{"drop_column": {"table": self._table(found[0]), "column": found[1].name}}]

    def _drop_table(self, nodes: list[ast.Node], step: Step) -> list[Op] | None:
        *before, node = nodes
        if not isinstance(node, ast.DropStmt) or node.removeType != ObjectType.OBJECT_TABLE \
                or not all(isinstance(n, ast.CreateSchemaStmt | ast.DoStmt) for n in before):
            return None
        obj = self._object(node)
        if obj is None:
            return None
        if before:
            # The plan's copy of the rows, for a Lockplane rollback (changes/refill_table.py):
            # pgroll keeps the table itself until 'pgroll complete' (a rollback before then
            # has the rows), and drops it then.
            self.warnings.append(f"{step.description}: the plan's archive of its rows is not "
                                 "part of the pgroll migration (pgroll keeps the table until "
                                 "'pgroll complete'); to keep a copy, run before "
                                 f"'pgroll start': {'; '.join(_sql(n) for n in before)}")
        return [{"drop_table": {"name": obj[1]}}]

    def _rename(self, nodes: list[ast.Node], kind: ObjectType) -> ast.RenameStmt | None:
        node = nodes[0]
        if len(nodes) > 1 or not isinstance(node, ast.RenameStmt) \
                or node.renameType != kind or node.relation is None:
            return None
        return node

    def _rename_table(self, nodes: list[ast.Node], step: Step) -> list[Op] | None:
        node = self._rename(nodes, ObjectType.OBJECT_TABLE)
        if node is None:
            return None
        return [{"rename_table": {"from": self._table(node.relation), "to": node.newname}}]

    def _rename_column(self, nodes: list[ast.Node], step: Step) -> list[Op] | None:
        node = self._rename(nodes, ObjectType.OBJECT_COLUMN)
        if node is None:
            return None
        return [{"alter_column": {"table": self._table(node.relation),
                                  "column": node.subname, "name": node.newname}}]

    def _validate_constraint(self, nodes: list[ast.Node], step: Step) -> list[Op] | None:
        key = _constraint_key(nodes[0], AlterTableType.AT_ValidateConstraint)
        if key is None or len(nodes) > 1 or key not in self.validated_by_pgroll:
            return None
        return []  # pgroll validates the constraint it added at 'pgroll complete'

    def _create_index(self, nodes: list[ast.Node], step: Step) -> list[Op] | None:
        first = nodes[0]
        if len(nodes) == 2 and isinstance(first, ast.DropStmt) and first.concurrent \
                and first.missing_ok and first.removeType == ObjectType.OBJECT_INDEX:
            nodes = nodes[1:]  # (older plans) clearing an INVALID index a failed build left
        node = nodes[0]
        if len(nodes) > 1 or not isinstance(node, ast.IndexStmt) or not node.idxname \
                or node.indexIncludingParams or node.options or node.tableSpace \
                or node.nulls_not_distinct:
            return None
        cols = _index_columns(node.indexParams)
        if cols is None:
            return None
        op: dict[str, Any] = {"name": node.idxname, "table": self._table(node.relation),
                              "columns": cols}
        method = node.accessMethod or "btree"
        if node.unique:
            op["unique"] = True
        if method != "btree":
            op["method"] = method
        if node.whereClause is not None:
            op["predicate"] = _sql(node.whereClause)
        if node.unique and method == "btree" and node.whereClause is None:
            key = (node.relation.schemaname, node.relation.relname, node.idxname)
            self.unique_indexes[key] = op
        return [{"create_index": op}]

    def _drop_index(self, nodes: list[ast.Node], step: Step) -> list[Op] | None:
        node = nodes[0]
        if len(nodes) > 1 or not isinstance(node, ast.DropStmt) \
                or node.removeType != ObjectType.OBJECT_INDEX:
            return None
        obj = self._object(node)
        return None if obj is None else [{"drop_index": {"name": obj[1]}}]

    _COLUMN_CHANGES = (AlterTableType.AT_SetNotNull, AlterTableType.AT_DropNotNull,
                       AlterTableType.AT_ColumnDefault, AlterTableType.AT_AlterColumnType)

    def _alter_column(self, nodes: list[ast.Node], step: Step) -> list[Op] | None:
        """Every clause on one column merges into one alter_column (pgroll changes
        several properties of a column in one operation)."""
        merged: dict[tuple[str, str], dict[str, Any]] = {}
        old_types: dict[str, tuple[str, str | None]] = {}  # column: (type, USING) before
        for _, back in _parse(step.rollback.sql if step.rollback else [], step.description):
            for cmd in (_alter(back, *self._COLUMN_CHANGES) or (None, []))[1]:
                if cmd.subtype == AlterTableType.AT_AlterColumnType and cmd.name \
                        and isinstance(cmd.def_, ast.ColumnDef) and cmd.def_.typeName:
                    using = cmd.def_.raw_default
                    old_types[cmd.name] = (_sql(cmd.def_.typeName),
                                           _sql(using) if using is not None else None)
        for node in nodes:
            found = _alter(node, *self._COLUMN_CHANGES)
            if found is None:
                return None
            table = self._table(found[0])
            for cmd in found[1]:
                if not cmd.name:
                    return None
                qcol = _quote(cmd.name)
                op = merged.setdefault((table, cmd.name), {
                    "table": table, "column": cmd.name, "up": qcol, "down": qcol})
                if not self._alter_clause(op, qcol, cmd, old_types.get(cmd.name)):
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
    def _alter_clause(op: dict[str, Any], qcol: str, cmd: ast.AlterTableCmd,
                      old: tuple[str, str | None] | None) -> bool:
        if cmd.subtype in (AlterTableType.AT_SetNotNull, AlterTableType.AT_DropNotNull):
            op["nullable"] = cmd.subtype == AlterTableType.AT_DropNotNull
        elif cmd.subtype == AlterTableType.AT_ColumnDefault:
            if cmd.def_ is None:
                op.setdefault("default", None)  # a SET DEFAULT after it replaces this
            else:
                op["default"] = _sql(cmd.def_)
        elif cmd.subtype == AlterTableType.AT_AlterColumnType \
                and isinstance(cmd.def_, ast.ColumnDef) and cmd.def_.typeName is not None \
                and cmd.def_.collClause is None:
            kind = _sql(cmd.def_.typeName)
            using = cmd.def_.raw_default
            op["type"] = kind
            op["up"] = _sql(using) if using is not None else f"CAST({qcol} AS {kind})"
            if old is not None:
                op["down"] = old[1] or f"CAST({qcol} AS {old[0]})"
        else:
            return False
        return True

    def _add_constraint(self, nodes: list[ast.Node], step: Step) -> list[Op] | None:
        found = _one_cmd(nodes[0], AlterTableType.AT_AddConstraint)
        if found is None or len(nodes) > 1 or not isinstance(found[1].def_, ast.Constraint):
            return None
        rel, con = found[0], found[1].def_
        if con.contype != ConstrType.CONSTR_UNIQUE or not con.conname or con.deferrable \
                or con.nulls_not_distinct or con.including or con.options:
            return None
        if con.indexname:
            # The unique index was built CONCURRENTLY by an earlier step: the two are one
            # create_constraint (pgroll builds the index concurrently itself).
            index = self.unique_indexes.pop((rel.schemaname, rel.relname, con.indexname),
                                            None)
            if index is None or con.conname != con.indexname:
                return None
            self.ops = [o for o in self.ops if o.get("create_index") is not index]
            table, cols = index["table"], list(index["columns"])
        else:
            cols = _names(con.keys)
            if cols is None:
                return None
            table = self._table(rel)
        return [{"create_constraint": {
            "table": table, "name": con.conname, "type": "unique", "columns": cols,
            "up": {c: _quote(c) for c in cols}, "down": {c: _quote(c) for c in cols}}}]

    def _add_foreign_key(self, nodes: list[ast.Node], step: Step) -> list[Op] | None:
        found = _one_cmd(nodes[0], AlterTableType.AT_AddConstraint)
        if found is None or len(nodes) > 1 or not isinstance(found[1].def_, ast.Constraint):
            return None
        rel, con = found[0], found[1].def_
        cols, refs = _names(con.fk_attrs), _names(con.pk_attrs)
        if con.contype != ConstrType.CONSTR_FOREIGN or not con.conname or cols is None \
                or refs is None or con.pktable is None or con.deferrable \
                or con.fk_matchtype not in ("s", "\x00") \
                or con.fk_upd_action not in ("a", "\x00") or con.fk_del_set_cols:
            return None
        if con.skip_validation:
            self.validated_by_pgroll.add((rel.schemaname, rel.relname, con.conname))
        references: dict[str, Any] = {"table": self._table(con.pktable), "columns": refs}
        if con.fk_del_action in _FK_ACTIONS:
            references["on_delete"] = _FK_ACTIONS[con.fk_del_action]
        return [{"create_constraint": {
            "table": self._table(rel), "name": con.conname, "type": "foreign_key",
            "columns": cols, "references": references,
            "up": {c: _quote(c) for c in cols}, "down": {c: _quote(c) for c in cols}}}]

    def _create_table(self, nodes: list[ast.Node], step: Step) -> list[Op] | None:
        node = nodes[0]
        if len(nodes) > 1 or not isinstance(node, ast.CreateStmt) or node.inhRelations \
                or node.partspec or node.partbound or node.ofTypename or node.options \
                or node.tablespacename or node.accessMethod \
                or node.relation.relpersistence != "p":
            return None
        name = self._table(node.relation)
        columns: list[dict[str, Any]] = []
        after: list[Op] = []
        for item in node.tableElts or ():
            if isinstance(item, ast.ColumnDef):
                col = _column(item, in_table=True)
                if col is None:
                    return None
                columns.append(col)
                continue
            if not isinstance(item, ast.Constraint) or item.contype not in (
                    ConstrType.CONSTR_PRIMARY, ConstrType.CONSTR_UNIQUE) \
                    or item.deferrable or item.including or item.options \
                    or item.nulls_not_distinct:
                return None
            cols = _names(item.keys)
            if cols is None:
                return None
            if item.contype == ConstrType.CONSTR_PRIMARY:
                for col in columns:
                    if col["name"] in cols:
                        col["pk"] = True
                        col.pop("nullable", None)
            elif len(cols) == 1:
                for col in columns:
                    if col["name"] == cols[0]:
                        col["unique"] = True
            else:
                uname = item.conname or f"{name}_{'_'.join(cols)}_key"
                after.append({"create_constraint": {
                    "table": name, "name": uname, "type": "unique", "columns": cols,
                    "up": {}, "down": {}}})
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


def _check_dialect(dialect: str | None) -> None:
    """pgroll runs on the servers whose dialect lists it (PostgreSQL); a plan without a
    dialect is of the original format, which was PostgreSQL's."""
    if dialect is not None and "pgroll" not in get_dialect(dialect).export_tools:
        raise BadInput(f"pgroll migrates PostgreSQL; this plan is for {dialect}")


def export_plan(plan: Plan, name: str | None = None) -> tuple[dict[str, Any], list[str]]:
    """A single-phase plan as a pgroll migration; the second value lists caveats."""
    _check_dialect(plan.dialect)
    ex = _Exporter()
    ex.temporary = _temporary_checks(plan.steps)
    for step in plan.steps:
        ex.step(step)
    return ex.migration(name), ex.warnings


def export_multiphase(mp: MultiPhasePlan, name: str | None = None
                      ) -> tuple[dict[str, Any], list[str]]:
    """A multi-phase plan as one pgroll migration: pgroll's own expand/contract does the
    phases (``pgroll start``, deploy, ``pgroll complete``)."""
    _check_dialect(mp.dialect)
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
