"""Random schema pairs for property-based round trips (see test_roundtrip_hypothesis.py).

A hypothesis strategy draws a "from" schema (tables with hostile names, varied column
types, keys, checks, foreign keys including self-references, indexes of every shape,
and on PostgreSQL second schemas, enum types, serial and identity columns, views and
materialized views, comments, functions calling functions, domains (over domains) whose
CHECK calls one, composite types, functions over rows, CHECKs, defaults and indexes
calling functions, trigger functions with their triggers, partitioned tables), a "to"
schema derived from it by random mutations (no renames; among them changes of what
others depend on: a function's body, language or return type, a domain's CHECK, a
composite type's attributes, a CHECK's expression, a key's or foreign key's options,
columns and validity both ways, partitions attached and detached), and rows for
"from" that satisfy its constraints *and* survive the migration both ways: the point is
to test the engine, not to generate migrations that must fail on their data. Where a
mutation makes that impossible (a new NOT NULL column without a default, a dropped NOT
NULL column the rollback re-adds empty, a key over a column that becomes constant ...),
the table simply gets no rows.

Everything is kept as a small structural model (``Db``) and rendered to a SQL script
per dialect; the engine never sees this model, only the databases built from the SQL.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

# ------------------------------------------------------------------------------ names
# Hostile identifiers: quotes, semicolons, spaces, case, reserved words, unicode.
NAME_POOL = [
    "users", "Order", "select", "order", "user", "table", 'a"b', "semi;colon", "with space",
    "MixedCase", "mixedcase", "données", "日本語", "it's", "group", "id", "Id", "from", "x",
    "t1", "col-dash", "back\\slash", "🙂", "ñ", "DROP TABLE x; --", "check", "default",
]
SCHEMA_POOL = ["billing", "Other Schema", "sch;ema", "ÜberSchema", "user", 'q"s']
LABEL_POOL = ["new", "active", "it's", "DONE", "a b", "ñ", "x;y", "Z"]
COMMENT_POOL = ["people", "it's; here", "multi\nline", "ünïcode ✓", "-- not a comment",
                "$$dollar$$", "a \\ backslash"]


def fold(dialect: str, name: str) -> str:
    """The key under which a name collides with another (SQLite: ASCII case-insensitive)."""
    if dialect == "sqlite":
        return "".join(c.lower() if c.isascii() else c for c in name)
    return name


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# ------------------------------------------------------------------------------ model
@dataclass
class Col:
    name: str
    type: str  # logical type: a key of PG_KINDS / SQLITE_KINDS, or "enum"
    nullable: bool = True
    default: str | None = None
    collation: str | None = None
    identity: str | None = None  # "ALWAYS" | "BY DEFAULT" (PostgreSQL)
    serial: bool = False  # PostgreSQL serial / bigserial
    enum: tuple[str, str] | None = None  # (schema, name) when type is "enum" or "domain"
    comment: str | None = None
    generated: str | None = None  # SQL of a generated column over ``base``
    base: str | None = None
    virtual: bool = False  # SQLite: GENERATED ... VIRTUAL (computed on read)


@dataclass
class Key:
    """PRIMARY KEY or UNIQUE constraint."""

    name: str | None
    cols: list[str]
    deferrable: bool = False  # PostgreSQL UNIQUE only (never referenced by a FK)
    nulls_not_distinct: bool = False  # PostgreSQL UNIQUE only


@dataclass
class Check:
    name: str | None
    cols: list[str]
    expr: str
    valid: bool = True  # PostgreSQL: False is added NOT VALID (after the rows)


@dataclass
class FK:
    name: str | None
    cols: list[str]
    ref: tuple[str, str]
    ref_cols: list[str]
    on_delete: str = "NO ACTION"
    on_update: str = "NO ACTION"
    deferrable: bool = False
    match_full: bool = False
    deferred: bool = True  # when deferrable: INITIALLY DEFERRED (else IMMEDIATE)
    valid: bool = True  # PostgreSQL: False is added NOT VALID


@dataclass
class IdxKey:
    col: str | None = None
    expr: str | None = None  # SQL, columns already quoted
    expr_cols: list[str] = field(default_factory=list)
    desc: bool = False
    nulls: str | None = None  # "FIRST" | "LAST" (PostgreSQL)
    opclass: str | None = None  # PostgreSQL
    collation: str | None = None

    def cols(self) -> list[str]:
        return [self.col] if self.col is not None else list(self.expr_cols)


@dataclass
class Idx:
    name: str
    keys: list[IdxKey]
    unique: bool = False
    where: str | None = None
    where_cols: list[str] = field(default_factory=list)
    comment: str | None = None
    include: list[str] = field(default_factory=list)  # PostgreSQL
    method: str = "btree"

    def cols(self) -> set[str]:
        return ({c for k in self.keys for c in k.cols()} | set(self.where_cols)
                | set(self.include))


@dataclass
class Tbl:
    schema: str
    name: str
    cols: list[Col]
    pk: Key | None = None
    uniques: list[Key] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    fks: list[FK] = field(default_factory=list)
    indexes: list[Idx] = field(default_factory=list)
    comment: str | None = None
    # SQLite table options, as wanted: sqlite_options() says which hold once the
    # mutations are done (a key or a type that no longer allows one leaves it out).
    autoincrement: bool = False
    without_rowid: bool = False
    strict: bool = False
    # PostgreSQL partitioning. A partitioned table has ``partition_by`` (RANGE | LIST) over
    # its column ``part_key``; a partition has ``part_of`` (its parent's key) and ``bound``
    # (FOR VALUES ... | DEFAULT), shares its parent's column list and has no constraints of
    # its own (the server clones the parent's). ``detached``: made as a partition and then
    # detached, so it keeps what the server gave it, and a mutation may attach it again.
    partition_by: str | None = None
    part_key: str | None = None
    part_of: tuple[str, str] | None = None
    bound: str | None = None
    detached: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.schema, self.name)

    def col(self, name: str) -> Col | None:
        return next((c for c in self.cols if c.name == name), None)

    def keys(self) -> list[Key]:
        return ([self.pk] if self.pk else []) + self.uniques

    @property
    def leaf(self) -> bool:
        return self.part_of is not None

    def not_null(self, c: Col) -> bool:
        """Effective NOT NULL: declared, identity/serial, or in the primary key."""
        return (not c.nullable or c.identity is not None or c.serial
                or (self.pk is not None and c.name in self.pk.cols))


@dataclass
class ViewDef:
    schema: str
    name: str
    table: tuple[str, str]
    cols: list[str]
    where_col: str | None = None
    comment: str | None = None
    # PostgreSQL: one more output column, fx, calling a function: over ``func_col`` (an
    # integer-valued column of the source) or the source's row, or over a constant.
    func: tuple[str, str] | None = None
    func_col: str | None = None
    materialized: bool = False  # PostgreSQL: a materialized view (WITH DATA)


@dataclass
class Trigger:
    """SQLite: AFTER INSERT ON ``table`` BEGIN UPDATE ``target`` SET col = col WHERE 0.
    PostgreSQL: BEFORE UPDATE OF ``col`` ON ``table`` FOR EACH ROW [WHEN (OLD.col IS
    DISTINCT FROM NEW.col)] EXECUTE FUNCTION ``fn``() (a plpgsql trigger function of its
    own that returns NEW; ``target`` is ``table``)."""

    name: str
    table: tuple[str, str]
    target: tuple[str, str]
    col: str
    fn: tuple[str, str] | None = None
    when: bool = False


@dataclass
class Enum:
    schema: str
    name: str
    labels: list[str]
    comment: str | None = None


@dataclass
class Func:
    """A PostgreSQL function. ``arg``: None for (x integer), ("row", table) for a table's
    row type, ("comp", type) for a composite type; ``ret``: integer, bigint, boolean,
    "comp" (returns ``comp``, a composite type) or "setof" (SETOF the row type of
    ``arg``'s table, reading it: SELECT * depends on its columns). ``calls``: functions of
    the (x integer) -> integer | bigint kind it calls, always earlier in ``Db.funcs``."""

    schema: str
    name: str
    body: str  # "return" (RETURN expr) | "atomic" (BEGIN ATOMIC) | "sql" ($$ $$) | "plpgsql"
    ret: str = "integer"
    arg: tuple[str, tuple[str, str]] | None = None
    comp: tuple[str, str] | None = None
    calls: list[tuple[str, str]] = field(default_factory=list)
    const: int = 1

    @property
    def key(self) -> tuple[str, str]:
        return (self.schema, self.name)

    @property
    def scalar(self) -> bool:
        """(x integer) -> integer | bigint: what other functions may call."""
        return self.arg is None and self.ret in ("integer", "bigint")


@dataclass
class Comp:
    """A composite type: attributes (name, "integer" | "text")."""

    schema: str
    name: str
    attrs: list[tuple[str, str]]


@dataclass
class Domain:
    """A domain over integer, or over an earlier domain of ``Db`` (``base``), whose CHECK
    (if any) calls a boolean function of ``Db``."""

    schema: str
    name: str
    check: tuple[str, str] | None = None
    check_name: str | None = None
    base: tuple[str, str] | None = None


@dataclass
class Db:
    dialect: str
    schemas: list[str] = field(default_factory=list)  # PostgreSQL schemas besides public
    schema_comments: dict[str, str] = field(default_factory=dict)
    enums: list[Enum] = field(default_factory=list)
    tables: list[Tbl] = field(default_factory=list)
    views: list[ViewDef] = field(default_factory=list)
    triggers: list[Trigger] = field(default_factory=list)
    funcs: list[Func] = field(default_factory=list)  # in creation order
    comps: list[Comp] = field(default_factory=list)
    domains: list[Domain] = field(default_factory=list)
    used: set[str] = field(default_factory=set)  # folded object names in use

    @property
    def pg(self) -> bool:
        return self.dialect == "postgres"

    def table(self, key: tuple[str, str]) -> Tbl | None:
        return next((t for t in self.tables if t.key == key), None)

    def enum(self, key: tuple[str, str] | None) -> Enum | None:
        return next((e for e in self.enums if (e.schema, e.name) == key), None)

    def func(self, key: tuple[str, str] | None) -> Func | None:
        return next((f for f in self.funcs if f.key == key), None)

    def comp(self, key: tuple[str, str] | None) -> Comp | None:
        return next((c for c in self.comps if (c.schema, c.name) == key), None)

    def domain(self, key: tuple[str, str] | None) -> Domain | None:
        return next((d for d in self.domains if (d.schema, d.name) == key), None)

    def leaves(self, t: Tbl) -> list[Tbl]:
        return [x for x in self.tables if x.part_of == t.key]

    def source_cols(self, key: tuple[str, str]) -> list[str] | None:
        """Columns of the table or view ``key`` (None if there is none)."""
        t = self.table(key)
        if t is not None:
            return [c.name for c in t.cols]
        v = next((v for v in self.views if (v.schema, v.name) == key), None)
        return list(v.cols) if v is not None else None

    def all_schemas(self) -> list[str]:
        return ["public", *self.schemas] if self.pg else ["main"]


# ------------------------------------------------------------------------------ types
# Value kinds: what a column's rows hold. A type accepts a set of kinds (None: any kind
# whose text form fits). Type changes keep data only through kinds both types accept.
ALL_KINDS = ("int", "text", "bool", "date", "ts", "json", "uuid", "arr", "enum")
MAXLEN = {"int": 3, "text": 3, "bool": 5, "date": 10, "ts": 22, "json": 8, "uuid": 36,
          "arr": 7, "enum": 6}

PG_KINDS: dict[str, str] = {
    "integer": "int", "bigint": "int", "smallint": "int", "numeric(10,2)": "int",
    "numeric(12,4)": "int", "text": "text", "varchar(8)": "text", "varchar(40)": "text",
    "boolean": "bool", "timestamptz": "ts", "date": "date", "jsonb": "json", "uuid": "uuid",
    "text[]": "arr", "enum": "enum", "domain": "int",
}
PG_INT = ("integer", "bigint", "smallint")
PG_COLLATABLE = ("text", "varchar(8)", "varchar(40)", "text[]")
PG_COLLATIONS = ('"C"', '"POSIX"')

SQLITE_KINDS: dict[str, str] = {
    "INTEGER": "int", "TEXT": "text", "REAL": "real", "BLOB": "blob", "NUMERIC": "int",
    "VARCHAR(20)": "text", "DECIMAL(10,2)": "int", "BOOLEAN": "int", "DATETIME": "text",
    "my custom type": "text", "": "blob",
}
SQLITE_COLLATIONS = ("NOCASE", "RTRIM", "BINARY")
STRICT_TYPES = ("INTEGER", "TEXT", "REAL", "BLOB")  # of SQLITE_KINDS, those STRICT allows


def sqlite_options(t: Tbl) -> tuple[bool, bool, bool]:
    """(AUTOINCREMENT, WITHOUT ROWID, STRICT) as rendered: each only where SQLite takes
    it and the generated rows fit it (after mutations, the wish may no longer hold)."""
    without_rowid = t.without_rowid and t.pk is not None
    pk = t.col(t.pk.cols[0]) if t.pk is not None and len(t.pk.cols) == 1 else None
    autoincrement = (t.autoincrement and not without_rowid and pk is not None
                     and pk.type == "INTEGER")
    return autoincrement, without_rowid, t.strict and all(_strict_fits(t, c) for c in t.cols)


def _strict_fits(t: Tbl, c: Col) -> bool:
    if c.type not in STRICT_TYPES:
        return False
    if c.type == "BLOB" and c.default is not None and not c.default.startswith("X'"):
        return False  # a text default refused in a BLOB column of a STRICT table
    if c.generated is not None:
        # computed values must fit too: integer arithmetic over an INTEGER, text over TEXT
        base = t.col(c.base) if c.base is not None else None
        want = "INTEGER" if "+" in c.generated or "*" in c.generated else "TEXT"
        return base is not None and base.type == want == c.type
    return True


def accepts(dialect: str, type_: str) -> set[str] | None:
    """Kinds a PostgreSQL type can hold (and be cast from/to as text); None: any."""
    if dialect == "sqlite":
        return None
    if type_ == "text":
        return set(ALL_KINDS)
    if type_.startswith("varchar("):
        n = int(type_[8:-1])
        return {k for k in ALL_KINDS if MAXLEN[k] <= n}
    return {PG_KINDS[type_]}


def natural_kind(dialect: str, type_: str) -> str:
    return (PG_KINDS if dialect == "postgres" else SQLITE_KINDS)[type_]


_KIND_PREFERENCE = ("int", "text", "bool", "date", "ts", "json", "uuid", "arr", "enum")


def common_kind(db_from: Db, a: Col, db_to: Db | None, b: Col | None) -> str | None:
    """The value kind for rows of ``a`` that both ``a``'s and ``b``'s types hold."""
    nat = natural_kind(db_from.dialect, a.type)
    if b is None or db_to is None or (a.type == b.type and a.enum == b.enum):
        return nat
    if db_from.dialect == "sqlite":
        return nat
    ka, kb = accepts("postgres", a.type), accepts("postgres", b.type)
    inter = (ka or set(ALL_KINDS)) & (kb or set(ALL_KINDS))
    if "enum" in inter and a.type == b.type == "enum" and a.enum != b.enum:
        inter.discard("enum")
    if "enum" in inter and a.type != "enum" and b.type != "enum":
        inter.discard("enum")
    for k in (nat, natural_kind("postgres", b.type), *_KIND_PREFERENCE):
        if k in inter:
            return k
    return None


# ------------------------------------------------------------------- expressions
def default_choices(db: Db, c: Col) -> list[str]:
    """Defaults that satisfy every check the generator writes (and fit the type)."""
    if db.pg:
        kind = natural_kind("postgres", c.type)
        if c.type == "enum":
            e = db.enum(c.enum)
            return [lit(e.labels[0])] if e and e.labels else []
        return {
            "int": (["0", "7", "42", "(1 + 2)",
                     *(_func_call(db, f, "7") for f in scalar_funcs(db))]
                    if c.type in PG_INT else ["0", "7", "42", "(1 + 2)"]
                    if c.type == "domain" else ["0", "1.5"]),
            "text": ["'d'", "'it''s'", "'x;y'"],
            "bool": ["true", "false",
                     *(_func_call(db, f, "7") for f in scalar_funcs(db, ("boolean",)))],
            "date": ["'2024-01-01'", "CURRENT_DATE"],
            "ts": ["now()", "'2024-01-01 00:00:00+00'"],
            "json": ["'{}'", "'{\"a\": 1}'"],
            "uuid": ["gen_random_uuid()", "'00000000-0000-4000-8000-000000000001'"],
            "arr": ["'{}'", "ARRAY['a']"],
        }[kind]
    kind = natural_kind("sqlite", c.type)
    return {
        "int": ["0", "7", "(1 + 2)", "NULL"],
        "real": ["1.5", "0"],
        "text": ["'d'", "'it''s'", "CURRENT_TIMESTAMP", "(lower('AB'))"],
        "blob": ["X'00'", "'b'"],
    }[kind]


def scalar_funcs(db: Db, ret: tuple[str, ...] = ("integer", "bigint")) -> list[Func]:
    """The (x integer) functions returning ``ret``: over a non-negative x they return a
    non-negative number (or true), so CHECKs and defaults built on them hold for every
    generated value."""
    return [f for f in db.funcs if f.arg is None and f.ret in ret] if db.pg else []


# A call of a function by its quoted, qualified name, as _func_call writes it (our own
# text: fresh_name never gives two objects one name).
_CALL = re.compile(r'("(?:[^"]|"")*"\."(?:[^"]|"")*")\(')


def calls_gone(db: Db, text: str | None) -> bool:
    """Whether ``text`` calls a function that ``db`` no longer has (or not as a scalar
    function: its result is used as a number or a boolean)."""
    if not text or not db.pg:
        return False
    have = {_qn(db, *f.key) for f in scalar_funcs(db, ("integer", "bigint", "boolean"))}
    return any(m.group(1) not in have for m in _CALL.finditer(text))


def _func_call(db: Db, f: Func, arg: str) -> str:
    return f"{_qn(db, *f.key)}({arg})"


def check_choices(db: Db, c: Col) -> list[str]:
    """Checks every generated value (and NULL, and every default) satisfies."""
    n = q(c.name)
    if not db.pg:
        return [f"{n} >= 0", f"length({n}) > 0", f"{n} IS NOT 'forbidden'"]
    kind = natural_kind("postgres", c.type)
    if c.type in (*PG_INT, "domain"):
        # a CHECK calling a function: the function cannot change its result type, nor
        # go, while the constraint stands
        calls = [f"{_func_call(db, f, f'{n}::integer')} >= 0" for f in scalar_funcs(db)]
        calls += [_func_call(db, f, f"{n}::integer")
                  for f in scalar_funcs(db, ("boolean",))]
        return [f"{n} >= 0", f"{n} < 100000", *calls]
    return {
        "int": [f"{n} >= 0", f"{n} < 100000"],
        # (NOT IN over varchar: the server prints it as a cast ARRAY[...] it would read
        # back differently; issue 16 item 3)
        "text": [f"length({n}) > 0", f"{n} <> 'forbidden;'",
                 f"{n} NOT IN ('forbidden;', 'nope')"],
        "bool": [f"{n} IN (true, false)"],
        "date": [f"{n} > '2000-01-01'"],
        "ts": [f"{n} > '2000-01-01'"],
        "json": [f"jsonb_typeof({n}) = 'object'"],
        "uuid": [f"{n} <> '00000000-0000-0000-0000-000000000000'"],
        "arr": [f"cardinality({n}) < 10"],
        "enum": [f"{n}::text <> ''"],
    }[kind]


def index_expr_choices(db: Db, c: Col) -> list[tuple[str, bool]]:
    """(expression, usable in a UNIQUE index) over one column."""
    n = q(c.name)
    if not db.pg:
        return [(f"lower({n})", True), (f"{n} + 1", False), (f"length({n})", False)]
    kind = natural_kind("postgres", c.type)
    if kind == "text" and c.type != "text[]":
        return [(f"lower({n})", True), (f"({n} || 'x')", True)]
    if c.type in PG_INT:
        # (an index over a function's result: IMMUTABLE functions only, which they are)
        return [(f"({n} + 1)", True), (f"abs({n})", True),
                *((_func_call(db, f, f"{n}::integer"), False) for f in scalar_funcs(db))]
    if kind == "json":
        return [(f"({n} ->> 'k')", False)]
    return [(f"({n} IS NULL)", False)]


def predicate_choices(db: Db, c: Col) -> list[str]:
    n = q(c.name)
    if db.pg and c.type in PG_INT:
        return [f"{n} IS NOT NULL", f"{n} > 0"]
    if db.pg and natural_kind("postgres", c.type) == "text" and c.type != "text[]":
        return [f"{n} IS NOT NULL", f"length({n}) > 1", f"{n} IN ('a', 'b')"]
    return [f"{n} IS NOT NULL"]


# ------------------------------------------------------------------- generation
Draw = Any


def fresh_name(draw: Draw, db: Db, pool: list[str] = NAME_POOL) -> str:
    base = draw(st.sampled_from(pool))
    name, k = base, 1
    while fold(db.dialect, name) in db.used:
        k += 1
        name = f"{base}{k}"
    db.used.add(fold(db.dialect, name))
    return name


def fresh_col_name(draw: Draw, db: Db, t: Tbl) -> str:
    base = draw(st.sampled_from(NAME_POOL))
    taken = {fold(db.dialect, c.name) for c in t.cols}
    name, k = base, 1
    while fold(db.dialect, name) in taken:
        k += 1
        name = f"{base}{k}"
    return name


def maybe_name(draw: Draw, db: Db) -> str | None:
    return fresh_name(draw, db) if draw(st.booleans()) else None


def maybe_comment(draw: Draw, db: Db) -> str | None:
    if not db.pg or not draw(st.integers(0, 3)) == 0:
        return None
    return draw(st.sampled_from(COMMENT_POOL))


def gen_type(draw: Draw, db: Db, *, strict: bool = False,
             ) -> tuple[str, tuple[str, str] | None]:
    if db.pg:
        choices = [t for t in PG_KINDS if t not in ("enum", "domain")]
        if db.enums:
            choices.append("enum")
        if db.domains:
            choices.append("domain")
        t = draw(st.sampled_from(choices))
        enum = None
        if t == "enum":
            e = draw(st.sampled_from(db.enums))
            enum = (e.schema, e.name)
        elif t == "domain":
            d = draw(st.sampled_from(db.domains))
            enum = (d.schema, d.name)
        return t, enum
    return draw(st.sampled_from(list(STRICT_TYPES if strict else SQLITE_KINDS))), None


def gen_col(draw: Draw, db: Db, t: Tbl, *, for_new_table: bool) -> Col:
    name = fresh_col_name(draw, db, t)
    type_, enum = gen_type(draw, db, strict=t.strict)
    c = Col(name=name, type=type_, enum=enum, nullable=draw(st.booleans()))
    roll = draw(st.integers(0, 9))
    if db.pg and type_ in PG_INT and roll == 0 and t.partition_by is None:
        c.identity = draw(st.sampled_from(["ALWAYS", "BY DEFAULT"]))
        c.nullable = False
    elif db.pg and type_ in ("integer", "bigint") and roll == 1:
        c.serial = True
        c.nullable = False
    elif roll < 5:
        choices = default_choices(db, c)
        if choices:
            c.default = draw(st.sampled_from(choices))
    if draw(st.integers(0, 4)) == 0:
        if db.pg and type_ in PG_COLLATABLE:
            c.collation = draw(st.sampled_from(PG_COLLATIONS))
        elif not db.pg and natural_kind("sqlite", type_) == "text":
            c.collation = draw(st.sampled_from(SQLITE_COLLATIONS))
    c.comment = maybe_comment(draw, db)
    return c


def gen_generated(draw: Draw, db: Db, t: Tbl) -> Col | None:
    """A STORED generated column computed from another column of ``t``."""
    def kind(c: Col) -> str | None:
        if db.pg:
            if c.type in PG_INT:
                return "int"
            return "text" if c.type in ("text", "varchar(8)", "varchar(40)") else None
        return {"int": "int", "text": "text"}.get(natural_kind("sqlite", c.type))

    bases = [c for c in t.cols if c.generated is None and kind(c)]
    if not bases:
        return None
    b = draw(st.sampled_from(bases))
    k = kind(b)
    if k == "int":
        expr = draw(st.sampled_from([f"{q(b.name)} + 1", f"{q(b.name)} * 2"]))
        type_ = "bigint" if db.pg else "INTEGER"
    else:
        expr = draw(st.sampled_from([f"lower({q(b.name)})", f"{q(b.name)} || 'x'"]))
        type_ = "text" if db.pg else "TEXT"
    return Col(name=fresh_col_name(draw, db, t), type=type_, generated=expr, base=b.name,
               comment=maybe_comment(draw, db), virtual=not db.pg and draw(st.booleans()))


def gen_check(draw: Draw, db: Db, t: Tbl) -> Check | None:
    if not t.cols:
        return None
    cols = draw(st.lists(st.sampled_from(t.cols), min_size=1, max_size=2,
                         unique_by=lambda c: c.name))
    expr = " AND ".join(f"({draw(st.sampled_from(check_choices(db, c)))})" for c in cols)
    return Check(name=maybe_name(draw, db), cols=[c.name for c in cols], expr=expr)


def keyable(db: Db, c: Col) -> bool:
    return c.generated is None


def gen_key(draw: Draw, db: Db, t: Tbl) -> Key | None:
    cands = [c for c in t.cols if keyable(db, c)]
    if not cands:
        return None
    cols = draw(st.lists(st.sampled_from(cands), min_size=1, max_size=2,
                         unique_by=lambda c: c.name))
    names = [c.name for c in cols]
    if t.part_key is not None and t.part_key not in names:
        names.append(t.part_key)  # a partitioned table's keys include its partition key
    if any(sorted(k.cols) == sorted(names) for k in t.keys()):
        return None
    k = Key(name=maybe_name(draw, db), cols=names)
    if db.pg and draw(st.integers(0, 4)) == 0:
        k.deferrable = draw(st.booleans())
        k.nulls_not_distinct = not k.deferrable or draw(st.booleans())
    return k


def gen_index(draw: Draw, db: Db, t: Tbl) -> Idx | None:
    if not t.cols:
        return None
    nkeys = draw(st.integers(1, min(3, len(t.cols))))
    keys: list[IdxKey] = []
    unique_ok = True
    used: set[str] = set()
    for _ in range(nkeys):
        c = draw(st.sampled_from(t.cols))
        if c.name in used:
            continue
        used.add(c.name)
        unique_ok &= c.generated is None
        if draw(st.integers(0, 3)) == 0:
            expr, uq = draw(st.sampled_from(index_expr_choices(db, c)))
            unique_ok &= uq
            keys.append(IdxKey(expr=expr, expr_cols=[c.name], desc=draw(st.booleans())))
        else:
            k = IdxKey(col=c.name, desc=draw(st.booleans()))
            roll = draw(st.integers(0, 5))
            if db.pg and roll == 0:
                k.nulls = draw(st.sampled_from(["FIRST", "LAST"]))
            elif db.pg and roll == 1 and c.type in ("text", "varchar(8)", "varchar(40)"):
                k.opclass = "text_pattern_ops" if c.type == "text" else "varchar_pattern_ops"
            elif roll == 2 and (c.type in ("text", "varchar(8)", "varchar(40)") if db.pg
                                else natural_kind("sqlite", c.type) == "text"):
                k.collation = draw(st.sampled_from(PG_COLLATIONS if db.pg
                                                   else SQLITE_COLLATIONS))
            keys.append(k)
    if (db.pg and len(keys) == 1 and keys[0].col is not None and t.partition_by is None
            and draw(st.integers(0, 5)) == 0):
        keys[0] = IdxKey(col=keys[0].col)
        return Idx(name=fresh_name(draw, db), keys=keys, method="hash",
                   comment=maybe_comment(draw, db))
    ix = Idx(name=fresh_name(draw, db), keys=keys)
    if db.pg and draw(st.integers(0, 4)) == 0:
        rest = [c.name for c in t.cols if c.name not in used]
        if rest:
            ix.include = [draw(st.sampled_from(rest))]
    ix.unique = unique_ok and t.partition_by is None and draw(st.integers(0, 2)) == 0
    if draw(st.integers(0, 3)) == 0:
        c = draw(st.sampled_from(t.cols))
        ix.where = draw(st.sampled_from(predicate_choices(db, c)))
        ix.where_cols = [c.name]
    ix.comment = maybe_comment(draw, db)
    return ix


def fk_source_type(c: Col) -> tuple[str, tuple[str, str] | None]:
    return c.type, c.enum


def gen_fk(draw: Draw, db: Db, t: Tbl) -> FK | None:
    """A foreign key from ``t`` to a key of a table in ``db`` (``t`` itself included)."""
    parents = [p for p in db.tables if any(not k.deferrable for k in p.keys())]
    if not parents:
        return None
    p = draw(st.sampled_from(parents))
    key = draw(st.sampled_from([k for k in p.keys() if not k.deferrable]))
    used = {c for fk in t.fks for c in fk.cols}
    cols: list[str] = []
    for rc in key.cols:
        ref = p.col(rc)
        assert ref is not None
        type_, enum = fk_source_type(ref)
        reuse = [c for c in t.cols if c.type == type_ and c.enum == enum and c.name not in used
                 and c.name not in cols and c.identity is None and not c.serial
                 and c.generated is None and not (p is t and c.name in key.cols)]
        if reuse and draw(st.booleans()):
            cols.append(draw(st.sampled_from(reuse)).name)
        else:
            nc = Col(name=fresh_col_name(draw, db, t), type=type_, enum=enum,
                     nullable=draw(st.booleans()))
            t.cols.append(nc)
            cols.append(nc.name)
    actions = ["NO ACTION", "RESTRICT", "CASCADE", "SET NULL", "SET DEFAULT"]
    return FK(name=maybe_name(draw, db), cols=cols, ref=p.key, ref_cols=list(key.cols),
              on_delete=draw(st.sampled_from(actions)), on_update=draw(st.sampled_from(actions)),
              deferrable=draw(st.integers(0, 3)) == 0,
              match_full=db.pg and len(cols) > 1 and draw(st.booleans()))


def gen_table(draw: Draw, db: Db, schema: str | None = None) -> Tbl:
    if schema is None:
        schema = draw(st.sampled_from(db.all_schemas()))
    t = Tbl(schema=schema, name=fresh_name(draw, db), cols=[])
    if not db.pg:
        t.strict = draw(st.integers(0, 4)) == 0  # its columns then take STRICT's types
        t.without_rowid = draw(st.integers(0, 4)) == 0
    for _ in range(draw(st.integers(1, 5))):
        t.cols.append(gen_col(draw, db, t, for_new_table=True))
    if draw(st.integers(0, 4)) == 0:
        g = gen_generated(draw, db, t)
        if g is not None:
            t.cols.append(g)
    if not db.pg and not t.without_rowid and draw(st.integers(0, 4)) == 0:
        # AUTOINCREMENT: on a one-column INTEGER PRIMARY KEY of its own
        ident = Col(name=fresh_col_name(draw, db, t), type="INTEGER")
        t.cols.insert(0, ident)
        t.pk = Key(name=maybe_name(draw, db), cols=[ident.name])
        t.autoincrement = True
    elif draw(st.integers(0, 3)) > 0:
        t.pk = gen_key(draw, db, t)
        if t.pk is not None:
            t.pk.deferrable = t.pk.nulls_not_distinct = False
    for _ in range(draw(st.integers(0, 2))):
        k = gen_key(draw, db, t)
        if k is not None:
            t.uniques.append(k)
    for _ in range(draw(st.integers(0, 2))):
        ck = gen_check(draw, db, t)
        if ck is not None:
            t.checks.append(ck)
    for _ in range(draw(st.integers(0, 2))):
        ix = gen_index(draw, db, t)
        if ix is not None:
            t.indexes.append(ix)
    t.comment = maybe_comment(draw, db)
    return t


def gen_view(draw: Draw, db: Db) -> ViewDef | None:
    """A view over a table or (sometimes) over another view."""
    sources = [t.key for t in db.tables if t.cols] + [(v.schema, v.name) for v in db.views]
    if not sources:
        return None
    src = draw(st.sampled_from(sources))
    names = db.source_cols(src) or []
    cols = draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True))
    schema = draw(st.sampled_from(db.all_schemas()))
    v = ViewDef(schema=schema, name=fresh_name(draw, db), table=src, cols=cols)
    v.materialized = db.pg and draw(st.integers(0, 3)) == 0
    if draw(st.booleans()):
        v.where_col = draw(st.sampled_from(names))
    v.comment = maybe_comment(draw, db)
    return v


def gen_trigger(draw: Draw, db: Db) -> Trigger | None:
    tables = [t for t in db.tables if t.cols and not t.leaf]
    if not tables:
        return None
    if db.pg:
        # (on a partitioned table the server clones it onto every partition)
        t = draw(st.sampled_from(tables))
        cols = [c for c in t.cols if c.generated is None]
        if not cols:
            return None
        return Trigger(name=fresh_name(draw, db), table=t.key, target=t.key,
                       col=draw(st.sampled_from(cols)).name, when=draw(st.booleans()),
                       fn=(draw(st.sampled_from(db.all_schemas())), fresh_name(draw, db)))
    t, u = draw(st.sampled_from(tables)), draw(st.sampled_from(tables))
    col = draw(st.sampled_from([c for c in u.cols]))
    if col.generated is not None:
        return None
    return Trigger(name=fresh_name(draw, db), table=t.key, target=u.key, col=col.name)


def prune_triggers(db: Db) -> None:
    db.triggers = [tr for tr in db.triggers if db.table(tr.table) is not None
                   and (u := db.table(tr.target)) is not None and (c := u.col(tr.col))
                   and c.generated is None]


def gen_enum(draw: Draw, db: Db) -> Enum:
    labels = draw(st.lists(st.sampled_from(LABEL_POOL), min_size=1, max_size=4, unique=True))
    return Enum(schema=draw(st.sampled_from(db.all_schemas())), name=fresh_name(draw, db),
                labels=labels, comment=maybe_comment(draw, db))


@st.composite
def schemas(draw: Draw, dialect: str) -> Db:
    db = Db(dialect=dialect)
    if db.pg:
        if draw(st.booleans()):
            s = draw(st.sampled_from(SCHEMA_POOL))
            db.schemas.append(s)
            db.used.add(s)
            if draw(st.integers(0, 3)) == 0:
                db.schema_comments[s] = draw(st.sampled_from(COMMENT_POOL))
        if draw(st.integers(0, 2)) == 0:
            db.enums.append(gen_enum(draw, db))
        # Function / type / domain dependency chains, made before the tables (a domain
        # may type a column; functions over tables' rows come after them).
        if draw(st.integers(0, 3)) == 0:
            db.comps.append(gen_comp(draw, db))
        for _ in range(draw(st.sampled_from([0, 0, 1, 2, 3]))):
            f = gen_func(draw, db, ret=draw(st.sampled_from(
                ["integer", "bigint", "boolean", "comp", "comp_arg"])))
            if f is not None:
                db.funcs.append(f)
        if db.funcs and draw(st.integers(0, 2)) == 0:
            db.domains.append(gen_domain(draw, db))
    for _ in range(draw(st.integers(1, 5))):
        db.tables.append(gen_table(draw, db))
    if db.pg and draw(st.integers(0, 3)) == 0:
        db.tables += gen_partitioned(draw, db)
    for t in db.tables:
        if t.leaf:
            continue
        for _ in range(draw(st.sampled_from([0, 0, 0, 1, 1, 2]))):
            fk = gen_fk(draw, db, t)
            if fk is not None:
                t.fks.append(fk)
    if db.pg and draw(st.integers(0, 2)) == 0:
        f = gen_func(draw, db, ret=draw(st.sampled_from(["row", "setof"])))
        if f is not None:
            db.funcs.append(f)
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2]))):
        v = gen_view(draw, db)
        if v is not None:
            gen_view_call(draw, db, v)
            db.views.append(v)
    for _ in range(draw(st.sampled_from([0, 0, 1]))):
        tr = gen_trigger(draw, db)
        if tr is not None:
            db.triggers.append(tr)
    return db


# ------------------------------------------------ functions, types, domains (PostgreSQL)
FUNC_BODIES = ("return", "atomic", "sql", "plpgsql")


def gen_comp(draw: Draw, db: Db) -> Comp:
    n = draw(st.integers(1, 3))
    attrs: list[tuple[str, str]] = []
    for _ in range(n):
        base = draw(st.sampled_from(NAME_POOL))
        name, k = base, 1
        while name in [a for a, _ in attrs]:
            k += 1
            name = f"{base}{k}"
        attrs.append((name, draw(st.sampled_from(["integer", "text"]))))
    return Comp(schema=draw(st.sampled_from(db.all_schemas())), name=fresh_name(draw, db),
                attrs=attrs)


def gen_func(draw: Draw, db: Db, *, ret: str | None = None) -> Func | None:
    """A function: (x integer) calling earlier scalar functions, or over a table's row or
    a composite type, or returning a composite or the rows of a table."""
    shape = ret or draw(st.sampled_from(["integer", "integer", "bigint", "boolean", "comp",
                                         "row", "setof", "comp_arg"]))
    f = Func(schema=draw(st.sampled_from(db.all_schemas())), name="",
             body=draw(st.sampled_from(FUNC_BODIES)), const=draw(st.integers(0, 3)))
    tables = [t for t in db.tables if t.cols and not t.leaf]
    if shape in ("integer", "bigint", "boolean"):
        f.ret = shape
        callees = [g.key for g in db.funcs if g.scalar]
        if callees:
            f.calls = draw(st.lists(st.sampled_from(callees), max_size=2, unique=True))
    elif shape == "comp":
        if not db.comps:
            return None
        c = draw(st.sampled_from(db.comps))
        f.ret, f.comp = "comp", (c.schema, c.name)
    elif shape == "comp_arg":
        if not db.comps:
            return None
        c = draw(st.sampled_from(db.comps))
        f.arg = ("comp", (c.schema, c.name))
    elif shape == "row":
        if not tables:
            return None
        f.arg = ("row", draw(st.sampled_from(tables)).key)
    else:  # setof: the rows of a table (a set: not RETURN expr)
        if not tables:
            return None
        f.arg = ("row", draw(st.sampled_from(tables)).key)
        f.ret = "setof"
        f.body = draw(st.sampled_from(["atomic", "sql"]))
    f.name = fresh_name(draw, db)
    return f


def gen_domain(draw: Draw, db: Db) -> Domain:
    d = Domain(schema=draw(st.sampled_from(db.all_schemas())), name=fresh_name(draw, db))
    if db.domains and draw(st.integers(0, 2)) == 0:
        base = draw(st.sampled_from(db.domains))  # a domain over a domain
        d.base = (base.schema, base.name)
    checks = [f.key for f in db.funcs if f.arg is None and f.ret == "boolean"]
    if checks and draw(st.integers(0, 3)) > 0:
        d.check = draw(st.sampled_from(checks))
        d.check_name = maybe_name(draw, db)
    return d


def func_deps_ok(db: Db, f: Func) -> bool:
    """Whether everything ``f`` needs is there (callees, its table, its type)."""
    if any(db.func(k) is None or not db.func(k).scalar for k in f.calls):  # type: ignore[union-attr]
        return False
    if f.arg is not None:
        ok = db.table(f.arg[1]) is not None if f.arg[0] == "row" else db.comp(f.arg[1])
        if not ok:
            return False
    return f.comp is None or db.comp(f.comp) is not None


def prune_objects(db: Db) -> None:
    """Functions lose what they need (and go), then domains and views lose the functions."""
    changed = True
    while changed:
        keep = [f for f in db.funcs if func_deps_ok(Db(db.dialect, tables=db.tables,
                                                          comps=db.comps,
                                                          funcs=db.funcs), f)]
        changed = len(keep) != len(db.funcs)
        db.funcs = keep
    for d in db.domains:
        f = db.func(d.check)
        if d.check is not None and (f is None or f.arg is not None or f.ret != "boolean"):
            d.check = d.check_name = None
        if d.base is not None and db.domain(d.base) is None:
            d.base = None  # (its base went with its columns: over integer now)
    for v in db.views:
        if v.func is not None and not view_call_ok(db, v):
            v.func = v.func_col = None
    # CHECKs, index expressions and defaults calling a function that went go with it
    for t in db.tables:
        t.checks = [ck for ck in t.checks if not calls_gone(db, ck.expr)]
        t.indexes = [ix for ix in t.indexes
                     if not any(calls_gone(db, k.expr) for k in ix.keys)]
        for c in t.cols:
            if calls_gone(db, c.default):
                c.default = None


def view_call_ok(db: Db, v: ViewDef) -> bool:
    f = db.func(v.func)
    if f is None or f.ret in ("comp", "setof"):
        return False
    if f.arg is not None:
        return f.arg[0] == "row" and f.arg[1] == v.table and db.table(v.table) is not None
    if v.func_col is None:
        return True
    t = db.table(v.table)
    c = t.col(v.func_col) if t is not None else None
    return c is not None and natural_kind("postgres", c.type) == "int" and c.type != "enum" \
        and c.generated is None


def gen_view_call(draw: Draw, db: Db, v: ViewDef) -> None:
    """Maybe make ``v`` call a function (over one of its source's integer columns, its
    row, or a constant)."""
    if not db.pg or not db.funcs or draw(st.booleans()):
        return
    v.func = draw(st.sampled_from([f.key for f in db.funcs]))
    t = db.table(v.table)
    ints = [c.name for c in t.cols if natural_kind("postgres", c.type) == "int"
            and c.type != "enum" and c.generated is None] if t is not None else []
    v.func_col = draw(st.sampled_from([None, *ints])) if ints else None
    if not view_call_ok(db, v):
        v.func = v.func_col = None


def _func_expr(db: Db, f: Func) -> str:
    """The body's expression (over x for scalar functions)."""
    if f.ret == "comp":
        comp = db.comp(f.comp)
        assert comp is not None
        src = "x" if f.arg is None else str(f.const)
        vals = [src if t == "integer" else lit(f"v{f.const}") for _, t in comp.attrs]
        return f"ROW({', '.join(vals)})::{_qn(db, comp.schema, comp.name)}"
    if f.arg is not None:
        return f"{f.const}" if f.ret != "boolean" else "true"
    terms = ["x", str(f.const)] + [f"{_qn(db, *k)}(x)" for k in f.calls]
    s = " + ".join(terms)
    if f.ret == "boolean":
        return f"({s}) >= 0"
    return f"({s})::{f.ret}"


def func_sql(db: Db, f: Func) -> str:
    if f.arg is None:
        arg = "x integer"
    elif f.arg[0] == "row":
        arg = f"r {_qn(db, *f.arg[1])}"
    else:
        arg = f"p {_qn(db, *f.arg[1])}"
    name = _qn(db, f.schema, f.name)
    if f.ret == "setof":
        assert f.arg is not None
        ret = f"SETOF {_qn(db, *f.arg[1])}"
        query = f"SELECT * FROM {_qn(db, *f.arg[1])}"
        if f.body == "atomic":
            return (f"CREATE FUNCTION {name}({arg}) RETURNS {ret} LANGUAGE sql STABLE "
                    f"BEGIN ATOMIC {query}; END")
        return (f"CREATE FUNCTION {name}({arg}) RETURNS {ret} LANGUAGE sql STABLE "
                f"AS $fn$ {query} $fn$")
    ret = _qn(db, *f.comp) if f.ret == "comp" and f.comp else f.ret
    expr = _func_expr(db, f)
    head = f"CREATE FUNCTION {name}({arg}) RETURNS {ret}"
    if f.body == "return":
        return f"{head} LANGUAGE sql IMMUTABLE RETURN {expr}"
    if f.body == "atomic":
        return f"{head} LANGUAGE sql IMMUTABLE BEGIN ATOMIC SELECT {expr}; END"
    if f.body == "sql":
        return f"{head} LANGUAGE sql IMMUTABLE AS $fn$ SELECT {expr} $fn$"
    return f"{head} LANGUAGE plpgsql IMMUTABLE AS $fn$ BEGIN RETURN {expr}; END $fn$"


def _early_func(f: Func) -> bool:
    """Created before the tables (not over a table's row)."""
    return f.arg is None or f.arg[0] == "comp"


# ------------------------------------------------------------------- partitions
PART_POOL = ["x", "y", "z", "w", "it's", "a b"]  # LIST values no generated row holds


def gen_partitioned(draw: Draw, db: Db) -> list[Tbl]:
    """A partitioned table and its partitions (RANGE over an integer column covering
    every value, or LIST over a text column with a DEFAULT partition holding the rows);
    maybe one partition detached (a plain table a mutation may attach)."""
    schema = draw(st.sampled_from(db.all_schemas()))
    t = Tbl(schema=schema, name=fresh_name(draw, db), cols=[])
    how = draw(st.sampled_from(["RANGE", "LIST"]))
    key = Col(name=fresh_col_name(draw, db, t), type="integer" if how == "RANGE" else "text",
              nullable=False)
    t.cols.append(key)
    t.partition_by, t.part_key = how, key.name
    for _ in range(draw(st.integers(0, 3))):
        t.cols.append(gen_col(draw, db, t, for_new_table=True))
    if draw(st.booleans()):
        t.pk = gen_key(draw, db, t)
        if t.pk is not None:
            t.pk.deferrable = t.pk.nulls_not_distinct = False
    if draw(st.integers(0, 2)) == 0:
        k = gen_key(draw, db, t)
        if k is not None:
            t.uniques.append(k)
    if draw(st.integers(0, 2)) == 0:
        ck = gen_check(draw, db, t)
        if ck is not None:
            t.checks.append(ck)
    for _ in range(draw(st.integers(0, 2))):
        ix = gen_index(draw, db, t)
        if ix is not None:
            t.indexes.append(ix)
    if how == "RANGE":
        splits = sorted(draw(st.lists(st.sampled_from([10, 20, 30, 45]), min_size=1,
                                      max_size=3, unique=True)))
        edges = ["MINVALUE", *map(str, splits), "MAXVALUE"]
        bounds = [f"FROM ({a}) TO ({b})" for a, b in zip(edges, edges[1:], strict=False)]
        bounds = [f"FOR VALUES {b}" for b in bounds]
    else:
        vals = draw(st.lists(st.sampled_from(PART_POOL), min_size=1, max_size=3, unique=True))
        bounds = [f"FOR VALUES IN ({lit(v)})" for v in vals] + ["DEFAULT"]
    out = [t]
    for b in bounds:
        leaf = Tbl(schema=draw(st.sampled_from(db.all_schemas())), name=fresh_name(draw, db),
                   cols=t.cols, part_of=t.key, bound=b)
        if draw(st.integers(0, 3)) == 0:
            ix = gen_leaf_index(draw, db, leaf, t)
            if ix is not None:
                leaf.indexes.append(ix)
        out.append(leaf)
    if draw(st.integers(0, 3)) == 0:
        draw(st.sampled_from(out[1:])).detached = True
    return out


def gen_leaf_index(draw: Draw, db: Db, leaf: Tbl, parent: Tbl | None = None,
                   ) -> Idx | None:
    """A partition's own index: plain columns, not unique (the parent's rows land in it,
    and its column types follow the parent's). ``parent``: when not yet in ``db``."""
    ix = gen_index(draw, db, leaf)
    if ix is None:
        return None
    keys = [IdxKey(col=k.col, desc=k.desc) for k in ix.keys if k.col is not None]
    if not keys:
        return None
    own = Idx(name=ix.name, keys=keys, include=ix.include)
    parent = parent or (db.table(leaf.part_of) if leaf.part_of is not None else None)
    return None if parent is not None and attaches(parent, own) else own


def _index_shape(ix: Idx) -> tuple[Any, ...]:
    # (the server compares neither ASC/DESC nor NULLS FIRST/LAST when it attaches)
    return (ix.unique, ix.where, ix.method, tuple(ix.include),
            tuple((k.col, k.expr, k.opclass, k.collation) for k in ix.keys))


def attaches(parent: Tbl, own: Idx) -> bool:
    """Whether the server would take a partition's own index ``own`` for the clone of an
    index of ``parent`` (CREATE INDEX on a partitioned table attaches an equal index of a
    partition instead of building one). Such pairs are drawn: plans build the parent's
    index ON ONLY and attach each copy by name (create_index.clones_to_attach). Only a
    unique own index is left out (a leaf's own index is never unique, see gen_leaf_index)."""
    return own.unique and any(_index_shape(ix) == _index_shape(own) for ix in parent.indexes)


def sync_partitions(db: Db) -> None:
    """Partitions share their parent's column list (and go with an attached parent)."""
    keep = []
    for t in db.tables:
        if t.part_of is not None:
            p = db.table(t.part_of)
            if p is None:
                if not t.detached:
                    continue  # dropped with its parent
                t.part_of = None  # (a detached one whose parent went: a plain table)
                t.cols = copy.deepcopy(t.cols)
            else:
                t.cols = p.cols
            names = {c.name for c in t.cols}
            t.indexes = [ix for ix in t.indexes if ix.cols() <= names
                         and (p is None or not attaches(p, ix))]
        keep.append(t)
    db.tables = keep


def parent_has_gap(db: Db, t: Tbl) -> bool:
    """A partitioned table some of whose rows may have nowhere to go."""
    leaves = db.leaves(t)
    return not leaves or any(x.detached for x in leaves) or (
        t.partition_by == "RANGE" and len([x for x in leaves if not x.detached]) < 1)


# ---------------------------------------------------------------------- dependents
def fk_involved(db: Db, t: Tbl, col: str) -> bool:
    if any(col in fk.cols for fk in t.fks):
        return True
    return any(fk.ref == t.key and col in fk.ref_cols for o in db.tables for fk in o.fks)


def in_view(db: Db, t: Tbl, col: str) -> bool:
    return any(v.table == t.key and (col in v.cols or col == v.where_col) for v in db.views)


def _key_survives(t: Tbl, cols: list[str]) -> bool:
    return any(sorted(k.cols) == sorted(cols) and not k.deferrable for k in t.keys())


def prune_fks(db: Db) -> None:
    """Drop foreign keys whose parent table, columns or key no longer exist."""
    for t in db.tables:
        keep = []
        for fk in t.fks:
            p = db.table(fk.ref)
            if p is None or not all(t.col(c) for c in fk.cols):
                continue
            if not all(p.col(c) for c in fk.ref_cols) or not _key_survives(p, fk.ref_cols):
                continue
            keep.append(fk)
        t.fks = keep


def prune_views(db: Db) -> None:
    """Views lose the columns (and sources) that are gone; in order, as they depend."""
    keep: list[ViewDef] = []
    for v in db.views:
        db_keep = Db(db.dialect, tables=db.tables, views=keep)
        cols = db_keep.source_cols(v.table)
        if cols is None:
            continue
        v.cols = [c for c in v.cols if c in cols]
        if v.where_col is not None and v.where_col not in cols:
            v.where_col = None
        if v.cols:
            keep.append(v)
    db.views = keep


def drop_column(db: Db, t: Tbl, name: str) -> None:
    for g in [c for c in t.cols if c.base == name]:
        drop_column(db, t, g.name)
    t.cols = [c for c in t.cols if c.name != name]
    if t.pk and name in t.pk.cols:
        t.pk = None
    t.uniques = [k for k in t.uniques if name not in k.cols]
    t.checks = [c for c in t.checks if name not in c.cols]
    t.fks = [fk for fk in t.fks if name not in fk.cols]
    t.indexes = [ix for ix in t.indexes if name not in ix.cols()]
    prune_fks(db)
    prune_views(db)
    prune_triggers(db)


def retype_dependents(db: Db, t: Tbl, c: Col) -> None:
    """After a type change: checks, expression keys and predicates over ``c`` go."""
    t.checks = [ck for ck in t.checks if c.name not in ck.cols]
    t.indexes = [ix for ix in t.indexes
                 if not any((k.expr is not None or k.opclass or k.collation)
                            and c.name in k.cols() for k in ix.keys)
                 and c.name not in ix.where_cols]
    if c.collation and (not db.pg or c.type not in PG_COLLATABLE):
        c.collation = None
    if c.default is not None:
        c.default = None
    for g in [g for g in t.cols if g.base == c.name]:
        int_expr = "+" in str(g.generated) or "*" in str(g.generated)
        if db.pg and not (c.type in PG_INT if int_expr
                          else c.type in ("text", "varchar(8)", "varchar(40)")):
            drop_column(db, t, g.name)


# ---------------------------------------------------------------------- mutations
def _pick_table(draw: Draw, db: Db, *, leaves: bool = False,
                parted: bool = True) -> Tbl | None:
    """A table to mutate: partitions only when ``leaves`` (they follow their parent),
    partitioned tables unless ``parted`` is False."""
    cands = [t for t in db.tables if (leaves or not t.leaf)
             and (parted or t.partition_by is None)]
    return draw(st.sampled_from(cands)) if cands else None


def _pick_col(draw: Draw, t: Tbl | None, ok: Any = lambda c: True) -> Col | None:
    if t is None:
        return None
    cands = [c for c in t.cols if ok(c) and c.name != t.part_key]
    return draw(st.sampled_from(cands)) if cands else None


def m_add_table(draw: Draw, db: Db) -> bool:
    if db.pg and draw(st.integers(0, 4)) == 0:
        db.tables += gen_partitioned(draw, db)
        return True
    t = gen_table(draw, db)
    db.tables.append(t)
    if draw(st.booleans()):
        fk = gen_fk(draw, db, t)
        if fk is not None:
            t.fks.append(fk)
    return True


def m_drop_table(draw: Draw, db: Db) -> bool:
    t = _pick_table(draw, db, leaves=True)
    if t is None or len([x for x in db.tables if not x.leaf]) < 2 - t.leaf:
        return False
    if any(x.detached for x in db.leaves(t)):
        return False  # (its detached partitions would need it to be rendered)
    db.tables.remove(t)
    sync_partitions(db)
    prune_fks(db)
    prune_views(db)
    prune_triggers(db)
    return True


def m_add_column(draw: Draw, db: Db) -> bool:
    t = _pick_table(draw, db)
    if t is None:
        return False
    t.cols.append(gen_col(draw, db, t, for_new_table=False))
    return True


def m_drop_column(draw: Draw, db: Db) -> bool:
    t = _pick_table(draw, db)
    c = _pick_col(draw, t)
    if t is None or c is None or not [x for x in t.cols if c.name not in (x.name, x.base)]:
        return False
    drop_column(db, t, c.name)
    return True


def m_change_type(draw: Draw, db: Db) -> bool:
    t = _pick_table(draw, db)
    c = _pick_col(draw, t, lambda c: c.identity is None and not c.serial
                  and c.generated is None
                  and not fk_involved(db, t, c.name))  # type: ignore[arg-type]
    if t is None or c is None:
        return False
    new_type, enum = gen_type(draw, db)
    if (new_type, enum) == (c.type, c.enum):
        return False
    c.type, c.enum = new_type, enum
    retype_dependents(db, t, c)
    if draw(st.booleans()):
        choices = default_choices(db, c)
        c.default = draw(st.sampled_from(choices)) if choices else None
    return True


def m_generated(draw: Draw, db: Db) -> bool:
    t = _pick_table(draw, db, parted=False)
    if t is None:
        return False
    gens = [c for c in t.cols if c.generated is not None]
    what = draw(st.sampled_from(["add", "change", "plain"]))
    if what == "add" or not gens:
        g = gen_generated(draw, db, t)
        if g is None:
            return False
        t.cols.append(g)
        return True
    g = draw(st.sampled_from(gens))
    if what == "change":
        assert g.generated is not None and g.base is not None
        if "+ 1" in g.generated:
            g.generated = g.generated.replace("+ 1", "+ 2")
        elif "|| 'x'" in g.generated:
            g.generated = g.generated.replace("|| 'x'", "|| 'y'")
        else:
            return False
        return True
    if not db.pg:
        return False
    g.generated = g.base = None  # DROP EXPRESSION: a plain column keeping its values
    return True


def m_sqlite_options(draw: Draw, db: Db) -> bool:
    """SQLite: switch AUTOINCREMENT, WITHOUT ROWID or STRICT, or a generated column
    between VIRTUAL and STORED (each a rebuild, except adding a VIRTUAL column)."""
    t = _pick_table(draw, db)
    if db.pg or t is None:
        return False
    what = draw(st.sampled_from(["autoincrement", "without_rowid", "strict", "virtual"]))
    if what == "virtual":
        gens = [c for c in t.cols if c.generated is not None]
        if not gens:
            return False
        g = draw(st.sampled_from(gens))
        g.virtual = not g.virtual
        return True
    was = sqlite_options(t)
    setattr(t, what, not getattr(t, what))
    return sqlite_options(t) != was


def m_retype_key(draw: Draw, db: Db) -> bool:
    """Change the type of a referenced key column and of every column referencing it."""
    refs = [(p, fk) for t in db.tables for fk in t.fks if (p := db.table(fk.ref))]
    if not refs:
        return False
    p, fk = draw(st.sampled_from(refs))
    i = draw(st.integers(0, len(fk.ref_cols) - 1))
    component = [(p, fk.ref_cols[i])]
    for t in db.tables:
        for f in t.fks:
            if f.ref == p.key and f.ref_cols == fk.ref_cols:
                component.append((t, f.cols[i]))
    seen = {(t.key, c): (t, t.col(c)) for t, c in component}
    cols = list(seen.values())
    for t, c in cols:
        if c is None or c.identity is not None or c.serial or c.generated or (
                c.name == t.part_key):
            return False
        if any(g.base == c.name for g in t.cols):
            return False
        # Any other foreign key over these columns would be left comparing two types.
        for o in db.tables:
            for f in o.fks:
                uses = (o is t and c.name in f.cols) or (f.ref == t.key and c.name in f.ref_cols)
                if uses and not (f.ref == p.key and f.ref_cols == fk.ref_cols):
                    return False
    new_type, enum = gen_type(draw, db)
    if new_type == "enum" or (new_type, enum) == (cols[0][1].type, cols[0][1].enum):
        return False
    for t, c in cols:
        assert c is not None
        c.type, c.enum = new_type, enum
        retype_dependents(db, t, c)
    return True


def m_nullable(draw: Draw, db: Db) -> bool:
    t = _pick_table(draw, db)
    c = _pick_col(draw, t, lambda c: c.identity is None and not c.serial
                  and c.generated is None)
    if c is None:
        return False
    c.nullable = not c.nullable
    return True


def m_default(draw: Draw, db: Db) -> bool:
    t = _pick_table(draw, db)
    c = _pick_col(draw, t, lambda c: c.identity is None and not c.serial
                  and c.generated is None)
    if c is None:
        return False
    choices = [None, *default_choices(db, c)]
    new = draw(st.sampled_from(choices))
    if new == c.default:
        return False
    c.default = new
    return True


def m_collation(draw: Draw, db: Db) -> bool:
    t = _pick_table(draw, db)
    if db.pg:
        c = _pick_col(draw, t, lambda c: c.type in PG_COLLATABLE and c.generated is None)
        options: list[str | None] = [None, *PG_COLLATIONS]
    else:
        c = _pick_col(draw, t, lambda c: natural_kind("sqlite", c.type) == "text"
                      and c.generated is None)
        options = [None, *SQLITE_COLLATIONS]
    if c is None or t is None:
        return False
    new = draw(st.sampled_from(options))
    if new == c.collation or (fk_involved(db, t, c.name) and db.pg):
        return False
    c.collation = new
    return True


def m_add_unique(draw: Draw, db: Db) -> bool:
    t = _pick_table(draw, db)
    k = gen_key(draw, db, t) if t else None
    if t is None or k is None:
        return False
    t.uniques.append(k)
    return True


def m_drop_unique(draw: Draw, db: Db) -> bool:
    t = _pick_table(draw, db)
    if t is None or not t.uniques:
        return False
    t.uniques.remove(draw(st.sampled_from(t.uniques)))
    prune_fks(db)
    return True


def m_change_pk(draw: Draw, db: Db) -> bool:
    t = _pick_table(draw, db)
    if t is None:
        return False
    old = t.pk
    t.pk = None
    new = gen_key(draw, db, t) if draw(st.integers(0, 2)) > 0 else None
    if new is not None:
        new.deferrable = new.nulls_not_distinct = False
    if new is not None and old is not None and new.cols == old.cols:
        new.name = old.name if draw(st.booleans()) else new.name
    t.pk = new
    if old == new:
        return False
    prune_fks(db)
    return True


def m_add_check(draw: Draw, db: Db) -> bool:
    t = _pick_table(draw, db)
    ck = gen_check(draw, db, t) if t else None
    if t is None or ck is None:
        return False
    t.checks.append(ck)
    return True


def m_drop_check(draw: Draw, db: Db) -> bool:
    t = _pick_table(draw, db)
    if t is None or not t.checks:
        return False
    t.checks.remove(draw(st.sampled_from(t.checks)))
    return True


def m_add_fk(draw: Draw, db: Db) -> bool:
    t = _pick_table(draw, db)
    fk = gen_fk(draw, db, t) if t else None
    if t is None or fk is None:
        return False
    t.fks.append(fk)
    return True


def m_drop_fk(draw: Draw, db: Db) -> bool:
    t = _pick_table(draw, db)
    if t is None or not t.fks:
        return False
    t.fks.remove(draw(st.sampled_from(t.fks)))
    return True


def m_fk_actions(draw: Draw, db: Db) -> bool:
    t = _pick_table(draw, db)
    if t is None or not t.fks:
        return False
    fk = draw(st.sampled_from(t.fks))
    actions = ["NO ACTION", "RESTRICT", "CASCADE", "SET NULL", "SET DEFAULT"]
    fk.on_delete = draw(st.sampled_from(actions))
    fk.on_update = draw(st.sampled_from(actions))
    fk.deferrable = draw(st.booleans())
    return True


def m_add_index(draw: Draw, db: Db) -> bool:
    t = _pick_table(draw, db)
    ix = gen_index(draw, db, t) if t else None
    if t is None or ix is None:
        return False
    t.indexes.append(ix)
    return True


def m_drop_index(draw: Draw, db: Db) -> bool:
    t = _pick_table(draw, db)
    if t is None or not t.indexes:
        return False
    t.indexes.remove(draw(st.sampled_from(t.indexes)))
    return True


def m_change_index(draw: Draw, db: Db) -> bool:
    t = _pick_table(draw, db)
    if t is None or not t.indexes:
        return False
    ix = draw(st.sampled_from(t.indexes))
    new = gen_index(draw, db, t)
    if new is None:
        return False
    new.name = ix.name  # same name, new definition
    t.indexes[t.indexes.index(ix)] = new
    return True


def m_view(draw: Draw, db: Db) -> bool:
    what = draw(st.sampled_from(["add", "drop", "change"]))
    if what == "add" or not db.views:
        v = gen_view(draw, db)
        if v is None:
            return False
        gen_view_call(draw, db, v)
        db.views.append(v)
        return True
    v = draw(st.sampled_from(db.views))
    if what == "drop":
        db.views.remove(v)
        prune_views(db)
        return True
    names = db.source_cols(v.table) or []
    v.cols = draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True))
    v.where_col = draw(st.sampled_from([None, *names]))
    if db.pg and draw(st.integers(0, 3)) == 0:
        v.materialized = not v.materialized  # (a view becomes a materialized one, or back)
    v.func = v.func_col = None
    gen_view_call(draw, db, v)
    prune_views(db)
    return True


