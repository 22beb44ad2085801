"""A try's step_started held back (services/step_runner/held_start.py): a short step's start and end go
as one message, a longer one's start goes alone (ahead of anything else, or when the hold is over), and
nothing of a try goes out after a start that was not published."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aiormq
import pytest

from services.step_runner.held_start import HeldStart
from shared.event_batches import batched
from shared.events import LogEmitted, StepStarted, StepSucceeded
from shared.messages import EventBatch, EventEnvelope, unpack
from shared.steps import StepName

TASK = "task_20260101_000000_abcdef"
STEP = StepName.DDL_GENERATION


class _Publisher:
    """Records each message as the list of its event types; can refuse the next publish."""

    producer = "step_runner:r1"

    def __init__(self) -> None:
        self.messages: list[list[str]] = []
        self.refuse = False

    def envelope(self, task_id: str, payload: object) -> EventEnvelope:
        return EventEnvelope(task_id=task_id, producer=self.producer, payload=payload)  # type: ignore[arg-type]

    async def publish_event(self, message: EventEnvelope | EventBatch) -> None:
        if self.refuse:
            raise aiormq.exceptions.ChannelInvalidStateError("channel closed")
        self.messages.append([e.type for e in unpack(message)])

    async def publish_events(self, events: Sequence[EventEnvelope]) -> None:
        for message in batched(events):
            await self.publish_event(message)


def _held(publisher: _Publisher, hold: float = 60.0) -> HeldStart:
    return HeldStart(publisher, TASK, hold)  # type: ignore[arg-type]


START = StepStarted(step=STEP, execution_id="e1", runner_id="r1")
END = StepSucceeded(step=STEP, execution_id="e1")


async def test_a_short_steps_start_and_end_are_one_message() -> None:
    publisher = _Publisher()
    held = _held(publisher)
    await held.emit(START)
    assert publisher.messages == []
    await held.emit(END)
    await held.close()
    assert publisher.messages == [["step_started", "step_succeeded"]]


async def test_anything_else_sends_the_start_alone_ahead_of_it() -> None:
    publisher = _Publisher()
    held = _held(publisher)
    await held.emit(START)
    await held.emit(LogEmitted(message="working"))
    await held.emit(END)
    assert publisher.messages == [["step_started"], ["log_emitted"], ["step_succeeded"]]


async def test_the_start_goes_alone_when_the_hold_is_over() -> None:
    publisher = _Publisher()
    held = _held(publisher, hold=0.01)
    await held.emit(START)
    for _ in range(200):
        if publisher.messages:
            break
        await asyncio.sleep(0.01)  # polling: the hold's timer publishes on its own
    assert publisher.messages == [["step_started"]]
    await held.emit(END)
    assert publisher.messages == [["step_started"], ["step_succeeded"]]


async def test_nothing_goes_out_after_a_start_that_was_not_published() -> None:
    publisher = _Publisher()
    held = _held(publisher, hold=0.01)
    await held.emit(START)
    publisher.refuse = True
    for _ in range(200):
        if held._releasing is not None and held._releasing.done():
            break
        await asyncio.sleep(0.01)  # polling: the hold's timer tries to publish on its own
    publisher.refuse = False
    with pytest.raises(aiormq.exceptions.ChannelInvalidStateError):
        await held.emit(LogEmitted(message="after"))
    with pytest.raises(aiormq.exceptions.ChannelInvalidStateError):
        await held.emit(END)
    assert publisher.messages == []


async def test_an_interrupted_try_leaves_its_held_start_unsent() -> None:
    publisher = _Publisher()
    held = _held(publisher, hold=0.05)
    await held.emit(START)
    await held.close()
    await asyncio.sleep(0.1)  # longer than the hold: the timer would have fired
    assert publisher.messages == []
