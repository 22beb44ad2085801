"""Issue 11: a publish whose confirm never comes fails after its deadline, and a step runner cut off
from the broker while it publishes a step's events hands the step back and works again once it
reconnects, instead of staying busy for minutes. Against the real RabbitMQ, through a relay
(tests/support/amqp_proxy.py) that silently drops this test's own traffic."""

from __future__ import annotations

import asyncio
import functools
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aio_pika.abc import AbstractIncomingMessage

from services.step_runner import bootstrap
from shared.broker import (
    STEPS_KEY,
    TRANSIENT_ERRORS,
    Publisher,
    PublishTimeout,
    Topology,
    connect,
    declare_topology,
    open_channel,
)
from shared.commands import RunStep
from shared.events import LogEmitted
from shared.messages import EventEnvelope, decode_messages
from shared.parameters import TaskParameters
from shared.settings import CommonSettings
from shared.steps import StepName
from tests.conftest import AMQP_URL, runner_settings
from tests.support.amqp_proxy import AmqpProxy
from tests.support.eventually import eventually
from tests.support.rabbitmqctl import close_connections_named

pytestmark = pytest.mark.integration

DEADLINE = 1.5  # the runner's publish deadline here
BUDGET = 1.0  # its in-place retry budget


@pytest.fixture
async def proxy() -> AsyncIterator[tuple[AmqpProxy, str]]:
    relay = AmqpProxy(AMQP_URL)
    url = await relay.start()
    yield relay, url
    await relay.close()


async def test_a_publish_without_its_confirm_fails_transiently_at_its_deadline(
    proxy: tuple[AmqpProxy, str], own_topology: Topology
) -> None:
    relay, url = proxy
    connection = await connect(url, name=f"dp:test:{own_topology.prefix}")
    channel = await open_channel(connection, prefetch=1)
    publisher = Publisher(await declare_topology(channel, own_topology), "test", timeout=1.0)
    await publisher.event("task_20260101_000000_abcdef", LogEmitted(message="confirmed"))
    relay.stall()
    began = time.monotonic()
    with pytest.raises(PublishTimeout) as raised:
        async with asyncio.timeout(10):  # without the deadline the publish would wait here for ever
            await publisher.event("task_20260101_000000_abcdef", LogEmitted(message="never confirmed"))
    assert 1.0 <= time.monotonic() - began < 3
    assert isinstance(raised.value, TRANSIENT_ERRORS)  # handle_delivery retries it like an outage
    relay.cut()
    await connection.close()


def _run_step(task_id: str, business_context: str) -> tuple[RunStep, str]:
    step = StepName.DDL_GENERATION
    execution_id = f"{task_id}_step_{step.value}_exec_1"
    parameters = TaskParameters(
        db_connection="postgresql://u:p@127.0.0.1:5432/business", business_context=business_context
    )
    return RunStep(step=step, execution_id=execution_id, attempt=1, parameters=parameters), execution_id


@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl")
async def test_a_runner_cut_off_while_publishing_hands_the_step_back_and_works_again(
    proxy: tuple[AmqpProxy, str],
    own_topology: Topology,
    test_env: dict[str, str],
    migrated: CommonSettings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    relay, url = proxy
    settings = runner_settings(
        test_env,
        own_topology,
        tmp_path,
        rabbitmq_url=url,
        runner_id="deadline-runner",
        heartbeat_interval_seconds=0.5,
        runner_publish_timeout_seconds=DEADLINE,
        runner_transient_budget_seconds=BUDGET,
    )
    settled: list[float] = []  # when each of the runner's step deliveries was done with
    original = bootstrap.handle_delivery

    async def handle_delivery(message: AbstractIncomingMessage, handler: Any, **kwargs: Any) -> None:
        await original(message, handler, **kwargs)
        if handler.__name__ == "on_run_step":
            settled.append(time.monotonic())

    monkeypatch.setattr(bootstrap, "handle_delivery", handle_delivery)

    direct = await connect(AMQP_URL, name=f"dp:test:{own_topology.prefix}")
    async with direct, bootstrap.running_runner(settings):
        try:
            channel = await open_channel(direct, prefetch=100)
            publisher = Publisher(await declare_topology(channel, own_topology), "test")
            tap = await channel.declare_queue(exclusive=True, auto_delete=True)
            await tap.bind(own_topology.events_exchange, routing_key="task.#")
            events: list[EventEnvelope] = []

            async def on_event(message: AbstractIncomingMessage) -> None:
                for envelope in decode_messages(message.body):
                    assert isinstance(envelope, EventEnvelope)
                    events.append(envelope)
                await message.ack()

            await tap.consume(on_event)

            def seen(execution_id: str, type_: str) -> list[EventEnvelope]:
                return [
                    e
                    for e in events
                    if e.type == type_ and getattr(e.payload, "execution_id", None) == execution_id
                ]

            # A works for 2 s and reports progress every 0.25 s: whenever the cut lands, a publish is waiting.
            first, first_id = _run_step("task_20260101_000000_aaaaaa", "sleep:ddl_generation=2")
            await publisher.command(STEPS_KEY, first, "task_20260101_000000_aaaaaa")
            await eventually(lambda: seen(first_id, "step_started"), timeout=15, what="step A started")

            # The broker drops the runner while its publishes go unconfirmed and it cannot tell.
            relay.stall()
            stalled = time.monotonic()
            assert await close_connections_named(f"dp:step_runner:{own_topology.prefix}", "test: dropped")
            # Its longest stay: the budget plus one more try, whose publishes (progress, the end; or the start)
            # each wait out the deadline. Without the deadline it would stay until the socket reports the loss.
            bound = BUDGET + 3 * DEADLINE + 2
            await eventually(lambda: settled, timeout=bound + 5, interval=0.05, what="step A handed back")
            assert settled[0] - stalled < bound

            # Its socket finally reports the loss: the runner reconnects and takes A again, then B.
            relay.cut()
            second, second_id = _run_step("task_20260101_000000_bbbbbb", "")
            await publisher.command(STEPS_KEY, second, "task_20260101_000000_bbbbbb")
            for execution_id in (first_id, second_id):
                await eventually(
                    functools.partial(seen, execution_id, "step_succeeded"),
                    timeout=30,
                    what=f"{execution_id} succeeded",
                )
            await eventually(lambda: len(settled) == 3, what="every delivery settled")
            # Nothing lost or duplicated: one end per execution, and none of the cut-off tries' failures.
            assert [len(seen(x, "step_succeeded")) for x in (first_id, second_id)] == [1, 1]
            assert not [e for e in events if e.type in ("step_failed", "step_cancelled")]
        finally:
            relay.cut()  # a runner still stalled would not stop