def m_trigger(draw: Draw, db: Db) -> bool:
    """Add a trigger, drop one, or give one of the same name another definition (on
    PostgreSQL: another column, or WHEN added or dropped, on the same table)."""
    if db.triggers and draw(st.booleans()):
        tr = draw(st.sampled_from(db.triggers))
        if db.pg and draw(st.booleans()):
            t = db.table(tr.table)
            cols = [c.name for c in t.cols if c.generated is None] if t is not None else []
            col, when = draw(st.sampled_from(cols)) if cols else tr.col, draw(st.booleans())
            if (col, when) == (tr.col, tr.when):
                return False
            tr.col, tr.when = col, when
            return True
        db.triggers.remove(tr)
        if draw(st.booleans()):
            new = gen_trigger(draw, db)
            if new is not None and (not db.pg or new.table == tr.table):
                new.name = tr.name  # same name, new body
                db.triggers.append(new)
        return True
    tr = gen_trigger(draw, db)
    if tr is None:
        return False
    db.triggers.append(tr)
    return True


def m_comment(draw: Draw, db: Db) -> bool:
    if not db.pg:
        return False
    t = _pick_table(draw, db)
    if t is None:
        return False
    new = draw(st.sampled_from([None, *COMMENT_POOL]))
    target = draw(st.sampled_from(["table", "column", "index", "view", "enum", "schema"]))
    if target == "column" and t.cols:
        draw(st.sampled_from(t.cols)).comment = new
    elif target == "index" and t.indexes:
        draw(st.sampled_from(t.indexes)).comment = new
    elif target == "view" and db.views:
        draw(st.sampled_from(db.views)).comment = new
    elif target == "enum" and db.enums:
        draw(st.sampled_from(db.enums)).comment = new
    elif target == "schema" and db.schemas:
        s = draw(st.sampled_from(db.schemas))
        if new is None:
            db.schema_comments.pop(s, None)
        else:
            db.schema_comments[s] = new
    else:
        t.comment = new
    return True


