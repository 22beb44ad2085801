"""Request field types for what a task is created or run with: a step reference (number or name) and
the relative path of a provisioned table-list file."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictInt, StringConstraints, WithJsonSchema

from shared.steps import LEGACY_STEP_NAMES, STEP_ORDER

# Every spelling of a step the server reads (shared.steps.parse_step; case and spaces aside).
STEP_SPELLINGS = [
    spelling
    for number, step in enumerate(STEP_ORDER, start=1)
    for spelling in (step.value, *(old for old, new in LEGACY_STEP_NAMES.items() if new is step), str(number))
]

StepRef = Annotated[
    Annotated[StrictInt, Field(ge=1, le=len(STEP_ORDER))] | Annotated[str, StringConstraints(max_length=50)],
    WithJsonSchema(
        {
            "oneOf": [
                {"type": "integer", "minimum": 1, "maximum": len(STEP_ORDER)},
                {"type": "string", "enum": STEP_SPELLINGS},
            ],
            "description": "A step: its number (1-4) or its name (the earlier implementation's names too).",
        }
    ),
]

# A relative path of plain file names: no leading `/` or dot, no `..`, no empty or hidden segment
# (the server also resolves links and checks the result lies inside DP_TABLE_LISTS_DIR). Lookaheads
# rather than a repeated group, so schemathesis can generate from it.
RELATIVE_PATH_PATTERN = r"^(?!.*\n)(?!.*\.\.)(?!.*//)(?!.*/\.)(?!.*/$)\w[\w.\- ()+/]*$"

TableListPath = Annotated[
    str,
    StringConstraints(min_length=1, max_length=1000),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 1000, "pattern": RELATIVE_PATH_PATTERN}),
]
