"""shared.broker.connect on the coalescing socket writer (issue 11) against the real RabbitMQ: many
concurrent confirmed publishes, their deliveries and acks all go through writes batched per loop turn,
and the robust connection still reconnects (on the same writer) after the broker drops it."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection
from pamqp.commands import Basic

from shared.amqp_transport import CoalescingConnection, CoalescingTransportFactory, CoalescingWriter
from shared.broker import connect, open_channel
from shared.settings import CommonSettings
from tests.conftest import AMQP_URL
from tests.support.eventually import eventually
from tests.support.rabbitmqctl import drop_and_await_reconnect

pytestmark = pytest.mark.integration

COUNT = 500


class Sockets:
    """The writers CoalescingTransportFactory handed to aiormq, one per (re)connection."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.writers: list[object] = []
        original = CoalescingTransportFactory.create

        async def create(factory: CoalescingTransportFactory, *args: Any, **kwargs: Any) -> Any:
            reader, writer = await original(factory, *args, **kwargs)
            self.writers.append(writer)
            return reader, writer

        monkeypatch.setattr(CoalescingTransportFactory, "create", create)


@pytest.fixture
def sockets(monkeypatch: pytest.MonkeyPatch) -> Sockets:
    return Sockets(monkeypatch)


@pytest.fixture
async def connection(
    common_settings: CommonSettings, sockets: Sockets
) -> AsyncIterator[tuple[AbstractRobustConnection, str]]:
    name = f"dp:test:{common_settings.broker_prefix}.coalesce{uuid.uuid4().hex[:6]}"
    conn = await connect(AMQP_URL, name=name)
    yield conn, name
    await conn.close()


async def _queue(
    connection: AbstractRobustConnection, name: str
) -> tuple[aio_pika.abc.AbstractChannel, AbstractQueue, dict[bytes, int]]:
    """A confirming channel (as the services open it), a queue, and a consumer counting each body."""
    channel = await open_channel(connection, prefetch=100)
    queue = await channel.declare_queue(name, durable=True)
    received: dict[bytes, int] = {}

    async def on_message(message: AbstractIncomingMessage) -> None:
        received[message.body] = received.get(message.body, 0) + 1
        await message.ack()

    await queue.consume(on_message)
    return channel, queue, received


async def _publish(channel: aio_pika.abc.AbstractChannel, queue: str, body: bytes) -> object:
    message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
    return await channel.default_exchange.publish(message, routing_key=queue)


async def test_concurrent_confirmed_publishes_arrive_once_each(
    connection: tuple[AbstractRobustConnection, str], sockets: Sockets
) -> None:
    conn, name = connection
    assert isinstance(conn, CoalescingConnection)
    channel, queue, received = await _queue(conn, name)
    try:
        bodies = [f"message-{i:04d}".encode() for i in range(COUNT)]
        confirms = await asyncio.gather(*(_publish(channel, name, body) for body in bodies))
        assert all(isinstance(c, Basic.Ack) for c in confirms)
        end = await _publish(channel, name, b"end")  # a marker behind the others in the queue
        assert isinstance(end, Basic.Ack)
        await eventually(lambda: b"end" in received, timeout=15, what="the marker delivered")
        received.pop(b"end")
        assert received == dict.fromkeys(bodies, 1)  # every body, each exactly once
        assert len(sockets.writers) == 1 and isinstance(sockets.writers[0], CoalescingWriter)
    finally:
        await queue.delete(if_unused=False, if_empty=False)


@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl")
async def test_the_robust_connection_reconnects_on_the_coalescing_writer(
    connection: tuple[AbstractRobustConnection, str], sockets: Sockets
) -> None:
    conn, name = connection
    channel, queue, received = await _queue(conn, name)
    try:
        assert isinstance(await _publish(channel, name, b"before"), Basic.Ack)
        await eventually(lambda: b"before" in received, what="a delivery before the broker drops us")
        await drop_and_await_reconnect(name)
        await eventually(lambda: not channel.is_closed, what="the channel restored")
        assert len(sockets.writers) == 2 and all(isinstance(w, CoalescingWriter) for w in sockets.writers)
        assert isinstance(await _publish(channel, name, b"after"), Basic.Ack)
        await eventually(lambda: b"after" in received, what="the restored consumer to get a new message")
    finally:
        await queue.delete(if_unused=False, if_empty=False)
