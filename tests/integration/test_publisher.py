"""shared.broker.Publisher writes its messages to the channel itself (issue 11: no aio_pika.Message per
publish): they must still arrive persistent, typed, with their id, and an unroutable one must raise."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from aio_pika.exceptions import PublishError

from shared.broker import (
    STEPS_KEY,
    Exchanges,
    Publisher,
    Topology,
    declare_topology,
    delete_topology,
    open_channel,
)
from shared.commands import RunStep, Tick
from shared.events import LogEmitted, StepScheduled, StepStarted, StepSucceeded, TaskStarted
from shared.messages import CommandEnvelope, decode_message, decode_messages, step_commands
from shared.parameters import TaskParameters
from shared.steps import StepName
from tests.conftest import AMQP_URL
from tests.support.eventually import eventually

pytestmark = pytest.mark.integration

TASK = "task_20260101_000000_abcdef"


@asynccontextmanager
async def _declared() -> AsyncIterator[tuple[Topology, AbstractChannel, Publisher]]:
    """The real topology under a prefix of its own, with one partition; removed afterwards."""
    topology = Topology(f"dpt.pub{uuid.uuid4().hex[:8]}", 1)
    connection = await aio_pika.connect_robust(AMQP_URL)
    async with connection:
        channel = await open_channel(connection, prefetch=10)
        try:
            yield topology, channel, Publisher(await declare_topology(channel, topology), "test")
        finally:
            await delete_topology(await connection.channel(), topology)


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


async def test_a_batch_reaches_every_queue_that_binds_one_of_its_events_and_only_those() -> None:
    """Several events in one message (shared/event_batches.py), on the real topology: a quick step's start
    and end are one message to the scheduler and one to the collector; a start followed by a log line is
    two messages, of which the scheduler (which does not bind log lines) gets the start only."""
    async with _declared() as (topology, channel, publisher):
        step = StepName.DDL_GENERATION
        quick = [
            publisher.envelope(TASK, StepStarted(step=step, execution_id="e1", runner_id="r1")),
            publisher.envelope(TASK, StepSucceeded(step=step, execution_id="e1")),
        ]
        slow = [
            publisher.envelope(TASK, StepStarted(step=step, execution_id="e2", runner_id="r1")),
            publisher.envelope(TASK, LogEmitted(message="working")),
        ]
        await publisher.publish_events(quick)
        await publisher.publish_events(slow)
        received: dict[str, list[list[str]]] = {}
        for name in (topology.scheduler_queue, topology.collector_partition_queue(0)):
            seen = received.setdefault(name, [])

            async def on_message(message: AbstractIncomingMessage, seen: list[list[str]] = seen) -> None:
                seen.append([e.type for e in decode_messages(message.body)])
                await message.ack()

            await (await channel.get_queue(name)).consume(on_message)
        await eventually(lambda: len(received[topology.collector_partition_queue(0)]) == 3, timeout=5)
        assert received[topology.collector_partition_queue(0)] == [
            ["step_started", "step_succeeded"],
            ["step_started"],
            ["log_emitted"],
        ]
        assert received[topology.scheduler_queue] == [
            ["step_started", "step_succeeded"],
            ["step_started"],
        ]


async def test_a_step_order_is_one_publish_to_its_partition_and_the_steps_queue_and_nowhere_else() -> None:
    """The scheduler's step_scheduled and its run_step travel as one message (a step order): the collector's
    partition reads the events, the steps queue the command; the scheduler's queue gets neither. A
    step_scheduled sent without a command (a manual run's) never reaches the step runners."""
    async with _declared() as (topology, channel, publisher):
        step = StepName.DDL_GENERATION
        started = publisher.envelope(TASK, TaskStarted())
        scheduled = publisher.envelope(TASK, StepScheduled(step=step, execution_id="e1", attempt=1))
        run = RunStep(
            step=step,
            execution_id="e1",
            attempt=1,
            parameters=TaskParameters(db_connection="postgresql://u@h/db", business_context="b"),
        )
        order = CommandEnvelope(task_id=TASK, producer="test", payload=run)
        await publisher.publish_events([started, scheduled], {scheduled.event_id: order})
        manual = publisher.envelope(TASK, StepScheduled(step=step, execution_id="e2", attempt=1))
        await publisher.publish_events([manual])
        # Markers, published after: a queue that got anything of the two publishes above got it first.
        ended = publisher.envelope(TASK, StepSucceeded(step=step, execution_id="e1"))
        await publisher.publish_event(ended)
        await publisher.command(STEPS_KEY, run, TASK)
        names = (topology.collector_partition_queue(0), topology.steps_queue, topology.scheduler_queue)
        received: dict[str, list[bytes]] = {}
        for name in names:
            bodies = received.setdefault(name, [])

            async def on_message(message: AbstractIncomingMessage, bodies: list[bytes] = bodies) -> None:
                bodies.append(message.body)
                await message.ack()

            await (await channel.get_queue(name)).consume(on_message)
        await eventually(lambda: list(map(len, received.values())) == [3, 2, 1], timeout=5)
        stored, (taken, alone), (outcome,) = (received[name] for name in names)
        assert [list(decode_messages(body)) for body in stored] == [
            [started, scheduled],
            [manual],
            [ended],
        ]
        assert list(step_commands(decode_message(taken))) == [order]
        assert taken == stored[0]  # one message, not a copy made by the scheduler
        assert decode_message(alone).type == "run_step"  # a run_step sent alone still reaches runners
        assert list(decode_messages(outcome)) == [ended]  # the scheduler's queue: the marker only
