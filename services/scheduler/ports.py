"""What the scheduler's handlers need from the outside world, as narrow ports.

The service plugs in the event store (PostgreSQL), the broker publisher and a queue probe
(RabbitMQ); unit tests plug in lists and dicts, so every handler runs without a broker.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel

from shared.lifecycle import Finished
from shared.messages import CommandEnvelope, EventEnvelope


class EventSource(Protocol):
    """The event store, read-only: the scheduler rebuilds its state from it after a start or fail-over."""

    async def open_task_ids(self) -> list[str]: ...

    async def task_events(self, task_id: str) -> list[EventEnvelope]: ...

    async def stored(self, event_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Which of these events the store holds (the collector may still be storing the others)."""
        ...

    async def finished_tasks(self, finished_before: datetime) -> list[Finished]:
        """Finished tasks (last finish before `finished_before`) that retention may still act on."""
        ...


class MessagePublisher(Protocol):
    """Publishes the scheduler's decisions (events) and the step work it hands out (commands)."""

    async def event(self, task_id: str, payload: BaseModel) -> EventEnvelope: ...

    async def command(self, routing_key: str, payload: BaseModel, task_id: str | None) -> CommandEnvelope: ...


class QueueProbe(Protocol):
    """Facts about the queues that the scheduler reports on but does not decide from."""

    steps_queue: str

    def attached(self) -> bool:
        """Is the probe's broker channel open (readiness)?"""
        ...

    async def collector_backlog(self) -> int:
        """Events the collector has not stored yet: a rebuild waits for them."""
        ...

    async def runners_connected(self) -> int:
        """Step runners consuming the steps queue."""
        ...
