"""A step runner built by its own composition root on a topology of the test's own, with a publisher
for its orders and a tap on the events exchange that notes which tasks' steps started, succeeded or
were cancelled (the runner's integration tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

from aio_pika.abc import AbstractIncomingMessage

from services.step_runner import bootstrap
from services.step_runner.handlers import StepRunner
from shared.broker import Publisher, Topology, connect, declare_topology, open_channel
from shared.commands import RunStep
from shared.messages import CommandEnvelope, EventEnvelope, decode_messages, utcnow
from shared.parameters import TaskParameters
from shared.steps import StepName
from tests.conftest import AMQP_URL, runner_settings

STEP = StepName.DDL_GENERATION
PARAMETERS = TaskParameters(db_connection="postgresql://u:p@127.0.0.1:5432/business", business_context="x")


def task_id_of(name: str) -> str:
    return f"task_20260101_000000_{name}"


def order(name: str, fresh: float, issued_ago: float = 0.0) -> CommandEnvelope:
    task_id = task_id_of(name)
    command = RunStep(
        step=STEP, execution_id=f"{task_id}_exec", attempt=1, parameters=PARAMETERS, fresh_seconds=fresh
    )
    issued = utcnow() - timedelta(seconds=issued_ago)
    return CommandEnvelope(task_id=task_id, producer="test", payload=command, issued_at=issued)


class Outcomes:
    """The tasks whose steps started, succeeded and were cancelled, from a tap on the events exchange."""

    def __init__(self) -> None:
        self.started: set[str] = set()
        self.succeeded: set[str] = set()
        self.cancelled: set[str] = set()

    async def on_event(self, message: AbstractIncomingMessage) -> None:
        for envelope in decode_messages(message.body):
            assert isinstance(envelope, EventEnvelope)
            if envelope.type == "step_started":
                self.started.add(envelope.task_id)
            if envelope.type == "step_succeeded":
                self.succeeded.add(envelope.task_id)
            if envelope.type == "step_cancelled":
                self.cancelled.add(envelope.task_id)
        await message.ack()


@asynccontextmanager
async def runner_and_tap(
    topology: Topology, test_env: dict[str, str], tmp_path: Path, runner_id: str, **values: object
) -> AsyncIterator[tuple[StepRunner, Publisher, Outcomes]]:
    settings = runner_settings(test_env, topology, tmp_path, runner_id=runner_id, **values)
    direct = await connect(AMQP_URL, name=f"dp:test:{topology.prefix}")
    async with direct, bootstrap.running_runner(settings) as runner:
        channel = await open_channel(direct, prefetch=100)
        publisher = Publisher(await declare_topology(channel, topology), "test")
        tap = await channel.declare_queue(exclusive=True, auto_delete=True)
        await tap.bind(topology.events_exchange, routing_key="task.#")
        outcomes = Outcomes()
        await tap.consume(outcomes.on_event)
        yield runner, publisher, outcomes
