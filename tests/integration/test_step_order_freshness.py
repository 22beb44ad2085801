"""Fresh step orders start without the store's check; every other order asks it (issue 11). Against the
real RabbitMQ and PostgreSQL, with the runner's own composition root: a delete the runner heard, an order
without a window and an old order are all checked and skipped; a fresh order is started without asking
(a tombstone written behind the broker's back, which no runner hears of, does not stop it)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from aio_pika.abc import AbstractIncomingMessage

from services.step_runner import bootstrap
from shared.broker import STEPS_KEY, Publisher, Topology, connect, declare_topology, open_channel
from shared.commands import RunStep
from shared.events import TaskDeleted
from shared.messages import CommandEnvelope, EventEnvelope, decode_messages, utcnow
from shared.parameters import TaskParameters
from shared.settings import CommonSettings
from shared.steps import StepName
from tests.conftest import AMQP_URL, PG_URL, runner_settings
from tests.support.eventually import eventually

pytestmark = pytest.mark.integration

STEP = StepName.DDL_GENERATION
PARAMETERS = TaskParameters(db_connection="postgresql://u:p@127.0.0.1:5432/business", business_context="x")


def _task(name: str) -> str:
    return f"task_20260101_000000_{name}"


def _order(name: str, fresh: float, issued_ago: float = 0.0) -> CommandEnvelope:
    task_id = _task(name)
    command = RunStep(
        step=STEP, execution_id=f"{task_id}_exec", attempt=1, parameters=PARAMETERS, fresh_seconds=fresh
    )
    issued = utcnow() - timedelta(seconds=issued_ago)
    return CommandEnvelope(task_id=task_id, producer="test", payload=command, issued_at=issued)


async def test_fresh_orders_skip_the_store_and_every_other_order_asks_it(
    own_topology: Topology, test_env: dict[str, str], migrated: CommonSettings, tmp_path: Path
) -> None:
    pg = await asyncpg.connect(PG_URL, server_settings={"search_path": migrated.db_schema})
    for name in ("heard", "nowindow", "old", "unheard"):
        await pg.execute(
            "INSERT INTO task_tombstones (task_id, deleted_at, deleted_seq, event_count, execution_count,"
            " log_count, output_count) VALUES ($1, now(), 1, 0, 0, 0, 0)",
            _task(name),
        )
    await pg.close()
    settings = runner_settings(test_env, own_topology, tmp_path, runner_id="fresh-runner")
    direct = await connect(AMQP_URL, name=f"dp:test:{own_topology.prefix}")
    async with direct, bootstrap.running_runner(settings) as runner:
        assert runner.listening_since is not None
        runner.listening_since -= 60  # as if it had listened for a minute: long past twice any window
        channel = await open_channel(direct, prefetch=100)
        publisher = Publisher(await declare_topology(channel, own_topology), "test")
        tap = await channel.declare_queue(exclusive=True, auto_delete=True)
        await tap.bind(own_topology.events_exchange, routing_key="task.#")
        started: set[str] = set()
        succeeded: set[str] = set()

        async def on_event(message: AbstractIncomingMessage) -> None:
            for envelope in decode_messages(message.body):
                assert isinstance(envelope, EventEnvelope)
                if envelope.type == "step_started":
                    started.add(envelope.task_id)
                if envelope.type == "step_succeeded":
                    succeeded.add(envelope.task_id)
            await message.ack()

        await tap.consume(on_event)
        await publisher.event(_task("heard"), TaskDeleted())
        await eventually(lambda: _task("heard") in runner.stopped, timeout=10, what="the delete was heard")

        for order in (
            _order("heard", fresh=5),  # a delete of its task reached the runner: asks the store
            _order("nowindow", fresh=0),  # an earlier scheduler's order: asks the store
            _order("old", fresh=5, issued_ago=30),  # older than its window: asks the store
            _order("unheard", fresh=5),  # fresh: started without asking
            _order("live", fresh=5),
        ):
            await publisher.publish_command(STEPS_KEY, order)
        skipped = runner.metrics.skipped.labels(STEP.value)
        await eventually(
            lambda: {_task("unheard"), _task("live")} <= succeeded and skipped._value.get() == 3,
            timeout=15,
            what="two steps run and three skipped",
        )
        assert started == {_task("unheard"), _task("live")}, started
