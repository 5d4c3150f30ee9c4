"""The schema model: what a database's structure is, independent of how it was read.

One pydantic model for every source (live database, JSON, SQL files, SQLAlchemy).
Canonical JSON and a stable hash identify a state: two databases with the same hash
have the same structure (column order and other cosmetic differences aside).

Expressions (defaults, checks, index predicates, view bodies) are kept as the server
renders them, so comparing two loads from the same server is exact. Object names are
kept exactly as the database spells them (case and all).
"""

# No ``from __future__ import annotations`` here: pydantic would then evaluate each of
# ~330 field annotations from a string as the classes are made (13 ms of every start).
# Validators' return types name the class being made, so they are quoted.
import contextlib
import functools
import hashlib
import json
import types
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any, ClassVar, Literal, Union, get_args, get_origin

import orjson
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator


# Default factories are Python functions rather than ``list`` and ``dict``: pydantic
# reads every factory's signature, and for a builtin inspect.signature parses its text
# signature with the compiler.
def _new_list() -> list[Any]:
    return []


def _new_dict() -> dict[str, Any]:
    return {}


DIALECTS = ("postgres", "sqlite", "mysql")

# How a live database is read into a hash. Bumped when introspection starts to see
# something it used to miss, because the same database then hashes differently and a
# plan made before the upgrade no longer matches it. Plans record it, so that refusal can
# say why. 1: until 2026-11; 2: PostgreSQL publications and event triggers, SQLite
# AUTOINCREMENT / WITHOUT ROWID / STRICT / VIRTUAL generated columns; 3: PostgreSQL
# default privileges (ALTER DEFAULT PRIVILEGES); 4: SQLite, a rowid table's primary key
# column declared NOT NULL (Column.key_not_null: tables Lockplane created or rebuilt
# before 4 all read so; on the rowid alias, INTEGER PRIMARY KEY, it is not state); 5:
# PostgreSQL extended statistics name their columns in name order (the server prints
# them in column order, which a generated column dropped and added back changes).
HASH_FORMAT = 5


class Model(BaseModel):
    # Unknown fields are bad input: a typo in a schema file must not be silently ignored.
    model_config = ConfigDict(extra="forbid")
    # Fields added after hashes were in use: left out of the canonical form while they
    # hold their default, so that a schema which does not use them keeps its hash.
    sparse_fields: ClassVar[tuple[str, ...]] = ()

    def __eq__(self, other: object) -> bool:
        # pydantic's __eq__, minus its cases for generic models and non-field __dict__
        # entries, which these models never have: diff compares ~20k pairs on 1,000 tables.
        if self is other:
            return True
        if other.__class__ is not self.__class__:
            return False if isinstance(other, BaseModel) else NotImplemented
        return (self.__dict__ == other.__dict__
                and self.__pydantic_private__ == other.__pydantic_private__  # type: ignore[attr-defined]
                and self.__pydantic_extra__ == other.__pydantic_extra__)  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]  # mutable, as before (pydantic's default)


class Grant(Model):
    grantee: str  # role name, or "PUBLIC"
    privilege: str  # SELECT, INSERT, ..., or EXECUTE / USAGE
    with_grant_option: bool = False


class IdentityOptions(Model):
    """Sequence options of an identity column; None means PostgreSQL's default for the
    column's type and direction (START = MINVALUE ascending / MAXVALUE descending)."""

    start: int | None = None
    increment: int | None = None
    min_value: int | None = None
    max_value: int | None = None
    cache: int | None = None
    cycle: bool = False


class Column(Model):
    name: str
    type: str
    nullable: bool = True
    default: str | None = None
    identity: Literal["always", "by_default"] | None = None
    generated: str | None = Field(None, description="expression of a generated column")
    collation: str | None = None
    comment: str | None = None
    # Original-Lockplane field; folded into Table.primary_key when the table is built.
    is_primary_key: bool = False
    renamed_from: str | None = Field(None, description="declared rename (multi-phase)")
    fill_with: str | None = Field(
        None, description="declared fill (-- lockplane:fill-with EXPR): how existing rows get "
        "a value when a plan adds this column, makes it NOT NULL or gives it a CHECK or "
        "UNIQUE: an SQL expression over the row's other columns, backfilled in batches "
        "before the constraint is enforced. Intent, not state (not hashed)")
    identity_options: IdentityOptions | None = Field(
        None, description="START/INCREMENT/... of an identity column's sequence, when not "
        "the defaults")
    inherited: bool = Field(
        False, description="defined by a parent table (every column of a partition; a "
        "column of an INHERITS child that a parent has): added, dropped and retyped through "
        "the parent; its default and NOT NULL may differ per child. Filled in from the "
        "parent when a schema file leaves it out.")
    grants: list[Grant] = Field(
        default_factory=_new_list, description="column-level privileges (GRANT SELECT (col) ...)")
    statistics: int | None = Field(None, description="SET STATISTICS target, when set")
    compression: str | None = Field(None, description="SET COMPRESSION method (pglz, lz4), "
                                    "when not the server's default")
    generated_kind: Literal["stored", "virtual"] = Field(
        "stored", description="of a generated column: STORED (computed on write; the only "
        "kind before PostgreSQL 18) or VIRTUAL (computed on read; SQLite's default when "
        "neither is written). Ignored, and reset to stored, without 'generated'.")
    on_update: str | None = Field(None, description="MySQL ON UPDATE expression (e.g. "
                                  "current_timestamp(3)), as the server prints it")
    auto_increment: bool = Field(False, description="MySQL AUTO_INCREMENT")
    key_not_null: bool = Field(
        False, description="SQLite, a primary key column of a rowid table: declared NOT NULL "
        "as well (PRAGMA table_info's notnull). Without it the column reads notnull 0 "
        "and, unless it is the INTEGER PRIMARY KEY, accepts NULLs. Reset elsewhere.")
    not_null_name: str | None = Field(
        None, description="PostgreSQL 18: the name of the column's NOT NULL constraint, "
        "when not the one the server derives (<table>_<column>_not_null). Ignored, and "
        "reset, on a nullable column.")
    sparse_fields = ("identity_options", "inherited", "grants", "statistics", "compression",
                     "generated_kind", "on_update", "auto_increment", "key_not_null",
                     "not_null_name")
    # SQLite's rowid alias (``id INTEGER PRIMARY KEY``) declared NOT NULL as well: written
    # so when the table is created (PRAGMA table_info reads it back), but not state, since
    # the alias never holds NULL either way (see _alias_not_null_is_not_state).
    _alias_not_null: bool = PrivateAttr(default=False)

    @model_validator(mode="after")
    def _kind_needs_expression(self) -> 'Column':
        # Only a generated column has a kind: a stray one must not make two plain
        # columns differ.
        if self.generated is None and self.generated_kind != "stored":
            self.generated_kind = "stored"
        return self

    @model_validator(mode="after")
    def _name_needs_not_null(self) -> 'Column':
        if self.nullable and self.not_null_name is not None:
            self.not_null_name = None
        return self


