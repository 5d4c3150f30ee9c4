"""A hand-written JSON schema for MySQL is canonicalized like the other dialects': built
in a scratch database on the server and read back, so its spellings are the server's."""

from __future__ import annotations

import json
from pathlib import Path

from lockplane.dialects import connect
from lockplane.sources import SourceContext, load_schema
from tests.test_mysql_sandbox import run


def test_json_schema_is_read_back_from_the_server(mysql_dsn: str, tmp_path: Path) -> None:
    run(mysql_dsn, "CREATE TABLE `t``1` (id int PRIMARY KEY, v varchar(20) DEFAULT 'x')")
    with connect(mysql_dsn) as db:
        live = db.introspect()
    data = live.model_dump(mode="json", by_alias=True, exclude_none=True)
    for column in data["tables"][0]["columns"]:
        if column["name"] == "id":
            column["type"] = "INTEGER"  # as a person writes it; MariaDB says int(11)
    hand = tmp_path / "schema.json"
    hand.write_text(json.dumps(data))
    loaded = load_schema(str(hand), SourceContext(dialect="mysql", server_dsn=mysql_dsn))
    assert loaded.hash() == live.hash()
    assert [c.type for c in loaded.tables[0].columns][0] == "int(11)"


def test_dialect_option_names_the_registered_dialects(tmp_path: Path) -> None:
    from tests.cli_inprocess import lockplane

    schema = tmp_path / "schema.sql"
    schema.write_text("CREATE TABLE t (id int);\n")
    res = lockplane("plan", "--from", str(schema), "--to", str(schema), "--dialect", "oracle")
    assert res.code == 2, res.output
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--dialect: unknown dialect 'oracle' (known: postgres, " \
        "sqlite, mysql)" in lines[0], res.output
    import typer.main

    from lockplane import cli

    plan = typer.main.get_command(cli.app).commands["plan"]  # type: ignore[attr-defined]
    (option,) = [p for p in plan.params if "--dialect" in p.opts]
    assert option.help == "postgres | sqlite | mysql, when no source says"
