"""lockplane ci-report: the pull-request comment from a real plan (a real PostgreSQL pair),
real lint output and a real drift report; hostile names rendered inert, checked by
rendering the comment with GitHub's own cmark-gfm; bad inputs exit 2; the GitHub Actions
template passes actionlint (with shellcheck on its scripts)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import cmarkgfm
import pytest
from cmarkgfm.cmark import Options
from hypothesis import given, settings
from hypothesis import strategies as st

from lockplane.ci_report import MARKER, MAX_CHARS, code, text, visible
from tests.cli_inprocess import lockplane
from tests.conftest import _create_pg_database, _drop_pg_database, _pg_dsn_for, pg_exec

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "examples" / "github-actions" / "lockplane.yml"

# Names a pull request could give its objects (PostgreSQL keeps up to 63 bytes).
IMG_TABLE = "<img src=x onerror=alert(1)>"
LINK_TABLE = "x](https://evil.example/)![i](https://evil.example/i.png)"
FENCE_TABLE = "```\n</details>\n# pwned @octocat"
MENTION_COLUMN = "@octo-org/admins"
INDEX_NAME = "#1 www.evil.example $x$ <!-- c -->"
DRIFT_COLUMN = "[x](https://evil.example) @octo-org/admins <b>"


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# What the base branch says production looks like (drift is measured against it).
BASE_SCHEMA = f"""
CREATE TABLE users (id bigint PRIMARY KEY, email text, legacy text, age integer);
CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint);
CREATE TABLE {q(IMG_TABLE)} (id integer);
CREATE TABLE {q(LINK_TABLE)} (id integer);
"""
# What the pull request wants.
PR_SCHEMA = f"""
CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL, age bigint,
                    {q(MENTION_COLUMN)} text);
CREATE INDEX {q(INDEX_NAME)} ON users (email);
CREATE TABLE {q(FENCE_TABLE)} (id integer);
"""
MIGRATION_DROP = "-- drop the old column\nALTER TABLE users DROP COLUMN legacy;\n"
HOSTILE_FILE = "0002_<b>@octo-org ``` [l](https:x) \n #1.sql"
MIGRATION_HOSTILE = f"CREATE INDEX {q('i <script>@team')} ON {q('t```|x')} (a);\n"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """plan.json, lint.json and drift.json made by the real commands on real databases."""
    root = tmp_path_factory.mktemp("ci")
    name = _create_pg_database()
    prod = _pg_dsn_for(name)
    try:
        pg_exec(prod, BASE_SCHEMA)
        # Drifted by hand since: an emergency column, and a hostile one.
        pg_exec(prod, f"ALTER TABLE users ADD COLUMN emergency_fix text, "
                      f"ADD COLUMN {q(DRIFT_COLUMN)} text;")
        (root / "base").mkdir()
        (root / "base" / "app.sql").write_text(BASE_SCHEMA)
        (root / "schema").mkdir()
        (root / "schema" / "app.sql").write_text(PR_SCHEMA)
        (root / "migrations").mkdir()
        (root / "migrations" / "0001_drop.sql").write_text(MIGRATION_DROP)
        (root / "migrations" / HOSTILE_FILE).write_text(MIGRATION_HOSTILE)
        (root / "lockplane.toml").write_text(
            f'[environments.prod]\ndatabase_url = "{prod}"\nschema_path = "base/"\n')

        r = lockplane("plan", "--from", prod, "--to", "schema/", "-o", "plan.json", cwd=root)
        assert r.code == 0, r.output
        r = lockplane("lint", "--format", "json", "migrations/0001_drop.sql",
                      f"migrations/{HOSTILE_FILE}", cwd=root)
        assert r.code == 3, r.output  # findings at or above review
        (root / "lint.json").write_text(r.stdout)
        r = lockplane("drift", "check", "--environment", "prod", "--format", "json",
                      "-o", "drift.json", cwd=root)
        assert r.code == 4, r.output
        yield {"root": root, "plan": root / "plan.json", "lint": root / "lint.json",
               "drift": root / "drift.json"}
    finally:
        _drop_pg_database(name)


def _report(inputs: dict[str, Path], *extra: str) -> tuple[int, str, str]:
    out = inputs["root"] / "comment.md"
    out.unlink(missing_ok=True)
    r = lockplane("ci-report", "--plan", "plan.json", "--lint", "lint.json", "--drift",
                  "drift.json", "-o", str(out), *extra, cwd=inputs["root"])
    return r.code, out.read_text() if out.exists() else "", r.stderr


# ------------------------------------------------------------------ rendering like GitHub
def render(md: str) -> str:
    # UNSAFE: raw HTML passes through, as GitHub's renderer lets it reach its sanitiser;
    # what must not be there is then plain to see.
    return cmarkgfm.github_flavored_markdown_to_html(md, options=Options.CMARK_OPT_UNSAFE)


class Page(HTMLParser):
    """Tags, attributes, comments, table rows and text (outside code) of rendered HTML."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str, str | None]] = []
        self.comments: list[str] = []
        self.rows: list[int] = []
        self.prose: list[str] = []  # text outside <code> and <pre>
        self.all_text: list[str] = []
        self.cells: list[str] = []  # the text of each td, th and li
        self._in_code = 0
        self._open = False
        self.feed(source)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += [(tag, k, v) for k, v in attrs]
        if tag in ("code", "pre"):
            self._in_code += 1
        if tag == "tr":
            self.rows.append(0)
        if tag in ("td", "th"):
            self.rows[-1] += 1
        if tag in ("td", "th", "li"):
            self.cells.append("")
            self._open = True

    def handle_endtag(self, tag: str) -> None:
        if tag in ("code", "pre"):
            self._in_code -= 1
        if tag in ("td", "th", "li"):
            self._open = False

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)

    def handle_data(self, data: str) -> None:
        self.all_text.append(data)
        if self._open:
            self.cells[-1] += data
        if not self._in_code:
            self.prose.append(data)


