"""A step runner whose connection the broker drops while a step runs: the broker requeues the RunStep,
so the try that held it stops (no terminal event of its own) and the redelivery runs the step once
more, never beside it. Against the real RabbitMQ, with the runner's own composition root."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from aio_pika.abc import AbstractIncomingMessage

from services.step_runner import bootstrap
from shared.broker import (
    STEPS_KEY,
    Publisher,
    Topology,
    connect,
    declare_topology,
    open_channel,
)
from shared.commands import RunStep
from shared.messages import EventEnvelope, decode_messages
from shared.parameters import TaskParameters
from shared.settings import CommonSettings
from shared.steps import StepName
from tests.conftest import AMQP_URL, runner_settings
from tests.support.eventually import eventually
from tests.support.rabbitmqctl import close_connections_named

pytestmark = pytest.mark.integration

QUIET = 4.0  # the step's working time, publishing nothing but heartbeats: longer than a reconnect (1 s here)


@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl")
async def test_a_try_whose_delivery_is_taken_back_stops_and_the_redelivery_runs_the_step(
    own_topology: Topology, test_env: dict[str, str], migrated: CommonSettings, tmp_path: Path
) -> None:
    settings = runner_settings(
        test_env, own_topology, tmp_path, runner_id="lease-runner", heartbeat_interval_seconds=0.5
    )
    task_id = "task_20260101_000000_lease1"
    execution_id = f"{task_id}_step_ddl_generation_exec_1"
    parameters = TaskParameters(
        db_connection="postgresql://u:p@127.0.0.1:5432/business",
        business_context=f"quiet:ddl_generation={QUIET}",
    )
    direct = await connect(AMQP_URL, name=f"dp:test:{own_topology.prefix}")
    async with direct, bootstrap.running_runner(settings):
        channel = await open_channel(direct, prefetch=100)
        publisher = Publisher(await declare_topology(channel, own_topology), "test")
        tap = await channel.declare_queue(exclusive=True, auto_delete=True)
        await tap.bind(own_topology.events_exchange, routing_key="task.#")
        events: list[tuple[float, EventEnvelope]] = []
        loop = asyncio.get_running_loop()

        async def on_event(message: AbstractIncomingMessage) -> None:
            for envelope in decode_messages(message.body):
                assert isinstance(envelope, EventEnvelope)
                events.append((loop.time(), envelope))
            await message.ack()

        await tap.consume(on_event)

        def of(type_: str) -> list[float]:
            return [at for at, e in events if e.type == type_]

        command = RunStep(
            step=StepName.DDL_GENERATION, execution_id=execution_id, attempt=1, parameters=parameters
        )
        await publisher.command(STEPS_KEY, command, task_id)
        await eventually(lambda: of("step_started"), timeout=15, what="the step started")
        await asyncio.sleep(0.5)  # well into the step's work when the broker drops the runner
        assert await close_connections_named(
            f"dp:step_runner:{own_topology.prefix}", "test: dropped mid-step"
        )
        await eventually(lambda: of("step_succeeded"), timeout=30, what="the step succeeded")
        # The first try would have ended QUIET s after its start; wait past that, and past the redelivery's.
        await asyncio.sleep(QUIET + 1)  # a first try that went on would have ended by now
        starts, ends = of("step_started"), of("step_succeeded")
        assert len(starts) == 2 and len(ends) == 1, [e.type for _, e in events]
        assert ends[0] - starts[1] >= QUIET - 0.1  # the redelivery's whole run
        assert not of("step_failed")
