"""Expressions written so that the server stores what it printed.

Lockplane declares CHECKs, defaults, generated columns and index keys and predicates with
the text the server printed for them (``pg_get_expr``, ``pg_get_indexdef``). That text is
meant to parse back to the same tree, and nearly always does; the one known exception is
a cast of an ``ARRAY[...]`` constructor. ruleutils prints an array coercion over an array
constructor as ``(ARRAY['a'::character varying])::text[]``, and the parser, seeing a cast
applied directly to ``ARRAY[...]``, pushes the cast into the elements instead:
``ARRAY[('a'::character varying)::text]``. So ``status IN ('a', 'b')`` over a varchar (or a
domain over one) column never converges: every plan drops and re-adds it.

The constructor is given its own type first, ``((ARRAY[...])::character varying[])::text[]``:
that inner cast is a no-op the parser drops (the elements already have that type), and the
outer one, no longer applied to ``ARRAY[...]`` itself, stays the array coercion printed.
"""

from __future__ import annotations

from pglast import ast, parse_sql
from pglast.parser import ParseError
from pglast.stream import RawStream
from pglast.visitors import Visitor

__all__ = ["as_stored"]


class _ArrayCoercions(Visitor):  # type: ignore[misc]
    """Collects (ARRAY keyword offset, ``]`` offset, element type) of each cast array."""

    def __init__(self) -> None:
        self.found: list[tuple[int, int, str]] = []

    def visit_TypeCast(self, ancestors: object, node: ast.TypeCast) -> None:
        arr = node.arg
        if not isinstance(arr, ast.A_ArrayExpr) or not node.typeName.arrayBounds:
            return
        elements = arr.elements or ()
        if any(isinstance(e, ast.A_ArrayExpr) for e in elements):
            return  # a multidimensional constructor: not a form ruleutils prints here
        typed = [e for e in elements if isinstance(e, ast.TypeCast)]
        if not typed:
            return  # no element says the constructor's type
        # Every element already has the constructor's type (ruleutils prints them after
        # coercion): any explicit cast among them names it. Its typmod is left out, as
        # the constructor's may be none.
        element = typed[0].typeName
        bare = ast.TypeName(names=element.names, setof=False, pct_type=False, typemod=-1)
        self.found.append((arr.location, arr.list_end, RawStream()(bare)))


def as_stored(expression: str, prefix: str = "SELECT ") -> str:
    """SQL for ``expression`` (printed by the server) that the server stores as printed.
    ``prefix``: what makes it a statement (none for a view's query or CREATE TRIGGER)."""
    if "array" not in expression.lower():
        return expression
    try:
        tree = parse_sql(prefix + expression)
    except ParseError:
        return expression  # not ours to judge here: the server will say what is wrong
    finder = _ArrayCoercions()
    finder(tree)
    if not finder.found:
        return expression
    # (pglast gives character offsets.) Splice from the end so earlier ones stay valid.
    text = prefix + expression
    for start, bracket, type_sql in sorted(finder.found, reverse=True):
        end = bracket + 1
        text = f"{text[:start]}(({text[start:end]})::{type_sql}[]){text[end:]}"
    return text[len(prefix):]
