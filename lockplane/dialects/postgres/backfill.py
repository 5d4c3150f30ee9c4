"""What a batched backfill asks PostgreSQL: the table's walkable key (primary, unique
NOT NULL, or ctid ranges), its size from the catalog, and a trial of the batch statement
on a shadow copy holding a random sample of its rows (``TABLESAMPLE``, ``COPY``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import psycopg

from ...backfill import (
    KEY_CTID,
    KEY_PRIMARY,
    KEY_UNIQUE,
    BackfillOptions,
    BackfillSpec,
    BatchSql,
    Reporter,
    ResolvedBackfill,
    TableStats,
    Trial,
    backfill_id,
    error_line,
    explain_on_shadow,
    pick_columns,
    runnable,
    trial_run,
)
from ...errors import BadInput, ExecutionFailed
from ...execute import materialize
from ..base import Database

if TYPE_CHECKING:
    from . import PostgresDatabase


def resolve(db: PostgresDatabase, spec: BackfillSpec) -> ResolvedBackfill:
    try:
        with db.transaction():
            rows = db.query(
                "SELECT c.oid, n.nspname, c.relname, c.relkind FROM pg_catalog.pg_class c "
                "JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace "
                "WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(%s::pg_catalog.text)",
                (spec.table,))
    except psycopg.Error as exc:
        raise BadInput(f"--table {spec.table!r}: {error_line(exc)}") from None
    if not rows:
        raise BadInput(f"unknown table {spec.table!r} in {db.dsn_display}")
    oid, schema, table, kind = rows[0]
    display = f"{schema}.{table}"
    if kind not in ("r", "p"):
        raise BadInput(f"{display} is not a table (relkind {kind!r})")
    if schema == "lockplane":
        raise BadInput(f"{display} is Lockplane's own state: not a backfill target")
    if int(oid) < 16384 or schema in ("pg_catalog", "information_schema") \
            or schema.startswith(("pg_toast", "pg_temp")):
        # (a shared catalog such as pg_authid is the same table in the shadow copy: its
        # trial would change the server's roles; only an unrelated refusal stopped it)
        raise BadInput(f"{display} is a system catalog: not a backfill target")
    cols = db.query(
        "SELECT attname, pg_catalog.format_type(atttypid, atttypmod), attnotnull, "
        "CASE WHEN attgenerated OPERATOR(pg_catalog.<>) '' THEN 'a generated column' "
        "WHEN attidentity OPERATOR(pg_catalog.=) 'a' "
        "THEN 'an identity column (GENERATED ALWAYS)' ELSE '' END "
        "FROM pg_catalog.pg_attribute WHERE attrelid OPERATOR(pg_catalog.=) %s::pg_catalog.oid "
        "AND attnum OPERATOR(pg_catalog.>) 0::pg_catalog.int2 AND NOT attisdropped "
        "ORDER BY attnum", (oid,))
    columns = {r[0]: (r[1], bool(r[2]), r[3]) for r in cols}
    names = pick_columns(spec, display, columns, str.lower)
    # (every name qualified: a database's closer overloads of them are not called)
    keys = db.query(
        "SELECT i.indisprimary, ic.relname, "
        "  pg_catalog.array_agg(a.attname ORDER BY k.ord), "
        "  pg_catalog.array_agg(pg_catalog.format_type(a.atttypid, a.atttypmod) "
        "    ORDER BY k.ord), "
        "  pg_catalog.bool_and(a.attnotnull), pg_catalog.bool_and(k.opt OPERATOR(pg_catalog.=) 0), "
        "  pg_catalog.array_agg(k.opc ORDER BY k.ord) "
        "FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic "
        "  ON ic.oid OPERATOR(pg_catalog.=) i.indexrelid "
        "CROSS JOIN LATERAL ROWS FROM ("
        "  pg_catalog.unnest((i.indkey::pg_catalog.int2[])[0:i.indnkeyatts "
        "  OPERATOR(pg_catalog.-) 1]), pg_catalog.unnest((i.indoption::pg_catalog.int2[])"
        "  [0:i.indnkeyatts OPERATOR(pg_catalog.-) 1]), pg_catalog.unnest("
        "  (i.indclass::pg_catalog.oid[])[0:i.indnkeyatts OPERATOR(pg_catalog.-) 1])) "
        "  WITH ORDINALITY AS k(attnum, opt, opc, ord) "
        "JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid "
        "  AND a.attnum OPERATOR(pg_catalog.=) k.attnum "
        "WHERE i.indrelid OPERATOR(pg_catalog.=) %s::pg_catalog.oid AND i.indisunique "
        "  AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL "
        "  AND NOT (0::pg_catalog.int2 OPERATOR(pg_catalog.=) ANY ("
        "    (i.indkey::pg_catalog.int2[])[0:i.indnkeyatts OPERATOR(pg_catalog.-) 1])) "
        "GROUP BY i.indexrelid, i.indisprimary, ic.relname "
        "ORDER BY i.indisprimary DESC, pg_catalog.count(*), ic.relname", (oid,))
    usable = [k for k in keys if k[4] and k[5]]  # NOT NULL, ascending
    key_ops: list[dict[str, str]] = []
    if usable:
        primary, index, kcols, ktypes = usable[0][:4]
        kind_ = KEY_PRIMARY if primary else KEY_UNIQUE
        key_ops = _key_operators(db, list(usable[0][6]))
    else:
        if kind == "p":
            raise BadInput(f"{display} is partitioned and has no primary or unique NOT NULL "
                           "key to walk: add one (ctid is not unique across partitions)")
        if db.server_version < 140000:
            raise BadInput(f"{display} has no primary key and no unique NOT NULL key; ctid "
                           "ranges need PostgreSQL 14+: add a key")
        index, kcols, ktypes, kind_ = None, [], [], KEY_CTID
    kcols, ktypes = list(kcols), list(ktypes)
    for name in names:
        if name in kcols:
            raise BadInput(f"column {display}.{name} is part of the key the backfill walks "
                           f"({', '.join(kcols)}): it cannot be set by a backfill")
    exprs, where = runnable(spec, "postgres")
    # A domain's values compare as its base type's (through domains over domains): a
    # domain over an enum has no = of its own.
    bases = dict(db.query(
        "WITH RECURSIVE b(attname, typ, mod) AS ("
        "  SELECT a.attname, t.typbasetype, t.typtypmod FROM pg_catalog.pg_attribute a "
        "  JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) a.atttypid "
        "  WHERE a.attrelid OPERATOR(pg_catalog.=) %s::pg_catalog.oid "
        "    AND t.typtype OPERATOR(pg_catalog.=) 'd' "
        "  UNION ALL SELECT b.attname, t.typbasetype, t.typtypmod FROM b "
        "  JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) b.typ "
        "  WHERE t.typtype OPERATOR(pg_catalog.=) 'd') "
        "SELECT b.attname, pg_catalog.format_type(b.typ, b.mod) FROM b "
        "JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) b.typ "
        "WHERE t.typtype OPERATOR(pg_catalog.<>) 'd'", (oid,)))
    return ResolvedBackfill(
        id=backfill_id("postgres", schema, table, names, exprs, where),
        dialect="postgres", schema=schema, table=table, columns=names, expressions=exprs,
        types=[columns[n][0] for n in names], not_null=[columns[n][1] for n in names],
        where=where, key_kind=kind_, key_name=index, key_columns=kcols, key_types=ktypes,
        key_ops=key_ops, compare_types=[bases.get(n) for n in names])


_STRATEGIES = {"<": 1, "<=": 2, "=": 3, ">=": 4, ">": 5}  # btree's


def _key_operators(db: PostgresDatabase, opclasses: list[int]) -> list[dict[str, str]]:
    """Per key column, its index's operator class's own comparison operators, qualified:
    the order the index walks, whatever a schema on the search_path holds."""
    out = []
    for opc in opclasses:
        rows = db.query(
            "SELECT o.amopstrategy, n.nspname, op.oprname "
            "FROM pg_catalog.pg_opclass c JOIN pg_catalog.pg_amop o "
            "  ON o.amopfamily OPERATOR(pg_catalog.=) c.opcfamily "
            "  AND o.amoplefttype OPERATOR(pg_catalog.=) c.opcintype "
            "  AND o.amoprighttype OPERATOR(pg_catalog.=) c.opcintype "
            "JOIN pg_catalog.pg_operator op ON op.oid OPERATOR(pg_catalog.=) o.amopopr "
            "JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) op.oprnamespace "
            "WHERE c.oid OPERATOR(pg_catalog.=) %s::pg_catalog.oid", (int(opc),))
        by = {int(st): f"OPERATOR({db.dialect.quote(ns)}.{name})" for st, ns, name in rows}
        if not all(st in by for st in _STRATEGIES.values()):
            return []  # (not a btree class: the plain symbols, as before)
        out.append({op: by[st] for op, st in _STRATEGIES.items()})
    return out


def table_stats(db: PostgresDatabase, rb: ResolvedBackfill) -> TableStats:
    qt = db.dialect.qname(rb.schema, rb.table)
    oid = db.query("SELECT %s::pg_catalog.regclass::pg_catalog.oid",
                   (db.dialect.qname(rb.schema, rb.table),))[0][0]
    reltuples, relpages, heap, index, block = db.query(
        "SELECT c.reltuples, c.relpages, pg_catalog.pg_relation_size(c.oid::pg_catalog.regclass), "
        "pg_catalog.pg_indexes_size(c.oid::pg_catalog.regclass), "
        "pg_catalog.current_setting('block_size')::pg_catalog.int4 FROM pg_catalog.pg_class c "
        "WHERE c.oid OPERATOR(pg_catalog.=) %s::pg_catalog.oid", (oid,))[0]
    pages = max(int(heap) // int(block), int(relpages))
    if reltuples >= 50_000 and relpages > 0:
        # reltuples describes relpages; scale it to the table's current size.
        density = float(reltuples) / int(relpages)
        return TableStats(int(density * pages), False, pages, int(heap), int(index),
                           int(block))
    if heap < 1024**3:
        # Small, or never analyzed: count it (cheap at this size, and then exact).
        n = int(db.query(f"SELECT pg_catalog.count(*) FROM {qt}")[0][0])
        return TableStats(n, True, pages, int(heap), int(index), int(block))
    # Big and never analyzed: a rough guess (ANALYZE it for a better one).
    return TableStats(pages * 50, False, pages, int(heap), int(index), int(block))


def shadow_trial(db: PostgresDatabase, rb: ResolvedBackfill, stats: TableStats,
                     opts: BackfillOptions, report: Reporter | None) -> Trial:
    d = db.dialect
    live = db.introspect()
    server = opts.shadow_dsn or db.dsn
    with d.scratch(server) as shadow:
        try:
            materialize(shadow, live)
        except (ExecutionFailed, BadInput) as exc:
            raise BadInput(f"could not build a shadow copy of {db.dsn_display}'s schema: "
                           f"{exc.message}") from None
        shadow.stable_text_session()
        # The copy holds the target's triggers, run by the trial's UPDATE on this session.
        shadow.hold_session_settings()
        qt = d.qname(rb.schema, rb.table)
        # Sample rows need not satisfy foreign keys on the shadow: drop those. A foreign
        # key of (or to) a partitioned table has clones on the partitions, which go with
        # it and cannot be dropped alone: each is dropped as its topmost constraint.
        fks = shadow.query(
            "WITH RECURSIVE up AS ("
            " SELECT k.oid, k.conparentid FROM pg_catalog.pg_constraint k"
            " WHERE k.contype OPERATOR(pg_catalog.=) 'f'"
            " AND (k.conrelid OPERATOR(pg_catalog.=) %s::pg_catalog.regclass::pg_catalog.oid"
            " OR k.confrelid OPERATOR(pg_catalog.=) %s::pg_catalog.regclass::pg_catalog.oid)"
            " UNION SELECT p.oid, p.conparentid FROM pg_catalog.pg_constraint p"
            " JOIN up ON p.oid OPERATOR(pg_catalog.=) up.conparentid) "
            "SELECT DISTINCT n.nspname, c.relname, k.conname FROM up "
            "JOIN pg_catalog.pg_constraint k ON k.oid OPERATOR(pg_catalog.=) up.oid "
            "JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) k.conrelid "
            "JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace "
            "WHERE up.conparentid OPERATOR(pg_catalog.=) 0::pg_catalog.oid",
            (qt, qt))
        for schema, table, name in fks:
            shadow.execute(f"ALTER TABLE {d.qname(schema, table)} DROP CONSTRAINT {d.quote(name)}")
        sql = BatchSql(shadow, rb)
        explain_on_shadow(shadow, sql, rb)
        if sql.ctid:
            _refuse_self_reference(shadow, rb)
        copied = _copy_sample(db, shadow, rb, stats, opts.sample_rows)
        if report:
            report(f"shadow: copied a sample of {copied:,} row(s) of {rb.display}")
        # The insert position, not pg_current_wal_lsn()'s write position: the shadow
        # commits asynchronously, so the write position lags behind what was logged.
        lsn0 = shadow.query("SELECT pg_catalog.pg_current_wal_insert_lsn()")[0][0]
        updated, seconds = trial_run(shadow, sql, rb, copied)
        wal = shadow.query("SELECT pg_catalog.pg_wal_lsn_diff("
                           "pg_catalog.pg_current_wal_insert_lsn(), %s::pg_catalog.pg_lsn)",
                           (lsn0,))[0][0]
    return Trial(copied, updated, seconds, int(wal))


def _refuse_self_reference(shadow: Database, rb: ResolvedBackfill) -> None:
    """ctid batches skip rows already holding their new value; an expression that reads
    the column it sets (``n = n + 1``) would then apply twice to rows that moved."""
    qt = shadow.dialect.qname(rb.schema, rb.table)
    exprs = ", ".join(f"({e}\n)" for e in rb.expressions)
    with shadow.transaction():
        shadow.execute(f"CREATE VIEW lockplane_probe AS SELECT {exprs} FROM {qt}")
        used = {r[0] for r in shadow.query(
            "SELECT column_name FROM information_schema.view_column_usage "
            "WHERE view_name = 'lockplane_probe'")}
        shadow.execute("DROP VIEW lockplane_probe")
    clash = [c for c in rb.columns if c in used]
    if clash:
        raise BadInput(f"{rb.display} has no primary or unique NOT NULL key, and the "
                       f"expression for {clash[0]} reads {clash[0]} itself: without a key a "
                       "row could be visited twice; add a key, or compute from other columns")


def _copy_sample(db: Database, shadow: Database, rb: ResolvedBackfill,
                    stats: TableStats, n: int) -> int:
    d = db.dialect
    qt = d.qname(rb.schema, rb.table)
    cols = [r[0] for r in db.query(
        "SELECT attname FROM pg_catalog.pg_attribute "
        "WHERE attrelid OPERATOR(pg_catalog.=) %s::pg_catalog.regclass::pg_catalog.oid "
        "AND attnum OPERATOR(pg_catalog.>) 0::pg_catalog.int2 AND NOT attisdropped "
        "AND attgenerated OPERATOR(pg_catalog.=) ''::\"char\" ORDER BY attnum", (qt,))]
    qcols = ", ".join(d.quote(c) for c in cols)
    n = max(1, int(n))
    if stats.rows <= n:
        source = f"SELECT {qcols} FROM {qt}"
    else:
        # Pages at random, about n rows in all. No LIMIT cutting the sample short: that
        # would keep only the first pages, a biased sample (updated rows move to the end).
        pct = min(100.0, 100.0 * n / max(stats.rows, 1))
        source = (f"SELECT {qcols} FROM {qt} TABLESAMPLE SYSTEM ({pct:.6f}) REPEATABLE (7) "
                  f"LIMIT {3 * n}")
    src: Any = getattr(db, "conn")  # noqa: B009
    dst: Any = getattr(shadow, "conn")  # noqa: B009
    with shadow.transaction():
        # Insert triggers belong to the application's writes, not to the sample.
        shadow.execute(f"ALTER TABLE {qt} DISABLE TRIGGER USER")
        with db.transaction(), row_security_off(dst, qt):
            db.execute("SET TRANSACTION READ ONLY")
            with src.cursor().copy(f"COPY ({source}) TO STDOUT") as cin, \
                    dst.cursor().copy(f"COPY {qt} ({qcols}) FROM STDIN") as cout:
                for data in cin:
                    cout.write(data)
        shadow.execute(f"ALTER TABLE {qt} ENABLE TRIGGER USER")
    shadow.execute(f"ANALYZE {qt}")
    return int(shadow.query(f"SELECT pg_catalog.count(*) FROM {qt}")[0][0])


@contextlib.contextmanager
def row_security_off(conn: psycopg.Connection[Any], table: str) -> Iterator[None]:
    """Row security off on ``table`` (quoted, qualified) while rows are copied into it, in
    the caller's transaction: COPY FROM refuses a table whose policies apply to the
    session (its owner, under FORCE ROW LEVEL SECURITY), and a shadow or scratch copy
    takes the sample as it is. Back on when the copy is done."""
    (on,) = conn.execute("SELECT relrowsecurity FROM pg_catalog.pg_class "
                         "WHERE oid OPERATOR(pg_catalog.=) %s::pg_catalog.regclass::pg_catalog.oid",
                         (table,)).fetchone() or (False,)
    if on:
        conn.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")  # type: ignore[arg-type]
    yield
    if on:
        conn.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")  # type: ignore[arg-type]
