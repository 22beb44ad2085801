"""The event catalog: facts about tasks and steps, each a frozen model tagged by `type`.

Producers: the scheduler decides task-level facts (created, started, step scheduled/skipped, retry,
finished, cancel requested, deleted); step runners report what a step did (started, heartbeat,
progress, log lines, outputs, and exactly one terminal event per execution).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from shared.llm_usage import LlmUsage
from shared.parameters import TaskParameters
from shared.vocabulary import FinalTaskStatus, LogLevel, StepName


class FailureCode(StrEnum):
    """Why a step failed, as a machine-readable kind: decisions branch on these, never on `error`'s wording."""

    ZOMBIE = "zombie"  # the runner stopped sending heartbeats
    DISPATCH_TIMEOUT = "dispatch_timeout"  # no runner started the step in time
    TASK_TIMEOUT = "task_timeout"  # the whole task ran out of time
    VALIDATION_BELOW_THRESHOLD = "validation_below_threshold"  # SQL validation passed too few pairs
    LLM_BUDGET_EXCEEDED = "llm_budget_exceeded"  # the task's max_llm_tokens is spent (never retried)


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TaskCreated(_Event):
    """A task was accepted; it waits as `pending` until the concurrency limit lets it start."""

    type: Literal["task_created"] = "task_created"
    task_type: str = "complete_workflow"
    parameters: TaskParameters
    created_by: str = "api"
    output_directory: str
    steps: list[StepName]
    # Why each step of the workflow this run does not do is not done (outside the range, disabled).
    skipped: dict[StepName, str] = Field(default_factory=dict)


class TaskStarted(_Event):
    type: Literal["task_started"] = "task_started"


class TaskRerunRequested(_Event):
    """An existing task runs again (all requested steps, or one), keeping its history; or a task created
    to wait for execute (the earlier implementation's create) runs for the first time."""

    type: Literal["task_rerun_requested"] = "task_rerun_requested"
    steps: list[StepName]
    execution_mode: Literal["complete", "single"]
    force: bool = False
    skipped: dict[StepName, str] = Field(default_factory=dict)  # as in TaskCreated
    # The run's training-store options (None: the task's own, as created).
    backup_vector_tables: bool | None = None
    truncate_vector_tables: bool | None = None


class StepScheduled(_Event):
    type: Literal["step_scheduled"] = "step_scheduled"
    step: StepName
    execution_id: str
    attempt: int = Field(ge=1)
    force: bool = False


class StepSkipped(_Event):
    type: Literal["step_skipped"] = "step_skipped"
    step: StepName
    reason: str


class StepRetryScheduled(_Event):
    """A retryable failure: the step runs again after `delay_seconds`."""

    type: Literal["step_retry_scheduled"] = "step_retry_scheduled"
    step: StepName
    next_attempt: int
    delay_seconds: float
    reason: str


class StepStarted(_Event):
    type: Literal["step_started"] = "step_started"
    step: StepName
    execution_id: str
    attempt: int = 1
    runner_id: str


class StepHeartbeat(_Event):
    type: Literal["step_heartbeat"] = "step_heartbeat"
    step: StepName
    execution_id: str
    runner_id: str


class StepProgress(_Event):
    type: Literal["step_progress"] = "step_progress"
    step: StepName
    execution_id: str
    percent: float = Field(ge=0, le=100)
    message: str | None = None


class LogEmitted(_Event):
    type: Literal["log_emitted"] = "log_emitted"
    level: LogLevel = "INFO"
    message: str
    step: StepName | None = None
    execution_id: str | None = None
    module: str | None = None
    function: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)


class OutputRegistered(_Event):
    type: Literal["output_registered"] = "output_registered"
    step: StepName | None = None
    execution_id: str | None = None
    file_name: str
    file_type: str
    relative_path: str
    size: int = Field(ge=0)
    sha256: str
    is_primary: bool = False
    description: str | None = None


class StepSucceeded(_Event):
    type: Literal["step_succeeded"] = "step_succeeded"
    step: StepName
    execution_id: str
    summary: dict[str, Any] = Field(default_factory=dict)
    # Added later: events stored before it decode with no usage.
    llm_usage: list[LlmUsage] = Field(default_factory=list)


class StepFailed(_Event):
    """The step did not do its job; `retryable` says whether running it again may help."""

    type: Literal["step_failed"] = "step_failed"
    step: StepName
    execution_id: str
    error: str
    retryable: bool = False
    runner_id: str | None = None
    code: str | None = None  # a FailureCode (runners may send kinds of their own)
    llm_usage: list[LlmUsage] = Field(default_factory=list)  # what the execution spent before it failed


class StepCancelled(_Event):
    type: Literal["step_cancelled"] = "step_cancelled"
    step: StepName
    execution_id: str | None = None
    reason: str = "cancelled"


class TaskCancelRequested(_Event):
    type: Literal["task_cancel_requested"] = "task_cancel_requested"
    reason: str = "cancelled by user"
    delete_after: bool = False


class TaskFinished(_Event):
    """The task reached a terminal status; `result` sums up what each step reported."""

    type: Literal["task_finished"] = "task_finished"
    status: FinalTaskStatus
    error_message: str | None = None
    result: dict[str, Any] = Field(default_factory=dict)