OUR_TAGS = {"h3", "h4", "p", "ul", "li", "table", "thead", "tbody", "tr", "th", "td",
            "code", "pre", "strong", "em", "details", "summary", "sub"}
# What GitHub turns into links, mentions and references in rendered text.
LINKISH = re.compile(r"(?<![\w])@[A-Za-z0-9]|(?<![\w&])#\d|https?://|www\.", re.I)


def assert_inert(md: str) -> Page:
    page = Page(render(md))
    assert set(page.tags) <= OUR_TAGS, set(page.tags) - OUR_TAGS
    assert {(t, k) for t, k, _ in page.attrs} <= {("th", "align"), ("td", "align"),
                                                  ("code", "class"), ("pre", "lang")}
    assert page.comments == [MARKER[4:-3]], page.comments
    assert md.startswith(MARKER + "\n")
    assert len({n for n in page.rows}) <= 1, page.rows  # every row has the header's cells
    prose = "".join(page.prose)
    assert not LINKISH.search(prose), LINKISH.search(prose)
    return page


# ------------------------------------------------------------------------------ tests
def test_report_from_real_inputs(inputs) -> None:
    code_, md, err = _report(inputs)
    assert code_ == 3, err
    assert err.strip().splitlines()[-1] == ("error: ci-report: 6 dangerous steps need "
                                            "acknowledgement; 1 lint finding at dangerous "
                                            "or worse")
    lines = md.splitlines()
    assert lines[0] == MARKER
    # The one-line verdict, at the top.
    assert lines[1] == ("### Lockplane: ⛔ **6 dangerous steps need acknowledgement** · "
                        "**1 lint finding at dangerous or worse** (4 in all) · ⚠️ drift in prod")
    # The steps: safety classes and lock facts.
    # (the step reads the column's values into an archive first: it scans the table)
    assert "| Drop column legacy from public\\.users | ⛔ dangerous | ACCESS EXCLUSIVE\\: " \
           "blocks reads and writes · scans table |" in md
    assert "rewrites table" in md  # integer -> bigint
    assert re.search(r"Create index .* ✅ safe \| SHARE UPDATE EXCLUSIVE\\: blocks neither "
                     r"· scans table \|", md)
    # Findings: rule ids, safer alternatives, the acknowledgement that clears them.
    assert "- `drop-column` (⛔ dangerous): Dropping public\\.users\\.legacy" in md
    assert "**Safer:** Multi\\-phase drop" in md
    assert "`--acknowledge drop-column@public.users`" in md
    assert "`type-change-rewrite` (🔀 multi_phase)" in md
    # What the rollback loses.
    assert "**Rollback loses data** (⚠️ lossy): narrows public\\.users\\.age back" in md
    assert ("**Rollback** (✅ safe): recreates the table and puts back the rows this step "
            "archives" in md)
    # Lint findings with file:line; drift in words.
    assert "`migrations/0001_drop.sql:2` `drop-column`" in md
    assert "prod has extra column users\\.emergency\\_fix\\, not in the desired schema" in md
    assert "**This migration will be applied to a drifted database:**" in md
    assert "All SQL (" in md and "<summary>" in md
    assert_inert(md)
    # Stable: the same inputs give the same bytes.
    assert _report(inputs)[1] == md


