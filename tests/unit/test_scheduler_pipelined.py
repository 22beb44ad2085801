"""The scheduler's pipelined publishing (issue 11, goal 2): what it may not get wrong while it no longer
waits for each confirm in turn."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from pydantic import BaseModel, ValidationError

from services.scheduler.adapters.pipelined import OneAtATime, PipelinedPublisher
from shared.broker import STEPS_KEY
from shared.commands import RunStep, Tick
from shared.event_batches import batched
from shared.events import LogEmitted, StepScheduled, TaskCancelRequested, TaskStarted
from shared.messages import CommandEnvelope, EventBatch, EventEnvelope, unpack
from shared.parameters import TaskParameters
from shared.steps import StepName

TASK = "task_20260101_000000_abcdef"
OTHER = "task_20260101_000000_fedcba"


class ScriptedPublisher:
    """Records what is written, in order; each publish waits for its confirm until the test releases it."""

    producer = "scheduler"

    def __init__(self) -> None:
        self.written: list[str] = []
        self.confirms: list[asyncio.Future[None]] = []

    async def _write(self, what: str) -> None:
        self.written.append(what)
        confirm = asyncio.get_running_loop().create_future()
        self.confirms.append(confirm)
        await confirm

    def envelope(self, task_id: str, payload: BaseModel) -> EventEnvelope:
        return EventEnvelope(task_id=task_id, producer=self.producer, payload=payload)  # type: ignore[arg-type]

    async def publish_events(
        self, events: list[EventEnvelope], orders: dict[uuid.UUID, CommandEnvelope] | None = None
    ) -> None:
        """As the real publisher: the messages `batched` makes of them, written in order."""
        await asyncio.gather(*(self._write(_describe(message)) for message in batched(events, orders)))


def _describe(message: EventEnvelope | EventBatch) -> str:
    """`event:a+b`: one message of events a and b (their log text, or their type); `+order` when it
    carries a step's run_step command."""
    described = "event:" + "+".join(getattr(e.payload, "message", e.type) for e in unpack(message))  # type: ignore[union-attr]
    return described + ("+order" if isinstance(message, EventBatch) and message.command else "")


def _run(scheduled: StepScheduled) -> RunStep:
    parameters = TaskParameters(
        db_connection="postgresql://u@h/db", table_list=["public.a"], business_context="b"
    )
    return RunStep(
        step=scheduled.step,
        execution_id=scheduled.execution_id,
        attempt=scheduled.attempt,
        parameters=parameters,
    )


async def _settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)  # yield to the loop: let the publisher's tasks run


async def test_events_go_out_without_waiting_and_a_step_order_with_its_step_scheduled_at_once() -> None:
    broker = ScriptedPublisher()
    publisher = PipelinedPublisher(broker)  # type: ignore[arg-type]
    await publisher.event(TASK, LogEmitted(message="a"))
    scheduled = StepScheduled(step=StepName.DDL_GENERATION, execution_id="exec_1", attempt=1)
    await publisher.event(TASK, scheduled)
    await publisher.event(OTHER, LogEmitted(message="c"))
    await publisher.command(STEPS_KEY, _run(scheduled), TASK)
    await publisher.event(TASK, LogEmitted(message="after"))
    await _settle()
    # One message, written at once without waiting for a confirm: the step_scheduled ends it and it
    # carries the command. The other task's event goes out with it, the later event of the task after it.
    assert broker.written == ["event:a+step_scheduled+order", "event:c"]
    confirmed = asyncio.ensure_future(publisher.take_pending())
    await _settle()
    assert broker.written == ["event:a+step_scheduled+order", "event:c", "event:after"]
    for confirm in broker.confirms[1:]:
        confirm.set_result(None)
    await _settle()
    assert not confirmed.done()  # the order's own confirm is still missing: no ack yet
    broker.confirms[0].set_result(None)
    await confirmed


async def test_a_command_is_refused_unless_it_follows_the_step_scheduled_it_carries_out() -> None:
    publisher = PipelinedPublisher(ScriptedPublisher())  # type: ignore[arg-type]
    scheduled = StepScheduled(step=StepName.DDL_GENERATION, execution_id="exec_1", attempt=1)
    with pytest.raises(ValueError, match="not the order of a step_scheduled"):
        await publisher.command(STEPS_KEY, _run(scheduled), TASK)  # nothing decided for the task
    await publisher.event(TASK, scheduled)
    with pytest.raises(ValueError, match="not the order"):
        await publisher.command("scheduler", Tick(), TASK)
    other = StepScheduled(step=StepName.DDL_GENERATION, execution_id="exec_2", attempt=1)
    await publisher.command(STEPS_KEY, _run(other), TASK)  # another execution's: the batch refuses it
    with pytest.raises(ValidationError, match="the run_step of the step_scheduled that ends it"):
        await publisher.take_pending()


async def test_a_handled_messages_decisions_go_out_per_task_split_where_a_queue_binds_one_only() -> None:
    broker = ScriptedPublisher()
    publisher = PipelinedPublisher(broker)  # type: ignore[arg-type]
    await publisher.event(TASK, TaskStarted())
    await publisher.event(OTHER, LogEmitted(message="other"))
    await publisher.event(TASK, LogEmitted(message="warn"))
    # The runners' control queue binds task_cancel_requested: it cannot travel under another's key.
    await publisher.event(TASK, TaskCancelRequested())
    await publisher.event(TASK, LogEmitted(message="after"))
    confirmed = asyncio.ensure_future(publisher.take_pending())
    await _settle()
    assert broker.written == [
        "event:task_started+warn+task_cancel_requested",
        "event:after",
        "event:other",
    ]
    for confirm in broker.confirms:
        confirm.set_result(None)
    await confirmed


async def test_a_refused_confirm_fails_the_message_and_the_state_is_rebuilt_before_the_next() -> None:
    broker = ScriptedPublisher()
    publisher = PipelinedPublisher(broker)  # type: ignore[arg-type]

    class Scheduler:
        synced = True
        handled: list[str] = []

        async def handle(self, envelope: EventEnvelope | CommandEnvelope) -> None:
            self.handled.append(envelope.type)
            await publisher.event(TASK, LogEmitted(message=envelope.type))

    scheduler = Scheduler()
    handle = OneAtATime(scheduler, publisher)
    first = asyncio.ensure_future(handle(CommandEnvelope(task_id=None, producer="t", payload=Tick())))
    second = asyncio.ensure_future(
        handle(EventEnvelope(task_id=TASK, producer="t", payload=LogEmitted(message="x")))
    )
    await _settle()
    # The second message is decided while the first one's confirm is still on its way...
    assert scheduler.handled == ["tick", "log_emitted"] and not first.done() and not second.done()
    broker.confirms[0].set_exception(ConnectionError("channel closed"))
    with pytest.raises(ConnectionError):
        await first
    assert scheduler.synced is False  # ...so a lost decision makes the scheduler decide again from the store
    broker.confirms[1].set_result(None)
    await second
