"""Read a live PostgreSQL database into the schema model.

A fixed handful of bulk catalog queries (pg_catalog only), whatever the number of
tables: per-table queries would make a 1,000-table database take seconds.

Every query runs in one transaction (one snapshot) with ``search_path = ''`` so that
format_type, pg_get_expr, pg_get_viewdef, pg_get_indexdef, pg_get_triggerdef and
pg_get_functiondef schema-qualify every name outside pg_catalog, as pg_dump does: the
text then means the same thing whatever search_path the reader of the model uses.
Non-pretty output is used everywhere so two loads from the same server are identical.
"""

from __future__ import annotations

import gc
from collections import defaultdict
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row

from ...model import Schema

Row = dict[str, Any]

# Schemas that are never user structure. Everything starting with pg_ is reserved by the
# server (pg_catalog, pg_toast, pg_temp_N, pg_toast_temp_N); `lockplane` is our state.
_USER_NS = "(n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' " \
           "AND n.nspname <> 'lockplane')"


def _not_extension_member(catalog: str, oid: str, *, classid: str | None = None) -> str:
    """SQL condition: the object is not part of an extension (pg_depend deptype 'e').

    ``classid``: an SQL expression for the catalog's oid instead (rows of several
    catalogs checked at once)."""
    cls = classid or f"'{catalog}'::regclass"
    return (f"NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = {cls} "
            f"AND e.objid = {oid} AND e.deptype = 'e')")


def _grants(acl: str, owner: str) -> str:
    """SQL: an object's ACL as a JSON array, minus the owner's own rights.

    Owners differ between databases and ownership is not tracked, so the owner's implicit
    privileges would only be noise. A NULL ACL (never granted or revoked) yields nothing.
    """
    return (
        "(SELECT coalesce(json_agg(json_build_object("
        "'grantee', CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(g.grantee) END, "
        "'privilege', g.privilege_type, 'with_grant_option', g.is_grantable)), '[]'::json) "
        f"FROM aclexplode({acl}) g WHERE g.grantee <> {owner})"
    )


def _grant_delta(acl: str, owner: str, kind: str) -> str:
    """SQL: ``grants`` and ``revoked_defaults`` of an object whose defaults grant something
    to others than its owner (functions: PUBLIC may EXECUTE).

    A NULL ACL means acldefault(kind, owner); what the defaults give is not listed, what
    the ACL lacks of them is ``revoked_defaults``. The owner's entries are skipped.
    """
    effective = f"coalesce({acl}, acldefault('{kind}', {owner}))"
    default = f"acldefault('{kind}', {owner})"

    def rows(source: str, other: str, *, grantable: bool) -> str:
        match = ("AND (NOT g.is_grantable OR o.is_grantable)" if grantable else "")
        return (
            "(SELECT coalesce(json_agg(json_build_object("
            "'grantee', CASE WHEN g.grantee = 0 THEN 'PUBLIC' "
            "ELSE pg_get_userbyid(g.grantee) END, "
            "'privilege', g.privilege_type, 'with_grant_option', g.is_grantable)), '[]'::json) "
            f"FROM aclexplode({source}) g WHERE g.grantee <> {owner} AND NOT EXISTS ("
            f"SELECT 1 FROM aclexplode({other}) o WHERE o.grantee = g.grantee "
            f"AND o.privilege_type = g.privilege_type {match}))")

    return (f"CASE WHEN {acl} IS NULL THEN '[]'::json "
            f"ELSE {rows(effective, default, grantable=True)} END AS grants, "
            f"CASE WHEN {acl} IS NULL THEN '[]'::json "
            f"ELSE {rows(default, effective, grantable=False)} END AS revoked_defaults")


def _comment(catalog: str, oid: str, sub: str = "0") -> str:
    """SQL: LEFT JOIN condition body for pg_description (joins beat per-row functions)."""
    return f"d.objoid = {oid} AND d.classoid = '{catalog}'::regclass AND d.objsubid = {sub}"


def _qualified_name(nsp: str, name: str) -> str:
    """SQL: a collation or opclass name as the deparser prints it under search_path ''."""
    return (f"CASE WHEN {nsp} = 'pg_catalog' THEN quote_ident({name}) "
            f"ELSE quote_ident({nsp}) || '.' || quote_ident({name}) END")


_Q_NAMESPACES = f"""
SELECT n.nspname AS name, d.description AS comment, {_grants('n.nspacl', 'n.nspowner')} AS grants
FROM pg_namespace n
LEFT JOIN pg_description d ON {_comment('pg_namespace', 'n.oid')}
WHERE {_USER_NS} AND n.nspname <> 'public' AND {_not_extension_member('pg_namespace', 'n.oid')}
"""

_Q_EXTENSIONS = f"""
SELECT e.extname AS name, n.nspname AS schema, e.extversion AS version, d.description AS comment
FROM pg_extension e
JOIN pg_namespace n ON n.oid = e.extnamespace
LEFT JOIN pg_description d ON {_comment('pg_extension', 'e.oid')}
WHERE e.extname <> 'plpgsql'
"""

# Tables (partitions too), views, materialized views and sequences in one pass. A
# partition's parent and an INHERITS child's parents come quoted and qualified.
_Q_RELATIONS = f"""
SELECT c.oid, n.nspname AS schema, c.relname AS name, c.relkind::text AS relkind,
       c.relrowsecurity AS rls_enabled, c.relforcerowsecurity AS rls_forced,
       c.reloptions AS options, d.description AS comment,
       CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid, false) END AS viewdef,
       {_grants('c.relacl', 'c.relowner')} AS grants,
       c.relpersistence = 'u' AS unlogged, c.relispartition AS is_partition,
       c.relreplident::text AS replident,
       CASE WHEN c.relreplident = 'i' THEN
         (SELECT ic.relname FROM pg_index ri JOIN pg_class ic ON ic.oid = ri.indexrelid
           WHERE ri.indrelid = c.oid AND ri.indisreplident LIMIT 1) END AS replident_index,
       CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END AS partition_by,
       CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid, false) END
         AS partition_bound,
       CASE WHEN c.reltoastrelid <> 0 THEN
         (SELECT tc.reloptions FROM pg_class tc WHERE tc.oid = c.reltoastrelid) END
         AS toast_options,
       CASE WHEN c.relkind IN ('r', 'p') THEN
         ARRAY(SELECT quote_ident(pn.nspname) || '.' || quote_ident(pc.relname)
                 FROM pg_inherits i
                 JOIN pg_class pc ON pc.oid = i.inhparent
                 JOIN pg_namespace pn ON pn.oid = pc.relnamespace
                WHERE i.inhrelid = c.oid ORDER BY i.inhseqno) END AS parents
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_description d ON {_comment('pg_class', 'c.oid')}
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S') AND {_USER_NS}
  AND {_not_extension_member('pg_class', 'c.oid')}
"""

