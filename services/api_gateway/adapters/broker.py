"""The gateway's side of RabbitMQ: publish commands with confirms, and subscribe to one task's events.

Commands go to the scheduler through the shared Publisher (persistent, mandatory, confirmed). Live
views (SSE) get their own channel and an exclusive auto-delete queue bound to a few routing keys of
the events exchange, so a disconnected client leaves nothing behind on the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection
from pydantic import BaseModel, ValidationError

from shared.broker import SCHEDULER_KEY, Publisher, Topology
from shared.logging import get_logger
from shared.messages import EVENTS_ADAPTER, CommandEnvelope, EventEnvelope, unpack

_CLOSED = object()


class EventSubscription:
    """Events of one task, as they are published, buffered in memory until the stream writes them.

    Declared *before* a stream reads its backlog from the database, so nothing published in between
    is lost; the stream de-duplicates by `event_id`. A client too slow to keep up (buffer full) is
    disconnected rather than allowed to grow the gateway's memory.
    """

    def __init__(
        self,
        connection: AbstractRobustConnection,
        exchange: str,
        routing_keys: Iterable[str],
        *,
        maxsize: int,
        name: str = "",
    ) -> None:
        self._name = name  # "" lets the broker name it (amq.gen-...)
        self._connection = connection
        self._exchange = exchange
        self._keys = list(routing_keys)
        self._buffer: asyncio.Queue[object] = asyncio.Queue(maxsize=maxsize)
        self._channel: AbstractChannel | None = None
        self.overflowed = False

    async def __aenter__(self) -> EventSubscription:
        self._channel = await self._connection.channel(publisher_confirms=False)
        queue = await self._channel.declare_queue(self._name or None, exclusive=True, auto_delete=True)
        for key in self._keys:
            await queue.bind(self._exchange, routing_key=key)
        await queue.consume(self._on_message, no_ack=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._channel is not None and not self._channel.is_closed:
            with contextlib.suppress(Exception):
                await self._channel.close()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            events = unpack(EVENTS_ADAPTER.validate_json(message.body))
        except ValidationError:
            get_logger().warning("undecodable event skipped by stream", routing_key=message.routing_key)
            return
        try:
            for event in events:
                self._buffer.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            self.close()

    def close(self) -> None:
        """Wake the reader with an end marker (shutdown, overflow)."""
        while True:
            try:
                self._buffer.put_nowait(_CLOSED)
                return
            except asyncio.QueueFull:
                self._buffer.get_nowait()

    async def get(self, timeout: float) -> EventEnvelope | None:
        """The next event; raises TimeoutError when idle for `timeout`, returns None once closed."""
        item = await asyncio.wait_for(self._buffer.get(), timeout)
        if item is _CLOSED:
            self._buffer.put_nowait(_CLOSED)
            return None
        assert isinstance(item, EventEnvelope)
        return item

    def pending(self) -> list[EventEnvelope]:
        """Events already buffered, without waiting (used to drain after the stream's last event)."""
        drained: list[EventEnvelope] = []
        while not self._buffer.empty():
            item = self._buffer.get_nowait()
            if isinstance(item, EventEnvelope):
                drained.append(item)
        return drained


@dataclass
class GatewayBroker:
    """The broker as the gateway uses it: one confirmed channel for commands, one channel per live stream."""

    connection: AbstractRobustConnection
    channel: AbstractChannel
    publisher: Publisher
    topology: Topology
    publish_timeout: float
    stream_buffer: int = 10_000
    subscriptions: set[EventSubscription] = field(default_factory=set)

    def is_ready(self) -> bool:
        return not self.connection.is_closed and not self.channel.is_closed

    async def send_to_scheduler(self, payload: BaseModel, task_id: str) -> CommandEnvelope:
        """Publish a command and wait for the broker's confirm (TimeoutError past `publish_timeout`)."""
        return await asyncio.wait_for(
            self.publisher.command(SCHEDULER_KEY, payload, task_id), timeout=self.publish_timeout
        )

    def subscribe(self, task_id: str, event_types: Iterable[str] | None = None) -> EventSubscription:
        keys = [f"task.{task_id}.{t}.#" for t in event_types] if event_types else [f"task.{task_id}.#"]
        subscription = EventSubscription(
            self.connection,
            self.topology.events_exchange,
            keys,
            maxsize=self.stream_buffer,
            name=self.topology.stream_queue(task_id),
        )
        self.subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: EventSubscription) -> None:
        self.subscriptions.discard(subscription)

    def close_streams(self) -> None:
        for subscription in list(self.subscriptions):
            subscription.close()