def m_enum(draw: Draw, db: Db) -> bool:
    if not db.pg:
        return False
    what = draw(st.sampled_from(["new", "add_label", "drop_label", "column", "drop"]))
    if what == "new" or not db.enums:
        db.enums.append(gen_enum(draw, db))
        return True
    e = draw(st.sampled_from(db.enums))
    users = [(t, c) for t in db.tables for c in t.cols if c.enum == (e.schema, e.name)]
    if what == "add_label":
        free = [x for x in LABEL_POOL if x not in e.labels]
        if not free:
            return False
        pos = draw(st.integers(0, len(e.labels)))
        e.labels.insert(pos, draw(st.sampled_from(free)))
        return True
    if what == "drop_label":
        if len(e.labels) < 2:
            return False
        label = draw(st.sampled_from(e.labels))
        e.labels.remove(label)
        for _t, c in users:
            if c.default == lit(label):
                c.default = lit(e.labels[0])
        return True
    if what == "column":
        t = _pick_table(draw, db)
        if t is None:
            return False
        c = Col(name=fresh_col_name(draw, db, t), type="enum", enum=(e.schema, e.name),
                nullable=draw(st.booleans()))
        if draw(st.booleans()):
            c.default = lit(e.labels[0])
        t.cols.append(c)
        return True
    # drop the type with every column using it
    for t, _c in users:
        if len(t.cols) < 2:
            return False
    for t, c in users:
        drop_column(db, t, c.name)
    db.enums.remove(e)
    return True