class IndexKey(Model):
    """One key of an index: a column or an expression, with its ordering options."""

    column: str | None = None
    expression: str | None = None
    descending: bool = False
    nulls_first: bool | None = None  # None: the default for the direction
    opclass: str | None = None  # only when not the type's default
    collation: str | None = None
    length: int | None = Field(None, description="MySQL prefix length: the key indexes the "
                               "first N characters (bytes for binary types) of the column")
    sparse_fields = ("length",)

    @model_validator(mode="after")
    def _one_of(self) -> 'IndexKey':
        if (self.column is None) == (self.expression is None):
            raise ValueError("an index key has exactly one of 'column' or 'expression'")
        return self


class Index(Model):
    name: str
    columns: list[str] = Field(default_factory=_new_list,
                               description="original format: plain columns")
    keys: list[IndexKey] = Field(default_factory=_new_list)
    unique: bool = False
    method: str = "btree"
    where: str | None = None
    include: list[str] = Field(default_factory=_new_list)
    nulls_not_distinct: bool = False
    comment: str | None = None
    valid: bool = Field(True, description="False for an INVALID index (a failed CREATE INDEX "
                        "CONCURRENTLY): planned as drop and create when the desired twin is "
                        "valid")
    options: list[str] = Field(default_factory=_new_list,
                               description="storage parameters, e.g. fillfactor=70")
    sparse_fields = ("valid", "options")

    @model_validator(mode="after")
    def _keys_from_columns(self) -> 'Index':
        if not self.keys and self.columns:
            self.keys = [IndexKey(column=c) for c in self.columns]
        if not self.keys:
            raise ValueError(f"index {self.name!r} has no columns or keys")
        if all(k.column is not None for k in self.keys):
            self.columns = [k.column for k in self.keys if k.column is not None]
        else:
            self.columns = []
        return self


class PrimaryKey(Model):
    name: str | None = None
    columns: list[str]
    include: list[str] = Field(default_factory=_new_list, description="INCLUDE (...) columns")
    autoincrement: bool = Field(
        False, description="SQLite AUTOINCREMENT: only on a one-column INTEGER PRIMARY KEY "
        "of a rowid table; a rowid is then never reused, even after its row is deleted")
    without_overlaps: bool = Field(False, description="the last column is a range or "
                                   "multirange: WITHOUT OVERLAPS (PostgreSQL 18)")
    sparse_fields = ("include", "autoincrement", "without_overlaps")


class UniqueConstraint(Model):
    name: str | None = None
    columns: list[str]
    nulls_not_distinct: bool = False
    deferrable: bool = False
    initially_deferred: bool = False
    comment: str | None = None
    include: list[str] = Field(default_factory=_new_list, description="INCLUDE (...) columns")
    without_overlaps: bool = Field(False, description="the last column is a range or "
                                   "multirange: WITHOUT OVERLAPS (PostgreSQL 18)")
    sparse_fields = ("include", "without_overlaps")


class CheckConstraint(Model):
    name: str | None = None
    expression: str
    no_inherit: bool = False
    comment: str | None = None
    valid: bool = Field(True, description="False while NOT VALID: new rows are checked, "
                        "existing rows not yet (VALIDATE CONSTRAINT does that)")
    enforced: bool = Field(True, description="False: NOT ENFORCED (PostgreSQL 18), "
                           "declared but never checked")
    sparse_fields = ("valid", "enforced")


FkAction = Literal["NO ACTION", "RESTRICT", "CASCADE", "SET NULL", "SET DEFAULT"]


class ForeignKey(Model):
    name: str | None = None
    columns: list[str]
    referenced_schema: str | None = None
    referenced_table: str
    referenced_columns: list[str]
    on_delete: FkAction = "NO ACTION"
    on_update: FkAction = "NO ACTION"
    match: Literal["SIMPLE", "FULL", "PARTIAL"] = "SIMPLE"
    deferrable: bool = False
    initially_deferred: bool = False
    comment: str | None = None
    on_delete_columns: list[str] = Field(
        default_factory=_new_list, description="ON DELETE SET NULL / SET DEFAULT (columns) "
        "(PostgreSQL 15): only these columns are set")
    valid: bool = Field(True, description="False while NOT VALID: new rows are checked, "
                        "existing rows not yet (VALIDATE CONSTRAINT does that)")
    period: bool = Field(False, description="the last columns on both sides are PERIOD "
                         "(a temporal key, PostgreSQL 18)")
    enforced: bool = Field(True, description="False: NOT ENFORCED (PostgreSQL 18), "
                           "declared but never checked")
    sparse_fields = ("on_delete_columns", "valid", "period", "enforced")

    @model_validator(mode="before")
    @classmethod
    def _upper_actions(cls, data: Any) -> Any:
        # The original format wrote actions in any case ("cascade", "SET_NULL").
        if isinstance(data, dict):
            for key in ("on_delete", "on_update", "match"):
                val = data.get(key)
                if isinstance(val, str):
                    data[key] = val.replace("_", " ").upper()
                elif key in data and val is None:
                    del data[key]
        return data


