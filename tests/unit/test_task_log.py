"""Task-level log lines derived from task facts (issue 9, item 4): which fact gives which line."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.events import FailureCode, StepFailed, StepSucceeded, TaskFinished, TaskStarted
from shared.steps import StepName
from shared.task_log import (
    SYSTEM_CHECK,
    WORKFLOW_CANCELLED,
    WORKFLOW_COMPLETE,
    WORKFLOW_ERROR,
    WORKFLOW_START,
    Context,
    task_log_line,
)


def test_start_and_complete() -> None:
    start = task_log_line(TaskStarted(), "scheduler")
    assert start is not None and (start.level, start.step_name) == ("INFO", WORKFLOW_START)
    assert (start.module, start.function) == ("scheduler", "task_started")
    done = task_log_line(TaskFinished(status="completed"), "scheduler")
    assert done is not None and (done.level, done.step_name, done.message) == (
        "INFO",
        WORKFLOW_COMPLETE,
        "workflow completed",
    )


def test_partial_names_the_reason_and_failure_names_the_step() -> None:
    partial = task_log_line(
        TaskFinished(
            status="partial_completed", error_message="ddl_generation: 2 of 3 tables not documented"
        ),
        "scheduler",
    )
    assert partial is not None and (partial.level, partial.step_name) == ("WARNING", WORKFLOW_COMPLETE)
    assert "2 of 3 tables" in partial.message
    failed = task_log_line(
        TaskFinished(status="failed", error_message="qa_generation failed: boom"),
        "scheduler",
        Context(failed_step="qa_generation"),
    )
    assert failed is not None and (failed.level, failed.step_name) == ("ERROR", WORKFLOW_ERROR)
    assert failed.message == "workflow failed: qa_generation failed: boom"
    assert failed.extra["failed_step"] == "qa_generation"
    cancelled = task_log_line(TaskFinished(status="cancelled", error_message="user"), "scheduler")
    assert cancelled is not None and cancelled.step_name == WORKFLOW_CANCELLED


def test_only_failures_the_scheduler_decided_get_a_system_check_line() -> None:
    heartbeat = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    for code in (FailureCode.ZOMBIE, FailureCode.DISPATCH_TIMEOUT, FailureCode.TASK_TIMEOUT):
        failure = StepFailed(step=StepName.DDL_GENERATION, execution_id="e", error="silence", code=code)
        context = Context(runner_id="runner-a", last_heartbeat=heartbeat, execution_known=True)
        line = task_log_line(failure, "scheduler", context)
        assert line is not None and (line.level, line.step_name) == ("ERROR", SYSTEM_CHECK)
        assert "runner-a" in line.message and heartbeat.isoformat() in line.message
        assert line.extra["code"] == code.value
    own = StepFailed(step=StepName.DDL_GENERATION, execution_id="e", error="bad SQL", code=None)
    assert task_log_line(own, "runner-a") is None
    never = StepFailed(
        step=StepName.QA_GENERATION, execution_id="e", error="x", code=FailureCode.DISPATCH_TIMEOUT
    )
    line = task_log_line(never, "scheduler", Context(execution_known=True))
    assert line is not None and "never started" in line.message and "last heartbeat never" in line.message
    timeout = TaskFinished(status="failed", error_message="task exceeded task_timeout_hours=2")
    line = task_log_line(timeout, "scheduler", Context(failed_step="sql_validation"))
    assert line is not None and line.message.endswith("(failing step: sql_validation)")


def test_other_events_give_no_line() -> None:
    assert task_log_line(StepSucceeded(step=StepName.DDL_GENERATION, execution_id="e"), "runner") is None
