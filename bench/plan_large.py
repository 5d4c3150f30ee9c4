"""Benchmark: plan a large PostgreSQL schema change with lockplane, migra and pg_dump.

Creates two databases A and B (``lp_bench_*``) of ``--tables`` tables each (about 8
columns a table, an index or two, an FK to an earlier table), B differing from A by a
few dozen seeded changes, then times, each in its own child process (wall time and
that process's own peak RSS and CPU time from ``os.wait4``), ``--repeat`` times, (a) and
(b) alternating run by run so that a drift in the machine's speed hits both alike:

  a. ``lockplane plan --from A --to B``                 (two live databases)
  b. ``migra --unsafe A B``                             (the Python peer, own venv)
  c. ``pg_dump --schema-only A``                        (the floor: one catalog read)
  d. ``lockplane plan --from A --to B.sql``             (B as a pg_dump file)

and prints the median wall time, the max peak RSS, the lockplane/migra ratio against
the targets (at most half of migra's wall time, under 300 MiB) and, as a sanity check,
how many steps lockplane planned against how many differences were introduced.

Usage: ``.venv/bin/python bench/plan_large.py [--tables 1000] [--repeat 3] [--keep]``
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql as pgsql

HERE = Path(__file__).resolve().parent
MIGRA_VENV = HERE / ".venv-migra"
# migra 3.0 predates SQLAlchemy 2 (which would also pick psycopg 3 for postgresql://),
# and schemainspect imports pkg_resources, which newer setuptools no longer ships.
MIGRA_REQUIREMENTS = ["migra", "psycopg2-binary", "sqlalchemy<2", "setuptools<70"]
TARGET_RATIO = 0.5
TARGET_RSS_MIB = 300.0
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


# --------------------------------------------------------------------------- model


@dataclass
class Column:
    name: str
    type: str
    nullable: bool = True
    default: str | None = None
    identity: bool = False


@dataclass
class Index:
    name: str
    columns: list[str]
    unique: bool = False
    method: str = "btree"


@dataclass
class ForeignKey:
    name: str
    column: str
    ref_table: str
    on_delete: str = "NO ACTION"


@dataclass
class Check:
    name: str
    expr: str


@dataclass
class Table:
    name: str
    columns: list[Column] = field(default_factory=list)
    indexes: list[Index] = field(default_factory=list)
    fks: list[ForeignKey] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


# Column kinds and their weights: (kind, weight).
KINDS: list[tuple[str, int]] = [
    ("int", 20),
    ("text", 15),
    ("varchar", 15),
    ("numeric", 12),
    ("ts", 12),
    ("bool", 12),
    ("jsonb", 8),
]


def _make_column(rng: random.Random, j: int) -> Column:
    kind = rng.choices([k for k, _ in KINDS], weights=[w for _, w in KINDS])[0]
    name = f"c{j:02d}_{kind}"
    if kind == "int":
        if rng.random() < 0.3:
            return Column(name, "integer", nullable=False, default="0")
        return Column(name, "integer")
    if kind == "text":
        return Column(name, "text", nullable=rng.random() < 0.8)
    if kind == "varchar":
        return Column(
            name, f"varchar({rng.choice([32, 64, 128, 255])})", nullable=rng.random() < 0.7
        )
    if kind == "numeric":
        return Column(name, "numeric(10,2)", default="0" if rng.random() < 0.4 else None)
    if kind == "ts":
        return Column(name, "timestamptz", nullable=False, default="now()")
    if kind == "bool":
        return Column(name, "boolean", nullable=False, default="false")
    return Column(name, "jsonb", default="'{}'::jsonb" if rng.random() < 0.3 else None)


def make_table(rng: random.Random, name: str, ref_candidates: list[str]) -> Table:
    """One table: identity PK, 4-10 more columns (avg 8 in all), an FK most of the time."""
    t = Table(name)
    t.columns.append(Column("id", "bigint", nullable=False, identity=True))
    others = rng.randint(4, 10)
    j = 1
    if ref_candidates and rng.random() < 0.85:
        ref = rng.choice(ref_candidates)
        t.columns.append(Column("ref_id", "bigint", nullable=rng.random() < 0.5))
        t.fks.append(
            ForeignKey(
                f"{name}_ref_id_fkey",
                "ref_id",
                ref,
                rng.choice(["NO ACTION", "CASCADE", "SET NULL"])
                if t.columns[-1].nullable
                else rng.choice(["NO ACTION", "CASCADE"]),
            )
        )
        t.indexes.append(Index(f"{name}_ref_id_idx", ["ref_id"]))
        others -= 1
        j = 2
    for k in range(others):
        t.columns.append(_make_column(rng, j + k))
    plain = [
        c.name for c in t.columns[1:] if c.type not in ("jsonb", "text") and c.name != "ref_id"
    ]
    if plain and (not t.indexes or rng.random() < 0.5):
        if len(plain) >= 2 and rng.random() < 0.25:
            cols = rng.sample(plain, 2)
            t.indexes.append(Index(f"{name}_{cols[0]}_{cols[1]}_idx", cols))
        else:
            col = rng.choice(plain)
            unique = rng.random() < 0.15
            t.indexes.append(
                Index(f"{name}_{col}_{'key' if unique else 'idx'}", [col], unique=unique)
            )
    jsonb = [c.name for c in t.columns if c.type == "jsonb"]
    if jsonb and rng.random() < 0.1:
        t.indexes.append(Index(f"{name}_{jsonb[0]}_gin", [jsonb[0]], method="gin"))
    if not t.indexes:  # at least one index per table besides the PK
        col = t.columns[-1].name
        t.indexes.append(
            Index(
                f"{name}_{col}_idx",
                [col],
                method="gin" if t.columns[-1].type == "jsonb" else "btree",
            )
        )
    return t


def make_schema_a(rng: random.Random, n: int) -> list[Table]:
    tables: list[Table] = []
    for i in range(n):
        tables.append(make_table(rng, f"t{i:04d}", [t.name for t in tables]))
    return tables


def _clone(tables: list[Table]) -> list[Table]:
    return [
        Table(
            t.name,
            [Column(**vars(c)) for c in t.columns],
            [Index(i.name, list(i.columns), i.unique, i.method) for i in t.indexes],
            [ForeignKey(**vars(f)) for f in t.fks],
            [Check(**vars(c)) for c in t.checks],
        )
        for t in tables
    ]


def make_schema_b(rng: random.Random, a: list[Table]) -> tuple[list[Table], list[str]]:
    """B = A with seeded differences; returns B and one line per difference introduced."""
    b = _clone(a)
    by_name = {t.name: t for t in b}
    order = list(range(1, len(b)))  # t0000 stays put (root of many FKs)
    rng.shuffle(order)
    used: set[str] = set()
    touched_cols: set[tuple[str, str]] = set()
    changes: list[str] = []

    def pick(ok: object) -> Table | None:
        assert callable(ok)
        for reuse in (False, True):
            for i in order:
                t = b[i]
                if t.name in by_name and (reuse or t.name not in used) and ok(t):
                    used.add(t.name)
                    return t
        return None

    def free_cols(t: Table, pred: object) -> list[Column]:
        assert callable(pred)
        return [c for c in t.columns if (t.name, c.name) not in touched_cols and pred(c)]

    # 2 dropped tables, and the FKs that pointed at them.
    for _ in range(2):
        t = pick(lambda t: True)
        if t is None:
            break
        del by_name[t.name]
        changes.append(f"drop table {t.name}")
        for other in by_name.values():
            for fk in [f for f in other.fks if f.ref_table == t.name]:
                other.fks.remove(fk)
                changes.append(f"drop FK {fk.name} (referenced dropped {t.name})")
    # ~10 added columns.
    added = [
        ("note", "text", True, None),
        ("score", "integer", True, None),
        ("archived", "boolean", False, "false"),
        ("seen_at", "timestamptz", True, None),
        ("label", "varchar(40)", True, None),
    ]
    for k in range(10):
        t = pick(lambda t: True)
        if t is None:
            break
        nm, typ, nullable, default = added[k % len(added)]
        t.columns.append(Column(f"added_{nm}", typ, nullable, default))
        touched_cols.add((t.name, f"added_{nm}"))
        changes.append(f"add column {t.name}.added_{nm} {typ}")
    # ~5 dropped indexes (not the FK-supporting ones, to keep it plain).
    for _ in range(5):
        t = pick(lambda t: any(not i.name.endswith("_ref_id_idx") for i in t.indexes))
        if t is None:
            break
        idx = next(i for i in t.indexes if not i.name.endswith("_ref_id_idx"))
        t.indexes.remove(idx)
        changes.append(f"drop index {idx.name}")
    # ~5 new indexes.
    for _ in range(5):

        def indexable(t: Table) -> bool:
            have = {tuple(i.columns) for i in t.indexes}
            return any(
                (c.name,) not in have
                for c in free_cols(t, lambda c: c.type not in ("jsonb", "text") and not c.identity)
            )

        t = pick(indexable)
        if t is None:
            break
        have = {tuple(i.columns) for i in t.indexes}
        col = next(
            c
            for c in free_cols(t, lambda c: c.type not in ("jsonb", "text") and not c.identity)
            if (c.name,) not in have
        )
        t.indexes.append(Index(f"{t.name}_{col.name}_new_idx", [col.name]))
        changes.append(f"create index {t.name}_{col.name}_new_idx")
    # 3 type widenings: integer -> bigint, varchar(n) -> varchar(2n),
    # numeric(10,2) -> numeric(16,2).
    widen = [
        ("integer", lambda c: "bigint"),
        ("varchar(", lambda c: f"varchar({int(c.type[8:-1]) * 2})"),
        ("numeric(10,2)", lambda c: "numeric(16,2)"),
    ]
    for prefix, new_type in widen:
        t = pick(lambda t, p=prefix: bool(free_cols(t, lambda c: c.type.startswith(p))))
        if t is None:
            continue
        col = free_cols(t, lambda c, p=prefix: c.type.startswith(p))[0]
        old, col.type = col.type, new_type(col)
        touched_cols.add((t.name, col.name))
        changes.append(f"alter type {t.name}.{col.name} {old} -> {col.type}")
    # 2 new CHECK constraints.
    for _ in range(2):
        t = pick(lambda t: bool(free_cols(t, lambda c: c.type in ("integer", "numeric(10,2)"))))
        if t is None:
            break
        col = free_cols(t, lambda c: c.type in ("integer", "numeric(10,2)"))[0]
        touched_cols.add((t.name, col.name))
        t.checks.append(Check(f"{t.name}_{col.name}_check", f"{col.name} >= 0"))
        changes.append(f"add check {t.name}_{col.name}_check")
    # 1 changed default.
    t = pick(lambda t: bool(free_cols(t, lambda c: c.type == "boolean")))
    if t is not None:
        col = free_cols(t, lambda c: c.type == "boolean")[0]
        col.default = "true"
        touched_cols.add((t.name, col.name))
        changes.append(f"set default {t.name}.{col.name} false -> true")
    # 3 new tables (each with its own indexes and FK: separate objects, so listed).
    survivors = list(by_name)
    n = len(a)
    for k in range(3):
        t = make_table(rng, f"t{n + k:04d}", survivors)
        by_name[t.name] = t
        changes.append(f"create table {t.name}")
        changes.extend(f"  + index {i.name}" for i in t.indexes)
        changes.extend(f"  + FK {f.name}" for f in t.fks)
    return list(by_name.values()), changes


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def render(tables: list[Table]) -> str:
    """The whole schema as one SQL text: tables, then indexes, then FKs."""
    out: list[str] = []
    for t in tables:
        lines = []
        for c in t.columns:
            s = f"    {_q(c.name)} {c.type}"
            if c.identity:
                s += " GENERATED ALWAYS AS IDENTITY"
            if c.default is not None:
                s += f" DEFAULT {c.default}"
            if not c.nullable and not c.identity:
                s += " NOT NULL"
            lines.append(s)
        lines.append(f"    CONSTRAINT {_q(t.name + '_pkey')} PRIMARY KEY (id)")
        lines.extend(f"    CONSTRAINT {_q(ck.name)} CHECK ({ck.expr})" for ck in t.checks)
        out.append(f"CREATE TABLE public.{_q(t.name)} (\n" + ",\n".join(lines) + "\n);")
    for t in tables:
        for i in t.indexes:
            cols = ", ".join(_q(c) for c in i.columns)
            out.append(
                f"CREATE {'UNIQUE ' if i.unique else ''}INDEX {_q(i.name)} ON public.{_q(t.name)} "
                f"USING {i.method} ({cols});"
            )
    for t in tables:
        for f in t.fks:
            out.append(
                f"ALTER TABLE public.{_q(t.name)} ADD CONSTRAINT {_q(f.name)} FOREIGN KEY "
                f"({_q(f.column)}) REFERENCES public.{_q(f.ref_table)} (id) "
                f"ON DELETE {f.on_delete};"
            )
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- databases


def dsn_for(server: str, dbname: str) -> str:
    parts = urlsplit(server)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


def create_db(server: str, name: str, ddl: str) -> float:
    """Create database NAME and run DDL in it in one go; returns seconds spent."""
    t0 = time.perf_counter()
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(
            pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(pgsql.Identifier(name))
        )
        conn.execute(pgsql.SQL("CREATE DATABASE {}").format(pgsql.Identifier(name)))
    with psycopg.connect(dsn_for(server, name)) as conn:
        conn.execute(ddl.encode())  # no parameters: one simple-protocol round trip
        conn.commit()
    return time.perf_counter() - t0


def drop_db(server: str, name: str) -> None:
    try:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(
                pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(pgsql.Identifier(name))
            )
    except psycopg.Error as exc:
        print(f"warning: could not drop {name}: {exc}", file=sys.stderr)


def count_columns(dsn: str) -> tuple[int, int, int, int]:
    """(tables, columns, indexes, foreign keys) in schema public, as the server sees them."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute("""
            SELECT (SELECT count(*) FROM pg_tables WHERE schemaname = 'public'),
                   (SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public'),
                   (SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'),
                   (SELECT count(*) FROM pg_constraint c
                      JOIN pg_namespace n ON n.oid = c.connamespace
                     WHERE n.nspname = 'public' AND c.contype = 'f')""").fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


# --------------------------------------------------------------------------- measuring


@dataclass
class Run:
    wall: float
    rss_kib: int
    code: int
    cpu: float = 0.0  # the child's user + system CPU seconds


@dataclass
class Result:
    tool: str
    runs: list[Run] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.runs)

    @property
    def median_wall(self) -> float:
        return statistics.median(r.wall for r in self.runs)

    @property
    def median_cpu(self) -> float:
        return statistics.median(r.cpu for r in self.runs)

    @property
    def peak_mib(self) -> float:
        return max(r.rss_kib for r in self.runs) / 1024


def run_once(argv: list[str], stdout_path: str, stderr_path: str) -> Run:
    """Run ARGV as a child; its own wall time and peak RSS (KiB, from wait4's rusage)."""
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code  # reaped by wait4: tell Popen so it does not wait again
    return Run(wall, int(usage.ru_maxrss), code, usage.ru_utime + usage.ru_stime)


def measure(
    tool: str,
    argv: list[str],
    repeat: int,
    workdir: Path,
    ok_codes: tuple[int, ...] = (0,),
) -> Result:
    return measure_alternating([(tool, argv, ok_codes)], repeat, workdir)[0]


def measure_alternating(
    commands: list[tuple[str, list[str], tuple[int, ...]]], repeat: int, workdir: Path
) -> list[Result]:
    """Run each command ``repeat`` times, in rounds, alternating their order per round.

    A shared machine's speed drifts over minutes (seen here: the same run 1.5 s, then 2 s);
    running all of one tool and then all of the other would put that drift into the ratio.
    """
    results = [Result(tool) for tool, _, _ in commands]
    for k in range(repeat):
        order = list(range(len(commands)))
        if k % 2:
            order.reverse()
        for i in order:
            tool, argv, ok_codes = commands[i]
            res = results[i]
            if res.error:
                continue
            stem = re.sub(r"[^A-Za-z0-9.]+", "_", tool).strip("_")
            out, err = str(workdir / f"{stem}.out"), str(workdir / f"{stem}.err")
            run = run_once(argv, out, err)
            if run.code not in ok_codes:
                text = (
                    Path(err).read_text(errors="replace").strip()
                    or Path(out).read_text(errors="replace")[-2000:]
                )
                res.error = f"exit {run.code}: {text[-3000:]}"
                print(f"  {tool}: run {k + 1} FAILED ({res.error.splitlines()[0]})", flush=True)
                continue
            res.runs.append(run)
            print(
                f"  {tool}: run {k + 1}/{repeat} {run.wall:.2f} s "
                f"(CPU {run.cpu:.2f} s), {run.rss_kib / 1024:.0f} MiB",
                flush=True,
            )
    return results


def pair_ratios(a: Result, b: Result) -> list[float]:
    """a's wall time over b's, round by round (runs measured side by side)."""
    return [x.wall / y.wall for x, y in zip(a.runs, b.runs, strict=False)]


def precompile_lockplane(lockplane: str) -> str:
    """Byte-compile the lockplane package, as ``pip install`` does; returns a note.

    An editable install run with PYTHONDONTWRITEBYTECODE=1 (set in some sandboxes and CI
    images) never writes __pycache__, so every run would recompile ~100 modules (~0.3 s)
    that an installed lockplane, like migra (installed by pip), loads as bytecode.
    checked-hash pycs are validated against the source's hash on every import, so a
    file edited afterwards is never run from a stale pyc.
    """
    python = Path(lockplane).parent / "python"
    if not python.exists():
        python = Path(sys.executable)
    code = "import os, lockplane; print(os.path.dirname(lockplane.__file__))"
    found = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    pkg = found.stdout.strip()
    if found.returncode != 0 or not pkg:
        return f"could not locate the lockplane package to byte-compile: {found.stderr[-300:]}"
    done = subprocess.run(
        [str(python), "-m", "compileall", "-q", "--invalidation-mode", "checked-hash", pkg],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        return f"byte-compiling {pkg} failed: {(done.stdout + done.stderr)[-300:]}"
    return f"byte-compiled {pkg} (checked-hash pycs), as pip install does"


def ensure_migra() -> tuple[Path | None, str | None]:
    """bench/.venv-migra/bin/migra, creating that venv on first use; (path, None) or (None, why)."""
    exe = MIGRA_VENV / "bin" / "migra"
    if exe.exists():
        return exe, None
    print(f"  creating {MIGRA_VENV} for migra ...", flush=True)
    try:
        venv.EnvBuilder(with_pip=True, clear=True).create(MIGRA_VENV)
        pip = [
            str(MIGRA_VENV / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
        ]
        r = subprocess.run(pip + MIGRA_REQUIREMENTS, capture_output=True, text=True)
        if r.returncode != 0:
            return (
                None,
                f"pip install {' '.join(MIGRA_REQUIREMENTS)} failed: {r.stderr.strip()[-1500:]}",
            )
    except Exception as exc:  # noqa: BLE001 - report and go on without migra
        return None, f"could not create {MIGRA_VENV}: {exc}"
    if not exe.exists():
        return None, f"{exe} missing after install"
    return exe, None


def plan_steps(
    lockplane: str, src_from: str, src_to: str, workdir: Path
) -> tuple[int, collections.Counter[str]]:
    path = workdir / "plan.json"
    r = subprocess.run(
        [lockplane, "plan", "--from", src_from, "--to", src_to, "--quiet", "-o", str(path)],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        raise RuntimeError(f"exit {r.returncode}: {r.stderr.strip()[-3000:]}")
    steps = json.loads(path.read_text()).get("steps", [])
    kinds = collections.Counter(
        str(s.get("kind") or s.get("description", "?").split()[0]) for s in steps
    )
    return len(steps), kinds


def migra_statements(path: Path) -> int:
    text = path.read_text(errors="replace") if path.exists() else ""
    return sum(1 for line in text.splitlines() if line.rstrip().endswith(";"))


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--tables", type=int, default=1000, help="tables in A (default 1000; >= 20)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per tool (median wall, max RSS)")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--keep", action="store_true", help="keep the databases and the work directory")
    ap.add_argument(
        "--server",
        default=os.environ.get("LOCKPLANE_BENCH_SERVER", DEFAULT_SERVER),
        help="PostgreSQL server URL (a database to connect to for CREATE DATABASE)",
    )
    ap.add_argument(
        "--lockplane", default=None, help="lockplane executable (default: next to this Python)"
    )
    ap.add_argument("--no-migra", action="store_true", help="skip migra")
    ap.add_argument(
        "--no-precompile",
        action="store_true",
        help="do not byte-compile lockplane first (measures a cold, source-only start)",
    )
    args = ap.parse_args(argv)
    if args.tables < 20:
        ap.error("--tables must be at least 20 (B's differences need distinct tables)")
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    lockplane = args.lockplane or str(Path(sys.executable).parent / "lockplane")
    if not Path(lockplane).exists():
        lockplane = shutil.which("lockplane") or lockplane
    pg_dump = shutil.which("pg_dump")

    workdir = Path(tempfile.mkdtemp(prefix="lp_bench_"))
    tag = f"lp_bench_{os.getpid()}"
    db_a, db_b = f"{tag}_a", f"{tag}_b"
    dsn_a, dsn_b = dsn_for(args.server, db_a), dsn_for(args.server, db_b)
    try:
        t0 = time.perf_counter()
        rng = random.Random(args.seed)
        schema_a = make_schema_a(rng, args.tables)
        schema_b, changes = make_schema_b(rng, schema_a)
        ddl_a, ddl_b = render(schema_a), render(schema_b)
        t_gen = time.perf_counter() - t0
        (workdir / "A.gen.sql").write_text(ddl_a)
        (workdir / "B.gen.sql").write_text(ddl_b)
        t_a = create_db(args.server, db_a, ddl_a)
        t_b = create_db(args.server, db_b, ddl_b)
        ca, cb = count_columns(dsn_a), count_columns(dsn_b)
        print(
            f"generated DDL in {t_gen:.2f} s ({len(ddl_a) / 1e6:.1f} MB for A); "
            f"created A in {t_a:.1f} s, B in {t_b:.1f} s"
        )
        for label, c in (("A", ca), ("B", cb)):
            print(
                f"  {label}: {c[0]} tables, {c[1]} columns, {c[2]} indexes (incl. PKs), {c[3]} FKs"
            )
        print(
            f"  B differs from A by {sum(1 for c in changes if not c.startswith('  '))} changes "
            f"({len(changes)} counting the new tables' indexes and FKs)"
        )

        # B as pg_dump sees it, for run (d); not timed.
        b_sql = workdir / "B.sql"
        if pg_dump:
            subprocess.run([pg_dump, "--schema-only", "-f", str(b_sql), dsn_b], check=True)

        results: list[Result] = []
        dump_srcs: list[tuple[str, str]] = [("db->B.sql", str(b_sql))] if pg_dump else []
        notes: list[str] = []
        if not args.no_precompile:
            print(precompile_lockplane(lockplane))
        print(f"\nmeasuring ({args.repeat} runs each) ...", flush=True)
        lp_cmd = (
            "lockplane A->B (db->db)",
            [lockplane, "plan", "--from", dsn_a, "--to", dsn_b, "--quiet", "-o", "/dev/null"],
            (0,),
        )
        mg: Result | None = None
        exe: Path | None = None
        if args.no_migra:
            notes.append("migra: skipped (--no-migra)")
        else:
            exe, why = ensure_migra()
            if exe is None:
                notes.append(f"migra: not run: {why}")
        if exe is None:
            lp = measure_alternating([lp_cmd], args.repeat, workdir)[0]
            results.append(lp)
        else:
            # Side by side: lockplane, migra, migra, lockplane, ... (see measure_alternating).
            lp, mg = measure_alternating(
                [lp_cmd, ("migra --unsafe (db->db)", [str(exe), "--unsafe", dsn_a, dsn_b], (0, 2))],
                args.repeat,
                workdir,
            )
            results += [lp, mg]
        if pg_dump:
            results.append(
                measure(
                    "pg_dump --schema-only A",
                    [pg_dump, "--schema-only", "-f", str(workdir / "A.sql"), dsn_a],
                    args.repeat,
                    workdir,
                )
            )
            dump_run = measure(
                "lockplane A->B.sql (pg_dump)",
                [
                    lockplane,
                    "plan",
                    "--from",
                    dsn_a,
                    "--to",
                    str(b_sql),
                    "--quiet",
                    "-o",
                    "/dev/null",
                ],
                args.repeat,
                workdir,
            )
            results.append(dump_run)
            if not dump_run.ok:
                # Recent pg_dump (15.14+, 2025-08) writes psql meta-commands (\restrict KEY /
                # \unrestrict KEY) that only psql understands. Measure the dump without them too,
                # so the figure exists while the engine learns to skip them.
                text = b_sql.read_text()
                kept = [ln for ln in text.splitlines(keepends=True) if not ln.startswith("\\")]
                if len(kept) < len(text.splitlines()):
                    b_plain = workdir / "B.no-meta.sql"
                    b_plain.write_text("".join(kept))
                    dump_srcs.append(("db->B.no-meta.sql", str(b_plain)))
                    results.append(
                        measure(
                            "lockplane A->B.sql (no \\ lines)",
                            [
                                lockplane,
                                "plan",
                                "--from",
                                dsn_a,
                                "--to",
                                str(b_plain),
                                "--quiet",
                                "-o",
                                "/dev/null",
                            ],
                            args.repeat,
                            workdir,
                        )
                    )
        else:
            notes.append("pg_dump: not on PATH; runs (c) and (d) skipped")

        # ---- report
        print(
            f"\n{args.tables} tables, repeat {args.repeat}: "
            "median wall, max peak RSS of the child process"
        )
        print(f"{'tool':<32} {'wall s':>8} {'CPU s':>8} {'RSS MiB':>8}")
        for r in results:
            if r.ok:
                print(f"{r.tool:<32} {r.median_wall:>8.2f} {r.median_cpu:>8.2f} {r.peak_mib:>8.0f}")
            else:
                print(f"{r.tool:<32} {'FAILED':>8} {'-':>8} {'-':>8}")
        print(
            f"\ntargets: lockplane plan at most {TARGET_RATIO:.0%} of migra's wall time, "
            f"under {TARGET_RSS_MIB:.0f} MiB"
        )
        for r in (x for x in results if x.tool.startswith("lockplane")):
            if not r.ok:
                continue
            parts = [f"RSS {r.peak_mib:.0f} MiB {'OK' if r.peak_mib < TARGET_RSS_MIB else 'OVER'}"]
            if mg is not None and mg.ok:
                ratio = r.median_wall / mg.median_wall
                ok = "OK" if ratio <= TARGET_RATIO else "OVER"
                verdict = f"lockplane/migra wall {ratio:.2f} {ok}"
                if r is lp and len(lp.runs) == len(mg.runs):
                    pairs = pair_ratios(lp, mg)
                    verdict += (f" (round by round: median {statistics.median(pairs):.2f}, "
                                f"worst {max(pairs):.2f})")
                parts.insert(0, verdict)
            print(f"  {r.tool:<30} " + "; ".join(parts))

        print("\nsanity check: steps planned vs differences introduced")
        for label, to in [("db->db", dsn_b), *dump_srcs]:
            try:
                n, kinds = plan_steps(lockplane, dsn_a, to, workdir)
                print(
                    f"  lockplane {label}: {n} steps: "
                    + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
                )
            except RuntimeError as exc:
                print(f"  lockplane {label}: failed: {exc}")
        if mg is not None and mg.ok:
            out = workdir / (re.sub(r"[^A-Za-z0-9.]+", "_", mg.tool).strip("_") + ".out")
            print(f"  migra: {migra_statements(out)} statements")
        print(f"  introduced: {len(changes)}:")
        for c in changes:
            print(f"    {c}")
        for r in results:
            if r.error:
                notes.append(f"{r.tool}: {r.error}")
        if notes:
            print("\nnotes:")
            for n_ in notes:
                print(f"  {n_}")
        return 0
    finally:
        if args.keep:
            print(f"\nkept databases {db_a}, {db_b} and work directory {workdir}")
        else:
            drop_db(args.server, db_a)
            drop_db(args.server, db_b)
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