class ExclusionConstraint(Model):
    """EXCLUDE constraint; ``definition`` is what follows EXCLUDE, as the server prints it."""

    name: str
    definition: str
    deferrable: bool = False
    initially_deferred: bool = False
    comment: str | None = None


class Trigger(Model):
    """A trigger; ``definition`` is the full CREATE TRIGGER statement as the server prints it."""

    name: str
    definition: str
    enabled: Literal["O", "D", "R", "A"] = "O"  # pg_trigger.tgenabled
    comment: str | None = None


class Policy(Model):
    name: str
    command: Literal["ALL", "SELECT", "INSERT", "UPDATE", "DELETE"] = "ALL"
    permissive: bool = True
    roles: list[str] = Field(default_factory=lambda: ["public"])
    using: str | None = None
    with_check: str | None = None
    comment: str | None = None


class Rule(Model):
    """A rewrite rule; ``definition`` is pg_get_ruledef's CREATE RULE statement."""

    name: str
    definition: str
    enabled: Literal["O", "D", "R", "A"] = "O"  # pg_rewrite.ev_enabled
    comment: str | None = None


class StatisticsObject(Model):
    """Extended statistics (CREATE STATISTICS); ``definition`` is
    pg_get_statisticsobjdef's statement."""

    name: str
    schema_: str | None = Field(None, alias="schema")
    definition: str
    comment: str | None = None
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Table(Model):
    name: str
    schema_: str | None = Field(None, alias="schema")
    columns: list[Column] = Field(default_factory=_new_list)
    primary_key: PrimaryKey | None = None
    unique_constraints: list[UniqueConstraint] = Field(default_factory=_new_list)
    check_constraints: list[CheckConstraint] = Field(default_factory=_new_list)
    foreign_keys: list[ForeignKey] = Field(default_factory=_new_list)
    exclusion_constraints: list[ExclusionConstraint] = Field(default_factory=_new_list)
    indexes: list[Index] = Field(default_factory=_new_list)
    triggers: list[Trigger] = Field(default_factory=_new_list)
    policies: list[Policy] = Field(default_factory=_new_list)
    rls_enabled: bool = False
    rls_forced: bool = False
    grants: list[Grant] = Field(default_factory=_new_list)
    comment: str | None = None
    renamed_from: str | None = None
    unlogged: bool = Field(False, description="CREATE UNLOGGED TABLE")
    options: list[str] = Field(
        default_factory=_new_list, description="storage parameters as pg_class.reloptions has "
        "them, sorted: fillfactor=70, autovacuum_enabled=false, toast.autovacuum_...=...")
    partition_by: str | None = Field(
        None, description="partition key of a partitioned table, as pg_get_partkeydef "
        "prints it: RANGE (created_at), LIST (lower(region)), HASH (id)")
    partition_of: str | None = Field(
        None, description='the parent of a partition, "schema"."table" (quoted as in '
        "Sequence.owned_by; a bare name is in the table's schema)")
    partition_bound: str | None = Field(
        None, description="FOR VALUES ... or DEFAULT, as pg_get_expr(relpartbound) prints it")
    inherits: list[str] = Field(
        default_factory=_new_list, description='INHERITS parents, "schema"."table", in order')
    rules: list[Rule] = Field(default_factory=_new_list)
    statistics: list[StatisticsObject] = Field(default_factory=_new_list)
    replica_identity: str = Field(
        "default", description="REPLICA IDENTITY: default, full, nothing, or "
        "'index:<name>' (USING INDEX)")
    clone_names: dict[str, str] = Field(
        default_factory=_new_dict, description="a partition's copies of its parent's indexes and "
        "constraints, 'index:<parent index>' / 'constraint:<parent constraint>' -> name "
        "here (read from the database; not part of the state: used to detach exactly)")
    unvalidated_not_null: dict[str, str] = Field(
        default_factory=_new_dict, description="PostgreSQL 18: column -> name of its NOT "
        "VALID NOT NULL constraint (the column reads as nullable; SET NOT NULL validates "
        "that constraint under its name). Read from the database; not part of the state")
    without_rowid: bool = Field(False, description="SQLite WITHOUT ROWID (needs a primary key)")
    strict: bool = Field(False, description="SQLite STRICT: values must match column types")
    engine: str | None = Field(None, description="MySQL storage engine (InnoDB, ...)")
    collation: str | None = Field(None, description="MySQL table default collation (it "
                                  "implies the character set); columns list theirs only "
                                  "when different")
    sparse_fields = ("unlogged", "options", "partition_by", "partition_of",
                     "partition_bound", "inherits", "rules", "statistics",
                     "replica_identity", "without_rowid", "strict", "engine", "collation")
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _fold_legacy_pk(self) -> 'Table':
        legacy = [c.name for c in self.columns if c.is_primary_key]
        if legacy and self.primary_key is None:
            self.primary_key = PrimaryKey(columns=legacy)
        if self.primary_key is not None and self.primary_key.autoincrement:
            self._check_autoincrement()
        if self.without_rowid and self.primary_key is None:
            raise ValueError(f"table {self.name!r}: WITHOUT ROWID needs a primary key")
        pk = set(self.primary_key.columns) if self.primary_key else set()
        for col in self.columns:
            in_pk = col.name in pk
            if col.is_primary_key != in_pk:  # pydantic assignment is not free: skip no-ops
                col.is_primary_key = in_pk
            if in_pk and col.nullable:
                col.nullable = False  # a primary key column is NOT NULL in every dialect
            if col.key_not_null and (not in_pk or self.without_rowid):
                col.key_not_null = False  # (WITHOUT ROWID: its key reads NOT NULL anyway)
        return self

    def _check_autoincrement(self) -> None:
        # SQLite's own rule (its CREATE TABLE refuses anything else): said here, a schema
        # file that breaks it is bad input rather than a failed migration.
        pk = self.primary_key
        col = self.column(pk.columns[0]) if pk is not None and len(pk.columns) == 1 else None
        if col is None or col.type.strip().upper() != "INTEGER" or self.without_rowid:
            raise ValueError(f"table {self.name!r}: autoincrement needs a one-column INTEGER "
                             "primary key in a table that is not WITHOUT ROWID")

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    def parents(self) -> list[str]:
        """Quoted qualified names of the tables this one takes columns from."""
        return [self.partition_of] if self.partition_of else list(self.inherits)