def m_identity(draw: Draw, db: Db) -> bool:
    if not db.pg:
        return False
    t = _pick_table(draw, db, parted=False)
    c = _pick_col(draw, t, lambda c: c.type in PG_INT and not c.serial
                  and c.generated is None)
    if t is None or c is None:
        return False
    if c.identity is None:
        if fk_involved(db, t, c.name) and any(c.name in fk.cols for fk in t.fks):
            return False
        c.identity = draw(st.sampled_from(["ALWAYS", "BY DEFAULT"]))
        c.default = None
        c.nullable = False
    elif draw(st.booleans()):
        c.identity = "ALWAYS" if c.identity == "BY DEFAULT" else "BY DEFAULT"
    else:
        c.identity = None
        c.nullable = draw(st.booleans())
    return True


def m_schema(draw: Draw, db: Db) -> bool:
    if not db.pg:
        return False
    if db.schemas and draw(st.booleans()):
        s = draw(st.sampled_from(db.schemas))
        if len([t for t in db.tables if t.schema != s and not t.leaf]) < 1:
            return False
        if any(t.schema == s and (t.leaf or t.partition_by) for t in db.tables) or any(
                x.schema == s for x in [*db.funcs, *db.comps, *db.domains]) or any(
                tr.fn is not None and tr.fn[0] == s for tr in db.triggers):
            return False
        for e in [e for e in db.enums if e.schema == s]:
            for t in db.tables:
                for c in list(t.cols):
                    if c.enum == (e.schema, e.name):
                        if len(t.cols) < 2:
                            return False
        db.tables = [t for t in db.tables if t.schema != s]
        db.views = [v for v in db.views if v.schema != s]
        for e in [e for e in db.enums if e.schema == s]:
            for t in db.tables:
                for c in list(t.cols):
                    if c.enum == (e.schema, e.name):
                        drop_column(db, t, c.name)
            db.enums.remove(e)
        db.schemas.remove(s)
        db.schema_comments.pop(s, None)
        prune_fks(db)
        prune_views(db)
        return True
    free = [s for s in SCHEMA_POOL if s not in db.used]
    if not free:
        return False
    s = draw(st.sampled_from(free))
    db.schemas.append(s)
    db.used.add(s)
    db.tables.append(gen_table(draw, db, schema=s))
    return True


