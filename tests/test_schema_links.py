"""A schema file reached through a symbolic link out of its directory is refused, and no
word of the file it leads to is shown: a link in a pull request (schema/x.sql ->
~/.pgpass) made a syntax error quote the secret's first word."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_inprocess import lockplane

SECRET = "TOPSECRETWORD"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "secret").write_text(f"{SECRET} hunter2\n")
    work = tmp_path / "repo"
    (work / "schema").mkdir(parents=True)
    (work / "schema" / "a.sql").write_text("CREATE TABLE a (id int PRIMARY KEY);\n")
    return work


def _refused(r: object, needle: str) -> None:
    assert r.code == 2, r  # type: ignore[attr-defined]
    assert SECRET not in r.output and "Traceback" not in r.output, r  # type: ignore[attr-defined]
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]  # type: ignore[attr-defined]
    assert len(lines) == 1 and "symbolic link" in lines[0] and needle in lines[0], r


@pytest.mark.parametrize("where", ["in the directory", "in a subdirectory", "named"])
def test_a_link_out_of_the_schema_directory_is_refused(repo: Path, pg_dsn: str,
                                                       where: str) -> None:
    secret = repo.parent / "home" / "secret"
    if where == "named":
        (repo / "schema.sql").symlink_to(secret)
        src, needle = "schema.sql", "schema.sql"
    else:
        sub = repo / "schema" / ("nested" if where == "in a subdirectory" else "")
        sub.mkdir(exist_ok=True)
        (sub / "z.sql").symlink_to(secret)
        src, needle = "schema", "z.sql"
    for args in (("validate", src), ("plan", "--from", pg_dsn, "--to", src),
                 ("convert", "-i", src), ("plan", "--from", "sqlite:///x.db", "--to", src),
                 ("lint", src)):
        if args[0] == "lint" and where == "in a subdirectory":
            continue  # (lint reads a directory's own files, not its subdirectories')
        _refused(lockplane(*args, cwd=repo), needle)


def test_a_link_inside_the_schema_directory_still_loads(repo: Path) -> None:
    (repo / "schema" / "shared").mkdir()
    (repo / "schema" / "shared" / "b.txt").write_text("CREATE TABLE b (id int);\n")
    (repo / "schema" / "b.sql").symlink_to(Path("shared") / "b.txt")
    r = lockplane("validate", "schema", cwd=repo)
    assert r.code == 0 and "2 table(s)" in r.stderr, r