class TaskDeleted(_Event):
    """The task's records and files are removed; the event history keeps this tombstone."""

    type: Literal["task_deleted"] = "task_deleted"


class TaskLogsPurged(_Event):
    """Log retention: the log text of a finished task is removed (log rows, the log events before this
    one, data_pipeline.log); the task record, its steps and outputs stay."""

    type: Literal["task_logs_purged"] = "task_logs_purged"
    reason: str
    retention_days: float


class TaskFilesCleaned(_Event):
    """File retention: a finished task's directory is removed; its executions get `files_cleaned` and
    its outputs stop being downloadable. The task record and its log rows stay."""

    type: Literal["task_files_cleaned"] = "task_files_cleaned"
    reason: str
    retention_days: float


class ReviewRequested(_Event):
    """The steps before training_load are done and the task waits, as `awaiting_review`, for a person to
    approve the question/SQL pairs step 4 may load (parameter review_before_load)."""

    type: Literal["review_requested"] = "review_requested"
    timeout_days: float | None = None  # DP_REVIEW_TIMEOUT_DAYS: after that the review is abandoned


ReviewDecision = Literal["approve", "reject", "edit"]
PairStatus = Literal["pending", "approved", "rejected"]


class PairReviewed(_Event):
    """A person decided on one pair: who (token name and role, never the token), before and after."""

    type: Literal["pair_reviewed"] = "pair_reviewed"
    pair_id: str
    decision: ReviewDecision
    status: PairStatus  # the pair's state after the decision (a failing edit leaves it pending)
    question_before: str
    question_after: str
    sql_before: str
    sql_after: str
    sql_valid: bool | None = None  # the SQL gate's and EXPLAIN's verdict on sql_after (None: not checked)
    sql_error: str | None = None
    actor: str
    actor_role: str
    bulk: bool = False  # one of a bulk decision by filter


class ReviewCompleted(_Event):
    """The review is done: step 4 loads exactly the approved pairs (the pair files were rewritten)."""

    type: Literal["review_completed"] = "review_completed"
    actor: str
    actor_role: str
    approved: int = Field(ge=0)
    rejected: int = Field(ge=0)
    undecided: int = Field(ge=0)  # not loaded
    edited: int = Field(ge=0)


class ReviewAbandoned(_Event):
    """Nothing is loaded: a person abandoned the review, or it waited longer than DP_REVIEW_TIMEOUT_DAYS."""

    type: Literal["review_abandoned"] = "review_abandoned"
    reason: str
    actor: str | None = None  # None: the scheduler, for a timed-out review
    actor_role: str | None = None
    timed_out: bool = False


EventPayload = Annotated[
    TaskCreated
    | TaskStarted
    | TaskRerunRequested
    | StepScheduled
    | StepSkipped
    | StepRetryScheduled
    | StepStarted
    | StepHeartbeat
    | StepProgress
    | LogEmitted
    | OutputRegistered
    | StepSucceeded
    | StepFailed
    | StepCancelled
    | TaskCancelRequested
    | TaskFinished
    | TaskDeleted
    | TaskLogsPurged
    | TaskFilesCleaned
    | ReviewRequested
    | PairReviewed
    | ReviewCompleted
    | ReviewAbandoned,
    Field(discriminator="type"),
]

EVENT_CLASSES: tuple[type[BaseModel], ...] = get_args(get_args(EventPayload)[0])
"""The catalog: every event class, in the order of the union above."""
EVENT_TYPES: tuple[str, ...] = tuple(c.model_fields["type"].default for c in EVENT_CLASSES)
"""Every event's `type` tag; consumers that dispatch on events check their tables against it."""

RUNNING_STEP_TYPES: frozenset[str] = frozenset(
    c.model_fields["type"].default
    for c in (
        StepScheduled, StepSkipped, StepRetryScheduled, StepStarted, StepHeartbeat, StepProgress,
        LogEmitted, OutputRegistered,
    )
)  # fmt: skip
"""A step on its way: its order, its try's start, heartbeats, progress, log lines and outputs. Not its
outcome (a runner's "still wanted?" check reads that back before it runs a redelivered order), nor
anything about the task as a whole. The collector lets these alone wait briefly to share a transaction
(services/log_collector/handlers.py)."""


def check_dispatch_table(
    owner: str, handled: Iterable[type[BaseModel]], ignored: Iterable[type[BaseModel]]
) -> None:
    """A consumer's handler table against the catalog: every event is handled or ignored on purpose, and
    nothing else is named. Called at import, so a new event type or a handler registered for the wrong
    class stops the service at start-up instead of dropping events silently."""
    catalog, handled, ignored = set(EVENT_CLASSES), set(handled), set(ignored)
    problems = []
    if missing := catalog - handled - ignored:
        problems.append(f"no handler and not ignored: {sorted(c.__name__ for c in missing)}")
    if unknown := (handled | ignored) - catalog:
        problems.append(f"not in the event catalog: {sorted(c.__name__ for c in unknown)}")
    if both := handled & ignored:
        problems.append(f"handled and ignored: {sorted(c.__name__ for c in both)}")
    if problems:
        raise TypeError(f"{owner} handler table: " + "; ".join(problems))
