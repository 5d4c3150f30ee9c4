"""ALTER PUBLICATION: its tables and schemas (ADD / DROP / SET) and its options.

Only additions: ADD. Only removals: DROP. Anything else (a table's column list or row
filter changes, or tables come and go together): SET with the whole new list, which the
server applies as a difference (tables it keeps unchanged are not touched), in one
statement so subscribers never see the table missing. Options go with SET (...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Publication, PublicationTable
from .base import (
    NO_LOCK,
    SHARE_UPDATE_EXCLUSIVE,
    Assessment,
    Change,
    Finding,
    Lock,
    Safety,
    register,
)
from .create_publication import (
    EARLY,
    LATE,
    TableKey,
    future_tables_note,
    objects_sql,
    publish_sql,
    table_key,
    table_label,
    via_root_sql,
)

if TYPE_CHECKING:
    from ..dialects.base import Dialect
    from .publication_identity import IdentityProblem


@dataclass(frozen=True)
class Membership:
    """How a publication's tables and schemas differ between two versions."""

    added: list[PublicationTable]
    removed: list[PublicationTable]
    changed: list[PublicationTable]  # the new versions
    added_schemas: list[str]
    removed_schemas: list[str]

    @classmethod
    def of(cls, b: Publication, a: Publication) -> Membership:
        old: dict[TableKey, PublicationTable] = {table_key(t): t for t in b.tables}
        new: dict[TableKey, PublicationTable] = {table_key(t): t for t in a.tables}
        return cls(
            added=[t for k, t in new.items() if k not in old],
            removed=[t for k, t in old.items() if k not in new],
            changed=[t for k, t in new.items() if k in old and old[k] != t],
            added_schemas=[s for s in a.schemas if s not in b.schemas],
            removed_schemas=[s for s in b.schemas if s not in a.schemas])

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.added_schemas
                    or self.removed_schemas)

    @property
    def removes(self) -> bool:
        return bool(self.removed or self.removed_schemas)


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class AlterPublication(Change):
    kind = "alter_publication"
    before: Publication
    after: Publication
    # Runs before the plan's drops (it lets go of what they drop), not after its creates.
    early: bool = False
    # Tables the early step lets go of and the late one adds back (a column of its
    # column list or row filter is dropped or retyped in between): not gone for good.
    restored_tables: tuple[TableKey, ...] = ()
    # Tables it publishes UPDATE or DELETE of that have no usable replica identity
    # (computed by publication_identity.annotate from the desired schema).
    identity_problems: tuple[IdentityProblem, ...] = ()

    @property  # type: ignore[override]
    def order(self) -> int:
        return EARLY if self.early else LATE

    def membership(self) -> Membership:
        return Membership.of(self.before, self.after)

    def options_changed(self) -> bool:
        return (self.before.publish != self.after.publish
                or self.before.publish_via_partition_root
                != self.after.publish_via_partition_root)

    def describe(self) -> str:
        m = self.membership()
        what = [f"add {table_label(t)}" for t in m.added]
        what += [f"add tables in schema {s}" for s in m.added_schemas]
        what += [f"change {table_label(t)}" for t in m.changed]
        what += [f"remove {table_label(t)}" for t in m.removed]
        what += [f"remove tables in schema {s}" for s in m.removed_schemas]
        if self.before.publish != self.after.publish:
            what.append("publish " + (", ".join(self.after.publish) or "nothing"))
        if self.before.publish_via_partition_root != self.after.publish_via_partition_root:
            what.append(via_root_sql(self.after))
        return f"Alter publication {self.after.name}: " + "; ".join(what)

    def sql_postgres(self, d: Dialect) -> list[str]:
        a = self.after
        name = d.quote(a.name)
        m = self.membership()
        members: list[str] = []
        if m.changed or (m.removes and (m.added or m.added_schemas)):
            # (the whole list is never empty here: a changed table is in it)
            members.append(f"ALTER PUBLICATION {name} SET {objects_sql(d, a.tables, a.schemas)}")
        else:
            if m.removes:
                members.append(f"ALTER PUBLICATION {name} DROP " + objects_sql(
                    d, m.removed, m.removed_schemas, bare=True))
            if m.added or m.added_schemas:
                members.append(f"ALTER PUBLICATION {name} ADD " + objects_sql(
                    d, m.added, m.added_schemas))
        options: list[str] = []
        if self.before.publish != a.publish:
            options.append(publish_sql(d, a))
        if self.before.publish_via_partition_root != a.publish_via_partition_root:
            options.append(via_root_sql(a))
        opts = [f"ALTER PUBLICATION {name} SET ({', '.join(options)})"] if options else []
        # A partitioned table's row filter or column list needs publish_via_partition_root:
        # turned on before such a table comes in, off after it left.
        return opts + members if a.publish_via_partition_root else members + opts

    def inverse(self) -> list[Change]:
        return [AlterPublication(self.after, self.before, early=self.early,
                                 restored_tables=self.restored_tables)]

    def lock(self, d: Dialect) -> Lock:
        # SHARE UPDATE EXCLUSIVE on the tables added or removed: reads and writes go on.
        return NO_LOCK if self.membership().empty else SHARE_UPDATE_EXCLUSIVE

    def assess(self, d: Dialect) -> Assessment:
        from .publication_identity import identity_finding

        m = self.membership()
        name = self.after.name
        back = set(self.restored_tables)
        findings: list[Finding] = []
        notes: list[str] = []
        gone = [table_label(t) for t in m.removed if table_key(t) not in back] + [
            f"tables in schema {s}" for s in m.removed_schemas]
        if gone:
            findings.append(Finding("publication-remove-table", (
                f"Publication {name} stops publishing {', '.join(gone)}: subscribers stop "
                "receiving those changes and their copies go stale.")))
        leaving = [table_label(t) for t in m.removed if table_key(t) in back]
        if leaving:
            findings.append(Finding("review-required", (
                f"Publication {name} lets go of {', '.join(leaving)} until a later step of "
                "this plan adds it back (a table cannot stay published while the plan drops "
                "or retypes a column its column list or row filter uses, or creates the "
                "table again): changes to it in between are not published, and "
                "subscribers' copies miss them."), Safety.REVIEW))
        if m.changed:
            findings.append(Finding("review-required", (
                f"Publication {name} publishes other columns or rows of "
                f"{', '.join(table_label(t) for t in m.changed)}: subscribers receive only "
                "those from now on; rows already copied are not revisited."), Safety.REVIEW))
        dropped_ops = [op for op in self.before.publish if op not in self.after.publish]
        if dropped_ops:
            findings.append(Finding("publication-narrow-publish", (
                f"Publication {name} stops publishing {', '.join(dropped_ops).upper()}: "
                "subscribers' copies stop following those changes.")))
        if self.identity_problems:
            findings.append(identity_finding(self.identity_problems))
        returning = [table_label(t) for t in m.added if table_key(t) in back]
        if returning:
            notes.append(f"{', '.join(returning)} "
                         f"{'comes' if len(returning) == 1 else 'come'} back into "
                         f"publication {name} after an earlier step of this plan let go of "
                         f"{'it' if len(returning) == 1 else 'them'}: changes made in "
                         "between were not published.")
        if len(returning) < len(m.added) or m.added_schemas:
            notes.append("Subscribers copy the new tables only after ALTER SUBSCRIPTION ... "
                         "REFRESH PUBLICATION on each of them.")
        if m.added_schemas or set(self.after.publish) - set(self.before.publish):
            note = future_tables_note(self.after)
            if note:
                notes.append(note)
        return Assessment.of(*findings, notes=tuple(notes))