def test_acknowledged_and_levels(inputs) -> None:
    plan = json.loads(inputs["plan"].read_text())
    dangerous = [s for s in plan["steps"] if s["safety"] == "dangerous"]
    acks = sorted({f"{f['rule']}@{s['table']}" for s in dangerous for f in s["findings"]})
    code_, md, err = _report(inputs, *[a for x in acks for a in ("--acknowledge", x)],
                             "--lint-level", "none")
    assert code_ == 0, err
    verdict = md.splitlines()[1]
    assert verdict.startswith("### Lockplane: 14 steps, the riskiest ⛔ dangerous"), verdict
    code_, md, _ = _report(inputs, "--safety", "strict")
    assert code_ == 3
    assert "steps refused at safety level strict**" in md.splitlines()[1]
    code_, md, _ = _report(inputs, "--safety", "permissive", "--lint-level", "dangerous")
    assert code_ == 3 and "1 lint finding at dangerous or worse" in md.splitlines()[1]


def test_hostile_names_rendered_inert(inputs) -> None:
    _, md, _ = _report(inputs)
    page = assert_inert(md)
    shown = "".join(page.all_text).replace("\u200b", "")
    # Shown, as text, not dropped: each hostile name is there to read.
    for name in (IMG_TABLE, LINK_TABLE, MENTION_COLUMN, "[x](https://evil.example)",
                 "<script>@team", "www.evil.example $x$ <!-- c -->"):
        assert name in shown, name
    assert visible(FENCE_TABLE) in shown
    assert "pwned" not in "".join(t for t in page.tags if t.startswith("h1"))
    assert "h1" not in page.tags and "img" not in page.tags and "a" not in page.tags
    # Code fences were not closed early: every SQL block is whole.
    assert render(md).count("<pre") == md.count("<summary>")
    # The marker appears once as a comment: a name holding it stays text.
    assert md.count(MARKER) == 1


def test_lint_and_drift_alone(inputs) -> None:
    r = lockplane("ci-report", "--lint", "lint.json", cwd=inputs["root"])
    assert r.code == 3, r.output  # the drop-column finding is dangerous
    assert r.stdout.splitlines()[1].startswith("### Lockplane: ⛔ **1 lint finding at "
                                               "dangerous or worse** (4 in all)")
    assert "### Changes" not in r.stdout
    assert_inert(r.stdout)
    r = lockplane("ci-report", "--drift", "drift.json", cwd=inputs["root"])
    assert r.code == 0, r.output
    assert r.stdout.splitlines()[1] == "### Lockplane: ⚠️ drift in prod"
    assert_inert(r.stdout)


def test_empty_plan_and_clean_inputs(tmp_path, pg_dsn) -> None:
    pg_exec(pg_dsn, "CREATE TABLE t (id integer);")
    (tmp_path / "s.sql").write_text("CREATE TABLE t (id integer);")
    r = lockplane("plan", "--from", pg_dsn, "--to", "s.sql", "-o", "plan.json", cwd=tmp_path)
    assert r.code == 0, r.output
    (tmp_path / "lint.json").write_text("[]")
    r = lockplane("ci-report", "--plan", "plan.json", "--lint", "lint.json", cwd=tmp_path)
    assert r.code == 0, r.output
    assert r.stdout.splitlines()[1] == "### Lockplane: ✅ no schema changes · lint clean"


