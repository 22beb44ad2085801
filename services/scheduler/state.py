"""A task's state as the scheduler sees it, folded from its events: pure, no I/O.

`evolve(state, envelope)` folds one event into a task's state; `derive_status` says which terminal
status its step outcomes add up to. What happens next is decided in services/scheduler/domain.py;
which steps a run covers is in services/scheduler/plans.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from services.scheduler.plans import rerun_parameters, run_options
from shared.events import TaskFinished
from shared.lifecycle import is_old_execution, step_finished, task_finished
from shared.messages import EventEnvelope
from shared.parameters import TaskParameters
from shared.vocabulary import (
    STEP_ACTIVE,
    STEP_ORDER,
    FinalTaskStatus,
    StepName,
    StepStatus,
    TaskStatus,
)


@dataclass(frozen=True)
class Policy:
    max_concurrent_tasks: int = 1
    task_timeout: timedelta = timedelta(hours=2)
    heartbeat_timeout: timedelta = timedelta(seconds=60)
    retry_max_attempts: int = 3
    retry_base_delay: float = 2.0
    retry_max_delay: float = 60.0
    cancel_grace: timedelta = timedelta(seconds=15)
    dispatch_timeout: timedelta = timedelta(minutes=30)
    output_root: str = "."  # task directories are `{output_root}/{task_id}`
    # Retention of finished tasks' log text and files (None: keep for ever).
    log_retention: timedelta | None = None
    file_retention: timedelta | None = None
    # A review waiting longer is abandoned (the task fails, nothing is loaded); None: wait for ever.
    review_timeout: timedelta | None = timedelta(days=7)


@dataclass(frozen=True)
class StepRun:
    status: StepStatus = "pending"
    execution_id: str | None = None
    attempt: int = 0
    force: bool = False
    scheduled_at: datetime | None = None
    started_at: datetime | None = None
    last_heartbeat: datetime | None = None
    runner_id: str | None = None
    retry_at: datetime | None = None
    error: str | None = None
    code: str | None = None  # the FailureCode of the last failure
    retryable: bool = False
    partial: bool = False
    partial_reason: str | None = None  # what the step could not do (its summary's `partial_reason`)
    llm_tokens: int = 0  # LLM tokens this run's executions of the step spent (retries included)


# A step without a run yet: one shared instance (it is frozen), not one built per lookup, and a message
# makes dozens of lookups.
_NOT_RUN = StepRun()


@dataclass(frozen=True)
class Review:
    """This run's review before load (parameter review_before_load): asked, then completed or abandoned."""

    requested_at: datetime
    completed_at: datetime | None = None
    abandoned: str | None = None  # why nothing is loaded
    timed_out: bool = False

    @property
    def open(self) -> bool:
        return self.completed_at is None and self.abandoned is None


@dataclass(frozen=True)
class TaskState:
    task_id: str
    parameters: TaskParameters
    created_at: datetime
    status: TaskStatus = "pending"
    plan: tuple[StepName, ...] = STEP_ORDER
    steps: dict[StepName, StepRun] = field(default_factory=dict)
    runs: dict[StepName, int] = field(default_factory=dict)
    queued_at: datetime | None = None
    started_at: datetime | None = None
    force: bool = False
    cancel_requested_at: datetime | None = None
    cancel_reason: str | None = None
    delete_requested: bool = False
    deleted: bool = False
    # Created by the earlier implementation's create: pending until an execute, never admitted before.
    waiting: bool = False
    review: Review | None = None
    # Time this run spent awaiting review: DP_TASK_TIMEOUT_HOURS does not count it.
    paused: timedelta = timedelta(0)

    def step(self, name: StepName) -> StepRun:
        return self.steps.get(name, _NOT_RUN)

    @property
    def terminal(self) -> bool:
        return task_finished(self.status)

    def active_steps(self) -> list[StepName]:
        return [s for s in self.plan if self.step(s).status in STEP_ACTIVE]


# ---- evolve ---------------------------------------------------------------------------------------


def _with_step(state: TaskState, name: StepName, **changes: Any) -> TaskState:
    return replace(state, steps={**state.steps, name: replace(state.step(name), **changes)})


def _current(state: TaskState, name: StepName, execution_id: str | None) -> bool:
    """Does an outcome event belong to the step's current, unfinished execution? (shared.lifecycle's rules;
    a scheduled or running step always has its execution id.)"""
    run = state.step(name)
    if step_finished(run.status) or run.status in ("pending", "waiting_retry"):
        return False
    return not is_old_execution(run.execution_id, execution_id)