# Columns of tables, of views (for their comments), of materialized views (for their
# indexes) and of composite types (relkind 'c'); other rows of relations that were not
# selected above are dropped in Python.
# A plain default cannot reference a column, so it is deparsed without the relation
# context (relid 0): half the cost, same text. A generated column's expression can.
# An identity column's sequence options come from pg_sequence (deptype 'i').
_Q_COLUMNS_TEMPLATE = f"""
SELECT a.attrelid AS relid, a.attnum, a.attname AS name, a.attcollation AS coll_oid,
       format_type(a.atttypid, a.atttypmod) AS type, NOT a.attnotnull AS nullable,
       CASE WHEN a.attgenerated = '' THEN pg_get_expr(ad.adbin, 0, false) END AS default,
       CASE WHEN a.attgenerated = 's' THEN pg_get_expr(ad.adbin, ad.adrelid, false) END
         AS generated,
       a.attidentity::text AS identity,
       CASE WHEN a.attcollation <> t.typcollation
            THEN {_qualified_name('cn.nspname', 'co.collname')} END AS collation,
       d.description AS comment, a.attinhcount > 0 AS inherited,
       CASE WHEN a.attstattarget >= 0 THEN a.attstattarget END AS statistics,
       {{compression}} AS compression,
       CASE WHEN a.attacl IS NOT NULL THEN {_grants('a.attacl', 'c.relowner')} END AS grants,
       CASE WHEN a.attidentity <> '' THEN
         (SELECT json_build_object('start', s.seqstart, 'increment', s.seqincrement,
                                   'min_value', s.seqmin, 'max_value', s.seqmax,
                                   'cache', s.seqcache, 'cycle', s.seqcycle,
                                   'type', format_type(s.seqtypid, NULL))
            FROM pg_depend dep JOIN pg_sequence s ON s.seqrelid = dep.objid
           WHERE dep.classid = 'pg_class'::regclass AND dep.refclassid = 'pg_class'::regclass
             AND dep.refobjid = a.attrelid AND dep.refobjsubid = a.attnum
             AND dep.deptype = 'i' LIMIT 1) END AS identity_sequence
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
LEFT JOIN pg_collation co ON co.oid = a.attcollation
LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
LEFT JOIN pg_description d ON {_comment('pg_class', 'a.attrelid', 'a.attnum')}
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'c') AND {_USER_NS}
  AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""


def _attnames(keys: str, rel: str) -> str:
    """SQL: attribute numbers -> names, keeping the array's order."""
    return (f"ARRAY(SELECT a.attname::text FROM unnest({keys}) WITH ORDINALITY k(num, ord) "
            f"JOIN pg_attribute a ON a.attrelid = {rel} AND a.attnum = k.num ORDER BY k.ord)")


def _q_constraints(nulls_not_distinct: str, delete_set_columns: str) -> str:
    # NOT NULL constraints (contype 'n', PG 17+) are modelled as Column.nullable.
    # Constraints a partition or child gets from its parent (conparentid: the clone of a
    # PRIMARY KEY, UNIQUE or FOREIGN KEY; not conislocal: an inherited CHECK) are the
    # parent's; so are the clones of a foreign key that references a partitioned table.
    return f"""
SELECT con.conrelid AS relid, con.conname AS name, con.contype::text AS contype,
       con.condeferrable AS deferrable, con.condeferred AS initially_deferred,
       con.connoinherit AS no_inherit, con.convalidated AS valid,
       CASE WHEN con.contype = 'c' THEN pg_get_expr(con.conbin, con.conrelid, false) END
         AS check_expr,
       CASE WHEN con.contype = 'x' THEN pg_get_constraintdef(con.oid, false) END AS condef,
       {_attnames('con.conkey', 'con.conrelid')} AS columns,
       fn.nspname AS ref_schema, fc.relname AS ref_table,
       {_attnames('con.confkey', 'con.confrelid')} AS ref_columns,
       con.confupdtype::text AS on_update, con.confdeltype::text AS on_delete,
       con.confmatchtype::text AS match,
       coalesce({nulls_not_distinct}, false) AS nulls_not_distinct,
       CASE WHEN i.indnkeyatts < i.indnatts THEN
         ARRAY(SELECT a.attname::text FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(num, ord)
                 JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num
                WHERE k.ord > i.indnkeyatts ORDER BY k.ord) END AS include,
       {delete_set_columns} AS delete_set_columns,
       d.description AS comment
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class fc ON fc.oid = con.confrelid
LEFT JOIN pg_namespace fn ON fn.oid = fc.relnamespace
LEFT JOIN pg_index i ON i.indexrelid = con.conindid AND con.contype IN ('u', 'p')
LEFT JOIN pg_description d ON {_comment('pg_constraint', 'con.oid')}
WHERE con.contype IN ('p', 'u', 'c', 'f', 'x') AND {_USER_NS}
  AND con.conparentid = 0 AND con.conislocal
"""


def _q_indexes(nulls_not_distinct: str) -> str:
    # One row per index key (and INCLUDE column), resolved to names in Python from the
    # columns already read: joining pg_attribute here costs more than the whole query.
    #
    # Indexes that back a PRIMARY KEY / UNIQUE / EXCLUDE constraint are part of that
    # constraint. A foreign key's conindid points at the *referenced* table's index, hence
    # the conrelid condition. An expression key's text comes from pg_get_indexdef(oid, k),
    # and the full definition is fetched for indexes that have one, so Python can see
    # whether the server prints a COLLATE clause for it (an expression's natural
    # collation is not exposed in SQL). A partition's index attached to its parent's
    # partitioned index (pg_inherits) is the parent's: it comes and goes with it.
    return f"""
SELECT i.indexrelid AS oid, i.indrelid AS relid, ic.relname AS name, i.indisunique AS unique,
       am.amname::text AS method, pg_get_expr(i.indpred, i.indrelid, false) AS where,
       {nulls_not_distinct} AS nulls_not_distinct, i.indnkeyatts AS nkeys,
       d.description AS comment, i.indisvalid AS valid, ic.reloptions AS options,
       CASE WHEN k.ord = 1 AND 0 = ANY (i.indkey::int2[])
            THEN pg_get_indexdef(i.indexrelid, 0, false) END AS indexdef,
       k.ord, k.num AS attnum, k.option, k.coll,
       CASE WHEN k.num = 0 THEN pg_get_indexdef(i.indexrelid, k.ord::int, false) END
         AS expression,
       CASE WHEN NOT oc.opcdefault THEN {_qualified_name('ocn.nspname', 'oc.opcname')} END
         AS opclass,
       CASE WHEN k.coll <> 0 THEN {_qualified_name('kcn.nspname', 'kc.collname')} END
         AS collation
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_am am ON am.oid = ic.relam
CROSS JOIN LATERAL unnest(i.indkey::int2[], i.indclass::oid[], i.indoption::int2[],
                          i.indcollation::oid[]) WITH ORDINALITY k(num, opclass, option, coll, ord)
LEFT JOIN pg_opclass oc ON oc.oid = k.opclass
LEFT JOIN pg_namespace ocn ON ocn.oid = oc.opcnamespace
LEFT JOIN pg_collation kc ON kc.oid = k.coll
LEFT JOIN pg_namespace kcn ON kcn.oid = kc.collnamespace
LEFT JOIN pg_description d ON {_comment('pg_class', 'i.indexrelid')}
WHERE c.relkind IN ('r', 'p', 'm') AND {_USER_NS}
  AND NOT EXISTS (SELECT 1 FROM pg_constraint pc
                   WHERE pc.conindid = i.indexrelid AND pc.conrelid = i.indrelid
                     AND pc.contype IN ('p', 'u', 'x'))
  AND NOT EXISTS (SELECT 1 FROM pg_inherits ih WHERE ih.inhrelid = i.indexrelid)
ORDER BY i.indexrelid, k.ord
"""