def test_long_plan_fits_in_a_comment(tmp_path, pg_dsn) -> None:
    long_check = " OR ".join(f"v = {i}" for i in range(150))
    pg_exec(pg_dsn, "".join(
        f"CREATE TABLE t{i:03} (id bigint PRIMARY KEY, v integer CHECK ({long_check}));"
        for i in range(120)))
    (tmp_path / "empty.sql").write_text("")
    r = lockplane("plan", "--from", pg_dsn, "--to", "empty.sql", "-o", "plan.json",
                  cwd=tmp_path)
    assert r.code == 0, r.output
    r = lockplane("ci-report", "--plan", "plan.json", "--safety", "permissive",
                  cwd=tmp_path)
    assert r.code == 0, r.output
    assert len(r.stdout) <= MAX_CHARS
    assert "120 steps (120 dangerous)" in r.stdout
    assert "more steps that need a look" in r.stdout
    assert_inert(r.stdout)


def test_plan_edited_after_it_was_written(inputs, tmp_path) -> None:
    plan = json.loads(inputs["plan"].read_text())
    plan["steps"][0]["sql"].append("DROP TABLE users")
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    r = lockplane("ci-report", "--plan", "plan.json", "--safety", "permissive", cwd=tmp_path)
    assert r.code == 3, r.output
    assert r.stdout.splitlines()[1].startswith(
        "### Lockplane: ⛔ **plan file edited after it was written** · 14 steps")
    assert "stored plan_id does not match its content" in r.stdout


@pytest.mark.parametrize("args, content, message", [
    (["--plan", "missing.json"], None, "plan file not found: missing.json"),
    (["--plan", "bad.json"], "{not json", "bad.json:1:2: not valid JSON"),
    (["--plan", "bad.json"], "[]", "bad.json: not a plan (expected a JSON object"),
    (["--plan", "bad.json"], '{"format": "lockplane-drift/1", "environments": []}',
     "bad.json: invalid plan at source_hash: Field required"),
    (["--plan", "bad.json"], '{"multi_phase": true, "phases": []}',
     "bad.json: a multi-phase plan"),
    (["--plan", "bad.json"], '{"source_hash": "x", "steps": [{"description": 1}]}',
     "bad.json: invalid plan at steps.0.description"),
    (["--lint", "bad.json"], '{"source_hash": "x", "steps": []}',
     "bad.json: not lint results (expected the JSON array"),
    (["--lint", "bad.json"], '[{"file": "a.sql", "line": "3", "column": 1, "rule": "r", '
     '"safety": "safe", "message": "m", "safer": ""}]',
     "bad.json: invalid lint finding [0] at line"),
    (["--lint", "bad.json"], '[{"file": "a.sql", "line": 3, "column": 1, "rule": "r", '
     '"safety": "fatal", "message": "m"}]', "bad.json: invalid lint finding [0] at safety"),
    (["--drift", "bad.json"], '{"source_hash": "x", "steps": []}',
     "bad.json: not a drift report"),
    (["--drift", "bad.json"], '{"format": "lockplane-drift/9", "environments": []}',
     "bad.json: invalid drift report at format"),
    (["--drift", "bad.json"], '{"format": "lockplane-drift/1", "status": "drift", '
     '"environments": [{"name": "p", "status": "drift", "items": [{"object": 1}]}]}',
     "bad.json: invalid drift report at environments.0.items.0.object"),
    (["--drift", "bad.json"], b"\xff\xfe", "bad.json:1: not UTF-8 text"),
    ([], None, "ci-report: give at least one of --plan, --lint, --drift"),
    (["--lint", "ok.json", "--safety", "lax"], None, "--safety must be one of"),
    (["--lint", "ok.json", "--lint-level", "fatal"], None, "--lint-level must be one of"),
    (["--plan", "plan.json", "--acknowledge", "nonsense"], None,
     "--acknowledge 'nonsense': not a step number"),
])
def test_bad_input_exits_2(inputs, tmp_path, args, content, message) -> None:
    if content is not None:
        path = tmp_path / "bad.json"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    (tmp_path / "ok.json").write_text("[]")
    shutil.copy(inputs["plan"], tmp_path / "plan.json")
    r = lockplane("ci-report", *args, "-o", "out.md", cwd=tmp_path)
    assert r.code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert message in lines[0], lines[0]
    assert not (tmp_path / "out.md").exists()


