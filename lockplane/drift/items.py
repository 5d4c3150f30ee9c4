"""Drift in words: the planner's changes, read as differences between two schemas.

``diff(reference, subject)`` lists the changes that would turn ``reference`` (the desired
schema, or another environment) into ``subject`` (the database being checked). Read the
other way round they are exactly what is extra, missing or different in the subject:
a CreateTable is a table the subject has and the reference does not, a DropIndex an
index the subject lacks, an AlterColumn a column whose definition differs. No second
differ: every object kind the planner knows is covered by the planner's own diff.

Each difference becomes a :class:`DriftItem` with a stable object key (what ``--ignore``
patterns match), an object type, a kind (extra | missing | different) and its words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..changes.base import Change

Kind = Literal["extra", "missing", "different"]
KINDS: tuple[Kind, ...] = ("extra", "missing", "different")


@dataclass(frozen=True)
class Wording:
    """Who is who in the sentences.

    ``subject``: the environment checked ("prod"); ``here``: how a value of the subject is
    placed ("the database", or the environment's name when comparing two environments);
    ``reference``: what it is compared with ("the desired schema", or "staging").
    """

    subject: str
    reference: str = "the desired schema"
    here: str = "the database"

    @classmethod
    def against_environment(cls, subject: str, other: str) -> Wording:
        return cls(subject=subject, reference=other, here=subject)


@dataclass(frozen=True)
class DriftItem:
    """One difference between a database and its reference.

    ``object``: the object's key, schema-qualified (``public.users``,
    ``public.users.email``, ``public.users.users_email_idx``, ``public.f(integer)``);
    grants and comments carry the key of the object they are on. ``type``: column,
    table, index, constraint, foreign_key, function, grant, comment, policy, ...
    ``kind``: extra (in the database only), missing (in the reference only) or
    different. ``detail``: the words without the subject ("extra column
    users.emergency_fix, not in the desired schema"); ``message``: the whole sentence
    ("prod has extra column users.emergency_fix, not in the desired schema").
    ``table``: the key of the table the object belongs to, if any.
    """

    object: str
    type: str
    kind: Kind
    detail: str
    message: str
    table: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"object": self.object, "type": self.type, "kind": self.kind,
                "detail": self.detail, "message": self.message, "table": self.table}

    def sort_key(self) -> tuple[str, str, str, str]:
        return (self.object, self.type, self.kind, self.detail)


# --------------------------------------------------------------------------- internals
@dataclass
class _Raw:
    """A difference before words: what it is about, and the two sides' objects."""

    type: str
    key: str
    label: str  # "column users.email", "index users_email_idx on users"
    kind: Kind
    table: str | None = None
    reference: Any = None  # the object as the reference has it
    subject: Any = None  # the object as the subject has it
    aspects: tuple[tuple[str, Any, Any], ...] = ()  # (aspect, subject's, reference's)
    note: str | None = None  # words for a change no field comparison explains


def _key(*parts: str | None) -> str:
    return ".".join(p for p in parts if p)


class _Names:
    """Display names: the dialect's default schema left out ("users", not
    "public.users"); keys always keep it."""

    def __init__(self, dialect: str) -> None:
        from ..dialects import get_dialect

        self.default = get_dialect(dialect).default_schema if dialect else ""

    def unqualify(self, text: str) -> str:
        """Types in an argument list without the default schema (``o orders``)."""
        if not self.default:
            return text
        return re.sub(rf'(?<![\w"]){re.escape(self.default)}\.', "", text)

    def show(self, schema: str | None, *rest: str) -> str:
        if schema and schema != self.default:
            return _key(schema, *rest)
        return _key(*rest)


def _table_of(change: Change) -> tuple[str, str] | None:
    table = getattr(change, "table", None)
    if table is not None and hasattr(table, "columns"):
        return (table.schema_ or "", table.name)
    if isinstance(getattr(change, "schema", None), str):
        name = getattr(change, "table", None) or getattr(change, "relation", None)
        if isinstance(name, str):
            return (change.schema, name)  # type: ignore[attr-defined]
    return change.table_key()


_CONSTRAINT_WORDS = {"PrimaryKey": "primary key", "UniqueConstraint": "unique constraint",
                     "CheckConstraint": "check constraint",
                     "ExclusionConstraint": "exclusion constraint"}
_TABLE_PARTS = {  # class -> (field holding the object, type)
    "CreatePolicy": ("policy", "policy"), "DropPolicy": ("policy", "policy"),
    "CreateTrigger": ("trigger", "trigger"), "DropTrigger": ("trigger", "trigger"),
    "AlterTrigger": ("after", "trigger"), "CreateRule": ("rule", "rule"),
    "DropRule": ("rule", "rule"), "AlterRule": ("after", "rule"),
    "CreateStatistics": ("statistics", "statistics"),
    "DropStatistics": ("statistics", "statistics"),
}
_SCHEMA_OBJECTS = {  # field holding the object -> (type, words)
    "sequence": ("sequence", "sequence"), "enum": ("type", "enum type"),
    "domain": ("type", "domain"), "type": ("type", "composite type"),
    "range_type": ("type", "range type"), "collation": ("collation", "collation"),
    "aggregate": ("aggregate", "aggregate"), "extension": ("extension", "extension"),
}


def _side(change: Change, kind: Kind, obj: Any) -> tuple[Any, Any]:
    """(reference's, subject's) object for a one-sided change."""
    return (None, obj) if kind == "extra" else (obj, None)


def _one_sided(change: Change) -> Kind | None:
    k = change.kind
    if k.startswith(("create_", "add_")):
        return "extra"
    if k.startswith("drop_"):
        return "missing"
    return None


def _raw(change: Change, names: _Names) -> list[_Raw]:  # noqa: PLR0911, PLR0912
    """What one change says about the subject."""
    from ..changes.set_comment import SetComment

    cls = type(change).__name__
    tkey = _table_of(change)
    table_key = _key(*tkey) if tkey else None
    table_show = names.show(*tkey) if tkey else None
    kind = _one_sided(change)
    c: Any = change

    if cls == "RebuildTable":  # SQLite folds a table's differences into one rebuild
        return _rebuilt(c, names)
    if cls in ("CreateTable", "DropTable"):
        t = c.table
        ref, sub = _side(change, kind, t)  # type: ignore[arg-type]
        return [_Raw("table", table_key or "", f"table {table_show}", kind,  # type: ignore[arg-type]
                     None, ref, sub)]
    if cls in ("AddColumn", "DropColumn"):
        col = c.column
        ref, sub = _side(change, kind, col)  # type: ignore[arg-type]
        return [_Raw("column", _key(table_key, col.name), f"column {table_show}.{col.name}",
                     kind, table_key, ref, sub)]  # type: ignore[arg-type]
    if cls == "AlterColumn":
        before, after = c.before, c.after
        aspects = [(f, getattr(after, f), getattr(before, f))
                   for f in type(after).model_fields
                   if f not in ("name", "comment", "renamed_from", "fill_with", "is_primary_key")
                   and getattr(after, f) != getattr(before, f)]
        return [_Raw("column", _key(table_key, after.name), f"{table_show}.{after.name}",
                     "different", table_key, before, after, tuple(aspects))]
    if cls in ("AddConstraint", "DropConstraint"):
        con = c.constraint
        words = _CONSTRAINT_WORDS.get(type(con).__name__, "constraint")
        name = con.name or "(unnamed)"
        label = (f"primary key of {table_show}" if words == "primary key"
                 else f"{words} {name} on {table_show}")
        ref, sub = _side(change, kind, con)  # type: ignore[arg-type]
        key = _key(table_key, "primary key" if words == "primary key" else name)
        return [_Raw("constraint", key, label, kind, table_key, ref, sub)]  # type: ignore[arg-type]
    if cls in ("AddForeignKey", "DropForeignKey"):
        if cls == "DropForeignKey" and c.table_dropped:
            return []  # part of the missing table
        if cls == "AddForeignKey" and c.new_table:
            return []  # part of the extra table
        fk = c.fk
        name = fk.name or "(unnamed)"
        ref, sub = _side(change, kind, fk)  # type: ignore[arg-type]
        return [_Raw("foreign_key", _key(table_key, name), f"foreign key {name} on {table_show}",
                     kind, table_key, ref, sub)]  # type: ignore[arg-type]
    if cls in ("CreateIndex", "DropIndex"):
        if getattr(c, "new_relation", False):
            return []
        ix = c.index
        ref, sub = _side(change, kind, ix)  # type: ignore[arg-type]
        return [_Raw("index", _key(table_key, ix.name), f"index {ix.name} on {table_show}",
                     kind, table_key, ref, sub)]  # type: ignore[arg-type]
    part = _TABLE_PARTS.get(cls)
    if part is not None:
        field, typ = part
        if getattr(change, "new_table", False) or table_key is None:
            return []
        before = getattr(change, "before", None)
        obj = getattr(change, "after", None) if cls.startswith("Alter") else getattr(change, field)
        words = f"{typ} {obj.name} on {table_show}"
        key = _key(table_key, obj.name)
        if kind is None or (kind == "extra" and before is not None):
            return [_Raw(typ, key, words, "different", table_key, before, obj)]
        ref, sub = _side(change, kind, obj)
        return [_Raw(typ, key, words, kind, table_key, ref, sub)]
    if cls in ("Grant", "Revoke"):
        from ..changes.grant import object_label

        g = c.grant
        on = object_label(c.object_kind, tuple(c.name_parts), c.signature)
        on = _strip_default_schema(on, names)
        key = _key(*c.name_parts) + (f"({c.signature})" if c.signature is not None else "")
        option = " WITH GRANT OPTION" if g.with_grant_option else ""
        label = f"grant {g.privilege}{option} on {on} to {g.grantee}"
        if cls == "Grant":
            if c.had is not None:
                return [_Raw("grant", key, f"grant {g.privilege} on {on} to {g.grantee}",
                             "different", table_key, c.had, g,
                             (("grant option", "with grant option", "without"),))]
            return [_Raw("grant", key, label, "extra", table_key, None, g)]
        if c.keep is not None:
            return [_Raw("grant", key, f"grant {g.privilege} on {on} to {g.grantee}",
                         "different", table_key, g, c.keep,
                         (("grant option", "without", "with grant option"),))]
        return [_Raw("grant", key, label, "missing", table_key, g, None)]
    if cls == "AlterDefaultPrivileges":
        g = c.grant
        where = f" in schema {c.schema}" if c.schema else ""
        label = (f"default privilege {g.privilege} on new {c.objects} of role {c.role}{where} "
                 f"for {g.grantee}")
        key = _key(c.role, c.schema, c.objects)
        if c.option_only:
            return [_Raw("default_privileges", key, label, "different", None, None, None,
                         (("grant option",
                           "without" if c.revoke else "with grant option",
                           "with grant option" if c.revoke else "without"),))]
        # revoke: turning the reference into the subject takes it away, so the subject
        # lacks it.
        return [_Raw("default_privileges", key, label, "missing" if c.revoke else "extra")]
    if isinstance(change, SetComment):
        parts = tuple(change.name_parts)
        if change.on_table is not None:
            target_key = _key(*change.on_table, *parts)
            shown = (f"{change.object_kind.lower()} {parts[-1]} on "
                     f"{names.show(*change.on_table)}")
        else:
            target_key = _key(*parts)
            shown = (f"{change.object_kind.lower()} "
                     f"{names.show(parts[0], *parts[1:]) if len(parts) > 1 else _key(*parts)}")
        if change.signature is not None:
            target_key += f"({change.signature})"
            shown += f"({change.signature})"
        table = _key(*parts[:2]) if change.object_kind in ("TABLE", "COLUMN") else (
            _key(*change.on_table) if change.on_table else None)
        return [_Raw("comment", target_key, f"comment on {shown}", "different", table,
                     change.before, change.after,
                     (("", _said(change.after), _said(change.before)),))]
    if cls == "AlterRls":
        aspects = []
        if c.enabled_before != c.enabled_after:
            aspects.append(("", _onoff(c.enabled_after), _onoff(c.enabled_before)))
        if c.forced_before != c.forced_after:
            aspects.append(("forcing", _onoff(c.forced_after), _onoff(c.forced_before)))
        if getattr(c, "new_table", False):
            return []
        return [_Raw("row_level_security", table_key or "",
                     f"row-level security on {table_show}", "different", table_key,
                     aspects=tuple(aspects))]
    if cls in ("CreateFunction", "DropFunction"):
        fn = c.function
        sig = f"{fn.name}({fn.identity_arguments})"
        label = f"{fn.kind} {names.show(fn.schema_, names.unqualify(sig))}"
        key = _key(fn.schema_, sig)
        before = getattr(change, "before", None)
        if kind == "extra" and before is not None:
            return [_Raw("function", key, label, "different", None, before, fn)]
        ref, sub = _side(change, kind, fn)  # type: ignore[arg-type]
        return [_Raw("function", key, label, kind, None, ref, sub)]  # type: ignore[arg-type]
    if cls in ("CreateView", "DropView", "ReplaceView"):
        v = c.after if cls == "ReplaceView" else c.view
        words = "materialized view" if v.materialized else "view"
        label = f"{words} {names.show(v.schema_, v.name)}"
        key = _key(v.schema_, v.name)
        if cls == "ReplaceView":
            return [_Raw("view", key, label, "different", None, c.before, c.after)]
        ref, sub = _side(change, kind, v)  # type: ignore[arg-type]
        return [_Raw("view", key, label, kind, None, ref, sub)]  # type: ignore[arg-type]
    if cls in ("CreateSchema", "DropSchema"):
        ns = c.namespace
        ref, sub = _side(change, kind, ns)  # type: ignore[arg-type]
        return [_Raw("schema", ns.name, f"schema {ns.name}", kind, None, ref, sub)]  # type: ignore[arg-type]
    if cls in ("CreatePublication", "DropPublication", "CreateEventTrigger",
               "DropEventTrigger"):
        obj = getattr(change, "publication", None) or getattr(change, "trigger", None)
        typ = "publication" if "Publication" in cls else "event_trigger"
        ref, sub = _side(change, kind, obj)  # type: ignore[arg-type]
        return [_Raw(typ, obj.name, f"{typ.replace('_', ' ')} {obj.name}", kind,  # type: ignore[arg-type]
                     None, ref, sub)]
    # Schema-level objects with a name and schema (sequences, types, extensions ...).
    for field, (typ, words) in _SCHEMA_OBJECTS.items():
        obj = getattr(change, field, None)
        if obj is not None and hasattr(obj, "name"):
            schema = getattr(obj, "schema_", None)
            label = f"{words} {names.show(schema, obj.name)}"
            key = _key(schema, obj.name)
            before = getattr(change, "before", None)
            if kind == "extra" and before is not None:
                return [_Raw(typ, key, label, "different", None, before, obj)]
            if kind is None:
                break
            ref, sub = _side(change, kind, obj)
            return [_Raw(typ, key, label, kind, None, ref, sub)]
    before, after = getattr(change, "before", None), getattr(change, "after", None)
    if kind is None and hasattr(after, "name") and hasattr(before, "name"):
        # Alter* of a schema-level object (sequence, domain, composite, enum, extension,
        # publication, event trigger).
        typ = re.sub(r"^(Alter|Recreate)", "", cls)
        typ = re.sub(r"(?<!^)(?=[A-Z])", "_", typ).lower()
        schema = getattr(after, "schema_", None)
        label = f"{typ.replace('_', ' ')} {names.show(schema, after.name)}"
        return [_Raw(typ, _key(schema, after.name), label, "different", None, before, after)]
    # Anything else: the planner's own description of the step.
    what = change.describe()
    return [_Raw(change.kind, table_key or change.kind, what, kind or "different", table_key,
                 note=what)]


def _rebuilt(c: Any, names: _Names) -> list[_Raw]:
    """SQLite's rebuild of a table, told column by column as PostgreSQL's diff sees it
    (only to find the words: no SQL is made)."""
    from ..dialects import get_dialect
    from ..diff import diff_table

    out: list[_Raw] = []
    for change in diff_table(c.before, c.after, get_dialect("postgres")):
        if type(change).__name__ != "RebuildTable":
            out += _raw(change, names)
    if not out:
        t = c.after
        out.append(_Raw("table", _key(t.schema_, t.name),
                        f"table {names.show(t.schema_, t.name)}", "different",
                        _key(t.schema_, t.name), c.before, c.after))
    return out


def _strip_default_schema(label: str, names: _Names) -> str:
    if names.default:
        return label.replace(f" {names.default}.", " ", 1)
    return label


def _onoff(value: bool) -> str:
    return "enabled" if value else "disabled"


def _said(comment: str | None) -> str | None:
    return None if comment is None else repr(comment)


def _pair(raws: list[_Raw]) -> list[_Raw]:
    """An object dropped and created again under the same key (a changed constraint,
    index, policy or partitioning) is one object that differs."""
    out: list[_Raw] = []
    extras: dict[tuple[str, str], _Raw] = {}
    missing: dict[tuple[str, str], _Raw] = {}
    for r in raws:
        slot = extras if r.kind == "extra" else missing if r.kind == "missing" else None
        if slot is not None and r.type != "grant" and (r.type, r.key) not in slot:
            slot[(r.type, r.key)] = r
        else:
            out.append(r)
    for k, r in extras.items():
        m = missing.pop(k, None)
        if m is None:
            out.append(r)
        else:
            out.append(_Raw(r.type, r.key, r.label, "different", r.table, m.reference,
                            r.subject))
    out += missing.values()
    return out


# -------------------------------------------------------------------------------- words
_ASPECT_WORDS = {"type": "type", "nullable": "nullability", "default": "default",
                 "identity": "identity", "generated": "generated expression",
                 "collation": "collation", "definition": "definition",
                 "using": "USING expression", "with_check": "WITH CHECK expression"}


def _value(field: str, v: Any) -> str:
    if field == "nullable":
        return "NULL allowed" if v else "NOT NULL"
    if v is None or v == [] or v == "":
        return "none"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, list):
        return ", ".join(_value(field, x) for x in v) or "none"
    if hasattr(v, "model_dump"):
        dumped = v.model_dump(exclude_defaults=True, by_alias=True)
        return ", ".join(f"{k}={x}" for k, x in dumped.items()) or "none"
    return str(v)


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _contrast(a: str, b: str, width: int = 60) -> tuple[str, str]:
    """Two long values shown around where they first differ."""
    a, b = _squash(a), _squash(b)
    if len(a) <= width and len(b) <= width:
        return a, b
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    start = max(0, i - 30)
    if start:  # from a word's start
        space = a.find(" ", start, i)
        start = space + 1 if space != -1 else start

    def cut(s: str) -> str:
        piece = s[start:start + width]
        return ("..." if start else "") + piece + ("..." if start + width < len(s) else "")

    return cut(a), cut(b)