# A partition's clone of its parent's row trigger (tgparentid) is the parent's.
def _q_triggers(parent: str) -> str:
    return f"""
SELECT t.tgrelid AS relid, t.tgname AS name, pg_get_triggerdef(t.oid, false) AS definition,
       t.tgenabled::text AS enabled, d.description AS comment
FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_description d ON {_comment('pg_trigger', 't.oid')}
WHERE NOT t.tgisinternal AND {parent} AND {_USER_NS}
"""

_Q_POLICIES = f"""
SELECT p.polrelid AS relid, p.polname AS name, p.polcmd::text AS command,
       p.polpermissive AS permissive,
       ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_get_userbyid(r)::text END
               FROM unnest(p.polroles) r) AS roles,
       pg_get_expr(p.polqual, p.polrelid, false) AS using,
       pg_get_expr(p.polwithcheck, p.polrelid, false) AS with_check,
       d.description AS comment
FROM pg_policy p
JOIN pg_class c ON c.oid = p.polrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_description d ON {_comment('pg_policy', 'p.oid')}
WHERE {_USER_NS}
"""

# A partition's copies of its parent's indexes and constraints, by the parent's name.
_Q_CLONES = f"""
SELECT ci.indrelid AS relid, 'index:' || pic.relname AS parent, cic.relname AS name
FROM pg_inherits ih
JOIN pg_class cic ON cic.oid = ih.inhrelid AND cic.relkind IN ('i', 'I')
JOIN pg_index ci ON ci.indexrelid = cic.oid
JOIN pg_class pic ON pic.oid = ih.inhparent
JOIN pg_class c ON c.oid = ci.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relispartition AND {_USER_NS}
  AND NOT EXISTS (SELECT 1 FROM pg_constraint pc WHERE pc.conindid = ci.indexrelid
                   AND pc.conrelid = ci.indrelid AND pc.contype IN ('p', 'u', 'x'))
UNION ALL
SELECT con.conrelid, 'constraint:' || pcon.conname, con.conname
FROM pg_constraint con
JOIN pg_constraint pcon ON pcon.oid = con.conparentid
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE con.conparentid <> 0 AND c.relispartition AND {_USER_NS}
"""

# Rewrite rules other than a view's own (_RETURN).
_Q_RULES = f"""
SELECT r.ev_class AS relid, r.rulename AS name, pg_get_ruledef(r.oid, false) AS definition,
       r.ev_enabled::text AS enabled, d.description AS comment
FROM pg_rewrite r
JOIN pg_class c ON c.oid = r.ev_class
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_description d ON {_comment('pg_rewrite', 'r.oid')}
WHERE r.rulename <> '_RETURN' AND {_USER_NS}
"""

# What a view's (or matview's) rewrite rule reads from, one row per relation.
_Q_VIEW_DEPS = """
SELECT DISTINCT r.ev_class AS relid, dn.nspname || '.' || dc.relname AS dep
FROM pg_rewrite r
JOIN pg_depend dep ON dep.classid = 'pg_rewrite'::regclass AND dep.objid = r.oid
                  AND dep.refclassid = 'pg_class'::regclass AND dep.refobjid <> r.ev_class
JOIN pg_class dc ON dc.oid = dep.refobjid
JOIN pg_namespace dn ON dn.oid = dc.relnamespace
JOIN pg_class c ON c.oid = r.ev_class
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('v', 'm') AND """ + _USER_NS

# Sequences with their owning column. Identity sequences (deptype 'i') belong to the
# column's identity and are not objects of their own.
_Q_SEQUENCES = f"""
SELECT s.seqrelid AS relid, format_type(s.seqtypid, NULL) AS data_type, s.seqstart AS start,
       s.seqincrement AS increment, s.seqmin AS min_value, s.seqmax AS max_value,
       s.seqcache AS cache, s.seqcycle AS cycle,
       (SELECT json_build_array(tn.nspname, tc.relname, ta.attname)
          FROM pg_depend dep
          JOIN pg_class tc ON tc.oid = dep.refobjid
          JOIN pg_namespace tn ON tn.oid = tc.relnamespace
          JOIN pg_attribute ta ON ta.attrelid = tc.oid AND ta.attnum = dep.refobjsubid
         WHERE dep.classid = 'pg_class'::regclass AND dep.objid = s.seqrelid
           AND dep.refclassid = 'pg_class'::regclass AND dep.deptype = 'a'
           AND dep.refobjsubid > 0
         LIMIT 1) AS owned_by,
       EXISTS (SELECT 1 FROM pg_depend dep
                WHERE dep.classid = 'pg_class'::regclass AND dep.objid = s.seqrelid
                  AND dep.deptype = 'i') AS is_identity
FROM pg_sequence s
JOIN pg_class c ON c.oid = s.seqrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {_USER_NS}
"""

# Enums, domains and composite types. A composite type whose typrelid is a table or view
# is that relation's row type, not a type of its own.
_Q_TYPES = f"""
SELECT t.oid, n.nspname AS schema, t.typname AS name, t.typtype::text AS typtype,
       t.typrelid AS relid, d.description AS comment,
       ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid
              ORDER BY e.enumsortorder) AS enum_values,
       CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END AS base_type,
       NOT t.typnotnull AS nullable,
       pg_get_expr(t.typdefaultbin, 0, false) AS default,
       CASE WHEN t.typcollation <> bt.typcollation
            THEN {_qualified_name('cn.nspname', 'co.collname')} END AS collation,
       (SELECT coalesce(json_agg(json_build_object(
                   'name', dc.conname, 'expression', pg_get_expr(dc.conbin, 0, false),
                   'comment', dd.description) ORDER BY dc.conname), '[]'::json)
          FROM pg_constraint dc
          LEFT JOIN pg_description dd ON dd.objoid = dc.oid
                AND dd.classoid = 'pg_constraint'::regclass AND dd.objsubid = 0
         WHERE dc.contypid = t.oid AND dc.contype = 'c') AS checks
FROM pg_type t
JOIN pg_namespace n ON n.oid = t.typnamespace
LEFT JOIN pg_type bt ON bt.oid = t.typbasetype
LEFT JOIN pg_class tr ON tr.oid = t.typrelid
LEFT JOIN pg_collation co ON co.oid = t.typcollation
LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
LEFT JOIN pg_description d ON {_comment('pg_type', 't.oid')}
WHERE (t.typtype IN ('e', 'd') OR (t.typtype = 'c' AND tr.relkind = 'c')) AND {_USER_NS}
  AND {_not_extension_member('pg_type', 't.oid')}
"""

_Q_FUNCTIONS = f"""
SELECT n.nspname AS schema, p.proname AS name,
       pg_get_function_identity_arguments(p.oid) AS identity_arguments,
       p.prokind::text AS prokind, pg_get_functiondef(p.oid) AS definition,
       {_grant_delta('p.proacl', 'p.proowner', 'f')}, d.description AS comment
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
LEFT JOIN pg_description d ON {_comment('pg_proc', 'p.oid')}
WHERE p.prokind IN ('f', 'p') AND {_USER_NS} AND {_not_extension_member('pg_proc', 'p.oid')}
  AND NOT EXISTS (SELECT 1 FROM pg_depend dep WHERE dep.classid = 'pg_proc'::regclass
                   AND dep.objid = p.oid AND dep.deptype = 'i')
"""