# ------------------------------------------------- the escaping, on any text at all
_ANY = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60)
_MARKDOWNY = st.text(st.sampled_from(list("`*_[]()<>!#@|\\~:/.-+=&;$ \nwx1")), max_size=40)


@settings(max_examples=300, deadline=None)
@given(st.one_of(_ANY, _MARKDOWNY))
def test_text_renders_as_exactly_itself(value: str) -> None:
    shown = visible(value, None)
    for md in (f"- {text(value, None)}\n", f"| a | b |\n|---|---|\n| {text(value, None)} | x |\n"):
        page = Page(render(md))
        assert set(page.tags) <= {"ul", "li", "table", "thead", "tbody", "tr", "th", "td"}
        assert not page.attrs and not page.comments
        cells = [c.replace("\u200b", "") for c in page.cells]
        if page.rows:
            assert page.rows == [2, 2] and cells[:2] == ["a", "b"] and cells[3] == "x"
            cells = [cells[2]]
        assert cells == [shown]


@settings(max_examples=300, deadline=None)
@given(st.one_of(_ANY, _MARKDOWNY))
def test_code_renders_as_exactly_itself(value: str) -> None:
    shown = visible(value, None)
    page = Page(render(f"- {code(value, None)}\n"))
    if not shown:
        return
    assert page.tags == ["ul", "li", "code"], page.tags
    assert page.cells == [shown]


# ------------------------------------------------------------------------ the template
def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, (f"{name} not installed: pip install -e '.[test]' installs it "
                   "(scripts/setup.sh does)")
    return found


def test_workflow_template_passes_actionlint() -> None:
    actionlint = _tool("actionlint")
    shellcheck = _tool("shellcheck")
    env = {**os.environ,
           "PATH": f"{Path(shellcheck).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    r = subprocess.run([actionlint, "-verbose", str(TEMPLATE)], capture_output=True,
                       text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    # Its run: scripts were checked by shellcheck too, not skipped.
    assert 'Rule "shellcheck" was disabled' not in r.stderr, r.stderr


def test_workflow_template_keeps_secrets_out_of_the_log() -> None:
    body = TEMPLATE.read_text()
    assert "set -x" not in body
    for line in body.splitlines():
        if "secrets." in line and not line.lstrip().startswith("#"):
            # only ever handed to a step's environment, never interpolated into a script
            assert re.fullmatch(r"\s+LOCKPLANE_PROD_DATABASE_URL: \$\{\{ secrets\."
                                r"LOCKPLANE_PROD_DATABASE_URL \}\}", line), line
    assert "pull_request_target" not in body.replace("switch to pull_request_target", "")
    assert "LOCKPLANE_PLAN_KEY" in body  # says where signing belongs
    assert MARKER in body and 'github-actions[bot]' in body
    assert "lockplane ci-report" in body and "drift check" in body and "--format json" in body


def _step_script(name: str) -> str:
    import yaml

    steps = yaml.safe_load(TEMPLATE.read_text())["jobs"]["lockplane"]["steps"]
    return next(s["run"] for s in steps if s.get("name") == name)


def _run_step(name: str, cwd: Path, temp: Path, **env: str) -> tuple[int, dict[str, str]]:
    """One of the template's run: scripts, as the runner runs it (bash -eo pipefail),
    with the real lockplane on the PATH; its exit code and its step outputs."""
    outputs = temp / "github_output"
    outputs.write_text("")
    full = {**os.environ, "RUNNER_TEMP": str(temp), "GITHUB_OUTPUT": str(outputs),
            "LOCKPLANE_SAFETY": "moderate",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", **env}
    r = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c",
                        _step_script(name)], cwd=cwd, env=full, capture_output=True,
                       text=True, timeout=120)
    got = dict(line.split("=", 1) for line in outputs.read_text().splitlines() if line)
    return r.returncode, got