def _field_aspects(ref: Any, sub: Any) -> list[tuple[str, Any, Any]]:
    if ref is None or sub is None or not hasattr(type(sub), "model_fields"):
        return []
    if type(ref) is not type(sub):
        return [("", _value("", sub), _value("", ref))]
    skip = {"renamed_from", "fill_with", "is_primary_key", "values_renamed_from"}
    fields = [f for f in type(sub).model_fields if f not in skip]
    aspects = [(f, getattr(sub, f), getattr(ref, f)) for f in fields
               if getattr(sub, f) != getattr(ref, f)]
    # A name the reference does not give (original format) is not a difference.
    return [a for a in aspects if not (a[0] == "name" and a[2] is None)]


def _sentence(raw: _Raw, w: Wording) -> tuple[str, str]:
    """(detail, message)."""
    if raw.kind == "extra":
        detail = f"extra {raw.label}, not in {w.reference}"
        return detail, f"{w.subject} has {detail}"
    if raw.kind == "missing":
        detail = f"missing {raw.label} that {w.reference} has"
        return detail, f"{w.subject} is {detail}"
    aspects = list(raw.aspects) or _field_aspects(raw.reference, raw.subject)
    if not aspects:
        why = f" ({raw.note})" if raw.note else ""
        detail = f"{raw.label} differs{why}"
        return detail, f"{w.subject}'s {detail}"
    parts = []
    for field, mine, theirs in aspects:
        a, b = _contrast(_value(field, mine), _value(field, theirs))
        name = _ASPECT_WORDS.get(field, field.replace("_", " "))
        parts.append((name, f"{a} in {w.here}, {b} in {w.reference}"))
    if len(parts) == 1:
        name, values = parts[0]
        detail = f"{raw.label}{' ' + name if name else ''} differs: {values}"
    else:
        detail = f"{raw.label} differs: " + "; ".join(
            f"{name} {values}" if name else values for name, values in parts)
    return detail, f"{w.subject}'s {detail}"


def describe_changes(changes: Iterable[Change], wording: Wording, dialect: str,
                     ) -> list[DriftItem]:
    """The drift items that ``diff(reference, subject)`` describes, sorted by object.

    ``dialect``: of the subject (its default schema is left out of the words).
    """
    names = _Names(dialect)
    raws: list[_Raw] = []
    for change in changes:
        raws += _raw(change, names)
    items = []
    for raw in _pair(raws):
        if raw.kind == "different" and not raw.aspects and raw.note is None and (
                raw.reference is not None and raw.subject is not None
                and not _field_aspects(raw.reference, raw.subject)):
            continue  # nothing left to tell (e.g. only a declared-rename hint)
        detail, message = _sentence(raw, wording)
        items.append(DriftItem(object=raw.key, type=raw.type, kind=raw.kind, detail=detail,
                               message=message, table=raw.table))
    return sorted(dict.fromkeys(items), key=DriftItem.sort_key)


def sorted_items(items: Sequence[DriftItem]) -> list[DriftItem]:
    return sorted(items, key=DriftItem.sort_key)