def evolve(state: TaskState | None, envelope: EventEnvelope) -> TaskState | None:
    e = envelope.payload
    at = envelope.occurred_at
    if e.type == "task_created":
        if state is not None:
            return state
        return TaskState(
            task_id=envelope.task_id,
            parameters=e.parameters,
            created_at=at,
            plan=tuple(e.steps),
            steps={s: StepRun() for s in e.steps},
            queued_at=at,
            waiting=e.parameters.wait_for_execute,
        )
    if state is None or state.deleted:
        return state
    match e.type:
        case "task_started":
            return replace(state, status="in_progress", started_at=at) if state.status == "pending" else state
        case "task_rerun_requested":
            if not (state.terminal or state.waiting):
                return state
            steps = {**state.steps, **{s: StepRun() for s in e.steps}}
            # The rerun's mode decides what runs: single runs what was asked, complete skips disabled steps.
            return replace(
                state,
                parameters=run_options(
                    rerun_parameters(state.parameters, e.execution_mode, e.steps), e, first_run=state.waiting
                ),
                status="pending",
                waiting=False,
                plan=tuple(e.steps),
                steps=steps,
                queued_at=at,
                started_at=None,
                force=e.force,
                cancel_requested_at=None,
                cancel_reason=None,
                delete_requested=False,
                review=None,
                paused=timedelta(0),
            )
        case "step_scheduled":
            run = state.step(e.step)
            if state.terminal or step_finished(run.status) or run.execution_id == e.execution_id:
                return state  # a redelivered step_scheduled must not move a running step back
            runs = {**state.runs, e.step: state.runs.get(e.step, 0) + 1}
            return replace(
                _with_step(
                    state,
                    e.step,
                    status="scheduled",
                    execution_id=e.execution_id,
                    attempt=e.attempt,
                    force=e.force,
                    scheduled_at=at,
                    started_at=None,
                    last_heartbeat=None,
                    runner_id=None,
                    retry_at=None,
                ),
                runs=runs,
            )
        case "step_skipped":
            if step_finished(state.step(e.step).status):
                return state
            return _with_step(state, e.step, status="skipped", error=e.reason)
        case "step_retry_scheduled":
            if state.step(e.step).status != "failed" or state.terminal:
                return state
            return _with_step(
                state,
                e.step,
                status="waiting_retry",
                attempt=e.next_attempt - 1,
                retry_at=at + timedelta(seconds=e.delay_seconds),
            )
        case "step_started" | "step_heartbeat" | "step_progress":
            if not _current(state, e.step, e.execution_id):
                return state
            runner = getattr(e, "runner_id", None) or state.step(e.step).runner_id
            changes: dict[str, Any] = {"status": "running", "last_heartbeat": at, "runner_id": runner}
            if e.type == "step_started":
                changes["started_at"] = at
            return _with_step(state, e.step, **changes)
        case "step_succeeded":
            if not _current(state, e.step, e.execution_id):
                return state
            return _with_step(
                state,
                e.step,
                status="completed",
                error=None,
                code=None,
                partial=bool(e.summary.get("partial")),
                partial_reason=_text_or_none(e.summary.get("partial_reason")),
                llm_tokens=state.step(e.step).llm_tokens + sum(u.total_tokens for u in e.llm_usage),
            )
        case "step_failed":
            if not _current(state, e.step, e.execution_id):
                return state
            return _with_step(
                state,
                e.step,
                status="failed",
                error=e.error,
                code=e.code,
                retryable=e.retryable,
                llm_tokens=state.step(e.step).llm_tokens + sum(u.total_tokens for u in e.llm_usage),
            )
        case "step_cancelled":
            run = state.step(e.step)
            if step_finished(run.status) or (
                e.execution_id is not None and e.execution_id != run.execution_id
            ):
                return state
            return _with_step(state, e.step, status="cancelled", error=e.reason)
        case "task_cancel_requested":
            if state.terminal:
                return replace(state, delete_requested=state.delete_requested or e.delete_after)
            return replace(
                state,
                cancel_requested_at=state.cancel_requested_at or at,
                cancel_reason=e.reason,
                delete_requested=state.delete_requested or e.delete_after,
            )
        case "task_finished":
            if state.terminal:
                return state
            return replace(state, status=e.status)
        case "task_deleted":
            return replace(state, deleted=True)
        case "review_requested" | "review_completed" | "review_abandoned":
            return _evolve_review(state, e, at)
    return state


def _evolve_review(state: TaskState, e: Any, at: datetime) -> TaskState:
    review = state.review
    if e.type == "review_requested":
        if state.terminal or state.status != "in_progress" or review is not None:
            return state
        return replace(state, status="awaiting_review", review=Review(requested_at=at))
    if state.status != "awaiting_review" or review is None or not review.open:
        return state
    if e.type == "review_completed":
        return replace(
            state,
            status="in_progress",
            review=replace(review, completed_at=at),
            paused=state.paused + (at - review.requested_at),
        )
    return replace(state, review=replace(review, abandoned=e.reason, timed_out=e.timed_out))


# ---- outcome ------------------------------------------------------------------------------------


def derive_status(state: TaskState) -> tuple[FinalTaskStatus, str | None]:
    """The terminal status a task ends with, from its plan's step outcomes, and the error to show."""
    runs = [(s, state.step(s)) for s in state.plan]
    failed = [(s, r) for s, r in runs if r.status == "failed"]
    completed = [(s, r) for s, r in runs if r.status == "completed"]
    if state.cancel_requested_at is not None or any(r.status == "cancelled" for _, r in runs):
        return "cancelled", state.cancel_reason or "cancelled"
    if failed:
        step, run = failed[0]
        error = f"{step.value} failed: {run.error}"
        return ("partial_completed" if completed else "failed"), error
    if any(r.status in ("pending", "waiting_retry") for _, r in runs):
        # Steps that could not run because an earlier one did not complete.
        return ("partial_completed" if completed else "failed"), "not every step ran"
    partial = [(s, r) for s, r in completed if r.partial]
    if partial:
        # docs/decisions.md: a step that did its job for only part of its inputs (step 1: a listed table
        # missing or unreadable) makes the task partial_completed, and the reason names what is missing.
        reasons = "; ".join(f"{s.value}: {r.partial_reason or 'completed only in part'}" for s, r in partial)
        return "partial_completed", reasons
    return "completed", None


def finished(
    state: TaskState, status: FinalTaskStatus | None = None, error: str | None = None
) -> TaskFinished:
    """The task's TaskFinished: `status` and `error` as given, else as its step outcomes add up."""
    derived, derived_error = derive_status(state)
    result = {s.value: state.step(s).status for s in state.plan}
    return TaskFinished(status=status or derived, error_message=error or derived_error, result=result)


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def llm_tokens_used(state: TaskState) -> int:
    """LLM tokens this run has spent so far: what the next step may still spend is max_llm_tokens minus this."""
    return sum(state.step(s).llm_tokens for s in state.plan)