class View(Model):
    name: str
    schema_: str | None = Field(None, alias="schema")
    definition: str
    materialized: bool = False
    options: list[str] = Field(default_factory=_new_list, description="e.g. security_barrier=true")
    check_option: Literal["LOCAL", "CASCADED"] | None = None
    indexes: list[Index] = Field(default_factory=_new_list, description="materialized views only")
    depends_on: list[str] = Field(
        default_factory=_new_list, description="qualified names of relations it selects from"
    )
    grants: list[Grant] = Field(default_factory=_new_list)
    comment: str | None = None
    triggers: list[Trigger] = Field(default_factory=_new_list,
                                    description="INSTEAD OF (and statement) triggers")
    column_comments: dict[str, str] = Field(default_factory=_new_dict)
    rules: list[Rule] = Field(default_factory=_new_list, description="rules other than _RETURN")
    sparse_fields = ("triggers", "column_comments", "rules")
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Sequence(Model):
    name: str
    schema_: str | None = Field(None, alias="schema")
    data_type: str = "bigint"
    start: int = 1
    increment: int = 1
    min_value: int | None = None
    max_value: int | None = None
    cache: int = 1
    cycle: bool = False
    owned_by: str | None = Field(None, description='"schema"."table"."column" it belongs to')
    grants: list[Grant] = Field(default_factory=_new_list)
    comment: str | None = None
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class EnumType(Model):
    name: str
    schema_: str | None = Field(None, alias="schema")
    values: list[str]
    comment: str | None = None
    values_renamed_from: dict[str, str] = Field(
        default_factory=_new_dict, description="declared value renames, new label -> old "
        "label (-- lockplane:renamed-from old on the value's line): a plan renames the "
        "label in place (ALTER TYPE ... RENAME VALUE) when the type has the old label and "
        "not the new one. Intent, not state (not hashed)")
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _renames_fit(self) -> 'EnumType':
        olds: set[str] = set()
        for new, old in self.values_renamed_from.items():
            if new not in self.values:
                raise ValueError(f"values_renamed_from: {new!r} is not a value of the type")
            if old in self.values:
                raise ValueError(f"values_renamed_from: {new!r} renamed from {old!r}, which "
                                 "is still a value of the type")
            if old in olds:
                raise ValueError(f"values_renamed_from: two values renamed from {old!r}")
            olds.add(old)
        return self


class DomainType(Model):
    name: str
    schema_: str | None = Field(None, alias="schema")
    base_type: str
    nullable: bool = True
    default: str | None = None
    collation: str | None = None
    checks: list[CheckConstraint] = Field(default_factory=_new_list)
    comment: str | None = None
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class CompositeAttribute(Model):
    name: str
    type: str
    collation: str | None = None


class CompositeType(Model):
    name: str
    schema_: str | None = Field(None, alias="schema")
    attributes: list[CompositeAttribute]
    comment: str | None = None
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class RangeType(Model):
    """CREATE TYPE ... AS RANGE; type names as format_type prints them, functions as
    regproc does (schema-qualified outside pg_catalog)."""

    name: str
    schema_: str | None = Field(None, alias="schema")
    subtype: str
    subtype_opclass: str | None = Field(None, description="when not the subtype's default")
    collation: str | None = Field(None, description="when not the subtype's default")
    canonical: str | None = None
    subtype_diff: str | None = None
    multirange_type_name: str | None = Field(
        None, description="when not the name PostgreSQL derives (PostgreSQL 14+)")
    comment: str | None = None
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Collation(Model):
    name: str
    schema_: str | None = Field(None, alias="schema")
    provider: Literal["icu", "libc", "builtin"] = "libc"
    locale: str | None = Field(None, description="ICU locale (icu provider)")
    lc_collate: str | None = None
    lc_ctype: str | None = None
    deterministic: bool = True
    comment: str | None = None
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Aggregate(Model):
    """CREATE AGGREGATE; ``definition`` is the statement, built from pg_aggregate."""

    name: str
    schema_: str | None = Field(None, alias="schema")
    identity_arguments: str = ""
    definition: str
    comment: str | None = None
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Extension(Model):
    name: str
    schema_: str | None = Field(None, alias="schema")
    version: str | None = None
    comment: str | None = None
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Function(Model):
    """A function or procedure; ``definition`` is pg_get_functiondef's CREATE OR REPLACE."""

    name: str
    schema_: str | None = Field(None, alias="schema")
    identity_arguments: str = ""
    kind: Literal["function", "procedure"] = "function"
    definition: str
    grants: list[Grant] = Field(
        default_factory=_new_list, description="privileges beyond PostgreSQL's defaults. A new "
        "routine lets PUBLIC EXECUTE it: that default is never listed here (listing it is "
        "the same as leaving it out), so a routine declared without grants keeps it. Its "
        "owner's own privileges are not tracked.")
    revoked_defaults: list[Grant] = Field(
        default_factory=_new_list, description="default privileges taken away, e.g. "
        '[{"grantee": "PUBLIC", "privilege": "EXECUTE"}] after REVOKE EXECUTE ... FROM '
        "PUBLIC (what pg_dump prints as REVOKE ALL ... FROM PUBLIC)")
    comment: str | None = None
    sparse_fields = ("revoked_defaults",)
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _defaults_not_listed(self) -> 'Function':
        # PUBLIC EXECUTE is the default: listed, it means "not revoked".
        def is_default(g: Grant) -> bool:
            return (g.grantee.upper() == "PUBLIC" and g.privilege.upper() == "EXECUTE"
                    and not g.with_grant_option)

        if any(is_default(g) for g in self.grants):
            self.grants = [g for g in self.grants if not is_default(g)]
            self.revoked_defaults = [g for g in self.revoked_defaults if not is_default(g)]
        return self


