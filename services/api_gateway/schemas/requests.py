"""Request bodies and query strings. Bodies are strict (a boolean is a JSON boolean, a step number a
JSON integer); query strings are lax because every value arrives as text."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    WithJsonSchema,
    field_validator,
)

from services.api_gateway.schemas.incremental import INCREMENTAL_FROM_DESCRIPTION, BaseTask
from services.api_gateway.schemas.intake import StepRef, TableListPath
from services.api_gateway.schemas.names import (
    NOT_BLANK_PATTERN,
    SCHEMA_LIST_PATTERN,
    TABLE_NAME_PATTERN,
    TABLE_NAMES_TEXT_PATTERN,
    DbName,
    TableName,
    TaskId,
)
from services.api_gateway.schemas.rules import at_most_one_of
from shared.steps import LEGACY_STEP_NAMES, STEP_ORDER
from shared.training_store import KINDS

# PostgreSQL's bigint (log ids, event sequence numbers).
BIGINT_MAX = 2**63 - 1


def _integral_float(value: object) -> object:
    """JSON has one number type: 22.0 is the integer 22 (as JSON Schema's `integer` says)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    @field_validator("*", mode="before")
    @classmethod
    def _json_integers(cls, value: object) -> object:
        # Strict, so "22" and true are no integers; but 22.0 is one, as JSON Schema's `integer` says.
        return _integral_float(value)


def _step_names(number: int) -> list[str]:
    """Every spelling of step `number` the server reads (parse_step; case and spaces aside)."""
    step = STEP_ORDER[number - 1]
    return [step.value, *(old for old, new in LEGACY_STEP_NAMES.items() if new is step), str(number)]


STEP_SPELLINGS = [name for n in range(1, len(STEP_ORDER) + 1) for name in _step_names(n)]
_NULL = {"type": "null"}

# The rules between fields that handlers enforce, stated in the document (JSON Schema conditionals).
_CREATE_RULES: dict[str, Any] = {
    "allOf": [
        {  # single mode names its step; complete mode (the default) must not
            "if": {"required": ["execution_mode"], "properties": {"execution_mode": {"const": "single"}}},
            "then": {"required": ["single_step"], "properties": {"single_step": {"type": "integer"}}},
            "else": {"properties": {"single_step": _NULL}},
        },
        {  # a range is complete mode's; single mode is the range from = to already
            "if": {"required": ["execution_mode"], "properties": {"execution_mode": {"const": "single"}}},
            "then": {"properties": {"from_step": _NULL, "to_step": _NULL}},
        },
        {  # a table list by file or by names, exactly one of them
            "oneOf": [
                {
                    "required": ["table_list_file"],
                    "properties": {"table_list_file": {"type": "string"}, "table_list": _NULL},
                },
                {
                    "required": ["table_list"],
                    "properties": {"table_list": {"type": "array"}, "table_list_file": _NULL},
                },
            ]
        },
    ]
}
_BOTH_STEPS_GIVEN = {
    "required": ["single_step", "step_name"],
    "properties": {"single_step": {"type": "integer"}, "step_name": {"type": "string"}},
}
_EXECUTE_RULES: dict[str, Any] = {
    "allOf": [
        {  # complete mode runs every step: naming one is refused
            "if": {"required": ["execution_mode"], "properties": {"execution_mode": {"const": "complete"}}},
            "then": {"properties": {"single_step": _NULL, "step_name": _NULL}},
        },
        {  # single (or step) mode needs a step, by number or by name
            "if": {
                "required": ["execution_mode"],
                "properties": {"execution_mode": {"enum": ["single", "step"]}},
            },
            "then": {
                "anyOf": [
                    {"required": ["single_step"], "properties": {"single_step": {"type": "integer"}}},
                    {"required": ["step_name"], "properties": {"step_name": {"type": "string"}}},
                ]
            },
        },
        {  # a range (from_step/to_step) is complete mode's, and names no single step
            "if": {
                "anyOf": [
                    {"required": [end], "properties": {end: {"not": _NULL}}}
                    for end in ("from_step", "to_step")
                ]
            },
            "then": {
                "properties": {
                    "execution_mode": {"not": {"enum": ["single", "step"]}},
                    "single_step": _NULL,
                    "step_name": _NULL,
                }
            },
        },
        {  # given both, they name the same step
            "if": _BOTH_STEPS_GIVEN,
            "then": {
                "anyOf": [
                    {"properties": {"single_step": {"const": n}, "step_name": {"enum": _step_names(n)}}}
                    for n in range(1, len(STEP_ORDER) + 1)
                ]
            },
        },
    ]
}


class CreateTaskParameters(_Body):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=_CREATE_RULES)

    db_connection: str = Field(
        min_length=1,
        max_length=2000,
        json_schema_extra={"pattern": NOT_BLANK_PATTERN},  # blank reads as missing (400)
        description="A PostgreSQL URL (postgresql://user:password@host:port/db) or the name of a "
        "connection configured on the server. The password is encrypted at rest and always masked.",
    )
    table_list_file: TableListPath | None = Field(
        default=None,
        description="A table-list file under the server's DP_TABLE_LISTS_DIR: a bare name or a relative "
        "path inside it (no absolute path, no `..`); it is copied into the task directory at creation "
        "(400 when the server has no such directory or file). To send the file itself, create the task "
        "as multipart/form-data. Required unless table_list is given.",
    )
    table_list: list[TableName] | None = Field(
        default=None,
        min_length=1,
        max_length=5000,
        description="Table names; required unless table_list_file.",
    )
    business_context: str = Field(
        min_length=1, max_length=20_000, json_schema_extra={"pattern": NOT_BLANK_PATTERN}
    )
    task_name: str | None = Field(default=None, max_length=200)
    db_name: DbName | None = Field(default=None, description="Defaults to the database of db_connection.")
    execution_mode: Literal["complete", "single"] = "complete"
    single_step: StrictInt | None = Field(
        default=None, ge=1, le=4, description="1-4; required in single mode, forbidden in complete mode."
    )
    from_step: StepRef | None = Field(
        default=None,
        description="Complete mode: run steps from this one (default 1) to to_step; from_step <= to_step. "
        "A range whose first step lacks its inputs is a 409 (a new task has only its table list).",
    )
    to_step: StepRef | None = Field(
        default=None, description="Complete mode: the last step to run (default 4)."
    )
    enable_sql_validation: StrictBool = True
    enable_llm_repair: StrictBool = True
    modify_original_file: StrictBool = True
    enable_training_data_load: StrictBool = True
    review_before_load: StrictBool = Field(
        default=False,
        description="After sql_validation the task waits as awaiting_review until a person approves the "
        "pairs step 4 loads (GET/PATCH /tasks/{task_id}/pairs, POST /tasks/{task_id}/review/complete).",
    )
    theme_count: StrictInt | None = Field(default=None, ge=1, le=50)
    questions_per_theme: StrictInt | None = Field(default=None, ge=1, le=100)
    llm_repair_rounds: StrictInt | None = Field(default=None, ge=0, le=10)
    max_llm_tokens: StrictInt | None = Field(
        default=None,
        ge=1,
        description="LLM token budget of a run (prompt + completion tokens of every LLM and embedding call, "
        "all steps); the step that crosses it fails, not retried, with code llm_budget_exceeded.",
    )
    output_dir: str | None = Field(
        default=None, description="Accepted for compatibility with the seed and ignored: the server decides."
    )
    incremental_from: BaseTask | None = Field(default=None, description=INCREMENTAL_FROM_DESCRIPTION)