# Extended statistics (CREATE STATISTICS), attached to their table.
_Q_STATISTICS = f"""
SELECT s.stxrelid AS relid, sn.nspname AS schema, s.stxname AS name,
       pg_get_statisticsobjdef(s.oid) AS definition, d.description AS comment
FROM pg_statistic_ext s
JOIN pg_namespace sn ON sn.oid = s.stxnamespace
JOIN pg_class c ON c.oid = s.stxrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_description d ON {_comment('pg_statistic_ext', 's.oid')}
WHERE {_USER_NS}
"""

# Range types (their multirange type and constructor functions come with them).
_Q_RANGES = f"""
SELECT n.nspname AS schema, t.typname AS name, d.description AS comment,
       format_type(r.rngsubtype, NULL) AS subtype,
       CASE WHEN NOT oc.opcdefault THEN {_qualified_name('ocn.nspname', 'oc.opcname')} END
         AS subtype_opclass,
       CASE WHEN r.rngcollation <> st.typcollation
            THEN {_qualified_name('cn.nspname', 'co.collname')} END AS collation,
       CASE WHEN r.rngcanonical <> 0 THEN r.rngcanonical::regproc::text END AS canonical,
       CASE WHEN r.rngsubdiff <> 0 THEN r.rngsubdiff::regproc::text END AS subtype_diff,
       mt.typname AS multirange_name
FROM pg_range r
JOIN pg_type t ON t.oid = r.rngtypid
JOIN pg_namespace n ON n.oid = t.typnamespace
JOIN pg_type st ON st.oid = r.rngsubtype
LEFT JOIN pg_type mt ON mt.oid = r.rngmultitypid
LEFT JOIN pg_opclass oc ON oc.oid = r.rngsubopc
LEFT JOIN pg_namespace ocn ON ocn.oid = oc.opcnamespace
LEFT JOIN pg_collation co ON co.oid = r.rngcollation
LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
LEFT JOIN pg_description d ON {_comment('pg_type', 't.oid')}
WHERE {_USER_NS} AND {_not_extension_member('pg_type', 't.oid')}
"""

_Q_COLLATIONS = f"""
SELECT n.nspname AS schema, c.collname AS name, c.collprovider::text AS provider,
       c.collcollate AS lc_collate, c.collctype AS lc_ctype, {{icu_locale}} AS locale,
       c.collisdeterministic AS deterministic, d.description AS comment
FROM pg_collation c
JOIN pg_namespace n ON n.oid = c.collnamespace
LEFT JOIN pg_description d ON {_comment('pg_collation', 'c.oid')}
WHERE {_USER_NS} AND {_not_extension_member('pg_collation', 'c.oid')}
"""

_Q_AGGREGATES = f"""
SELECT n.nspname AS schema, p.proname AS name, a.aggkind::text AS aggkind,
       pg_get_function_identity_arguments(p.oid) AS identity_arguments,
       pg_get_function_arguments(p.oid) AS arguments, p.proparallel::text AS parallel,
       a.aggtransfn::regproc::text AS sfunc, format_type(a.aggtranstype, NULL) AS stype,
       a.aggtransspace AS sspace,
       CASE WHEN a.aggfinalfn <> 0 THEN a.aggfinalfn::regproc::text END AS finalfunc,
       a.aggfinalextra AS finalfunc_extra, a.aggfinalmodify::text AS finalfunc_modify,
       CASE WHEN a.aggcombinefn <> 0 THEN a.aggcombinefn::regproc::text END AS combinefunc,
       CASE WHEN a.aggserialfn <> 0 THEN a.aggserialfn::regproc::text END AS serialfunc,
       CASE WHEN a.aggdeserialfn <> 0 THEN a.aggdeserialfn::regproc::text END
         AS deserialfunc,
       a.agginitval AS initcond,
       CASE WHEN a.aggmtransfn <> 0 THEN a.aggmtransfn::regproc::text END AS msfunc,
       CASE WHEN a.aggminvtransfn <> 0 THEN a.aggminvtransfn::regproc::text END AS minvfunc,
       CASE WHEN a.aggmtranstype <> 0 THEN format_type(a.aggmtranstype, NULL) END AS mstype,
       a.aggmtransspace AS msspace,
       CASE WHEN a.aggmfinalfn <> 0 THEN a.aggmfinalfn::regproc::text END AS mfinalfunc,
       a.aggmfinalextra AS mfinalfunc_extra, a.aggmfinalmodify::text AS mfinalfunc_modify,
       a.aggminitval AS minitcond,
       CASE WHEN a.aggsortop <> 0 THEN
         (SELECT CASE WHEN on_.nspname = 'pg_catalog' THEN o.oprname
                      ELSE 'OPERATOR(' || quote_ident(on_.nspname) || '.' || o.oprname || ')'
                 END
            FROM pg_operator o JOIN pg_namespace on_ ON on_.oid = o.oprnamespace
           WHERE o.oid = a.aggsortop) END AS sortop,
       d.description AS comment
FROM pg_aggregate a
JOIN pg_proc p ON p.oid = a.aggfnoid
JOIN pg_namespace n ON n.oid = p.pronamespace
LEFT JOIN pg_description d ON {_comment('pg_proc', 'p.oid')}
WHERE {_USER_NS} AND {_not_extension_member('pg_proc', 'p.oid')}
"""

# Publications with their tables (ONLY each: pg_publication_rel lists inheritance
# children on their own) and schemas. Row filters, column lists and TABLES IN SCHEMA are
# PostgreSQL 15; pubviaroot 13.
def _q_publications(version: int) -> str:
    pg15 = version >= 150000
    where = "pg_get_expr(pr.prqual, pr.prrelid, false)" if pg15 else "NULL::text"
    columns = (f"CASE WHEN pr.prattrs IS NOT NULL THEN "
               f"{_attnames('pr.prattrs::int2[]', 'pr.prrelid')} END" if pg15 else "NULL")
    schemas = ("ARRAY(SELECT sn.nspname::text FROM pg_publication_namespace ps "
               "JOIN pg_namespace sn ON sn.oid = ps.pnnspid WHERE ps.pnpubid = p.oid)"
               if pg15 else "ARRAY[]::text[]")
    via_root = "p.pubviaroot" if version >= 130000 else "false"
    return f"""
SELECT p.pubname AS name, p.puballtables AS all_tables, p.pubinsert AS insert,
       p.pubupdate AS update, p.pubdelete AS delete, p.pubtruncate AS truncate,
       {via_root} AS via_root, d.description AS comment, {schemas} AS schemas,
       (SELECT coalesce(json_agg(json_build_object(
                   'schema', tn.nspname, 'name', tc.relname, 'where', {where},
                   'columns', {columns})), '[]'::json)
          FROM pg_publication_rel pr
          JOIN pg_class tc ON tc.oid = pr.prrelid
          JOIN pg_namespace tn ON tn.oid = tc.relnamespace
         WHERE pr.prpubid = p.oid) AS tables
FROM pg_publication p
LEFT JOIN pg_description d ON {_comment('pg_publication', 'p.oid')}
WHERE {_not_extension_member('pg_publication', 'p.oid')}
"""


_Q_EVENT_TRIGGERS = f"""
SELECT et.evtname AS name, et.evtevent AS event, et.evttags AS tags,
       et.evtenabled::text AS enabled, fn.nspname AS function_schema,
       f.proname AS function_name, d.description AS comment
FROM pg_event_trigger et
JOIN pg_proc f ON f.oid = et.evtfoid
JOIN pg_namespace fn ON fn.oid = f.pronamespace
LEFT JOIN pg_description d ON {_comment('pg_event_trigger', 'et.oid')}
WHERE {_not_extension_member('pg_event_trigger', 'et.oid')}
"""


