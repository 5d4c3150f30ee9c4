"""Helpers shared by the PostgreSQL object change kinds (not a change kind itself).

Names in the model are raw (unquoted) except where the server hands us SQL-ish text:
column types as format_type prints them and ``Sequence.owned_by``. Those are split here
into identifier parts so that SQL is always rebuilt through ``d.quote``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..errors import BadInput
from ..model import Grant, Schema, Table

if TYPE_CHECKING:
    from ..dialects.base import Dialect

# The tokens of PostgreSQL's lexer (pglast.parser.scan) that are never a name: literals,
# parameters and operators (single characters are ASCII_<code>).
NOT_NAME_TOKENS = frozenset({"SCONST", "USCONST", "BCONST", "XCONST", "ICONST", "FCONST",
                             "PARAM", "Op", "TYPECAST", "DOT_DOT", "COLON_EQUALS",
                             "EQUALS_GREATER", "LESS_EQUALS", "GREATER_EQUALS",
                             "NOT_EQUALS"})

def dollar_quoted(body: str) -> str:
    """``body`` between dollar quotes whose tag it does not contain (a DO block's)."""
    tag = "$lockplane$"
    while tag in body:
        tag = tag[:-1] + "_$"
    return f"{tag} {body} {tag}"


# Privilege keywords GRANT accepts; anything else in a model is refused, never pasted.
PRIVILEGES = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES",
                        "TRIGGER", "EXECUTE", "USAGE", "CREATE", "TEMPORARY", "TEMP",
                        "CONNECT", "MAINTAIN"})
# What GRANT ... ON <kind> accepts for the objects the model carries grants for
# (COLUMN: name parts schema, table, column -> GRANT SELECT ("c") ON TABLE "s"."t").
GRANT_OBJECT_KINDS = frozenset({"TABLE", "SEQUENCE", "FUNCTION", "PROCEDURE", "SCHEMA",
                                "COLUMN", "TYPE"})

_UNQUOTED = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_OPTION_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*$")


def split_identifiers(text: str) -> list[str] | None:
    """``a.b`` / ``"A"."b c"`` -> ``['a', 'b']`` / ``['A', 'b c']``; None if not a name.

    Unquoted parts are folded to lower case, as the server does.
    """
    parts: list[str] = []
    i, n = 0, len(text)
    while True:
        if i < n and text[i] == '"':
            j, buf = i + 1, []
            while True:
                if j >= n:
                    return None
                if text[j] == '"':
                    if j + 1 < n and text[j + 1] == '"':
                        buf.append('"')
                        j += 2
                        continue
                    break
                buf.append(text[j])
                j += 1
            parts.append("".join(buf))
            i = j + 1
        else:
            m = _UNQUOTED.match(text, i)
            if not m:
                return None
            parts.append(m.group(0).lower())
            i = m.end()
        if i == n:
            return parts
        if text[i] != ".":
            return None
        i += 1


def type_ref(type_text: str, default_schema: str = "public") -> tuple[str, str, int] | None:
    """(schema, name, array dimensions) of a user type as format_type names it.

    Built-in types (``integer``, ``character varying(20)``) give None or an unqualified
    pg_catalog name that matches no user type.
    """
    text, dims = type_text.strip(), 0
    while text.endswith("[]"):
        text, dims = text[:-2].rstrip(), dims + 1
    parts = split_identifiers(text)
    if not parts or len(parts) > 2:
        return None
    if len(parts) == 1:
        return (default_schema, parts[0], dims)
    return (parts[0], parts[1], dims)


def owned_by_parts(owned_by: str, default_schema: str) -> tuple[str, str, str]:
    """``"s"."t"."c"`` (or ``t.c``) -> (schema, table, column)."""
    parts = split_identifiers(owned_by)
    if parts is None or len(parts) not in (2, 3):
        raise BadInput(f"sequence owned_by {owned_by!r} is not table.column or "
                       "schema.table.column")
    if len(parts) == 2:
        return (default_schema, parts[0], parts[1])
    return (parts[0], parts[1], parts[2])


def grantee_sql(d: Dialect, role: str) -> str:
    # "public" cannot be a role name: it always means the PUBLIC pseudo-role.
    return "PUBLIC" if role.lower() == "public" else d.quote(role)


def privilege_sql(privilege: str) -> str:
    p = privilege.strip().upper()
    if p not in PRIVILEGES:
        raise BadInput(f"unknown privilege {privilege!r}")
    return p


