"""``lockplane export --to gh-ost|pt-osc``: a MySQL plan as a shell script in which each
step that would copy its table runs through an online schema change tool.

MySQL copies a table row by row for some ALTERs (``ALGORITHM=COPY``): writes wait for the
whole copy. gh-ost (https://github.com/github/gh-ost) and pt-online-schema-change (Percona
Toolkit) make the change on an empty copy of the table, fill it in chunks while the table
stays writable (gh-ost follows the binary log, pt-osc uses triggers) and swap the two at
the end. What they run is the step's ALTER TABLE body as its change kind renders it (the
plan's ``alter``: clauses without ALGORITHM / LOCK), never SQL re-read from the step.

The script keeps the plan's order: a step that does not copy runs as the plan's own SQL
through the ``mysql`` client; the database must be at the plan's ``source_hash`` before
anything runs and at its ``target_hash`` at the end (``lockplane introspect --format
hash``, with the URL in ``LOCKPLANE_TARGET``). No password is written: the tools ask for
it (``--ask-pass``, ``--password``) or read an option file the operator names
(``--defaults-file``).

Refused (bad input, one line): a plan of another dialect; a step that runs only under a
condition (the script would run it regardless); a copying step that is not one ALTER
TABLE, or renames (the tools rebuild a table under its own name, and match columns
by name); names the tools cannot quote (backticks, backslashes, line breaks); for gh-ost,
a table with foreign keys in either direction (gh-ost does not support them) and a unix
socket (gh-ost connects over TCP).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from ..dialects import get_dialect
from ..errors import BadInput
from ..plan import Plan, Step

OSC_TOOLS = ("gh-ost", "pt-osc")
# A plan offers the tools for a copying step on a table bigger than this (data and
# indexes, as the server estimates them).
OFFER_ABOVE_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class OscOptions:
    """How the tools run. ``execute``: the script changes the database (without it, the
    tools' dry runs, and plain SQL steps printed, not run). ``defaults_file``: a MySQL
    option file ([client] password=...) the tools read the password from, instead of
    asking. ``drop_old_table`` (pt-osc): drop the original table after the swap (kept by
    default, a way back, and then the final hash check waits for it to be dropped)."""

    execute: bool = False
    defaults_file: str | None = None
    drop_old_table: bool = False
    chunk_size: int = 1000
    chunk_time: float = 0.5
    max_load: str = "Threads_running=25"
    critical_load: str = "Threads_running=50"


@dataclass(frozen=True)
class _Server:
    host: str
    port: int
    user: str
    database: str
    socket: str | None


def copies_table(step: Step) -> bool:
    """Whether the step makes the server copy its table: ALGORITHM=COPY where the plan
    records the algorithm, else a table rewrite."""
    lock = step.lock
    if lock is None:
        return False
    algorithm = getattr(lock, "algorithm", None)
    if algorithm is not None:
        return str(algorithm).upper() == "COPY"
    return lock.rewrites_table


def _server(dsn: str) -> _Server:
    from ..dialects.mysql import parse_dsn

    p = parse_dsn(dsn)
    return _Server(p.host, p.port, p.user, p.database, p.unix_socket)


def _name(value: str, what: str, where: str) -> str:
    """A database or table name the tools take as it is (they quote it with backticks
    without doubling one, and pt-osc's DSN has no escape for a backslash)."""
    for bad, said in (("`", "a backtick"), ("\\", "a backslash"), ("\n", "a line break"),
                      ("\r", "a line break"), ("\x00", "a NUL byte")):
        if bad in value:
            raise BadInput(f"{where}: the {what} name {value!r} contains {said}, which the "
                           "online schema change tools cannot quote")
    return value


def _dsn_value(value: str) -> str:
    return value.replace(",", "\\,")  # pt-osc's DSN separates keys with commas


def _lines(args: list[str]) -> str:
    """One command, an argument per line, every argument quoted for the shell."""
    return " \\\n  ".join(shlex.quote(a) for a in args)


def _comment(text: str) -> str:
    return "\n".join("# " + line if line else "#" for line in text.splitlines())


class _Script:
    def __init__(self, plan: Plan, tool: str, server: _Server, opts: OscOptions) -> None:
        self.plan, self.tool, self.server, self.opts = plan, tool, server, opts
        self.warnings: list[str] = []
        self.kept_old: list[str] = []

    def _database(self, schema: str) -> str:
        db = schema or self.server.database
        if not db:
            raise BadInput("--target names no database: the tools need one "
                           "(mysql://user@host:port/DATABASE)")
        return db

    # -- refusals
    def check(self, n: int, step: Step) -> None:
        where = f"step {n} ({step.description})"
        if step.alter is None:
            raise BadInput(f"{where} copies its table but is not one ALTER TABLE: "
                           f"{self.tool} cannot run it")
        if step.kind in ("rename_table", "rename_column"):
            raise BadInput(f"{where} renames: {self.tool} rebuilds a table under its own "
                           "name and copies columns by name (rename in its own plan)")
        names = (("database", self._database(step.alter.schema_)),
                 ("table", step.alter.table))
        for what, value in names:
            _name(value, what, where)
            if self.tool == "pt-osc" and not value.isascii():
                # Its DSN's names reach the server encoded twice with A=utf8 (which its
                # copy needs for non-ASCII key values), as Percona Toolkit 3.2 does.
                raise BadInput(f"{where}: the {what} name {value!r} is not ASCII, which "
                               "pt-online-schema-change mangles (use --to gh-ost)")
        if self.tool == "gh-ost":
            fks = step.alter.foreign_keys
            if fks is None:
                raise BadInput(f"{where}: the plan does not say which foreign keys the table "
                               "has (made by an older Lockplane?), and gh-ost refuses tables "
                               "with any: plan it again")
            if fks:
                raise BadInput(f"{where}: gh-ost does not support foreign keys, and the table "
                               f"has or is referenced by {', '.join(fks)} (use --to pt-osc)")
            if self.server.socket:
                raise BadInput("gh-ost connects over TCP: give --target a host and port, "
                               "not a unix_socket")
        elif step.alter.foreign_keys:
            self.warnings.append(
                f"{where}: the table has or is referenced by foreign keys "
                f"({', '.join(step.alter.foreign_keys)}); pt-online-schema-change refuses "
                "tables that others reference unless told --alter-foreign-keys-method "
                "(read its documentation before adding one)")

    # -- the script
    def text(self) -> str:
        plan, opts, s = self.plan, self.opts, self.server
        for n, st in enumerate(plan.steps, 1):
            if getattr(st, "condition", None) is not None:
                raise BadInput(f"step {n} ({st.description}) runs only where its condition "
                               "holds, which the script cannot carry: apply this plan with "
                               "lockplane apply")
        copying = [(n, st) for n, st in enumerate(plan.steps, 1) if copies_table(st)]
        for n, st in copying:
            self.check(n, st)
        if not copying:
            self.warnings.append("no step of this plan copies a table: the script runs the "
                                 "plan's SQL, as lockplane apply would (with its checks)")
        program = "gh-ost" if self.tool == "gh-ost" else "pt-online-schema-change"
        mode = ("executes: it changes the database" if opts.execute else
                f"is a dry run: {program} does not change the table, and the plain SQL steps "
                "are printed, not run (export again with --execute to make the change)")
        secret = (f"the tools read it from the option file {opts.defaults_file}"
                  if opts.defaults_file else
                  "each tool asks for it (--ask-pass; the mysql client's --password)")
        where = f"unix socket {s.socket}" if s.socket else f"host {s.host}, port {s.port}"
        head = [
            "#!/bin/sh",
            _comment(f"Lockplane plan {plan.plan_id or '(no plan_id)'}, exported for {program} "
                     f"by `lockplane export --to {self.tool}`.\n"
                     f"From database hash {plan.source_hash} to {plan.target_hash or '?'}: "
                     f"{len(plan.steps)} step(s), {len(copying)} through {program} (those "
                     "that would copy their table); the others run as the plan's own SQL, in "
                     f"the plan's order.\nServer: {where}, user {s.user}. No password is "
                     f"written here: {secret}.\nThis script {mode}. It does not resume: after a "
                     "failure, plan again from the database.\n"
                     "LOCKPLANE_TARGET: the database URL, with its password, for the hash "
                     "checks (`lockplane introspect --format hash`)."),
            "set -eu",
            'LOCKPLANE=${LOCKPLANE:-lockplane}',
            ': "${LOCKPLANE_TARGET:?set LOCKPLANE_TARGET to the database URL for the hash '
            'checks}"',
            "",
            "at_hash() {  # exit 3 unless the database is at hash $1",
            '  got=$("$LOCKPLANE" introspect --target "$LOCKPLANE_TARGET" --format hash)',
            '  if [ "$got" != "$1" ]; then',
            '    echo "lockplane: the database has hash $got, expected $1 ($2)" >&2',
            "    exit 3",
            "  fi",
            "}",
            "",
            self._sql_function(),
            "",
            # (the hashes come from the plan file, like everything here: quoted for the
            # shell; a source_hash '$(touch /tmp/x)' ran its command on 4c305cb)
            f'at_hash {shlex.quote(plan.source_hash)} "the state this plan was made for"',
        ]
        body: list[str] = []
        for n, step in enumerate(plan.steps, 1):
            body.append("")
            facts = self._lock_text(step)
            if copies_table(step):
                body.append(_comment(f"Step {n}/{len(plan.steps)}: {step.description}"
                                     f"{facts}: would copy the table, so {program} does it."))
                body += self._tool(n, step)
            else:
                body.append(_comment(f"Step {n}/{len(plan.steps)}: {step.description}"
                                     f"{facts}."))
                body += [f"sql {shlex.quote(stmt)}" for stmt in step.sql]
        tail = [""]
        if not opts.execute:
            tail.append(_comment("A dry run changes nothing: the database stays at the plan's "
                                 "source hash."))
        elif self.kept_old:
            tail.append(_comment(
                "pt-online-schema-change kept each original table (--no-drop-old-table) as "
                "_<table>_old: a way back. Drop them when you no longer need them; then the "
                "database is where the plan leads:\n"
                f'  at_hash {shlex.quote(plan.target_hash or "")} "where the plan leads"'))
        elif plan.target_hash:
            tail.append(f'at_hash {shlex.quote(plan.target_hash)} "where the plan leads"')
        return "\n".join(head + body + tail) + "\n"

    def _lock_text(self, step: Step) -> str:
        lock = step.lock
        if lock is None:
            return ""
        algorithm = getattr(lock, "algorithm", None)
        if algorithm:
            return f" (ALGORITHM={algorithm}, LOCK={lock.mode})"
        return " (rewrites the table)" if lock.rewrites_table else ""

    def _sql_function(self) -> str:
        s, opts = self.server, self.opts
        args = ["mysql"]
        if opts.defaults_file:
            args.append(f"--defaults-extra-file={opts.defaults_file}")  # must come first
        args += [f"--socket={s.socket}"] if s.socket else [f"--host={s.host}",
                                                          f"--port={s.port}"]
        args.append(f"--user={s.user}")
        if not opts.defaults_file:
            args.append("--password")  # asks
        if s.database:
            args.append(f"--database={s.database}")
        run = " ".join(shlex.quote(a) for a in args)
        if not self.opts.execute:
            return ("sql() {  # dry run: print the statement (executing: "
                    f"{run} -e \"$1\")\n  printf 'would run: %s\\n' \"$1\"\n}}")
        return f"sql() {{  # one statement of the plan\n  {run} -e \"$1\"\n}}"

    def _tool(self, n: int, step: Step) -> list[str]:
        assert step.alter is not None
        alter = ", ".join(step.alter.clauses)
        db = self._database(step.alter.schema_)
        return self._ghost(n, step, db, alter) if self.tool == "gh-ost" \
            else self._ptosc(step, db, alter)

    def _ghost(self, n: int, step: Step, db: str, alter: str) -> list[str]:
        s, opts = self.server, self.opts
        assert step.alter is not None
        flag = f"/tmp/lockplane-{(self.plan.plan_id or 'plan')[:12]}-step{n}.postpone"
        args = ["gh-ost", f"--host={s.host}", f"--port={s.port}", f"--user={s.user}"]
        args.append(f"--conf={opts.defaults_file}" if opts.defaults_file else "--ask-pass")
        args += [f"--database={db}", f"--table={step.alter.table}", f"--alter={alter}",
                 "--allow-on-master", f"--chunk-size={opts.chunk_size}",
                 f"--max-load={opts.max_load}", f"--critical-load={opts.critical_load}",
                 f"--postpone-cut-over-flag-file={flag}"]
        if opts.execute:
            args.append("--execute")
        notes = (
            "gh-ost is made for MySQL; its authors do not support MariaDB (use --to pt-osc "
            "there). This command line is untested against gh-ost itself.\n"
            "--allow-on-master: gh-ost runs against the server Lockplane applies to (this "
            "primary) and reads its binary log, which must be binlog_format=ROW.\n"
            "--assume-rbr is left off: add it when you know the binary log is ROW and the "
            "user may not read or change that setting (gh-ost then skips the check).\n"
            "--max-load pauses the copy while the server is busier than this; "
            "--critical-load aborts it.\n"
            f"--postpone-cut-over-flag-file: gh-ost copies and keeps up, but swaps the tables "
            f"only once this file is gone: rm {flag} when ready.\n"
            + ("--execute: the change is made." if opts.execute else
               "--execute is left off: gh-ost only checks and builds its ghost table (noop); "
               "export again with --execute to make the change."))
        return [_comment(notes), f"touch {shlex.quote(flag)}", _lines(args)]

    def _ptosc(self, step: Step, db: str, alter: str) -> list[str]:
        s, opts = self.server, self.opts
        assert step.alter is not None
        parts = [f"S={_dsn_value(s.socket)}"] if s.socket else [
            f"h={_dsn_value(s.host)}", f"P={s.port}"]
        if opts.defaults_file:
            parts.append(f"F={_dsn_value(opts.defaults_file)}")
        # A=utf8: values pt-osc reads (chunk boundaries) go back to the server as they
        # were (on servers from version 8, MariaDB included, it says SET NAMES utf8mb4).
        parts += ["A=utf8", f"u={_dsn_value(s.user)}", f"D={_dsn_value(db)}",
                  f"t={_dsn_value(step.alter.table)}"]
        args = ["pt-online-schema-change", f"--alter={alter}"]
        if not opts.defaults_file:
            args.append("--ask-pass")
        args += [f"--max-load={opts.max_load}", f"--critical-load={opts.critical_load}",
                 f"--chunk-time={opts.chunk_time}"]
        if not opts.drop_old_table:
            args.append("--no-drop-old-table")
            self.kept_old.append(step.alter.table)
        args += ["--execute" if opts.execute else "--dry-run", ",".join(parts)]
        notes = (
            "--max-load pauses the copy while the server is busier than this; "
            "--critical-load aborts it. --chunk-time: seconds per chunk of rows copied.\n"
            + ("" if opts.drop_old_table else
               "--no-drop-old-table: the original table stays as _<table>_old, a way back.\n")
            + ("--execute: the change is made." if opts.execute else
               "--dry-run: builds and alters the new table only; export again with --execute "
               "to make the change."))
        return [_comment(notes), _lines(args)]


def export_osc(plan: Plan, tool: str, target_dsn: str,
               opts: OscOptions | None = None) -> tuple[str, list[str]]:
    """The plan as a shell script for ``tool`` (gh-ost or pt-osc) against the database
    ``target_dsn`` names (its password is never written); the second value lists
    caveats."""
    if tool not in OSC_TOOLS:
        raise BadInput(f"--to {tool}: not an online schema change tool ({', '.join(OSC_TOOLS)})")
    if plan.dialect is None or tool not in get_dialect(plan.dialect).export_tools:
        raise BadInput(f"{tool} changes MySQL tables; this plan is for "
                       f"{plan.dialect or 'postgres'}")
    from ..dsn import dialect_of

    if dialect_of(target_dsn) != plan.dialect:
        raise BadInput(f"--target must be a {plan.dialect} database URL for this plan")
    script = _Script(plan, tool, _server(target_dsn), opts or OscOptions())
    return script.text(), script.warnings


def offer_online_schema_change(plan: Plan, dsn: str,
                               above_bytes: int = OFFER_ABOVE_BYTES) -> None:
    """Say, in each step that would copy a table bigger than ``above_bytes`` on the
    database ``dsn`` names, that an online schema change tool can do it without blocking
    writes (step messages: not covered by the plan's id)."""
    tools = [t for t in OSC_TOOLS if plan.dialect
             and t in get_dialect(plan.dialect).export_tools]
    steps = [st for st in plan.steps if st.alter is not None and copies_table(st)]
    if not tools or not steps:
        return
    from ..dialects import connect

    with connect(dsn) as db:
        for step in steps:
            assert step.alter is not None
            size = db.table_size_bytes(step.alter.schema_ or None, step.alter.table)
            if size is None or size <= above_bytes:
                continue
            step.messages.append(
                f"{step.alter.table} holds about {size / 1024 ** 2:,.0f} MiB, which the server "
                "copies while writes wait: run it online with "
                + " or ".join(tools) + ": lockplane export --to " + tools[0]
                + " PLAN --target URL (or --to " + " / --to ".join(tools[1:]) + ")")