def _unmanaged_row(catalog: str, what: str, source: str, where: str = "true") -> str:
    """SQL: (catalog, oid, description) rows of one catalog, for _Q_UNMANAGED."""
    return (f"SELECT '{catalog}'::regclass AS classid, x.oid AS objid, {what} AS what "
            f"FROM {catalog} x {source} WHERE {where}")


def _in_user_schema(label: str, catalog: str, name: str, nsp: str, extra: str = "") -> str:
    """SQL: 'label schema.name' rows of a namespaced catalog, outside system schemas."""
    return _unmanaged_row(catalog, f"'{label} ' || n.nspname || '.' || x.{name}{extra}",
                          f"JOIN pg_namespace n ON n.oid = x.{nsp}", _USER_NS)


def _am_name(column: str) -> str:
    return f" || ' USING ' || (SELECT am.amname FROM pg_am am WHERE am.oid = x.{column})"


# Objects of kinds the model does not have, described for the "not managed" warning: a
# plan neither creates nor drops them, and must not look as if they were not there.
# Casts, languages, access methods and transforms have no schema: user-made ones are
# those past the bootstrap OIDs (FirstNormalObjectId). One extension check for all
# (a NOT EXISTS per branch doubles the planning time of this query).
_Q_UNMANAGED = f"""
WITH rel AS (  -- one pass over pg_class for foreign tables and tablespaces
    SELECT c.oid, c.relkind, c.relname, c.reltablespace, n.nspname
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE (c.relkind = 'f' OR c.reltablespace <> 0) AND {_USER_NS})
SELECT u.what FROM (
""" + "\nUNION ALL ".join([
    "SELECT 'pg_class'::regclass AS classid, r.oid AS objid, "
    "'foreign table ' || r.nspname || '.' || r.relname AS what FROM rel r "
    "WHERE r.relkind = 'f'",
    _unmanaged_row("pg_foreign_data_wrapper", "'foreign data wrapper ' || x.fdwname", ""),
    _unmanaged_row("pg_foreign_server", "'server ' || x.srvname", ""),
    # The view, not the catalog: pg_user_mapping holds passwords and only superusers read it.
    "SELECT 'pg_user_mapping'::regclass, x.umid, "
    "'user mapping for ' || x.usename || ' server ' || x.srvname FROM pg_user_mappings x",
    _in_user_schema("text search configuration", "pg_ts_config", "cfgname", "cfgnamespace"),
    _in_user_schema("text search dictionary", "pg_ts_dict", "dictname", "dictnamespace"),
    _in_user_schema("text search parser", "pg_ts_parser", "prsname", "prsnamespace"),
    _in_user_schema("text search template", "pg_ts_template", "tmplname", "tmplnamespace"),
    _unmanaged_row("pg_cast", "'cast (' || format_type(x.castsource, NULL) || ' AS ' "
                   "|| format_type(x.casttarget, NULL) || ')'", "", "x.oid >= 16384"),
    _in_user_schema("operator", "pg_operator", "oprname", "oprnamespace",
                    " || ' (' || CASE WHEN x.oprleft = 0 THEN 'NONE' "
                    "ELSE format_type(x.oprleft, NULL) END || ', ' "
                    "|| format_type(x.oprright, NULL) || ')'"),
    _in_user_schema("operator class", "pg_opclass", "opcname", "opcnamespace",
                    _am_name("opcmethod")),
    _in_user_schema("operator family", "pg_opfamily", "opfname", "opfnamespace",
                    _am_name("opfmethod")),
    _in_user_schema("conversion", "pg_conversion", "conname", "connamespace"),
    _unmanaged_row("pg_am", "'access method ' || x.amname", "", "x.oid >= 16384"),
    _unmanaged_row("pg_language", "'language ' || x.lanname", "", "x.oid >= 16384"),
    _unmanaged_row("pg_transform", "'transform for ' || format_type(x.trftype, NULL) "
                   "|| ' language ' || l.lanname",
                   "JOIN pg_language l ON l.oid = x.trflang", "x.oid >= 16384"),
    # Column-level grants let anyone read these columns of pg_subscription.
    _unmanaged_row("pg_subscription", "'subscription ' || x.subname", "",
                   "x.subdbid = (SELECT oid FROM pg_database "
                   "WHERE datname = current_database())"),
    _unmanaged_row("pg_default_acl", "'default privileges for role ' "
                   "|| pg_get_userbyid(x.defaclrole) || coalesce(' in schema ' || n.nspname, "
                   "'') || ' on ' || CASE x.defaclobjtype WHEN 'r' THEN 'tables' "
                   "WHEN 'S' THEN 'sequences' WHEN 'f' THEN 'functions' WHEN 'T' THEN 'types' "
                   "WHEN 'n' THEN 'schemas' ELSE 'objects' END",
                   "LEFT JOIN pg_namespace n ON n.oid = x.defaclnamespace"),
    # A CREATE TABLE or CREATE INDEX from a plan would put it in the default tablespace.
    # How many relations use it, and the first few (a tablespace may hold thousands).
    "SELECT 'pg_tablespace'::regclass, t.oid, 'tablespace ' || t.spcname || ': ' "
    "|| to_char(count(*), 'FM999,999,999,999') "
    "|| CASE WHEN count(*) = 1 THEN ' relation (' ELSE ' relations (' END "
    "|| array_to_string((array_agg(r.nspname || '.' || r.relname "
    "ORDER BY r.nspname, r.relname))[1:3], ', ') "
    "|| CASE WHEN count(*) > 3 THEN ', ...)' ELSE ')' END "
    "FROM rel r JOIN pg_tablespace t ON t.oid = r.reltablespace "
    "WHERE r.relkind IN ('r', 'p', 'm', 'i', 'I') GROUP BY t.oid, t.spcname",
]) + f"\n) u WHERE {_not_extension_member('', 'u.objid', classid='u.classid')}\n"

_FK_ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL",
               "d": "SET DEFAULT"}
_FK_MATCH = {"f": "FULL", "p": "PARTIAL", "s": "SIMPLE"}
_POLICY_COMMANDS = {"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE", "*": "ALL"}
_IDENTITY = {"a": "always", "d": "by_default"}
_REPLIDENT = {"d": "default", "f": "full", "n": "nothing"}