def m_func(draw: Draw, db: Db) -> bool:
    """Functions: add (maybe calling others, over a row or composite type), drop (what
    needs it goes or loses it), change the body, the return type (others depend on it:
    integer <-> bigint), the body's kind (SQL-standard, string, plpgsql), or what it calls."""
    if not db.pg:
        return False
    what = draw(st.sampled_from(["add", "drop", "body", "ret", "kind", "call"]))
    if what == "add" or not db.funcs:
        f = gen_func(draw, db)
        if f is None:
            return False
        if _early_func(f):  # before every function made after the tables
            late = next((i for i, g in enumerate(db.funcs) if not _early_func(g)),
                        len(db.funcs))
            db.funcs.insert(late, f)
        else:
            db.funcs.append(f)
        return True
    f = draw(st.sampled_from(db.funcs))
    if what == "drop":
        db.funcs.remove(f)
        prune_objects(db)
        return True
    if what == "body":
        f.const += 1
        return True
    if what == "ret":
        if f.arg is not None or f.ret not in ("integer", "bigint"):
            return False
        f.ret = "bigint" if f.ret == "integer" else "integer"
        return True
    if what == "kind":
        kinds = ["atomic", "sql"] if f.ret == "setof" else list(FUNC_BODIES)
        new = draw(st.sampled_from(kinds))
        if new == f.body:
            return False
        f.body = new
        return True
    if f.arg is not None or f.ret not in ("integer", "bigint", "boolean"):
        return False
    i = db.funcs.index(f)
    callees = [g.key for g in db.funcs[:i] if g.scalar and g.key not in f.calls]
    if not callees:
        return False
    f.calls.append(draw(st.sampled_from(callees)))
    return True


