"""Read a live PostgreSQL database's catalog: the rows the schema model is built from.

A fixed handful of bulk catalog queries (pg_catalog only), whatever the number of
tables: per-table queries would make a 1,000-table database take seconds.

Every query runs in one transaction (one snapshot) with ``search_path = ''`` so that
format_type, pg_get_expr, pg_get_viewdef, pg_get_indexdef, pg_get_triggerdef and
pg_get_functiondef schema-qualify every name outside pg_catalog, as pg_dump does: the
text then means the same thing whatever search_path the reader of the model uses.
Non-pretty output is used everywhere so two loads from the same server are identical.

This module needs only psycopg (not the model), so that the command line can start
reading a catalog before its own heavy imports (see ``prefetch``); ``introspect``
builds the model from these rows.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row

Row = dict[str, Any]

# Schemas that are never user structure. Everything starting with pg_ is reserved by the
# server (pg_catalog, pg_toast, pg_temp_N, pg_toast_temp_N); `lockplane` is our state.
def _in_user_namespace(alias: str) -> str:
    return (f"({alias}.nspname !~ '^pg_' AND {alias}.nspname <> 'information_schema' "
            f"AND {alias}.nspname <> 'lockplane')")


_USER_NS = _in_user_namespace("n")


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
    ``kind``: acldefault's object type, as an SQL expression (``'f'``).
    """
    effective = f"coalesce({acl}, acldefault({kind}, {owner}))"
    default = f"acldefault({kind}, {owner})"

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
# An identity column's sequence options come with the sequences (see _Q_SEQUENCES).
_Q_COLUMNS_TEMPLATE = f"""
SELECT a.attrelid AS relid, a.attnum, a.attname AS name, a.attcollation AS coll_oid,
       format_type(a.atttypid, a.atttypmod) AS type, {{nullable}} AS nullable,
       c.relname AS rel_name, {{not_null_name}} AS not_null_name,
       CASE WHEN a.attgenerated = '' THEN pg_get_expr(ad.adbin, 0, false) END AS default,
       CASE WHEN a.attgenerated <> '' THEN pg_get_expr(ad.adbin, ad.adrelid, false) END
         AS generated, a.attgenerated::text AS generated_code,
       a.attidentity::text AS identity,
       CASE WHEN a.attcollation <> t.typcollation
            THEN {_qualified_name('cn.nspname', 'co.collname')} END AS collation,
       d.description AS comment, a.attinhcount > 0 AS inherited,
       CASE WHEN a.attstattarget >= 0 THEN a.attstattarget END AS statistics,
       {{compression}} AS compression,
       CASE WHEN a.attacl IS NOT NULL THEN {_grants('a.attacl', 'c.relowner')} END AS grants
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


def _q_constraints(nulls_not_distinct: str, delete_set_columns: str,
                   period: str = "false", enforced: str = "true") -> str:
    # NOT NULL constraints (contype 'n', PG 17+) are modelled as Column.nullable.
    # Key columns come as attribute numbers, named from the columns rows in Python: a
    # subquery per constraint and key list was two thirds of this query's time. Only a
    # foreign key to a table outside the user schemas (whose columns are not read) is
    # named here.
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
       con.conkey AS column_nums, con.confrelid AS ref_relid, con.confkey AS ref_column_nums,
       fn.nspname AS ref_schema, fc.relname AS ref_table,
       CASE WHEN con.contype = 'f' AND NOT {_in_user_namespace('fn')} THEN
         {_attnames('con.confkey', 'con.confrelid')} END AS ref_columns_named,
       con.confupdtype::text AS on_update, con.confdeltype::text AS on_delete,
       con.confmatchtype::text AS match,
       coalesce({nulls_not_distinct}, false) AS nulls_not_distinct,
       CASE WHEN i.indnkeyatts < i.indnatts THEN
         ARRAY(SELECT a.attname::text FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(num, ord)
                 JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num
                WHERE k.ord > i.indnkeyatts ORDER BY k.ord) END AS include,
       {delete_set_columns} AS delete_set_nums,
       {period} AS period, {enforced} AS enforced,
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

# PostgreSQL's own dependency graph (what pg_dump sorts its output by), between the
# objects plans create and drop: routines, relations (tables, views, sequences) and types
# (enums, domains, composite and range types). A column, default, table CHECK or view's
# rewrite rule counts as its relation, a domain's CHECK as its domain, a row type as its
# relation, an array type as its element type. Only 'n' (normal) dependencies: 'a'/'i'
# ones are an object's own parts (a serial's sequence), and foreign keys are steps of
# their own. SQL-standard routine bodies (BEGIN ATOMIC / RETURN) record what they call.
# Column edges, ("column", schema, table, column) as the key depended on: a view's rule
# or an SQL-standard routine body that reads the column (refobjsubid = its attnum; a
# view's SELECT * is expanded to every column when it is made, so it reads them all).
# These are what ALTER COLUMN ... TYPE refuses to go under ("cannot alter type of a
# column used by a view or rule" / "by a function or procedure"). A routine that takes
# or returns a table's row type and reads fields of it is refused under a new type of
# ANY column of the table ("... because function ... uses its row type", checked on 15):
# it depends on all of them. PL/pgSQL bodies record nothing: they are planned when
# called, against the table as it is then (late-bound), and need no recreation.
_Q_DEPENDENCIES = f"""
WITH objs AS (
  SELECT 'pg_proc'::regclass AS classid, p.oid AS objid, 'function' AS kind,
         n.nspname AS schema, p.proname AS name,
         pg_get_function_identity_arguments(p.oid) AS args
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
   WHERE p.prokind IN ('f', 'p') AND {_USER_NS}
  UNION ALL
  SELECT 'pg_class'::regclass, c.oid,
         CASE WHEN c.relkind = 'c' THEN 'type' ELSE 'relation' END, n.nspname, c.relname, ''
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c') AND {_USER_NS}
  UNION ALL
  SELECT 'pg_type'::regclass, t.oid,
         CASE WHEN r.relkind IS NOT NULL AND r.relkind <> 'c' THEN 'relation' ELSE 'type' END,
         n.nspname, coalesce(r.relname, e.typname), ''
    FROM pg_type t
    JOIN pg_type e ON e.oid = CASE WHEN t.typtype = 'b' AND t.typelem <> 0 AND t.typlen = -1
                                   THEN t.typelem ELSE t.oid END
    LEFT JOIN pg_class r ON r.oid = e.typrelid
    JOIN pg_namespace n ON n.oid = e.typnamespace
   WHERE e.typtype IN ('c', 'd', 'e', 'r') AND {_USER_NS}
  UNION ALL
  SELECT 'pg_constraint'::regclass, con.oid,
         CASE WHEN con.contypid <> 0 THEN 'type' ELSE 'relation' END,
         n.nspname, coalesce(c.relname, t.typname), ''
    FROM pg_constraint con
    LEFT JOIN pg_class c ON c.oid = con.conrelid
    LEFT JOIN pg_type t ON t.oid = con.contypid
    JOIN pg_namespace n ON n.oid = coalesce(c.relnamespace, t.typnamespace)
   WHERE con.contype <> 'f' AND {_USER_NS}
  UNION ALL
  SELECT 'pg_attrdef'::regclass, ad.oid, 'relation', n.nspname, c.relname, ''
    FROM pg_attrdef ad JOIN pg_class c ON c.oid = ad.adrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE {_USER_NS}
  UNION ALL
  SELECT 'pg_rewrite'::regclass, rw.oid, 'relation', n.nspname, c.relname, ''
    FROM pg_rewrite rw JOIN pg_class c ON c.oid = rw.ev_class
    JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('v', 'm') AND {_USER_NS}
)
SELECT DISTINCT o.kind, o.schema, o.name, o.args,
       r.kind AS ref_kind, r.schema AS ref_schema, r.name AS ref_name, r.args AS ref_args