def introspect(conn: psycopg.Connection[Any]) -> Schema:
    """The structure of the database behind ``conn`` (dialect "postgres").

    Leaves the connection as it was: the work happens in a transaction (or a savepoint
    when one is already open) that is always rolled back, which also undoes SET LOCAL.
    Needs PostgreSQL 12 or later (pg_attribute.attgenerated).
    """
    version = conn.info.server_version
    nnd = "i.indnullsnotdistinct" if version >= 150000 else "false"
    del_cols = (_attnames('con.confdelsetcols', 'con.conrelid') if version >= 150000
                else "ARRAY[]::text[]")
    trigger_parent = "t.tgparentid = 0" if version >= 130000 else "true"
    compression = ("CASE a.attcompression WHEN 'p' THEN 'pglz' WHEN 'l' THEN 'lz4' END"
                   if version >= 140000 else "NULL::text")
    icu_locale = ("c.colllocale" if version >= 170000 else "c.colliculocale"
                  if version >= 150000 else "NULL::text")
    top_level = conn.info.transaction_status == TransactionStatus.IDLE
    rows: dict[str, list[Row]] = {}
    with conn.transaction(force_rollback=True), conn.cursor(row_factory=dict_row) as cur:
        _fast_json(cur)
        if top_level:
            # One snapshot for every query, so the pieces agree with each other.
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cur.execute("SET LOCAL search_path = ''")
        for key, query in (("namespaces", _Q_NAMESPACES), ("extensions", _Q_EXTENSIONS),
                           ("relations", _Q_RELATIONS),
                           ("columns", _Q_COLUMNS_TEMPLATE.format(compression=compression)),
                           ("constraints", _q_constraints(nnd, del_cols)),
                           ("indexes", _q_indexes(nnd)),
                           ("triggers", _q_triggers(trigger_parent)),
                           ("policies", _Q_POLICIES), ("rules", _Q_RULES),
                           ("clones", _Q_CLONES), ("statistics", _Q_STATISTICS),
                           ("ranges", _Q_RANGES if version >= 140000
                            else _Q_RANGES.replace("r.rngmultitypid", "0")),
                           ("collations", _Q_COLLATIONS.format(icu_locale=icu_locale)),
                           ("aggregates", _Q_AGGREGATES),
                           ("publications", _q_publications(version)),
                           ("event_triggers", _Q_EVENT_TRIGGERS),
                           ("unmanaged", _Q_UNMANAGED),
                           ("deps", _Q_VIEW_DEPS), ("sequences", _Q_SEQUENCES),
                           ("types", _Q_TYPES), ("functions", _Q_FUNCTIONS)):
            cur.execute(query)
            rows[key] = cur.fetchall()
    # Building the tree allocates ~100k acyclic objects; the cyclic collector would rescan
    # the growing tree again and again (a third of the time on 1,000 tables).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _build(rows)
    finally:
        if gc_was_enabled:
            gc.enable()


def _fast_json(cur: psycopg.Cursor[Any]) -> None:
    """Parse this cursor's json columns (grants, identity options) with orjson: same
    values for what these queries build (strings, booleans, 64-bit integers), a third of
    the fetch time on a large database."""
    try:
        import orjson
    except ImportError:  # pragma: no cover - orjson comes with prefect
        return
    from psycopg.types.json import set_json_loads

    set_json_loads(orjson.loads, cur)


def _group(rows: list[Row]) -> dict[int, list[Row]]:
    grouped: dict[int, list[Row]] = defaultdict(list)
    for row in rows:
        grouped[row["relid"]].append(row)
    return grouped


def _build(rows: dict[str, list[Row]]) -> Schema:
    # Plain dicts validated once at the end: one pydantic call for the whole tree is
    # several times faster than a model instance per column on a 1,000-table database
    # (and faster than model_construct-style building in Python, measured: 49 vs 78 ms).
    rel = {kind: _group(rows[kind]) for kind in
           ("columns", "constraints", "indexes", "triggers", "policies", "deps", "rules",
            "clones", "statistics")}
    seq_rows = {row["relid"]: row for row in rows["sequences"]}
    tables, views, sequences = [], [], []
    for r in rows["relations"]:
        if r["relkind"] in ("r", "p"):
            tables.append(_table(r, rel))
        elif r["relkind"] in ("v", "m"):
            views.append(_view(r, rel))
        elif r["relkind"] == "S":
            seq = seq_rows.get(r["oid"])
            if seq is not None and not seq["is_identity"]:
                sequences.append(_sequence(r, seq))
    types = rows["types"]
    data = {
        "dialect": "postgres",
        "schemas": sorted(({"name": r["name"], "grants": _grants_of(r), "comment": r["comment"]}
                           for r in rows["namespaces"]), key=lambda ns: ns["name"]),
        "extensions": _by_name([{"name": r["name"], "schema": r["schema"],
                                 "version": r["version"], "comment": r["comment"]}
                                for r in rows["extensions"]]),
        "enums": _by_name([{"name": r["name"], "schema": r["schema"],
                            "values": r["enum_values"], "comment": r["comment"]}
                           for r in types if r["typtype"] == "e"]),
        "domains": _by_name([_domain(r) for r in types if r["typtype"] == "d"]),
        "composite_types": _by_name([
            {"name": r["name"], "schema": r["schema"], "comment": r["comment"],
             "attributes": [{"name": c["name"], "type": c["type"], "collation": c["collation"]}
                            for c in rel["columns"].get(r["relid"], [])]}
            for r in types if r["typtype"] == "c"]),
        "sequences": _by_name(sequences),
        "functions": sorted(
            ({"name": r["name"], "schema": r["schema"],
              "identity_arguments": r["identity_arguments"],
              "kind": "procedure" if r["prokind"] == "p" else "function",
              "definition": r["definition"], "grants": _grants_of(r),
              "revoked_defaults": _grants_of(r, "revoked_defaults"), "comment": r["comment"]}
             for r in rows["functions"]),
            key=lambda f: (f["schema"], f["name"], f["identity_arguments"])),
        "tables": _by_name(tables),
        "views": _by_name(views),
        "range_types": _by_name([_range(r) for r in rows["ranges"]]),
        "collations": _by_name([_collation(r) for r in rows["collations"]]),
        "aggregates": sorted((_aggregate(r) for r in rows["aggregates"]),
                             key=lambda f: (f["schema"], f["name"], f["identity_arguments"])),
        "publications": sorted((_publication(r) for r in rows["publications"]),
                               key=lambda p: p["name"]),
        "event_triggers": sorted(
            ({"name": r["name"], "event": r["event"], "tags": r["tags"] or [],
              "function": f"{_quote(r['function_schema'])}.{_quote(r['function_name'])}",
              "enabled": r["enabled"], "comment": r["comment"]}
             for r in rows["event_triggers"]), key=lambda e: e["name"]),
        "unmanaged": sorted(r["what"] for r in rows["unmanaged"]),
    }
    return Schema.model_validate(data)


def _publication(r: Row) -> Row:
    return {"name": r["name"], "all_tables": r["all_tables"],
            "tables": sorted(({"schema": t["schema"], "name": t["name"],
                               "columns": t["columns"] or [], "where": t["where"]}
                              for t in r["tables"]), key=lambda t: (t["schema"], t["name"])),
            "schemas": sorted(r["schemas"] or []),
            "publish": [op for op in ("insert", "update", "delete", "truncate") if r[op]],
            "publish_via_partition_root": r["via_root"], "comment": r["comment"]}


def _multirange_name(name: str) -> str:
    """The multirange type name PostgreSQL derives from a range type's name."""
    pos = name.rfind("range")
    if pos >= 0:
        return name[:pos] + "multirange" + name[pos + 5:]
    return name + "_multirange"


def _range(r: Row) -> Row:
    multi = r["multirange_name"]
    return {"name": r["name"], "schema": r["schema"], "subtype": r["subtype"],
            "subtype_opclass": r["subtype_opclass"], "collation": r["collation"],
            "canonical": r["canonical"], "subtype_diff": r["subtype_diff"],
            "multirange_type_name": None if multi in (None, _multirange_name(r["name"]))
            else multi,
            "comment": r["comment"]}


_COLL_PROVIDERS = {"i": "icu", "c": "libc", "b": "builtin", "d": "libc"}


def _collation(r: Row) -> Row:
    provider = _COLL_PROVIDERS.get(r["provider"], "libc")
    icu = provider != "libc"
    return {"name": r["name"], "schema": r["schema"], "provider": provider,
            "locale": r["locale"] if icu else None,
            "lc_collate": None if icu else r["lc_collate"],
            "lc_ctype": None if icu else r["lc_ctype"],
            "deterministic": r["deterministic"], "comment": r["comment"]}