def test_workflow_scripts_write_the_comment_and_judge(inputs, tmp_path) -> None:
    temp = tmp_path / "temp"
    temp.mkdir()
    for f in ("plan", "lint", "drift"):
        shutil.copy(inputs[f], temp / f"{f}.json")
    (tmp_path / "pr").mkdir()
    code_, out = _run_step("Write the comment", tmp_path, temp, PLAN_EXIT="0", LINT_EXIT="3",
                           DRIFT_EXIT="4")
    assert code_ == 0 and out == {"exit": "3"}
    comment = (temp / "comment.md").read_text()
    assert comment.startswith(MARKER + "\n### Lockplane: ⛔ **6 dangerous steps need")
    assert comment.count(MARKER) == 1
    assert_inert(comment)
    # Acknowledged in the pull request, one per line (comments and blanks ignored).
    plan = json.loads(inputs["plan"].read_text())
    acks = sorted({f"{f['rule']}@{s['table']}" for s in plan["steps"]
                   if s["safety"] == "dangerous" for f in s["findings"]})
    (tmp_path / "pr" / ".lockplane").mkdir()
    (tmp_path / "pr" / ".lockplane" / "acknowledge").write_text(
        "# reviewed with the data team\n\n" + "\n".join(f"  {a} " for a in acks))
    (temp / "lint.json").write_text("[]")
    code_, out = _run_step("Write the comment", tmp_path, temp, PLAN_EXIT="0", LINT_EXIT="0",
                           DRIFT_EXIT="4")
    assert code_ == 0 and out == {"exit": "0"}, (temp / "comment.md").read_text()[:300]
    # The plan failed: the comment says so first, and still shows lint and drift.
    code_, out = _run_step("Write the comment", tmp_path, temp, PLAN_EXIT="2", LINT_EXIT="0",
                           DRIFT_EXIT="4")
    comment = (temp / "comment.md").read_text()
    assert comment.splitlines()[:2] == [
        MARKER, "### Lockplane: ⛔ **lockplane plan failed (exit 2)**: see the job log"]
    assert "### Changes" not in comment and "### Drift" in comment
    assert_inert(comment)

    def verdict(**exits: str) -> int:
        return _run_step("Verdict", tmp_path, temp, **exits)[0]

    ok = {"PLAN_EXIT": "0", "LINT_EXIT": "0", "DRIFT_EXIT": "0", "REPORT_EXIT": "0"}
    assert verdict(**ok) == 0
    assert verdict(**{**ok, "DRIFT_EXIT": "4"}) == 0  # drift is a warning
    assert verdict(**{**ok, "LINT_EXIT": "3"}) == 0  # findings: judged by ci-report
    assert verdict(**{**ok, "REPORT_EXIT": "3"}) == 1  # steps need acknowledgement
    assert verdict(**{**ok, "PLAN_EXIT": "2"}) == 1
    assert verdict(**{**ok, "LINT_EXIT": "2"}) == 1
    assert verdict(**{**ok, "DRIFT_EXIT": "1"}) == 1


def test_workflow_lint_step_takes_only_changed_migrations(tmp_path) -> None:
    repo = tmp_path / "pr"
    (repo / "migrations").mkdir(parents=True)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    (repo / "migrations" / "0001_old.sql").write_text("ALTER TABLE a DROP COLUMN b;\n")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "-C", str(repo), "add", "."], check=True)
    subprocess.run([*git, "-C", str(repo), "commit", "-qm", "base"], check=True)
    base = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()
    (repo / "migrations" / "0002 new -x.sql").write_text(
        "CREATE INDEX i ON t (a);\n")
    (repo / "migrations" / "notes.md").write_text("not SQL")
    subprocess.run([*git, "-C", str(repo), "add", "."], check=True)
    subprocess.run([*git, "-C", str(repo), "commit", "-qm", "pr"], check=True)
    temp = tmp_path / "temp"
    temp.mkdir()
    code_, out = _run_step("Lint the changed migrations", repo, temp, BASE_SHA=base,
                           MIGRATIONS_DIR="migrations/")
    assert code_ == 0 and out == {"exit": "0"}  # review findings: below --level dangerous
    findings = json.loads((temp / "lint.json").read_text())
    assert {f["file"] for f in findings} == {"migrations/0002 new -x.sql"}
    # Nothing changed: an empty list, not an error.
    code_, out = _run_step("Lint the changed migrations", repo, temp, BASE_SHA="HEAD",
                           MIGRATIONS_DIR="migrations/")
    assert code_ == 0 and out == {"exit": "0"}
    assert json.loads((temp / "lint.json").read_text()) == []
