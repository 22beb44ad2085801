"""The scheduler's state and decisions, as pure functions of events, commands and the clock.

`evolve(state, envelope)` folds one event into a task's state; `decide(state, now, policy)` says
what should happen next for a task (level-triggered: it looks at the state, not at what just
happened, so a decision lost in a crash is simply made again), and `decide(..., command=...)` what a
command from the gateway leads to; `admit(states, limit)` picks which pending tasks may start.
Every driver calls these: the scheduler service, and `dpctl workflow run` for manual runs.
Nothing here does I/O.
The state and `evolve` live in services/scheduler/state.py, the plans in services/scheduler/plans.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel

from services.scheduler import review
from services.scheduler.plans import plan, plan_for, rerun_parameters, skip_reasons, step_disabled_reason
from services.scheduler.state import Policy, TaskState, finished
from shared.commands import AbandonReview, CancelTask, CompleteReview, CreateTask, DeleteTask, ExecuteTask
from shared.events import (
    FailureCode,
    LogEmitted,
    StepCancelled,
    StepFailed,
    StepRetryScheduled,
    StepScheduled,
    StepSkipped,
    TaskCancelRequested,
    TaskCreated,
    TaskDeleted,
    TaskFilesCleaned,
    TaskLogsPurged,
    TaskRerunRequested,
    TaskStarted,
)
from shared.ids import execution_id as make_execution_id
from shared.lifecycle import Finished
from shared.retry import backoff
from shared.vocabulary import STEP_ACTIVE, FinalTaskStatus, StepName

# The longest a step order may be started without the runner asking the store (RunStep.fresh_seconds).
FRESH_ORDER_SECONDS = 5.0


@dataclass(frozen=True)
class Decision:
    """An event the scheduler emits; for StepScheduled the handler also sends the RunStep command."""

    event: BaseModel


# ---- decide -------------------------------------------------------------------------------------


def retry_delay(policy: Policy, attempt: int) -> float:
    return backoff(attempt, policy.retry_base_delay, policy.retry_max_delay)


def _fail_active(state: TaskState, reason: str, code: FailureCode) -> list[Decision]:
    return [
        Decision(
            StepFailed(
                step=s,
                execution_id=state.step(s).execution_id or "",
                error=reason,
                retryable=False,
                code=code,
            )
        )
        for s in state.active_steps()
    ]


def _finish(state: TaskState, status: FinalTaskStatus | None = None, error: str | None = None) -> Decision:
    return Decision(finished(state, status, error))


TaskCommand = CreateTask | ExecuteTask | CancelTask | DeleteTask | CompleteReview | AbandonReview


def decide(
    state: TaskState | None,
    now: datetime,
    policy: Policy,
    command: TaskCommand | None = None,
    *,
    task_id: str | None = None,
) -> list[Decision]:
    """What should happen next for one task, or what a command for it leads to.

    Without a command: level-triggered and idempotent, once its events are folded in it returns [].
    With one: the command's guards (a redelivered create, a re-run of an unfinished task, a second
    cancel) are checked against the state; `task_id` names the task a CreateTask makes.
    """
    if command is not None:
        return _decide_command(state, command, task_id or (state.task_id if state else None), policy)
    if state is None:
        return []
    return _next(state, now, policy)


def fresh_window(state: TaskState, now: datetime, policy: Policy) -> float:
    """RunStep.fresh_seconds of an order issued now: half the time until a decision here could end its
    execution (the dispatch timeout, the task timeout), at most FRESH_ORDER_SECONDS. The other half covers
    a runner's clock running behind the scheduler's. Cancels and deletes the runners hear directly."""
    until = [policy.dispatch_timeout.total_seconds(), 2 * FRESH_ORDER_SECONDS]
    if state.started_at is not None:
        until.append((policy.task_timeout - (now - state.started_at - state.paused)).total_seconds())
    return max(0.0, min(until) / 2)


def _next(state: TaskState, now: datetime, policy: Policy) -> list[Decision]:
    if state.deleted:
        return []
    if state.terminal:
        return [Decision(TaskDeleted())] if state.delete_requested else []

    if state.cancel_requested_at is not None:
        decisions: list[Decision] = []
        grace_over = now - state.cancel_requested_at >= policy.cancel_grace
        for s in state.plan:
            run = state.step(s)
            if run.status in ("pending", "waiting_retry") or (run.status in STEP_ACTIVE and grace_over):
                reason = (
                    "cancelled before it ran"
                    if run.status in ("pending", "waiting_retry")
                    else ("cancelled: the runner did not confirm within the grace period")
                )
                decisions.append(
                    Decision(StepCancelled(step=s, execution_id=run.execution_id, reason=reason))
                )
        if not state.active_steps() or grace_over:
            decisions.append(_finish(state, "cancelled", state.cancel_reason))
        return decisions

    if state.status == "pending":
        return []  # admission decides when it starts
    if state.status == "awaiting_review":
        return [Decision(event) for event in review.while_in_review(state, now, policy)]

    if state.started_at is not None and now - state.started_at - state.paused > policy.task_timeout:
        hours = policy.task_timeout.total_seconds() / 3600
        reason = f"task exceeded task_timeout_hours={hours:g} (started {state.started_at.isoformat()})"
        return [*_fail_active(state, reason, FailureCode.TASK_TIMEOUT), _finish(state, "failed", reason)]

    for s in state.plan:
        run = state.step(s)
        if run.status == "running" and run.last_heartbeat is not None:
            if now - run.last_heartbeat > policy.heartbeat_timeout:
                reason = (
                    f"zombie step: no heartbeat from runner {run.runner_id or 'unknown'} since "
                    f"{run.last_heartbeat.isoformat()} (timeout {policy.heartbeat_timeout.total_seconds():g}s)"
                )
                return [
                    Decision(
                        StepFailed(
                            step=s,
                            execution_id=run.execution_id or "",
                            error=reason,
                            retryable=True,
                            runner_id=run.runner_id,
                            code=FailureCode.ZOMBIE,
                        )
                    )
                ]
        if run.status == "scheduled" and run.scheduled_at is not None:
            if now - run.scheduled_at > policy.dispatch_timeout:
                # The command was lost or dead-lettered, or no runner has been free for that long.
                reason = (
                    f"no step runner started the step within {policy.dispatch_timeout.total_seconds():g}s "
                    f"of {run.scheduled_at.isoformat()} (are runners up? is the dead-letter queue empty?)"
                )
                return [
                    Decision(
                        StepFailed(
                            step=s,
                            execution_id=run.execution_id or "",
                            error=reason,
                            retryable=True,
                            code=FailureCode.DISPATCH_TIMEOUT,
                        )
                    )
                ]
        if run.status in STEP_ACTIVE:
            return []  # one step at a time; wait for it
        if run.status == "failed":
            if run.retryable and run.attempt < policy.retry_max_attempts:
                return [
                    Decision(
                        StepRetryScheduled(
                            step=s,
                            next_attempt=run.attempt + 1,
                            delay_seconds=retry_delay(policy, run.attempt),
                            reason=run.error or "retryable failure",
                        )
                    )
                ]
            return [_finish(state)]
        if run.status == "cancelled":
            return [_finish(state)]
        if run.status == "waiting_retry":
            if run.retry_at is not None and now < run.retry_at:
                return []
            return [_schedule(state, s, now, attempt=run.attempt + 1)]
        if run.status == "pending":
            disabled = step_disabled_reason(state.parameters, s)
            if disabled:
                return [Decision(StepSkipped(step=s, reason=disabled))]
            if review.needs_review(state, s):
                return [Decision(review.request(policy))]
            return [_schedule(state, s, now, attempt=1)]
    return [_finish(state)]


def _schedule(state: TaskState, step: StepName, now: datetime, *, attempt: int) -> Decision:
    run_number = state.runs.get(step, 0) + 1
    return Decision(
        StepScheduled(
            step=step,
            execution_id=make_execution_id(state.task_id, step, now, run_number),
            attempt=attempt,
            force=state.force,
        )
    )


def in_admission(state: TaskState) -> bool:
    """Whether `admit` looks at this task at all: a caller may keep only these (finished tasks stay in
    memory for minutes and would make every admission a scan of them)."""
    return state.status in ("pending", "in_progress") and not state.deleted


def admit(states: Iterable[TaskState], limit: int) -> list[str]:
    """Pending tasks that may start now, oldest first, keeping at most `limit` tasks in progress."""
    states = list(states)
    running = sum(1 for s in states if s.status == "in_progress" and not s.deleted)
    waiting = sorted(
        (
            s
            for s in states
            if s.status == "pending" and not s.deleted and not s.waiting and s.cancel_requested_at is None
        ),
        key=lambda s: (s.queued_at or s.created_at, s.task_id),
    )
    return [s.task_id for s in waiting[: max(limit - running, 0)]]


def start() -> Decision:
    return Decision(TaskStarted())


def waiting_for_a_runner(
    states: Iterable[TaskState], now: datetime, longer_than: timedelta
) -> list[tuple[str, str | None, StepName]]:
    """(task_id, execution_id, step) of steps scheduled longer ago than `longer_than` and not started."""
    return [
        (state.task_id, run.execution_id, step)
        for state in states
        for step, run in state.steps.items()
        if run.status == "scheduled" and run.scheduled_at is not None and now - run.scheduled_at > longer_than
    ]


# ---- retention ------------------------------------------------------------------------------------


def retention(
    finished: Iterable[Finished],
    now: datetime,
    policy: Policy,
    *,
    busy: Iterable[str] = (),
    limit: int = 100,
) -> list[tuple[str, Decision]]:
    """(task_id, decision) for finished tasks past a retention period: purge the log text, clean the files.

    A task counts from its last finish (a re-run starts the clock again). `busy` tasks (running again,
    or being deleted) are left alone; at most `limit` decisions, oldest first, so one pass stays bounded.
    """
    skip = set(busy)
    out: list[tuple[str, Decision]] = []
    for task in sorted(finished, key=lambda t: (t.finished_at, t.task_id)):
        if task.task_id in skip:
            continue
        age = now - task.finished_at
        if policy.log_retention is not None and not task.logs_purged and age > policy.log_retention:
            days = policy.log_retention.total_seconds() / 86400
            reason = f"log retention: finished {task.finished_at.isoformat()}, more than {days:g} days ago"
            out.append((task.task_id, Decision(TaskLogsPurged(reason=reason, retention_days=days))))
        if policy.file_retention is not None and not task.files_cleaned and age > policy.file_retention:
            days = policy.file_retention.total_seconds() / 86400
            reason = f"file retention: finished {task.finished_at.isoformat()}, more than {days:g} days ago"
            out.append((task.task_id, Decision(TaskFilesCleaned(reason=reason, retention_days=days))))
        if len(out) >= limit:
            break
    return out[:limit]


# ---- commands -----------------------------------------------------------------------------------


def _decide_command(
    state: TaskState | None, command: TaskCommand, task_id: str | None, policy: Policy
) -> list[Decision]:
    match command:
        case CreateTask():
            if task_id is None or state is not None:
                return []  # a redelivered create: the task exists already
            params = command.parameters
            try:
                steps = plan_for(params)
            except ValueError as exc:
                return [_warning(f"create ignored: {exc}")]
            return [
                Decision(
                    TaskCreated(
                        task_type=command.task_type,
                        parameters=params,
                        created_by=command.created_by,
                        output_directory=f"{policy.output_root}/{task_id}",
                        steps=steps,
                        skipped=skip_reasons(params, steps),
                    )
                )
            ]
        case ExecuteTask():
            if state is None or state.deleted:
                return []
            if not (state.terminal or state.waiting):
                return [_warning(f"execute ignored: the task is {state.status}")]
            if not scheduler_owns(state.task_id):
                return [_warning("execute ignored: manual runs are re-run with dpctl")]
            try:
                steps = plan(
                    command.execution_mode, command.step, first=command.from_step, last=command.to_step
                )
            except ValueError as exc:
                return [_warning(f"execute ignored: {exc}")]
            parameters = rerun_parameters(state.parameters, command.execution_mode, steps)
            return [
                Decision(
                    TaskRerunRequested(
                        steps=steps,
                        execution_mode=command.execution_mode,
                        force=command.force,
                        skipped=skip_reasons(parameters, steps),
                        backup_vector_tables=command.backup_vector_tables,
                        truncate_vector_tables=command.truncate_vector_tables,
                    )
                )
            ]
        case CancelTask():
            if state is None or state.deleted or state.terminal or state.cancel_requested_at is not None:
                return []
            return [Decision(TaskCancelRequested(reason=command.reason))]
        case DeleteTask():
            if state is None or state.deleted or state.delete_requested:
                return []
            return [Decision(TaskCancelRequested(reason="task deleted", delete_after=True))]
        case CompleteReview() | AbandonReview():
            return [Decision(event) for event in review.decide_review(state, command)]
    return []


def _warning(message: str) -> Decision:
    return Decision(LogEmitted(level="WARNING", message=message, module="scheduler", function="decide"))


# ---- who drives a task ----------------------------------------------------------------------------

MANUAL_PREFIX = "manual_"


def scheduler_owns(task_id: str) -> bool:
    """Tasks the scheduler drives; `manual_...` runs are driven by the command line that started them."""
    return not task_id.startswith(MANUAL_PREFIX)


def scheduler_drives(state: TaskState) -> bool:
    """The scheduler decides for its own tasks, and removes any finished task whose deletion was asked."""
    return scheduler_owns(state.task_id) or (state.terminal and state.delete_requested)


def needs_fresh_events(decision: Decision) -> bool:
    """A step failed for silence: before acting, re-read the store in case its heartbeats are only late."""
    event = decision.event
    return isinstance(event, StepFailed) and event.retryable and event.code == FailureCode.ZOMBIE
