"""Bodies and answers of the earlier (Flask) implementation's routes that the seed lacks (issue #14,
items 4, 5, 8): POST /tasks/query, POST /tasks/{id}/logs/query, POST /tasks/{id}/files, and the database
tools at /api/v0/database/...

Their field names are the earlier ones, so a client migrates by changing the URL (docs/migrating.md).
Times without an offset are read as UTC, since the earlier clients send naive datetimes.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StrictInt, WithJsonSchema, field_validator

from services.api_gateway.schemas.names import (
    LEVEL_PATTERN,
    PY_SPACE,
    SCHEMA_LIST_PATTERN,
    TABLE_NAME_PATTERN,
    AnyCaseLevel,
    any_case_pattern,
    matching,
    spaced_alternatives,
)
from services.api_gateway.schemas.requests import STEP_SPELLINGS, _Body
from services.api_gateway.schemas.responses import LogLine, TaskSummary, _Out
from shared.vocabulary import TASK_STATUSES

_STEP_PATTERN = any_case_pattern(
    [s for s in STEP_SPELLINGS if not s.isdigit()],
    spaced=True,
    or_exactly=tuple(s for s in STEP_SPELLINGS if s.isdigit()),
)
AnyCaseStep = Annotated[
    str,
    Field(max_length=50),
    matching(_STEP_PATTERN, "step name or number"),
    WithJsonSchema({"type": "string", "maxLength": 50, "pattern": _STEP_PATTERN}),
]

# Paging by page number is bounded (at most 1000 pages), so an offset never scans without end.
MAX_PAGE = 1000
MAX_SCHEMAS = 20
_STATUSES = [*TASK_STATUSES, "running"]
# One status or several, comma-separated, spaces around each; empty or blank means none.
STATUS_LIST_PATTERN = (
    f"^(?!.*\\n$)(({spaced_alternatives(_STATUSES)}(,{spaced_alternatives(_STATUSES)})*)|[{PY_SPACE}]*)$"
)
_SCHEMA_LIST = re.compile(SCHEMA_LIST_PATTERN)


_ISO_DATE_START = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _text_time(value: object) -> object:
    """A time is ISO 8601 text in JSON. A number, or digits as text ("0", "20260101"), is refused: to
    pydantic's lax mode both are a Unix time."""
    if value is not None and not isinstance(value, str | datetime):
        raise ValueError("must be an ISO 8601 date-time string")
    if isinstance(value, str) and not _ISO_DATE_START.match(value):
        raise ValueError("must be an ISO 8601 date-time string (YYYY-MM-DDTHH:MM:SS)")
    return value


def _utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class Pagination(_Out):
    page: int
    page_size: int
    total: int
    total_pages: int
    has_next: bool
    has_prev: bool


