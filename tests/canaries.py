"""Canary overloads of the server's own functions and operators.

Lockplane's own SQL (introspection, backfill keys and checkpoints, checksums, backups,
state rows) must mean the server's functions and operators whatever a database holds. A
schema on the search_path (even after pg_catalog) captures an unqualified call when it
holds a closer overload: one whose argument types match exactly where pg_catalog's needs a
coercion (varchar or name to text, int2 to int4, an enum or a domain to its base or to
anyenum), a polymorphic or "any" argument, or a string literal or parameter where
pg_catalog wants a type outside the string category (the literal prefers text).

``canary_sql`` builds such an overload, in one schema, of every pg_catalog function and
operator that Lockplane's code names unqualified anywhere: the names come from the string
constants of ``lockplane/``, read with PostgreSQL's own lexer (pglast), so the set grows
with the code. Each overload bumps a sequence (outside any transaction) and raises, so a
call shows both as a failed command and in ``canary_hits``.
"""

from __future__ import annotations

import ast
import functools
import os
from pathlib import Path

import psycopg
from pglast.parser import scan

ENGINE = Path(__file__).resolve().parent.parent / "lockplane"

# Argument types tried in place of each argument of a server function: the catalog's
# own column types, the types of the victim's columns (varchar, an enum, a domain), a
# few more that coerce implicitly to the types pg_catalog's functions take.
BASE_TYPES = ("name", "text", "character varying", "character", '"char"', "smallint",
              "integer", "bigint", "numeric", "double precision", "oid", "regclass",
              "boolean", "timestamp with time zone", "jsonb", "pg_lsn")
ARRAY_TYPES = ("name[]", "text[]", "oid[]", "smallint[]")


@functools.lru_cache(maxsize=1)
def engine_sql_names() -> tuple[frozenset[str], frozenset[str]]:
    """(names called as functions, operator symbols) in the string constants of
    ``lockplane/``, unqualified (not after a '.', not inside OPERATOR(...))."""
    names: set[str] = set()
    ops: set[str] = set()
    for path in ENGINE.rglob("*.py"):
        if "sqlite" in path.name or "mysql" in path.name or path.parent.name in (
                "sqlite", "mysql"):
            continue  # (other servers' SQL)
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            s = node.value
            try:
                tokens = scan(s)
            except Exception:  # (prose, regular expressions: not SQL)
                continue
            text = [s[t.start:t.end + 1] for t in tokens]
            for i, tok in enumerate(tokens):
                after_dot = i > 0 and text[i - 1] == "."
                if tok.name == "Op" or (tok.name.startswith("ASCII_") and text[i] in "=<>+-*/%^"):
                    if not after_dot:
                        ops.add(text[i])
                elif (tok.name == "IDENT" or tok.kind != "RESERVED_KEYWORD") \
                        and i + 1 < len(tokens) and text[i + 1] == "(" and not after_dot:
                    names.add(text[i].lower())
    for sym in ("<=", ">=", "<>", "!="):  # (the lexer's own tokens for these)
        ops.add(sym)
    return frozenset(names), frozenset(ops)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_POLY_ELEM = {"anyelement", "anynonarray", "anycompatible", "anycompatiblenonarray",
              "any", "anyenum"}
_POLY_ARRAY = {"anyarray", "anycompatiblearray"}


