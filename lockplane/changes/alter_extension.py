"""ALTER EXTENSION ... UPDATE TO (version) / SET SCHEMA."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Extension
from .base import NO_LOCK, Assessment, Change, Lock, Order, Safety, register
from .pg_common import dollar_quoted

if TYPE_CHECKING:
    from ..dialects.base import Dialect


def _update_or_reinstall(d: Dialect, b: Extension, a: Extension) -> str:
    """A DO body: the update script where the extension ships a path from the installed
    version to the wanted one; else (most extensions ship no downgrade, e.g. pg_trgm 1.4
    -> 1.3) the extension dropped and created at that version, in its schema, with its
    comment. The drop is not CASCADE: with objects of the database's own built on the
    extension it fails, and the step with it."""
    name, version = d.quote(a.name), d.literal(str(a.version))
    schema = f" WITH SCHEMA {d.quote(b.schema_)}" if b.schema_ else ""
    comment = (f" COMMENT ON EXTENSION {name} IS {d.literal(a.comment)};"
               if a.comment is not None else "")
    return (f"BEGIN IF EXISTS (SELECT FROM pg_catalog.pg_extension e, "
            f"pg_catalog.pg_extension_update_paths(e.extname) p WHERE e.extname = "
            f"{d.literal(a.name)} AND p.source = e.extversion AND p.target = {version} AND "
            f"p.path IS NOT NULL) THEN ALTER EXTENSION {name} UPDATE TO {version}; ELSE "
            f"DROP EXTENSION {name}; CREATE EXTENSION {name}{schema} VERSION {version};"
            f"{comment} END IF; END")


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class AlterExtension(Change):
    kind = "alter_extension"
    order = Order.CREATE_EXTENSION  # before the types and tables that may need the new version
    before: Extension
    after: Extension

    def describe(self) -> str:
        b, a = self.before, self.after
        what = []
        if a.version != b.version:
            what.append(f"version {b.version} -> {a.version}")
        if a.schema_ != b.schema_:
            what.append(f"schema {b.schema_} -> {a.schema_}")
        return f"Alter extension {a.name} ({', '.join(what)})"

    def sql_postgres(self, d: Dialect) -> list[str]:
        b, a = self.before, self.after
        name = d.quote(a.name)
        out = []
        if a.version != b.version and a.version:
            out.append(f"DO {dollar_quoted(_update_or_reinstall(d, b, a))}")
        elif a.version != b.version:
            out.append(f"ALTER EXTENSION {name} UPDATE")
        if a.schema_ != b.schema_ and a.schema_:
            out.append(f"ALTER EXTENSION {name} SET SCHEMA {d.quote(a.schema_)}")
        return out

    def inverse(self) -> list[Change]:
        return [AlterExtension(self.after, self.before)]

    def rollback_note(self) -> str | None:
        if self.after.version != self.before.version:
            return (f"going back to version {self.before.version} runs a downgrade script "
                    "where the extension ships one; most do not, and the extension is then "
                    "dropped and created at that version, which fails while objects of the "
                    "database's own use it")
        return None

    def lock(self, d: Dialect) -> Lock:
        return NO_LOCK  # the update script may lock what it alters; nothing predictable

    def assess(self, d: Dialect) -> Assessment:
        b, a = self.before, self.after
        texts = [f"Updating extension {a.name} runs its update script, which may change "
                 "functions and types in use and take locks of its own; it is rarely "
                 "reversible."]
        if a.version and a.version != b.version:
            texts.append(f"Where {a.name} ships no update script from the installed version "
                         f"to {a.version} (most ship none downwards), the step drops the "
                         "extension and creates it at that version: rows of its own "
                         "configuration tables are lost, and privileges on its objects go "
                         "back to their defaults.")
        return Assessment(Safety.REVIEW, tuple(texts))
