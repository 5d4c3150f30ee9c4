"""CREATE EXTENSION, in its schema and at its recorded version.

Also the extension differ. Extensions are database-wide: matched by name alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Extension, Schema
from .base import NO_LOCK, OBJECT_DIFFERS, Assessment, Change, Lock, Order, Safety, register

if TYPE_CHECKING:
    from ..dialects.base import Dialect


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class CreateExtension(Change):
    kind = "create_extension"
    order = Order.CREATE_EXTENSION
    extension: Extension

    def describe(self) -> str:
        v = f" {self.extension.version}" if self.extension.version else ""
        return f"Create extension {self.extension.name}{v}"

    def sql_postgres(self, d: Dialect) -> list[str]:
        e = self.extension
        sql = f"CREATE EXTENSION {d.quote(e.name)}"
        if e.schema_:
            sql += f" WITH SCHEMA {d.quote(e.schema_)}"
        if e.version:
            sql += f" VERSION {d.literal(e.version)}"
        # The control file sets a comment of its own: state the model's, even "none".
        comment = "NULL" if e.comment is None else d.literal(e.comment)
        return [sql, f"COMMENT ON EXTENSION {d.quote(e.name)} IS {comment}"]

    def inverse(self) -> list[Change]:
        from .drop_extension import DropExtension

        return [DropExtension(self.extension)]

    def lock(self, d: Dialect) -> Lock:
        return NO_LOCK

    def assess(self, d: Dialect) -> Assessment:
        return Assessment(Safety.SAFE, (
            f"Extension {self.extension.name} must be available on the server "
            "(pg_available_extensions) and may need superuser rights.",))


def diff_extensions(before: Schema, after: Schema, d: Dialect) -> list[Change]:
    if not CreateExtension.speaks(d):
        return []
    from .alter_extension import AlterExtension
    from .drop_extension import DropExtension
    from .set_comment import SetComment

    old = {e.name: e for e in before.extensions}
    new = {e.name: e for e in after.extensions}
    out: list[Change] = []
    for name, e in new.items():
        b = old.get(name)
        if b is None:
            out.append(CreateExtension(e))
            continue
        # A desired state without a version accepts whatever is installed.
        version_differs = e.version is not None and e.version != b.version
        if version_differs or e.schema_ != b.schema_:
            out.append(AlterExtension(b, e.model_copy(update={"version": e.version
                                                               or b.version})))
        if e.comment != b.comment:
            out.append(SetComment("EXTENSION", (name,), b.comment, e.comment))
    out += [DropExtension(e) for name, e in old.items() if name not in new]
    return out


OBJECT_DIFFERS.append(diff_extensions)
