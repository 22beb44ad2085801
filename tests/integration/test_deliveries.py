"""The receive path below aio-pika (shared/deliveries.py) on the real RabbitMQ: deliveries are settled
through their own channel, the subscription follows its channel through a channel error, a dropped
connection and its queue's deletion (the cases aio-pika's robust queue restores its own consumers for),
and a cancelled subscription stays cancelled when the channel reopens."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator

import aio_pika
import pytest
from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection

from shared.broker import connect, open_channel
from shared.deliveries import Delivery, Subscription
from shared.settings import CommonSettings
from tests.conftest import AMQP_URL
from tests.support.eventually import eventually
from tests.support.rabbitmqctl import drop_and_await_reconnect

pytestmark = pytest.mark.integration


class Received:
    """The bodies a subscription got, each acked on arrival."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.channels: set[int] = set()

    async def __call__(self, delivery: Delivery) -> None:
        self.bodies.append(delivery.body)
        self.channels.add(id(delivery.channel))
        await delivery.ack()


@pytest.fixture
async def setup(
    common_settings: CommonSettings,
) -> AsyncIterator[tuple[AbstractRobustConnection, AbstractRobustChannel, str, str]]:
    name = f"dp:test:{common_settings.broker_prefix}.deliveries{uuid.uuid4().hex[:6]}"
    connection = await connect(AMQP_URL, name=name)
    channel = await open_channel(connection, prefetch=10)
    queue = await channel.declare_queue(f"{common_settings.broker_prefix}.deliveries.{uuid.uuid4().hex[:6]}")
    try:
        yield connection, channel, queue.name, name
    finally:
        await queue.delete(if_unused=False, if_empty=False)
        await connection.close()


async def _publish(channel: AbstractRobustChannel, queue: str, body: bytes) -> None:
    await channel.default_exchange.publish(
        aio_pika.Message(body, message_id=body.decode()), routing_key=queue
    )


async def test_a_subscription_survives_a_channel_error_and_a_cancel_sticks(
    setup: tuple[AbstractRobustConnection, AbstractRobustChannel, str, str],
) -> None:
    _, channel, queue, _ = setup
    received = Received()
    subscription = Subscription(channel, queue, received)
    await subscription.start()
    await _publish(channel, queue, b"first")
    await eventually(lambda: received.bodies == [b"first"], what="the first delivery")

    # Acking a tag the channel never delivered is a channel error: the broker closes the channel and the
    # robust channel opens it again.
    underlay = await channel.get_underlay_channel()
    await underlay.basic_ack(999_999)
    await eventually(lambda: underlay.is_closed, what="the broker to close the channel")
    await eventually(lambda: not channel.is_closed, what="the channel reopened")
    await _publish(channel, queue, b"second")
    await eventually(lambda: received.bodies == [b"first", b"second"], what="a delivery on the new channel")
    assert len(received.channels) == 2

    await subscription.cancel()
    await _publish(channel, queue, b"third")
    underlay = await channel.get_underlay_channel()
    await underlay.basic_ack(999_999)
    await eventually(lambda: underlay.is_closed, what="the broker to close the channel again")
    await eventually(lambda: not channel.is_closed, what="the channel reopened again")
    declared = await channel.declare_queue(queue, passive=True)
    # Nobody consumes the queue any more: the third message waits in it.
    assert declared.declaration_result.message_count == 1
    assert declared.declaration_result.consumer_count == 0
    assert received.bodies == [b"first", b"second"]


@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl")
async def test_a_subscription_follows_a_dropped_connection(
    setup: tuple[AbstractRobustConnection, AbstractRobustChannel, str, str],
) -> None:
    _, channel, queue, name = setup
    received = Received()
    await Subscription(channel, queue, received, {"x-priority": 1}).start()
    await _publish(channel, queue, b"before")
    await eventually(lambda: received.bodies == [b"before"], what="a delivery before the drop")
    await drop_and_await_reconnect(name)
    await eventually(lambda: not channel.is_closed, what="the channel restored")
    await _publish(channel, queue, b"after")
    await eventually(lambda: received.bodies == [b"before", b"after"], what="a delivery after the drop")


async def test_a_subscription_whose_queue_is_deleted_consumes_it_once_it_is_declared_again(
    setup: tuple[AbstractRobustConnection, AbstractRobustChannel, str, str],
) -> None:
    _, channel, queue, _ = setup
    received = Received()
    await Subscription(channel, queue, received).start()
    await _publish(channel, queue, b"before")
    await eventually(lambda: received.bodies == [b"before"], what="a delivery before the delete")
    # An operator deletes the queue: the broker cancels the consumer. As aio-pika's robust queue does for
    # its consumers, the queue is declared again (by the channel's recovery) and consumed.
    other = await aio_pika.connect(AMQP_URL)
    async with other:
        await (await other.channel()).queue_delete(queue)

    async def consumed_again() -> bool:
        async with await aio_pika.connect(AMQP_URL) as probe:
            try:
                declared = await (await probe.channel()).declare_queue(queue, passive=True)
            except aio_pika.exceptions.ChannelClosed:
                return False  # not declared again yet
            return declared.declaration_result.consumer_count == 1

    await eventually(consumed_again, timeout=20, interval=0.2, what="the queue declared and consumed again")
    await _publish(channel, queue, b"after")
    await eventually(lambda: received.bodies == [b"before", b"after"], what="a delivery after the delete")