def canary_sql(dsn: str, schema: str = "public", extra_types: tuple[str, ...] = (),
               passthrough: bool = False, operators: bool = True) -> str:
    """The SQL that makes, in ``schema`` of ``dsn``'s database, a canary overload of every
    pg_catalog function and operator Lockplane's code names, for argument types closer than
    pg_catalog's (see the module's docstring); ``extra_types`` are the database's own
    (an enum, a domain) to try as well; ``operators``: False, functions only.
    ``passthrough`` (to find every call in one run,
    not a test's mode): a function or operator canary logs a WARNING (in the server's log,
    with the statement) and returns what pg_catalog's would."""
    names, ops = engine_sql_names()
    passthrough = passthrough or DISCOVER
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET search_path = pg_catalog, public")
        elem_types = list(BASE_TYPES) + list(extra_types)
        canon = {}
        for t in elem_types + list(ARRAY_TYPES):
            canon[t] = conn.execute("SELECT %s::regtype::oid, format_type(%s::regtype, NULL), "
                                    "typcategory, typtype FROM pg_type WHERE oid = %s::regtype",
                                    (t, t, t)).fetchone()
        # implicit casts (and a domain to its base type): source -> targets
        implicit: dict[int, set[int]] = {}
        for src, dst in conn.execute(
                "SELECT castsource, casttarget FROM pg_cast WHERE castcontext = 'i' "
                "UNION SELECT oid, typbasetype FROM pg_type WHERE typtype = 'd'"):
            implicit.setdefault(src, set()).add(dst)
        procs = conn.execute(
            "SELECT p.proname, p.prokind, p.proretset, p.prorettype, "
            "p.proargtypes::oid[], p.provariadic, format_type(p.prorettype, NULL), "
            "(SELECT typcategory FROM pg_type WHERE oid = p.prorettype) "
            "FROM pg_proc p WHERE p.pronamespace = 'pg_catalog'::regnamespace "
            "AND p.prokind IN ('f', 'a') AND p.proname = ANY(%s) "
            "AND NOT EXISTS (SELECT 1 FROM pg_aggregate a WHERE a.aggfnoid = p.oid "
            "AND a.aggkind <> 'n') AND p.pronargs <= 4",
            (sorted(names),)).fetchall()
        server_ops = conn.execute(
            "SELECT o.oprname, o.oprleft, o.oprright, o.oprresult, format_type(o.oprresult, NULL) "
            "FROM pg_operator o WHERE o.oprnamespace = 'pg_catalog'::regnamespace "
            "AND o.oprkind = 'b' AND o.oprname = ANY(%s)", (sorted(ops),)).fetchall()
        typname = dict(conn.execute("SELECT oid, format_type(oid, NULL) FROM pg_type"))
        typcat = dict(conn.execute("SELECT oid, typcategory FROM pg_type"))
        pseudo = {o for (o,) in conn.execute(
            "SELECT oid FROM pg_type WHERE typtype = 'p' AND typname <> 'void'")}
        existing_f = {(n, tuple(a)) for n, a in conn.execute(
            "SELECT proname, proargtypes::oid[] FROM pg_proc "
            "WHERE pronamespace = 'pg_catalog'::regnamespace")}
        existing_o = {(n, left, right) for n, left, right in conn.execute(
            "SELECT oprname, oprleft, oprright FROM pg_operator "
            "WHERE oprnamespace = 'pg_catalog'::regnamespace")}
        arrays = dict(conn.execute(
            "SELECT typelem, oid FROM pg_type WHERE typcategory = 'A' AND typelem <> 0 "
            "AND typsubscript = 'array_subscript_handler'::regproc"))
    elems = [canon[t][0] for t in elem_types]
    arrs = [canon[t][0] for t in ARRAY_TYPES] + [arrays[e] for e in elems
                                                    if e in arrays and canon.get(typname[e])]
    enums = [e for e in elems if typcat.get(e) == "E"]

    def substitutes(param: int) -> list[int]:
        pname = typname.get(param, "")
        if pname in _POLY_ELEM:
            return enums if pname == "anyenum" else elems
        if pname in _POLY_ARRAY:
            return arrs
        out = [t for t in elems + arrs if param in implicit.get(t, ()) and t != param]
        if typcat.get(param) != "S":  # (a literal or a str parameter prefers text)
            out.append(canon["text"][0])
        return out

    out: list[str] = [f"CREATE SEQUENCE {_q(schema)}.lockplane_canary_hits;"]
    made: set[tuple[str, tuple[int, ...]]] = set()
    hit = (f"PERFORM pg_catalog.nextval('{schema}.lockplane_canary_hits'::pg_catalog.regclass); "
           "RAISE EXCEPTION 'lockplane canary hit %%', %s;")
    warn = ("RAISE WARNING 'lockplane canary hit %% IN %%', %s, "
            "pg_catalog.replace(pg_catalog.current_query(), E'\\n', ' ');")

    def cast(j: int, orig: list[int]) -> str:
        o = typname.get(orig[j], "")
        return f"${j + 1}" if orig[j] in pseudo else f"${j + 1}::{o}"
    for n, (proname, kind, retset, rettype, args, variadic, _rn, _rc) in enumerate(procs):
        args = list(args)
        if variadic and args and typname.get(args[-1]) == '"any"':
            args = args[:-1] + [args[-1]]  # (one argument in the variadic position)
        for i, param in enumerate(args):
            for sub in substitutes(param):
                sig = list(args)
                sig[i] = sub
                pname = typname.get(param, "")
                ret = rettype
                # the same polymorphic family elsewhere in the signature (and the result)
                for j, other in enumerate(sig):
                    oname = typname.get(other, "")
                    if j != i and oname in _POLY_ELEM | _POLY_ARRAY and oname != '"any"':
                        if pname in _POLY_ARRAY:
                            sig[j] = next((e for e, a in arrays.items() if a == sub), 0) \
                                if oname in _POLY_ELEM else sub
                        elif pname in _POLY_ELEM:
                            sig[j] = arrays.get(sub, 0) if oname in _POLY_ARRAY else sub
                        else:
                            sig[j] = 0
                rname = typname.get(rettype, "")
                if rname in _POLY_ELEM:
                    ret = sub if pname in _POLY_ELEM else next(
                        (e for e, a in arrays.items() if a == sub), 0)
                elif rname in _POLY_ARRAY:
                    ret = arrays.get(sub, 0) if pname in _POLY_ELEM else sub
                if 0 in sig or not ret or any(t in pseudo for t in [*sig, ret]):
                    continue
                key = (proname, tuple(sig))
                if key in existing_f or key in made:
                    continue
                made.add(key)
                argl = ", ".join(typname[t] for t in sig)
                label = f"{schema}.{proname}({argl})"
                lit = "'" + label.replace("'", "''") + "'"
                rt = typname[ret]
                if kind == "a" and passthrough and len(sig) == 1 and sig[0] in arrays:
                    sf = f"{_q(schema)}.lockplane_canary_sf{n}_{len(made)}"
                    at = typname[arrays[sig[0]]]
                    x = "x" if args[0] in pseudo else f"x::{typname[args[0]]}"
                    out.append(
                        f"CREATE FUNCTION {sf}({at}, {argl}) RETURNS {at} LANGUAGE sql "
                        f"AS $c$SELECT pg_catalog.array_append($1, $2)$c$;\n"
                        f"CREATE FUNCTION {sf}_f({at}) RETURNS {rt} LANGUAGE plpgsql "
                        f"AS $c$BEGIN {warn % lit} RETURN (SELECT pg_catalog.{_q(proname)}({x}) "
                        f"FROM pg_catalog.unnest($1) x); END$c$;\n"
                        f"CREATE AGGREGATE {_q(schema)}.{_q(proname)}({argl}) (SFUNC = {sf}, "
                        f"STYPE = {at}, FINALFUNC = {sf}_f, INITCOND = '{{}}');")
                elif kind == "a":
                    sf = f"{_q(schema)}.lockplane_canary_sf{n}_{len(made)}"
                    out.append(
                        f"CREATE FUNCTION {sf}(bigint, {argl}) RETURNS bigint LANGUAGE plpgsql "
                        f"AS $c$BEGIN {hit % lit} END$c$;\n"
                        f"CREATE FUNCTION {sf}_f(bigint) RETURNS {rt} LANGUAGE plpgsql "
                        f"AS $c$BEGIN {hit % lit} END$c$;\n"
                        f"CREATE AGGREGATE {_q(schema)}.{_q(proname)}({argl}) (SFUNC = {sf}, "
                        f"STYPE = bigint, FINALFUNC = {sf}_f);")
                elif passthrough:
                    passed = ", ".join(cast(j, args) for j in range(len(sig)))
                    call = f"pg_catalog.{_q(proname)}({passed})"
                    body = (f"RETURN QUERY SELECT * FROM {call};" if retset
                            else f"RETURN {call};")
                    out.append(
                        f"CREATE FUNCTION {_q(schema)}.{_q(proname)}({argl}) RETURNS "
                        f"{'SETOF ' if retset else ''}{rt} LANGUAGE plpgsql "
                        f"AS $c$BEGIN {warn % lit} {body} END$c$;")
                else:
                    out.append(
                        f"CREATE FUNCTION {_q(schema)}.{_q(proname)}({argl}) RETURNS "
                        f"{'SETOF ' if retset else ''}{rt} LANGUAGE plpgsql "
                        f"AS $c$BEGIN {hit % lit} END$c$;")
    opmade: set[tuple[str, int, int]] = set()
    for n, (oprname, left, right, result, _rname) in enumerate(server_ops if operators else []):
        for side in (0, 1):
            for sub in substitutes((left, right)[side]):
                sig = [left, right]
                sig[side] = sub
                poly = _POLY_ELEM | _POLY_ARRAY
                if typname.get(sig[1 - side], "") in poly:
                    this = typname[(left, right)[side]]
                    sig[1 - side] = sub if this in poly and typname[sig[1 - side]] == this else 0
                ret = result
                if typname.get(ret, "").startswith("any"):
                    ret = sub
                if 0 in sig or any(t in pseudo for t in [*sig, ret]):
                    continue
                key = (oprname, sig[0], sig[1])
                if key in existing_o or key in opmade:
                    continue
                opmade.add(key)
                label = f"{schema}.{oprname}({typname[sig[0]]}, {typname[sig[1]]})"
                lit = "'" + label.replace("'", "''") + "'"
                fn = f"{_q(schema)}.lockplane_canary_op{n}_{len(opmade)}"
                orig = [left, right]
                body = (f"{warn % lit} RETURN {cast(0, orig)} OPERATOR(pg_catalog.{oprname}) "
                        f"{cast(1, orig)};") if passthrough else hit % lit
                out.append(
                    f"CREATE FUNCTION {fn}({typname[sig[0]]}, {typname[sig[1]]}) RETURNS "
                    f"{typname[ret]} LANGUAGE plpgsql AS $c$BEGIN {body} END$c$;\n"
                    f"CREATE OPERATOR {_q(schema)}.{oprname} (LEFTARG = {typname[sig[0]]}, "
                    f"RIGHTARG = {typname[sig[1]]}, FUNCTION = {fn});")
    return "\n".join(out)


DISCOVER = bool(os.environ.get("LOCKPLANE_CANARY_DISCOVER"))


def canary_hits(dsn: str, schema: str = "public") -> int:
    if DISCOVER:
        return 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(f"SELECT last_value, is_called FROM {_q(schema)}.lockplane_canary_hits"
                           ).fetchone()
    assert row is not None
    return int(row[0]) if row[1] else 0
