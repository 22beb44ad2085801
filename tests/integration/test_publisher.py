"""shared.broker.Publisher writes its messages to the channel itself (issue 11: no aio_pika.Message per
publish): they must still arrive persistent, typed, with their id, and an unroutable one must raise."""

from __future__ import annotations

import uuid

import aio_pika
import pytest
from aio_pika.exceptions import PublishError

from shared.broker import Exchanges, Publisher, Topology, delete_topology, open_channel
from shared.commands import Tick
from shared.events import LogEmitted
from shared.messages import decode_message
from tests.conftest import AMQP_URL

pytestmark = pytest.mark.integration

TASK = "task_20260101_000000_abcdef"


async def test_events_arrive_persistent_typed_and_identified_and_unroutable_ones_raise() -> None:
    topology = Topology(f"dpt.pub{uuid.uuid4().hex[:8]}", 2)
    connection = await aio_pika.connect_robust(AMQP_URL)
    async with connection:
        channel = await open_channel(connection, prefetch=10)
        try:
            events = await channel.declare_exchange(topology.events_exchange, aio_pika.ExchangeType.TOPIC)
            commands = await channel.declare_exchange(
                topology.commands_exchange, aio_pika.ExchangeType.DIRECT
            )
            tap = await channel.declare_queue(exclusive=True, auto_delete=True)
            await tap.bind(events, routing_key="task.#")
            publisher = Publisher(Exchanges(commands=commands, events=events), "test")
            sent = await publisher.event(TASK, LogEmitted(message="hello"))
            message = await tap.get(timeout=5)
            await message.ack()
            assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
            assert message.content_type == "application/json"
            assert message.message_id == str(sent.event_id) and message.type == "log_emitted"
            assert message.routing_key == sent.routing_key
            assert decode_message(message.body) == sent
            with pytest.raises(PublishError):  # no queue bound to this command key: returned, not dropped
                await publisher.command("nobody", Tick(), None)
        finally:
            await delete_topology(await connection.channel(), topology)
