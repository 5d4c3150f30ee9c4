"""ALTER DOMAIN: default, NOT NULL, add / drop check constraints, their comments.

A new base type or collation cannot be altered: the step then recreates the domain as
an enum is recreated (changes.recreate_enum): the old one renamed aside, the new one
created under its name, every column of it converted (defaults dropped around that),
what holds the old type in the way (views and routines over those columns or taking
the type, indexes, CHECKs, triggers and policies holding a value of it, foreign keys
over those columns) dropped before and made again after, the old one dropped; in one
transaction. A domain or composite type built on it is still in the way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import BadInput
from ..model import CheckConstraint, DomainType, ForeignKey, Function, Table, View, qualified
from .base import (
    ACCESS_EXCLUSIVE,
    NO_LOCK,
    Assessment,
    Change,
    Finding,
    Lock,
    Order,
    Safety,
    register,
)

if TYPE_CHECKING:
    from ..dialects.base import Dialect
    from ..model import ObjectKey
    from .recreate_enum import Holder


def _check_key(ck: CheckConstraint) -> str:
    return ck.name or f"CHECK ({ck.expression})"


@register
@dataclass(repr=False, eq=False)  # Change's own (see there)
class AlterDomain(Change):
    kind = "alter_domain"
    order = Order.ALTER_TYPE
    before: DomainType
    after: DomainType
    # Set where the domain is recreated (diff_domains), as RecreateEnum's: the columns of
    # it (schema, table, column, array dimensions, default), foreign keys over them, and
    # what holds the old type (holders dropped and made again; readers, in creation order).
    users: list[tuple[str, str, str, int, str | None]] = field(default_factory=list)
    foreign_keys: list[tuple[Table, ForeignKey]] = field(default_factory=list)
    holders: list[tuple[Table, Holder]] = field(default_factory=list)
    readers: list[View | Function] = field(default_factory=list)

    def recreate(self) -> bool:
        b, a = self.before, self.after
        return b.base_type != a.base_type or b.collation != a.collation

    def check_changes(self) -> tuple[list[CheckConstraint], list[CheckConstraint],
                                     list[tuple[CheckConstraint, CheckConstraint]]]:
        """(dropped, added, comment-only changed) checks, matched by name."""
        old = {_check_key(c): c for c in self.before.checks}
        new = {_check_key(c): c for c in self.after.checks}
        dropped, added, commented = [], [], []
        for k, c in old.items():
            n = new.get(k)
            if n is None or n.expression != c.expression:
                dropped.append(c)
        for k, c in new.items():
            o = old.get(k)
            if o is None or o.expression != c.expression:
                added.append(c)
            elif o.comment != c.comment:
                commented.append((o, c))
        return dropped, added, commented

    def statements_needed(self) -> bool:
        b, a = self.before, self.after
        dropped, added, commented = self.check_changes()
        return (b.default != a.default or b.nullable != a.nullable
                or bool(dropped or added or commented))

    def objects_created(self) -> tuple[ObjectKey, ...]:
        from .base import object_key

        return (object_key("type", self.after.schema_, self.after.name),)

    def describe(self) -> str:
        name = qualified(self.after.schema_, self.after.name)
        if self.recreate():
            return f"Recreate domain {name} (base type or collation)"
        b, a = self.before, self.after
        what = []
        if b.default != a.default:
            what.append("default")
        if b.nullable != a.nullable:
            what.append("drop not null" if a.nullable else "set not null")
        dropped, added, commented = self.check_changes()
        what += [f"drop check {c.name or c.expression}" for c in dropped]
        what += [f"add check {c.name or c.expression}" for c in added]
        what += [f"comment on check {n.name}" for _, n in commented]
        return f"Alter domain {name} ({', '.join(what)})"

    def sql_postgres(self, d: Dialect) -> list[str]:
        from .create_domain import domain_check_comment_sql, domain_check_def
        from .set_comment import SetComment

        b, a = self.before, self.after
        q = d.qname(a.schema_, a.name)
        if self.recreate():
            return self._recreate_sql(d)
        out: list[str] = []
        dropped, added, commented = self.check_changes()
        for ck in dropped:
            if not ck.name:
                raise BadInput(f"domain {qualified(a.schema_, a.name)}: cannot drop an "
                               "unnamed check")
            out.append(f"ALTER DOMAIN {q} DROP CONSTRAINT {d.quote(ck.name)}")
        if b.default != a.default:
            out.append(f"ALTER DOMAIN {q} DROP DEFAULT" if a.default is None
                       else f"ALTER DOMAIN {q} SET DEFAULT {d.stored_expression(a.default)}")
        if b.nullable != a.nullable:
            out.append(f"ALTER DOMAIN {q} {'DROP' if a.nullable else 'SET'} NOT NULL")
        for ck in added:
            out.append(f"ALTER DOMAIN {q} ADD {domain_check_def(d, ck)}")
            out += domain_check_comment_sql(d, a, ck)
        for old, new in commented:
            out += SetComment("CONSTRAINT", (new.name or "",), old.comment, new.comment,
                              on_table=(a.schema_ or "", a.name),
                              on_kind="DOMAIN").sql_postgres(d)
        return out

    def _recreate_sql(self, d: Dialect) -> list[str]:
        from .alter_column import cast_sql
        from .create_domain import create_domain_sql
        from .recreate_enum import _holder_changes, _reader_changes, aside_name
        from .render import foreign_key_def

        a = self.after
        new = d.qname(a.schema_, a.name)
        aside = aside_name(self.before.name)
        fks = [(d.qname(t.schema_, t.name), fk) for t, fk in self.foreign_keys if fk.name]
        out = [f"ALTER TABLE {t} DROP CONSTRAINT {d.quote(str(fk.name))}" for t, fk in fks]
        for reader in reversed(self.readers):
            out += _reader_changes(reader)[0].sql_postgres(d)
        made_again: list[str] = []
        for t, obj in self.holders:
            drop, create = _holder_changes(t, obj)
            out += drop.sql_postgres(d)
            made_again += create.sql_postgres(d)
        out += [f"ALTER DOMAIN {new} RENAME TO {d.quote(aside)}", *create_domain_sql(d, a)]
        for schema, table, column, dims, default in self.users:
            t, c, arr = d.qname(schema, table), d.quote(column), "[]" * dims
            if default is not None:
                out.append(f"ALTER TABLE {t} ALTER COLUMN {c} DROP DEFAULT")
            # (cast as the base types are: a direct cast where one exists, else
            # through text; there is no cast from integer to jsonb)
            using = cast_sql(c, f"{d.quote(aside)}{arr}", f"{new}{arr}", (
                self.before.base_type + arr, a.base_type + arr))
            out.append(f"ALTER TABLE {t} ALTER COLUMN {c} TYPE {new}{arr} USING {using}")
            if default is not None:
                out.append(f"ALTER TABLE {t} ALTER COLUMN {c} SET DEFAULT "
                           f"{d.stored_expression(default)}")
        out += [f"ALTER TABLE {t} ADD {foreign_key_def(d, fk)}"
                + ("" if fk.valid else " NOT VALID") for t, fk in fks]
        out += made_again
        for reader in self.readers:
            out += _reader_changes(reader)[1].sql_postgres(d)
        out.append(f"DROP DOMAIN {d.qname(a.schema_, aside)}")
        return out

    def inverse(self) -> list[Change]:
        return [AlterDomain(self.after, self.before, self.users, self.foreign_keys,
                            self.holders, self.readers)]

    def rollback_note(self) -> str | None:
        if self.recreate():
            return ("converts the columns back to the old domain; it fails if a value does "
                    "not fit it")
        return None

    def _validates(self) -> bool:
        _, added, _ = self.check_changes()
        return bool(added) or (self.before.nullable and not self.after.nullable)

    def lock(self, d: Dialect) -> Lock:
        if self.recreate():
            if not self.users:
                return NO_LOCK
            return Lock(ACCESS_EXCLUSIVE.mode, True, True, rewrites_table=True,
                        scans_table=True)
        if self._validates():
            # Every column of the domain's type is checked under a SHARE lock on its table.
            return Lock("SHARE", False, True, scans_table=True)
        return NO_LOCK

    def assess(self, d: Dialect) -> Assessment:
        name = qualified(self.after.schema_, self.after.name)
        if self.recreate():
            cols = ", ".join(f"{qualified(s, t)}.{c}" for s, t, c, _, _ in self.users)
            return Assessment(Safety.DANGEROUS, (
                f"Domain {name} cannot change its base type or collation in place: it is "
                "recreated, and every column using it is rewritten under ACCESS EXCLUSIVE "
                f"(columns: {cols or 'none'}); the conversion fails on a value that does "
                "not fit the new domain. A domain or composite type built on it is in the "
                "way.",
                "Safer: create a new domain, migrate columns to it in phases, drop the old.",
            ), (Finding("table-rewrite", f"Recreating domain {name} rewrites the tables of "
                        f"its columns ({cols}) under ACCESS EXCLUSIVE.", Safety.DANGEROUS),)
                if self.users else ())
        msgs: list[str] = []
        safety = Safety.SAFE
        if self._validates():
            safety = Safety.REVIEW
            msgs.append(f"New constraints on {name} are checked against every column that "
                        "uses it, blocking writes to those tables, and fail on violating rows.")
            msgs.append("Safer: add the check as NOT VALID, then VALIDATE CONSTRAINT "
                        "separately (it takes a weaker lock).")
        dropped, _, _ = self.check_changes()
        if dropped or (not self.before.nullable and self.after.nullable):
            safety = Safety.REVIEW
            msgs.append(f"Constraints dropped from {name}: the database no longer rejects "
                        "those values; code may rely on it.")
        if self.before.default is not None and self.after.default is None:
            safety = Safety.REVIEW
            msgs.append(f"Dropping the default of {name}: inserts that omit such columns now "
                        "get NULL.")
        return Assessment(safety, tuple(msgs))