FROM pg_depend d
JOIN objs o ON o.classid = d.classid AND o.objid = d.objid
JOIN objs r ON r.classid = d.refclassid AND r.objid = d.refobjid
WHERE d.deptype = 'n'
  AND (o.kind, o.schema, o.name, o.args) IS DISTINCT FROM (r.kind, r.schema, r.name, r.args)
UNION
SELECT o.kind, o.schema, o.name, o.args,
       'column', tn.nspname, tc.relname, a.attname
FROM pg_depend d
JOIN objs o ON o.classid = d.classid AND o.objid = d.objid
JOIN pg_class tc ON tc.oid = d.refobjid
JOIN pg_namespace tn ON tn.oid = tc.relnamespace
JOIN pg_attribute a ON a.attrelid = tc.oid AND a.attnum = d.refobjsubid
WHERE d.deptype = 'n' AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0
  AND d.classid IN ('pg_proc'::regclass, 'pg_rewrite'::regclass)
  AND (o.kind, o.schema, o.name) IS DISTINCT FROM ('relation', tn.nspname, tc.relname)
UNION
SELECT o.kind, o.schema, o.name, o.args,
       'column', tn.nspname, tc.relname, a.attname
FROM pg_depend d
JOIN objs o ON o.classid = d.classid AND o.objid = d.objid
JOIN pg_type ty ON ty.oid = d.refobjid
JOIN pg_class tc ON tc.oid = ty.typrelid AND tc.relkind <> 'c'
JOIN pg_namespace tn ON tn.oid = tc.relnamespace
JOIN pg_attribute a ON a.attrelid = tc.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE d.deptype = 'n' AND d.refclassid = 'pg_type'::regclass
  AND d.classid = 'pg_proc'::regclass
  AND EXISTS (SELECT FROM pg_depend c
               WHERE c.classid = d.classid AND c.objid = d.objid AND c.deptype = 'n'
                 AND c.refclassid = 'pg_class'::regclass AND c.refobjid = tc.oid
                 AND c.refobjsubid > 0)
