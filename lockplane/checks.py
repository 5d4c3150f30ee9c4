"""Static checks of a declared schema (``plan --check-schema``, ``validate``).

Schemas loaded through a scratch database are already consistent (the server refused
anything else); these checks catch mistakes in hand-written JSON before any database
is involved, and flag designs that hurt in production.
"""

from __future__ import annotations

from dataclasses import dataclass

from .dialects import Dialect, get_dialect
from .errors import BadInput
from .model import Schema, qualified


@dataclass(frozen=True)
class Finding:
    level: str  # "error" | "warning"
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.level}: {self.where}: {self.message}"


def _dialect(schema: Schema) -> Dialect | None:
    try:
        return get_dialect(schema.dialect) if schema.dialect else None
    except BadInput:  # a dialect this version does not know: no dialect advice
        return None


def check_schema(schema: Schema) -> list[Finding]:
    out: list[Finding] = []
    d = _dialect(schema)
    pk_costs = d.missing_primary_key_costs if d else None
    fk_index = d.foreign_keys_need_index if d else False
    tables = {(t.schema_, t.name): t for t in schema.tables}
    seen: set[tuple[str | None, str]] = set()
    for t in schema.tables:
        where = qualified(t.schema_, t.name)
        if (t.schema_, t.name) in seen:
            out.append(Finding("error", where, "table declared twice"))
        seen.add((t.schema_, t.name))
        names = [c.name for c in t.columns]
        dupes = {n for n in names if names.count(n) > 1}
        for n in sorted(dupes):
            out.append(Finding("error", where, f"column {n!r} declared twice"))
        cols = set(names)

        def missing(kind: str, refs: list[str], _cols: set[str] = cols,
                    _where: str = where) -> None:
            for r in refs:
                if r not in _cols:
                    out.append(Finding("error", _where, f"{kind} names unknown column {r!r}"))

        if t.primary_key:
            missing("primary key", t.primary_key.columns)
        elif pk_costs:
            out.append(Finding("warning", where, f"no primary key: {pk_costs}"))
        for u in t.unique_constraints:
            missing(f"unique constraint {u.name or ''}".strip(), u.columns)
        for ix in t.indexes:
            missing(f"index {ix.name}", [k.column for k in ix.keys if k.column] + ix.include)
        for fk in t.foreign_keys:
            label = f"foreign key {fk.name or ''}".strip()
            missing(label, fk.columns)
            if len(fk.columns) != len(fk.referenced_columns):
                out.append(Finding("error", where, f"{label} has {len(fk.columns)} column(s) "
                                   f"but references {len(fk.referenced_columns)}"))
            target = tables.get((fk.referenced_schema, fk.referenced_table))
            if target is None:
                out.append(Finding("error", where, f"{label} references unknown table "
                                   f"{qualified(fk.referenced_schema, fk.referenced_table)}"))
                continue
            tcols = {c.name for c in target.columns}
            for r in fk.referenced_columns:
                if r not in tcols:
                    out.append(Finding("error", where, f"{label} references unknown column "
                                       f"{target.name}.{r}"))
            keys = ([target.primary_key.columns] if target.primary_key else []) + \
                [u.columns for u in target.unique_constraints] + \
                [[k.column for k in ix.keys] for ix in target.indexes
                 if ix.unique and ix.where is None]
            if sorted(fk.referenced_columns) not in [sorted(k) for k in keys if None not in k]:
                out.append(Finding("error", where, f"{label} must reference a primary key or "
                                   f"unique columns of {target.name}"))
            if fk_index and not any(
                    [k.column for k in ix.keys[:len(fk.columns)]] == fk.columns
                    for ix in t.indexes) and not (
                    t.primary_key and t.primary_key.columns[:len(fk.columns)] == fk.columns):
                out.append(Finding("warning", where, f"{label} has no index on "
                                   f"({', '.join(fk.columns)}): deletes on {target.name} "
                                   "scan this table"))
    for pub in schema.publications:
        where = f"publication {pub.name}"
        for pt in pub.tables:
            target = tables.get((pt.schema_, pt.name))
            if target is None:
                out.append(Finding("error", where, "names unknown table "
                                   f"{qualified(pt.schema_, pt.name)}"))
                continue
            tcols = {c.name for c in target.columns}
            for c in pt.columns:
                if c not in tcols:
                    out.append(Finding("error", where, f"column list names unknown column "
                                       f"{target.name}.{c}"))
    from .changes.publication_identity import identity_problems, operations_text

    for (pub, _), p in sorted(identity_problems(schema).items()):
        out.append(Finding("warning", f"publication {pub}", (
            f"PostgreSQL refuses {operations_text(p.operations)} on {p.label}, which it "
            f"publishes: {p.reason} (add a primary key or set REPLICA IDENTITY)")))
    return out
