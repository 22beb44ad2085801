"""What `data` holds in each successful response (besides `response` and `timestamp`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, model_validator


class _Out(BaseModel):
    pass


def format_size(size: int) -> str:
    """`284.0 B`, `2.8 KB`, `1.5 MB`: sizes as the earlier implementation wrote them."""
    value = float(size)
    for unit in ("B", "KB", "MB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


class TaskCreated(_Out):
    task_id: str
    status: str
    created_at: datetime
    output_directory: str


class TaskSummary(_Out):
    task_id: str
    task_name: str | None
    task_type: str
    status: str
    progress: int
    current_step: str | None
    step_status: dict[str, str]
    execution_mode: str
    single_step: int | None
    db_name: str | None
    business_context: str | None
    created_by: str
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    updated_at: datetime | None
    duration: float | None = Field(description="Seconds from start to completion (or to now while running).")
    error_message: str | None
    output_directory: str | None
    parameters: dict[str, Any] = Field(description="As given, with the password masked.")
    recorded: bool = Field(
        default=True,
        description="False: accepted (202) but not recorded by the pipeline yet; shown `pending` with"
        " empty parameters, and cancel and delete already act on it.",
    )


class TaskList(_Out):
    tasks: list[TaskSummary]
    next_cursor: str | None
    total: int = Field(
        description="Tasks matching the filters, counted up to DP_TASK_COUNT_LIMIT (default 1000) on every"
        " page, so a page costs the same with 1k or 100k tasks."
    )
    total_exact: bool = Field(
        default=True,
        description="False when more tasks match than the cap: `total` is then a lower bound (show it as"
        " `1000+`); page on with next_cursor to see them all.",
    )
    limit: int = Field(description="The page size used (echoed).")
    offset: int | None = Field(description="The offset used (echoed; null when paging by cursor).")


class ExecutionView(_Out):
    execution_id: str | None
    status: str
    attempt: int
    started_at: datetime | None
    completed_at: datetime | None
    duration_seconds: float | None
    error_message: str | None
    runner_id: str | None
    force_executed: bool
    files_cleaned: bool = Field(
        default=False, description="The task's files were removed by file retention (DP_FILE_RETENTION_DAYS)."
    )
    progress: int
    result: dict[str, Any] | None


class StepView(_Out):
    step: str
    step_name: str = Field(description="The earlier implementation's name for `step` (same value).")
    step_number: int
    status: str
    step_status: str = Field(description="The earlier implementation's name for `status` (same value).")
    started_at: datetime | None
    completed_at: datetime | None
    duration: float | None
    error_message: str | None
    attempts: int = Field(description="How many executions this step has had (history below).")
    progress: int
    executions: list[ExecutionView]


class CurrentExecution(_Out):
    execution_id: str | None
    step: str
    status: str
    started_at: datetime | None


class PlanStep(_Out):
    step: str
    step_number: int
    runs: bool = Field(description="Whether the task's current run does this step.")
    status: str
    reason: str | None = Field(
        description="Why the step is not run: outside the requested range, single mode, or disabled by a "
        "parameter (enable_sql_validation, enable_training_data_load)."
    )


class TaskDetail(TaskSummary):
    result: dict[str, Any] | None = Field(
        description="The final report of the latest run once it has finished (null before): per step its "
        "status, attempts, duration, counts and LLM usage; the primary files; the run's duration and LLM "
        "usage (tokens by model, cost when priced). See docs/API.md, 'The final report'."
    )
    error_step: str | None
    step_stats: dict[str, Any]
    plan: list[PlanStep] = Field(
        description="Every step of the workflow in order: whether this run does it, and why not."
    )
    steps: list[StepView]
    step_details: list[StepView] = Field(description="The seed's name for `steps` (same content).")
    total_steps: int = Field(description="Steps in the workflow (4).")
    current_execution: CurrentExecution | None = Field(
        description="The execution running now (the earlier implementation's `current_step` object); "
        "null when none runs. `current_step` stays the step's name."
    )
    directory_exists: bool | None = Field(
        default=None,
        description="Whether the task directory is there (false after a delete with "
        "delete_database_records false, or before a waiting task has its table list).",
    )


class ActiveTasks(_Out):
    active: bool = Field(description="True when tasks are running; else `task` is the most recent one.")
    task: TaskSummary | None
    tasks: list[TaskSummary]


class CommandAccepted(_Out):
    task_id: str
    command: str
    command_id: str
    execution_mode: str | None = Field(default=None, description="As sent (`step` stays `step`).")
    step: str | None = None
    step_name: str | None = Field(default=None, description="As sent, when the request named the step so.")
    force: bool | None = None


class TaskDeleted(_Out):
    task_id: str
    deleted: bool = Field(description="False: accepted, the records are still being removed (202).")


class DeleteResult(_Out):
    task_id: str
    status: str = Field(
        description="deleted | deleting | not_found; with delete_database_records false: files_deleted |"
        " failed | skipped | not_found"
    )


class DeletedTask(_Out):
    """The earlier implementation's entry for a deleted task."""

    success: bool
    task_id: str
    directory_deleted: bool
    database_records_deleted: bool = Field(description="False while the records are still being removed.")
    deleted_files_count: int | None = None
    deleted_size: str | None = None
    deleted_at: datetime


