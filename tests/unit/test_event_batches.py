"""Several events of one task in one broker message (shared/event_batches.py, shared.messages.EventBatch):
which events may share a message, and that a batch decodes to its events, in order."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from shared.commands import RunStep, Tick
from shared.event_batches import batched
from shared.events import (
    LogEmitted,
    StepHeartbeat,
    StepScheduled,
    StepStarted,
    StepSucceeded,
    TaskDeleted,
    TaskStarted,
)
from shared.messages import (
    MAX_BATCH_EVENTS,
    CommandEnvelope,
    EventBatch,
    EventEnvelope,
    decode_message,
    decode_messages,
    encode,
    partition_slot,
    step_commands,
)
from shared.parameters import TaskParameters
from shared.steps import StepName
from shared.topology import routed_alike

TASK = "task_20260101_000000_abcdef"
OTHER = "task_20260101_000000_fedcba"
STEP = StepName.DDL_GENERATION


def _events(*payloads: BaseModel, task_id: str = TASK) -> list[EventEnvelope]:
    return [EventEnvelope(task_id=task_id, producer="p", payload=p) for p in payloads]  # type: ignore[arg-type]


def _started() -> StepStarted:
    return StepStarted(step=STEP, execution_id="e1", runner_id="r1")


def _shape(messages: list[EventEnvelope | EventBatch]) -> list[list[str]]:
    return [[e.type for e in (m.events if isinstance(m, EventBatch) else (m,))] for m in messages]


def test_a_steps_start_travels_with_its_end_which_the_same_queues_bind() -> None:
    messages = batched(_events(_started(), StepSucceeded(step=STEP, execution_id="e1")))
    assert _shape(messages) == [["step_started", "step_succeeded"]]
    (batch,) = messages
    assert batch.routing_key == f"task.{TASK}.step_succeeded.{partition_slot(TASK)}"


def test_an_event_a_queue_binds_never_travels_under_a_key_that_queue_does_not_bind() -> None:
    # The scheduler binds step_started, not log_emitted: the start goes alone, ahead of the line.
    assert _shape(batched(_events(_started(), LogEmitted(message="m")))) == [
        ["step_started"],
        ["log_emitted"],
    ]
    # A line nobody binds selectively rides ahead of anything; the runners' control queue binds task_deleted.
    assert _shape(batched(_events(LogEmitted(message="m"), TaskDeleted()))) == [
        ["log_emitted", "task_deleted"]
    ]
    assert _shape(batched(_events(TaskDeleted(), LogEmitted(message="m")))) == [
        ["task_deleted"],
        ["log_emitted"],
    ]
    assert not routed_alike("step_heartbeat", "task_deleted") and routed_alike("task_started", "step_started")
    assert routed_alike("step_heartbeat", "step_failed")


def test_each_tasks_events_keep_their_order_and_a_batch_holds_at_most_its_limit() -> None:
    lines = [LogEmitted(message=str(i)) for i in range(MAX_BATCH_EVENTS + 3)]
    mixed = [*_events(TaskStarted()), *_events(LogEmitted(message="x"), task_id=OTHER), *_events(*lines)]
    messages = batched(mixed)
    assert [len(m.events) if isinstance(m, EventBatch) else 1 for m in messages] == [MAX_BATCH_EVENTS, 4, 1]
    ours = [
        e for m in messages if m.task_id == TASK for e in (m.events if isinstance(m, EventBatch) else (m,))
    ]
    assert [e.event_id for e in ours] == [e.event_id for e in mixed if e.task_id == TASK]


def test_a_batch_decodes_to_its_events_in_order_and_carries_one_task_only() -> None:
    events = _events(_started(), StepHeartbeat(step=STEP, execution_id="e1", runner_id="r1"))
    body = encode(EventBatch(events=tuple(events)))
    assert isinstance(decode_message(body), EventBatch)
    assert list(decode_messages(body)) == events
    with pytest.raises(ValidationError, match="one task"):
        EventBatch(events=(events[0], *_events(TaskStarted(), task_id=OTHER)))
    with pytest.raises(ValidationError):
        EventBatch(events=(events[0],))  # one event travels as itself


def _order(scheduled: EventEnvelope, **changed: object) -> CommandEnvelope:
    step: StepScheduled = scheduled.payload  # type: ignore[assignment]
    fields = {"step": step.step, "execution_id": step.execution_id, "attempt": step.attempt, **changed}
    parameters = TaskParameters(db_connection="postgresql://u@h/db", business_context="b")
    return CommandEnvelope(
        task_id=scheduled.task_id, producer="p", payload=RunStep(parameters=parameters, **fields)
    )  # type: ignore[arg-type]


def test_a_step_order_ends_its_message_and_carries_the_run_step_to_the_steps_queue_only() -> None:
    started, scheduled, line = _events(
        TaskStarted(), StepScheduled(step=STEP, execution_id="e1", attempt=1), LogEmitted(message="m")
    )
    order = _order(scheduled)
    messages = batched([started, scheduled, line], {scheduled.event_id: order})
    assert _shape(messages) == [["task_started", "step_scheduled"], ["log_emitted"]]
    first = messages[0]
    assert isinstance(first, EventBatch) and first.command == order
    assert first.routing_key == f"task.{TASK}.step_scheduled.{partition_slot(TASK)}"
    body = encode(first)
    # The collector, the scheduler and the streams read the events; the step runner reads the command.
    assert list(decode_messages(body)) == [started, scheduled]
    assert list(step_commands(decode_message(body))) == [order]
    alone = batched([scheduled], {scheduled.event_id: order})
    assert isinstance(alone[0], EventBatch) and alone[0].events == (scheduled,)  # an order of one event
    assert list(step_commands(decode_message(encode(started)))) == [started]  # refused by the runner


def test_a_batch_carries_only_the_run_step_of_the_step_scheduled_that_ends_it() -> None:
    started, scheduled = _events(TaskStarted(), StepScheduled(step=STEP, execution_id="e1", attempt=1))
    for wrong in (
        _order(scheduled, execution_id="e2"),
        _order(scheduled, attempt=2),
        _order(scheduled, step=StepName.QA_GENERATION),
    ):
        with pytest.raises(ValidationError, match="the run_step of the step_scheduled"):
            EventBatch(events=(started, scheduled), command=wrong)
    with pytest.raises(ValidationError, match="the run_step of the step_scheduled"):
        EventBatch(events=(scheduled, started), command=_order(scheduled))  # not the last event
    with pytest.raises(ValidationError, match="the run_step of the step_scheduled"):
        EventBatch(events=(scheduled,), command=CommandEnvelope(task_id=TASK, producer="p", payload=Tick()))
