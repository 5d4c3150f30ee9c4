"""MySQL / MariaDB SQL shared by change kinds: column definitions and CREATE TABLE.

Types and expressions are written as the server printed them (introspection reads
COLUMN_TYPE and the printed defaults, generated columns and CHECKs); names are quoted by
the dialect. Table options are checked to be words, since they are spliced in as
``KEY=value``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..errors import BadInput
from ..model import Column, Index, Table, qualified

if TYPE_CHECKING:
    from ..dialects.base import Dialect

# Defaults written bare: literals (strings, numbers, NULL, bit and hex values) and the
# current-time functions MySQL accepts without parentheses. Any other expression is
# parenthesized, the form both MySQL 8 and MariaDB take for expression defaults.
_BARE_DEFAULT = re.compile(
    r"""(?ix)^(?:
        '(?:[^'\\]|''|\\.)*'                       # a string
      | [-+]?\d+(?:\.\d*)?(?:e[-+]?\d+)?            # a number
      | null | true | false
      | [bx]'[0-9a-f]*' | 0x[0-9a-f]+ | 0b[01]+    # hex and bit values
      | (?:current_timestamp|now|localtime|localtimestamp)(?:\(\d?\))?
    )$""")
_WORD = re.compile(r"^[A-Za-z0-9_]+$")


def default_sql(expr: str) -> str:
    return expr if _BARE_DEFAULT.match(expr.strip()) else f"({expr})"


def word(value: str, what: str, where: str) -> str:
    """A collation, engine or option value: letters, digits and underscores only."""
    if not _WORD.match(value):
        raise BadInput(f"{where}: {what} {value!r} is not a MySQL name")
    return value


def column_sql(d: Dialect, table: Table, col: Column, *, with_comment: bool = False) -> str:
    """``name type [COLLATE] [GENERATED ... | NOT NULL DEFAULT ... ON UPDATE ...
    AUTO_INCREMENT] [COMMENT]``. Comments are their own steps (set_comment), except in
    a MODIFY COLUMN (``with_comment``), which restates the whole column."""
    where = f"column {qualified(table.schema_, table.name)}.{col.name}"
    parts = [d.quote(col.name), col.type]
    if col.collation:
        parts.append(f"COLLATE {word(col.collation, 'collation', where)}")
    if col.generated is not None:
        kind = "VIRTUAL" if col.generated_kind == "virtual" else "STORED"
        parts.append(f"GENERATED ALWAYS AS ({col.generated}) {kind}")
        if not col.nullable:
            parts.append("NOT NULL")
    else:
        if not col.nullable:
            parts.append("NOT NULL")
        if col.default is not None:
            parts.append(f"DEFAULT {default_sql(col.default)}")
        if col.on_update is not None:
            parts.append(f"ON UPDATE {col.on_update}")
        if col.auto_increment:
            parts.append("AUTO_INCREMENT")
    if with_comment and col.comment:
        parts.append(f"COMMENT {d.literal(col.comment)}")
    return " ".join(parts)


def create_table_sql(d: Dialect, t: Table) -> str:
    """CREATE TABLE with columns, primary key, unique and CHECK constraints, table options
    and partitioning. Indexes, foreign keys, triggers and comments are their own steps."""
    where = f"table {qualified(t.schema_, t.name)}"
    items = [column_sql(d, t, c) for c in t.columns]
    if t.primary_key is not None:
        items.append(f"PRIMARY KEY ({', '.join(d.quote(c) for c in t.primary_key.columns)})")
    for u in t.unique_constraints:
        name = f"CONSTRAINT {d.quote(u.name)} " if u.name else ""
        items.append(f"{name}UNIQUE ({', '.join(d.quote(c) for c in u.columns)})")
    for c in t.check_constraints:
        name = f"CONSTRAINT {d.quote(c.name)} " if c.name else ""
        items.append(f"{name}CHECK ({c.expression})")
    sql = f"CREATE TABLE {d.qname(t.schema_, t.name)} (\n  " + ",\n  ".join(items) + "\n)"
    options = []
    if t.engine:
        options.append(f"ENGINE={word(t.engine, 'engine', where)}")
    if t.collation:
        options.append(f"DEFAULT COLLATE={word(t.collation, 'collation', where)}")
    for option in t.options:
        key, _, value = option.partition("=")
        value_sql = value if _WORD.match(value) else d.literal(value)
        options.append(f"{word(key, 'table option', where).upper()}={value_sql}")
    if options:
        sql += " " + " ".join(options)
    if t.partition_by is not None:
        sql += f" PARTITION BY {t.partition_by}"  # as introspection writes it: SQL
    return sql


# Index options written after the key list: the server's own words for a hidden index
# (MySQL 8 INVISIBLE, MariaDB 10.6+ IGNORED), as introspection recorded it.
_INDEX_FLAGS = {"invisible": "INVISIBLE", "ignored": "IGNORED"}
_INDEX_KINDS = {"fulltext": "FULLTEXT ", "spatial": "SPATIAL "}


def _index_parts(d: Dialect, ix: Index, where: str) -> tuple[str, str, str]:
    """(kind words, key list, what follows the keys) of an index."""
    keys = []
    for k in ix.keys:
        text = d.quote(k.column) if k.column is not None else f"({k.expression})"
        if k.length is not None:
            text += f"({int(k.length)})"
        if k.descending:
            text += " DESC"
        keys.append(text)
    method = (ix.method or "btree").lower()
    kind = _INDEX_KINDS.get(method, "UNIQUE " if ix.unique else "")
    suffix = ""
    if method not in _INDEX_KINDS and method != "btree":
        suffix += f" USING {word(method, 'index method', where).upper()}"
    if ix.comment:
        suffix += f" COMMENT {d.literal(ix.comment)}"
    for option in ix.options:
        flag = _INDEX_FLAGS.get(option.lower())
        if flag is None:
            raise BadInput(f"{where}: index option {option!r} is not one MySQL has "
                           f"({', '.join(_INDEX_FLAGS)})")
        suffix += f" {flag}"
    return kind, ", ".join(keys), suffix


# The flag that shows a hidden index again, by the word that hid it.
_INDEX_UNFLAGS = {"invisible": "VISIBLE", "ignored": "NOT IGNORED"}


def add_index_clause(d: Dialect, relation: str, ix: Index, schema: str | None = None,
                     ) -> str:
    """``ADD [UNIQUE|FULLTEXT|SPATIAL] INDEX ...``: the index as a clause of an ALTER
    TABLE, which (unlike CREATE INDEX) takes the ALGORITHM / LOCK alter_facts decides."""
    kind, keys, suffix = _index_parts(d, ix, f"index {ix.name} on "
                                      f"{qualified(schema, relation)}")
    return f"ADD {kind}INDEX {d.quote(ix.name)} ({keys}){suffix}"


def index_sql(d: Dialect, relation: str, ix: Index, schema: str | None = None,
              replaces: Index | None = None) -> list[str]:
    """CREATE [UNIQUE|FULLTEXT|SPATIAL] INDEX with prefix lengths, DESC keys, functional
    key parts, USING HASH, COMMENT and the hidden flag; ``replaces``: an index dropped in
    the same ALTER TABLE (one that differs only in being hidden is flagged in place)."""
    kind, keys, suffix = _index_parts(d, ix, f"index {ix.name} on "
                                      f"{qualified(schema, relation)}")
    table = d.qname(schema, relation)
    if replaces is None:
        return [f"CREATE {kind}INDEX {d.quote(ix.name)} ON {table} ({keys}){suffix}"]
    hidden = [o.lower() for o in ix.options if o.lower() in _INDEX_FLAGS]
    shown = ix.model_copy(update={"options": [o for o in ix.options
                                              if o.lower() not in _INDEX_FLAGS]})
    out = []
    if replaces.model_copy(update={"options": shown.options}) != shown:
        kind, keys, suffix = _index_parts(d, shown, f"index {ix.name} on "
                                          f"{qualified(schema, relation)}")
        out.append(f"ALTER TABLE {table} DROP INDEX {d.quote(replaces.name)}, "
                   f"ADD {kind}INDEX {d.quote(ix.name)} ({keys}){suffix}")
        was_hidden: list[str] = []
    else:
        was_hidden = [o.lower() for o in replaces.options if o.lower() in _INDEX_FLAGS]
    # (MariaDB leaves an index added with IGNORED in the same ALTER as its drop shown)
    if hidden and hidden != was_hidden:
        out.append(f"ALTER TABLE {table} ALTER INDEX {d.quote(ix.name)} "
                   f"{_INDEX_FLAGS[hidden[0]]}")
    elif was_hidden and not hidden:
        out.append(f"ALTER TABLE {table} ALTER INDEX {d.quote(ix.name)} "
                   f"{_INDEX_UNFLAGS[was_hidden[0]]}")
    return out