class TaskQueryRequest(_Body):
    page: StrictInt = Field(default=1, ge=1, le=MAX_PAGE)
    page_size: StrictInt = Field(default=20, ge=1, le=100)
    status: str | None = Field(
        default=None,
        max_length=200,
        description="One status or several, comma-separated (`running` is read as `in_progress`).",
        json_schema_extra={"pattern": STATUS_LIST_PATTERN},
    )
    task_name: str | None = Field(default=None, max_length=200, description="Text in the task name.")
    created_by: str | None = Field(default=None, max_length=50)
    db_name: str | None = Field(default=None, max_length=100)
    created_time_start: datetime | None = Field(
        default=None, strict=False, description="Created at or after (ISO 8601; no offset: UTC)."
    )
    created_time_end: datetime | None = Field(
        default=None, strict=False, description="Created at or before (ISO 8601; no offset: UTC)."
    )
    sort_by: Literal["created_at", "started_at", "completed_at", "updated_at", "task_name", "status"] = (
        "created_at"
    )
    sort_order: Literal["asc", "desc"] = "desc"

    @field_validator("status")
    @classmethod
    def _statuses(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parts = ["in_progress" if p.strip() == "running" else p.strip() for p in value.split(",")]
        if any(p not in TASK_STATUSES for p in parts):
            raise ValueError(f"must be one or more of {list(TASK_STATUSES)}, comma-separated")
        return ",".join(parts)

    @field_validator("created_time_start", "created_time_end", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        return _text_time(value)

    @field_validator("created_time_start", "created_time_end")
    @classmethod
    def _as_utc(cls, value: datetime | None) -> datetime | None:
        return _utc(value)


class TaskQueryPage(_Out):
    tasks: list[TaskSummary]
    total: int
    pagination: Pagination
    sort_by: str
    sort_order: str


class LogQueryRequest(_Body):
    page: StrictInt = Field(default=1, ge=1, le=MAX_PAGE)
    page_size: StrictInt = Field(default=50, ge=1, le=500)
    level: AnyCaseLevel | None = Field(
        default=None,
        description="Exactly this level (any letter case), as the earlier implementation filtered.",
    )
    min_level: AnyCaseLevel | None = Field(
        default=None, description="This level or higher (what GET /logs `level` means)."
    )
    start_time: datetime | None = Field(default=None, strict=False, description="No offset: UTC.")
    end_time: datetime | None = Field(default=None, strict=False, description="No offset: UTC.")
    keyword: str | None = Field(
        default=None, max_length=500, description="Text the message contains (case-insensitive)."
    )
    logger_name: str | None = Field(
        default=None, max_length=200, description="Text in the name of the module that logged the line."
    )
    step_name: AnyCaseStep | None = Field(
        default=None, description="Step name (any letter case, spaces around) or number."
    )
    sort_by: Literal["timestamp"] = "timestamp"
    sort_order: Literal["asc", "desc"] = "desc"

    @field_validator("level", "min_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        # Checked before upper-casing: "ınfo" (dotless i) upper-cases to INFO but is not a level.
        if isinstance(value, str) and re.search(LEVEL_PATTERN, value):
            return value.upper()
        return value

    @field_validator("start_time", "end_time", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        return _text_time(value)

    @field_validator("start_time", "end_time")
    @classmethod
    def _as_utc(cls, value: datetime | None) -> datetime | None:
        return _utc(value)


class LogQueryPage(_Out):
    logs: list[LogLine]
    total: int = Field(description="Lines matching, counted up to DP_LOG_COUNT_LIMIT.")
    total_exact: bool
    pagination: Pagination


class DatabaseTablesByPattern(_Body):
    """`POST /api/v0/database/tables`, the earlier shape."""

    db_connection: str = Field(min_length=1, max_length=2000)
    schema_names: str | None = Field(
        default=None,
        alias="schema",
        max_length=2000,
        description="One schema or several, comma-separated (default: public).",
        json_schema_extra={"pattern": SCHEMA_LIST_PATTERN},
    )
    table_name_pattern: str | None = Field(
        default=None,
        max_length=200,
        description="`*` or `%` match any text; without a wildcard, the text anywhere in the name.",
    )


class DatabaseTableNames(_Out):
    tables: list[str] = Field(description="`schema.table` names.")
    table_details: list[dict[str, Any]] = Field(
        description="The same tables with kind, estimated_rows, comment, readable."
    )
    total: int
    schemas: list[str]
    table_name_pattern: str | None
    db_connection_info: dict[str, Any]


class TableDdlRequest(_Body):
    """`POST /api/v0/database/table/ddl`."""

    db_connection: str = Field(min_length=1, max_length=2000)
    table: str = Field(
        max_length=127,
        pattern=TABLE_NAME_PATTERN,
        description="`table` or `schema.table` (public by default).",
    )
    business_context: str | None = Field(default=None, max_length=20_000)
    type: Literal["ddl", "md", "both"] = Field(default="both", description="Which documents to return.")


class TableDdl(_Out):
    ddl: str | None
    md: str | None
    table_info: dict[str, Any]
    fields: list[dict[str, Any]]
    generation_info: dict[str, Any]


class UploadedFile(_Out):
    filename: str
    overwrite_mode: str
    size: int
    size_formatted: str
    uploaded_at: datetime
    stored_as: str = Field(description="The name the upload was stored under (another in rename mode).")


class BackupInfo(_Out):
    had_existing_file: bool
    backup_filename: str
    backup_version: int
    backup_created_at: datetime


class OutputUploaded(_Out):
    task_id: str
    uploaded_file: UploadedFile
    backup_info: BackupInfo | None
    written: bool = Field(description="False: overwrite_mode skip and the file exists (nothing written).")


def schema_list(value: str | None) -> list[str]:
    """The schemas of a comma-separated list, de-duplicated (public when none)."""
    if value is not None and not _SCHEMA_LIST.fullmatch(value):
        raise ValueError("schema names separated by commas")
    names = list(dict.fromkeys(s.strip() for s in (value or "").split(",") if s.strip())) or ["public"]
    if len(names) > MAX_SCHEMAS:
        raise ValueError(f"at most {MAX_SCHEMAS} schemas")
    return names
