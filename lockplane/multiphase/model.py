"""Multi-phase plan format (after the seed design, ``001_…``).

A multi-phase plan is a series of ordinary plans with coordination metadata: which code
deploy must happen between phases, runnable verification queries, and a rollback per
phase. Each phase's plan carries the exact ``source_hash`` of the state the previous
phases leave (computed by running the phases on a scratch database, never guessed).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import BadInput
from ..plan import (
    PLAN_ID_DESCRIPTION,
    SIGNATURE_DESCRIPTION,
    SIGNATURE_PATTERN,
    SIGNED_FOR_DESCRIPTION,
    OneLine,
    Plan,
)


class MPModel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# Names, descriptions, code changes, notes and warnings are prose the plan_id does not
# cover (a signed plan's can be edited): each is one line (plan.OneLine), as a step's.


class Verification(MPModel):
    """A query that passes when it returns no rows (an assertion, as in dbt tests)."""

    description: OneLine
    sql: str
    expect: Literal["no_rows"] = "no_rows"


class PhaseRollback(MPModel):
    description: OneLine
    sql: list[str] = Field(default_factory=list)
    note: OneLine | None = None
    warning: OneLine | None = None
    requires_code_deploy: bool = False
    # The same undo as a plan with exact hashes (phase target -> phase source).
    plan: Plan | None = None


class Phase(MPModel):
    phase_number: int
    name: OneLine
    description: OneLine
    requires_code_deploy: bool = False
    depends_on_phase: int | None = None
    code_changes_required: list[OneLine] = Field(default_factory=list)
    plan: Plan
    verification: list[Verification] = Field(default_factory=list)
    rollback: PhaseRollback


class MultiPhasePlan(MPModel):
    schema_url: str | None = Field(None, alias="$schema")
    multi_phase: Literal[True] = True
    operation: str  # rename_column, rename_table, change_type, drop_column, ...
    description: OneLine
    pattern: str  # expand_contract, dual_write, deprecation, validation
    dialect: str
    table: str  # "schema.table" the migration is about (one active migration per table)
    # What the breaking change is, for exports (pgroll): the column, its new name or type,
    # the type it had, and the default a new NOT NULL fills existing rows with.
    column: str | None = None
    new_name: str | None = None
    old_type: str | None = None
    new_type: str | None = None
    default: str | None = None
    total_phases: int
    phases: list[Phase]
    safety_notes: list[OneLine] = Field(default_factory=list)
    source_hash: str
    target_hash: str
    # lockplane.integrity.multiphase_plan_id: covers every phase's plan, rollback and
    # verification; checked before any phase command or flow acts on the plan.
    plan_id: str | None = Field(None, description=PLAN_ID_DESCRIPTION)
    # With LOCKPLANE_PLAN_KEY: "hmac-sha256:KEYID:HEX", the HMAC of the plan_id.
    signature: str | None = Field(None, pattern=SIGNATURE_PATTERN,
                                  description=SIGNATURE_DESCRIPTION)
    signed_for: list[str] | None = Field(None, description=SIGNED_FOR_DESCRIPTION)

    @property
    def id(self) -> str:
        """Stable identity of this plan's content."""
        body = json.dumps([self.operation, self.table, self.source_hash, self.target_hash,
                           [[s.sql for s in p.plan.steps] for p in self.phases]],
                          sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()[:16]

    def phase(self, number: int) -> Phase:
        for p in self.phases:
            if p.phase_number == number:
                return p
        raise BadInput(f"this plan has no phase {number} (phases 1..{self.total_phases})")

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json", by_alias=True, exclude_none=True),
                          indent=2, ensure_ascii=False)


def load_multiphase_plan(path: str) -> MultiPhasePlan:
    from ..inputs import read_text

    return parse_multiphase_plan(read_text(path, "multi-phase plan"), path)


def parse_multiphase_plan(text: str, where: str = "plan") -> MultiPhasePlan:
    """A multi-phase plan from its JSON text; ``where`` names it in errors."""
    from ..inputs import parse_json

    data: Any = parse_json(text, where)
    if not (isinstance(data, dict) and data.get("multi_phase")):
        raise BadInput(f"{where} is not a multi-phase plan (no \"multi_phase\": true)")
    try:
        return MultiPhasePlan.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        raise BadInput(f"{where}: invalid multi-phase plan at {loc}: {err['msg']}") from None


def read_multiphase_plan(plan: str) -> MultiPhasePlan:
    """A multi-phase plan given as a file path or as the JSON text itself."""
    if plan.lstrip().startswith("{"):
        return parse_multiphase_plan(plan, "the plan JSON")
    return load_multiphase_plan(plan)