def m_func_user(draw: Draw, db: Db) -> bool:
    """A CHECK, an index or a default that calls a function, on an integer column (the
    function's return type, body or existence then changes under it, by m_func)."""
    if not db.pg or not scalar_funcs(db, ("integer", "bigint", "boolean")):
        return False
    t = _pick_table(draw, db)
    c = _pick_col(draw, t, lambda c: c.type in PG_INT and c.generated is None
                  and c.identity is None and not c.serial)
    if t is None or c is None:
        return False
    what = draw(st.sampled_from(["check", "index", "default"]))
    if what == "check":
        calls = [x for x in check_choices(db, c) if _CALL.search(x)]
        t.checks.append(Check(name=maybe_name(draw, db), cols=[c.name],
                              expr=f"({draw(st.sampled_from(calls))})"))
        return True
    if what == "index":
        calls = [x for x, _ in index_expr_choices(db, c) if _CALL.search(x)]
        if not calls:
            return False
        t.indexes.append(Idx(name=fresh_name(draw, db), keys=[
            IdxKey(expr=draw(st.sampled_from(calls)), expr_cols=[c.name])]))
        return True
    calls = [x for x in default_choices(db, c) if _CALL.search(x)]
    if not calls:
        return False
    new = draw(st.sampled_from(calls))
    if new == c.default:
        return False
    c.default = new
    return True


def m_domain(draw: Draw, db: Db) -> bool:
    """Domains over integer: add one (columns may take it), drop one (its columns become
    integer), or change which function its CHECK calls."""
    if not db.pg:
        return False
    what = draw(st.sampled_from(["add", "drop", "check", "column"]))
    if what == "add" or not db.domains:
        if not db.funcs:
            return False
        db.domains.append(gen_domain(draw, db))
        return True
    d = draw(st.sampled_from(db.domains))
    users = [(t, c) for t in db.tables if not t.leaf for c in t.cols
             if c.type == "domain" and c.enum == (d.schema, d.name)]
    if what == "drop":
        for t, c in users:
            c.type, c.enum = "integer", None
            retype_dependents(db, t, c)
        db.domains.remove(d)
        return True
    if what == "column":
        t = _pick_table(draw, db)
        if t is None:
            return False
        t.cols.append(Col(name=fresh_col_name(draw, db, t), type="domain",
                          enum=(d.schema, d.name), nullable=True))
        return True
    checks = [f.key for f in db.funcs if f.arg is None and f.ret == "boolean"]
    new = draw(st.sampled_from([None, *checks]))
    if new == d.check:
        return False
    d.check = new
    d.check_name = maybe_name(draw, db) if new is not None else None
    return True


def m_comp(draw: Draw, db: Db) -> bool:
    """Composite types: add one, add or drop an attribute (functions building it change
    with it), or drop one with the functions over it."""
    if not db.pg:
        return False
    what = draw(st.sampled_from(["add", "attr_add", "attr_drop", "drop"]))
    if what == "add" or not db.comps:
        db.comps.append(gen_comp(draw, db))
        return True
    c = draw(st.sampled_from(db.comps))
    if what == "attr_add":
        base = draw(st.sampled_from(NAME_POOL))
        name, k = base, 1
        while name in [a for a, _ in c.attrs]:
            k += 1
            name = f"{base}{k}"
        c.attrs.append((name, draw(st.sampled_from(["integer", "text"]))))
        return True
    if what == "attr_drop":
        if len(c.attrs) < 2:
            return False
        c.attrs.remove(draw(st.sampled_from(c.attrs)))
        return True
    db.comps.remove(c)
    prune_objects(db)
    return True


def m_check_change(draw: Draw, db: Db) -> bool:
    """A CHECK keeps its name and gets another expression, or flips validity
    (NOT VALID <-> valid, PostgreSQL)."""
    t = _pick_table(draw, db)
    if t is None or not t.checks:
        return False
    ck = draw(st.sampled_from(t.checks))
    if db.pg and draw(st.booleans()):
        ck.valid = not ck.valid
        return True
    cols = [c for c in (t.col(n) for n in ck.cols) if c is not None]
    if not cols:
        return False
    expr = " AND ".join(f"({draw(st.sampled_from(check_choices(db, c)))})" for c in cols)
    if expr == ck.expr:
        return False
    ck.expr = expr
    return True


def m_key_change(draw: Draw, db: Db) -> bool:
    """A UNIQUE constraint keeps its name and columns and becomes DEFERRABLE or not, or
    NULLS NOT DISTINCT or not (PostgreSQL; foreign keys over it go when it defers)."""
    t = _pick_table(draw, db)
    if not db.pg or t is None or not t.uniques:
        return False
    k = draw(st.sampled_from(t.uniques))
    if draw(st.booleans()):
        k.deferrable = not k.deferrable
    else:
        k.nulls_not_distinct = not k.nulls_not_distinct
    prune_fks(db)
    return True


def m_fk_change(draw: Draw, db: Db) -> bool:
    """A foreign key keeps its name and changes MATCH, deferral, validity, or what it
    references (columns, parent)."""
    t = _pick_table(draw, db)
    if t is None or not t.fks:
        return False
    fk = draw(st.sampled_from(t.fks))
    what = draw(st.sampled_from(["match", "deferral", "valid", "columns"]))
    if what == "match":
        if not db.pg or len(fk.cols) < 2:
            return False
        fk.match_full = not fk.match_full
        return True
    if what == "deferral":
        states = [(False, True), (True, True), (True, False)]
        now = (fk.deferrable, fk.deferred if fk.deferrable else True)
        new = draw(st.sampled_from([x for x in states if x != now]))
        fk.deferrable, fk.deferred = new
        return True
    if what == "valid":
        if not db.pg or t.partition_by is not None:
            return False  # (NOT VALID foreign keys on partitioned tables: 18 on)
        fk.valid = not fk.valid
        return True
    new = gen_fk(draw, db, t)
    if new is None or _same_fk(new, fk):
        return False
    new.name = fk.name if fk.name is not None else new.name
    t.fks[t.fks.index(fk)] = new
    return True