_MODIFY = {"r": "READ_ONLY", "s": "SHAREABLE", "w": "READ_WRITE"}
_PARALLEL = {"s": "SAFE", "r": "RESTRICTED"}


def _aggregate(r: Row) -> Row:
    """CREATE AGGREGATE, as pg_dump builds it from pg_aggregate."""
    def lit(v: str) -> str:
        return "'" + v.replace("'", "''") + "'"

    default_modify = "r" if r["aggkind"] == "n" else "w"
    opts = [f"SFUNC = {r['sfunc']}", f"STYPE = {r['stype']}"]
    if r["sspace"]:
        opts.append(f"SSPACE = {int(r['sspace'])}")
    if r["finalfunc"]:
        opts.append(f"FINALFUNC = {r['finalfunc']}")
        if r["finalfunc_extra"]:
            opts.append("FINALFUNC_EXTRA")
        if r["finalfunc_modify"] != default_modify:
            opts.append(f"FINALFUNC_MODIFY = {_MODIFY[r['finalfunc_modify']]}")
    for key in ("combinefunc", "serialfunc", "deserialfunc"):
        if r[key]:
            opts.append(f"{key.upper()} = {r[key]}")
    if r["initcond"] is not None:
        opts.append(f"INITCOND = {lit(r['initcond'])}")
    if r["msfunc"]:
        opts += [f"MSFUNC = {r['msfunc']}", f"MINVFUNC = {r['minvfunc']}",
                 f"MSTYPE = {r['mstype']}"]
        if r["msspace"]:
            opts.append(f"MSSPACE = {int(r['msspace'])}")
        if r["mfinalfunc"]:
            opts.append(f"MFINALFUNC = {r['mfinalfunc']}")
            if r["mfinalfunc_extra"]:
                opts.append("MFINALFUNC_EXTRA")
            if r["mfinalfunc_modify"] != default_modify:
                opts.append(f"MFINALFUNC_MODIFY = {_MODIFY[r['mfinalfunc_modify']]}")
        if r["minitcond"] is not None:
            opts.append(f"MINITCOND = {lit(r['minitcond'])}")
    if r["sortop"]:
        opts.append(f"SORTOP = {r['sortop']}")
    if r["parallel"] in _PARALLEL:
        opts.append(f"PARALLEL = {_PARALLEL[r['parallel']]}")
    if r["aggkind"] == "h":
        opts.append("HYPOTHETICAL")
    name = f"{_quote(r['schema'])}.{_quote(r['name'])}"
    args = r["arguments"] or "*"
    definition = f"CREATE AGGREGATE {name}({args}) (\n    " + ",\n    ".join(opts) + "\n)"
    return {"name": r["name"], "schema": r["schema"],
            "identity_arguments": r["identity_arguments"], "definition": definition,
            "comment": r["comment"]}


def _by_name(objs: list[Row]) -> list[Row]:
    # Python's code-point order, not the database's collation: stable across servers.
    return sorted(objs, key=lambda o: (o["schema"], o["name"]))


def _grants_of(row: Row, key: str = "grants") -> list[Row]:
    # The same privilege granted by two grantors is one fact for us.
    merged: dict[tuple[str, str], bool] = {}
    for g in row[key] or ():
        key = (g["grantee"], g["privilege"])
        merged[key] = merged.get(key, False) or bool(g["with_grant_option"])
    return [{"grantee": g, "privilege": p, "with_grant_option": w}
            for (g, p), w in sorted(merged.items())]


_INT_RANGES = {"smallint": (-32768, 32767), "integer": (-2147483648, 2147483647),
               "bigint": (-9223372036854775808, 9223372036854775807)}


def _identity_options(seq: Row | None) -> Row | None:
    """The options of an identity column's sequence that are not the defaults."""
    if not seq:
        return None
    low, high = _INT_RANGES.get(seq["type"], _INT_RANGES["bigint"])
    inc = seq["increment"]
    min_default, max_default = (1, high) if inc > 0 else (low, -1)
    out: Row = {
        "increment": inc if inc != 1 else None,
        "min_value": seq["min_value"] if seq["min_value"] != min_default else None,
        "max_value": seq["max_value"] if seq["max_value"] != max_default else None,
        "cache": seq["cache"] if seq["cache"] != 1 else None,
        "cycle": bool(seq["cycle"]),
    }
    start_default = seq["min_value"] if inc > 0 else seq["max_value"]
    out["start"] = seq["start"] if seq["start"] != start_default else None
    if not any(v for v in out.values()):
        return None
    return out


def _column(c: Row) -> Row:
    out: Row = {"name": c["name"], "type": c["type"], "nullable": c["nullable"],
                "default": c["default"], "identity": _IDENTITY.get(c["identity"]),
                "generated": c["generated"], "collation": c["collation"],
                "comment": c["comment"]}
    if c["inherited"]:
        out["inherited"] = True
    if c["grants"]:
        out["grants"] = _grants_of(c)
    if c["identity_sequence"] is not None:
        out["identity_options"] = _identity_options(c["identity_sequence"])
    if c["statistics"] is not None:
        out["statistics"] = c["statistics"]
    if c["compression"] is not None:
        out["compression"] = c["compression"]
    return out


def _table(r: Row, rel: dict[str, dict[int, list[Row]]]) -> Row:
    oid = r["oid"]
    columns = [_column(c) for c in rel["columns"].get(oid, [])]
    if r["is_partition"]:
        for c in columns:
            c["inherited"] = True
    options = sorted([*(r["options"] or []),
                      *("toast." + o for o in r["toast_options"] or [])])
    parents = r["parents"] or []
    table: Row = {
        "name": r["name"], "schema": r["schema"], "columns": columns, "primary_key": None,
        "unique_constraints": [], "check_constraints": [], "foreign_keys": [],
        "exclusion_constraints": [], "indexes": _indexes(rel, oid),
        "triggers": [{"name": t["name"], "definition": t["definition"], "enabled": t["enabled"],
                      "comment": t["comment"]}
                     for t in sorted(rel["triggers"].get(oid, []), key=lambda t: t["name"])],
        "policies": [{"name": p["name"], "command": _POLICY_COMMANDS[p["command"]],
                      "permissive": p["permissive"], "roles": sorted(p["roles"]),
                      "using": p["using"], "with_check": p["with_check"],
                      "comment": p["comment"]}
                     for p in sorted(rel["policies"].get(oid, []), key=lambda p: p["name"])],
        "rls_enabled": r["rls_enabled"], "rls_forced": r["rls_forced"],
        "grants": _grants_of(r), "comment": r["comment"],
        "unlogged": r["unlogged"], "options": options, "partition_by": r["partition_by"],
        "partition_of": parents[0] if r["is_partition"] and parents else None,
        "partition_bound": r["partition_bound"],
        "inherits": [] if r["is_partition"] else parents,
        "rules": [{"name": x["name"], "definition": x["definition"], "enabled": x["enabled"],
                   "comment": x["comment"]}
                  for x in sorted(rel["rules"].get(oid, []), key=lambda x: x["name"])],
        "clone_names": {x["parent"]: x["name"] for x in rel["clones"].get(oid, [])},
        "replica_identity": _REPLIDENT.get(r["replident"])
        or f"index:{r['replident_index']}",
        "statistics": _by_name([{"name": x["name"], "schema": x["schema"],
                                 "definition": x["definition"], "comment": x["comment"]}
                                for x in rel["statistics"].get(oid, [])]),
    }
    for con in sorted(rel["constraints"].get(oid, []), key=lambda c: c["name"]):
        kind = con["contype"]
        deferral = {"deferrable": con["deferrable"],
                    "initially_deferred": con["initially_deferred"]}
        if kind == "p":
            table["primary_key"] = {"name": con["name"], "columns": con["columns"],
                                    "include": con["include"] or []}
        elif kind == "u":
            table["unique_constraints"].append({
                "name": con["name"], "columns": con["columns"],
                "nulls_not_distinct": con["nulls_not_distinct"], **deferral,
                "comment": con["comment"], "include": con["include"] or []})
        elif kind == "c":
            table["check_constraints"].append({
                "name": con["name"], "expression": con["check_expr"],
                "no_inherit": con["no_inherit"], "comment": con["comment"],
                **({} if con["valid"] else {"valid": False})})
        elif kind == "f":
            table["foreign_keys"].append({
                "name": con["name"], "columns": con["columns"],
                "referenced_schema": con["ref_schema"], "referenced_table": con["ref_table"],
                "referenced_columns": con["ref_columns"],
                "on_delete": _FK_ACTIONS[con["on_delete"]],
                "on_update": _FK_ACTIONS[con["on_update"]],
                "match": _FK_MATCH[con["match"]], **deferral, "comment": con["comment"],
                "on_delete_columns": con["delete_set_columns"] or [],
                **({} if con["valid"] else {"valid": False})})
        elif kind == "x":
            table["exclusion_constraints"].append({
                "name": con["name"], **deferral, "comment": con["comment"],
                "definition": _exclusion_body(con["condef"], con["deferrable"],
                                              con["initially_deferred"])})
    return table


