"""The scheduler's state and decisions, as pure functions of events, commands and the clock.

`evolve(state, envelope)` folds one event into a task's state; `decide(state, now, policy)` says
what should happen next for a task (level-triggered: it looks at the state, not at what just
happened, so a decision lost in a crash is simply made again), and `decide(..., command=...)` what a
command from the gateway leads to; `admit(states, limit)` picks which pending tasks may start.
Every driver calls these: the scheduler service, and `dpctl workflow run` for manual runs.
Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from shared.commands import CancelTask, CreateTask, DeleteTask, ExecuteTask
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
    TaskFinished,
    TaskLogsPurged,
    TaskRerunRequested,
    TaskStarted,
)
from shared.ids import execution_id as make_execution_id
from shared.lifecycle import Finished, is_old_execution, step_finished, task_finished
from shared.messages import EventEnvelope
from shared.parameters import TaskParameters
from shared.retry import backoff
from shared.steps import step_by_number, step_number
from shared.vocabulary import (
    STEP_ACTIVE,
    STEP_ORDER,
    TASK_TERMINAL,  # noqa: F401 (re-exported: tests name the terminal set through the domain)
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

    def step(self, name: StepName) -> StepRun:
        return self.steps.get(name, StepRun())

    @property
    def terminal(self) -> bool:
        return task_finished(self.status)

    def active_steps(self) -> list[StepName]:
        return [s for s in self.plan if self.step(s).status in STEP_ACTIVE]


@dataclass(frozen=True)
class Decision:
    """An event the scheduler emits; for StepScheduled the handler also sends the RunStep command."""

    event: BaseModel


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
    return state


# ---- decide ---------------------------------------------------------------------------------------


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


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def step_disabled_reason(parameters: TaskParameters, step: StepName) -> str | None:
    """Complete mode skips steps turned off by parameters; single mode runs what was asked."""
    if parameters.execution_mode != "complete":
        return None
    if step is StepName.SQL_VALIDATION and not parameters.enable_sql_validation:
        return "disabled by enable_sql_validation=false"
    if step is StepName.TRAINING_LOAD and not parameters.enable_training_data_load:
        return "disabled by enable_training_data_load=false"
    return None


def llm_tokens_used(state: TaskState) -> int:
    """LLM tokens this run has spent so far: what the next step may still spend is max_llm_tokens minus this."""
    return sum(state.step(s).llm_tokens for s in state.plan)


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
    derived, derived_error = derive_status(state)
    final = status or derived
    result = {s.value: state.step(s).status for s in state.plan}
    return Decision(TaskFinished(status=final, error_message=error or derived_error, result=result))


TaskCommand = CreateTask | ExecuteTask | CancelTask | DeleteTask


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

    if state.started_at is not None and now - state.started_at > policy.task_timeout:
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


# ---- commands -------------------------------------------------------------------------------------


def plan(
    execution_mode: str,
    step: StepName | None = None,
    *,
    first: StepName | None = None,
    last: StepName | None = None,
) -> list[StepName]:
    """The steps a run covers: in complete mode the range `first`..`last` (default: every step), in
    single mode the one asked for (default the first; single is the range from = to).

    Raises ValueError when `first` comes after `last`.
    """
    if execution_mode != "complete":
        return [step or first or STEP_ORDER[0]]
    lo = step_number(first) if first else 1
    hi = step_number(last) if last else len(STEP_ORDER)
    if lo > hi:
        raise ValueError(
            f"from_step {lo} ({STEP_ORDER[lo - 1].value}) comes after to_step {hi} ({STEP_ORDER[hi - 1].value})"
        )
    return list(STEP_ORDER[lo - 1 : hi])


def plan_for(parameters: TaskParameters) -> list[StepName]:
    """The plan a task is created with, from its parameters (single_step, or from_step..to_step)."""
    if parameters.execution_mode == "single":
        return plan("single", step_by_number(parameters.single_step or parameters.from_step or 1))
    return plan(
        "complete",
        first=step_by_number(parameters.from_step) if parameters.from_step else None,
        last=step_by_number(parameters.to_step) if parameters.to_step else None,
    )


def skip_reasons(parameters: TaskParameters, steps: list[StepName]) -> dict[StepName, str]:
    """Why each step of the workflow that a run with this plan does not do is left out.

    Steps outside the plan are not run at all; steps in it that parameters disable are skipped when
    their turn comes (`step_disabled_reason`), and are named here too so the plan shows it up front.
    """
    reasons: dict[StepName, str] = {}
    planned = [step_number(s) for s in steps]
    for s in STEP_ORDER:
        if s not in steps:
            if parameters.execution_mode == "single" and len(steps) == 1:
                reasons[s] = f"single mode runs step {planned[0]} ({steps[0].value}) only"
            else:
                reasons[s] = f"outside the requested range: steps {planned[0]}-{planned[-1]}"
        elif disabled := step_disabled_reason(parameters, s):
            reasons[s] = disabled
    return reasons


def rerun_parameters(
    parameters: TaskParameters, execution_mode: str, steps: list[StepName]
) -> TaskParameters:
    """A task's parameters for a run of `steps` in `execution_mode` (what TaskRerunRequested changes)."""
    single = execution_mode == "single" and len(steps) == 1
    whole = single or list(steps) == list(STEP_ORDER)
    return parameters.model_copy(
        update={
            "execution_mode": execution_mode,
            "single_step": step_number(steps[0]) if single else None,
            "from_step": None if whole else step_number(steps[0]),
            "to_step": None if whole else step_number(steps[-1]),
        }
    )


def run_options(parameters: TaskParameters, event: TaskRerunRequested, *, first_run: bool) -> TaskParameters:
    """The training-store options of a run: as the execute says; else, on a waiting task's first run,
    as its create said, and on a re-run off (removing or copying the store is asked for each time)."""

    def option(given: bool | None, created: bool) -> bool:
        return given if given is not None else (created and first_run)

    return parameters.model_copy(
        update={
            "wait_for_execute": False,
            "backup_vector_tables": option(event.backup_vector_tables, parameters.backup_vector_tables),
            "truncate_vector_tables": option(event.truncate_vector_tables, parameters.truncate_vector_tables),
        }
    )


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
