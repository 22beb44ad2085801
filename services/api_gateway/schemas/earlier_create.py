"""The shapes of the earlier implementation's clients (issue #14) that the seed's contract lacks.

A create without `parameters` is the earlier implementation's flat create: every field optional, the
task waits for POST /execute. The POST /tasks body is documented as oneOf the seed's create and this one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ConfigDict, Field, RootModel, StrictBool

from services.api_gateway.schemas.names import DbName
from services.api_gateway.schemas.requests import CreateTaskRequest, _Body
from services.api_gateway.schemas.responses import TaskCreated, _Out


class FlatCreateTaskRequest(_Body):
    """The earlier implementation's create: the fields of `parameters` at the top level, all optional."""

    model_config = ConfigDict(extra="forbid", strict=True, title="FlatCreateTaskRequest")

    task_name: str | None = Field(default=None, max_length=200)
    db_name: DbName | None = Field(default=None, description="Defaults to the database of the connection.")
    business_context: str | None = Field(default=None, max_length=20_000)
    db_connection: str | None = Field(
        default=None,
        max_length=2000,
        description="A PostgreSQL URL or a configured connection's name; absent or blank: "
        "DP_DEFAULT_CONNECTION (400 when the server has none).",
    )
    table_list_file: str | None = Field(
        default=None,
        max_length=1000,
        description="A file under DP_TABLE_LISTS_DIR; when it does not resolve there, the task waits in "
        "file upload mode for POST /tasks/{id}/upload-table-list (or /table-list).",
    )
    enable_sql_validation: StrictBool = True
    enable_llm_repair: StrictBool = True
    modify_original_file: StrictBool = True
    enable_training_data_load: StrictBool = True
    backup_vector_tables: StrictBool = Field(
        default=False, description="The first run copies this database's training rows to a file first."
    )
    truncate_vector_tables: StrictBool = Field(
        default=False, description="The first run removes this database's training rows before loading."
    )


def _one_of(schema: dict[str, Any]) -> None:
    # The two shapes exclude each other (`parameters` is required by one, forbidden by the other).
    if "anyOf" in schema:
        schema["oneOf"] = schema.pop("anyOf")


class CreateTaskBody(RootModel[CreateTaskRequest | FlatCreateTaskRequest]):
    """POST /tasks: the seed's create `{task_type, parameters}` (scheduled now) or the earlier flat
    create (waits for execute)."""

    model_config = ConfigDict(json_schema_extra=_one_of)


class EarlierTaskCreated(TaskCreated):
    """The flat create's answer: the seed's fields, the task's name, and how it waits."""

    task_name: str | None = None
    waiting_for_execute: bool = Field(description="True: the task starts on POST /tasks/{id}/execute.")
    file_upload_mode: bool = Field(description="True: the task has no table list yet; upload one first.")
    next_step: str | None = Field(default=None, description="In file upload mode: the upload route.")


class TaskCreatedAny(RootModel[TaskCreated | EarlierTaskCreated]):
    """POST /tasks answers: the seed's create, or the flat create's (with waiting_for_execute)."""


class TableListInfo(_Out):
    task_id: str
    has_file: bool = Field(
        description="Whether the task has a table list (a file, or names given at create)."
    )
    file_name: str | None
    file_size: int | None = Field(description="Bytes of the file in the task directory.")
    file_size_formatted: str | None
    uploaded_at: datetime | None = Field(description="When the file was last written.")
    table_count: int
    tables: list[str]
    source: str = Field(description="file (in the task directory), parameters (table_list) or none.")