def m_partition(draw: Draw, db: Db) -> bool:
    """Partitions: detach one (a plain table keeping its rows), attach a detached one,
    add a LIST partition, give one an index of its own, or make a partitioned table."""
    if not db.pg:
        return False
    leaves = [t for t in db.tables if t.leaf]
    what = draw(st.sampled_from(["detach", "attach", "add", "index", "new"]))
    if what == "new" or not leaves:
        db.tables += gen_partitioned(draw, db)
        return True
    leaf = draw(st.sampled_from(leaves))
    parent = db.table(leaf.part_of)
    if parent is None:
        return False
    if what == "detach":
        if leaf.detached:
            return False
        leaf.detached = True
        return True
    if what == "attach":
        if not leaf.detached:
            return False
        leaf.detached = False
        return True
    if what == "index":
        ix = gen_leaf_index(draw, db, leaf)
        if ix is None:
            return False
        leaf.indexes.append(ix)
        return True
    if parent.partition_by != "LIST":
        return False
    taken = {b for x in db.leaves(parent) for b in PART_POOL if lit(b) in str(x.bound)}
    free = [v for v in PART_POOL if v not in taken]
    if not free:
        return False
    db.tables.append(Tbl(schema=draw(st.sampled_from(db.all_schemas())),
                         name=fresh_name(draw, db), cols=parent.cols, part_of=parent.key,
                         bound=f"FOR VALUES IN ({lit(draw(st.sampled_from(free)))})"))
    return True


MUTATIONS = [m_add_table, m_drop_table, m_add_column, m_drop_column, m_change_type,
             m_change_type, m_retype_key, m_generated, m_change_pk, m_enum, m_enum, m_view,
             m_identity, m_add_fk, m_trigger,
             m_retype_key, m_generated,
             m_nullable, m_default, m_collation, m_add_unique, m_drop_unique, m_change_pk,
             m_add_check, m_drop_check, m_add_fk, m_drop_fk, m_fk_actions, m_add_index,
             m_drop_index, m_change_index, m_view, m_comment, m_enum, m_identity, m_schema,
             m_sqlite_options, m_sqlite_options,
             # dependency chains, constraint changes, partitions
             m_func, m_func, m_func, m_domain, m_comp, m_check_change, m_check_change,
             m_fk_change, m_fk_change, m_partition, m_partition,
             # functions under checks, defaults and indexes; triggers; keys; materialized
             # views (gen_view, m_view); domains over domains (gen_domain)
             m_func_user, m_func_user, m_trigger, m_key_change]


def mutate(draw: Draw, db: Db) -> Db:
    to = copy.deepcopy(db)
    n = draw(st.integers(1, 4))
    done = 0
    for _ in range(n * 3):
        if done >= n:
            break
        m = draw(st.sampled_from(MUTATIONS))
        if m(draw, to):
            done += 1
        sync_partitions(to)
        prune_fks(to)
        prune_views(to)
        prune_objects(to)
    return to


# ---------------------------------------------------------------------------- data
def _card(kind: str | None, labels: int) -> float:
    if kind == "bool":
        return 2
    if kind == "enum":
        return labels
    return math.inf


def _value(kind: str, i: int, salt: int, labels: list[str]) -> Any:
    if kind == "int":
        return 10 * i + salt % 10 + 1
    if kind == "real":
        return 10 * i + salt % 10 + 0.5
    if kind == "text":
        return ["a", "b'", "c;", "é", "d\\"][salt % 5] + str(i)
    if kind == "blob":
        return bytes([i + 1, salt % 256])
    if kind == "bool":
        return (i + salt) % 2 == 0
    if kind == "date":
        return f"2024-0{1 + salt % 9}-{i + 1:02d}"
    if kind == "ts":
        return f"2024-01-{i + 1:02d} 1{salt % 10}:00:00+00"
    if kind == "json":
        return f'{{"k": {i}}}'
    if kind == "uuid":
        return f"00000000-0000-4000-8000-{salt % 1000:04d}{i:08d}"
    if kind == "arr":
        return f"{{a{i},b}}"
    if kind == "enum":
        return labels[(i + salt) % len(labels)]
    raise AssertionError(kind)


def _sql_value(dialect: str, v: Any) -> str:
    if v is None:
        return "NULL"
    if dialect == "postgres":
        if isinstance(v, bool):
            return "true" if v else "false"
        return lit(str(v))
    if isinstance(v, bytes):
        return "X'" + v.hex() + "'"
    if isinstance(v, int | float):
        return repr(v)
    return lit(str(v))


def _volatile(c: Col) -> bool:
    return (c.identity is not None or c.serial
            or (c.default is not None and "gen_random_uuid" in c.default))


def _constant_values(t: Tbl, c: Col) -> bool:
    """Whether every row gets the same non-NULL value when ``c`` is (re-)added."""
    return not _volatile(c) and c.default is not None and c.default.upper() != "NULL"


def _keyed_cols(t: Tbl) -> list[list[str]]:
    """Column sets whose values must be distinct (keys and unique indexes)."""
    out = [list(k.cols) for k in t.keys()]
    out += [sorted({c for k in ix.keys for c in k.cols()}) for ix in t.indexes if ix.unique]
    return out


@dataclass
class _ColPlan:
    name: str
    kind: str | None
    labels: list[str]
    nonnull: bool
    insert: bool = True