def object_sql(d: Dialect, object_kind: str, name_parts: tuple[str, ...],
               signature: str | None = None) -> str:
    """``TABLE "s"."t"``, ``FUNCTION "s"."f"(integer)``, ``SCHEMA "s"``."""
    if object_kind not in GRANT_OBJECT_KINDS:
        raise BadInput(f"cannot grant on {object_kind!r}")
    if object_kind == "COLUMN":
        return object_sql(d, "TABLE", name_parts[:-1])
    name = ".".join(d.quote(p) for p in name_parts)
    if signature is not None:
        name += f"({signature})"
    return f"{object_kind} {name}"


def privilege_on_sql(d: Dialect, object_kind: str, name_parts: tuple[str, ...],
                     privilege: str, signature: str | None = None) -> str:
    """``SELECT ON TABLE "s"."t"`` / ``SELECT ("c") ON TABLE "s"."t"``."""
    cols = f" ({d.quote(name_parts[-1])})" if object_kind == "COLUMN" else ""
    return (f"{privilege_sql(privilege)}{cols} ON "
            f"{object_sql(d, object_kind, name_parts, signature)}")


def grant_sql(d: Dialect, object_kind: str, name_parts: tuple[str, ...], g: Grant,
              signature: str | None = None) -> str:
    option = " WITH GRANT OPTION" if g.with_grant_option else ""
    return (f"GRANT {privilege_on_sql(d, object_kind, name_parts, g.privilege, signature)} "
            f"TO {grantee_sql(d, g.grantee)}{option}")


def grants_sql(d: Dialect, object_kind: str, name_parts: tuple[str, ...],
               grants: Iterable[Grant], signature: str | None = None) -> list[str]:
    return [grant_sql(d, object_kind, name_parts, g, signature) for g in grants]


def comment_sql(d: Dialect, object_kind: str, name_parts: tuple[str, ...],
                comment: str | None, *, signature: str | None = None,
                on_table: tuple[str, ...] | None = None,
                on_kind: str | None = None) -> list[str]:
    """COMMENT ON for a create step that also sets the object's comment (none if unset)."""
    if comment is None:
        return []
    from .set_comment import SetComment

    return SetComment(object_kind, name_parts, None, comment, on_table, signature,
                      on_kind).sql_postgres(d)


def reloption_sql(d: Dialect, option: str) -> str:
    """``key=value`` from pg_class.reloptions -> ``key = 'value'`` (the key is checked)."""
    key, sep, value = option.partition("=")
    if not sep or not _OPTION_KEY.match(key):
        raise BadInput(f"bad relation option {option!r}")
    return f"{key} = {d.literal(value)}"


def reloption_key(option: str) -> str:
    key = option.partition("=")[0]
    if not _OPTION_KEY.match(key):
        raise BadInput(f"bad relation option {option!r}")
    return key


def topo_order(nodes: list[tuple[str, str]], deps: dict[tuple[str, str], set[tuple[str, str]]],
               ) -> list[tuple[str, str]]:
    """Nodes with each after everything it depends on (stable; a cycle keeps input order)."""
    out: list[tuple[str, str]] = []
    state: dict[tuple[str, str], int] = {}  # 1 visiting, 2 done

    def visit(n: tuple[str, str]) -> None:
        if state.get(n) == 2 or state.get(n) == 1:
            return
        state[n] = 1
        for m in sorted(deps.get(n, ())):
            if m in deps or m in node_set:
                visit(m)
        state[n] = 2
        out.append(n)

    node_set = set(nodes)
    for n in nodes:
        visit(n)
    return [n for n in out if n in node_set]


def user_namespace(name: str | None) -> bool:
    """Whether a schema name is one a plan may create or drop."""
    if not name or name in ("public", "information_schema", "lockplane"):
        return False
    return not name.startswith("pg_")


def enum_users(schema: Schema, enum_schema: str, enum_name: str,
               ) -> list[tuple[str, str, str, int, str | None]]:
    """Columns of ``schema``'s tables typed with the enum (or an array of it).

    Each as (table schema, table, column, array dimensions, default expression).
    """
    out = []
    for t in schema.tables:
        for c in t.columns:
            ref = type_ref(c.type)
            if ref is not None and ref[:2] == (enum_schema, enum_name):
                out.append((t.schema_ or "", t.name, c.name, ref[2], c.default))
    return out