class CreateTaskRequest(_Body):
    task_type: Literal["complete_workflow"] = "complete_workflow"
    parameters: CreateTaskParameters


class CreateTaskFormParameters(CreateTaskParameters):
    """The `parameters` part of a multipart create: a JSON create's parameters without a table list.

    The mode and range rules between its fields (single mode names its step, a range is complete
    mode's) hold as for a JSON create, but are stated in words only: schemathesis cannot generate a
    form whose JSON part carries JSON Schema conditionals beside a binary part (its coverage phase
    fails with "Unsupported type: 'Binary'").
    """

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=None)

    table_list_file: None = Field(default=None, description="Sent as the form's file part.")
    table_list: None = Field(default=None, description="The form's file part is the table list.")


class CreateTaskForm(BaseModel):
    """POST /tasks as multipart/form-data (the document's description; the handler reads the parts)."""

    task_type: Literal["complete_workflow"] = "complete_workflow"
    parameters: CreateTaskFormParameters = Field(
        description="A JSON object, as a JSON create's parameters (single mode needs single_step and takes no "
        "from_step/to_step; complete mode takes no single_step)."
    )
    table_list_file: bytes = Field(
        description="The table list: a `.txt` file in UTF-8, table names one per line or comma-separated "
        "(blank lines and `#` comments skipped), with a plain file name; at most DP_MAX_UPLOAD_BYTES. "
        "It is written into the task directory under that name before the task is scheduled."
    )


