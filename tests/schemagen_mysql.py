"""Random MariaDB / MySQL schema pairs for property-based round trips (the MySQL side of
tests/schemagen.py, whose name pools it shares).

A "from" schema (tables with hostile names, MySQL column types, primary keys, indexes
of every MySQL kind, CHECKs, foreign keys, views, triggers with BEGIN ... END bodies,
comments, table options) with rows, and a "to" schema derived from it by random
mutations, each rendered to a script. The rows satisfy both schemas' constraints and
survive the migration both ways: columns only widen, a NOT NULL column never holds NULL,
foreign key columns hold NULL, every CHECK holds for every generated value.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from hypothesis import strategies as st

from tests.schemagen import COMMENT_POOL, NAME_POOL, Draw

# MySQL identifiers: no characters outside the BMP, no trailing space; column, index
# and constraint names compare case-insensitively (so names are kept apart folded).
NAMES = [n for n in NAME_POOL if all(ord(c) < 0x10000 for c in n) and n == n.rstrip()]

# logical type -> (SQL, the types it may widen to)
TYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "smallint": ("smallint", ("int", "bigint")),
    "int": ("int", ("bigint",)),
    "bigint": ("bigint", ()),
    "uint": ("int unsigned", ("ubigint",)),
    "ubigint": ("bigint unsigned", ()),
    "v20": ("varchar(20)", ("v100", "text")),
    "v100": ("varchar(100)", ("text",)),
    "text": ("text", ("mediumtext",)),
    "mediumtext": ("mediumtext", ()),
    "dec": ("decimal(10,2)", ("dec14",)),
    "dec14": ("decimal(14,2)", ()),
    "date": ("date", ("datetime",)),
    "datetime": ("datetime", ()),
    "enum": ("enum('a','b','it''s')", ("enum4",)),
    "enum4": ("enum('a','b','it''s','z')", ()),
}
NUMERIC = {"smallint", "int", "bigint", "uint", "ubigint", "dec", "dec14"}
STRINGS = {"v20", "v100", "text", "mediumtext"}
DEFAULTS = {
    "smallint": ["0", "7"], "int": ["0", "42"], "bigint": ["0", "7"], "uint": ["1"],
    "ubigint": ["2"], "v20": ["'d'", "'it''s'"], "v100": ["'x;y'", "''"],
    "text": ["'t'"], "mediumtext": ["'m'"], "dec": ["0.00", "1.50"], "dec14": ["2.25"],
    "date": ["'2024-01-01'"], "datetime": ["'2024-01-01 00:00:00'", "CURRENT_TIMESTAMP"],
    "enum": ["'a'"], "enum4": ["'z'"],
}


def q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def lit(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


@dataclass
class Col:
    name: str
    type: str
    nullable: bool = True
    default: str | None = None
    comment: str | None = None
    binary_collation: bool = False  # COLLATE utf8mb4_bin (strings)
    on_update: bool = False  # datetime: ON UPDATE CURRENT_TIMESTAMP
    auto_increment: bool = False  # the primary key's one int column


@dataclass
class Idx:
    name: str
    cols: list[tuple[str, int | None]]  # (column, prefix length)
    unique: bool = False
    fulltext: bool = False
    ignored: bool = False
    comment: str | None = None


@dataclass
class Check:
    name: str
    col: str
    expr: str


@dataclass
class FK:
    name: str
    col: str
    ref: str  # table (its primary key: one int column)
    on_delete: str = "RESTRICT"


@dataclass
class Trigger:
    name: str
    event: str  # INSERT | UPDATE
    col: str  # a string column the body sets
    text: str


@dataclass
class Tbl:
    name: str
    cols: list[Col]
    pk: list[str]
    indexes: list[Idx] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    fks: list[FK] = field(default_factory=list)
    triggers: list[Trigger] = field(default_factory=list)
    engine: str = "InnoDB"
    row_format: str | None = None
    comment: str | None = None

    def col(self, name: str) -> Col:
        return next(c for c in self.cols if c.name == name)


@dataclass
class View:
    name: str
    table: str
    cols: list[str]
    where: str | None = None
    options: str = ""  # ALGORITHM=... / SQL SECURITY ...


@dataclass
class Db:
    tables: list[Tbl] = field(default_factory=list)
    views: list[View] = field(default_factory=list)
    counter: int = 0

    def table(self, name: str) -> Tbl | None:
        return next((t for t in self.tables if t.name == name), None)

    def fresh(self, draw: Draw, taken: set[str] | None = None) -> str:
        """A hostile name not yet used (folded) in ``taken`` nor as a relation here."""
        taken = {n.lower() for n in (taken or set())}
        taken |= {t.name.lower() for t in self.tables} | {v.name.lower() for v in self.views}
        base = draw(st.sampled_from(NAMES))
        name = base
        while name.lower() in taken:
            self.counter += 1
            name = f"{base}{self.counter}"
        return name[:60]

    def object_name(self, draw: Draw, prefix: str) -> str:
        """Index, check, foreign key and trigger names: unique in the database."""
        self.counter += 1
        return f"{draw(st.sampled_from(NAMES))[:20]} {prefix}{self.counter}"


# ------------------------------------------------------------------------- schemas
def _referenced(db: Db, t: Tbl) -> bool:
    return any(fk.ref == t.name for x in db.tables for fk in x.fks)


def _fk_cols(t: Tbl) -> set[str]:
    return {fk.col for fk in t.fks}


def _in_use(db: Db, t: Tbl, col: str) -> bool:
    return (col in t.pk or any(col in [c for c, _ in ix.cols] for ix in t.indexes)
            or any(ck.col == col for ck in t.checks) or col in _fk_cols(t)
            or any(tr.col == col for tr in t.triggers)
            or any(v.table == t.name and col in v.cols for v in db.views))


def gen_col(draw: Draw, db: Db, t: Tbl | None, taken: set[str]) -> Col:
    name = db.fresh(draw, taken)
    type_ = draw(st.sampled_from(sorted(TYPES)))
    c = Col(name=name, type=type_, nullable=draw(st.booleans()))
    if draw(st.integers(0, 2)) == 0:
        c.default = draw(st.sampled_from(DEFAULTS[type_]))
    if draw(st.integers(0, 4)) == 0:
        c.comment = draw(st.sampled_from(COMMENT_POOL))
    if type_ in STRINGS and draw(st.integers(0, 4)) == 0:
        c.binary_collation = True
    if type_ == "datetime" and draw(st.integers(0, 2)) == 0:
        c.on_update = True
    return c


def gen_table(draw: Draw, db: Db) -> Tbl:
    name = db.fresh(draw)
    taken: set[str] = set()
    id_col = Col(name=db.fresh(draw, taken), type="int", nullable=False,
                 auto_increment=draw(st.integers(0, 3)) == 0)
    taken.add(id_col.name)
    cols = [id_col]
    for _ in range(draw(st.integers(1, 4))):
        c = gen_col(draw, db, None, taken)
        taken.add(c.name)
        cols.append(c)
    t = Tbl(name=name, cols=cols, pk=[id_col.name])
    for _ in range(draw(st.integers(0, 2))):
        gen_index(draw, db, t)
    if draw(st.booleans()):
        gen_check(draw, db, t)
    if draw(st.integers(0, 3)) == 0:
        t.comment = draw(st.sampled_from(COMMENT_POOL))
    if draw(st.integers(0, 3)) == 0:
        t.row_format = draw(st.sampled_from(["DYNAMIC", "COMPACT"]))
    return t


def gen_index(draw: Draw, db: Db, t: Tbl) -> None:
    cols = draw(st.lists(st.sampled_from([c.name for c in t.cols]), min_size=1,
                         max_size=2, unique_by=str.lower))
    strings = [c for c in cols if t.col(c).type in STRINGS]
    if strings and len(strings) == len(cols) and draw(st.integers(0, 3)) == 0:
        ix = Idx(db.object_name(draw, "ft"), [(c, None) for c in cols], fulltext=True)
    else:
        keyed = []
        for c in cols:
            ty = t.col(c).type
            length = draw(st.sampled_from([5, 10])) if ty in ("text", "mediumtext") or (
                ty in STRINGS and draw(st.booleans())) else None
            keyed.append((c, length))
        ix = Idx(db.object_name(draw, "ix"), keyed, unique=draw(st.booleans()))
    ix.ignored = not ix.unique and draw(st.integers(0, 3)) == 0
    if draw(st.integers(0, 4)) == 0:
        ix.comment = draw(st.sampled_from(COMMENT_POOL))
    t.indexes.append(ix)


def gen_check(draw: Draw, db: Db, t: Tbl) -> None:
    cols = [c for c in t.cols if not c.auto_increment]  # (MariaDB refuses those)
    if not cols:
        return
    c = draw(st.sampled_from(cols))
    n = q(c.name)
    if c.type in NUMERIC:
        expr = f"{n} >= 0"
    elif c.type in STRINGS:
        expr = f"char_length({n}) < 50"
    elif c.type in ("date", "datetime"):
        expr = f"{n} > '2000-01-01'"
    else:
        expr = f"{n} <> ''"
    t.checks.append(Check(db.object_name(draw, "ck"), c.name, expr))


def gen_fk(draw: Draw, db: Db, t: Tbl) -> None:
    targets = [x for x in db.tables if x.pk and len(x.pk) == 1
               and x.col(x.pk[0]).type == "int" and x.engine == "InnoDB"]
    if not targets or t.engine != "InnoDB":
        return
    ref = draw(st.sampled_from(targets))
    name = db.fresh(draw, {c.name for c in t.cols})
    t.cols.append(Col(name=name, type="int"))
    t.fks.append(FK(db.object_name(draw, "fk"), name, ref.name,
                    draw(st.sampled_from(["RESTRICT", "CASCADE", "SET NULL"]))))


def gen_trigger(draw: Draw, db: Db, t: Tbl) -> None:
    strings = [c for c in t.cols if c.type in ("v100", "text", "mediumtext")
               and c.name not in t.pk]
    if not strings or len(t.triggers) >= 2:
        return
    c = draw(st.sampled_from(strings))
    event = draw(st.sampled_from(["INSERT", "UPDATE"]))
    if any(tr.event == event for tr in t.triggers):
        return
    text = draw(st.sampled_from(["NEW.{c}", "COALESCE(NEW.{c}, 'x;y')", "TRIM(NEW.{c})"]))
    t.triggers.append(Trigger(db.object_name(draw, "tr"), event, c.name,
                              text.format(c=q(c.name))))


def gen_view(draw: Draw, db: Db) -> None:
    tables = [t for t in db.tables]
    if not tables:
        return
    t = draw(st.sampled_from(tables))
    cols = draw(st.lists(st.sampled_from([c.name for c in t.cols]), min_size=1,
                         max_size=3, unique_by=str.lower))
    where = f"{q(t.pk[0])} > 0" if draw(st.booleans()) else None
    options = draw(st.sampled_from(["", "ALGORITHM=MERGE", "SQL SECURITY INVOKER"]))
    db.views.append(View(db.fresh(draw), t.name, cols, where, options))


@st.composite
def schemas(draw: Draw) -> Db:
    db = Db()
    for _ in range(draw(st.integers(1, 3))):
        db.tables.append(gen_table(draw, db))
    for t in db.tables:
        if draw(st.integers(0, 2)) == 0:
            gen_fk(draw, db, t)
        if draw(st.integers(0, 2)) == 0:
            gen_trigger(draw, db, t)
    if draw(st.booleans()):
        gen_view(draw, db)
    return db


# ------------------------------------------------------------------------ mutations
def _pick(draw: Draw, db: Db) -> Tbl | None:
    return draw(st.sampled_from(db.tables)) if db.tables else None


def m_add_table(draw: Draw, db: Db) -> None:
    db.tables.append(gen_table(draw, db))


def m_drop_table(draw: Draw, db: Db) -> None:
    t = _pick(draw, db)
    if t is not None and not _referenced(db, t) and len(db.tables) > 1:
        db.tables.remove(t)
        db.views = [v for v in db.views if v.table != t.name]


def m_add_column(draw: Draw, db: Db) -> None:
    t = _pick(draw, db)
    if t is not None:
        c = gen_col(draw, db, t, {c.name for c in t.cols})
        if not c.nullable and c.default is None:
            c.default = DEFAULTS[c.type][0]
        t.cols.append(c)


def m_drop_column(draw: Draw, db: Db) -> None:
    t = _pick(draw, db)
    if t is None:
        return
    free = [c for c in t.cols if not _in_use(db, t, c.name)]
    if free:
        t.cols.remove(draw(st.sampled_from(free)))


def m_widen(draw: Draw, db: Db) -> None:
    t = _pick(draw, db)
    if t is None:
        return
    refs = {fk.col for x in db.tables for fk in x.fks if x is t} | (
        set(t.pk) if _referenced(db, t) else set())
    cols = [c for c in t.cols if TYPES[c.type][1] and c.name not in refs
            and not any(c.name in [n for n, ln in ix.cols if ln] or ix.fulltext
                        and c.name in [n for n, _ in ix.cols] for ix in t.indexes)]
    if cols:
        c = draw(st.sampled_from(cols))
        c.type = draw(st.sampled_from(TYPES[c.type][1]))
        if c.default is not None and c.default not in DEFAULTS[c.type]:
            c.default = None
        if c.type not in STRINGS:
            c.binary_collation = False


def m_nullable(draw: Draw, db: Db) -> None:
    t = _pick(draw, db)
    if t is None:
        return
    cols = [c for c in t.cols if c.name not in t.pk and c.name not in _fk_cols(t)]
    if cols:
        c = draw(st.sampled_from(cols))
        c.nullable = not c.nullable


def m_default(draw: Draw, db: Db) -> None:
    t = _pick(draw, db)
    if t is None:
        return
    cols = [c for c in t.cols if not c.auto_increment]
    if cols:
        c = draw(st.sampled_from(cols))
        c.default = draw(st.sampled_from([None, *DEFAULTS[c.type]]))


def m_comment(draw: Draw, db: Db) -> None:
    t = _pick(draw, db)
    if t is None:
        return
    if draw(st.booleans()):
        t.comment = draw(st.sampled_from([None, *COMMENT_POOL]))
    else:
        c = draw(st.sampled_from(t.cols))
        c.comment = draw(st.sampled_from([None, *COMMENT_POOL]))


def m_collation(draw: Draw, db: Db) -> None:
    t = _pick(draw, db)
    if t is None:
        return
    cols = [c for c in t.cols if c.type in STRINGS]
    if cols:
        c = draw(st.sampled_from(cols))
        c.binary_collation = not c.binary_collation


def m_index(draw: Draw, db: Db) -> None:
    t = _pick(draw, db)
    if t is None:
        return
    choice = draw(st.integers(0, 2))
    if choice == 0 or not t.indexes:
        gen_index(draw, db, t)
    elif choice == 1:
        ix = draw(st.sampled_from(t.indexes))
        if not any(ix.cols[0][0] == fk.col for fk in t.fks):
            t.indexes.remove(ix)
    else:
        ix = draw(st.sampled_from(t.indexes))
        if not ix.unique:
            ix.ignored = not ix.ignored


def m_check(draw: Draw, db: Db) -> None:
    t = _pick(draw, db)
    if t is None:
        return
    if t.checks and draw(st.booleans()):
        t.checks.pop(draw(st.integers(0, len(t.checks) - 1)))
    else:
        gen_check(draw, db, t)


def m_fk(draw: Draw, db: Db) -> None:
    t = _pick(draw, db)
    if t is None:
        return
    if t.fks and draw(st.booleans()):
        fk = t.fks.pop(draw(st.integers(0, len(t.fks) - 1)))
        if draw(st.booleans()):
            t.fks.append(FK(fk.name, fk.col, fk.ref, draw(st.sampled_from(
                ["RESTRICT", "CASCADE", "SET NULL", "NO ACTION"]))))
    else:
        gen_fk(draw, db, t)


def m_pk(draw: Draw, db: Db) -> None:
    t = _pick(draw, db)
    if t is None or _referenced(db, t):
        return
    cols = [c for c in t.cols if not c.nullable and c.name not in t.pk
            and c.type in NUMERIC | {"v20", "v100", "date", "datetime", "enum", "enum4"}]
    if any(t.col(c).auto_increment for c in t.pk):
        return  # (an AUTO_INCREMENT column must stay a key's first column)
    if len(t.pk) > 1:
        t.pk = t.pk[:1]
    elif cols:
        t.pk = [*t.pk, draw(st.sampled_from(cols)).name]


def m_view(draw: Draw, db: Db) -> None:
    if db.views and draw(st.booleans()):
        v = draw(st.sampled_from(db.views))
        if draw(st.booleans()):
            db.views.remove(v)
        else:
            v.where = None if v.where else f"{q(db.table(v.table).pk[0])} > 1"  # type: ignore[union-attr]
            v.options = draw(st.sampled_from(["", "ALGORITHM=MERGE", "SQL SECURITY INVOKER"]))
    else:
        gen_view(draw, db)


def m_trigger(draw: Draw, db: Db) -> None:
    t = _pick(draw, db)
    if t is None:
        return
    if t.triggers and draw(st.booleans()):
        t.triggers.pop(0)
    else:
        gen_trigger(draw, db, t)


def m_options(draw: Draw, db: Db) -> None:
    t = _pick(draw, db)
    if t is None:
        return
    if draw(st.booleans()) and not t.fks and not _referenced(db, t):
        t.engine = "Aria" if t.engine == "InnoDB" else "InnoDB"
        t.row_format = None
    elif t.engine == "InnoDB":
        t.row_format = draw(st.sampled_from([None, "DYNAMIC", "COMPACT"]))


def m_auto_increment(draw: Draw, db: Db) -> None:
    t = _pick(draw, db)
    if t is not None and len(t.pk) == 1 and t.col(t.pk[0]).type in NUMERIC - {"dec", "dec14"} \
            and not any(ck.col == t.pk[0] for ck in t.checks):
        c = t.col(t.pk[0])
        c.auto_increment = not c.auto_increment
        c.default = None


def m_on_update(draw: Draw, db: Db) -> None:
    t = _pick(draw, db)
    cols = [c for c in t.cols if c.type == "datetime"] if t is not None else []
    if cols:
        c = draw(st.sampled_from(cols))
        c.on_update = not c.on_update


MUTATIONS = [m_auto_increment, m_on_update, m_add_table, m_drop_table, m_add_column,
             m_drop_column, m_widen, m_nullable, m_default, m_comment, m_collation, m_index,
             m_check, m_fk, m_pk, m_view, m_trigger, m_options]


def mutate(draw: Draw, frm: Db) -> Db:
    to = copy.deepcopy(frm)
    for _ in range(draw(st.integers(1, 3))):
        draw(st.sampled_from(MUTATIONS))(draw, to)
    return to


# ------------------------------------------------------------------------ rendering
def _value(c: Col, i: int) -> str:
    """Row ``i``'s value of ``c``: fits the type and every wider one, passes every CHECK
    the generator writes, distinct per row (unique keys)."""
    if c.type in NUMERIC:
        return str(i + 1) if c.type not in ("dec", "dec14") else f"{i}.50"
    if c.type in STRINGS:
        return lit(f"v{i};'x")
    if c.type == "date":
        return f"'2024-01-0{i + 1}'"
    if c.type == "datetime":
        return f"'2024-01-0{i + 1} 10:00:00'"
    return ["'a'", "'b'", "'it''s'"][i % 3]


def render(db: Db, rows: bool) -> str:
    out = []
    for t in db.tables:
        items = []
        for c in t.cols:
            s = f"{q(c.name)} {TYPES[c.type][0]}"
            if c.binary_collation:
                s += " COLLATE utf8mb4_bin"
            if not c.nullable:
                s += " NOT NULL"
            if c.default is not None:
                s += f" DEFAULT {c.default}"
            if c.on_update:
                s += " ON UPDATE CURRENT_TIMESTAMP"
            if c.auto_increment:
                s += " AUTO_INCREMENT"
            if c.comment:
                s += f" COMMENT {lit(c.comment)}"
            items.append(s)
        items.append(f"PRIMARY KEY ({', '.join(q(c) for c in t.pk)})")
        for ix in t.indexes:
            kind = "FULLTEXT KEY" if ix.fulltext else "UNIQUE KEY" if ix.unique else "KEY"
            keys = ", ".join(q(c) + (f"({n})" if n else "") for c, n in ix.cols)
            s = f"{kind} {q(ix.name)} ({keys})"
            if ix.comment:
                s += f" COMMENT {lit(ix.comment)}"
            if ix.ignored:
                s += " IGNORED"
            items.append(s)
        items += [f"CONSTRAINT {q(ck.name)} CHECK ({ck.expr})" for ck in t.checks]
        opts = f" ENGINE={t.engine}"
        if t.row_format:
            opts += f" ROW_FORMAT={t.row_format}"
        if t.comment:
            opts += f" COMMENT={lit(t.comment)}"
        out.append(f"CREATE TABLE {q(t.name)} (\n  " + ",\n  ".join(items) + f"\n){opts};")
    for t in db.tables:
        for fk in t.fks:
            out.append(f"ALTER TABLE {q(t.name)} ADD CONSTRAINT {q(fk.name)} FOREIGN KEY "
                       f"({q(fk.col)}) REFERENCES {q(fk.ref)} "
                       f"({q(db.table(fk.ref).pk[0])}) ON DELETE {fk.on_delete};")  # type: ignore[union-attr]
        for tr in t.triggers:
            out.append(f"CREATE TRIGGER {q(tr.name)} BEFORE {tr.event} ON {q(t.name)} "
                       f"FOR EACH ROW BEGIN SET NEW.{q(tr.col)} = {tr.text}; END;")
    for v in db.views:
        where = f" WHERE {v.where}" if v.where else ""
        opts = f"{v.options} " if v.options else ""
        out.append(f"CREATE {opts}VIEW {q(v.name)} AS SELECT "
                   f"{', '.join(q(c) for c in v.cols)} FROM {q(v.table)}{where};")
    if rows:
        for t in db.tables:
            for i in range(3):
                values = ", ".join("NULL" if c.name in _fk_cols(t) else _value(c, i)
                                   for c in t.cols)
                out.append(f"INSERT INTO {q(t.name)} ({', '.join(q(c.name) for c in t.cols)}) "
                           f"VALUES ({values});")
    return "\n".join(out)


@dataclass
class Pair:
    from_sql: str
    to_sql: str

    def __repr__(self) -> str:
        return f"Pair({len(self.from_sql)} -> {len(self.to_sql)} characters)"


@st.composite
def pairs(draw: Draw) -> Pair:
    frm = draw(schemas())
    to = mutate(draw, frm)
    return Pair(render(frm, rows=True), render(to, rows=False))
