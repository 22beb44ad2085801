"""Task-level log lines (the seed's `workflow_start`, `workflow_complete`, `workflow_error`, `system_check`).

They are not events of their own: each is derived from the task-level fact that makes it true
(`task_started`, `task_finished`, a `step_failed` the scheduler decided for silence or time). The
collector's projection writes the line in the same transaction as the fact, with the fact's event id
and sequence number, so the line exists exactly once and a rebuild from the store reproduces it; the
live log stream derives the same line from the same event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from shared.events import FailureCode
from shared.vocabulary import LogLevel

WORKFLOW_START = "workflow_start"
WORKFLOW_COMPLETE = "workflow_complete"
WORKFLOW_ERROR = "workflow_error"
WORKFLOW_CANCELLED = "workflow_cancelled"
SYSTEM_CHECK = "system_check"

TASK_LOG_STEPS: tuple[str, ...] = (
    WORKFLOW_START,
    WORKFLOW_COMPLETE,
    WORKFLOW_ERROR,
    WORKFLOW_CANCELLED,
    SYSTEM_CHECK,
)
"""The `step_name`s of task-level lines: the log filter accepts them beside the step names."""


def log_file_line(row: Mapping[str, Any]) -> str:
    """A log row as one line of the task's data_pipeline.log (continuation lines indented), ending with
    the row id: the collector's file and the gateway's download are the same text."""
    step = row["step_name"] or "task"
    message = row["message"].replace("\n", "\n    ")
    ts = row["timestamp"].isoformat(timespec="milliseconds")
    return f"{ts} {row['log_level']:<8} [{step}] {message} (#{row['id']})\n"


# Failures the scheduler decides itself (nobody else saw them happen): they get a system_check line.
SYSTEM_FAILURES: frozenset[str] = frozenset(
    {FailureCode.ZOMBIE, FailureCode.DISPATCH_TIMEOUT, FailureCode.TASK_TIMEOUT}
)
DERIVING_EVENTS: tuple[str, ...] = ("task_started", "task_finished", "step_failed")


@dataclass(frozen=True)
class TaskLogLine:
    level: LogLevel
    step_name: str
    message: str
    module: str
    function: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Context:
    """What the read model knows beside the event (None where the live stream cannot know it)."""

    failed_step: str | None = None  # the task's error_step when it finished
    runner_id: str | None = None  # the failed execution's runner
    last_heartbeat: datetime | None = None  # the failed execution's last sign of life
    execution_known: bool = False  # runner_id/last_heartbeat were read (None there means "never")


def task_log_line(payload: BaseModel, producer: str, context: Context | None = None) -> TaskLogLine | None:
    """The task-level line an event implies, or None."""
    ctx = context or Context()
    kind = getattr(payload, "type", None)
    if kind == "task_started":
        return TaskLogLine("INFO", WORKFLOW_START, "workflow started", producer, kind)
    if kind == "task_finished":
        return _finished(payload, producer, ctx)
    if kind == "step_failed" and getattr(payload, "code", None) in SYSTEM_FAILURES:
        return _system_check(payload, producer, ctx)
    return None


def _finished(payload: Any, producer: str, ctx: Context) -> TaskLogLine:
    status: str = payload.status
    error: str | None = payload.error_message
    extra: dict[str, Any] = {"status": status}
    if status == "completed":
        return TaskLogLine("INFO", WORKFLOW_COMPLETE, "workflow completed", producer, "task_finished", extra)
    if status == "partial_completed":
        extra["reason"] = error
        message = f"workflow completed in part: {error}" if error else "workflow completed in part"
        return TaskLogLine("WARNING", WORKFLOW_COMPLETE, message, producer, "task_finished", extra)
    if status == "cancelled":
        extra["reason"] = error
        message = f"workflow cancelled: {error}" if error else "workflow cancelled"
        return TaskLogLine("WARNING", WORKFLOW_CANCELLED, message, producer, "task_finished", extra)
    extra |= {"failed_step": ctx.failed_step, "reason": error}
    message = f"workflow failed: {error or 'no reason given'}"
    if ctx.failed_step and ctx.failed_step not in message:
        message += f" (failing step: {ctx.failed_step})"
    return TaskLogLine("ERROR", WORKFLOW_ERROR, message, producer, "task_finished", extra)


def _system_check(payload: Any, producer: str, ctx: Context) -> TaskLogLine:
    runner = payload.runner_id or ctx.runner_id
    heartbeat = ctx.last_heartbeat.isoformat() if ctx.last_heartbeat else None
    step = payload.step.value
    if heartbeat or ctx.execution_known:
        where = f"on runner {runner or 'none (never started)'}, last heartbeat {heartbeat or 'never'}"
    else:  # the live stream sees only the event (a zombie's error names runner and heartbeat itself)
        where = f"on runner {runner or 'unknown'}"
    message = f"{payload.code}: step {step} failed {where}: {payload.error}"
    extra = {
        "code": str(payload.code),
        "failed_step": step,
        "runner_id": runner,
        "last_heartbeat": heartbeat,
        "retryable": payload.retryable,
    }
    return TaskLogLine("ERROR", SYSTEM_CHECK, message, producer, "step_failed", extra)