class FailedTask(_Out):
    task_id: str
    error: str
    error_code: str = Field(description="NOT_FOUND | TASK_RUNNING | DELETE_FAILED | SKIPPED")


class DeleteSummary(_Out):
    total_requested: int
    successfully_deleted: int
    failed: int


class TasksDeleted(_Out):
    results: list[DeleteResult]
    deleted_count: int
    pending_count: int
    not_found_count: int
    # The earlier implementation's keys, beside the seed's.
    deleted_at: datetime | None = None
    deleted_tasks: list[DeletedTask] = Field(default_factory=list)
    failed_tasks: list[FailedTask] = Field(default_factory=list)
    summary: DeleteSummary | None = None


class LogLine(_Out):
    id: int | None = Field(description="Log id (None for a line streamed before it was stored).")
    event_id: str
    timestamp: datetime
    level: str
    message: str
    step_name: str | None
    execution_id: str | None
    module: str | None
    function: str | None
    extra: dict[str, Any]


class LogPage(_Out):
    logs: list[LogLine]
    next_cursor: str | None
    total: int = Field(
        description="Lines matching the filters, counted on the first page up to DP_LOG_COUNT_LIMIT (default"
        " 1000); later pages of the same listing repeat it (it is carried in the cursor)."
    )
    total_exact: bool = Field(
        default=True,
        description="False when more lines match than the cap: `total` is then a lower bound (show it as"
        " `1000+`); the pages themselves still reach every line.",
    )


class EventView(_Out):
    seq: int | None
    event_id: str
    type: str
    task_id: str
    occurred_at: datetime
    producer: str
    payload: dict[str, Any]


class EventPage(_Out):
    events: list[EventView]
    next_cursor: str | None


class FileView(_Out):
    file_name: str
    file_type: str
    file_path: str
    size: int
    file_size: int = Field(description="The seed's name for `size`.")
    file_size_formatted: str = Field(
        default="", description="The size for people (`2.8 KB`), as the earlier implementation showed it."
    )
    is_readable: bool = Field(default=True, description="The file is in the task directory and readable now.")
    sha256: str | None
    is_primary: bool
    is_downloadable: bool
    step: str | None
    description: str | None
    created_at: datetime
    modified_at: datetime | None
    download_url: str

    @model_validator(mode="after")
    def _formatted_size(self) -> FileView:
        if not self.file_size_formatted:
            self.file_size_formatted = format_size(self.size)
        return self


class FileList(_Out):
    files: list[FileView]
    total: int


class TableListWritten(_Out):
    task_id: str
    file_name: str
    table_count: int
    tables: list[str]


class Health(_Out):
    status: str
    checks: dict[str, bool] = Field(default_factory=dict)


class DatabaseTables(_Out):
    tables: list[Any]
    total: int
    schema_name: str | None = Field(default=None, alias="schema")
    model_config = {"populate_by_name": True, "serialize_by_alias": True}


class TrainingSearch(_Out):
    results: list[dict[str, Any]] = Field(description="Best first across kinds; each has kind and score.")
    total: int
    by_kind: dict[str, list[dict[str, Any]]]


class TrainingStats(_Out):
    stats: dict[str, Any]


class Empty(_Out):
    pass
