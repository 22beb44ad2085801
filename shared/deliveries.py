"""Consuming a queue below aio-pika's `Queue.consume`: the receive path of the collector's partitions, the
scheduler's queue and the steps queue.

For each delivery aio-pika builds an `IncomingMessage` (its properties decoded, some twenty attributes set
through a checking `__setattr__`) and runs the callback in a task of its own, on top of the task aiormq
runs every delivery in. Consuming 20,000 quorum messages with batch acks and nothing else took 209-214 µs
of CPU per message that way on the 2-core bench machine, and 118-149 µs through aiormq's `basic_consume`
(bench/bench_consume.py, docs/scaling.md). A `Delivery` holds what a consumer reads and settles a message with.

aio-pika's robust queue subscribes its consumers again on every channel the robust channel reopens (a
broker restart, a dropped connection) and after the broker cancels one (its queue deleted: the recovery
declares it again); a `Subscription` does the same for its own, through the channel's `reopen_callbacks`
and the underlying channel's consumer-cancel callbacks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import aiormq.abc
from aio_pika.abc import AbstractRobustChannel
from aiormq import spec
from aiormq.abc import DeliveredMessage, FieldTable

from shared.logging import get_logger

log = get_logger()


class Message(Protocol):
    """What a consumer reads and settles a message with (a `Delivery`, or aio-pika's message)."""

    @property
    def body(self) -> bytes: ...

    @property
    def delivery_tag(self) -> int | None: ...

    @property
    def channel(self) -> Any: ...

    @property
    def message_id(self) -> str | None: ...

    @property
    def routing_key(self) -> str | None: ...

    async def ack(self, multiple: bool = False) -> None: ...

    async def nack(self, *, requeue: bool = True) -> None: ...

    async def reject(self, *, requeue: bool = False) -> None: ...


@dataclass(slots=True, eq=False)
class Delivery:
    body: bytes
    delivery_tag: int
    channel: aiormq.abc.AbstractChannel  # the channel it came on: a reopened one numbers deliveries afresh
    message_id: str | None = None
    routing_key: str | None = None

    async def ack(self, multiple: bool = False) -> None:
        await self.channel.basic_ack(self.delivery_tag, multiple=multiple)

    async def nack(self, requeue: bool = True) -> None:
        await self.channel.basic_nack(self.delivery_tag, requeue=requeue)

    async def reject(self, requeue: bool = False) -> None:
        await self.channel.basic_reject(self.delivery_tag, requeue=requeue)


OnDelivery = Callable[[Delivery], Awaitable[None]]


class Subscription:
    """A consumer of `queue` on `channel` and on each channel it reopens as, until `cancel`."""

    def __init__(
        self,
        channel: AbstractRobustChannel,
        queue: str,
        on_delivery: OnDelivery,
        arguments: FieldTable | None = None,
    ) -> None:
        self.queue = queue
        self._channel = channel
        self._on_delivery = on_delivery
        self._arguments = arguments
        self._underlay: aiormq.abc.AbstractChannel | None = None
        self._tag: str | None = None
        self._cancelled = False
        self._again: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._channel.reopen_callbacks.add(self._reopened)
        await self._consume()

    async def cancel(self) -> None:
        self._cancelled = True
        self._channel.reopen_callbacks.discard(self._reopened)
        if self._underlay is not None and self._tag is not None and not self._underlay.is_closed:
            await self._underlay.basic_cancel(self._tag)

    async def _consume(self) -> None:
        underlay = await self._channel.get_underlay_channel()
        underlay.on_consumer_cancel_callbacks.add(self._cancelled_by_broker)
        ok = await underlay.basic_consume(self.queue, self._deliver, arguments=self._arguments)
        self._underlay, self._tag = underlay, ok.consumer_tag

    def _cancelled_by_broker(self, frame: spec.Basic.Cancel) -> None:
        # Called from the channel's frame reader, which must go on to read the answer to the consume.
        if frame.consumer_tag == self._tag and not self._cancelled:
            task = asyncio.create_task(self._consume_again())
            self._again.add(task)
            task.add_done_callback(self._again.discard)

    async def _consume_again(self) -> None:
        try:
            await self._consume()
        except Exception as exc:
            # The queue is gone: the broker closes the channel, and its reopening declares the queue again
            # and subscribes once more (`_reopened`).
            log.warning(
                "consumer cancelled by the broker; resubscribing on reopen", queue=self.queue, error=repr(exc)
            )

    async def _reopened(self, _channel: object) -> None:
        # `cancel` also drops this callback, but a reopening may have called it just before and this
        # coroutine run just after.
        if not self._cancelled:
            await self._consume()

    async def _deliver(self, message: DeliveredMessage) -> None:
        await self._on_delivery(
            Delivery(
                message.body,
                message.delivery_tag or 0,
                message.channel,
                message.header.properties.message_id,
                message.routing_key,
            )
        )
