"""Request bodies and query strings. Bodies are strict (a boolean is a JSON boolean, a step number a
JSON integer); query strings are lax because every value arrives as text."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

from services.api_gateway.schemas.names import BareFileName, DbName, SchemaName, TableName
from shared.vocabulary import TASK_STATUSES, LogLevel

# PostgreSQL's bigint (log ids, event sequence numbers).
BIGINT_MAX = 2**63 - 1


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class CreateTaskParameters(_Body):
    db_connection: str = Field(
        min_length=1,
        max_length=2000,
        description="A PostgreSQL URL (postgresql://user:password@host:port/db) or the name of a "
        "connection configured on the server. The password is encrypted at rest and always masked.",
    )
    table_list_file: BareFileName | None = Field(
        default=None,
        description="Name of the table-list file in the task directory (see /table-list, "
        "/upload-table-list). Required unless table_list is given.",
    )
    table_list: list[TableName] | None = Field(
        default=None,
        min_length=1,
        max_length=5000,
        description="Table names; required unless table_list_file.",
    )
    business_context: str = Field(min_length=1, max_length=20_000)
    task_name: str | None = Field(default=None, max_length=200)
    db_name: DbName | None = Field(default=None, description="Defaults to the database of db_connection.")
    execution_mode: Literal["complete", "single"] = "complete"
    single_step: StrictInt | None = Field(
        default=None, ge=1, le=4, description="1-4; required in single mode, forbidden in complete mode."
    )
    enable_sql_validation: StrictBool = True
    enable_llm_repair: StrictBool = True
    modify_original_file: StrictBool = True
    enable_training_data_load: StrictBool = True
    theme_count: StrictInt | None = Field(default=None, ge=1, le=50)
    questions_per_theme: StrictInt | None = Field(default=None, ge=1, le=100)
    llm_repair_rounds: StrictInt | None = Field(default=None, ge=0, le=10)
    output_dir: str | None = Field(
        default=None, description="Accepted for compatibility with the seed and ignored: the server decides."
    )


class CreateTaskRequest(_Body):
    task_type: Literal["complete_workflow"] = "complete_workflow"
    parameters: CreateTaskParameters


class ExecuteTaskRequest(_Body):
    execution_mode: Literal["complete", "single", "step"] | None = Field(
        default=None, description="`step` is a synonym of `single`; default: single if a step is named."
    )
    single_step: StrictInt | None = Field(default=None, ge=1, le=4)
    step_name: str | None = Field(
        default=None,
        max_length=50,
        description="ddl_generation, qa_generation, sql_validation, training_load",
    )
    force: StrictBool = False


class CancelTaskRequest(_Body):
    reason: str | None = Field(default=None, max_length=500)


class DeleteTasksRequest(_Body):
    task_ids: list[str] = Field(min_length=1, max_length=100)
    confirm: StrictBool = Field(description="Must be true.")


class TableListRequest(_Body):
    tables: list[TableName] | str = Field(
        description="Table names, as an array or as one string separated by commas or new lines."
    )


class DatabaseTablesRequest(_Body):
    db_connection: str = Field(min_length=1, max_length=2000)
    schema_name: SchemaName | None = Field(default=None, alias="schema", description="Default: public.")
    pattern: str | None = Field(
        default=None, max_length=200, description="Name filter; `*` and `?` are wildcards, else substring."
    )

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)


class TrainingSearchRequest(_Body):
    question: str = Field(min_length=1, max_length=4000)
    limit: StrictInt = Field(default=5, ge=1, le=50)
    kinds: list[str] | None = Field(default=None, max_length=10)


class _Query(BaseModel):
    model_config = ConfigDict(extra="ignore")


def _as_utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class TaskListQuery(_Query):
    limit: int = Field(default=50, ge=1, le=100, description="Page size (default 50, as the seed).")
    status: str | None = Field(default=None, description="One status or several, comma-separated.")
    created_by: str | None = Field(default=None, max_length=50)
    db_name: str | None = Field(default=None, max_length=100)
    search: str | None = Field(
        default=None, max_length=200, description="Text in task name or business context."
    )
    cursor: str | None = Field(default=None, max_length=500, description="next_cursor of the previous page.")

    @field_validator("status")
    @classmethod
    def _statuses_known(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        known = set(TASK_STATUSES)
        parts = [p.strip() for p in value.split(",")]
        if not parts or any(p not in known for p in parts):
            raise ValueError(f"must be one or more of {sorted(known)}, comma-separated")
        return ",".join(parts)


class LogQuery(_Query):
    level: LogLevel | None = Field(default=None, description="Minimum level.")
    step: str | None = Field(default=None, max_length=50, description="Step name or number.")
    q: str | None = Field(
        default=None, max_length=500, description="Text the message contains (case-insensitive)."
    )
    since: datetime | None = None
    until: datetime | None = None
    limit: int = Field(default=100, ge=1, le=1000)
    cursor: str | None = Field(default=None, max_length=500)
    after: int | None = Field(
        default=None, ge=0, le=BIGINT_MAX, description="Only lines with a larger log id."
    )
    order: Literal["asc", "desc"] = "asc"
    follow: bool = Field(
        default=False, description="Stream as server-sent events (also: Accept: text/event-stream)."
    )

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("since", "until")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return _as_utc(value)


class EventQuery(_Query):
    limit: int = Field(default=100, ge=1, le=1000)
    after: int | None = Field(
        default=None, ge=0, le=BIGINT_MAX, description="Only events with a larger sequence number."
    )
    cursor: str | None = Field(default=None, max_length=500)
    type: str | None = Field(default=None, max_length=500, description="Event types, comma-separated.")