def type_ranks(schema: Schema) -> dict[tuple[str, str], int]:
    """Position of each enum, domain, composite and range type in dependency order.

    A domain depends on its base type, a composite type on its attributes' types; the
    create steps use the position as their rank, the drop steps its negation.
    """
    deps: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for e in schema.enums:
        deps[(e.schema_ or "", e.name)] = set()
    for dom in schema.domains:
        ref = type_ref(dom.base_type)
        deps[(dom.schema_ or "", dom.name)] = {ref[:2]} if ref else set()
    for comp in schema.composite_types:
        refs = (type_ref(a.type) for a in comp.attributes)
        deps[(comp.schema_ or "", comp.name)] = {r[:2] for r in refs if r}
    for rng in schema.range_types:
        ref = type_ref(rng.subtype)
        deps[(rng.schema_ or "", rng.name)] = {ref[:2]} if ref else set()
    order = topo_order(sorted(deps), deps)
    return {key: i for i, key in enumerate(order)}


def quote_ident_like(name: str) -> str:
    """Roughly the server's quote_ident: quotes unless the name is a plain lower-case word.

    (Reserved words are quoted by the server but not here; callers use this only to
    recognise names in server-printed text, where a miss costs nothing but ordering.)
    """
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", name):
        return name
    return '"' + name.replace('"', '""') + '"'


def mentions_relation(text: str, schema: str, name: str) -> bool:
    """Whether server-printed text (search_path '') names the relation schema.name."""
    needle = f"{quote_ident_like(schema)}.{quote_ident_like(name)}"
    return re.search(r'(?<![\w."$])' + re.escape(needle) + r'(?![\w"$])', text) is not None


def columns_retyped(b: Table, a: Table) -> bool:
    """Whether columns of the table are dropped or change type, collation or expression:
    PostgreSQL refuses those while a view, policy or trigger condition uses them."""
    if b.columns == a.columns:  # the common case, compared without building anything
        return False
    after = {c.name: c for c in a.columns}
    for c in b.columns:
        n = after.get(c.name)
        if n is None or (n.type, n.collation, n.generated) != (c.type, c.collation,
                                                                c.generated):
            return True
    return False


def changed_columns(b: Table, a: Table, d: Dialect | None = None) -> set[str]:
    """The columns of a table the plan drops, gives a new type, collation or generation
    expression, or drops and adds back (a generated column over a retyped one): what
    PostgreSQL refuses to change while a view or SQL-standard routine reads them. ``d``:
    the dialect as it speaks to the plan's server, where a new generation expression set
    in place (SET EXPRESSION) leaves what reads the column standing."""
    if b.columns == a.columns:
        return set()
    from .alter_column import generation_in_place, plan_regeneration

    after = {c.name: c for c in a.columns}
    out = {c.name for c in b.columns
           if (n := after.get(c.name)) is None
           or ((n.type, n.collation, n.generated, n.generated_kind)
               != (c.type, c.collation, c.generated, c.generated_kind)
               and not (d is not None and generation_in_place(c, n, b, a, d)))}
    return out | plan_regeneration(b, a, d).names


def columns_read(statement: str, columns: Iterable[str]) -> set[str] | None:
    """The table's columns a statement's column references name (a trigger's WHEN and
    UPDATE OF, a policy's expressions), read with PostgreSQL's parser; None when it may
    read the whole row (``t.*``, ``NEW``, a row variable) or cannot be read: then every
    column counts. Over-counting only recreates something that could have stayed."""
    import pglast
    from pglast import ast

    known = set(columns)
    found: set[str] = set()

    def walk(node: object) -> bool:
        if isinstance(node, ast.ColumnRef):
            fields = node.fields or ()
            last = fields[-1] if fields else None
            if not isinstance(last, ast.String) or (len(fields) == 1
                                                    and last.sval not in known):
                return False
            found.add(last.sval)
            return True
        if isinstance(node, ast.CreateTrigStmt):
            found.update(c.sval for c in node.columns or () if isinstance(c, ast.String))
        if isinstance(node, ast.Node):
            return all(walk(getattr(node, a, None)) for a in type(node).__slots__)
        if isinstance(node, tuple | list):
            return all(walk(item) for item in node)
        return True

    try:
        tree = pglast.parse_sql(statement)
    except pglast.parser.ParseError:
        return None
    return found & known if walk(tree) else None


# The temporary name an object is built under before it takes its real one (multi-phase
# contract phases, same-name replacements in a plan).
TEMP_SUFFIX = "__lp_new"


def temp_name(name: str) -> str:
    """The temporary name of ``name`` (within PostgreSQL's 63-byte identifiers)."""
    return name[:63 - len(TEMP_SUFFIX)] + TEMP_SUFFIX
