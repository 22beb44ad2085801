"""Pure functions from read-model rows to response models (no I/O; the clock is an argument)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from services.api_gateway.envelope import scrub
from services.api_gateway.schemas.responses import (
    CurrentExecution,
    EventView,
    ExecutionView,
    FileView,
    LogLine,
    PlanStep,
    StepView,
    TaskDetail,
    TaskSummary,
)
from services.api_gateway.step_plans import plan_view
from shared.messages import EventEnvelope
from shared.parameters import TaskParameters
from shared.secrets import mask_secrets
from shared.steps import STEP_ORDER, step_number
from shared.task_log import task_log_line


def public_parameters(raw: object) -> dict[str, Any]:
    """Stored parameters as responses show them: no encrypted secret, every password masked."""
    if not isinstance(raw, Mapping):
        return {}
    try:
        shown: dict[str, Any] = TaskParameters.model_validate(raw).public()
    except ValidationError:
        shown = {k: v for k, v in raw.items() if v is not None}
    return scrub(shown)


def _duration(started: datetime | None, completed: datetime | None, now: datetime) -> float | None:
    if started is None:
        return None
    return round(max(((completed or now) - started).total_seconds(), 0.0), 3)


def task_summary(row: Mapping[str, Any], now: datetime) -> TaskSummary:
    return TaskSummary(
        task_id=row["id"],
        task_name=row["task_name"],
        task_type=row["task_type"],
        status=row["status"],
        progress=row["progress"],
        current_step=row["current_step"],
        step_status=dict(row["step_status"] or {}),
        execution_mode=row["execution_mode"],
        single_step=row["single_step"],
        db_name=row["db_name"],
        business_context=row["business_context"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        completed_at=row["completed_at"],
        updated_at=row["updated_at"],
        duration=_duration(row["started_at"], row["completed_at"], now),
        error_message=row["error_message"],
        output_directory=row["output_directory"],
        parameters=public_parameters(row["parameters"]),
        recorded=row.get("recorded", True),
    )


def _execution(row: Mapping[str, Any], now: datetime) -> ExecutionView:
    duration = row["duration_seconds"]
    if duration is None:
        duration = _duration(row["started_at"], row["completed_at"], now)
    return ExecutionView(
        execution_id=row["execution_id"],
        status=row["status"],
        attempt=row["attempt"],
        started_at=row["started_at"],
        completed_at=row["completed_at"],
        duration_seconds=duration,
        error_message=row["error_message"],
        runner_id=row["runner_id"],
        force_executed=row["force_executed"],
        files_cleaned=bool(row.get("files_cleaned", False)),
        progress=row["progress"],
        result=row["execution_result"],
    )


def steps_view(
    step_status: Mapping[str, str], execution_rows: Sequence[Mapping[str, Any]], now: datetime
) -> list[StepView]:
    """One entry per step in workflow order: its status from the task, times and history from executions."""
    by_step: dict[str, list[ExecutionView]] = {}
    for row in execution_rows:
        by_step.setdefault(row["execution_step"], []).append(_execution(row, now))
    steps = []
    for step in STEP_ORDER:
        history = by_step.get(step.value, [])
        latest = history[-1] if history else None
        status = step_status.get(step.value, "pending")
        steps.append(
            StepView(
                step=step.value,
                step_name=step.value,
                step_number=step_number(step),
                status=status,
                step_status=status,
                started_at=latest.started_at if latest else None,
                completed_at=latest.completed_at if latest else None,
                duration=latest.duration_seconds if latest else None,
                error_message=latest.error_message if latest else None,
                attempts=len(history),
                progress=latest.progress if latest else 0,
                executions=history,
            )
        )
    return steps


def current_execution(execution_rows: Sequence[Mapping[str, Any]]) -> CurrentExecution | None:
    """The execution running now (the latest started, if several), as the earlier `current_step` object."""
    running = [r for r in execution_rows if r["status"] == "running"]
    if not running:
        return None
    latest = running[-1]  # rows come ordered by start time
    return CurrentExecution(
        execution_id=latest["execution_id"],
        step=latest["execution_step"],
        status=latest["status"],
        started_at=latest["started_at"],
    )


def task_detail(
    row: Mapping[str, Any], execution_rows: Sequence[Mapping[str, Any]], now: datetime
) -> TaskDetail:
    summary = task_summary(row, now)
    steps = steps_view(summary.step_status, execution_rows, now)
    return TaskDetail(
        **summary.model_dump(),
        result=row["result"],
        error_step=row["error_step"],
        step_stats=dict(row["step_stats"] or {}),
        plan=[PlanStep(**p) for p in plan_view(summary.step_status, dict(row["step_stats"] or {}))],
        steps=steps,
        step_details=steps,
        total_steps=len(STEP_ORDER),
        current_execution=current_execution(execution_rows),
    )


def log_line_from_row(row: Mapping[str, Any]) -> LogLine:
    return LogLine(
        id=row["id"],
        event_id=str(row["event_id"]),
        timestamp=row["timestamp"],
        level=row["log_level"],
        message=row["message"],
        step_name=row["step_name"],
        execution_id=row["execution_id"],
        module=row["module_name"],
        function=row["function_name"],
        extra=dict(row["extra_data"] or {}),
    )


def log_line_from_event(event: EventEnvelope) -> LogLine | None:
    """The log line an event carries, or the task-level line it implies (shared/task_log.py), as the
    collector stores it (the stream lacks the read model's context: see `Context`)."""
    payload = event.payload
    if payload.type != "log_emitted":
        derived = task_log_line(payload, event.producer)
        if derived is None:
            return None
        return LogLine(
            id=None,
            event_id=str(event.event_id),
            timestamp=event.occurred_at,
            level=derived.level,
            message=mask_secrets(derived.message),
            step_name=derived.step_name,
            execution_id=getattr(payload, "execution_id", None),
            module=derived.module,
            function=derived.function,
            extra=derived.extra,
        )
    return LogLine(
        id=None,
        event_id=str(event.event_id),
        timestamp=event.occurred_at,
        level=payload.level,
        message=payload.message,
        step_name=payload.step.value if payload.step else None,
        execution_id=payload.execution_id,
        module=payload.module,
        function=payload.function,
        extra=dict(payload.extra),
    )


def event_from_row(row: Mapping[str, Any]) -> EventView:
    return EventView(
        seq=row["seq"],
        event_id=str(row["event_id"]),
        type=row["type"],
        task_id=row["task_id"],
        occurred_at=row["occurred_at"],
        producer=row["producer"],
        payload=scrub(dict(row["payload"] or {})),
    )


def event_from_envelope(event: EventEnvelope) -> EventView:
    return EventView(
        seq=None,
        event_id=str(event.event_id),
        type=event.type,
        task_id=event.task_id,
        occurred_at=event.occurred_at,
        producer=event.producer,
        payload=scrub(event.payload.model_dump(mode="json")),
    )


def file_view(row: Mapping[str, Any], download_url: str) -> FileView:
    return FileView(
        file_name=row["file_name"],
        file_type=row["file_type"],
        file_path=row["file_path"],
        size=row["file_size"],
        file_size=row["file_size"],
        sha256=row["content_hash"],
        is_primary=row["is_primary"],
        is_downloadable=row["is_downloadable"],
        step=row["step_name"],
        description=row["description"],
        created_at=row["created_at"],
        modified_at=row["modified_at"],
        download_url=download_url,
    )