class DefaultPrivileges(Model):
    """ALTER DEFAULT PRIVILEGES (PostgreSQL): what objects get when ``role`` creates them.
    Objects that exist already are not touched; their own grants say what they have."""

    role: str = Field(description="FOR ROLE: the role whose new objects get these")
    schema_: str | None = Field(None, alias="schema",
                                description="IN SCHEMA; none: wherever the role creates them")
    objects: Literal["tables", "sequences", "functions", "types", "schemas"]
    grants: list[Grant] = Field(
        default_factory=_new_list, description="privileges given beyond PostgreSQL's "
        "built-in defaults (the role's own are not tracked)")
    revoked_defaults: list[Grant] = Field(
        default_factory=_new_list, description="built-in defaults taken away, e.g. "
        '[{"grantee": "PUBLIC", "privilege": "EXECUTE"}] on functions; only without a '
        "schema (PostgreSQL cannot take a default away in one schema)")
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _what_postgresql_can_say(self) -> 'DefaultPrivileges':
        if self.schema_ is not None and self.revoked_defaults:
            raise ValueError(f"default privileges of role {self.role!r} in schema "
                             f"{self.schema_!r}: revoked_defaults needs no schema")
        if any(g.grantee == self.role for g in [*self.grants, *self.revoked_defaults]):
            raise ValueError(f"default privileges of role {self.role!r}: its own privileges "
                             "on what it creates are not tracked; leave them out")
        if self.schema_ is not None and self.objects == "schemas":
            raise ValueError(f"default privileges of role {self.role!r}: on schemas cannot "
                             "be given IN SCHEMA")
        return self


class Namespace(Model):
    """A PostgreSQL schema (the word 'schema' is taken by the whole model)."""

    name: str
    grants: list[Grant] = Field(default_factory=_new_list)
    comment: str | None = None


PUBLISH_OPERATIONS = ("insert", "update", "delete", "truncate")


class PublicationTable(Model):
    """One table of a publication (always added with ONLY: an inheritance child that is
    published is listed on its own, as pg_publication_rel has it)."""

    name: str
    schema_: str | None = Field(None, alias="schema")
    columns: list[str] = Field(default_factory=_new_list,
                               description="column list (PostgreSQL 15); empty: every column")
    where: str | None = Field(None, description="row filter (PostgreSQL 15), as pg_get_expr "
                              "prints it")
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _sorted_columns(self) -> 'PublicationTable':
        # The server keeps a column list in attnum order, which differs between databases
        # built in different orders: the set is what counts.
        if self.columns != sorted(self.columns):
            self.columns = sorted(self.columns)
        return self


class Publication(Model):
    """CREATE PUBLICATION (logical replication): FOR ALL TABLES, or tables and schemas."""

    name: str
    all_tables: bool = False
    tables: list[PublicationTable] = Field(default_factory=_new_list)
    schemas: list[str] = Field(default_factory=_new_list, description="FOR TABLES IN SCHEMA")
    publish: list[Literal["insert", "update", "delete", "truncate"]] = Field(
        default_factory=lambda: list(PUBLISH_OPERATIONS))
    publish_via_partition_root: bool = False
    comment: str | None = None

    @model_validator(mode="after")
    def _canonical_lists(self) -> 'Publication':
        publish = [op for op in PUBLISH_OPERATIONS if op in self.publish]
        if publish != self.publish:
            self.publish = publish
        if self.schemas != sorted(set(self.schemas)):
            self.schemas = sorted(set(self.schemas))
        if self.all_tables and (self.tables or self.schemas):
            raise ValueError(f"publication {self.name!r}: FOR ALL TABLES lists no tables "
                             "or schemas")
        return self


class EventTrigger(Model):
    """CREATE EVENT TRIGGER (database-wide, needs a superuser)."""

    name: str
    event: Literal["ddl_command_start", "ddl_command_end", "sql_drop", "table_rewrite",
                   "login"]
    tags: list[str] = Field(default_factory=_new_list, description="WHEN TAG IN (...), upper case")
    function: str = Field(description='the function it executes, "schema"."name" (quoted as '
                          "in Table.partition_of; a bare name is in public)")
    enabled: Literal["O", "D", "R", "A"] = "O"  # pg_event_trigger.evtenabled
    comment: str | None = None

    @model_validator(mode="after")
    def _canonical_tags(self) -> 'EventTrigger':
        # The server stores tags upper-cased; their order means nothing.
        tags = sorted({t.upper() for t in self.tags})
        if tags != self.tags:
            self.tags = tags
        return self


def _alias_not_null_is_not_state(tables: list[Table]) -> None:
    """A rowid table's INTEGER PRIMARY KEY is the rowid: it holds no NULL whether or not
    NOT NULL is declared, so the declaration is kept for rendering only. (Tables Lockplane
    created before hash format 4 all declare it; as state it made each of them drift from
    a schema saying ``id INTEGER PRIMARY KEY``, and rebuilt them for nothing.)"""
    for t in tables:
        pk = t.primary_key
        if t.without_rowid or pk is None or len(pk.columns) != 1:
            continue
        col = t.column(pk.columns[0])
        if col is not None and col.key_not_null and col.type.strip().upper() == "INTEGER":
            col.key_not_null = False
            col._alias_not_null = True


# Fields that describe intent or the original format, not the database's state.
# An object of PostgreSQL's dependency graph, as plans name what they create and drop:
# (kind, schema, name, identity arguments); kind "function", "relation" (table, view,
# sequence) or "type" (enum, domain, composite, range), arguments "" but for routines.
ObjectKey = tuple[str, str, str, str]