class ExecuteTaskRequest(_Body):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=_EXECUTE_RULES)

    execution_mode: Literal["complete", "single", "step"] | None = Field(
        default=None, description="`step` is a synonym of `single`; default: single if a step is named."
    )
    single_step: StrictInt | None = Field(default=None, ge=1, le=4)
    # The server reads these case-insensitively, with surrounding spaces; the document lists them as written.
    step_name: Annotated[str, Field(max_length=50), WithJsonSchema({"enum": STEP_SPELLINGS})] | None = Field(
        default=None,
        description="A step's name (or the earlier implementation's name, or its number as text).",
    )
    from_step: StepRef | None = Field(
        default=None,
        description="Run the steps from this one (default 1) to to_step (complete mode); from_step <= to_step.",
    )
    to_step: StepRef | None = Field(default=None, description="The last step of the range (default 4).")
    force: StrictBool = False
    # The earlier implementation's execute options (docs/api_gateway.md, "Earlier clients").
    force_execution: StrictBool = Field(default=False, description="The earlier name of `force`.")
    clean_existing_files: StrictBool = Field(
        default=False,
        description="Remove the files the run's steps produced before (never the table list or the log).",
    )
    backup_vector_tables: StrictBool | None = Field(
        default=None,
        description="Step 4 of this run first copies the training rows of the task's database to a file"
        " in the task directory (registered as an output). Default: as the task was created, on its"
        " first run; else off.",
    )
    truncate_vector_tables: StrictBool | None = Field(
        default=None,
        description="Step 4 of this run removes the training rows of the task's database before loading"
        " (operator role or above, as execute itself). Default: as for backup_vector_tables.",
    )


class CancelTaskRequest(_Body):
    reason: str | None = Field(default=None, max_length=500)


class DeleteTasksRequest(_Body):
    task_ids: list[TaskId] = Field(min_length=1, max_length=100)
    confirm: StrictBool = Field(description="Must be true.", json_schema_extra={"const": True})
    delete_database_records: StrictBool | None = Field(
        default=None,
        description="false: remove only the task directories and keep the records (the earlier "
        "implementation's default; send it explicitly). Absent or true: remove records and files.",
    )
    continue_on_error: StrictBool = Field(
        default=True, description="With delete_database_records false: go on after a task that fails."
    )


# An empty list is refused (missing `tables`); the server checks each name after the request is read.
_TABLE_NAMES_ARRAY = {
    "type": "array",
    "minItems": 1,
    "maxItems": 5000,
    "items": {"type": "string", "pattern": TABLE_NAME_PATTERN, "maxLength": 127},
}


class TableListRequest(_Body):
    tables: (
        Annotated[list[TableName], WithJsonSchema(_TABLE_NAMES_ARRAY)]
        | Annotated[str, WithJsonSchema({"type": "string", "pattern": TABLE_NAMES_TEXT_PATTERN})]
    ) = Field(
        description="Table names, as an array or as one string separated by commas or new lines "
        "(the server also skips blank entries and `#` comments in the string)."
    )


class DatabaseTablesRequest(_Body):
    db_connection: str = Field(min_length=1, max_length=2000)
    schema_name: str | None = Field(
        default=None,
        alias="schema",
        max_length=2000,
        description="A schema, or several comma-separated (the earlier implementation's form). Default: public.",
        json_schema_extra={"pattern": SCHEMA_LIST_PATTERN},
    )
    pattern: str | None = Field(
        default=None, max_length=200, description="Name filter; `*` and `?` are wildcards, else substring."
    )
    table_name_pattern: str | None = Field(
        default=None,
        max_length=200,
        description="The earlier implementation's name for `pattern` (`%` also matches any text); "
        "not together with pattern.",
    )

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        populate_by_name=True,
        json_schema_extra=at_most_one_of("pattern", "table_name_pattern"),
    )


class TrainingSearchRequest(_Body):
    question: str = Field(min_length=1, max_length=4000)
    limit: StrictInt = Field(default=5, ge=1, le=50)
    kinds: list[Annotated[str, WithJsonSchema({"enum": list(KINDS)})]] | None = Field(
        default=None, max_length=10
    )