"""

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
       di.objid IS NOT NULL AS is_identity,
       di.refobjid AS identity_relid, di.refobjsubid AS identity_attnum
FROM pg_sequence s
JOIN pg_class c ON c.oid = s.seqrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_depend di ON di.classid = 'pg_class'::regclass AND di.objid = s.seqrelid
  AND di.refclassid = 'pg_class'::regclass AND di.deptype = 'i'
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
       {_grant_delta('p.proacl', 'p.proowner', "'f'")}, d.description AS comment
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


# ALTER DEFAULT PRIVILEGES. An entry for every schema (defaclnamespace 0) replaces the
# built-in defaults of its role and object type, so it is read as a difference from
# acldefault(); an entry for one schema only adds to those. acldefault() spells sequences
# 's' where pg_default_acl has 'S'.
_Q_DEFAULT_PRIVILEGES = f"""
SELECT pg_get_userbyid(a.defaclrole) AS role, n.nspname AS schema,
       a.defaclobjtype::text AS objtype,
       CASE WHEN a.defaclnamespace = 0 THEN NULL ELSE {_grants('a.defaclacl', 'a.defaclrole')}
         END AS schema_grants,
       {_grant_delta('a.defaclacl', 'a.defaclrole',
                     "CASE a.defaclobjtype WHEN 'S' THEN 's' ELSE a.defaclobjtype END")}
FROM pg_default_acl a
LEFT JOIN pg_namespace n ON n.oid = a.defaclnamespace
WHERE a.defaclnamespace = 0 OR {_USER_NS}
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


