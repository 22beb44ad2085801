"""The scheduler's queue binds only the event types it decides on (issue 11, goal 2): each event type is
either bound, decided by the scheduler itself (applied when it makes the decision), or one that never
changes a decision. A new event type fails here until someone decides which it is."""

from __future__ import annotations

import typing
from datetime import UTC, datetime, timedelta

from services.scheduler.domain import decide
from services.scheduler.state import Policy, evolve
from shared.broker import SCHEDULER_EVENT_TYPES
from shared.events import (
    EventPayload,
    LogEmitted,
    OutputRegistered,
    StepHeartbeat,
    StepProgress,
    StepScheduled,
    StepStarted,
    TaskCreated,
    TaskStarted,
)
from shared.messages import EventEnvelope
from shared.parameters import TaskParameters
from shared.steps import STEP_ORDER, StepName

# Events only the scheduler emits: it folds each into its state when it publishes it.
DECIDED_BY_THE_SCHEDULER = {
    "task_created",
    "task_started",
    "task_rerun_requested",
    "step_scheduled",
    "step_skipped",
    "step_retry_scheduled",
    "task_cancel_requested",
    "task_finished",
    "task_deleted",
    "task_logs_purged",
    "task_files_cleaned",
    "review_requested",
    "review_completed",
    "review_abandoned",
}
# Events that never change what the scheduler decides (checked below).
NOT_FOR_DECISIONS = {"log_emitted", "output_registered", "step_progress", "pair_reviewed"}

TASK = "task_20260101_000000_abcdef"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _event_types() -> set[str]:
    union = typing.get_args(EventPayload)[0]
    return {model.model_fields["type"].default for model in typing.get_args(union)}


def test_every_event_type_is_bound_decided_by_the_scheduler_or_irrelevant_to_decisions() -> None:
    bound = set(SCHEDULER_EVENT_TYPES)
    assert not bound & (DECIDED_BY_THE_SCHEDULER | NOT_FOR_DECISIONS)
    unclassified = _event_types() - bound - DECIDED_BY_THE_SCHEDULER - NOT_FOR_DECISIONS
    assert not unclassified, f"bind these to the scheduler's queue or classify them: {unclassified}"


def _envelope(payload: object, at: datetime) -> EventEnvelope:
    return EventEnvelope(task_id=TASK, producer="t", payload=payload, occurred_at=at)  # type: ignore[arg-type]


def test_events_the_scheduler_does_not_receive_do_not_change_its_decisions() -> None:
    step = StepName.DDL_GENERATION
    execution = f"{TASK}_step_ddl_generation_exec_20260101_000000"
    created = TaskCreated(
        parameters=TaskParameters(db_connection="postgresql://u@h/db", business_context="b"),
        output_directory="/x",
        steps=list(STEP_ORDER),
    )
    state = None
    for i, payload in enumerate(
        [
            created,
            TaskStarted(),
            StepScheduled(step=step, execution_id=execution, attempt=1),
            StepStarted(step=step, execution_id=execution, attempt=1, runner_id="r"),
            StepHeartbeat(step=step, execution_id=execution, runner_id="r"),
        ]
    ):
        state = evolve(state, _envelope(payload, T0 + timedelta(seconds=i)))
    assert state is not None
    policy = Policy(heartbeat_timeout=timedelta(seconds=60))
    later = T0 + timedelta(seconds=30)
    for payload in (
        LogEmitted(level="ERROR", message="x", step=step, execution_id=execution),
        OutputRegistered(
            step=step,
            execution_id=execution,
            file_name="a",
            file_type="txt",
            relative_path="a",
            size=1,
            sha256="0",
        ),
    ):
        assert evolve(state, _envelope(payload, later)) == state
    # Progress only refreshes liveness, as the runner's own heartbeats (every few seconds) do anyway.
    progressed = evolve(state, _envelope(StepProgress(step=step, execution_id=execution, percent=50), later))
    beaten = evolve(state, _envelope(StepHeartbeat(step=step, execution_id=execution, runner_id="r"), later))
    assert progressed == beaten
    assert progressed is not None
    for now in (later, T0 + timedelta(seconds=200)):
        assert decide(progressed, now, policy) == decide(beaten, now, policy)  # type: ignore[arg-type]