# (``unmanaged`` lists what introspection saw but does not model: a report, not state.)
_NOT_STATE = {"renamed_from", "fill_with", "is_primary_key", "clone_names", "unmanaged",
              "unvalidated_not_null", "values_renamed_from"}


class Schema(Model):
    dialect: Literal["postgres", "sqlite", "mysql"] = "postgres"
    schemas: list[Namespace] = Field(default_factory=_new_list)
    extensions: list[Extension] = Field(default_factory=_new_list)
    enums: list[EnumType] = Field(default_factory=_new_list)
    domains: list[DomainType] = Field(default_factory=_new_list)
    composite_types: list[CompositeType] = Field(default_factory=_new_list)
    sequences: list[Sequence] = Field(default_factory=_new_list)
    functions: list[Function] = Field(default_factory=_new_list)
    tables: list[Table] = Field(default_factory=_new_list)
    views: list[View] = Field(default_factory=_new_list)
    range_types: list[RangeType] = Field(default_factory=_new_list)
    collations: list[Collation] = Field(default_factory=_new_list)
    aggregates: list[Aggregate] = Field(default_factory=_new_list)
    publications: list[Publication] = Field(default_factory=_new_list)
    event_triggers: list[EventTrigger] = Field(default_factory=_new_list)
    default_privileges: list[DefaultPrivileges] = Field(
        default_factory=_new_list, description="ALTER DEFAULT PRIVILEGES (PostgreSQL)")
    unmanaged: list[str] = Field(
        default_factory=_new_list, description="objects the database has that Lockplane does not "
        "model (foreign tables, casts, operators ...), described for people: plans leave "
        "them as they are. Read from the database; not part of the state (nor the hash).")
    sparse_fields = ("range_types", "collations", "aggregates", "publications",
                     "event_triggers", "unmanaged", "default_privileges")
    _table_index: Any = PrivateAttr(default=None)
    # PostgreSQL's dependency graph as introspection read it (pg_depend): pairs
    # (dependent, what it depends on) of ObjectKey. Not state (no hash, no JSON): it only
    # orders a plan's steps (plan.order_changes); a schema from a file has none.
    _dependencies: frozenset[tuple[ObjectKey, ObjectKey]] = PrivateAttr(default=frozenset())
    # What a desired schema's SQL declared with a time value the server freezes
    # ('now'::timestamp ...): ("view", schema, name), ("default", schema, table, column),
    # ("check", schema, table). Not state either (lockplane/frozen.py compares those
    # objects without the frozen values); a schema read from a database has none.
    _frozen_literals: frozenset[tuple[str, ...]] = PrivateAttr(default=frozenset())
    # The version of the server the schema was read from (PostgreSQL's
    # server_version_num, 170002): a plan from it is made for that server's major
    # (plan.build_plan, Dialect.for_server). Not state either; a file's schema has none.
    _server_version: int | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _default_schemas(self) -> 'Schema':
        # What a dialect's schema may hold is the dialect's (imported here: the dialects
        # import the model).
        from .dialects import get_dialect

        d = get_dialect(self.dialect)
        default = d.default_schema
        for group in (self.extensions, self.enums, self.domains, self.composite_types,
                      self.sequences, self.functions, self.tables, self.views,
                      self.range_types, self.collations, self.aggregates):
            for obj in group:
                if not obj.schema_:
                    obj.schema_ = default
        for table in self.tables:
            for st in table.statistics:
                if not st.schema_:
                    st.schema_ = table.schema_
        for table in self.tables:
            for fk in table.foreign_keys:
                if not fk.referenced_schema:
                    fk.referenced_schema = table.schema_
        for pub in self.publications:
            for pt in pub.tables:
                if not pt.schema_:
                    pt.schema_ = default
        for et in self.event_triggers:
            # Quoted and qualified, as introspection writes it: one spelling, one hash.
            fn = quote_name(*split_name(et.function, default))
            if fn != et.function:
                et.function = fn
        listed: set[tuple[str | None, str]] = set()
        for t in self.tables:
            if (t.schema_, t.name) in listed:
                raise ValueError(f"table {t.schema_}.{t.name} is listed twice")
            listed.add((t.schema_, t.name))
        if self.default_privileges and not d.has_default_privileges:
            raise ValueError(f"default_privileges are PostgreSQL's; this schema's dialect "
                             f"is {self.dialect}")
        if any(not (p.grants or p.revoked_defaults) for p in self.default_privileges):
            # An entry that changes nothing is no entry (PostgreSQL keeps none either).
            self.default_privileges = [p for p in self.default_privileges
                                       if p.grants or p.revoked_defaults]
        if any(t.partition_of or t.inherits for t in self.tables):
            _complete_children(self)
        if not d.has_rowid_table_options:
            self._refuse_sqlite_only(d.has_virtual_generated_columns)
        elif d.nullable_key_columns:
            _alias_not_null_is_not_state(self.tables)
        if not d.has_not_null_constraint_names:
            named = next((f"{t.name}.{c.name}" for t in self.tables for c in t.columns
                          if c.not_null_name is not None), None)
            if named is not None:
                raise ValueError(f"column {named}: not_null_name (a named NOT NULL "
                                 f"constraint) is PostgreSQL's; this schema's dialect is "
                                 f"{self.dialect}")
        return self

    def _refuse_sqlite_only(self, virtual_columns: bool) -> None:
        # No other dialect renders these: accepting them would change the hash and plan
        # nothing (MySQL and PostgreSQL 18 have VIRTUAL generated columns too; an older
        # PostgreSQL refuses one when the plan is checked or applied).
        for t in self.tables:
            what = ("WITHOUT ROWID" if t.without_rowid else "STRICT" if t.strict
                    else "AUTOINCREMENT" if t.primary_key and t.primary_key.autoincrement
                    else next((f"key_not_null on column {c.name!r}" for c in t.columns
                               if c.key_not_null), None))
            if what is None and not virtual_columns:
                what = next((f"VIRTUAL generated column {c.name!r}" for c in t.columns
                             if c.generated is not None and c.generated_kind == "virtual"),
                            None)
            if what is not None:
                raise ValueError(f"table {t.name!r}: {what} is SQLite-only, and this "
                                 f"schema's dialect is {self.dialect}")

    # ----------------------------------------------------------------- lookups
    def table(self, schema: str, name: str) -> Table | None:
        # Differs look tables up thousands of times: index them once per tables list.
        # (Read from the private-attribute dict directly: pydantic's __getattr__ for a
        # private attribute costs more than the lookup itself.)
        private = self.__pydantic_private__  # type: ignore[attr-defined]
        idx = private.get("_table_index")
        tables = self.tables
        if idx is None or idx[0] is not tables or idx[1] != len(tables):
            idx = (tables, len(tables), {(t.schema_, t.name): t for t in tables})
            private["_table_index"] = idx
        return idx[2].get((schema, name))

    # ----------------------------------------------------------- canonical form
    def to_json(self, indent: int | None = 2) -> str:
        """The JSON a user reads and writes (superset of the original format)."""
        data = self.model_dump(mode="json", by_alias=True, exclude_defaults=False)
        return json.dumps(data, indent=indent, ensure_ascii=False)

    def canonical(self) -> dict[str, Any]:
        """Order-insensitive, intent-free form used for hashing and comparison."""
        data = self.model_dump(mode="json", by_alias=True)
        return _canonicalize(data, Schema)

    def hash(self) -> str:
        """sha256 of the canonical form's compact, key-sorted JSON."""
        return _hash(self)

    @property
    def dependencies(self) -> frozenset[tuple[ObjectKey, ObjectKey]]:
        """(dependent, dependency) pairs read from the server; empty when not known."""
        return self._dependencies

    def set_dependencies(self, edges: frozenset[tuple[ObjectKey, ObjectKey]]) -> None:
        self._dependencies = edges

    @property
    def server_version(self) -> int | None:
        """The version number of the server this schema was read from; None when it was
        not read from one (a file)."""
        return self._server_version

    def set_server_version(self, version: int | None) -> None:
        self._server_version = version

    @property
    def frozen_literals(self) -> frozenset[tuple[str, ...]]:
        return self._frozen_literals

    def set_frozen_literals(self, marks: frozenset[tuple[str, ...]]) -> None:
        self._frozen_literals = marks