def gen_rows(draw: Draw, frm: Db, to: Db) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Rows for every table of ``frm`` that survive ``frm`` -> ``to`` -> ``frm``."""
    n: dict[tuple[str, str], int] = {}
    plans: dict[tuple[str, str], dict[str, _ColPlan]] = {}
    keyed: dict[tuple[str, str], set[str]] = {}  # columns in a key on either side
    for t in frm.tables:
        n[t.key] = draw(st.integers(0, 4))
        if t.leaf or (t.partition_by is not None and parent_has_gap(frm, t)):
            n[t.key] = 0  # rows go in through the parent, which routes each to a partition
        if t.partition_by is not None and _loses_partition(frm, to, t):
            n[t.key] = 0  # (a referenced row leaving the table refuses the change)
        tt = to.table(t.key)
        cplans: dict[str, _ColPlan] = {}
        keyed[t.key] = {c for ks in _keyed_cols(t) for c in ks}
        if tt is not None:
            keyed[t.key] |= {c for ks in _keyed_cols(tt) for c in ks}
        for c in t.cols:
            tc = tt.col(c.name) if tt is not None else None
            kind = common_kind(frm, c, to if tc else None, tc)
            if (not frm.pg and kind != "int" and c.type.upper() == "INTEGER"
                    and t.pk and t.pk.cols == [c.name]):
                kind = "int"
            if (not frm.pg and tt is not None and tc is not None and tt.pk
                    and tt.pk.cols == [c.name] and tc.type.upper() == "INTEGER"):
                kind = "int"  # becomes a rowid alias: only integers fit
            labels: list[str] = []
            if kind == "enum":
                enums = [e for e in (frm.enum(c.enum), to.enum(tc.enum) if tc else None) if e]
                labels = [x for x in enums[0].labels if all(x in e.labels for e in enums)]
                if not labels:
                    kind = None
            nonnull = (t.not_null(c) or c.name in keyed[t.key]
                       or (tc is not None and tt is not None and tt.not_null(tc)))
            if c.generated is not None or (tc is not None and tc.generated is not None):
                # Computed values (from the base column, maybe NULL) on one side at least.
                in_fk = any(c.name in fk.cols for side in (t, tt) if side for fk in side.fks)
                if nonnull or in_fk:
                    n[t.key] = 0
                if c.generated is not None:
                    kind = None
            cplans[c.name] = _ColPlan(c.name, kind, labels, nonnull)
            if kind is None and nonnull:
                n[t.key] = 0
        plans[t.key] = cplans
        if tt is None:
            continue
        if not frm.pg and (sqlite_options(t)[2] or sqlite_options(tt)[2]) and any(
                (tc := tt.col(c.name)) is not None and tc.type != c.type for c in t.cols):
            n[t.key] = 0  # a STRICT side refuses what the other side's type holds
        # Columns added by the migration (forward) or re-added by its rollback.
        for side, other, cols_side in ((tt, t, tt.cols), (t, tt, t.cols)):
            for c in cols_side:
                if other.col(c.name) is not None:
                    continue
                no_default = c.default is None or c.default.upper() == "NULL"
                if side.not_null(c) and no_default and not _volatile(c):
                    n[t.key] = 0
                in_key = any(c.name in ks for ks in _keyed_cols(side))
                if any(c.name in k.cols and k.nulls_not_distinct for k in side.uniques) and (
                        not _volatile(c)):
                    n[t.key] = 0  # one value (or NULL) on every row: NULLS NOT DISTINCT
                in_fk = any(c.name in fk.cols for fk in side.fks)
                if (in_key or in_fk) and _constant_values(side, c):
                    n[t.key] = 0
                if in_key and c.default is None and not _volatile(c) and not c.nullable:
                    n[t.key] = 0
        # Cardinality of keys made of low-cardinality columns.
        for ks in _keyed_cols(t) + _keyed_cols(tt):
            cards = [_card(cplans[c].kind, len(cplans[c].labels)) if c in cplans else math.inf
                     for c in ks]
            if cards and all(x < math.inf for x in cards):
                n[t.key] = min(n[t.key], int(max(cards)))
    for t in frm.tables:
        if to.table(t.key) is None:
            for ks in _keyed_cols(t):
                cp = plans[t.key]
                cards = [_card(cp[c].kind, len(cp[c].labels)) for c in ks]
                if cards and all(x < math.inf for x in cards):
                    n[t.key] = min(n[t.key], int(max(cards)))

    # Foreign keys, both sides: each group of child columns references one parent.
    groups: dict[tuple[str, str], list[tuple[FK, bool, bool]]] = {}
    for t in frm.tables:
        tt = to.table(t.key)
        seen: list[FK] = []
        out: list[tuple[FK, bool, bool]] = []
        for fk in t.fks:
            in_to = tt is not None and any(_same_fk(fk, f2) for f2 in tt.fks)
            out.append((fk, True, in_to))
            seen.append(fk)
        if tt is not None:
            for fk in tt.fks:
                if all(c in plans[t.key] for c in fk.cols) and not any(
                        _same_fk(fk, f2) for f2 in seen):
                    out.append((fk, False, True))
                elif fk.match_full and any(c in plans[t.key] for c in fk.cols):
                    # A MATCH FULL key the desired schema adds over new columns (NULL
                    # once added) and existing ones: those must be NULL too (all or
                    # none). As a group that references nothing, they follow no parent.
                    old = [i for i, c in enumerate(fk.cols) if c in plans[t.key]]
                    out.append((FK(name=None, cols=[fk.cols[i] for i in old], ref=("", ""),
                                   ref_cols=[fk.ref_cols[i] for i in old]), False, True))
        groups[t.key] = out

    def referenceable(t: Tbl, fk: FK, in_from: bool, in_to: bool) -> bool:
        p = frm.table(fk.ref)
        if p is None or n[p.key] == 0:
            return False
        tt, pt = to.table(t.key), to.table(fk.ref)
        if (in_to or tt is not None) and pt is None:
            return False  # the rollback brings the parent back empty
        for c, rc in zip(fk.cols, fk.ref_cols, strict=True):
            a, pa = t.col(c), p.col(rc)
            if a is None or pa is None or (a.type, a.enum) != (pa.type, pa.enum):
                return False  # the child column holds other values than its parent's
            b = tt.col(c) if tt is not None else None
            if b is None:
                continue  # the child goes (or the column): only "from" holds the key
            pb = pt.col(rc) if pt is not None else None
            if pb is None or (b.type, b.enum) != (pb.type, pb.enum):
                return False  # both ends must convert alike
        return all(rc in plans[p.key] and plans[p.key][rc].kind is not None
                   for rc in fk.ref_cols)

    # Which FK group each child column follows (None: NULL), to a fixpoint.
    follow: dict[tuple[str, str], dict[str, tuple[FK, bool, bool] | None]] = {}
    for _ in range(20):
        changed = False
        for t in frm.tables:
            if n[t.key] == 0:
                continue
            cp = plans[t.key]
            fol: dict[str, tuple[FK, bool, bool] | None] = {}
            count: dict[str, int] = {}
            for g in groups[t.key]:
                for c in g[0].cols:
                    count[c] = count.get(c, 0) + 1
            for g in groups[t.key]:
                fk = g[0]
                ok = referenceable(t, *g) and all(count[c] == 1 for c in fk.cols)
                p = frm.table(fk.ref)
                if p is None:
                    ok = False  # the parent exists only on the desired side: no rows follow
                for c in fk.cols:
                    fol[c] = g if ok else None
                if not ok and any(cp[c].nonnull for c in fk.cols):
                    n[t.key] = 0
                    changed = True
                    break
                if ok and p is not None and any(c in keyed[t.key] for c in fk.cols):
                    if n[t.key] > n[p.key]:
                        n[t.key] = n[p.key]
                        changed = True
            follow[t.key] = fol
        if not changed:
            break

    # Values: per column, then foreign-key columns copied from their parent row.
    rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for t in frm.tables:
        cp = plans[t.key]
        rs = []
        for i in range(n[t.key]):
            row = {}
            for salt, c in enumerate(t.cols):
                p = cp[c.name]
                if p.kind is None:
                    row[c.name] = None
                elif not p.nonnull and draw(st.integers(0, 3)) == 0:
                    row[c.name] = None
                else:
                    row[c.name] = _value(p.kind, i, salt + len(t.name), p.labels)
            rs.append(row)
        rows[t.key] = rs
    for _ in range(10):
        changed = False
        for t in frm.tables:
            fol = follow.get(t.key, {})
            for j, row in enumerate(rows[t.key]):
                for c, g in fol.items():
                    if g is None:
                        new = None
                    else:
                        fk = g[0]
                        prows = rows[fk.ref]
                        new = (prows[j % len(prows)][fk.ref_cols[fk.cols.index(c)]]
                               if prows else None)
                    if row.get(c) != new:
                        row[c] = new
                        changed = True
        if not changed:
            break
    # A NULL copied into a NOT NULL child column (the parent's value was NULL) is
    # impossible: parents' key columns are never NULL.
    return rows


def _loses_partition(frm: Db, to: Db, t: Tbl) -> bool:
    """Whether foreign keys reference ``t`` while one of its partitions is dropped or
    detached (forward or back): rows referring to its rows would stop the plan."""
    referenced = any(fk.ref == t.key for db in (frm, to) for o in db.tables for fk in o.fks)
    if not referenced:
        return False
    for leaf in frm.leaves(t) + to.leaves(t):
        a, b = frm.table(leaf.key), to.table(leaf.key)
        if a is None or b is None or a.detached != b.detached or a.part_of != b.part_of:
            return True
    return False


def _same_fk(a: FK, b: FK) -> bool:
    return a.cols == b.cols and a.ref == b.ref and a.ref_cols == b.ref_cols


# ------------------------------------------------------------------------- rendering
def _qn(db: Db, schema: str, name: str) -> str:
    return f"{q(schema)}.{q(name)}" if db.pg else q(name)


def _type_sql(db: Db, c: Col) -> str:
    if c.type in ("enum", "domain"):
        assert c.enum is not None
        return _qn(db, *c.enum)
    if c.serial:
        return "bigserial" if c.type == "bigint" else "serial"
    return c.type


def _col_sql(db: Db, t: Tbl, c: Col) -> str:
    parts = [q(c.name), _type_sql(db, c)] if c.type != "" else [q(c.name)]
    if c.collation:
        parts.append(f"COLLATE {c.collation}")
    if c.generated is not None:
        kind = "VIRTUAL" if c.virtual and not db.pg else "STORED"
        parts.append(f"GENERATED ALWAYS AS ({c.generated}) {kind}")
    elif c.identity:
        parts.append(f"GENERATED {c.identity} AS IDENTITY")
    elif c.default is not None and not c.serial:
        parts.append(f"DEFAULT {c.default}")
    if not c.nullable and not c.identity and not c.serial:
        parts.append("NOT NULL")
    return " ".join(parts)


def _con(name: str | None) -> str:
    return f"CONSTRAINT {q(name)} " if name else ""


def _fk_sql(db: Db, fk: FK) -> str:
    out = (f"{_con(fk.name)}FOREIGN KEY ({', '.join(q(c) for c in fk.cols)}) "
           f"REFERENCES {_qn(db, *fk.ref)} ({', '.join(q(c) for c in fk.ref_cols)})")
    if fk.match_full:
        out += " MATCH FULL"
    if fk.on_delete != "NO ACTION":
        out += f" ON DELETE {fk.on_delete}"
    if fk.on_update != "NO ACTION":
        out += f" ON UPDATE {fk.on_update}"
    if fk.deferrable:
        out += " DEFERRABLE INITIALLY " + ("DEFERRED" if fk.deferred else "IMMEDIATE")
    return out


def _index_sql(db: Db, t: Tbl, ix: Idx) -> str:
    keys = []
    for k in ix.keys:
        text = q(k.col) if k.col is not None else (f"({k.expr})" if db.pg else str(k.expr))
        if k.collation:
            text += f" COLLATE {k.collation}"
        if k.opclass:
            text += f" {k.opclass}"
        text += " DESC" if k.desc else ""
        if k.nulls:
            text += f" NULLS {k.nulls}"
        keys.append(text)
    target = f"{q(t.schema)}.{q(t.name)}" if db.pg else q(t.name)
    method = f" USING {ix.method}" if ix.method != "btree" else ""
    sql = (f"CREATE {'UNIQUE ' if ix.unique else ''}INDEX {q(ix.name)} ON {target}{method} "
           f"({', '.join(keys)})")
    if ix.include:
        sql += f" INCLUDE ({', '.join(q(c) for c in ix.include)})"
    if ix.where:
        sql += f" WHERE {ix.where}"
    return sql


def render(db: Db, rows: dict[tuple[str, str], list[dict[str, Any]]] | None = None) -> str:
    """The SQL script that builds ``db`` (and inserts ``rows``) in an empty database."""
    out: list[str] = []
    for s in db.schemas:
        out.append(f"CREATE SCHEMA {q(s)}")
        if s in db.schema_comments:
            out.append(f"COMMENT ON SCHEMA {q(s)} IS {lit(db.schema_comments[s])}")
    for e in db.enums:
        out.append(f"CREATE TYPE {_qn(db, e.schema, e.name)} AS ENUM "
                   f"({', '.join(lit(x) for x in e.labels)})")
        if e.comment:
            out.append(f"COMMENT ON TYPE {_qn(db, e.schema, e.name)} IS {lit(e.comment)}")
    for c in db.comps:
        out.append(f"CREATE TYPE {_qn(db, c.schema, c.name)} AS "
                   f"({', '.join(f'{q(a)} {t}' for a, t in c.attrs)})")
    out += [func_sql(db, f) for f in db.funcs if _early_func(f)]
    for d in db.domains:
        base = _qn(db, *d.base) if d.base is not None else "integer"
        sql = f"CREATE DOMAIN {_qn(db, d.schema, d.name)} AS {base}"
        if d.check is not None:
            sql += f" {_con(d.check_name)}CHECK ({_qn(db, *d.check)}(VALUE))"
        out.append(sql)
    for t in db.tables:
        if t.leaf:
            continue
        items = [_col_sql(db, t, c) for c in t.cols]
        autoincrement, without_rowid, strict = (False, False, False) if db.pg \
            else sqlite_options(t)
        if t.pk:
            auto = " AUTOINCREMENT" if autoincrement else ""
            items.append(f"{_con(t.pk.name)}PRIMARY KEY "
                         f"({', '.join(q(c) for c in t.pk.cols)}{auto})")
        items += [f"{_con(k.name)}UNIQUE{' NULLS NOT DISTINCT' if k.nulls_not_distinct else ''}"
                  f" ({', '.join(q(c) for c in k.cols)})"
                  f"{' DEFERRABLE' if k.deferrable else ''}" for k in t.uniques]
        items += [f"{_con(ck.name)}CHECK ({ck.expr})" for ck in t.checks if ck.valid]
        if not db.pg:
            items += [_fk_sql(db, fk) for fk in t.fks]
        options = ", ".join(o for o, on in (("WITHOUT ROWID", without_rowid),
                                            ("STRICT", strict)) if on)
        tail = f" {options}" if options else ""
        if t.partition_by is not None and t.part_key is not None:
            tail = f" PARTITION BY {t.partition_by} ({q(t.part_key)})"
        out.append(f"CREATE TABLE {_qn(db, *t.key)} (\n  " + ",\n  ".join(items) + "\n)" + tail)
    for t in db.tables:
        if t.leaf and t.part_of is not None:
            out.append(f"CREATE TABLE {_qn(db, *t.key)} PARTITION OF {_qn(db, *t.part_of)} "
                       f"{t.bound}")
    for t in db.tables:
        data = (rows or {}).get(t.key) or []
        cols = [c for c in t.cols if c.generated is None]
        if data and cols:
            override = " OVERRIDING SYSTEM VALUE" if any(
                c.identity == "ALWAYS" for c in cols) and db.pg else ""
            values = ", ".join("(" + ", ".join(_sql_value(db.dialect, r[c.name]) for c in cols)
                               + ")" for r in data)
            out.append(f"INSERT INTO {_qn(db, *t.key)} ({', '.join(q(c.name) for c in cols)})"
                       f"{override} VALUES {values}")
    if db.pg:
        for t in db.tables:
            for ck in t.checks:
                if not ck.valid:
                    out.append(f"ALTER TABLE {_qn(db, *t.key)} ADD {_con(ck.name)}CHECK "
                               f"({ck.expr}) NOT VALID")
            for fk in t.fks:
                out.append(f"ALTER TABLE {_qn(db, *t.key)} ADD {_fk_sql(db, fk)}"
                           + ("" if fk.valid else " NOT VALID"))
    for t in db.tables:
        for ix in t.indexes:
            out.append(_index_sql(db, t, ix))
            if ix.comment:
                out.append(f"COMMENT ON INDEX {_qn(db, t.schema, ix.name)} IS {lit(ix.comment)}")
    for t in db.tables:
        if t.leaf and t.detached and t.part_of is not None:
            out.append(f"ALTER TABLE {_qn(db, *t.part_of)} DETACH PARTITION {_qn(db, *t.key)}")
    out += [func_sql(db, f) for f in db.funcs if not _early_func(f)]
    for v in db.views:
        items = [q(c) for c in v.cols]
        src = _qn(db, *v.table)
        f = db.func(v.func)
        if f is not None:
            if f.arg is not None:
                src += " AS lp_src"
                arg = "lp_src"
            else:
                arg = f"{q(v.func_col)}::integer" if v.func_col else "1"
            items.append(f"{_qn(db, *f.key)}({arg}) AS fx")
        kind = "MATERIALIZED VIEW" if v.materialized else "VIEW"
        sql = (f"CREATE {kind} {_qn(db, v.schema, v.name)} AS SELECT {', '.join(items)} "
               f"FROM {src}")
        if v.where_col:
            sql += f" WHERE {q(v.where_col)} IS NOT NULL"
        out.append(sql)
        if v.comment:
            out.append(f"COMMENT ON {kind} {_qn(db, v.schema, v.name)} IS {lit(v.comment)}")
    for tr in db.triggers:
        if db.pg and tr.fn is not None:
            out.append(f"CREATE FUNCTION {_qn(db, *tr.fn)}() RETURNS trigger LANGUAGE plpgsql "
                       f"AS $fn$ BEGIN RETURN NEW; END $fn$")
            when = f" WHEN (OLD.{q(tr.col)} IS DISTINCT FROM NEW.{q(tr.col)})" if tr.when \
                else ""
            out.append(f"CREATE TRIGGER {q(tr.name)} BEFORE UPDATE OF {q(tr.col)} ON "
                       f"{_qn(db, *tr.table)} FOR EACH ROW{when} EXECUTE FUNCTION "
                       f"{_qn(db, *tr.fn)}()")
            continue
        out.append(f"CREATE TRIGGER {q(tr.name)} AFTER INSERT ON {q(tr.table[1])} BEGIN "
                   f"UPDATE {q(tr.target[1])} SET {q(tr.col)} = {q(tr.col)} WHERE 0; END")
    if db.pg:
        for t in db.tables:
            if t.comment:
                out.append(f"COMMENT ON TABLE {_qn(db, *t.key)} IS {lit(t.comment)}")
            for c in t.cols if not t.leaf else []:
                if c.comment:
                    out.append(f"COMMENT ON COLUMN {_qn(db, *t.key)}.{q(c.name)} IS "
                               f"{lit(c.comment)}")
    return ";\n".join(out) + ";\n"


# --------------------------------------------------------------------------- pairs
@dataclass
class Pair:
    dialect: str
    frm: Db
    to: Db
    rows: dict[tuple[str, str], list[dict[str, Any]]]

    def __repr__(self) -> str:  # the scripts are noted in full; keep reports short
        return f"Pair({self.dialect}, {len(self.frm.tables)} -> {len(self.to.tables)} tables)"

    @property
    def from_sql(self) -> str:
        return render(self.frm, self.rows)

    @property
    def to_sql(self) -> str:
        return render(self.to)


@st.composite
def pairs(draw: Draw, dialect: str) -> Pair:
    frm = draw(schemas(dialect))
    to = mutate(draw, frm)
    rows = gen_rows(draw, frm, to)
    return Pair(dialect, frm, to, rows)
