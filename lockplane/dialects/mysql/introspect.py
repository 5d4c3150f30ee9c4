"""Read a MySQL / MariaDB database's structure from information_schema.

Everything is read for the session's current database and reported with schema ""
(names are never qualified: the same schema loaded in a scratch database and in the
target must compare equal). Types are COLUMN_TYPE as the server prints it (``int(10)
unsigned``, ``varchar(255)``, ``enum('a','b')``); expressions (defaults, generated
columns, CHECKs) as the server prints them. Lockplane's own ``_lockplane_*`` tables are
left out.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from ...errors import BadInput
from ...model import (
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    IndexKey,
    PrimaryKey,
    Schema,
    Table,
    Trigger,
    View,
)
from . import STATE_PREFIX

if TYPE_CHECKING:
    from . import MySQLDatabase

_STATE_LIKE = STATE_PREFIX.replace("_", "\\_") + "%"


def introspect(db: MySQLDatabase) -> Schema:
    name = db.database
    if not name:
        raise BadInput(f"{db.dsn_display} names no database (mysql://host/DATABASE)")
    q = _Reader(db, name)
    tables = q.tables()
    views = q.views()
    schema = Schema(dialect="mysql", tables=list(tables.values()), views=views,
                    unmanaged=q.unmanaged())
    return schema


class _Reader:
    def __init__(self, db: MySQLDatabase, database: str) -> None:
        self.db = db
        self.database = database

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return self.db.query(sql, (self.database, *params))

    # ------------------------------------------------------------------ tables
    def tables(self) -> dict[str, Table]:
        tables: dict[str, Table] = {}
        for name, engine, collation, options, comment in self.rows(
                "SELECT TABLE_NAME, ENGINE, TABLE_COLLATION, CREATE_OPTIONS, TABLE_COMMENT "
                "FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
                "AND TABLE_TYPE = 'BASE TABLE' AND TABLE_NAME NOT LIKE %s "
                "ORDER BY TABLE_NAME", _STATE_LIKE):
            tables[name] = Table(name=name, schema="", engine=engine, collation=collation,
                                 options=_create_options(options), comment=comment or None)
        if not tables:
            return tables
        self._engine_defaults(tables)
        self._columns(tables)
        self._indexes(tables)
        self._checks(tables)
        self._foreign_keys(tables)
        self._triggers(tables)
        self._partitions(tables)
        return tables

    def _engine_defaults(self, tables: dict[str, Table]) -> None:
        """Aria tables show PAGE_CHECKSUM once any ALTER has run on them, as the server's
        default (aria_page_checksum) gave it: left out when it is that default, so a table
        reads the same altered or freshly created."""
        aria = [t for t in tables.values() if (t.engine or "").lower() == "aria"]
        if not aria or not self.db.is_mariadb:
            return
        default = self.db.query("SELECT @@GLOBAL.aria_page_checksum")[0][0]
        implied = f"page_checksum={1 if int(default) else 0}"
        for t in aria:
            t.options = [o for o in t.options if o.lower() != implied]

    def _columns(self, tables: dict[str, Table]) -> None:
        for (table, name, ctype, nullable, default, extra, collation, expression,
             comment) in self.rows(
                "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, "
                "EXTRA, COLLATION_NAME, GENERATION_EXPRESSION, COLUMN_COMMENT "
                "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
                "ORDER BY TABLE_NAME, ORDINAL_POSITION"):
            t = tables.get(table)
            if t is None:
                continue  # a view's column, or a state table's
            extra_l = (extra or "").lower()
            generated = expression if expression is not None and "generated" in extra_l \
                else None
            col = Column(
                name=name, type=ctype, nullable=nullable == "YES",
                default=None if generated else self._default(default, extra_l, ctype),
                collation=collation if collation and collation != t.collation else None,
                comment=comment or None,
                generated=generated,
                generated_kind="virtual" if "virtual" in extra_l else "stored",
                on_update=_on_update(extra or ""),
                auto_increment="auto_increment" in extra_l)
            t.columns.append(col)

    def _default(self, default: str | None, extra: str, ctype: str) -> str | None:
        """The default as an SQL expression. MariaDB prints one already (literals quoted,
        NULL for "no default" on a nullable column); MySQL 8 prints a literal's bare
        value and marks expressions DEFAULT_GENERATED."""
        if default is None:
            return None
        if self.db.is_mariadb:
            return None if default == "NULL" else default
        if "default_generated" in extra:
            return default if default.upper().startswith("CURRENT_TIMESTAMP") \
                else f"({default})"
        if _numeric(ctype) or default.upper().startswith("CURRENT_TIMESTAMP"):
            return default
        return self.db.dialect.literal(default)

    def _statistics_columns(self) -> set[str]:
        return {str(r[0]).upper() for r in self.db.query(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = "
            "'information_schema' AND TABLE_NAME = 'STATISTICS'")}

    def _indexes(self, tables: dict[str, Table]) -> None:
        have = self._statistics_columns()
        # MySQL 8: functional key parts (EXPRESSION) and INVISIBLE indexes (IS_VISIBLE);
        # MariaDB 10.6+: IGNORED indexes, the same thing under another name.
        expression = "EXPRESSION" if "EXPRESSION" in have else "NULL"
        hidden = ("IS_VISIBLE = 'NO'" if "IS_VISIBLE" in have
                  else "IGNORED = 'YES'" if "IGNORED" in have else "FALSE")
        hidden_word = "invisible" if "IS_VISIBLE" in have else "ignored"
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for (table, name, non_unique, column, sub_part, collation, itype,
             comment, expr, invisible) in self.rows(
                "SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, COLUMN_NAME, SUB_PART, "
                f"COLLATION, INDEX_TYPE, INDEX_COMMENT, {expression}, {hidden} "
                "FROM information_schema.STATISTICS "
                "WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX"):
            if table not in tables:
                continue
            entry = found.setdefault((table, name), {
                "unique": not int(non_unique), "type": itype, "comment": comment, "keys": [],
                "invisible": bool(invisible)})
            kind = (itype or "BTREE").upper()
            # A SPATIAL key reports a SUB_PART (32) it was never given: not a prefix.
            length = int(sub_part) if sub_part is not None and kind != "SPATIAL" else None
            key = IndexKey(column=column, descending=collation == "D", length=length) \
                if column is not None else IndexKey(expression=expr or "",
                                                    descending=collation == "D")
            entry["keys"].append(key)
        for (table, name), e in found.items():
            t = tables[table]
            if name == "PRIMARY":
                t.primary_key = PrimaryKey(columns=[k.column for k in e["keys"]])
                continue
            t.indexes.append(Index(name=name, keys=e["keys"], unique=e["unique"],
                                   method=(e["type"] or "BTREE").lower(),
                                   comment=e["comment"] or None,
                                   options=[hidden_word] if e["invisible"] else []))
        for t in tables.values():
            # The primary key makes its columns NOT NULL: re-run the table's validator.
            if t.primary_key is not None:
                for c in t.columns:
                    if c.name in t.primary_key.columns:
                        c.is_primary_key = True

    def _checks(self, tables: dict[str, Table]) -> None:
        try:
            rows = self.rows(
                "SELECT TABLE_NAME, CONSTRAINT_NAME, CHECK_CLAUSE FROM "
                "information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = %s "
                "ORDER BY TABLE_NAME, CONSTRAINT_NAME")
        except self.db.dialect.error_types():
            # MySQL 8's CHECK_CONSTRAINTS has no TABLE_NAME: join TABLE_CONSTRAINTS.
            rows = self.rows(
                "SELECT tc.TABLE_NAME, cc.CONSTRAINT_NAME, cc.CHECK_CLAUSE FROM "
                "information_schema.CHECK_CONSTRAINTS cc JOIN "
                "information_schema.TABLE_CONSTRAINTS tc ON tc.CONSTRAINT_SCHEMA = "
                "cc.CONSTRAINT_SCHEMA AND tc.CONSTRAINT_NAME = cc.CONSTRAINT_NAME AND "
                "tc.CONSTRAINT_TYPE = 'CHECK' WHERE cc.CONSTRAINT_SCHEMA = %s")
        for table, name, clause in rows:
            t = tables.get(table)
            if t is not None:
                t.check_constraints.append(CheckConstraint(name=name, expression=clause))

    def _foreign_keys(self, tables: dict[str, Table]) -> None:
        keys: dict[tuple[str, str], dict[str, Any]] = {}
        for (table, name, column, ref_schema, ref_table, ref_column) in self.rows(
                "SELECT TABLE_NAME, CONSTRAINT_NAME, COLUMN_NAME, REFERENCED_TABLE_SCHEMA, "
                "REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME FROM "
                "information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = %s "
                "AND REFERENCED_TABLE_NAME IS NOT NULL "
                "ORDER BY TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION"):
            e = keys.setdefault((table, name), {"schema": ref_schema, "table": ref_table,
                                                "columns": [], "refs": []})
            e["columns"].append(column)
            e["refs"].append(ref_column)
        rules = {(t, n): (u, d) for t, n, u, d in self.rows(
            "SELECT TABLE_NAME, CONSTRAINT_NAME, UPDATE_RULE, DELETE_RULE FROM "
            "information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = %s")}
        for (table, name), e in keys.items():
            t = tables.get(table)
            if t is None:
                continue
            on_update, on_delete = rules.get((table, name), ("NO ACTION", "NO ACTION"))
            t.foreign_keys.append(ForeignKey(
                name=name, columns=e["columns"], referenced_table=e["table"],
                # Another database is named; this one is "" like every table here.
                referenced_schema="" if e["schema"] == self.database else e["schema"],
                referenced_columns=e["refs"], on_update=on_update, on_delete=on_delete))

    def _triggers(self, tables: dict[str, Table]) -> None:
        quote = self.db.dialect.quote
        for name, event, table, timing, action in self.rows(
                "SELECT TRIGGER_NAME, EVENT_MANIPULATION, EVENT_OBJECT_TABLE, "
                "ACTION_TIMING, ACTION_STATEMENT FROM information_schema.TRIGGERS "
                "WHERE TRIGGER_SCHEMA = %s ORDER BY EVENT_OBJECT_TABLE, ACTION_TIMING, "
                "EVENT_MANIPULATION, ACTION_ORDER"):
            t = tables.get(table)
            if t is None:
                continue
            # The definer is left out: it names whoever created it (the scratch user).
            t.triggers.append(Trigger(
                name=name, definition=f"CREATE TRIGGER {quote(name)} {timing} {event} ON "
                f"{quote(table)} FOR EACH ROW {action}"))

    def _partitions(self, tables: dict[str, Table]) -> None:
        rows = self.rows(
            "SELECT TABLE_NAME, PARTITION_METHOD, PARTITION_EXPRESSION, "
            "SUBPARTITION_METHOD, SUBPARTITION_EXPRESSION, PARTITION_NAME, "
            "PARTITION_DESCRIPTION FROM information_schema.PARTITIONS "
            "WHERE TABLE_SCHEMA = %s AND PARTITION_NAME IS NOT NULL "
            "ORDER BY TABLE_NAME, PARTITION_ORDINAL_POSITION, SUBPARTITION_ORDINAL_POSITION")
        by_table: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        for row in rows:
            by_table[row[0]].append(row)
        for table, parts in by_table.items():
            t = tables.get(table)
            if t is None:
                continue
            method, expression = parts[0][1], parts[0][2]
            key = f"{method} ({expression})" if expression else f"{method} ()"
            if parts[0][3]:
                key += f" SUBPARTITION BY {parts[0][3]} ({parts[0][4]})"
            # Written as SQL (PARTITION BY <this>): names quoted, bounds as printed.
            quote = self.db.dialect.quote
            names = list(dict.fromkeys(
                f"PARTITION {quote(p[5])}"
                + (f" VALUES {_bound(method, p[6])}" if p[6] is not None else "")
                for p in parts))
            t.partition_by = f"{key} ({', '.join(names)})"

    # ------------------------------------------------------------------ views
    def views(self) -> list[View]:
        out = []
        for name, definition, check, security, algorithm in self.rows(
                "SELECT TABLE_NAME, VIEW_DEFINITION, CHECK_OPTION, SECURITY_TYPE, "
                "ALGORITHM FROM information_schema.VIEWS WHERE TABLE_SCHEMA = %s "
                "ORDER BY TABLE_NAME"):
            options = []
            if security and security != "DEFINER":
                options.append(f"sql_security={security}")
            if algorithm and algorithm != "UNDEFINED":
                options.append(f"algorithm={algorithm}")
            out.append(View(name=name, schema="",
                            definition=unqualified(definition, self.database),
                            check_option=check if check in ("LOCAL", "CASCADED") else None,
                            options=options))
        return out

    # ------------------------------------------------------------------ the rest
    def unmanaged(self) -> list[str]:
        """What Lockplane does not model yet, described for people."""
        out = [f"{kind.lower()} {name}" for kind, name in self.rows(
            "SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES "
            "WHERE ROUTINE_SCHEMA = %s ORDER BY ROUTINE_TYPE, ROUTINE_NAME")]
        out += [f"event {name}" for (name,) in self.rows(
            "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s "
            "ORDER BY EVENT_NAME")]
        out += [f"{kind.lower()} {name}" for name, kind in self.rows(
            "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = %s AND TABLE_TYPE NOT IN ('BASE TABLE', 'VIEW') "
            "ORDER BY TABLE_NAME")]
        return out


_CREATE_OPTION = re.compile(r"(`(?:[^`]|``)*`|\w+)=('(?:[^'\\]|''|\\.)*'|\S+)")


def _create_options(text: str | None) -> list[str]:
    """CREATE_OPTIONS as options (row_format=COMPRESSED, PAGE_COMPRESSED=1, ...), sorted;
    MariaDB quotes engine-defined ones (`PAGE_COMPRESSED`='1'): names and values are
    kept unquoted. 'partitioned' is the partitioning, read on its own."""
    out = []
    for key, value in _CREATE_OPTION.findall(text or ""):
        if key.startswith("`"):
            key = key[1:-1].replace("``", "`")
        if value.startswith("'"):
            value = value[1:-1].replace("''", "'")
        out.append(f"{key}={value}")
    return sorted(out)


def _on_update(extra: str) -> str | None:
    low = extra.lower()
    at = low.find("on update ")
    if at < 0:
        return None
    return extra[at + len("on update "):].strip() or None


def _numeric(ctype: str) -> bool:
    base = ctype.split("(", 1)[0].split()[0].lower()
    return base in {"tinyint", "smallint", "mediumint", "int", "integer", "bigint", "decimal",
                    "numeric", "float", "double", "real", "bit", "bool", "boolean"}


def _bound(method: str, description: str) -> str:
    if method.upper().startswith("RANGE"):
        return f"LESS THAN ({description})" if description != "MAXVALUE" \
            else "LESS THAN MAXVALUE"
    return f"IN ({description})"


def unqualified(definition: str, database: str) -> str:
    """A view body with this database's name taken off its references (the server
    writes `db`.`t`.`c` and `db`.`t`; the same view in a scratch database must read the
    same). Found with sqlglot's MySQL tokenizer: the first name of a three-part name, or
    of a two-part name where a table goes (after FROM, JOIN or an opening parenthesis),
    when it equals the database's; string literals and other names are left alone."""
    from sqlglot.dialects.mysql import MySQL
    from sqlglot.tokens import TokenType

    try:
        tokens = MySQL().tokenize(definition)
    except Exception:  # noqa: BLE001 - a body sqlglot cannot read stays as printed
        return definition
    table_position = {TokenType.FROM, TokenType.JOIN, TokenType.STRAIGHT_JOIN,
                      TokenType.L_PAREN}

    def linked(i: int) -> bool:  # tokens[i] is a name directly followed by ".name"
        return (i + 2 < len(tokens) and tokens[i].token_type is TokenType.IDENTIFIER
                and tokens[i + 1].token_type is TokenType.DOT
                and tokens[i + 1].start == tokens[i].end + 1
                and tokens[i + 2].start == tokens[i + 1].end + 1)

    cuts: list[tuple[int, int]] = []
    for i, tok in enumerate(tokens):
        if tok.text != database or not linked(i):
            continue
        prev = tokens[i - 1] if i else None
        if prev is not None and prev.token_type is TokenType.DOT:
            continue  # not the first name of its chain
        three_parts = linked(i + 2)  # `db`.`t`.`c`
        if three_parts or (prev is not None and prev.token_type in table_position):
            cuts.append((tok.start, tokens[i + 1].end + 1))
    if not cuts:
        return definition
    out, at = [], 0
    for start, end in cuts:
        out.append(definition[at:start])
        at = end
    out.append(definition[at:])
    return "".join(out)