TableKey = tuple[str, str]


def hashes(before: Schema, after: Schema) -> tuple[str, str]:
    """``(before.hash(), after.hash())``, with each table that is equal on both sides
    canonicalized once: on a large schema nearly every table is, and canonicalizing
    tables is most of the cost of a hash."""
    same = unchanged_tables(before, after)
    seen: dict[TableKey, bytes] = {}
    return _hash(before, remember=seen), _hash(after, reuse={k: seen[k] for k in same})


_COMPARED: ContextVar[tuple[Schema, Schema, frozenset[TableKey]] | None] = ContextVar(
    "lockplane_compared", default=None)


def unchanged_tables(before: Schema, after: Schema) -> frozenset[TableKey]:
    """The (schema, name) of every table that is equal in both schemas.

    Several differs and the hashes ask this of the same pair while a plan is built (on
    1,000 tables each answer compares ~15k models); inside ``comparing(before, after)``
    it is worked out once."""
    known = _COMPARED.get()
    if known is not None and known[0] is before and known[1] is after:
        return known[2]
    return frozenset(key for t in before.tables
                     if (other := after.table(*(key := (t.schema_ or "", t.name)))) is not None
                     and other == t)


@contextlib.contextmanager
def comparing(before: Schema, after: Schema) -> Iterator[None]:
    """Remember ``unchanged_tables(before, after)`` for the block. Neither schema may
    change inside it (building a plan only reads them)."""
    token = _COMPARED.set((before, after, unchanged_tables(before, after)))
    try:
        yield
    finally:
        _COMPARED.reset(token)


def _hash(schema: Schema, *, remember: dict[TableKey, bytes] | None = None,
          reuse: dict[TableKey, bytes] | None = None) -> str:
    """The hash of ``canonical()``, built table by table: each table's canonical JSON is
    made on its own and spliced into the document's (orjson.Fragment), which gives the
    same bytes as serializing the whole canonical form at once."""
    data = _canonicalize(schema.model_dump(mode="json", by_alias=True, exclude={"tables"}),
                         Schema)
    tables = []
    for t in schema.tables:
        # The canonical list is sorted by _sort_key, which for a table is (schema, name).
        key = (t.schema_ or "", t.name)
        text = reuse.get(key) if reuse is not None else None
        if text is None:
            text = _canonical_bytes(_canonicalize(t.model_dump(mode="json", by_alias=True),
                                                  Table))
        if remember is not None:
            remember[key] = text
        tables.append((key, text))
    tables.sort(key=lambda kt: kt[0])
    data["tables"] = [orjson.Fragment(text) for _, text in tables]
    return hashlib.sha256(_canonical_bytes(data)).hexdigest()


# Lists whose order is meaningful stay as they are; every other list of named objects is
# sorted so that catalog order (and column order) never changes a hash.
_ORDERED_LISTS = {"values", "keys", "include", "referenced_columns", "attributes",
                  "depends_on", "options"}


def _sort_key(item: Any) -> tuple[str, str, str, str, str]:
    if isinstance(item, dict):
        name = item.get("name")
        # Named objects sort by name alone; only unnamed ones (or ties such as grants)
        # pay for a full serialization.
        tail = "" if name is not None and "grantee" not in item else json.dumps(
            item, sort_keys=True, default=str)
        return (str(item.get("schema") or ""), str(name or ""), str(item.get("grantee") or ""),
                str(item.get("privilege") or ""), tail)
    return ("", "", "", "", json.dumps(item, sort_keys=True, default=str))


