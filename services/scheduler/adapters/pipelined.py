"""The scheduler's publisher: decisions go out without waiting for each confirm in turn.

Waiting for the broker's confirm of every event before deciding the next one made the scheduler's one
consumer spend most of its time idle (a dozen sequential confirms per task). Here `event` returns at
once; the events a handled message leads to are written together (a task's consecutive ones in one
message), when it is decided or when a step is ordered. Their confirms are collected per handled message
(`take_pending`), and that message is acked only once all of them arrived (services/scheduler/bootstrap.py).
Order still holds: one channel writes the frames in the order they were published, and a `run_step`
command travels in the message of the `step_scheduled` it carries out (a step order,
shared.messages.EventBatch), so a runner can never report on a step whose `step_scheduled` the broker
does not hold, and the order costs no confirm to wait for before it goes out.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from typing import Any, Protocol

from pydantic import BaseModel

from shared.broker import STEPS_KEY, Publisher
from shared.messages import CommandEnvelope, EventEnvelope


class _Handles(Protocol):
    synced: bool

    async def handle(self, envelope: EventEnvelope | CommandEnvelope) -> None: ...


class PipelinedPublisher:
    def __init__(self, publisher: Publisher) -> None:
        self._publisher = publisher
        self._pending: list[asyncio.Future[Any]] = []
        self._outbox: list[EventEnvelope] = []  # events decided, not written yet

    async def event(self, task_id: str, payload: BaseModel, **fields: Any) -> EventEnvelope:
        message = self._publisher.envelope(task_id, payload, **fields)
        self._outbox.append(message)
        return message

    async def command(self, routing_key: str, payload: BaseModel, task_id: str | None) -> CommandEnvelope:
        """The scheduler's one command, `run_step`, right after the `step_scheduled` it carries out: both
        go out now, as one message."""
        message = CommandEnvelope(task_id=task_id, producer=self._publisher.producer, payload=payload)  # type: ignore[arg-type]
        scheduled = next((e for e in reversed(self._outbox) if e.task_id == task_id), None)
        if routing_key != STEPS_KEY or scheduled is None:
            raise ValueError(f"{message.type} is not the order of a step_scheduled just decided")
        self._write_outbox({scheduled.event_id: message})  # EventBatch checks that the two belong together
        return message

    def _write_outbox(self, orders: dict[uuid.UUID, CommandEnvelope] | None = None) -> None:
        """The events decided since the last write, a task's consecutive ones in one message where their
        routing allows (a new task's task_created, task_started and first step_scheduled go as one)."""
        events, self._outbox = self._outbox, []
        if events:
            self._pending.append(asyncio.ensure_future(self._publisher.publish_events(events, orders)))

    def take_pending(self) -> Awaitable[None]:
        """The confirms of everything published since the last call (raises if the broker refused one)."""
        self._write_outbox()
        pending, self._pending = self._pending, []
        return _all_confirmed(pending)


async def _all_confirmed(pending: list[asyncio.Future[Any]]) -> None:
    for outcome in await asyncio.gather(*pending, return_exceptions=True):
        if isinstance(outcome, BaseException):
            raise outcome


class OneAtATime:
    """The scheduler's message handler: one message at a time, in delivery order (an asyncio.Lock is
    FIFO), returning (so that the message is acked) only once the confirms of its decisions arrived.
    Meanwhile the next message is already being decided. A refused or lost confirm leaves decisions in
    the state that the broker may not hold: the scheduler then rebuilds from the store before the next
    decision (the message is retried or requeued by shared.broker.handle_delivery)."""

    def __init__(self, scheduler: _Handles, decisions: PipelinedPublisher) -> None:
        self._scheduler = scheduler
        self._decisions = decisions
        self._lock = asyncio.Lock()

    async def __call__(self, envelope: EventEnvelope | CommandEnvelope) -> None:
        async with self._lock:
            await self._scheduler.handle(envelope)
            confirmed = self._decisions.take_pending()
        try:
            await confirmed
        except BaseException:
            self._scheduler.synced = False
            raise
