"""The JSON Schema files shipped in the package (lockplane/schemas/*.json).

They are generated from the pydantic models, so they cannot drift from the code; a test
checks the shipped files are current. Regenerate with ``python -m lockplane.jsonschema``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .model import Schema
from .plan import Plan

SCHEMAS_DIR = Path(__file__).parent / "schemas"


def generated() -> dict[str, dict[str, Any]]:
    schema = Schema.model_json_schema(by_alias=True)
    schema["$id"] = "https://lockplane.dev/schemas/schema.json"
    schema["title"] = "Lockplane schema"
    plan = Plan.model_json_schema(by_alias=True)
    plan["$id"] = "https://lockplane.dev/schemas/plan.json"
    plan["title"] = "Lockplane plan"
    return {"schema.json": schema, "plan.json": plan}


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def write() -> None:
    SCHEMAS_DIR.mkdir(exist_ok=True)
    for name, doc in generated().items():
        (SCHEMAS_DIR / name).write_text(render(doc))


if __name__ == "__main__":
    write()