@functools.cache
def _walk_plan(cls: type[BaseModel]) -> tuple[tuple[str, type[BaseModel] | None, bool], ...]:
    """For a model class: its list/model fields as (json key, item model, keep order).

    Walking by the model's own structure visits only containers; leaf objects such as
    columns are never iterated key by key (this is what makes hashing 1,000 tables fast).
    """
    plan = []
    for name, field in cls.model_fields.items():
        key = field.alias or name
        ann = field.annotation
        if get_origin(ann) in (Union, types.UnionType):
            ann = next(a for a in get_args(ann) if a is not type(None))
        if get_origin(ann) is list:
            item = get_args(ann)[0]
            item_cls = item if isinstance(item, type) and issubclass(item, BaseModel) else None
            if item_cls is None:
                # Lists of names: order is meaningful (key columns, enum values), not roles.
                keep = key != "roles"
            else:
                keep = key in _ORDERED_LISTS
            plan.append((key, item_cls, keep))
        elif isinstance(ann, type) and issubclass(ann, BaseModel):
            plan.append((key, ann, True))
    return tuple(plan)


@functools.cache
def _sparse_defaults(cls: type[BaseModel]) -> tuple[tuple[str, Any], ...]:
    """(json key, default as dumped) of the class's sparse fields."""
    out = []
    for name in getattr(cls, "sparse_fields", ()):
        field = cls.model_fields[name]
        default = field.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):  # pragma: no cover - no such default today
            default = default.model_dump(mode="json")
        out.append((field.alias or name, default))
    return tuple(out)


@functools.cache
def _recipe(cls: type[BaseModel]) -> tuple[
        tuple[str, ...], bool, tuple[tuple[str, Any], ...],
        tuple[tuple[str, type[BaseModel] | None, bool], ...]]:
    """What canonicalizing a dump of ``cls`` does, worked out once per class: the keys to
    drop, whether ``columns`` is the original format's twin of ``keys``, the sparse
    defaults, and the fields to descend into or sort (ordered lists of names need
    nothing, so they are not visited at all)."""
    keys = {f.alias or n for n, f in cls.model_fields.items()}
    return (tuple(k for k in sorted(_NOT_STATE) if k in keys),
            "keys" in keys and "columns" in keys,
            _sparse_defaults(cls),
            tuple(step for step in _walk_plan(cls) if step[1] is not None or not step[2]))


def _canonicalize(data: dict[str, Any], cls: type[BaseModel]) -> dict[str, Any]:
    """Canonicalize a fresh ``model_dump`` of ``cls`` in place (ours to mutate: no copies)."""
    pops, legacy_columns, sparse, walk = _recipe(cls)
    for k in pops:
        data.pop(k, None)
    for k, default in sparse:
        if k in data and data[k] == default:
            del data[k]
    if legacy_columns and "keys" in data:
        data.pop("columns", None)  # the original format's index column list
    for key, item_cls, keep in walk:
        value = data.get(key)
        if not value:
            continue
        if value.__class__ is dict:
            if item_cls is not None:
                _canonicalize(value, item_cls)
            continue
        if item_cls is None:
            data[key] = sorted(value)  # a list of names whose order means nothing (roles)
            continue
        for item in value:
            _canonicalize(item, item_cls)
        if not keep:
            data[key] = sorted(value, key=_sort_key)
    return data


def _canonical_bytes(data: Any) -> bytes:
    """Compact, key-sorted UTF-8 JSON: json.dumps(data, sort_keys=True, separators=(",",
    ":"), ensure_ascii=False).encode(), made by orjson (same bytes, 5x faster)."""
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)


def quote_name(*parts: str) -> str:
    """``"schema"."name"``: the quoted form the model uses for references to relations."""
    return ".".join('"' + p.replace('"', '""') + '"' for p in parts)


def split_name(text: str, default_schema: str) -> tuple[str, str]:
    """``"s"."t"`` / ``s.t`` / ``t`` -> (schema, table); unquoted parts fold to lower case."""
    from .changes.pg_common import split_identifiers

    parts = split_identifiers(text.strip())
    if not parts or len(parts) > 2:
        raise ValueError(f"{text!r} is not a table name (table or schema.table)")
    return (default_schema, parts[0]) if len(parts) == 1 else (parts[0], parts[1])


def _complete_children(schema: Schema) -> None:
    """Partitions and INHERITS children: parent references quoted and qualified, and the
    columns a parent gives them marked ``inherited`` (added when a schema file leaves
    them out), parents first."""
    tables = {(t.schema_ or "", t.name): t for t in schema.tables}
    done: set[tuple[str, str]] = set()

    def complete(key: tuple[str, str], path: tuple[tuple[str, str], ...]) -> None:
        if key in done or key in path:
            return
        t = tables[key]
        s = t.schema_ or ""
        if t.partition_of:
            t.partition_of = quote_name(*split_name(t.partition_of, s))
        if t.inherits:
            t.inherits = [quote_name(*split_name(p, s)) for p in t.inherits]
        partition = t.partition_of is not None
        own = {c.name: c for c in t.columns}
        for ref in t.parents():
            pkey = split_name(ref, s)
            parent = tables.get(pkey)
            if parent is None:
                continue
            complete(pkey, (*path, key))
            for pc in parent.columns:
                mine = own.get(pc.name)
                if mine is None:
                    mine = pc.model_copy(update={"comment": None, "inherited": True,
                                                 "grants": []})
                    t.columns.append(mine)
                    own[pc.name] = mine
                elif not mine.inherited:
                    mine.inherited = True
        if partition:
            for c in t.columns:
                if not c.inherited:
                    c.inherited = True
        done.add(key)

    for key in tables:
        complete(key, ())


def qualified(schema: str | None, name: str) -> str:
    """A display name, not SQL: schema.name (SQL is always quoted by the dialect)."""
    return f"{schema}.{name}" if schema else name