def _exclusion_body(condef: str, deferrable: bool, deferred: bool) -> str:
    """What follows EXCLUDE, without the deferrability the model keeps as flags."""
    body = condef.removeprefix("EXCLUDE ")
    if deferrable:
        # The server appends exactly these words; only strip when it must have.
        suffix = " DEFERRABLE" + (" INITIALLY DEFERRED" if deferred else "")
        body = body.removesuffix(suffix)
    return body


def _indexes(rel: dict[str, dict[int, list[Row]]], oid: int) -> list[Row]:
    key_rows = rel["indexes"].get(oid)
    if not key_rows:
        return []
    attrs = {c["attnum"]: c for c in rel["columns"].get(oid, [])}
    by_index: dict[int, list[Row]] = defaultdict(list)
    for k in key_rows:  # ordered by index oid, then key position
        by_index[k["oid"]].append(k)
    out = []
    for parts in by_index.values():
        ix = parts[0]
        keys, include = [], []
        for k in parts:
            column = attrs.get(k["attnum"]) if k["attnum"] else None
            if k["ord"] > ix["nkeys"]:
                include.append(column["name"] if column else k["expression"])
                continue
            option = k["option"] or 0
            descending = bool(option & 1)  # INDOPTION_DESC
            nulls_first = bool(option & 2)  # INDOPTION_NULLS_FIRST
            collation = k["collation"]
            if column is not None:
                if k["coll"] == column["coll_oid"]:
                    collation = None  # the column's own collation
            elif collation is not None and not _prints_collate(ix, k["expression"], collation):
                collation = None  # the expression's own collation, not a COLLATE clause
            keys.append({
                "column": column["name"] if column else None,
                "expression": k["expression"] if column is None else None,
                "descending": descending,
                # Default is NULLS LAST for ASC, NULLS FIRST for DESC: record deviations only.
                "nulls_first": None if nulls_first == descending else nulls_first,
                "opclass": k["opclass"], "collation": collation})
        out.append({"name": ix["name"], "keys": keys, "unique": ix["unique"],
                    "method": ix["method"], "where": ix["where"], "include": include,
                    "nulls_not_distinct": ix["nulls_not_distinct"], "comment": ix["comment"],
                    "valid": ix["valid"], "options": sorted(ix["options"] or [])})
    return sorted(out, key=lambda i: i["name"])


def _prints_collate(ix: Row, expression: str, collation: str) -> bool:
    """Whether the server's index definition has ``<expression> COLLATE <collation>``.

    ruleutils prints COLLATE for an expression key only when the index's collation differs
    from the expression's natural one, which SQL cannot compute; its output can.
    """
    definition: str = ix["indexdef"] or ""
    if ix["where"] is not None:
        definition = definition.removesuffix(" WHERE " + ix["where"])
    needle = f"{expression} COLLATE {collation}"
    start = 0
    while (pos := definition.find(needle, start)) >= 0:
        before = definition[pos - 1:pos]
        after = definition[pos + len(needle):pos + len(needle) + 1]
        # A key starts after "(" or ", " and ends at ",", ")" or " " (opclass, DESC ...).
        if before in ("(", " ") and after in (",", ")", " "):
            return True
        start = pos + 1
    return False


def _view(r: Row, rel: dict[str, dict[int, list[Row]]]) -> Row:
    options: list[str] = []
    check_option: str | None = None
    for opt in r["options"] or []:
        key, _, value = opt.partition("=")
        if key == "check_option":
            check_option = value.upper()
        else:
            options.append(opt)
    materialized = r["relkind"] == "m"
    return {
        "name": r["name"], "schema": r["schema"], "definition": r["viewdef"],
        "materialized": materialized, "options": sorted(options),
        "check_option": check_option,
        "indexes": _indexes(rel, r["oid"]) if materialized else [],
        "depends_on": sorted({d["dep"] for d in rel["deps"].get(r["oid"], [])}),
        "grants": _grants_of(r), "comment": r["comment"],
        "triggers": [] if materialized else [
            {"name": t["name"], "definition": t["definition"], "enabled": t["enabled"],
             "comment": t["comment"]}
            for t in sorted(rel["triggers"].get(r["oid"], []), key=lambda t: t["name"])],
        "column_comments": {} if materialized else {
            c["name"]: c["comment"] for c in rel["columns"].get(r["oid"], [])
            if c["comment"] is not None},
        "rules": [{"name": x["name"], "definition": x["definition"], "enabled": x["enabled"],
                   "comment": x["comment"]}
                  for x in sorted(rel["rules"].get(r["oid"], []), key=lambda x: x["name"])],
    }


def _quote(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


def _sequence(r: Row, seq: Row) -> Row:
    owner = seq["owned_by"]
    return {
        "name": r["name"], "schema": r["schema"], "data_type": seq["data_type"],
        "start": seq["start"], "increment": seq["increment"], "min_value": seq["min_value"],
        "max_value": seq["max_value"], "cache": seq["cache"], "cycle": seq["cycle"],
        # Always quoted, as Sequence.owned_by documents: unambiguous to split and to paste.
        "owned_by": ".".join(_quote(part) for part in owner) if owner else None,
        "grants": _grants_of(r), "comment": r["comment"],
    }


def _domain(r: Row) -> Row:
    return {
        "name": r["name"], "schema": r["schema"], "base_type": r["base_type"],
        "nullable": r["nullable"], "default": r["default"], "collation": r["collation"],
        "checks": [{"name": c["name"], "expression": c["expression"], "comment": c["comment"]}
                   for c in r["checks"]],
        "comment": r["comment"],
    }