def read_catalog(conn: psycopg.Connection[Any]) -> dict[str, list[Row]]:
    """The catalog rows of the database behind ``conn``, by kind.

    Leaves the connection as it was: the work happens in a transaction (or a savepoint
    when one is already open) that is always rolled back, which also undoes SET LOCAL.
    Needs PostgreSQL 12 or later (pg_attribute.attgenerated).
    """
    version = conn.info.server_version
    nnd = "i.indnullsnotdistinct" if version >= 150000 else "false"
    del_cols = "con.confdelsetcols" if version >= 150000 else "NULL::int2[]"
    trigger_parent = "t.tgparentid = 0" if version >= 130000 else "true"
    # 18 keeps NOT NULL constraints in pg_constraint (contype 'n'), and one may be NOT
    # VALID: attnotnull is set, yet old rows may hold NULLs. Read as nullable, so that a
    # plan to NOT NULL runs SET NOT NULL, which validates it.
    # 18: temporal keys (WITHOUT OVERLAPS, PERIOD) and NOT ENFORCED constraints
    pg18_keys = (("con.conperiod", "con.conenforced") if version >= 180000
                 else ("false", "true"))
    nullable = ("NOT a.attnotnull OR EXISTS (SELECT 1 FROM pg_constraint nn WHERE "
                "nn.conrelid = a.attrelid AND nn.contype = 'n' AND nn.conkey[1] = a.attnum "
                "AND NOT nn.convalidated)" if version >= 180000 else "NOT a.attnotnull")
    # 18 names them: kept where the column's own name is not the one the server derives.
    not_null_name = ("(SELECT nn.conname FROM pg_constraint nn WHERE nn.conrelid = a.attrelid"
                     " AND nn.contype = 'n' AND nn.conkey[1] = a.attnum AND nn.conislocal)"
                     if version >= 180000 else "NULL::name")
    compression = ("CASE a.attcompression WHEN 'p' THEN 'pglz' WHEN 'l' THEN 'lz4' END"
                   if version >= 140000 else "NULL::text")
    # (before 15 an ICU collation's locale is its collcollate, as pg_dump reads it)
    icu_locale = ("c.colllocale" if version >= 170000 else "c.colliculocale"
                  if version >= 150000 else "c.collcollate")
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
                           ("columns", _Q_COLUMNS_TEMPLATE.format(
                               compression=compression, nullable=nullable,
                               not_null_name=not_null_name)),
                           ("constraints", _q_constraints(nnd, del_cols, *pg18_keys)),
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
                           ("default_privileges", _Q_DEFAULT_PRIVILEGES),
                           ("unmanaged", _Q_UNMANAGED),
                           ("deps", _Q_VIEW_DEPS), ("sequences", _Q_SEQUENCES),
                           ("types", _Q_TYPES), ("functions", _Q_FUNCTIONS),
                           ("dependencies", _Q_DEPENDENCIES)):
            cur.execute(query)
            rows[key] = cur.fetchall()
    return rows


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


# ------------------------------------------------------------------------ prefetching
# The command line knows from its arguments which databases a ``plan`` will read. It
# starts reading their catalogs in background threads before importing the model and
# the change kinds (~0.5 s of a start-up), so the server's work overlaps those imports.
# A prefetched catalog is used once, by the first introspection of the same URL in
# this process; a failed one is dropped and the normal path reads again (and reports).
_prefetched: dict[str, Future[dict[str, list[Row]]]] = {}
_prefetch_lock = threading.Lock()


def prefetch(dsn: str) -> None:
    """Start reading ``dsn``'s catalog in a daemon thread (no output, errors kept)."""
    with _prefetch_lock:
        if dsn in _prefetched:
            return
        future: Future[dict[str, list[Row]]] = Future()
        _prefetched[dsn] = future

    def run() -> None:
        try:
            with psycopg.connect(dsn, autocommit=True, connect_timeout=10,
                                 application_name="lockplane") as conn:
                future.set_result(read_catalog(conn))
        except BaseException as exc:  # noqa: BLE001 - handed to take_prefetched, never raised
            future.set_exception(exc)

    threading.Thread(target=run, name="lockplane-catalog-prefetch", daemon=True).start()


def take_prefetched(dsn: str) -> dict[str, list[Row]] | None:
    """The catalog prefetched for exactly this URL (waiting for it), once; else None."""
    with _prefetch_lock:
        future = _prefetched.pop(dsn, None)
    if future is None:
        return None
    try:
        return future.result()
    except Exception:  # noqa: BLE001 - the caller reads the catalog itself and reports
        return None
